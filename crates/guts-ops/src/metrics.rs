//! The Prometheus registry every subsystem registers its typed metric handles into,
//! and its text encoding for the scrape endpoint.
//!
//! There is deliberately no global registry: the composition root creates one
//! [`MetricsRegistry`] per node, each subsystem builds its own `Metrics` struct of
//! handles, registers it once, and keeps an `Arc` of it. Several nodes can therefore
//! live in one test process without their counters mixing.

use prometheus_client::registry::Registry;

/// Every metric name starts with this prefix (`guts_http_requests_total`, …).
pub const PREFIX: &str = "guts";

/// Content type of [`MetricsRegistry::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Collects registrations while the node is being composed; frozen by
/// [`MetricsRegistry::freeze`] into a read-only [`Encoder`] for the scrape endpoint.
#[derive(Debug)]
pub struct MetricsRegistry {
    inner: Registry,
}

impl Default for MetricsRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsRegistry {
    pub fn new() -> Self {
        Self {
            inner: Registry::with_prefix(PREFIX),
        }
    }

    /// The underlying registry, for a subsystem's `register` function.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.inner
    }

    /// Ends registration: what is registered now is what every scrape will show.
    pub fn freeze(self) -> Encoder {
        Encoder { inner: self.inner }
    }
}

/// The read-only registry behind the scrape endpoint.
#[derive(Debug)]
pub struct Encoder {
    inner: Registry,
}

impl Encoder {
    /// The whole registry in OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.inner)?;
        Ok(out)
    }
}
