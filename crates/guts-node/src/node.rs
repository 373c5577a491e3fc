//! Composition root and lifecycle: [`Node::bind`] builds every subsystem from the
//! configuration and starts the listeners; [`Node::shutdown`] takes it down in order.
//!
//! Shutdown order: readiness fails (draining) -> the API listener stops accepting and
//! in-flight requests finish -> the swarm closes (peers see us leave) -> background
//! tasks are cancelled and drained -> storage is flushed -> the metrics listener (which
//! kept reporting the drain) stops last.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use guts_api::{AppState, EdgeLimits, HttpMetrics, NodeInfo, Services, WebhookMetrics};
use guts_core::Keypair;
use guts_git::serve::GitMetrics;
use guts_ops::resilience::{Breakers, ResilienceMetrics, RetryPolicy};
use guts_ops::{HealthBuilder, MetricsRegistry, Probe, Supervisor, Telemetry};
use guts_p2p::net::{NetConfig, NetHandle, NetMetrics, Network};
use guts_p2p::sync::{SyncConfig, SyncMetrics, SyncService};
use guts_storage::{
    Accounts, GitRepos, Repositories, Sealer, StorageMetrics, Store, StoreError, WriterHandle,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::keyfile::{self, KeyFileError, KeySource};
use crate::replica::NodeReplica;

/// How long a peer's circuit stays open before one request is tried again.
const BREAKER_COOLDOWN: Duration = Duration::from_secs(30);

/// How often `guts_storage_size_bytes` is measured.
const STORAGE_SIZE_INTERVAL: Duration = Duration::from_secs(15);

/// How often checkpoints of moved repository state are written: often enough that a
/// restart or an eviction rarely has to fold a long log, rarely enough that a busy
/// repository is not re-encoded on every write.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);

/// Checkpoint bytes one pass writes at most (the rest wait for the next pass), so a
/// pass never holds the writer for long.
const CHECKPOINT_PASS_BYTES: usize = 64 * 1024 * 1024;

/// How often repositories are checked for packs to consolidate.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// How long a client may take to send request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Webhook delivery attempts in flight at once.
const WEBHOOK_CONCURRENCY: usize = 16;
/// Webhook delivery log: rows kept, and for how long (GitHub keeps 3 days).
const WEBHOOK_LOG_ROWS: u64 = 20_000;
const WEBHOOK_LOG_AGE: Duration = Duration::from_secs(3 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create data directory {path} (GUTS_DATA_DIR): {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] KeyFileError),
    #[error("cannot listen on {addr} ({var}): {source}")]
    Bind {
        var: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("storage: {0}")]
    Storage(#[from] StoreError),
    #[error("cannot start the p2p network on {addr} (GUTS_P2P_ADDR): {reason}")]
    P2p { addr: String, reason: String },
    #[error("shutdown did not finish within {0:?}")]
    ShutdownTimeout(Duration),
    #[error("{0}")]
    TaskFailed(String),
}

/// The node's key and where it came from. Loaded before anything else starts, because
/// the peer id labels the node's logs and traces.
#[derive(Debug)]
pub struct Identity {
    pub key: Keypair,
    pub source: KeySource,
}

impl Identity {
    /// Creates the data directory if needed and loads (or first generates) the key.
    pub fn load(config: &Config) -> Result<Identity, NodeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let (key, source) = keyfile::load_or_create(config.private_key.as_ref(), &config.data_dir)?;
        Ok(Identity { key, source })
    }

    pub fn peer_id(&self) -> String {
        self.key.public().peer_id()
    }
}

/// A running node. Dropping it without [`Node::shutdown`] leaves its tasks running until
/// the runtime ends.
#[derive(Debug)]
pub struct Node {
    key: Keypair,
    api_addr: SocketAddr,
    metrics_addr: SocketAddr,
    health: Arc<guts_ops::Health>,
    supervisor: Supervisor,
    /// Stops the API listener from accepting (first step of shutdown).
    api_stop: CancellationToken,
    /// Cancelled by the API server task once its last connection closed.
    api_done: CancellationToken,
    /// Stops the metrics listener (last step of shutdown).
    ops_stop: CancellationToken,
    /// Joined at the end of shutdown: the last queued write is durable ("flush").
    writer: WriterHandle,
    /// Closed after the API drained, before the tasks stop.
    net: NetHandle,
}

