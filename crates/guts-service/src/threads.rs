//! Issues and their conversation as every front end changes them: opening an issue,
//! commenting, editing and closing or reopening a thread, each one signed operation
//! (or a few) of the caller.
//!
//! The rules here are the ones GitHub states and the fold cannot see: text lengths in
//! characters, labels and assignees silently dropped when someone without push access
//! opens an issue, assignees named by login. The fold still decides who may make each
//! change; checking first only lets a front end name the field that is wrong.

use std::collections::BTreeSet;
use std::sync::Arc;

use guts_core::collab::{MAX_ASSIGNEES, MAX_LABEL_BYTES, MAX_LABELS};
use guts_core::{OpId, Payload, PublicKey, Role, Thread, ThreadEdit};
use guts_storage::RepoView;

use crate::Service;
use crate::caller::Authed;
use crate::error::{FieldCode, ServiceError};

/// A UTF-8 character is at most this many bytes.
const MAX_UTF8_BYTES: usize = 4;

/// Longest body GitHub accepts for issues, pull requests, comments and reviews
/// (characters).
pub const MAX_BODY_CHARS: usize = 65_536;
/// Longest title GitHub accepts (characters).
pub const MAX_TITLE_CHARS: usize = 256;

// The limits are stated in characters, as GitHub does; the encoder's are in bytes.
// These hold at compile time, so a text within GitHub's character limit always fits the
// encoder's byte cap, and a ref name git accepts always fits a name field.
const _: () = assert!(MAX_TITLE_CHARS * MAX_UTF8_BYTES <= guts_core::collab::MAX_TITLE_BYTES);
const _: () = assert!(MAX_TITLE_CHARS * MAX_UTF8_BYTES <= guts_core::codec::MAX_NAME_BYTES);
const _: () = assert!(MAX_BODY_CHARS * MAX_UTF8_BYTES <= guts_core::codec::MAX_TEXT_BYTES);
const _: () = assert!(guts_core::names::MAX_REF_NAME_LEN <= guts_core::codec::MAX_NAME_BYTES);

/// A new issue as the caller wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewIssue {
    /// Not blank; a blank title is a missing field.
    pub title: String,
    pub body: Option<String>,
    /// Label names; dropped when the caller has no push access.
    pub labels: Vec<String>,
    /// Logins; dropped when the caller has no push access.
    pub assignees: Vec<String>,
}

/// What an issue edit changes; `None` leaves a part as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueChange {
    pub title: Option<String>,
    pub body: Option<String>,
    /// `Some(false)` closes, `Some(true)` reopens.
    pub open: Option<bool>,
    /// Label names the thread carries afterwards, exactly.
    pub labels: Option<Vec<String>>,
    /// Logins of the assignees afterwards, exactly.
    pub assignees: Option<Vec<String>>,
}

/// 422 `invalid` on `resource.field`, saying why.
fn invalid(
    resource: &'static str,
    field: &'static str,
    message: impl Into<String>,
) -> ServiceError {
    ServiceError::invalid(resource, field, FieldCode::Invalid, Some(message.into()))
}

/// Checks a title and body of `resource` as GitHub does, before any work: a title that
/// is given must not be blank, and neither may be longer than GitHub allows.
pub fn check_text(
    resource: &'static str,
    title: Option<&str>,
    body: Option<&str>,
) -> Result<(), ServiceError> {
    if let Some(title) = title {
        if title.trim().is_empty() {
            return Err(ServiceError::invalid(
                resource,
                "title",
                FieldCode::MissingField,
                None,
            ));
        }
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(invalid(
                resource,
                "title",
                "is too long (maximum is 256 characters)",
            ));
        }
    }
    if body.is_some_and(|b| b.chars().count() > MAX_BODY_CHARS) {
        return Err(invalid(
            resource,
            "body",
            "is too long (maximum is 65536 characters)",
        ));
    }
    Ok(())
}

/// At most `max` items in `resource.field` (an operation encoder's cap, checked first
/// so the answer names the field).
pub fn check_count(
    resource: &'static str,
    field: &'static str,
    found: usize,
    max: usize,
) -> Result<(), ServiceError> {
    if found > max {
        return Err(invalid(
            resource,
            field,
            format!("has too many items (maximum is {max}, found {found})"),
        ));
    }
    Ok(())
}

/// At most `max` bytes of UTF-8 in `resource.field` (the encoder counts bytes, not
/// characters).
pub fn check_bytes(
    resource: &'static str,
    field: &'static str,
    text: &str,
    max: usize,
) -> Result<(), ServiceError> {
    if text.len() > max {
        return Err(invalid(
            resource,
            field,
            format!("is too long (maximum is {max} bytes)"),
        ));
    }
    Ok(())
}

/// Checks label names as GitHub does (non-empty, at most 50 characters, no commas),
/// and the operation's caps: [`MAX_LABELS`] labels of at most [`MAX_LABEL_BYTES`]
/// bytes each.
pub fn check_labels(labels: &[String]) -> Result<(), ServiceError> {
    if labels.len() > MAX_LABELS {
        return Err(invalid("Label", "labels", "too many labels"));
    }
    for label in labels {
        if label.trim().is_empty() || label.chars().count() > 50 || label.contains(',') {
            return Err(invalid(
                "Label",
                "name",
                "must be 1 to 50 characters without commas",
            ));
        }
        check_bytes("Label", "name", label, MAX_LABEL_BYTES)?;
    }
    Ok(())
}

