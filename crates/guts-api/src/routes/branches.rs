//! Branches (`/repos/{owner}/{repo}/branches`, `…/branches/{branch}`) and branch
//! protection (`…/branches/{branch}/protection`): GitHub's shapes for the branches of
//! the folded state and for the rules the fold enforces on pushes and merges (no
//! force-push, no deletion, required approving reviews, dismissal of stale approvals).
//! Protection changes are signed `SetBranchProtection` operations; the fold decides
//! who may make them (admins).

use crate::json::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guts_core::{BranchProtection, RequiredChecks};
use guts_storage::Scope;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::browse::{Repo, hex};
use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody, MaybeUser, VisibleRepo};
use crate::git_views::{Branch, Commit, Protection, ShortBranch};
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::OwnerRepo;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_branches))
        .routes(routes!(get_branch))
        .routes(routes!(get_protection, put_protection, delete_protection))
        .routes(routes!(get_admin_enforcement))
        .routes(routes!(get_review_rule))
}

/// Whether `branch` (short, `main`) has a protection in the folded state.
fn is_protected(repo: &Repo, branch: &str) -> bool {
    repo.view
        .state
        .protections
        .contains_key(&format!("refs/heads/{branch}"))
}

/// `GET /branches`: the branches of the folded state, in name order; an empty
/// repository has none.
#[utoipa::path(get, path = "/api/v3/repos/{owner}/{repo}/branches", tag = "branches",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "The branches", body = Vec<serde_json::Value>)))]
async fn list_branches(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?;
    let branches: Vec<(String, String)> = repo
        .view
        .state
        .refs
        .iter()
        .filter_map(|(full, r)| {
            let short = full.strip_prefix("refs/heads/")?;
            Some((short.to_string(), hex(r.target.as_bytes())))
        })
        .collect();
    let (items, headers) = page.apply(branches);
    let body: Vec<ShortBranch> = items
        .into_iter()
        .map(|(branch, sha)| {
            let protected = is_protected(&repo, &branch);
            ShortBranch::new(&repo, branch, protected, sha)
        })
        .collect();
    Ok((headers, Json(body)).into_response())
}

/// `GET /branches/{branch}`: the branch with its head commit in full.
#[utoipa::path(get, path = "/api/v3/repos/{owner}/{repo}/branches/{branch}", tag = "branches",
    params(OwnerRepoBranch),
    responses((status = 200, description = "The branch", body = serde_json::Value)))]
async fn get_branch(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, branch)): Path<(String, String, String)>,
) -> Result<Json<Branch>, ApiError> {
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?;
    let target = repo
        .view
        .state
        .branch(&branch)
        .map(|target| *target.as_bytes())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Branch not found"))?;
    let commit = repo.browse(&state, move |b| Ok(b.commit(&target)?)).await?;
    let protected = is_protected(&repo, &branch);
    let commit = Commit::new(&repo, commit);
    Ok(Json(Branch::new(&repo, branch, protected, commit)))
}

/// `{owner}/{repo}/{branch}`, the path parameters of the protection routes.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct OwnerRepoBranch {
    owner: String,
    repo: String,
    /// Short branch name (`main`).
    branch: String,
}

#[derive(Debug, Deserialize, ToSchema)]
struct Reviews {
    #[serde(default)]
    required_approving_review_count: Option<u8>,
    /// Approvals count only for the head they approved: new commits need new ones.
    #[serde(default)]
    dismiss_stale_reviews: Option<bool>,
}

/// `required_status_checks`: `contexts` (deprecated by GitHub, still sent by many
/// tools) and `checks` name the required contexts together.
#[derive(Debug, Deserialize, ToSchema)]
struct StatusChecks {
    #[serde(default)]
    strict: Option<bool>,
    #[serde(default)]
    contexts: Option<Vec<String>>,
    #[serde(default)]
    checks: Option<Vec<CheckName>>,
}

/// One of `required_status_checks.checks`; `app_id` is accepted and not kept (Guts
/// has no apps: any poster with push access counts).
#[derive(Debug, Deserialize, ToSchema)]
struct CheckName {
    context: String,
}

impl StatusChecks {
    /// The rule, with each context once (compared case-insensitively, as statuses).
    fn required(self) -> RequiredChecks {
        let mut contexts: Vec<String> = Vec::new();
        let named = self.contexts.into_iter().flatten();
        for context in named.chain(self.checks.into_iter().flatten().map(|c| c.context)) {
            if !contexts.iter().any(|c| c.eq_ignore_ascii_case(&context)) {
                contexts.push(context);
            }
        }
        RequiredChecks {
            strict: self.strict.unwrap_or(false),
            contexts,
        }
    }
}

