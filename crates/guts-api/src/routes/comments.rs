//! Issue comments (`/repos/{owner}/{repo}/issues/{number}/comments` and
//! `/repos/{owner}/{repo}/issues/comments/{id}`): the conversation of issues and pull
//! requests. Ids are the numeric form of the comment operation's id.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use guts_core::{Comment, OpId, Payload};
use guts_storage::RepoView;
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody, MaybeUser};
use crate::links::Links;
use crate::pagination::Page;
use crate::routes::repos::find_visible;
use crate::state::AppState;
use crate::threads::{self, Render, find_thread, missing_field};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v3/repos/{owner}/{repo}/issues/{number}/comments",
            get(list).post(create),
        )
        .route(
            "/api/v3/repos/{owner}/{repo}/issues/comments",
            get(list_repo),
        )
        .route(
            "/api/v3/repos/{owner}/{repo}/issues/comments/{id}",
            get(get_one).patch(update).delete(remove),
        )
}

fn page_of(
    state: &AppState,
    links: &Links,
    page: &Page,
    view: &RepoView,
    comments: Vec<(OpId, &Comment)>,
) -> Response {
    let (items, headers) = page.apply(comments);
    let render = Render::new(state, links, view);
    let body: Vec<Value> = items.iter().map(|(id, c)| render.comment(id, c)).collect();
    (headers, Json(body)).into_response()
}

async fn list(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let view = find_visible(&state, &owner, &repo, caller.as_ref())?;
    let (_, thread) = find_thread(&view, number)?;
    let comments: Vec<(OpId, &Comment)> = thread
        .comments
        .iter()
        .filter_map(|id| view.state.collab.comments.get(id).map(|c| (*id, c)))
        .collect();
    Ok(page_of(&state, &links, &page, &view, comments))
}

/// Every comment of the repository, oldest first.
async fn list_repo(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path((owner, repo)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let view = find_visible(&state, &owner, &repo, caller.as_ref())?;
    let mut comments: Vec<(OpId, &Comment)> = view
        .state
        .collab
        .comments
        .iter()
        .map(|(id, c)| (*id, c))
        .collect();
    comments.sort_by_key(|(id, c)| (c.created_at, *id));
    Ok(page_of(&state, &links, &page, &view, comments))
}

#[derive(Debug, Deserialize)]
struct Body {
    body: Option<String>,
}

fn body_text(body: Body) -> Result<String, ApiError> {
    let text = body
        .body
        .ok_or_else(|| missing_field("IssueComment", "body"))?;
    if text.trim().is_empty() {
        return Err(missing_field("IssueComment", "body"));
    }
    threads::validate_text("IssueComment", None, Some(&text))?;
    Ok(text)
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

async fn create(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<Body>,
) -> Result<Response, ApiError> {
    let view = find_visible(&state, &owner, &repo, Some(&authed))?;
    let (thread, _) = find_thread(&view, number)?;
    let body = body_text(body)?;
    let (view, id) =
        threads::append(&state, &authed, &view, Payload::Comment { thread, body }).await?;
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

async fn get_one(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, repo, id)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let view = find_visible(&state, &owner, &repo, caller.as_ref())?;
    let id = find_comment(&view, id)?;
    respond(&state, &links, &view, &id, StatusCode::OK)
}

async fn update(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<Body>,
) -> Result<Response, ApiError> {
    let view = find_visible(&state, &owner, &repo, Some(&authed))?;
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

async fn remove(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    Path((owner, repo, id)): Path<(String, String, u64)>,
) -> Result<StatusCode, ApiError> {
    let view = find_visible(&state, &owner, &repo, Some(&authed))?;
    let comment = find_comment(&view, id)?;
    let payload = Payload::EditComment {
        comment,
        body: None,
    };
    threads::append(&state, &authed, &view, payload).await?;
    Ok(StatusCode::NO_CONTENT)
}
