//! The admin API under `/admin`, guarded by `GUTS_ADMIN_TOKEN`: node information and the
//! runtime log level.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use guts_ops::LogLevel;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, FieldError};
use crate::extract::{Admin, JsonBody};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/info", get(info))
        .route("/admin/log-level", get(get_log_level).put(set_log_level))
}

#[derive(Debug, Serialize)]
struct Info {
    version: &'static str,
    peer_id: String,
    uptime_seconds: u64,
}

async fn info(_: Admin, State(state): State<AppState>) -> Json<Info> {
    Json(Info {
        version: state.node.version,
        peer_id: state.node.peer_id.clone(),
        uptime_seconds: state.health.uptime().as_secs(),
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct LogLevelBody {
    level: String,
}

async fn get_log_level(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<LogLevelBody>, ApiError> {
    let telemetry = state.telemetry.as_ref().ok_or_else(ApiError::not_found)?;
    Ok(Json(LogLevelBody {
        level: telemetry.level().to_string(),
    }))
}

async fn set_log_level(
    _: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<LogLevelBody>,
) -> Result<Json<LogLevelBody>, ApiError> {
    let telemetry = state.telemetry.as_ref().ok_or_else(ApiError::not_found)?;
    let level: LogLevel =
        body.level
            .parse()
            .map_err(|e: guts_ops::telemetry::UnknownVariant| {
                ApiError::validation(FieldError {
                    resource: "LogLevel".into(),
                    field: "level".into(),
                    code: "invalid".into(),
                    message: Some(e.to_string()),
                })
            })?;
    telemetry.set_level(level).map_err(|e| {
        tracing::error!(error = %e, "log level change failed");
        ApiError::internal()
    })?;
    tracing::info!(level = %level, "log level changed");
    Ok(Json(LogLevelBody {
        level: level.to_string(),
    }))
}
