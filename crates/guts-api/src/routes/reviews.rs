//! Pull request reviews (`/repos/{owner}/{repo}/pulls/{number}/reviews`) and review
//! comments (`…/pulls/{number}/comments`). A review is submitted at once (GitHub's
//! pending reviews are not modelled); a lone review comment is a `COMMENT` review with
//! one inline comment, which is what GitHub records too.

use crate::json::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_core::{OpId, Payload, Review, Verdict};
use guts_service::ReviewInput;
use guts_storage::RepoView;
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody, VisibleRepo};
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::OwnerRepoNumber;

use crate::state::AppState;
use crate::threads::{self, Render, find_pull};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one))
        .routes(routes!(list_comments, create_comment))
        .routes(routes!(list_repo_comments))
        .routes(routes!(
            get_repo_comment,
            update_repo_comment,
            delete_repo_comment
        ))
}

/// The reviews of pull request `number`, oldest first.
fn reviews_of(view: &RepoView, number: u64) -> Result<Vec<(OpId, &Review)>, ApiError> {
    let (_, _, pull) = find_pull(view, number)?;
    Ok(pull
        .reviews
        .iter()
        .filter_map(|id| view.state.collab.reviews.get(id).map(|r| (*id, r)))
        .collect())
}

/// The reviews of a pull request, oldest first.
#[utoipa::path(get, operation_id = "pulls/list-reviews", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}/reviews",
    tag = "pulls", params(OwnerRepoNumber, PageParams),
    responses((status = 200, description = "One page of reviews", body = Vec<schemas::PullRequestReview>)))]
async fn list(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let (items, headers) = page.apply(reviews_of(&view, number)?);
    let render = Render::new(&state, &links, &view);
    let body = items
        .iter()
        .map(|(id, r)| render.review(id, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((headers, Json(body)).into_response())
}

/// One review of a pull request.
#[utoipa::path(get, operation_id = "pulls/get-review", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}/reviews/{id}",
    tag = "pulls",
    params(OwnerRepoNumber, ("id" = u64, Path, description = "The review's numeric id")),
    responses((status = 200, description = "The review", body = schemas::PullRequestReview)))]
