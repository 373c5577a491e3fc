//! Issues: the list with its state filter, opening one, reading one with its comments,
//! commenting, closing and reopening. Comments and state changes also serve pull
//! requests (they are threads too), as GitHub's `issues/{n}/comments` does.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use guts_core::Role;
use guts_service::{IssueChange, NewIssue};
use maud::html;
use serde::Deserialize;

use crate::WebState;
use crate::conversation::{self, TitleBody, comment_form, sidebar, state_badge, thread_posts};
use crate::error::WebError;
use crate::page::{self, Tab, csrf_field, repo_header, repo_path};
use crate::repo;
use crate::session::{Posted, Viewer};

/// Threads per page of a list.
const PER_PAGE: usize = 50;

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    state: Option<String>,
    labels: Option<String>,
    assignee: Option<String>,
    creator: Option<String>,
    page: Option<usize>,
}

/// The issues, open ones first by default.
pub(super) async fn list(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let base = repo_path(&access);
    let filter = conversation::list_state(query.state.as_deref());
    let page_no = query.page.unwrap_or(1).clamp(1, 100_000);
    let blank = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let (labels, assignee, creator) = (
        blank(&query.labels),
        blank(&query.assignee),
        blank(&query.creator),
    );
    let wanted = state.service.thread_filter(
        Some(filter),
        labels.as_deref(),
        assignee.as_deref(),
        creator.as_deref(),
        None,
    )?;
    let found = conversation::threads(&access.view, false, &wanted);
    // The pager keeps the filters.
    let kept: String = [
        ("labels", &labels),
        ("assignee", &assignee),
        ("creator", &creator),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        v.as_deref()
            .map(|v| format!("&{k}={}", page::query_escape(v)))
    })
    .collect();
    let more = found.len() > page_no * PER_PAGE;
    let body = html! {
        (repo_header(&access, Tab::Issues))
        div.box {
            div.box-header {
                (conversation::state_tabs(&format!("{base}/issues"), filter))
                a #new-issue href=(format!("{base}/issues/new")) { "New issue" }
                form #issue-filters method="get" action=(format!("{base}/issues")) {
                    input type="hidden" name="state" value=(filter);
                    label for="filter-labels" { "Labels" } " "
                    input #filter-labels type="text" name="labels" size="12" value=[labels.as_deref()];
                    " " label for="filter-assignee" { "Assignee" } " "
                    input #filter-assignee type="text" name="assignee" size="10" value=[assignee.as_deref()];
                    " " label for="filter-creator" { "Author" } " "
                    input #filter-creator type="text" name="creator" size="10" value=[creator.as_deref()];
                    " " button type="submit" { "Filter" }
                }
            }
            ul.list #issues {
                @for (_, thread) in found.iter().skip((page_no - 1) * PER_PAGE).take(PER_PAGE) {
                    (conversation::thread_item(&state, &base, thread, "issues", "issue-link"))
                }
                @if found.is_empty() { li.muted { "No issues here." } }
            }
        }
        nav.pager aria-label="Pages" {
            @if page_no > 1 { a #prev-page href=(format!("{base}/issues?state={filter}{kept}&page={}", page_no - 1)) { "Previous" } }
            @if more { a #next-page href=(format!("{base}/issues?state={filter}{kept}&page={}", page_no + 1)) { "Next" } }
        }
    };
    let title = format!("Issues · {}/{}", access.served.owner, access.served.name);
    Ok(page::page(&viewer, &title, body))
}

/// The form that opens an issue.
pub(super) async fn new_form(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, WebError> {
    viewer.require()?;
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let base = repo_path(&access);
    let body = html! {
        (repo_header(&access, Tab::Issues))
        form #issue-form.stack method="post" action=(format!("{base}/issues/new")) {
            (csrf_field(&viewer))
            label for="title" { "Title" }
            input #title type="text" name="title" required maxlength="256";
            label for="body" { "Description (Markdown)" }
            textarea #body name="body" maxlength="65536" {}
            button #submit-issue.primary type="submit" { "Submit new issue" }
        }
    };
    Ok(page::page(&viewer, "New issue", body))
}

