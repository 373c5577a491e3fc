//! What the admin API may ask of the sync layer (`PeerDirectory`: the connected peers,
//! the partition fault switch) and what it gets back, without the network layer: a
//! front end depends on this trait, not on libp2p, and the sync service implements it.

use std::future::Future;
use std::pin::Pin;

/// One peer as the admin API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerSummary {
    pub peer_id: String,
    pub address: String,
    pub latency_ms: Option<f64>,
    /// `closed`, `open` or `half_open`.
    pub breaker: &'static str,
    pub connected_ms: u64,
}

/// What the admin API may ask of the sync layer, without knowing its types.
pub trait PeerDirectory: Send + Sync {
    /// Connected peers with their latency and breaker state, sorted by id.
    fn peers(&self) -> Pin<Box<dyn Future<Output = Vec<PeerSummary>> + Send + '_>>;
    /// The fault switch: while isolated the node neither answers, pulls, announces
    /// nor heeds announcements (connections stay up), as if partitioned.
    fn set_isolated(&self, isolated: bool);
    fn isolated(&self) -> bool;
}
