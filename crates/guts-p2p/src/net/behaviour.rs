//! The composed libp2p behaviour of a node, and how each part is configured.
//!
//! Order matters: `limits` and `blocked` come first so that a connection over the limit
//! or from a banned peer is denied before any other behaviour spends anything on it.

use guts_core::{OpId, RepoId};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, TopicScoreParams, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, allow_block_list, connection_limits, identify, kad, mdns, ping};

use super::codec::{SYNC_PROTOCOL, SyncCodec};
use super::{NetConfig, NetError, NetTuning};
use crate::wire::{HEADER_LEN, MAX_HEADS};

/// Our own DHT, apart from the public IPFS one: only Guts nodes answer it.
pub(crate) const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/guts/kad/1");

/// What identify tells peers we speak.
const IDENTIFY_PROTOCOL_VERSION: &str = "/guts/1";

/// Connections one peer may hold with us: one each way when both dial at once.
const MAX_CONNECTIONS_PER_PEER: u32 = 2;

/// Inbound plus outbound request-response streams at a time, per connection. Each
/// inbound stream may hold one frame (≤ 8 MiB) and one pending reply, so this bounds
/// what one peer can make us buffer.
const MAX_CONCURRENT_STREAMS: usize = 32;

/// Repositories this node may announce as a provider of. Kademlia's default (1,024) is
/// below what a busy node seeds; one record is a few hundred bytes.
const MAX_PROVIDED_KEYS: usize = 1 << 20;

/// The largest announcement frame: a repository id and [`MAX_HEADS`] op ids.
pub(crate) const MAX_ANNOUNCE_FRAME: usize = HEADER_LEN + RepoId::LEN + 4 + MAX_HEADS * OpId::LEN;

/// Gossipsub's cap on one RPC: a full announcement plus room for its envelope (source,
/// sequence number, topic, signature and key, protobuf framing).
pub(crate) const GOSSIP_MAX_TRANSMIT: usize = MAX_ANNOUNCE_FRAME + 4 * 1024;

/// How much a peer's gossipsub application score drops per undecodable frame it sends
/// (weighted ×10 by gossipsub's defaults: four offences reach the graylist threshold).
pub(crate) const MISBEHAVIOUR_PENALTY: f64 = 2.0;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// `max_connections` in all, [`MAX_CONNECTIONS_PER_PEER`] per peer.
    pub(crate) limits: connection_limits::Behaviour,
    /// Banned peers: their connections are closed and refused.
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Listen addresses exchanged on connect, fed to Kademlia.
    pub(crate) identify: identify::Behaviour,
    /// Liveness and the latency shown in `peers()`.
    pub(crate) ping: ping::Behaviour,
    /// Provider records: who seeds which repository.
    pub(crate) kad: kad::Behaviour<MemoryStore>,
    /// One topic per repository: head announcements.
    pub(crate) gossipsub: gossipsub::Behaviour,
    /// The sync protocol.
    pub(crate) sync: request_response::Behaviour<SyncCodec>,
    /// Local discovery for development; off in clusters, where DNS bootstrap does it.
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
}

/// The gossipsub topic of a repository's announcements.
/// The topic every node joins: announcements of repositories new to their sender, which
/// no node could have subscribed to yet (a repository's own topic is joined once it is
/// known).
pub(crate) fn new_repos_topic() -> IdentTopic {
    IdentTopic::new("/guts/new-repos/1")
}

pub(crate) fn repo_topic(repo: &RepoId) -> IdentTopic {
    IdentTopic::new(format!("/guts/repo/1/{repo}"))
}

/// Scoring of one repository topic. Only invalid messages count against a peer (P4)
/// and first deliveries a little for it (P2): repository topics are quiet, so the
/// mesh-delivery-rate penalties (P3, P3b) would punish honest peers for silence.
pub(crate) fn topic_score_params() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.5,
        first_message_deliveries_cap: 10.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        // One invalid message costs 10, two 40, three 90 (squared): graylisted at -80.
        invalid_message_deliveries_weight: -10.0,
        // Per second (the decay interval): forgiven after a few minutes.
        invalid_message_deliveries_decay: 0.99,
        ..TopicScoreParams::default()
    }
}

