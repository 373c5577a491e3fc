//! What the issue, pull request, comment, label and review routers share: finding a
//! thread by number, GitHub's JSON shapes for them, and the mapping of the fold's
//! rejections to GitHub's statuses.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::sync::Arc;

use guts_core::{
    Comment, LabelDef, ObjectId, OpId, Payload, PublicKey, Pull, RepoState, Review, Role, Thread,
};
use guts_storage::{RepoView, accounts::numeric_id};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::caps::{self, MAX_BODY_CHARS, MAX_TITLE_CHARS};
use crate::error::{ApiError, FieldError};
use crate::extract::Authed;
use crate::links::Links;
use crate::state::AppState;
use crate::time::iso8601;
use crate::views;

/// Renders the collaboration objects of one repository for one request, remembering
/// the users it looked up (a list page names the same people many times).
pub(crate) struct Render<'a> {
    pub state: &'a AppState,
    pub links: &'a Links,
    pub view: &'a RepoView,
    full: String,
    users: RefCell<HashMap<PublicKey, Value>>,
}

impl<'a> Render<'a> {
    pub(crate) fn new(state: &'a AppState, links: &'a Links, view: &'a RepoView) -> Self {
        let served = state.served(view);
        let full = format!("{}/{}", served.owner, served.name);
        Self {
            state,
            links,
            view,
            full,
            users: RefCell::new(HashMap::new()),
        }
    }

    /// `…/api/v3/repos/{owner}/{repo}{path}`.
    pub(crate) fn api(&self, path: &str) -> String {
        self.links.api(&format!("/repos/{}{path}", self.full))
    }

    /// `…/{owner}/{repo}{path}`.
    pub(crate) fn web(&self, path: &str) -> String {
        self.links.web(&format!("/{}{path}", self.full))
    }

    /// The user holding `key`: their account here, or a stand-in named after the key
    /// for authors known only through replication.
    pub(crate) fn user(&self, key: &PublicKey) -> Value {
        if let Some(cached) = self.users.borrow().get(key) {
            return cached.clone();
        }
        let value = match self.state.accounts.user_by_key(key).ok().flatten() {
            Some(u) => views::simple_user(self.links, &u.login, u.id, u.site_admin),
            None => {
                let hex = key.to_string();
                let login = format!("guts-{}", hex.get(..12).unwrap_or(&hex));
                views::simple_user(self.links, &login, numeric_id(key.as_bytes()), false)
            }
        };
        self.users.borrow_mut().insert(*key, value.clone());
        value
    }

