//! Schemas of the typed views the handlers render (`views`, `git_views`), described
//! here by hand: only the fields a client relies on are listed; the objects carry more.
//! Deriving the schemas from the views themselves belongs with the conformance work
//! against GitHub's own description.

use serde::Serialize;
use utoipa::ToSchema;

/// GitHub's error body: every 4xx and 5xx of the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct GithubError {
    pub message: String,
    pub documentation_url: String,
    /// The status code as a string, as GitHub sends it.
    pub status: String,
    /// Validation failures (422).
    #[schema(nullable = false)]
    pub errors: Option<Vec<crate::error::FieldError>>,
}

/// The short user object GitHub embeds (`owner`, `user`, …).
#[derive(Debug, Serialize, ToSchema)]
pub struct SimpleUser {
    pub login: String,
    pub id: u64,
    pub node_id: String,
    pub url: String,
    pub html_url: String,
    pub repos_url: String,
    /// `User` or `Organization`.
    #[serde(rename = "type")]
    pub kind: String,
    pub site_admin: bool,
}

/// The full user object (`GET /user`, `GET /users/{username}`). Creation answers
/// also carry `token`, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub login: String,
    pub id: u64,
    pub node_id: String,
    pub url: String,
    pub html_url: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub site_admin: bool,
    pub created_at: String,
    pub updated_at: String,
    /// The first token of a new account (creation answers only).
    #[schema(nullable = false)]
    pub token: Option<String>,
    /// Whether the account is suspended (admin API answers only).
    #[schema(nullable = false)]
    pub suspended: Option<bool>,
}

/// What the caller may do in a repository (present when the caller is known).
#[derive(Debug, Serialize, ToSchema)]
pub struct RepoPermissions {
    pub admin: bool,
    pub maintain: bool,
    pub push: bool,
    pub triage: bool,
    pub pull: bool,
}

/// GitHub's repository object.
#[derive(Debug, Serialize, ToSchema)]
pub struct Repository {
    pub id: u64,
    pub node_id: String,
    pub name: String,
    pub full_name: String,
    pub owner: SimpleUser,
    pub private: bool,
    pub html_url: String,
    pub description: Option<String>,
    pub url: String,
    pub clone_url: String,
    pub created_at: String,
    pub updated_at: String,
    pub pushed_at: String,
    pub visibility: String,
    pub default_branch: String,
    #[schema(nullable = false)]
    pub permissions: Option<RepoPermissions>,
}

/// `{"enabled": bool}`, GitHub's shape for a protection switch.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enabled {
    pub enabled: bool,
}

/// A branch's protection as GitHub reports it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BranchProtection {
    pub url: String,
    pub required_pull_request_reviews: Option<serde_json::Value>,
    /// `{url, strict, contexts, checks, contexts_url}` when status checks are
    /// required.
    pub required_status_checks: Option<serde_json::Value>,
    pub allow_force_pushes: Enabled,
    pub allow_deletions: Enabled,
}

/// `GET …/protection/enforce_admins`: always enabled (the fold holds admins to
/// the rules).
#[derive(Debug, Serialize, ToSchema)]
pub struct EnforceAdmins {
    pub url: String,
    pub enabled: bool,
}

/// `GET …/protection/required_pull_request_reviews`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequiredReviews {
    pub url: String,
    pub required_approving_review_count: u8,
    pub dismiss_stale_reviews: bool,
    pub require_code_owner_reviews: bool,
}

/// A user with a role in a repository (`GET …/collaborators`): the short user
/// object with their permissions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Collaborator {
    pub login: String,
    pub id: u64,
    pub url: String,
    pub permissions: RepoPermissions,
    /// `admin`, `write` or `read`.
    pub role_name: String,
}

/// `GET …/collaborators/{username}/permission`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollaboratorPermission {
    /// `admin`, `write`, `read` or `none`.
    pub permission: String,
    pub role_name: String,
    pub user: Login,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Login {
    pub login: String,
}

/// A personal access token as the admin API lists it; `token` only on creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    pub id: u64,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub revoked: bool,
    #[schema(nullable = false)]
    pub token: Option<String>,
}

/// GitHub's organization object.
#[derive(Debug, Serialize, ToSchema)]
pub struct Organization {
    pub login: String,
    pub id: u64,
    pub node_id: String,
    pub url: String,
    pub repos_url: String,
    pub members_url: String,
    pub html_url: String,
    pub public_repos: u64,
    pub created_at: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// GitHub's organization membership object.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgMembership {
    pub url: String,
    /// Always `active`: Guts adds members at once.
    pub state: String,
    /// `admin` or `member`.
    pub role: String,
    pub organization_url: String,
    pub organization: SimpleUser,
    pub user: SimpleUser,
}

