//! Git data (`/repos/{owner}/{repo}/git/…`): refs, commits, trees and blobs as
//! GitHub's low-level git API shows them. Read-only; refs come from the folded state
//! (the truth), objects from the repository.

use crate::json::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use guts_storage::browse::{MAX_BLOB_BYTES, READ_BUDGET_BYTES};
use guts_storage::{BrowseError, Browser, Oid};
use http::header;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::browse::Repo;
use crate::error::ApiError;
use crate::extract::{Authed, MaybeUser};
use crate::git_views::{self, BlobHead, GitCommit, GitRef, GitTree};
use crate::links::Links;
use crate::openapi::schemas;
use crate::params::OwnerRepo;
use crate::state::AppState;

/// The wildcard `{*ref}` routes are annotated with axum's template; the served
/// document names the parameter `{ref}` (see [`crate::openapi::finish`]).
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_refs))
        .routes(routes!(legacy_refs))
        .routes(routes!(matching_refs))
        .routes(routes!(get_ref))
        .routes(routes!(get_commit))
        .routes(routes!(get_tree))
        .routes(routes!(get_blob))
        .routes(routes!(get_tag))
}

/// A repository path with one more segment (`{sha}` or `{*ref}`).
type RepoPath = Path<(String, String, String)>;

/// `?recursive=` of a tree: GitHub treats any value as "yes" except absence (and we
/// also read `0`/`false` as no, which is what a caller writing them means).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TreeQuery {
    /// Any value but `0` or `false` lists the whole tree.
    #[serde(default)]
    recursive: Option<String>,
}

/// The refs (full name → object) whose name starts with `refs/{prefix}`, with the
/// kind of object each names, in name order.
async fn refs_under(
    state: &AppState,
    repo: &Repo,
    prefix: &str,
) -> Result<Vec<(String, Oid, &'static str)>, ApiError> {
    let wanted = format!("refs/{prefix}");
    let refs: Vec<(String, Oid)> = repo
        .view
        .state
        .refs
        .iter()
        .filter(|(name, _)| name.starts_with(&wanted))
        .map(|(name, r)| (name.clone(), *r.target.as_bytes()))
        .collect();
    repo.browse(state, move |b: &Browser| {
        Ok(refs
            .into_iter()
            .map(|(name, id)| {
                let kind = b.header(&id).map_or("commit", |(kind, _)| kind);
                (name, id, kind)
            })
            .collect())
    })
    .await
}

fn render_refs(repo: &Repo, refs: Vec<(String, Oid, &'static str)>) -> Vec<GitRef> {
    refs.into_iter()
        .map(|(name, id, kind)| GitRef::new(repo, name, &id, kind))
        .collect()
}

/// Every ref of the repository, in name order.
#[utoipa::path(get, operation_id = "git/list-refs", path = "/api/v3/repos/{owner}/{repo}/git/refs", tag = "git",
    params(OwnerRepo),
    responses((status = 200, description = "The refs", body = Vec<schemas::GitRef>)))]
async fn list_refs(
    state: State<AppState>,
    links: Links,
    caller: MaybeUser,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<Vec<GitRef>>, ApiError> {
    matching_refs(state, links, caller, Path((owner, name, String::new()))).await
}

/// `GET /git/matching-refs/{ref}`: every ref starting with `refs/{ref}`, possibly none.
#[utoipa::path(get, operation_id = "git/list-matching-refs", path = "/api/v3/repos/{owner}/{repo}/git/matching-refs/{*ref}",
    tag = "git",
    params(OwnerRepo, ("ref" = String, Path, description = "A ref name prefix without `refs/` (`heads/ma`)")),
    responses((status = 200, description = "The matching refs", body = Vec<schemas::GitRef>)))]
async fn matching_refs(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, prefix)): RepoPath,
) -> Result<Json<Vec<GitRef>>, ApiError> {
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?.nonempty()?;
    let refs = refs_under(&state, &repo, &prefix).await?;
    Ok(Json(render_refs(&repo, refs)))
}

/// `GET /git/ref/{ref}`: exactly `refs/{ref}`, else 404.
#[utoipa::path(get, operation_id = "git/get-ref", path = "/api/v3/repos/{owner}/{repo}/git/ref/{*ref}", tag = "git",
    params(OwnerRepo, ("ref" = String, Path, description = "A ref name without `refs/` (`heads/main`)")),
    responses((status = 200, description = "The ref", body = schemas::GitRef)))]
async fn get_ref(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, short)): RepoPath,
) -> Result<Json<GitRef>, ApiError> {
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?.nonempty()?;
    let full = format!("refs/{short}");
    let refs = refs_under(&state, &repo, &short).await?;
    refs.into_iter()
        .find(|(n, _, _)| *n == full)
        .map(|(n, id, kind)| Json(GitRef::new(&repo, n, &id, kind)))
        .ok_or_else(ApiError::not_found)
}

/// The older `GET /git/refs/{ref}`, still used by clients: the ref itself when the
/// name is exact, else the array of refs under it, else 404.
#[utoipa::path(get, operation_id = "git/get-refs", path = "/api/v3/repos/{owner}/{repo}/git/refs/{*ref}", tag = "git",
    params(OwnerRepo, ("ref" = String, Path, description = "A ref name without `refs/` (`heads/main`), or a prefix of whole segments (`heads`)")),
    responses((status = 200, description = "The ref, or the refs under the name", body = schemas::GitRefOrRefs)))]
