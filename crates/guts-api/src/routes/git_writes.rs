//! Git data writes (`/repos/{owner}/{repo}/git/…`): blobs, trees, commits and
//! annotated tags written into the repository, and refs created, moved and deleted,
//! as GitHub's low-level git API does. Thin: each handler extracts its body, calls one
//! use case of `guts_service::write` (which checks the push permission and signs the
//! one `UpdateRef` a ref change is), and renders the object read back from the store.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_service::{Caller, CommitRequest, RepoAccess, TagRequest, TreeEntryRequest};
use http::StatusCode;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::browse::Repo;
use crate::error::ApiError;
use crate::extract::{AuthUser, Authed, JsonBody};
use crate::git_views::{GitCommit, GitRef, GitTag, GitTree, ShortBlob};
use crate::json::Json;
use crate::links::Links;
use crate::openapi::schemas;
use crate::params::{OwnerRepo, PersonBody, decode_base64, person};
use crate::state::AppState;

/// The wildcard `{*ref}` routes are annotated with axum's template; the served
/// document names the parameter `{ref}` (see [`crate::openapi::finish`]).
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_blob))
        .routes(routes!(create_tree))
        .routes(routes!(create_commit))
        .routes(routes!(create_tag))
        .routes(routes!(create_ref))
        .routes(routes!(update_ref, delete_ref))
}

/// The repository as the caller sees it, for the use case.
fn access(state: &AppState, who: &Authed, owner: &str, name: &str) -> Result<RepoAccess, ApiError> {
    Ok(state.service.repo(Caller::User(who), owner, name)?)
}

/// The repository again after the write, for the answer's URLs and objects.
fn rendered(
    state: &AppState,
    links: Links,
    who: &Authed,
    owner: &str,
    name: &str,
) -> Result<Repo, ApiError> {
    Repo::find(state, links, owner, name, Some(who))
}

/// `POST git/blobs`.
#[derive(Debug, Deserialize, ToSchema)]
struct BlobBody {
    content: Option<String>,
    /// `utf-8` (default) or `base64`.
    encoding: Option<String>,
}

/// Writes a blob; 201 with its sha.
#[utoipa::path(post, operation_id = "git/create-blob", path = "/api/v3/repos/{owner}/{repo}/git/blobs", tag = "git",
    params(OwnerRepo), request_body = BlobBody,
    responses((status = 201, description = "The new blob", body = schemas::ShortBlob)))]
async fn create_blob(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<BlobBody>,
) -> Result<Response, ApiError> {
    let access = access(&state, &who, &owner, &name)?;
    let content = body
        .content
        .ok_or_else(|| ApiError::missing_field("Blob", "content"))?;
    let bytes = match body.encoding.as_deref().unwrap_or("utf-8") {
        "utf-8" | "utf8" => content.into_bytes(),
        "base64" => decode_base64("Blob", "content", &content)?,
        _ => {
            return Err(ApiError::invalid_field(
                "Blob",
                "encoding",
                "must be utf-8 or base64",
            ));
        }
    };
    let id = state.service.create_blob(&who, &access, bytes).await?;
    let repo = rendered(&state, links, &who, &owner, &name)?;
    Ok((StatusCode::CREATED, Json(ShortBlob::new(&repo, &id))).into_response())
}

/// Deserializes a present field as `Some`, so that `Option<Option<T>>` tells an
/// absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// One entry of `POST git/trees`.
#[derive(Debug, Deserialize, ToSchema)]
struct TreeEntryBody {
    path: Option<String>,
    /// `100644`, `100755`, `040000`, `160000` or `120000`.
    mode: Option<String>,
    /// `blob`, `tree` or `commit`.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// An existing object; `null` removes the path.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    sha: Option<Option<String>>,
    /// The bytes of a new blob (instead of `sha`).
    content: Option<String>,
}

/// `POST git/trees`.
#[derive(Debug, Deserialize, ToSchema)]
struct TreeBody {
    tree: Option<Vec<TreeEntryBody>>,
    /// The tree the entries are applied to; none builds from nothing.
    base_tree: Option<String>,
}

