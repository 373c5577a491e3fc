//! Which GitHub events an operation is, and their payloads.
//!
//! Pure rendering over the repository's state and git (no network): the deliverer calls
//! it on the blocking pool once per outbox entry, right after the operation, and stores
//! what it renders, so a retry or a redelivery sends the same bytes. The mapping is
//! GitHub's: a pushed ref is a `push` (and a `create` or `delete` when the ref appears
//! or goes); an opened, edited, closed, labelled or assigned thread is an `issues` or a
//! `pull_request` event with that action; a merge closes the pull request and pushes its
//! base branch; a comment is an `issue_comment`; a review is a `pull_request_review`
//! and a `pull_request_review_comment` per inline comment; a status is a `status`; a new
//! hook is pinged; settings are `repository` events and role changes `member` events.

use std::sync::Arc;

use guts_core::collab::Assignment;
use guts_core::{ObjectId, OpId, Payload, PublicKey, SignedOp};
use guts_storage::accounts::numeric_id;
use guts_storage::{Browser, RepoView};
use serde::Serialize;

use crate::browse::Repo;
use crate::check_reads::Runs;
use crate::links::Links;
use crate::state::AppState;
use crate::threads::{Render, pull_stats};
use crate::time::iso8601;
use crate::views::{
    Changes, CheckRunBody, Envelope, GitPerson, IssueBody, IssueCommentBody, MemberBody, PingBody,
    PullBody, PushBody, PushCommit, RefBody, RepositoryBody, ReviewBody, ReviewCommentBody, Shared,
    SimpleUser, StatusBody, StatusCommit,
};

/// Commits a `push` payload lists (GitHub lists up to 2,048; a bounded payload
/// matters more here than a long list, and `compare` has the rest).
pub(crate) const MAX_PUSH_COMMITS: usize = 20;

const ZERO: &str = "0000000000000000000000000000000000000000";

/// One event of an operation, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) event: &'static str,
    pub(crate) action: Option<&'static str>,
    pub(crate) json: String,
    /// Only this hook receives it (a new hook's `ping`); `None`: every hook that
    /// subscribes to `event`.
    pub(crate) only: Option<OpId>,
}

/// Renders events of one repository's state.
pub(crate) struct Events<'a> {
    render: Render<'a>,
    state: &'a AppState,
    links: &'a Links,
    view: &'a Arc<RepoView>,
    browser: Option<Browser>,
    out: Vec<Rendered>,
}

impl<'a> Events<'a> {
    pub(crate) fn new(state: &'a AppState, links: &'a Links, view: &'a Arc<RepoView>) -> Self {
        let browser = Browser::open(state.repos.git(), &view.id.to_string()).ok();
        Events {
            render: Render::new(state, links, view),
            state,
            links,
            view,
            browser,
            out: Vec::new(),
        }
    }

