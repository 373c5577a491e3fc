//! Changes to a user's record (suspension, the web password's hash: made by the
//! service, stored and replicated here), each one stamped transaction, and the tokens
//! behind browser sessions.

use redb::ReadableTable as _;

use super::{AccountError, Accounts, NewToken, Scope, UserRecord, decode, encode, stamp};
use crate::schema::USERS;

impl Accounts {
    pub async fn set_suspended(
        &self,
        login: &str,
        suspended: bool,
    ) -> Result<UserRecord, AccountError> {
        self.update_user("suspend_user", login, move |record| {
            let changed = record.suspended != suspended;
            record.suspended = suspended;
            changed
        })
        .await
    }

    /// Changes the record of `login` with `change` (which says whether it changed
    /// anything) in one transaction, stamping it so the change replicates, and empties
    /// the session caches.
    pub(crate) async fn update_user(
        &self,
        operation: &'static str,
        login: &str,
        change: impl Fn(&mut UserRecord) -> bool + Send + 'static,
    ) -> Result<UserRecord, AccountError> {
        let lower = login.to_ascii_lowercase();
        let outcome = self
            .store
            .write(operation, move |txn| {
                let mut users = txn.open_table(USERS)?;
                let Some(mut record) = users
                    .get(lower.as_str())?
                    .map(|v| decode::<UserRecord>("user", v.value()))
                    .transpose()?
                else {
                    return Ok(Err(AccountError::NoSuchUser(lower.clone())));
                };
                if !change(&mut record) {
                    return Ok(Ok(record));
                }
                record.updated_ms = stamp(record.updated_ms);
                users.insert(lower.as_str(), encode(&record)?.as_slice())?;
                Ok(Ok(record))
            })
            .await?;
        self.digest.invalidate();
        self.forget_sessions();
        outcome
    }

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
