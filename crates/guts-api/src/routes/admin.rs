//! The admin API under `/admin`, guarded by `GUTS_ADMIN_TOKEN`: node information, the
//! runtime log level, accounts and their tokens.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use guts_ops::LogLevel;
use guts_storage::{Scope, TokenRecord, UserRecord};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{ApiError, FieldError};
use crate::extract::{Admin, JsonBody};
use crate::links::Links;
use crate::pagination::Page;
use crate::routes::users::{account_error, create_account, existing_user, missing};
use crate::state::AppState;
use crate::views;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/info", get(info))
        .route("/admin/log-level", get(get_log_level).put(set_log_level))
        .route("/admin/users", get(list_users).post(create_user))
        .route(
            "/admin/users/{login}/tokens",
            get(list_tokens).post(create_token),
        )
        .route("/admin/users/{login}/tokens/{id}", delete(revoke_token))
        .route("/admin/users/{login}/suspended", put(set_suspended))
}

#[derive(Debug, Deserialize)]
struct NewUser {
    login: Option<String>,
    #[serde(default)]
    site_admin: bool,
}

/// Creates an account with a custodial key and a first token (scopes `repo`, plus
/// `admin` for site admins), returned once in `token`.
async fn create_user(
    _: Admin,
    State(state): State<AppState>,
    links: Links,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<Response, ApiError> {
    let login = body.login.ok_or_else(|| missing("User", "login"))?;
    let scopes = if body.site_admin {
        vec![Scope::Repo, Scope::Admin]
    } else {
        vec![Scope::Repo]
    };
    create_account(&state, &links, &login, body.site_admin, scopes).await
}

async fn list_users(
    _: Admin,
    State(state): State<AppState>,
    links: Links,
    page: Page,
) -> Result<Response, ApiError> {
    let users = state.accounts.users().map_err(account_error)?;
    let (users, headers) = page.apply(users);
    let body: Vec<_> = users.iter().map(|u| admin_user_json(&links, u)).collect();
    Ok((headers, Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
struct NewToken {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

fn token_json(t: &TokenRecord) -> serde_json::Value {
    json!({
        "id": t.id,
        "name": t.name,
        "scopes": t.scopes,
        "created_at": crate::time::iso8601(t.created_at),
        "revoked": t.revoked,
    })
}

async fn create_token(
    _: Admin,
    State(state): State<AppState>,
    Path(login): Path<String>,
    JsonBody(body): JsonBody<NewToken>,
) -> Result<Response, ApiError> {
    let scopes = body
        .scopes
        .unwrap_or_else(|| vec!["repo".to_string()])
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| {
            ApiError::validation(FieldError {
                resource: "Token".into(),
                field: "scopes".into(),
                code: "invalid".into(),
                message: Some(message),
            })
        })?;
    let name = body.name.unwrap_or_else(|| "token".to_string());
    let new = state
        .accounts
        .create_token(&login, &name, scopes)
        .await
        .map_err(account_error)?;
    let mut body = token_json(&new.record);
    if let Some(map) = body.as_object_mut() {
        map.insert("token".to_string(), json!(new.token.expose()));
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list_tokens(
    _: Admin,
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Response, ApiError> {
    existing_user(&state, &login)?;
    let tokens = state.accounts.tokens(&login).map_err(account_error)?;
    Ok(Json(tokens.iter().map(token_json).collect::<Vec<_>>()).into_response())
}

async fn revoke_token(
    _: Admin,
    State(state): State<AppState>,
    Path((login, id)): Path<(String, u64)>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts
        .revoke_token(&login, id)
        .await
        .map_err(account_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct Suspension {
    suspended: bool,
}

async fn set_suspended(
    _: Admin,
    State(state): State<AppState>,
    links: Links,
    Path(login): Path<String>,
    JsonBody(body): JsonBody<Suspension>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user = state
        .accounts
        .set_suspended(&login, body.suspended)
        .await
        .map_err(account_error)?;
    Ok(Json(admin_user_json(&links, &user)))
}

/// The user object plus what only administrators see.
fn admin_user_json(links: &Links, user: &UserRecord) -> serde_json::Value {
    let mut v = views::user(links, user);
    if let Some(map) = v.as_object_mut() {
        map.insert("suspended".to_string(), json!(user.suspended));
    }
    v
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