/// GitHub's label object.
#[derive(Debug, Serialize, ToSchema)]
pub struct Label {
    pub id: u64,
    pub node_id: String,
    pub url: String,
    pub name: String,
    /// Six hex digits, without `#`.
    pub color: String,
    pub default: bool,
    pub description: Option<String>,
}

/// The links of an issue that is a pull request.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuePullRequest {
    pub url: String,
    pub html_url: String,
    pub diff_url: String,
    pub patch_url: String,
    pub merged_at: Option<String>,
}

/// GitHub's issue object; pull requests are issues too, with `pull_request`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Issue {
    pub id: u64,
    pub node_id: String,
    pub url: String,
    pub repository_url: String,
    pub comments_url: String,
    pub html_url: String,
    pub number: u64,
    /// `open` or `closed`.
    pub state: String,
    pub state_reason: Option<String>,
    pub title: String,
    pub body: Option<String>,
    pub user: SimpleUser,
    pub labels: Vec<Label>,
    pub assignee: Option<SimpleUser>,
    pub assignees: Vec<SimpleUser>,
    pub locked: bool,
    /// The number of comments.
    pub comments: u64,
    pub closed_at: Option<String>,
    pub closed_by: Option<SimpleUser>,
    pub created_at: String,
    pub updated_at: String,
    pub author_association: String,
    /// Whether the pull request is a draft; `null` for an issue.
    pub draft: Option<bool>,
    /// Present when the issue is a pull request.
    #[schema(nullable = false)]
    pub pull_request: Option<IssuePullRequest>,
}

/// GitHub's issue comment object.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssueComment {
    pub id: u64,
    pub node_id: String,
    pub url: String,
    pub html_url: String,
    pub issue_url: String,
    pub body: String,
    pub user: SimpleUser,
    pub created_at: String,
    pub updated_at: String,
    pub author_association: String,
}

/// One end (`head` or `base`) of a pull request.
#[derive(Debug, Serialize, ToSchema)]
pub struct PullRequestBranch {
    /// `owner:branch`.
    pub label: String,
    /// The short branch name.
    #[serde(rename = "ref")]
    pub branch: String,
    pub sha: String,
    pub user: Option<SimpleUser>,
    pub repo: Option<Repository>,
}

/// An item of a list that is always empty because Guts does not model what it
/// lists (teams, deployments, gists, email addresses): see `routes::unmodeled`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unmodeled {}

/// Who is asked to review a pull request (`pull-request-review-request`): users;
/// Guts has no teams.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewRequest {
    pub users: Vec<SimpleUser>,
    pub teams: Vec<String>,
}

/// GitHub's pull request object. `mergeable` is computed for a single pull
/// request and `null` in lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct PullRequest {
    pub url: String,
    pub id: u64,
    pub node_id: String,
    pub html_url: String,
    pub diff_url: String,
    pub patch_url: String,
    pub issue_url: String,
    pub commits_url: String,
    pub comments_url: String,
    pub number: u64,
    /// `open` or `closed`.
    pub state: String,
    pub locked: bool,
    pub title: String,
    pub user: SimpleUser,
    pub body: Option<String>,
    pub labels: Vec<Label>,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
    pub merged_at: Option<String>,
    pub merge_commit_sha: Option<String>,
    pub assignee: Option<SimpleUser>,
    pub assignees: Vec<SimpleUser>,
    pub head: PullRequestBranch,
    pub base: PullRequestBranch,
    pub author_association: String,
    pub draft: bool,
    pub merged: bool,
    pub mergeable: Option<bool>,
    pub rebaseable: Option<bool>,
    /// `clean`, `dirty`, `draft` or `unknown`.
    pub mergeable_state: String,
    pub merged_by: Option<SimpleUser>,
    pub comments: u64,
    pub review_comments: u64,
    pub maintainer_can_modify: bool,
}

/// The answer of a successful merge.
#[derive(Debug, Serialize, ToSchema)]
pub struct PullRequestMergeResult {
    /// The new tip of the base branch.
    pub sha: String,
    pub merged: bool,
    pub message: String,
}

/// GitHub's pull request review object.
#[derive(Debug, Serialize, ToSchema)]
pub struct PullRequestReview {
    pub id: u64,
    pub node_id: String,
    pub user: SimpleUser,
    pub body: String,
    /// `APPROVED`, `CHANGES_REQUESTED` or `COMMENTED`.
    pub state: String,
    pub html_url: String,
    pub pull_request_url: String,
    pub commit_id: String,
    pub submitted_at: String,
    pub author_association: String,
}

