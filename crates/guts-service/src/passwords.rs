//! Passwords and browser sessions: setting a user's password (argon2id, hashed here and
//! replicated as part of the user's record), signing in with it (a web-session token,
//! revocable cluster-wide like any token) and signing out.
//!
//! What an attacker can do with the sign-in form is bounded here, for every front end
//! that takes a password: each verification costs ~19 MiB and tens of milliseconds, so
//! at most [`MAX_CONCURRENT_VERIFICATIONS`] run at once and the rest are told to come
//! back ([`ServiceError::TooManyAttempts`]); repeated failures for one login or from
//! one address lock further attempts for a while, the right password included; an
//! unknown login costs as much as a known one, so timing does not tell them apart; and
//! a hash with parameters above ours (a record from a misbehaving peer) is not
//! verified at all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use guts_ops::Secret;
use tokio::sync::Semaphore;

use crate::Service;
use crate::caller::Authed;
use crate::error::{FieldCode, ServiceError};

/// Shortest password accepted (NIST SP 800-63B's floor).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted: argon2 hashes any length, but a request should not make
/// the node hash a megabyte.
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// Password verifications (and hashings) running at once on this node.
pub(crate) const MAX_CONCURRENT_VERIFICATIONS: usize = 2;
/// Failed attempts for one login, or from one address, before further attempts are
/// refused for [`LOCKOUT`].
pub(crate) const MAX_FAILURES: u32 = 10;
/// How long failures are remembered, and how long a lock lasts.
pub(crate) const LOCKOUT: Duration = Duration::from_secs(300);
/// Logins and addresses remembered at most; past it the oldest are forgotten first.
const MAX_TRACKED: usize = 10_000;
/// The most memory (KiB), passes and lanes a stored hash may ask of a verification.
const MAX_M_COST: u32 = 65_536;
const MAX_T_COST: u32 = 8;
const MAX_P_COST: u32 = 4;

/// A successful sign-in: the session's user, and the text of its token (to be sealed
/// into a cookie; it is shown to nobody).
#[derive(Debug)]
pub struct SignedIn {
    pub authed: Authed,
    pub token: Secret<String>,
}

/// The password machinery of one node: the verification slots and the failure counts.
#[derive(Debug)]
pub(crate) struct Passwords {
    slots: Semaphore,
    failures: Mutex<HashMap<Key, Failures>>,
    /// A hash of a random password, verified for unknown logins so that they cost as
    /// much as known ones.
    decoy: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Login(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

impl Default for Passwords {
    fn default() -> Passwords {
        let random: [u8; 16] = rand::random();
        Passwords {
            slots: Semaphore::new(MAX_CONCURRENT_VERIFICATIONS),
            failures: Mutex::new(HashMap::new()),
            decoy: hash(&hex::encode(random)).unwrap_or_default(),
        }
    }
}

impl Passwords {
    /// How long until `keys` may try again, if any of them is locked.
    fn locked(&self, keys: &[Key]) -> Option<Duration> {
        let now = Instant::now();
        let failures = self.failures.lock().ok()?;
        keys.iter()
            .filter_map(|k| failures.get(k))
            .filter(|f| f.count >= MAX_FAILURES && now.duration_since(f.since) < LOCKOUT)
            .map(|f| LOCKOUT.saturating_sub(now.duration_since(f.since)))
            .max()
    }

    fn fail(&self, keys: Vec<Key>) {
        let now = Instant::now();
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() + keys.len() > MAX_TRACKED {
            failures.retain(|_, f| now.duration_since(f.since) < LOCKOUT);
            while failures.len() + keys.len() > MAX_TRACKED {
                let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, f)| f.since)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                failures.remove(&oldest);
            }
        }
        for key in keys {
            let entry = failures.entry(key).or_insert(Failures {
                count: 0,
                since: now,
            });
            if now.duration_since(entry.since) >= LOCKOUT {
                *entry = Failures {
                    count: 0,
                    since: now,
                };
            }
            entry.count = entry.count.saturating_add(1);
        }
    }

    fn succeed(&self, login: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&Key::Login(login.to_ascii_lowercase()));
        }
    }
}

/// The argon2id PHC string of `password` with a fresh salt and the crate's default
/// parameters (m = 19 MiB, t = 2, p = 1: OWASP's recommendation).
fn hash(password: &str) -> Result<String, ServiceError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            ServiceError::Internal
        })
}

/// Whether `password` matches `phc`. A hash that does not parse, or asks for more than
/// [`MAX_M_COST`] and friends, matches nothing.
fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let within = |name: &str, max: u32| parsed.params.get_decimal(name).is_some_and(|v| v <= max);
    if !(within("m", MAX_M_COST) && within("t", MAX_T_COST) && within("p", MAX_P_COST)) {
        tracing::warn!("a stored password hash asks for more than this node allows");
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// The field problem of a password that breaks the length rule.
pub fn check_password(password: &str) -> Result<(), ServiceError> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(ServiceError::invalid(
            "User",
            "password",
            FieldCode::Invalid,
            Some(format!(
                "must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters long"
            )),
        ));
    }
    Ok(())
}

