//! Middleware of the API listener, applied in [`crate::router`] in this order
//! (outermost first): forwarded (who the client is), observe, json_errors, rate_limit,
//! limit_in_flight, timeout, body limit. Git smart HTTP has its own edge instead
//! (`git_edge`: rate limit, per-IP concurrency, deadline), inside observe.

pub mod forwarded;
pub(crate) mod git_edge;
pub(crate) mod limits;
pub mod observe;
pub mod rate_limit;

pub use forwarded::{Client, TrustedProxies};
pub(crate) use limits::{json_errors, limit_in_flight};
pub(crate) use observe::observe;
pub use observe::{REQUEST_ID, RequestId};
pub use rate_limit::{RateLimiter, RateLimits};
