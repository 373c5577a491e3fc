//! Edge protections that answer before a handler runs: the in-flight request limit
//! (503 + Retry-After) and the normalisation of every error body into GitHub's JSON.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header;

use crate::error::ApiError;
use crate::state::AppState;

/// How long a client turned away by the in-flight limit is told to wait.
const RETRY_AFTER_SECS: u64 = 1;

/// Holds a permit for the request's duration. Saturation is answered at once with 503
/// rather than queued: a queue would only turn overload into timeouts.
pub(crate) async fn limit_in_flight(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    match state.in_flight.clone().try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => ApiError::overloaded(RETRY_AFTER_SECS).into_response(),
    }
}

/// Rewrites error responses that are not JSON yet (tower-http's 413 and 408, axum's
/// 405, rejections) into GitHub's error shape, keeping their status and the headers a
/// client acts on.
pub(crate) async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (parts, _) = response.into_parts();
    let message = parts.status.canonical_reason().unwrap_or("Error");
    let mut rewritten = ApiError::new(parts.status, message).into_response();
    for name in [header::RETRY_AFTER, header::WWW_AUTHENTICATE, header::ALLOW] {
        if let Some(value) = parts.headers.get(&name) {
            rewritten.headers_mut().insert(name, value.clone());
        }
    }
    rewritten
}
