//! The outermost layer of every API request: request id, trace context, the request
//! span, HTTP metrics and the one completion log line.
//!
//! Headers are never logged: the span records only method, route template, request id
//! and trace id, which is how secrets in `Authorization` stay out of the logs.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Frame, SizeHint};
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use prometheus_client::metrics::histogram::Histogram;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::metrics::{RequestLabels, RouteLabels};
use crate::state::AppState;

pub const REQUEST_ID: &str = "x-request-id";

/// The request id, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// An incoming id is kept only if it is short and plain, so a hostile client cannot
/// push arbitrary bytes into our logs through it.
fn acceptable_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| text.to_string())
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// From the thread's userspace generator: a request costs no `getrandom` syscall.
fn random_trace_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A fresh version-4 request id, from the same generator as [`random_trace_id`].
fn random_request_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// The trace id for the logs: the exported span's when spans are exported (it already
/// inherits an incoming `traceparent`), else the incoming one, else a fresh one.
fn trace_id(span: &tracing::Span, parent: &opentelemetry::Context) -> String {
    let own = span.context().span().span_context().clone();
    if own.is_valid() {
        return own.trace_id().to_string();
    }
    let remote = parent.span().span_context().clone();
    if remote.is_valid() {
        return remote.trace_id().to_string();
    }
    random_trace_id()
}

pub(crate) async fn observe(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = crate::metrics::Method::from(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(acceptable_request_id)
        .unwrap_or_else(random_request_id);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let request_size = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());

    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(req.headers()));
    let span = tracing::info_span!(
        "request",
        method = ?method,
        route = %route,
        request_id = %request_id,
        trace_id = Empty,
        user = Empty,
        repo = Empty,
    );
    // Fails only when no OpenTelemetry layer is installed, where there is no parent to set.
    let _ = span.set_parent(parent.clone());
    span.record("trace_id", trace_id(&span, &parent));

    let mut response = tracing::Instrument::instrument(next.run(req), span.clone()).await;

    let status = response.status();
    let elapsed = start.elapsed();
    let route_labels = RouteLabels {
        method,
        route: route.clone(),
    };
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status: status.as_u16(),
        })
        .inc();
    state
        .metrics
        .duration
        .get_or_create(&route_labels)
        .observe(elapsed.as_secs_f64());
    if let Some(size) = request_size {
        state
            .metrics
            .request_size
            .get_or_create(&route_labels)
            .observe(size as f64);
    }

    span.in_scope(|| {
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        let status = status.as_u16();
        if route.starts_with("/health") {
            tracing::debug!(status, duration_ms, "request");
        } else if status >= 500 {
            tracing::warn!(status, duration_ms, "request");
        } else {
            tracing::info!(status, duration_ms, "request");
        }
    });

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let histogram = state
        .metrics
        .response_size
        .get_or_create(&route_labels)
        .clone();
    response.map(|body| Body::new(CountingBody::new(body, histogram)))
}

/// Counts the bytes of a response body as they are sent and records the total once,
/// at the end or when the body is dropped (client went away): streamed git packs have
/// no length up front.
struct CountingBody {
    inner: Body,
    sent: u64,
    histogram: Option<Histogram>,
}

impl CountingBody {
    fn new(inner: Body, histogram: Histogram) -> Self {
        Self {
            inner,
            sent: 0,
            histogram: Some(histogram),
        }
    }

    fn record(&mut self) {
        if let Some(h) = self.histogram.take() {
            h.observe(self.sent as f64);
        }
    }
}

impl Drop for CountingBody {
    fn drop(&mut self) {
        self.record();
    }
}

impl http_body::Body for CountingBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
            }
            Poll::Ready(None) => self.record(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_plain() {
        let ok = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(acceptable_request_id(&ok).as_deref(), Some("abc-123_x.y:z"));
        for bad in ["", "has space", "quote\"", "new\\nline"] {
            let value = HeaderValue::from_str(bad).unwrap();
            assert_eq!(acceptable_request_id(&value), None, "{bad:?}");
        }
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        assert_eq!(acceptable_request_id(&long), None);
    }

    #[test]
    fn incoming_traceparent_gives_the_trace_id() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        let id = trace_id(&tracing::Span::none(), &parent);
        assert_eq!(id, "4bf92f3577b34da6a3ce929d0e0e4736");
        let fresh = trace_id(&tracing::Span::none(), &opentelemetry::Context::new());
        assert_eq!(fresh.len(), 32);
        assert_ne!(fresh, id);
    }
}
