//! GitHub's shapes for webhooks: the hook (`hook`, with `webhook-config` and
//! `hook-response`), its deliveries (`hook-delivery-item`, `hook-delivery`), and the
//! envelopes of the events delivered to it (one struct per payload shape of
//! `@octokit/openapi-webhooks`, each embedding the REST views it names).

use serde::Serialize;

use super::{
    Issue, IssueComment, Label, PullRequest, Repository, Review, ReviewComment, Shared, SimpleUser,
};

/// GitHub's `webhook-config`; the secret is never shown, only that there is one.
#[derive(Debug, Serialize)]
pub(crate) struct HookConfigView {
    pub(crate) url: String,
    /// `json` or `form`.
    pub(crate) content_type: &'static str,
    /// `"0"` or `"1"`, as GitHub writes it.
    pub(crate) insecure_ssl: &'static str,
    /// `********` when the hook has a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<&'static str>,
}

/// GitHub's `hook-response`: the last delivery's outcome (all null before any).
#[derive(Debug, Default, Serialize)]
pub(crate) struct HookResponse {
    pub(crate) code: Option<u16>,
    pub(crate) status: Option<String>,
    pub(crate) message: Option<String>,
}

/// GitHub's `hook`.
#[derive(Debug, Serialize)]
pub(crate) struct HookView {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) id: u64,
    pub(crate) name: &'static str,
    pub(crate) active: bool,
    pub(crate) events: Vec<String>,
    pub(crate) config: HookConfigView,
    pub(crate) updated_at: String,
    pub(crate) created_at: String,
    pub(crate) url: String,
    /// Repository hooks only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) test_url: Option<String>,
    pub(crate) ping_url: String,
    pub(crate) deliveries_url: String,
    pub(crate) last_response: HookResponse,
}

/// GitHub's `hook-delivery-item`: one attempt.
#[derive(Debug, Serialize)]
pub(crate) struct DeliveryItem {
    pub(crate) id: u64,
    pub(crate) guid: String,
    pub(crate) delivered_at: String,
    pub(crate) redelivery: bool,
    /// Seconds.
    pub(crate) duration: f64,
    pub(crate) status: String,
    pub(crate) status_code: u16,
    pub(crate) event: String,
    pub(crate) action: Option<String>,
    pub(crate) installation_id: Option<u64>,
    pub(crate) repository_id: Option<u64>,
    pub(crate) throttled_at: Option<String>,
}

/// The request or the response of a [`DeliveryFull`].
#[derive(Debug, Serialize)]
pub(crate) struct DeliveryExchange {
    pub(crate) headers: serde_json::Map<String, serde_json::Value>,
    pub(crate) payload: Option<serde_json::Value>,
}

/// GitHub's `hook-delivery`: an attempt with what was sent and received.
#[derive(Debug, Serialize)]
pub(crate) struct DeliveryFull {
    #[serde(flatten)]
    pub(crate) item: DeliveryItem,
    pub(crate) url: String,
    pub(crate) request: DeliveryExchange,
    pub(crate) response: DeliveryExchange,
}

/// What every event payload carries besides its own fields.
#[derive(Debug, Serialize)]
pub(crate) struct Envelope<T> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) action: Option<&'static str>,
    #[serde(flatten)]
    pub(crate) body: T,
    pub(crate) repository: Shared<Repository>,
    pub(crate) sender: Shared<SimpleUser>,
}

/// `ping`.
#[derive(Debug, Serialize)]
pub(crate) struct PingBody {
    pub(crate) zen: &'static str,
    pub(crate) hook_id: u64,
    pub(crate) hook: HookView,
}

/// `ping` to an organization's hook (about no repository).
#[derive(Debug, Serialize)]
pub(crate) struct OrgPing {
    pub(crate) zen: &'static str,
    pub(crate) hook_id: u64,
    pub(crate) hook: HookView,
    pub(crate) organization: super::OrgSimple,
    pub(crate) sender: SimpleUser,
}

/// A commit as `push` lists it.
#[derive(Debug, Serialize)]
pub(crate) struct PushCommit {
    pub(crate) id: String,
    pub(crate) tree_id: String,
    pub(crate) distinct: bool,
    pub(crate) message: String,
    pub(crate) timestamp: String,
    pub(crate) url: String,
    pub(crate) author: GitPerson,
    pub(crate) committer: GitPerson,
    pub(crate) added: Vec<String>,
    pub(crate) removed: Vec<String>,
    pub(crate) modified: Vec<String>,
}

