//! Commit statuses: what CI reports about a commit (`Payload::SetStatus`), kept per
//! commit and per context, and the rules the fold applies to them.
//!
//! A status is an operation like any other, signed by whoever posted it, so a status
//! posted on one node is folded identically on every node, and a peer without write
//! access cannot forge one (GitHub requires push access to post a status). Everything
//! one operation can make the fold hold is bounded: its strings by the caps below, and
//! the statuses of one commit by [`MAX_STATUSES_PER_CONTEXT`] per context and
//! [`MAX_CONTEXTS_PER_COMMIT`] contexts, [`MAX_STATUSES_PER_COMMIT`] in all.
//!
//! Check runs ([`crate::check_runs`]) live beside the statuses, because a required
//! check is satisfied by either.

use std::collections::BTreeMap;

use crate::check_runs::{CheckRuns, Conclusion};
use crate::codec::Writer;
use crate::fold::Rejection;
use crate::hlc::Hlc;
use crate::identity::PublicKey;
use crate::ids::{ObjectId, OpId};
use crate::op::RequiredChecks;

/// Longest context, in bytes.
pub const MAX_CONTEXT_BYTES: usize = 255;
/// Longest description, in characters (GitHub's limit).
pub const MAX_DESCRIPTION_CHARS: usize = 140;
/// Longest description in bytes: what the codec bounds (140 characters of four bytes).
pub const MAX_DESCRIPTION_BYTES: usize = MAX_DESCRIPTION_CHARS * 4;
/// Longest target URL, in bytes.
pub const MAX_TARGET_URL_BYTES: usize = 2048;
/// Statuses kept for one commit and one context: GitHub's limit, after which it
/// refuses more.
pub const MAX_STATUSES_PER_CONTEXT: usize = 1000;
/// Contexts a branch protection may require.
pub const MAX_REQUIRED_CONTEXTS: usize = 100;
/// Distinct contexts one commit may carry.
pub const MAX_CONTEXTS_PER_COMMIT: usize = 1000;
/// Statuses on one commit, all contexts together: what one commit's state may hold,
/// whatever mix of contexts a writer posts (without it, 1000 × 1000).
pub const MAX_STATUSES_PER_COMMIT: usize = 5000;

/// The state of a status, as GitHub spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusState {
    Error,
    Failure,
    Pending,
    Success,
}

impl StatusState {
    /// GitHub's spelling (`error`, `failure`, `pending`, `success`).
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Error => "error",
            StatusState::Failure => "failure",
            StatusState::Pending => "pending",
            StatusState::Success => "success",
        }
    }

    /// The state GitHub spells `text`.
    pub fn parse(text: &str) -> Option<StatusState> {
        match text {
            "error" => Some(StatusState::Error),
            "failure" => Some(StatusState::Failure),
            "pending" => Some(StatusState::Pending),
            "success" => Some(StatusState::Success),
            _ => None,
        }
    }

    /// Its tag in the codec and the state encoding.
    pub(crate) fn tag(self) -> u8 {
        match self {
            StatusState::Error => 1,
            StatusState::Failure => 2,
            StatusState::Pending => 3,
            StatusState::Success => 4,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<StatusState> {
        match tag {
            1 => Some(StatusState::Error),
            2 => Some(StatusState::Failure),
            3 => Some(StatusState::Pending),
            4 => Some(StatusState::Success),
            _ => None,
        }
    }
}

/// One status posted on a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    pub state: StatusState,
    /// As posted (contexts compare case-insensitively, as on GitHub).
    pub context: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
    pub creator: PublicKey,
    pub at: Hlc,
    /// The operation that posted it: its id names the status.
    pub op: OpId,
}

/// Every status of a repository: by commit, then by lowercase context, each context's
/// statuses oldest first by `(at, op)`, so the order is the same whatever order the
/// operations were folded in; and every check run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checks {
    pub statuses: BTreeMap<ObjectId, BTreeMap<String, Vec<CommitStatus>>>,
    pub runs: CheckRuns,
}

/// GitHub's combined state of the latest status of each context: `failure` if any is
/// an error or a failure, `pending` if any is pending or there is none, else `success`.
pub fn combined_state<'a>(latest: impl IntoIterator<Item = &'a CommitStatus>) -> StatusState {
    let mut any = false;
    let mut pending = false;
    for status in latest {
        any = true;
        match status.state {
            StatusState::Error | StatusState::Failure => return StatusState::Failure,
            StatusState::Pending => pending = true,
            StatusState::Success => {}
        }
    }
    if pending || !any {
        StatusState::Pending
    } else {
        StatusState::Success
    }
}

impl Checks {
    /// The latest status of each context of `commit`, in context order.
    pub fn latest(&self, commit: &ObjectId) -> Vec<&CommitStatus> {
        self.statuses
            .get(commit)
            .map(|contexts| contexts.values().filter_map(|s| s.last()).collect())
            .unwrap_or_default()
    }

