//! Absolute URLs for response bodies and headers. GitHub clients navigate by the `url`
//! fields they are given (PyGithub follows them verbatim), so every URL we hand out must
//! be absolute and include `/api/v3`. The origin is taken from the request: `Host`, or
//! `X-Forwarded-Proto` / `X-Forwarded-Host` when the peer is a trusted proxy
//! ([`crate::middleware::forwarded`]); from anyone else those headers would let a
//! client write its own host into the URLs a response hands out.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::middleware::Client;

pub const API_PREFIX: &str = "/api/v3";

/// Where the identicon of a user or organization id is served (`routes::avatars`).
pub const AVATAR_PREFIX: &str = "/avatars/u/";

#[derive(Debug, Clone)]
pub struct Links {
    origin: String,
}

fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

impl<S: Send + Sync> FromRequestParts<S> for Links {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let proxied = parts
            .extensions
            .get::<Client>()
            .is_some_and(|c| c.via_trusted_proxy);
        let forwarded = |name: &str| header(name).filter(|_| proxied);
        let host = forwarded("x-forwarded-host")
            .or_else(|| header("host"))
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .filter(|h| plausible_host(h))
            .unwrap_or("localhost");
        let scheme = match forwarded("x-forwarded-proto") {
            Some("https") => "https",
            _ => "http",
        };
        Ok(Links {
            origin: format!("{scheme}://{host}"),
        })
    }
}

impl Links {
    /// Links under `origin` (`scheme://host[:port]`), for what no request asked
    /// (webhook payloads).
    pub fn for_origin(origin: String) -> Links {
        Links { origin }
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