/// GitHub's review comment object (an inline comment of a review).
#[derive(Debug, Serialize, ToSchema)]
pub struct PullRequestReviewComment {
    pub id: u64,
    pub node_id: String,
    pub url: String,
    pub pull_request_review_id: u64,
    pub path: String,
    pub line: u32,
    pub position: u32,
    /// Always `RIGHT`.
    pub side: String,
    pub commit_id: String,
    pub original_commit_id: String,
    pub diff_hunk: String,
    pub body: String,
    pub user: SimpleUser,
    pub created_at: String,
    pub updated_at: String,
    pub html_url: String,
    pub pull_request_url: String,
    pub author_association: String,
}

/// A git signature: `{name, email, date}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct GitActor {
    pub name: String,
    pub email: String,
    pub date: String,
}

/// `{sha, url}` of a commit's tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShaUrl {
    pub sha: String,
    pub url: String,
}

/// A parent of a commit.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommitParent {
    pub sha: String,
    pub url: String,
    pub html_url: String,
}

/// Signature verification; Guts does not verify, so `verified` is `false`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    pub verified: bool,
    pub reason: String,
    pub signature: Option<String>,
    pub payload: Option<String>,
    pub verified_at: Option<String>,
}

/// The git part of a REST commit.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommitDetail {
    pub author: GitActor,
    pub committer: GitActor,
    pub message: String,
    pub tree: ShaUrl,
    pub url: String,
    pub comment_count: u64,
    pub verification: Verification,
}

/// `stats` of one commit.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommitStats {
    pub total: u64,
    pub additions: u64,
    pub deletions: u64,
}

/// One changed file of a commit, comparison or pull request.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiffEntry {
    /// The blob after the change (before it, for a removal).
    pub sha: Option<String>,
    pub filename: String,
    /// `added`, `modified`, `removed` or `renamed`.
    pub status: String,
    pub additions: u64,
    pub deletions: u64,
    pub changes: u64,
    pub blob_url: String,
    pub raw_url: String,
    pub contents_url: String,
    /// The path before a rename (renames only).
    #[schema(nullable = false)]
    pub previous_filename: Option<String>,
    /// The changed lines with three lines of context (git's hunks); absent for
    /// binary files and for files or responses over the diff limits.
    #[schema(nullable = false)]
    pub patch: Option<String>,
}

/// GitHub's REST commit. `author` and `committer` are GitHub accounts matched by
/// email, which Guts accounts lack: `null`. One commit (`GET …/commits/{ref}`)
/// also carries `stats` and `files`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Commit {
    pub sha: String,
    pub node_id: String,
    pub commit: CommitDetail,
    pub url: String,
    pub html_url: String,
    pub comments_url: String,
    pub author: Option<SimpleUser>,
    pub committer: Option<SimpleUser>,
    pub parents: Vec<CommitParent>,
    #[schema(nullable = false)]
    pub stats: Option<CommitStats>,
    #[schema(nullable = false)]
    pub files: Option<Vec<DiffEntry>>,
}

/// `GET …/compare/{basehead}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Comparison {
    pub url: String,
    pub html_url: String,
    pub permalink_url: String,
    pub diff_url: String,
    pub patch_url: String,
    pub base_commit: Commit,
    pub merge_base_commit: Option<Commit>,
    /// `ahead`, `behind`, `diverged` or `identical`.
    pub status: String,
    pub ahead_by: u64,
    pub behind_by: u64,
    pub total_commits: u64,
    pub commits: Vec<Commit>,
    pub files: Vec<DiffEntry>,
}

/// The git commit object (`GET …/git/commits/{sha}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct GitCommit {
    pub sha: String,
    pub node_id: String,
    pub url: String,
    pub html_url: String,
    pub author: GitActor,
    pub committer: GitActor,
    pub tree: ShaUrl,
    pub message: String,
    pub parents: Vec<CommitParent>,
    pub verification: Verification,
}

/// One entry of a git tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct GitTreeEntry {
    pub path: String,
    /// Octal, six digits (`100644`).
    pub mode: String,
    /// `blob`, `tree` or `commit` (a submodule).
    #[serde(rename = "type")]
    pub kind: String,
    pub sha: String,
    /// Blobs only.
    #[schema(nullable = false)]
    pub size: Option<u64>,
    /// Absent for submodules.
    #[schema(nullable = false)]
    pub url: Option<String>,
}

