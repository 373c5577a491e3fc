//! GitHub's repository object (with its owner, and the caller's permissions when the
//! caller is known), and pages of them.

use std::sync::Arc;

use crate::json::Json;
use axum::response::{IntoResponse, Response};
use guts_core::Role;
use guts_service::Caller;
use guts_storage::{RepoView, ServedName, accounts::numeric_id};
use serde::Serialize;

use super::{Null, Shared, SimpleUser, join};
use crate::extract::Authed;
use crate::links::{API_PREFIX, Links};
use crate::pagination::Page;
use crate::state::AppState;
use crate::time::iso8601;

/// GitHub's repository object. Guts has no forks, stars, wikis or languages: those
/// fields are constant.
#[derive(Debug, Serialize)]
pub(crate) struct Repository {
    id: u64,
    node_id: String,
    name: String,
    full_name: String,
    /// Shared: a pull request's `head.user` and `base.user` are the owner too.
    pub(crate) owner: Shared<SimpleUser>,
    private: bool,
    html_url: String,
    description: Option<String>,
    fork: bool,
    url: String,
    forks_url: String,
    keys_url: String,
    collaborators_url: String,
    teams_url: String,
    hooks_url: String,
    issue_events_url: String,
    events_url: String,
    assignees_url: String,
    branches_url: String,
    tags_url: String,
    blobs_url: String,
    git_tags_url: String,
    git_refs_url: String,
    trees_url: String,
    statuses_url: String,
    languages_url: String,
    stargazers_url: String,
    contributors_url: String,
    subscribers_url: String,
    subscription_url: String,
    commits_url: String,
    git_commits_url: String,
    comments_url: String,
    issue_comment_url: String,
    contents_url: String,
    compare_url: String,
    merges_url: String,
    archive_url: String,
    downloads_url: String,
    issues_url: String,
    pulls_url: String,
    milestones_url: String,
    notifications_url: String,
    labels_url: String,
    releases_url: String,
    deployments_url: String,
    created_at: String,
    updated_at: String,
    pushed_at: String,
    git_url: String,
    /// `None` only without an SSH server (null, where GitHub always has a string).
    ssh_url: Option<String>,
    clone_url: String,
    svn_url: String,
    homepage: Option<String>,
    size: u64,
    stargazers_count: u64,
    watchers_count: u64,
    language: Null,
    has_issues: bool,
    has_projects: bool,
    has_downloads: bool,
    has_wiki: bool,
    has_pages: bool,
    has_discussions: bool,
    forks_count: u64,
    /// Repositories in the fork network (Guts has no forks: 0).
    network_count: u64,
    /// Watchers (Guts has no subscriptions: 0).
    subscribers_count: u64,
    mirror_url: Null,
    archived: bool,
    disabled: bool,
    open_issues_count: u64,
    license: Null,
    allow_forking: bool,
    is_template: bool,
    topics: &'static [&'static str],
    /// `public` or `private`.
    visibility: &'static str,
    forks: u64,
    open_issues: u64,
    watchers: u64,
    default_branch: String,
    /// Only when the caller is known (GitHub omits it for anonymous callers).
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<Permissions>,
}

/// What the caller may do in a repository, in GitHub's five levels.
#[derive(Debug, Serialize)]
pub(crate) struct Permissions {
    admin: bool,
    maintain: bool,
    push: bool,
    triage: bool,
    pull: bool,
}

impl Permissions {
    pub(crate) fn new(role: Option<Role>, private: bool) -> Self {
        let at_least = |r: Role| role.is_some_and(|have| have >= r);
        Permissions {
            admin: at_least(Role::Admin),
            maintain: at_least(Role::Admin),
            push: at_least(Role::Write),
            triage: at_least(Role::Write),
            pull: at_least(Role::Read) || !private,
        }
    }
}

