//! Guts on disk: a transactional store (redb) for operations, materialised state,
//! accounts and tokens, and bare git repositories through gix.
//!
//! Architecture invariant: storage never touches the network. Writes are acknowledged
//! only once durable (fsync); on open, it recovers to the last durable commit and
//! removes what an interrupted run left behind.

pub mod accounts;
pub mod archive;
pub mod backup;
pub mod browse;
pub mod db;
pub mod error;
pub mod git;
pub mod hooks;
pub mod maintenance;
pub mod merge;
pub mod metrics;
pub mod repos;
pub mod schema;
pub mod seal;
#[cfg(test)]
mod testing;
pub mod write;

pub use accounts::ssh_keys::{KeyOwner, NewSshKey, SshKeyRecord};
/// Cluster account replication, at its older path: the module is `accounts::sync`.
pub use accounts::sync as account_sync;
pub use accounts::{
    AccountError, Accounts, Membership, NewToken, OrgRecord, OrgRole, Scope, Session, TokenRecord,
    UserRecord,
};
pub use browse::{BrowseError, Browser};
pub use db::{Store, WriterHandle};
pub use error::StoreError;
pub use git::{GitRepo, GitRepos, Oid, Quarantine, RefUpdateError};
pub use hooks::{Delivery, HookQueue, Job};
pub use merge::{MergeError, MergeRequest, Mergeability, Signature};
pub use metrics::StorageMetrics;
pub use repos::{
    Change, CheckpointPass, DeadLetter, Listing, NameBinding, RefCommand, RefRefusal, RemoteInsert,
    ReplayReport, RepoError, RepoStatus, RepoView, Repositories, RowSelect, ServedName, Texts,
    node_state_digest,
};
pub use seal::{SealError, Sealer};
pub use write::{
    EntryChange, FileEdit, FileEdited, Mode, NewCommit, NewTag, PathError, TreeEdit, WriteError,
};
