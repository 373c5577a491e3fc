//! The page layout every handler renders into, and the small pieces pages share: the
//! header with the viewer's menu, a repository's header and tabs, forms' CSRF field,
//! URL escaping and dates.
//!
//! Every string that reaches a page goes through maud's escaping; the only
//! `PreEscaped` HTML comes from [`crate::markup`], which produces sanitised output.

use axum::response::{Html, IntoResponse, Response};
use guts_service::RepoAccess;
use maud::{Markup, html};

use crate::layout::document;
pub(crate) use crate::layout::{CSS, CSS_PATH, path_escape, query_escape};

use crate::session::Viewer;

/// A full page for `viewer`: the site header with their menu, then `content` as the
/// page's main landmark.
pub(crate) fn page(viewer: &Viewer, title: &str, content: Markup) -> Response {
    let header = html! {
        header.site-header {
            nav aria-label="Site" {
                a #home href="/" { "Guts" }
                @if let Some(login) = viewer.login() {
                    div #user-menu {
                        a href="/new" { "New repository" }
                        a href="/settings/tokens" { "Tokens" }
                        @if viewer.authed.as_ref().is_some_and(|a| a.user.site_admin) {
                            a href="/admin" { "Admin" }
                        }
                        a #current-user href=(format!("/{}", path_escape(login))) { (login) }
                        form #sign-out method="post" action="/logout" {
                            (csrf_field(viewer))
                            button type="submit" { "Sign out" }
                        }
                    }
                } @else {
                    a #sign-in-link href=(sign_in_href(viewer)) { "Sign in" }
                }
            }
        }
    };
    let main = html! { main #main { (content) } };
    Html(document(title, header, main).into_string()).into_response()
}

fn sign_in_href(viewer: &Viewer) -> String {
    if viewer.path == "/" || viewer.path.starts_with("/login") {
        "/login".to_string()
    } else {
        format!("/login?return_to={}", query_escape(&viewer.path))
    }
}

/// The hidden field every form posts.
pub(crate) fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="_csrf" value=(viewer.csrf); }
}

/// Which tab of a repository's header is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tab {
    Code,
    Issues,
    Pulls,
    Commits,
    Settings,
}

/// `/{owner}/{repo}` of `access`, escaped for a URL.
pub(crate) fn repo_path(access: &RepoAccess) -> String {
    format!(
        "/{}/{}",
        path_escape(&access.served.owner),
        path_escape(&access.served.name)
    )
}

/// A repository's header: its name, visibility and tabs.
pub(crate) fn repo_header(access: &RepoAccess, tab: Tab) -> Markup {
    let base = repo_path(access);
    let meta = access.view.state.meta.as_ref();
    let private = meta.is_some_and(|m| m.private);
    let current = |t: Tab| if t == tab { Some("page") } else { None };
    let admin = access.role >= Some(guts_core::Role::Admin);
    html! {
        div.repo-header {
            div.repo-title {
                h1 #repo-name {
                    a href=(format!("/{}", path_escape(&access.served.owner))) { (access.served.owner) }
                    "/"
                    a href=(base) { (access.served.name) }
                }
                span.badge { @if private { "Private" } @else { "Public" } }
                @if meta.is_some_and(|m| m.archived) { " " span.badge { "Archived" } }
            }
            @if let Some(m) = meta.filter(|m| !m.description.is_empty()) {
                p.description { (m.description) }
            }
            nav.tabs aria-label="Repository" {
                a #tab-code href=(base) aria-current=[current(Tab::Code)] { "Code" }
                a #tab-issues href=(format!("{base}/issues")) aria-current=[current(Tab::Issues)] { "Issues" }
                a #tab-pulls href=(format!("{base}/pulls")) aria-current=[current(Tab::Pulls)] { "Pull requests" }
                a #tab-commits href=(format!("{base}/commits")) aria-current=[current(Tab::Commits)] { "Commits" }
                @if admin {
                    a #tab-settings href=(format!("{base}/settings")) aria-current=[current(Tab::Settings)] { "Settings" }
                }
            }
        }
    }
}

/// A date (UTC) for people: `2026-12-07 08:15`.
pub(crate) fn date(unix_secs: u64) -> String {
    let iso = guts_ops::time::iso8601(unix_secs);
    iso.get(..16).map_or(iso.clone(), |d| d.replace('T', " "))
}

/// A `<time>` element for `unix_secs`.
pub(crate) fn time(unix_secs: u64) -> Markup {
    html! { time datetime=(guts_ops::time::iso8601(unix_secs)) { (date(unix_secs)) } }
}

/// A short object id.
pub(crate) fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_well() {
        assert_eq!(date(1_795_364_418), "2026-11-22 16:20");
    }
}
