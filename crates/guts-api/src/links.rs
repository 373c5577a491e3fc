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

impl<S: Send + Sync> FromRequestParts<S> for Links {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Links {
            origin: Client::origin(parts),
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
