//! What issue and pull request pages share: a thread's state badge, its body and
//! comments rendered as sanitised Markdown, the comment form, and lists of threads.

use guts_core::{OpId, PublicKey, Thread};
use guts_service::ThreadFilter;
use guts_storage::RepoView;
use maud::{Markup, PreEscaped, html};

use crate::WebState;
use crate::error::WebError;
use crate::markup::markdown;
use crate::page::{self, csrf_field};
use crate::session::Viewer;

/// Who `key` is, for people: their login, or a short key for an unknown author.
pub(crate) fn author(state: &WebState, key: &PublicKey) -> String {
    state.service.login_of(key).unwrap_or_else(|| {
        let key = key.to_string();
        format!("key:{}", key.get(..12).unwrap_or(&key))
    })
}

/// `Open`, `Closed` or `Merged`, with the element id `id`.
pub(crate) fn state_badge(thread: &Thread, id: &str) -> Markup {
    let (class, word) = match (&thread.pull, thread.open) {
        (Some(pull), _) if pull.merged.is_some() => ("state state-merged", "Merged"),
        (_, true) => ("state state-open", "Open"),
        (_, false) => ("state state-closed", "Closed"),
    };
    html! { span id=(id) class=(class) { (word) } }
}

/// A comment (or a thread's first post): who, when, and the sanitised body.
pub(crate) fn comment_box(
    state: &WebState,
    who: &PublicKey,
    at_ms: u64,
    body: &str,
    body_id: Option<&str>,
) -> Markup {
    html! {
        div.comment {
            div.comment-header { strong { (author(state, who)) } " commented " (page::time(at_ms / 1000)) }
            div.comment-body.markdown-body id=[body_id] {
                @if body.trim().is_empty() { p.muted { "No description provided." } }
                @else { (PreEscaped(markdown::render(body))) }
            }
        }
    }
}

/// A thread's opening post and its comments, oldest first, their bodies read from
/// the operation log.
pub(crate) fn thread_posts(
    state: &WebState,
    view: &RepoView,
    thread: &Thread,
    body_id: &str,
) -> Result<Markup, WebError> {
    let texts = state.service.texts();
    let opening = texts.get(&thread.body)?;
    let comments = thread
        .comments
        .iter()
        .filter_map(|id| view.state.collab.comments.get(id))
        .map(|c| Ok((c, texts.get(&c.body)?)))
        .collect::<Result<Vec<_>, WebError>>()?;
    Ok(html! {
        (comment_box(state, &thread.author, thread.created_at.wall_ms, &opening, Some(body_id)))
        @for (c, body) in &comments {
            (comment_box(state, &c.author, c.created_at.wall_ms, body, None))
        }
    })
}

/// Labels and assignees of a thread, and for writers (`edit` is where the form posts)
/// the form that changes them.
pub(crate) fn sidebar(
    state: &WebState,
    view: &RepoView,
    thread: &Thread,
    edit: Option<(&Viewer, String)>,
) -> Markup {
    let labels = &view.state.collab.labels;
    let current_labels: Vec<&str> = thread
        .labels
        .iter()
        .map(|n| labels.get(n).map_or(n.as_str(), |l| l.name.as_str()))
        .collect();
    let current_assignees: Vec<String> =
        thread.assignees.iter().map(|k| author(state, k)).collect();
    html! {
        aside aria-label="Details" {
            h2 { "Labels" }
            p {
                @for name in &thread.labels {
                    span.label { (labels.get(name).map_or(name.as_str(), |l| l.name.as_str())) } " "
                }
                @if thread.labels.is_empty() { span.muted { "None yet" } }
            }
            h2 { "Assignees" }
            p {
                @for login in &current_assignees { span.assignee { (login) } " " }
                @if thread.assignees.is_empty() { span.muted { "No one assigned" } }
            }
            @if let Some((viewer, action)) = edit {
                form #triage-form.stack method="post" action=(action) {
                    (csrf_field(viewer))
                    label for="triage-labels" { "Labels (comma-separated)" }
                    input #triage-labels type="text" name="labels" value=(current_labels.join(", "));
                    label for="triage-assignees" { "Assignees (logins, comma-separated)" }
                    input #triage-assignees type="text" name="assignees" value=(current_assignees.join(", "));
                    button #save-triage type="submit" { "Save" }
                }
            }
        }
    }
}

