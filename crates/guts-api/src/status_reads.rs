//! Reading commit statuses: rendering them in GitHub's shapes and the two reads under
//! `commits/{ref}/` (every status, and the combined status). Shared by
//! `routes::statuses`, which documents those reads, and `routes::commits`, whose
//! `commits/{*ref}` wildcard serves them (the router cannot tell `commits/{ref}/status`
//! from a ref holding `/`), so neither route module imports the other.

use axum::response::{IntoResponse, Response};
use guts_core::checks::combined_state;
use guts_core::{CommitStatus, ObjectId, OpId};
use guts_storage::accounts::numeric_id;

use crate::browse::{Repo, hex, no_commit};
use crate::error::ApiError;
use crate::extract::Authed;
use crate::json::Json;
use crate::links::Links;
use crate::pagination::Page;
use crate::state::AppState;
use crate::threads::Render;
use crate::time::iso8601;
use crate::views::{self, CombinedStatus, SimpleStatus, Status};

/// Renders statuses of one commit for one request.
pub(crate) struct Statuses<'a> {
    render: Render<'a>,
    /// `…/repos/{owner}/{repo}/statuses/{sha}`.
    url: String,
}

impl<'a> Statuses<'a> {
    pub(crate) fn new(state: &'a AppState, links: &'a Links, repo: &'a Repo, sha: &str) -> Self {
        Statuses {
            render: Render::new(state, links, &repo.view),
            url: repo.api(&format!("/statuses/{sha}")),
        }
    }

    pub(crate) fn simple(&self, status: &'a CommitStatus) -> SimpleStatus<'a> {
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

    pub(crate) fn full(&self, status: &'a CommitStatus) -> Status<'a> {
        Status {
            status: self.simple(status),
            creator: self.render.user(&status.creator),
        }
    }
}

/// The commit `rev` names in `repo`; GitHub's 422 when none (check runs' reads too).
pub(crate) async fn resolve(
    state: &AppState,
    repo: &Repo,
    rev: String,
) -> Result<ObjectId, ApiError> {
    let oid = repo
        .browse(state, move |b| b.resolve(&rev).map_err(|_| no_commit(&rev)))
        .await?;
    Ok(ObjectId::from_bytes(oid))
}

/// The status posted by operation `op`, with its commit.
pub(crate) fn find_status<'r>(repo: &'r Repo, op: &OpId) -> Option<(ObjectId, &'r CommitStatus)> {
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

/// Every status of the commit `rev` names, newest first.
pub(crate) async fn list_for_ref(
    state: &AppState,
    links: Links,
    page: Page,
    caller: Option<&Authed>,
    (owner, name, rev): (String, String, String),
) -> Result<Response, ApiError> {
    let repo = Repo::find(state, links.clone(), &owner, &name, caller)?.nonempty()?;
    let commit = resolve(state, &repo, rev).await?;
    let (items, headers) = page.apply(repo.view.state.checks.all(&commit));
    let sha = hex(commit.as_bytes());
    let render = Statuses::new(state, &links, &repo, &sha);
    let body: Vec<Status<'_>> = items.into_iter().map(|s| render.full(s)).collect();
    Ok((headers, Json(body)).into_response())
}

/// The combined status of the commit `rev` names: the latest status of each context.
pub(crate) async fn combined(
    state: &AppState,
    links: Links,
    page: Page,
    caller: Option<&Authed>,
    (owner, name, rev): (String, String, String),
) -> Result<Response, ApiError> {
    let repo = Repo::find(state, links.clone(), &owner, &name, caller)?.nonempty()?;
    let commit = resolve(state, &repo, rev.clone()).await?;
    let latest = repo.view.state.checks.latest(&commit);
    let combined_state = combined_state(latest.iter().copied());
    let total_count = latest.len();
    let (items, headers) = page.apply(latest);
    let sha = hex(commit.as_bytes());
    let render = Statuses::new(state, &links, &repo, &sha);
    let repository =
        views::repository(state, &links, &repo.view, None).ok_or_else(ApiError::not_found)?;
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
