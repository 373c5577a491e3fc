//! Pull requests (`/repos/{owner}/{repo}/pulls…`): open from a head branch into a base
//! branch of the same repository, list, read (with `mergeable` computed), edit, close,
//! reopen, and merge. A merge writes real git commits (merge, squash or rebase) and
//! moves the base branch with one signed `MergePull` operation of the merging user,
//! refused with 405 when the pull request cannot merge (closed, draft, conflicts,
//! branch protection unmet) and 409 when the head or base moved meanwhile.

use crate::json::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use guts_core::{ObjectId, OpId, Payload, Pull, Thread};
use guts_service::{MergeInput, NewPull, PullChange};
use guts_storage::{Mergeability, RepoView, ServedName};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::browse::Repo;
use crate::caps;
use crate::error::ApiError;
use crate::extract::{
    ApiResource, AuthUser, Authed, JsonBody, MaybeUser, ValidJson, VisiblePulls, VisibleRepo,
};
use crate::git_views;
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::{OwnerRepo, OwnerRepoNumber};
use crate::views::PullStats;

use crate::state::AppState;
use crate::threads::{
    self, Render, base_sha, find_pull, head_sha, open_flag, pull_stats, sort_threads, state_filter,
};
use validator::Validate;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update))
        .routes(routes!(merge, is_merged))
        .routes(routes!(commits))
        .routes(routes!(files))
        .routes(routes!(
            requested_reviewers,
            request_reviewers,
            withdraw_reviewers
        ))
}

/// Most commits `…/pulls/{n}/commits` lists (GitHub's limit).
const MAX_PULL_COMMITS: usize = 250;
/// Most files `…/pulls/{n}/files` lists (GitHub's limit).
const MAX_PULL_FILES: usize = 3000;

/// The visible repository and the range of its pull request `number`.
fn pull_range(
    state: &AppState,
    links: Links,
    (owner, name, number): (String, String, u64),
    caller: Option<&Authed>,
) -> Result<(Repo, ObjectId, ObjectId), ApiError> {
    let repo = Repo::find(state, links, &owner, &name, caller)?;
    let (_, _, pull) = find_pull(&repo.view, number)?;
    let (base, head) = guts_service::pull_range(&repo.view.state, pull);
    Ok((repo, base, head))
}

/// The commits a pull request brings (at most 250), oldest first.
#[utoipa::path(get, operation_id = "pulls/list-commits", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}/commits",
    tag = "pulls", params(OwnerRepoNumber, PageParams),
    responses((status = 200, description = "One page of commits", body = Vec<schemas::Commit>)))]
async fn commits(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path(path): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let (repo, base, head) = pull_range(&state, links, path, caller.as_ref())?;
    let commits = repo
        .browse(&state, move |b| {
            let ahead = b.compare(base.as_bytes(), head.as_bytes())?.ahead;
            let commits = ahead.iter().take(MAX_PULL_COMMITS).map(|id| b.commit(id));
            Ok(commits.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let (items, headers) = page.apply(commits);
    let body: Vec<_> = items
        .into_iter()
        .map(|c| git_views::Commit::new(&repo, c))
        .collect();
    Ok((headers, Json(body)).into_response())
}

/// The files a pull request changes (at most 3000), from the merge base.
#[utoipa::path(get, operation_id = "pulls/list-files", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}/files",
    tag = "pulls", params(OwnerRepoNumber, PageParams),
    responses((status = 200, description = "One page of files", body = Vec<schemas::DiffEntry>)))]
async fn files(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path(path): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let (repo, base, head) = pull_range(&state, links, path, caller.as_ref())?;
    let changes = repo
        .browse(&state, move |b| {
            let from = match b.compare(base.as_bytes(), head.as_bytes())?.merge_base {
                Some(merge_base) => b.commit(&merge_base)?.tree,
                None => b.commit(base.as_bytes())?.tree,
            };
            let mut changes = b.diff(Some(&from), &b.commit(head.as_bytes())?.tree)?;
            changes.truncate(MAX_PULL_FILES);
            Ok(changes)
        })
        .await?;
    let (items, headers) = page.apply(changes);
    let at = head.to_string();
    let body: Vec<_> = items
        .into_iter()
        .map(|c| git_views::DiffEntry::new(&repo, c, &at))
        .collect();
    Ok((headers, Json(body)).into_response())
}

impl ApiResource for CreatePull {
    const RESOURCE: &'static str = "PullRequest";
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `open` (default), `closed` or `all`.
    state: Option<String>,
    /// The head branch, as `owner:branch` or `branch`.
    head: Option<String>,
    /// The base branch.
    base: Option<String>,
    /// `created` (default), `updated`, `comments`, `popularity` or `long-running`.
    sort: Option<String>,
    /// `desc` (default) or `asc`.
    direction: Option<String>,
}

/// `owner:branch` or `branch` as a branch of this repository.
fn branch_name(served: &ServedName, spec: &str) -> String {
    match spec.split_once(':') {
        Some((owner, branch)) if served.owner.eq_ignore_ascii_case(owner) => branch.to_owned(),
        _ => spec.to_owned(),
    }
}

/// The pull requests of a repository, filtered and sorted.
#[utoipa::path(get, operation_id = "pulls/list", path = "/api/v3/repos/{owner}/{repo}/pulls", tag = "pulls",
    params(OwnerRepo, ListQuery, PageParams),
    responses((status = 200, description = "One page of pull requests", body = Vec<schemas::PullRequest>)))]
