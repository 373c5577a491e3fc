//! Downloads: archives (`/{owner}/{repo}/legacy.tar.gz/{sha}` and `legacy.zip`), this
//! node's codeload, where `routes::archives` redirects; and raw files
//! (`/{owner}/{repo}/raw/{ref}/{path}`), what the `download_url` and `raw_url` of
//! contents and commit files name, as raw.githubusercontent.com serves them. Outside `/api/v3` and its REST
//! timeout, since an archive streams for as long as the repository takes; under the
//! git edge instead (git rate limit, requests per IP held until the body ends, the
//! request deadline), since an archive costs what a clone does.
//!
//! The archive is written by `guts_storage::archive` on a blocking thread of the fetch
//! class into a bounded channel: memory holds a few chunks and one blob at most,
//! never the archive.

use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use guts_storage::Browser;
use guts_storage::archive::{self, Format};
use http::{HeaderValue, StatusCode, header};

use crate::archive_links::{TARBALL_ROUTE, ZIPBALL_ROUTE, file_name, top_dir};
use crate::browse::{Repo, hex};
use crate::error::ApiError;
use crate::extract::MaybeUser;
use crate::git_io::response_channel;
use crate::links::Links;
use crate::middleware::git_edge::GitDeadline;
use crate::state::AppState;

/// How long a download waits for a blocking thread of the fetch class.
const THREAD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(TARBALL_ROUTE, get(tarball))
        .route(ZIPBALL_ROUTE, get(zipball))
        .route(RAW_ROUTE, get(raw))
}

/// Where raw files are served; `rest` is `{ref}/{path}`, the ref itself possibly
/// holding slashes (`feature/x`).
const RAW_ROUTE: &str = "/{owner}/{repo}/raw/{*rest}";

/// The most leading segments of `rest` tried as the ref: a bound on the work one
/// request can ask for (git refs are rarely deeper).
const MAX_REF_SEGMENTS: usize = 16;

/// A file's bytes at a ref (a branch, tag or sha, with slashes or not: the longest
/// leading segments that name one win, as GitHub resolves them). Served as
/// `text/plain` with `nosniff` and a sandboxing CSP whatever the file holds: raw
/// content shares this node's origin with the API and the web interface, so a pushed
/// HTML or SVG file must never run as a page here. Files over the request's read
/// budget (32 MiB) are refused with GitHub's `too_large` error; directories and
/// submodules are 404, as on GitHub. The web interface links here, so a browser's
/// session cookie counts as the caller when no credentials are sent (a read only).
async fn raw(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    headers: http::HeaderMap,
    Path((owner, name, rest)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    use guts_storage::browse::{PathContent, READ_BUDGET_BYTES};
    let caller = caller.or_else(|| {
        guts_ops::client::cookie(&headers, guts_service::SESSION_COOKIE)
            .and_then(|value| state.service.open_session(value))
    });
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?;
    let found = repo
        .browse(&state, move |b| {
            let parts: Vec<&str> = rest.split('/').collect();
            for cut in (1..parts.len().min(MAX_REF_SEGMENTS + 1)).rev() {
                let (rev, path) = (parts[..cut].join("/"), parts[cut..].join("/"));
                let Ok(commit) = b.resolve(&rev) else {
                    continue;
                };
                return Ok(match b.at_path(&commit, &path, READ_BUDGET_BYTES)? {
                    Some(PathContent::Blob {
                        data: Some(data), ..
                    }) => Some(Ok(data)),
                    Some(PathContent::Blob { entry, data: None }) => Some(Err(entry.size)),
                    _ => None,
                });
            }
            Ok(None)
        })
        .await?;
    let data = match found {
        Some(Ok(data)) => data,
        Some(Err(size)) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "This file is {} bytes, more than the {READ_BUDGET_BYTES} bytes served raw; clone the repository instead.",
                    size.unwrap_or_default()
                ),
            ));
        }
        None => return Err(ApiError::not_found()),
    };
    let mut response = Response::new(axum::body::Body::from(data));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(response)
}

async fn tarball(
    state: State<AppState>,
    links: Links,
    caller: MaybeUser,
    deadline: Option<Extension<GitDeadline>>,
    path: Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    download(state, links, caller, deadline, path, Format::TarGz).await
}

async fn zipball(
    state: State<AppState>,
    links: Links,
    caller: MaybeUser,
    deadline: Option<Extension<GitDeadline>>,
    path: Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    download(state, links, caller, deadline, path, Format::Zip).await
}

async fn download(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    deadline: Option<Extension<GitDeadline>>,
    Path((owner, name, sha)): Path<(String, String, String)>,
    format: Format,
) -> Result<Response, ApiError> {
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?;
    // Only full commit ids: what a redirect names never changes.
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found());
    }
    let wanted = sha.to_ascii_lowercase();
    let commit = repo
        .browse(&state, move |b| Ok(b.resolve(&wanted).ok()))
        .await?
        .filter(|c| hex(c) == sha.to_ascii_lowercase())
        .ok_or_else(ApiError::not_found)?;
    let sha = hex(&commit);
    let thread = tokio::time::timeout(THREAD_WAIT, state.git_threads.fetch.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is busy with other downloads; retry shortly.",
            )
        })?;
    let deadline = deadline.map_or_else(
        || tokio::time::Instant::now() + state.limits.git.deadline,
        |Extension(d)| d.0,
    );
    let (mut writer, body) = response_channel(state.limits.request_timeout, deadline);
    let top = top_dir(&repo, &sha);
    let git = state.repos.git().clone();
    let dir = repo.view.id.to_string();
    // Awaited by nobody: it ends when the archive is written or the client goes away
    // (a failed write ends it), holding its fetch-class thread until then.
    drop(tokio::task::spawn_blocking(move || {
        let _thread = thread;
        let written = Browser::open(&git, &dir)
            .map_err(|e| archive::ArchiveError::Io(std::io::Error::other(e.to_string())))
            .and_then(|browser| archive::write(&browser, &commit, &top, format, &mut writer));
        let flushed = written.and_then(|w| Ok(std::io::Write::flush(w)?));
        match flushed {
            Ok(()) => {}
            Err(archive::ArchiveError::Io(e)) if is_gone(&e) => {
                tracing::info!(error = %e, "archive download ended early");
            }
            // The client must see a broken transfer, never a short archive that
            // looks complete.
            Err(e) => {
                tracing::warn!(error = %e, "archive download failed");
                writer.abort("the archive could not be completed");
            }
        }
    }));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    let content_type = match format {
        Format::TarGz => "application/x-gzip",
        Format::Zip => "application/zip",
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename={}",
        file_name(&repo, format, &sha)
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response.into_response())
}

/// Whether a write failed because the client went away or was too slow (nothing to
/// report but the fact).
fn is_gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::TimedOut
    )
}
