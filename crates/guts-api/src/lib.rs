//! The HTTP edge of Guts: the API listener (GitHub-compatible REST, admin API, probes)
//! and the metrics listener, their middleware, and the one `ApiError`.
//!
//! Architecture invariant: this is the only crate that knows HTTP. Below it, crates
//! speak in domain types; the node crate only binds listeners and hands them here.

mod archive_links;
mod backup_jobs;
mod browse;
mod caps;
mod check_reads;
pub mod error;
pub mod extract;
mod git_io;
mod git_views;
mod json;
pub mod links;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod pagination;
mod params;
pub mod router;
mod routes;
pub mod server;
mod service_errors;
pub mod state;
mod status_reads;
#[cfg(test)]
mod test_support;
mod threads;
pub use guts_ops::time;
mod views;
pub mod webhooks;

pub use error::{ApiError, FieldError};
pub use metrics::HttpMetrics;
pub use middleware::{RateLimiter, RateLimits, TrustedProxies};
pub use ops::ops_router;
pub use router::api_router;
pub use server::serve;
pub use state::{AppState, EdgeLimits, GitLimits, NodeInfo, PeerHandle, Services};
pub use webhooks::{WebhookMetrics, WebhookSettings};
