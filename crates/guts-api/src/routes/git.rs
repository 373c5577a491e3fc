//! Git smart HTTP: `/{owner}/{repo}[.git]/info/refs?service=…`, `/git-upload-pack` and
//! `/git-receive-pack`. This module decides who may do what and bridges bodies; the
//! protocol is guts-git's.
//!
//! Errors are plain text, which git prints to the user (`remote: …`), with the status
//! codes git's credential flow expects: 401 + `WWW-Authenticate: Basic` when
//! credentials are missing or wrong (so a credential helper is asked), 403 when the
//! user may not push, 404 when the repository is not there for this caller.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use guts_core::Role;
use guts_git::serve::{self, Protocol, ServeError};
use guts_git::v0::Service;
use guts_storage::{RepoView, Scope};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;

use crate::extract::{Authed, MaybeUser};
use crate::git_io::{BodyReader, SharedBuf, response_channel};
use crate::state::AppState;

/// Largest upload-pack request (wants and haves), after gzip decoding.
const MAX_UPLOAD_REQUEST: u64 = 64 << 20;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/{owner}/{repo}/info/refs", get(info_refs))
        .route("/{owner}/{repo}/git-upload-pack", post(upload_pack))
        .route("/{owner}/{repo}/git-receive-pack", post(receive_pack))
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut body = message.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn challenge(message: &str) -> Response {
    let mut response = text(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Guts\""),
    );
    response
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Read,
    Write,
}

/// The repository and the caller, if the caller may do what they need.
async fn authorize(
    state: &AppState,
    parts: &mut http::request::Parts,
    owner: &str,
    repo: &str,
    need: Need,
) -> Result<(Arc<RepoView>, Option<Authed>), Response> {
    let caller = match MaybeUser::from_request_parts(parts, state).await {
        Ok(MaybeUser(caller)) => caller,
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
            return Err(challenge("Invalid username or token."));
        }
        Err(e) => return Err(text(e.status(), e.message())),
    };
    let name = repo.strip_suffix(".git").unwrap_or(repo);
    let found = state.repos.find(owner, name);
    let role = |view: &RepoView| {
        caller
            .as_ref()
            .and_then(|c| c.user.public_key().ok())
            .and_then(|key| view.state.role(&key))
    };
    let visible = found.as_ref().is_some_and(|view| {
        let public = view.state.meta.as_ref().is_some_and(|m| !m.private);
        public || role(view).is_some() || caller.as_ref().is_some_and(|c| c.user.site_admin)
    });
    if need == Need::Write && caller.is_none() {
        return Err(challenge("Authentication required to push."));
    }
    let view = match (found, visible) {
        (Some(view), true) => view,
        _ if caller.is_none() => return Err(challenge("Authentication required.")),
        _ => return Err(text(StatusCode::NOT_FOUND, "Repository not found.")),
    };
    if need == Need::Write {
        let Some(authed) = &caller else {
            return Err(challenge("Authentication required to push."));
        };
        if !authed.allows(Scope::Repo) {
            return Err(text(
                StatusCode::FORBIDDEN,
                "The token lacks the repo scope needed to push.",
            ));
        }
        if role(&view).is_none_or(|r| r < Role::Write) {
            return Err(text(
                StatusCode::FORBIDDEN,
                format!(
                    "Permission to {owner}/{name} denied to {}.",
                    authed.user.login
                ),
            ));
        }
    }
    Ok((view, caller))
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
        Service::UploadPack => Need::Read,
        Service::ReceivePack => Need::Write,
    };
    let (view, _) = match authorize(&state, &mut parts, &owner, &repo, need).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let protocol = protocol(&parts.headers);
    let git = state.repos.git().clone();
    let dir = view.id.to_string();
    let advertised = tokio::task::spawn_blocking(move || {
        let repo = git.open_repo(&dir).map_err(ServeError::from)?;
        let mut out = Vec::new();
        serve::advertise(&repo, service, protocol, &mut out)?;
        Ok::<_, ServeError>(out)
    })
    .await;
    state.git.observe("info_refs", started.elapsed());
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
    view: Arc<RepoView>,
    caller: Option<Authed>,
    permit: tokio::sync::OwnedSemaphorePermit,
}

async fn admit(
    state: &AppState,
    owner: &str,
    repo: &str,
    need: Need,
    req: Request,
) -> Result<Admitted, Response> {
    let (mut parts, body) = req.into_parts();
    let (view, caller) = authorize(state, &mut parts, owner, repo, need).await?;
    let Ok(permit) = state.in_flight.clone().try_acquire_owned() else {
        return Err(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many requests in flight.",
        ));
    };
    Ok(Admitted {
        parts,
        body,
        view,
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
        view,
        permit,
        ..
    } = match admit(&state, &owner, &repo, Need::Read, req).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let protocol = protocol(&parts.headers);
    let idle = state.limits.request_timeout;
    let reader = BodyReader::new(body, idle, MAX_UPLOAD_REQUEST).boxed(gzipped(&parts.headers));
    let (mut writer, response_body) = response_channel(idle);
    let git = state.repos.git().clone();
    let dir = view.id.to_string();
    let metrics = state.git.clone();
    let plans = state.git_plans.clone();
    // Awaited by nobody: it ends when the pack is written or the client goes away (a
    // failed write ends it), and it holds the in-flight permit until then.
    drop(tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut reader = reader;
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
        metrics.observe("upload_pack", started.elapsed());
        match result {
            Err(_) => {
                metrics.fetch(protocol, Err(()));
                tracing::error!("upload-pack panicked");
                writer.abort("upload-pack failed");
            }
            Ok(Ok(outcome)) => metrics.fetch(protocol, Ok(outcome.pack.as_ref())),
            Ok(Err(e)) => {
                metrics.fetch(protocol, Err(()));
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
        view,
        caller,
        permit: _permit,
    } = match admit(&state, &owner, &repo, Need::Write, req).await {
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
    let key = match state.accounts.signing_key(&authed.user) {
        Ok(key) => key,
        Err(e) => return internal(&e),
    };
    let reader =
        BodyReader::new(body, state.limits.request_timeout, limit).boxed(gzipped(&parts.headers));
    let report = SharedBuf::default();
    let result = serve::receive_pack(
        state.repos.clone(),
        state.git_plans.clone(),
        view.id,
        key,
        reader,
        Box::new(report.clone()),
        state.limits.max_object_bytes,
    )
    .await;
    state.git.observe("receive_pack", started.elapsed());
    match &result {
        Ok(outcome) => {
            state.git.push(Some(outcome));
            tracing::info!(
                repo = %view.id,
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
            state.git.push(None);
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
