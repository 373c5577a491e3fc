//! GitHub's shapes for the collaboration of a repository: labels, issues (pull requests
//! are issues too), issue comments, pull requests with their branch ends, reviews and
//! review comments. `threads::Render` fills them in; names and titles come borrowed
//! from the repository's state (`'a`), bodies as read from the operation log, and the
//! users, labels and repository they embed are [`Shared`] across one response.

use serde::Serialize;

use super::{Null, Repository, Shared, SimpleUser};

/// A repository's label.
#[derive(Debug, Serialize)]
pub(crate) struct Label<'a> {
    pub(crate) id: u64,
    pub(crate) node_id: String,
    pub(crate) url: String,
    pub(crate) name: &'a str,
    /// Six hex digits, without `#`.
    pub(crate) color: &'a str,
    pub(crate) default: bool,
    pub(crate) description: Option<&'a str>,
}

/// GitHub's issue object; a pull request seen as an issue has `pull_request`.
#[derive(Debug, Serialize)]
pub(crate) struct Issue<'a> {
    pub(crate) id: u64,
    pub(crate) node_id: String,
    pub(crate) url: String,
    pub(crate) repository_url: String,
    pub(crate) labels_url: String,
    pub(crate) comments_url: String,
    pub(crate) events_url: String,
    pub(crate) html_url: String,
    pub(crate) number: u64,
    /// `open` or `closed`.
    pub(crate) state: &'static str,
    /// `completed` once closed.
    pub(crate) state_reason: Option<&'static str>,
    pub(crate) title: &'a str,
    pub(crate) body: Option<String>,
    pub(crate) user: Shared<SimpleUser>,
    pub(crate) labels: Vec<Shared<Label<'a>>>,
    /// The first of `assignees`.
    pub(crate) assignee: Option<Shared<SimpleUser>>,
    pub(crate) assignees: Vec<Shared<SimpleUser>>,
    pub(crate) milestone: Null,
    pub(crate) locked: bool,
    pub(crate) active_lock_reason: Null,
    /// How many comments.
    pub(crate) comments: usize,
    pub(crate) closed_at: Option<String>,
    pub(crate) closed_by: Option<Shared<SimpleUser>>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    /// `OWNER`, `COLLABORATOR` or `NONE`.
    pub(crate) author_association: &'static str,
    /// Whether a pull request is a draft; absent on an issue (GitHub's schema has no
    /// `null` here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) draft: Option<bool>,
    /// Only on pull requests (GitHub omits it on issues).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pull_request: Option<IssuePullRequestLinks>,
    pub(crate) reactions: Reactions,
}

/// GitHub's `reaction-rollup`. Guts has no reactions: every count is 0.
#[derive(Debug, Serialize)]
pub(crate) struct Reactions {
    pub(crate) url: String,
    pub(crate) total_count: u64,
    #[serde(rename = "+1")]
    pub(crate) plus_one: u64,
    #[serde(rename = "-1")]
    pub(crate) minus_one: u64,
    pub(crate) laugh: u64,
    pub(crate) confused: u64,
    pub(crate) heart: u64,
    pub(crate) hooray: u64,
    pub(crate) eyes: u64,
    pub(crate) rocket: u64,
}

impl Reactions {
    /// No reactions, listed at `{subject}/reactions`.
    pub(crate) fn none(subject: &str) -> Reactions {
        Reactions {
            url: format!("{subject}/reactions"),
            total_count: 0,
            plus_one: 0,
            minus_one: 0,
            laugh: 0,
            confused: 0,
            heart: 0,
            hooray: 0,
            eyes: 0,
            rocket: 0,
        }
    }
}

/// Where an issue that is a pull request leads, and whether it was merged.
#[derive(Debug, Serialize)]
pub(crate) struct IssuePullRequestLinks {
    pub(crate) url: String,
    pub(crate) html_url: String,
    pub(crate) diff_url: String,
    pub(crate) patch_url: String,
    pub(crate) merged_at: Option<String>,
}

/// A comment in the conversation of an issue or pull request.
#[derive(Debug, Serialize)]
pub(crate) struct IssueComment {
    pub(crate) id: u64,
    pub(crate) node_id: String,
    pub(crate) url: String,
    pub(crate) html_url: String,
    pub(crate) issue_url: String,
    pub(crate) body: String,
    pub(crate) user: Shared<SimpleUser>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) author_association: &'static str,
    /// Always null: no app acts here.
    pub(crate) performed_via_github_app: Null,
    pub(crate) reactions: Reactions,
}

