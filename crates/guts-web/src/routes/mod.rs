//! The pages, one module per area. Route modules never import each other: what two of
//! them share lives in [`crate::page`], [`crate::repo`] or [`crate::session`].

mod admin;
mod auth;
mod code;
mod home;
mod issues;
mod pulls;
mod settings;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

use crate::WebState;
use crate::error::WebError;
use crate::page;

/// Every page's route. GitHub's scheme: `/{owner}` and `/{owner}/{repo}/…`; the
/// node's own pages sit at single words a login cannot take over (`/login`, `/new`,
/// `/settings`, `/admin` are reserved names), and static files under `/-/`.
pub(crate) fn router() -> Router<WebState> {
    Router::new()
        .route("/", get(home::index))
        .route("/login", get(auth::form).post(auth::sign_in))
        .route("/logout", post(auth::sign_out))
        .route("/new", get(home::new_repo_form).post(home::create_repo))
        .route("/admin", get(admin::overview))
        .route(page::CSS_PATH, get(stylesheet))
        .route(
            "/settings/tokens",
            get(settings::tokens).post(settings::create_token),
        )
        .route("/settings/tokens/{id}/revoke", post(settings::revoke_token))
        .route(
            "/settings/password",
            get(settings::password_form).post(settings::change_password),
        )
        .route("/{owner}", get(home::profile))
        .route("/{owner}/{repo}", get(code::home))
        .route("/{owner}/{repo}/tree/{*rest}", get(code::tree))
        .route("/{owner}/{repo}/blob/{*rest}", get(code::blob))
        .route("/{owner}/{repo}/commits", get(code::commits_default))
        .route("/{owner}/{repo}/commits/{*rest}", get(code::commits))
        .route("/{owner}/{repo}/commit/{sha}", get(code::commit))
        .route("/{owner}/{repo}/branches", get(code::branches))
        .route(
            "/{owner}/{repo}/compare/{*spec}",
            get(pulls::compare).post(pulls::open),
        )
        .route("/{owner}/{repo}/issues", get(issues::list))
        .route(
            "/{owner}/{repo}/issues/new",
            get(issues::new_form).post(issues::create),
        )
        .route("/{owner}/{repo}/issues/{number}", get(issues::view))
        .route(
            "/{owner}/{repo}/issues/{number}/comments",
            post(issues::comment),
        )
        .route(
            "/{owner}/{repo}/issues/{number}/state",
            post(issues::set_state),
        )
        .route(
            "/{owner}/{repo}/issues/{number}/triage",
            post(issues::triage),
        )
        .route("/{owner}/{repo}/pulls", get(pulls::list))
        .route("/{owner}/{repo}/pull/{number}", get(pulls::view))
        .route("/{owner}/{repo}/pull/{number}/files", get(pulls::files))
        .route("/{owner}/{repo}/pull/{number}/reviews", post(pulls::review))
        .route("/{owner}/{repo}/pull/{number}/merge", post(pulls::merge))
        .route("/{owner}/{repo}/settings", get(settings::repo_settings))
        .route(
            "/{owner}/{repo}/settings/collaborators",
            post(settings::add_collaborator),
        )
        .route("/{owner}/{repo}/settings/hooks", post(settings::add_hook))
        .route(
            "/{owner}/{repo}/settings/protection",
            post(settings::protect),
        )
        .route(
            "/{owner}/{repo}/settings/hooks/{number}/delete",
            post(settings::delete_hook),
        )
        // What no route above (nor git's) serves under a repository: a page, not the
        // REST API's JSON.
        .route("/{owner}/{repo}/{*rest}", get(not_found))
}

async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        page::CSS,
    )
        .into_response()
}

/// A page that does not exist.
async fn not_found() -> WebError {
    WebError::not_found()
}
