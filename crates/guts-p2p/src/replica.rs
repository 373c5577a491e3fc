//! What replication needs from the node's storage, as a trait: the sync protocol is
//! written against it, and the node implements it over guts-storage and guts-git, so
//! this crate knows neither the on-disk layout nor git's pack machinery.

use std::future::Future;
use std::path::Path;

use guts_core::{ObjectId, OpId, RepoId, SignedOp};

/// Why the replica could not answer or take something.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The repository is not held here (or not seeded).
    #[error("no such repository")]
    NotFound,
    /// The request makes no sense (e.g. wants of a pack that are not here).
    #[error("{0}")]
    BadRequest(String),
    /// What a peer sent is wrong (a pack that does not verify, ops of another
    /// repository): the peer is to blame, and is scored down.
    #[error("invalid data from peer: {0}")]
    Invalid(String),
    /// Local trouble (disk, database): nobody's fault but ours, worth a retry.
    #[error("{0}")]
    Internal(String),
    /// Sealed data that does not open with this node's cluster secret: a peer of
    /// another cluster. Not misbehaviour; nothing is taken from it.
    #[error("sealed for another cluster")]
    OtherCluster,
}

/// One repository as anti-entropy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoHeadsInfo {
    pub repo: RepoId,
    /// Complete operations without children, sorted.
    pub heads: Vec<OpId>,
}

/// The result of offering operations from a peer to the replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offered {
    /// Operations stored and folded (new to this node).
    pub applied: usize,
    /// Operations already held.
    pub duplicates: usize,
    /// Operations refused by the fold for a reason fixed by the operation and its
    /// causal past (forged authority, malformed payload): not stored, written to the
    /// dead-letter log. A peer that sends these is misbehaving.
    pub rejected: Vec<(OpId, String)>,
    /// Git objects (ref tips) that ref-moving operations of the batch need and this
    /// node lacks. When non-empty nothing of the batch that needs them was applied:
    /// fetch a pack of them and offer the batch again.
    pub needs_objects: Vec<ObjectId>,
    /// Parents named by offered operations that are held nowhere here.
    pub missing: Vec<OpId>,
}

/// The node's storage as replication sees it. Every method may be called from many
/// tasks at once.
pub trait Replica: Send + Sync + 'static {
    /// Repositories this node seeds, ascending by id, strictly after `after`, at most
    /// `limit` of them. Deleted repositories are included: their deletion replicates.
    fn repos(&self, after: Option<RepoId>, limit: usize) -> Vec<RepoHeadsInfo>;

    /// Whether the repository is private: served only to peers of this node's
    /// cluster.
    fn is_private(&self, repo: RepoId) -> bool;

    /// The heads of one repository, `None` when it is not held or not seeded.
    fn heads(&self, repo: RepoId) -> Option<Vec<OpId>>;

    /// The operations `want` names and their ancestors, minus everything reachable
    /// from `have` (unknown ids in `have` are ignored), parents before children,
    /// stopping before `max_bytes` of encodings; and the wanted ids not held here.
    fn ops(
        &self,
        repo: RepoId,
        want: Vec<OpId>,
        have: Vec<OpId>,
        max_bytes: usize,
    ) -> impl Future<Output = Result<(Vec<SignedOp>, Vec<OpId>), ReplicaError>> + Send;

    /// Offers operations received from a peer (signatures already verified by
    /// decoding). Idempotent.
    fn offer(
        &self,
        repo: RepoId,
        ops: Vec<SignedOp>,
    ) -> impl Future<Output = Result<Offered, ReplicaError>> + Send;

    /// The ref tips this node holds for `repo` (what a pack request names as `haves`).
    fn ref_tips(&self, repo: RepoId) -> Vec<ObjectId>;

    /// Writes a pack of the objects reachable from `wants` and not from `haves` to
    /// `dest` (a new file), returning its length. Deterministic enough to resume: the
    /// caller keeps the file for resumed transfers rather than regenerating it.
    fn write_pack(
        &self,
        repo: RepoId,
        wants: Vec<ObjectId>,
        haves: Vec<ObjectId>,
        dest: &Path,
    ) -> impl Future<Output = Result<u64, ReplicaError>> + Send;

    /// Digest of the cluster's account records held here (users, token hashes,
    /// organizations, memberships).
    fn accounts_digest(&self) -> [u8; 32];

    /// Moves whenever the account records held here change (a local write or an
    /// import): what makes the node announce its new accounts digest at once. (With
    /// the network layer only: tokio is not a dependency of the bare wire codec.)
    #[cfg(feature = "net")]
    fn accounts_changes(&self) -> tokio::sync::watch::Receiver<u64>;

    /// One page of account records after `after`, sealed with the cluster key, and
    /// where the next page starts.
    fn accounts_page(&self, after: Option<&str>)
    -> Result<(Vec<u8>, Option<String>), ReplicaError>;

    /// Opens and merges a sealed page from a peer; how many records changed.
    fn import_accounts(
        &self,
        sealed: Vec<u8>,
    ) -> impl Future<Output = Result<usize, ReplicaError>> + Send;

    /// Verifies the pack at `path` (every object, connectivity) and installs its
    /// objects into `repo`.
    fn ingest_pack(
        &self,
        repo: RepoId,
        path: &Path,
    ) -> impl Future<Output = Result<(), ReplicaError>> + Send;
}
