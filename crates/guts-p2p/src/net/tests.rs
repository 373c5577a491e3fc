//! Real networks on 127.0.0.1 in one process: connection by every kind of bootstrap
//! address, the sync protocol's round trip and its failures, gossip, bans, shutdown,
//! and a hand-built libp2p peer that speaks garbage.
//!
//! Every wait polls against a deadline; nothing asserts on a fixed sleep.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, StreamExt as _};
use guts_core::{OpId, RepoId};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol, noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::codec::{SYNC_PROTOCOL, read_frame};
use super::event_loop::Command;
use super::*;
use crate::wire::{ErrorCode, Gossip, MAX_FRAME_BYTES, Request, Response, WIRE_VERSION};

/// Bound of every wait: generous for a loaded CI machine, never reached when things work.
const DEADLINE: Duration = Duration::from_secs(10);

struct Node {
    handle: NetHandle,
    /// `bootstrap_reached` before the task ran at all.
    ready_at_start: bool,
    events: mpsc::Receiver<NetEvent>,
    metrics: Arc<NetMetrics>,
    task: JoinHandle<Result<(), NetError>>,
}

fn config(seed: u8, bootstrap: Vec<String>) -> NetConfig {
    NetConfig {
        secret_key: [seed; 32],
        listen: "/ip4/127.0.0.1/tcp/0".into(),
        bootstrap,
        mdns: false,
        max_connections: 64,
        request_timeout: Duration::from_secs(3),
        cluster: [7; 32],
    }
}

fn tuning() -> NetTuning {
    NetTuning {
        gossip_heartbeat: Duration::from_millis(100),
        dial_backoff_min: Duration::from_millis(100),
        dial_backoff_max: Duration::from_secs(1),
        ..NetTuning::default()
    }
}

/// Logs to the test's output when `RUST_LOG` is set.
fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

fn start_tuned(config: NetConfig, tuning: NetTuning) -> Node {
    init_logs();
    let metrics = Arc::new(NetMetrics::unregistered());
    let (handle, events, task) = Network::start_with(config, tuning, metrics.clone()).unwrap();
    Node {
        // Read before the task is spawned: no dial can have happened yet.
        ready_at_start: handle.bootstrap_reached(),
        handle,
        events,
        metrics,
        task: tokio::spawn(task),
    }
}

fn start(config: NetConfig) -> Node {
    start_tuned(config, tuning())
}

async fn addr_of(node: &Node) -> Multiaddr {
    let addrs = node.handle.listen_addrs().await;
    assert!(!addrs.is_empty(), "no listen address");
    addrs[0].clone()
}

fn port_of(addr: &Multiaddr) -> u16 {
    addr.iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap()
}

/// Polls `check` every 20 ms until it holds, failing after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next event that `pick` accepts, skipping others.
async fn next_event<T>(
    events: &mut mpsc::Receiver<NetEvent>,
    mut pick: impl FnMut(NetEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let event = events.recv().await.expect("event stream ended");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

async fn connected(a: &Node, b: &Node) {
    let (ha, hb) = (a.handle.clone(), b.handle.clone());
    eventually("a connection", || {
        let (ha, hb) = (ha.clone(), hb.clone());
        async move {
            ha.connected().await.contains(&hb.local_peer_id())
                && hb.connected().await.contains(&ha.local_peer_id())
        }
    })
    .await;
}

fn repo(n: u8) -> RepoId {
    RepoId::from_bytes([n; RepoId::LEN])
}

fn sent(metrics: &NetMetrics, kind: MessageType) -> u64 {
    metrics
        .messages_sent
        .get_or_create(&MessageLabels::of(kind))
        .get()
}

fn received(metrics: &NetMetrics, kind: MessageType) -> u64 {
    metrics
        .messages_received
        .get_or_create(&MessageLabels::of(kind))
        .get()
}

/// Answers every request on `node`'s event stream with `answer(request)`; other
/// events go to the returned channel.
fn serve(
    mut events: mpsc::Receiver<NetEvent>,
    answer: impl Fn(Request) -> Option<Response> + Send + 'static,
) -> mpsc::Receiver<NetEvent> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(event) = events.recv().await {
            match event {
                NetEvent::Request { request, reply, .. } => match answer(request) {
                    Some(response) => {
                        let _ = reply.send(response);
                    }
                    // Keep the sender: the requester sees no answer at all.
                    None => held.push(reply),
                },
                other => {
                    let _ = tx.try_send(other);
                }
            }
        }
    });
    rx
}