async fn list(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    VisiblePulls(VisibleRepo { view, .. }): VisiblePulls,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let keep_state = state_filter(query.state.as_deref())?;
    let served = state.served(&view);
    let head = query.head.as_deref().map(|h| branch_name(&served, h));
    let sort = match query.sort.as_deref() {
        Some("popularity" | "long-running") => Some("created"),
        other => other,
    };
    let mut found: Vec<(OpId, &Thread)> = view
        .state
        .collab
        .threads
        .iter()
        .filter(|(_, t)| keep_state(t))
        .filter(|(_, t)| {
            t.pull.as_ref().is_some_and(|p| {
                head.as_ref().is_none_or(|h| p.head == *h)
                    && query.base.as_ref().is_none_or(|b| p.base == *b)
            })
        })
        .map(|(id, t)| (*id, t))
        .collect();
    sort_threads(&mut found, sort, query.direction.as_deref())?;
    let (items, headers) = page.apply(found);
    let render = Render::new(&state, &links, &view);
    let body = items
        .iter()
        .filter_map(|(id, t)| t.pull.as_ref().map(|p| render.pull(id, t, p, None, None)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((headers, Json(body)).into_response())
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
struct CreatePull {
    #[schema(required = true, nullable = false)]
    #[validate(
        required,
        length(max = 256, message = "is too long (maximum is 256 characters)"),
        custom(function = "crate::threads::not_blank")
    )]
    title: Option<String>,
    /// The branch to merge, as `owner:branch` or `branch`.
    #[schema(required = true, nullable = false)]
    #[validate(required, length(min = 1, max = 255))]
    head: Option<String>,
    /// The branch to merge into.
    #[schema(required = true, nullable = false)]
    #[validate(required, length(min = 1, max = 255))]
    base: Option<String>,
    #[serde(default)]
    #[validate(length(max = 65536, message = "is too long (maximum is 65536 characters)"))]
    body: Option<String>,
    #[serde(default)]
    draft: Option<bool>,
}

/// Opens a pull request from a branch into another of the same repository.
#[utoipa::path(post, operation_id = "pulls/create", path = "/api/v3/repos/{owner}/{repo}/pulls", tag = "pulls",
    params(OwnerRepo), request_body = CreatePull,
    responses((status = 201, description = "The new pull request", body = schemas::PullRequest)))]
async fn create(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    ValidJson(body): ValidJson<CreatePull>,
) -> Result<Response, ApiError> {
    let title = body
        .title
        .ok_or_else(|| ApiError::missing_field("PullRequest", "title"))?;
    let head = body
        .head
        .map(|h| branch_name(&state.served(&view), &h))
        .ok_or_else(|| ApiError::missing_field("PullRequest", "head"))?;
    let base = body
        .base
        .ok_or_else(|| ApiError::missing_field("PullRequest", "base"))?;
    let new = NewPull {
        title,
        body: body.body,
        head,
        base,
        draft: body.draft.unwrap_or(false),
    };
    let (view, id) = state.service.open_pull(&authed, &view, new).await?;
    respond(&state, &links, &view, &id, StatusCode::CREATED).await
}

/// One pull request as GitHub's `pull-request` (not the list's `pull-request-simple`):
/// with what its objects say, computed at once.
async fn respond(
    state: &AppState,
    links: &Links,
    view: &RepoView,
    id: &OpId,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let pull = view
        .state
        .collab
        .threads
        .get(id)
        .and_then(|t| t.pull.as_ref())
        .ok_or_else(ApiError::not_found)?;
    let facts = facts(state, view, pull).await;
    threads::respond(state, links, view, status, |r| {
        let thread = view.state.collab.threads.get(id)?;
        Some(r.pull(
            id,
            thread,
            thread.pull.as_ref()?,
            facts.mergeable,
            facts.stats,
        ))
    })
}