/// `GET …/git/trees/{sha}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct GitTree {
    pub sha: String,
    pub url: String,
    pub tree: Vec<GitTreeEntry>,
    pub truncated: bool,
}

/// `GET …/git/blobs/{sha}`: the bytes in base64.
#[derive(Debug, Serialize, ToSchema)]
pub struct Blob {
    pub sha: String,
    pub node_id: String,
    pub size: u64,
    pub url: String,
    pub content: String,
    /// Always `base64`.
    pub encoding: String,
}

/// The object a git ref names.
#[derive(Debug, Serialize, ToSchema)]
pub struct GitRefObject {
    /// `commit`, `tag`, `tree` or `blob`.
    #[serde(rename = "type")]
    pub kind: String,
    pub sha: String,
    pub url: String,
}

/// GitHub's git reference object.
#[derive(Debug, Serialize, ToSchema)]
pub struct GitRef {
    /// The full name (`refs/heads/main`).
    #[serde(rename = "ref")]
    pub name: String,
    pub node_id: String,
    pub url: String,
    pub object: GitRefObject,
}

/// `GET …/git/refs/{ref}`: the ref when the name is exact, else the refs under it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum GitRefOrRefs {
    One(GitRef),
    Many(Vec<GitRef>),
}

/// `_links` of a contents object.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContentLinks {
    #[serde(rename = "self")]
    pub this: String,
    pub git: Option<String>,
    pub html: Option<String>,
}

/// GitHub's contents object: a directory entry, or a file with its bytes in
/// base64 (`content`, `encoding`), a symlink with its `target`, a submodule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContentEntry {
    /// `file`, `dir`, `symlink` or `submodule`.
    #[serde(rename = "type")]
    pub kind: String,
    pub size: u64,
    pub name: String,
    pub path: String,
    pub sha: String,
    pub url: String,
    pub git_url: Option<String>,
    pub html_url: Option<String>,
    pub download_url: Option<String>,
    #[serde(rename = "_links")]
    pub links: ContentLinks,
    /// A file's bytes in base64 (empty above 1 MiB, with encoding `none`).
    #[schema(nullable = false)]
    pub content: Option<String>,
    /// `base64` or `none`.
    #[schema(nullable = false)]
    pub encoding: Option<String>,
    /// A symlink's target.
    #[schema(nullable = false)]
    pub target: Option<String>,
    /// A submodule's URL: Guts does not read `.gitmodules`, so `null`.
    pub submodule_git_url: Option<String>,
}

/// `GET …/contents/{path}`: a directory is the array of its entries.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Contents {
    Entry(Box<ContentEntry>),
    Dir(Vec<ContentEntry>),
}

/// `PUT`/`DELETE …/contents/{path}`: the file as it now is (`null` once deleted)
/// and the commit that changed it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileCommit {
    pub content: Option<ContentEntry>,
    pub commit: GitCommit,
}

/// `POST …/git/blobs`: where the new blob is.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShortBlob {
    pub url: String,
    pub sha: String,
}

/// `POST …/git/tags`: an annotated tag object.
#[derive(Debug, Serialize, ToSchema)]
pub struct GitTag {
    pub node_id: String,
    pub tag: String,
    pub sha: String,
    pub url: String,
    pub message: String,
    pub tagger: GitActor,
    pub object: GitRefObject,
    pub verification: Verification,
}
/// GitHub's commit status (`status`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub url: String,
    pub avatar_url: Option<String>,
    pub id: u64,
    pub node_id: String,
    /// `error`, `failure`, `pending` or `success`.
    pub state: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
    pub context: String,
    pub created_at: String,
    pub updated_at: String,
    pub creator: SimpleUser,
}

/// A status as the combined status lists it (`simple-commit-status`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SimpleStatus {
    pub url: String,
    pub avatar_url: Option<String>,
    pub id: u64,
    pub node_id: String,
    pub state: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
    pub context: String,
    pub created_at: String,
    pub updated_at: String,
}

/// GitHub's `combined-commit-status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CombinedStatus {
    /// `failure`, `pending` or `success`.
    pub state: String,
    pub statuses: Vec<SimpleStatus>,
    pub sha: String,
    pub total_count: u64,
    pub repository: Repository,
    pub commit_url: String,
    pub url: String,
}

/// GitHub's `webhook-config` (the secret shows as `********`).
#[derive(Debug, Serialize, ToSchema)]
pub struct HookConfig {
    pub url: String,
    /// `json` or `form`.
    pub content_type: String,
    /// `"0"` or `"1"`.
    pub insecure_ssl: String,
    pub secret: Option<String>,
}

