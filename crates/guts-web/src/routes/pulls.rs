//! Pull requests: the list, comparing two branches (and opening a pull request from
//! the comparison), a pull request's conversation with its reviews and why it cannot
//! merge yet, its files as a diff, reviewing and merging.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use guts_core::{Role, Verdict};
use guts_service::{MergeInput, NewPull, RepoAccess, ReviewInput, parse_merge_method, pull_range};
use guts_storage::BrowseError;
use guts_storage::browse::FileChange;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use crate::WebState;
use crate::conversation::{
    self, TitleBody, author, comment_form, sidebar, state_badge, thread_posts,
};
use crate::diffs::diff_view;
use crate::error::WebError;
use crate::markup::markdown;
use crate::page::{self, Tab, csrf_field, path_escape, repo_header, repo_path, short};
use crate::repo::{self, browse, default_branch, hex, title_of};
use crate::session::{Posted, Viewer};

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    state: Option<String>,
}

/// The pull requests, open ones by default.
pub(super) async fn list(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let base = repo_path(&access);
    let filter = conversation::list_state(query.state.as_deref());
    let wanted = state
        .service
        .thread_filter(Some(filter), None, None, None, None)?;
    let found = conversation::threads(&access.view, true, &wanted);
    let body = html! {
        (repo_header(&access, Tab::Pulls))
        div.box {
            div.box-header {
                (conversation::state_tabs(&format!("{base}/pulls"), filter))
                a #new-pull href=(format!("{base}/branches")) { "Compare a branch" }
            }
            ul.list #pulls {
                @for (_, thread) in found.iter().take(200) {
                    (conversation::thread_item(&state, &base, thread, "pull", "pull-link"))
                }
                @if found.is_empty() { li.muted { "No pull requests here." } }
            }
        }
    };
    let title = format!(
        "Pull requests · {}/{}",
        access.served.owner, access.served.name
    );
    Ok(page::page(&viewer, &title, body))
}

/// The files changed from the merge base of `base` and `head` to `head`, and the
/// commits `head` brings.
async fn changes_between(
    state: &WebState,
    access: &RepoAccess,
    base: String,
    head: String,
) -> Result<(Vec<FileChange>, Vec<(String, String)>), WebError> {
    browse(state, access, move |b| {
        let base = b.resolve(&base)?;
        let head = b.resolve(&head)?;
        let comparison = b.compare(&base, &head)?;
        let old_tree = match comparison.merge_base {
            Some(id) => Some(b.commit(&id)?.tree),
            None => None,
        };
        let new_tree = b.commit(&head)?.tree;
        let changes = b.diff(old_tree.as_ref(), &new_tree)?;
        let commits = comparison
            .ahead
            .iter()
            .rev()
            .take(250)
            .map(|id| {
                b.commit(id)
                    .map(|c| (hex(&c.id), title_of(&c.message).to_string()))
            })
            .collect::<Result<Vec<_>, BrowseError>>()?;
        Ok((changes, commits))
    })
    .await
}

fn commit_list(base: &str, commits: &[(String, String)]) -> Markup {
    html! {
        ul.list.box #pull-commits {
            @for (sha, title) in commits {
                li.commit {
                    a.commit-link href=(format!("{base}/commit/{sha}")) { (title) }
                    " " code.meta { (short(sha)) }
                }
            }
            @if commits.is_empty() { li.muted { "No commits." } }
        }
    }
}

/// `{base}...{head}`, or a lone head compared with the default branch.
fn parse_spec(access: &RepoAccess, spec: &str) -> (String, String) {
    match spec.split_once("...") {
        Some((base, head)) => (base.to_string(), head.to_string()),
        None => (default_branch(access), spec.to_string()),
    }
}

