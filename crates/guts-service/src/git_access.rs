//! Who may fetch from or push to a repository over git, whatever the transport: git
//! over HTTP (a token, or nobody) and git over SSH (a user key, or a deploy key that
//! opens one repository). One use case, so the two transports cannot drift apart on
//! visibility, roles, scopes or archived repositories.

use guts_core::Role;

use crate::Service;
use crate::caller::{Authed, Caller};
use crate::error::ServiceError;
use crate::push::Pusher;
use crate::repos::RepoAccess;
use crate::ssh_keys::DeployLimit;

/// What a git command needs: upload-pack reads, receive-pack writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitNeed {
    Read,
    Write,
}

/// What a git front end may do with the repository it asked for.
#[derive(Debug)]
pub struct GitAccess {
    pub access: RepoAccess,
    /// For [`GitNeed::Write`]: what signs the push's ref updates.
    pub pusher: Option<Pusher>,
}

impl Service {
    /// Repository `owner/name` (a trailing `.git` ignored) for a git command of `need`
    /// by `who` (`None`: anonymous), narrowed to one repository and role by `limit`.
    ///
    /// [`ServiceError::NotFound`] when the repository is not there for the caller
    /// (private, or outside a deploy key's repository); [`ServiceError::Forbidden`]
    /// when it is visible but the caller may not push; pushing needs a caller.
    pub fn git_access(
        &self,
        who: Option<&Authed>,
        limit: Option<DeployLimit>,
        owner: &str,
        name: &str,
        need: GitNeed,
    ) -> Result<GitAccess, ServiceError> {
        let mut access = self.repo(Caller::from(who), owner, name)?;
        if let Some(limit) = limit {
            if access.view.id != limit.repo {
                return Err(ServiceError::NotFound);
            }
            let cap = if limit.read_only {
                Role::Read
            } else {
                Role::Write
            };
            // A deploy key reads its repository even where its adder's role would not
            // show (a public repository); it never does more than its own permission
            // nor more than its adder may.
            access.role = Some(access.role.map_or(Role::Read, |r| r.min(cap)));
        }
        let pusher = match (need, who) {
            (GitNeed::Read, _) => None,
            (GitNeed::Write, None) => return Err(ServiceError::BadCredentials),
            (GitNeed::Write, Some(who)) => Some(self.pusher(who, &access)?),
        };
        Ok(GitAccess { access, pusher })
    }
}
