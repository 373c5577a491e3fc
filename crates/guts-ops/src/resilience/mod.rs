//! Resilience primitives for outbound calls: [`retry`] with jittered exponential backoff
//! for transient errors, and per-key circuit [`Breakers`] so a failing peer is left alone
//! for a while instead of being hammered.
//!
//! guts-ops knows neither HTTP nor libp2p, so keys are plain strings (a peer id's text)
//! and "transient" is whatever the caller's predicate says. Both primitives report into
//! one [`ResilienceMetrics`], registered once per node like every other metrics struct.

mod breaker;
mod retry;

pub use breaker::{BreakerOpen, BreakerState, Breakers, MAX_KEYS, Permit};
pub use retry::{RetryPolicy, retry};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The retried operation: a `&'static str` chosen in code, so the label stays bounded.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// The breaker's key. Bounded because [`Breakers`] holds at most [`MAX_KEYS`] keys and
/// removes a key's label whenever it drops the key.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

/// Handles for `guts_retries_total{operation}` and `guts_circuit_breaker_state{peer}`;
/// one per node, shared as `Arc<ResilienceMetrics>`.
#[derive(Debug, Default)]
pub struct ResilienceMetrics {
    retries: Family<OperationLabels, Counter>,
    breaker_state: Family<PeerLabels, Gauge>,
}

impl ResilienceMetrics {
    /// Creates the handles and registers them into `registry`, which already carries the
    /// `guts` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self::default();
        registry.register(
            "retries",
            "Retries of failed outbound operations, by operation (the first attempt is not counted)",
            this.retries.clone(),
        );
        registry.register(
            "circuit_breaker_state",
            "Circuit breaker state per peer: 0 closed, 1 open, 2 half-open (shown once a call asks after the cooldown)",
            this.breaker_state.clone(),
        );
        this
    }

    /// Shows `guts_retries_total{operation}` at 0 before the first retry, so alert
    /// rules and dashboards find the series on a healthy node.
    pub fn declare(&self, operation: &'static str) {
        let _ = self.retries.get_or_create(&OperationLabels { operation });
    }

    fn count_retry(&self, operation: &'static str) {
        self.retries
            .get_or_create(&OperationLabels { operation })
            .inc();
    }

    fn set_state(&self, peer: &str, state: BreakerState) {
        self.breaker_state
            .get_or_create(&PeerLabels {
                peer: peer.to_owned(),
            })
            .set(state.gauge_value());
    }

    fn forget_peer(&self, peer: &str) {
        self.breaker_state.remove(&PeerLabels {
            peer: peer.to_owned(),
        });
    }
}