async fn legacy_refs(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, short)): RepoPath,
) -> Result<Response, ApiError> {
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?.nonempty()?;
    let full = format!("refs/{short}");
    let mut refs = refs_under(&state, &repo, &short).await?;
    if let Some(exact) = refs.iter().position(|(n, _, _)| *n == full) {
        let (n, id, kind) = refs.swap_remove(exact);
        return Ok(Json(GitRef::new(&repo, n, &id, kind)).into_response());
    }
    let under: Vec<_> = refs
        .into_iter()
        .filter(|(n, _, _)| {
            n.get(full.len()..)
                .is_some_and(|rest| rest.starts_with('/'))
        })
        .collect();
    if under.is_empty() {
        return Err(ApiError::not_found());
    }
    Ok(Json(render_refs(&repo, under)).into_response())
}

/// A full 40-digit hex object id, as the object endpoints require.
fn full_sha(sha: &str) -> Result<Oid, ApiError> {
    let mut id = [0u8; 20];
    hex::decode_to_slice(sha, &mut id).map_err(|_| ApiError::not_found())?;
    Ok(id)
}

/// Reads the object named by a full sha in a visible, non-empty repository.
async fn read_object<T, F>(
    state: &AppState,
    links: Links,
    caller: Option<&Authed>,
    (owner, name, sha): (String, String, String),
    read: F,
) -> Result<(Repo, Oid, T), ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Browser, &Oid) -> Result<T, BrowseError> + Send + 'static,
{
    let repo = Repo::find(state, links, &owner, &name, caller)?.nonempty()?;
    let id = full_sha(&sha)?;
    let found = repo.browse(state, move |b| Ok(read(b, &id)?)).await?;
    Ok((repo, id, found))
}

/// A git commit object.
#[utoipa::path(get, operation_id = "git/get-commit", path = "/api/v3/repos/{owner}/{repo}/git/commits/{sha}", tag = "git",
    params(OwnerRepo, ("sha" = String, Path, description = "The commit's full sha")),
    responses((status = 200, description = "The commit", body = schemas::GitCommit)))]
async fn get_commit(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path(path): RepoPath,
) -> Result<Json<GitCommit>, ApiError> {
    let (repo, _, commit) =
        read_object(&state, links, caller.as_ref(), path, |b, id| b.commit(id)).await?;
    Ok(Json(GitCommit::new(&repo, commit)))
}

/// An annotated tag object (what `POST git/tags` wrote, or a tag pushed with git).
#[utoipa::path(get, operation_id = "git/get-tag", path = "/api/v3/repos/{owner}/{repo}/git/tags/{sha}", tag = "git",
    params(OwnerRepo, ("sha" = String, Path, description = "The tag object's full sha")),
    responses((status = 200, description = "The tag", body = schemas::GitTag)))]
async fn get_tag(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path(path): RepoPath,
) -> Result<Json<git_views::GitTag>, ApiError> {
    let (repo, _, tag) =
        read_object(&state, links, caller.as_ref(), path, |b, id| b.tag(id)).await?;
    Ok(Json(git_views::GitTag::new(&repo, tag)))
}

/// `GET /git/trees/{sha}`: a tree (or the tree of a commit, or of a branch or tag
/// name, as GitHub accepts), recursively with `?recursive=1`.
#[utoipa::path(get, operation_id = "git/get-tree", path = "/api/v3/repos/{owner}/{repo}/git/trees/{sha}", tag = "git",
    params(OwnerRepo, ("sha" = String, Path, description = "A tree or commit sha, or a branch or tag name"), TreeQuery),
    responses((status = 200, description = "The tree", body = schemas::GitTree)))]
async fn get_tree(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, sha)): RepoPath,
    Query(query): Query<TreeQuery>,
) -> Result<Json<GitTree>, ApiError> {
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?.nonempty()?;
    let recursive = query
        .recursive
        .is_some_and(|r| !matches!(r.as_str(), "0" | "false"));
    let listing = repo
        .browse(&state, move |b| {
            let id = match full_sha(&sha) {
                Ok(id) => id,
                Err(_) => b.resolve(&sha)?,
            };
            Ok(b.tree(&id, recursive)?)
        })
        .await?;
    Ok(Json(GitTree::new(&repo, listing)))
}

/// A blob, its bytes in base64. Blobs up to the request budget
/// ([`READ_BUDGET_BYTES`], 32 MiB) are served; larger ones get GitHub's 403
/// `too_large` naming that limit (GitHub's own is 100 MB), found from the object's
/// header without inflating it. The JSON is streamed, the base64 made a chunk at a time
/// as the client reads, so a response holds the blob and one chunk rather than the
/// blob, its base64 and the serialised JSON at once.
#[utoipa::path(get, operation_id = "git/get-blob", path = "/api/v3/repos/{owner}/{repo}/git/blobs/{sha}", tag = "git",
    params(OwnerRepo, ("sha" = String, Path, description = "The blob's full sha")),
    responses((status = 200, description = "The blob", body = schemas::Blob)))]
async fn get_blob(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path(path): RepoPath,
) -> Result<Response, ApiError> {
    let (repo, id, data) = read_object(&state, links, caller.as_ref(), path, |b, id| {
        b.blob(id, MAX_BLOB_BYTES.min(READ_BUDGET_BYTES))
    })
    .await?;
    let head = BlobHead::new(&repo, &id, data.len());
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        git_views::json_with_base64(&head, "content", data)?,
    )
        .into_response())
}
