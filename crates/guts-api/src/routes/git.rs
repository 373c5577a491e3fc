//! Git smart HTTP: `/{owner}/{repo}[.git]/info/refs?service=…`, `/git-upload-pack` and
//! `/git-receive-pack`. This module decides who may do what and bridges bodies; the
//! protocol is guts-git's.
//!
//! Errors are plain text, which git prints to the user (`remote: …`), with the status
//! codes git's credential flow expects: 401 + `WWW-Authenticate: Basic` when
//! credentials are missing or wrong (so a credential helper is asked), 403 when the
//! user may not push, 404 when the repository is not there for this caller.
//!
//! Slow clients cost no thread they could hold indefinitely. The git servers are
//! blocking code and run on tokio's blocking pool, which REST reads and storage share;
//! a request body read on a blocking thread used to hold that thread for as long as the
//! client took to send it, so 600 trickling clients took every thread. Now:
//!
//! - an upload-pack request (wants and haves: small) is buffered whole on the async
//!   side, under the pace rules of [`crate::git_io::Pace`], before any thread is taken;
//!   a trickling fetch costs a task and a few bytes, within a node-wide buffer budget;
//! - a receive-pack request streams a pack that may be gigabytes, which cannot be
//!   buffered, so it is read on a blocking thread, but pushes have their own budget of
//!   threads ([`GitThreads`]), apart from fetches: slow pushers (authenticated users
//!   with write access, and cut by the same pace rules) can delay other pushes, never
//!   fetches or REST;
//! - fetches (info/refs, upload-pack) have their budget too, so that git as a whole
//!   leaves most of the blocking pool to REST and storage.
//!
//! A request that waits for a thread of its class waits on the async side, and is
//! refused with 503 + Retry-After if none frees up within [`THREAD_WAIT`].

use std::io::{Cursor, Read};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use guts_git::serve::{self, Protocol, ServeError, Transport};
use guts_git::v0::Service;
use guts_service::{Denied, GitAccess, GitNeed, ServiceError};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;

use tokio::sync::OwnedSemaphorePermit;

use crate::extract::{Authed, MaybeUser};
use crate::git_io::{
    BodyReader, BufferError, Pace, SharedBuf, buffer_body, response_channel, text, with_retry_after,
};
use crate::middleware::git_edge::GitDeadline;
use crate::state::AppState;

/// Largest upload-pack request (wants and haves), as sent and after gzip decoding.
const MAX_UPLOAD_REQUEST: u64 = 64 << 20;

/// How long a request waits for a blocking thread of its class before it is refused.
const THREAD_WAIT: Duration = Duration::from_secs(10);

/// What a client refused for want of a thread is told to wait, in seconds.
const BUSY_RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, Clone, Copy)]
enum Class {
    Fetch,
    Push,
}

/// A blocking thread of `class`, waited for on the async side for at most
/// [`THREAD_WAIT`]; 503 + Retry-After otherwise.
async fn thread_permit(state: &AppState, class: Class) -> Result<OwnedSemaphorePermit, Response> {
    let (semaphore, what) = match class {
        Class::Fetch => (&state.git_threads.fetch, "fetches"),
        Class::Push => (&state.git_threads.push, "pushes"),
    };
    match tokio::time::timeout(THREAD_WAIT, semaphore.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => {
            tracing::warn!(class = what, "no git thread free");
            Err(with_retry_after(
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("The server is busy with other git {what}; retry shortly."),
                ),
                BUSY_RETRY_AFTER_SECS,
            ))
        }
    }
}

/// The pace rules of this request's body: the git settings, the idle timeout
/// (`GUTS_REQUEST_TIMEOUT` without any byte) and the deadline the git edge set.
fn pace(state: &AppState, parts: &http::request::Parts) -> Pace {
    let git = &state.limits.git;
    let deadline = parts
        .extensions
        .get::<GitDeadline>()
        .map_or_else(|| tokio::time::Instant::now() + git.deadline, |d| d.0);
    Pace {
        min_rate: git.min_transfer_rate,
        window: git.rate_window,
        idle: state.limits.request_timeout,
        deadline,
        lifetime: git.deadline,
    }
}

