//! The rules a setting's value must follow, named in `check` clauses of the settings
//! table. Each takes the value (or one entry of a list) and returns a
//! `validator::ValidationError` whose message states the rule; the variable and the
//! value are added by the caller, which knows whether the value may be shown.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::Path;

use guts_core::Keypair;
use guts_ops::Secret;
use validator::{ValidateRange, ValidationError};

/// `min..=max`, for counts without a unit.
pub(super) fn range<T>(value: &T, min: T, max: T) -> Result<(), ValidationError>
where
    T: ValidateRange<T> + Display + Copy,
{
    within(value, min, max, || format!("must be from {min} to {max}"))
}

/// `min..=max` in `unit`, which the message names (seconds, MiB, …).
pub(super) fn range_in<T>(value: &T, min: T, max: T, unit: &str) -> Result<(), ValidationError>
where
    T: ValidateRange<T> + Display + Copy,
{
    within(value, min, max, || {
        format!("must be from {min} to {max} ({unit})")
    })
}

fn within<T>(
    value: &T,
    min: T,
    max: T,
    message: impl FnOnce() -> String,
) -> Result<(), ValidationError>
where
    T: ValidateRange<T>,
{
    if value.validate_range(Some(min), Some(max), None, None) {
        return Ok(());
    }
    Err(ValidationError::new("range").with_message(message().into()))
}

pub(super) fn nonzero_port(addr: &SocketAddr) -> Result<(), ValidationError> {
    if addr.port() == 0 {
        return Err(ValidationError::new("port").with_message("port must not be 0".into()));
    }
    Ok(())
}

pub(super) fn nonempty_path(path: &Path) -> Result<(), ValidationError> {
    if path.as_os_str().is_empty() {
        return Err(ValidationError::new("path").with_message("must not be empty".into()));
    }
    Ok(())
}

pub(super) fn node_key(key: &Secret<String>) -> Result<(), ValidationError> {
    Keypair::from_hex(key.expose())
        .map(|_| ())
        .map_err(|e| ValidationError::new("key").with_message(format!("ed25519 seed {e}").into()))
}

pub(super) fn admin_token(token: &Secret<String>) -> Result<(), ValidationError> {
    let token = token.expose();
    if token.chars().count() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ValidationError::new("token")
            .with_message("must be at least 16 characters without spaces".into()));
    }
    Ok(())
}

pub(super) fn cluster_secret(secret: &Secret<String>) -> Result<(), ValidationError> {
    if secret.expose().chars().count() < 32 {
        return Err(
            ValidationError::new("secret").with_message("must be at least 32 characters".into())
        );
    }
    Ok(())
}

pub(super) fn multiaddr(addr: &str) -> Result<(), ValidationError> {
    guts_p2p::net::check_multiaddr(addr)
        .map_err(|e| ValidationError::new("multiaddr").with_message(e.into()))
}

/// What SSH clients are told to connect to: `ssh://USER@HOST[:PORT]/`, the form git
/// takes in a remote URL (the repository's path is appended to it).
pub(super) fn ssh_url(url: &str) -> Result<(), ValidationError> {
    let invalid = || {
        ValidationError::new("url").with_message(
            "must be an ssh:// URL with a user and a host, such as ssh://git@git.example.com/"
                .into(),
        )
    };
    let rest = url.strip_prefix("ssh://").ok_or_else(invalid)?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let (user, host) = authority.split_once('@').ok_or_else(invalid)?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    let user_ok = !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if host_ok && user_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

pub(super) fn http_url(url: &str) -> Result<(), ValidationError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
        _ => Err(ValidationError::new("url").with_message(
            "must be an http:// or https:// URL such as http://collector:4317".into(),
        )),
    }
}
