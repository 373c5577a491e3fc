//! Pull requests as every front end changes them: opening one from a branch into
//! another of the same repository, editing it, and reviewing it. Merging is in
//! [`merge`](crate::merge).
//!
//! As for issues, the checks here are GitHub's rules the fold cannot see (text lengths
//! in characters, branches named that do not exist, a review's body when it needs
//! one); the fold decides who may make each change.

use std::sync::Arc;

use guts_core::collab::MAX_REVIEW_COMMENTS;
use guts_core::{ObjectId, OpId, Payload, Pull, RepoState, ReviewComment, Thread, ThreadEdit};
use guts_core::{Verdict, codec};
use guts_storage::RepoView;

use crate::Service;
use crate::caller::Authed;
use crate::error::{FieldCode, ServiceError};
use crate::threads::{check_bytes, check_count, check_text, find_thread};

/// A new pull request as the caller wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewPull {
    pub title: String,
    pub body: Option<String>,
    /// The branch to merge (a plain branch name of this repository).
    pub head: String,
    /// The branch to merge into.
    pub base: String,
    pub draft: bool,
}

/// What a pull request edit changes; `None` leaves a part as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullChange {
    pub title: Option<String>,
    pub body: Option<String>,
    /// `Some(false)` closes, `Some(true)` reopens.
    pub open: Option<bool>,
    /// A new base branch.
    pub base: Option<String>,
}

/// One inline comment of a review, as the caller wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InlineComment {
    /// The file commented on; empty is a missing field.
    pub path: String,
    /// The line; the first when `None`.
    pub line: Option<u32>,
    /// Not blank.
    pub body: String,
}

/// A review, submitted at once (there are no pending reviews).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewInput {
    pub verdict: Verdict,
    /// Required unless approving or commenting inline.
    pub body: String,
    /// The reviewed commit as 40 hex digits; the pull request's head when `None`.
    pub commit_id: Option<String>,
    pub comments: Vec<InlineComment>,
}

/// The thread numbered `number`, which must be a pull request, or
/// [`ServiceError::NotFound`].
pub fn find_pull(view: &RepoView, number: u64) -> Result<(OpId, &Thread, &Pull), ServiceError> {
    let (id, thread) = find_thread(view, number)?;
    let pull = thread.pull.as_ref().ok_or(ServiceError::NotFound)?;
    Ok((id, thread, pull))
}

/// The head commit of a pull request: its branch while open and the branch exists,
/// else what was recorded (at merge, or when it was opened).
pub fn head_sha(state: &RepoState, pull: &Pull) -> ObjectId {
    if let Some(merged) = &pull.merged {
        return merged.head;
    }
    state.branch(&pull.head).unwrap_or(pull.head_sha)
}

/// The base commit of a pull request: its branch while the branch exists, else what
/// was recorded when it was opened.
pub fn base_sha(state: &RepoState, pull: &Pull) -> ObjectId {
    state.branch(&pull.base).unwrap_or(pull.base_sha)
}

/// The commits a pull request brings: base (as it was when the pull request was
/// opened, once merged) to head.
pub fn pull_range(state: &RepoState, pull: &Pull) -> (ObjectId, ObjectId) {
    let base = if pull.merged.is_some() {
        pull.base_sha
    } else {
        base_sha(state, pull)
    };
    (base, head_sha(state, pull))
}

/// A review's inline comment checked and made the operation's.
fn inline_comment(comment: InlineComment) -> Result<ReviewComment, ServiceError> {
    const RESOURCE: &str = "PullRequestReviewComment";
    let missing = |field| ServiceError::invalid(RESOURCE, field, FieldCode::MissingField, None);
    if comment.path.is_empty() {
        return Err(missing("path"));
    }
    check_bytes(RESOURCE, "path", &comment.path, codec::MAX_NAME_BYTES)?;
    if comment.body.trim().is_empty() {
        return Err(missing("body"));
    }
    check_text(RESOURCE, None, Some(&comment.body))?;
    Ok(ReviewComment {
        path: comment.path,
        line: comment.line.unwrap_or(1),
        body: comment.body,
    })
}

impl Service {
    /// Opens a pull request from `new.head` into `new.base` as `who`; answers the new
    /// state and the pull request's id. Both branches must exist here.
    pub async fn open_pull(
        &self,
        who: &Authed,
        view: &RepoView,
        new: NewPull,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        check_text("PullRequest", Some(&new.title), new.body.as_deref())?;
        for (field, branch) in [("head", &new.head), ("base", &new.base)] {
            if view.state.branch(branch).is_none() {
                return Err(ServiceError::invalid(
                    "PullRequest",
                    field,
                    FieldCode::Invalid,
                    Some("no such branch".to_string()),
                ));
            }
        }
        let payload = Payload::OpenPull {
            number: 0,
            title: new.title,
            body: new.body.unwrap_or_default(),
            head: new.head,
            base: new.base,
            draft: new.draft,
        };
        self.append(who, view, payload).await
    }

    /// Edits pull request `number` as `who` (one `EditThread`; nothing when nothing
    /// changes). Answers the state and the pull request's id.
    pub async fn edit_pull(
        &self,
        who: &Authed,
        view: &Arc<RepoView>,
        number: u64,
        change: PullChange,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        let (id, _, _) = find_pull(view, number)?;
        check_text(
            "PullRequest",
            change.title.as_deref(),
            change.body.as_deref(),
        )?;
        if let Some(base) = &change.base {
            check_bytes("PullRequest", "base", base, codec::MAX_NAME_BYTES)?;
        }
        let edit = ThreadEdit {
            title: change.title,
            body: change.body,
            open: change.open,
            base: change.base,
            ..ThreadEdit::default()
        };
        if edit == ThreadEdit::default() {
            return Ok((view.clone(), id));
        }
        let payload = Payload::EditThread { thread: id, edit };
        Ok((self.append(who, view, payload).await?.0, id))
    }

    /// Submits a review of pull request `number` as `who`; answers the new state and
    /// the review's id. A body is required unless the review approves or comments
    /// inline.
    pub async fn submit_review(
        &self,
        who: &Authed,
        view: &RepoView,
        number: u64,
        review: ReviewInput,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        const RESOURCE: &str = "PullRequestReview";
        let commit = match review.commit_id.as_deref() {
            Some(sha) => sha.parse().map_err(|_| {
                ServiceError::invalid(
                    RESOURCE,
                    "commit_id",
                    FieldCode::Invalid,
                    Some("is not a commit sha".to_string()),
                )
            })?,
            None => {
                let (_, _, pull) = find_pull(view, number)?;
                head_sha(&view.state, pull)
            }
        };
        check_count(
            RESOURCE,
            "comments",
            review.comments.len(),
            MAX_REVIEW_COMMENTS,
        )?;
        let comments = review
            .comments
            .into_iter()
            .map(inline_comment)
            .collect::<Result<Vec<_>, _>>()?;
        let (pull, _, _) = find_pull(view, number)?;
        if review.verdict != Verdict::Approve
            && review.body.trim().is_empty()
            && comments.is_empty()
        {
            return Err(ServiceError::invalid(
                RESOURCE,
                "body",
                FieldCode::MissingField,
                None,
            ));
        }
        check_text(RESOURCE, None, Some(&review.body))?;
        let payload = Payload::Review {
            pull,
            verdict: review.verdict,
            body: review.body,
            commit,
            comments,
        };
        self.append(who, view, payload).await
    }
}
