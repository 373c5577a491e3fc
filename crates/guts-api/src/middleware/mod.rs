//! Middleware of the API listener, applied in [`crate::router`] in this order
//! (outermost first): forwarded (who the client is), observe, json_errors, rate_limit,
//! conditional (ETags and 304s), limit_in_flight, timeout, body limit. Git smart HTTP has its own edge instead
//! (`git_edge`: rate limit, per-IP concurrency, deadline), inside observe.

pub(crate) mod conditional;
pub mod forwarded;
pub(crate) mod git_edge;
pub(crate) mod ip_slots;
pub(crate) mod limits;
pub mod observe;
pub mod proxies;
pub mod rate_buckets;
pub mod rate_limit;

pub use forwarded::Client;
pub(crate) use limits::{json_errors, limit_in_flight};
pub(crate) use observe::observe;
pub use observe::{REQUEST_ID, RequestId};
pub use proxies::TrustedProxies;
pub use rate_buckets::{RateLimiter, RateLimits};
