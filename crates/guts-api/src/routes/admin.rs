//! The admin API under `/admin`, guarded by `GUTS_ADMIN_TOKEN`: node information, the
//! runtime log level, accounts and their tokens.

use crate::json::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_ops::LogLevel;
use guts_storage::{Scope, TokenRecord, UserRecord};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, FieldError};
use crate::extract::{Admin, JsonBody};
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;
use crate::views::{self, User};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(info))
        .routes(routes!(get_log_level, set_log_level))
        .routes(routes!(list_users, create_user))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(set_suspended))
        .routes(routes!(set_password))
        .routes(routes!(list_orgs, create_org))
}

#[derive(Debug, Deserialize, ToSchema)]
struct NewOrg {
    login: Option<String>,
    /// The login of an existing user, who becomes the organization's first admin.
    admin: Option<String>,
}

/// Creates an organization with its first admin.
#[utoipa::path(post, path = "/admin/orgs", tag = "admin", request_body = NewOrg,
    security(("admin_token" = [])),
    responses((status = 201, description = "The organization", body = schemas::Organization)))]
async fn create_org(
    _: Admin,
    State(state): State<AppState>,
    links: Links,
    JsonBody(body): JsonBody<NewOrg>,
) -> Result<Response, ApiError> {
    let login = body
        .login
        .ok_or_else(|| ApiError::missing_field("Organization", "login"))?;
    let admin = body
        .admin
        .ok_or_else(|| ApiError::missing_field("Organization", "admin"))?;
    state.service.user(&admin)?;
    let org = state
        .accounts
        .create_org(&login, &admin)
        .await
        .map_err(ApiError::from)?;
    tracing::info!(org = %org.login, %admin, "organization created");
    Ok((
        StatusCode::CREATED,
        Json(views::org_json(&state, &links, &org)),
    )
        .into_response())
}

/// Every organization.
#[utoipa::path(get, path = "/admin/orgs", tag = "admin", params(PageParams),
    security(("admin_token" = [])),
    responses((status = 200, description = "One page of organizations", body = Vec<schemas::Organization>)))]
async fn list_orgs(
    _: Admin,
    State(state): State<AppState>,
    links: Links,
    page: Page,
) -> Result<Response, ApiError> {
    let orgs = state.accounts.orgs().map_err(ApiError::from)?;
    let (orgs, headers) = page.apply(orgs);
    let body: Vec<_> = orgs
        .iter()
        .map(|o| views::org_json(&state, &links, o))
        .collect();
    Ok((headers, Json(body)).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
struct NewUser {
    login: Option<String>,
    #[serde(default)]
    site_admin: bool,
    /// A password for signing in to the web interface (8 to 1024 characters).
    #[serde(default)]
    password: Option<String>,
}

/// Creates an account with a custodial key and a first token (scopes `repo`, plus
/// `admin` for site admins), returned once in `token`; with `password`, one the user
/// signs in to the web interface with.
#[utoipa::path(post, path = "/admin/users", tag = "admin", request_body = NewUser,
    security(("admin_token" = [])),
    responses((status = 201, description = "The new account with its `token`", body = schemas::User)))]
async fn create_user(
    _: Admin,
    State(state): State<AppState>,
    links: Links,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<Response, ApiError> {
    let login = body
        .login
        .ok_or_else(|| ApiError::missing_field("User", "login"))?;
    if let Some(password) = &body.password {
        guts_service::check_password(password)?;
    }
    let scopes = if body.site_admin {
        vec![Scope::Repo, Scope::Admin]
    } else {
        vec![Scope::Repo]
    };
    let (user, token) = state
        .service
        .create_account(&login, body.site_admin, scopes)
        .await?;
    if let Some(password) = &body.password {
        state.service.set_password(&user.login, password).await?;
    }
    Ok(views::new_account(&links, &user, &token))
}

/// Every account, with `suspended`.
#[utoipa::path(get, path = "/admin/users", tag = "admin", params(PageParams),
    security(("admin_token" = [])),
    responses((status = 200, description = "One page of accounts", body = Vec<schemas::User>)))]
async fn list_users(
    _: Admin,
    State(state): State<AppState>,
    links: Links,
    page: Page,
) -> Result<Response, ApiError> {
    let users = state.accounts.users().map_err(ApiError::from)?;
    let (users, headers) = page.apply(users);
    let body: Vec<_> = users.iter().map(|u| AdminUser::new(&links, u)).collect();
    Ok((headers, Json(body)).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
struct NewToken {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

/// A token as the admin API lists it: never its text.
#[derive(Debug, Serialize)]
struct Token<'a> {
    id: u64,
    name: &'a str,
    scopes: &'a [Scope],
    created_at: String,
    revoked: bool,
}

impl<'a> Token<'a> {
    fn new(t: &'a TokenRecord) -> Self {
        Token {
            id: t.id,
            name: &t.name,
            scopes: &t.scopes,
            created_at: crate::time::iso8601(t.created_at),
            revoked: t.revoked,
        }
    }
}

/// A token just made: the only answer that carries its text.
#[derive(Debug, Serialize)]
struct CreatedToken<'a> {
    #[serde(flatten)]
    record: Token<'a>,
    token: &'a str,
}

/// A new token for an account (scopes `repo` and/or `admin`, default `repo`), shown once.
#[utoipa::path(post, path = "/admin/users/{login}/tokens", tag = "admin",
    params(("login" = String, Path, description = "The account's login")),
    request_body = NewToken, security(("admin_token" = [])),
    responses((status = 201, description = "The token, with its text", body = schemas::Token)))]
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
        .map_err(ApiError::from)?;
    let body = CreatedToken {
        record: Token::new(&new.record),
        token: new.token.expose(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// An account's tokens (never their text).
#[utoipa::path(get, path = "/admin/users/{login}/tokens", tag = "admin",
    params(("login" = String, Path, description = "The account's login")),
    security(("admin_token" = [])),
    responses((status = 200, description = "The tokens", body = Vec<schemas::Token>)))]
