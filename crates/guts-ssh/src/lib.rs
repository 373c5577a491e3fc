//! Git over SSH: the fourth front end, beside the REST API, git over HTTP and the web
//! interface. An SSH server (russh) that authenticates public keys and runs exactly two
//! commands, `git-upload-pack` and `git-receive-pack`, on the repository they name,
//! with the same use case as git over HTTP deciding who may do what
//! (`Service::git_access`) and the same serving code speaking git
//! (`guts_git::serve::{upload_pack_stream, receive_pack_stream}`).
//!
//! - [`command`]: the `exec` request's command, parsed (pure; property-tested);
//! - [`handler`]: one SSH connection: public-key authentication through
//!   `Service::ssh_caller`, session channels, `env GIT_PROTOCOL`, `exec`, and polite
//!   refusals of shells, subsystems and forwarding;
//! - [`exec`]: one git command on one channel: the channel bridged to blocking
//!   `Read`/`Write` ([`pipe`]) for git's serving code, with a deadline;
//! - [`host_key`], [`metrics`].
//!
//! What bounds a client, in order: connections at once, node-wide and per client
//! address (over it the connection is closed at once); the login grace (a connection
//! not authenticated within it is dropped, so idle connections cost a task for
//! seconds, never a thread); the idle timeout (no byte either way); two session
//! channels per connection; the git rate limit, one budget with git over HTTP; the git
//! deadline per command; and the blocking threads git commands run on, a budget apart
//! from HTTP's, so SSH can never take the threads REST and git over HTTP need.

pub mod command;
mod exec;
mod handler;
mod host_key;
mod metrics;
mod pipe;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guts_git::serve::{GitMetrics, PlanCache};
use guts_service::Service;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use host_key::HostKey;
pub use metrics::SshMetrics;

use metrics::ConnectionOutcome;

/// How long a connection may take to authenticate (OpenSSH's `LoginGraceTime`, shorter:
/// a git client authenticates in milliseconds).
pub const LOGIN_GRACE: Duration = Duration::from_secs(20);

/// Session channels one connection may have open at once (git uses one).
pub const MAX_CHANNELS: usize = 2;

/// Exit status of a refused command (git's own for a fatal error).
pub(crate) const EXIT_REFUSED: u32 = 128;

/// Git commands running at once over SSH, node-wide: each holds a blocking thread for
/// as long as it runs (a stateful protocol waits on its client between rounds). Tokio's
/// blocking pool has 512 threads; git over HTTP keeps at most 160 of them, this 96, and
/// the rest stays for REST reads and storage. Beyond it a command waits up to 10 s,
/// then is told the server is busy.
pub const MAX_COMMANDS: usize = 96;

/// The limits of the SSH server, from the node's configuration.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// No byte either way for this long ends a connection.
    pub idle_timeout: Duration,
    /// See [`LOGIN_GRACE`].
    pub login_grace: Duration,
    /// How long one git command may last in all (`GUTS_GIT_REQUEST_DEADLINE`).
    pub deadline: Duration,
    /// Bytes per second a pushed pack must average over every `rate_window` of waiting
    /// on the client (`GUTS_GIT_MIN_TRANSFER_RATE`), as over HTTP.
    pub min_rate: u64,
    /// `GUTS_GIT_MIN_RATE_WINDOW`.
    pub rate_window: Duration,
    /// Connections open at once, node-wide.
    pub max_connections: usize,
    /// Connections open at once from one client address (`GUTS_GIT_MAX_PER_IP`).
    pub max_per_ip: usize,
    /// Largest push, in bytes of pack (`GUTS_MAX_PUSH_SIZE_MB`).
    pub max_push_bytes: u64,
    /// Largest object in a push (`GUTS_MAX_OBJECT_SIZE_MB`).
    pub max_object_bytes: usize,
}