/// What `head` brings to `base`, with the form that opens a pull request of it.
pub(super) async fn compare(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((owner, name, spec)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let base_path = repo_path(&access);
    let (base, head) = parse_spec(&access, &spec);
    let (changes, commits) = changes_between(&state, &access, base.clone(), head.clone()).await?;
    let branches =
        access.view.state.branch(&base).is_some() && access.view.state.branch(&head).is_some();
    let existing = access.view.state.collab.threads.values().find(|t| {
        t.open
            && t.pull
                .as_ref()
                .is_some_and(|p| p.base == base && p.head == head)
    });
    let body = html! {
        (repo_header(&access, Tab::Pulls))
        h1 { "Comparing " code { (base) } " … " code { (head) } }
        @if let Some(thread) = existing {
            p.flash-notice { "There is already a pull request for these branches: "
                a href=(format!("{base_path}/pull/{}", thread.number)) { "#" (thread.number) " " (thread.title) } }
        } @else if branches && !commits.is_empty() && viewer.authed.is_some() {
            form #pull-form.stack method="post" action=(format!("{base_path}/compare/{}...{}", path_escape(&base), path_escape(&head))) {
                (csrf_field(&viewer))
                label for="title" { "Title" }
                input #title type="text" name="title" required maxlength="256" value=(commits.first().map_or("", |c| c.1.as_str()));
                label for="body" { "Description (Markdown)" }
                textarea #body name="body" maxlength="65536" {}
                button #submit-pull.primary type="submit" { "Create pull request" }
            }
        } @else if commits.is_empty() {
            p.notice { "There is nothing to compare: " (head) " has no commits that " (base) " lacks." }
        }
        h2 { (commits.len()) " commits" }
        (commit_list(&base_path, &commits))
        (diff_view(&changes))
    };
    Ok(page::page(&viewer, "Compare", body))
}

/// Opens a pull request from the comparison.
pub(super) async fn open(
    State(state): State<WebState>,
    Path((owner, name, spec)): Path<(String, String, String)>,
    Posted { viewer, form }: Posted<TitleBody>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let (base, head) = parse_spec(&access, &spec);
    let new = NewPull {
        body: form.body(),
        title: form.title,
        head,
        base,
        draft: false,
    };
    let (view, id) = state.service.open_pull(authed, &access.view, new).await?;
    let number = conversation::number_of(&view, &id)?;
    Ok(Redirect::to(&format!("{}/pull/{number}", repo_path(&access))).into_response())
}

fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Approve => "approved",
        Verdict::RequestChanges => "requested changes",
        Verdict::Comment => "commented",
    }
}

/// The header of a pull request's pages.
fn pull_header(access: &RepoAccess, thread: &guts_core::Thread, files: bool) -> Markup {
    let base = repo_path(access);
    let number = thread.number;
    let (from, into) = thread
        .pull
        .as_ref()
        .map_or(("", ""), |p| (p.head.as_str(), p.base.as_str()));
    html! {
        (repo_header(access, Tab::Pulls))
        h1 { span #pull-title { (thread.title) } " " span.muted { "#" (number) } }
        p { (state_badge(thread, "pull-state")) " wants to merge " code { (from) } " into " code { (into) } }
        nav.tabs aria-label="Pull request" {
            a #tab-conversation href=(format!("{base}/pull/{number}")) aria-current=[(!files).then_some("page")] { "Conversation" }
            a #tab-files href=(format!("{base}/pull/{number}/files")) aria-current=[files.then_some("page")] { "Files changed" }
        }
    }
}

/// A pull request's conversation: posts, reviews, the review form, and the merge box.
pub(super) async fn view(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((owner, name, number)): Path<(String, String, u64)>,
) -> Result<Response, WebError> {
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let base = repo_path(&access);
    let view = &access.view;
    let (_, thread, pull) = guts_service::find_pull(view, number)?;
    let readiness = state.service.merge_readiness(view, number)?;
    let head = guts_service::head_sha(&view.state, pull).to_string();
    let posts = thread_posts(&state, view, thread, "pull-body")?;
    let texts = state.service.texts();
    let reviews = pull
        .reviews
        .iter()
        .filter_map(|id| view.state.collab.reviews.get(id))
        .map(|review| Ok((review, texts.get(&review.body)?)))
        .collect::<Result<Vec<_>, WebError>>()?;
    let viewer_key = viewer.authed.as_ref().map(|a| a.key());
    let can_review =
        viewer_key.is_some_and(|k| k != thread.author) && thread.open && pull.merged.is_none();
    let can_merge = access.role >= Some(Role::Write) && thread.open && pull.merged.is_none();
    let body = html! {
        (pull_header(&access, thread, false))
        div.grid {
            div {
                (posts)
                @for (review, review_body) in &reviews {
                    div.review {
                        div.comment-header {
                            strong { (author(&state, &review.author)) } " "
                            span.review-state { (verdict_word(review.verdict)) }
                            " " (page::time(review.at.wall_ms / 1000))
                            " on " code { (short(&review.commit.to_string())) }
                        }
                        @if !review_body.trim().is_empty() {
                            div.comment-body.markdown-body { (PreEscaped(markdown::render(review_body))) }
                        }
                    }
                }
                @if let Some(merged) = &pull.merged {
                    p.flash-notice { (author(&state, &merged.by)) " merged this (" (merged.method.as_str()) ") into " code { (pull.base) } " as "
                        a href=(format!("{base}/commit/{}", merged.commit)) { code { (short(&merged.commit.to_string())) } } }
                } @else if thread.open {
                    section.box aria-labelledby="merge-heading" {
                        div.box-header { h2 #merge-heading { "Merge" } }
                        div.box-body {
                            @if !readiness.is_ready() {
                                ul #merge-blocked {
                                    @for blocker in &readiness.blockers { li { (blocker.to_string()) } }
                                }
                            } @else {
                                p #merge-ready { "This branch has no conflicts with the rules of " code { (pull.base) } "." }
                            }
                            @if can_merge {
                                form #merge-form.stack method="post" action=(format!("{base}/pull/{number}/merge")) {
                                    (csrf_field(&viewer))
                                    input type="hidden" name="sha" value=(head);
                                    label for="merge-method" { "Merge method" }
                                    select #merge-method name="merge_method" {
                                        option value="merge" { "Create a merge commit" }
                                        option value="squash" { "Squash and merge" }
                                        option value="rebase" { "Rebase and merge" }
                                    }
                                    button #merge-button.primary type="submit" disabled[!readiness.is_ready()] { "Merge pull request" }
                                }
                            }
                        }
                    }
                }
                @if can_review {
                    form #review-form.stack method="post" action=(format!("{base}/pull/{number}/reviews")) {
                        (csrf_field(&viewer))
                        h2 { "Review" }
                        label for="review-body" { "Comment" }
                        textarea #review-body name="body" maxlength="65536" {}
                        fieldset {
                            legend { "Verdict" }
                            label { input type="radio" name="event" value="COMMENT" checked; " Comment" }
                            label { input type="radio" name="event" value="APPROVE"; " Approve" }
                            label { input type="radio" name="event" value="REQUEST_CHANGES"; " Request changes" }
                        }
                        button #submit-review.primary type="submit" { "Submit review" }
                    }
                }
                (comment_form(&viewer, &base, thread, "pull request"))
            }
            (sidebar(&state, view, thread, (access.role >= Some(Role::Write)).then(|| (&viewer, format!("{base}/issues/{number}/triage")))))
        }
    };
    let title = format!("{} · Pull request #{number}", thread.title);
    Ok(page::page(&viewer, &title, body))
}