/// What a pull request's objects say about it.
#[derive(Debug, Default)]
struct Facts {
    /// Whether the head merges cleanly into the base; `None` when it cannot be told
    /// (merged, missing objects).
    mergeable: Option<bool>,
    /// Its commits and changed lines and files, from the merge base to the head;
    /// `None` when the objects cannot be read.
    stats: Option<PullStats>,
}

/// [`Facts`], read on the blocking pool in one go.
async fn facts(state: &AppState, view: &RepoView, pull: &Pull) -> Facts {
    let merged = pull.merged.is_some();
    let (base, head) = guts_service::pull_range(&view.state, pull);
    let (merge_base, merge_head) = (base_sha(&view.state, pull), head_sha(&view.state, pull));
    let git = state.repos.git().clone();
    let dir = view.id.to_string();
    tokio::task::spawn_blocking(move || {
        let mergeable = (!merged)
            .then(|| {
                let repo = git.open_repo(&dir).ok()?;
                match repo.mergeability(merge_base.as_bytes(), merge_head.as_bytes()) {
                    Ok(Mergeability::Clean | Mergeability::UpToDate) => Some(true),
                    Ok(Mergeability::Conflicts { .. }) => Some(false),
                    Err(_) => None,
                }
            })
            .flatten();
        let stats = guts_storage::Browser::open(&git, &dir)
            .ok()
            .and_then(|b| pull_stats(&b, base, head));
        Facts { mergeable, stats }
    })
    .await
    .unwrap_or_default()
}

/// One pull request, with `mergeable` computed.
#[utoipa::path(get, operation_id = "pulls/get", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}", tag = "pulls",
    params(OwnerRepoNumber),
    responses((status = 200, description = "The pull request", body = schemas::PullRequest)))]
async fn get_one(
    State(state): State<AppState>,
    links: Links,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let (id, _, _) = find_pull(&view, number)?;
    respond(&state, &links, &view, &id, StatusCode::OK).await
}

#[derive(Debug, Deserialize, ToSchema)]
struct UpdatePull {
    title: Option<String>,
    body: Option<String>,
    /// `open` or `closed`.
    state: Option<String>,
    /// A new base branch.
    base: Option<String>,
}

/// Edits a pull request: title, body, state, base.
#[utoipa::path(patch, operation_id = "pulls/update", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}", tag = "pulls",
    params(OwnerRepoNumber), request_body = UpdatePull,
    responses((status = 200, description = "The pull request", body = schemas::PullRequest)))]
async fn update(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<UpdatePull>,
) -> Result<Response, ApiError> {
    // Not found comes first, as before any field is read.
    find_pull(&view, number)?;
    let change = PullChange {
        open: open_flag(body.state.as_deref())?,
        title: body.title,
        body: body.body,
        base: body.base,
    };
    let (view, id) = state
        .service
        .edit_pull(&authed, &view, number, change)
        .await?;
    respond(&state, &links, &view, &id, StatusCode::OK).await
}

/// 204 when the pull request is merged, else 404.
#[utoipa::path(get, operation_id = "pulls/check-if-merged", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}/merge", tag = "pulls",
    params(OwnerRepoNumber),
    responses((status = 204, description = "Merged")))]
async fn is_merged(
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
) -> Result<StatusCode, ApiError> {
    let (_, _, pull) = find_pull(&view, number)?;
    match pull.merged {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::not_found()),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
struct MergeBody {
    commit_title: Option<String>,
    commit_message: Option<String>,
    /// The head the caller saw; 409 when the head is elsewhere now.
    sha: Option<String>,
    /// `merge` (default), `squash` or `rebase`.
    merge_method: Option<String>,
}

/// Merges a pull request (a request without a body merges too): 405 when it cannot merge, 409 when
/// the head or base moved meanwhile.
#[utoipa::path(put, operation_id = "pulls/merge", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}/merge", tag = "pulls",
    params(OwnerRepoNumber), request_body = MergeBody,
    responses((status = 200, description = "Merged", body = schemas::PullRequestMergeResult)))]
async fn merge(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // The body is optional.
    let body: MergeBody = if body.iter().all(u8::is_ascii_whitespace) {
        MergeBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| ApiError::bad_request("Problems parsing JSON"))?
    };
    // Not found comes before a bad method, as the merge's own checks come after it.
    find_pull(&view, number)?;
    let input = MergeInput {
        method: guts_service::parse_merge_method(body.merge_method.as_deref())?,
        sha: body.sha,
        commit_title: body.commit_title,
        commit_message: body.commit_message,
    };
    let done = state
        .service
        .merge_pull(&authed, &view, number, input)
        .await?;
    Ok(Json(MergeResult {
        sha: done.sha.to_string(),
        merged: true,
        message: "Pull Request successfully merged",
    })
    .into_response())
}