/// GitHub's pull request object.
#[derive(Debug, Serialize)]
pub(crate) struct PullRequest<'a> {
    pub(crate) url: String,
    pub(crate) id: u64,
    pub(crate) node_id: String,
    pub(crate) html_url: String,
    pub(crate) diff_url: String,
    pub(crate) patch_url: String,
    pub(crate) issue_url: String,
    pub(crate) commits_url: String,
    pub(crate) review_comments_url: String,
    pub(crate) review_comment_url: String,
    pub(crate) comments_url: String,
    pub(crate) statuses_url: String,
    pub(crate) number: u64,
    /// `open` or `closed`.
    pub(crate) state: &'static str,
    pub(crate) locked: bool,
    pub(crate) title: &'a str,
    pub(crate) user: Shared<SimpleUser>,
    pub(crate) body: Option<String>,
    pub(crate) labels: Vec<Shared<Label<'a>>>,
    pub(crate) milestone: Null,
    pub(crate) active_lock_reason: Null,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) closed_at: Option<String>,
    pub(crate) merged_at: Option<String>,
    pub(crate) merge_commit_sha: Option<String>,
    pub(crate) assignee: Option<Shared<SimpleUser>>,
    pub(crate) assignees: Vec<Shared<SimpleUser>>,
    /// Guts has no review requests.
    pub(crate) requested_reviewers: Vec<Shared<SimpleUser>>,
    pub(crate) requested_teams: &'static [Null],
    pub(crate) head: BranchEnd<'a>,
    pub(crate) base: BranchEnd<'a>,
    #[serde(rename = "_links")]
    pub(crate) links: PullLinks,
    pub(crate) author_association: &'static str,
    pub(crate) auto_merge: Null,
    pub(crate) draft: bool,
    pub(crate) merged: bool,
    /// `None` where GitHub sends `null`: in lists, or when it could not be computed.
    pub(crate) mergeable: Option<bool>,
    pub(crate) rebaseable: Option<bool>,
    /// `clean`, `dirty`, `draft` or `unknown`.
    pub(crate) mergeable_state: &'static str,
    pub(crate) merged_by: Option<Shared<SimpleUser>>,
    pub(crate) comments: usize,
    /// How many inline comments its reviews carry.
    pub(crate) review_comments: usize,
    pub(crate) maintainer_can_modify: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub(crate) stats: Option<PullStats>,
}

/// The head or base of a pull request: a branch of the repository, at `sha`.
#[derive(Debug, Serialize)]
pub(crate) struct BranchEnd<'a> {
    /// `owner:branch`.
    pub(crate) label: String,
    #[serde(rename = "ref")]
    pub(crate) branch: &'a str,
    pub(crate) sha: String,
    /// The repository's owner.
    pub(crate) user: Option<Shared<SimpleUser>>,
    pub(crate) repo: Option<Shared<Repository>>,
}

/// The `_links` of a pull request (HAL style: each an object with `href`).
#[derive(Debug, Serialize)]
pub(crate) struct PullLinks {
    #[serde(rename = "self")]
    pub(crate) this: Href,
    pub(crate) html: Href,
    pub(crate) issue: Href,
    pub(crate) comments: Href,
    pub(crate) review_comments: Href,
    pub(crate) review_comment: Href,
    pub(crate) commits: Href,
    pub(crate) statuses: Href,
}

/// What a pull request changes, computed from the objects: on one pull request
/// (`pull-request`), not in lists (`pull-request-simple`), as on GitHub.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct PullStats {
    /// Commits on the head that the base lacks.
    pub(crate) commits: usize,
    pub(crate) additions: usize,
    pub(crate) deletions: usize,
    pub(crate) changed_files: usize,
}

/// One link of [`PullLinks`].
#[derive(Debug, Serialize)]
pub(crate) struct Href {
    pub(crate) href: String,
}

/// A pull request review.
#[derive(Debug, Serialize)]
pub(crate) struct Review {
    pub(crate) id: u64,
    pub(crate) node_id: String,
    pub(crate) user: Shared<SimpleUser>,
    pub(crate) body: String,
    /// `APPROVED`, `CHANGES_REQUESTED` or `COMMENTED`.
    pub(crate) state: &'static str,
    pub(crate) html_url: String,
    pub(crate) pull_request_url: String,
    pub(crate) commit_id: String,
    pub(crate) submitted_at: String,
    pub(crate) author_association: &'static str,
    #[serde(rename = "_links")]
    pub(crate) links: ReviewLinks,
}

/// The `_links` of a review.
#[derive(Debug, Serialize)]
pub(crate) struct ReviewLinks {
    pub(crate) html: Href,
    pub(crate) pull_request: Href,
}

/// The `_links` of a review comment.
#[derive(Debug, Serialize)]
pub(crate) struct ReviewCommentLinks {
    #[serde(rename = "self")]
    pub(crate) this: Href,
    pub(crate) html: Href,
    pub(crate) pull_request: Href,
}

/// An inline comment of a review. Guts keeps no diff hunks or moved positions: the
/// original line and position are the line.
#[derive(Debug, Serialize)]
pub(crate) struct ReviewComment<'a> {
    pub(crate) id: u64,
    pub(crate) node_id: String,
    pub(crate) url: String,
    pub(crate) pull_request_review_id: u64,
    pub(crate) path: &'a str,
    pub(crate) line: u32,
    pub(crate) original_line: u32,
    pub(crate) side: &'static str,
    /// Single-line comments only: null, as GitHub writes for those.
    pub(crate) start_line: Null,
    pub(crate) original_start_line: Null,
    pub(crate) start_side: Null,
    pub(crate) reactions: Reactions,
    pub(crate) position: u32,
    pub(crate) original_position: u32,
    pub(crate) commit_id: String,
    pub(crate) original_commit_id: String,
    pub(crate) diff_hunk: &'static str,
    pub(crate) body: String,
    pub(crate) user: Shared<SimpleUser>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) html_url: String,
    pub(crate) pull_request_url: String,
    pub(crate) author_association: &'static str,
    #[serde(rename = "_links")]
    pub(crate) links: ReviewCommentLinks,
}
