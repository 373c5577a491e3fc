//! Reading a repository's code: its home (files, README, clone URL), trees, blobs with
//! highlighting and line anchors (raw files are the git edge's `raw/` download), the
//! commit history, one commit with its
//! diff, and the branches.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use guts_service::RepoAccess;
use guts_storage::BrowseError;
use guts_storage::browse::{CommitInfo, EntryKind, LogQuery, PathContent, TreeEntry};

use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use crate::WebState;
use crate::diffs::diff_view;
use crate::error::WebError;
use crate::markup::markdown::Base;
use crate::markup::{highlight, markdown};
use crate::page::{self, Tab, path_escape, repo_header, repo_path, short};
use crate::repo::{self, browse, commit_of, default_branch, hex, split_ref, title_of};
use crate::session::Viewer;

/// Largest file shown in the blob view (bigger ones: the raw link).
const MAX_BLOB_VIEW_BYTES: u64 = 1024 * 1024;
/// Largest README rendered.
const MAX_README_BYTES: u64 = 512 * 1024;
/// Commits per page of the history.
const COMMITS_PER_PAGE: usize = 30;

/// A directory listing: directories first, then files, each by name.
fn file_table(base: &str, rev: &str, mut entries: Vec<TreeEntry>) -> Markup {
    entries.sort_by(|a, b| {
        (a.kind != EntryKind::Dir)
            .cmp(&(b.kind != EntryKind::Dir))
            .then(a.path.cmp(&b.path))
    });
    html! {
        table #files {
            @for entry in &entries {
                @let name = entry.path.rsplit('/').next().unwrap_or(&entry.path);
                @let kind = if entry.kind == EntryKind::Dir { "tree" } else { "blob" };
                tr {
                    td.kind aria-hidden="true" { @if entry.kind == EntryKind::Dir { "▸" } @else { "·" } }
                    td {
                        @if entry.kind == EntryKind::Submodule {
                            span.entry { (name) " @ " (short(&hex(&entry.id))) }
                        } @else {
                            a.entry href=(format!("{base}/{kind}/{}/{}", path_escape(rev), path_escape(&entry.path))) { (name) }
                        }
                    }
                    td.meta { @if let Some(size) = entry.size { (size) " bytes" } }
                }
            }
            @if entries.is_empty() { tr { td.muted colspan="3" { "Empty directory." } } }
        }
    }
}

/// The path crumbs of `path` at `rev`: each directory a link to its tree.
fn crumbs(base: &str, rev: &str, path: &str) -> Markup {
    let parts: Vec<(&str, &str)> = path
        .match_indices('/')
        .map(|(i, _)| i)
        .chain([path.len()])
        .filter_map(|end| {
            let prefix = path.get(..end)?;
            let name = prefix.rsplit('/').next()?;
            (!name.is_empty()).then_some((name, prefix))
        })
        .collect();
    html! {
        nav.crumbs aria-label="Path" {
            a href=(format!("{base}/tree/{}", path_escape(rev))) { (base.rsplit('/').next().unwrap_or_default()) }
            @for (name, prefix) in &parts {
                " / "
                a href=(format!("{base}/tree/{}/{}", path_escape(rev), path_escape(prefix))) { (name) }
            }
        }
    }
}

/// The branch menu: links to the same page on every branch (no script needed).
fn branch_menu(access: &RepoAccess, current: &str, kind: &str, path: &str) -> Markup {
    let base = repo_path(access);
    let branches: Vec<&str> = access
        .view
        .state
        .refs
        .keys()
        .filter_map(|r| r.strip_prefix("refs/heads/"))
        .take(200)
        .collect();
    html! {
        details #branch-menu {
            summary { "Branch: " strong #branch-name { (current) } }
            ul.list.box #branch-select {
                @for b in &branches {
                    li { a href=(format!("{base}/{kind}/{}/{}", path_escape(b), path_escape(path))) { (b) } }
                }
            }
        }
    }
}