    /// Every event of `op`.
    pub(crate) fn of(mut self, op: &SignedOp) -> Vec<Rendered> {
        let sender = self.render.user(&op.op().author);
        let id = op.id();
        match &op.op().payload {
            Payload::UpdateRef {
                name,
                old,
                new,
                force,
            } => self.ref_update(&sender, name, *old, *new, *force),
            Payload::MergePull { pull, old, new, .. } => {
                self.pull_event(&sender, pull, "closed", Extra::None);
                if let Some(branch) = self.pull_base(pull) {
                    self.push(&sender, &branch, Some(*old), Some(*new), false);
                }
            }
            Payload::OpenIssue { .. } => self.thread_event(&sender, &id, "opened", Extra::None),
            Payload::OpenPull { .. } => self.pull_event(&sender, &id, "opened", Extra::None),
            Payload::EditThread { thread, edit } => {
                let action = match edit.open {
                    Some(false) => Some("closed"),
                    Some(true) => Some("reopened"),
                    None if edit.title.is_some() || edit.body.is_some() || edit.base.is_some() => {
                        Some("edited")
                    }
                    None => match edit.draft {
                        Some(true) => Some("converted_to_draft"),
                        Some(false) => Some("ready_for_review"),
                        None => None,
                    },
                };
                if let Some(action) = action {
                    self.thread_event(&sender, thread, action, Extra::None);
                }
            }
            Payload::LabelThread {
                thread,
                add,
                remove,
            } => {
                for (names, action) in [(add, "labeled"), (remove, "unlabeled")] {
                    for name in names {
                        self.thread_event(
                            &sender,
                            thread,
                            action,
                            Extra::Label(name.to_lowercase()),
                        );
                    }
                }
            }
            Payload::AssignThread {
                thread,
                as_,
                add,
                remove,
            } => {
                let (added, removed) = match as_ {
                    Assignment::Assignee => ("assigned", "unassigned"),
                    Assignment::Reviewer => ("review_requested", "review_request_removed"),
                };
                for (keys, action) in [(add, added), (remove, removed)] {
                    for key in keys {
                        let extra = match as_ {
                            Assignment::Assignee => Extra::Assignee(*key),
                            Assignment::Reviewer => Extra::Reviewer(*key),
                        };
                        self.thread_event(&sender, thread, action, extra);
                    }
                }
            }
            Payload::Comment { .. } => self.comment_event(&sender, &id, "created"),
            Payload::EditComment {
                comment,
                body: Some(_),
            } => self.comment_event(&sender, comment, "edited"),
            Payload::Review { pull, comments, .. } => {
                self.review_event(&sender, &id, pull);
                for index in 0..comments.len() {
                    self.review_comment_event(&sender, &id, pull, index, "created");
                }
            }
            Payload::EditReviewComment {
                review,
                index,
                body,
            } => {
                let pull = self.view.state.collab.reviews.get(review).map(|r| r.pull);
                if let (Some(pull), Some(_)) = (pull, body) {
                    let index = usize::try_from(*index).unwrap_or(usize::MAX);
                    self.review_comment_event(&sender, review, &pull, index, "edited");
                }
            }
            Payload::SetStatus { commit, .. } => self.status_event(&sender, &id, commit),
            Payload::SetHook {
                hook: None,
                config: Some(_),
            } => {
                if let Some(rendered) = self.ping(&sender, &id) {
                    self.out.push(rendered);
                }
            }
            Payload::UpdateRepo {
                description,
                private,
                default_branch,
            } => {
                match private {
                    Some(true) => self.repository_event(&sender, "privatized", None),
                    Some(false) => self.repository_event(&sender, "publicized", None),
                    None => {}
                }
                if description.is_some() || default_branch.is_some() {
                    self.repository_event(&sender, "edited", Some(serde_json::json!({})));
                }
            }
            Payload::RepoSettings {
                name,
                homepage,
                has_issues,
                archived,
            } => {
                if name.is_some() {
                    self.repository_event(&sender, "renamed", None);
                }
                match archived {
                    Some(true) => self.repository_event(&sender, "archived", None),
                    Some(false) => self.repository_event(&sender, "unarchived", None),
                    None => {}
                }
                if homepage.is_some() || has_issues.is_some() {
                    self.repository_event(&sender, "edited", Some(serde_json::json!({})));
                }
            }
            Payload::DeleteRepo => self.repository_event(&sender, "deleted", None),
            Payload::SetRole { user, role } => {
                let action = if role.is_some() { "added" } else { "removed" };
                let member = self.render.user(user);
                self.emit(
                    "member",
                    Some(action),
                    &sender,
                    MemberBody {
                        member,
                        changes: None,
                    },
                );
            }
            Payload::CreateRepo { .. }
            | Payload::SetOrgAccess { .. }
            | Payload::SetBranchProtection { .. }
            | Payload::SetLabel { .. }
            | Payload::EditComment { .. }
            | Payload::SetHook { .. } => {}
            Payload::CreateCheckRun { .. } => {
                self.check_run_event(&sender, id.numeric(), "created")
            }
            Payload::UpdateCheckRun { run, fields } => {
                let completed = fields.conclusion.is_some()
                    || fields.status == Some(guts_core::check_runs::CheckStatus::Completed);
                if completed {
                    self.check_run_event(&sender, run.numeric(), "completed");
                }
            }
            // Payloads newer than this mapping have no event yet.
            _ => {}
        }
        self.out
    }

