//! Reading check runs: rendering them in GitHub's shapes and the two reads under
//! `commits/{ref}/` (the runs of a commit, and its check suite). Shared by
//! `routes::check_runs`, which documents those reads, and `routes::commits`, whose
//! `commits/{*ref}` wildcard serves them (the router cannot tell
//! `commits/{ref}/check-runs` from a ref holding `/`), so neither route module imports
//! the other.
//!
//! Guts keeps no check suites of its own: a commit with runs has exactly one suite,
//! synthesised from the latest run of each name (GitHub's status and conclusion rules,
//! `guts_core::check_runs::suite_state`), whose id is derived from the commit.

use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use guts_core::check_runs::{CheckStatus, suite_state};
use guts_core::{CheckRun, ObjectId};
use guts_storage::accounts::numeric_id;
use http::Uri;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::browse::{Repo, hex, no_commit};
use crate::error::{ApiError, FieldError};
use crate::extract::Authed;
use crate::json::Json;
use crate::links::Links;
use crate::pagination::Page;
use crate::state::AppState;
use crate::status_reads;
use crate::time::iso8601;
use crate::views::{self, CheckRunList, CheckRunOutput, CheckSuite, CheckSuiteId, CheckSuiteList};

/// The filters of `GET commits/{ref}/check-runs` and `…/check-suites` (`page` and
/// `per_page` are read by [`Page`]).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RunFilter {
    /// Only runs (suites holding a run) of this name.
    #[serde(default)]
    check_name: Option<String>,
    /// Only runs in this status: `queued`, `in_progress` or `completed`.
    #[serde(default)]
    status: Option<String>,
    /// `latest` (the default: the latest run of each name) or `all`.
    #[serde(default)]
    filter: Option<String>,
}

/// GitHub's integer id of the suite of `commit`'s runs.
fn suite_id(commit: &ObjectId) -> u64 {
    numeric_id(&[b"check-suite:".as_slice(), commit.as_bytes()].concat())
}

/// Renders the check runs of one repository for one request.
pub(crate) struct Runs<'a> {
    repo: &'a Repo,
}

impl<'a> Runs<'a> {
    pub(crate) fn new(repo: &'a Repo) -> Self {
        Runs { repo }
    }

    pub(crate) fn render(&self, run: &'a CheckRun) -> views::CheckRun<'a> {
        let id = run.op.numeric();
        let url = self.repo.api(&format!("/check-runs/{id}"));
        let time = |t: Option<u64>| t.map(iso8601);
        let output = run.output.as_ref();
        views::CheckRun {
            id,
            node_id: format!("CR_{id}"),
            head_sha: hex(run.head.as_bytes()),
            external_id: run.external_id.as_deref(),
            html_url: None,
            details_url: run.details_url.as_deref(),
            status: run.status.as_str(),
            conclusion: run.conclusion.map(|c| c.as_str()),
            started_at: time(run.started_at),
            completed_at: time(run.completed_at),
            output: CheckRunOutput {
                title: output.map(|o| o.title.as_str()),
                summary: output.map(|o| o.summary.as_str()),
                text: output.and_then(|o| o.text.as_deref()),
                annotations_count: 0,
                annotations_url: format!("{url}/annotations"),
            },
            url,
            name: &run.name,
            check_suite: CheckSuiteId {
                id: suite_id(&run.head),
            },
            app: None,
            pull_requests: [],
        }
    }
}

/// The run GitHub's integer `id` names in `repo`.
pub(crate) fn find_run(repo: &Repo, id: u64) -> Option<&CheckRun> {
    repo.view.state.checks.runs.by_number(id)
}

fn invalid(field: &'static str, message: String) -> ApiError {
    ApiError::validation(FieldError {
        resource: "CheckRun".into(),
        field: field.into(),
        code: "invalid".into(),
        message: Some(message),
    })
}

impl RunFilter {
    /// The filter of a request's query string: GitHub's 422 when it is malformed.
    /// Read from the URI rather than through `Query`, so the `commits/{*ref}` wildcard
    /// (whose document must not list these filters) reads it only for check reads.
    fn of(uri: &Uri) -> Result<RunFilter, ApiError> {
        Query::<RunFilter>::try_from_uri(uri)
            .map(|Query(filter)| filter)
            .map_err(|e| invalid("query", e.body_text()))
    }

