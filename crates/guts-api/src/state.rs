//! The state every handler and middleware of the API listener shares.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use guts_git::serve::{GitMetrics, PlanCache};
use guts_ops::{Health, Secret, Supervisor, Telemetry};
use guts_service::Service;
use guts_storage::{Accounts, RepoView, Repositories, ServedName, Store};
use tokio::sync::Semaphore;

use crate::git_io::GitThreads;
use crate::metrics::HttpMetrics;
use crate::middleware::ip_slots::IpSlots;
use crate::middleware::{RateLimiter, RateLimits, TrustedProxies};

/// Full-clone object selections kept (each about 20 bytes per object).
const GIT_PLAN_CACHE_ENTRIES: usize = 16;

/// Limits applied at the HTTP edge, from the node's configuration.
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    /// Whole-request deadline (`GUTS_REQUEST_TIMEOUT`): slow bodies and slow handlers
    /// both end in a 408 rather than holding a connection forever.
    pub request_timeout: Duration,
    /// Largest accepted request body (`GUTS_MAX_REQUEST_SIZE_MB`); above it, 413.
    pub max_body_bytes: usize,
    /// Requests served at once (`GUTS_MAX_CONNECTIONS`); above it, 503 + Retry-After.
    pub max_in_flight: usize,
    /// How long a client may take to send its request headers (slowloris guard).
    pub header_read_timeout: Duration,
    /// Largest git push (`GUTS_MAX_PUSH_SIZE_MB`). Git requests are exempt from
    /// `request_timeout` as a whole and from `max_body_bytes`: they stream, and are
    /// held instead by [`GitLimits`] (and fail after `request_timeout` without a byte).
    pub max_push_bytes: u64,
    /// Largest single object in a push, inflated (`GUTS_MAX_OBJECT_SIZE_MB`): gix
    /// refuses to allocate more for one object, so a small pack of a huge blob cannot
    /// claim its inflated size in memory.
    pub max_object_bytes: usize,
    /// Requests per hour per token and per anonymous client IP
    /// (`GUTS_RATE_LIMIT_*_PER_HOUR`); `/api/v3` only.
    pub rate_limits: RateLimits,
    /// Peers whose `X-Forwarded-*` headers are believed (`GUTS_TRUSTED_PROXIES`):
    /// response URLs and the rate limiter's client IP come from them only for
    /// requests these peers relay.
    pub trusted_proxies: TrustedProxies,
    /// What holds git smart HTTP instead of the REST timeout, body cap and budget.
    pub git: GitLimits,
}

/// The limits of git smart HTTP. Git requests stream for as long as a clone or push
/// needs, so they are outside the REST timeout and body cap; these bound what a slow or
/// greedy git client can hold instead.
#[derive(Debug, Clone)]
pub struct GitLimits {
    /// Bytes per second a git request body must average over every `rate_window`
    /// (`GUTS_GIT_MIN_TRANSFER_RATE`); below it the request is cut.
    pub min_transfer_rate: u64,
    /// The window the rate is measured over (`GUTS_GIT_MIN_RATE_WINDOW`): short bursts
    /// of slowness (a client compressing before it sends) are forgiven within it.
    pub rate_window: Duration,
    /// The longest a git request may last, response included
    /// (`GUTS_GIT_REQUEST_DEADLINE`).
    pub deadline: Duration,
    /// Git requests one client IP may have in flight (`GUTS_GIT_MAX_PER_IP`).
    pub max_per_ip: usize,
    /// Git requests per hour per token and per anonymous client IP
    /// (`GUTS_RATE_LIMIT_GIT_*_PER_HOUR`), a budget apart from the REST one.
    pub rate_limits: RateLimits,
}

impl Default for GitLimits {
    fn default() -> Self {
        Self {
            min_transfer_rate: 1024,
            rate_window: Duration::from_secs(60),
            deadline: Duration::from_secs(3600),
            max_per_ip: 64,
            rate_limits: RateLimits {
                anonymous_per_hour: 3600,
                authenticated_per_hour: 20_000,
            },
        }
    }
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 100 * 1024 * 1024,
            max_in_flight: 10_000,
            header_read_timeout: Duration::from_secs(10),
            max_push_bytes: 2048 * 1024 * 1024,
            max_object_bytes: 100 * 1024 * 1024,
            rate_limits: RateLimits::default(),
            trusted_proxies: TrustedProxies::default(),
            git: GitLimits::default(),
        }
    }
}

