//! Folding a local operation before it is stored: the first half of
//! [`Repositories::append_checked`].
//!
//! Two ways, by what is loaded (see `cache::Loaded`):
//! - with the log: the repository's DAG and continuable fold (`Fold::append`), loaded
//!   from the stored log if need be. Any operation folds this way.
//! - at the frontier: onto the state alone (`append_at_frontier`), which a checkpoint
//!   gives without reading the log. A local operation names every head as a parent, so
//!   the state is all the rules need, except for ref updates and merges (they read the
//!   history of ref deletions) and an operation stamped before the newest one; those
//!   load the log. A write to a repository evicted since its last use therefore costs a
//!   checkpoint decode, not a replay of its history.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use guts_core::{
    AppendError, FrontierError, Hlc, Keypair, OpId, Operation, Payload, RepoId, RepoState,
    SignedOp, append_at_frontier, folds_at_frontier,
};

use super::cache::{Entry, Loaded, PER_OP_OVERHEAD, estimate};
use super::rows::RowsUpdate;
use super::summary::{MAX_FRONTIER, Summary, thread_state};
use super::{
    Engine, GitAncestry, LazyAncestry, NoAncestry, RepoError, RepoView, Repositories, ThreadCounts,
    counted_thread, needs_ancestry,
};
use crate::error::StoreError;
use crate::schema::OPS;

/// A local operation folded and not yet stored.
pub(super) struct Folded {
    pub(super) op: SignedOp,
    /// The state with it.
    pub(super) view: Arc<RepoView>,
    /// What the entry is charged once it is stored.
    pub(super) size: u64,
    /// The gauge state of the thread it changes, before (see `counted_thread`).
    pub(super) before: Option<(bool, &'static str)>,
    /// The thread whose gauge state it may change, if not the one it opens.
    pub(super) counted: Option<OpId>,
    /// The repository's name before it.
    pub(super) name_before: Option<String>,
    /// What it does to the repository's thread rows.
    pub(super) rows: RowsUpdate,
}

/// The append lock's content, held by [`Repositories::append_checked`].
pub(super) type Slot<'a> = tokio::sync::MutexGuard<'a, Option<Loaded>>;

impl Repositories {
    /// Folds an operation with `payload` by `key` into repository `id`, stamped `at`,
    /// after `check` accepted the state; leaves what it loaded in `slot`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fold_local(
        &self,
        id: RepoId,
        entry: &Entry,
        slot: &mut Slot<'_>,
        key: &Keypair,
        payload: Payload,
        at: Hlc,
        check: impl FnOnce(&RepoState) -> Result<(), RepoError>,
    ) -> Result<Folded, RepoError> {
        match self.frontier_base(id, entry, slot, &payload, at) {
            Some(base) => {
                self.fold_at_frontier(id, entry, slot, base, key, payload, at, check)
                    .await
            }
            None => {
                self.fold_with_log(id, entry, slot, key, payload, at, check)
                    .await
            }
        }
    }

    /// The state to fold `payload` onto at the frontier, if it can be: what the slot
    /// holds, else the published view or the checkpoint of the current version. `None`
    /// sends the operation to the log.
    fn frontier_base(
        &self,
        id: RepoId,
        entry: &Entry,
        slot: &Slot<'_>,
        payload: &Payload,
        at: Hlc,
    ) -> Option<Arc<RepoView>> {
        if !folds_at_frontier(payload) {
            return None;
        }
        let base = match slot.as_ref() {
            Some(Loaded::Log(_)) => return None,
            Some(Loaded::Frontier(view)) => view.clone(),
            None => {
                // With the slot empty, nothing is queued for the log (an append leaves
                // its state in the slot until it is durable; a failed one empties the
                // slot and the view): the published view, if current, is the state.
                if entry.inflight.load(Ordering::Acquire) > 0 {
                    return None;
                }
                let version = entry.summary().version;
                match entry.peek().filter(|v| v.version == version) {
                    Some(view) => {
                        self.store.metrics().cache_hits.inc();
                        view
                    }
                    None => {
                        let started = self.miss();
                        let loaded = self.view_from_checkpoint(id, entry);
                        self.opened(started);
                        match loaded {
                            Ok(Some((view, size))) => {
                                self.charge(entry, size);
                                entry.publish(&view);
                                view
                            }
                            Ok(None) => return None,
                            Err(e) => {
                                tracing::warn!(repo = %id, error = %e, "checkpoint unreadable: folding the log");
                                return None;
                            }
                        }
                    }
                }
            }
        };
        // An operation stamped before the newest one might be before its parents:
        // only the log can tell (the node's clock makes this all but impossible).
        (at >= base.summary.latest).then_some(base)
    }

