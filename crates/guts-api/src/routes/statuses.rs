//! Commit statuses (`/repos/{owner}/{repo}/statuses/{sha}` and
//! `/repos/{owner}/{repo}/commits/{ref}/status[es]`): what CI posts about a commit and
//! the combined state of its contexts. Thin: posting is one use case of
//! `guts_service` (one signed `SetStatus`); reads resolve the ref in git and read the
//! folded statuses (`guts_core::checks`).
//!
//! `commits/{ref}/status` and `commits/{ref}/statuses` cannot be routes of their own:
//! the router refuses them beside `commits/{*ref}` (a ref may hold `/`). So they are
//! documented here ([`ref_reads`]) and reached through `routes::commits`, whose
//! wildcard handler hands a ref ending in `/status` or `/statuses` to
//! `crate::status_reads`, as these documented handlers do: a branch named `a/b` works
//! as on GitHub.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_service::{Caller, NewStatus};
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::browse::{Repo, hex};
use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody, MaybeUser};
use crate::json::Json;
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::{OwnerRepo, OwnerRepoRef};
use crate::state::AppState;
use crate::status_reads::{self, Statuses, find_status};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create))
}

/// The documented templates that `commits/{*ref}` serves (what the router test checks).
#[cfg(test)]
pub(crate) const THROUGH_COMMIT_WILDCARD: [&str; 2] = [
    "/api/v3/repos/{owner}/{repo}/commits/{ref}/status",
    "/api/v3/repos/{owner}/{repo}/commits/{ref}/statuses",
];

/// The document of the reads under `commits/{ref}/`; only its OpenAPI part is used
/// (see the module docs).
pub(crate) fn ref_reads() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_for_ref))
        .routes(routes!(combined))
}

/// `POST statuses/{sha}`.
#[derive(Debug, Deserialize, ToSchema)]
struct StatusBody {
    /// `error`, `failure`, `pending` or `success`.
    state: Option<String>,
    /// Where the status's details are (a build log).
    target_url: Option<String>,
    /// At most 140 characters.
    description: Option<String>,
    /// `default` when absent; compared case-insensitively.
    context: Option<String>,
}

/// Posts a status on a commit; needs push access.
#[utoipa::path(post, operation_id = "repos/create-commit-status", path = "/api/v3/repos/{owner}/{repo}/statuses/{sha}", tag = "repos",
    params(OwnerRepo, ("sha" = String, Path, description = "The commit's full sha")),
    request_body = StatusBody,
    responses((status = 201, description = "The new status", body = schemas::Status)))]
async fn create(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name, sha)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<StatusBody>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    let state_text = body
        .state
        .ok_or_else(|| ApiError::missing_field("Status", "state"))?;
    let new = NewStatus {
        state: state_text,
        context: body.context,
        description: body.description,
        target_url: body.target_url,
    };
    let (_, op) = state
        .service
        .create_status(&who, &access, &sha, new)
        .await?;
    let repo = Repo::find(&state, links.clone(), &owner, &name, Some(&who))?;
    let (commit, status) = find_status(&repo, &op).ok_or_else(ApiError::internal)?;
    let sha = hex(commit.as_bytes());
    let body = Statuses::new(&state, &links, &repo, &sha).full(status);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Every status of the commit `ref` names, newest first.
#[utoipa::path(get, operation_id = "repos/list-commit-statuses-for-ref", path = "/api/v3/repos/{owner}/{repo}/commits/{ref}/statuses", tag = "repos",
    params(OwnerRepoRef, PageParams),
    responses((status = 200, description = "One page of statuses", body = Vec<schemas::Status>)))]
async fn list_for_ref(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path(path): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    status_reads::list_for_ref(&state, links, page, caller.as_ref(), path).await
}

/// The combined status of the commit `ref` names: the latest status of each context.
#[utoipa::path(get, operation_id = "repos/get-combined-status-for-ref", path = "/api/v3/repos/{owner}/{repo}/commits/{ref}/status", tag = "repos",
    params(OwnerRepoRef, PageParams),
    responses((status = 200, description = "The combined status", body = schemas::CombinedStatus)))]
async fn combined(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path(path): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    status_reads::combined(&state, links, page, caller.as_ref(), path).await
}
