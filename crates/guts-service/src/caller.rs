//! Who is calling: nobody in particular, or a user through one of their tokens (or one
//! of their SSH keys, which acts like a token with the `repo` scope).

use guts_core::{PublicKey, Role};
use std::sync::Arc;

use guts_storage::{NewToken, RepoView, Scope, Session, SshKeyRecord, TokenRecord, UserRecord};

use crate::Service;
use crate::error::{Denied, ServiceError};

/// An authenticated user and the token they used (`user`, `token`, through
/// [`Session`]). Shared with the accounts' cache, so passing it along a request (the
/// rate limiter, the extractors, the handler) copies nothing.
#[derive(Debug, Clone)]
pub struct Authed(Arc<Session>);

impl std::ops::Deref for Authed {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.0
    }
}

impl Authed {
    /// The session an SSH key opens for `user` (the key's owner, or the admin who added
    /// a deploy key): a token with the `repo` scope, synthesized from the key and never
    /// stored, so every use case checks an SSH caller exactly as a token's. Its id is the
    /// key's, its name says which key (`fingerprint`, as OpenSSH prints it).
    pub(crate) fn for_ssh_key(
        user: UserRecord,
        key: PublicKey,
        record: &SshKeyRecord,
        fingerprint: &str,
    ) -> Authed {
        let token = TokenRecord {
            id: record.id,
            login: user.login.clone(),
            name: format!("ssh key {fingerprint}"),
            scopes: vec![Scope::Repo],
            created_at: record.created_at,
            revoked: false,
            user_key: Some(user.public_key.clone()),
            updated_ms: record.updated_ms,
            web_session: false,
        };
        Authed(Arc::new(Session { user, token, key }))
    }

    /// Whether the token grants `scope` (`admin` implies every scope).
    pub fn allows(&self, scope: Scope) -> bool {
        self.token.scopes.contains(&scope) || self.token.scopes.contains(&Scope::Admin)
    }

    /// [`Authed::allows`], or why not.
    pub fn require(&self, scope: Scope) -> Result<(), ServiceError> {
        if self.allows(scope) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(Denied::Scope(scope)))
        }
    }

    /// The user's public key.
    pub fn key(&self) -> PublicKey {
        self.0.key
    }

    /// The role the user holds in `view` (effective: collaborator or organization).
    pub fn role_in(&self, view: &RepoView) -> Option<Role> {
        view.state.role(&self.0.key)
    }
}

/// The caller of a use case: borrowed from the request, so passing it around costs
/// nothing.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// No credentials: sees what is public.
    Anonymous,
    User(&'a Authed),
}

impl<'a> Caller<'a> {
    pub fn user(self) -> Option<&'a Authed> {
        match self {
            Caller::Anonymous => None,
            Caller::User(authed) => Some(authed),
        }
    }

    /// The caller's role in `view`; anonymous callers have none.
    pub fn role_in(self, view: &RepoView) -> Option<Role> {
        self.user().and_then(|a| a.role_in(view))
    }

    /// Site admins see every repository, private ones included.
    pub fn is_site_admin(self) -> bool {
        self.user().is_some_and(|a| a.user.site_admin)
    }
}

impl<'a> From<Option<&'a Authed>> for Caller<'a> {
    fn from(authed: Option<&'a Authed>) -> Caller<'a> {
        authed.map_or(Caller::Anonymous, Caller::User)
    }
}

impl<'a> From<&'a Authed> for Caller<'a> {
    fn from(authed: &'a Authed) -> Caller<'a> {
        Caller::User(authed)
    }
}

impl Service {
    /// The user a token (as sent: `token`/`Bearer` or git's Basic password) names:
    /// [`ServiceError::BadCredentials`] for one that matches no live token of an active
    /// user (revoked, suspended, unknown), whatever the request.
    pub fn authenticate(&self, token: &str) -> Result<Authed, ServiceError> {
        match self.accounts.session(token) {
            Ok(Some(session)) => Ok(Authed(session)),
            Ok(None) => Err(ServiceError::BadCredentials),
            Err(e) => {
                tracing::error!(error = %e, "token lookup failed");
                Err(ServiceError::Internal)
            }
        }
    }
}

impl Service {
    /// The account `login` (any case), or [`ServiceError::NotFound`].
    pub fn user(&self, login: &str) -> Result<UserRecord, ServiceError> {
        self.accounts.user(login)?.ok_or(ServiceError::NotFound)
    }

    /// Creates account `login` and its first token (named `initial`, with `scopes`):
    /// what open registration and the admin API both do. The token's text exists only
    /// in what this returns.
    pub async fn create_account(
        &self,
        login: &str,
        site_admin: bool,
        scopes: Vec<Scope>,
    ) -> Result<(UserRecord, NewToken), ServiceError> {
        let user = self.accounts.create_user(login, site_admin).await?;
        let token = self
            .accounts
            .create_token(&user.login, "initial", scopes)
            .await?;
        tracing::info!(login = %user.login, site_admin, "account created");
        Ok((user, token))
    }
}
