//! The web interface of Guts: server-rendered HTML on the API listener, at GitHub's
//! URL scheme (`/{owner}/{repo}/tree/{ref}/{path}`, `/{owner}/{repo}/pull/{n}`, …), so
//! links people paste keep working after a move.
//!
//! A thin front end like the REST API: each handler extracts the viewer (from a sealed
//! session cookie, [`session`]) and its arguments, calls one use case of guts-service,
//! and renders the answer with maud ([`page`]). This crate is the only one that knows
//! HTML; it never signs an operation itself and never decides visibility or
//! permissions (guts-service and the fold do). Pages work without JavaScript.
//!
//! Safety: every string is escaped by the templates; Markdown and highlighted code come
//! from [`markup`], which sanitises; every response carries a strict
//! Content-Security-Policy (no inline script at all) and refuses framing; every form
//! carries a CSRF token and cross-site POSTs are refused ([`session`]).

pub mod markup;

mod conversation;
mod diffs;
mod error;
mod layout;
mod page;
mod repo;
mod routes;
mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use guts_p2p::directory::PeerDirectory;
use guts_service::Service;
use http::{HeaderName, HeaderValue, StatusCode};
use tower_http::timeout::TimeoutLayer;

/// What the pages need: the use cases, and for the admin page the sync layer's view of
/// the peers (absent on a node without a network). Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    pub(crate) service: Service,
    pub(crate) peers: Option<Arc<dyn PeerDirectory>>,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("peers", &self.peers.is_some())
            .finish_non_exhaustive()
    }
}

impl WebState {
    pub fn new(service: Service, peers: Option<Arc<dyn PeerDirectory>>) -> WebState {
        WebState { service, peers }
    }
}

/// How long a page may take before the visitor gets a timeout page.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The policy of every page: our own stylesheet and nothing that runs. Images may come
/// from anywhere over https (README badges) but can run nothing; no plugin, no framing
/// by others, forms only to this node, no `<base>` trickery.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data: https:; \
                   script-src 'none'; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// Headers every page carries (see [`CSP`]); what a handler set itself (the raw view's
/// sandbox) is kept.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        headers
            .entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    }
    headers
        .entry(http::header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The web interface's routes, with its own edge: a timeout, a cap on form bodies, the
/// anonymous CSRF cookie and the security headers. The node merges it into the API
/// listener's router, beside the REST API and git's routes (which keep theirs).
pub fn router(state: WebState) -> Router {
    routes::router()
        .with_state(state)
        .layer(from_fn(session::csrf_cookie))
        .layer(DefaultBodyLimit::max(session::MAX_FORM_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            PAGE_TIMEOUT,
        ))
        .layer(from_fn(security_headers))
}
