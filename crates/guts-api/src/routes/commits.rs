//! Commits (`/repos/{owner}/{repo}/commits`) and comparisons (`/compare/{basehead}`):
//! history listings with git log's filters, one commit with its changed files, and
//! how two revisions relate.

use crate::json::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use guts_storage::browse::LogQuery;
use guts_storage::{Browser, Oid};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::browse::{Repo, no_commit};
use crate::check_reads;
use crate::error::{ApiError, FieldError};
use crate::extract::MaybeUser;
use crate::git_views::{Commit, CommitWithFiles, Compared, Comparison};
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::OwnerRepo;
use crate::state::AppState;
use crate::status_reads;
use crate::time::parse_iso8601;

/// GitHub lists at most this many files for one commit or comparison.
const MAX_FILES: usize = 300;
/// GitHub lists at most this many commits in a comparison.
const MAX_COMPARE_COMMITS: usize = 250;

/// The wildcard `{*ref}` and `{*basehead}` routes are annotated with axum's template;
/// the served document names the parameters `{ref}` and `{basehead}` (see
/// [`crate::openapi::finish`]).
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_commits))
        .routes(routes!(get_commit))
        .routes(routes!(compare))
}

/// The filters of `GET /commits` (`page` and `per_page` are read by [`Page`]).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CommitsQuery {
    /// A branch, tag or sha to list from; the default branch otherwise.
    #[serde(default)]
    sha: Option<String>,
    /// Only commits that changed this file or directory.
    #[serde(default)]
    path: Option<String>,
    /// ISO 8601: only commits at or after.
    #[serde(default)]
    since: Option<String>,
    /// ISO 8601: only commits at or before.
    #[serde(default)]
    until: Option<String>,
    /// A login or (part of) an email address.
    #[serde(default)]
    author: Option<String>,
}

fn parse_time(field: &'static str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            parse_iso8601(v).ok_or_else(|| {
                ApiError::validation(FieldError {
                    resource: "Commit".into(),
                    field: field.into(),
                    code: "invalid".into(),
                    message: Some(format!("{field} must be an ISO 8601 timestamp: {v}")),
                })
            })
        })
        .transpose()
}

impl CommitsQuery {
    fn log_query(&self) -> Result<LogQuery, ApiError> {
        let nonempty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        Ok(LogQuery {
            path: nonempty(&self.path),
            since: parse_time("since", self.since.as_deref())?,
            until: parse_time("until", self.until.as_deref())?,
            author: nonempty(&self.author),
        })
    }
}

/// The history from a revision (the default branch by default), newest first.
#[utoipa::path(get, operation_id = "repos/list-commits", path = "/api/v3/repos/{owner}/{repo}/commits", tag = "commits",
    params(OwnerRepo, CommitsQuery, PageParams),
    responses((status = 200, description = "One page of commits", body = Vec<schemas::Commit>)))]
async fn list_commits(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<CommitsQuery>,
) -> Result<Response, ApiError> {
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?.nonempty()?;
    let log = query.log_query()?;
    let start = query
        .sha
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| repo.default_branch.clone());
    let (commits, headers) = repo
        .browse(&state, move |b| {
            let tip = b.resolve(&start)?;
            let (ids, headers) = page.apply(b.log(&tip, &log)?);
            let commits = ids
                .iter()
                .map(|id| b.commit(id))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((commits, headers))
        })
        .await?;
    let body: Vec<Commit> = commits.into_iter().map(|c| Commit::new(&repo, c)).collect();
    Ok((headers, Json(body)).into_response())
}

/// `GET /commits/{ref}`: a branch, tag or sha; 422 when it names no commit, as
/// GitHub answers.
#[utoipa::path(get, operation_id = "repos/get-commit", path = "/api/v3/repos/{owner}/{repo}/commits/{*ref}", tag = "commits",
    params(OwnerRepo, ("ref" = String, Path, description = "A branch, tag or sha")),
    responses((status = 200, description = "The commit with its stats and files", body = schemas::Commit)))]
