//! The token buckets (guts-ops `rate`) as HTTP shows them: GitHub's `X-RateLimit-*`
//! headers. The buckets themselves live in guts-ops because git over SSH spends from
//! the same git limiter as git over HTTP.

use http::{HeaderMap, HeaderName, HeaderValue};

pub(crate) use guts_ops::rate::{Key, Status};
pub use guts_ops::rate::{RateLimiter, RateLimits};

/// `X-RateLimit-Limit`, `-Remaining`, `-Reset`, `-Used`, `-Resource`.
pub(crate) fn headers(status: &Status) -> HeaderMap {
    // Names as constants: every response carries these, and a `&str` name is parsed
    // and validated again on each insert.
    const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
    const USED: HeaderName = HeaderName::from_static("x-ratelimit-used");
    const RESOURCE: HeaderName = HeaderName::from_static("x-ratelimit-resource");
    let mut h = HeaderMap::with_capacity(5);
    h.insert(LIMIT, HeaderValue::from(status.limit));
    h.insert(REMAINING, HeaderValue::from(status.remaining));
    h.insert(RESET, HeaderValue::from(status.reset_epoch()));
    h.insert(USED, HeaderValue::from(status.used()));
    h.insert(RESOURCE, HeaderValue::from_static("core"));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_githubs() {
        let status = Status {
            limit: 60,
            remaining: 59,
            reset_in: 60,
            retry_after: 0,
        };
        let h = headers(&status);
        assert_eq!(h["x-ratelimit-limit"], "60");
        assert_eq!(h["x-ratelimit-remaining"], "59");
        assert_eq!(h["x-ratelimit-used"], "1");
        assert_eq!(h["x-ratelimit-resource"], "core");
        let reset: u64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
        assert!(reset > 1_700_000_000);
    }
}
