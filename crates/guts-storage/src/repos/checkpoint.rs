//! Checkpoints of folded state (`REPO_CHECKPOINTS`): a repository's state as its
//! canonical encoding ([`RepoState::encode`]), the number of operations it covers and
//! its digest, so that a read of a repository not in memory decodes one value instead
//! of folding its whole log.
//!
//! The log stays the truth. A checkpoint is written from a published view (so it is
//! never ahead of what is durable), in a transaction of its own, by
//! [`Repositories::write_checkpoints`] (the node runs it every few seconds, on
//! evictions and at shutdown). It is used only if it covers exactly the operations the
//! repository has now (operations are never removed, so an equal count is an equal
//! set), or a prefix of them that the summary's frontier continues (the newest
//! operations were folded at the frontier, and are folded again the same way; see
//! `Summary::frontier`), its bytes hash to its digest (a cut or flipped checkpoint is refused: the
//! encoding's optional sections make some prefixes decode), it decodes, and its header
//! agrees with the repository's summary. Anything else folds the log, and the next
//! pass writes a good checkpoint. A loaded checkpoint serves reads, and local writes
//! that do not move refs fold onto it (see `local`) and only extend the frontier, so an
//! evicted repository needs a new checkpoint only once its frontier outgrows
//! `MAX_REFOLD`; anything else folds the log.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use guts_core::{RepoId, RepoState};

use super::cache::Entry;
use super::{RepoView, Repositories};
use crate::error::StoreError;
use crate::schema::REPO_CHECKPOINTS;

/// Which checkpoints a [`Repositories::write_checkpoints`] pass writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointPass {
    /// The held ones and the loaded states that moved enough (see `periodic_due`) or
    /// moved at the frontier beyond what a load may fold (see [`covered`]) and are
    /// idle, up to about `max_bytes` of checkpoints; the rest wait for the next pass.
    Periodic { max_bytes: usize },
    /// Every state that moved and is not [`covered`]: at shutdown, so the next start
    /// loads them.
    Final,
}

/// Version byte leading a checkpoint.
const CHECKPOINT_FORMAT: u8 = 1;
/// Format byte, operation count, digest.
const HEADER_LEN: usize = 1 + 8 + 32;

/// New operations after which a loaded state's checkpoint is rewritten by the periodic
/// pass, at least; beyond that, only once the repository has doubled since its last
/// checkpoint, and only once it has been left alone for [`PERIODIC_IDLE_MS`].
/// Re-encoding a large busy repository on every pass would hold the store's writer
/// (and every append queued behind it) for the whole state each time; a repository in
/// use is checkpointed when it goes quiet, is evicted or the node stops. A crash costs
/// at most a fold of what moved since.
const PERIODIC_MIN_OPS: usize = 64;
/// See [`PERIODIC_MIN_OPS`].
const PERIODIC_IDLE_MS: u64 = 5_000;

/// The most operations a load folds after a checkpoint (see `Summary::frontier`):
/// beyond that, or when the frontier does not reach back to the stored checkpoint, a new
/// checkpoint is due.
const MAX_REFOLD: usize = 64;

/// Whether loading `view`'s version needs no new checkpoint: the stored one, of
/// `checkpointed` operations, is of this version or one the frontier reaches back to
/// within [`MAX_REFOLD`] operations.
pub(super) fn covered(view: &RepoView, checkpointed: usize) -> bool {
    let frontier = view.summary.frontier.len();
    view.version <= checkpointed
        || (frontier < MAX_REFOLD && view.version.saturating_sub(frontier) <= checkpointed)
}

/// Whether the periodic pass writes a checkpoint of a loaded state at `version` whose
/// last checkpoint is at `checkpointed`.
fn periodic_due(version: usize, checkpointed: usize) -> bool {
    version.saturating_sub(checkpointed) >= PERIODIC_MIN_OPS.max(checkpointed)
}

/// A checkpoint's bytes for `view`. O(state).
pub(super) fn encode(view: &RepoView) -> Vec<u8> {
    let state = view.state.encode();
    let digest = blake3::hash(&state);
    let mut bytes = Vec::with_capacity(HEADER_LEN + state.len());
    bytes.push(CHECKPOINT_FORMAT);
    bytes.extend_from_slice(&(view.version as u64).to_be_bytes());
    bytes.extend_from_slice(digest.as_bytes());
    bytes.extend_from_slice(&state);
    bytes
}

