//! Users: `GET /user`, `GET /users/{username}`, and account creation by open
//! registration (`POST /users`, a Guts extension, off unless `GUTS_OPEN_REGISTRATION`).

use crate::json::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_storage::Scope;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody};
use crate::links::Links;
use crate::openapi::schemas;
use crate::state::AppState;
use crate::views::{self, OrgAsUser, User};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(by_login))
        .routes(routes!(register))
}

/// The authenticated user.
#[utoipa::path(get, path = "/api/v3/user", tag = "users",
    responses((status = 200, description = "The caller", body = schemas::User)))]
async fn me(AuthUser(authed): AuthUser, links: Links) -> Json<User> {
    Json(User::new(&links, &authed.user))
}

/// A user by login.
#[utoipa::path(get, path = "/api/v3/users/{username}", tag = "users",
    params(("username" = String, Path, description = "The account's login")),
    responses((status = 200, description = "The user", body = schemas::User)))]
async fn by_login(
    State(state): State<AppState>,
    links: Links,
    Path(login): Path<String>,
) -> Result<Response, ApiError> {
    // Organizations share the namespace and answer here too, as on GitHub.
    if let Some(org) = state.accounts.org(&login).map_err(ApiError::from)? {
        return Ok(Json(OrgAsUser::new(&links, &org)).into_response());
    }
    Ok(Json(User::new(&links, &state.service.user(&login)?)).into_response())
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
    let login = body
        .login
        .ok_or_else(|| ApiError::missing_field("User", "login"))?;
    let (user, token) = state
        .service
        .create_account(&login, false, vec![Scope::Repo])
        .await?;
    Ok(views::new_account(&links, &user, &token))
}
