//! Users and organizations as GitHub shows them: the simple user that every other
//! object embeds (also for an organization, with `type: Organization`), the full user
//! of `/user` and `/users/{u}`, the organization object, and the new-account answer
//! with its first token's text.

use crate::json::Json;
use axum::response::{IntoResponse, Response};
use guts_core::PublicKey;
use guts_storage::{NewToken, OrgRecord, UserRecord, accounts::numeric_id};
use serde::Serialize;

use super::{Null, join};
use crate::links::{API_PREFIX, Links};
use crate::state::AppState;
use crate::time::iso8601;

/// The short user object GitHub embeds (`owner`, `user`, `author`…).
#[derive(Debug, Serialize)]
pub(crate) struct SimpleUser {
    login: String,
    id: u64,
    /// `U_{id}` for a user, `O_{id}` for an organization.
    node_id: String,
    avatar_url: String,
    gravatar_id: &'static str,
    url: String,
    html_url: String,
    repos_url: String,
    followers_url: String,
    following_url: String,
    gists_url: String,
    starred_url: String,
    subscriptions_url: String,
    organizations_url: String,
    events_url: String,
    received_events_url: String,
    /// `User` or `Organization`.
    #[serde(rename = "type")]
    kind: &'static str,
    user_view_type: &'static str,
    site_admin: bool,
}

impl SimpleUser {
    /// The user's login (a push's `pusher`).
    pub(crate) fn login(&self) -> &str {
        &self.login
    }

    /// The user's avatar, which a commit status repeats.
    pub(crate) fn avatar_url(&self) -> &str {
        &self.avatar_url
    }

    /// A user known by login and id: a local account, or an author known only through
    /// replication.
    pub(crate) fn new(links: &Links, login: &str, id: u64, site_admin: bool) -> Self {
        Self::build(links, login, id, format!("U_{id}"), "User", site_admin)
    }

    /// A local account.
    pub(crate) fn of(links: &Links, user: &UserRecord) -> Self {
        Self::new(links, &user.login, user.id, user.site_admin)
    }

    /// An organization where GitHub embeds an owner: a user object whose `type` is
    /// `Organization`.
    pub(crate) fn org(links: &Links, org: &OrgRecord) -> Self {
        let node_id = format!("O_{}", org.id);
        Self::build(links, &org.login, org.id, node_id, "Organization", false)
    }

    fn build(
        links: &Links,
        login: &str,
        id: u64,
        node_id: String,
        kind: &'static str,
        site_admin: bool,
    ) -> Self {
        let url = [links.origin(), API_PREFIX, "/users/", login].concat();
        let api = |suffix: &str| join(&url, suffix);
        SimpleUser {
            login: login.to_owned(),
            id,
            node_id,
            avatar_url: links.avatar(id),
            gravatar_id: "",
            html_url: [links.origin(), "/", login].concat(),
            repos_url: api("/repos"),
            followers_url: api("/followers"),
            following_url: api("/following{/other_user}"),
            gists_url: api("/gists{/gist_id}"),
            starred_url: api("/starred{/owner}{/repo}"),
            subscriptions_url: api("/subscriptions"),
            organizations_url: api("/orgs"),
            events_url: api("/events{/privacy}"),
            received_events_url: api("/received_events"),
            url,
            kind,
            user_view_type: "public",
            site_admin,
        }
    }

    /// The owner of a repository: the local account if there is one, else what the
    /// creating operation says (a user known only through replication).
    pub(crate) fn owner(
        links: &Links,
        login: &str,
        account: Option<&UserRecord>,
        key: &PublicKey,
    ) -> Self {
        match account {
            Some(user) => Self::of(links, user),
            None => Self::new(links, login, numeric_id(key.as_bytes()), false),
        }
    }
}

/// The full user object of `GET /user` and `GET /users/{u}`: the simple user with the
/// profile, which Guts does not keep (nulls, zeros), and the account's key.
#[derive(Debug, Serialize)]
pub(crate) struct User {
    #[serde(flatten)]
    user: SimpleUser,
    name: Null,
    company: Null,
    blog: &'static str,
    location: Null,
    email: Null,
    hireable: Null,
    bio: Null,
    twitter_username: Null,
    public_repos: u64,
    public_gists: u64,
    followers: u64,
    following: u64,
    created_at: String,
    updated_at: String,
}

impl User {
    pub(crate) fn new(links: &Links, user: &UserRecord) -> Self {
        let at = iso8601(user.created_at);
        User {
            user: SimpleUser::of(links, user),
            name: Null,
            company: Null,
            blog: "",
            location: Null,
            email: Null,
            hireable: Null,
            bio: Null,
            twitter_username: Null,
            public_repos: 0,
            public_gists: 0,
            followers: 0,
            following: 0,
            created_at: at.clone(),
            updated_at: at,
        }
    }
}

/// `GET /users/{org}`: GitHub answers an organization's login with the user shape,
/// `type: Organization`, and its dates.
#[derive(Debug, Serialize)]
pub(crate) struct OrgAsUser {
    #[serde(flatten)]
    user: SimpleUser,
    created_at: String,
    updated_at: String,
}

impl OrgAsUser {
    pub(crate) fn new(links: &Links, org: &OrgRecord) -> Self {
        let at = iso8601(org.created_at);
        OrgAsUser {
            user: SimpleUser::org(links, org),
            created_at: at.clone(),
            updated_at: at,
        }
    }
}

