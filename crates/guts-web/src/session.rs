//! Who is looking at a page, and the proof that a form came from one of ours.
//!
//! **Sessions.** Signing in makes a web-session token (guts-service); its text is sealed
//! with the cluster secret (guts-storage `Sealer`) into the `guts_session` cookie
//! together with when it was issued. Every node of a cluster holds the secret and the
//! replicated token, so the cookie works on all of them; signing out revokes the token,
//! so a copied cookie dies with it, everywhere. The browser never sees the token:
//! the cookie is opaque, HttpOnly and SameSite=Lax, and expires after
//! [`SESSION_DAYS`].
//!
//! **CSRF.** Every form carries `_csrf`, a hash of the session cookie (or, signed out,
//! of the random `guts_csrf` cookie): a page from another site can neither read the
//! cookie nor compute the hash. On top of that a POST whose `Origin` is another site,
//! or that the browser marks `Sec-Fetch-Site: cross-site`, is refused before its body
//! is read.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use guts_ops::Client;
use guts_service::{Authed, Caller};
use http::header::{COOKIE, SET_COOKIE};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::WebState;
use crate::error::WebError;

pub(crate) use guts_service::{SESSION_COOKIE, SESSION_DAYS};
/// The anonymous CSRF cookie (the basis of `_csrf` while signed out).
pub(crate) const CSRF_COOKIE: &str = "guts_csrf";
/// Largest form body read (an issue body is at most 65,536 characters).
pub(crate) const MAX_FORM_BYTES: usize = 512 * 1024;

/// The value of cookie `name` in the request, if present.
pub(crate) fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    guts_ops::client::cookie(&parts.headers, name)
}

/// The `_csrf` value of forms for a session or anonymous cookie value `basis`.
fn csrf_of(basis: &str) -> String {
    let hash = blake3::derive_key("guts/web-csrf/v1", basis.as_bytes());
    hex::encode(&hash[..16])
}

/// Constant-time equality of two tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Who is looking, and what their forms must carry.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(crate) authed: Option<Authed>,
    /// The `_csrf` value of this viewer's forms.
    pub(crate) csrf: String,
    /// `scheme://host` as the browser addressed this node.
    pub(crate) origin: String,
    /// The request's path and query, for `return_to` after signing in.
    pub(crate) path: String,
}

impl Viewer {
    pub(crate) fn caller(&self) -> Caller<'_> {
        Caller::from(self.authed.as_ref())
    }

    pub(crate) fn login(&self) -> Option<&str> {
        self.authed.as_ref().map(|a| a.user.login.as_str())
    }

    /// The signed-in user, or a redirect to the sign-in page and back.
    pub(crate) fn require(&self) -> Result<&Authed, WebError> {
        self.authed.as_ref().ok_or_else(|| WebError::SignIn {
            return_to: self.path.clone(),
        })
    }
}

/// The session `parts` carries, if its cookie opens (see [`Service::open_session`]).
///
/// [`Service::open_session`]: guts_service::Service::open_session
fn session(state: &WebState, parts: &Parts) -> Option<(Authed, String)> {
    let value = cookie(parts, SESSION_COOKIE)?;
    let authed = state.service.open_session(value)?;
    Some((authed, value.to_string()))
}

impl FromRequestParts<WebState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Viewer, Self::Rejection> {
        let (authed, basis) = match session(state, parts) {
            Some((authed, value)) => (Some(authed), value),
            None => (
                None,
                cookie(parts, CSRF_COOKIE).unwrap_or_default().to_string(),
            ),
        };
        Ok(Viewer {
            authed,
            csrf: csrf_of(&basis),
            origin: Client::origin(parts),
            path: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string(),
        })
    }
}

/// The `Set-Cookie` of a new session for token `token`.
pub(crate) fn session_cookie(
    state: &WebState,
    token: &str,
    secure: bool,
) -> Result<HeaderValue, WebError> {
    let value = state.service.seal_session(token)?;
    cookie_header(SESSION_COOKIE, &value, SESSION_DAYS * 86_400, secure)
}

/// A cookie for every path of this node, hidden from scripts, not sent on cross-site
/// subrequests or POSTs.
pub(crate) fn cookie_header(
    name: &str,
    value: &str,
    max_age: u64,
    secure: bool,
) -> Result<HeaderValue, WebError> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .map_err(|_| WebError::internal())
}

/// Gives every browser an anonymous CSRF cookie before its first form: when the request
/// has none, one is made, put into the request (so this response's forms carry its
/// hash) and set on the response.
pub(crate) async fn csrf_cookie(req: Request, next: axum::middleware::Next) -> Response {
    let (mut parts, body) = req.into_parts();
    if cookie(&parts, CSRF_COOKIE).is_some() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let value = hex::encode(rand::random::<[u8; 16]>());
    if let Ok(header) = HeaderValue::from_str(&format!("{CSRF_COOKIE}={value}")) {
        parts.headers.append(COOKIE, header);
    }
    let secure = Client::origin(&parts).starts_with("https:");
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Ok(header) = cookie_header(CSRF_COOKIE, &value, 365 * 86_400, secure) {
        response.headers_mut().append(SET_COOKIE, header);
    }
    response
}

/// Refuses a state-changing request another site made the browser send.
fn same_site(parts: &Parts, origin: &str) -> bool {
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if header("sec-fetch-site") == Some("cross-site") {
        return false;
    }
    header("origin").is_none_or(|o| o == origin)
}

/// A form posted from one of this node's pages: the viewer, and the form `T`. Refused
/// (403) when it came from another site or lacks the viewer's `_csrf`.
#[derive(Debug)]
pub(crate) struct Posted<T> {
    pub(crate) viewer: Viewer,
    pub(crate) form: T,
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

impl<T: DeserializeOwned> FromRequest<WebState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Ok(viewer) = Viewer::from_request_parts(&mut parts, state).await;
        if parts.method != Method::POST || !same_site(&parts, &viewer.origin) {
            return Err(WebError::forbidden("Cross-site requests are refused.").into_response());
        }
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| {
                WebError::page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.")
                    .into_response()
            })?;
        let token: CsrfField = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| WebError::bad_request("The form could not be read.").into_response())?;
        if !same(&token.csrf, &viewer.csrf) {
            return Err(WebError::forbidden(
                "The form expired or did not come from this site. Go back, reload and try again.",
            )
            .into_response());
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| WebError::bad_request("The form could not be read.").into_response())?;
        Ok(Posted { viewer, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_differ_by_basis_and_compare_in_full() {
        let a = csrf_of("one");
        assert_eq!(a.len(), 32);
        assert_ne!(a, csrf_of("two"));
        assert!(same(&a, &csrf_of("one")));
        assert!(!same(&a, &a[..31]));
        assert!(!same("", &a));
    }
}
