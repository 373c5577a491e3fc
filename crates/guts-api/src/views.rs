//! GitHub's JSON shapes for users, organizations and repositories (a repository with
//! its owner and the caller's permissions, and pages of them). Clients navigate by the
//! URLs in them, so every resource carries its absolute `url` and the related `*_url`s.

use std::sync::Arc;

use axum::Json;
use axum::response::{IntoResponse, Response};
use guts_core::{PublicKey, Role};
use guts_service::Caller;
use guts_storage::{NewToken, OrgRecord, RepoView, ServedName, UserRecord, accounts::numeric_id};
use serde_json::{Value, json};

use crate::extract::Authed;
use crate::links::Links;
use crate::pagination::Page;
use crate::state::AppState;
use crate::time::iso8601;

/// The short user object GitHub embeds (`owner`, `user`, `author`…).
pub fn simple_user(links: &Links, login: &str, id: u64, site_admin: bool) -> Value {
    let api = |p: &str| links.api(&format!("/users/{login}{p}"));
    json!({
        "login": login,
        "id": id,
        "node_id": format!("U_{id}"),
        "avatar_url": "",
        "gravatar_id": "",
        "url": api(""),
        "html_url": links.web(&format!("/{login}")),
        "repos_url": api("/repos"),
        "followers_url": api("/followers"),
        "following_url": api("/following{/other_user}"),
        "gists_url": api("/gists{/gist_id}"),
        "starred_url": api("/starred{/owner}{/repo}"),
        "subscriptions_url": api("/subscriptions"),
        "organizations_url": api("/orgs"),
        "events_url": api("/events{/privacy}"),
        "received_events_url": api("/received_events"),
        "type": "User",
        "user_view_type": "public",
        "site_admin": site_admin,
    })
}

/// The full user object of `GET /user` and `GET /users/{u}`.
pub fn user(links: &Links, user: &UserRecord) -> Value {
    let mut value = simple_user(links, &user.login, user.id, user.site_admin);
    if let Some(map) = value.as_object_mut() {
        let at = iso8601(user.created_at);
        for (k, v) in [
            ("name", Value::Null),
            ("company", Value::Null),
            ("blog", json!("")),
            ("location", Value::Null),
            ("email", Value::Null),
            ("hireable", Value::Null),
            ("bio", Value::Null),
            ("twitter_username", Value::Null),
            ("public_repos", json!(0)),
            ("public_gists", json!(0)),
            ("followers", json!(0)),
            ("following", json!(0)),
            ("created_at", json!(at)),
            ("updated_at", json!(at)),
        ] {
            map.insert(k.to_string(), v);
        }
        map.insert("public_key".to_string(), json!(user.public_key));
    }
    value
}

/// The short object of an organization where GitHub embeds an owner: a user object
/// whose `type` is `Organization`.
pub fn simple_org(links: &Links, org: &OrgRecord) -> Value {
    let mut value = simple_user(links, &org.login, org.id, false);
    if let Some(map) = value.as_object_mut() {
        map.insert("type".to_string(), json!("Organization"));
        map.insert("node_id".to_string(), json!(format!("O_{}", org.id)));
    }
    value
}

/// `GET /users/{org}`: GitHub answers an organization's login with the user shape,
/// `type: Organization`.
pub fn org_as_user(links: &Links, org: &OrgRecord) -> Value {
    let mut value = simple_org(links, org);
    if let Some(map) = value.as_object_mut() {
        let at = iso8601(org.created_at);
        map.insert("created_at".to_string(), json!(at));
        map.insert("updated_at".to_string(), json!(at));
    }
    value
}

/// GitHub's organization object (`GET /orgs/{org}`).
pub fn org(links: &Links, org: &OrgRecord, public_repos: usize) -> Value {
    let login = &org.login;
    let api = |p: &str| links.api(&format!("/orgs/{login}{p}"));
    let at = iso8601(org.created_at);
    json!({
        "login": login,
        "id": org.id,
        "node_id": format!("O_{}", org.id),
        "url": api(""),
        "repos_url": api("/repos"),
        "events_url": api("/events"),
        "hooks_url": api("/hooks"),
        "issues_url": api("/issues"),
        "members_url": api("/members{/member}"),
        "public_members_url": api("/public_members{/member}"),
        "avatar_url": "",
        "description": Value::Null,
        "name": Value::Null,
        "company": Value::Null,
        "blog": "",
        "location": Value::Null,
        "email": Value::Null,
        "is_verified": false,
        "has_organization_projects": false,
        "has_repository_projects": false,
        "public_repos": public_repos,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "html_url": links.web(&format!("/{login}")),
        "created_at": at,
        "updated_at": at,
        "archived_at": Value::Null,
        "type": "Organization",
    })
}

/// The owner of a repository as a user object: the local account if there is one,
/// else what the creating operation says (a user known only through replication).
pub fn owner(links: &Links, login: &str, account: Option<&UserRecord>, key: &PublicKey) -> Value {
    match account {
        Some(u) => simple_user(links, &u.login, u.id, u.site_admin),
        None => simple_user(links, login, numeric_id(key.as_bytes()), false),
    }
}