#[tokio::test]
async fn the_peer_id_is_the_node_key_s() {
    for seed in [1u8, 2, 42] {
        let ours = guts_core::Keypair::from_seed(&[seed; 32])
            .public()
            .peer_id();
        let metrics = Arc::new(NetMetrics::unregistered());
        let (handle, _events, _task) = Network::start(config(seed, vec![]), metrics).unwrap();
        assert_eq!(handle.local_peer_id().to_base58(), ours);
        assert_eq!(handle.cluster(), [7; 32]);
    }
}

#[tokio::test]
async fn bad_configs_fail_start_up() {
    let metrics = Arc::new(NetMetrics::unregistered());
    let start = |config: NetConfig| Network::start(config, metrics.clone()).map(|_| ());
    let mut bad = config(1, vec![]);
    bad.listen = "127.0.0.1:9000".into();
    assert!(matches!(start(bad), Err(NetError::InvalidAddr { .. })));
    assert!(matches!(
        start(config(1, vec!["/tcp/notaport".into()])),
        Err(NetError::InvalidAddr { .. })
    ));
    let mut bad = config(1, vec![]);
    bad.max_connections = 0;
    assert!(matches!(start(bad), Err(NetError::InvalidConfig(_))));
    let mut bad = config(1, vec![]);
    bad.request_timeout = Duration::ZERO;
    assert!(matches!(start(bad), Err(NetError::InvalidConfig(_))));
}

//   a <── b   (by address, no /p2p)
//   a <── c   (by address with /p2p/<a>)
//   a <── d   (by /dns4/localhost name)
#[tokio::test]
async fn bootstrap_addresses_of_every_kind_connect() {
    let a = start(config(1, vec![]));
    assert!(a.ready_at_start, "nothing to reach: ready at once");
    let addr = addr_of(&a).await;
    let a_id = a.handle.local_peer_id();

    let by_addr = addr.to_string();
    let with_id = format!("{addr}/p2p/{a_id}");
    let by_name = format!("/dns4/localhost/tcp/{}", port_of(&addr));
    // Each also lists an address of its own: skipped, never counted.
    let mut others = Vec::new();
    for (seed, bootstrap) in [(2u8, by_addr), (3, with_id), (4, by_name)] {
        let own = format!(
            "/ip4/127.0.0.1/tcp/1/p2p/{}",
            guts_core::Keypair::from_seed(&[seed; 32])
                .public()
                .peer_id()
        );
        let node = start(config(seed, vec![own, bootstrap]));
        assert!(!node.ready_at_start);
        others.push(node);
    }
    for node in &mut others {
        eventually("bootstrap reached", || async {
            node.handle.bootstrap_reached()
        })
        .await;
        let up = next_event(&mut node.events, |e| match e {
            NetEvent::PeerUp(peer) => Some(peer),
            _ => None,
        })
        .await;
        assert_eq!(up, a_id);
    }
    let handle = a.handle.clone();
    eventually("three peers on a", || {
        let handle = handle.clone();
        async move { handle.connected().await.len() == 3 }
    })
    .await;
    assert_eq!(a.metrics.peers_connected.get(), 3);
    let peers = a.handle.peers().await;
    assert_eq!(peers.len(), 3);
    assert!(
        peers
            .iter()
            .all(|p| p.addr.to_string().starts_with("/ip4/127.0.0.1/tcp/"))
    );
    // Ping fills in latencies soon after connecting.
    eventually("ping latencies", || {
        let handle = a.handle.clone();
        async move { handle.peers().await.iter().all(|p| p.latency.is_some()) }
    })
    .await;
}