async fn get_one(
    State(state): State<AppState>,
    links: Links,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number, id)): Path<(String, String, u64, u64)>,
) -> Result<Response, ApiError> {
    let (review_id, review) = reviews_of(&view, number)?
        .into_iter()
        .find(|(rid, _)| rid.numeric() == id)
        .ok_or_else(ApiError::not_found)?;
    let body = Render::new(&state, &links, &view).review(&review_id, review)?;
    Ok(Json(body).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
struct InlineComment {
    /// The file commented on.
    #[schema(required = true, nullable = false)]
    path: Option<String>,
    #[serde(default)]
    line: Option<u32>,
    /// Read as `line` when `line` is absent.
    #[serde(default)]
    position: Option<u32>,
    /// Not blank.
    #[schema(required = true, nullable = false)]
    body: Option<String>,
}

impl InlineComment {
    /// The service's inline comment: an absent path or body is an empty one, which it
    /// answers as a missing field.
    fn into_input(self) -> guts_service::InlineComment {
        guts_service::InlineComment {
            path: self.path.unwrap_or_default(),
            line: self.line.or(self.position),
            body: self.body.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
struct CreateReview {
    /// Required unless approving or commenting inline.
    #[serde(default)]
    body: Option<String>,
    /// `APPROVE`, `REQUEST_CHANGES` or `COMMENT` (no pending reviews).
    #[serde(default)]
    #[schema(required = true, nullable = false)]
    event: Option<String>,
    /// The reviewed commit; the head by default.
    #[serde(default)]
    commit_id: Option<String>,
    #[serde(default)]
    comments: Vec<InlineComment>,
}

fn verdict(event: Option<&str>) -> Result<Verdict, ApiError> {
    match event {
        Some("APPROVE") => Ok(Verdict::Approve),
        Some("REQUEST_CHANGES") => Ok(Verdict::RequestChanges),
        Some("COMMENT") => Ok(Verdict::Comment),
        // GitHub leaves a review without an event pending; Guts has no pending
        // reviews, so it needs one.
        None => Err(ApiError::missing_field("PullRequestReview", "event")),
        Some(_) => Err(ApiError::invalid_field(
            "PullRequestReview",
            "event",
            "must be APPROVE, REQUEST_CHANGES or COMMENT",
        )),
    }
}

/// Submits a review (at once: Guts has no pending reviews).
#[utoipa::path(post, operation_id = "pulls/create-review", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}/reviews",
    tag = "pulls", params(OwnerRepoNumber), request_body = CreateReview,
    responses((status = 200, description = "The review", body = schemas::PullRequestReview)))]
async fn create(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<CreateReview>,
) -> Result<Response, ApiError> {
    let review = ReviewInput {
        verdict: verdict(body.event.as_deref())?,
        body: body.body.unwrap_or_default(),
        commit_id: body.commit_id,
        comments: body
            .comments
            .into_iter()
            .map(InlineComment::into_input)
            .collect(),
    };
    let (view, id) = state
        .service
        .submit_review(&authed, &view, number, review)
        .await?;
    threads::respond(&state, &links, &view, StatusCode::OK, |r| {
        Some(r.review(&id, view.state.collab.reviews.get(&id)?))
    })
}

/// The inline comments of a pull request's reviews.
#[utoipa::path(get, operation_id = "pulls/list-review-comments", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}/comments",
    tag = "pulls", params(OwnerRepoNumber, PageParams),
    responses((status = 200, description = "One page of review comments", body = Vec<schemas::PullRequestReviewComment>)))]
async fn list_comments(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let all: Vec<(OpId, &Review, usize)> = reviews_of(&view, number)?
        .into_iter()
        .flat_map(|(id, r)| r.live_comments().map(move |i| (id, r, i)))
        .collect();
    let (items, headers) = page.apply(all);
    let render = Render::new(&state, &links, &view);
    let body = items
        .iter()
        .filter_map(|(id, r, i)| render.review_comment(id, r, *i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((headers, Json(body)).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
struct CreateComment {
    /// The commented commit; the head by default.
    #[serde(default)]
    commit_id: Option<String>,
    #[serde(flatten)]
    comment: InlineComment,
}

/// A lone review comment: a `COMMENT` review with one inline comment.
#[utoipa::path(post, operation_id = "pulls/create-review-comment", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}/comments",
    tag = "pulls", params(OwnerRepoNumber), request_body = CreateComment,
    responses((status = 201, description = "The review comment", body = schemas::PullRequestReviewComment)))]
async fn create_comment(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<CreateComment>,
) -> Result<Response, ApiError> {
    let review = ReviewInput {
        verdict: Verdict::Comment,
        body: String::new(),
        commit_id: body.commit_id,
        comments: vec![body.comment.into_input()],
    };
    let (view, id) = state
        .service
        .submit_review(&authed, &view, number, review)
        .await?;
    threads::respond(&state, &links, &view, StatusCode::CREATED, |r| {
        r.review_comment(&id, view.state.collab.reviews.get(&id)?, 0)
    })
}

/// Query of the repository-wide review comment list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RepoCommentsQuery {
    /// `created` or `updated` (the same in Guts: review comments are not edited).
    sort: Option<String>,
    /// `asc` or `desc` (default `desc` with a sort; oldest first without one).
    direction: Option<String>,
    /// Only comments updated at or after this time (ISO 8601).
    since: Option<String>,
}

/// The review comment numbered `id` (GitHub's integer id) in `view`: its review's id,
/// the review, and its index among the review's comments.
fn review_comment_by_id(view: &RepoView, id: u64) -> Option<(OpId, &Review, usize)> {
    view.state.collab.reviews.iter().find_map(|(rid, review)| {
        review
            .live_comments()
            .find(|i| {
                rid.numeric()
                    .wrapping_add(u64::try_from(*i).unwrap_or(0) + 1)
                    == id
            })
            .map(|i| (*rid, review, i))
    })
}

/// Every review comment of the repository's pull requests.
#[utoipa::path(get, operation_id = "pulls/list-review-comments-for-repo", path = "/api/v3/repos/{owner}/{repo}/pulls/comments",
    tag = "pulls", params(crate::params::OwnerRepo, RepoCommentsQuery, PageParams),
    responses((status = 200, description = "One page of review comments", body = Vec<schemas::PullRequestReviewComment>)))]