/// The answer to a body that could not be buffered.
fn buffer_refusal(e: &BufferError) -> Response {
    tracing::info!(error = %e, "git request body refused");
    match e {
        BufferError::Slow(_) => text(StatusCode::REQUEST_TIMEOUT, e.to_string()),
        BufferError::TooLarge(_) => text(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        BufferError::Busy => with_retry_after(
            text(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            BUSY_RETRY_AFTER_SECS,
        ),
        BufferError::Broken(_) => text(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/{owner}/{repo}/info/refs", get(info_refs))
        .route("/{owner}/{repo}/git-upload-pack", post(upload_pack))
        .route("/{owner}/{repo}/git-receive-pack", post(receive_pack))
}

fn challenge(message: &str) -> Response {
    let mut response = text(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Guts\""),
    );
    response
}

/// The repository as the caller may see it, if the caller may do what they need (and,
/// for a push, what signs it).
async fn authorize(
    state: &AppState,
    parts: &mut http::request::Parts,
    owner: &str,
    repo: &str,
    need: GitNeed,
) -> Result<(GitAccess, Option<Authed>), Response> {
    let caller = match MaybeUser::from_request_parts(parts, state).await {
        Ok(MaybeUser(caller)) => caller,
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
            return Err(challenge("Invalid username or token."));
        }
        Err(e) => return Err(text(e.status(), e.message())),
    };
    if need == GitNeed::Write && caller.is_none() {
        return Err(challenge("Authentication required to push."));
    }
    let access = state
        .service
        .git_access(caller.as_ref(), None, owner, repo, need)
        .map_err(|e| refusal(&e, caller.as_ref(), owner, repo))?;
    Ok((access, caller))
}

/// The service layer's refusal as git shows it (`remote: …`), with the status git's
/// credential flow expects: an anonymous caller is asked for credentials rather than
/// told a repository is not there, since it may be private.
fn refusal(e: &ServiceError, caller: Option<&Authed>, owner: &str, repo: &str) -> Response {
    let name = repo.strip_suffix(".git").unwrap_or(repo);
    match e {
        ServiceError::NotFound if caller.is_none() => challenge("Authentication required."),
        ServiceError::NotFound => text(StatusCode::NOT_FOUND, "Repository not found."),
        ServiceError::BadCredentials => challenge("Invalid username or token."),
        ServiceError::Forbidden(Denied::Scope(_)) => text(
            StatusCode::FORBIDDEN,
            "The token lacks the repo scope needed to push.",
        ),
        ServiceError::Forbidden(Denied::Archived) => text(
            StatusCode::FORBIDDEN,
            "This repository was archived so it is read-only.",
        ),
        ServiceError::Forbidden(Denied::NotCustodial) => text(
            StatusCode::FORBIDDEN,
            "This account signs its own operations; this node holds no key to push with.",
        ),
        ServiceError::Forbidden(_) => text(
            StatusCode::FORBIDDEN,
            format!(
                "Permission to {owner}/{name} denied to {}.",
                caller.map_or("anonymous", |c| c.user.login.as_str())
            ),
        ),
        other => internal(other),
    }
}

#[derive(Debug, Deserialize)]
struct InfoRefsQuery {
    service: Option<String>,
}

fn protocol(headers: &HeaderMap) -> Protocol {
    Protocol::from_header(headers.get("git-protocol").and_then(|v| v.to_str().ok()))
}

fn no_cache(mut response: Response, content_type: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
    response
}

fn internal(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "git request failed");
    text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error.")
}

async fn info_refs(
    State(state): State<AppState>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<InfoRefsQuery>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let service = match query.service.as_deref().map(Service::from_name) {
        Some(Some(service)) => service,
        Some(None) => return text(StatusCode::FORBIDDEN, "Unsupported service."),
        None => {
            return text(
                StatusCode::FORBIDDEN,
                "Dumb HTTP is not supported; use a git client with smart HTTP.",
            );
        }
    };
    let (mut parts, _) = req.into_parts();
    let need = match service {
        Service::UploadPack => GitNeed::Read,
        Service::ReceivePack => GitNeed::Write,
    };
    let view = match authorize(&state, &mut parts, &owner, &repo, need).await {
        Ok((granted, _)) => granted.access.view,
        Err(response) => return response,
    };
    let protocol = protocol(&parts.headers);
    let git = state.repos.git().clone();
    let dir = view.id.to_string();
    let thread = match thread_permit(&state, Class::Fetch).await {
        Ok(permit) => permit,
        Err(response) => return response,
    };
    let advertised = tokio::task::spawn_blocking(move || {
        let _thread = thread;
        let repo = git.open_repo(&dir).map_err(ServeError::from)?;
        let mut out = Vec::new();
        serve::advertise(&repo, service, protocol, &mut out)?;
        Ok::<_, ServeError>(out)
    })
    .await;
    state
        .git
        .observe(Transport::Http, "info_refs", started.elapsed());
    match advertised {
        Ok(Ok(body)) => no_cache(
            Body::from(body).into_response(),
            match service {
                Service::UploadPack => "application/x-git-upload-pack-advertisement",
                Service::ReceivePack => "application/x-git-receive-pack-advertisement",
            },
        ),
        Ok(Err(e)) => internal(&e),
        Err(e) => internal(&e),
    }
}

fn gzipped(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip"))
}

/// What both POST handlers start with: who may do what, and an in-flight permit that
/// the handler keeps for as long as its body streams (not only until the headers).
struct Admitted {
    parts: http::request::Parts,
    body: Body,
    granted: GitAccess,
    caller: Option<Authed>,
    permit: tokio::sync::OwnedSemaphorePermit,
}

async fn admit(
    state: &AppState,
    owner: &str,
    repo: &str,
    need: GitNeed,
    req: Request,
) -> Result<Admitted, Response> {
    let (mut parts, body) = req.into_parts();
    let (granted, caller) = authorize(state, &mut parts, owner, repo, need).await?;
    let Ok(permit) = state.in_flight.clone().try_acquire_owned() else {
        return Err(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many requests in flight.",
        ));
    };
    Ok(Admitted {
        parts,
        body,
        granted,
        caller,
        permit,
    })
}

