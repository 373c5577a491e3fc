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
//! [`combined`] or [`list_for_ref`]: a branch named `a/b` works as on GitHub.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_core::checks::combined_state;
use guts_core::{CommitStatus, ObjectId, OpId};
use guts_service::{Caller, NewStatus};
use guts_storage::accounts::numeric_id;
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::browse::{Repo, hex, no_commit};
use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody, MaybeUser};
use crate::json::Json;
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::OwnerRepo;
use crate::state::AppState;
use crate::threads::Render;
use crate::time::iso8601;
use crate::views::{self, CombinedStatus, SimpleStatus, Status};

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

/// `{owner}/{repo}/{sha}` or `{owner}/{repo}/{ref}`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct OwnerRepoRef {
    /// The owner's login (user or organization).
    owner: String,
    /// The repository's name.
    repo: String,
    /// A branch, tag or sha.
    #[param(rename = "ref")]
    reference: String,
}

/// Renders statuses of one commit for one request.
struct Statuses<'a> {
    render: Render<'a>,
    /// `…/repos/{owner}/{repo}/statuses/{sha}`.
    url: String,
}

impl<'a> Statuses<'a> {
    fn new(state: &'a AppState, links: &'a Links, repo: &'a Repo, sha: &str) -> Self {
        Statuses {
            render: Render::new(state, links, &repo.view),
            url: repo.api(&format!("/statuses/{sha}")),
        }
    }

    fn simple(&self, status: &'a CommitStatus) -> SimpleStatus<'a> {
        let id = numeric_id(status.op.as_bytes());
        let at = iso8601(status.at.wall_ms / 1000);
        SimpleStatus {
            url: self.url.clone(),
            avatar_url: Some(self.render.user(&status.creator).avatar_url().to_owned()),
            id,
            node_id: format!("SC_{id}"),
            state: status.state.as_str(),
            description: status.description.as_deref(),
            target_url: status.target_url.as_deref(),
            context: &status.context,
            created_at: at.clone(),
            updated_at: at,
        }
    }

    fn full(&self, status: &'a CommitStatus) -> Status<'a> {
        Status {
            status: self.simple(status),
            creator: self.render.user(&status.creator),
        }
    }
}

/// The commit `rev` names in `repo`; GitHub's 422 when none.
async fn resolve(state: &AppState, repo: &Repo, rev: String) -> Result<ObjectId, ApiError> {
    let oid = repo
        .browse(state, move |b| b.resolve(&rev).map_err(|_| no_commit(&rev)))
        .await?;
    Ok(ObjectId::from_bytes(oid))
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

/// The status posted by operation `op`, with its commit.
fn find_status<'r>(repo: &'r Repo, op: &OpId) -> Option<(ObjectId, &'r CommitStatus)> {
    repo.view
        .state
        .checks
        .statuses
        .iter()
        .find_map(|(commit, contexts)| {
            let status = contexts.values().flatten().find(|s| s.op == *op)?;
            Some((*commit, status))
        })
}

/// Every status of the commit `ref` names, newest first.
#[utoipa::path(get, operation_id = "repos/list-commit-statuses-for-ref", path = "/api/v3/repos/{owner}/{repo}/commits/{ref}/statuses", tag = "repos",
    params(OwnerRepoRef, PageParams),
    responses((status = 200, description = "One page of statuses", body = Vec<schemas::Status>)))]
pub(crate) async fn list_for_ref(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, rev)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let repo = Repo::find(&state, links.clone(), &owner, &name, caller.as_ref())?.nonempty()?;
    let commit = resolve(&state, &repo, rev).await?;
    let (items, headers) = page.apply(repo.view.state.checks.all(&commit));
    let sha = hex(commit.as_bytes());
    let render = Statuses::new(&state, &links, &repo, &sha);
    let body: Vec<Status<'_>> = items.into_iter().map(|s| render.full(s)).collect();
    Ok((headers, Json(body)).into_response())
}

/// The combined status of the commit `ref` names: the latest status of each context.
#[utoipa::path(get, operation_id = "repos/get-combined-status-for-ref", path = "/api/v3/repos/{owner}/{repo}/commits/{ref}/status", tag = "repos",
    params(OwnerRepoRef, PageParams),
    responses((status = 200, description = "The combined status", body = schemas::CombinedStatus)))]
pub(crate) async fn combined(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, rev)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let repo = Repo::find(&state, links.clone(), &owner, &name, caller.as_ref())?.nonempty()?;
    let commit = resolve(&state, &repo, rev.clone()).await?;
    let latest = repo.view.state.checks.latest(&commit);
    let combined_state = combined_state(latest.iter().copied());
    let total_count = latest.len();
    let (items, headers) = page.apply(latest);
    let sha = hex(commit.as_bytes());
    let render = Statuses::new(&state, &links, &repo, &sha);
    let repository =
        views::repository(&state, &links, &repo.view, None).ok_or_else(ApiError::not_found)?;
    let body = CombinedStatus {
        state: combined_state.as_str(),
        statuses: items.into_iter().map(|s| render.simple(s)).collect(),
        total_count,
        repository,
        commit_url: repo.api(&format!("/commits/{sha}")),
        url: repo.api(&format!("/commits/{rev}/status")),
        sha,
    };
    Ok((headers, Json(body)).into_response())
}