/// Why a stored checkpoint is not used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum Unusable {
    #[error("covers {found} operations, the repository has {expected}")]
    Stale { expected: usize, found: usize },
    #[error("damaged: {0}")]
    Damaged(String),
}

/// The state in `bytes` and the number of operations it covers, if it is a sound
/// checkpoint of between `oldest` and `version` operations.
pub(super) fn decode(
    bytes: &[u8],
    oldest: usize,
    version: usize,
) -> Result<(RepoState, usize), Unusable> {
    let damaged = |why: &str| Unusable::Damaged(why.to_string());
    let (head, state) = bytes
        .split_at_checked(HEADER_LEN)
        .ok_or_else(|| damaged("shorter than its header"))?;
    let (format, rest) = head.split_first().ok_or_else(|| damaged("empty"))?;
    if *format != CHECKPOINT_FORMAT {
        return Err(damaged("unknown format"));
    }
    let (count, digest) = rest.split_at(8);
    let count = <[u8; 8]>::try_from(count)
        .map(u64::from_be_bytes)
        .map_err(|_| damaged("operation count"))?;
    let found = usize::try_from(count).unwrap_or(usize::MAX);
    if found < oldest || found > version {
        return Err(Unusable::Stale {
            expected: version,
            found,
        });
    }
    if blake3::hash(state).as_bytes().as_slice() != digest {
        return Err(damaged("its bytes do not hash to its digest"));
    }
    let state = RepoState::decode(state).map_err(|e| Unusable::Damaged(e.to_string()))?;
    Ok((state, found))
}

impl Repositories {
    /// The view of repository `id` from its checkpoint, if it has a usable one (see
    /// the module documentation); `None` sends the caller to the log.
    pub(super) fn view_from_checkpoint(
        &self,
        id: RepoId,
        entry: &Entry,
    ) -> Result<Option<(Arc<RepoView>, u64)>, StoreError> {
        let summary = entry.summary();
        let read = self.store.read()?;
        let table = read.open_table(REPO_CHECKPOINTS)?;
        let Some(bytes) = table.get(id.as_bytes().as_slice())? else {
            return Ok(None);
        };
        let size = bytes.value().len();
        let oldest = summary.version.saturating_sub(summary.frontier.len());
        let (mut state, found) = match decode(bytes.value(), oldest, summary.version) {
            Ok(decoded) => decoded,
            Err(Unusable::Stale { .. }) => return Ok(None),
            Err(e) => {
                tracing::warn!(repo = %id, error = %e, "checkpoint not used: folding the log");
                return Ok(None);
            }
        };
        drop((bytes, table));
        // The operations after the checkpoint, folded at the frontier as they were.
        let after = summary.frontier.len() - (summary.version - found);
        let tail = summary.frontier.get(after..).unwrap_or_default();
        if let Err(e) = self.fold_frontier(&read, id, &mut state, tail) {
            tracing::warn!(repo = %id, error = %e, "checkpoint not continued: folding the log");
            return Ok(None);
        }
        drop(read);
        if state.header() != summary.header {
            tracing::warn!(repo = %id, "checkpoint disagrees with the summary: folding the log");
            return Ok(None);
        }
        entry.checkpointed.fetch_max(found, Ordering::AcqRel);
        tracing::debug!(repo = %id, version = summary.version, "state loaded from its checkpoint");
        let view = RepoView::from_checkpoint(id, state, summary);
        let decoded = size.saturating_mul(super::cache::DECODED_PER_CHECKPOINT_BYTE);
        Ok(Some((
            Arc::new(view),
            u64::try_from(decoded).unwrap_or(u64::MAX),
        )))
    }

