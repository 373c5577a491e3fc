//! Typed Prometheus handles of the network layer: the `guts_p2p_*` families of
//! DESIGN.md section 7, labelled only by the message kind (a closed enum), never by ids.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::wire::{Gossip, Request, Response};

/// Which message a metric is about: one value per message variant, so the label set is
/// closed whatever peers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Announce,
    AccountsChanged,
    Repos,
    Heads,
    Ops,
    Pack,
    Accounts,
    Hello,
    ReposResponse,
    HeadsResponse,
    OpsResponse,
    PackChunk,
    AccountsResponse,
    HelloResponse,
    ErrorResponse,
}

impl MessageType {
    /// The label value (`announce`, `repos_response`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Announce => "announce",
            MessageType::AccountsChanged => "accounts_changed",
            MessageType::Repos => "repos",
            MessageType::Heads => "heads",
            MessageType::Ops => "ops",
            MessageType::Pack => "pack",
            MessageType::Accounts => "accounts",
            MessageType::Hello => "hello",
            MessageType::ReposResponse => "repos_response",
            MessageType::HeadsResponse => "heads_response",
            MessageType::OpsResponse => "ops_response",
            MessageType::PackChunk => "pack_chunk",
            MessageType::AccountsResponse => "accounts_response",
            MessageType::HelloResponse => "hello_response",
            MessageType::ErrorResponse => "error_response",
        }
    }
}

impl EncodeLabelValue for MessageType {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

impl From<&Gossip> for MessageType {
    fn from(message: &Gossip) -> Self {
        match message {
            Gossip::Announce { .. } => MessageType::Announce,
            Gossip::Accounts { .. } => MessageType::AccountsChanged,
        }
    }
}

impl From<&Request> for MessageType {
    fn from(message: &Request) -> Self {
        match message {
            Request::Repos { .. } => MessageType::Repos,
            Request::Heads { .. } => MessageType::Heads,
            Request::Ops { .. } => MessageType::Ops,
            Request::Pack { .. } => MessageType::Pack,
            Request::Accounts { .. } => MessageType::Accounts,
            Request::Hello { .. } => MessageType::Hello,
        }
    }
}

impl From<&Response> for MessageType {
    fn from(message: &Response) -> Self {
        match message {
            Response::Repos { .. } => MessageType::ReposResponse,
            Response::Heads { .. } => MessageType::HeadsResponse,
            Response::Ops { .. } => MessageType::OpsResponse,
            Response::PackChunk(_) => MessageType::PackChunk,
            Response::Accounts { .. } => MessageType::AccountsResponse,
            Response::Hello { .. } => MessageType::HelloResponse,
            Response::Error { .. } => MessageType::ErrorResponse,
        }
    }
}

/// The `type` label of the message families.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct MessageLabels {
    pub r#type: MessageType,
}

impl MessageLabels {
    pub fn of(kind: impl Into<MessageType>) -> Self {
        Self {
            r#type: kind.into(),
        }
    }
}

/// Handles for every network metric; one per node, shared as `Arc<NetMetrics>` by the
/// swarm task and every [`super::NetHandle`].
#[derive(Debug)]
pub struct NetMetrics {
    /// Peers with at least one established connection.
    pub peers_connected: Gauge,
    /// Messages handed to the network: requests, responses and gossip publications.
    pub messages_sent: Family<MessageLabels, Counter>,
    /// Messages that arrived and decoded: requests, responses and gossip.
    pub messages_received: Family<MessageLabels, Counter>,
    /// Round trip of a request, from `NetHandle::request` to its decoded response,
    /// labelled by the request's kind. Failed requests are not observed.
    pub message_latency: Family<MessageLabels, Histogram>,
    /// Inbound requests answered `Busy` because the sync layer's queue was full: the
    /// backpressure signal of the network layer.
    pub requests_busy: Counter,
    /// Frames or gossip from peers that did not decode.
    pub misbehaviours: Counter,
    /// Events (gossip, peer up/down, misbehaviour reports) dropped because the sync
    /// layer's queue was full.
    pub events_dropped: Counter,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s in 17 doubling steps: a LAN round trip to a pack chunk over a slow link.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl NetMetrics {
    /// Creates the handles and registers them under `p2p_*` in `registry` (which the
    /// node creates with the `guts` prefix: `guts_p2p_peers_connected`, …).
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self::unregistered();
        let p2p = registry.sub_registry_with_prefix("p2p");
        p2p.register(
            "peers_connected",
            "Peers with at least one established connection",
            this.peers_connected.clone(),
        );
        p2p.register(
            "messages_sent",
            "P2P messages sent (requests, responses, gossip), by message type",
            this.messages_sent.clone(),
        );
        p2p.register(
            "messages_received",
            "P2P messages received and decoded (requests, responses, gossip), by message type",
            this.messages_received.clone(),
        );
        p2p.register_with_unit(
            "message_latency",
            "Round trip of successful P2P requests, by request type",
            Unit::Seconds,
            this.message_latency.clone(),
        );
        p2p.register(
            "requests_busy",
            "Inbound P2P requests refused as busy because the sync queue was full",
            this.requests_busy.clone(),
        );
        p2p.register(
            "misbehaviours",
            "Frames or gossip from peers that did not decode",
            this.misbehaviours.clone(),
        );
        p2p.register(
            "events_dropped",
            "Network events dropped because the sync layer's queue was full",
            this.events_dropped.clone(),
        );
        this
    }

    /// Handles that no registry shows, for tests and tools that do not scrape.
    pub fn unregistered() -> Self {
        Self {
            peers_connected: Gauge::default(),
            messages_sent: Family::default(),
            messages_received: Family::default(),
            message_latency: Family::new_with_constructor(latency_histogram),
            requests_busy: Counter::default(),
            misbehaviours: Counter::default(),
            events_dropped: Counter::default(),
        }
    }

    pub(crate) fn sent(&self, kind: impl Into<MessageType>) {
        self.messages_sent
            .get_or_create(&MessageLabels::of(kind))
            .inc();
    }

    pub(crate) fn received(&self, kind: impl Into<MessageType>) {
        self.messages_received
            .get_or_create(&MessageLabels::of(kind))
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_are_as_designed() {
        let mut registry = Registry::with_prefix("guts");
        let metrics = NetMetrics::register(&mut registry);
        metrics.peers_connected.set(2);
        metrics.sent(MessageType::Announce);
        metrics.received(MessageType::ReposResponse);
        metrics
            .message_latency
            .get_or_create(&MessageLabels::of(MessageType::Ops))
            .observe(0.01);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for expected in [
            "guts_p2p_peers_connected 2",
            "guts_p2p_messages_sent_total{type=\"announce\"} 1",
            "guts_p2p_messages_received_total{type=\"repos_response\"} 1",
            "guts_p2p_message_latency_seconds_count{type=\"ops\"} 1",
            "guts_p2p_requests_busy_total 0",
        ] {
            assert!(text.contains(expected), "{expected} missing from\n{text}");
        }
    }
}