#[tokio::test]
async fn a_bootstrap_peer_that_is_not_there_yet_is_retried() {
    // b starts first and dials a's future address until a appears there.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let b = start(config(2, vec![format!("/ip4/127.0.0.1/tcp/{port}")]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b.handle.bootstrap_reached());
    let mut late = config(1, vec![]);
    late.listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let a = start(late);
    eventually("bootstrap reached", || async {
        b.handle.bootstrap_reached()
    })
    .await;
    connected(&a, &b).await;
}

#[tokio::test]
async fn requests_round_trip_and_are_counted() {
    let a = start(config(1, vec![]));
    let b = start(config(2, vec![addr_of(&a).await.to_string()]));
    connected(&a, &b).await;
    let _a_events = serve(a.events, |request| match request {
        Request::Repos { .. } => Some(Response::Repos {
            repos: vec![],
            next: Some(repo(9)),
        }),
        _ => Some(Response::Error {
            code: ErrorCode::NotFound,
            message: "no".into(),
        }),
    });
    let a_id = a.handle.local_peer_id();
    let response = b
        .handle
        .request(a_id, Request::Repos { after: None })
        .await
        .unwrap();
    assert_eq!(
        response,
        Response::Repos {
            repos: vec![],
            next: Some(repo(9))
        }
    );
    let response = b
        .handle
        .request(
            a_id,
            Request::Heads {
                repos: vec![repo(1)],
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        response,
        Response::Error {
            code: ErrorCode::NotFound,
            ..
        }
    ));

    assert_eq!(sent(&b.metrics, MessageType::Repos), 1);
    assert_eq!(received(&b.metrics, MessageType::ReposResponse), 1);
    assert_eq!(received(&b.metrics, MessageType::ErrorResponse), 1);
    assert_eq!(received(&a.metrics, MessageType::Repos), 1);
    assert_eq!(sent(&a.metrics, MessageType::ReposResponse), 1);
    let latency = b
        .metrics
        .message_latency
        .get_or_create(&MessageLabels::of(MessageType::Repos));
    let mut text = String::new();
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register("latency", "", latency.clone());
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.contains("latency_count 1"), "{text}");
}

#[tokio::test]
async fn an_unanswered_request_times_out_and_a_dropped_one_is_an_error() {
    let mut quick = config(1, vec![]);
    quick.request_timeout = Duration::from_millis(600);
    let a = start(quick);
    let mut quick = config(2, vec![addr_of(&a).await.to_string()]);
    quick.request_timeout = Duration::from_millis(600);
    let b = start(quick);
    connected(&a, &b).await;
    // a holds on to requests for heads, and drops requests for ops unanswered.
    let (tx, mut dropped) = mpsc::channel::<()>(4);
    let _a_events = serve(a.events, move |request| match request {
        Request::Heads { .. } => None,
        _ => {
            let _ = tx.try_send(());
            Some(Response::Error {
                code: ErrorCode::Internal,
                message: "request dropped".into(),
            })
        }
    });
    let a_id = a.handle.local_peer_id();
    let started = Instant::now();
    let err = b
        .handle
        .request(a_id, Request::Heads { repos: vec![] })
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, NetError::Timeout), "{err}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // Still usable afterwards.
    let response = b
        .handle
        .request(
            a_id,
            Request::Ops {
                repo: repo(1),
                want: vec![],
                have: vec![],
                trace: None,
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        response,
        Response::Error {
            code: ErrorCode::Internal,
            ..
        }
    ));
    dropped.recv().await.unwrap();
}

