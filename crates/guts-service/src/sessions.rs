//! Browser sessions as cookies: the text of a web-session token (see
//! [`Service::sign_in`]) sealed with the cluster secret, with when it was issued, so any
//! node of the cluster opens it and none shows the token. Here rather than in the web
//! interface because two front ends read it: the pages, and the raw file downloads on
//! git's edge that the pages link to (GET only: a cookie never authorises a change
//! outside the web interface, whose forms carry CSRF tokens).

use base64::Engine as _;

use crate::Service;
use crate::caller::Authed;
use crate::error::ServiceError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "guts_session";
/// How long a session lasts (its token stays revocable all along).
pub const SESSION_DAYS: u64 = 14;
/// What the seal is bound to: a sealed value made for anything else does not open.
const SEAL_PURPOSE: &str = "guts/web-session/v1";
/// Longest cookie value looked at.
const MAX_COOKIE_CHARS: usize = 512;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Service {
    /// The cookie value of a session with token `token`, issued now.
    pub fn seal_session(&self, token: &str) -> Result<String, ServiceError> {
        let mut plain = now_secs().to_be_bytes().to_vec();
        plain.extend_from_slice(token.as_bytes());
        let sealed = self
            .accounts
            .sealer()
            .seal(&plain, SEAL_PURPOSE)
            .map_err(|e| {
                tracing::error!(error = %e, "sealing a session failed");
                ServiceError::Internal
            })?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The user of session cookie `value`, if it opens, has not expired, and its token
    /// is a live web session of an active user.
    pub fn open_session(&self, value: &str) -> Option<Authed> {
        if value.is_empty() || value.len() > MAX_COOKIE_CHARS {
            return None;
        }
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .ok()?;
        let plain = self.accounts.sealer().open(&sealed, SEAL_PURPOSE).ok()?;
        let (issued, token) = plain.split_at_checked(8)?;
        let issued = u64::from_be_bytes(issued.try_into().ok()?);
        if now_secs().saturating_sub(issued) > SESSION_DAYS * 86_400 {
            return None;
        }
        let authed = self.authenticate(std::str::from_utf8(token).ok()?).ok()?;
        authed.token.web_session.then_some(authed)
    }
}
