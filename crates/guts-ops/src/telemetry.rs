//! Logging and tracing: the process-wide `tracing` subscriber (JSON or pretty), its
//! runtime-adjustable level, and the optional OpenTelemetry OTLP exporter.
//!
//! The subscriber is the one global this crate installs: `tracing` dispatches through a
//! global by design. Everything else (metrics, health) is passed around as values.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, Registry, reload};

/// Crates whose logs follow `GUTS_LOG_LEVEL` exactly. Dependencies are capped at `info`
/// so that `debug` shows our own detail rather than every hyper frame.
const OWN_CRATES: &[&str] = &[
    "guts_core",
    "guts_ops",
    "guts_storage",
    "guts_git",
    "guts_p2p",
    "guts_api",
    "guts_node",
];

/// `GUTS_LOG_LEVEL`: the five `tracing` levels, nothing else.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    fn filter(self) -> EnvFilter {
        let deps = self.min(LogLevel::Info).as_str();
        let mut directives = deps.to_string();
        for krate in OWN_CRATES {
            directives.push_str(&format!(",{krate}={}", self.as_str()));
        }
        EnvFilter::new(directives)
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a string that is none of the known values of an enum setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of {expected}")]
pub struct UnknownVariant {
    pub expected: &'static str,
}

impl FromStr for LogLevel {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LogLevel::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or(UnknownVariant {
                expected: "error, warn, info, debug, trace",
            })
    }
}

/// `GUTS_LOG_FORMAT`: JSON lines for machines (production), pretty for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Pretty => "pretty",
        }
    }
}

impl FromStr for LogFormat {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            _ => Err(UnknownVariant {
                expected: "json, pretty",
            }),
        }
    }
}

/// What [`init`] needs to know.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    pub level: LogLevel,
    pub format: LogFormat,
    /// OTLP/gRPC collector endpoint (`http://host:4317`); `None` exports nothing and
    /// installs no OpenTelemetry layer at all, so it costs nothing per span.
    pub otlp_endpoint: Option<String>,
    /// `service.name` resource attribute of exported spans.
    pub service_name: String,
    /// `service.instance.id`: the node's peer id, so traces show which node did what.
    pub instance_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
    #[error("cannot build the OTLP exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("cannot change the log level: {0}")]
    Reload(String),
}

/// Owns what must be flushed at exit (the span exporter) and the handle that changes
/// the log level at runtime. Dropping it without [`Telemetry::shutdown`] loses the spans
/// still queued in the batch exporter.
pub struct Telemetry {
    level: reload::Handle<EnvFilter, Registry>,
    current: std::sync::Mutex<LogLevel>,
    provider: Option<SdkTracerProvider>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("level", &self.level())
            .field("otlp", &self.provider.is_some())
            .finish()
    }
}

/// Installs the global subscriber. Must run inside a tokio runtime when an OTLP endpoint
/// is set (the batch exporter spawns onto it).
pub fn init(settings: &TelemetrySettings) -> Result<Telemetry, TelemetryError> {
    let (filter, level) = reload::Layer::new(settings.level.filter());
    let fmt_layer = match settings.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_target(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_target(true).boxed(),
    };

    let (otel_layer, provider) = match &settings.otlp_endpoint {
        None => (None, None),
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .with_timeout(Duration::from_secs(5))
                .build()
                .map_err(|source| TelemetryError::Exporter {
                    endpoint: endpoint.clone(),
                    source,
                })?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name(settings.service_name.clone())
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.instance.id",
                    settings.instance_id.clone(),
                ))
                .build();
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build();
            let tracer = provider.tracer("guts");
            (
                Some(tracing_opentelemetry::layer().with_tracer(tracer)),
                Some(provider),
            )
        }
    };

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;

    Ok(Telemetry {
        level,
        current: std::sync::Mutex::new(settings.level),
        provider,
    })
}

impl Telemetry {
    /// Whether spans are being exported (and so carry OpenTelemetry trace ids).
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    pub fn level(&self) -> LogLevel {
        match self.current.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Changes the level of every subsequent log line, without a restart.
    pub fn set_level(&self, level: LogLevel) -> Result<(), TelemetryError> {
        self.level
            .reload(level.filter())
            .map_err(|e| TelemetryError::Reload(e.to_string()))?;
        match self.current.lock() {
            Ok(mut guard) => *guard = level,
            Err(poisoned) => *poisoned.into_inner() = level,
        }
        Ok(())
    }

    /// Flushes and stops the span exporter. The SDK's flush blocks the calling thread, so
    /// it runs on the blocking pool, bounded by `timeout`.
    pub async fn shutdown(&self, timeout: Duration) {
        let Some(provider) = self.provider.clone() else {
            return;
        };
        let flush = tokio::task::spawn_blocking(move || {
            let _ = provider.force_flush();
            provider.shutdown_with_timeout(timeout)
        });
        match tokio::time::timeout(timeout, flush).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "span exporter did not shut down cleanly"),
            Ok(Err(e)) => tracing::warn!(error = %e, "span exporter flush task failed"),
            Err(_) => tracing::warn!("span exporter flush timed out"),
        }
    }
}

/// The W3C `traceparent` of the current span, when spans are exported (otherwise there
/// is no trace to continue and this is `None`). Carried inside p2p messages so that one
/// push can be followed across nodes.
pub fn current_traceparent() -> Option<String> {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of a remote `traceparent` (from a peer), when it is a valid one
/// and spans are exported; otherwise leaves it a root.
pub fn set_remote_parent(span: &tracing::Span, traceparent: &str) {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let carrier: std::collections::HashMap<String, String> =
        [("traceparent".to_string(), traceparent.to_string())].into();
    let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        // Fails only without an OpenTelemetry layer, where there is nothing to join.
        let _ = span.set_parent(parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_case_insensitively_and_reject_others() {
        assert_eq!("INFO".parse::<LogLevel>(), Ok(LogLevel::Info));
        assert_eq!(" trace ".parse::<LogLevel>(), Ok(LogLevel::Trace));
        assert!("loud".parse::<LogLevel>().is_err());
        assert_eq!("Json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().is_err());
    }

    #[test]
    fn dependencies_never_log_below_info() {
        let directives = |level: LogLevel| {
            let text = level.filter().to_string();
            text.split(',').map(str::to_string).collect::<Vec<_>>()
        };
        let trace = directives(LogLevel::Trace);
        assert!(trace.contains(&"info".to_string()), "{trace:?}");
        assert!(trace.contains(&"guts_api=trace".to_string()), "{trace:?}");
        let warn = directives(LogLevel::Warn);
        assert!(warn.contains(&"warn".to_string()), "{warn:?}");
    }
}