/// What the SSH server serves with.
#[derive(Debug, Clone)]
pub struct SshContext {
    pub service: Service,
    /// Shared with git over HTTP: a clone over either reuses the other's selection.
    pub plans: Arc<PlanCache>,
    /// `guts_git_*`, shared with git over HTTP (labelled `transport="ssh"`).
    pub git_metrics: Arc<GitMetrics>,
    /// The git rate limiter (`GUTS_RATE_LIMIT_GIT_*`), shared with git over HTTP: each
    /// command spends one request from its key's bucket.
    pub git_rate: Arc<guts_ops::rate::RateLimiter>,
    pub metrics: SshMetrics,
    pub host_key: HostKey,
    pub settings: SshSettings,
}

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) ctx: SshContext,
    connections: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    pub(crate) commands: Arc<Semaphore>,
}

/// A bound SSH server; [`SshServer::run`] serves until shutdown.
#[derive(Debug)]
pub struct SshServer {
    listener: TcpListener,
    shared: Arc<Shared>,
    config: Arc<russh::server::Config>,
}

impl SshServer {
    /// A server on `listener` (bound by the node, which names the setting on failure).
    pub fn new(listener: TcpListener, ctx: SshContext) -> SshServer {
        let settings = &ctx.settings;
        let config = russh::server::Config {
            server_id: russh::SshId::Standard("SSH-2.0-Guts".into()),
            methods: russh::MethodSet::from(&[russh::MethodKind::PublicKey][..]),
            // Keys are looked up, not passwords checked: nothing to time, but a
            // rejection still costs the client a moment.
            auth_rejection_time: Duration::from_millis(200),
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![ctx.host_key.private().clone()],
            inactivity_timeout: Some(settings.idle_timeout),
            keepalive_interval: Some(settings.idle_timeout / 4),
            keepalive_max: 3,
            max_auth_attempts: 6,
            nodelay: true,
            ..Default::default()
        };
        let shared = Arc::new(Shared {
            connections: Arc::new(Semaphore::new(settings.max_connections)),
            per_ip: Mutex::new(HashMap::new()),
            commands: Arc::new(Semaphore::new(MAX_COMMANDS)),
            ctx,
        });
        SshServer {
            listener,
            shared,
            config: Arc::new(config),
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until `shutdown`, then stops accepting, ends idle sessions,
    /// lets running git commands finish, and returns when every connection is closed
    /// (the node's drain timeout bounds the wait).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), std::convert::Infallible> {
        let tracker = TaskTracker::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => self.admit(stream, peer, &tracker, &shutdown),
                    Err(e) => {
                        // Out of file descriptors and the like: pause rather than spin.
                        tracing::warn!(error = %e, "accepting an SSH connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        drop(self.listener);
        tracker.close();
        tracker.wait().await;
        Ok(())
    }

    fn admit(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
        let shared = &self.shared;
        let Some(slot) = Slot::take(shared, peer.ip()) else {
            shared.ctx.metrics.connection(ConnectionOutcome::Refused);
            tracing::info!(client = %peer, "SSH connection refused: too many connections");
            // Dropping the stream closes it: cheaper than a protocol-level goodbye.
            return;
        };
        shared.ctx.metrics.connection(ConnectionOutcome::Accepted);
        let (shared, config) = (shared.clone(), self.config.clone());
        let (shutdown, commands) = (shutdown.clone(), tracker.clone());
        tracker.spawn(async move {
            handler::serve_connection(shared, config, stream, peer, slot, shutdown, commands).await;
        });
    }
}

/// A connection's place in the node-wide and per-address budgets, held until it ends.
#[derive(Debug)]
pub(crate) struct Slot {
    shared: Arc<Shared>,
    ip: IpAddr,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Slot {
    fn take(shared: &Arc<Shared>, ip: IpAddr) -> Option<Slot> {
        let permit = shared.connections.clone().try_acquire_owned().ok()?;
        let mut per_ip = shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= shared.ctx.settings.max_per_ip {
            return None;
        }
        *count += 1;
        Some(Slot {
            shared: shared.clone(),
            ip,
            _permit: permit,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per_ip = self.shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}
