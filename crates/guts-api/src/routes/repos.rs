//! Repositories: create (`POST /user/repos`), get, edit (`PATCH`), delete, and the lists
//! `GET /user/repos` and `GET /users/{username}/repos`. Every change is a signed
//! operation by the acting user; the fold, not this module, decides permissions.

use std::sync::Arc;

use crate::json::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_core::Payload;
use guts_service::RepoUpdate;
use guts_storage::RepoView;
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody, MaybeUser, VisibleRepo};
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::{CreateRepo, OwnerRepo};
use crate::state::AppState;
use crate::views::{self, Repository};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_mine, create))
        .routes(routes!(list_for_user))
        .routes(routes!(get_repo, update_repo, delete_repo))
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
    let body = views::repository(&state, &links, &view, Some(&authed));
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
) -> Json<Option<Repository>> {
    tracing::Span::current().record("repo", format!("{owner}/{name}"));
    Json(views::repository(&state, &links, &view, caller.as_ref()))
}

/// `PATCH /repos/{owner}/{repo}`: the settings Guts models (name, description,
/// homepage, visibility, default branch, issues, archiving). GitHub's others are not
/// read (as GitHub ignores what a plan does not offer).
#[derive(Debug, Default, Deserialize, ToSchema)]
struct EditRepo {
    /// A new name: the old one keeps answering until another repository takes it.
    name: Option<String>,
    /// At most 4096 characters.
    description: Option<String>,
    /// At most 255 bytes.
    homepage: Option<String>,
    private: Option<bool>,
    /// `public` or `private`.
    visibility: Option<String>,
    /// An existing branch: what clones check out from then on.
    default_branch: Option<String>,
    /// An archived repository refuses pushes and writes until unarchived.
    archived: Option<bool>,
    /// Without issues, none can be opened.
    has_issues: Option<bool>,
}

impl crate::extract::ApiResource for EditRepo {
    const RESOURCE: &'static str = "Repository";
}

impl EditRepo {
    /// The change asked for, or why it cannot be read.
    fn into_update(self) -> Result<RepoUpdate, ApiError> {
        let from_visibility = match self.visibility.as_deref() {
            None => None,
            Some("public") => Some(false),
            Some("private") => Some(true),
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "Repository",
                    "visibility",
                    "visibility must be public or private",
                ));
            }
        };
        let private = match (self.private, from_visibility) {
            (Some(a), Some(b)) if a != b => {
                return Err(ApiError::invalid_field(
                    "Repository",
                    "visibility",
                    "private and visibility disagree",
                ));
            }
            (a, b) => a.or(b),
        };
        Ok(RepoUpdate {
            description: self.description,
            private,
            default_branch: self.default_branch,
            name: self.name,
            homepage: self.homepage,
            has_issues: self.has_issues,
            archived: self.archived,
        })
    }
}

/// Edits a repository's settings, as signed `UpdateRepo` and `RepoSettings`
/// operations (the fold requires an admin).
#[utoipa::path(patch, operation_id = "repos/update", path = "/api/v3/repos/{owner}/{repo}", tag = "repos",
    params(OwnerRepo), request_body = EditRepo,
    responses((status = 200, description = "The repository", body = schemas::Repository)))]
async fn update_repo(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    JsonBody(body): JsonBody<EditRepo>,
) -> Result<Json<Option<Repository>>, ApiError> {
    let view = state
        .service
        .update_repo(&authed, &view, body.into_update()?)
        .await?;
    Ok(Json(views::repository(
        &state,
        &links,
        &view,
        Some(&authed),
    )))
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
    let body: Vec<Option<Repository>> = items
        .iter()
        .map(|v| views::repository(&state, &links, v, Some(&authed)))
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
        state.service.user(&login)?;
    }
    Ok(views::owned_repositories(
        &state,
        &links,
        &page,
        caller.as_ref(),
        &login,
    ))
}
