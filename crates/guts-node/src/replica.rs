//! The node's storage as replication sees it: guts-p2p's `Replica` over
//! guts-storage (operations, heads, dead letters) and guts-git (packs between peers),
//! with the seeding policy (`GUTS_SEED`) applied at the door.

use std::path::Path;
use std::sync::Arc;

use guts_core::{ObjectId, OpId, Payload, RepoId, SignedOp};
use guts_p2p::replica::{Offered, Replica, ReplicaError, RepoHeadsInfo};
use guts_storage::account_sync::PageError;
use guts_storage::{AccountError, Accounts, RepoError, Repositories};

use crate::config::Seed;

/// Plaintext bytes of account records per page (sealed, it stays under the wire's cap).
const ACCOUNTS_PAGE_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug)]
pub struct NodeReplica {
    repos: Arc<Repositories>,
    accounts: Accounts,
    seed: Seed,
    /// Largest single object accepted in a pack from a peer, inflated
    /// (`GUTS_MAX_OBJECT_SIZE_MB`, as for pushes): a peer's pack is as untrusted as a
    /// push, and a repository a push could not have filled must not arrive this way.
    max_object_bytes: usize,
}

impl NodeReplica {
    pub fn new(
        repos: Arc<Repositories>,
        accounts: Accounts,
        seed: Seed,
        max_object_bytes: usize,
    ) -> Self {
        Self {
            repos,
            accounts,
            seed,
            max_object_bytes,
        }
    }

    /// Whether the repository is replicated by this node: by its name once known
    /// (a deleted repository keeps its last name), and every repository under `all`.
    fn seeds(&self, repo: RepoId) -> bool {
        match &self.seed {
            Seed::All => true,
            // By the name it is served under here, so that `alice/*` never covers
            // another cluster's `alice` (see `Repositories::served`); a deleted
            // repository by the name it was created with.
            Seed::Only(_) => match (self.repos.served(repo), self.repos.get(repo)) {
                (Some(served), _) => self.seed.covers(&served.owner, &served.name),
                (None, Some(view)) => view
                    .state
                    .meta
                    .as_ref()
                    .is_some_and(|m| self.seed.covers(&m.owner, &m.name)),
                (None, None) => false,
            },
        }
    }
}

/// A git serving error as replication sees it: the other side's fault (`blame`: a bad
/// request when serving, invalid data when receiving) or ours.
fn serve_error(e: guts_git::serve::ServeError, blame: fn(String) -> ReplicaError) -> ReplicaError {
    if e.is_client_error() {
        blame(e.to_string())
    } else {
        ReplicaError::Internal(e.to_string())
    }
}

fn replica_error(e: RepoError) -> ReplicaError {
    match e {
        RepoError::NotFound => ReplicaError::NotFound,
        RepoError::Invalid(why) => ReplicaError::Invalid(why),
        other => ReplicaError::Internal(other.to_string()),
    }
}

impl Replica for NodeReplica {
    fn repos(&self, after: Option<RepoId>, limit: usize) -> Vec<RepoHeadsInfo> {
        let mut out = Vec::new();
        let mut cursor = after;
        // The allowlist filters after paging, so page on until `limit` are found.
        loop {
            let page = self.repos.all_heads(cursor, limit);
            let full = page.len() == limit;
            cursor = page.last().map(|(id, _)| *id);
            for (repo, heads) in page {
                if out.len() < limit && self.seeds(repo) {
                    out.push(RepoHeadsInfo { repo, heads });
                }
            }
            if !full || out.len() >= limit {
                return out;
            }
        }
    }

    fn is_private(&self, repo: RepoId) -> bool {
        self.repos
            .get(repo)
            .and_then(|v| v.state.meta.as_ref().map(|m| m.private))
            .unwrap_or(false)
    }

    fn heads(&self, repo: RepoId) -> Option<Vec<OpId>> {
        if !self.seeds(repo) {
            return None;
        }
        self.repos.heads(repo)
    }

    async fn ops(
        &self,
        repo: RepoId,
        want: Vec<OpId>,
        have: Vec<OpId>,
        max_bytes: usize,
    ) -> Result<(Vec<SignedOp>, Vec<OpId>), ReplicaError> {
        if !self.seeds(repo) {
            return Err(ReplicaError::NotFound);
        }
        self.repos
            .ops_since(repo, want, have, max_bytes)
            .await
            .map_err(replica_error)
    }