    /// A `ping` to hook `hook`, sent by `sender`.
    pub(crate) fn ping(&self, sender: &Shared<SimpleUser>, hook: &OpId) -> Option<Rendered> {
        let view = crate::webhooks::hook_view(self.state, self.links, self.view, hook)?;
        let body = PingBody {
            zen: "Keep it logically awesome.",
            hook_id: view.id,
            hook: view,
        };
        let json = self.envelope(None, sender, body)?;
        Some(Rendered {
            event: "ping",
            action: None,
            json,
            only: Some(*hook),
        })
    }

    /// The latest push to the default branch, for `POST hooks/{id}/tests`.
    pub(crate) fn test_push(mut self, sender: &Shared<SimpleUser>) -> Option<Rendered> {
        let meta = self.view.state.meta.as_ref()?;
        let branch = format!("refs/heads/{}", meta.default_branch);
        let tip = self.view.state.refs.get(&branch)?.target;
        let parent = self
            .browser
            .as_ref()
            .and_then(|b| b.commit(tip.as_bytes()).ok())
            .and_then(|c| c.parents.first().copied())
            .map(ObjectId::from_bytes);
        self.push(sender, &branch, parent, Some(tip), false);
        self.out.pop()
    }

    fn pull_base(&self, pull: &OpId) -> Option<String> {
        let thread = self.view.state.collab.threads.get(pull)?;
        Some(format!("refs/heads/{}", thread.pull.as_ref()?.base))
    }

    fn envelope<T: Serialize>(
        &self,
        action: Option<&'static str>,
        sender: &Shared<SimpleUser>,
        body: T,
    ) -> Option<String> {
        let envelope = Envelope {
            action,
            body,
            repository: self.render.repository()?,
            sender: sender.clone(),
        };
        serde_json::to_string(&envelope).ok()
    }

    fn emit<T: Serialize>(
        &mut self,
        event: &'static str,
        action: Option<&'static str>,
        sender: &Shared<SimpleUser>,
        body: T,
    ) {
        if let Some(json) = self.envelope(action, sender, body) {
            self.out.push(Rendered {
                event,
                action,
                json,
                only: None,
            });
        }
    }

    fn ref_update(
        &mut self,
        sender: &Shared<SimpleUser>,
        name: &str,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        force: bool,
    ) {
        let kind = if let Some(short) = name.strip_prefix("refs/heads/") {
            Some((short, "branch"))
        } else {
            name.strip_prefix("refs/tags/").map(|short| (short, "tag"))
        };
        if let (Some((short, ref_type)), None) = (kind, old) {
            let meta = self.view.state.meta.as_ref();
            let body = RefBody {
                reference: short.to_string(),
                ref_type,
                master_branch: meta.map(|m| m.default_branch.clone()),
                description: Some(
                    meta.map(|m| m.description.clone())
                        .filter(|d| !d.is_empty()),
                ),
                pusher_type: "user",
            };
            self.emit("create", None, sender, body);
        }
        if let (Some((short, ref_type)), None) = (kind, new) {
            let body = RefBody {
                reference: short.to_string(),
                ref_type,
                master_branch: None,
                description: None,
                pusher_type: "user",
            };
            self.emit("delete", None, sender, body);
        }
        self.push(sender, name, old, new, force);
    }