/// Facts about this node that the admin API reports.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub version: &'static str,
    pub peer_id: String,
    /// `GUTS_DATA_DIR`, whose size the admin API reports.
    pub data_dir: std::path::PathBuf,
    /// Where git over SSH is reached (`ssh://USER@HOST[:PORT]/`), for repositories'
    /// `ssh_url`; `None` without an SSH server.
    pub ssh_url: Option<String>,
}

/// Cheap to clone: one `Arc` around everything.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub health: Arc<Health>,
    pub metrics: Arc<HttpMetrics>,
    pub node: NodeInfo,
    /// `GUTS_ADMIN_TOKEN`; `None` disables the admin API.
    pub admin_token: Option<Secret<String>>,
    /// The log-level switch; `None` when no subscriber was installed (unit tests).
    pub telemetry: Option<Arc<Telemetry>>,
    pub limits: EdgeLimits,
    pub accounts: Accounts,
    pub repos: Arc<Repositories>,
    /// The use cases every route calls (over `accounts` and `repos`).
    pub service: Service,
    /// The store itself, for what reads it whole: backups take their snapshot from it.
    pub store: Store,
    /// `GUTS_OPEN_REGISTRATION`: anyone may create an account.
    pub open_registration: bool,
    pub git: Arc<GitMetrics>,
    /// The p2p layer, for the admin API; `None` in unit tests without a network.
    pub peers: Option<PeerHandle>,
    /// The latest online backup (`/admin/backup`).
    pub(crate) backups: Arc<crate::backup_jobs::Backups>,
    /// Where long-lived work started by a request runs, tracked and awaited on shutdown.
    pub(crate) tasks: Supervisor,
    /// Object selections of full clones, reused by later clones of the same refs.
    pub git_plans: Arc<PlanCache>,
    pub(crate) in_flight: Arc<Semaphore>,
    /// The `/api/v3` token buckets.
    pub rate_limiter: RateLimiter,
    /// The git token buckets, apart from the REST ones; shared with git over SSH.
    pub git_rate_limiter: Arc<RateLimiter>,
    /// Git requests in flight per client IP.
    pub(crate) git_per_ip: Arc<IpSlots>,
    /// Blocking threads git work may hold, per class: see [`GitThreads`].
    pub(crate) git_threads: GitThreads,
}

/// The domain services the API drives.
#[derive(Debug, Clone)]
pub struct Services {
    pub accounts: Accounts,
    pub repos: Arc<Repositories>,
    pub store: Store,
    pub open_registration: bool,
    pub git_metrics: Arc<GitMetrics>,
    pub peers: Option<PeerHandle>,
    /// The node's supervisor, for the long-lived work a request starts (a backup).
    pub tasks: Supervisor,
    /// Where webhooks may send (`GUTS_WEBHOOK_ALLOWED_NETS`).
    pub hook_policy: guts_service::HookPolicy,
}

/// The p2p layer as the admin API sees it.
#[derive(Clone)]
pub struct PeerHandle(pub Arc<dyn guts_p2p::directory::PeerDirectory>);

impl std::fmt::Debug for PeerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerHandle")
    }
}

impl AppState {
    /// Where `view` is served on this node ([`Repositories::served`]): the owner and
    /// name its URLs and `full_name` spell. A deleted repository by the name it was
    /// created with.
    pub fn served(&self, view: &RepoView) -> ServedName {
        self.service.served(view)
    }

    pub fn new(
        health: Arc<Health>,
        metrics: Arc<HttpMetrics>,
        node: NodeInfo,
        admin_token: Option<Secret<String>>,
        telemetry: Option<Arc<Telemetry>>,
        limits: EdgeLimits,
        services: Services,
    ) -> Self {
        let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
        let rate_limiter = RateLimiter::new(limits.rate_limits);
        let git_rate_limiter = Arc::new(RateLimiter::new(limits.git.rate_limits));
        let git_per_ip = Arc::new(IpSlots::new(limits.git.max_per_ip));
        Self(Arc::new(Inner {
            health,
            metrics,
            node,
            admin_token,
            telemetry,
            limits,
            service: Service::new(services.accounts.clone(), services.repos.clone())
                .with_hook_policy(services.hook_policy),
            accounts: services.accounts,
            repos: services.repos,
            store: services.store,
            open_registration: services.open_registration,
            git: services.git_metrics,
            peers: services.peers,
            backups: Arc::default(),
            tasks: services.tasks,
            git_plans: Arc::new(PlanCache::new(GIT_PLAN_CACHE_ENTRIES)),
            in_flight,
            rate_limiter,
            git_rate_limiter,
            git_per_ip,
            git_threads: GitThreads::new(),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl FromRef<AppState> for Arc<Health> {
    fn from_ref(state: &AppState) -> Self {
        state.health.clone()
    }
}
