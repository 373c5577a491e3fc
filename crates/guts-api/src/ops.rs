//! The metrics listener (`GUTS_METRICS_ADDR`): `/metrics` for Prometheus and the health
//! probes. It stays up until the very end of a shutdown, after the API listener stopped
//! accepting, so the drain can be watched.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use guts_ops::Health;
use guts_ops::metrics::{CONTENT_TYPE, Encoder};
use http::{StatusCode, header};

use crate::error::ApiError;
use crate::routes;

#[derive(Debug, Clone)]
struct OpsState {
    health: Arc<Health>,
    encoder: Arc<Encoder>,
}

impl FromRef<OpsState> for Arc<Health> {
    fn from_ref(state: &OpsState) -> Self {
        state.health.clone()
    }
}

pub fn ops_router(health: Arc<Health>, encoder: Arc<Encoder>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .merge(routes::health::router())
        .fallback(|| async { ApiError::not_found().into_response() })
        .with_state(OpsState { health, encoder })
}

async fn metrics(State(state): State<OpsState>) -> Response {
    match state.encoder.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics encoding failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response()
        }
    }
}
