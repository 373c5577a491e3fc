//! What the issue, pull request, comment, label and review routers share: finding a
//! thread by number, rendering them in GitHub's shapes (`views`) with the caches of one
//! request, and the mapping of the fold's rejections to GitHub's statuses.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::response::{IntoResponse as _, Response};
use guts_core::{
    Comment, Hlc, LabelDef, ObjectId, OpId, Payload, PublicKey, Pull, RepoState, Review, Role,
    TextRef, Thread,
};
use guts_storage::{RepoView, ServedName, accounts::numeric_id};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::Authed;
use crate::links::{API_PREFIX, Links};
use crate::state::AppState;
use crate::time::iso8601;
use crate::views::{
    self, BranchEnd, Href, Issue, IssueComment, IssuePullRequestLinks, Label, PullLinks,
    PullRequest, PullStats, Repository, Review as ReviewView, ReviewComment, ReviewCommentLinks,
    ReviewLinks, Shared, SimpleUser,
};
pub(crate) use guts_service::{base_sha, find_pull, find_thread, head_sha};

/// Renders the collaboration objects of one repository for one request. It remembers
/// what a page names many times: the users (authors, assignees), the labels, and the
/// repository object (at both ends of every pull request).
pub(crate) struct Render<'a> {
    state: &'a AppState,
    links: &'a Links,
    view: &'a RepoView,
    served: ServedName,
    /// `…/api/v3/repos/{owner}/{repo}`.
    api: String,
    /// `…/{owner}/{repo}`.
    web: String,
    users: RefCell<HashMap<PublicKey, Shared<SimpleUser>>>,
    /// By label key (the lowercase name).
    labels: RefCell<HashMap<&'a str, Shared<Label<'a>>>>,
    repository: OnceCell<Option<Shared<Repository>>>,
    /// Where bodies are read from, made for the first one.
    texts: OnceCell<guts_service::Texts>,
}

/// What an issue and a pull request show alike of their thread.
struct ThreadFields<'a> {
    state: &'static str,
    title: &'a str,
    body: Option<String>,
    user: Shared<SimpleUser>,
    labels: Vec<Shared<Label<'a>>>,
    assignee: Option<Shared<SimpleUser>>,
    assignees: Vec<Shared<SimpleUser>>,
    closed_at: Option<String>,
    created_at: String,
    updated_at: String,
    author_association: &'static str,
}

/// An operation's time as GitHub writes it.
fn stamp(at: Hlc) -> String {
    iso8601(at.wall_ms / 1000)
}

impl<'a> Render<'a> {
    pub(crate) fn new(state: &'a AppState, links: &'a Links, view: &'a RepoView) -> Self {
        let served = state.served(view);
        let (owner, name) = (served.owner.as_str(), served.name.as_str());
        Self {
            state,
            links,
            view,
            api: [links.origin(), API_PREFIX, "/repos/", owner, "/", name].concat(),
            web: [links.origin(), "/", owner, "/", name].concat(),
            served,
            users: RefCell::new(HashMap::new()),
            labels: RefCell::new(HashMap::new()),
            repository: OnceCell::new(),
            texts: OnceCell::new(),
        }
    }