    fn push(
        &mut self,
        sender: &Shared<SimpleUser>,
        name: &str,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        forced: bool,
    ) {
        let before = old.map_or_else(|| ZERO.to_string(), |o| o.to_string());
        let after = new.map_or_else(|| ZERO.to_string(), |o| o.to_string());
        let mut commits = Vec::new();
        if let (Some(browser), Some(new)) = (&self.browser, new) {
            let listed = match old {
                Some(old) => browser
                    .compare(old.as_bytes(), new.as_bytes())
                    .map(|c| c.ahead)
                    .unwrap_or_default(),
                None => vec![*new.as_bytes()],
            };
            let skip = listed.len().saturating_sub(MAX_PUSH_COMMITS);
            for id in listed.into_iter().skip(skip) {
                if let Some(commit) = self.push_commit(browser, &id) {
                    commits.push(commit);
                }
            }
        }
        let head_commit = match (&self.browser, new) {
            (Some(browser), Some(new)) => self.push_commit(browser, new.as_bytes()),
            _ => None,
        };
        let login = sender.login().to_string();
        let body = PushBody {
            compare: self.links.web(&format!(
                "/{}/compare/{}...{}",
                self.render.full_name(),
                before.get(..12).unwrap_or(&before),
                after.get(..12).unwrap_or(&after)
            )),
            reference: name.to_string(),
            before,
            after,
            created: old.is_none(),
            deleted: new.is_none(),
            forced,
            base_ref: None,
            commits,
            head_commit,
            pusher: GitPerson {
                email: Some(guts_service::noreply_email(&login)),
                name: login,
                username: None,
            },
        };
        self.emit("push", None, sender, body);
    }

    fn push_commit(&self, browser: &Browser, id: &[u8; 20]) -> Option<PushCommit> {
        let info = browser.commit(id).ok()?;
        let (mut added, mut removed, mut modified) = (Vec::new(), Vec::new(), Vec::new());
        for change in browser.commit_changes(&info).unwrap_or_default() {
            use guts_storage::browse::ChangeStatus;
            match change.status {
                ChangeStatus::Added => added.push(change.path),
                ChangeStatus::Removed => removed.push(change.path),
                ChangeStatus::Modified => modified.push(change.path),
                ChangeStatus::Renamed => {
                    if let Some(old) = change.previous_path {
                        removed.push(old);
                    }
                    added.push(change.path);
                }
            }
        }
        let sha = hex::encode(info.id);
        let person = |s: &guts_storage::browse::Signature| GitPerson {
            name: s.name.clone(),
            email: Some(s.email.clone()),
            username: None,
        };
        Some(PushCommit {
            url: self
                .links
                .web(&format!("/{}/commit/{sha}", self.render.full_name())),
            tree_id: hex::encode(info.tree),
            id: sha,
            distinct: true,
            message: info.message.clone(),
            timestamp: git_time(info.committer.seconds),
            author: person(&info.author),
            committer: person(&info.committer),
            added,
            removed,
            modified,
        })
    }

    /// An `issues` or `pull_request` event about thread `id`.
    fn thread_event(
        &mut self,
        sender: &Shared<SimpleUser>,
        id: &OpId,
        action: &'static str,
        extra: Extra,
    ) {
        let is_pull = self
            .view
            .state
            .collab
            .threads
            .get(id)
            .is_some_and(|t| t.pull.is_some());
        if is_pull {
            self.pull_event(sender, id, action, extra);
            return;
        }
        let state = &self.view.state;
        let Some(thread) = state.collab.threads.get(id) else {
            return;
        };
        let label = match &extra {
            Extra::Label(key) => state.collab.labels.get(key).map(|d| self.render.label(d)),
            _ => None,
        };
        let assignee = match &extra {
            Extra::Assignee(key) => Some(Some(self.render.user(key))),
            _ => None,
        };
        // A body that cannot be read is logged where the store failed; the event is
        // not sent half-rendered.
        let Ok(issue) = self.render.issue(id, thread) else {
            return;
        };
        let body = IssueBody {
            changes: (action == "edited").then(Changes::default),
            issue,
            label,
            assignee,
        };
        self.emit("issues", Some(action), sender, body);
    }