    /// Folds onto `base` alone (see the module documentation).
    #[allow(clippy::too_many_arguments)]
    async fn fold_at_frontier(
        &self,
        id: RepoId,
        entry: &Entry,
        slot: &mut Slot<'_>,
        base: Arc<RepoView>,
        key: &Keypair,
        mut payload: Payload,
        at: Hlc,
        check: impl FnOnce(&RepoState) -> Result<(), RepoError>,
    ) -> Result<Folded, RepoError> {
        self.touch(entry);
        **slot = Some(Loaded::Frontier(base.clone()));
        check(&base.state)?;
        number_new_thread(&mut payload, &base.state);
        let counted = counted_thread(&payload);
        let name_before = base.state.meta.as_ref().map(|m| m.name.clone());
        let before = counted
            .and_then(|t| base.state.collab.threads.get(&t))
            .map(thread_state);
        let op = Operation {
            repo: id,
            parents: base.heads.clone(),
            author: key.public(),
            timestamp: at,
            payload,
        }
        .sign(key)?;
        let mut state = base.state.clone();
        let newest = base.summary.latest;
        let folded = if needs_ancestry(&op.op().payload) {
            // Opening a pull request asks git once or twice: on the blocking pool.
            let (git, candidate) = (self.git.clone(), op.clone());
            let (back, folded) = tokio::task::spawn_blocking(move || {
                let ancestry = GitAncestry(git.open_repo(&id.to_string()).ok());
                let folded = append_at_frontier(&mut state, id, &candidate, newest, &ancestry);
                (state, folded)
            })
            .await
            .map_err(|e| StoreError::Corrupt(format!("fold task failed: {e}")))?;
            state = back;
            folded
        } else {
            append_at_frontier(&mut state, id, &op, newest, &NoAncestry)
        };
        match folded {
            Ok(()) => {}
            Err(FrontierError::Rejected(rejection)) => return Err(self.refused(rejection)),
            // `frontier_base` let only what folds here through.
            Err(other) => return Err(StoreError::Corrupt(other.to_string()).into()),
        }
        let thread = counted.unwrap_or(op.id());
        let mut counts = base.summary.counts;
        counts.shift(before, state.collab.threads.get(&thread).map(thread_state));
        if state.deleted {
            counts = ThreadCounts::default();
        }
        let latest = base.summary.latest.max(at);
        let kept = base.summary.frontier.len().min(MAX_FRONTIER - 1);
        let mut frontier = Vec::with_capacity(kept + 1);
        let skip = base.summary.frontier.len() - kept;
        frontier.extend(base.summary.frontier.iter().skip(skip).copied());
        frontier.push(op.id());
        let summary = Summary {
            header: state.header(),
            version: base.version.saturating_add(1),
            heads: vec![op.id()],
            latest,
            counts,
            frontier,
        };
        let view = Arc::new(RepoView {
            id,
            state,
            updated_ms: latest.wall_ms,
            version: summary.version,
            heads: summary.heads.clone(),
            summary: Arc::new(summary),
            digest: OnceLock::new(),
        });
        // The next append folds onto this one, durable or not yet.
        **slot = Some(Loaded::Frontier(view.clone()));
        // The state keeps the operation's structure (a title, labels) and names its
        // body: at most its encoding, plus the maps' overhead.
        let grown = op.as_bytes().len() + PER_OP_OVERHEAD;
        let size = entry
            .bytes
            .load(Ordering::Relaxed)
            .saturating_add(u64::try_from(grown).unwrap_or(u64::MAX));
        let rows = RowsUpdate::between(Some((base.version, &base.state.collab.threads)), &view);
        Ok(Folded {
            op,
            view,
            size,
            before,
            counted,
            name_before,
            rows,
        })
    }