/// GitHub's repository object; `permissions` only when the caller is known.
/// `served`: the owner and name it is served under here (`AppState::served`).
pub fn repo(
    links: &Links,
    view: &RepoView,
    served: &ServedName,
    owner: Value,
    role: Option<Option<Role>>,
) -> Value {
    let Some(meta) = &view.state.meta else {
        return Value::Null;
    };
    let full = format!("{}/{}", served.owner, served.name);
    let api = |p: &str| links.api(&format!("/repos/{full}{p}"));
    let created = iso8601(meta.created_at.wall_ms / 1000);
    let updated = iso8601(view.updated_ms / 1000);
    let pushed = view
        .state
        .refs
        .values()
        .map(|r| r.at.wall_ms)
        .max()
        .map_or(created.clone(), |ms| iso8601(ms / 1000));
    let id = numeric_id(view.id.as_bytes());
    let mut value = json!({
        "id": id,
        "node_id": format!("R_{}", view.id),
        "name": served.name,
        "full_name": full,
        "owner": owner,
        "private": meta.private,
        "html_url": links.web(&format!("/{full}")),
        "description": if meta.description.is_empty() { Value::Null } else { json!(meta.description) },
        "fork": false,
        "url": api(""),
        "forks_url": api("/forks"),
        "keys_url": api("/keys{/key_id}"),
        "collaborators_url": api("/collaborators{/collaborator}"),
        "teams_url": api("/teams"),
        "hooks_url": api("/hooks"),
        "issue_events_url": api("/issues/events{/number}"),
        "events_url": api("/events"),
        "assignees_url": api("/assignees{/user}"),
        "branches_url": api("/branches{/branch}"),
        "tags_url": api("/tags"),
        "blobs_url": api("/git/blobs{/sha}"),
        "git_tags_url": api("/git/tags{/sha}"),
        "git_refs_url": api("/git/refs{/sha}"),
        "trees_url": api("/git/trees{/sha}"),
        "statuses_url": api("/statuses/{sha}"),
        "languages_url": api("/languages"),
        "stargazers_url": api("/stargazers"),
        "contributors_url": api("/contributors"),
        "subscribers_url": api("/subscribers"),
        "subscription_url": api("/subscription"),
        "commits_url": api("/commits{/sha}"),
        "git_commits_url": api("/git/commits{/sha}"),
        "comments_url": api("/comments{/number}"),
        "issue_comment_url": api("/issues/comments{/number}"),
        "contents_url": api("/contents/{+path}"),
        "compare_url": api("/compare/{base}...{head}"),
        "merges_url": api("/merges"),
        "archive_url": api("/{archive_format}{/ref}"),
        "downloads_url": api("/downloads"),
        "issues_url": api("/issues{/number}"),
        "pulls_url": api("/pulls{/number}"),
        "milestones_url": api("/milestones{/number}"),
        "notifications_url": api("/notifications{?since,all,participating}"),
        "labels_url": api("/labels{/name}"),
        "releases_url": api("/releases{/id}"),
        "deployments_url": api("/deployments"),
        "created_at": created,
        "updated_at": updated,
        "pushed_at": pushed,
        "git_url": links.web(&format!("/{full}.git")),
        "ssh_url": Value::Null,
        "clone_url": links.web(&format!("/{full}.git")),
        "svn_url": links.web(&format!("/{full}")),
        "homepage": Value::Null,
        "size": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": Value::Null,
        "has_issues": true,
        "has_projects": false,
        "has_downloads": false,
        "has_wiki": false,
        "has_pages": false,
        "has_discussions": false,
        "forks_count": 0,
        "mirror_url": Value::Null,
        "archived": false,
        "disabled": false,
        "open_issues_count": 0,
        "license": Value::Null,
        "allow_forking": false,
        "is_template": false,
        "topics": [],
        "visibility": if meta.private { "private" } else { "public" },
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "default_branch": meta.default_branch,
    });
    if let (Some(role), Some(map)) = (role, value.as_object_mut()) {
        let at_least = |r: Role| role.is_some_and(|have| have >= r);
        map.insert(
            "permissions".to_string(),
            json!({
                "admin": at_least(Role::Admin),
                "maintain": at_least(Role::Admin),
                "push": at_least(Role::Write),
                "triage": at_least(Role::Write),
                "pull": at_least(Role::Read) || !meta.private,
            }),
        );
    }
    value
}

/// The caller's role in a repository.
fn role_of(view: &RepoView, caller: Option<&Authed>) -> Option<Role> {
    caller?.role_in(view)
}

pub(crate) fn repository(
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
            (None, Some(org)) => simple_org(links, &org),
            _ => owner(links, &meta.owner, account.as_ref(), &meta.created_by),
        }
    } else {
        owner(links, &served.owner, None, &meta.created_by)
    };
    repo(
        links,
        view,
        &served,
        owner,
        caller.map(|c| role_of(view, Some(c))),
    )
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
        .visible_repos(Caller::from(caller))
        .into_iter()
        .filter(|v| state.served(v).owner.eq_ignore_ascii_case(owner))
        .collect();
    let (items, headers) = page.apply(theirs);
    let body: Vec<_> = items
        .iter()
        .map(|v| repository(state, links, v, caller))
        .collect();
    (headers, Json(body)).into_response()
}

/// GitHub's organization object, with its count of public repositories.
pub(crate) fn org_json(state: &AppState, links: &Links, record: &OrgRecord) -> Value {
    let public = state
        .repos
        .list()
        .iter()
        .filter(|v| v.state.meta.as_ref().is_some_and(|m| !m.private))
        .filter(|v| state.served(v).owner.eq_ignore_ascii_case(&record.login))
        .count();
    org(links, record, public)
}

/// A new account with its first token: the `201` of registration and of the admin API.
/// The only response that ever carries a token's text.
pub(crate) fn new_account(links: &Links, user: &UserRecord, token: &NewToken) -> Response {
    let mut body = self::user(links, user);
    if let Some(map) = body.as_object_mut() {
        map.insert("token".to_string(), json!(token.token.expose()));
    }
    (http::StatusCode::CREATED, Json(body)).into_response()
}
