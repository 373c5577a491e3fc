//! The node's page for site admins (`/admin`): what the node is, its peers with their
//! circuit breakers, every repository's replication state and digest, and the
//! operations refused from peers. Read only: the admin API changes things.

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use maud::html;

use crate::WebState;
use crate::error::WebError;
use crate::page::{self, path_escape, short};
use crate::session::Viewer;

/// Rows shown per table.
const MAX_ROWS: usize = 500;

/// The overview.
pub(super) async fn overview(
    State(state): State<WebState>,
    viewer: Viewer,
) -> Result<Response, WebError> {
    let authed = viewer.require()?;
    if !authed.user.site_admin {
        return Err(WebError::not_found());
    }
    let repos = state.service.repositories();
    let statuses = repos.replication_status(None, usize::MAX);
    let digest = hex::encode(guts_storage::node_state_digest(&statuses));
    let peers = match &state.peers {
        Some(directory) => Some((directory.peers().await, directory.isolated())),
        None => None,
    };
    let letters = repos.dead_letters(MAX_ROWS).map_err(|e| {
        tracing::error!(error = %e, "reading the dead-letter log failed");
        WebError::page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The rejected operations could not be read.",
        )
    })?;
    let users = state.service.accounts().count().unwrap_or_default();
    let body = html! {
        h1 { "This node" }
        section #node-info.box aria-labelledby="node-heading" {
            div.box-header { h2 #node-heading { "Node" } }
            div.box-body {
                p { "Version " code { (env!("CARGO_PKG_VERSION")) } }
                p { (statuses.len()) " repositories · " (users) " accounts" }
                p { "State digest " code #node-digest { (digest) } }
            }
        }
        section #peers.box aria-labelledby="peers-heading" {
            div.box-header { h2 #peers-heading { "Peers" } }
            @match &peers {
                None => p.notice { "This node runs without a network." },
                Some((list, isolated)) => {
                    @if *isolated { p.flash-error { "Isolated: this node neither answers nor pulls from its peers." } }
                    table {
                        thead { tr { th { "Peer" } th { "Address" } th { "Latency" } th { "Circuit breaker" } } }
                        tbody {
                            @for p in list {
                                tr.peer {
                                    td { code { (p.peer_id) } }
                                    td { (p.address) }
                                    td { @if let Some(ms) = p.latency_ms { (format!("{ms:.1} ms")) } }
                                    td.breaker { (p.breaker) }
                                }
                            }
                        }
                    }
                    @if list.is_empty() { p.notice { "No peer is connected." } }
                }
            }
        }
        section #replication.box aria-labelledby="replication-heading" {
            div.box-header { h2 #replication-heading { "Replication" } }
            table {
                thead { tr { th { "Repository" } th { "Operations" } th { "Heads" } th { "State digest" } th { "Updated" } } }
                tbody {
                    @for s in statuses.iter().take(MAX_ROWS) {
                        tr {
                            td {
                                @if s.deleted { (s.owner) "/" (s.name) " (deleted)" }
                                @else { a href=(format!("/{}/{}", path_escape(&s.owner), path_escape(&s.name))) { (s.owner) "/" (s.name) } }
                            }
                            td { (s.ops) }
                            td { (s.heads.len()) }
                            td { code { (short(&hex::encode(s.digest))) } }
                            td { (page::time(s.updated_ms / 1000)) }
                        }
                    }
                }
            }
        }
        section #rejections.box aria-labelledby="rejections-heading" {
            div.box-header { h2 #rejections-heading { "Operations refused from peers" } }
            ul.list {
                @for d in &letters {
                    li {
                        code { (short(&d.id.to_string())) } " in " code { (short(&d.repo.to_string())) } ": " (d.reason)
                        div.meta { (d.reason_code) " · " (page::time(d.received_ms / 1000)) }
                    }
                }
                @if letters.is_empty() { li.muted { "None." } }
            }
        }
    };
    Ok(page::page(&viewer, "Admin", body))
}
