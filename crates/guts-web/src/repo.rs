//! What the repository pages share: the repository as the viewer may see it (the
//! service decides), git reads on the blocking pool, and splitting GitHub's
//! `{ref}/{path}` tails, whose ref may itself contain slashes.

use guts_core::{ObjectId, RepoState};
use guts_service::RepoAccess;
use guts_storage::browse::CommitInfo;
use guts_storage::{BrowseError, Browser, Oid};
use http::StatusCode;

use crate::WebState;
use crate::error::WebError;
use crate::session::Viewer;

/// Repository `owner/name` as `viewer` may see it: a 404 page when it does not exist or
/// is private to them.
pub(crate) fn find(
    state: &WebState,
    viewer: &Viewer,
    owner: &str,
    name: &str,
) -> Result<RepoAccess, WebError> {
    Ok(state.service.repo(viewer.caller(), owner, name)?)
}

/// Runs `read` over the repository's objects on the blocking pool (gix blocks, and a
/// history walk is CPU work).
pub(crate) async fn browse<T: Send + 'static>(
    state: &WebState,
    access: &RepoAccess,
    read: impl FnOnce(&Browser) -> Result<T, BrowseError> + Send + 'static,
) -> Result<T, WebError> {
    let git = state.service.repositories().git().clone();
    let dir = access.view.id.to_string();
    tokio::task::spawn_blocking(move || {
        let browser = Browser::open(&git, &dir).map_err(|e| {
            tracing::debug!(error = %e, "repository has no objects yet");
            BrowseError::UnknownRevision(String::new())
        })?;
        read(&browser)
    })
    .await
    .map_err(|_| WebError::internal())?
    .map_err(browse_error)
}

/// A read that failed, as a page.
pub(crate) fn browse_error(e: BrowseError) -> WebError {
    match e {
        BrowseError::UnknownRevision(_) | BrowseError::NotFound { .. } => WebError::not_found(),
        BrowseError::TooLarge { .. } => WebError::page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "That is too large to show here. Clone the repository to read it.",
        ),
        e @ (BrowseError::Corrupt { .. } | BrowseError::Git(_)) => {
            tracing::error!(error = %e, "reading a repository failed");
            WebError::internal()
        }
    }
}

/// Hex of a git object id.
pub(crate) fn hex(id: &Oid) -> String {
    ObjectId::from_bytes(*id).to_string()
}

/// Splits `rest` (`{ref}/{path}`) where the ref ends: the longest leading run of
/// segments that names a branch or tag of `state`, else the first segment (a sha).
pub(crate) fn split_ref(state: &RepoState, rest: &str) -> (String, String) {
    let rest = rest.trim_matches('/');
    let mut cut = None;
    for (i, _) in rest.match_indices('/').chain([(rest.len(), "")]) {
        let candidate = &rest[..i];
        if state.refs.contains_key(&format!("refs/heads/{candidate}"))
            || state.refs.contains_key(&format!("refs/tags/{candidate}"))
        {
            cut = Some(i);
        }
    }
    let cut = cut.unwrap_or_else(|| rest.find('/').unwrap_or(rest.len()));
    let (name, path) = rest.split_at(cut);
    (name.to_string(), path.trim_start_matches('/').to_string())
}

/// The commit a ref names, decoded.
pub(crate) fn commit_of(browser: &Browser, rev: &str) -> Result<CommitInfo, BrowseError> {
    let id = browser.resolve(rev)?;
    browser.commit(&id)
}

/// The default branch of a repository (`main` when it has no settings yet).
pub(crate) fn default_branch(access: &RepoAccess) -> String {
    access
        .view
        .state
        .meta
        .as_ref()
        .map_or_else(|| "main".to_string(), |m| m.default_branch.clone())
}

/// The first line of a commit message.
pub(crate) fn title_of(message: &str) -> &str {
    message.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use guts_core::{Hlc, OpId, RefState};

    #[test]
    fn refs_with_slashes_split_at_their_end() {
        let mut state = RepoState::default();
        let target = ObjectId::from_bytes([1; 20]);
        for name in ["refs/heads/main", "refs/heads/feature/x", "refs/tags/v1"] {
            state.refs.insert(
                name.to_string(),
                RefState {
                    target,
                    op: OpId::from_bytes([2; 32]),
                    at: Hlc::default(),
                },
            );
        }
        let split = |rest| split_ref(&state, rest);
        assert_eq!(
            split("main/src/lib.rs"),
            ("main".into(), "src/lib.rs".into())
        );
        assert_eq!(split("feature/x/src"), ("feature/x".into(), "src".into()));
        assert_eq!(split("feature/x"), ("feature/x".into(), String::new()));
        assert_eq!(split("v1"), ("v1".into(), String::new()));
        assert_eq!(split("abc123/docs"), ("abc123".into(), "docs".into()));
        assert_eq!(split(""), (String::new(), String::new()));
    }
}