    async fn offer(&self, repo: RepoId, ops: Vec<SignedOp>) -> Result<Offered, ReplicaError> {
        // Held here at all (from its summary: nothing is loaded to answer).
        let known = self.repos.heads(repo).is_some();
        let wanted = if known {
            self.seeds(repo)
        } else {
            // A repository new to this node: its creation, in the batch, names it.
            ops.iter().any(|op| match &op.op().payload {
                Payload::CreateRepo { owner, name, .. } => {
                    op.op().repo == repo && self.seed.covers(owner, name)
                }
                _ => false,
            })
        };
        if !wanted {
            return Err(ReplicaError::NotFound);
        }
        let inserted = self
            .repos
            .insert_remote(repo, ops)
            .await
            .map_err(replica_error)?;
        Ok(Offered {
            applied: inserted.applied,
            duplicates: inserted.duplicates,
            rejected: inserted
                .rejected
                .into_iter()
                .map(|(id, why)| (id, why.to_string()))
                .chain(
                    inserted
                        .orphaned
                        .into_iter()
                        .map(|id| (id, "descends from a rejected operation".to_owned())),
                )
                .collect(),
            needs_objects: inserted.needs_objects,
            missing: inserted.missing,
        })
    }

    fn ref_tips(&self, repo: RepoId) -> Vec<ObjectId> {
        self.repos.ref_tips(repo)
    }

    async fn write_pack(
        &self,
        repo: RepoId,
        wants: Vec<ObjectId>,
        haves: Vec<ObjectId>,
        dest: &Path,
    ) -> Result<u64, ReplicaError> {
        if !self.seeds(repo) {
            return Err(ReplicaError::NotFound);
        }
        let git = self.repos.git().clone();
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let repo = git
                .open_repo(&repo.to_string())
                .map_err(|_| ReplicaError::NotFound)?;
            let wants: Vec<[u8; 20]> = wants.iter().map(|w| *w.as_bytes()).collect();
            let haves: Vec<[u8; 20]> = haves.iter().map(|h| *h.as_bytes()).collect();
            let tmp = dest.with_extension("tmp");
            let file = std::fs::File::create(&tmp)
                .map_err(|e| ReplicaError::Internal(format!("{}: {e}", tmp.display())))?;
            let mut out = std::io::BufWriter::new(file);
            let written =
                guts_git::serve::replicate::pack_for_peer(&repo, &wants, &haves, &mut out);
            drop(out);
            match written {
                Ok(stats) => {
                    std::fs::rename(&tmp, &dest)
                        .map_err(|e| ReplicaError::Internal(format!("{}: {e}", dest.display())))?;
                    Ok(stats.bytes)
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    Err(serve_error(e, ReplicaError::BadRequest))
                }
            }
        })
        .await
        .map_err(|e| ReplicaError::Internal(format!("pack task failed: {e}")))?
    }

    fn accounts_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.accounts.changes()
    }

    fn accounts_digest(&self) -> [u8; 32] {
        self.accounts.replication_digest().unwrap_or_default()
    }

    fn accounts_page(
        &self,
        after: Option<&str>,
    ) -> Result<(Vec<u8>, Option<String>), ReplicaError> {
        self.accounts
            .export_sealed(after, ACCOUNTS_PAGE_BYTES)
            .map_err(|e| ReplicaError::Internal(e.to_string()))
    }

    async fn import_accounts(&self, sealed: Vec<u8>) -> Result<usize, ReplicaError> {
        let changed = self
            .accounts
            .import_sealed(&sealed)
            .await
            .map_err(|e| match e {
                AccountError::Page(PageError::NotOurs | PageError::Version(_)) => {
                    ReplicaError::OtherCluster
                }
                AccountError::Page(e) => ReplicaError::Invalid(e.to_string()),
                other => ReplicaError::Internal(other.to_string()),
            })?;
        if changed > 0 {
            // A user or membership may have arrived after the repositories it binds to
            // its login: derive the names again (off the async workers: store reads).
            let repos = self.repos.clone();
            let _ = tokio::task::spawn_blocking(move || repos.rebind()).await;
        }
        Ok(changed)
    }

    async fn ingest_pack(&self, repo: RepoId, path: &Path) -> Result<(), ReplicaError> {
        let git = self.repos.git().clone();
        let path = path.to_path_buf();
        let max_object_bytes = self.max_object_bytes;
        tokio::task::spawn_blocking(move || {
            let handle = git
                .open_repo(&repo.to_string())
                .map_err(|_| ReplicaError::NotFound)?;
            guts_git::serve::replicate::ingest_file(&git, &handle, &path, max_object_bytes)
                .map(|_| ())
                .map_err(|e| serve_error(e, ReplicaError::Invalid))
        })
        .await
        .map_err(|e| ReplicaError::Internal(format!("ingest task failed: {e}")))?
    }
}
