//! The swarm task: the one owner of the `Swarm`. It turns handle commands into swarm
//! calls and swarm events into [`NetEvent`]s and command answers.
//!
//! Architecture invariant: nothing here awaits anything but the next command, swarm
//! event, inbound reply or tick. Every handler is synchronous, every outgoing channel
//! is used with `try_send` or is a oneshot, and every map of pending work is bounded by
//! something libp2p bounds (streams per connection, request and query timeouts).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use guts_core::RepoId;
use libp2p::core::ConnectedPoint;
use libp2p::core::transport::ListenerId;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError};
use libp2p::kad::{self, GetProvidersOk, QueryId, QueryResult};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{
    self, InboundFailure, InboundRequestId, OutboundFailure, OutboundRequestId, ResponseChannel,
};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, mdns, ping};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use super::behaviour::{
    Behaviour, BehaviourEvent, KAD_PROTOCOL, MISBEHAVIOUR_PENALTY, new_repos_topic, provider_key,
    repo_topic, topic_score_params,
};
use super::codec::RequestFrame;
use super::dial::Bootstrap;
use super::{MessageType, NetError, NetEvent, NetMetrics, NetTuning, PeerInfo};
use crate::wire::{ErrorCode, Gossip, MAX_ERROR_MESSAGE_BYTES, Request, Response, WireError};

/// How often bootstrap dials, ban expiries and penalty decay are looked at.
const TICK: Duration = Duration::from_millis(250);

/// Least time between two Kademlia bootstraps started by us (Kademlia also runs its
/// own periodic one).
const KAD_BOOTSTRAP_EVERY: Duration = Duration::from_secs(60);

/// Per tick, misbehaviour penalties shrink by this factor: forgiven in a few minutes.
const PENALTY_DECAY: f64 = 0.995;

