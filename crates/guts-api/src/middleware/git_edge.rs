//! The edge of git smart HTTP, which is outside the REST timeout, body cap and budget
//! because a clone or a push streams for as long as it needs. What bounds a git client
//! instead, in the order it is checked:
//!
//! 1. A rate limit of its own (`GUTS_RATE_LIMIT_GIT_*_PER_HOUR`): a token bucket per
//!    token, or per client IP for anonymous callers (and bad credentials, which the
//!    handler then answers 401). Larger than the REST budget, since a clone is a few
//!    requests and CI clones often; apart from it, so that cloning does not spend the
//!    REST allowance. Over it: 429 with `Retry-After`.
//! 2. Git requests in flight per client IP (`GUTS_GIT_MAX_PER_IP`): one address cannot
//!    hold more than its share of the node, however slowly it sends. Over it: 429 with
//!    `Retry-After`.
//! 3. A whole-request deadline (`GUTS_GIT_REQUEST_DEADLINE`): handed to the handlers
//!    (bodies and blocking writers stop at it) and enforced on the response body, which
//!    is ended with an error when it is reached.
//!
//! Refusals are plain text, which git prints to its user as `remote: …`. The per-IP
//! slot is held until the response body ends, not just until its headers are sent.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::StatusCode;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::extract::resolve_caller;
use crate::git_io::{text, with_retry_after};
use crate::middleware::ip_slots::IpSlot;
use crate::middleware::rate_buckets::Key;
use crate::middleware::rate_limit::client_ip;
use crate::state::AppState;

/// How long a client refused for having too many git requests in flight is told to
/// wait: its own requests end soon or are cut by the rate rules.
const PER_IP_RETRY_AFTER_SECS: u64 = 1;

/// When the git request in whose extensions it sits must be over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GitDeadline(pub(crate) Instant);

/// The git edge middleware: see the module documentation.
pub(crate) async fn git_edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let deadline = Instant::now() + state.limits.git.deadline;
    let (mut parts, body) = req.into_parts();
    let ip = client_ip(&parts);
    let caller = resolve_caller(&parts, &state).ok().flatten();
    let key = match &caller {
        Some(authed) => Key::Token {
            login: authed.user.login.clone(),
            id: authed.token.id,
        },
        None => Key::Ip(ip),
    };
    if let Err(status) = state
        .git_rate_limiter
        .check(&key, std::time::Instant::now())
    {
        let who = match &caller {
            Some(authed) => format!("user {}", authed.user.login),
            None => ip.to_string(),
        };
        tracing::info!(%who, limit = status.limit, "git rate limit exceeded");
        let hint = if caller.is_none() {
            " (Authenticated requests get a higher rate limit.)"
        } else {
            ""
        };
        return with_retry_after(
            text(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Git rate limit exceeded for {who}: {} requests per hour. Retry in {} s.{hint}",
                    status.limit, status.retry_after
                ),
            ),
            status.retry_after,
        );
    }
    let Some(slot) = state.git_per_ip.try_take(ip) else {
        tracing::info!(%ip, max = state.limits.git.max_per_ip, "git requests per address exceeded");
        return with_retry_after(
            text(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many git requests in flight from {ip} (at most {} at once); retry in a moment.",
                    state.limits.git.max_per_ip
                ),
            ),
            PER_IP_RETRY_AFTER_SECS,
        );
    };
    parts.extensions.insert(GitDeadline(deadline));
    if let Some(authed) = caller {
        parts.extensions.insert(authed);
    }
    let response = next.run(Request::from_parts(parts, body)).await;
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        Body::new(Held {
            body,
            _slot: slot,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        }),
    )
}

/// A response body that holds its request's per-IP slot until it ends, and ends with
/// an error (the connection is closed mid-body, so the client sees a broken transfer,
/// not a short one) at the request's deadline.
struct Held {
    body: Body,
    _slot: IpSlot,
    deadline: Pin<Box<Sleep>>,
}

impl http_body::Body for Held {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            tracing::info!("git response cut at the request deadline");
            return Poll::Ready(Some(Err("the git request exceeded its deadline".into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
