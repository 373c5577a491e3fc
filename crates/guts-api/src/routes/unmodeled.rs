//! What GitHub has and Guts does not model: forks, stars, watchers, teams,
//! deployments, downloads, commit comments, milestones, releases, followers, gists,
//! email addresses, notifications and activity feeds (Guts keeps the operation log,
//! not GitHub's event stream: its feeds are empty until one is derived from the log). Each is answered with
//! the truth, an empty list (after the repository or account it is about is found, so
//! a missing one is still 404), so that every `*_url` GitHub's shapes require leads to
//! a route this node serves, and a client that follows one gets GitHub's answer for a
//! repository or user that has none.

use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{AuthUser, VisibleRepo};
use crate::json::Json;
use crate::openapi::schemas;
use crate::pagination::PageParams;
use crate::params::OwnerRepo;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(forks))
        .routes(routes!(stargazers))
        .routes(routes!(subscribers))
        .routes(routes!(teams))
        .routes(routes!(deployments))
        .routes(routes!(downloads))
        .routes(routes!(commit_comments))
        .routes(routes!(milestones))
        .routes(routes!(releases))
        .routes(routes!(my_gists))
        .routes(routes!(repo_events))
        .routes(routes!(issue_events))
        .routes(routes!(repo_notifications))
        .routes(routes!(notifications))
        .routes(routes!(public_events))
        .routes(routes!(org_events))
        .routes(routes!(user_events))
        .routes(routes!(received_events))
        .routes(routes!(emojis))
        .routes(routes!(followers))
        .routes(routes!(following))
        .routes(routes!(starred))
        .routes(routes!(subscriptions))
        .routes(routes!(gists))
        .routes(routes!(my_followers))
        .routes(routes!(my_following))
        .routes(routes!(my_starred))
        .routes(routes!(my_subscriptions))
        .routes(routes!(my_emails))
        .routes(routes!(public_gists))
        .routes(routes!(starred_gists))
}

/// An empty JSON list.
type Empty = Json<[(); 0]>;

const NONE: Empty = Json([]);

/// The repository exists and the caller may see it (else 404): it has none of these.
fn of_repo(_: VisibleRepo) -> Empty {
    NONE
}

/// Account `login` (a user or an organization) exists, else 404.
fn of_account(state: &AppState, login: &str) -> Result<Empty, ApiError> {
    if state.accounts.org(login).map_err(ApiError::from)?.is_none() {
        state.service.user(login)?;
    }
    Ok(NONE)
}

/// Forks of a repository: none (Guts has no forks; `forks_count` is 0).
#[utoipa::path(get, operation_id = "repos/list-forks", path = "/api/v3/repos/{owner}/{repo}/forks", tag = "repos",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Repository>)))]
async fn forks(repo: VisibleRepo) -> Empty {
    of_repo(repo)
}

/// Who starred a repository: nobody (Guts has no stars).
#[utoipa::path(get, operation_id = "activity/list-stargazers-for-repo", path = "/api/v3/repos/{owner}/{repo}/stargazers", tag = "activity",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::SimpleUser>)))]
async fn stargazers(repo: VisibleRepo) -> Empty {
    of_repo(repo)
}

/// Who watches a repository: nobody (Guts has no subscriptions).
#[utoipa::path(get, operation_id = "activity/list-watchers-for-repo", path = "/api/v3/repos/{owner}/{repo}/subscribers", tag = "activity",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::SimpleUser>)))]
async fn subscribers(repo: VisibleRepo) -> Empty {
    of_repo(repo)
}

/// Teams with access: none (Guts has organizations without teams).
#[utoipa::path(get, operation_id = "repos/list-teams", path = "/api/v3/repos/{owner}/{repo}/teams", tag = "repos",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn teams(repo: VisibleRepo) -> Empty {
    of_repo(repo)
}

/// Deployments: none (Guts has no deployments).
#[utoipa::path(get, operation_id = "repos/list-deployments", path = "/api/v3/repos/{owner}/{repo}/deployments", tag = "repos",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn deployments(repo: VisibleRepo) -> Empty {
    of_repo(repo)
}

