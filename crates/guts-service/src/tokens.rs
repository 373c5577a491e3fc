//! A user's own personal access tokens: made, listed and revoked by the user (the web
//! interface's token page), as the admin API does for any user.

use guts_storage::{NewToken, Scope, TokenRecord};

use crate::Service;
use crate::caller::Authed;
use crate::error::{FieldCode, ServiceError};

/// Longest token note, in characters.
pub const MAX_TOKEN_NOTE_CHARS: usize = 100;

impl Service {
    /// A new token of the caller's with `scopes` (never more than the caller's session
    /// may do: `admin` only for site admins). Its text exists only in what this returns.
    pub async fn create_own_token(
        &self,
        who: &Authed,
        note: &str,
        mut scopes: Vec<Scope>,
    ) -> Result<NewToken, ServiceError> {
        let note = note.trim();
        if note.is_empty() || note.chars().count() > MAX_TOKEN_NOTE_CHARS {
            return Err(ServiceError::invalid(
                "Token",
                "note",
                FieldCode::Invalid,
                Some(format!("must be 1 to {MAX_TOKEN_NOTE_CHARS} characters")),
            ));
        }
        if !who.user.site_admin {
            scopes.retain(|s| *s != Scope::Admin);
        }
        if scopes.is_empty() {
            scopes.push(Scope::Repo);
        }
        Ok(self
            .accounts
            .create_token(&who.user.login, note, scopes)
            .await?)
    }

    /// The caller's live tokens and sessions, newest first.
    pub fn own_tokens(&self, who: &Authed) -> Result<Vec<TokenRecord>, ServiceError> {
        let mut tokens = self.accounts.tokens(&who.user.login)?;
        tokens.retain(|t| !t.revoked);
        Ok(tokens)
    }

    /// Revokes one of the caller's tokens (or sessions) by id, cluster-wide.
    pub async fn revoke_own_token(&self, who: &Authed, id: u64) -> Result<(), ServiceError> {
        self.accounts.revoke_token(&who.user.login, id).await?;
        tracing::info!(login = %who.user.login, id, "token revoked");
        Ok(())
    }
}
