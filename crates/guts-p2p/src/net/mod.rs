//! The libp2p network layer: transport, discovery, gossip and the request-response sync
//! protocol, behind a cloneable [`NetHandle`] and a stream of [`NetEvent`]s.
//!
//! One task owns the `Swarm` (the future [`Network::start`] returns; the node spawns it
//! as a supervised task). Everyone else talks to it through the handle, whose methods
//! send a command carrying a oneshot for the answer, the shape of rust-libp2p's
//! file-sharing example. The swarm task never awaits anything slow: everything it
//! hands out goes through bounded channels with `try_send` (an inbound request that
//! finds the event queue full is answered `Busy`), and replies to inbound requests come
//! back through oneshots it polls alongside the swarm.
//!
//! Transport: TCP, noise, yamux, with DNS resolved at each dial
//! (`/dns4/guts-0.guts-headless/tcp/9000` finds a restarted pod at its new address).
//! Behaviours: connection limits, a block
//! list for bans, identify, ping, Kademlia (provider records of who seeds what),
//! gossipsub (one topic per repository), the sync protocol (`/guts/sync/1`, one
//! [`crate::wire`] frame each way) and, for development, mDNS.

mod behaviour;
mod codec;
mod dial;
mod event_loop;
mod metrics;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use guts_core::RepoId;
use libp2p::{noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot};

/// Re-exported so that crates above this one can name peers and addresses without
/// depending on libp2p themselves.
pub use libp2p::{Multiaddr, PeerId};
pub use metrics::{MessageLabels, MessageType, NetMetrics};

use crate::wire::{self, WireError};
use behaviour::Behaviour;
use event_loop::{Command, EventLoop, Wiring};

/// What the network layer needs to start. Built by the node from its config.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The node's ed25519 secret (the seed of `guts_core::Keypair`): the libp2p peer id
    /// derives from it, so a node has one identity everywhere.
    pub secret_key: [u8; 32],
    /// Where to listen, a multiaddr such as `/ip4/0.0.0.0/tcp/9000` (`GUTS_P2P_ADDR`).
    pub listen: String,
    /// Peers to dial and keep dialing until connected (`GUTS_BOOTSTRAP_PEERS`):
    /// multiaddrs, possibly `/dns4/host/tcp/port`, with or without `/p2p/<id>`. Empty:
    /// the node waits to be dialed (and is ready at once).
    pub bootstrap: Vec<String>,
    /// Discover peers on the local network by mDNS (development only).
    pub mdns: bool,
    /// Established connections at most, inbound and outbound together.
    pub max_connections: u32,
    /// Bound of every request (outbound round trip, inbound answer) and of a provider
    /// lookup (`GUTS_P2P_TIMEOUT`).
    pub request_timeout: Duration,
    /// The cluster this node belongs to. Stored for the sync layer (which decides what
    /// to share with peers of the same cluster); the network layer itself treats every
    /// peer alike.
    pub cluster: [u8; 32],
}

/// Knobs with production defaults that tests turn down to stay fast. Not part of the
/// operator's configuration.
#[derive(Debug, Clone)]
pub struct NetTuning {
    /// Gossipsub's heartbeat (mesh maintenance). Default 1 s.
    pub gossip_heartbeat: Duration,
    /// First retry delay of a bootstrap address; doubles per failure. Default 1 s.
    pub dial_backoff_min: Duration,
    /// Longest delay between dials of one bootstrap address. Default 30 s.
    pub dial_backoff_max: Duration,
    /// How long a banned peer is refused. Default 10 minutes.
    pub ban_duration: Duration,
    /// Capacity of the event queue to the sync layer; a full queue makes inbound
    /// requests answer `Busy` and drops gossip (anti-entropy heals). Default 1,024.
    pub event_capacity: usize,
    /// How long an idle connection (no stream open) is kept. Default 5 minutes.
    pub idle_connection_timeout: Duration,
}

impl Default for NetTuning {
    fn default() -> Self {
        Self {
            gossip_heartbeat: Duration::from_secs(1),
            dial_backoff_min: Duration::from_secs(1),
            dial_backoff_max: Duration::from_secs(30),
            ban_duration: Duration::from_secs(10 * 60),
            event_capacity: 1024,
            idle_connection_timeout: Duration::from_secs(5 * 60),
        }
    }
}

/// Capacity of the command queue from handles to the swarm task. Callers wait when it
/// is full: that is backpressure on them, never on the swarm.
const COMMAND_CAPACITY: usize = 256;

