//! Archive downloads (`/{owner}/{repo}/legacy.tar.gz/{sha}` and `legacy.zip`): this
//! node's codeload, where `routes::archives` redirects. Outside `/api/v3` and its REST
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