    /// The text `text` names, read from the operation log.
    fn text(&self, text: &TextRef) -> Result<String, ApiError> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let texts = self.texts.get_or_init(|| self.state.service.texts());
        Ok(texts.get(text)?)
    }

    /// `…/api/v3/repos/{owner}/{repo}{path}`.
    fn api(&self, path: &str) -> String {
        views::join(&self.api, path)
    }

    /// `…/{owner}/{repo}{path}`.
    fn web(&self, path: &str) -> String {
        views::join(&self.web, path)
    }

    /// The user holding `key`: their account here, or a stand-in named after the key
    /// for authors known only through replication.
    pub(crate) fn user(&self, key: &PublicKey) -> Shared<SimpleUser> {
        if let Some(cached) = self.users.borrow().get(key) {
            return cached.clone();
        }
        let user = Shared::new(match self.state.accounts.user_by_key(key).ok().flatten() {
            Some(u) => SimpleUser::of(self.links, &u),
            None => {
                let hex = key.to_string();
                let login = format!("guts-{}", hex.get(..12).unwrap_or(&hex));
                SimpleUser::new(self.links, &login, numeric_id(key.as_bytes()), false)
            }
        });
        self.users.borrow_mut().insert(*key, user.clone());
        user
    }

    fn association(&self, key: &PublicKey) -> &'static str {
        match self.view.state.role(key) {
            Some(Role::Owner) => "OWNER",
            Some(_) => "COLLABORATOR",
            None => "NONE",
        }
    }

    /// `owner/name` as served.
    pub(crate) fn full_name(&self) -> String {
        [self.served.owner.as_str(), "/", self.served.name.as_str()].concat()
    }

    /// The repository object, without permissions (as GitHub embeds it).
    pub(crate) fn repository(&self) -> Option<Shared<Repository>> {
        self.repository
            .get_or_init(|| {
                views::repository(self.state, self.links, self.view, None).map(Shared::new)
            })
            .clone()
    }

    pub(crate) fn label(&self, def: &'a LabelDef) -> Label<'a> {
        let id = numeric_id(def.name.to_lowercase().as_bytes());
        let mut url = self.api("/labels/");
        encode_segment(&mut url, &def.name);
        Label {
            id,
            node_id: format!("LA_{id}"),
            url,
            name: &def.name,
            color: &def.color,
            default: false,
            description: views::non_empty(&def.description),
        }
    }

    /// The labels of a thread, in name order.
    pub(crate) fn thread_labels(&self, thread: &'a Thread) -> Vec<Shared<Label<'a>>> {
        let defs = &self.view.state.collab.labels;
        thread
            .labels
            .iter()
            .filter_map(|key| {
                if let Some(cached) = self.labels.borrow().get(key.as_str()) {
                    return Some(cached.clone());
                }
                let label = Shared::new(self.label(defs.get(key)?));
                self.labels.borrow_mut().insert(key, label.clone());
                Some(label)
            })
            .collect()
    }

    fn thread_fields(&self, thread: &'a Thread) -> Result<ThreadFields<'a>, ApiError> {
        let assignees: Vec<_> = thread.assignees.iter().map(|k| self.user(k)).collect();
        Ok(ThreadFields {
            state: if thread.open { "open" } else { "closed" },
            title: &thread.title,
            body: (!thread.body.is_empty())
                .then(|| self.text(&thread.body))
                .transpose()?,
            user: self.user(&thread.author),
            labels: self.thread_labels(thread),
            assignee: assignees.first().cloned(),
            assignees,
            closed_at: thread.closed.map(|(at, _)| stamp(at)),
            created_at: stamp(thread.created_at),
            updated_at: stamp(thread.updated_at),
            author_association: self.association(&thread.author),
        })
    }

    /// GitHub's issue object; pull requests are issues too, with `pull_request`.
    pub(crate) fn issue(&self, id: &OpId, thread: &'a Thread) -> Result<Issue<'a>, ApiError> {
        let n = thread.number;
        let url = format!("{}/issues/{n}", self.api);
        let fields = self.thread_fields(thread)?;
        let pull_request = thread.pull.as_ref().map(|pull| {
            let html_url = self.web(&format!("/pull/{n}"));
            IssuePullRequestLinks {
                url: self.api(&format!("/pulls/{n}")),
                diff_url: views::join(&html_url, ".diff"),
                patch_url: views::join(&html_url, ".patch"),
                html_url,
                merged_at: pull.merged.as_ref().map(|m| stamp(m.at)),
            }
        });
        let kind = if thread.pull.is_some() {
            "pull"
        } else {
            "issues"
        };
        Ok(Issue {
            reactions: views::Reactions::none(&url),
            id: id.numeric(),
            node_id: format!("I_{id}"),
            repository_url: self.api.clone(),
            labels_url: views::join(&url, "/labels{/name}"),
            comments_url: views::join(&url, "/comments"),
            events_url: views::join(&url, "/events"),
            url,
            html_url: self.web(&format!("/{kind}/{n}")),
            number: n,
            state: fields.state,
            state_reason: (!thread.open).then_some("completed"),
            title: fields.title,
            body: fields.body,
            user: fields.user,
            labels: fields.labels,
            assignee: fields.assignee,
            assignees: fields.assignees,
            milestone: views::Null,
            locked: thread.locked,
            active_lock_reason: views::Null,
            comments: thread.comments.len(),
            closed_at: fields.closed_at,
            closed_by: thread.closed.map(|(_, by)| self.user(&by)),
            created_at: fields.created_at,
            updated_at: fields.updated_at,
            author_association: fields.author_association,
            draft: thread.pull.as_ref().map(|p| p.draft),
            pull_request,
        })
    }

    pub(crate) fn comment(
        &self,
        id: &OpId,
        comment: &'a Comment,
    ) -> Result<IssueComment, ApiError> {
        let number = self.number_of(&comment.thread);
        let numeric = id.numeric();
        let url = self.api(&format!("/issues/comments/{numeric}"));
        Ok(IssueComment {
            id: numeric,
            node_id: format!("IC_{id}"),
            reactions: views::Reactions::none(&url),
            performed_via_github_app: views::Null,
            url,
            html_url: self.web(&format!("/issues/{number}#issuecomment-{numeric}")),
            issue_url: self.api(&format!("/issues/{number}")),
            body: self.text(&comment.body)?,
            user: self.user(&comment.author),
            created_at: stamp(comment.created_at),
            updated_at: stamp(comment.updated_at),
            author_association: self.association(&comment.author),
        })
    }

    /// The number of thread `id` (0 if it is gone).
    fn number_of(&self, id: &OpId) -> u64 {
        self.view
            .state
            .collab
            .threads
            .get(id)
            .map_or(0, |t| t.number)
    }

    pub(crate) fn review(&self, id: &OpId, review: &'a Review) -> Result<ReviewView, ApiError> {
        let number = self.number_of(&review.pull);
        let numeric = id.numeric();
        let html_url = self.web(&format!("/pull/{number}#pullrequestreview-{numeric}"));
        let pull_request_url = self.api(&format!("/pulls/{number}"));
        Ok(ReviewView {
            id: numeric,
            node_id: format!("PRR_{id}"),
            user: self.user(&review.author),
            body: self.text(&review.body)?,
            state: review.verdict.github_state(),
            links: ReviewLinks {
                html: Href {
                    href: html_url.clone(),
                },
                pull_request: Href {
                    href: pull_request_url.clone(),
                },
            },
            html_url,
            pull_request_url,
            commit_id: review.commit.to_string(),
            submitted_at: stamp(review.at),
            author_association: self.association(&review.author),
        })
    }

    /// GitHub's review comment object for inline comment `index` of review `id`;
    /// `None` if it has none such (or it was deleted).
    pub(crate) fn review_comment(
        &self,
        id: &OpId,
        review: &'a Review,
        index: usize,
    ) -> Option<Result<ReviewComment<'a>, ApiError>> {
        let comment = review.comments.get(index)?;
        let slot = u32::try_from(index).ok()?;
        if review.deleted.contains(&slot) {
            return None;
        }
        let body = match self.text(&comment.body) {
            Ok(body) => body,
            Err(e) => return Some(Err(e)),
        };
        let updated = stamp(review.edited.get(&slot).copied().unwrap_or(review.at));
        let number = self.number_of(&review.pull);
        let numeric = id
            .numeric()
            .wrapping_add(u64::try_from(index).unwrap_or(0) + 1);
        let commit_id = review.commit.to_string();
        let at = stamp(review.at);
        let url = self.api(&format!("/pulls/comments/{numeric}"));
        let reactions = views::Reactions::none(&url);
        let html_url = self.web(&format!("/pull/{number}#discussion_r{numeric}"));
        let pull_request_url = self.api(&format!("/pulls/{number}"));
        let href = |url: &String| Href { href: url.clone() };
        Some(Ok(ReviewComment {
            id: numeric,
            node_id: format!("PRRC_{numeric}"),
            links: ReviewCommentLinks {
                this: href(&url),
                html: href(&html_url),
                pull_request: href(&pull_request_url),
            },
            url,
            pull_request_review_id: id.numeric(),
            path: &comment.path,
            line: comment.line,
            original_line: comment.line,
            side: "RIGHT",
            start_line: views::Null,
            original_start_line: views::Null,
            start_side: views::Null,
            reactions,
            position: comment.line,
            original_position: comment.line,
            original_commit_id: commit_id.clone(),
            commit_id,
            diff_hunk: "",
            body,
            user: self.user(&review.author),
            created_at: at,
            updated_at: updated,
            html_url,
            pull_request_url,
            author_association: "NONE",
        }))
    }

    fn branch_end(&self, branch: &'a str, sha: ObjectId) -> BranchEnd<'a> {
        let repo = self.repository();
        BranchEnd {
            label: [self.served.owner.as_str(), ":", branch].concat(),
            branch,
            sha: sha.to_string(),
            user: repo.as_ref().map(|r| r.owner.clone()),
            repo,
        }
    }

    /// GitHub's pull request object. `mergeable` is `None` where GitHub sends null
    /// (lists, or not computed).
    pub(crate) fn pull(
        &self,
        id: &OpId,
        thread: &'a Thread,
        pull: &'a Pull,
        mergeable: Option<bool>,
        stats: Option<PullStats>,
    ) -> Result<PullRequest<'a>, ApiError> {
        let n = thread.number;
        let state = &self.view.state;
        let head = head_sha(state, pull);
        let merged = pull.merged.as_ref();
        let url = format!("{}/pulls/{n}", self.api);
        let html_url = self.web(&format!("/pull/{n}"));
        let issue_url = format!("{}/issues/{n}", self.api);
        let comments_url = views::join(&issue_url, "/comments");
        let review_comments_url = views::join(&url, "/comments");
        let commits_url = views::join(&url, "/commits");
        let statuses_url = self.api(&format!("/statuses/{head}"));
        let review_comment_url = self.api("/pulls/comments{/number}");
        let href = |url: &String| Href { href: url.clone() };
        let links = PullLinks {
            this: href(&url),
            html: href(&html_url),
            issue: href(&issue_url),
            comments: href(&comments_url),
            review_comments: href(&review_comments_url),
            review_comment: href(&review_comment_url),
            commits: href(&commits_url),
            statuses: href(&statuses_url),
        };
        let fields = self.thread_fields(thread)?;
        Ok(PullRequest {
            id: id.numeric(),
            node_id: format!("PR_{id}"),
            diff_url: views::join(&html_url, ".diff"),
            patch_url: views::join(&html_url, ".patch"),
            url,
            html_url,
            issue_url,
            commits_url,
            review_comments_url,
            review_comment_url,
            comments_url,
            statuses_url,
            number: n,
            state: fields.state,
            locked: thread.locked,
            title: fields.title,
            user: fields.user,
            body: fields.body,
            labels: fields.labels,
            milestone: views::Null,
            active_lock_reason: views::Null,
            created_at: fields.created_at,
            updated_at: fields.updated_at,
            closed_at: fields.closed_at,
            merged_at: merged.map(|m| stamp(m.at)),
            merge_commit_sha: merged.map(|m| m.commit.to_string()),
            assignee: fields.assignee,
            assignees: fields.assignees,
            requested_reviewers: pull.requested.iter().map(|k| self.user(k)).collect(),
            requested_teams: &[],
            head: self.branch_end(&pull.head, head),
            base: self.branch_end(&pull.base, base_sha(state, pull)),
            links,
            author_association: fields.author_association,
            auto_merge: views::Null,
            draft: pull.draft,
            merged: merged.is_some(),
            mergeable,
            rebaseable: mergeable,
            mergeable_state: match mergeable {
                Some(true) if pull.draft => "draft",
                // Approvals or required status checks missing on the head.
                Some(true) if !merge_rules_pass(state, pull, &head) => "blocked",
                Some(true) => "clean",
                Some(false) => "dirty",
                None => "unknown",
            },
            merged_by: merged.map(|m| self.user(&m.by)),
            comments: thread.comments.len(),
            review_comments: pull
                .reviews
                .iter()
                .filter_map(|r| state.collab.reviews.get(r))
                .map(|r| r.live_comments().count())
                .sum(),
            maintainer_can_modify: false,
            stats,
        })
    }
}

/// A JSON response with `status` of what `render` makes of `view`; 404 when it finds
/// nothing (the thing was deleted meanwhile).
pub(crate) fn respond<'a, T: Serialize>(
    state: &'a AppState,
    links: &'a Links,
    view: &'a RepoView,
    status: StatusCode,
    render: impl FnOnce(&Render<'a>) -> Option<Result<T, ApiError>>,
) -> Result<Response, ApiError> {
    let body = render(&Render::new(state, links, view)).ok_or_else(ApiError::not_found)??;
    Ok((status, crate::json::Json(body)).into_response())
}

/// Appends `text` to `out` as a path segment, with the characters URLs cannot carry
/// escaped (label names have spaces).
fn encode_segment(out: &mut String, text: &str) {
    out.reserve(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a `String` cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Whether the base branch's protection would let `head` merge now: its required
/// approvals given (by reviewers who count) and its required status checks green. What
/// GitHub's `mergeable_state` calls `blocked` otherwise.
fn merge_rules_pass(state: &RepoState, pull: &Pull, head: &ObjectId) -> bool {
    guts_service::rule_blockers(state, pull, head).is_empty()
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

/// A `validator` rule: text that is not only whitespace (GitHub's `missing_field`).
pub(crate) fn not_blank(text: &str) -> Result<(), validator::ValidationError> {
    if text.trim().is_empty() {
        return Err(validator::ValidationError::new("required").with_message("is blank".into()));
    }
    Ok(())
}

/// Which threads a list shows, by state (`open` by default).
pub(crate) fn state_filter(state: Option<&str>) -> Result<fn(&Thread) -> bool, ApiError> {
    Ok(match guts_service::state_filter(state)? {
        Some(true) => |t| t.open,
        Some(false) => |t| !t.open,
        None => |_| true,
    })
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
            return Err(ApiError::invalid_field(
                "Issue",
                "sort",
                "must be created, updated or comments",
            ));
        }
    }
    match direction.unwrap_or("desc") {
        "desc" => threads.reverse(),
        "asc" => {}
        _ => {
            return Err(ApiError::invalid_field(
                "Issue",
                "direction",
                "must be asc or desc",
            ));
        }
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

/// `open`/`closed` as the thread edit's `open` flag.
pub(crate) fn open_flag(state: Option<&str>) -> Result<Option<bool>, ApiError> {
    match state {
        None => Ok(None),
        Some("open") => Ok(Some(true)),
        Some("closed") => Ok(Some(false)),
        Some(_) => Err(ApiError::invalid_field(
            "Issue",
            "state",
            "must be open or closed",
        )),
    }
}

impl LabelRef {
    pub(crate) fn into_name(self) -> String {
        match self {
            LabelRef::Name(name) | LabelRef::Object { name } => name,
        }
    }
}

/// A pull request's commits and changed lines and files, from the merge base of
/// `base` and `head` to `head` (what the REST view and webhook payloads show); `None`
/// when the objects cannot be read.
pub(crate) fn pull_stats(
    b: &guts_storage::Browser,
    base: ObjectId,
    head: ObjectId,
) -> Option<PullStats> {
    let compared = b.compare(base.as_bytes(), head.as_bytes()).ok()?;
    let from = match compared.merge_base {
        Some(merge_base) => b.commit(&merge_base).ok()?.tree,
        None => b.commit(base.as_bytes()).ok()?.tree,
    };
    let changes = b
        .diff(Some(&from), &b.commit(head.as_bytes()).ok()?.tree)
        .ok()?;
    Some(PullStats {
        commits: compared.ahead.len(),
        additions: changes.iter().map(|c| c.additions).sum(),
        deletions: changes.iter().map(|c| c.deletions).sum(),
        changed_files: changes.len(),
    })
}
