//! Typed HTTP metrics: the `guts_http_*` families, labelled only by bounded values
//! (method enum, route template, status code).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// HTTP method as a label; anything unusual folds into `OTHER` so the label stays bounded.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms)]
pub enum Method {
    GET,
    HEAD,
    POST,
    PUT,
    PATCH,
    DELETE,
    OPTIONS,
    OTHER,
}

impl From<&http::Method> for Method {
    fn from(m: &http::Method) -> Self {
        match *m {
            http::Method::GET => Method::GET,
            http::Method::HEAD => Method::HEAD,
            http::Method::POST => Method::POST,
            http::Method::PUT => Method::PUT,
            http::Method::PATCH => Method::PATCH,
            http::Method::DELETE => Method::DELETE,
            http::Method::OPTIONS => Method::OPTIONS,
            _ => Method::OTHER,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: Method,
    /// The route template (`/api/v3/repos/{owner}/{repo}`), or `unmatched`: never a raw path.
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: Method,
    pub route: String,
}

/// Handles for every HTTP metric; one per node, shared as `Arc<HttpMetrics>`.
#[derive(Debug)]
pub struct HttpMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<RouteLabels, Histogram>,
    pub request_size: Family<RouteLabels, Histogram>,
    pub response_size: Family<RouteLabels, Histogram>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~33 s in 17 doubling steps.
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

fn size_histogram() -> Histogram {
    // 64 B .. 1 GiB in factors of 4.
    Histogram::new(exponential_buckets(64.0, 4.0, 13))
}

impl HttpMetrics {
    /// Creates the handles and registers them under `guts_http_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            request_size: Family::new_with_constructor(size_histogram),
            response_size: Family::new_with_constructor(size_histogram),
        };
        let http = registry.sub_registry_with_prefix("http");
        http.register(
            "requests",
            "HTTP requests answered, by method, route template and status",
            this.requests.clone(),
        );
        http.register_with_unit(
            "request_duration",
            "Time from request received to response headers sent",
            prometheus_client::registry::Unit::Seconds,
            this.duration.clone(),
        );
        http.register_with_unit(
            "request_size",
            "Request body sizes as declared by Content-Length",
            prometheus_client::registry::Unit::Bytes,
            this.request_size.clone(),
        );
        http.register_with_unit(
            "response_size",
            "Response body sizes (known length, or bytes sent for streamed bodies)",
            prometheus_client::registry::Unit::Bytes,
            this.response_size.clone(),
        );
        this
    }
}