/// Storage opened and recovered: what the services are built from.
#[derive(Debug)]
pub struct OpenedStorage {
    pub store: Store,
    pub writer: WriterHandle,
    pub accounts: Accounts,
    pub repos: Arc<Repositories>,
}

/// The store's page cache whatever `GUTS_CACHE_MB` says: below it every read of the
/// name index and the summaries goes to disk.
const MIN_PAGE_CACHE_BYTES: usize = 4 * 1024 * 1024;

impl OpenedStorage {
    /// Opens the store and the repositories under the data directory and recovers them
    /// (state rebuilt from the operation log, leftovers of interrupted work removed).
    /// Used by the node and by the offline `user` subcommand.
    pub fn open(config: &Config, metrics: Arc<StorageMetrics>) -> Result<OpenedStorage, NodeError> {
        let secret = keyfile::cluster_secret(config.cluster_secret.as_ref(), &config.data_dir)?;
        let budget = config.cache_bytes();
        let page_cache = (budget / 4).max(MIN_PAGE_CACHE_BYTES);
        let (store, writer) = Store::open_sized(&config.data_dir, metrics, page_cache)?;
        let sealer = Arc::new(Sealer::new(secret.expose()));
        let repos = Repositories::open(
            store.clone(),
            GitRepos::open(&config.data_dir)?,
            sealer.clone(),
        )?;
        repos.set_cache_budget(u64::try_from(budget - budget / 4).unwrap_or(u64::MAX));
        let accounts = Accounts::new(store.clone(), sealer);
        Ok(OpenedStorage {
            store,
            writer,
            accounts,
            repos: Arc::new(repos),
        })
    }
}