    fn pull_event(
        &mut self,
        sender: &Shared<SimpleUser>,
        id: &OpId,
        action: &'static str,
        extra: Extra,
    ) {
        let state = &self.view.state;
        let Some(thread) = state.collab.threads.get(id) else {
            return;
        };
        let Some(pull) = thread.pull.as_ref() else {
            return;
        };
        let label = match &extra {
            Extra::Label(key) => state.collab.labels.get(key).map(|d| self.render.label(d)),
            _ => None,
        };
        let assignee = match &extra {
            Extra::Assignee(key) => Some(Some(self.render.user(key))),
            _ => None,
        };
        let requested_reviewer = match &extra {
            Extra::Reviewer(key) => Some(self.render.user(key)),
            _ => None,
        };
        let stats = self.browser.as_ref().and_then(|b| {
            let (base, head) = guts_service::pull_range(state, pull);
            pull_stats(b, base, head)
        });
        let Ok(pull_request) = self.render.pull(id, thread, pull, None, stats) else {
            return;
        };
        let body = PullBody {
            changes: (action == "edited").then(Changes::default),
            number: thread.number,
            pull_request,
            label,
            assignee,
            requested_reviewer,
        };
        self.emit("pull_request", Some(action), sender, body);
    }

    fn comment_event(&mut self, sender: &Shared<SimpleUser>, id: &OpId, action: &'static str) {
        let state = &self.view.state;
        let Some(comment) = state.collab.comments.get(id) else {
            return;
        };
        let Some(thread) = state.collab.threads.get(&comment.thread) else {
            return;
        };
        let (Ok(issue), Ok(comment)) = (
            self.render.issue(&comment.thread, thread),
            self.render.comment(id, comment),
        ) else {
            return;
        };
        let body = IssueCommentBody {
            changes: (action == "edited").then(Changes::default),
            issue,
            comment,
        };
        self.emit("issue_comment", Some(action), sender, body);
    }

    fn review_event(&mut self, sender: &Shared<SimpleUser>, id: &OpId, pull_id: &OpId) {
        let state = &self.view.state;
        let (Some(review), Some(thread)) = (
            state.collab.reviews.get(id),
            state.collab.threads.get(pull_id),
        ) else {
            return;
        };
        let Some(pull) = thread.pull.as_ref() else {
            return;
        };
        let (Ok(review), Ok(pull_request)) = (
            self.render.review(id, review),
            self.render.pull(pull_id, thread, pull, None, None),
        ) else {
            return;
        };
        let body = ReviewBody {
            review,
            pull_request,
        };
        self.emit("pull_request_review", Some("submitted"), sender, body);
    }

    fn review_comment_event(
        &mut self,
        sender: &Shared<SimpleUser>,
        id: &OpId,
        pull_id: &OpId,
        index: usize,
        action: &'static str,
    ) {
        let state = &self.view.state;
        let (Some(review), Some(thread)) = (
            state.collab.reviews.get(id),
            state.collab.threads.get(pull_id),
        ) else {
            return;
        };
        let (Some(pull), Some(Ok(comment))) = (
            thread.pull.as_ref(),
            self.render.review_comment(id, review, index),
        ) else {
            return;
        };
        let Ok(pull_request) = self.render.pull(pull_id, thread, pull, None, None) else {
            return;
        };
        let body = ReviewCommentBody {
            comment,
            pull_request,
        };
        self.emit("pull_request_review_comment", Some(action), sender, body);
    }

