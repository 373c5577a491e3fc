//! Issue comments (`/repos/{owner}/{repo}/issues/{number}/comments` and
//! `/repos/{owner}/{repo}/issues/comments/{id}`): the conversation of issues and pull
//! requests. Ids are the numeric form of the comment operation's id.

use crate::json::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_core::{Comment, OpId, Payload};
use guts_storage::RepoView;
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiResource, AuthUser, ValidJson, VisibleRepo};
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::{OwnerRepo, OwnerRepoNumber};
use crate::state::AppState;
use crate::threads::{self, Render, find_thread};
use validator::Validate;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(list_repo))
        .routes(routes!(get_one, update, remove))
}

/// `{owner}/{repo}/{id}`, the path parameters of one comment's routes.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct OwnerRepoId {
    /// The owner's login (user or organization).
    owner: String,
    /// The repository's name.
    repo: String,
    /// The comment's numeric id.
    id: u64,
}

fn page_of(
    state: &AppState,
    links: &Links,
    page: &Page,
    view: &RepoView,
    comments: Vec<(OpId, &Comment)>,
) -> Result<Response, ApiError> {
    let (items, headers) = page.apply(comments);
    let render = Render::new(state, links, view);
    let body = items
        .iter()
        .map(|(id, c)| render.comment(id, c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((headers, Json(body)).into_response())
}

/// The comments of an issue or pull request, oldest first.
#[utoipa::path(get, operation_id = "issues/list-comments", path = "/api/v3/repos/{owner}/{repo}/issues/{number}/comments",
    tag = "issues", params(OwnerRepoNumber, PageParams),
    responses((status = 200, description = "One page of comments", body = Vec<schemas::IssueComment>)))]
async fn list(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let (_, thread) = find_thread(&view, number)?;
    let comments: Vec<(OpId, &Comment)> = thread
        .comments
        .iter()
        .filter_map(|id| view.state.collab.comments.get(id).map(|c| (*id, c)))
        .collect();
    page_of(&state, &links, &page, &view, comments)
}

/// Every comment of the repository, oldest first.
#[utoipa::path(get, operation_id = "issues/list-comments-for-repo", path = "/api/v3/repos/{owner}/{repo}/issues/comments", tag = "issues",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "One page of comments", body = Vec<schemas::IssueComment>)))]
async fn list_repo(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    VisibleRepo { view, .. }: VisibleRepo,
) -> Result<Response, ApiError> {
    let mut comments: Vec<(OpId, &Comment)> = view
        .state
        .collab
        .comments
        .iter()
        .map(|(id, c)| (*id, c))
        .collect();
    comments.sort_by_key(|(id, c)| (c.created_at, *id));
    page_of(&state, &links, &page, &view, comments)
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
struct CommentBody {
    /// Not blank; at most 65,536 characters.
    #[schema(required = true, nullable = false)]
    #[validate(
        required,
        length(max = 65536, message = "is too long (maximum is 65536 characters)"),
        custom(function = "crate::threads::not_blank")
    )]
    body: Option<String>,
}

impl ApiResource for CommentBody {
    const RESOURCE: &'static str = "IssueComment";
}

fn body_text(body: CommentBody) -> Result<String, ApiError> {
    // Present and not blank: checked by the rules on `CommentBody`.
    body.body
        .ok_or_else(|| ApiError::missing_field("IssueComment", "body"))
}

fn respond(
    state: &AppState,
    links: &Links,
    view: &RepoView,
    id: &OpId,
    status: StatusCode,
) -> Result<Response, ApiError> {
    threads::respond(state, links, view, status, |r| {
        let comment = view.state.collab.comments.get(id)?;
        Some(r.comment(id, comment))
    })
}

/// Comments on an issue or pull request.
#[utoipa::path(post, operation_id = "issues/create-comment", path = "/api/v3/repos/{owner}/{repo}/issues/{number}/comments",
    tag = "issues", params(OwnerRepoNumber), request_body = CommentBody,
    responses((status = 201, description = "The new comment", body = schemas::IssueComment)))]
async fn create(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
    ValidJson(body): ValidJson<CommentBody>,
) -> Result<Response, ApiError> {
    let (view, id) = state
        .service
        .comment(&authed, &view, number, body_text(body)?)
        .await?;
    respond(&state, &links, &view, &id, StatusCode::CREATED)
}

/// The comment with numeric id `id`, or 404.
fn find_comment(view: &RepoView, id: u64) -> Result<OpId, ApiError> {
    view.state
        .collab
        .comment_ids
        .get(&id)
        .copied()
        .ok_or_else(ApiError::not_found)
}

/// One comment.
#[utoipa::path(get, operation_id = "issues/get-comment", path = "/api/v3/repos/{owner}/{repo}/issues/comments/{id}", tag = "issues",
    params(OwnerRepoId),
    responses((status = 200, description = "The comment", body = schemas::IssueComment)))]
async fn get_one(
    State(state): State<AppState>,
    links: Links,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, id)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let id = find_comment(&view, id)?;
    respond(&state, &links, &view, &id, StatusCode::OK)
}

/// Edits a comment's body.
#[utoipa::path(patch, operation_id = "issues/update-comment", path = "/api/v3/repos/{owner}/{repo}/issues/comments/{id}",
    tag = "issues", params(OwnerRepoId), request_body = CommentBody,
    responses((status = 200, description = "The comment", body = schemas::IssueComment)))]
async fn update(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, id)): Path<(String, String, u64)>,
    ValidJson(body): ValidJson<CommentBody>,
) -> Result<Response, ApiError> {
    let comment = find_comment(&view, id)?;
    let body = Some(body_text(body)?);
    let (view, _) = threads::append(
        &state,
        &authed,
        &view,
        Payload::EditComment { comment, body },
    )
    .await?;
    respond(&state, &links, &view, &comment, StatusCode::OK)
}

/// Deletes a comment.
#[utoipa::path(delete, operation_id = "issues/delete-comment", path = "/api/v3/repos/{owner}/{repo}/issues/comments/{id}",
    tag = "issues", params(OwnerRepoId),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, id)): Path<(String, String, u64)>,
) -> Result<StatusCode, ApiError> {
    let comment = find_comment(&view, id)?;
    let payload = Payload::EditComment {
        comment,
        body: None,
    };
    threads::append(&state, &authed, &view, payload).await?;
    Ok(StatusCode::NO_CONTENT)
}
