//! The sync protocol's behaviour: what a node does with announcements, requests and
//! peers, over the network layer ([`crate::net`]) and the node's storage
//! ([`Replica`]).
//!
//! Three flows, each a fixed set of named tasks fed by bounded queues (so a flood of
//! peers or announcements costs queue slots, never memory or tasks):
//! - **serving**: inbound requests are answered by [`SERVE_WORKERS`] workers; a full
//!   queue answers `Busy` at once.
//! - **pulling**: an announcement with heads this node lacks, or an anti-entropy
//!   digest that differs, queues a pull of that repository from that peer;
//!   [`PULL_WORKERS`] workers run them, one pull per repository at a time. A pull asks
//!   for the wanted operations with everything this node has as `have`, so one request
//!   brings any depth of history (4 MiB at a time); ref operations whose git objects
//!   are absent wait until a pack of them has been fetched in chunks (resumable,
//!   several in flight at once) and verified.
//! - **announcing and anti-entropy**: every durable change of a repository is
//!   announced on its gossipsub topic; every few seconds, and whenever a peer
//!   connects, the node compares heads digests with a peer and pulls what differs, so
//!   lost announcements, partitions and fresh nodes all converge.
//!
//! Trust: operations arrive signature-checked (decoding verifies); the replica
//! verifies authority with the fold. A peer whose data fails either, or whose frames
//! do not decode, is banned; per-peer circuit breakers stop a node from waiting on a
//! peer that keeps failing.

mod fetch;
mod pack;
mod pull;
mod serve;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use guts_core::{OpId, RepoId};
use guts_ops::resilience::{Breakers, ResilienceMetrics, RetryPolicy};
use libp2p::PeerId;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::net::{NetError, NetEvent, NetHandle};
use crate::replica::{Replica, ReplicaError};
use crate::wire::{self, Gossip, MAX_HEADS, MAX_REPOS, Request, Response};

pub use pack::PackCache;

/// Workers answering peers' requests.
pub const SERVE_WORKERS: usize = 8;
/// Workers pulling repositories from peers.
pub const PULL_WORKERS: usize = 4;
/// Requests waiting for a serve worker; beyond it, `Busy`.
const SERVE_QUEUE: usize = 256;
/// Repositories remembered as changed while the fault switch was on, to announce when
/// it is lifted.
const MAX_QUIET: usize = 10_000;
/// Pulls waiting for a worker; beyond it they are dropped (anti-entropy redoes them).
const PULL_QUEUE: usize = 1024;
/// Ops requests in one pull: 4 MiB each, so a pull brings at most this many pages
/// before giving the worker to another repository (the rest comes on the next pull).
const MAX_PULL_ROUNDS: usize = 256;

/// The `operation` label of retried peer requests in `guts_retries_total`.
const REQUEST_OPERATION: &str = "p2p_request";

/// How the sync layer behaves; from the node's configuration.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// How often a node compares heads digests with a random peer.
    pub anti_entropy_interval: Duration,
    /// Where packs in transit live (incoming downloads, outgoing packs kept for
    /// resumed transfers). Emptied at start.
    pub scratch_dir: PathBuf,
    /// Retries of a request that failed transiently (`GUTS_RETRY_MAX_ATTEMPTS`).
    pub retry: RetryPolicy,
    /// Largest pack accepted from a peer.
    pub max_pack_bytes: u64,
}

/// `guts_p2p_replication_lag_seconds`: from an operation's creation (its timestamp)
/// to its arrival here, per applied batch (the newest operation of the batch).
#[derive(Debug)]
pub struct SyncMetrics {
    pub replication_lag: Histogram,
}

impl SyncMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let replication_lag = Histogram::new(exponential_buckets(0.005, 2.0, 16));
        registry.register_with_unit(
            "p2p_replication_lag",
            "Time from an operation's creation to its arrival on this node",
            Unit::Seconds,
            replication_lag.clone(),
        );
        Self { replication_lag }
    }
}

pub use crate::directory::{PeerDirectory, PeerSummary};