    fn association(&self, key: &PublicKey) -> &'static str {
        match self.view.state.role(key) {
            Some(Role::Owner) => "OWNER",
            Some(_) => "COLLABORATOR",
            None => "NONE",
        }
    }

    pub(crate) fn label(&self, def: &LabelDef) -> Value {
        let id = numeric_id(def.name.to_lowercase().as_bytes());
        json!({
            "id": id,
            "node_id": format!("LA_{id}"),
            "url": self.api(&format!("/labels/{}", encode_segment(&def.name))),
            "name": def.name,
            "color": def.color,
            "default": false,
            "description": if def.description.is_empty() { Value::Null } else { json!(def.description) },
        })
    }

    /// The labels of a thread, in name order.
    pub(crate) fn thread_labels(&self, thread: &Thread) -> Vec<Value> {
        thread
            .labels
            .iter()
            .filter_map(|key| self.view.state.collab.labels.get(key))
            .map(|def| self.label(def))
            .collect()
    }

    /// GitHub's issue object; pull requests are issues too, with `pull_request`.
    pub(crate) fn issue(&self, id: &OpId, thread: &Thread) -> Value {
        let n = thread.number;
        let assignees: Vec<Value> = thread.assignees.iter().map(|k| self.user(k)).collect();
        let closed_at = thread.closed.map(|(at, _)| iso8601(at.wall_ms / 1000));
        let mut value = json!({
            "id": id.numeric(),
            "node_id": format!("I_{id}"),
            "url": self.api(&format!("/issues/{n}")),
            "repository_url": self.api(""),
            "labels_url": self.api(&format!("/issues/{n}/labels{{/name}}")),
            "comments_url": self.api(&format!("/issues/{n}/comments")),
            "events_url": self.api(&format!("/issues/{n}/events")),
            "html_url": self.web(&format!("/{}/{n}", if thread.pull.is_some() { "pull" } else { "issues" })),
            "number": n,
            "state": if thread.open { "open" } else { "closed" },
            "state_reason": if thread.open { Value::Null } else { json!("completed") },
            "title": thread.title,
            "body": if thread.body.is_empty() { Value::Null } else { json!(thread.body) },
            "user": self.user(&thread.author),
            "labels": self.thread_labels(thread),
            "assignee": assignees.first().cloned().unwrap_or(Value::Null),
            "assignees": assignees,
            "milestone": Value::Null,
            "locked": thread.locked,
            "active_lock_reason": Value::Null,
            "comments": thread.comments.len(),
            "closed_at": closed_at,
            "closed_by": thread.closed.map(|(_, by)| self.user(&by)),
            "created_at": iso8601(thread.created_at.wall_ms / 1000),
            "updated_at": iso8601(thread.updated_at.wall_ms / 1000),
            "author_association": self.association(&thread.author),
            "draft": thread.pull.as_ref().map(|p| p.draft),
        });
        if let (Some(pull), Some(map)) = (&thread.pull, value.as_object_mut()) {
            map.insert(
                "pull_request".into(),
                json!({
                    "url": self.api(&format!("/pulls/{n}")),
                    "html_url": self.web(&format!("/pull/{n}")),
                    "diff_url": self.web(&format!("/pull/{n}.diff")),
                    "patch_url": self.web(&format!("/pull/{n}.patch")),
                    "merged_at": pull.merged.map(|m| iso8601(m.at.wall_ms / 1000)),
                }),
            );
        }
        value
    }

    pub(crate) fn comment(&self, id: &OpId, comment: &Comment) -> Value {
        let number = self
            .view
            .state
            .collab
            .threads
            .get(&comment.thread)
            .map_or(0, |t| t.number);
        let numeric = id.numeric();
        json!({
            "id": numeric,
            "node_id": format!("IC_{id}"),
            "url": self.api(&format!("/issues/comments/{numeric}")),
            "html_url": self.web(&format!("/issues/{number}#issuecomment-{numeric}")),
            "issue_url": self.api(&format!("/issues/{number}")),
            "body": comment.body,
            "user": self.user(&comment.author),
            "created_at": iso8601(comment.created_at.wall_ms / 1000),
            "updated_at": iso8601(comment.updated_at.wall_ms / 1000),
            "author_association": self.association(&comment.author),
        })
    }

    pub(crate) fn review(&self, id: &OpId, review: &Review) -> Value {
        let number = self
            .view
            .state
            .collab
            .threads
            .get(&review.pull)
            .map_or(0, |t| t.number);
        let numeric = id.numeric();
        json!({
            "id": numeric,
            "node_id": format!("PRR_{id}"),
            "user": self.user(&review.author),
            "body": review.body,
            "state": review.verdict.github_state(),
            "html_url": self.web(&format!("/pull/{number}#pullrequestreview-{numeric}")),
            "pull_request_url": self.api(&format!("/pulls/{number}")),
            "commit_id": review.commit.to_string(),
            "submitted_at": iso8601(review.at.wall_ms / 1000),
            "author_association": self.association(&review.author),
        })
    }
}

/// A JSON response with `status` of what `render` makes of `view`; 404 when it finds
/// nothing (the thing was deleted meanwhile).
pub(crate) fn respond(
    state: &AppState,
    links: &Links,
    view: &RepoView,
    status: StatusCode,
    render: impl FnOnce(&Render<'_>) -> Option<Value>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let body = render(&Render::new(state, links, view)).ok_or_else(ApiError::not_found)?;
    Ok((status, axum::Json(body)).into_response())
}

/// A path segment with the characters URLs cannot carry escaped (label names have
/// spaces).
pub(crate) fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The thread numbered `number` in `view`, or 404.
pub(crate) fn find_thread(view: &RepoView, number: u64) -> Result<(OpId, &Thread), ApiError> {
    view.state
        .collab
        .thread_by_number(number)
        .ok_or_else(ApiError::not_found)
}

/// The caller's role in the repository, if any.
pub(crate) fn role_of(view: &RepoView, caller: &Authed) -> Option<Role> {
    let key = caller.user.public_key().ok()?;
    view.state.role(&key)
}

/// Appends a collaboration operation as the caller; returns the new state and the
/// operation's id (the new thread's, comment's or review's id).
pub(crate) async fn append(
    state: &AppState,
    authed: &Authed,
    view: &RepoView,
    payload: Payload,
) -> Result<(Arc<RepoView>, OpId), ApiError> {
    Ok(state.service.append(authed, view, payload).await?)
}

/// 422 naming one invalid field.
pub(crate) fn invalid_field(
    resource: &'static str,
    field: &'static str,
    message: &str,
) -> ApiError {
    ApiError::validation(FieldError {
        resource: resource.into(),
        field: field.into(),
        code: "invalid".into(),
        message: Some(message.to_owned()),
    })
}

/// A `validator` rule: text that is not only whitespace (GitHub's `missing_field`).
pub(crate) fn not_blank(text: &str) -> Result<(), validator::ValidationError> {
    if text.trim().is_empty() {
        return Err(validator::ValidationError::new("required").with_message("is blank".into()));
    }
    Ok(())
}

/// Checks a title and body as GitHub does, before any work.
pub(crate) fn validate_text(
    resource: &'static str,
    title: Option<&str>,
    body: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(title) = title {
        if title.trim().is_empty() {
            return Err(ApiError::missing_field(resource, "title"));
        }
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(invalid_field(
                resource,
                "title",
                "is too long (maximum is 256 characters)",
            ));
        }
    }
    if body.is_some_and(|b| b.chars().count() > MAX_BODY_CHARS) {
        return Err(invalid_field(
            resource,
            "body",
            "is too long (maximum is 65536 characters)",
        ));
    }
    Ok(())
}