/// Downloads (a retired GitHub feature): none.
#[utoipa::path(get, path = "/api/v3/repos/{owner}/{repo}/downloads", tag = "repos",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn downloads(repo: VisibleRepo) -> Empty {
    of_repo(repo)
}

/// A user's followers: none (Guts has no following).
#[utoipa::path(get, operation_id = "users/list-followers-for-user", path = "/api/v3/users/{username}/followers", tag = "users",
    params(("username" = String, Path, description = "The account's login"), PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::SimpleUser>)))]
async fn followers(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Empty, ApiError> {
    of_account(&state, &login)
}

/// Whom a user follows: nobody.
#[utoipa::path(get, operation_id = "users/list-following-for-user", path = "/api/v3/users/{username}/following", tag = "users",
    params(("username" = String, Path, description = "The account's login"), PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::SimpleUser>)))]
async fn following(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Empty, ApiError> {
    of_account(&state, &login)
}

/// What a user starred: nothing.
#[utoipa::path(get, operation_id = "activity/list-repos-starred-by-user", path = "/api/v3/users/{username}/starred", tag = "activity",
    params(("username" = String, Path, description = "The account's login"), PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Repository>)))]
async fn starred(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Empty, ApiError> {
    of_account(&state, &login)
}

/// What a user watches: nothing.
#[utoipa::path(get, operation_id = "activity/list-repos-watched-by-user", path = "/api/v3/users/{username}/subscriptions", tag = "activity",
    params(("username" = String, Path, description = "The account's login"), PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Repository>)))]
async fn subscriptions(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Empty, ApiError> {
    of_account(&state, &login)
}

/// A user's gists: none (Guts has no gists).
#[utoipa::path(get, operation_id = "gists/list-for-user", path = "/api/v3/users/{username}/gists", tag = "gists",
    params(("username" = String, Path, description = "The account's login"), PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn gists(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Empty, ApiError> {
    of_account(&state, &login)
}

/// The caller's followers: none.
#[utoipa::path(get, operation_id = "users/list-followers-for-authenticated-user", path = "/api/v3/user/followers", tag = "users",
    params(PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::SimpleUser>)))]
async fn my_followers(_: AuthUser) -> Empty {
    NONE
}

/// Whom the caller follows: nobody.
#[utoipa::path(get, operation_id = "users/list-followed-by-authenticated-user", path = "/api/v3/user/following", tag = "users",
    params(PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::SimpleUser>)))]
async fn my_following(_: AuthUser) -> Empty {
    NONE
}

/// What the caller starred: nothing.
#[utoipa::path(get, operation_id = "activity/list-repos-starred-by-authenticated-user", path = "/api/v3/user/starred", tag = "activity",
    params(PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Repository>)))]
async fn my_starred(_: AuthUser) -> Empty {
    NONE
}

/// What the caller watches: nothing.
#[utoipa::path(get, operation_id = "activity/list-watched-repos-for-authenticated-user", path = "/api/v3/user/subscriptions", tag = "activity",
    params(PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Repository>)))]
async fn my_subscriptions(_: AuthUser) -> Empty {
    NONE
}