/// Writes a tree: `base_tree` with the entries applied (nested paths make subtrees,
/// `sha: null` removes); 201 with the tree.
#[utoipa::path(post, operation_id = "git/create-tree", path = "/api/v3/repos/{owner}/{repo}/git/trees", tag = "git",
    params(OwnerRepo), request_body = TreeBody,
    responses((status = 201, description = "The new tree", body = schemas::GitTree)))]
async fn create_tree(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<TreeBody>,
) -> Result<Response, ApiError> {
    let access = access(&state, &who, &owner, &name)?;
    let entries = body
        .tree
        .ok_or_else(|| ApiError::missing_field("Tree", "tree"))?
        .into_iter()
        .map(|e| {
            Ok(TreeEntryRequest {
                path: e
                    .path
                    .ok_or_else(|| ApiError::missing_field("Tree", "tree.path"))?,
                mode: e
                    .mode
                    .ok_or_else(|| ApiError::missing_field("Tree", "tree.mode"))?,
                kind: e.kind,
                sha: e.sha,
                content: e.content,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let id = state
        .service
        .create_tree(&who, &access, body.base_tree, entries)
        .await?;
    let repo = rendered(&state, links, &who, &owner, &name)?;
    let listing = repo
        .browse(&state, move |b| Ok(b.tree(&id, false)?))
        .await?;
    Ok((StatusCode::CREATED, Json(GitTree::new(&repo, listing))).into_response())
}

/// `POST git/commits`.
#[derive(Debug, Deserialize, ToSchema)]
struct CommitBody {
    message: Option<String>,
    tree: Option<String>,
    #[serde(default)]
    parents: Vec<String>,
    author: Option<PersonBody>,
    committer: Option<PersonBody>,
}

/// Writes a commit of an existing tree; author and committer default to each other,
/// then to the caller. 201 with the commit.
#[utoipa::path(post, operation_id = "git/create-commit", path = "/api/v3/repos/{owner}/{repo}/git/commits", tag = "git",
    params(OwnerRepo), request_body = CommitBody,
    responses((status = 201, description = "The new commit", body = schemas::GitCommit)))]
async fn create_commit(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<CommitBody>,
) -> Result<Response, ApiError> {
    let access = access(&state, &who, &owner, &name)?;
    let request = CommitRequest {
        message: body
            .message
            .ok_or_else(|| ApiError::missing_field("Commit", "message"))?,
        tree: body
            .tree
            .ok_or_else(|| ApiError::missing_field("Commit", "tree"))?,
        parents: body.parents,
        author: person(body.author, "Commit", "author")?,
        committer: person(body.committer, "Commit", "committer")?,
    };
    let id = state.service.create_commit(&who, &access, request).await?;
    let repo = rendered(&state, links, &who, &owner, &name)?;
    let commit = repo.browse(&state, move |b| Ok(b.commit(&id)?)).await?;
    Ok((StatusCode::CREATED, Json(GitCommit::new(&repo, commit))).into_response())
}

/// `POST git/tags`.
#[derive(Debug, Deserialize, ToSchema)]
struct TagBody {
    tag: Option<String>,
    message: Option<String>,
    object: Option<String>,
    /// `commit`, `tree`, `blob` or `tag`: what `object` is.
    #[serde(rename = "type")]
    kind: Option<String>,
    tagger: Option<PersonBody>,
}

/// Writes an annotated tag object (the ref is `POST git/refs`); 201 with the tag.
#[utoipa::path(post, operation_id = "git/create-tag", path = "/api/v3/repos/{owner}/{repo}/git/tags", tag = "git",
    params(OwnerRepo), request_body = TagBody,
    responses((status = 201, description = "The new tag object", body = schemas::GitTag)))]
