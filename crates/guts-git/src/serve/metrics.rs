//! Git metrics: `guts_git_*` families. Every label value is a fixed word.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::Protocol;
use super::pack::PackStats;
use super::receive::PushOutcome;

/// Which front end served a git request (the `transport` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Ssh,
}

impl Transport {
    pub fn label(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Ssh => "ssh",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FetchLabels {
    /// `http` or `ssh`.
    pub transport: &'static str,
    /// `v0` or `v2`.
    pub protocol: &'static str,
    /// `ok` or `error`.
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// Ref updates: `ok`, `refused`.
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PushLabels {
    /// `http` or `ssh`.
    pub transport: &'static str,
    /// `ok` (every ref updated), `refused` (some refused) or `error`.
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// `sent` (fetches) or `received` (pushes).
    pub direction: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    /// `http` or `ssh`.
    pub transport: &'static str,
    /// `info_refs`, `upload_pack` or `receive_pack`.
    pub service: &'static str,
}

#[derive(Debug)]
pub struct GitMetrics {
    /// Upload-pack requests that sent a pack (or failed), by protocol.
    pub fetches: Family<FetchLabels, Counter>,
    pub pushes: Family<PushLabels, Counter>,
    pub ref_updates: Family<ResultLabels, Counter>,
    pub pack_bytes: Family<DirectionLabels, Counter>,
    pub pack_objects: Family<DirectionLabels, Counter>,
    pub duration: Family<ServiceLabels, Histogram>,
}

impl GitMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self {
            fetches: Family::default(),
            pushes: Family::default(),
            ref_updates: Family::default(),
            pack_bytes: Family::default(),
            pack_objects: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
        };
        let git = registry.sub_registry_with_prefix("git");
        git.register(
            "fetches",
            "Upload-pack requests that sent a pack or failed, by transport, protocol and result",
            this.fetches.clone(),
        );
        git.register(
            "pushes",
            "Receive-pack requests by transport and result (ok: every ref updated; refused: some refused; error)",
            this.pushes.clone(),
        );
        git.register(
            "ref_updates",
            "Ref updates of pushes, by result",
            this.ref_updates.clone(),
        );
        git.register_with_unit(
            "pack",
            "Pack bytes sent to fetches and received from pushes",
            Unit::Bytes,
            this.pack_bytes.clone(),
        );
        git.register(
            "pack_objects",
            "Objects in packs sent and received",
            this.pack_objects.clone(),
        );
        git.register_with_unit(
            "request_duration",
            "Time to serve a git request, streaming included",
            Unit::Seconds,
            this.duration.clone(),
        );
        this
    }

    pub fn observe(&self, transport: Transport, service: &'static str, elapsed: Duration) {
        self.duration
            .get_or_create(&ServiceLabels {
                transport: transport.label(),
                service,
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn fetch(
        &self,
        transport: Transport,
        protocol: Protocol,
        pack: Result<Option<&PackStats>, ()>,
    ) {
        let result = match pack {
            Ok(None) => return,
            Ok(Some(stats)) => {
                self.add_pack("sent", stats.objects as u64, stats.bytes);
                "ok"
            }
            Err(()) => "error",
        };
        self.fetches
            .get_or_create(&FetchLabels {
                transport: transport.label(),
                protocol: protocol.label(),
                result,
            })
            .inc();
    }

    pub fn push(&self, transport: Transport, outcome: Option<&PushOutcome>) {
        let result = match outcome {
            None => "error",
            Some(o) => {
                self.add_pack("received", u64::from(o.pack_objects), o.pack_bytes);
                for (result, n) in [("ok", o.updated), ("refused", o.refused)] {
                    self.ref_updates
                        .get_or_create(&ResultLabels { result })
                        .inc_by(n as u64);
                }
                if o.refused == 0 && o.unpack_error.is_none() {
                    "ok"
                } else {
                    "refused"
                }
            }
        };
        self.pushes
            .get_or_create(&PushLabels {
                transport: transport.label(),
                result,
            })
            .inc();
    }

    fn add_pack(&self, direction: &'static str, objects: u64, bytes: u64) {
        let labels = DirectionLabels { direction };
        self.pack_bytes.get_or_create(&labels).inc_by(bytes);
        self.pack_objects.get_or_create(&labels).inc_by(objects);
    }
}