impl Service {
    /// Runs `f` (a hashing or a verification) on the blocking pool in one of the
    /// verification slots, or answers [`ServiceError::TooManyAttempts`] when all are
    /// taken and stay taken for a second.
    async fn in_slot<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let busy = ServiceError::TooManyAttempts {
            retry_after: Duration::from_secs(1),
        };
        let _slot = tokio::time::timeout(Duration::from_secs(1), self.passwords.slots.acquire())
            .await
            .map_err(|_| busy.clone())?
            .map_err(|_| busy)?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|_| ServiceError::Internal)
    }

    /// Sets the password of `login` (the admin API, `guts-node user create`, a user's
    /// own settings page after [`Service::change_password`] checked the old one).
    pub async fn set_password(&self, login: &str, password: &str) -> Result<(), ServiceError> {
        check_password(password)?;
        let password = password.to_string();
        let phc = self.in_slot(move || hash(&password)).await??;
        self.accounts.set_password_hash(login, Some(phc)).await?;
        tracing::info!(%login, "password set");
        Ok(())
    }

    /// Changes the caller's password, given the current one.
    pub async fn change_password(
        &self,
        who: &Authed,
        current: &str,
        new: &str,
    ) -> Result<(), ServiceError> {
        check_password(new)?;
        let login = who.user.login.clone();
        let user = self.user(&login)?;
        let stored = user.password_hash.unwrap_or_default();
        let current = current.to_string();
        if !stored.is_empty() && !self.in_slot(move || verify(&current, &stored)).await? {
            return Err(ServiceError::invalid(
                "User",
                "current_password",
                FieldCode::Invalid,
                Some("is not your current password".into()),
            ));
        }
        self.set_password(&login, new).await
    }

    /// Signs `login` in with `password`, from address `from`: a new web-session token.
    /// Wrong or unknown credentials, a suspended account and an account without a
    /// password are all [`ServiceError::BadCredentials`]; too many failures for the
    /// login or the address are [`ServiceError::TooManyAttempts`], even with the right
    /// password.
    pub async fn sign_in(
        &self,
        login: &str,
        password: &str,
        from: IpAddr,
    ) -> Result<SignedIn, ServiceError> {
        let keys = vec![Key::Login(login.to_ascii_lowercase()), Key::Ip(from)];
        if let Some(retry_after) = self.passwords.locked(&keys) {
            return Err(ServiceError::TooManyAttempts { retry_after });
        }
        if password.chars().count() > MAX_PASSWORD_CHARS || login.len() > 64 {
            self.passwords.fail(keys);
            return Err(ServiceError::BadCredentials);
        }
        let user = self.accounts.user(login)?;
        let stored = user
            .as_ref()
            .filter(|u| !u.suspended)
            .and_then(|u| u.password_hash.clone());
        let (phc, real) = match stored {
            Some(phc) => (phc, true),
            None => (self.passwords.decoy.clone(), false),
        };
        let attempt = password.to_string();
        let matched = self.in_slot(move || verify(&attempt, &phc)).await? && real;
        let Some(user) = user.filter(|_| matched) else {
            self.passwords.fail(keys);
            tracing::info!(%login, %from, "sign-in failed");
            return Err(ServiceError::BadCredentials);
        };
        self.passwords.succeed(login);
        let token = self.accounts.create_web_session(&user.login).await?;
        let authed = self.authenticate(token.token.expose())?;
        tracing::info!(login = %user.login, %from, "signed in");
        Ok(SignedIn {
            authed,
            token: Secret::new(token.token.expose().clone()),
        })
    }

    /// Ends the caller's web session everywhere: its token is revoked, and the
    /// revocation replicates like any other.
    pub async fn sign_out(&self, who: &Authed) -> Result<(), ServiceError> {
        if !who.token.web_session {
            return Err(ServiceError::BadCredentials);
        }
        self.accounts
            .revoke_token(&who.user.login, who.token.id)
            .await?;
        tracing::info!(login = %who.user.login, "signed out");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse battery!", &phc));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn a_hash_asking_for_too_much_memory_is_not_verified() {
        let phc = hash("correct horse battery").unwrap();
        let greedy = phc.replace("m=19456", "m=4194304");
        assert_ne!(greedy, phc);
        assert!(!verify("correct horse battery", &greedy));
    }

    #[test]
    fn failures_lock_a_login_and_an_address() {
        let passwords = Passwords::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let keys = || vec![Key::Login("alice".into()), Key::Ip(ip)];
        for _ in 0..MAX_FAILURES {
            assert!(passwords.locked(&keys()).is_none());
            passwords.fail(keys());
        }
        assert!(passwords.locked(&keys()).is_some());
        // Another login from the same address is locked too; the same login from
        // elsewhere as well.
        assert!(
            passwords
                .locked(&[Key::Login("bob".into()), Key::Ip(ip)])
                .is_some()
        );
        assert!(
            passwords
                .locked(&[Key::Login("alice".into()), Key::Ip([10, 0, 0, 2].into())])
                .is_some()
        );
    }

    #[test]
    fn the_failure_table_stays_bounded() {
        let passwords = Passwords::default();
        for i in 0..(MAX_TRACKED as u32 + 100) {
            passwords.fail(vec![Key::Login(format!("u{i}"))]);
        }
        assert!(passwords.failures.lock().unwrap().len() <= MAX_TRACKED);
    }
}
