//! What the web interface needs of accounts: a user's password hash (made by the
//! service, stored and replicated here with the user's record) and the tokens behind
//! browser sessions.

use super::{AccountError, Accounts, NewToken, Scope, UserRecord, decode, encode, stamp};
use redb::ReadableTable as _;

use crate::schema::USERS;

impl Accounts {
    /// Sets (or, with `None`, removes) the password hash of `login`. The hash is made by
    /// the caller: this layer stores and replicates it, nothing more.
    pub async fn set_password_hash(
        &self,
        login: &str,
        hash: Option<String>,
    ) -> Result<UserRecord, AccountError> {
        let lower = login.to_ascii_lowercase();
        let outcome = self
            .store
            .write("set_password", move |txn| {
                let mut users = txn.open_table(USERS)?;
                let Some(mut record) = users
                    .get(lower.as_str())?
                    .map(|v| decode::<UserRecord>("user", v.value()))
                    .transpose()?
                else {
                    return Ok(Err(AccountError::NoSuchUser(lower.clone())));
                };
                record.password_hash = hash.clone();
                record.updated_ms = stamp(record.updated_ms);
                users.insert(lower.as_str(), encode(&record)?.as_slice())?;
                Ok(Ok(record))
            })
            .await?;
        self.digest.invalidate();
        self.forget_sessions();
        outcome
    }

    /// Creates the token behind a browser session of `login` (see
    /// [`TokenRecord::web_session`]): every scope the account has, revoked by signing
    /// out like any token.
    pub async fn create_web_session(&self, login: &str) -> Result<NewToken, AccountError> {
        self.new_token(login, "web session", vec![Scope::Repo, Scope::Admin], true)
            .await
    }
}