/// The caller's email addresses: none (Guts keeps no email addresses; commits it
/// writes carry a no-reply address).
#[utoipa::path(get, operation_id = "users/list-emails-for-authenticated-user", path = "/api/v3/user/emails", tag = "users",
    params(PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn my_emails(_: AuthUser) -> Empty {
    NONE
}

/// Public gists: none.
#[utoipa::path(get, operation_id = "gists/list-public", path = "/api/v3/gists/public", tag = "gists",
    params(PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn public_gists() -> Empty {
    NONE
}

/// The caller's starred gists: none.
#[utoipa::path(get, operation_id = "gists/list-starred", path = "/api/v3/gists/starred", tag = "gists",
    params(PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn starred_gists(_: AuthUser) -> Empty {
    NONE
}

/// Comments on commits: none (Guts comments on issues and pull requests).
#[utoipa::path(get, operation_id = "repos/list-commit-comments-for-repo", path = "/api/v3/repos/{owner}/{repo}/comments", tag = "repos",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn commit_comments(repo: VisibleRepo) -> Empty {
    of_repo(repo)
}

/// Milestones: none (Guts has no milestones).
#[utoipa::path(get, operation_id = "issues/list-milestones", path = "/api/v3/repos/{owner}/{repo}/milestones", tag = "issues",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn milestones(repo: VisibleRepo) -> Empty {
    of_repo(repo)
}

/// Releases: none (Guts has tags, `GET …/tags`, but no releases).
#[utoipa::path(get, operation_id = "repos/list-releases", path = "/api/v3/repos/{owner}/{repo}/releases", tag = "repos",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn releases(repo: VisibleRepo) -> Empty {
    of_repo(repo)
}

/// The caller's gists: none.
#[utoipa::path(get, operation_id = "gists/list", path = "/api/v3/gists", tag = "gists",
    params(PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn my_gists(_: AuthUser) -> Empty {
    NONE
}

/// A repository's events: none (no event stream; see the module's doc).
#[utoipa::path(get, operation_id = "activity/list-repo-events", path = "/api/v3/repos/{owner}/{repo}/events", tag = "activity",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn repo_events(repo: VisibleRepo) -> Empty {
    of_repo(repo)
}

/// Issue events of a repository: none (no event stream).
#[utoipa::path(get, operation_id = "issues/list-events-for-repo", path = "/api/v3/repos/{owner}/{repo}/issues/events", tag = "issues",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn issue_events(repo: VisibleRepo) -> Empty {
    of_repo(repo)
}

/// The caller's notifications about a repository: none (Guts sends none).
#[utoipa::path(get, operation_id = "activity/list-repo-notifications-for-authenticated-user", path = "/api/v3/repos/{owner}/{repo}/notifications", tag = "activity",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn repo_notifications(_: AuthUser, repo: VisibleRepo) -> Empty {
    of_repo(repo)
}

/// The caller's notifications: none (Guts sends none).
#[utoipa::path(get, operation_id = "activity/list-notifications-for-authenticated-user", path = "/api/v3/notifications", tag = "activity",
    params(PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn notifications(_: AuthUser) -> Empty {
    NONE
}

/// Public events: none (no event stream).
#[utoipa::path(get, operation_id = "activity/list-public-events", path = "/api/v3/events", tag = "activity",
    params(PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn public_events() -> Empty {
    NONE
}

/// An organization's public events: none (no event stream).
#[utoipa::path(get, operation_id = "activity/list-public-org-events", path = "/api/v3/orgs/{org}/events", tag = "activity",
    params(("org" = String, Path, description = "The organization's login"), PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn org_events(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Empty, ApiError> {
    state.service.org(&login)?;
    Ok(NONE)
}

/// A user's events: none (no event stream).
#[utoipa::path(get, operation_id = "activity/list-events-for-authenticated-user", path = "/api/v3/users/{username}/events", tag = "activity",
    params(("username" = String, Path, description = "The account's login"), PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn user_events(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Empty, ApiError> {
    of_account(&state, &login)
}

/// Events a user received: none (no event stream).
#[utoipa::path(get, operation_id = "activity/list-received-events-for-user", path = "/api/v3/users/{username}/received_events", tag = "activity",
    params(("username" = String, Path, description = "The account's login"), PageParams),
    responses((status = 200, description = "Always empty", body = Vec<schemas::Unmodeled>)))]
async fn received_events(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Empty, ApiError> {
    of_account(&state, &login)
}

/// The emoji map: empty (Guts renders no emoji shortcodes).
#[utoipa::path(get, operation_id = "emojis/get", path = "/api/v3/emojis", tag = "emojis",
    responses((status = 200, description = "Always empty", body = schemas::Unmodeled)))]
async fn emojis() -> Json<schemas::Unmodeled> {
    Json(schemas::Unmodeled {})
}
