//! The API's own description of itself: GitHub's `root` (the URL templates of
//! `GET /`) and `api-overview` (`GET /meta`).

use serde::Serialize;

use crate::links::Links;

/// GitHub's `root`. Every key is required by GitHub's description, so each is given
/// as GitHub spells it, on this node's origin; those whose resource Guts does not
/// serve yet (search, gists, emojis, events, feeds, notifications, keys, emails,
/// followers, teams, stars, authorizations) answer 404 until it does.
#[derive(Debug, Serialize)]
pub(crate) struct Root {
    current_user_url: String,
    current_user_authorizations_html_url: String,
    authorizations_url: String,
    code_search_url: String,
    commit_search_url: String,
    emails_url: String,
    emojis_url: String,
    events_url: String,
    feeds_url: String,
    followers_url: String,
    following_url: String,
    gists_url: String,
    issue_search_url: String,
    issues_url: String,
    keys_url: String,
    label_search_url: String,
    notifications_url: String,
    organization_url: String,
    organization_repositories_url: String,
    organization_teams_url: String,
    public_gists_url: String,
    rate_limit_url: String,
    repository_url: String,
    repository_search_url: String,
    current_user_repositories_url: String,
    starred_url: String,
    starred_gists_url: String,
    user_url: String,
    user_organizations_url: String,
    user_repositories_url: String,
    user_search_url: String,
}

impl Root {
    pub(crate) fn new(links: &Links) -> Root {
        let api = |path: &str| links.api(path);
        let search = "{&page,per_page,sort,order}";
        Root {
            current_user_url: api("/user"),
            current_user_authorizations_html_url: links
                .web("/settings/connections/applications{/client_id}"),
            authorizations_url: api("/authorizations"),
            code_search_url: api(&format!("/search/code?q={{query}}{search}")),
            commit_search_url: api(&format!("/search/commits?q={{query}}{search}")),
            emails_url: api("/user/emails"),
            emojis_url: api("/emojis"),
            events_url: api("/events"),
            feeds_url: api("/feeds"),
            followers_url: api("/user/followers"),
            following_url: api("/user/following{/target}"),
            gists_url: api("/gists{/gist_id}"),
            issue_search_url: api(&format!("/search/issues?q={{query}}{search}")),
            issues_url: api("/issues"),
            keys_url: api("/user/keys"),
            label_search_url: api(
                "/search/labels?q={query}&repository_id={repository_id}{&page,per_page}",
            ),
            notifications_url: api("/notifications"),
            organization_url: api("/orgs/{org}"),
            organization_repositories_url: api("/orgs/{org}/repos{?type,page,per_page,sort}"),
            organization_teams_url: api("/orgs/{org}/teams"),
            public_gists_url: api("/gists/public"),
            rate_limit_url: api("/rate_limit"),
            repository_url: api("/repos/{owner}/{repo}"),
            repository_search_url: api(&format!("/search/repositories?q={{query}}{search}")),
            current_user_repositories_url: api("/user/repos{?type,page,per_page,sort}"),
            starred_url: api("/user/starred{/owner}{/repo}"),
            starred_gists_url: api("/gists/starred"),
            user_url: api("/users/{user}"),
            user_organizations_url: api("/user/orgs"),
            user_repositories_url: api("/users/{user}/repos{?type,page,per_page,sort}"),
            user_search_url: api(&format!("/search/users?q={{query}}{search}")),
        }
    }
}

/// GitHub's `api-overview`. Its IP ranges and domains describe GitHub's fleet; a node
/// has no such lists to publish, so only what is true of every node is given.
#[derive(Debug, Serialize)]
pub(crate) struct ApiOverview {
    /// No passwords: the API and git take tokens only (as the Basic password too).
    verifiable_password_authentication: bool,
}

impl ApiOverview {
    pub(crate) fn new() -> ApiOverview {
        ApiOverview {
            verifiable_password_authentication: false,
        }
    }
}
