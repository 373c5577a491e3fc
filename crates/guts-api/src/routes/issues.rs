//! Issues (`/repos/{owner}/{repo}/issues…`): list with GitHub's filters, open, read,
//! edit (title, body, state, labels, assignees), lock and assignees. Pull requests are
//! issues too and appear here with `pull_request`, as on GitHub. Every change is a
//! signed operation of the caller; the fold decides who may make it.

use crate::json::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use guts_core::{OpId, Payload, Thread, ThreadEdit};
use guts_service::{Caller, IssueChange, NewIssue};
use guts_storage::RepoView;
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody, VisibleRepo, VisibleThreads};
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::{OwnerRepo, OwnerRepoNumber};
use crate::state::AppState;
use crate::threads::{self, LabelRef, Render, find_thread, open_flag, sort_threads};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update))
        .routes(routes!(lock, unlock))
        .routes(routes!(add_assignees, remove_assignees))
        .routes(routes!(list_mine))
        .routes(routes!(list_assignees))
        .routes(routes!(check_assignee))
}

/// Query of `GET …/issues`. Unknown values are 422 as on GitHub.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `open` (default), `closed` or `all`.
    state: Option<String>,
    /// Comma-separated label names, all of which an issue must carry.
    labels: Option<String>,
    /// A login, `none` (no assignee) or `*` (any assignee).
    assignee: Option<String>,
    /// The login of the author.
    creator: Option<String>,
    /// `created` (default), `updated` or `comments`.
    sort: Option<String>,
    /// `desc` (default) or `asc`.
    direction: Option<String>,
    /// Only issues updated at or after this time (ISO 8601).
    since: Option<String>,
}

/// The issues (and pull requests) of a repository, filtered and sorted.
#[utoipa::path(get, operation_id = "issues/list-for-repo", path = "/api/v3/repos/{owner}/{repo}/issues", tag = "issues",
    params(OwnerRepo, ListQuery, PageParams),
    responses((status = 200, description = "One page of issues", body = Vec<schemas::Issue>)))]
async fn list(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    VisibleThreads(VisibleRepo { view, .. }): VisibleThreads,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = state.service.thread_filter(
        query.state.as_deref(),
        query.labels.as_deref(),
        query.assignee.as_deref(),
        query.creator.as_deref(),
        query.since.as_deref(),
    )?;
    let mut found: Vec<(OpId, &Thread)> = view
        .state
        .collab
        .threads
        .iter()
        .filter(|(_, t)| filter.matches(t))
        .map(|(id, t)| (*id, t))
        .collect();
    sort_threads(
        &mut found,
        query.sort.as_deref(),
        query.direction.as_deref(),
    )?;
    let (items, headers) = page.apply(found);
    let render = Render::new(&state, &links, &view);
    let body = items
        .iter()
        .map(|(id, t)| render.issue(id, t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((headers, Json(body)).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
struct CreateIssue {
    /// A string (or a number).
    #[schema(value_type = String, required = true)]
    title: Option<serde_json::Value>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    labels: Vec<LabelRef>,
    #[serde(default)]
    assignees: Vec<String>,
    #[serde(default)]
    assignee: Option<String>,
}

/// A title may be a string or a number on GitHub; anything else is invalid.
fn title_text(title: Option<&Value>) -> Result<Option<String>, ApiError> {
    match title {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ApiError::invalid_field(
            "Issue",
            "title",
            "must be a string",
        )),
    }
}

/// Opens an issue. Labels and assignees from someone without push access are dropped.
#[utoipa::path(post, operation_id = "issues/create", path = "/api/v3/repos/{owner}/{repo}/issues", tag = "issues",
    params(OwnerRepo), request_body = CreateIssue,
    responses((status = 201, description = "The new issue", body = schemas::Issue)))]
async fn create(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    JsonBody(body): JsonBody<CreateIssue>,
) -> Result<Response, ApiError> {
    let mut assignees = body.assignees;
    assignees.extend(body.assignee);
    let new = NewIssue {
        // Absent is blank: the service answers `missing_field` for both.
        title: title_text(body.title.as_ref())?.unwrap_or_default(),
        body: body.body,
        labels: body.labels.into_iter().map(LabelRef::into_name).collect(),
        assignees,
    };
    let (view, id) = state.service.open_issue(&authed, &view, new).await?;
    respond_thread(&state, &links, &view, &id, StatusCode::CREATED)
}

/// The issue object of thread `id` in `view`, with `status`.
pub(crate) fn respond_thread(
    state: &AppState,
    links: &Links,
    view: &RepoView,
    id: &OpId,
    status: StatusCode,
) -> Result<Response, ApiError> {
    threads::respond(state, links, view, status, |r| {
        let thread = view.state.collab.threads.get(id)?;
        Some(r.issue(id, thread))
    })
}

/// One issue (or pull request, as an issue).
#[utoipa::path(get, operation_id = "issues/get", path = "/api/v3/repos/{owner}/{repo}/issues/{number}", tag = "issues",
    params(OwnerRepoNumber),
    responses((status = 200, description = "The issue", body = schemas::Issue)))]
