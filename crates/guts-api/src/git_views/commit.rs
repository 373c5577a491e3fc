//! Commits as GitHub shows them: the git commit object (`/git/commits`), the REST
//! commit (`/commits`, a branch's head, a comparison's commits) that embeds the same
//! git fields, and the changed files and stats of a diff.
//!
//! The constructors take the storage types by value: names, messages and patches are
//! moved into the JSON rather than copied (a patch can be large).

use guts_storage::browse::{ChangeStatus, CommitInfo, FileChange, Signature};
use serde::Serialize;

use crate::browse::{Repo, hex};
use crate::time::iso8601;

/// `{name, email, date}` of an author or committer; the date in UTC, as GitHub shows
/// it.
#[derive(Debug, Serialize)]
pub(crate) struct Person {
    name: String,
    email: String,
    date: String,
}

impl Person {
    pub(crate) fn new(sig: Signature) -> Person {
        Person {
            name: sig.name,
            email: sig.email,
            // A date before 1970 is shown as the epoch rather than failing the request.
            date: iso8601(u64::try_from(sig.seconds).unwrap_or(0)),
        }
    }
}

/// A commit's signature check. Git signatures are not verified here, so every commit
/// carries GitHub's shape for an unsigned one.
#[derive(Debug, Serialize)]
pub(crate) struct Verification {
    verified: bool,
    reason: &'static str,
    signature: Option<String>,
    payload: Option<String>,
    verified_at: Option<String>,
}

impl Verification {
    pub(crate) const UNSIGNED: Verification = Verification {
        verified: false,
        reason: "unsigned",
        signature: None,
        payload: None,
        verified_at: None,
    };
}

/// `{sha, url}` of a commit's tree.
#[derive(Debug, Serialize)]
pub(crate) struct TreeRef {
    sha: String,
    url: String,
}

/// One of a commit's `parents`: its API URL (under `/commits` or `/git/commits`,
/// matching the object it is listed in) and its web URL.
#[derive(Debug, Serialize)]
pub(crate) struct Parent {
    sha: String,
    url: String,
    html_url: String,
}

fn parents(repo: &Repo, commit: &CommitInfo, api: &str) -> Vec<Parent> {
    commit
        .parents
        .iter()
        .map(|p| {
            let sha = hex(p);
            Parent {
                url: repo.api(&format!("{api}/{sha}")),
                html_url: repo.web(&format!("/commit/{sha}")),
                sha,
            }
        })
        .collect()
}

/// The git fields both commit shapes carry: the git object alone, and the `commit`
/// inside a REST commit.
#[derive(Debug, Serialize)]
pub(crate) struct GitCommitFields {
    author: Person,
    committer: Person,
    message: String,
    tree: TreeRef,
    /// The git object's API URL (`/git/commits/{sha}`), in both shapes.
    url: String,
    verification: Verification,
}

impl GitCommitFields {
    /// The fields of `commit`, whose hex id is `sha`. Parents are not among them: each
    /// shape lists them under its own URLs, so callers take them before this consumes
    /// `commit`.
    fn new(repo: &Repo, sha: &str, commit: CommitInfo) -> GitCommitFields {
        let tree = hex(&commit.tree);
        GitCommitFields {
            author: Person::new(commit.author),
            committer: Person::new(commit.committer),
            message: commit.message,
            tree: TreeRef {
                url: repo.api(&format!("/git/trees/{tree}")),
                sha: tree,
            },
            url: repo.api(&format!("/git/commits/{sha}")),
            verification: Verification::UNSIGNED,
        }
    }
}

/// The git commit object (`GET /git/commits/{sha}`).
#[derive(Debug, Serialize)]
pub(crate) struct GitCommit {
    sha: String,
    node_id: String,
    html_url: String,
    #[serde(flatten)]
    fields: GitCommitFields,
    parents: Vec<Parent>,
}

