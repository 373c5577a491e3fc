//! The bridge from the git-data handlers to `guts_storage::browse`: a visible
//! repository opened on the blocking pool (gix blocks and a history walk is CPU-heavy),
//! browse errors as GitHub's statuses, and the repository's URL prefixes.

use std::sync::Arc;

use guts_service::Caller;
use guts_storage::{BrowseError, Browser, Oid, RepoView};
use http::StatusCode;

use crate::error::{ApiError, FieldError};
use crate::extract::Authed;
use crate::links::Links;
use crate::state::AppState;

/// A repository the caller may read, with what its handlers need for URLs.
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    pub(crate) view: Arc<RepoView>,
    /// `owner/name` as created (its canonical case).
    pub(crate) full: String,
    pub(crate) default_branch: String,
    pub(crate) links: Links,
}

impl Repo {
    /// The repository `owner/name` if the caller may see it (404 otherwise, as GitHub
    /// answers for a private repository).
    pub(crate) fn find(
        state: &AppState,
        links: Links,
        owner: &str,
        name: &str,
        caller: Option<&Authed>,
    ) -> Result<Repo, ApiError> {
        tracing::Span::current().record("repo", format!("{owner}/{name}"));
        let view = state.service.repo(Caller::from(caller), owner, name)?.view;
        let meta = view.state.meta.as_ref().ok_or_else(ApiError::not_found)?;
        let served = state.served(&view);
        Ok(Repo {
            full: format!("{}/{}", served.owner, served.name),
            default_branch: meta.default_branch.clone(),
            view,
            links,
        })
    }

    /// This repository if it has commits; GitHub's 409 for an empty one.
    pub(crate) fn nonempty(self) -> Result<Repo, ApiError> {
        if self.view.state.refs.is_empty() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "Git Repository is empty.",
            ));
        }
        Ok(self)
    }

    /// An API URL under this repository: `…/api/v3/repos/owner/name{path}`.
    pub(crate) fn api(&self, path: &str) -> String {
        self.links.api(&format!("/repos/{}{path}", self.full))
    }

    /// A web URL under this repository: `…/owner/name{path}`.
    pub(crate) fn web(&self, path: &str) -> String {
        self.links.web(&format!("/{}{path}", self.full))
    }

    /// Runs `f` on the blocking pool against this repository's objects, through a
    /// [`Browser`] made for this request alone: its memory bounds
    /// ([`guts_storage::browse::READ_BUDGET_BYTES`]) are per request.
    pub(crate) async fn browse<T, F>(&self, state: &AppState, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Browser) -> Result<T, ApiError> + Send + 'static,
    {
        let git = state.repos.git().clone();
        let dir = self.view.id.to_string();
        tokio::task::spawn_blocking(move || {
            let browser = Browser::open(&git, &dir).map_err(|e| {
                tracing::error!(error = %e, "cannot open a repository to browse");
                ApiError::internal()
            })?;
            f(&browser)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a browse task failed");
            ApiError::internal()
        })?
    }
}

/// Lowercase hex of an object id, as GitHub writes shas.
pub(crate) fn hex(id: &Oid) -> String {
    hex::encode(id)
}

/// GitHub's 422 for a commit that cannot be found by the name given.
pub(crate) fn no_commit(rev: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("No commit found for SHA: {rev}"),
    )
}

/// GitHub's 403 for a blob too large for the API, naming this node's limit (GitHub's is
/// 100 MB; the blob API's here is the request budget, see `routes::git_data`).
pub(crate) fn too_large(max: u64) -> ApiError {
    ApiError::forbidden(format!(
        "This API returns blobs up to {} in size. The requested blob is too large to fetch via the API.",
        human_size(max)
    ))
    .with_errors(vec![FieldError {
        resource: "Blob".into(),
        field: "data".into(),
        code: "too_large".into(),
        message: None,
    }])
}

/// `100 MB` for GitHub's decimal limit, `32 MiB` for ours, bytes otherwise.
fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    const MB: u64 = 1000 * 1000;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MB && bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else {
        format!("{bytes} bytes")
    }
}

impl From<BrowseError> for ApiError {
    fn from(e: BrowseError) -> ApiError {
        match e {
            BrowseError::UnknownRevision(_) | BrowseError::NotFound { .. } => ApiError::not_found(),
            BrowseError::TooLarge { max, .. } => too_large(max),
            e @ (BrowseError::Corrupt { .. } | BrowseError::Git(_)) => {
                tracing::error!(error = %e, "reading a repository failed");
                ApiError::internal()
            }
        }
    }
}