async fn get_one(
    State(state): State<AppState>,
    links: Links,
    VisibleThreads(VisibleRepo { view, .. }): VisibleThreads,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let (id, _) = find_thread(&view, number)?;
    respond_thread(&state, &links, &view, &id, StatusCode::OK)
}

#[derive(Debug, Deserialize, ToSchema)]
struct UpdateIssue {
    /// A string (or a number).
    #[schema(value_type = Option<String>)]
    title: Option<Value>,
    body: Option<String>,
    /// `open` or `closed`.
    state: Option<String>,
    #[serde(default)]
    state_reason: Option<String>,
    labels: Option<Vec<LabelRef>>,
    assignees: Option<Vec<String>>,
    assignee: Option<String>,
}

/// Edits an issue: title, body, state, labels (replaced), assignees (replaced).
#[utoipa::path(patch, operation_id = "issues/update", path = "/api/v3/repos/{owner}/{repo}/issues/{number}", tag = "issues",
    params(OwnerRepoNumber), request_body = UpdateIssue,
    responses((status = 200, description = "The issue", body = schemas::Issue)))]
async fn update(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<UpdateIssue>,
) -> Result<Response, ApiError> {
    // Not found comes first, as before any field is read.
    find_thread(&view, number)?;
    let _ = body.state_reason;
    let mut assignees = body.assignees;
    if let Some(one) = body.assignee {
        assignees.get_or_insert_with(Vec::new).push(one);
    }
    let change = IssueChange {
        title: title_text(body.title.as_ref())?,
        body: body.body,
        open: open_flag(body.state.as_deref())?,
        labels: body
            .labels
            .map(|l| l.into_iter().map(LabelRef::into_name).collect()),
        assignees,
    };
    let (view, id) = state
        .service
        .edit_issue(&authed, &view, number, change)
        .await?;
    respond_thread(&state, &links, &view, &id, StatusCode::OK)
}

async fn set_lock(
    state: AppState,
    authed: crate::extract::Authed,
    (owner, repo, number): (String, String, u64),
    locked: bool,
) -> Result<StatusCode, ApiError> {
    let view = state
        .service
        .repo(Caller::User(&authed), &owner, &repo)?
        .view;
    let (id, _) = find_thread(&view, number)?;
    let edit = ThreadEdit {
        locked: Some(locked),
        ..ThreadEdit::default()
    };
    threads::append(
        &state,
        &authed,
        &view,
        Payload::EditThread { thread: id, edit },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Locks an issue's conversation.
#[utoipa::path(put, operation_id = "issues/lock", path = "/api/v3/repos/{owner}/{repo}/issues/{number}/lock", tag = "issues",
    params(OwnerRepoNumber),
    responses((status = 204, description = "Locked")))]
async fn lock(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    Path(path): Path<(String, String, u64)>,
) -> Result<StatusCode, ApiError> {
    set_lock(state, authed, path, true).await
}

/// Unlocks an issue's conversation.
#[utoipa::path(delete, operation_id = "issues/unlock", path = "/api/v3/repos/{owner}/{repo}/issues/{number}/lock", tag = "issues",
    params(OwnerRepoNumber),
    responses((status = 204, description = "Unlocked")))]