    /// The runs of `commit` in `repo` that pass the filter, newest first.
    fn apply<'r>(&self, repo: &'r Repo, commit: &ObjectId) -> Result<Vec<&'r CheckRun>, ApiError> {
        let runs = &repo.view.state.checks.runs;
        let listed = match self.filter.as_deref() {
            None | Some("latest") => runs.latest(commit),
            Some("all") => runs.of_commit(commit),
            Some(other) => {
                return Err(invalid(
                    "filter",
                    format!("filter must be latest or all, not {other}"),
                ));
            }
        };
        let status = self
            .status
            .as_deref()
            .map(|s| {
                CheckStatus::parse(s).ok_or_else(|| {
                    invalid(
                        "status",
                        format!("status must be queued, in_progress or completed, not {s}"),
                    )
                })
            })
            .transpose()?;
        Ok(listed
            .into_iter()
            .filter(|r| self.check_name.as_deref().is_none_or(|n| r.is_named(n)))
            .filter(|r| status.is_none_or(|s| r.status == s))
            .collect())
    }
}

/// The runs of the commit `rev` names, newest first, in GitHub's `{total_count,
/// check_runs}`.
pub(crate) async fn list_for_ref(
    state: &AppState,
    links: Links,
    page: Page,
    caller: Option<&Authed>,
    (owner, name, rev): (String, String, String),
    uri: &Uri,
) -> Result<Response, ApiError> {
    let filter = RunFilter::of(uri)?;
    let repo = Repo::find(state, links, &owner, &name, caller)?.nonempty()?;
    let commit = status_reads::resolve(state, &repo, rev).await?;
    let runs = filter.apply(&repo, &commit)?;
    let total_count = runs.len();
    let (items, headers) = page.apply(runs);
    let render = Runs::new(&repo);
    let body = CheckRunList {
        total_count,
        check_runs: items.into_iter().map(|r| render.render(r)).collect(),
    };
    Ok((headers, Json(body)).into_response())
}

/// The check suite of the commit `rev` names (none when it has no runs), in GitHub's
/// `{total_count, check_suites}`.
pub(crate) async fn suites_for_ref(
    state: &AppState,
    links: Links,
    page: Page,
    caller: Option<&Authed>,
    (owner, name, rev): (String, String, String),
    uri: &Uri,
) -> Result<Response, ApiError> {
    let filter = RunFilter::of(uri)?;
    let repo = Repo::find(state, links.clone(), &owner, &name, caller)?.nonempty()?;
    let info = repo
        .browse(state, move |b| {
            let id = b.resolve(&rev).map_err(|_| no_commit(&rev))?;
            Ok(b.commit(&id)?)
        })
        .await?;
    let commit = ObjectId::from_bytes(info.id);
    let runs = repo.view.state.checks.runs.latest(&commit);
    let named = filter.check_name.as_deref();
    let matches = !runs.is_empty() && named.is_none_or(|n| runs.iter().any(|r| r.is_named(n)));
    let mut suites = Vec::new();
    if matches {
        let (status, conclusion) = suite_state(runs.iter().copied());
        let sha = hex(commit.as_bytes());
        let id = suite_id(&commit);
        let created = runs.iter().map(|r| r.created).min().unwrap_or_default();
        let updated = runs.iter().map(|r| r.updated).max().unwrap_or_default();
        let head_branch = repo.view.state.refs.iter().find_map(|(name, r)| {
            let short = name.strip_prefix("refs/heads/")?;
            (r.target == commit).then(|| short.to_owned())
        });
        let repository =
            views::repository(state, &links, &repo.view, None).ok_or_else(ApiError::not_found)?;
        let person = |sig: guts_storage::browse::Signature| views::NameEmail {
            name: sig.name,
            email: sig.email,
        };
        suites.push(CheckSuite {
            id,
            node_id: format!("CS_{id}"),
            head_branch,
            head_sha: sha.clone(),
            status: status.as_str(),
            conclusion: conclusion.map(|c| c.as_str()),
            url: repo.api(&format!("/check-suites/{id}")),
            before: None,
            after: Some(sha.clone()),
            pull_requests: [],
            app: None,
            repository,
            created_at: iso8601(created.wall_ms / 1000),
            updated_at: iso8601(updated.wall_ms / 1000),
            head_commit: views::SimpleCommit {
                id: sha,
                tree_id: hex(&info.tree),
                message: info.message,
                timestamp: iso8601(u64::try_from(info.committer.seconds).unwrap_or(0)),
                author: person(info.author),
                committer: person(info.committer),
            },
            latest_check_runs_count: runs.len(),
            check_runs_url: repo.api(&format!("/check-suites/{id}/check-runs")),
            rerequestable: false,
            runs_rerequestable: false,
        });
    }
    let total_count = suites.len();
    let (items, headers) = page.apply(suites);
    let body = CheckSuiteList {
        total_count,
        check_suites: items,
    };
    Ok((headers, Json(body)).into_response())
}