async fn upload_pack(
    State(state): State<AppState>,
    Path((owner, repo)): Path<(String, String)>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let Admitted {
        parts,
        body,
        granted,
        permit,
        ..
    } = match admit(&state, &owner, &repo, GitNeed::Read, req).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let protocol = protocol(&parts.headers);
    let pace = pace(&state, &parts);
    // The whole request before any thread: a slow sender costs a task, not a thread.
    let buffered = match buffer_body(
        body,
        MAX_UPLOAD_REQUEST,
        pace,
        &state.git_threads.upload_buffer,
    )
    .await
    {
        Ok(buffered) => buffered,
        Err(e) => {
            state.git.fetch(Transport::Http, protocol, Err(()));
            return buffer_refusal(&e);
        }
    };
    let thread = match thread_permit(&state, Class::Fetch).await {
        Ok(permit) => permit,
        Err(response) => return response,
    };
    let gzip = gzipped(&parts.headers);
    let (mut writer, response_body) = response_channel(state.limits.request_timeout, pace.deadline);
    let git = state.repos.git().clone();
    let dir = granted.access.view.id.to_string();
    let metrics = state.git.clone();
    let plans = state.git_plans.clone();
    // Awaited by nobody: it ends when the pack is written or the client goes away (a
    // failed write ends it), and it holds the in-flight permit, its thread of the fetch
    // class and its share of the buffer budget until then.
    drop(tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let _thread = thread;
        // Whole, so that its budget permit (not only its bytes) lives until the end.
        let buffered = buffered;
        let bytes = Cursor::new(buffered.bytes.clone());
        let mut reader: Box<dyn Read + Send> = if gzip {
            Box::new(flate2::read::GzDecoder::new(bytes))
        } else {
            Box::new(bytes)
        };
        // A panic in gix must not look like a short, complete answer to the client.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            git.open_repo(&dir)
                .map_err(ServeError::from)
                .and_then(|repo| {
                    serve::upload_pack(
                        &repo,
                        &plans,
                        protocol,
                        &mut reader,
                        &mut writer,
                        MAX_UPLOAD_REQUEST,
                    )
                })
        }));
        metrics.observe(Transport::Http, "upload_pack", started.elapsed());
        match result {
            Err(_) => {
                metrics.fetch(Transport::Http, protocol, Err(()));
                tracing::error!("upload-pack panicked");
                writer.abort("upload-pack failed");
            }
            Ok(Ok(outcome)) => metrics.fetch(Transport::Http, protocol, Ok(outcome.pack.as_ref())),
            Ok(Err(e)) => {
                metrics.fetch(Transport::Http, protocol, Err(()));
                if e.is_client_error() {
                    tracing::info!(error = %e, "upload-pack refused");
                } else {
                    tracing::error!(error = %e, "upload-pack failed");
                    writer.abort("upload-pack failed");
                }
            }
        }
    }));
    no_cache(
        Response::new(response_body),
        "application/x-git-upload-pack-result",
    )
}

