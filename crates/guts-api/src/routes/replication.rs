//! The admin API's view of replication: peers (with latency and circuit breaker
//! state), the fault switch that isolates this node, per-repository replication
//! status with state digests (what operators compare between nodes), and the
//! dead-letter log of operations refused from peers, with replay.

use crate::json::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{Admin, JsonBody};
use crate::state::{AppState, PeerHandle};
use crate::time::iso8601;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(peers))
        .routes(routes!(set_isolation))
        .routes(routes!(replication))
        .routes(routes!(dead_letters))
        .routes(routes!(replay))
}

#[derive(Debug, Serialize, ToSchema)]
struct Peer {
    peer_id: String,
    address: String,
    /// Round trip of the last ping, when one was measured.
    latency_ms: Option<f64>,
    /// `closed`, `open` or `half_open`.
    circuit_breaker: &'static str,
    connected_ms: u64,
}

#[derive(Debug, Serialize, ToSchema)]
struct Peers {
    /// The fault switch (`PUT /admin/p2p/isolation`).
    isolated: bool,
    peers: Vec<Peer>,
}

fn network(state: &AppState) -> Result<&PeerHandle, ApiError> {
    state.peers.as_ref().ok_or_else(ApiError::not_found)
}

async fn peer_list(handle: &PeerHandle) -> Peers {
    let peers = handle
        .0
        .peers()
        .await
        .into_iter()
        .map(|p| Peer {
            peer_id: p.peer_id,
            address: p.address,
            latency_ms: p.latency_ms,
            circuit_breaker: p.breaker,
            connected_ms: p.connected_ms,
        })
        .collect();
    Peers {
        isolated: handle.0.isolated(),
        peers,
    }
}

/// Connected peers.
#[utoipa::path(get, path = "/admin/peers", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "Connected peers", body = Peers)))]
async fn peers(_: Admin, State(state): State<AppState>) -> Result<Json<Peers>, ApiError> {
    Ok(Json(peer_list(network(&state)?).await))
}

#[derive(Debug, Deserialize, ToSchema)]
struct Isolation {
    isolated: bool,
}

/// The fault switch: an isolated node keeps its connections but neither answers,
/// pulls, announces nor heeds announcements, as if partitioned. For drills and tests.
#[utoipa::path(put, path = "/admin/p2p/isolation", tag = "admin", request_body = Isolation,
    security(("admin_token" = [])),
    responses((status = 200, description = "Peers, with the new switch state", body = Peers)))]
async fn set_isolation(
    _: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Isolation>,
) -> Result<Json<Peers>, ApiError> {
    let handle = network(&state)?;
    handle.0.set_isolated(body.isolated);
    Ok(Json(peer_list(handle).await))
}

#[derive(Debug, Serialize, ToSchema)]
struct RepoStatus {
    id: String,
    /// `owner/name` as served here (`name-<8 hex of the id>` when another repository
    /// created concurrently kept the name).
    full_name: String,
    deleted: bool,
    /// Operations in the repository's DAG.
    operations: usize,
    heads: Vec<String>,
    /// blake3 of the folded state: equal on two nodes iff their states are equal.
    state_digest: String,
    updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct Replication {
    /// blake3 over every repository's id and state digest, in id order: one value to
    /// compare between nodes.
    state_digest: String,
    repositories: Vec<RepoStatus>,
}

/// Every repository this node holds (deleted ones too), with its state digest.
#[utoipa::path(get, path = "/admin/replication", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "Replication status", body = Replication)))]
async fn replication(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<Replication>, ApiError> {
    let statuses = state.repos.replication_status(None, usize::MAX);
    let digest = guts_storage::node_state_digest(&statuses);
    let mut repositories = Vec::new();
    for status in statuses {
        repositories.push(RepoStatus {
            id: status.id.to_string(),
            full_name: format!("{}/{}", status.owner, status.name),
            deleted: status.deleted,
            operations: status.ops,
            heads: status.heads.iter().map(ToString::to_string).collect(),
            state_digest: hex::encode(status.digest),
            updated_at: iso8601(status.updated_ms / 1000),
        });
    }
    Ok(Json(Replication {
        state_digest: hex::encode(digest),
        repositories,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
struct DeadLetter {
    /// The operation's id.
    id: String,
    repository: String,
    /// Why it was refused, for people.
    reason: String,
    /// Why it was refused, as the `reason` label of `guts_operations_rejected_total`.
    reason_code: String,
    received_at: String,
}

/// Operations received from peers and refused (forged authority, malformed payloads):
/// never applied, kept for inspection and replay. Newest first, at most 1,000.
#[utoipa::path(get, path = "/admin/rejected", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "Refused operations", body = Vec<DeadLetter>)))]
async fn dead_letters(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    let letters = state.repos.dead_letters(1000).map_err(|e| {
        tracing::error!(error = %e, "reading the dead-letter log failed");
        ApiError::internal()
    })?;
    Ok(Json(
        letters
            .into_iter()
            .map(|d| DeadLetter {
                id: d.id.to_string(),
                repository: d.repo.to_string(),
                reason: d.reason,
                reason_code: d.reason_code,
                received_at: iso8601(d.received_ms / 1000),
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
struct Replayed {
    replayed: usize,
    still_rejected: usize,
    removed: usize,
}

/// Offers every refused operation again (after an ACL change, say); those now
/// accepted leave the log.
#[utoipa::path(post, path = "/admin/rejected/replay", tag = "admin",
    security(("admin_token" = [])),
    responses((status = 200, description = "What the replay did", body = Replayed)))]
async fn replay(_: Admin, State(state): State<AppState>) -> Result<Json<Replayed>, ApiError> {
    let report = state.repos.replay_dead_letters().await.map_err(|e| {
        tracing::error!(error = %e, "dead-letter replay failed");
        ApiError::internal()
    })?;
    Ok(Json(Replayed {
        replayed: report.replayed,
        still_rejected: report.still_rejected,
        removed: report.removed,
    }))
}