impl GitCommit {
    pub(crate) fn new(repo: &Repo, commit: CommitInfo) -> GitCommit {
        let sha = hex(&commit.id);
        let parents = parents(repo, &commit, "/git/commits");
        GitCommit {
            node_id: format!("C_{sha}"),
            html_url: repo.web(&format!("/commit/{sha}")),
            fields: GitCommitFields::new(repo, &sha, commit),
            parents,
            sha,
        }
    }
}

/// The `commit` inside a REST commit: the git fields and a comment count (Guts has no
/// commit comments).
#[derive(Debug, Serialize)]
pub(crate) struct EmbeddedGitCommit {
    #[serde(flatten)]
    fields: GitCommitFields,
    comment_count: u64,
}

/// A GitHub account matched to a commit by its email address. Guts accounts carry no
/// email, so none ever matches and it is `null`, as GitHub shows a commit by an
/// unknown address.
#[derive(Debug, Serialize)]
pub(crate) struct UnmatchedAccount;

/// The REST commit (`GET /commits`, `GET /commits/{ref}`, a branch's `commit`, a
/// comparison's commits).
#[derive(Debug, Serialize)]
pub(crate) struct Commit {
    sha: String,
    node_id: String,
    commit: EmbeddedGitCommit,
    url: String,
    html_url: String,
    comments_url: String,
    author: UnmatchedAccount,
    committer: UnmatchedAccount,
    parents: Vec<Parent>,
}

impl Commit {
    pub(crate) fn new(repo: &Repo, commit: CommitInfo) -> Commit {
        let sha = hex(&commit.id);
        let parents = parents(repo, &commit, "/commits");
        Commit {
            node_id: format!("C_{sha}"),
            url: repo.api(&format!("/commits/{sha}")),
            html_url: repo.web(&format!("/commit/{sha}")),
            comments_url: repo.api(&format!("/commits/{sha}/comments")),
            commit: EmbeddedGitCommit {
                fields: GitCommitFields::new(repo, &sha, commit),
                comment_count: 0,
            },
            author: UnmatchedAccount,
            committer: UnmatchedAccount,
            parents,
            sha,
        }
    }
}

/// `GET /commits/{ref}`: the REST commit with its `stats` and `files` against its
/// first parent.
#[derive(Debug, Serialize)]
pub(crate) struct CommitWithFiles {
    #[serde(flatten)]
    commit: Commit,
    stats: Stats,
    files: Vec<DiffEntry>,
}

impl CommitWithFiles {
    /// `commit` with its `changes`, of which the first `max_files` are listed (the
    /// stats count them all).
    pub(crate) fn new(
        repo: &Repo,
        commit: CommitInfo,
        changes: Vec<FileChange>,
        max_files: usize,
    ) -> CommitWithFiles {
        let commit = Commit::new(repo, commit);
        let stats = Stats::new(&changes);
        let files = DiffEntry::list(repo, changes, &commit.sha, max_files);
        CommitWithFiles {
            commit,
            stats,
            files,
        }
    }
}

/// `stats` of a single commit: lines added and removed over all its files.
#[derive(Debug, Serialize)]
pub(crate) struct Stats {
    total: usize,
    additions: usize,
    deletions: usize,
}

impl Stats {
    fn new(changes: &[FileChange]) -> Stats {
        let additions: usize = changes.iter().map(|c| c.additions).sum();
        let deletions: usize = changes.iter().map(|c| c.deletions).sum();
        Stats {
            total: additions + deletions,
            additions,
            deletions,
        }
    }
}

fn status_name(status: ChangeStatus) -> &'static str {
    match status {
        ChangeStatus::Added => "added",
        ChangeStatus::Modified => "modified",
        ChangeStatus::Removed => "removed",
        ChangeStatus::Renamed => "renamed",
    }
}