async fn unlock(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    Path(path): Path<(String, String, u64)>,
) -> Result<StatusCode, ApiError> {
    set_lock(state, authed, path, false).await
}

#[derive(Debug, Deserialize, ToSchema)]
struct Assignees {
    /// Logins.
    #[serde(default)]
    assignees: Vec<String>,
}

async fn change_assignees(
    state: AppState,
    links: Links,
    authed: crate::extract::Authed,
    (owner, repo, number): (String, String, u64),
    logins: &[String],
    adding: bool,
) -> Result<Response, ApiError> {
    let view = state
        .service
        .repo(Caller::User(&authed), &owner, &repo)?
        .view;
    let (id, _) = find_thread(&view, number)?;
    let keys = state.service.assignee_keys(logins)?;
    let (add, remove) = if adding {
        (keys, Vec::new())
    } else {
        (Vec::new(), keys)
    };
    let payload = Payload::AssignThread {
        thread: id,
        as_: guts_core::Assignment::Assignee,
        add,
        remove,
    };
    let (view, _) = threads::append(&state, &authed, &view, payload).await?;
    let status = if adding {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    respond_thread(&state, &links, &view, &id, status)
}

/// Adds assignees to an issue.
#[utoipa::path(post, operation_id = "issues/add-assignees", path = "/api/v3/repos/{owner}/{repo}/issues/{number}/assignees",
    tag = "issues", params(OwnerRepoNumber), request_body = Assignees,
    responses((status = 201, description = "The issue", body = schemas::Issue)))]
async fn add_assignees(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    Path(path): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<Assignees>,
) -> Result<Response, ApiError> {
    change_assignees(state, links, authed, path, &body.assignees, true).await
}

/// Removes assignees from an issue.
#[utoipa::path(delete, operation_id = "issues/remove-assignees", path = "/api/v3/repos/{owner}/{repo}/issues/{number}/assignees",
    tag = "issues", params(OwnerRepoNumber), request_body = Assignees,
    responses((status = 200, description = "The issue", body = schemas::Issue)))]
async fn remove_assignees(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    Path(path): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<Assignees>,
) -> Result<Response, ApiError> {
    change_assignees(state, links, authed, path, &body.assignees, false).await
}

/// Query of `GET /user/issues`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct MineQuery {
    /// `assigned` (default), `created`, `mentioned`, `subscribed` (any of those three),
    /// or `repos`/`all` (every issue of the repositories the caller has a role in).
    filter: Option<String>,
    /// `open` (default), `closed` or `all`.
    state: Option<String>,
    /// Comma-separated label names, all of which an issue must carry.
    labels: Option<String>,
    /// `created` (default), `updated` or `comments`.
    sort: Option<String>,
    /// `desc` (default) or `asc`.
    direction: Option<String>,
    /// Only issues updated at or after this time (ISO 8601).
    since: Option<String>,
}

/// Which of the caller's issues `GET /user/issues` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mine {
    Assigned,
    Created,
    Mentioned,
    Subscribed,
    All,
}

/// The issues and pull requests assigned to the caller (by default) across every
/// repository they can see. The scan is over the folded state already in memory;
/// only the page is rendered. GitHub embeds each issue's `repository` here; Guts
/// leaves that optional key out (clients find the repository by `repository_url`).
#[utoipa::path(get, operation_id = "issues/list-for-authenticated-user", path = "/api/v3/user/issues", tag = "issues",
    params(MineQuery, PageParams),
    responses((status = 200, description = "One page of issues", body = Vec<schemas::Issue>)))]
