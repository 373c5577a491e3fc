//! `/health`, `/health/live`, `/health/ready`, `/health/startup`: served on the API
//! listener and on the metrics listener, which outlives the API listener during a drain
//! so that the 503 of a draining node stays observable.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use guts_ops::{Health, Probe};
use http::StatusCode;

pub(crate) fn router<S>() -> Router<S>
where
    Arc<Health>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/health", get(|s: State<Arc<Health>>| respond(s, None)))
        .route(
            "/health/live",
            get(|s: State<Arc<Health>>| respond(s, Some(Probe::Live))),
        )
        .route(
            "/health/ready",
            get(|s: State<Arc<Health>>| respond(s, Some(Probe::Ready))),
        )
        .route(
            "/health/startup",
            get(|s: State<Arc<Health>>| respond(s, Some(Probe::Startup))),
        )
}

async fn respond(State(health): State<Arc<Health>>, probe: Option<Probe>) -> Response {
    let report = health.report(probe).await;
    let status = if report.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}