/// Which threads a list shows, by state (`open` by default).
pub(crate) fn state_filter(state: Option<&str>) -> Result<fn(&Thread) -> bool, ApiError> {
    match state.unwrap_or("open") {
        "open" => Ok(|t| t.open),
        "closed" => Ok(|t| !t.open),
        "all" => Ok(|_| true),
        _ => Err(invalid_field(
            "Issue",
            "state",
            "must be open, closed or all",
        )),
    }
}

/// Sorts threads by `sort` (`created`, `updated`, `comments`) and `direction`
/// (`desc` by default), as GitHub's list endpoints do.
pub(crate) fn sort_threads(
    threads: &mut [(OpId, &Thread)],
    sort: Option<&str>,
    direction: Option<&str>,
) -> Result<(), ApiError> {
    match sort.unwrap_or("created") {
        "created" => threads.sort_by_key(|(_, t)| t.number),
        "updated" => threads.sort_by_key(|(_, t)| (t.updated_at, t.number)),
        "comments" => threads.sort_by_key(|(_, t)| (t.comments.len(), t.number)),
        _ => {
            return Err(invalid_field(
                "Issue",
                "sort",
                "must be created, updated or comments",
            ));
        }
    }
    match direction.unwrap_or("desc") {
        "desc" => threads.reverse(),
        "asc" => {}
        _ => return Err(invalid_field("Issue", "direction", "must be asc or desc")),
    }
    Ok(())
}

/// GitHub accepts labels as names or as `{"name": …}` objects.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum LabelRef {
    Name(String),
    Object { name: String },
}

/// Checks label names as GitHub does (non-empty, at most 50 characters), and the
/// operation's caps: [`MAX_LABELS`](guts_core::collab::MAX_LABELS) labels of at most
/// [`MAX_LABEL_BYTES`](caps::MAX_LABEL_BYTES) bytes each.
pub(crate) fn validate_labels(labels: &[String]) -> Result<(), ApiError> {
    if labels.len() > guts_core::collab::MAX_LABELS {
        return Err(invalid_field("Label", "labels", "too many labels"));
    }
    for label in labels {
        if label.trim().is_empty() || label.chars().count() > 50 || label.contains(',') {
            return Err(invalid_field(
                "Label",
                "name",
                "must be 1 to 50 characters without commas",
            ));
        }
        caps::check_bytes("Label", "name", label, caps::MAX_LABEL_BYTES)?;
    }
    Ok(())
}

/// `open`/`closed` as the thread edit's `open` flag.
pub(crate) fn open_flag(state: Option<&str>) -> Result<Option<bool>, ApiError> {
    match state {
        None => Ok(None),
        Some("open") => Ok(Some(true)),
        Some("closed") => Ok(Some(false)),
        Some(_) => Err(invalid_field("Issue", "state", "must be open or closed")),
    }
}

/// Labels to add and remove so that `thread` carries exactly `wanted`.
pub(crate) fn label_diff(thread: &Thread, wanted: &[String]) -> (Vec<String>, Vec<String>) {
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

/// The head commit of a pull request: its branch while open and the branch exists,
/// else what was recorded (at merge, or when it was opened).
pub(crate) fn head_sha(state: &RepoState, pull: &Pull) -> ObjectId {
    if let Some(merged) = &pull.merged {
        return merged.head;
    }
    state.branch(&pull.head).unwrap_or(pull.head_sha)
}

/// The thread numbered `number`, which must be a pull request.
pub(crate) fn find_pull(view: &RepoView, number: u64) -> Result<(OpId, &Thread, &Pull), ApiError> {
    let (id, thread) = find_thread(view, number)?;
    let pull = thread.pull.as_ref().ok_or_else(ApiError::not_found)?;
    Ok((id, thread, pull))
}

impl LabelRef {
    pub(crate) fn into_name(self) -> String {
        match self {
            LabelRef::Name(name) | LabelRef::Object { name } => name,
        }
    }
}