impl Node {
    /// Builds and starts a node. Returns once both listeners accept connections and the
    /// node reports itself started.
    pub async fn bind(
        config: &Config,
        identity: Identity,
        telemetry: Option<Arc<Telemetry>>,
    ) -> Result<Node, NodeError> {
        let started_at = Instant::now();
        let Identity { key, source } = identity;
        let peer_id = key.public().peer_id();
        match source {
            KeySource::Generated => tracing::info!(%peer_id, "generated a new node key"),
            KeySource::Loaded => tracing::info!(%peer_id, "loaded the node key"),
            KeySource::Configured => {
                tracing::info!(%peer_id, "using the node key from GUTS_PRIVATE_KEY")
            }
        }

        let mut registry = MetricsRegistry::new();
        let http_metrics = Arc::new(HttpMetrics::register(registry.registry_mut()));
        let storage_metrics = Arc::new(StorageMetrics::register(registry.registry_mut()));
        let git_metrics = Arc::new(GitMetrics::register(registry.registry_mut()));
        let net_metrics = Arc::new(NetMetrics::register(registry.registry_mut()));
        let sync_metrics = Arc::new(SyncMetrics::register(registry.registry_mut()));
        let resilience = Arc::new(ResilienceMetrics::register(registry.registry_mut()));
        let webhook_metrics = Arc::new(WebhookMetrics::register(registry.registry_mut()));
        let ssh_metrics = guts_ssh::SshMetrics::register(registry.registry_mut());
        let size_metrics = storage_metrics.clone();
        let encoder = Arc::new(registry.freeze());

        let recovery = Instant::now();
        let storage = OpenedStorage::open(config, storage_metrics)?;
        tracing::info!(
            repositories = storage.repos.live_count(),
            recovery_ms = recovery.elapsed().as_millis() as u64,
            "storage recovered"
        );

        let supervisor = Supervisor::new();
        let cluster = keyfile::cluster_secret(config.cluster_secret.as_ref(), &config.data_dir)?;
        let (net, events, swarm) = Network::start(
            NetConfig {
                secret_key: *key.seed_bytes(),
                listen: config.p2p_addr.clone(),
                bootstrap: config.bootstrap_peers.clone(),
                mdns: config.mdns,
                max_connections: config.max_connections,
                request_timeout: config.p2p_timeout(),
                cluster: blake3::derive_key("guts/cluster-id/v1", cluster.expose()),
            },
            net_metrics,
        )
        .map_err(|e| NodeError::P2p {
            addr: config.p2p_addr.clone(),
            reason: e.to_string(),
        })?;
        let token = supervisor.token();
        supervisor.spawn("p2p-swarm", async move {
            tokio::select! {
                result = swarm => result.map_err(|e| e.to_string()),
                () = token.cancelled() => Ok(()),
            }
        });
        let breakers = Breakers::new(
            config.circuit_breaker_threshold,
            BREAKER_COOLDOWN,
            resilience.clone(),
        );
        let replica = Arc::new(NodeReplica::new(
            storage.repos.clone(),
            storage.accounts.clone(),
            config.seed.clone(),
            config.max_object_bytes(),
        ));
        let (sync, sync_tasks) = SyncService::new(
            replica,
            net.clone(),
            SyncConfig {
                anti_entropy_interval: config.anti_entropy_interval(),
                scratch_dir: config.data_dir.join("p2p-scratch"),
                retry: RetryPolicy::new(config.retry_max_attempts),
                max_pack_bytes: config.max_push_bytes(),
            },
            breakers,
            resilience,
            sync_metrics,
        )
        .map_err(|e| NodeError::P2p {
            addr: config.p2p_addr.clone(),
            reason: format!("scratch directory: {e}"),
        })?;
        for (name, task) in sync.run(
            sync_tasks,
            events,
            storage.repos.subscribe(),
            supervisor.token(),
        ) {
            supervisor.spawn(name, task);
        }

        let mut health = HealthBuilder::default();
        let probe_sync = sync.clone();
        health.register("p2p", &[Probe::Ready], move || {
            let reached = probe_sync.bootstrap_reached();
            async move {
                if reached {
                    Ok(())
                } else {
                    Err("no bootstrap peer reached yet (GUTS_BOOTSTRAP_PEERS)".to_string())
                }
            }
        });
        let probe_dir = config.data_dir.clone();
        health.register("data_dir", &[Probe::Ready], move || {
            let dir = probe_dir.clone();
            async move { data_dir_writable(dir).await }
        });
        let probe_store = storage.store.clone();
        health.register("storage", &[Probe::Ready], move || {
            let store = probe_store.clone();
            async move { store.probe().await.map_err(|e| e.to_string()) }
        });
        let health = Arc::new(health.build());

        let api_listener = bind("GUTS_API_ADDR", config.api_addr).await?;
        let ops_listener = bind("GUTS_METRICS_ADDR", config.metrics_addr).await?;
        let api_addr = local_addr("GUTS_API_ADDR", &api_listener, config.api_addr)?;
        let ssh_listener = match config.ssh_addr {
            Some(addr) => {
                let listener = bind("GUTS_SSH_ADDR", addr).await?;
                let bound = local_addr("GUTS_SSH_ADDR", &listener, addr)?;
                Some((listener, bound))
            }
            None => None,
        };
        let ssh_url = ssh_listener
            .as_ref()
            .map(|(_, bound)| ssh_public_url(config, *bound));
        let metrics_addr = local_addr("GUTS_METRICS_ADDR", &ops_listener, config.metrics_addr)?;

        let limits = EdgeLimits {
            request_timeout: config.request_timeout(),
            max_body_bytes: config.max_body_bytes(),
            max_in_flight: config.max_connections as usize,
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_push_bytes: config.max_push_bytes(),
            max_object_bytes: config.max_object_bytes(),
            rate_limits: guts_api::RateLimits {
                anonymous_per_hour: config.rate_limit_anonymous_per_hour,
                authenticated_per_hour: config.rate_limit_authenticated_per_hour,
            },
            trusted_proxies: config.trusted_proxies.clone(),
            git: guts_api::GitLimits {
                min_transfer_rate: config.git_min_transfer_rate,
                rate_window: config.git_min_rate_window(),
                deadline: config.git_request_deadline(),
                max_per_ip: config.git_max_per_ip as usize,
                rate_limits: guts_api::RateLimits {
                    anonymous_per_hour: config.rate_limit_git_anonymous_per_hour,
                    authenticated_per_hour: config.rate_limit_git_authenticated_per_hour,
                },
            },
        };
        let state = AppState::new(
            health.clone(),
            http_metrics,
            NodeInfo {
                version: env!("CARGO_PKG_VERSION"),
                peer_id: peer_id.clone(),
                data_dir: config.data_dir.clone(),
                ssh_url,
            },
            config.admin_token.clone(),
            telemetry,
            limits,
            Services {
                accounts: storage.accounts.clone(),
                repos: storage.repos.clone(),
                store: storage.store.clone(),
                open_registration: config.open_registration,
                git_metrics,
                peers: Some(guts_api::PeerHandle(Arc::new(sync))),
                tasks: supervisor.clone(),
                hook_policy: config.webhook_allowed_nets.clone(),
            },
        );

        let api_stop = CancellationToken::new();
        let api_done = CancellationToken::new();
        let ops_stop = CancellationToken::new();

        let webhooks = guts_api::WebhookSettings {
            max_attempts: config.webhook_max_attempts,
            retry_base: Duration::from_millis(config.webhook_retry_base_ms),
            retry_max: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(config.webhook_timeout.min(10)),
            timeout: Duration::from_secs(config.webhook_timeout),
            concurrency: WEBHOOK_CONCURRENCY,
            keep_deliveries: WEBHOOK_LOG_ROWS,
            keep_for: WEBHOOK_LOG_AGE,
            takeover_after: Duration::from_secs(config.webhook_takeover_secs),
            origin: config
                .public_url
                .clone()
                .map(|u| u.trim_end_matches('/').to_string())
                .unwrap_or_else(|| format!("http://{api_addr}")),
        };
        let (hook_state, stop) = (state.clone(), supervisor.token());
        supervisor.spawn(
            "webhook-delivery",
            guts_api::webhooks::run(hook_state, webhooks, webhook_metrics, stop),
        );

        // The web interface shares the API listener (GitHub's URL scheme beside the REST
        // API and git's routes) and the request edge (client, logs, metrics).
        let web = guts_web::router(guts_web::WebState::new(
            state.service.clone(),
            state.peers.as_ref().map(|p| p.0.clone()),
        ));
        let ssh_addr = match ssh_listener {
            Some((listener, bound)) => {
                let host_key =
                    guts_ssh::HostKey::from_seed(&storage.accounts.sealer().ssh_host_seed());
                tracing::info!(ssh = %bound, host_key = %host_key.fingerprint(), "SSH server listening");
                let server = guts_ssh::SshServer::new(
                    listener,
                    guts_ssh::SshContext {
                        service: state.service.clone(),
                        plans: state.git_plans.clone(),
                        git_metrics: state.git.clone(),
                        git_rate: state.git_rate_limiter.clone(),
                        metrics: ssh_metrics,
                        host_key,
                        settings: guts_ssh::SshSettings {
                            idle_timeout: Duration::from_secs(config.ssh_idle_timeout),
                            login_grace: guts_ssh::LOGIN_GRACE,
                            deadline: config.git_request_deadline(),
                            min_rate: config.git_min_transfer_rate,
                            rate_window: config.git_min_rate_window(),
                            max_connections: config.ssh_max_connections as usize,
                            max_per_ip: config.git_max_per_ip as usize,
                            max_push_bytes: config.max_push_bytes(),
                            max_object_bytes: config.max_object_bytes(),
                        },
                    },
                );
                // It stops accepting with the API listener; running git commands finish
                // within the drain.
                supervisor.spawn("ssh-server", server.run(api_stop.clone()));
                Some(bound)
            }
            None => None,
        };
        let router = guts_api::api_router(state, web);
        let (stop, done) = (api_stop.clone(), api_done.clone());
        supervisor.spawn("api-server", async move {
            let result = guts_api::serve(api_listener, router, stop, HEADER_READ_TIMEOUT).await;
            done.cancel();
            result
        });
        let router = guts_api::ops_router(health.clone(), encoder);
        let stop = ops_stop.clone();
        supervisor.spawn("metrics-server", async move {
            guts_api::serve(ops_listener, router, stop, HEADER_READ_TIMEOUT).await
        });

        // The data directory's size changes with every write but is only worth a walk
        // now and then.
        let (token, dir) = (supervisor.token(), config.data_dir.clone());
        supervisor.spawn("storage-size", async move {
            loop {
                let (metrics, dir) = (size_metrics.clone(), dir.clone());
                let _ = tokio::task::spawn_blocking(move || metrics.measure_size(&dir)).await;
                tokio::select! {
                    () = token.cancelled() => return Ok::<(), std::convert::Infallible>(()),
                    () = tokio::time::sleep(STORAGE_SIZE_INTERVAL) => {}
                }
            }
        });

        // Checkpoints of folded state, for the repositories whose state moved (and the
        // ones evicted before theirs was written), and once more on the way out.
        let (token, repos) = (supervisor.token(), storage.repos.clone());
        supervisor.spawn("repo-checkpoints", async move {
            loop {
                let last = tokio::select! {
                    () = token.cancelled() => true,
                    () = tokio::time::sleep(CHECKPOINT_INTERVAL) => false,
                    () = repos.checkpoints_wanted() => false,
                };
                let pass = if last {
                    guts_storage::CheckpointPass::Final
                } else {
                    guts_storage::CheckpointPass::Periodic {
                        max_bytes: CHECKPOINT_PASS_BYTES,
                    }
                };
                if let Err(e) = repos.write_checkpoints(pass).await {
                    tracing::warn!(error = %e, "cannot write checkpoints");
                }
                if last {
                    return Ok::<(), std::convert::Infallible>(());
                }
            }
        });

        // Pushes leave one pack each; consolidate repositories that have many (see
        // guts_storage::maintenance for why git does it).
        match guts_storage::maintenance::find_git() {
            Some(git) => {
                let (token, repos) = (supervisor.token(), storage.repos.clone());
                supervisor.spawn("git-maintenance", async move {
                    loop {
                        tokio::select! {
                            () = token.cancelled() => return Ok::<(), std::convert::Infallible>(()),
                            () = tokio::time::sleep(MAINTENANCE_INTERVAL) => {}
                        }
                        for listing in repos.listings() {
                            if token.is_cancelled() {
                                break;
                            }
                            let (dirs, id, git) =
                                (repos.git().clone(), listing.id.to_string(), git.clone());
                            let _ = tokio::task::spawn_blocking(move || {
                                if dirs.pack_count(&id) < guts_storage::maintenance::PACK_THRESHOLD
                                {
                                    return;
                                }
                                let started = Instant::now();
                                match guts_storage::maintenance::repack(&git, &dirs.path(&id)) {
                                    Ok(()) => tracing::info!(
                                        repo = %id,
                                        ms = started.elapsed().as_millis() as u64,
                                        "packs consolidated"
                                    ),
                                    Err(e) => {
                                        tracing::warn!(repo = %id, error = %e, "repack failed")
                                    }
                                }
                            })
                            .await;
                        }
                    }
                });
            }
            None => tracing::warn!(
                "no git binary found: packs left by pushes are not consolidated (served correctly, less compactly)"
            ),
        }

        // Recovery ran above, before the listeners started: startup is done.
        health.mark_started();
        tracing::info!(
            %peer_id,
            api = %api_addr,
            metrics = %metrics_addr,
            ssh = ?ssh_addr,
            data_dir = %config.data_dir.display(),
            startup_ms = started_at.elapsed().as_millis() as u64,
            "node ready"
        );
        Ok(Node {
            key,
            api_addr,
            metrics_addr,
            health,
            supervisor,
            api_stop,
            api_done,
            ops_stop,
            writer: storage.writer,
            net,
        })
    }

    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    pub fn peer_id(&self) -> String {
        self.key.public().peer_id()
    }