/// How long shutdown waits for connections to close politely before dropping them.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What a [`super::NetHandle`] asks of the swarm task; each carries the oneshot its
/// answer goes to.
#[derive(Debug)]
pub(crate) enum Command {
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Request {
        peer: PeerId,
        request: Request,
        reply: oneshot::Sender<Result<Response, NetError>>,
    },
    Publish {
        /// The repository whose topic it goes on; `None`: news for every node.
        repo: Option<RepoId>,
        /// On the topic every node joins (new repositories, account news) rather than
        /// the repository's own.
        new: bool,
        data: Vec<u8>,
        kind: MessageType,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Subscribe {
        repo: RepoId,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Unsubscribe {
        repo: RepoId,
        reply: oneshot::Sender<()>,
    },
    Provide {
        repo: RepoId,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Providers {
        repo: RepoId,
        reply: oneshot::Sender<Result<Vec<PeerId>, NetError>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    Connected {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    Ban {
        peer: PeerId,
        why: String,
        reply: oneshot::Sender<()>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// What [`super::Network::start_with`] hands the swarm task.
pub(crate) struct Wiring {
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) listener: ListenerId,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::Sender<NetEvent>,
    pub(crate) bootstrap: Bootstrap,
    pub(crate) reached: Arc<AtomicBool>,
    pub(crate) metrics: Arc<NetMetrics>,
    pub(crate) request_timeout: Duration,
    pub(crate) tuning: NetTuning,
}

/// A connected peer as the swarm task tracks it.
#[derive(Debug)]
struct Peer {
    since: Instant,
    /// Open connections and their remote addresses, oldest first.
    connections: Vec<(ConnectionId, Multiaddr)>,
    latency: Option<Duration>,
}

/// The sync layer's answer to an inbound request: `None` when it did not answer in
/// time (the requester has given up by then too).
type ReplyDone = (InboundRequestId, Option<Response>);

/// A provider lookup in progress.
struct ProviderQuery {
    reply: oneshot::Sender<Result<Vec<PeerId>, NetError>>,
    found: HashSet<PeerId>,
}

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    listener: ListenerId,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    bootstrap: Bootstrap,
    reached: Arc<AtomicBool>,
    metrics: Arc<NetMetrics>,
    request_timeout: Duration,
    tuning: NetTuning,
    local: PeerId,
    /// `listen_addrs` callers waiting for the first address.
    listen_waiters: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    /// The listener closed (failed): waiters get what there is, even nothing.
    listener_closed: bool,
    /// Our requests awaiting their response; bounded by the request timeout.
    outbound: HashMap<OutboundRequestId, oneshot::Sender<Result<Response, NetError>>>,
    /// Inbound requests handed to the sync layer, by id, with the channel to answer on.
    inbound: HashMap<InboundRequestId, ResponseChannel<Response>>,
    /// The sync layer's replies (or their timeouts) to those requests.
    replies: FuturesUnordered<BoxFuture<'static, ReplyDone>>,
    providers: HashMap<QueryId, ProviderQuery>,
    peers: HashMap<PeerId, Peer>,
    /// Banned peers and when their ban ends.
    bans: HashMap<PeerId, Instant>,
    /// Gossipsub application scores lowered for misbehaviour, decaying back to zero.
    penalties: HashMap<PeerId, f64>,
    last_kad_bootstrap: Option<Instant>,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("local", &self.local)
            .field("peers", &self.peers.len())
            .field("outbound", &self.outbound.len())
            .field("inbound", &self.inbound.len())
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    pub(crate) fn new(wiring: Wiring) -> Self {
        let local = *wiring.swarm.local_peer_id();
        Self {
            swarm: wiring.swarm,
            listener: wiring.listener,
            commands: wiring.commands,
            events: wiring.events,
            bootstrap: wiring.bootstrap,
            reached: wiring.reached,
            metrics: wiring.metrics,
            request_timeout: wiring.request_timeout,
            tuning: wiring.tuning,
            local,
            listen_waiters: Vec::new(),
            listener_closed: false,
            outbound: HashMap::new(),
            inbound: HashMap::new(),
            replies: FuturesUnordered::new(),
            providers: HashMap::new(),
            peers: HashMap::new(),
            bans: HashMap::new(),
            penalties: HashMap::new(),
            last_kad_bootstrap: None,
        }
    }

    /// Runs until [`Command::Shutdown`] or until every handle is dropped, then closes
    /// the swarm.
    pub(crate) async fn run(mut self) -> Result<(), NetError> {
        tracing::info!(peer = %self.local, "p2p network started");
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown_reply = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { reply }) => break Some(reply),
                    Some(command) => self.on_command(command),
                    None => break None,
                },
                Some(done) = self.replies.next(), if !self.replies.is_empty() => {
                    self.on_reply(done);
                }
                _ = tick.tick() => self.on_tick(Instant::now()),
            }
        };
        self.close().await;
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
        Ok(())
    }

    /// Stops listening, disconnects everyone and gives connections a moment to close
    /// cleanly; pending answers are dropped, which handles see as `Shutdown`.
    async fn close(&mut self) {
        self.swarm.remove_listener(self.listener);
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in connected {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let deadline = tokio::time::Instant::now() + CLOSE_GRACE;
        while self.swarm.connected_peers().next().is_some() {
            match tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
                Ok(event) => self.on_swarm_event(event),
                Err(_) => break,
            }
        }
        for waiter in self.listen_waiters.drain(..) {
            let _ = waiter.send(Vec::new());
        }
        self.outbound.clear();
        self.inbound.clear();
        self.providers.clear();
        self.metrics.peers_connected.set(0);
        tracing::info!(peer = %self.local, "p2p network stopped");
    }

    /// Hands `event` to the sync layer unless its queue is full (then drops and counts
    /// it: the swarm task never waits for the sync layer).
    fn emit(&mut self, event: NetEvent) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => {
                self.metrics.events_dropped.inc();
                tracing::debug!(?event, "event queue full, event dropped");
            }
            // Nobody listens (the sync layer is gone or not started): nothing to do.
            Err(TrySendError::Closed(_)) => {}
        }
    }

    /// `peer` sent something that does not decode: lower its gossipsub score and tell
    /// the sync layer, which decides about bans.
    fn misbehaved(&mut self, peer: PeerId, what: String) {
        self.metrics.misbehaviours.inc();
        tracing::debug!(%peer, %what, "peer sent undecodable data");
        let score = self.penalties.entry(peer).or_insert(0.0);
        *score -= MISBEHAVIOUR_PENALTY;
        let score = *score;
        self.swarm
            .behaviour_mut()
            .gossipsub
            .set_application_score(&peer, score);
        self.emit(NetEvent::Misbehaved { peer, what });
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::ListenAddrs { reply } => {
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                if addrs.is_empty() && !self.listener_closed {
                    self.listen_waiters.push(reply);
                } else {
                    let _ = reply.send(addrs);
                }
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let kind = MessageType::from(&request);
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, RequestFrame::Decoded(request));
                self.metrics.sent(kind);
                self.outbound.insert(id, reply);
            }
            Command::Publish {
                repo,
                new,
                data,
                kind,
                reply,
            } => {
                let topic = match repo {
                    Some(repo) if !new => repo_topic(&repo),
                    _ => new_repos_topic(),
                };
                let result = match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
                    Ok(_) => {
                        self.metrics.sent(kind);
                        Ok(())
                    }
                    // Nobody to tell yet, or told already: anti-entropy covers both.
                    Err(PublishError::NoPeersSubscribedToTopic) | Err(PublishError::Duplicate) => {
                        tracing::debug!(?repo, "gossip not published: no peers or duplicate");
                        Ok(())
                    }
                    Err(e) => Err(NetError::Publish(e.to_string())),
                };
                let _ = reply.send(result);
            }
            Command::Subscribe { repo, reply } => {
                let topic = repo_topic(&repo);
                let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
                let result = match gossipsub.subscribe(&topic) {
                    Ok(true) => gossipsub
                        .set_topic_params(topic, topic_score_params())
                        .map_err(|e| NetError::Setup(e.to_string())),
                    Ok(false) => Ok(()),
                    Err(e) => Err(NetError::Setup(format!("subscribe: {e}"))),
                };
                let _ = reply.send(result);
            }
            Command::Unsubscribe { repo, reply } => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .unsubscribe(&repo_topic(&repo));
                let _ = reply.send(());
            }
            Command::Provide { repo, reply } => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .start_providing(provider_key(&repo))
                    .map(|_| ())
                    .map_err(|e| NetError::Provide(e.to_string()));
                let _ = reply.send(result);
            }
            Command::Providers { repo, reply } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(provider_key(&repo));
                self.providers.insert(
                    id,
                    ProviderQuery {
                        reply,
                        found: HashSet::new(),
                    },
                );
            }
            Command::Peers { reply } => {
                let now = Instant::now();
                let peers = self
                    .peers
                    .iter()
                    .filter_map(|(peer, state)| {
                        let (_, addr) = state.connections.first()?;
                        Some(PeerInfo {
                            peer: *peer,
                            addr: addr.clone(),
                            latency: state.latency,
                            connected_ms: u64::try_from(
                                now.saturating_duration_since(state.since).as_millis(),
                            )
                            .unwrap_or(u64::MAX),
                        })
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Connected { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Ban { peer, why, reply } => {
                if peer != self.local {
                    let ban = self.tuning.ban_duration;
                    tracing::warn!(%peer, reason = %why, ?ban, "banning peer");
                    self.swarm.behaviour_mut().blocked.block_peer(peer);
                    self.bans
                        .insert(peer, Instant::now() + self.tuning.ban_duration);
                }
                let _ = reply.send(());
            }
            // Handled by `run`, which ends the loop.
            Command::Shutdown { reply } => {
                let _ = reply.send(());
            }
        }
    }

    fn on_tick(&mut self, now: Instant) {
        // Bans that have run out.
        let expired: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in expired {
            self.bans.remove(&peer);
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            tracing::info!(%peer, "ban lifted");
        }

        // Misbehaviour is forgiven slowly.
        let mut forgiven = Vec::new();
        for (peer, score) in &mut self.penalties {
            *score *= PENALTY_DECAY;
            if *score > -0.1 {
                forgiven.push(*peer);
            }
        }
        for peer in forgiven {
            self.penalties.remove(&peer);
            self.swarm
                .behaviour_mut()
                .gossipsub
                .set_application_score(&peer, 0.0);
        }
        for (peer, score) in &self.penalties {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .set_application_score(peer, *score);
        }

        self.dial_bootstrap(now);
    }

    fn dial_bootstrap(&mut self, now: Instant) {
        let swarm = &self.swarm;
        let due = self.bootstrap.due(now, |peer| swarm.is_connected(peer));
        for due in due {
            let opts = match due.peer {
                Some(peer) => DialOpts::peer_id(peer)
                    .addresses(vec![due.addr.clone()])
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
                None => DialOpts::unknown_peer_id()
                    .address(due.addr.clone())
                    .build(),
            };
            let connection = opts.connection_id();
            tracing::debug!(addr = %due.addr, "dialing bootstrap peer");
            match self.swarm.dial(opts) {
                Ok(()) => self.bootstrap.dialing(due.index, connection),
                Err(DialError::DialPeerConditionFalse(_)) => {
                    self.bootstrap.not_dialed(due.index, now);
                }
                Err(error) => {
                    self.bootstrap.dialing(due.index, connection);
                    self.dial_failed(connection, &error, now);
                }
            }
        }
    }

    fn dial_failed(&mut self, connection: ConnectionId, error: &DialError, now: Instant) {
        let myself = matches!(error, DialError::LocalPeerId { .. });
        match self.bootstrap.failed(connection, myself, now) {
            Some(failure) if failure.warn => tracing::warn!(
                addr = %failure.addr,
                attempt = failure.attempt,
                retry_in = ?failure.retry_in,
                %error,
                "cannot reach bootstrap peer"
            ),
            Some(failure) => tracing::debug!(
                addr = %failure.addr,
                attempt = failure.attempt,
                retry_in = ?failure.retry_in,
                %error,
                "cannot reach bootstrap peer"
            ),
            None if myself => tracing::debug!("bootstrap address is this node's own; skipped"),
            None => tracing::debug!(%error, "dial failed"),
        }
    }

    fn kad_bootstrap(&mut self, now: Instant) {
        let recent = self
            .last_kad_bootstrap
            .is_some_and(|at| now.saturating_duration_since(at) < KAD_BOOTSTRAP_EVERY);
        if !recent && self.swarm.behaviour_mut().kad.bootstrap().is_ok() {
            self.last_kad_bootstrap = Some(now);
        }
    }

    fn on_reply(&mut self, (id, response): ReplyDone) {
        let Some(channel) = self.inbound.remove(&id) else {
            // The request already failed (timeout, connection closed).
            return;
        };
        match response {
            Some(response) => self.respond(channel, response),
            // Too late: dropping the channel ends the stream.
            None => tracing::debug!(request = %id, "sync layer did not answer in time"),
        }
    }

    fn respond(&mut self, channel: ResponseChannel<Response>, response: Response) {
        let kind = MessageType::from(&response);
        match self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response)
        {
            Ok(()) => self.metrics.sent(kind),
            Err(_) => tracing::debug!("requester gone before the response"),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad(event),
            // Addresses a peer listens on, from identify: how Kademlia learns to reach
            // peers it heard of from others.
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocols.contains(&KAD_PROTOCOL) => {
                for addr in info.listen_addrs.into_iter().filter(dialable) {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            })) => {
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.latency = Some(rtt);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    if peer == self.local || self.bans.contains_key(&peer) {
                        continue;
                    }
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    let opts = DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    let _ = self.swarm.dial(opts);
                }
            }
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => self.on_connected(peer_id, connection_id, endpoint, num_established.get()),
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.connections.retain(|(id, _)| *id != connection_id);
                }
                if num_established == 0 {
                    self.peers.remove(&peer_id);
                    self.metrics.peers_connected.set(gauge(self.peers.len()));
                    self.bootstrap.disconnected(peer_id, Instant::now());
                    match cause {
                        Some(cause) => tracing::info!(peer = %peer_id, %cause, "peer disconnected"),
                        None => tracing::info!(peer = %peer_id, "peer disconnected"),
                    }
                    self.emit(NetEvent::PeerDown(peer_id));
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => self.dial_failed(connection_id, &error, Instant::now()),
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => tracing::debug!(from = %send_back_addr, %error, "inbound connection failed"),
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(addr = %address, peer = %self.local, "p2p listening");
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                for waiter in self.listen_waiters.drain(..) {
                    let _ = waiter.send(addrs.clone());
                }
            }
            SwarmEvent::ListenerClosed { reason, .. } => {
                if let Err(error) = reason {
                    tracing::error!(%error, "p2p listener failed");
                }
                self.listener_closed = true;
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                for waiter in self.listen_waiters.drain(..) {
                    let _ = waiter.send(addrs.clone());
                }
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "p2p listener error");
            }
            _ => {}
        }
    }

    fn on_connected(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        endpoint: ConnectedPoint,
        established: u32,
    ) {
        let now = Instant::now();
        let addr = endpoint.get_remote_address().clone();
        // Kademlia adds peers that speak its protocol by itself, and identify brings
        // their listen addresses; a bootstrap peer is added at once, so that the first
        // Kademlia bootstrap has someone to ask.
        if self.bootstrap.established(connection, peer) {
            if endpoint.is_dialer() {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, addr.clone());
            }
            if !self.reached.swap(true, Ordering::AcqRel) {
                tracing::info!(%peer, "bootstrap peer reached");
            }
            self.kad_bootstrap(now);
        }
        let state = self.peers.entry(peer).or_insert_with(|| Peer {
            since: now,
            connections: Vec::new(),
            latency: None,
        });
        state.connections.push((connection, addr.clone()));
        if established == 1 {
            self.metrics.peers_connected.set(gauge(self.peers.len()));
            tracing::info!(%peer, %addr, "peer connected");
            self.emit(NetEvent::PeerUp(peer));
        } else {
            tracing::debug!(%peer, %addr, connections = established, "another connection");
        }
    }

    fn on_sync(&mut self, event: request_response::Event<RequestFrame, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request_id,
                    request: RequestFrame::Decoded(request),
                    channel,
                } => self.on_inbound_request(peer, request_id, request, channel),
                request_response::Message::Request {
                    request: RequestFrame::Invalid(error),
                    channel,
                    ..
                } => {
                    self.misbehaved(peer, format!("undecodable request: {error}"));
                    // Said plainly, so that a peer on another wire version learns why.
                    let mut message = error.to_string();
                    message.truncate(floor_char_boundary(&message, MAX_ERROR_MESSAGE_BYTES));
                    self.respond(
                        channel,
                        Response::Error {
                            code: ErrorCode::BadRequest,
                            message,
                        },
                    );
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.metrics.received(&response);
                    if let Some(reply) = self.outbound.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let error = match error {
                    OutboundFailure::DialFailure | OutboundFailure::ConnectionClosed => {
                        NetError::Disconnected
                    }
                    OutboundFailure::Timeout => NetError::Timeout,
                    OutboundFailure::UnsupportedProtocols => NetError::Unsupported,
                    OutboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        self.misbehaved(peer, format!("undecodable response: {e}"));
                        NetError::Protocol(e)
                    }
                    OutboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                        match e.into_inner().map(|inner| inner.downcast::<WireError>()) {
                            Some(Ok(wire)) => NetError::Encode(*wire),
                            Some(Err(inner)) => NetError::Stream(std::io::Error::new(
                                std::io::ErrorKind::InvalidInput,
                                inner,
                            )),
                            None => NetError::Stream(std::io::ErrorKind::InvalidInput.into()),
                        }
                    }
                    OutboundFailure::Io(e) => NetError::Stream(e),
                };
                tracing::debug!(%peer, %error, "request failed");
                if let Some(reply) = self.outbound.remove(&request_id) {
                    let _ = reply.send(Err(error));
                }
            }
            request_response::Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.inbound.remove(&request_id);
                match error {
                    InboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        self.misbehaved(peer, format!("undecodable request: {e}"));
                    }
                    error => tracing::debug!(%peer, %error, "inbound request failed"),
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_inbound_request(
        &mut self,
        peer: PeerId,
        id: InboundRequestId,
        request: Request,
        channel: ResponseChannel<Response>,
    ) {
        self.metrics.received(&request);
        let (tx, rx) = oneshot::channel();
        let event = NetEvent::Request {
            peer,
            request,
            reply: tx,
        };
        match self.events.try_send(event) {
            Ok(()) => {
                self.inbound.insert(id, channel);
                let timeout = self.request_timeout;
                self.replies.push(Box::pin(async move {
                    let response = match tokio::time::timeout(timeout, rx).await {
                        Ok(Ok(response)) => Some(response),
                        Ok(Err(_)) => Some(Response::Error {
                            code: ErrorCode::Internal,
                            message: "request dropped".to_string(),
                        }),
                        Err(_) => None,
                    };
                    (id, response)
                }));
            }
            Err(TrySendError::Full(_)) => {
                self.metrics.requests_busy.inc();
                tracing::debug!(%peer, "sync queue full; answering busy");
                self.respond(
                    channel,
                    Response::Error {
                        code: ErrorCode::Busy,
                        message: "node busy, ask later or elsewhere".to_string(),
                    },
                );
            }
            Err(TrySendError::Closed(_)) => self.respond(
                channel,
                Response::Error {
                    code: ErrorCode::Busy,
                    message: "sync is not running".to_string(),
                },
            ),
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            tracing::trace!(?event, "gossipsub");
            return;
        };
        let decoded = Gossip::decode(&message.data)
            .map_err(|e| format!("undecodable gossip: {e}"))
            .and_then(|gossip| {
                let on_shared = new_repos_topic().hash() == message.topic;
                match &gossip {
                    Gossip::Announce { repo, .. }
                        if !(on_shared || repo_topic(repo).hash() == message.topic) =>
                    {
                        Err(format!("announcement of {repo} on topic {}", message.topic))
                    }
                    Gossip::Accounts { .. } if !on_shared => {
                        Err(format!("account news on topic {}", message.topic))
                    }
                    _ => Ok(gossip),
                }
            });
        let acceptance = if decoded.is_ok() {
            MessageAcceptance::Accept
        } else {
            MessageAcceptance::Reject
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&message_id, &propagation_source, acceptance);
        match decoded {
            Ok(gossip) => {
                self.metrics.received(&gossip);
                let from = message.source.unwrap_or(propagation_source);
                self.emit(NetEvent::Gossip {
                    from,
                    message: gossip,
                });
            }
            Err(what) => self.misbehaved(propagation_source, what),
        }
    }

    fn on_kad(&mut self, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed {
            id, result, step, ..
        } = event
        else {
            tracing::trace!(?event, "kademlia");
            return;
        };
        let QueryResult::GetProviders(result) = result else {
            tracing::trace!(?result, "kademlia query progressed");
            return;
        };
        let Some(query) = self.providers.get_mut(&id) else {
            return;
        };
        let done = match result {
            Ok(GetProvidersOk::FoundProviders { providers, .. }) => {
                query.found.extend(providers);
                step.last
            }
            Ok(GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) => true,
            // Timed out: what was found so far is the answer.
            Err(_) => true,
        };
        if done && let Some(query) = self.providers.remove(&id) {
            let local = self.local;
            let mut found: Vec<PeerId> = query.found.into_iter().filter(|p| *p != local).collect();
            found.sort();
            let _ = query.reply.send(Ok(found));
        }
    }
}

/// Whether an address a peer reports is worth dialing: not the unspecified address.
fn dialable(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

/// The largest index `<= max` that is a character boundary of `text`.
fn floor_char_boundary(text: &str, max: usize) -> usize {
    (0..=max.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