    fn status_event(&mut self, sender: &Shared<SimpleUser>, id: &OpId, commit: &ObjectId) {
        let state = &self.view.state;
        let Some(status) = state
            .checks
            .statuses
            .get(commit)
            .and_then(|contexts| contexts.values().flatten().find(|s| s.op == *id))
        else {
            return;
        };
        let sha = commit.to_string();
        let full = self.render.full_name();
        let info = self
            .browser
            .as_ref()
            .and_then(|b| b.commit(commit.as_bytes()).ok());
        let git_commit = info.as_ref().map_or(serde_json::Value::Null, |c| {
            let person = |s: &guts_storage::browse::Signature| {
                serde_json::json!({
                    "name": s.name, "email": s.email,
                    "date": git_time(s.seconds),
                })
            };
            serde_json::json!({
                "author": person(&c.author),
                "committer": person(&c.committer),
                "message": c.message,
                "tree": {"sha": hex::encode(c.tree), "url": self.links.api(&format!("/repos/{full}/git/trees/{}", hex::encode(c.tree)))},
                "url": self.links.api(&format!("/repos/{full}/git/commits/{sha}")),
                "comment_count": 0,
                "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null},
            })
        });
        let parents = info.as_ref().map_or_else(Vec::new, |c| {
            c.parents
                .iter()
                .map(|p| {
                    let p = hex::encode(p);
                    serde_json::json!({
                        "sha": p,
                        "url": self.links.api(&format!("/repos/{full}/commits/{p}")),
                        "html_url": self.links.web(&format!("/{full}/commit/{p}")),
                    })
                })
                .collect()
        });
        let branches = state
            .refs
            .iter()
            .filter(|(name, r)| name.starts_with("refs/heads/") && r.target == *commit)
            .filter_map(|(name, _)| name.strip_prefix("refs/heads/"))
            .map(|name| {
                serde_json::json!({
                    "name": name,
                    "commit": {"sha": sha, "url": self.links.api(&format!("/repos/{full}/commits/{sha}"))},
                    "protected": state.protections.contains_key(&format!("refs/heads/{name}")),
                })
            })
            .collect();
        let at = iso8601(status.at.wall_ms / 1000);
        let body = StatusBody {
            id: numeric_id(status.op.as_bytes()),
            name: full.clone(),
            target_url: status.target_url.as_deref(),
            context: &status.context,
            description: status.description.as_deref(),
            state: status.state.as_str(),
            commit: StatusCommit {
                node_id: format!("C_{sha}"),
                url: self.links.api(&format!("/repos/{full}/commits/{sha}")),
                html_url: self.links.web(&format!("/{full}/commit/{sha}")),
                comments_url: self
                    .links
                    .api(&format!("/repos/{full}/commits/{sha}/comments")),
                commit: git_commit,
                author: None,
                committer: None,
                parents,
                sha: sha.clone(),
            },
            branches,
            created_at: at.clone(),
            updated_at: at,
            sha,
        };
        self.emit("status", None, sender, body);
    }

    fn check_run_event(&mut self, sender: &Shared<SimpleUser>, number: u64, action: &'static str) {
        let repo = Repo {
            view: self.view.clone(),
            full: self.render.full_name(),
            default_branch: self
                .view
                .state
                .meta
                .as_ref()
                .map(|m| m.default_branch.clone())
                .unwrap_or_default(),
            links: self.links.clone(),
        };
        let Some(run) = repo.view.state.checks.runs.by_number(number) else {
            return;
        };
        let mut check_run = Runs::new(&repo).render(run);
        // The event's schema has these as strings where the REST answer has nulls.
        check_run.external_id = Some(check_run.external_id.unwrap_or(""));
        check_run.details_url = Some(check_run.details_url.unwrap_or(""));
        check_run.html_url = Some(repo.web(&format!("/runs/{}", check_run.id)));
        let body = CheckRunBody { check_run };
        self.emit("check_run", Some(action), sender, body);
    }

    fn repository_event(
        &mut self,
        sender: &Shared<SimpleUser>,
        action: &'static str,
        changes: Option<serde_json::Value>,
    ) {
        self.emit(
            "repository",
            Some(action),
            sender,
            RepositoryBody { changes },
        );
    }
}

/// What a thread event names besides the thread.
enum Extra {
    None,
    /// A label, by its key (lowercase name).
    Label(String),
    Assignee(PublicKey),
    Reviewer(PublicKey),
}

/// A git timestamp as GitHub writes it (UTC).
fn git_time(seconds: i64) -> String {
    iso8601(u64::try_from(seconds).unwrap_or(0))
}