async fn list_repo_comments(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    VisibleRepo { view, .. }: VisibleRepo,
    axum::extract::Query(query): axum::extract::Query<RepoCommentsQuery>,
) -> Result<Response, ApiError> {
    let since_ms = guts_service::since_ms("PullRequestReviewComment", query.since.as_deref())?;
    let mut all: Vec<(OpId, &Review, usize)> = view
        .state
        .collab
        .reviews
        .iter()
        .filter(|(_, r)| since_ms.is_none_or(|s| guts_service::at_or_after(r.at.wall_ms, s)))
        .flat_map(|(id, r)| r.live_comments().map(move |i| (*id, r, i)))
        .collect();
    all.sort_by_key(|(id, r, i)| (r.at, *id, *i));
    match query.sort.as_deref() {
        None => {}
        Some("created" | "updated") => match query.direction.as_deref().unwrap_or("desc") {
            "desc" => all.reverse(),
            "asc" => {}
            _ => {
                return Err(ApiError::invalid_field(
                    "PullRequestReviewComment",
                    "direction",
                    "must be asc or desc",
                ));
            }
        },
        Some(_) => {
            return Err(ApiError::invalid_field(
                "PullRequestReviewComment",
                "sort",
                "must be created or updated",
            ));
        }
    }
    let (items, headers) = page.apply(all);
    let render = Render::new(&state, &links, &view);
    let body = items
        .iter()
        .filter_map(|(id, r, i)| render.review_comment(id, r, *i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((headers, Json(body)).into_response())
}

/// One review comment by its id.
#[utoipa::path(get, operation_id = "pulls/get-review-comment", path = "/api/v3/repos/{owner}/{repo}/pulls/comments/{id}",
    tag = "pulls", params(crate::params::OwnerRepo, ("id" = u64, Path, description = "The comment's numeric id")),
    responses((status = 200, description = "The review comment", body = schemas::PullRequestReviewComment)))]
async fn get_repo_comment(
    State(state): State<AppState>,
    links: Links,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, id)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let (rid, _, index) = review_comment_by_id(&view, id).ok_or_else(ApiError::not_found)?;
    threads::respond(&state, &links, &view, StatusCode::OK, |r| {
        r.review_comment(&rid, view.state.collab.reviews.get(&rid)?, index)
    })
}

/// The body of a review comment edit.
#[derive(Debug, Deserialize, ToSchema)]
struct EditComment {
    /// Not blank; at most 65,536 characters.
    body: Option<String>,
}

impl crate::extract::ApiResource for EditComment {
    const RESOURCE: &'static str = "PullRequestReviewComment";
}

/// The review and index of review comment `id`, as an `u32` slot, or 404.
fn comment_slot(view: &RepoView, id: u64) -> Result<(OpId, u32), ApiError> {
    let (rid, _, index) = review_comment_by_id(view, id).ok_or_else(ApiError::not_found)?;
    let index = u32::try_from(index).map_err(|_| ApiError::not_found())?;
    Ok((rid, index))
}

/// Edits a review comment's body (a signed `EditReviewComment`; the fold requires its
/// author or a writer).
#[utoipa::path(patch, operation_id = "pulls/update-review-comment", path = "/api/v3/repos/{owner}/{repo}/pulls/comments/{id}",
    tag = "pulls", params(crate::params::OwnerRepo, ("id" = u64, Path, description = "The comment's numeric id")),
    request_body = EditComment,
    responses((status = 200, description = "The review comment", body = schemas::PullRequestReviewComment)))]
async fn update_repo_comment(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, id)): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<EditComment>,
) -> Result<Response, ApiError> {
    let (review, index) = comment_slot(&view, id)?;
    let text = body
        .body
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| ApiError::missing_field("PullRequestReviewComment", "body"))?;
    guts_service::check_text("PullRequestReviewComment", None, Some(&text))?;
    let payload = Payload::EditReviewComment {
        review,
        index,
        body: Some(text),
    };
    let (view, _) = threads::append(&state, &authed, &view, payload).await?;
    threads::respond(&state, &links, &view, StatusCode::OK, |r| {
        let slot = usize::try_from(index).ok()?;
        r.review_comment(&review, view.state.collab.reviews.get(&review)?, slot)
    })
}

/// Deletes a review comment (its review and the other comments stay).
#[utoipa::path(delete, operation_id = "pulls/delete-review-comment", path = "/api/v3/repos/{owner}/{repo}/pulls/comments/{id}",
    tag = "pulls", params(crate::params::OwnerRepo, ("id" = u64, Path, description = "The comment's numeric id")),
    responses((status = 204, description = "Deleted")))]
async fn delete_repo_comment(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, id)): Path<(String, String, u64)>,
) -> Result<StatusCode, ApiError> {
    let (review, index) = comment_slot(&view, id)?;
    let payload = Payload::EditReviewComment {
        review,
        index,
        body: None,
    };
    threads::append(&state, &authed, &view, payload).await?;
    Ok(StatusCode::NO_CONTENT)
}
