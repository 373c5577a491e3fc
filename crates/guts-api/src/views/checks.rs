//! GitHub's shapes for commit statuses: a status as posted and listed (`status`), as
//! the combined status lists it (`simple-commit-status`), and the combined status
//! itself (`combined-commit-status`); check runs (`check-run`) and the check suites
//! synthesised from them (`check-suite`). Text is borrowed from the repository's state.

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

/// GitHub's `output` of a check run (annotations are not kept: none is counted).
#[derive(Debug, Serialize)]
pub(crate) struct CheckRunOutput<'a> {
    pub(crate) title: Option<&'a str>,
    pub(crate) summary: Option<&'a str>,
    pub(crate) text: Option<&'a str>,
    pub(crate) annotations_count: u64,
    /// `…/check-runs/{id}/annotations`.
    pub(crate) annotations_url: String,
}

/// The suite a check run belongs to: `{id}`.
#[derive(Debug, Serialize)]
pub(crate) struct CheckSuiteId {
    pub(crate) id: u64,
}

/// GitHub's `check-run`. Guts has no GitHub Apps, so `app` is null; `pull_requests`
/// is always empty (GitHub's own list does not promise to be complete either).
#[derive(Debug, Serialize)]
pub(crate) struct CheckRun<'a> {
    pub(crate) id: u64,
    pub(crate) node_id: String,
    pub(crate) head_sha: String,
    pub(crate) external_id: Option<&'a str>,
    pub(crate) url: String,
    pub(crate) html_url: Option<String>,
    pub(crate) details_url: Option<&'a str>,
    /// `queued`, `in_progress` or `completed`.
    pub(crate) status: &'static str,
    pub(crate) conclusion: Option<&'static str>,
    pub(crate) started_at: Option<String>,
    pub(crate) completed_at: Option<String>,
    pub(crate) output: CheckRunOutput<'a>,
    pub(crate) name: &'a str,
    pub(crate) check_suite: CheckSuiteId,
    pub(crate) app: Option<()>,
    pub(crate) pull_requests: [(); 0],
}

/// `GET commits/{ref}/check-runs`: one page of runs and how many match.
#[derive(Debug, Serialize)]
pub(crate) struct CheckRunList<'a> {
    pub(crate) total_count: usize,
    pub(crate) check_runs: Vec<CheckRun<'a>>,
}

/// GitHub's `simple-commit`, the head commit of a check suite.
#[derive(Debug, Serialize)]
pub(crate) struct SimpleCommit {
    pub(crate) id: String,
    pub(crate) tree_id: String,
    pub(crate) message: String,
    pub(crate) timestamp: String,
    pub(crate) author: NameEmail,
    pub(crate) committer: NameEmail,
}

/// `{name, email}` of a simple commit's author or committer.
#[derive(Debug, Serialize)]
pub(crate) struct NameEmail {
    pub(crate) name: String,
    pub(crate) email: String,
}

/// GitHub's `check-suite`: Guts synthesises one per head commit from its runs.
#[derive(Debug, Serialize)]
pub(crate) struct CheckSuite {
    pub(crate) id: u64,
    pub(crate) node_id: String,
    pub(crate) head_branch: Option<String>,
    pub(crate) head_sha: String,
    pub(crate) status: &'static str,
    pub(crate) conclusion: Option<&'static str>,
    pub(crate) url: String,
    pub(crate) before: Option<String>,
    pub(crate) after: Option<String>,
    pub(crate) pull_requests: [(); 0],
    pub(crate) app: Option<()>,
    pub(crate) repository: Repository,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) head_commit: SimpleCommit,
    pub(crate) latest_check_runs_count: usize,
    pub(crate) check_runs_url: String,
    pub(crate) rerequestable: bool,
    pub(crate) runs_rerequestable: bool,
}

/// `GET commits/{ref}/check-suites`.
#[derive(Debug, Serialize)]
pub(crate) struct CheckSuiteList {
    pub(crate) total_count: usize,
    pub(crate) check_suites: Vec<CheckSuite>,
}
