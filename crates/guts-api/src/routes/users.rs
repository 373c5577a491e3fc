//! Users: `GET /user`, `GET /users/{username}`, and account creation by open
//! registration (`POST /users`, a Guts extension, off unless `GUTS_OPEN_REGISTRATION`).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_storage::{Scope, UserRecord};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, FieldError};
use crate::extract::{AuthUser, JsonBody};
use crate::links::Links;
use crate::openapi::schemas;
use crate::state::AppState;
use crate::views;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(by_login))
        .routes(routes!(register))
}

/// The authenticated user.
#[utoipa::path(get, path = "/api/v3/user", tag = "users",
    responses((status = 200, description = "The caller", body = schemas::User)))]
async fn me(AuthUser(authed): AuthUser, links: Links) -> Json<serde_json::Value> {
    Json(views::user(&links, &authed.user))
}

/// A user by login.
#[utoipa::path(get, path = "/api/v3/users/{username}", tag = "users",
    params(("username" = String, Path, description = "The account's login")),
    responses((status = 200, description = "The user", body = schemas::User)))]
async fn by_login(
    State(state): State<AppState>,
    links: Links,
    Path(login): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Organizations share the namespace and answer here too, as on GitHub.
    if let Some(org) = state.accounts.org(&login).map_err(ApiError::from)? {
        return Ok(Json(views::org_as_user(&links, &org)));
    }
    Ok(Json(views::user(&links, &existing_user(&state, &login)?)))
}

/// The account `login`, or GitHub's 404.
pub(crate) fn existing_user(state: &AppState, login: &str) -> Result<UserRecord, ApiError> {
    state
        .accounts
        .user(login)
        .map_err(ApiError::from)?
        .ok_or_else(ApiError::not_found)
}

#[derive(Debug, Deserialize, ToSchema)]
struct Registration {
    login: Option<String>,
}

/// Creates an account and its first token (scope `repo`); the token is shown once.
/// Open registration only (`GUTS_OPEN_REGISTRATION`), else 403.
#[utoipa::path(post, path = "/api/v3/users", tag = "users",
    request_body = Registration,
    responses((status = 201, description = "The new account with its `token`", body = schemas::User)))]
async fn register(
    State(state): State<AppState>,
    links: Links,
    JsonBody(body): JsonBody<Registration>,
) -> Result<Response, ApiError> {
    if !state.open_registration {
        return Err(ApiError::forbidden(
            "Registration is closed on this node: ask an administrator for an account",
        ));
    }
    let login = body.login.ok_or_else(|| missing("User", "login"))?;
    create_account(&state, &links, &login, false, vec![Scope::Repo]).await
}

/// Shared by open registration and the admin API: account plus first token.
pub(crate) async fn create_account(
    state: &AppState,
    links: &Links,
    login: &str,
    site_admin: bool,
    scopes: Vec<Scope>,
) -> Result<Response, ApiError> {
    let user = state
        .accounts
        .create_user(login, site_admin)
        .await
        .map_err(ApiError::from)?;
    let token = state
        .accounts
        .create_token(&user.login, "initial", scopes)
        .await
        .map_err(ApiError::from)?;
    tracing::info!(login = %user.login, site_admin, "account created");
    let mut body = views::user(links, &user);
    if let Some(map) = body.as_object_mut() {
        map.insert("token".to_string(), json!(token.token.expose()));
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub(crate) fn missing(resource: &'static str, field: &'static str) -> ApiError {
    ApiError::validation(FieldError {
        resource: resource.into(),
        field: field.into(),
        code: "missing_field".into(),
        message: None,
    })
}