/// GitHub's `hook-response`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HookResponse {
    pub code: Option<u64>,
    pub status: Option<String>,
    pub message: Option<String>,
}

/// GitHub's `hook`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Hook {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: u64,
    pub name: String,
    pub active: bool,
    pub events: Vec<String>,
    pub config: HookConfig,
    pub updated_at: String,
    pub created_at: String,
    pub url: String,
    pub test_url: String,
    pub ping_url: String,
    pub deliveries_url: String,
    pub last_response: HookResponse,
}

/// GitHub's `hook-delivery-item`: one delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct HookDeliveryItem {
    pub id: u64,
    pub guid: String,
    pub delivered_at: String,
    pub redelivery: bool,
    /// Seconds.
    pub duration: f64,
    pub status: String,
    pub status_code: u64,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<u64>,
    pub repository_id: Option<u64>,
    pub throttled_at: Option<String>,
}

/// The request or response of a [`HookDelivery`].
#[derive(Debug, Serialize, ToSchema)]
pub struct HookExchange {
    #[schema(value_type = Object)]
    pub headers: serde_json::Value,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// GitHub's `hook-delivery`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HookDelivery {
    #[serde(flatten)]
    pub item: HookDeliveryItem,
    pub url: String,
    pub request: HookExchange,
    pub response: HookExchange,
}

/// An empty object (GitHub's 202 answers).
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {}
/// GitHub's `check-run` output.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckRunOutput {
    pub title: Option<String>,
    pub summary: Option<String>,
    pub text: Option<String>,
    pub annotations_count: u64,
    pub annotations_url: String,
}

/// The suite of a check run.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckSuiteId {
    pub id: u64,
}

/// GitHub's `check-run` (`app` is always null: Guts has no GitHub Apps).
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckRun {
    pub id: u64,
    pub node_id: String,
    pub head_sha: String,
    pub external_id: Option<String>,
    pub url: String,
    pub html_url: Option<String>,
    pub details_url: Option<String>,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    pub conclusion: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub output: CheckRunOutput,
    pub name: String,
    pub check_suite: CheckSuiteId,
    pub app: Option<serde_json::Value>,
    pub pull_requests: Vec<serde_json::Value>,
}

/// `GET commits/{ref}/check-runs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckRunList {
    pub total_count: u64,
    pub check_runs: Vec<CheckRun>,
}

/// A check suite's head commit (`simple-commit`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SimpleCommit {
    pub id: String,
    pub tree_id: String,
    pub message: String,
    pub timestamp: String,
    pub author: NameEmail,
    pub committer: NameEmail,
}

/// `{name, email}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct NameEmail {
    pub name: String,
    pub email: String,
}

/// GitHub's `check-suite`, one per head commit synthesised from its runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckSuite {
    pub id: u64,
    pub node_id: String,
    pub head_branch: Option<String>,
    pub head_sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub url: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub pull_requests: Vec<serde_json::Value>,
    pub app: Option<serde_json::Value>,
    pub repository: Repository,
    pub created_at: String,
    pub updated_at: String,
    pub head_commit: SimpleCommit,
    pub latest_check_runs_count: u64,
    pub check_runs_url: String,
    pub rerequestable: bool,
    pub runs_rerequestable: bool,
}

/// `GET commits/{ref}/check-suites`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckSuiteList {
    pub total_count: u64,
    pub check_suites: Vec<CheckSuite>,
}

/// GitHub's `key`: one of the caller's SSH keys. `verified` is false for a key another
/// claim accepted concurrently elsewhere shadows (it never authenticates).
#[derive(Debug, Serialize, ToSchema)]
pub struct Key {
    pub key: String,
    pub id: u64,
    pub url: String,
    pub title: String,
    pub created_at: String,
    pub verified: bool,
    pub read_only: bool,
    /// Always null: key use is not recorded.
    pub last_used: Option<String>,
}

/// GitHub's `key-simple`: a user's key as anyone sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeySimple {
    pub id: u64,
    pub key: String,
    pub created_at: String,
    pub last_used: Option<String>,
}

/// GitHub's `deploy-key`: an SSH key opening one repository.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeployKey {
    pub id: u64,
    pub key: String,
    pub url: String,
    pub title: String,
    pub verified: bool,
    pub created_at: String,
    pub read_only: bool,
    pub added_by: Option<String>,
    pub last_used: Option<String>,
    pub enabled: bool,
}