/// A git identity in a push (`name`, `email`, and the account's login when known).
#[derive(Debug, Serialize)]
pub(crate) struct GitPerson {
    pub(crate) name: String,
    pub(crate) email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) username: Option<String>,
}

/// `push`.
#[derive(Debug, Serialize)]
pub(crate) struct PushBody {
    #[serde(rename = "ref")]
    pub(crate) reference: String,
    pub(crate) before: String,
    pub(crate) after: String,
    pub(crate) created: bool,
    pub(crate) deleted: bool,
    pub(crate) forced: bool,
    pub(crate) base_ref: Option<String>,
    pub(crate) compare: String,
    pub(crate) commits: Vec<PushCommit>,
    pub(crate) head_commit: Option<PushCommit>,
    pub(crate) pusher: GitPerson,
}

/// `create` and `delete`.
#[derive(Debug, Serialize)]
pub(crate) struct RefBody {
    #[serde(rename = "ref")]
    pub(crate) reference: String,
    /// `branch` or `tag`.
    pub(crate) ref_type: &'static str,
    /// `create` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) master_branch: Option<String>,
    /// `create` only (null there when empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<Option<String>>,
    pub(crate) pusher_type: &'static str,
}

/// An `edited` event's `changes`. Empty: the fold keeps no previous values, and every
/// field of GitHub's `changes` is optional.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Changes {}

/// `issues`.
#[derive(Debug, Serialize)]
pub(crate) struct IssueBody<'a> {
    pub(crate) issue: Issue<'a>,
    /// `edited` only: what changed (empty: the previous values are not kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) changes: Option<Changes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) label: Option<Label<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) assignee: Option<Option<Shared<SimpleUser>>>,
}

/// `issue_comment`.
#[derive(Debug, Serialize)]
pub(crate) struct IssueCommentBody<'a> {
    pub(crate) issue: Issue<'a>,
    pub(crate) comment: IssueComment,
    /// `edited` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) changes: Option<Changes>,
}

/// `pull_request`.
#[derive(Debug, Serialize)]
pub(crate) struct PullBody<'a> {
    pub(crate) number: u64,
    pub(crate) pull_request: PullRequest<'a>,
    /// `edited` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) changes: Option<Changes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) label: Option<Label<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) assignee: Option<Option<Shared<SimpleUser>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) requested_reviewer: Option<Shared<SimpleUser>>,
}

/// `pull_request_review`.
#[derive(Debug, Serialize)]
pub(crate) struct ReviewBody<'a> {
    pub(crate) review: Review,
    pub(crate) pull_request: PullRequest<'a>,
}

/// `pull_request_review_comment`.
#[derive(Debug, Serialize)]
pub(crate) struct ReviewCommentBody<'a> {
    pub(crate) comment: ReviewComment<'a>,
    pub(crate) pull_request: PullRequest<'a>,
}

/// The commit a `status` event names.
#[derive(Debug, Serialize)]
pub(crate) struct StatusCommit {
    pub(crate) sha: String,
    pub(crate) node_id: String,
    pub(crate) url: String,
    pub(crate) html_url: String,
    pub(crate) comments_url: String,
    pub(crate) commit: serde_json::Value,
    pub(crate) author: Option<Shared<SimpleUser>>,
    pub(crate) committer: Option<Shared<SimpleUser>>,
    pub(crate) parents: Vec<serde_json::Value>,
}

/// `status`.
#[derive(Debug, Serialize)]
pub(crate) struct StatusBody<'a> {
    pub(crate) id: u64,
    pub(crate) sha: String,
    pub(crate) name: String,
    pub(crate) target_url: Option<&'a str>,
    pub(crate) context: &'a str,
    pub(crate) description: Option<&'a str>,
    pub(crate) state: &'static str,
    pub(crate) commit: StatusCommit,
    pub(crate) branches: Vec<serde_json::Value>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// `check_run`.
#[derive(Debug, Serialize)]
pub(crate) struct CheckRunBody<'a> {
    pub(crate) check_run: super::CheckRun<'a>,
}

/// `repository` (its `changes` only for `edited` and `renamed`).
#[derive(Debug, Serialize)]
pub(crate) struct RepositoryBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) changes: Option<serde_json::Value>,
}

/// `member`.
#[derive(Debug, Serialize)]
pub(crate) struct MemberBody {
    pub(crate) member: Shared<SimpleUser>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) changes: Option<serde_json::Value>,
}
