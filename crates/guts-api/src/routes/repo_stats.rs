//! What a repository's front page shows about it: `GET /repos/{o}/{r}/tags`, `/readme`
//! (and `/readme/{dir}`), `/languages` and `/contributors`. Reads only; each walk is
//! bounded in `guts_storage::browse` (see its `stats` module), and runs on the
//! blocking pool through a per-request `Browser`.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::browse::{Repo, hex};
use crate::error::ApiError;
use crate::extract::MaybeUser;
use crate::git_views::{Contents, Languages, Tag};
use crate::json::Json;
use crate::links::Links;
use crate::pagination::{Page, PageParams};
use crate::params::OwnerRepo;
use crate::state::AppState;
use crate::views::Contributor;

/// A README is inlined up to this size, as contents are (larger ones are described
/// with encoding `none`, without reading them).
const MAX_INLINE_BYTES: u64 = 1024 * 1024;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tags))
        .routes(routes!(readme))
        .routes(routes!(readme_in_dir))
        .routes(routes!(languages))
        .routes(routes!(contributors))
}

/// The repository's tags, newest name first, each with the commit it names.
#[utoipa::path(get, path = "/api/v3/repos/{owner}/{repo}/tags", tag = "repos",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "The tags", body = Vec<serde_json::Value>)))]
async fn tags(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?;
    let mut names: Vec<(String, [u8; 20])> = repo
        .view
        .state
        .refs
        .iter()
        .filter_map(|(full, r)| {
            let short = full.strip_prefix("refs/tags/")?;
            Some((short.to_string(), *r.target.as_bytes()))
        })
        .collect();
    names.sort_by(|a, b| b.0.cmp(&a.0));
    // Only the page's tags are peeled (an annotated tag names a tag object).
    let (items, headers) = page.apply(names);
    let peeled = repo
        .browse(&state, move |b| {
            Ok(items
                .into_iter()
                .map(|(name, target)| {
                    let commit = b.peel_to_commit(&target).ok().flatten().unwrap_or(target);
                    (name, hex(&commit))
                })
                .collect::<Vec<_>>())
        })
        .await?;
    let body: Vec<Tag> = peeled
        .into_iter()
        .map(|(name, sha)| Tag::new(&repo, name, sha))
        .collect();
    Ok((headers, Json(body)).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RefQuery {
    /// A branch, tag or sha; the default branch otherwise.
    #[serde(rename = "ref", default)]
    reference: Option<String>,
}

/// The repository's README: the first of `.github/`, the root and `docs/` holding one.
#[utoipa::path(get, path = "/api/v3/repos/{owner}/{repo}/readme", tag = "repos",
    params(OwnerRepo, RefQuery),
    responses((status = 200, description = "The README", body = serde_json::Value)))]
async fn readme(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<RefQuery>,
) -> Result<Response, ApiError> {
    find_readme(&state, links, caller, &owner, &name, None, query.reference).await
}

/// The README of one directory.
#[utoipa::path(get, path = "/api/v3/repos/{owner}/{repo}/readme/{*dir}", tag = "repos",
    params(OwnerRepo, ("dir" = String, Path, description = "A directory of the tree"), RefQuery),
    responses((status = 200, description = "The README", body = serde_json::Value)))]
async fn readme_in_dir(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, dir)): Path<(String, String, String)>,
    Query(query): Query<RefQuery>,
) -> Result<Response, ApiError> {
    find_readme(
        &state,
        links,
        caller,
        &owner,
        &name,
        Some(dir),
        query.reference,
    )
    .await
}

async fn find_readme(
    state: &AppState,
    links: Links,
    caller: Option<crate::extract::Authed>,
    owner: &str,
    name: &str,
    dir: Option<String>,
    reference: Option<String>,
) -> Result<Response, ApiError> {
    let repo = Repo::find(state, links, owner, name, caller.as_ref())?;
    let at = reference
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| repo.default_branch.clone());
    let rev = at.clone();
    let found = repo
        .browse(state, move |b| {
            let Ok(commit) = b.resolve(&rev) else {
                return Ok(None);
            };
            Ok(b.readme(&commit, dir.as_deref(), MAX_INLINE_BYTES)?)
        })
        .await?
        .ok_or_else(ApiError::not_found)?;
    let body = Contents::blob(&repo, found.entry, found.data.as_deref(), &at);
    Ok(Json(body).into_response())
}

/// Bytes of code per language on the default branch.
#[utoipa::path(get, path = "/api/v3/repos/{owner}/{repo}/languages", tag = "repos",
    params(OwnerRepo),
    responses((status = 200, description = "Bytes per language", body = serde_json::Value)))]
async fn languages(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<Languages>, ApiError> {
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?;
    let rev = repo.default_branch.clone();
    let counted = repo
        .browse(&state, move |b| match b.resolve(&rev) {
            Ok(commit) => Ok(b.languages(&commit)?),
            // An empty repository has no languages.
            Err(_) => Ok(Vec::new()),
        })
        .await?;
    Ok(Json(Languages(counted)))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ContributorsQuery {
    /// `1` or `true` to list authors without an account too.
    #[serde(default)]
    anon: Option<String>,
}

/// Commits per author on the default branch, most first. Authors are matched to
/// accounts by their no-reply address (Guts keeps no email addresses); the others are
/// listed, as `Anonymous`, only with `anon=1`.
#[utoipa::path(get, path = "/api/v3/repos/{owner}/{repo}/contributors", tag = "repos",
    params(OwnerRepo, ContributorsQuery, PageParams),
    responses((status = 200, description = "The contributors", body = Vec<serde_json::Value>),
        (status = 204, description = "The repository is empty")))]
async fn contributors(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<ContributorsQuery>,
) -> Result<Response, ApiError> {
    let repo = Repo::find(&state, links.clone(), &owner, &name, caller.as_ref())?;
    let anon = matches!(query.anon.as_deref(), Some("1" | "true"));
    let rev = repo.default_branch.clone();
    let Some(authors) = repo
        .browse(&state, move |b| match b.resolve(&rev) {
            Ok(head) => Ok(Some(b.authors(&head)?)),
            Err(_) => Ok(None),
        })
        .await?
    else {
        // GitHub's answer for an empty repository.
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    // Several addresses may name one account: their commits add up.
    let mut listed: Vec<(Option<guts_storage::UserRecord>, String, String, u64)> = Vec::new();
    for author in authors.authors {
        let user = state.service.user_for_email(&author.email);
        if let Some(u) = &user
            && let Some(row) = listed
                .iter_mut()
                .find(|(seen, ..)| seen.as_ref().is_some_and(|s| s.id == u.id))
        {
            row.3 += author.commits;
            continue;
        }
        if user.is_some() || anon {
            listed.push((user, author.name, author.email, author.commits));
        }
    }
    listed.sort_by_key(|row| std::cmp::Reverse(row.3));
    let (items, headers) = page.apply(listed);
    let body: Vec<Contributor> = items
        .into_iter()
        .map(|(user, name, email, commits)| match user {
            Some(user) => Contributor::user(&links, &user, commits),
            None => Contributor::anonymous(name, email, commits),
        })
        .collect();
    Ok((headers, Json(body)).into_response())
}