async fn receive_pack(
    State(state): State<AppState>,
    Path((owner, repo)): Path<(String, String)>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let Admitted {
        parts,
        body,
        granted,
        caller,
        permit: _permit,
    } = match admit(&state, &owner, &repo, GitNeed::Write, req).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let Some(authed) = caller else {
        return challenge("Authentication required to push.");
    };
    let limit = state.limits.max_push_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Push of {} bytes is over the limit of {limit} bytes.",
                declared.unwrap_or(0)
            ),
        );
    }
    let GitAccess {
        access,
        pusher: Some(pusher),
    } = granted
    else {
        return challenge("Authentication required to push.");
    };
    // A pack is streamed, not buffered, so it is read on a blocking thread: one of the
    // push class, so that slow pushers cannot take the threads fetches and REST need.
    let _thread = match thread_permit(&state, Class::Push).await {
        Ok(permit) => permit,
        Err(response) => return response,
    };
    let reader = BodyReader::new(body, pace(&state, &parts), limit).boxed(gzipped(&parts.headers));
    let report = SharedBuf::default();
    let result = serve::receive_pack(
        state.repos.clone(),
        state.git_plans.clone(),
        access.view.id,
        move |commands, atomic| async move { pusher.update_refs(commands, atomic).await },
        reader,
        Box::new(report.clone()),
        state.limits.max_object_bytes,
    )
    .await;
    state
        .git
        .observe(Transport::Http, "receive_pack", started.elapsed());
    match &result {
        Ok(outcome) => {
            state.git.push(Transport::Http, Some(outcome));
            tracing::info!(
                repo = %access.view.id,
                user = %authed.user.login,
                updated = outcome.updated,
                refused = outcome.refused,
                objects = outcome.pack_objects,
                bytes = outcome.pack_bytes,
                unpack_error = outcome.unpack_error.as_deref(),
                "push"
            );
        }
        Err(e) => {
            state.git.push(Transport::Http, None);
            if e.is_client_error() {
                tracing::info!(error = %e, "receive-pack refused");
            } else {
                tracing::error!(error = %e, "receive-pack failed");
                return internal(e);
            }
        }
    }
    no_cache(
        Response::new(Body::from(report.take())),
        "application/x-git-receive-pack-result",
    )
}
