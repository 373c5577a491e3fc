//! The start page (a dashboard when signed in), creating a repository (`/new`) and
//! profiles of users and organizations (`/{owner}`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use guts_service::NewRepo;
use guts_storage::RepoView;
use maud::{Markup, html};
use serde::Deserialize;

use crate::WebState;
use crate::error::WebError;
use crate::page::{self, csrf_field, path_escape};
use crate::session::{Posted, Viewer};

fn repo_list(state: &WebState, repos: &[Arc<RepoView>]) -> Markup {
    html! {
        ul #my-repos.list {
            @for view in repos {
                @let served = state.service.served(view);
                @let meta = view.state.meta.as_ref();
                li {
                    a.repo-link href=(format!("/{}/{}", path_escape(&served.owner), path_escape(&served.name))) {
                        (served.owner) "/" (served.name)
                    }
                    @if meta.is_some_and(|m| m.private) { " " span.badge { "Private" } }
                    @if let Some(m) = meta.filter(|m| !m.description.is_empty()) {
                        div.meta { (m.description) }
                    }
                }
            }
            @if repos.is_empty() { li.muted { "No repositories yet." } }
        }
    }
}

/// The dashboard: the viewer's repositories and what happened in them lately; or, signed
/// out, a welcome with the public repositories.
pub(super) async fn index(State(state): State<WebState>, viewer: Viewer) -> Response {
    if viewer.authed.is_none() {
        let repos = state.service.recent_repos(viewer.caller(), false, 50);
        let body = html! {
            h1 { "Welcome to Guts" }
            p { "Peer-to-peer code collaboration. " a href="/login" { "Sign in" } " to create repositories, open issues and review pull requests." }
            h2 { "Public repositories" }
            div.box { (repo_list(&state, &repos)) }
        };
        return page::page(&viewer, "Welcome", body);
    }
    let mine: Vec<Arc<RepoView>> = state.service.recent_repos(viewer.caller(), true, 100);
    // Recent activity: the latest updated issues and pull requests of those
    // repositories.
    let mut activity = Vec::new();
    for view in &mine {
        let served = state.service.served(view);
        for thread in view.state.collab.threads.values() {
            activity.push((thread.updated_at, served.clone(), thread));
        }
    }
    activity.sort_by_key(|(at, ..)| std::cmp::Reverse(*at));
    activity.truncate(20);
    let body = html! {
        div.grid {
            section aria-labelledby="activity-heading" {
                h2 #activity-heading { "Recent activity" }
                ul #activity.list.box {
                    @for (at, served, thread) in &activity {
                        @let kind = if thread.pull.is_some() { "pull" } else { "issues" };
                        li {
                            a href=(format!("/{}/{}/{kind}/{}", path_escape(&served.owner), path_escape(&served.name), thread.number)) {
                                (served.owner) "/" (served.name) " #" (thread.number) " " (thread.title)
                            }
                            div.meta { (page::time(at.wall_ms / 1000)) }
                        }
                    }
                    @if activity.is_empty() { li.muted { "Nothing yet." } }
                }
            }
            section aria-labelledby="repos-heading" {
                h2 #repos-heading { "Your repositories" }
                p { a #new-repo-link href="/new" { "New repository" } }
                div.box { (repo_list(&state, &mine)) }
            }
        }
    };
    page::page(&viewer, "Dashboard", body)
}

/// The form that creates a repository.
pub(super) async fn new_repo_form(viewer: Viewer) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let body = html! {
        h1 { "Create a new repository" }
        form #new-repo-form.stack method="post" action="/new" {
            (csrf_field(&viewer))
            p { "Owner: " strong { (authed.user.login) } }
            label for="name" { "Repository name" }
            input #name type="text" name="name" required maxlength="100" pattern="[A-Za-z0-9._-]+";
            label for="description" { "Description (optional)" }
            input #description type="text" name="description" maxlength="350";
            label { input type="checkbox" name="private" value="on"; " Private: only you and the people you add can see it" }
            label { input type="checkbox" name="auto_init" value="on"; " Add a README" }
            button #create-repo.primary type="submit" { "Create repository" }
        }
    };
    Ok(page::page(&viewer, "New repository", body))
}

#[derive(Debug, Deserialize)]
pub(super) struct NewRepoForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    private: Option<String>,
    auto_init: Option<String>,
}

/// Creates the repository under the viewer's account.
pub(super) async fn create_repo(
    State(state): State<WebState>,
    Posted { viewer, form }: Posted<NewRepoForm>,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    let name = form.name.trim();
    let new = NewRepo {
        name: (!name.is_empty()).then(|| name.to_string()),
        description: form.description.trim().to_string(),
        private: form.private.is_some(),
        default_branch: None,
        auto_init: form.auto_init.is_some(),
    };
    let view = state.service.create_user_repo(authed, new).await?;
    let served = state.service.served(&view);
    Ok(Redirect::to(&format!(
        "/{}/{}",
        path_escape(&served.owner),
        path_escape(&served.name)
    ))
    .into_response())
}

/// A user's or organization's page: its repositories the viewer may see.
pub(super) async fn profile(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(owner): Path<String>,
) -> Result<Response, WebError> {
    let (login, kind) = match state.service.user(&owner) {
        Ok(user) => (user.login, "User"),
        Err(_) => (state.service.org(&owner)?.login, "Organization"),
    };
    let mut repos: Vec<Arc<RepoView>> = state
        .service
        .visible_repos_of(viewer.caller(), Some(&login));
    repos.sort_by_key(|v| std::cmp::Reverse(v.updated_ms));
    let body = html! {
        h1 #profile-login { (login) " " span.badge { (kind) } }
        h2 { "Repositories" }
        div.box { (repo_list(&state, &repos)) }
    };
    Ok(page::page(&viewer, &login, body))
}