/// The comment form of thread `number`, and its close or reopen button, for a signed-in
/// viewer; a sign-in link otherwise.
pub(crate) fn comment_form(viewer: &Viewer, base: &str, thread: &Thread, kind: &str) -> Markup {
    let number = thread.number;
    let merged = thread.pull.as_ref().is_some_and(|p| p.merged.is_some());
    html! {
        @if viewer.authed.is_some() {
            form #comment-form.stack method="post" action=(format!("{base}/issues/{number}/comments")) {
                (csrf_field(viewer))
                label for="comment-body" { "Add a comment" }
                textarea #comment-body name="body" required maxlength="65536" {}
                button #submit-comment.primary type="submit" { "Comment" }
            }
            @if !merged {
                form method="post" action=(format!("{base}/issues/{number}/state")) {
                    (csrf_field(viewer))
                    @if thread.open {
                        input type="hidden" name="state" value="closed";
                        button #close-issue type="submit" { "Close " (kind) }
                    } @else {
                        input type="hidden" name="state" value="open";
                        button #reopen-issue type="submit" { "Reopen " (kind) }
                    }
                }
            }
        } @else {
            p { a href=(format!("/login?return_to={}", page::query_escape(&viewer.path))) { "Sign in" } " to comment." }
        }
    }
}

/// One line of a thread list.
pub(crate) fn thread_item(
    state: &WebState,
    base: &str,
    thread: &Thread,
    path: &str,
    link_class: &str,
) -> Markup {
    html! {
        li {
            (state_badge(thread, &format!("state-{}", thread.number)))
            " "
            a class=(link_class) href=(format!("{base}/{path}/{}", thread.number)) { (thread.title) }
            div.meta {
                "#" (thread.number) " opened " (page::time(thread.created_at.wall_ms / 1000))
                " by " (author(state, &thread.author))
                @if !thread.comments.is_empty() { " · " (thread.comments.len()) " comments" }
            }
        }
    }
}

/// The threads of `view` (pull requests when `pulls`) that `filter` keeps, newest
/// first.
pub(crate) fn threads<'a>(
    view: &'a RepoView,
    pulls: bool,
    filter: &ThreadFilter,
) -> Vec<(&'a OpId, &'a Thread)> {
    let mut found: Vec<(&OpId, &Thread)> = view
        .state
        .collab
        .threads
        .iter()
        .filter(|(_, t)| t.pull.is_some() == pulls && filter.matches(t))
        .collect();
    found.sort_by_key(|(_, t)| std::cmp::Reverse(t.number));
    found
}

/// The state a list shows, from its `state` query: `open` unless `closed` or `all`.
pub(crate) fn list_state(query: Option<&str>) -> &'static str {
    match query {
        Some("closed") => "closed",
        Some("all") => "all",
        _ => "open",
    }
}

/// The open, closed and all links of a list at `list` (`{base}/issues`), `current`
/// marked.
pub(crate) fn state_tabs(list: &str, current: &str) -> Markup {
    html! {
        nav aria-label="Filter" {
            @for (state, word) in [("open", "Open"), ("closed", "Closed"), ("all", "All")] {
                @if state != "open" { " · " }
                a href=(format!("{list}?state={state}")) aria-current=[(state == current).then_some("page")] { (word) }
            }
        }
    }
}

/// The title and body a new issue or pull request is opened with.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TitleBody {
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) body: String,
}

impl TitleBody {
    /// The body, `None` when left empty.
    pub(crate) fn body(&self) -> Option<String> {
        (!self.body.is_empty()).then(|| self.body.clone())
    }
}

/// The number of thread `id` in `view` (one the caller just opened), or an internal
/// error.
pub(crate) fn number_of(view: &RepoView, id: &OpId) -> Result<u64, WebError> {
    view.state
        .collab
        .threads
        .get(id)
        .map(|t| t.number)
        .ok_or_else(WebError::internal)
}