/// The answer to a merge: the commit the base branch now points at.
#[derive(Debug, Serialize)]
struct MergeResult {
    sha: String,
    merged: bool,
    message: &'static str,
}

/// `pull-request-review-request`: the users asked to review, and no teams (Guts has
/// none).
#[derive(Debug, Serialize)]
struct ReviewRequest {
    users: Vec<crate::views::Shared<crate::views::SimpleUser>>,
    teams: [(); 0],
}

/// Who is asked to review a pull request and has not reviewed since.
#[utoipa::path(get, operation_id = "pulls/list-requested-reviewers", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}/requested_reviewers",
    tag = "pulls", params(OwnerRepoNumber),
    responses((status = 200, description = "The requested reviewers", body = schemas::ReviewRequest)))]
async fn requested_reviewers(
    State(state): State<AppState>,
    links: Links,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let (_, _, pull) = find_pull(&view, number)?;
    threads::respond(&state, &links, &view, StatusCode::OK, |r| {
        Some(Ok(ReviewRequest {
            users: pull.requested.iter().map(|k| r.user(k)).collect(),
            teams: [],
        }))
    })
}

/// `reviewers` (logins) of a review request; `team_reviewers` must be empty.
#[derive(Debug, Default, Deserialize, ToSchema)]
struct Reviewers {
    #[serde(default)]
    reviewers: Vec<String>,
    /// Guts has no teams: only empty.
    #[serde(default)]
    team_reviewers: Vec<String>,
}

impl ApiResource for Reviewers {
    const RESOURCE: &'static str = "PullRequest";
}

impl Reviewers {
    /// The reviewers' keys: known users, at most as many as a pull request may have.
    fn keys(&self, state: &AppState) -> Result<Vec<guts_core::PublicKey>, ApiError> {
        if !self.team_reviewers.is_empty() {
            return Err(ApiError::invalid_field(
                "PullRequest",
                "team_reviewers",
                "Guts has no teams",
            ));
        }
        guts_service::check_count(
            "PullRequest",
            "reviewers",
            self.reviewers.len(),
            caps::MAX_ASSIGNEES,
        )?;
        self.reviewers
            .iter()
            .map(|login| {
                state.service.user(login).ok().and_then(|u| u.public_key().ok()).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the repository.",
                    )
                })
            })
            .collect()
    }
}

/// One `AssignThread` of reviewers, then the pull request as it is now.
async fn change_reviewers(
    state: AppState,
    links: Links,
    authed: Authed,
    view: &RepoView,
    number: u64,
    body: &Reviewers,
    adding: bool,
) -> Result<Response, ApiError> {
    let (id, _, _) = find_pull(view, number)?;
    let keys = body.keys(&state)?;
    let (add, remove, status) = if adding {
        (keys, Vec::new(), StatusCode::CREATED)
    } else {
        (Vec::new(), keys, StatusCode::OK)
    };
    let payload = Payload::AssignThread {
        thread: id,
        as_: guts_core::Assignment::Reviewer,
        add,
        remove,
    };
    let (view, _) = state
        .service
        .append(&authed, view, payload)
        .await
        .map_err(|e| match e {
            guts_service::ServiceError::Rejected(guts_core::Rejection::NotPermitted {
                held: None,
                required: guts_core::Role::Read,
            }) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the repository.",
            ),
            guts_service::ServiceError::Rejected(guts_core::Rejection::OwnPullReview) => {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Review cannot be requested from pull request author.",
                )
            }
            other => other.into(),
        })?;
    respond(&state, &links, &view, &id, status).await
}

/// Asks users to review a pull request (a signed `AssignThread` of reviewers; the fold
/// requires write access or the pull request's author, and reviewers with a role).
#[utoipa::path(post, operation_id = "pulls/request-reviewers", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}/requested_reviewers",
    tag = "pulls", params(OwnerRepoNumber), request_body = Reviewers,
    responses((status = 201, description = "The pull request", body = schemas::PullRequest)))]
async fn request_reviewers(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<Reviewers>,
) -> Result<Response, ApiError> {
    change_reviewers(state, links, authed, &view, number, &body, true).await
}

/// Withdraws review requests.
#[utoipa::path(delete, operation_id = "pulls/remove-requested-reviewers", path = "/api/v3/repos/{owner}/{repo}/pulls/{number}/requested_reviewers",
    tag = "pulls", params(OwnerRepoNumber), request_body = Reviewers,
    responses((status = 200, description = "The pull request", body = schemas::PullRequest)))]
async fn withdraw_reviewers(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<Reviewers>,
) -> Result<Response, ApiError> {
    change_reviewers(state, links, authed, &view, number, &body, false).await
}