/// A pull request's changes as a diff.
pub(super) async fn files(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((owner, name, number)): Path<(String, String, u64)>,
) -> Result<Response, WebError> {
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let base = repo_path(&access);
    let (_, thread, pull) = guts_service::find_pull(&access.view, number)?;
    let (from, to) = pull_range(&access.view.state, pull);
    let (changes, commits) =
        changes_between(&state, &access, from.to_string(), to.to_string()).await?;
    let body = html! {
        (pull_header(&access, thread, true))
        h2 { (commits.len()) " commits" }
        (commit_list(&base, &commits))
        (diff_view(&changes))
    };
    let title = format!("{} · Files · Pull request #{number}", thread.title);
    Ok(page::page(&viewer, &title, body))
}

#[derive(Debug, Deserialize)]
pub(super) struct ReviewForm {
    #[serde(default)]
    body: String,
    #[serde(default)]
    event: String,
}

/// Submits a review.
pub(super) async fn review(
    State(state): State<WebState>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    Posted { viewer, form }: Posted<ReviewForm>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let verdict = match form.event.as_str() {
        "APPROVE" => Verdict::Approve,
        "REQUEST_CHANGES" => Verdict::RequestChanges,
        "COMMENT" => Verdict::Comment,
        _ => return Err(WebError::bad_request("Choose a verdict for the review.")),
    };
    let input = ReviewInput {
        verdict,
        body: form.body,
        commit_id: None,
        comments: Vec::new(),
    };
    state
        .service
        .submit_review(authed, &access.view, number, input)
        .await?;
    Ok(Redirect::to(&format!("{}/pull/{number}", repo_path(&access))).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct MergeForm {
    merge_method: Option<String>,
    sha: Option<String>,
}

/// Merges the pull request with the chosen method.
pub(super) async fn merge(
    State(state): State<WebState>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    Posted { viewer, form }: Posted<MergeForm>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let input = MergeInput {
        method: parse_merge_method(form.merge_method.as_deref())?,
        sha: form.sha.filter(|s| !s.is_empty()),
        commit_title: None,
        commit_message: None,
    };
    state
        .service
        .merge_pull(authed, &access.view, number, input)
        .await?;
    Ok(Redirect::to(&format!("{}/pull/{number}", repo_path(&access))).into_response())
}
