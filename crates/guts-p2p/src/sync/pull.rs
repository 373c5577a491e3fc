//! Asking peers: the pull queue and its workers, one repository's pull (heads, then
//! operations, then the objects they need, offered to the replica), and every request
//! through the peer's circuit breaker with retries. Kept apart from `mod.rs` (the
//! service and its flows), as answering peers is in `serve.rs`.

use std::convert::Infallible;
use std::sync::atomic::Ordering;

use guts_core::{ObjectId, RepoId, SignedOp};
use libp2p::PeerId;
use tokio_util::sync::CancellationToken;

use super::{
    MAX_PULL_ROUNDS, PullError, PullJob, Queue, REQUEST_OPERATION, SyncService, next_job, now_ms,
    unexpected,
};
use crate::replica::{Offered, Replica, ReplicaError};
use crate::wire::{self, MAX_HEADS, MAX_PACK_IDS, Request, Response};

impl<R: Replica> SyncService<R> {
    /// Queues a pull unless one of the same repository is running, in which case it
    /// runs after that one (replacing any pull already waiting there).
    pub(super) fn queue_pull(&self, job: PullJob) {
        if let Ok(mut running) = self.inner.running.lock()
            && let Some(next) = running.get_mut(&job.repo)
        {
            *next = Some(job);
            return;
        }
        if self.inner.pulls.try_send(job).is_err() {
            tracing::debug!("pull queue full: left to anti-entropy");
        }
    }

    pub(super) async fn pull_worker(
        self,
        queue: Queue<PullJob>,
        token: CancellationToken,
    ) -> Result<(), Infallible> {
        while let Some(job) = next_job(&queue, &token).await {
            let mut job = Some(job);
            while let Some(current) = job.take() {
                let claimed = match self.inner.running.lock() {
                    Ok(mut running) => {
                        if let Some(next) = running.get_mut(&current.repo) {
                            *next = Some(current.clone());
                            false
                        } else {
                            running.insert(current.repo, None);
                            true
                        }
                    }
                    Err(_) => false,
                };
                if !claimed {
                    break;
                }
                let (repo, peer) = (current.repo, current.peer);
                let span = tracing::info_span!("p2p_pull", %repo, %peer);
                if let Some(trace) = &current.trace {
                    guts_ops::telemetry::set_remote_parent(&span, trace);
                }
                let pulled = tracing::Instrument::instrument(self.pull(current), span).await;
                if let Err(e) = pulled {
                    match &e {
                        PullError::Misbehaved(why) => {
                            tracing::warn!(%repo, %peer, error = %e, "banning peer");
                            self.inner.net.ban(peer, why).await;
                        }
                        _ => tracing::debug!(%repo, %peer, error = %e, "pull failed"),
                    }
                }
                job = match self.inner.running.lock() {
                    Ok(mut running) => running.remove(&repo).flatten(),
                    Err(_) => None,
                };
            }
        }
        Ok(())
    }

