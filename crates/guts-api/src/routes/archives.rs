//! Repository archives in the REST API (`/repos/{o}/{r}/tarball/{ref}`,
//! `/zipball/{ref}`, and both without a ref for the default branch): the ref is
//! resolved to a commit here, and the answer is GitHub's 302 to the download that
//! `routes::downloads` streams (see `archive_links` for why a redirect, and why by
//! commit id). GitHub's description documents only the 302, and every GitHub client
//! follows it (octokit, PyGithub's requests, `curl -L`, `gh`); the redirect stays on
//! this origin, so clients keep sending their credentials for a private repository.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_storage::archive::Format;
use http::{HeaderValue, StatusCode, header};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::archive_links::download_url;
use crate::browse::{Repo, hex};
use crate::error::ApiError;
use crate::extract::MaybeUser;
use crate::links::Links;
use crate::params::OwnerRepo;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tarball))
        .routes(routes!(tarball_default))
        .routes(routes!(zipball))
        .routes(routes!(zipball_default))
}

/// A gzipped tar of the tree at a branch, tag or commit: 302 to its download.
#[utoipa::path(get, operation_id = "repos/download-tarball-archive", path = "/api/v3/repos/{owner}/{repo}/tarball/{*ref}", tag = "repos",
    params(OwnerRepo, ("ref" = String, Path, description = "A branch, tag or commit")),
    responses((status = 302, description = "Redirect to the archive",
        headers(("Location" = String, description = "Where the archive is streamed")))))]
async fn tarball(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, rev)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    redirect(
        &state,
        links,
        caller,
        &owner,
        &name,
        Some(rev),
        Format::TarGz,
    )
    .await
}

/// A gzipped tar of the default branch: 302 to its download.
#[utoipa::path(get, operation_id = "repos/download-tarball-archive-default", path = "/api/v3/repos/{owner}/{repo}/tarball", tag = "repos",
    params(OwnerRepo),
    responses((status = 302, description = "Redirect to the archive",
        headers(("Location" = String, description = "Where the archive is streamed")))))]
async fn tarball_default(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    redirect(&state, links, caller, &owner, &name, None, Format::TarGz).await
}

/// A zip of the tree at a branch, tag or commit: 302 to its download.
#[utoipa::path(get, operation_id = "repos/download-zipball-archive", path = "/api/v3/repos/{owner}/{repo}/zipball/{*ref}", tag = "repos",
    params(OwnerRepo, ("ref" = String, Path, description = "A branch, tag or commit")),
    responses((status = 302, description = "Redirect to the archive",
        headers(("Location" = String, description = "Where the archive is streamed")))))]
async fn zipball(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, rev)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    redirect(&state, links, caller, &owner, &name, Some(rev), Format::Zip).await
}

/// A zip of the default branch: 302 to its download.
#[utoipa::path(get, operation_id = "repos/download-zipball-archive-default", path = "/api/v3/repos/{owner}/{repo}/zipball", tag = "repos",
    params(OwnerRepo),
    responses((status = 302, description = "Redirect to the archive",
        headers(("Location" = String, description = "Where the archive is streamed")))))]
async fn zipball_default(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    redirect(&state, links, caller, &owner, &name, None, Format::Zip).await
}

/// 302 to the archive of the commit `rev` names (the default branch without one);
/// 404 for a ref that names no commit, or an empty repository, as GitHub answers.
async fn redirect(
    state: &AppState,
    links: Links,
    caller: Option<crate::extract::Authed>,
    owner: &str,
    name: &str,
    rev: Option<String>,
    format: Format,
) -> Result<Response, ApiError> {
    let repo = Repo::find(state, links, owner, name, caller.as_ref())?;
    let rev = rev
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| repo.default_branch.clone());
    let commit = repo
        .browse(state, move |b| Ok(b.resolve(&rev).ok()))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let location = download_url(&repo, format, &hex(&commit));
    let mut response = StatusCode::FOUND.into_response();
    let value = HeaderValue::from_str(&location).map_err(|_| ApiError::internal())?;
    response.headers_mut().insert(header::LOCATION, value);
    Ok(response)
}