/// Why the network could not start, or a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("invalid multiaddr {addr:?}: {source}")]
    InvalidAddr {
        addr: String,
        #[source]
        source: libp2p::multiaddr::Error,
    },
    #[error("invalid network config: {0}")]
    InvalidConfig(&'static str),
    #[error("invalid node key: {0}")]
    Key(#[from] libp2p::identity::DecodingError),
    #[error("noise handshake setup: {0}")]
    Noise(#[from] noise::Error),
    /// The system's DNS configuration (`/etc/resolv.conf`) could not be read.
    #[error("dns resolver: {0}")]
    Dns(#[source] std::io::Error),
    #[error("mdns: {0}")]
    Mdns(#[source] std::io::Error),
    /// A behaviour refused its configuration (a bug, not an operator error).
    #[error("cannot set up the swarm: {0}")]
    Setup(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: Multiaddr,
        #[source]
        source: libp2p::TransportError<std::io::Error>,
    },
    /// No answer within `request_timeout` (or the provider lookup's bound).
    #[error("timed out")]
    Timeout,
    /// The peer could not be dialed, or the connection closed before it answered.
    #[error("peer disconnected or unreachable")]
    Disconnected,
    /// The peer's answer did not decode: the peer is misbehaving (and was reported as
    /// such with [`NetEvent::Misbehaved`]).
    #[error("protocol error: {0}")]
    Protocol(#[source] std::io::Error),
    /// The peer does not speak the sync protocol.
    #[error("peer does not support {}", codec::SYNC_PROTOCOL)]
    Unsupported,
    /// The stream failed for another reason (reset, I/O error) before an answer.
    #[error("stream failed: {0}")]
    Stream(#[source] std::io::Error),
    /// Our own message could not be encoded (over a cap): a bug in the caller.
    #[error("cannot encode: {0}")]
    Encode(#[from] WireError),
    /// Gossipsub refused a publication (all peer queues full, say).
    #[error("cannot publish: {0}")]
    Publish(String),
    /// Kademlia's record store refused (too many provided keys).
    #[error("cannot provide: {0}")]
    Provide(String),
    /// The swarm task has ended (shut down, or failed).
    #[error("network is shut down")]
    Shutdown,
}

impl NetError {
    /// Whether trying again may succeed: the peer was slow or the connection dropped.
    /// Protocol violations and our own bugs are not retried.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            NetError::Timeout | NetError::Disconnected | NetError::Stream(_)
        )
    }
}

/// Checks a multiaddr's syntax (for configuration validation, before any socket).
pub fn check_multiaddr(addr: &str) -> Result<(), String> {
    addr.trim()
        .parse::<Multiaddr>()
        .map(|_| ())
        .map_err(|e| format!("must be a multiaddr such as /ip4/0.0.0.0/tcp/9000 ({e})"))
}

/// What the network tells the sync layer. Delivered on a bounded channel: when the
/// sync layer falls behind, inbound requests are answered `Busy` and other events are
/// dropped (counted and logged); [`NetHandle::connected`] is the truth about peers.
#[derive(Debug)]
pub enum NetEvent {
    /// A decoded announcement. `from` is the node that published it (verified by its
    /// signature, gossipsub's strict mode), which has those heads, not necessarily the
    /// peer that relayed it.
    Gossip { from: PeerId, message: wire::Gossip },
    /// A peer asks something. Send the answer on `reply` within `request_timeout`;
    /// dropping `reply` answers `Internal`.
    Request {
        peer: PeerId,
        request: wire::Request,
        reply: oneshot::Sender<wire::Response>,
    },
    /// The first connection to this peer was established.
    PeerUp(PeerId),
    /// The last connection to this peer closed.
    PeerDown(PeerId),
    /// A peer sent something that does not decode (gossip or request/response frame):
    /// the swarm already penalised it; the sync layer may count and ban.
    Misbehaved { peer: PeerId, what: String },
}

/// A connected peer, for the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub peer: PeerId,
    /// The remote address of its first connection still open.
    pub addr: Multiaddr,
    /// The last ping round trip, once one was measured.
    pub latency: Option<Duration>,
    /// How long it has been connected, in milliseconds.
    pub connected_ms: u64,
}

/// Starts the network layer.
#[derive(Debug)]
pub struct Network;

impl Network {
    /// Builds the swarm and starts listening; returns the handle, the event stream, and
    /// the future that owns the swarm (the caller spawns it as a named supervised
    /// task). Must be called inside a tokio runtime.
    ///
    /// The future returns `Ok` after [`NetHandle::shutdown`] or once every handle is
    /// dropped.
    // The third element is an opaque future; naming it in a type alias needs unstable
    // `type_alias_impl_trait`.
    #[allow(clippy::type_complexity)]
    pub fn start(
        config: NetConfig,
        metrics: Arc<NetMetrics>,
    ) -> Result<
        (
            NetHandle,
            mpsc::Receiver<NetEvent>,
            impl Future<Output = Result<(), NetError>> + Send + 'static,
        ),
        NetError,
    > {
        Self::start_with(config, NetTuning::default(), metrics)
    }

    /// [`Network::start`] with non-default [`NetTuning`].
    // The third element is an opaque future; naming it in a type alias needs unstable
    // `type_alias_impl_trait`.
    #[allow(clippy::type_complexity)]
    pub fn start_with(
        config: NetConfig,
        tuning: NetTuning,
        metrics: Arc<NetMetrics>,
    ) -> Result<
        (
            NetHandle,
            mpsc::Receiver<NetEvent>,
            impl Future<Output = Result<(), NetError>> + Send + 'static,
        ),
        NetError,
    > {
        if config.max_connections == 0 {
            return Err(NetError::InvalidConfig(
                "max_connections must be at least 1",
            ));
        }
        if config.request_timeout.is_zero() {
            return Err(NetError::InvalidConfig("request_timeout must be positive"));
        }
        if tuning.event_capacity == 0 || tuning.dial_backoff_min.is_zero() {
            return Err(NetError::InvalidConfig(
                "event capacity and dial backoff must be positive",
            ));
        }
        let listen = dial::parse_addr(&config.listen)?;
        let key = libp2p::identity::Keypair::ed25519_from_bytes(config.secret_key)?;
        let local = key.public().to_peer_id();
        let bootstrap = dial::Bootstrap::new(
            &config.bootstrap,
            local,
            tuning.dial_backoff_min,
            tuning.dial_backoff_max,
            dial::equal_jitter,
            Instant::now(),
        )?;
        let behaviour = Behaviour::new(&key, &config, &tuning)?;

        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_dns()
            .map_err(NetError::Dns)?
            .with_behaviour(|_| behaviour)
            .map_err(|e| NetError::Setup(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(tuning.idle_connection_timeout))
            .build();

        let listener = swarm
            .listen_on(listen.clone())
            .map_err(|source| NetError::Listen {
                addr: listen,
                source,
            })?;
        for (peer, addr) in bootstrap.declared() {
            swarm.behaviour_mut().kad.add_address(&peer, addr);
        }

        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
        let (events_tx, events_rx) = mpsc::channel(tuning.event_capacity);
        let reached = Arc::new(AtomicBool::new(bootstrap.reached()));
        let handle = NetHandle {
            inner: Arc::new(HandleInner {
                commands: commands_tx,
                local,
                reached: reached.clone(),
                metrics: metrics.clone(),
                request_timeout: config.request_timeout,
                cluster: config.cluster,
            }),
        };
        let event_loop = EventLoop::new(Wiring {
            swarm,
            listener,
            commands: commands_rx,
            events: events_tx,
            bootstrap,
            reached,
            metrics,
            request_timeout: config.request_timeout,
            tuning,
        });
        Ok((handle, events_rx, event_loop.run()))
    }
}

/// Cheap to clone; every clone talks to the same swarm task.
#[derive(Debug, Clone)]
pub struct NetHandle {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    commands: mpsc::Sender<Command>,
    local: PeerId,
    reached: Arc<AtomicBool>,
    metrics: Arc<NetMetrics>,
    request_timeout: Duration,
    cluster: [u8; 32],
}

impl NetHandle {
    pub fn local_peer_id(&self) -> PeerId {
        self.inner.local
    }

    /// The cluster id this node was started with ([`NetConfig::cluster`]).
    pub fn cluster(&self) -> [u8; 32] {
        self.inner.cluster
    }

    /// Sends a command and waits for its answer; `Shutdown` if the swarm task is gone.
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(command(tx))
            .await
            .map_err(|_| NetError::Shutdown)?;
        rx.await.map_err(|_| NetError::Shutdown)
    }

    /// The addresses the node listens on. Waits for the listener's first address
    /// (it arrives just after start), so a caller can log or hand it out; empty if
    /// listening failed or the network is shut down.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.ask(|reply| Command::ListenAddrs { reply })
            .await
            .unwrap_or_default()
    }

    /// Sends `request` to `peer` (dialing it if needed, from addresses the swarm knows)
    /// and waits for the answer, at most `request_timeout` in all.
    pub async fn request(
        &self,
        peer: PeerId,
        request: wire::Request,
    ) -> Result<wire::Response, NetError> {
        let kind = MessageType::from(&request);
        let started = Instant::now();
        let asked = self.ask(|reply| Command::Request {
            peer,
            request,
            reply,
        });
        let response = tokio::time::timeout(self.inner.request_timeout, asked)
            .await
            .map_err(|_| NetError::Timeout)???;
        self.inner
            .metrics
            .message_latency
            .get_or_create(&MessageLabels::of(kind))
            .observe(started.elapsed().as_secs_f64());
        Ok(response)
    }

    /// Publishes `gossip` on its repository's topic. Having no peer on the topic yet is
    /// not an error (anti-entropy will carry the news), nor is publishing the very same
    /// message twice.
    pub async fn publish(&self, gossip: wire::Gossip) -> Result<(), NetError> {
        self.publish_on(gossip, false).await
    }

    /// Publishes `gossip` on the topic every node joins: the first announcement of a
    /// repository new to this node, which peers cannot have subscribed to yet.
    pub async fn publish_new(&self, gossip: wire::Gossip) -> Result<(), NetError> {
        self.publish_on(gossip, true).await
    }

    async fn publish_on(&self, gossip: wire::Gossip, new: bool) -> Result<(), NetError> {
        // Encoded here, on the caller's task, not in the swarm task.
        let data = gossip.encode()?;
        // Account news concerns the whole cluster: the topic every node joins.
        let (repo, new) = match &gossip {
            wire::Gossip::Announce { repo, .. } => (Some(*repo), new),
            wire::Gossip::Accounts { .. } => (None, true),
        };
        let kind = MessageType::from(&gossip);
        self.ask(|reply| Command::Publish {
            repo,
            new,
            data,
            kind,
            reply,
        })
        .await?
    }

    /// Joins the repository's topic, to receive its announcements. Idempotent.
    pub async fn subscribe(&self, repo: RepoId) -> Result<(), NetError> {
        self.ask(|reply| Command::Subscribe { repo, reply }).await?
    }

    /// Leaves the repository's topic. Idempotent.
    pub async fn unsubscribe(&self, repo: RepoId) -> Result<(), NetError> {
        self.ask(|reply| Command::Unsubscribe { repo, reply }).await
    }

    /// Announces in the DHT that this node seeds `repo` (a Kademlia provider record,
    /// republished by Kademlia). Returns once the record is stored locally; spreading
    /// it to the closest peers goes on in the background.
    pub async fn provide(&self, repo: RepoId) -> Result<(), NetError> {
        self.ask(|reply| Command::Provide { repo, reply }).await?
    }

    /// Peers that announced they seed `repo` (this node excluded), as far as a DHT
    /// lookup finds within `request_timeout`.
    pub async fn providers(&self, repo: RepoId) -> Result<Vec<PeerId>, NetError> {
        // The Kademlia query is bounded by the same timeout; this one also covers a
        // swarm task too busy to answer.
        let bound = self.inner.request_timeout + Duration::from_secs(1);
        tokio::time::timeout(bound, self.ask(|reply| Command::Providers { repo, reply }))
            .await
            .map_err(|_| NetError::Timeout)??
    }

    /// Connected peers with their address, ping latency and connection age.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        self.ask(|reply| Command::Peers { reply })
            .await
            .unwrap_or_default()
    }

    /// Ids of the connected peers.
    pub async fn connected(&self) -> Vec<PeerId> {
        self.ask(|reply| Command::Connected { reply })
            .await
            .unwrap_or_default()
    }

    /// Disconnects `peer` and refuses it for [`NetTuning::ban_duration`] (logged at
    /// warn with `why`). Banning this node itself is ignored.
    pub async fn ban(&self, peer: PeerId, why: &str) {
        let why = why.to_string();
        let _ = self.ask(|reply| Command::Ban { peer, why, reply }).await;
    }

    /// Readiness: true when no bootstrap peer is configured (or only this node itself),
    /// or some bootstrap address has been connected since start (latched: losing a
    /// bootstrap peer later does not make a serving node unready).
    pub fn bootstrap_reached(&self) -> bool {
        self.inner.reached.load(Ordering::Acquire)
    }

    /// Closes the swarm: stops listening, disconnects every peer, ends the task.
    /// Returns when the task is done (at once if it already is).
    pub async fn shutdown(&self) {
        let _ = self.ask(|reply| Command::Shutdown { reply }).await;
    }
}