/// One entry of a commit's, comparison's or pull request's `files` (GitHub's
/// `diff-entry`).
#[derive(Debug, Serialize)]
pub(crate) struct DiffEntry {
    /// The blob after the change, or before it for a removed file.
    sha: Option<String>,
    filename: String,
    status: &'static str,
    additions: usize,
    deletions: usize,
    changes: usize,
    blob_url: String,
    raw_url: String,
    contents_url: String,
    /// Only for a rename: absent, not null, otherwise, as on GitHub.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_filename: Option<String>,
    /// Absent (not null) for binary files and files over the diff limits, as on
    /// GitHub (see `guts_storage::browse::FileChange::patch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
}

impl DiffEntry {
    /// `change` seen at commit (or ref) `at`, which its URLs name.
    pub(crate) fn new(repo: &Repo, change: FileChange, at: &str) -> DiffEntry {
        let path = change.path;
        DiffEntry {
            sha: change.new_id.or(change.old_id).map(|id| hex(&id)),
            status: status_name(change.status),
            additions: change.additions,
            deletions: change.deletions,
            changes: change.additions + change.deletions,
            blob_url: repo.web(&format!("/blob/{at}/{path}")),
            raw_url: repo.web(&format!("/raw/{at}/{path}")),
            contents_url: repo.api(&format!("/contents/{path}?ref={at}")),
            filename: path,
            previous_filename: change.previous_path,
            patch: change.patch,
        }
    }

    /// The first `max` of `changes`, seen at `at`: GitHub caps the files it lists.
    pub(crate) fn list(
        repo: &Repo,
        changes: Vec<FileChange>,
        at: &str,
        max: usize,
    ) -> Vec<DiffEntry> {
        changes
            .into_iter()
            .take(max)
            .map(|c| DiffEntry::new(repo, c, at))
            .collect()
    }
}

/// `GET /compare/{basehead}`: how two revisions relate, with the commits and files
/// from their merge base to the head.
#[derive(Debug, Serialize)]
pub(crate) struct Comparison {
    url: String,
    html_url: String,
    permalink_url: String,
    diff_url: String,
    patch_url: String,
    base_commit: Commit,
    /// `null` when the two histories share no commit.
    merge_base_commit: Option<Commit>,
    status: &'static str,
    ahead_by: usize,
    behind_by: usize,
    total_commits: usize,
    commits: Vec<Commit>,
    files: Vec<DiffEntry>,
}

/// What a comparison is made of, read from the repository by the handler.
#[derive(Debug)]
pub(crate) struct Compared {
    pub(crate) base: CommitInfo,
    /// `None` when the two histories share no commit.
    pub(crate) merge_base: Option<CommitInfo>,
    /// `ahead`, `behind`, `diverged` or `identical`.
    pub(crate) status: &'static str,
    /// Commits reachable from head and not from base (at most the handler's cap),
    /// oldest first.
    pub(crate) commits: Vec<CommitInfo>,
    /// How many commits head is ahead of base, uncapped.
    pub(crate) ahead_by: usize,
    pub(crate) behind_by: usize,
    /// The files changed from the merge base (or base) to head.
    pub(crate) changes: Vec<FileChange>,
}

impl Comparison {
    /// The comparison `c` of `basehead` (as the caller wrote it, which the URLs
    /// repeat), whose files are seen at `head` (as the caller named it); at most
    /// `max_files` files are listed.
    pub(crate) fn new(
        repo: &Repo,
        basehead: &str,
        head: &str,
        c: Compared,
        max_files: usize,
    ) -> Comparison {
        let web = repo.web(&format!("/compare/{basehead}"));
        Comparison {
            url: repo.api(&format!("/compare/{basehead}")),
            permalink_url: web.clone(),
            diff_url: format!("{web}.diff"),
            patch_url: format!("{web}.patch"),
            html_url: web,
            base_commit: Commit::new(repo, c.base),
            merge_base_commit: c.merge_base.map(|m| Commit::new(repo, m)),
            status: c.status,
            ahead_by: c.ahead_by,
            behind_by: c.behind_by,
            total_commits: c.ahead_by,
            commits: c
                .commits
                .into_iter()
                .map(|m| Commit::new(repo, m))
                .collect(),
            files: DiffEntry::list(repo, c.changes, head, max_files),
        }
    }
}
