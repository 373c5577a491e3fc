//! Repositories: create (`POST /user/repos`), get, delete, and the lists
//! `GET /user/repos` and `GET /users/{username}/repos`. Every change is a signed
//! operation by the acting user; the fold, not this module, decides permissions.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_core::{Payload, Role};
use guts_service::{Caller, NewRepo};
use guts_storage::RepoView;
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{AuthUser, Authed, JsonBody, MaybeUser, VisibleRepo};
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::routes::users::existing_user;
use crate::state::AppState;
use crate::views;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_mine, create))
        .routes(routes!(list_for_user))
        .routes(routes!(get_repo, delete_repo))
}

/// `{owner}/{repo}`, the path parameters of every repository route.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
pub(crate) struct OwnerRepo {
    /// The owner's login (user or organization).
    owner: String,
    /// The repository's name (a trailing `.git` is ignored).
    repo: String,
}

/// The caller's role in a repository.
fn role_of(view: &RepoView, caller: Option<&Authed>) -> Option<Role> {
    caller?.role_in(view)
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
    let served = state.served(view);
    // A repository whose author does not hold its login here (another cluster's) is
    // owned by its author, never by the local account of that login.
    let owner = if served.is_bound(meta) {
        let account = state.accounts.user(&meta.owner).ok().flatten();
        match (&account, state.accounts.org(&meta.owner).ok().flatten()) {
            (None, Some(org)) => views::simple_org(links, &org),
            _ => views::owner(links, &meta.owner, account.as_ref(), &meta.created_by),
        }
    } else {
        views::owner(links, &served.owner, None, &meta.created_by)
    };
    views::repo(
        links,
        view,
        &served,
        owner,
        caller.map(|c| role_of(view, Some(c))),
    )
}

/// Repository `owner/name` if the caller may see it (private ones are 404 to
/// outsiders).
pub(crate) fn find_visible(
    state: &AppState,
    owner: &str,
    name: &str,
    caller: Option<&Authed>,
) -> Result<Arc<RepoView>, ApiError> {
    Ok(state.service.repo(Caller::from(caller), owner, name)?.view)
}

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct CreateRepo {
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    private: Option<bool>,
    /// `public` or `private` (overrides `private` when `private`).
    #[serde(default)]
    visibility: Option<String>,
    /// Short branch name; `main` when absent.
    #[serde(default)]
    default_branch: Option<String>,
}

impl From<CreateRepo> for NewRepo {
    fn from(body: CreateRepo) -> NewRepo {
        NewRepo {
            private: body.private.unwrap_or(false) || body.visibility.as_deref() == Some("private"),
            name: body.name,
            description: body.description.unwrap_or_default(),
            default_branch: body.default_branch,
        }
    }
}

/// Creates a repository owned by the caller, who signs its `CreateRepo` operation.
#[utoipa::path(post, path = "/api/v3/user/repos", tag = "repos",
    request_body = CreateRepo,
    responses((status = 201, description = "The new repository", body = schemas::Repository)))]
async fn create(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    JsonBody(body): JsonBody<CreateRepo>,
) -> Result<Response, ApiError> {
    let view = state.service.create_user_repo(&authed, body.into()).await?;
    let body = render(&state, &links, &view, Some(&authed));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A repository the caller may see (private ones are 404 to outsiders).
#[utoipa::path(get, path = "/api/v3/repos/{owner}/{repo}", tag = "repos",
    params(OwnerRepo),
    responses((status = 200, description = "The repository", body = schemas::Repository)))]
async fn get_repo(
    State(state): State<AppState>,
    links: Links,
    VisibleRepo { view, caller }: VisibleRepo,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    tracing::Span::current().record("repo", format!("{owner}/{name}"));
    Ok(Json(render(&state, &links, &view, caller.as_ref())))
}

/// Deletes a repository (a signed `DeleteRepo`; the fold requires the owner: the user
/// who created it, or for an organization's repository, an admin of the organization).
#[utoipa::path(delete, path = "/api/v3/repos/{owner}/{repo}", tag = "repos",
    params(OwnerRepo),
    responses((status = 204, description = "Deleted")))]
async fn delete_repo(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((owner, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    tracing::Span::current().record("repo", format!("{owner}/{name}"));
    state
        .service
        .administer(&authed, &view, Payload::DeleteRepo)
        .await?;
    tracing::info!(repo = %format!("{owner}/{name}"), by = %authed.user.login, "repository deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Repositories the caller has a role in (GitHub: owner, collaborator, member).
#[utoipa::path(get, path = "/api/v3/user/repos", tag = "repos",
    params(PageParams),
    responses((status = 200, description = "One page of repositories", body = Vec<schemas::Repository>)))]
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
        .filter(|v| authed.role_in(v).is_some())
        .collect();
    let (items, headers) = page.apply(mine);
    let body: Vec<_> = items
        .iter()
        .map(|v| render(&state, &links, v, Some(&authed)))
        .collect();
    (headers, Json(body)).into_response()
}

/// A user's repositories that the caller may see.
#[utoipa::path(get, path = "/api/v3/users/{username}/repos", tag = "repos",
    params(("username" = String, Path, description = "The owner's login"), PageParams),
    responses((status = 200, description = "One page of repositories", body = Vec<schemas::Repository>)))]
async fn list_for_user(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path(login): Path<String>,
) -> Result<Response, ApiError> {
    if state
        .accounts
        .org(&login)
        .map_err(ApiError::from)?
        .is_none()
    {
        existing_user(&state, &login)?;
    }
    Ok(list_owned(&state, &links, &page, caller.as_ref(), &login))
}

/// One page of the repositories owned by `owner` (a user or an organization) that the
/// caller may see.
pub(crate) fn list_owned(
    state: &AppState,
    links: &Links,
    page: &Page,
    caller: Option<&Authed>,
    owner: &str,
) -> Response {
    let theirs: Vec<Arc<RepoView>> = state
        .service
        .visible_repos(Caller::from(caller))
        .into_iter()
        .filter(|v| state.served(v).owner.eq_ignore_ascii_case(owner))
        .collect();
    let (items, headers) = page.apply(theirs);
    let body: Vec<_> = items
        .iter()
        .map(|v| render(state, links, v, caller))
        .collect();
    (headers, Json(body)).into_response()
}
