//! Merging a pull request: why it cannot merge now ([`Service::merge_readiness`], the
//! read model a front end shows beside its merge button), and the merge itself
//! ([`Service::merge_pull`]): real git commits (merge, squash or rebase) written on the
//! blocking pool, then one signed `MergePull` that moves the base branch, refused if
//! the base or head moved after the commits were written.
//!
//! The blockers are checked here in the order a merge meets them, so the first one is
//! the answer to a merge attempted now; the fold checks the merge operation again (a
//! peer's forged merge is refused there too).

use std::borrow::Cow;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use guts_core::{MergeMethod, ObjectId, Payload, Pull, Rejection, RepoState, Role};
use guts_storage::{MergeError, MergeRequest, RepoError, RepoView};

use crate::Service;
use crate::caller::Authed;
use crate::error::{FieldCode, ServiceError};
use crate::pulls::{find_pull, head_sha};

/// One reason a pull request cannot merge now.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeBlocker {
    /// It is merged already.
    Merged,
    /// It is closed.
    Closed,
    /// It is a draft.
    Draft,
    /// Its base branch no longer exists.
    BaseDeleted,
    /// Its head branch no longer exists.
    HeadDeleted,
    /// The base branch's protection requires more approvals than count for the head
    /// (counted as the fold counts them for its merge).
    Approvals { required: usize, given: usize },
    /// The base branch's required status checks are not all green on the head; the
    /// fold's refusal, which names the check.
    Checks(Rejection),
}

impl fmt::Display for MergeBlocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeBlocker::Merged | MergeBlocker::Closed => {
                f.write_str("Pull Request is not mergeable")
            }
            MergeBlocker::Draft => f.write_str("Pull Request is still a draft"),
            MergeBlocker::BaseDeleted => f.write_str("Base branch was deleted"),
            MergeBlocker::HeadDeleted => f.write_str("Head branch was deleted"),
            MergeBlocker::Approvals { required, .. } => write!(
                f,
                "At least {required} approving review is required by reviewers with write access."
            ),
            MergeBlocker::Checks(rejection) => fmt::Display::fmt(rejection, f),
        }
    }
}

/// Every reason a pull request cannot merge now, in the order a merge checks them;
/// empty when it can (conflicts aside: they need its objects, which a merge reads).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeReadiness {
    pub blockers: Vec<MergeBlocker>,
}

impl MergeReadiness {
    /// Whether nothing but a conflict could stop a merge now.
    pub fn is_ready(&self) -> bool {
        self.blockers.is_empty()
    }
}

/// How to merge, and what the caller saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeInput {
    pub method: MergeMethod,
    /// The head the caller saw: the merge is refused as moved when the head is
    /// elsewhere now.
    pub sha: Option<String>,
    /// The commit's title; GitHub's default for the method when `None`.
    pub commit_title: Option<String>,
    /// The commit's message; the pull request's title when `None`.
    pub commit_message: Option<String>,
}

/// A merge done: the commit the base branch now points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeDone {
    pub sha: ObjectId,
}

/// A merge method by name (`merge` when `None`), as forms and requests spell it.
pub fn parse_merge_method(name: Option<&str>) -> Result<MergeMethod, ServiceError> {
    match name.unwrap_or("merge") {
        "merge" => Ok(MergeMethod::Merge),
        "squash" => Ok(MergeMethod::Squash),
        "rebase" => Ok(MergeMethod::Rebase),
        _ => Err(ServiceError::invalid(
            "PullRequest",
            "merge_method",
            FieldCode::Invalid,
            Some("must be merge, squash or rebase".to_string()),
        )),
    }
}

/// What the base branch's protection requires that `head` lacks: approvals (counted
/// as the fold will count them for the merge of `head`) and required status checks
/// (checked as the fold will check them). Empty when the protection lets it merge.
pub fn rule_blockers(state: &RepoState, pull: &Pull, head: &ObjectId) -> Vec<MergeBlocker> {
    let base_ref = format!("refs/heads/{}", pull.base);
    let mut blockers = Vec::new();
    let required = state
        .protections
        .get(&base_ref)
        .map_or(0, |p| usize::from(p.required_approvals));
    let given = state.merge_approvals(pull, head);
    if given < required {
        blockers.push(MergeBlocker::Approvals { required, given });
    }
    if let Some(checks) = state.required_checks(&base_ref)
        && let Err(rejection) = state.checks.require(checks, head)
    {
        blockers.push(MergeBlocker::Checks(rejection));
    }
    blockers
}

/// Why `pull` (whose thread is `open` or not) cannot merge now.
fn blockers(state: &RepoState, open: bool, pull: &Pull) -> Vec<MergeBlocker> {
    let mut blockers = Vec::new();
    if pull.merged.is_some() {
        blockers.push(MergeBlocker::Merged);
    } else if !open {
        blockers.push(MergeBlocker::Closed);
    }
    if pull.draft {
        blockers.push(MergeBlocker::Draft);
    }
    if state.branch(&pull.base).is_none() {
        blockers.push(MergeBlocker::BaseDeleted);
    }
    match state.branch(&pull.head) {
        None => blockers.push(MergeBlocker::HeadDeleted),
        Some(head) => blockers.extend(rule_blockers(state, pull, &head)),
    }
    blockers
}