    /// Brings `job.repo` up to `job.want` from `job.peer`.
    async fn pull(&self, job: PullJob) -> Result<(), PullError> {
        let PullJob {
            repo, peer, want, ..
        } = job;
        let mut want = want;
        if want.is_empty() {
            let response = self
                .request(peer, Request::Heads { repos: vec![repo] })
                .await?;
            let Response::Heads { repos } = response else {
                return Err(unexpected(&response));
            };
            want = repos
                .into_iter()
                .find(|h| h.repo == repo)
                .map(|h| h.heads)
                .unwrap_or_default();
        }
        want.truncate(wire::MAX_WANT_OPS);
        // The handshake decides what this peer may give us (an announcement can come
        // from anyone who subscribed): a node of our cluster anything, with the
        // accounts first when the repository is new here (its creator's login must be
        // known to bind its name); any other node public repositories only, which can
        // never claim a local name (storage serves them in their author's namespace).
        if !self.is_same_cluster(&peer)
            && let Err(e) = self.hello(peer).await
        {
            // Whatever went wrong, it has not proved itself: public data only.
            tracing::debug!(%peer, error = %e, "no cluster proof from the peer we pull from");
        }
        let same_cluster = self.is_same_cluster(&peer);
        if same_cluster && self.inner.replica.heads(repo).is_none() {
            self.sync_accounts(peer).await?;
        }
        if !same_cluster && self.inner.replica.is_private(repo) {
            return Ok(());
        }
        for _ in 0..MAX_PULL_ROUNDS {
            let mut have = self.inner.replica.heads(repo).unwrap_or_default();
            if want.iter().all(|w| have.contains(w)) {
                return Ok(());
            }
            have.truncate(MAX_HEADS);
            let response = self
                .request(
                    peer,
                    Request::Ops {
                        repo,
                        want: want.clone(),
                        have,
                        trace: guts_ops::telemetry::current_traceparent(),
                    },
                )
                .await?;
            let Response::Ops { ops, .. } = response else {
                return Err(unexpected(&response));
            };
            if ops.is_empty() {
                return Ok(());
            }
            if !same_cluster && ops.iter().any(creates_private) {
                tracing::debug!(%peer, %repo, "a private repository offered from outside the cluster: ignored");
                return Ok(());
            }
            let offered = self.offer(repo, peer, ops).await?;
            if offered.applied == 0 {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Offers operations; fetches the git objects their ref updates need first when
    /// they are absent, then offers again.
    async fn offer(
        &self,
        repo: RepoId,
        peer: PeerId,
        ops: Vec<SignedOp>,
    ) -> Result<Offered, PullError> {
        let newest = ops.iter().map(|op| op.op().timestamp.wall_ms).max();
        let mut offered = self.inner.replica.offer(repo, ops.clone()).await?;
        if !offered.needs_objects.is_empty() {
            self.fetch_pack(repo, peer, offered.needs_objects.clone())
                .await?;
            offered = self.inner.replica.offer(repo, ops).await?;
            if !offered.needs_objects.is_empty() {
                return Err(PullError::Misbehaved(format!(
                    "its pack lacks {} objects its operations need",
                    offered.needs_objects.len()
                )));
            }
        }
        if let Some((id, why)) = offered.rejected.first() {
            return Err(PullError::Misbehaved(format!(
                "sent {} operations the fold rejects (first {id}: {why})",
                offered.rejected.len()
            )));
        }
        if offered.applied > 0
            && let Some(newest) = newest
        {
            let lag_ms = now_ms().saturating_sub(newest);
            self.inner
                .metrics
                .replication_lag
                .observe(lag_ms as f64 / 1000.0);
        }
        Ok(offered)
    }

    /// Downloads the pack of `wants` (minus what this node's refs reach) from `peer`
    /// into the scratch directory (see `fetch.rs`), then has the replica verify and
    /// install it.
    async fn fetch_pack(
        &self,
        repo: RepoId,
        peer: PeerId,
        mut wants: Vec<ObjectId>,
    ) -> Result<(), PullError> {
        wants.truncate(MAX_PACK_IDS);
        let mut haves = self.inner.replica.ref_tips(repo);
        haves.truncate(MAX_PACK_IDS);
        let path = self.download_pack(repo, peer, &wants, &haves).await?;
        let ingested = self.inner.replica.ingest_pack(repo, &path).await;
        let _ = tokio::fs::remove_file(&path).await;
        match ingested {
            Ok(()) => Ok(()),
            Err(ReplicaError::Invalid(why)) => Err(PullError::Misbehaved(why)),
            Err(e) => Err(e.into()),
        }
    }

    /// One request through the peer's circuit breaker, retried with backoff when it
    /// fails transiently (timeouts, dropped connections).
    pub(super) async fn request(
        &self,
        peer: PeerId,
        request: Request,
    ) -> Result<Response, PullError> {
        if self.inner.isolated.load(Ordering::Relaxed) {
            return Err(PullError::Refused("isolated by the operator".to_owned()));
        }
        let key = peer.to_string();
        let net = self.inner.net.clone();
        let breakers = &self.inner.breakers;
        guts_ops::resilience::retry(
            self.inner.config.retry,
            &self.inner.resilience,
            REQUEST_OPERATION,
            |e: &PullError| matches!(e, PullError::Net(n) if n.is_transient()),
            || {
                let (net, request, key) = (net.clone(), request.clone(), key.clone());
                async move {
                    let permit = breakers.permit(&key).map_err(|_| PullError::BreakerOpen)?;
                    match net.request(peer, request).await {
                        Ok(response) => {
                            permit.success();
                            match response {
                                Response::Error {
                                    code: wire::ErrorCode::Busy,
                                    message,
                                } => Err(PullError::Refused(format!("busy: {message}"))),
                                other => Ok(other),
                            }
                        }
                        Err(e) => {
                            if e.is_transient() {
                                permit.failure();
                            } else {
                                permit.success();
                            }
                            Err(PullError::Net(e))
                        }
                    }
                }
            },
        )
        .await
    }
}

/// Whether `op` creates a private repository or makes one private.
fn creates_private(op: &SignedOp) -> bool {
    matches!(
        op.op().payload,
        guts_core::Payload::CreateRepo { private: true, .. }
            | guts_core::Payload::UpdateRepo {
                private: Some(true),
                ..
            }
    )
}
