//! GitHub's shapes for commit statuses: a status as posted and listed (`status`), as
//! the combined status lists it (`simple-commit-status`), and the combined status
//! itself (`combined-commit-status`). Text is borrowed from the repository's state.

use serde::Serialize;

use super::{Repository, Shared, SimpleUser};

/// GitHub's `simple-commit-status`: a status without its creator.
#[derive(Debug, Serialize)]
pub(crate) struct SimpleStatus<'a> {
    /// `…/repos/{owner}/{repo}/statuses/{sha}`, as GitHub writes it.
    pub(crate) url: String,
    /// The creator's avatar.
    pub(crate) avatar_url: Option<String>,
    pub(crate) id: u64,
    pub(crate) node_id: String,
    /// `error`, `failure`, `pending` or `success`.
    pub(crate) state: &'static str,
    pub(crate) description: Option<&'a str>,
    pub(crate) target_url: Option<&'a str>,
    pub(crate) context: &'a str,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// GitHub's `status`: a status with the user who posted it.
#[derive(Debug, Serialize)]
pub(crate) struct Status<'a> {
    #[serde(flatten)]
    pub(crate) status: SimpleStatus<'a>,
    pub(crate) creator: Shared<SimpleUser>,
}

/// GitHub's `combined-commit-status`: the latest status of each context of a commit
/// and their combined `state`.
#[derive(Debug, Serialize)]
pub(crate) struct CombinedStatus<'a> {
    pub(crate) state: &'static str,
    pub(crate) statuses: Vec<SimpleStatus<'a>>,
    pub(crate) sha: String,
    /// How many contexts (all of them, whatever page `statuses` holds).
    pub(crate) total_count: usize,
    pub(crate) repository: Repository,
    pub(crate) commit_url: String,
    pub(crate) url: String,
}
