//! The one shutdown model of the node: a cancellation token that every long-lived task
//! watches, and a tracker that knows every task still running.
//!
//! Tasks are spawned only through [`Supervisor::spawn`], which gives each a name (in its
//! span and its failure message) and turns a panic or an error into a loud shutdown of
//! the whole node rather than a silently missing subsystem.

use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

/// Cloneable; all clones share one token, one tracker and one failure slot.
#[derive(Debug, Clone, Default)]
pub struct Supervisor {
    shutdown: CancellationToken,
    tracker: TaskTracker,
    failure: Arc<Mutex<Option<String>>>,
}

/// [`Supervisor::drain`] gave up with tasks still running.
#[derive(Debug, thiserror::Error)]
#[error("{running} task(s) still running after {waited:?}")]
pub struct DrainTimeout {
    pub running: usize,
    pub waited: Duration,
}

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `task` under `name`. If it panics or returns an error, the node is asked to
    /// shut down and [`Supervisor::failure`] reports why. A task that returns `Ok` early
    /// is fine (one-shot work).
    pub fn spawn<F, E>(&self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let this = self.clone();
        let span = tracing::info_span!("task", task = name);
        self.tracker.spawn(
            async move {
                tracing::debug!("task started");
                match AssertUnwindSafe(task).catch_unwind().await {
                    Ok(Ok(())) => tracing::debug!("task finished"),
                    Ok(Err(e)) => this.fail(format!("task {name} failed: {e}")),
                    Err(panic) => {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "non-string panic payload".to_string());
                        this.fail(format!("task {name} panicked: {what}"));
                    }
                }
            }
            .instrument(span),
        );
    }

    fn fail(&self, why: String) {
        tracing::error!(reason = %why, "shutting the node down");
        if let Ok(mut slot) = self.failure.lock() {
            slot.get_or_insert(why);
        }
        self.shutdown.cancel();
    }

    /// The first task failure, if any: a node that had one exits non-zero.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|slot| slot.clone())
    }

    /// A token that is cancelled when shutdown begins, for tasks to select on.
    pub fn token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn request_shutdown(&self) {
        self.shutdown.cancel();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Resolves when shutdown was requested (by a signal, a caller or a failed task).
    pub async fn shutdown_requested(&self) {
        self.shutdown.cancelled().await
    }

    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Waits until every task has finished, or `timeout` passes. No new task can be
    /// spawned after this is called.
    pub async fn drain(&self, timeout: Duration) -> Result<(), DrainTimeout> {
        self.tracker.close();
        match tokio::time::timeout(timeout, self.tracker.wait()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(DrainTimeout {
                running: self.tracker.len(),
                waited: timeout,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_requests_shutdown_and_is_named() {
        let sup = Supervisor::new();
        sup.spawn("doomed", async {
            if true {
                panic!("boom");
            }
            Ok::<(), String>(())
        });
        tokio::time::timeout(Duration::from_secs(5), sup.shutdown_requested())
            .await
            .unwrap();
        let why = sup.failure().unwrap();
        assert!(why.contains("doomed") && why.contains("boom"), "{why}");
        sup.drain(Duration::from_secs(1)).await.unwrap();
    }

    #[tokio::test]
    async fn an_erroring_task_requests_shutdown() {
        let sup = Supervisor::new();
        sup.spawn("listener", async { Err::<(), _>("address in use") });
        tokio::time::timeout(Duration::from_secs(5), sup.shutdown_requested())
            .await
            .unwrap();
        assert!(sup.failure().unwrap().contains("address in use"));
    }

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_tasks_and_times_out_on_stragglers() {
        let sup = Supervisor::new();
        let token = sup.token();
        sup.spawn("polite", async move {
            token.cancelled().await;
            Ok::<(), String>(())
        });
        sup.spawn("stubborn", async {
            std::future::pending::<()>().await;
            Ok::<(), String>(())
        });
        sup.request_shutdown();
        let err = sup.drain(Duration::from_secs(3)).await.unwrap_err();
        assert_eq!(err.running, 1);
        assert!(sup.failure().is_none());
    }
}