/// GitHub's request: the four required keys may be `null`; Guts reads the ones it
/// enforces and accepts the rest.
#[derive(Debug, Deserialize, ToSchema)]
struct PutProtection {
    #[serde(default)]
    required_status_checks: Option<StatusChecks>,
    #[serde(default)]
    required_pull_request_reviews: Option<Reviews>,
    #[serde(default)]
    allow_force_pushes: Option<bool>,
    #[serde(default)]
    allow_deletions: Option<bool>,
}

fn full_branch(branch: &str) -> Result<String, ApiError> {
    Ok(guts_service::branch_ref(branch)?)
}

/// A branch's protection; 404 "Branch not protected" when it has none.
#[utoipa::path(get, path = "/api/v3/repos/{owner}/{repo}/branches/{branch}/protection",
    tag = "branches", params(OwnerRepoBranch),
    responses((status = 200, description = "The protection", body = schemas::BranchProtection)))]
async fn get_protection(
    links: Links,
    VisibleRepo { view, .. }: VisibleRepo,
    Path(path): Path<(String, String, String)>,
) -> Result<Json<Protection>, ApiError> {
    Ok(Json(protection_of(&links, &view, &path)?))
}

/// The protection of `branch` in `view` as GitHub shows it; 404 "Branch not
/// protected" without one.
fn protection_of(
    links: &Links,
    view: &guts_storage::RepoView,
    (owner, repo, branch): &(String, String, String),
) -> Result<Protection, ApiError> {
    let full = full_branch(branch)?;
    let protection = view
        .state
        .protections
        .get(&full)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Branch not protected"))?;
    Ok(Protection::new(links, owner, repo, branch, protection))
}

/// Whether admins are held to a protection: always (the fold enforces every rule on
/// every push and merge, whoever makes it).
#[utoipa::path(get, operation_id = "repos/get-admin-branch-protection", path = "/api/v3/repos/{owner}/{repo}/branches/{branch}/protection/enforce_admins",
    tag = "branches", params(OwnerRepoBranch),
    responses((status = 200, description = "The admin rule", body = schemas::EnforceAdmins)))]
async fn get_admin_enforcement(
    links: Links,
    VisibleRepo { view, .. }: VisibleRepo,
    Path(path): Path<(String, String, String)>,
) -> Result<Json<crate::git_views::EnforceAdmins>, ApiError> {
    Ok(Json(protection_of(&links, &view, &path)?.enforce_admins()))
}

/// A protection's review rule; 404 when it requires no reviews.
#[utoipa::path(get, operation_id = "repos/get-pull-request-review-protection", path = "/api/v3/repos/{owner}/{repo}/branches/{branch}/protection/required_pull_request_reviews",
    tag = "branches", params(OwnerRepoBranch),
    responses((status = 200, description = "The review rule", body = schemas::RequiredReviews)))]
async fn get_review_rule(
    links: Links,
    VisibleRepo { view, .. }: VisibleRepo,
    Path(path): Path<(String, String, String)>,
) -> Result<Json<crate::git_views::RequiredReviews>, ApiError> {
    protection_of(&links, &view, &path)?
        .required_reviews()
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

/// Sets a branch's protection (a signed `SetBranchProtection`; admins only).
#[utoipa::path(put, path = "/api/v3/repos/{owner}/{repo}/branches/{branch}/protection",
    tag = "branches", params(OwnerRepoBranch), request_body = PutProtection,
    responses((status = 200, description = "The new protection", body = schemas::BranchProtection)))]
async fn put_protection(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((owner, repo, branch)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<PutProtection>,
) -> Result<Json<Protection>, ApiError> {
    let reviews = body.required_pull_request_reviews;
    let protection = BranchProtection {
        no_force_push: !body.allow_force_pushes.unwrap_or(false),
        no_deletion: !body.allow_deletions.unwrap_or(false),
        required_approvals: reviews
            .as_ref()
            .and_then(|r| r.required_approving_review_count)
            .unwrap_or(0),
        dismiss_stale_reviews: reviews
            .as_ref()
            .and_then(|r| r.dismiss_stale_reviews)
            .unwrap_or(false),
        required_checks: body.required_status_checks.map(StatusChecks::required),
    };
    state
        .service
        .set_branch_protection(&authed, &view, &branch, Some(protection.clone()))
        .await?;
    Ok(Json(Protection::new(
        &links,
        &owner,
        &repo,
        &branch,
        &protection,
    )))
}

/// Removes a branch's protection.
#[utoipa::path(delete, path = "/api/v3/repos/{owner}/{repo}/branches/{branch}/protection",
    tag = "branches", params(OwnerRepoBranch),
    responses((status = 204, description = "Removed")))]
async fn delete_protection(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, branch)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    authed.require(Scope::Repo)?;
    if !view.state.protections.contains_key(&full_branch(&branch)?) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "Branch not protected"));
    }
    state
        .service
        .set_branch_protection(&authed, &view, &branch, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