impl<R: Replica> PeerDirectory for SyncService<R> {
    fn peers(&self) -> futures::future::BoxFuture<'_, Vec<PeerSummary>> {
        use futures::FutureExt as _;
        SyncService::peers(self).boxed()
    }

    fn set_isolated(&self, isolated: bool) {
        let was = self.inner.isolated.swap(isolated, Ordering::Relaxed);
        tracing::warn!(isolated, "p2p fault switch");
        if was && !isolated {
            // A healed partition: compare with every peer now, not at the next tick.
            self.inner.healed.notify_one();
            self.inner.healed_announce.notify_one();
        }
    }

    fn isolated(&self) -> bool {
        self.inner.isolated.load(Ordering::Relaxed)
    }
}

/// A queued pull: fetch `repo` from `peer`, wanting `want` (empty: ask its heads).
#[derive(Debug, Clone)]
struct PullJob {
    repo: RepoId,
    peer: PeerId,
    want: Vec<OpId>,
    /// The `traceparent` of the change that caused the pull, when announced with one.
    trace: Option<String>,
}

/// A queued inbound request.
struct ServeJob {
    peer: PeerId,
    request: Request,
    reply: tokio::sync::oneshot::Sender<Response>,
}

/// Why a pull stopped early.
#[derive(Debug, thiserror::Error)]
enum PullError {
    #[error("peer unavailable (circuit open)")]
    BreakerOpen,
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error("peer misbehaved: {0}")]
    Misbehaved(String),
    #[error("peer answered {0}")]
    Refused(String),
}

/// The sync service. Cheap to clone; every clone is the same service.
pub struct SyncService<R: Replica> {
    inner: Arc<Inner<R>>,
}

impl<R: Replica> std::fmt::Debug for SyncService<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncService")
            .field("peer", &self.inner.net.local_peer_id())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SyncTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncTasks").finish_non_exhaustive()
    }
}

impl<R: Replica> Clone for SyncService<R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<R> {
    replica: Arc<R>,
    net: NetHandle,
    config: SyncConfig,
    breakers: Breakers,
    resilience: Arc<ResilienceMetrics>,
    metrics: Arc<SyncMetrics>,
    pulls: mpsc::Sender<PullJob>,
    serves: mpsc::Sender<ServeJob>,
    /// Peers to run anti-entropy with now (a peer just connected).
    catch_up: mpsc::Sender<PeerId>,
    /// Repositories being pulled, and the pull to run after the current one.
    running: Mutex<HashMap<RepoId, Option<PullJob>>>,
    packs: PackCache,
    /// The fault switch of [`PeerDirectory::set_isolated`].
    isolated: AtomicBool,
    /// Told when the fault switch is lifted: anti-entropy then runs with every
    /// connected peer at once.
    healed: tokio::sync::Notify,
    /// Told at the same moment: the announcer then repeats what it kept quiet.
    healed_announce: tokio::sync::Notify,
    /// Peers that proved they hold this node's cluster secret ([`Request::Hello`]):
    /// the only ones served private repositories. Bounded by the connection limit
    /// (forgotten when they disconnect).
    same_cluster: Mutex<HashSet<PeerId>>,
}

