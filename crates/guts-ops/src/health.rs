//! The health registry: components register named checks for the liveness, readiness
//! and startup probes; the HTTP layer asks for a [`Report`] and turns it into a status.
//!
//! Two checks are built in because every node has them: `startup` (passes once the node
//! called [`Health::mark_started`], i.e. recovery is done) and `draining` (fails from the
//! moment shutdown begins, so readiness turns 503 before anything stops).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Which probe a check contributes to. `/health` runs all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// The process is responsive; failing means "restart me".
    Live,
    /// The node can serve traffic; failing means "send no traffic to me".
    Ready,
    /// Recovery and initial sync are done; failing means "give me time".
    Startup,
}

/// The future a check returns: `Err` carries a short reason for the report.
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

type CheckFn = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

struct Check {
    name: &'static str,
    probes: &'static [Probe],
    run: CheckFn,
}

/// A check that takes longer than this fails: a probe must answer even when a disk or a
/// peer hangs.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Build with [`HealthBuilder`], then share as `Arc<Health>`.
pub struct Health {
    checks: Vec<Check>,
    started: AtomicBool,
    draining: AtomicBool,
    born: Instant,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field(
                "checks",
                &self.checks.iter().map(|c| c.name).collect::<Vec<_>>(),
            )
            .field("started", &self.started.load(Ordering::Relaxed))
            .field("draining", &self.draining.load(Ordering::Relaxed))
            .finish()
    }
}

/// Collects checks while the node is composed.
#[derive(Default)]
pub struct HealthBuilder {
    checks: Vec<Check>,
}

impl std::fmt::Debug for HealthBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthBuilder")
            .field("checks", &self.checks.len())
            .finish()
    }
}

impl HealthBuilder {
    /// Registers `check` under `name` for the given probes.
    pub fn register<F, Fut>(&mut self, name: &'static str, probes: &'static [Probe], check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push(Check {
            name,
            probes,
            run: Arc::new(move || Box::pin(check())),
        });
    }

    pub fn build(self) -> Health {
        Health {
            checks: self.checks,
            started: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            born: Instant::now(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub name: &'static str,
    pub status: Status,
    /// Wall time the check took, in milliseconds.
    pub latency_ms: f64,
    pub probes: &'static [Probe],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: Status,
    pub uptime_seconds: u64,
    pub checks: Vec<CheckReport>,
}

impl Report {
    pub fn healthy(&self) -> bool {
        self.status == Status::Pass
    }
}

const STARTUP_PROBES: &[Probe] = &[Probe::Startup, Probe::Ready];
const DRAINING_PROBES: &[Probe] = &[Probe::Ready];

impl Health {
    /// Recovery is done: startup (and, with it, readiness) may pass.
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    /// Shutdown began: readiness fails from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn uptime(&self) -> Duration {
        self.born.elapsed()
    }

    /// Runs every check that belongs to `probe` (all checks for `None`) concurrently,
    /// each bounded by [`CHECK_TIMEOUT`].
    pub async fn report(&self, probe: Option<Probe>) -> Report {
        let wanted = |probes: &[Probe]| probe.is_none_or(|p| probes.contains(&p));
        let mut checks = Vec::new();
        if wanted(STARTUP_PROBES) {
            let ok = self.started.load(Ordering::SeqCst);
            checks.push(flag_report(
                "startup",
                STARTUP_PROBES,
                ok,
                "recovery not finished",
            ));
        }
        if wanted(DRAINING_PROBES) {
            let ok = !self.draining.load(Ordering::SeqCst);
            checks.push(flag_report(
                "draining",
                DRAINING_PROBES,
                ok,
                "node is shutting down",
            ));
        }
        let runs = self
            .checks
            .iter()
            .filter(|c| wanted(c.probes))
            .map(|c| async move {
                let start = Instant::now();
                let outcome = tokio::time::timeout(CHECK_TIMEOUT, (c.run)()).await;
                let error = match outcome {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some(format!("timed out after {CHECK_TIMEOUT:?}")),
                };
                CheckReport {
                    name: c.name,
                    status: if error.is_none() {
                        Status::Pass
                    } else {
                        Status::Fail
                    },
                    latency_ms: start.elapsed().as_secs_f64() * 1000.0,
                    probes: c.probes,
                    error,
                }
            });
        checks.extend(futures::future::join_all(runs).await);
        let status = if checks.iter().all(|c| c.status == Status::Pass) {
            Status::Pass
        } else {
            Status::Fail
        };
        Report {
            status,
            uptime_seconds: self.born.elapsed().as_secs(),
            checks,
        }
    }
}

fn flag_report(name: &'static str, probes: &'static [Probe], ok: bool, why: &str) -> CheckReport {
    CheckReport {
        name,
        status: if ok { Status::Pass } else { Status::Fail },
        latency_ms: 0.0,
        probes,
        error: (!ok).then(|| why.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probes_follow_lifecycle_and_checks() {
        let failing = Arc::new(AtomicBool::new(false));
        let mut builder = HealthBuilder::default();
        let f = failing.clone();
        builder.register("disk", &[Probe::Ready], move || {
            let f = f.clone();
            async move {
                if f.load(Ordering::SeqCst) {
                    Err("read-only".to_string())
                } else {
                    Ok(())
                }
            }
        });
        let health = builder.build();

        assert!(health.report(Some(Probe::Live)).await.healthy());
        assert!(!health.report(Some(Probe::Startup)).await.healthy());
        assert!(!health.report(Some(Probe::Ready)).await.healthy());
        health.mark_started();
        assert!(health.report(Some(Probe::Startup)).await.healthy());
        assert!(health.report(Some(Probe::Ready)).await.healthy());

        failing.store(true, Ordering::SeqCst);
        let report = health.report(Some(Probe::Ready)).await;
        assert!(!report.healthy());
        let disk = report.checks.iter().find(|c| c.name == "disk").unwrap();
        assert_eq!(disk.error.as_deref(), Some("read-only"));
        // Liveness does not depend on readiness checks.
        assert!(health.report(Some(Probe::Live)).await.healthy());

        failing.store(false, Ordering::SeqCst);
        health.start_draining();
        assert!(!health.report(Some(Probe::Ready)).await.healthy());
        assert!(health.report(Some(Probe::Live)).await.healthy());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_check_fails_instead_of_hanging_the_probe() {
        let mut builder = HealthBuilder::default();
        builder.register("hangs", &[Probe::Live], std::future::pending);
        let health = builder.build();
        let report = health.report(Some(Probe::Live)).await;
        assert!(!report.healthy());
        assert!(
            report.checks[0]
                .error
                .as_deref()
                .unwrap()
                .contains("timed out")
        );
    }
}