fn gossipsub(key: &Keypair, tuning: &NetTuning) -> Result<gossipsub::Behaviour, NetError> {
    let config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(tuning.gossip_heartbeat)
        .heartbeat_initial_delay(tuning.gossip_heartbeat)
        // Every message is signed by its origin and checked, so a relay cannot forge
        // announcements in another node's name.
        .validation_mode(ValidationMode::Strict)
        // Identical announcements from two paths are one message.
        .message_id_fn(|message| {
            gossipsub::MessageId::from(blake3::hash(&message.data).as_bytes().to_vec())
        })
        .max_transmit_size(GOSSIP_MAX_TRANSMIT)
        // Forward only what decoded (the swarm task reports Accept/Reject).
        .validate_messages()
        .build()
        .map_err(|e| NetError::Setup(format!("gossipsub config: {e}")))?;
    let mut behaviour = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)
        .map_err(|e| NetError::Setup(format!("gossipsub: {e}")))?;
    // Scoring is what makes a Reject cost the sender; per-topic parameters are set as
    // topics are joined. The IP colocation penalty is off: the nodes of one operator's
    // cluster may well share an address (NAT, a test on loopback).
    let params = gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    };
    behaviour
        .with_peer_score(params, gossipsub::PeerScoreThresholds::default())
        .map_err(|e| NetError::Setup(format!("gossipsub scoring: {e}")))?;
    behaviour
        .subscribe(&new_repos_topic())
        .map_err(|e| NetError::Setup(format!("subscribe: {e}")))?;
    behaviour
        .set_topic_params(new_repos_topic(), topic_score_params())
        .map_err(|e| NetError::Setup(e.to_string()))?;
    Ok(behaviour)
}

impl Behaviour {
    pub(crate) fn new(
        key: &Keypair,
        config: &NetConfig,
        tuning: &NetTuning,
    ) -> Result<Self, NetError> {
        let local = key.public().to_peer_id();

        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            .with_max_pending_incoming(Some(config.max_connections))
            .with_max_pending_outgoing(Some(config.max_connections))
            .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER));

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_string(), key.public())
                .with_agent_version(format!("guts/{}", env!("CARGO_PKG_VERSION")))
                .with_push_listen_addr_updates(true),
        );

        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config.set_query_timeout(config.request_timeout);
        let store = MemoryStore::with_config(
            local,
            MemoryStoreConfig {
                max_provided_keys: MAX_PROVIDED_KEYS,
                ..MemoryStoreConfig::default()
            },
        );
        let mut kad = kad::Behaviour::with_config(local, store, kad_config);
        // Every node serves the DHT: they are all reachable servers, never clients
        // behind a NAT that must not be asked.
        kad.set_mode(Some(kad::Mode::Server));

        let sync = request_response::Behaviour::with_codec(
            SyncCodec,
            [(SYNC_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(config.request_timeout)
                .with_max_concurrent_streams(MAX_CONCURRENT_STREAMS),
        );

        let mdns = if config.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), local)
                    .map_err(NetError::Mdns)?,
            )
        } else {
            None
        };

        Ok(Self {
            limits: connection_limits::Behaviour::new(limits),
            blocked: allow_block_list::Behaviour::default(),
            identify,
            ping: ping::Behaviour::new(ping::Config::new()),
            kad,
            gossipsub: gossipsub(key, tuning)?,
            sync,
            mdns: Toggle::from(mdns),
        })
    }
}

/// Kademlia's key for a repository's provider records: its id's bytes.
pub(crate) fn provider_key(repo: &RepoId) -> kad::RecordKey {
    kad::RecordKey::new(repo.as_bytes())
}