fn latest_commit(base: &str, commit: &CommitInfo) -> Markup {
    let sha = hex(&commit.id);
    html! {
        div.box-header {
            strong { (commit.author.name) }
            a href=(format!("{base}/commit/{sha}")) { (title_of(&commit.message)) }
            span.meta { (short(&sha)) " · " (page::time(u64::try_from(commit.committer.seconds).unwrap_or(0))) }
            a href=(format!("{base}/commits")) { "History" }
        }
    }
}

/// The repository's home: clone URL, branch, files at the root, README.
pub(super) async fn home(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let base = repo_path(&access);
    let clone_url = format!("{}{base}.git", viewer.origin);
    let branch = default_branch(&access);
    let has_branch = access.view.state.branch(&branch).is_some();
    let title = format!("{}/{}", access.served.owner, access.served.name);
    let clone = html! {
        div.box-body {
            label for="clone-url" { "Clone over HTTP" }
            " "
            input #clone-url type="text" readonly value=(clone_url) size="60" aria-label="Clone URL";
        }
    };
    if !has_branch {
        let body = html! {
            (repo_header(&access, Tab::Code))
            div #empty-repo.box {
                div.box-header { strong { "This repository is empty." } }
                (clone)
                div.box-body {
                    p { "Push an existing repository:" }
                    pre { "git remote add origin " (clone_url) "\ngit push -u origin " (branch) }
                }
            }
        };
        return Ok(page::page(&viewer, &title, body));
    }
    let rev = branch.clone();
    let (commit, entries, readme) = browse(&state, &access, move |b| {
        let commit = commit_of(b, &rev)?;
        let entries = match b.at_path(&commit.id, "", 0)? {
            Some(PathContent::Dir(entries)) => entries,
            _ => Vec::new(),
        };
        let readme = b.readme(&commit.id, None, MAX_README_BYTES)?;
        Ok((commit, entries, readme))
    })
    .await?;
    // The README's relative links and images resolve against its directory.
    let readme_dir = readme
        .as_ref()
        .and_then(|r| r.entry.path.rsplit_once('/'))
        .map(|(dir, _)| format!("/{}", path_escape(dir)))
        .unwrap_or_default();
    let readme_links = format!("{base}/blob/{}{readme_dir}", path_escape(&branch));
    let readme_images = format!("{base}/raw/{}{readme_dir}", path_escape(&branch));
    let body = html! {
        (repo_header(&access, Tab::Code))
        (branch_menu(&access, &branch, "tree", ""))
        div.box { (clone) }
        div.box {
            (latest_commit(&base, &commit))
            (file_table(&base, &branch, entries))
        }
        @if let Some(readme) = readme {
            article #readme.box {
                div.box-header { strong { (readme.entry.path) } }
                div.box-body.markdown-body {
                    @match readme.data.as_deref().map(String::from_utf8_lossy) {
                        Some(text) if is_markdown(&readme.entry.path) => (PreEscaped(markdown::render_at(&text, Base { links: &readme_links, images: &readme_images }))),
                        Some(text) => pre { (text) },
                        None => p.notice { "The README is too large to show." },
                    }
                }
            }
        }
    };
    Ok(page::page(&viewer, &title, body))
}

