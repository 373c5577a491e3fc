//! Repository contents writes (`PUT`/`DELETE /repos/{owner}/{repo}/contents/{path}`):
//! one commit that creates, replaces or deletes one file on a branch, as bots and CI
//! tools write without git. Thin: the body is extracted, `Service::write_file` checks
//! the push permission, writes the commit and moves the branch with one signed
//! `UpdateRef` (refused where a push would be), and the answer is GitHub's
//! `file-commit` read back from the store.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_service::{Caller, FileRequest, FileWritten};
use guts_storage::browse::PathContent;
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::browse::Repo;
use crate::error::ApiError;
use crate::extract::{AuthUser, Authed, JsonBody};
use crate::git_views::FileCommit;
use crate::json::Json;
use crate::links::Links;
use crate::openapi::schemas;
use crate::params::{OwnerRepo, PersonBody, decode_base64, person};
use crate::state::AppState;

/// The wildcard `{*path}` route is annotated with axum's template; the served
/// document names the parameter `{path}` (see [`crate::openapi::finish`]).
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_file, delete_file))
}

/// `PUT …/contents/{path}`.
#[derive(Debug, Deserialize, ToSchema)]
struct PutBody {
    /// The commit message.
    message: Option<String>,
    /// The file's new bytes in base64.
    content: Option<String>,
    /// The blob being replaced: required when the file exists.
    sha: Option<String>,
    /// The default branch when absent.
    branch: Option<String>,
    committer: Option<PersonBody>,
    author: Option<PersonBody>,
}

/// `DELETE …/contents/{path}`.
#[derive(Debug, Deserialize, ToSchema)]
struct DeleteBody {
    message: Option<String>,
    /// The blob being deleted.
    sha: Option<String>,
    branch: Option<String>,
    committer: Option<PersonBody>,
    author: Option<PersonBody>,
}

/// The commit a write made, with the file (`None` once deleted), as GitHub answers.
async fn answer(
    state: &AppState,
    links: Links,
    who: &Authed,
    (owner, name, path): (&str, &str, String),
    written: FileWritten,
) -> Result<FileCommit, ApiError> {
    let repo = Repo::find(state, links, owner, name, Some(who))?;
    let (commit_id, deleted) = (written.commit, written.blob.is_none());
    let (commit, entry) = repo
        .browse(state, move |b| {
            let commit = b.commit(&commit_id)?;
            let entry = if deleted {
                None
            } else {
                match b.at_path(&commit_id, &path, 0)? {
                    Some(PathContent::Blob { entry, .. } | PathContent::Submodule(entry)) => {
                        Some(entry)
                    }
                    Some(PathContent::Dir(_)) | None => None,
                }
            };
            Ok((commit, entry))
        })
        .await?;
    Ok(FileCommit::new(&repo, entry, &written.branch, commit))
}

/// Creates (201) or replaces (200, `sha` naming the current blob) a file with one
/// commit on `branch`. 409 for a stale `sha` or a protected branch, 422 for a missing
/// `sha`, 404 for a branch that does not exist.
#[utoipa::path(put, operation_id = "repos/create-or-update-file-contents", path = "/api/v3/repos/{owner}/{repo}/contents/{*path}", tag = "contents",
    params(OwnerRepo, ("path" = String, Path, description = "The file's path")),
    request_body = PutBody,
    responses(
        (status = 200, description = "Replaced", body = schemas::FileCommit),
        (status = 201, description = "Created", body = schemas::FileCommit)))]
async fn put_file(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name, path)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<PutBody>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    let message = body
        .message
        .ok_or_else(|| ApiError::missing_field("Content", "message"))?;
    let content = body
        .content
        .ok_or_else(|| ApiError::missing_field("Content", "content"))?;
    let request = FileRequest {
        path: path.clone(),
        branch: body.branch,
        sha: body.sha,
        content: Some(decode_base64("Content", "content", &content)?),
        message,
        author: person(body.author, "Content", "author")?,
        committer: person(body.committer, "Content", "committer")?,
    };
    let written = state.service.write_file(&who, &access, request).await?;
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let view = answer(&state, links, &who, (&owner, &name, path), written).await?;
    Ok((status, Json(view)).into_response())
}

/// Deletes a file with one commit on `branch`: `sha` must name its blob (409
/// otherwise, 422 when absent); 404 when no file is there.
#[utoipa::path(delete, operation_id = "repos/delete-file", path = "/api/v3/repos/{owner}/{repo}/contents/{*path}", tag = "contents",
    params(OwnerRepo, ("path" = String, Path, description = "The file's path")),
    request_body = DeleteBody,
    responses((status = 200, description = "Deleted", body = schemas::FileCommit)))]
async fn delete_file(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name, path)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<DeleteBody>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    let message = body
        .message
        .ok_or_else(|| ApiError::missing_field("Content", "message"))?;
    let sha = body
        .sha
        .ok_or_else(|| ApiError::missing_field("Content", "sha"))?;
    let request = FileRequest {
        path: path.clone(),
        branch: body.branch,
        sha: Some(sha),
        content: None,
        message,
        author: person(body.author, "Content", "author")?,
        committer: person(body.committer, "Content", "committer")?,
    };
    let written = state.service.write_file(&who, &access, request).await?;
    let view = answer(&state, links, &who, (&owner, &name, path), written).await?;
    Ok(Json(view).into_response())
}