    /// Folds with the repository's DAG (see the module documentation).
    #[allow(clippy::too_many_arguments)]
    async fn fold_with_log(
        &self,
        id: RepoId,
        entry: &Entry,
        slot: &mut Slot<'_>,
        key: &Keypair,
        mut payload: Payload,
        at: Hlc,
        check: impl FnOnce(&RepoState) -> Result<(), RepoError>,
    ) -> Result<Folded, RepoError> {
        let engine = self.take_engine(entry, slot, id).await?;
        if let Err(e) = check(engine.fold.state()) {
            **slot = Some(Loaded::Log(engine));
            return Err(e);
        }
        number_new_thread(&mut payload, engine.fold.state());
        let counted = counted_thread(&payload);
        let name_before = engine.fold.state().meta.as_ref().map(|m| m.name.clone());
        // Shares every node with the state it is cloned from: O(1).
        let base_threads = (engine.dag.len(), engine.fold.state().collab.threads.clone());
        let before = counted
            .and_then(|t| engine.fold.state().collab.threads.get(&t))
            .map(thread_state);
        let op = Operation {
            repo: id,
            parents: engine.dag.heads(),
            author: key.public(),
            timestamp: at,
            payload,
        }
        .sign(key);
        let op = match op {
            Ok(op) => op,
            Err(e) => {
                **slot = Some(Loaded::Log(engine));
                return Err(e.into());
            }
        };
        let (git, candidate) = (self.git.clone(), op.clone());
        let fold_one = move |mut engine: Box<Engine>| {
            let ancestry = GitAncestry(git.open_repo(&id.to_string()).ok());
            let Engine { dag, fold, .. } = &mut *engine;
            let appended = fold.append(dag, candidate, &ancestry);
            (engine, appended)
        };
        // Only ref-moving payloads ask git about ancestry (disk reads, and a long walk
        // at worst): those fold on the blocking pool. The rest (issues, comments,
        // settings) fold in microseconds, here, with no repository opened.
        let (mut engine, appended) = if needs_ancestry(&op.op().payload) {
            tokio::task::spawn_blocking(move || fold_one(engine))
                .await
                .map_err(|e| StoreError::Corrupt(format!("fold task failed: {e}")))?
        } else {
            let mut engine = engine;
            let appended = engine.fold.append(&mut engine.dag, op.clone(), &NoAncestry);
            (engine, appended)
        };
        if appended.is_ok() {
            engine.note(&op);
            let thread = counted.unwrap_or(op.id());
            let after = engine
                .fold
                .state()
                .collab
                .threads
                .get(&thread)
                .map(thread_state);
            engine.counts.shift(before, after);
            if engine.fold.state().deleted {
                engine.counts = ThreadCounts::default();
            }
        }
        let view = Arc::new(engine.view());
        let size = estimate(&engine);
        **slot = Some(Loaded::Log(engine));
        match appended {
            Ok(()) => {}
            Err(AppendError::Rejected(rejection)) => return Err(self.refused(rejection)),
            Err(other) => return Err(StoreError::Corrupt(other.to_string()).into()),
        }
        let rows = RowsUpdate::between(Some((base_threads.0, &base_threads.1)), &view);
        Ok(Folded {
            op,
            view,
            size,
            before,
            counted,
            name_before,
            rows,
        })
    }
}

impl Repositories {
    /// Folds the stored operations `ops` (oldest first) onto `state` at the frontier,
    /// as [`Repositories::fold_at_frontier`] folded them when they were appended: how
    /// a checkpoint older than the summary is brought up to it (see
    /// `Summary::frontier`). An error means the log must be folded instead.
    pub(super) fn fold_frontier(
        &self,
        read: &redb::ReadTransaction,
        id: RepoId,
        state: &mut RepoState,
        ops: &[OpId],
    ) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let table = read.open_table(OPS)?;
        let ancestry = LazyAncestry {
            git: &self.git,
            id,
            repo: std::cell::OnceCell::new(),
        };
        for op_id in ops {
            let Some(bytes) = table.get(op_id.as_bytes().as_slice())? else {
                return Err(StoreError::Corrupt(format!(
                    "repository {id}: operation {op_id} missing"
                )));
            };
            let op = SignedOp::decode_stored(bytes.value(), op_id)
                .map_err(|e| StoreError::Corrupt(format!("stored operation {op_id}: {e}")))?;
            // It was stamped no earlier than everything before it when it was folded.
            append_at_frontier(state, id, &op, op.op().timestamp, &ancestry).map_err(|e| {
                StoreError::Corrupt(format!(
                    "operation {op_id} does not continue the checkpoint: {e}"
                ))
            })?;
        }
        Ok(())
    }
}

/// An `OpenIssue` or `OpenPull` proposing number 0 is given the next free number at
/// the heads it names, so concurrent requests to one node never race for a number.
fn number_new_thread(payload: &mut Payload, state: &RepoState) {
    if let Payload::OpenIssue { number, .. } | Payload::OpenPull { number, .. } = payload
        && *number == 0
    {
        *number = state.collab.next_number();
    }
}