/// Opens the issue and shows it.
pub(super) async fn create(
    State(state): State<WebState>,
    Path((owner, name)): Path<(String, String)>,
    Posted { viewer, form }: Posted<TitleBody>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let new = NewIssue {
        body: form.body(),
        title: form.title,
        ..NewIssue::default()
    };
    let (view, id) = state.service.open_issue(authed, &access.view, new).await?;
    let number = conversation::number_of(&view, &id)?;
    Ok(Redirect::to(&format!("{}/issues/{number}", repo_path(&access))).into_response())
}

/// One issue and its conversation (a pull request's number goes to its page).
pub(super) async fn view(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((owner, name, number)): Path<(String, String, u64)>,
) -> Result<Response, WebError> {
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let base = repo_path(&access);
    let (_, thread) = guts_service::find_thread(&access.view, number)?;
    if thread.pull.is_some() {
        return Ok(Redirect::to(&format!("{base}/pull/{number}")).into_response());
    }
    let posts = thread_posts(&state, &access.view, thread, "issue-body")?;
    let body = html! {
        (repo_header(&access, Tab::Issues))
        h1 { span #issue-title { (thread.title) } " " span.muted { "#" (thread.number) } }
        p { (state_badge(thread, "issue-state")) }
        div.grid {
            div {
                (posts)
                (comment_form(&viewer, &base, thread, "issue"))
            }
            (sidebar(&state, &access.view, thread, (access.role >= Some(Role::Write)).then(|| (&viewer, format!("{base}/issues/{number}/triage")))))
        }
    };
    let title = format!("{} · Issue #{number}", thread.title);
    Ok(page::page(&viewer, &title, body))
}

#[derive(Debug, Deserialize)]
pub(super) struct CommentForm {
    #[serde(default)]
    body: String,
}

/// Where thread `number`'s page is.
fn thread_page(access: &guts_service::RepoAccess, number: u64) -> String {
    let pull = guts_service::find_thread(&access.view, number).is_ok_and(|(_, t)| t.pull.is_some());
    let kind = if pull { "pull" } else { "issues" };
    format!("{}/{kind}/{number}", repo_path(access))
}

/// Comments on an issue or a pull request.
pub(super) async fn comment(
    State(state): State<WebState>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    Posted { viewer, form }: Posted<CommentForm>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let access = repo::find(&state, &viewer, &owner, &name)?;
    state
        .service
        .comment(authed, &access.view, number, form.body)
        .await?;
    Ok(Redirect::to(&thread_page(&access, number)).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct StateForm {
    #[serde(default)]
    state: String,
}

/// Closes or reopens an issue or a pull request.
pub(super) async fn set_state(
    State(state): State<WebState>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    Posted { viewer, form }: Posted<StateForm>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let open = match form.state.as_str() {
        "open" => true,
        "closed" => false,
        _ => return Err(WebError::bad_request("state must be open or closed")),
    };
    state
        .service
        .set_thread_open(authed, &access.view, number, open)
        .await?;
    Ok(Redirect::to(&thread_page(&access, number)).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct TriageForm {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    assignees: String,
}

/// The comma-separated names of a form field, each once, blanks dropped.
fn names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    names.dedup();
    names
}

/// Sets the labels and assignees of an issue or a pull request (writers).
pub(super) async fn triage(
    State(state): State<WebState>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    Posted { viewer, form }: Posted<TriageForm>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let change = IssueChange {
        labels: Some(names(&form.labels)),
        assignees: Some(names(&form.assignees)),
        ..IssueChange::default()
    };
    state
        .service
        .edit_issue(authed, &access.view, number, change)
        .await?;
    Ok(Redirect::to(&thread_page(&access, number)).into_response())
}