#[tokio::test]
async fn a_dropped_reply_is_answered_internal() {
    let a = start(config(1, vec![]));
    let b = start(config(2, vec![addr_of(&a).await.to_string()]));
    connected(&a, &b).await;
    let mut a_events = a.events;
    let answering = tokio::spawn(async move {
        next_event(&mut a_events, |e| match e {
            // Dropped on the spot.
            NetEvent::Request { .. } => Some(()),
            _ => None,
        })
        .await;
        a_events
    });
    let response = b
        .handle
        .request(a.handle.local_peer_id(), Request::Repos { after: None })
        .await
        .unwrap();
    assert!(
        matches!(
            response,
            Response::Error {
                code: ErrorCode::Internal,
                ..
            }
        ),
        "{response:?}"
    );
    answering.await.unwrap();
}

#[tokio::test]
async fn a_full_event_queue_answers_busy() {
    // a's queue holds one event and nobody reads it: b's PeerUp fills it.
    let a = start_tuned(
        config(1, vec![]),
        NetTuning {
            event_capacity: 1,
            ..tuning()
        },
    );
    let b = start(config(2, vec![addr_of(&a).await.to_string()]));
    connected(&a, &b).await;
    let response = b
        .handle
        .request(a.handle.local_peer_id(), Request::Repos { after: None })
        .await
        .unwrap();
    assert!(
        matches!(
            response,
            Response::Error {
                code: ErrorCode::Busy,
                ..
            }
        ),
        "{response:?}"
    );
    assert_eq!(a.metrics.requests_busy.get(), 1);
    drop(a.events);
}

#[tokio::test]
async fn a_request_to_an_unknown_peer_fails_as_disconnected() {
    let a = start(config(1, vec![]));
    let stranger = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    let err = a
        .handle
        .request(stranger, Request::Repos { after: None })
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Disconnected), "{err}");
}