    /// Resolves when some task asked the node to stop (a failure); signals are the
    /// caller's business.
    pub async fn failed(&self) {
        self.supervisor.shutdown_requested().await
    }

    /// Stops the node in order within `timeout`. Errors if a task had failed earlier or
    /// the drain did not finish in time; either way, everything has been asked to stop.
    pub async fn shutdown(self, timeout: Duration) -> Result<(), NodeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        tracing::info!(timeout_s = timeout.as_secs(), "shutting down: draining");
        self.health.start_draining();
        self.api_stop.cancel();
        let drained = tokio::time::timeout_at(deadline, self.api_done.cancelled())
            .await
            .is_ok();
        if !drained {
            tracing::error!("in-flight requests did not finish before the shutdown timeout");
        }
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if tokio::time::timeout(remaining, self.net.shutdown())
            .await
            .is_err()
        {
            tracing::error!("the swarm did not close before the shutdown timeout");
        }
        self.supervisor.request_shutdown();
        self.ops_stop.cancel();
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let all_stopped = self.supervisor.drain(remaining).await;
        // Every holder of a store handle (the routers) is gone with the servers: the
        // writer drains its queue, commits, and exits.
        let writer = self.writer;
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let flushed = tokio::time::timeout(
            remaining,
            tokio::task::spawn_blocking(move || writer.join()),
        )
        .await
        .is_ok();
        if !flushed {
            tracing::error!("storage writer did not finish before the shutdown timeout");
        }
        if let Some(why) = self.supervisor.failure() {
            return Err(NodeError::TaskFailed(why));
        }
        if !drained || all_stopped.is_err() || !flushed {
            return Err(NodeError::ShutdownTimeout(timeout));
        }
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// What SSH clients are told to connect to: `GUTS_SSH_PUBLIC_URL`, else `git` at the
/// host of `GUTS_PUBLIC_URL` (else the listener's address, 127.0.0.1 for a wildcard
/// one) and the SSH listener's port.
fn ssh_public_url(config: &Config, bound: SocketAddr) -> String {
    if let Some(url) = &config.ssh_public_url {
        return if url.ends_with('/') {
            url.clone()
        } else {
            format!("{url}/")
        };
    }
    let from_public = config.public_url.as_deref().and_then(|url| {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = rest.split('/').next().unwrap_or_default();
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map(|(h, _)| format!("[{h}]")),
            None => authority.split(':').next().map(str::to_owned),
        };
        host.filter(|h| !h.is_empty())
    });
    let host = from_public.unwrap_or_else(|| match bound.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    });
    format!("ssh://git@{host}:{}/", bound.port())
}

async fn bind(var: &'static str, addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { var, addr, source })
}

fn local_addr(
    var: &'static str,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<SocketAddr, NodeError> {
    listener
        .local_addr()
        .map_err(|source| NodeError::Bind { var, addr, source })
}

/// Readiness: the data directory accepts a durable write. Runs on the blocking pool
/// because fsync can take a while on a struggling disk.
async fn data_dir_writable(dir: PathBuf) -> Result<(), String> {
    tokio::task::spawn_blocking(move || probe_write(&dir))
        .await
        .map_err(|e| format!("probe task failed: {e}"))?
}

fn probe_write(dir: &Path) -> Result<(), String> {
    use std::io::Write as _;
    let path = dir.join(".health-probe");
    let mut file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(b"ok")
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}
