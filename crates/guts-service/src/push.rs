//! Pushing: whether the caller may push to a repository, and the ref updates of a push
//! signed for them. A git front end (HTTP or SSH) gets the [`Pusher`] from
//! `Service::git_access`, which checks [`Service::may_push`] before any pack is read,
//! and hands it to the wire protocol, which applies what the client asked for through
//! it: the front end never holds the caller's key.

use std::sync::Arc;

use guts_core::{Keypair, RepoId, Role};
use guts_storage::{RefCommand, RefRefusal, RepoError, Repositories, Scope};

use crate::Service;
use crate::caller::Authed;
use crate::error::{Denied, ServiceError};
use crate::repos::RepoAccess;

/// The ref updates of one push, signed for the caller who may make it.
pub struct Pusher {
    repos: Arc<Repositories>,
    repo: RepoId,
    key: Keypair,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("repo", &self.repo)
            .field("key", &self.key.public())
            .finish()
    }
}

impl Service {
    /// Whether `who` may push to `access`: a token with the `repo` scope and at least
    /// the write role. What the push may then change (protected branches, reserved
    /// refs) is the fold's decision, per ref.
    pub fn may_push(&self, who: &Authed, access: &RepoAccess) -> Result<(), ServiceError> {
        who.require(Scope::Repo)?;
        if access.role.is_none_or(|r| r < Role::Write) {
            return Err(ServiceError::Forbidden(Denied::Role(Role::Write)));
        }
        if access.view.state.meta.as_ref().is_some_and(|m| m.archived) {
            return Err(ServiceError::Forbidden(Denied::Archived));
        }
        Ok(())
    }

    /// [`Service::may_push`], then what applies the push's ref updates as `who`.
    pub fn pusher(&self, who: &Authed, access: &RepoAccess) -> Result<Pusher, ServiceError> {
        self.may_push(who, access)?;
        Ok(Pusher {
            repos: self.repos.clone(),
            repo: access.view.id,
            key: self.accounts.signing_key(&who.user)?,
        })
    }
}

impl Pusher {
    /// Applies `commands` as signed `UpdateRef` operations (see
    /// [`Repositories::update_refs`]): one result per command, in order.
    pub async fn update_refs(
        &self,
        commands: Vec<RefCommand>,
        atomic: bool,
    ) -> Result<Vec<Result<(), RefRefusal>>, RepoError> {
        self.repos
            .update_refs(self.repo, &self.key, commands, atomic)
            .await
    }
}