impl Repository {
    /// `view` served as `served` (`AppState::served`), owned by `owner`; `role`: the
    /// caller's role when the caller is known. `None` for a repository without its
    /// creation (GitHub's answer is then `null`).
    pub(crate) fn new(
        links: &Links,
        view: &RepoView,
        served: &ServedName,
        owner: SimpleUser,
        role: Option<Option<Role>>,
    ) -> Option<Self> {
        let meta = view.state.meta.as_ref()?;
        let full = format!("{}/{}", served.owner, served.name);
        let url = [links.origin(), API_PREFIX, "/repos/", &full].concat();
        let api = |suffix: &str| join(&url, suffix);
        let html_url = [links.origin(), "/", &full].concat();
        let git_url = join(&html_url, ".git");
        let created = iso8601(meta.created_at.wall_ms / 1000);
        let pushed = view
            .state
            .refs
            .values()
            .map(|r| r.at.wall_ms)
            .max()
            .map_or_else(|| created.clone(), |ms| iso8601(ms / 1000));
        Some(Repository {
            id: numeric_id(view.id.as_bytes()),
            node_id: format!("R_{}", view.id),
            name: served.name.clone(),
            owner: Shared::new(owner),
            private: meta.private,
            description: super::non_empty(&meta.description).map(str::to_owned),
            fork: false,
            forks_url: api("/forks"),
            keys_url: api("/keys{/key_id}"),
            collaborators_url: api("/collaborators{/collaborator}"),
            teams_url: api("/teams"),
            hooks_url: api("/hooks"),
            issue_events_url: api("/issues/events{/number}"),
            events_url: api("/events"),
            assignees_url: api("/assignees{/user}"),
            branches_url: api("/branches{/branch}"),
            tags_url: api("/tags"),
            blobs_url: api("/git/blobs{/sha}"),
            git_tags_url: api("/git/tags{/sha}"),
            git_refs_url: api("/git/refs{/sha}"),
            trees_url: api("/git/trees{/sha}"),
            statuses_url: api("/statuses/{sha}"),
            languages_url: api("/languages"),
            stargazers_url: api("/stargazers"),
            contributors_url: api("/contributors"),
            subscribers_url: api("/subscribers"),
            subscription_url: api("/subscription"),
            commits_url: api("/commits{/sha}"),
            git_commits_url: api("/git/commits{/sha}"),
            comments_url: api("/comments{/number}"),
            issue_comment_url: api("/issues/comments{/number}"),
            contents_url: api("/contents/{+path}"),
            compare_url: api("/compare/{base}...{head}"),
            merges_url: api("/merges"),
            archive_url: api("/{archive_format}{/ref}"),
            downloads_url: api("/downloads"),
            issues_url: api("/issues{/number}"),
            pulls_url: api("/pulls{/number}"),
            milestones_url: api("/milestones{/number}"),
            notifications_url: api("/notifications{?since,all,participating}"),
            labels_url: api("/labels{/name}"),
            releases_url: api("/releases{/id}"),
            deployments_url: api("/deployments"),
            url,
            created_at: created,
            updated_at: iso8601(view.updated_ms / 1000),
            pushed_at: pushed,
            clone_url: git_url.clone(),
            git_url,
            ssh_url: links.ssh_url(&full),
            svn_url: html_url.clone(),
            html_url,
            full_name: full,
            homepage: super::non_empty(&meta.homepage).map(str::to_owned),
            size: 0,
            stargazers_count: 0,
            watchers_count: 0,
            language: Null,
            has_issues: meta.has_issues,
            has_projects: false,
            has_downloads: false,
            has_wiki: false,
            has_pages: false,
            has_discussions: false,
            forks_count: 0,
            network_count: 0,
            subscribers_count: 0,
            mirror_url: Null,
            archived: meta.archived,
            disabled: false,
            open_issues_count: 0,
            license: Null,
            allow_forking: false,
            is_template: false,
            topics: &[],
            visibility: if meta.private { "private" } else { "public" },
            forks: 0,
            open_issues: 0,
            watchers: 0,
            default_branch: meta.default_branch.clone(),
            permissions: role.map(|role| Permissions::new(role, meta.private)),
        })
    }
}

/// The repository object of `view` as `caller` sees it (with `permissions` when the
/// caller is known); `None` (`null`) for a repository without its creation.
pub(crate) fn repository(
    state: &AppState,
    links: &Links,
    view: &RepoView,
    caller: Option<&Authed>,
) -> Option<Repository> {
    let meta = view.state.meta.as_ref()?;
    let served = state.served(view);
    // A repository whose author does not hold its login here (another cluster's) is
    // owned by its author, never by the local account of that login.
    let owner = if served.is_bound(meta) {
        let account = state.accounts.user(&meta.owner).ok().flatten();
        match (&account, state.accounts.org(&meta.owner).ok().flatten()) {
            (None, Some(org)) => SimpleUser::org(links, &org),
            _ => SimpleUser::owner(links, &meta.owner, account.as_ref(), &meta.created_by),
        }
    } else {
        SimpleUser::owner(links, &served.owner, None, &meta.created_by)
    };
    let role = caller.map(|c| c.role_in(view));
    Repository::new(links, view, &served, owner, role)
}

/// One page of the repositories owned by `owner` (a user or an organization) that the
/// caller may see.
pub(crate) fn owned_repositories(
    state: &AppState,
    links: &Links,
    page: &Page,
    caller: Option<&Authed>,
    owner: &str,
) -> Response {
    let theirs: Vec<Arc<RepoView>> = state
        .service
        .visible_repos_of(Caller::from(caller), Some(owner));
    let (items, headers) = page.apply(theirs);
    let body: Vec<Option<Repository>> = items
        .iter()
        .map(|v| repository(state, links, v, caller))
        .collect();
    (headers, Json(body)).into_response()
}