    /// Writes the checkpoints that are due (see [`CheckpointPass`]): those of states held
    /// for one (folded from the log, or evicted before theirs was written), and those
    /// of loaded states that moved enough since their last one. One transaction per
    /// pass, encoded on the blocking pool. Returns how many were written.
    pub async fn write_checkpoints(&self, pass: CheckpointPass) -> Result<usize, StoreError> {
        match self.write_wanted_rows().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(repositories = n, "thread rows rewritten"),
            Err(e) => tracing::warn!(error = %e, "cannot rewrite thread rows"),
        }
        let (max_bytes, every_moved) = match pass {
            CheckpointPass::Periodic { max_bytes } => (max_bytes, false),
            CheckpointPass::Final => (usize::MAX, true),
        };
        let mut due: Vec<(RepoId, Arc<Entry>, Arc<RepoView>)> = self.evicted_dirty();
        if let Ok(index) = self.index.read() {
            for (id, entry) in &index.by_id {
                let checkpointed = entry.checkpointed.load(Ordering::Acquire);
                if let Some(view) = entry.peek()
                    && !covered(&view, checkpointed)
                    && (every_moved
                        || ((periodic_due(view.version, checkpointed)
                            || !view.summary.frontier.is_empty())
                            && self.idle(entry, PERIODIC_IDLE_MS)))
                {
                    due.push((*id, entry.clone(), view));
                }
            }
        }
        // The newest state of each repository, once.
        due.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.version.cmp(&a.2.version)));
        due.dedup_by_key(|(id, ..)| *id);
        let started = Instant::now();
        let mut batch: Vec<(RepoId, Arc<Entry>, usize, Vec<u8>)> = Vec::new();
        let mut bytes_due = 0usize;
        for (id, entry, view) in due {
            if bytes_due >= max_bytes {
                break;
            }
            if view.version <= entry.checkpointed.load(Ordering::Acquire) {
                continue;
            }
            let version = view.version;
            let bytes = tokio::task::spawn_blocking(move || encode(&view))
                .await
                .map_err(|e| StoreError::Corrupt(format!("checkpoint task failed: {e}")))?;
            bytes_due = bytes_due.saturating_add(bytes.len());
            batch.push((id, entry, version, bytes));
        }
        if batch.is_empty() {
            return Ok(0);
        }
        // One transaction (one fsync) for the pass.
        let rows: Arc<Vec<(RepoId, Vec<u8>)>> = Arc::new(
            batch
                .iter_mut()
                .map(|(id, _, _, bytes)| (*id, std::mem::take(bytes)))
                .collect(),
        );
        let written = rows.len();
        self.store
            .write("write_checkpoints", move |txn| {
                let mut table = txn.open_table(REPO_CHECKPOINTS)?;
                for (id, bytes) in rows.iter() {
                    table.insert(id.as_bytes().as_slice(), bytes.as_slice())?;
                }
                Ok(())
            })
            .await?;
        for (_, entry, version, _) in &batch {
            entry.checkpointed.fetch_max(*version, Ordering::AcqRel);
        }
        tracing::debug!(
            written,
            bytes = bytes_due,
            ms = started.elapsed().as_millis() as u64,
            "checkpoints written"
        );
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sound_checkpoint_within_the_frontier_is_used() {
        let state = RepoState::default();
        let encoded = state.encode();
        let digest = blake3::hash(&encoded);
        let mut bytes = vec![CHECKPOINT_FORMAT];
        bytes.extend_from_slice(&7u64.to_be_bytes());
        bytes.extend_from_slice(digest.as_bytes());
        bytes.extend_from_slice(&encoded);
        assert_eq!(decode(&bytes, 7, 7), Ok((state.clone(), 7)));
        // A frontier of two operations reaches back to it.
        assert_eq!(decode(&bytes, 7, 9), Ok((state, 7)));
        assert_eq!(
            decode(&bytes, 8, 9),
            Err(Unusable::Stale {
                expected: 9,
                found: 7
            })
        );
        // Never one ahead of the log.
        assert!(matches!(decode(&bytes, 6, 6), Err(Unusable::Stale { .. })));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], 7, 7).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        assert!(matches!(decode(&flipped, 7, 7), Err(Unusable::Damaged(_))));
        let mut format = bytes;
        format[0] = 9;
        assert!(matches!(decode(&format, 7, 7), Err(Unusable::Damaged(_))));
    }
}