    /// Whether `commit` satisfies `required`: for every required context, its latest
    /// status is `success` or the latest check run of that name is completed with a
    /// passing conclusion (GitHub's rule: success, neutral or skipped). The first that
    /// is neither names the refusal: failing when either says so, else expected.
    pub fn require(&self, required: &RequiredChecks, commit: &ObjectId) -> Result<(), Rejection> {
        let contexts = self.statuses.get(commit);
        for context in &required.contexts {
            let status = contexts
                .and_then(|c| c.get(&context.to_lowercase()))
                .and_then(|list| list.last())
                .map(|s| s.state);
            let run = self.runs.latest_named(commit, context);
            let conclusion = run.and_then(|r| r.conclusion);
            if status == Some(StatusState::Success) || conclusion.is_some_and(Conclusion::passes) {
                continue;
            }
            return Err(Rejection::StatusCheck {
                context: context.clone(),
                failing: status.is_some_and(|s| s != StatusState::Pending) || conclusion.is_some(),
            });
        }
        Ok(())
    }

    /// Every status of `commit`, newest first.
    pub fn all(&self, commit: &ObjectId) -> Vec<&CommitStatus> {
        let mut all: Vec<&CommitStatus> = self
            .statuses
            .get(commit)
            .map(|contexts| contexts.values().flatten().collect())
            .unwrap_or_default();
        all.sort_by_key(|s| std::cmp::Reverse((s.at, s.op)));
        all
    }

    /// The fold's rule for `SetStatus` (the caller checked the write role): bounded
    /// fields, bounded statuses per commit and context.
    pub(crate) fn set_status(
        &mut self,
        commit: ObjectId,
        status: CommitStatus,
    ) -> Result<(), Rejection> {
        validate(&status)?;
        let contexts = self.statuses.entry(commit).or_default();
        let key = status.context.to_lowercase();
        if !contexts.contains_key(&key) && contexts.len() >= MAX_CONTEXTS_PER_COMMIT {
            return Err(Rejection::TooMany { field: "contexts" });
        }
        if contexts.values().map(Vec::len).sum::<usize>() >= MAX_STATUSES_PER_COMMIT {
            return Err(Rejection::TooMany { field: "statuses" });
        }
        let list = contexts.entry(key).or_default();
        if list.len() >= MAX_STATUSES_PER_CONTEXT {
            return Err(Rejection::TooMany { field: "statuses" });
        }
        let at = list.partition_point(|s| (s.at, s.op) < (status.at, status.op));
        list.insert(at, status);
        Ok(())
    }

    /// Appends the canonical encoding of every status (the state's own section).
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.long_count(self.statuses.len());
        for (commit, contexts) in &self.statuses {
            w.fixed(commit.as_bytes());
            w.long_count(contexts.len());
            for (key, list) in contexts {
                w.long_bytes(key.as_bytes());
                w.long_count(list.len());
                for s in list {
                    w.u8(s.state.tag());
                    w.long_bytes(s.context.as_bytes());
                    encode_opt(w, s.description.as_deref());
                    encode_opt(w, s.target_url.as_deref());
                    w.fixed(s.creator.as_bytes());
                    w.hlc(s.at);
                    w.fixed(s.op.as_bytes());
                }
            }
        }
    }
}

/// An optional text in the state encoding (statuses' and check runs').
pub(crate) fn encode_opt(w: &mut Writer, text: Option<&str>) {
    w.option_tag(text.is_some());
    if let Some(text) = text {
        w.long_bytes(text.as_bytes());
    }
}

/// The field rules: a context of 1 to [`MAX_CONTEXT_BYTES`] bytes, a description of at
/// most [`MAX_DESCRIPTION_CHARS`] characters, a target URL of at most
/// [`MAX_TARGET_URL_BYTES`]; no control characters in any (they would reach logs and
/// terminals of CI tools).
pub fn validate_fields(
    context: &str,
    description: Option<&str>,
    target_url: Option<&str>,
) -> Result<(), Rejection> {
    let controls = |text: &str| text.chars().any(char::is_control);
    if context.trim().is_empty() || context.len() > MAX_CONTEXT_BYTES || controls(context) {
        return Err(Rejection::InvalidText { field: "context" });
    }
    if description.is_some_and(|d| {
        d.len() > MAX_DESCRIPTION_BYTES || d.chars().count() > MAX_DESCRIPTION_CHARS
    }) {
        return Err(Rejection::InvalidText {
            field: "description",
        });
    }
    if target_url.is_some_and(|u| u.len() > MAX_TARGET_URL_BYTES || controls(u)) {
        return Err(Rejection::InvalidText {
            field: "target_url",
        });
    }
    Ok(())
}

/// Required contexts follow the rule of a status's context; at most
/// [`MAX_REQUIRED_CONTEXTS`] of them.
pub fn validate_required(required: &RequiredChecks) -> Result<(), Rejection> {
    if required.contexts.len() > MAX_REQUIRED_CONTEXTS {
        return Err(Rejection::TooMany { field: "contexts" });
    }
    required
        .contexts
        .iter()
        .try_for_each(|context| validate_fields(context, None, None))
}

fn validate(status: &CommitStatus) -> Result<(), Rejection> {
    validate_fields(
        &status.context,
        status.description.as_deref(),
        status.target_url.as_deref(),
    )
}
