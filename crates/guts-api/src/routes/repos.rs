//! Repositories: create (`POST /user/repos`), get, delete, and the lists
//! `GET /user/repos` and `GET /users/{username}/repos`. Every change is a signed
//! operation by the acting user; the fold, not this module, decides permissions.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use guts_core::{Payload, Rejection, Role};
use guts_storage::{RepoError, RepoView, Scope};
use http::StatusCode;
use serde::Deserialize;

use crate::error::{ApiError, FieldError};
use crate::extract::{AuthUser, Authed, JsonBody, MaybeUser};
use crate::links::Links;
use crate::pagination::Page;
use crate::routes::users::{account_error, existing_user, missing};
use crate::state::AppState;
use crate::views;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v3/user/repos", get(list_mine).post(create))
        .route("/api/v3/users/{username}/repos", get(list_for_user))
        .route(
            "/api/v3/repos/{owner}/{repo}",
            get(get_repo).delete(delete_repo),
        )
}

/// The caller's role in a repository; site admins read everything.
fn role_of(view: &RepoView, caller: Option<&Authed>) -> Option<Role> {
    let authed = caller?;
    let key = authed.user.public_key().ok()?;
    view.state.role(&key)
}

/// Private repositories are invisible (404, as on GitHub) to whoever has no role.
fn visible(view: &RepoView, caller: Option<&Authed>) -> bool {
    let private = view.state.meta.as_ref().is_none_or(|m| m.private);
    !private || role_of(view, caller).is_some() || caller.is_some_and(|a| a.user.site_admin)
}

pub(crate) fn render(
    state: &AppState,
    links: &Links,
    view: &RepoView,
    caller: Option<&Authed>,
) -> serde_json::Value {
    let Some(meta) = &view.state.meta else {
        return serde_json::Value::Null;
    };
    let account = state.accounts.user(&meta.owner).ok().flatten();
    let owner = views::owner(links, &meta.owner, account.as_ref(), &meta.created_by);
    views::repo(links, view, owner, caller.map(|c| role_of(view, Some(c))))
}

pub(crate) fn find_visible(
    state: &AppState,
    owner: &str,
    name: &str,
    caller: Option<&Authed>,
) -> Result<Arc<RepoView>, ApiError> {
    let name = name.strip_suffix(".git").unwrap_or(name);
    state
        .repos
        .find(owner, name)
        .filter(|v| visible(v, caller))
        .ok_or_else(ApiError::not_found)
}

#[derive(Debug, Deserialize)]
struct CreateRepo {
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    private: Option<bool>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    default_branch: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    JsonBody(body): JsonBody<CreateRepo>,
) -> Result<Response, ApiError> {
    authed.require(Scope::Repo)?;
    let name = body.name.ok_or_else(|| missing("Repository", "name"))?;
    let private = body.private.unwrap_or(false) || body.visibility.as_deref() == Some("private");
    let description = body.description.unwrap_or_default();
    if description.len() > 4096 {
        return Err(invalid(
            "description",
            "is too long (maximum is 4096 characters)",
        ));
    }
    let branch = body.default_branch.unwrap_or_else(|| "main".to_string());
    let key = state
        .accounts
        .signing_key(&authed.user)
        .map_err(account_error)?;
    tracing::Span::current().record("repo", format!("{}/{}", authed.user.login, name));
    let view = state
        .repos
        .create(
            &key,
            &authed.user.login,
            &name,
            &description,
            private,
            &branch,
        )
        .await
        .map_err(|e| match e {
            RepoError::NameTaken => ApiError::validation(FieldError {
                resource: "Repository".into(),
                field: "name".into(),
                code: "custom".into(),
                message: Some("name already exists on this account".to_string()),
            })
            .with_message("Repository creation failed."),
            other => repo_error(other),
        })?;
    let body = render(&state, &links, &view, Some(&authed));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn invalid(field: &'static str, message: &str) -> ApiError {
    ApiError::validation(FieldError {
        resource: "Repository".into(),
        field: field.into(),
        code: "invalid".into(),
        message: Some(message.to_string()),
    })
}

/// Signs `payload` as the caller and appends it to the repository's log. The token
/// must carry the `repo` scope; the fold decides whether the caller may do it.
pub(crate) async fn append_as(
    state: &AppState,
    authed: &Authed,
    view: &RepoView,
    payload: Payload,
) -> Result<Arc<RepoView>, ApiError> {
    authed.require(Scope::Repo)?;
    let key = state
        .accounts
        .signing_key(&authed.user)
        .map_err(account_error)?;
    state
        .repos
        .append(view.id, &key, payload)
        .await
        .map_err(repo_error)
}

pub(crate) fn repo_error(e: RepoError) -> ApiError {
    match e {
        RepoError::InvalidName(reason) => invalid("name", &reason.to_string()),
        RepoError::InvalidBranch(reason) => invalid("default_branch", &reason.to_string()),
        RepoError::NameTaken => {
            ApiError::new(StatusCode::CONFLICT, "name already exists on this account")
        }
        RepoError::NotFound => ApiError::not_found(),
        RepoError::Moved(what) => ApiError::new(StatusCode::CONFLICT, what),
        RepoError::Rejected(Rejection::NotPermitted { .. }) => {
            ApiError::forbidden("Must have admin rights to Repository.")
        }
        RepoError::Rejected(other) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, other.to_string())
        }
        e @ (RepoError::Encode(_) | RepoError::Store(_)) => {
            tracing::error!(error = %e, "repository storage failed");
            ApiError::internal()
        }
    }
}

async fn get_repo(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    tracing::Span::current().record("repo", format!("{owner}/{name}"));
    let view = find_visible(&state, &owner, &name, caller.as_ref())?;
    Ok(Json(render(&state, &links, &view, caller.as_ref())))
}

async fn delete_repo(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    Path((owner, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    tracing::Span::current().record("repo", format!("{owner}/{name}"));
    let view = find_visible(&state, &owner, &name, Some(&authed))?;
    append_as(&state, &authed, &view, Payload::DeleteRepo).await?;
    tracing::info!(repo = %format!("{owner}/{name}"), by = %authed.user.login, "repository deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Repositories the caller has a role in (GitHub: owner, collaborator, member).
async fn list_mine(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    AuthUser(authed): AuthUser,
) -> Response {
    let mine: Vec<Arc<RepoView>> = state
        .repos
        .list()
        .into_iter()
        .filter(|v| role_of(v, Some(&authed)).is_some())
        .collect();
    let (items, headers) = page.apply(mine);
    let body: Vec<_> = items
        .iter()
        .map(|v| render(&state, &links, v, Some(&authed)))
        .collect();
    (headers, Json(body)).into_response()
}

/// A user's repositories that the caller may see.
async fn list_for_user(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path(login): Path<String>,
) -> Result<Response, ApiError> {
    existing_user(&state, &login)?;
    let theirs: Vec<Arc<RepoView>> = state
        .repos
        .list()
        .into_iter()
        .filter(|v| {
            v.state
                .meta
                .as_ref()
                .is_some_and(|m| m.owner.eq_ignore_ascii_case(&login))
        })
        .filter(|v| visible(v, caller.as_ref()))
        .collect();
    let (items, headers) = page.apply(theirs);
    let body: Vec<_> = items
        .iter()
        .map(|v| render(&state, &links, v, caller.as_ref()))
        .collect();
    Ok((headers, Json(body)).into_response())
}
