//! The latest online backup of this process: its status, shared by the admin routes
//! that start and report it (`routes::backup`) and the task that copies, and held in
//! the state. In memory only: the manifest a backup writes last is the durable record
//! that it completed.
//!
//! The copy is a task of the node's supervisor, like all long-lived work: a shutdown
//! starts draining (the copy stops between chunks and records itself failed) and then
//! awaits it, so the process never exits with a copy half-written and unaccounted for.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use guts_ops::{Health, Supervisor};
use guts_storage::GitRepos;
use guts_storage::backup::Snapshot;

use serde::Serialize;
use utoipa::ToSchema;

/// The latest backup of this process; shared by the handlers and the copying task.
#[derive(Debug, Default)]
pub(crate) struct Backups {
    pub(crate) latest: Mutex<Option<BackupStatus>>,
}

impl Backups {
    pub(crate) fn latest(&self) -> Option<BackupStatus> {
        self.latest.lock().ok().and_then(|l| l.clone())
    }

    pub(crate) fn set(&self, status: BackupStatus) {
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Some(status);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BackupState {
    Running,
    Done,
    Failed,
}

/// A backup's progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct BackupStatus {
    pub(crate) state: BackupState,
    /// The target directory on the node's filesystem.
    pub(crate) path: String,
    /// When the snapshot was taken: every write acknowledged before it is in the backup.
    pub(crate) snapshot_at: String,
    /// Live repositories in the snapshot.
    pub(crate) repositories: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) finished_at: Option<String>,
    /// Bytes written (when done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bytes: Option<u64>,
    /// Entries copied per table (when done).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub(crate) tables: Option<std::collections::BTreeMap<String, u64>>,
    /// Why it failed (when failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// What one backup copies: the snapshot, and from where to where.
pub(crate) struct CopyJob {
    pub(crate) snapshot: Snapshot,
    /// The node's data directory and its repositories.
    pub(crate) data_dir: PathBuf,
    pub(crate) git: GitRepos,
    /// The target directory.
    pub(crate) path: PathBuf,
}

/// Runs `job` as the supervised task `backup`, recording the outcome over `running` in
/// `backups`; draining `health` stops it. A failed or panicking copy is a failed
/// backup, not a failed node: the task itself always ends well. (It takes the pieces,
/// not the API state, which holds [`Backups`]: no import circle.)
pub(crate) fn spawn_copy(
    tasks: &Supervisor,
    backups: Arc<Backups>,
    health: Arc<Health>,
    job: CopyJob,
    running: BackupStatus,
) {
    let CopyJob {
        snapshot,
        data_dir,
        git,
        path,
    } = job;
    let failed = {
        let (backups, running) = (backups.clone(), running.clone());
        move |error: String| {
            backups.set(BackupStatus {
                state: BackupState::Failed,
                finished_at: Some(now()),
                error: Some(error),
                ..running
            });
        }
    };
    let on_panic = failed.clone();
    let started = Instant::now();
    tasks.spawn("backup", async move {
        // Blocking file copies; draining (a shutdown) stops it between chunks.
        let copied = tokio::task::spawn_blocking(move || {
            let stop = || health.is_draining();
            match snapshot.write(&data_dir, &git, &path, &stop) {
                Ok(manifest) => {
                    tracing::info!(
                        path = %path.display(),
                        bytes = manifest.bytes,
                        repositories = manifest.repositories.len(),
                        ms = started.elapsed().as_millis() as u64,
                        "backup finished"
                    );
                    backups.set(BackupStatus {
                        state: BackupState::Done,
                        finished_at: Some(now()),
                        bytes: Some(manifest.bytes),
                        repositories: manifest.repositories.len() as u64,
                        tables: Some(manifest.tables),
                        ..running
                    });
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "backup failed");
                    failed(e.to_string());
                }
            }
        })
        .await;
        if let Err(e) = copied {
            tracing::error!(error = %e, "backup task panicked");
            on_panic("the backup task failed".to_owned());
        }
        Ok::<(), Infallible>(())
    });
}

/// Now, as GitHub's timestamps.
fn now() -> String {
    crate::time::iso8601(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}
