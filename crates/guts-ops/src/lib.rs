//! Cross-cutting operations support shared by every Guts crate: logging and tracing,
//! the metrics registry, the health registry, task supervision, secrets, rate limiting
//! (token buckets), and the resilience primitives (retries, circuit breakers) for
//! outbound calls.
//!
//! Architecture invariant: guts-ops knows neither HTTP nor libp2p. It hands out values
//! (registries, handles, tokens) that the edge crates wire to their protocols.

pub mod client;
pub mod health;
pub mod metrics;
pub mod rate;
pub mod resilience;
pub mod secret;
pub mod supervisor;
pub mod telemetry;
pub mod time;

pub use client::Client;
pub use health::{Health, HealthBuilder, Probe};
pub use metrics::MetricsRegistry;
pub use resilience::{
    BreakerOpen, BreakerState, Breakers, Permit, ResilienceMetrics, RetryPolicy, retry,
};
pub use secret::Secret;
pub use supervisor::Supervisor;
pub use telemetry::{LogFormat, LogLevel, Telemetry, TelemetrySettings};
