//! The use-case layer of Guts: what every front end (REST, git over HTTP and SSH, and
//! the web interface) needs between a request and storage, written once. SSH asks
//! [`Service::ssh_caller`] who a key offered on the wire is, and both git transports
//! ask [`Service::git_access`] what it may do.
//!
//! A front end extracts a [`Caller`] and its arguments, calls one use case on
//! [`Service`], and renders what comes back (a read model such as [`RepoAccess`], or a
//! [`ServiceError`], which each front end maps once to its own shape: GitHub's error
//! JSON, a git `ERR` line, a page).
//!
//! Invariants: no front end signs an operation itself (signing and appending for a
//! caller happens here, with the caller's custodial key or, for what an organization
//! decides, the organization's); this crate never knows HTTP, HTML, JSON shapes or
//! git's wire format; the fold, not this layer, decides whether a signed operation is
//! allowed, and this layer decides only what the fold cannot see (token scopes,
//! visibility of private repositories, organization membership records).

mod caller;
mod check_runs;
mod collaborators;
mod error;
mod git_access;
mod hook_policy;
mod hooks;
mod merge;
mod org_hooks;
mod orgs;
mod passwords;
mod protection;
mod pulls;
mod push;
mod reads;
mod repos;
mod sessions;
mod ssh_keys;
mod statuses;
mod thread_filter;
mod threads;
mod tokens;
mod write;

pub use caller::{Authed, Caller};
pub use check_runs::CheckRunInput;
pub use collaborators::role_for;
pub use error::{Denied, FieldCode, FieldProblem, ServiceError};
pub use git_access::{GitAccess, GitNeed};
pub use hook_policy::{HookPolicy, TargetRefused};
pub use hooks::{HookInput, MAX_DELIVERIES_PAGE, Requested, delivery_guid};
pub use merge::{
    MergeBlocker, MergeDone, MergeInput, MergeReadiness, parse_merge_method, rule_blockers,
};
pub use org_hooks::org_hook_number;
pub use passwords::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, SignedIn, check_password};
pub use protection::branch_ref;
pub use pulls::{
    InlineComment, NewPull, PullChange, ReviewInput, base_sha, find_pull, head_sha, pull_range,
};
pub use push::Pusher;
pub use reads::Texts;
pub use repos::{MAX_DESCRIPTION_CHARS, NewRepo, RepoAccess, RepoUpdate, resource_of};
pub use sessions::{SESSION_COOKIE, SESSION_DAYS};
pub use ssh_keys::{
    DeployLimit, KeyRefusal, MAX_SSH_KEY_INPUT_BYTES, MAX_SSH_KEY_TITLE_CHARS, MIN_RSA_BITS,
    ParsedKey, SshCaller, SshKey, parse_public_key, ssh_fingerprint_text,
};
pub use statuses::NewStatus;
pub use thread_filter::{
    AssigneeFilter, ThreadFilter, at_or_after, list_labels, since_ms, state_filter,
};
pub use threads::{
    IssueChange, MAX_BODY_CHARS, MAX_TITLE_CHARS, NewIssue, check_bytes, check_count, check_labels,
    check_text, find_thread, label_diff,
};
pub use tokens::MAX_TOKEN_NOTE_CHARS;
pub use write::{
    CommitRequest, CreatedTag, FileRequest, FileWritten, Person, TagRequest, TreeEntryRequest,
    noreply_email, ref_from_path,
};

use std::sync::Arc;

use guts_storage::{Accounts, Repositories};

/// The use cases, over the node's accounts and repositories. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    accounts: Accounts,
    repos: Arc<Repositories>,
    /// Where webhooks may send.
    hook_policy: Arc<HookPolicy>,
    /// Password verification slots and failed sign-in counts (node-local).
    passwords: Arc<passwords::Passwords>,
}

impl Service {
    /// The use cases, with the default webhook policy (public addresses only).
    pub fn new(accounts: Accounts, repos: Arc<Repositories>) -> Service {
        Service {
            accounts,
            repos,
            hook_policy: Arc::default(),
            passwords: Arc::default(),
        }
    }

    /// The same use cases with webhook policy `policy`.
    pub fn with_hook_policy(mut self, policy: HookPolicy) -> Service {
        self.hook_policy = Arc::new(policy);
        self
    }

    /// Where webhooks may send (the deliverer checks every connection against it).
    pub fn hook_policy(&self) -> &Arc<HookPolicy> {
        &self.hook_policy
    }

    /// The accounts, for the read models not yet behind a use case.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The repositories, for the read models not yet behind a use case.
    pub fn repositories(&self) -> &Arc<Repositories> {
        &self.repos
    }
}

#[cfg(test)]
mod tests;