/// The queues' receiving ends, handed to the tasks that [`SyncService::new`] returns.
pub struct SyncTasks {
    pulls: mpsc::Receiver<PullJob>,
    serves: mpsc::Receiver<ServeJob>,
    catch_up: mpsc::Receiver<PeerId>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl<R: Replica> SyncService<R> {
    /// Builds the service. Nothing runs until the futures of [`SyncService::run`] are spawned.
    pub fn new(
        replica: Arc<R>,
        net: NetHandle,
        config: SyncConfig,
        breakers: Breakers,
        resilience: Arc<ResilienceMetrics>,
        metrics: Arc<SyncMetrics>,
    ) -> Result<(Self, SyncTasks), std::io::Error> {
        let packs = PackCache::open(&config.scratch_dir)?;
        resilience.declare(REQUEST_OPERATION);
        let (pulls, pulls_rx) = mpsc::channel(PULL_QUEUE);
        let (serves, serves_rx) = mpsc::channel(SERVE_QUEUE);
        let (catch_up, catch_up_rx) = mpsc::channel(64);
        let inner = Arc::new(Inner {
            replica,
            net,
            config,
            breakers,
            resilience,
            metrics,
            pulls,
            serves,
            catch_up,
            running: Mutex::new(HashMap::new()),
            packs,
            isolated: AtomicBool::new(false),
            healed: tokio::sync::Notify::new(),
            healed_announce: tokio::sync::Notify::new(),
            same_cluster: Mutex::new(HashSet::new()),
        });
        Ok((
            Self { inner },
            SyncTasks {
                pulls: pulls_rx,
                serves: serves_rx,
                catch_up: catch_up_rx,
            },
        ))
    }

    /// Peers with their breaker states, for the admin API.
    pub async fn peers(&self) -> Vec<PeerSummary> {
        let mut peers: Vec<PeerSummary> = self
            .inner
            .net
            .peers()
            .await
            .into_iter()
            .map(|p| {
                let id = p.peer.to_string();
                let breaker = match self.inner.breakers.state(&id) {
                    guts_ops::resilience::BreakerState::Closed => "closed",
                    guts_ops::resilience::BreakerState::Open => "open",
                    guts_ops::resilience::BreakerState::HalfOpen => "half_open",
                };
                PeerSummary {
                    peer_id: id,
                    address: p.addr.to_string(),
                    latency_ms: p.latency.map(|d| d.as_secs_f64() * 1000.0),
                    breaker,
                    connected_ms: p.connected_ms,
                }
            })
            .collect();
        peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        peers
    }

    /// Whether readiness may count the network as up: bootstrap peers reached (or none
    /// configured).
    pub fn bootstrap_reached(&self) -> bool {
        self.inner.net.bootstrap_reached()
    }

    /// Runs the whole service until `token` is cancelled: event dispatch, announcing,
    /// anti-entropy, and the worker pools. Returns the named futures for the caller's
    /// supervisor, so each task is tracked and a failure stops the node. None returns an
    /// error (`Infallible`): a failed round with a peer is logged, counted and retried,
    /// and only a panic ends a task early.
    pub fn run<C>(
        &self,
        tasks: SyncTasks,
        events: mpsc::Receiver<NetEvent>,
        changes: broadcast::Receiver<C>,
        token: CancellationToken,
    ) -> Vec<(
        &'static str,
        futures::future::BoxFuture<'static, Result<(), Infallible>>,
    )>
    where
        C: Clone + Send + Into<(RepoId, Option<String>)> + 'static,
    {
        use futures::FutureExt as _;
        let SyncTasks {
            pulls,
            serves,
            catch_up,
        } = tasks;
        let pulls = Arc::new(tokio::sync::Mutex::new(pulls));
        let serves = Arc::new(tokio::sync::Mutex::new(serves));
        let mut out: Vec<(&'static str, futures::future::BoxFuture<'static, _>)> = vec![
            (
                "p2p-events",
                self.clone().dispatch(events, token.clone()).boxed(),
            ),
            (
                "p2p-announce",
                self.clone().announce(changes, token.clone()).boxed(),
            ),
            (
                "p2p-anti-entropy",
                self.clone().anti_entropy(catch_up, token.clone()).boxed(),
            ),
        ];
        for _ in 0..SERVE_WORKERS {
            out.push((
                "p2p-serve",
                self.clone()
                    .serve_worker(serves.clone(), token.clone())
                    .boxed(),
            ));
        }
        for _ in 0..PULL_WORKERS {
            out.push((
                "p2p-pull",
                self.clone()
                    .pull_worker(pulls.clone(), token.clone())
                    .boxed(),
            ));
        }
        out
    }

    /// Routes network events: requests to the serve queue, announcements and new peers
    /// to pulls, misbehaviour to bans.
    async fn dispatch(
        self,
        mut events: mpsc::Receiver<NetEvent>,
        token: CancellationToken,
    ) -> Result<(), Infallible> {
        loop {
            let event = tokio::select! {
                () = token.cancelled() => return Ok(()),
                event = events.recv() => match event {
                    Some(event) => event,
                    None => return Ok(()),
                },
            };
            if self.inner.isolated.load(Ordering::Relaxed) {
                if let NetEvent::Request { reply, .. } = event {
                    let _ = reply.send(Response::Error {
                        code: wire::ErrorCode::Busy,
                        message: "isolated by the operator".to_owned(),
                    });
                }
                continue;
            }
            match event {
                NetEvent::Request {
                    peer,
                    request,
                    reply,
                } => {
                    if let Err(mpsc::error::TrySendError::Full(job)) =
                        self.inner.serves.try_send(ServeJob {
                            peer,
                            request,
                            reply,
                        })
                    {
                        let _ = job.reply.send(Response::Error {
                            code: wire::ErrorCode::Busy,
                            message: "too many requests in flight".to_owned(),
                        });
                    }
                }
                NetEvent::Gossip {
                    from,
                    message: Gossip::Accounts { digest },
                } => {
                    // Only a proven peer of the cluster is worth a round trip: anyone
                    // else's news would be a cheap way to make us work.
                    if self.is_same_cluster(&from) && digest != self.inner.replica.accounts_digest()
                    {
                        let _ = self.inner.catch_up.try_send(from);
                    }
                }
                NetEvent::Gossip {
                    from,
                    message: Gossip::Announce { repo, heads, trace },
                } => {
                    let ours = self.inner.replica.heads(repo).unwrap_or_default();
                    if heads.iter().any(|h| !ours.contains(h)) {
                        self.queue_pull(PullJob {
                            repo,
                            peer: from,
                            want: heads,
                            trace,
                        });
                    }
                }
                NetEvent::PeerUp(peer) => {
                    let _ = self.inner.catch_up.try_send(peer);
                }
                NetEvent::PeerDown(peer) => {
                    if let Ok(mut same) = self.inner.same_cluster.lock() {
                        same.remove(&peer);
                    }
                }
                NetEvent::Misbehaved { peer, what } => {
                    self.inner.net.ban(peer, &what).await;
                }
            }
        }
    }

    /// Announces every durable change of a repository on its topic (joining the topic
    /// and providing the repository on first sight). Joins every held repository's
    /// topic at start.
    async fn announce<C>(
        self,
        mut changes: broadcast::Receiver<C>,
        token: CancellationToken,
    ) -> Result<(), Infallible>
    where
        C: Clone + Send + Into<(RepoId, Option<String>)> + 'static,
    {
        let mut joined: HashSet<RepoId> = HashSet::new();
        let mut after = None;
        loop {
            let page = self.inner.replica.repos(after, MAX_REPOS);
            for info in &page {
                self.join(&mut joined, info.repo).await;
            }
            match page.last() {
                Some(last) if page.len() == MAX_REPOS => after = Some(last.repo),
                _ => break,
            }
        }
        let mut accounts = self.inner.replica.accounts_changes();
        // Repositories that changed while the fault switch kept us quiet, announced
        // when it is lifted (bounded: beyond it, anti-entropy carries the rest).
        let mut quiet: HashMap<RepoId, bool> = HashMap::new();
        loop {
            let (repo, trace) = tokio::select! {
                () = token.cancelled() => return Ok(()),
                () = self.inner.healed_announce.notified() => {
                    self.announce_accounts().await;
                    for (repo, new) in std::mem::take(&mut quiet) {
                        self.announce_heads(repo, new, None).await;
                    }
                    continue;
                }
                changed = accounts.changed() => {
                    if changed.is_err() {
                        // The accounts are gone (shutting down): stop watching them.
                        accounts = tokio::sync::watch::channel(0).1;
                        continue;
                    }
                    self.announce_accounts().await;
                    continue;
                }
                changed = changes.recv() => match changed {
                    Ok(change) => change.into(),
                    // Missed changes are found by anti-entropy.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
            };
            // A repository this node has not announced before is new to it (created
            // here, or just received): its peers may not know it either, so its first
            // announcement goes on the topic every node joins.
            let new = self.join(&mut joined, repo).await;
            if self.inner.isolated.load(Ordering::Relaxed) {
                if quiet.len() < MAX_QUIET || quiet.contains_key(&repo) {
                    *quiet.entry(repo).or_insert(false) |= new;
                }
                continue;
            }
            self.announce_heads(repo, new, trace).await;
        }
    }

    /// Publishes the heads of `repo`: on the topic every node joins if it is `new` to
    /// this node, else on its own.
    async fn announce_heads(&self, repo: RepoId, new: bool, trace: Option<String>) {
        let Some(mut heads) = self.inner.replica.heads(repo) else {
            return;
        };
        heads.truncate(MAX_HEADS);
        let announce = Gossip::Announce { repo, heads, trace };
        let published = if new {
            self.inner.net.publish_new(announce).await
        } else {
            self.inner.net.publish(announce).await
        };
        if let Err(e) = published {
            tracing::debug!(%repo, error = %e, "announce not published");
        }
    }

    /// Tells every node of the cluster this node's new accounts digest, so that they
    /// fetch the change now (see [`Gossip::Accounts`]).
    async fn announce_accounts(&self) {
        if self.inner.isolated.load(Ordering::Relaxed) {
            return;
        }
        let digest = self.inner.replica.accounts_digest();
        if let Err(e) = self.inner.net.publish(Gossip::Accounts { digest }).await {
            tracing::debug!(error = %e, "account news not published");
        }
    }

    /// Joins the repository's topic and provides it, once; whether it was new.
    async fn join(&self, joined: &mut HashSet<RepoId>, repo: RepoId) -> bool {
        let new = joined.insert(repo);
        if new {
            if let Err(e) = self.inner.net.subscribe(repo).await {
                tracing::warn!(%repo, error = %e, "cannot join the repository's topic");
            }
            if let Err(e) = self.inner.net.provide(repo).await {
                tracing::debug!(%repo, error = %e, "cannot provide the repository");
            }
        }
        new
    }

    /// Every interval with a random peer, and at once with each peer that connects:
    /// compare heads digests page by page and pull what differs. Also expires old
    /// outgoing packs.
    async fn anti_entropy(
        self,
        mut catch_up: mpsc::Receiver<PeerId>,
        token: CancellationToken,
    ) -> Result<(), Infallible> {
        let mut tick = tokio::time::interval(self.inner.config.anti_entropy_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let peers: Vec<PeerId> = tokio::select! {
                () = token.cancelled() => return Ok(()),
                peer = catch_up.recv() => match peer {
                    Some(peer) => vec![peer],
                    None => return Ok(()),
                },
                () = self.inner.healed.notified() => self.inner.net.connected().await,
                _ = tick.tick() => {
                    self.inner.packs.expire();
                    self.random_peer().await.into_iter().collect()
                }
            };
            for peer in peers {
                if self.inner.isolated.load(Ordering::Relaxed) {
                    break;
                }
                if let Err(e) = self.compare_with(peer).await {
                    tracing::debug!(%peer, error = %e, "anti-entropy round failed");
                }
            }
        }
    }

    async fn random_peer(&self) -> Option<PeerId> {
        let peers = self.inner.net.connected().await;
        let usable: Vec<PeerId> = peers
            .into_iter()
            .filter(|p| {
                self.inner.breakers.state(&p.to_string())
                    != guts_ops::resilience::BreakerState::Open
            })
            .collect();
        if usable.is_empty() {
            return None;
        }
        let pick = rand::random_range(0..usable.len());
        usable.get(pick).copied()
    }

    /// Brings this node's account records level with `peer`'s, when both are of one
    /// cluster (a page sealed for another cluster does not open and is ignored).
    async fn sync_accounts(&self, peer: PeerId) -> Result<(), PullError> {
        let mut after = None;
        // Bounded: a peer cannot keep a node paging forever.
        for _ in 0..10_000 {
            let digest = self.inner.replica.accounts_digest();
            let response = self
                .request(
                    peer,
                    Request::Accounts {
                        digest,
                        after: after.clone(),
                    },
                )
                .await?;
            let Response::Accounts {
                digest: theirs,
                sealed,
                next,
            } = response
            else {
                return Err(unexpected(&response));
            };
            if theirs == digest || sealed.is_empty() {
                return Ok(());
            }
            match self.inner.replica.import_accounts(sealed).await {
                Ok(changed) => {
                    if changed > 0 {
                        tracing::debug!(%peer, changed, "account records merged");
                    }
                }
                Err(ReplicaError::OtherCluster) => return Ok(()),
                Err(ReplicaError::Invalid(why)) => return Err(PullError::Misbehaved(why)),
                Err(e) => return Err(e.into()),
            }
            match next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// The proof that `from` holds the cluster secret, addressed to `to` (see
    /// [`Request::Hello`]); `answer` distinguishes the reply from the request.
    fn cluster_proof(&self, from: &PeerId, to: &PeerId, answer: bool) -> [u8; 32] {
        let mut mac = blake3::Hasher::new_keyed(&self.inner.net.cluster());
        mac.update(if answer {
            b"guts/hello/v1/answer"
        } else {
            b"guts/hello/v1/ask"
        });
        mac.update(&from.to_bytes());
        mac.update(&to.to_bytes());
        *mac.finalize().as_bytes()
    }

    pub(super) fn is_same_cluster(&self, peer: &PeerId) -> bool {
        self.inner
            .same_cluster
            .lock()
            .is_ok_and(|same| same.contains(peer))
    }

    fn mark_same_cluster(&self, peer: PeerId) {
        if let Ok(mut same) = self.inner.same_cluster.lock() {
            same.insert(peer);
        }
    }

    /// Proves to `peer` that this node is of its cluster, and checks its answer.
    async fn hello(&self, peer: PeerId) -> Result<(), PullError> {
        let me = self.inner.net.local_peer_id();
        let proof = self.cluster_proof(&me, &peer, false);
        let response = self.request(peer, Request::Hello { proof }).await?;
        let Response::Hello { proof } = response else {
            return Err(unexpected(&response));
        };
        if proof == self.cluster_proof(&peer, &me, true) {
            self.mark_same_cluster(peer);
        }
        Ok(())
    }

    /// The answer to a peer's [`Request::Hello`].
    pub(super) fn answer_hello(&self, peer: PeerId, proof: [u8; 32]) -> Response {
        let me = self.inner.net.local_peer_id();
        if proof != self.cluster_proof(&peer, &me, false) {
            return Response::Hello { proof: [0; 32] };
        }
        self.mark_same_cluster(peer);
        Response::Hello {
            proof: self.cluster_proof(&me, &peer, true),
        }
    }

    /// One anti-entropy exchange with `peer`: cluster membership first (private
    /// repositories flow only within a cluster), then accounts (a replicated push may
    /// name a user this node has not met yet), then repositories.
    async fn compare_with(&self, peer: PeerId) -> Result<(), PullError> {
        if !self.is_same_cluster(&peer) {
            self.hello(peer).await?;
        }
        self.sync_accounts(peer).await?;
        let mut after = None;
        loop {
            let response = self.request(peer, Request::Repos { after }).await?;
            let Response::Repos { repos, next } = response else {
                return Err(unexpected(&response));
            };
            let differing: Vec<RepoId> = repos
                .iter()
                .filter(|d| {
                    let ours = self.inner.replica.heads(d.repo).unwrap_or_default();
                    wire::heads_digest(&ours) != d.digest
                })
                .map(|d| d.repo)
                .collect();
            if !differing.is_empty() {
                let response = self
                    .request(peer, Request::Heads { repos: differing })
                    .await?;
                let Response::Heads { repos } = response else {
                    return Err(unexpected(&response));
                };
                for theirs in repos {
                    let ours = self.inner.replica.heads(theirs.repo).unwrap_or_default();
                    if theirs.heads.iter().any(|h| !ours.contains(h)) {
                        self.queue_pull(PullJob {
                            repo: theirs.repo,
                            peer,
                            want: theirs.heads,
                            trace: None,
                        });
                    }
                }
            }
            match next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }
}

/// A worker pool's queue: workers take turns waiting on it.
type Queue<T> = Arc<tokio::sync::Mutex<mpsc::Receiver<T>>>;

/// The next job for a worker of the pool sharing `queue`; `None` once the node stops.
async fn next_job<T>(queue: &Queue<T>, token: &CancellationToken) -> Option<T> {
    let mut queue = queue.lock().await;
    tokio::select! {
        () = token.cancelled() => None,
        job = queue.recv() => job,
    }
}

fn unexpected(response: &Response) -> PullError {
    match response {
        Response::Error { code, message } => PullError::Refused(format!("{code:?}: {message}")),
        _ => PullError::Misbehaved("a response of the wrong kind".to_owned()),
    }
}

impl From<std::io::Error> for PullError {
    fn from(e: std::io::Error) -> Self {
        PullError::Replica(ReplicaError::Internal(format!("scratch file: {e}")))
    }
}