//   a ── b, both on the topic of repo 1
#[tokio::test]
async fn gossip_reaches_subscribers_and_garbage_is_rejected() {
    let a = start(config(1, vec![]));
    let mut b = start(config(2, vec![addr_of(&a).await.to_string()]));
    connected(&a, &b).await;
    let topic = repo(1);
    a.handle.subscribe(topic).await.unwrap();
    b.handle.subscribe(topic).await.unwrap();
    b.handle.subscribe(topic).await.unwrap(); // idempotent
    let a_id = a.handle.local_peer_id();

    // Until a knows b's subscription, a publication reaches nobody (and is not an
    // error): publish distinct announcements until one arrives.
    let publisher = a.handle.clone();
    let publishing = tokio::spawn(async move {
        for n in 0u8.. {
            let announce = Gossip::Announce {
                repo: topic,
                heads: vec![OpId::from_bytes([n; OpId::LEN])],
                trace: None,
            };
            publisher.publish(announce).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let (from, message) = next_event(&mut b.events, |e| match e {
        NetEvent::Gossip { from, message } => Some((from, message)),
        _ => None,
    })
    .await;
    publishing.abort();
    assert_eq!(from, a_id);
    assert!(matches!(message, Gossip::Announce { repo, .. } if repo == topic));
    assert!(sent(&a.metrics, MessageType::Announce) >= 1);
    assert!(received(&b.metrics, MessageType::Announce) >= 1);

    // Garbage on the topic, and an announcement of another repository on it: both
    // rejected, reported, never delivered.
    for data in [
        b"not a frame".to_vec(),
        Gossip::Announce {
            repo: repo(2),
            heads: vec![],
            trace: None,
        }
        .encode()
        .unwrap(),
    ] {
        a.handle
            .ask(|reply| Command::Publish {
                repo: Some(topic),
                new: false,
                data,
                kind: MessageType::Announce,
                reply,
            })
            .await
            .unwrap()
            .unwrap();
        let (peer, what) = next_event(&mut b.events, |e| match e {
            NetEvent::Misbehaved { peer, what } => Some((peer, what)),
            NetEvent::Gossip { message, .. } => panic!("delivered: {message:?}"),
            _ => None,
        })
        .await;
        assert_eq!(peer, a_id);
        assert!(what.contains("gossip") || what.contains("topic"), "{what}");
    }
    assert_eq!(b.metrics.misbehaviours.get(), 2);
}

#[tokio::test]
async fn providers_are_found_through_the_dht() {
    let a = start(config(1, vec![]));
    let b = start(config(2, vec![addr_of(&a).await.to_string()]));
    connected(&a, &b).await;
    let seeded = repo(3);
    a.handle.provide(seeded).await.unwrap();
    let a_id = a.handle.local_peer_id();
    let hb = b.handle.clone();
    eventually("a as a provider", || {
        let hb = hb.clone();
        async move { hb.providers(seeded).await.unwrap() == vec![a_id] }
    })
    .await;
    // A node is never its own provider.
    assert!(a.handle.providers(seeded).await.unwrap().is_empty());
    assert!(b.handle.providers(repo(4)).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_banned_peer_is_disconnected_and_refused() {
    let a = start(config(1, vec![]));
    let mut b = start(config(2, vec![addr_of(&a).await.to_string()]));
    connected(&a, &b).await;
    let (a_id, b_id) = (a.handle.local_peer_id(), b.handle.local_peer_id());
    next_event(&mut b.events, |e| {
        matches!(e, NetEvent::PeerUp(p) if p == a_id).then_some(())
    })
    .await;

    a.handle.ban(b_id, "test").await;
    a.handle.ban(a_id, "banning oneself is ignored").await;
    next_event(&mut b.events, |e| {
        matches!(e, NetEvent::PeerDown(p) if p == a_id).then_some(())
    })
    .await;
    // b keeps dialing a (a bootstrap address) and asks it directly: refused each time.
    let err = b
        .handle
        .request(a_id, Request::Repos { after: None })
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::Disconnected | NetError::Stream(_)),
        "{err}"
    );
    assert!(!a.handle.connected().await.contains(&b_id));
    assert_eq!(a.metrics.peers_connected.get(), 0);
}

#[tokio::test]
async fn a_ban_runs_out() {
    let a = start_tuned(
        config(1, vec![]),
        NetTuning {
            ban_duration: Duration::from_millis(300),
            ..tuning()
        },
    );
    let b = start(config(2, vec![addr_of(&a).await.to_string()]));
    connected(&a, &b).await;
    a.handle.ban(b.handle.local_peer_id(), "briefly").await;
    // b's bootstrap loop brings the connection back once the ban is over.
    let started = Instant::now();
    eventually("b disconnected", || {
        let ha = a.handle.clone();
        let b_id = b.handle.local_peer_id();
        async move { !ha.connected().await.contains(&b_id) }
    })
    .await;
    connected(&a, &b).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn shutdown_closes_everything_and_ends_the_task() {
    let a = start(config(1, vec![]));
    let mut b = start(config(2, vec![addr_of(&a).await.to_string()]));
    connected(&a, &b).await;
    let a_id = a.handle.local_peer_id();
    next_event(&mut b.events, |e| {
        matches!(e, NetEvent::PeerUp(p) if p == a_id).then_some(())
    })
    .await;

    a.handle.shutdown().await;
    let ended = tokio::time::timeout(DEADLINE, a.task).await.unwrap();
    assert!(matches!(ended, Ok(Ok(()))));
    next_event(&mut b.events, |e| {
        matches!(e, NetEvent::PeerDown(p) if p == a_id).then_some(())
    })
    .await;
    let err = a
        .handle
        .request(b.handle.local_peer_id(), Request::Repos { after: None })
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Shutdown), "{err}");
    assert!(a.handle.connected().await.is_empty());
    assert!(a.handle.listen_addrs().await.is_empty());
    a.handle.shutdown().await; // again: returns at once
}

#[tokio::test]
async fn dropping_every_handle_ends_the_task() {
    let a = start(config(1, vec![]));
    drop(a.handle);
    let ended = tokio::time::timeout(DEADLINE, a.task).await.unwrap();
    assert!(matches!(ended, Ok(Ok(()))));
}

/// A libp2p peer speaking `/guts/sync/1` with raw bytes: it sends whatever it is told
/// and answers every request with `answer`.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut buf = Vec::new();
        io.take(1 << 20).read_to_end(&mut buf).await?;
        Ok(buf)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&request).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&response).await?;
        io.close().await
    }
}