/// The thread numbered `number` in `view` (an issue or a pull request), or
/// [`ServiceError::NotFound`].
pub fn find_thread(view: &RepoView, number: u64) -> Result<(OpId, &Thread), ServiceError> {
    view.state
        .collab
        .thread_by_number(number)
        .ok_or(ServiceError::NotFound)
}

/// Labels to add and remove so that `thread` carries exactly `wanted`.
pub fn label_diff(thread: &Thread, wanted: &[String]) -> (Vec<String>, Vec<String>) {
    let wanted_keys: BTreeSet<String> = wanted.iter().map(|l| l.to_lowercase()).collect();
    let add = wanted
        .iter()
        .filter(|l| !thread.labels.contains(&l.to_lowercase()))
        .cloned()
        .collect();
    let remove = thread
        .labels
        .iter()
        .filter(|l| !wanted_keys.contains(*l))
        .cloned()
        .collect();
    (add, remove)
}

impl Service {
    /// The keys of the users `logins` (any case, each once), at most the
    /// [`MAX_ASSIGNEES`] an operation carries; a login of nobody is an invalid field.
    pub fn assignee_keys(&self, logins: &[String]) -> Result<Vec<PublicKey>, ServiceError> {
        let logins: BTreeSet<String> = logins.iter().map(|l| l.to_ascii_lowercase()).collect();
        check_count("Issue", "assignees", logins.len(), MAX_ASSIGNEES)?;
        let keys: BTreeSet<PublicKey> = logins
            .iter()
            .map(|login| {
                self.user(login)
                    .ok()
                    .and_then(|u| u.public_key().ok())
                    .ok_or_else(|| invalid("Issue", "assignees", "names an unknown user"))
            })
            .collect::<Result<_, _>>()?;
        Ok(keys.into_iter().collect())
    }

    /// Opens an issue as `who`; answers the new state and the issue's id. As on
    /// GitHub, labels and assignees from someone without push access are dropped, not
    /// refused, so a reader's form still opens the issue.
    pub async fn open_issue(
        &self,
        who: &Authed,
        view: &RepoView,
        new: NewIssue,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        check_text("Issue", Some(&new.title), new.body.as_deref())?;
        let (labels, assignees) = if who.role_in(view) >= Some(Role::Write) {
            check_labels(&new.labels)?;
            (new.labels, self.assignee_keys(&new.assignees)?)
        } else {
            (Vec::new(), Vec::new())
        };
        let payload = Payload::OpenIssue {
            number: 0,
            title: new.title,
            body: new.body.unwrap_or_default(),
            labels,
            assignees,
        };
        self.append(who, view, payload).await
    }

    /// Comments on issue or pull request `number` as `who`; answers the new state and
    /// the comment's id.
    pub async fn comment(
        &self,
        who: &Authed,
        view: &RepoView,
        number: u64,
        body: String,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        let (thread, _) = find_thread(view, number)?;
        if body.trim().is_empty() {
            return Err(ServiceError::invalid(
                "IssueComment",
                "body",
                FieldCode::MissingField,
                None,
            ));
        }
        check_text("IssueComment", None, Some(&body))?;
        self.append(who, view, Payload::Comment { thread, body })
            .await
    }

    /// Edits issue (or pull request) `number` as `who`: one `EditThread` for the
    /// title, body and state, one `LabelThread` and one `AssignThread` for what
    /// changes of the labels and assignees. What already holds is no operation.
    /// Answers the state after the last and the thread's id.
    pub async fn edit_issue(
        &self,
        who: &Authed,
        view: &Arc<RepoView>,
        number: u64,
        change: IssueChange,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        let (id, thread) = find_thread(view, number)?;
        check_text("Issue", change.title.as_deref(), change.body.as_deref())?;
        if let Some(labels) = &change.labels {
            check_labels(labels)?;
        }
        let assignees = change
            .assignees
            .map(|l| self.assignee_keys(&l))
            .transpose()?;
        let label_change = change.labels.map(|wanted| label_diff(thread, &wanted));
        let assignee_change = assignees.map(|wanted| {
            let wanted: BTreeSet<PublicKey> = wanted.into_iter().collect();
            let add: Vec<PublicKey> = wanted.difference(&thread.assignees).copied().collect();
            let remove: Vec<PublicKey> = thread.assignees.difference(&wanted).copied().collect();
            (add, remove)
        });
        let edit = ThreadEdit {
            title: change.title,
            body: change.body,
            open: change.open,
            ..ThreadEdit::default()
        };
        let mut view = view.clone();
        if edit != ThreadEdit::default() {
            let payload = Payload::EditThread { thread: id, edit };
            view = self.append(who, &view, payload).await?.0;
        }
        if let Some((add, remove)) = label_change.filter(|(a, r)| !a.is_empty() || !r.is_empty()) {
            let payload = Payload::LabelThread {
                thread: id,
                add,
                remove,
            };
            view = self.append(who, &view, payload).await?.0;
        }
        if let Some((add, remove)) = assignee_change.filter(|(a, r)| !a.is_empty() || !r.is_empty())
        {
            let payload = Payload::AssignThread {
                thread: id,
                as_: guts_core::Assignment::Assignee,
                add,
                remove,
            };
            view = self.append(who, &view, payload).await?.0;
        }
        Ok((view, id))
    }

    /// Closes (`open` false) or reopens issue or pull request `number` as `who`.
    pub async fn set_thread_open(
        &self,
        who: &Authed,
        view: &Arc<RepoView>,
        number: u64,
        open: bool,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        let change = IssueChange {
            open: Some(open),
            ..IssueChange::default()
        };
        self.edit_issue(who, view, number, change).await
    }
}

#[cfg(test)]
mod tests;