async fn list_mine(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    AuthUser(authed): AuthUser,
    Query(query): Query<MineQuery>,
) -> Result<Response, ApiError> {
    let filter = match query.filter.as_deref().unwrap_or("assigned") {
        "assigned" => Mine::Assigned,
        "created" => Mine::Created,
        "mentioned" => Mine::Mentioned,
        "subscribed" => Mine::Subscribed,
        "repos" | "all" => Mine::All,
        _ => {
            return Err(ApiError::invalid_field(
                "Issue",
                "filter",
                "must be assigned, created, mentioned, subscribed, repos or all",
            ));
        }
    };
    // `state`, `labels` and `since` as on a repository's list; who is asked about is
    // `filter`.
    let keep = state.service.thread_filter(
        query.state.as_deref(),
        query.labels.as_deref(),
        None,
        None,
        query.since.as_deref(),
    )?;
    let me = authed.user.public_key().map_err(|_| ApiError::internal())?;
    let mention = format!("@{}", authed.user.login.to_lowercase());
    let views = state.service.visible_repos(Caller::from(Some(&authed)));
    // Bodies are read from the log only for threads whose title does not mention.
    let texts = state.service.texts();
    let mentions = |t: &Thread| -> Result<bool, ApiError> {
        let words = |text: &str| {
            text.to_lowercase()
                .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '@'))
                .any(|w| w == mention)
        };
        Ok(words(&t.title) || (!t.body.is_empty() && words(&texts.get(&t.body)?)))
    };
    let mut found: Vec<(usize, OpId, &Thread)> = Vec::new();
    for (at, view) in views.iter().enumerate() {
        let member = view.state.role(&me).is_some();
        for (id, t) in view.state.collab.threads.iter() {
            let wanted = match filter {
                Mine::Assigned => t.assignees.contains(&me),
                Mine::Created => t.author == me,
                Mine::Mentioned => mentions(t)?,
                Mine::Subscribed => t.assignees.contains(&me) || t.author == me || mentions(t)?,
                Mine::All => member,
            };
            if wanted && keep.matches(t) {
                found.push((at, *id, t));
            }
        }
    }
    match query.sort.as_deref().unwrap_or("created") {
        "created" => found.sort_by_key(|(at, _, t)| (t.created_at, *at, t.number)),
        "updated" => found.sort_by_key(|(at, _, t)| (t.updated_at, *at, t.number)),
        "comments" => found.sort_by_key(|(at, _, t)| (t.comments.len(), *at, t.number)),
        _ => {
            return Err(ApiError::invalid_field(
                "Issue",
                "sort",
                "must be created, updated or comments",
            ));
        }
    }
    match query.direction.as_deref().unwrap_or("desc") {
        "desc" => found.reverse(),
        "asc" => {}
        _ => {
            return Err(ApiError::invalid_field(
                "Issue",
                "direction",
                "must be asc or desc",
            ));
        }
    }
    let (items, headers) = page.apply(found);
    let mut renders: std::collections::HashMap<usize, Render<'_>> =
        std::collections::HashMap::new();
    let mut body = Vec::with_capacity(items.len());
    for (at, id, t) in items {
        let Some(view) = views.get(at) else { continue };
        let render = renders
            .entry(at)
            .or_insert_with(|| Render::new(&state, &links, view));
        body.push(render.issue(&id, t)?);
    }
    Ok((headers, Json(body)).into_response())
}

/// The users issues and pull requests of the repository may be assigned to: those
/// with push access (`Service::assignees`).
#[utoipa::path(get, operation_id = "issues/list-assignees", path = "/api/v3/repos/{owner}/{repo}/assignees", tag = "issues",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "One page of users", body = Vec<schemas::SimpleUser>)))]
async fn list_assignees(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    VisibleRepo { view, .. }: VisibleRepo,
) -> Result<Response, ApiError> {
    let (users, headers) = page.apply(state.service.assignees(&view));
    let body: Vec<_> = users
        .iter()
        .map(|u| crate::views::SimpleUser::of(&links, u))
        .collect();
    Ok((headers, Json(body)).into_response())
}

/// 204 if `assignee` may be assigned in the repository, else 404.
#[utoipa::path(get, operation_id = "issues/check-user-can-be-assigned", path = "/api/v3/repos/{owner}/{repo}/assignees/{assignee}", tag = "issues",
    params(OwnerRepo, ("assignee" = String, Path, description = "A login")),
    responses((status = 204, description = "May be assigned")))]
async fn check_assignee(
    State(state): State<AppState>,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, assignee)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let assignable = state
        .service
        .assignees(&view)
        .iter()
        .any(|u| u.login.eq_ignore_ascii_case(&assignee));
    if assignable {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