async fn get_commit(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, rev)): Path<(String, String, String)>,
    uri: http::Uri,
) -> Result<Response, ApiError> {
    // `commits/{ref}/status[es]`, which the router cannot tell from this wildcard.
    if let Some(rev) = rev.strip_suffix("/status") {
        let path = (owner, name, rev.to_owned());
        return status_reads::combined(&state, links, page, caller.as_ref(), path).await;
    }
    if let Some(rev) = rev.strip_suffix("/statuses") {
        let path = (owner, name, rev.to_owned());
        return status_reads::list_for_ref(&state, links, page, caller.as_ref(), path).await;
    }
    // And `commits/{ref}/check-runs|check-suites`.
    if let Some(rev) = rev.strip_suffix("/check-runs") {
        let path = (owner, name, rev.to_owned());
        return check_reads::list_for_ref(&state, links, page, caller.as_ref(), path, &uri).await;
    }
    if let Some(rev) = rev.strip_suffix("/check-suites") {
        let path = (owner, name, rev.to_owned());
        return check_reads::suites_for_ref(&state, links, page, caller.as_ref(), path, &uri).await;
    }
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?.nonempty()?;
    let (commit, changes) = repo
        .browse(&state, move |b| {
            let id = b.resolve(&rev).map_err(|_| no_commit(&rev))?;
            let commit = b.commit(&id)?;
            let changes = b.commit_changes(&commit)?;
            Ok((commit, changes))
        })
        .await?;
    Ok(Json(CommitWithFiles::new(&repo, commit, changes, MAX_FILES)).into_response())
}

/// `base...head` (or `base..head`); an `owner:` prefix on either side (GitHub's
/// cross-fork form) is accepted for this repository.
fn split_basehead(basehead: &str) -> Result<(String, String), ApiError> {
    let (base, head) = basehead
        .split_once("...")
        .or_else(|| basehead.split_once(".."))
        .ok_or_else(ApiError::not_found)?;
    let strip = |side: &str| side.rsplit(':').next().unwrap_or(side).to_string();
    Ok((strip(base), strip(head)))
}

fn run_compare(b: &Browser, base: &str, head: &str) -> Result<Compared, ApiError> {
    let base_id = b.resolve(base)?;
    let head_id = b.resolve(head)?;
    let comparison = b.compare(&base_id, &head_id)?;
    let merge_base = comparison
        .merge_base
        .as_ref()
        .map(|id| b.commit(id))
        .transpose()?;
    let commits = comparison
        .ahead
        .iter()
        .take(MAX_COMPARE_COMMITS)
        .map(|id| b.commit(id))
        .collect::<Result<Vec<_>, _>>()?;
    let base = b.commit(&base_id)?;
    let from: Oid = merge_base.as_ref().map_or(base.tree, |m| m.tree);
    let changes = b.diff(Some(&from), &b.commit(&head_id)?.tree)?;
    let ahead_by = comparison.ahead.len();
    let behind_by = comparison.behind_by;
    Ok(Compared {
        base,
        merge_base,
        status: status(ahead_by, behind_by),
        commits,
        ahead_by,
        behind_by,
        changes,
    })
}

fn status(ahead: usize, behind: usize) -> &'static str {
    match (ahead > 0, behind > 0) {
        (true, true) => "diverged",
        (true, false) => "ahead",
        (false, true) => "behind",
        (false, false) => "identical",
    }
}

/// How two revisions relate: the commits and files from their merge base to `head`.
#[utoipa::path(get, operation_id = "repos/compare-commits", path = "/api/v3/repos/{owner}/{repo}/compare/{*basehead}", tag = "commits",
    params(OwnerRepo, ("basehead" = String, Path, description = "`base...head` (or `base..head`)")),
    responses((status = 200, description = "The comparison", body = schemas::Comparison)))]
async fn compare(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name, basehead)): Path<(String, String, String)>,
) -> Result<Json<Comparison>, ApiError> {
    let repo = Repo::find(&state, links, &owner, &name, caller.as_ref())?.nonempty()?;
    let (base, head) = split_basehead(&basehead)?;
    let head_name = head.clone();
    let compared = repo
        .browse(&state, move |b| run_compare(b, &base, &head))
        .await?;
    Ok(Json(Comparison::new(
        &repo, &basehead, &head_name, compared, MAX_FILES,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basehead_forms() {
        let split = |s: &str| split_basehead(s).unwrap();
        assert_eq!(split("main...topic"), ("main".into(), "topic".into()));
        assert_eq!(split("main..topic"), ("main".into(), "topic".into()));
        assert_eq!(
            split("alice:main...alice:f/x"),
            ("main".into(), "f/x".into())
        );
        assert!(split_basehead("main").is_err());
        assert_eq!(status(1, 1), "diverged");
        assert_eq!(status(0, 0), "identical");
        assert_eq!(status(0, 2), "behind");
        assert_eq!(status(3, 0), "ahead");
    }
}