/// Starts a raw peer; returns its id, its address, and a channel of (peer, address,
/// bytes) to send as requests.
async fn raw_peer(
    answer: Vec<u8>,
) -> (
    PeerId,
    Multiaddr,
    mpsc::Sender<(PeerId, Multiaddr, Vec<u8>)>,
) {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                RawCodec,
                [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        })
        .unwrap()
        .build();
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let id = *swarm.local_peer_id();
    let (addr_tx, addr_rx) = oneshot::channel();
    let (send_tx, mut send_rx) = mpsc::channel::<(PeerId, Multiaddr, Vec<u8>)>(8);
    tokio::spawn(async move {
        let mut addr_tx = Some(addr_tx);
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        if let Some(tx) = addr_tx.take() {
                            let _ = tx.send(address);
                        }
                    }
                    SwarmEvent::Behaviour(request_response::Event::Message {
                        message: request_response::Message::Request { channel, .. },
                        ..
                    }) => {
                        let _ = swarm.behaviour_mut().send_response(channel, answer.clone());
                    }
                    _ => {}
                },
                Some((peer, addr, bytes)) = send_rx.recv() => {
                    swarm.behaviour_mut().send_request_with_addresses(&peer, bytes, vec![addr]);
                }
            }
        }
    });
    (id, addr_rx.await.unwrap(), send_tx)
}

#[tokio::test]
async fn garbage_and_oversized_frames_are_misbehaviour_not_panics() {
    let mut a = start(config(1, vec![]));
    let a_addr = addr_of(&a).await;
    let a_id = a.handle.local_peer_id();
    let (raw_id, _, raw) = raw_peer(Vec::new()).await;

    let mut oversized = vec![WIRE_VERSION, 0x02, 0x01];
    oversized.extend_from_slice(&u32::try_from(MAX_FRAME_BYTES).unwrap().to_be_bytes());
    for frame in [vec![0xff; 32], oversized] {
        raw.send((a_id, a_addr.clone(), frame)).await.unwrap();
        let (peer, what) = next_event(&mut a.events, |e| match e {
            NetEvent::Misbehaved { peer, what } => Some((peer, what)),
            NetEvent::Request { request, .. } => panic!("garbage decoded: {request:?}"),
            _ => None,
        })
        .await;
        assert_eq!(peer, raw_id);
        assert!(what.contains("request"), "{what}");
    }
    assert_eq!(a.metrics.misbehaviours.get(), 2);

    // The other way round: a raw peer answers b's request with garbage (a header
    // declaring a body far over the cap).
    let (raw_id, raw_addr, _raw) = raw_peer(b"\x01\x03\x01junk".to_vec()).await;
    let mut b = start(config(2, vec![format!("{raw_addr}/p2p/{raw_id}")]));
    eventually("b reaches the raw peer", || async {
        b.handle.bootstrap_reached()
    })
    .await;
    let err = b
        .handle
        .request(raw_id, Request::Repos { after: None })
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Protocol(_)), "{err}");
    let (peer, what) = next_event(&mut b.events, |e| match e {
        NetEvent::Misbehaved { peer, what } => Some((peer, what)),
        _ => None,
    })
    .await;
    assert_eq!(peer, raw_id);
    assert!(what.contains("response"), "{what}");
}

/// Two nodes with nothing configured but mDNS find each other. They listen on every
/// interface (mDNS announces what a node listens on, over the network's interfaces)
/// and take random keys, so that nodes of other test processes on this machine are
/// strangers rather than namesakes.
#[tokio::test]
async fn mdns_finds_peers_on_the_local_network() {
    let local_dev = |key: [u8; 32]| NetConfig {
        secret_key: key,
        listen: "/ip4/0.0.0.0/tcp/0".into(),
        mdns: true,
        ..config(0, vec![])
    };
    let a = start(local_dev(rand::random()));
    let b = start(local_dev(rand::random()));
    connected(&a, &b).await;
}