async fn create_tag(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<TagBody>,
) -> Result<Response, ApiError> {
    let access = access(&state, &who, &owner, &name)?;
    let missing = |field| ApiError::missing_field("Tag", field);
    let request = TagRequest {
        tag: body.tag.ok_or_else(|| missing("tag"))?,
        message: body.message.ok_or_else(|| missing("message"))?,
        object: body.object.ok_or_else(|| missing("object"))?,
        object_type: body.kind.ok_or_else(|| missing("type"))?,
        tagger: person(body.tagger, "Tag", "tagger")?,
    };
    let (tag, message, kind) = (
        request.tag.clone(),
        request.message.clone(),
        request.object_type.clone(),
    );
    let created = state.service.create_tag(&who, &access, request).await?;
    let repo = rendered(&state, links, &who, &owner, &name)?;
    let view = GitTag::created(&repo, &created, tag, message, object_kind(&kind));
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `POST git/refs`.
#[derive(Debug, Deserialize, ToSchema)]
struct CreateRefBody {
    /// The full name, `refs/heads/feature`.
    #[serde(rename = "ref")]
    name: Option<String>,
    sha: Option<String>,
}

/// The ref `name` as it now is.
async fn render_ref(state: &AppState, repo: &Repo, name: String) -> Result<GitRef, ApiError> {
    let id = repo
        .view
        .state
        .refs
        .get(&name)
        .map(|r| *r.target.as_bytes())
        .ok_or_else(ApiError::not_found)?;
    let kind = repo
        .browse(state, move |b| {
            Ok(b.header(&id).map_or("commit", |(k, _)| k))
        })
        .await?;
    Ok(GitRef::new(repo, name, &id, kind))
}

/// Creates a ref (one signed `UpdateRef`, refused where a push creating it would be);
/// 422 "Reference already exists".
#[utoipa::path(post, operation_id = "git/create-ref", path = "/api/v3/repos/{owner}/{repo}/git/refs", tag = "git",
    params(OwnerRepo), request_body = CreateRefBody,
    responses((status = 201, description = "The new ref", body = schemas::GitRef)))]
async fn create_ref(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<CreateRefBody>,
) -> Result<Response, ApiError> {
    let access = access(&state, &who, &owner, &name)?;
    let full = body
        .name
        .ok_or_else(|| ApiError::missing_field("Reference", "ref"))?;
    let sha = body
        .sha
        .ok_or_else(|| ApiError::missing_field("Reference", "sha"))?;
    state.service.create_ref(&who, &access, &full, &sha).await?;
    let repo = rendered(&state, links, &who, &owner, &name)?;
    let view = render_ref(&state, &repo, full).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `PATCH git/refs/{ref}`.
#[derive(Debug, Deserialize, ToSchema)]
struct UpdateRefBody {
    sha: Option<String>,
    /// Allow a move that is not a fast-forward (a force-push).
    #[serde(default)]
    force: bool,
}

/// Moves a ref; 422 "Update is not a fast forward" unless `force`.
#[utoipa::path(patch, operation_id = "git/update-ref", path = "/api/v3/repos/{owner}/{repo}/git/refs/{*ref}", tag = "git",
    params(OwnerRepo, ("ref" = String, Path, description = "A ref name without `refs/` (`heads/main`)")),
    request_body = UpdateRefBody,
    responses((status = 200, description = "The ref", body = schemas::GitRef)))]
async fn update_ref(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name, short)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<UpdateRefBody>,
) -> Result<Response, ApiError> {
    let access = access(&state, &who, &owner, &name)?;
    let sha = body
        .sha
        .ok_or_else(|| ApiError::missing_field("Reference", "sha"))?;
    state
        .service
        .update_ref(&who, &access, &short, &sha, body.force)
        .await?;
    let repo = rendered(&state, links, &who, &owner, &name)?;
    let full = guts_service::ref_from_path(&short).ok_or_else(ApiError::not_found)?;
    Ok(Json(render_ref(&state, &repo, full).await?).into_response())
}

/// Deletes a ref; 422 "Reference does not exist".
#[utoipa::path(delete, operation_id = "git/delete-ref", path = "/api/v3/repos/{owner}/{repo}/git/refs/{*ref}", tag = "git",
    params(OwnerRepo, ("ref" = String, Path, description = "A ref name without `refs/` (`heads/feature`)")),
    responses((status = 204, description = "Deleted")))]
async fn delete_ref(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((owner, name, short)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let access = access(&state, &who, &owner, &name)?;
    state.service.delete_ref(&who, &access, &short).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The object kind named by a tag request's `type`, as the view spells it (the service
/// checked it against the object already).
fn object_kind(kind: &str) -> &'static str {
    match kind {
        "tree" => "tree",
        "blob" => "blob",
        "tag" => "tag",
        _ => "commit",
    }
}
