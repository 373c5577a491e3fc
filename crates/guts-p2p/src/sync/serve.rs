//! Answering peers: each request kind mapped onto the replica, every answer within the
//! wire's caps.

use guts_core::RepoId;
use libp2p::PeerId;
use std::convert::Infallible;
use tokio_util::sync::CancellationToken;

use super::{Queue, ServeJob, SyncService, next_job};
use crate::replica::{Replica, ReplicaError};
use crate::wire::{
    self, ErrorCode, MAX_CHUNK_BYTES, MAX_HEADS, MAX_OPS_BYTES, MAX_REPOS, MAX_WANT_OPS, PackChunk,
    RepoDigest, RepoHeads, Request, Response,
};

impl<R: Replica> SyncService<R> {
    pub(super) async fn serve_worker(
        self,
        queue: Queue<ServeJob>,
        token: CancellationToken,
    ) -> Result<(), Infallible> {
        while let Some(job) = next_job(&queue, &token).await {
            let ServeJob {
                peer,
                request,
                reply,
            } = job;
            // A request that carries a trace is served as part of it.
            let span = tracing::debug_span!("p2p_serve", %peer);
            if let Request::Ops {
                trace: Some(trace), ..
            } = &request
            {
                guts_ops::telemetry::set_remote_parent(&span, trace);
            }
            let response = tracing::Instrument::instrument(self.answer(peer, request), span).await;
            if let Response::Error { code, message } = &response {
                tracing::debug!(%peer, ?code, %message, "request refused");
            }
            // The requester may have given up (timeout): nothing to do then.
            let _ = reply.send(response);
        }
        Ok(())
    }

    /// The response to one request. Never fails: trouble becomes `Response::Error`.
    pub(super) async fn answer(&self, peer: PeerId, request: Request) -> Response {
        match self.try_answer(peer, request).await {
            Ok(response) => response,
            Err(e) => {
                let code = match &e {
                    ReplicaError::NotFound => ErrorCode::NotFound,
                    ReplicaError::BadRequest(_) | ReplicaError::Invalid(_) => ErrorCode::BadRequest,
                    ReplicaError::Internal(_) | ReplicaError::OtherCluster => ErrorCode::Internal,
                };
                let mut message = e.to_string();
                truncate_utf8(&mut message, wire::MAX_ERROR_MESSAGE_BYTES);
                Response::Error { code, message }
            }
        }
    }

    async fn try_answer(&self, peer: PeerId, request: Request) -> Result<Response, ReplicaError> {
        let replica = &self.inner.replica;
        // Private repositories exist only for peers of this cluster.
        let trusted = self.is_same_cluster(&peer);
        let visible = |repo: RepoId| trusted || !replica.is_private(repo);
        match request {
            Request::Hello { proof } => Ok(self.answer_hello(peer, proof)),
            Request::Repos { after } => {
                let mut page = replica.repos(after, MAX_REPOS);
                let next = match page.last() {
                    Some(last) if page.len() == MAX_REPOS => Some(last.repo),
                    _ => None,
                };
                page.retain(|info| visible(info.repo));
                let repos = page
                    .into_iter()
                    .map(|info| RepoDigest {
                        repo: info.repo,
                        digest: wire::heads_digest(&info.heads),
                    })
                    .collect();
                Ok(Response::Repos { repos, next })
            }
            Request::Heads { repos } => {
                let repos = repos
                    .into_iter()
                    .filter(|repo| visible(*repo))
                    .filter_map(|repo| {
                        replica.heads(repo).map(|mut heads| {
                            heads.truncate(MAX_HEADS);
                            RepoHeads::new(repo, heads)
                        })
                    })
                    .collect();
                Ok(Response::Heads { repos })
            }
            Request::Ops {
                repo, want, have, ..
            } => {
                if !visible(repo) {
                    return Err(ReplicaError::NotFound);
                }
                // Room for the frame's other fields within the wire's cap.
                let budget = MAX_OPS_BYTES - 64 * 1024;
                let (mut ops, mut missing) = replica.ops(repo, want, have, budget).await?;
                ops.truncate(MAX_WANT_OPS);
                missing.truncate(MAX_WANT_OPS);
                Ok(Response::Ops { repo, ops, missing })
            }
            Request::Accounts { digest, after } => {
                let ours = replica.accounts_digest();
                if ours == digest {
                    return Ok(Response::Accounts {
                        digest: ours,
                        sealed: Vec::new(),
                        next: None,
                    });
                }
                let (sealed, next) = replica.accounts_page(after.as_deref())?;
                Ok(Response::Accounts {
                    digest: ours,
                    sealed,
                    next,
                })
            }
            Request::Pack {
                repo,
                wants,
                haves,
                offset,
            } => {
                if !visible(repo) {
                    return Err(ReplicaError::NotFound);
                }
                let path = self
                    .inner
                    .packs
                    .outgoing(&**replica, repo, wants, haves)
                    .await?;
                let (data, total) = super::pack::read_chunk(&path, offset, MAX_CHUNK_BYTES)
                    .await
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::InvalidInput => ReplicaError::BadRequest(format!(
                            "offset {offset} is past the end of the pack"
                        )),
                        _ => ReplicaError::Internal(format!("reading the pack: {e}")),
                    })?;
                let last = offset + data.len() as u64 == total;
                Ok(Response::PackChunk(PackChunk {
                    repo,
                    offset,
                    total: Some(total),
                    data,
                    last,
                }))
            }
        }
    }
}

fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}
