//! Organizations: their repositories and memberships.
//!
//! An organization signs with a key of its own that the cluster secret derives
//! (`Accounts::org_signing_key`). Its key creates its repositories and is their Owner;
//! it makes the creating member a repository admin (`SetRole`) and gives every member
//! access through membership (`SetOrgAccess`: admin for org admins, read for members,
//! GitHub's default base permission). Every membership change is signed into each of
//! the organization's repositories by the node that accepted it, so the fold decides
//! what a member may do at each operation's causal past; leaving the organization ends
//! every role its member held in them.

use std::sync::Arc;

use guts_core::{Payload, PublicKey, Role};
use guts_storage::{OrgRecord, OrgRole, RepoView, Scope, UserRecord};

use crate::Service;
use crate::caller::Authed;
use crate::error::{Denied, ServiceError};
use crate::repos::NewRepo;

/// The role a membership gives in each of the organization's repositories.
fn access_of(role: OrgRole) -> Role {
    match role {
        OrgRole::Admin => Role::Admin,
        OrgRole::Member => Role::Read,
    }
}

/// A stored user's public key (unreadable only if the store is corrupt).
fn key_of(user: &UserRecord) -> Result<PublicKey, ServiceError> {
    user.public_key().map_err(|e| {
        tracing::error!(error = %e, login = %user.login, "stored user key unreadable");
        ServiceError::Internal
    })
}

impl Service {
    /// Organization `login`, or [`ServiceError::NotFound`].
    pub fn org(&self, login: &str) -> Result<OrgRecord, ServiceError> {
        self.accounts.org(login)?.ok_or(ServiceError::NotFound)
    }

    /// `login`'s role in `org`, if they are a member.
    pub fn org_role(&self, org: &OrgRecord, login: &str) -> Result<Option<OrgRole>, ServiceError> {
        Ok(self.accounts.membership(&org.login, login)?)
    }

    /// Creates a repository of organization `org` as `who`, who must be a member. The
    /// org's key signs `CreateRepo`, makes `who` a repository admin and gives each
    /// member their access through membership.
    pub async fn create_org_repo(
        &self,
        who: &Authed,
        org: &OrgRecord,
        new: NewRepo,
    ) -> Result<Arc<RepoView>, ServiceError> {
        if self.org_role(org, &who.user.login)?.is_none() {
            return Err(ServiceError::Forbidden(Denied::NotOrgMember));
        }
        who.require(Scope::Repo)?;
        let key = self.accounts.org_signing_key(&org.login);
        let auto_init = new.auto_init;
        let mut view = self.create_signed(&key, &org.login, new).await?;
        let payload = Payload::SetRole {
            user: who.key(),
            role: Some(Role::Admin),
        };
        view = self.append_signed(&view, &key, payload).await?.0;
        for member in self.accounts.members(&org.login)? {
            let Some(user) = self.accounts.user(&member.login)? else {
                continue;
            };
            let payload = Payload::SetOrgAccess {
                user: key_of(&user)?,
                role: Some(access_of(member.role)),
            };
            view = self.append_signed(&view, &key, payload).await?.0;
        }
        self.initialise(who, view, auto_init).await
    }

    /// [`Denied::NotOrgAdmin`] unless `who` administers `org` (site admins always do).
    pub(crate) fn require_org_admin(
        &self,
        who: &Authed,
        org: &OrgRecord,
    ) -> Result<(), ServiceError> {
        who.require(Scope::Repo)?;
        if who.user.site_admin || self.org_role(org, &who.user.login)? == Some(OrgRole::Admin) {
            return Ok(());
        }
        Err(ServiceError::Forbidden(Denied::NotOrgAdmin))
    }

    /// Adds `user` to `org` with `role` or changes their role, as `who` (an org admin),
    /// then signs the access it gives into each of the org's repositories. The record
    /// first, then the repositories: a crash between leaves the member with less
    /// access, never more, and repeating the call completes it.
    pub async fn set_membership(
        &self,
        who: &Authed,
        org: &OrgRecord,
        user: &UserRecord,
        role: OrgRole,
    ) -> Result<(), ServiceError> {
        self.require_org_admin(who, org)?;
        self.accounts
            .set_membership(&org.login, &user.login, Some(role))
            .await?;
        self.sign_membership(org, user, Some(role)).await?;
        tracing::info!(org = %org.login, member = %user.login, ?role, "membership set");
        Ok(())
    }

    /// Removes `login` from `org` as `who` (an org admin; the last admin stays). The
    /// repositories first, then the record: a crash between leaves the member with less
    /// access, never more, and repeating the call (the record still says member)
    /// completes it.
    pub async fn remove_membership(
        &self,
        who: &Authed,
        org: &OrgRecord,
        login: &str,
    ) -> Result<(), ServiceError> {
        self.require_org_admin(who, org)?;
        let Some(role) = self.org_role(org, login)? else {
            return Err(ServiceError::NotFound);
        };
        let user = self.accounts.user(login)?.ok_or(ServiceError::NotFound)?;
        if role == OrgRole::Admin {
            let members = self.accounts.members(&org.login)?;
            if members.iter().filter(|m| m.role == OrgRole::Admin).count() <= 1 {
                return Err(guts_storage::AccountError::LastOrgAdmin.into());
            }
        }
        self.sign_membership(org, &user, None).await?;
        if let Err(e) = self
            .accounts
            .set_membership(&org.login, &user.login, None)
            .await
        {
            // Refused after all (a concurrent demotion): give back what was taken.
            self.sign_membership(org, &user, Some(role)).await?;
            return Err(e.into());
        }
        tracing::info!(org = %org.login, member = %user.login, "membership removed");
        Ok(())
    }

    /// Signs `user`'s access through membership (`None`: they left) into every
    /// repository the organization's key owns, where it differs from what the
    /// repository has.
    async fn sign_membership(
        &self,
        org: &OrgRecord,
        user: &UserRecord,
        role: Option<OrgRole>,
    ) -> Result<(), ServiceError> {
        let key = self.accounts.org_signing_key(&org.login);
        let member = key_of(user)?;
        let wanted = role.map(access_of);
        // Decided from what is kept of every repository; only those that change load.
        for listing in self.repos.listings() {
            let header = &listing.header;
            let owned = header.access.role(&key.public()) == Some(Role::Owner)
                && header
                    .meta
                    .as_ref()
                    .is_some_and(|m| m.owner.eq_ignore_ascii_case(&org.login));
            if !owned {
                continue;
            }
            let done = match wanted {
                Some(_) => header.access.org.get(&member).copied() == wanted,
                // Leaving ends collaborator roles too: done only when none is left.
                None => header.access.role(&member).is_none(),
            };
            if done {
                continue;
            }
            let Some(view) = self.repos.get(listing.id) else {
                continue;
            };
            let payload = Payload::SetOrgAccess {
                user: member,
                role: wanted,
            };
            self.append_signed(&view, &key, payload).await?;
        }
        Ok(())
    }
}