async fn list_tokens(
    _: Admin,
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Response, ApiError> {
    state.service.user(&login)?;
    let tokens = state.accounts.tokens(&login).map_err(ApiError::from)?;
    Ok(Json(tokens.iter().map(Token::new).collect::<Vec<_>>()).into_response())
}

#[utoipa::path(delete, path = "/admin/users/{login}/tokens/{id}", tag = "admin",
    params(
        ("login" = String, Path, description = "The account's login"),
        ("id" = u64, Path, description = "The token's id"),
    ),
    security(("admin_token" = [])),
    responses((status = 204, description = "Revoked")))]
async fn revoke_token(
    _: Admin,
    State(state): State<AppState>,
    Path((login, id)): Path<(String, u64)>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts
        .revoke_token(&login, id)
        .await
        .map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
struct Suspension {
    suspended: bool,
}

/// Suspends or reinstates an account (a suspended account's tokens stop working).
#[utoipa::path(put, path = "/admin/users/{login}/suspended", tag = "admin",
    params(("login" = String, Path, description = "The account's login")),
    request_body = Suspension, security(("admin_token" = [])),
    responses((status = 200, description = "The account", body = schemas::User)))]
async fn set_suspended(
    _: Admin,
    State(state): State<AppState>,
    links: Links,
    Path(login): Path<String>,
    JsonBody(body): JsonBody<Suspension>,
) -> Result<Json<AdminUser>, ApiError> {
    let user = state
        .accounts
        .set_suspended(&login, body.suspended)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(AdminUser::new(&links, &user)))
}

#[derive(Debug, Deserialize, ToSchema)]
struct NewPassword {
    /// 8 to 1024 characters.
    password: Option<String>,
}

/// Sets an account's web password (a forgotten one, say). Sessions already open stay
/// open: revoke them through the account's tokens.
#[utoipa::path(put, path = "/admin/users/{login}/password", tag = "admin",
    params(("login" = String, Path, description = "The account's login")),
    request_body = NewPassword, security(("admin_token" = [])),
    responses((status = 204, description = "Set")))]
async fn set_password(
    _: Admin,
    State(state): State<AppState>,
    Path(login): Path<String>,
    JsonBody(body): JsonBody<NewPassword>,
) -> Result<StatusCode, ApiError> {
    let password = body
        .password
        .ok_or_else(|| ApiError::missing_field("User", "password"))?;
    state.service.set_password(&login, &password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user object plus what only administrators see.
#[derive(Debug, Serialize)]
struct AdminUser {
    #[serde(flatten)]
    user: User,
    /// Hex of the account's ed25519 key: who signs as this user.
    public_key: String,
    suspended: bool,
}

impl AdminUser {
    fn new(links: &Links, user: &UserRecord) -> Self {
        AdminUser {
            user: User::new(links, user),
            public_key: user.public_key.clone(),
            suspended: user.suspended,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct Info {
    version: &'static str,
    peer_id: String,
    uptime_seconds: u64,
    /// Bytes in the data directory (database, repositories, keys).
    data_size_bytes: u64,
    users: u64,
    organizations: u64,
    repositories: u64,
}

/// What this node is and how it is doing.
#[utoipa::path(get, path = "/admin/info", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "Node information", body = Info)))]
async fn info(_: Admin, State(state): State<AppState>) -> Result<Json<Info>, ApiError> {
    let dir = state.node.data_dir.clone();
    let data_size_bytes =
        tokio::task::spawn_blocking(move || guts_storage::metrics::dir_size(&dir))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "data directory walk failed");
                ApiError::internal()
            })?;
    Ok(Json(Info {
        version: state.node.version,
        peer_id: state.node.peer_id.clone(),
        uptime_seconds: state.health.uptime().as_secs(),
        data_size_bytes,
        users: state.accounts.count().map_err(ApiError::from)?,
        organizations: state.accounts.orgs().map_err(ApiError::from)?.len() as u64,
        repositories: state.repos.list().len() as u64,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
struct LogLevelBody {
    level: String,
}

/// The current log level.
#[utoipa::path(get, path = "/admin/log-level", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "The level", body = LogLevelBody)))]
async fn get_log_level(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<LogLevelBody>, ApiError> {
    let telemetry = state.telemetry.as_ref().ok_or_else(ApiError::not_found)?;
    Ok(Json(LogLevelBody {
        level: telemetry.level().to_string(),
    }))
}

/// Changes the log level without a restart.
#[utoipa::path(put, path = "/admin/log-level", tag = "admin", request_body = LogLevelBody,
    security(("admin_token" = [])),
    responses((status = 200, description = "The new level", body = LogLevelBody)))]
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
