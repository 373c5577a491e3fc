//! The latest online backup of this process: its status, shared by the admin routes
//! that start and report it (`routes::backup`) and the task that copies, and held in
//! the state. In memory only: the manifest a backup writes last is the durable record
//! that it completed.

use std::sync::Mutex;

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
