//! Repository contents (`/repos/{owner}/{repo}/contents/{path}`): a file with its
//! bytes in base64, or a directory as the array of its entries, at `?ref=` (the
//! default branch otherwise). Read-only.

use crate::json::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use guts_storage::browse::{MAX_BLOB_BYTES, PathContent};
use http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::browse::{Repo, too_large};
use crate::error::ApiError;
use crate::extract::MaybeUser;
use crate::git_views::Contents;
use crate::links::Links;
use crate::openapi::schemas;
use crate::params::OwnerRepo;
use crate::state::AppState;

/// Above this size GitHub sends a file's metadata with empty `content` and encoding
/// `none`, and so does this node, without inflating the file: a file's bytes are read
/// only up to here. Above [`MAX_BLOB_BYTES`] GitHub refuses with 403 `too_large`.
const MAX_INLINE_BYTES: u64 = 1024 * 1024;

/// The wildcard `{*path}` route is annotated with axum's template; the served
/// document names the parameter `{path}` (see [`crate::openapi::finish`]).
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(root))
        .routes(routes!(root_slash))
        .routes(routes!(at_path))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ContentsQuery {
    /// A branch, tag or sha; the default branch otherwise.
    #[serde(rename = "ref", default)]
    reference: Option<String>,
}

/// The root directory.
#[utoipa::path(get, operation_id = "repos/get-content-root", path = "/api/v3/repos/{owner}/{repo}/contents", tag = "contents",
    params(OwnerRepo, ContentsQuery),
    responses((status = 200, description = "The root directory's entries", body = schemas::Contents)))]
async fn root(
    state: State<AppState>,
    links: Links,
    caller: MaybeUser,
    Path((owner, name)): Path<(String, String)>,
    query: Query<ContentsQuery>,
) -> Result<Response, ApiError> {
    at_path(
        state,
        links,
        caller,
        Path((owner, name, String::new())),
        query,
    )
    .await
}

/// The root directory, spelled with a trailing slash.
#[utoipa::path(get, operation_id = "repos/get-content-root-slash", path = "/api/v3/repos/{owner}/{repo}/contents/", tag = "contents",
    params(OwnerRepo, ContentsQuery),
    responses((status = 200, description = "The root directory's entries", body = schemas::Contents)))]
async fn root_slash(
    state: State<AppState>,
    links: Links,
    caller: MaybeUser,
    path: Path<(String, String)>,
    query: Query<ContentsQuery>,
) -> Result<Response, ApiError> {
    root(state, links, caller, path, query).await
}

/// A file (its bytes in base64), a symlink, a submodule, or a directory (the array
/// of its entries).
#[utoipa::path(get, operation_id = "repos/get-content", path = "/api/v3/repos/{owner}/{repo}/contents/{*path}", tag = "contents",
    params(OwnerRepo, ("path" = String, Path, description = "A path in the tree"), ContentsQuery),
    responses((status = 200, description = "The file, or the directory's entries", body = schemas::Contents)))]
async fn at_path(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, path)): Path<(String, String, String)>,
    Query(query): Query<ContentsQuery>,
) -> Result<Response, ApiError> {
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?.nonempty()?;
    let at = query
        .reference
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| repo.default_branch.clone());
    let rev = at.clone();
    let found = repo
        .browse(&state, move |b| {
            let commit = b.resolve(&rev).map_err(|_| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("No commit found for the ref {rev}"),
                )
            })?;
            Ok(b.at_path(&commit, &path, MAX_INLINE_BYTES)?)
        })
        .await?;
    let body = match found.ok_or_else(ApiError::not_found)? {
        PathContent::Dir(entries) => Contents::dir(&repo, entries, &at),
        PathContent::Blob { entry, data } => {
            // GitHub's 403 `too_large` for a file over 100 MB.
            if entry.size.unwrap_or(0) > MAX_BLOB_BYTES {
                return Err(too_large(MAX_BLOB_BYTES));
            }
            Contents::blob(&repo, entry, data.as_deref(), &at)
        }
        PathContent::Submodule(entry) => Contents::submodule(&repo, entry, &at),
    };
    Ok(Json(body).into_response())
}
