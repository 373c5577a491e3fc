//! Read models that need the accounts or the store beside a repository's state: who a
//! commit author is, who may be assigned, which organizations a user belongs to, and
//! the bodies the state names.

use guts_core::TextRef;
use guts_core::op::Role;
use guts_storage::{OrgRecord, RepoError, RepoView, UserRecord};

use crate::{Service, ServiceError};

/// The domains of the no-reply addresses a login can be read from: this node's own
/// (`{login}@users.noreply.guts`, what it writes in the merge commits it makes) and
/// GitHub's (`{login}@…` or `{id}+{login}@users.noreply.github.com`), which users
/// moving from GitHub keep in their git configuration.
const NOREPLY_DOMAINS: [&str; 2] = ["users.noreply.guts", "users.noreply.github.com"];

impl Service {
    /// The account a commit author's email names, if any. GitHub matches emails
    /// against its users' verified addresses; Guts keeps no email addresses (an
    /// account is a login and a key), so only no-reply addresses, which spell the
    /// login, are matched. Everyone else counts as an anonymous contributor.
    pub fn user_for_email(&self, email: &str) -> Option<UserRecord> {
        let (local, domain) = email.rsplit_once('@')?;
        if !NOREPLY_DOMAINS
            .iter()
            .any(|d| domain.eq_ignore_ascii_case(d))
        {
            return None;
        }
        let login = local.split_once('+').map_or(local, |(_, login)| login);
        self.accounts.user(login).ok().flatten()
    }

    /// The users an issue or pull request of `view` may be assigned to, by login: as
    /// on GitHub, whoever has push access (collaborators with write, maintain or admin
    /// roles, and the owner when the owner is a user). Bounded by the repository's
    /// access list.
    pub fn assignees(&self, view: &RepoView) -> Vec<UserRecord> {
        self.members(view, Role::Write)
            .into_iter()
            .map(|(user, _)| user)
            .collect()
    }

    /// The users with at least `at_least` in `view` (collaborators, members through
    /// its organization, the owner), each with their effective role, by login;
    /// suspended accounts left out. Bounded by the repository's access list.
    pub fn members(&self, view: &RepoView, at_least: Role) -> Vec<(UserRecord, Role)> {
        let mut out: Vec<(UserRecord, Role)> = Vec::new();
        for (key, role) in view.state.access.members() {
            if role < at_least {
                continue;
            }
            if let Ok(Some(user)) = self.accounts.user_by_key(&key)
                && !user.suspended
                && !out.iter().any(|(u, _)| u.id == user.id)
            {
                out.push((user, role));
            }
        }
        out.sort_by_key(|(u, _)| u.login.to_lowercase());
        out
    }

    /// The organizations `login` is a member of (any role), by login.
    pub fn orgs_of(&self, login: &str) -> Result<Vec<OrgRecord>, ServiceError> {
        let mut out = Vec::new();
        for org in self.accounts.orgs()? {
            if self.accounts.membership(&org.login, login)?.is_some() {
                out.push(org);
            }
        }
        out.sort_by_key(|o| o.login.to_lowercase());
        Ok(out)
    }
}

/// Bodies of issues, pull requests, comments and reviews, read when a page or a
/// response renders them: the state names them ([`TextRef`]) and the operation log
/// holds them.
#[derive(Debug)]
pub struct Texts(guts_storage::Texts);

impl Texts {
    /// The text `text` names.
    pub fn get(&self, text: &TextRef) -> Result<String, ServiceError> {
        self.0.get(text).map_err(|e| RepoError::Store(e).into())
    }
}

impl Service {
    /// A reader of bodies: take it after the view whose references it reads.
    pub fn texts(&self) -> Texts {
        Texts(self.repos.texts())
    }
}
