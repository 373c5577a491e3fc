//! Check runs (`/repos/{owner}/{repo}/check-runs` and
//! `/repos/{owner}/{repo}/commits/{ref}/check-runs|check-suites`): what CI tools write
//! through GitHub's checks API. Thin: creating and updating are use cases of
//! `guts_service` (one signed `CreateCheckRun` or `UpdateCheckRun`); reads go to
//! `crate::check_reads` over the folded runs (`guts_core::check_runs`).
//!
//! The reads under `commits/{ref}/` are documented here ([`ref_reads`]) and served by
//! `routes::commits`'s wildcard, for the reason `routes::statuses` gives.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_core::CheckOutput;
use guts_service::{Caller, CheckRunInput};
use http::{StatusCode, Uri};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::browse::Repo;
use crate::check_reads::{self, RunFilter, Runs, find_run};
use crate::error::{ApiError, FieldError};
use crate::extract::{AuthUser, JsonBody, MaybeUser};
use crate::json::Json;
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::{OwnerRepo, OwnerRepoRef};
use crate::state::AppState;
use crate::time::parse_iso8601;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(get_one, update))
}

/// The documented templates that `commits/{*ref}` serves (what the router test checks).
#[cfg(test)]
pub(crate) const THROUGH_COMMIT_WILDCARD: [&str; 2] = [
    "/api/v3/repos/{owner}/{repo}/commits/{ref}/check-runs",
    "/api/v3/repos/{owner}/{repo}/commits/{ref}/check-suites",
];

/// The document of the reads under `commits/{ref}/`; only its OpenAPI part is used.
pub(crate) fn ref_reads() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_for_ref))
        .routes(routes!(suites_for_ref))
}

/// A check run's `output`: title and summary are required when it is given.
#[derive(Debug, Deserialize, ToSchema)]
struct OutputBody {
    title: Option<String>,
    /// At most 65535 characters.
    summary: Option<String>,
    /// At most 65535 characters.
    text: Option<String>,
}

/// `POST check-runs` and `PATCH check-runs/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
struct CheckRunBody {
    /// The check's name (required to create).
    name: Option<String>,
    /// The commit checked (required to create; ignored on update).
    head_sha: Option<String>,
    details_url: Option<String>,
    external_id: Option<String>,
    /// `queued` (the default), `in_progress` or `completed`.
    status: Option<String>,
    /// ISO 8601.
    started_at: Option<String>,
    /// Required when completed; setting it completes the run.
    conclusion: Option<String>,
    /// ISO 8601.
    completed_at: Option<String>,
    output: Option<OutputBody>,
}

impl CheckRunBody {
    /// The fields for the use case: timestamps read, output checked for its parts.
    fn input(self) -> Result<CheckRunInput, ApiError> {
        let time = |field: &'static str, text: Option<String>| {
            text.map(|t| {
                parse_iso8601(&t).ok_or_else(|| {
                    ApiError::validation(FieldError {
                        resource: "CheckRun".into(),
                        field: field.into(),
                        code: "invalid".into(),
                        message: Some(format!("{field} must be an ISO 8601 timestamp: {t}")),
                    })
                })
            })
            .transpose()
        };
        let output = self
            .output
            .map(|o| {
                Ok::<_, ApiError>(CheckOutput {
                    title: o
                        .title
                        .ok_or_else(|| ApiError::missing_field("CheckRun", "output.title"))?,
                    summary: o
                        .summary
                        .ok_or_else(|| ApiError::missing_field("CheckRun", "output.summary"))?,
                    text: o.text,
                })
            })
            .transpose()?;
        Ok(CheckRunInput {
            started_at: time("started_at", self.started_at)?,
            completed_at: time("completed_at", self.completed_at)?,
            name: self.name,
            status: self.status,
            conclusion: self.conclusion,
            details_url: self.details_url,
            external_id: self.external_id,
            output,
        })
    }
}

/// Renders the run `id` of `owner/name` as the caller now sees it.
fn respond(
    state: &AppState,
    links: Links,
    who: &crate::extract::Authed,
    (owner, name): (&str, &str),
    id: u64,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let repo = Repo::find(state, links, owner, name, Some(who))?;
    let run = find_run(&repo, id).ok_or_else(ApiError::internal)?;
    Ok((status, Json(Runs::new(&repo).render(run))).into_response())
}

/// Creates a check run on a commit; needs push access.
#[utoipa::path(post, operation_id = "checks/create", path = "/api/v3/repos/{owner}/{repo}/check-runs", tag = "checks",
    params(OwnerRepo),
    request_body = CheckRunBody,
    responses((status = 201, description = "The new check run", body = schemas::CheckRun)))]
async fn create(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<CheckRunBody>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    if body.name.is_none() {
        return Err(ApiError::missing_field("CheckRun", "name"));
    }
    let head_sha = body
        .head_sha
        .clone()
        .ok_or_else(|| ApiError::missing_field("CheckRun", "head_sha"))?;
    let input = body.input()?;
    let (_, op) = state
        .service
        .create_check_run(&who, &access, &head_sha, input)
        .await?;
    let id = op.numeric();
    respond(
        &state,
        links,
        &who,
        (&owner, &name),
        id,
        StatusCode::CREATED,
    )
}

/// Changes a check run; needs push access.
#[utoipa::path(patch, operation_id = "checks/update", path = "/api/v3/repos/{owner}/{repo}/check-runs/{check_run_id}", tag = "checks",
    params(OwnerRepo, ("check_run_id" = u64, Path, description = "The check run's id")),
    request_body = CheckRunBody,
    responses((status = 200, description = "The check run", body = schemas::CheckRun)))]
async fn update(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name, id)): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<CheckRunBody>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    let input = body.input()?;
    state
        .service
        .update_check_run(&who, &access, id, input)
        .await?;
    respond(&state, links, &who, (&owner, &name), id, StatusCode::OK)
}

/// One check run.
#[utoipa::path(get, operation_id = "checks/get", path = "/api/v3/repos/{owner}/{repo}/check-runs/{check_run_id}", tag = "checks",
    params(OwnerRepo, ("check_run_id" = u64, Path, description = "The check run's id")),
    responses((status = 200, description = "The check run", body = schemas::CheckRun)))]
async fn get_one(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, id)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?;
    let run = find_run(&repo, id).ok_or_else(ApiError::not_found)?;
    Ok(Json(Runs::new(&repo).render(run)).into_response())
}

/// The check runs of the commit `ref` names, newest first.
#[utoipa::path(get, operation_id = "checks/list-for-ref", path = "/api/v3/repos/{owner}/{repo}/commits/{ref}/check-runs", tag = "checks",
    params(OwnerRepoRef, RunFilter, PageParams),
    responses((status = 200, description = "One page of check runs", body = schemas::CheckRunList)))]
async fn list_for_ref(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path(path): Path<(String, String, String)>,
    uri: Uri,
) -> Result<Response, ApiError> {
    check_reads::list_for_ref(&state, links, page, caller.as_ref(), path, &uri).await
}

/// The check suite of the commit `ref` names (one synthesised from its runs).
#[utoipa::path(get, operation_id = "checks/list-suites-for-ref", path = "/api/v3/repos/{owner}/{repo}/commits/{ref}/check-suites", tag = "checks",
    params(OwnerRepoRef, RunFilter, PageParams),
    responses((status = 200, description = "The commit's check suites", body = schemas::CheckSuiteList)))]
async fn suites_for_ref(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path(path): Path<(String, String, String)>,
    uri: Uri,
) -> Result<Response, ApiError> {
    check_reads::suites_for_ref(&state, links, page, caller.as_ref(), path, &uri).await
}
