//! What the web interface needs of accounts: a user's password hash (made by the
//! service, stored and replicated here with the user's record) and the tokens behind
//! browser sessions.

use super::{AccountError, Accounts, NewToken, Scope, UserRecord};

impl Accounts {
    /// Sets (or, with `None`, removes) the password hash of `login`. The hash is made by
    /// the caller: this layer stores and replicates it, nothing more.
    pub async fn set_password_hash(
        &self,
        login: &str,
        hash: Option<String>,
    ) -> Result<UserRecord, AccountError> {
        self.update_user("set_password", login, move |record| {
            record.password_hash = hash.clone();
            true
        })
        .await
    }

    /// Creates the token behind a browser session of `login` (see
    /// [`TokenRecord::web_session`]): every scope the account has, revoked by signing
    /// out like any token.
    pub async fn create_web_session(&self, login: &str) -> Result<NewToken, AccountError> {
        self.new_token(login, "web session", vec![Scope::Repo, Scope::Admin], true)
            .await
    }
}
