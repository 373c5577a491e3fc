//! Where the resource routers are merged and the edge middleware is applied: the one
//! place that decides what every request goes through.

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use http::StatusCode;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::ApiError;
use crate::middleware::{json_errors, limit_in_flight, observe};
use crate::routes;
use crate::state::AppState;

/// The router of the API listener.
///
/// Health probes sit outside the in-flight limit and the timeout, so a saturated node
/// still answers its liveness probe instead of being restarted for being busy.
pub fn api_router(state: AppState) -> Router {
    let limits = state.limits.clone();
    let guarded = Router::new()
        .merge(routes::admin::router())
        .merge(routes::users::router())
        .merge(routes::repos::router())
        .merge(routes::branches::router())
        .merge(routes::collaborators::router())
        .merge(routes::issues::router())
        .merge(routes::comments::router())
        .merge(routes::labels::router())
        .merge(routes::pulls::router())
        .merge(routes::reviews::router())
        .merge(routes::git_data::router())
        .merge(routes::commits::router())
        .merge(routes::contents::router())
        .fallback(|| async { ApiError::not_found().into_response() })
        .layer(
            ServiceBuilder::new()
                .layer(from_fn(json_errors))
                .layer(from_fn_with_state(state.clone(), limit_in_flight))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    limits.request_timeout,
                ))
                .layer(RequestBodyLimitLayer::new(limits.max_body_bytes)),
        );
    // Git requests stream packs for as long as they need: no whole-request deadline or
    // body cap (they have idle timeouts and their own limits), and plain-text errors
    // that git shows, so they stay outside the JSON edge.
    guarded
        .merge(routes::git::router())
        .merge(routes::health::router())
        .layer(from_fn_with_state(state.clone(), observe))
        .with_state(state)
}
