//! Absolute URLs for response bodies and headers. GitHub clients navigate by the `url`
//! fields they are given (PyGithub follows them verbatim), so every URL we hand out must
//! be absolute and include `/api/v3`. The origin is taken from the request: `Host`, or
//! `X-Forwarded-Proto` / `X-Forwarded-Host` when the peer is a trusted proxy
//! ([`crate::middleware::forwarded`]); from anyone else those headers would let a
//! client write its own host into the URLs a response hands out.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::middleware::Client;

pub const API_PREFIX: &str = "/api/v3";

/// Where the identicon of a user or organization id is served (`routes::avatars`).
pub const AVATAR_PREFIX: &str = "/avatars/u/";

/// Where git over SSH is reached, `ssh://USER@HOST[:PORT]/` (`GUTS_SSH_PUBLIC_URL`, or
/// what the node derived; `None` without an SSH server), put in every request's
/// extensions by the router.
#[derive(Debug, Clone)]
pub struct SshBase(pub Option<Arc<str>>);

#[derive(Debug, Clone)]
pub struct Links {
    origin: String,
    ssh: Option<Arc<str>>,
}

impl<S: Send + Sync> FromRequestParts<S> for Links {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Links {
            origin: Client::origin(parts),
            ssh: parts.extensions.get::<SshBase>().and_then(|b| b.0.clone()),
        })
    }
}

impl Links {
    /// Links under `origin` (`scheme://host[:port]`), for what no request asked
    /// (webhook payloads), with git over SSH at `ssh`.
    pub fn for_origin(origin: String, ssh: Option<Arc<str>>) -> Links {
        Links { origin, ssh }
    }

    /// The `ssh_url` of repository `full_name`: `git@host:owner/repo.git` as GitHub
    /// writes it when the SSH server is on port 22, else the `ssh://` form, which
    /// carries the port. `None` without an SSH server.
    pub fn ssh_url(&self, full_name: &str) -> Option<String> {
        let base = self.ssh.as_deref()?;
        let base = base.strip_suffix('/').unwrap_or(base);
        match base.strip_prefix("ssh://") {
            Some(authority) if !authority.contains(':') || authority.ends_with(":22") => {
                let authority = authority.strip_suffix(":22").unwrap_or(authority);
                Some(format!("{authority}:{full_name}.git"))
            }
            _ => Some(format!("{base}/{full_name}.git")),
        }
    }

    /// `scheme://host` of this request.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The `avatar_url` of user or organization `id`: its identicon on this node.
    pub fn avatar(&self, id: u64) -> String {
        format!("{}{AVATAR_PREFIX}{id}", self.origin)
    }

    /// An API URL: `origin/api/v3{path}`.
    pub fn api(&self, path: &str) -> String {
        format!("{}{API_PREFIX}{path}", self.origin)
    }

    /// A web URL (`html_url`): `origin{path}`.
    pub fn web(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls_take_githubs_form_on_port_22_and_carry_other_ports() {
        let links = |base: &str| Links::for_origin("http://x".into(), Some(Arc::from(base)));
        assert_eq!(
            links("ssh://git@git.example.com/")
                .ssh_url("a/b")
                .as_deref(),
            Some("git@git.example.com:a/b.git")
        );
        assert_eq!(
            links("ssh://git@git.example.com:22/")
                .ssh_url("a/b")
                .as_deref(),
            Some("git@git.example.com:a/b.git")
        );
        assert_eq!(
            links("ssh://git@127.0.0.1:2222/").ssh_url("a/b").as_deref(),
            Some("ssh://git@127.0.0.1:2222/a/b.git")
        );
        assert_eq!(
            Links::for_origin("http://x".into(), None).ssh_url("a/b"),
            None
        );
    }
}
