//! The REST API's rate limit: a token bucket per token (authenticated callers) or per
//! client IP (everyone else), GitHub's `X-RateLimit-*` headers on every `/api/v3`
//! answer, and 429 with GitHub's error JSON and `Retry-After` once a bucket is empty.
//!
//! Scope: `/api/v3` only. Health probes must answer a saturated node; the admin API is
//! already behind `GUTS_ADMIN_TOKEN`; git smart HTTP does not spend the REST `core`
//! limit, as on GitHub, but has a [`RateLimiter`] of its own with larger budgets,
//! applied by `git_edge` (a clone is a handful of requests).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::forwarded::Client;
use super::rate_buckets::{self, Key, Status};
use crate::error::ApiError;
use crate::extract::{Authed, resolve_caller};
use crate::links::API_PREFIX;
use crate::state::AppState;

/// `GET /api/v3/rate_limit` reports the limit without spending from it, as on GitHub.
pub(crate) const RATE_LIMIT_PATH: &str = "/api/v3/rate_limit";

/// The rate-limit middleware (between `json_errors` and the in-flight limit): resolves
/// the caller once (the `Authed` is left in the request's extensions for the
/// extractors), spends from its bucket, and stamps the headers on the answer.
pub(crate) async fn rate_limit(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if !(path == API_PREFIX || path.starts_with("/api/v3/")) {
        return next.run(req).await;
    }
    let spend = path != RATE_LIMIT_PATH;
    let (mut parts, body) = req.into_parts();
    // Bad or unreadable credentials count against the client's address, and the
    // handler answers them 401 itself.
    let caller = resolve_caller(&parts, &state).ok().flatten();
    let key = match &caller {
        Some(authed) => Key::Token {
            login: authed.user.login.clone(),
            id: authed.token.id,
        },
        None => Key::Ip(client_ip(&parts)),
    };
    let now = Instant::now();
    let outcome = if spend {
        state.rate_limiter.check(&key, now)
    } else {
        Ok(state.rate_limiter.peek(&key, now))
    };
    let status = match outcome {
        Ok(status) => status,
        Err(status) => return exceeded(&key, caller.as_ref(), status),
    };
    parts.extensions.insert(status);
    if let Some(authed) = caller {
        parts.extensions.insert(authed);
    }
    req = Request::from_parts(parts, body);
    let mut response = next.run(req).await;
    let status = if spend && response.status() == http::StatusCode::NOT_MODIFIED {
        // GitHub does not count a 304 against the limit.
        state.rate_limiter.refund(&key);
        state.rate_limiter.peek(&key, Instant::now())
    } else {
        status
    };
    response
        .headers_mut()
        .extend(rate_buckets::headers(&status));
    response
}

/// The client's address as [`forwarded::client`](super::forwarded::client) decided it:
/// the TCP peer, or what a trusted proxy forwarded for. Never a header from anyone else,
/// or a client could spend any other client's bucket, or pose as a fresh one each time.
pub(crate) fn client_ip(parts: &http::request::Parts) -> IpAddr {
    parts
        .extensions
        .get::<Client>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.ip)
}

/// GitHub's 429: its message, `Retry-After`, and the headers showing nothing remains.
fn exceeded(key: &Key, caller: Option<&Authed>, status: Status) -> Response {
    let who = match (key, caller) {
        (_, Some(authed)) => format!("user ID {}", authed.user.id),
        (Key::Ip(ip), None) => ip.to_string(),
        (Key::Token { login, .. }, None) => login.clone(),
    };
    tracing::info!(%who, limit = status.limit, "rate limit exceeded");
    let mut response = ApiError::rate_limited(
        format!(
            "API rate limit exceeded for {who}. (Authenticated requests get a higher rate limit.)"
        ),
        status.retry_after,
    )
    .into_response();
    response
        .headers_mut()
        .extend(rate_buckets::headers(&status));
    response
}