/// The seconds since the epoch, for the merge commit's author.
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Service {
    /// Every reason pull request `number` cannot merge now; [`ServiceError::NotFound`]
    /// when there is no such pull request.
    pub fn merge_readiness(
        &self,
        view: &RepoView,
        number: u64,
    ) -> Result<MergeReadiness, ServiceError> {
        let (_, thread, pull) = find_pull(view, number)?;
        Ok(MergeReadiness {
            blockers: blockers(&view.state, thread.open, pull),
        })
    }

    /// Merges pull request `number` as `who`. Refused as
    /// [`ServiceError::NotMergeable`] with the first of its blockers (or a conflict),
    /// as [`ServiceError::Moved`] when `input.sha` is not the head or the base or head
    /// moved while the commits were written, and for want of the write role.
    pub async fn merge_pull(
        &self,
        who: &Authed,
        view: &RepoView,
        number: u64,
        input: MergeInput,
    ) -> Result<MergeDone, ServiceError> {
        let (pull_id, thread, pull) = find_pull(view, number)?;
        if let Some(blocker) = blockers(&view.state, thread.open, pull).first() {
            return Err(ServiceError::NotMergeable(Cow::Owned(blocker.to_string())));
        }
        let (Some(base), Some(head)) =
            (view.state.branch(&pull.base), view.state.branch(&pull.head))
        else {
            // Both exist: a missing one is a blocker above.
            return Err(ServiceError::Internal);
        };
        if let Some(sha) = input.sha.as_deref()
            && sha != head.to_string()
        {
            return Err(ServiceError::Moved(
                "Head branch was modified. Review and try the merge again.".into(),
            ));
        }
        let method = input.method;
        let title = input.commit_title.unwrap_or_else(|| match method {
            MergeMethod::Merge => format!(
                "Merge pull request #{} from {}/{}",
                thread.number,
                self.served(view).owner,
                pull.head
            ),
            MergeMethod::Squash | MergeMethod::Rebase => {
                format!("{} (#{})", thread.title, thread.number)
            }
        });
        let message = input.commit_message.unwrap_or_else(|| thread.title.clone());
        let held = who.role_in(view);
        if held < Some(Role::Write) {
            // What the fold would answer for the merge, before any git work.
            return Err(ServiceError::Rejected(Rejection::NotPermitted {
                required: Role::Write,
                held,
            }));
        }
        let new = self
            .write_merge(view, who, (base, head, method), title, message)
            .await?;
        let payload = Payload::MergePull {
            pull: pull_id,
            method,
            head,
            old: base,
            new,
        };
        let base_ref = format!("refs/heads/{}", pull.base);
        self.append_checked(who, view, payload, move |current| {
            let moved = current.refs.get(&base_ref).map(|r| r.target) != Some(base);
            let head_moved = current
                .collab
                .threads
                .get(&pull_id)
                .and_then(|t| t.pull.as_ref())
                .is_none_or(|p| head_sha(current, p) != head);
            if moved || head_moved {
                Err(RepoError::Moved(
                    "Base or head branch was modified. Review and try the merge again.".into(),
                ))
            } else {
                Ok(())
            }
        })
        .await?;
        tracing::info!(pull = number, by = %who.user.login, method = method.as_str(), "pull request merged");
        Ok(MergeDone { sha: new })
    }

    /// Writes the merge's commits on the blocking pool, authored by `who`; returns the
    /// new base tip.
    async fn write_merge(
        &self,
        view: &RepoView,
        who: &Authed,
        (base, head, method): (ObjectId, ObjectId, MergeMethod),
        title: String,
        message: String,
    ) -> Result<ObjectId, ServiceError> {
        let git = self.repos.git().clone();
        let dir = view.id.to_string();
        let login = who.user.login.clone();
        let time_secs = now_secs();
        let written = tokio::task::spawn_blocking(move || {
            let repo = git
                .open_repo(&dir)
                .map_err(|e| MergeError::Git(e.to_string()))?;
            let author = guts_storage::Signature {
                email: crate::noreply_email(&login),
                name: login,
                time_secs,
            };
            repo.write_merge(&MergeRequest {
                base: *base.as_bytes(),
                head: *head.as_bytes(),
                method,
                title: &title,
                message: &message,
                author: &author,
            })
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a merge task failed");
            ServiceError::Internal
        })?;
        match written {
            Ok(oid) => Ok(ObjectId::from_bytes(oid)),
            Err(MergeError::Conflict { .. }) => {
                Err(ServiceError::NotMergeable(Cow::Borrowed("Merge conflict")))
            }
            Err(MergeError::UpToDate) => Err(ServiceError::NotMergeable(Cow::Borrowed(
                "Pull Request is not mergeable",
            ))),
            Err(e) => {
                tracing::error!(error = %e, "merge failed");
                Err(ServiceError::Internal)
            }
        }
    }
}