/// The short organization object GitHub embeds (`organization-simple`: in a
/// membership, in an organization list).
#[derive(Debug, Serialize)]
pub(crate) struct OrgSimple {
    login: String,
    id: u64,
    node_id: String,
    url: String,
    repos_url: String,
    events_url: String,
    hooks_url: String,
    issues_url: String,
    members_url: String,
    public_members_url: String,
    avatar_url: String,
    /// Organizations have no description in Guts.
    description: Null,
}

impl OrgSimple {
    pub(crate) fn new(links: &Links, org: &OrgRecord) -> Self {
        let login = org.login.as_str();
        let url = [links.origin(), API_PREFIX, "/orgs/", login].concat();
        let api = |suffix: &str| join(&url, suffix);
        OrgSimple {
            login: login.to_owned(),
            id: org.id,
            node_id: format!("O_{}", org.id),
            repos_url: api("/repos"),
            events_url: api("/events"),
            hooks_url: api("/hooks"),
            issues_url: api("/issues"),
            members_url: api("/members{/member}"),
            public_members_url: api("/public_members{/member}"),
            url,
            avatar_url: links.avatar(org.id),
            description: Null,
        }
    }
}

/// GitHub's organization object (`GET /orgs/{org}`, `organization-full`): the short
/// one and its counts and dates. GitHub's optional strings (`name`, `company`, `blog`,
/// `location`, `email`) are left out: Guts has none, and the schema allows no `null`.
#[derive(Debug, Serialize)]
pub(crate) struct Org {
    #[serde(flatten)]
    org: OrgSimple,
    is_verified: bool,
    has_organization_projects: bool,
    has_repository_projects: bool,
    public_repos: usize,
    public_gists: u64,
    followers: u64,
    following: u64,
    html_url: String,
    created_at: String,
    updated_at: String,
    archived_at: Null,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl Org {
    /// `org` with its count of public repositories.
    pub(crate) fn new(links: &Links, org: &OrgRecord, public_repos: usize) -> Self {
        let at = iso8601(org.created_at);
        Org {
            org: OrgSimple::new(links, org),
            is_verified: false,
            has_organization_projects: false,
            has_repository_projects: false,
            public_repos,
            public_gists: 0,
            followers: 0,
            following: 0,
            html_url: [links.origin(), "/", org.login.as_str()].concat(),
            created_at: at.clone(),
            updated_at: at,
            archived_at: Null,
            kind: "Organization",
        }
    }
}

/// A user as a collaborator of a repository (`collaborator`): the short user with
/// what their role lets them do, in GitHub's five levels and by its name.
#[derive(Debug, Serialize)]
pub(crate) struct Collaborator {
    #[serde(flatten)]
    user: SimpleUser,
    permissions: super::repos::Permissions,
    role_name: &'static str,
}

impl Collaborator {
    /// `user` holding `role` (`None`: no role), which GitHub names `role_name`.
    pub(crate) fn new(
        links: &Links,
        user: &UserRecord,
        role: Option<guts_core::Role>,
        role_name: &'static str,
    ) -> Self {
        Collaborator {
            user: SimpleUser::of(links, user),
            permissions: super::repos::Permissions::new(role, true),
            role_name,
        }
    }
}

/// GitHub's organization object, with its count of public repositories.
pub(crate) fn org_json(state: &AppState, links: &Links, record: &OrgRecord) -> Org {
    let public = state
        .repos
        .list()
        .iter()
        .filter(|v| v.state.meta.as_ref().is_some_and(|m| !m.private))
        .filter(|v| state.served(v).owner.eq_ignore_ascii_case(&record.login))
        .count();
    Org::new(links, record, public)
}

/// A new account with its first token: the user object and the token's text, shown
/// this once.
#[derive(Debug, Serialize)]
pub(crate) struct NewAccount<'a> {
    #[serde(flatten)]
    user: User,
    /// Hex of the account's ed25519 key (a Guts extension, outside GitHub's user).
    public_key: &'a str,
    token: &'a str,
}

/// The `201` of registration and of the admin API's account creation.
pub(crate) fn new_account(links: &Links, user: &UserRecord, token: &NewToken) -> Response {
    let body = NewAccount {
        user: User::new(links, user),
        public_key: &user.public_key,
        token: token.token.expose(),
    };
    (http::StatusCode::CREATED, Json(body)).into_response()
}

/// GitHub's `contributor`: a user with their commit count, or, with `anon=1`, an
/// author no account is known for (`type: Anonymous`, their name and email).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Contributor {
    User(Box<UserContributor>),
    Anonymous(AnonymousContributor),
}

#[derive(Debug, Serialize)]
pub(crate) struct UserContributor {
    #[serde(flatten)]
    user: SimpleUser,
    contributions: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct AnonymousContributor {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    email: String,
    contributions: u64,
}

impl Contributor {
    pub(crate) fn user(links: &Links, user: &UserRecord, contributions: u64) -> Self {
        Contributor::User(Box::new(UserContributor {
            user: SimpleUser::of(links, user),
            contributions,
        }))
    }

    pub(crate) fn anonymous(name: String, email: String, contributions: u64) -> Self {
        Contributor::Anonymous(AnonymousContributor {
            kind: "Anonymous",
            name,
            email,
            contributions,
        })
    }
}