fn is_markdown(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".md", ".markdown", ".mdown", ".mkdn"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// A directory at a ref.
pub(super) async fn tree(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((owner, name, rest)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let base = repo_path(&access);
    let (rev, path) = split_ref(&access.view.state, &rest);
    let (wanted_rev, wanted_path) = (rev.clone(), path.clone());
    let (commit, content) = browse(&state, &access, move |b| {
        let commit = commit_of(b, &wanted_rev)?;
        let content = b.at_path(&commit.id, &wanted_path, 0)?;
        Ok((commit, content))
    })
    .await?;
    let entries = match content {
        Some(PathContent::Dir(entries)) => entries,
        Some(_) => {
            return Ok(Redirect::to(&format!(
                "{base}/blob/{}/{}",
                path_escape(&rev),
                path_escape(&path)
            ))
            .into_response());
        }
        None => return Err(WebError::not_found()),
    };
    let body = html! {
        (repo_header(&access, Tab::Code))
        (branch_menu(&access, &rev, "tree", &path))
        (crumbs(&base, &rev, &path))
        div.box {
            (latest_commit(&base, &commit))
            (file_table(&base, &rev, entries))
        }
    };
    let title = format!(
        "{path} at {rev} · {}/{}",
        access.served.owner, access.served.name
    );
    Ok(page::page(&viewer, &title, body))
}

/// A file at a ref, highlighted, each line with its anchor (`#L12`).
pub(super) async fn blob(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((owner, name, rest)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let base = repo_path(&access);
    let (rev, path) = split_ref(&access.view.state, &rest);
    let (wanted_rev, wanted_path) = (rev.clone(), path.clone());
    let content = browse(&state, &access, move |b| {
        let commit = commit_of(b, &wanted_rev)?;
        b.at_path(&commit.id, &wanted_path, MAX_BLOB_VIEW_BYTES)
    })
    .await?;
    let (entry, data) = match content {
        Some(PathContent::Blob { entry, data }) => (entry, data),
        Some(PathContent::Dir(_)) => {
            return Ok(Redirect::to(&format!(
                "{base}/tree/{}/{}",
                path_escape(&rev),
                path_escape(&path)
            ))
            .into_response());
        }
        _ => return Err(WebError::not_found()),
    };
    let raw = format!("{base}/raw/{}/{}", path_escape(&rev), path_escape(&path));
    let size = entry.size.unwrap_or(0);
    let view = match data.as_deref() {
        None => {
            html! { p #too-large.notice { "This file is " (size) " bytes, too large to show. " a href=(raw) { "View it raw" } "." } }
        }
        Some(bytes) if guts_storage::browse::is_binary(bytes) => {
            html! { p.notice { "Binary file (" (size) " bytes). " a href=(raw) { "Download it" } "." } }
        }
        Some(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            let lines = highlight::highlight(&path, &text);
            html! {
                table #blob {
                    @for (i, line) in lines.iter().enumerate() {
                        @let n = i + 1;
                        tr id=(format!("L{n}")) {
                            td.num { a href=(format!("#L{n}")) { (n) } }
                            td.code { (PreEscaped(line)) }
                        }
                    }
                }
            }
        }
    };
    let body = html! {
        (repo_header(&access, Tab::Code))
        (branch_menu(&access, &rev, "blob", &path))
        (crumbs(&base, &rev, &path))
        div.box {
            div.box-header {
                span.file-name { (path) }
                span.meta { (size) " bytes" }
                a #raw-link href=(raw) { "Raw" }
                a href=(format!("{base}/commits/{}/{}", path_escape(&rev), path_escape(&path))) { "History" }
            }
            div.box-body style="padding: 0" { (view) }
        }
    };
    let title = format!(
        "{path} at {rev} · {}/{}",
        access.served.owner, access.served.name
    );
    Ok(page::page(&viewer, &title, body))
}

#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    page: Option<usize>,
}

/// The history of the default branch.
pub(super) async fn commits_default(
    state: State<WebState>,
    viewer: Viewer,
    Path((owner, name)): Path<(String, String)>,
    query: Query<PageQuery>,
) -> Result<Response, WebError> {
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let branch = default_branch(&access);
    history(state, viewer, access, branch, String::new(), query).await
}

/// The history of a ref, or of a path at a ref.
pub(super) async fn commits(
    state: State<WebState>,
    viewer: Viewer,
    Path((owner, name, rest)): Path<(String, String, String)>,
    query: Query<PageQuery>,
) -> Result<Response, WebError> {
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let (rev, path) = split_ref(&access.view.state, &rest);
    history(state, viewer, access, rev, path, query).await
}

async fn history(
    State(state): State<WebState>,
    viewer: Viewer,
    access: RepoAccess,
    rev: String,
    path: String,
    Query(query): Query<PageQuery>,
) -> Result<Response, WebError> {
    let base = repo_path(&access);
    let page_no = query.page.unwrap_or(1).clamp(1, 100_000);
    let (wanted_rev, filter) = (rev.clone(), path.clone());
    let (commits, more) = if access.view.state.refs.is_empty() {
        (Vec::new(), false)
    } else {
        browse(&state, &access, move |b| {
            let tip = b.resolve(&wanted_rev)?;
            let log = LogQuery {
                path: (!filter.is_empty()).then_some(filter),
                ..LogQuery::default()
            };
            let ids = b.log(&tip, &log)?;
            let skip = (page_no - 1) * COMMITS_PER_PAGE;
            let more = ids.len() > skip + COMMITS_PER_PAGE;
            let commits = ids
                .iter()
                .skip(skip)
                .take(COMMITS_PER_PAGE)
                .map(|id| b.commit(id))
                .collect::<Result<Vec<_>, BrowseError>>()?;
            Ok((commits, more))
        })
        .await?
    };
    let here = viewer
        .path
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    let body = html! {
        (repo_header(&access, Tab::Commits))
        h2 { "Commits on " code { (rev) } @if !path.is_empty() { " touching " code { (path) } } }
        ul.list.box #commits {
            @for c in &commits {
                @let sha = hex(&c.id);
                li.commit {
                    a.commit-link.commit-title href=(format!("{base}/commit/{sha}")) { (title_of(&c.message)) }
                    div.meta { (c.author.name) " committed " (page::time(u64::try_from(c.committer.seconds).unwrap_or(0))) " · " code { (short(&sha)) } }
                }
            }
            @if commits.is_empty() { li.muted { "No commits." } }
        }
        nav.pager aria-label="Pages" {
            @if page_no > 1 { a #prev-page href=(format!("{here}?page={}", page_no - 1)) { "Newer" } }
            @if more { a #next-page href=(format!("{here}?page={}", page_no + 1)) { "Older" } }
        }
    };
    let title = format!("Commits · {}/{}", access.served.owner, access.served.name);
    Ok(page::page(&viewer, &title, body))
}

/// One commit: its message, parents and diff.
pub(super) async fn commit(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((owner, name, sha)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let base = repo_path(&access);
    if sha.len() > 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(WebError::not_found());
    }
    let (commit, changes) = browse(&state, &access, move |b| {
        let commit = commit_of(b, &sha)?;
        let changes = b.commit_changes(&commit)?;
        Ok((commit, changes))
    })
    .await?;
    let sha = hex(&commit.id);
    let (title, rest) = commit
        .message
        .split_once('\n')
        .unwrap_or((&commit.message, ""));
    let parents: Vec<String> = commit.parents.iter().map(hex).collect::<Vec<_>>();
    let body = html! {
        (repo_header(&access, Tab::Commits))
        div.box {
            div.box-header { h1 #commit-title { (title) } }
            div.box-body {
                @if !rest.trim().is_empty() { pre { (rest.trim()) } }
                p.meta {
                    (commit.author.name) " authored " (page::time(u64::try_from(commit.author.seconds).unwrap_or(0)))
                    " · commit " code { (sha) }
                    @for p in &parents { " · parent " a href=(format!("{base}/commit/{p}")) { code { (short(p)) } } }
                }
            }
        }
        (diff_view(&changes))
    };
    let page_title = format!("{title} · {}/{}", access.served.owner, access.served.name);
    Ok(page::page(&viewer, &page_title, body))
}

/// The branches, with their tips.
pub(super) async fn branches(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let access = repo::find(&state, &viewer, &owner, &name)?;
    let base = repo_path(&access);
    let state_ = &access.view.state;
    let body = html! {
        (repo_header(&access, Tab::Code))
        h2 { "Branches" }
        ul.list.box {
            @for (name, r) in state_.refs.iter().filter_map(|(n, r)| Some((n.strip_prefix("refs/heads/")?, r))) {
                li {
                    a href=(format!("{base}/tree/{}", path_escape(name))) { (name) }
                    " " span.meta { code { (short(&r.target.to_string())) } }
                    @if state_.protections.contains_key(&format!("refs/heads/{name}")) { " " span.badge { "Protected" } }
                }
            }
        }
        h2 { "Tags" }
        ul.list.box {
            @for name in state_.refs.keys().filter_map(|n| n.strip_prefix("refs/tags/")) {
                li { a href=(format!("{base}/tree/{}", path_escape(name))) { (name) } }
            }
        }
    };
    Ok(page::page(&viewer, "Branches", body))
}
