//! Repository state in memory under a budget (`GUTS_CACHE_MB`).
//!
//! Every repository has an [`Entry`] from the moment the node opens: its summary
//! (always in memory, see `summary`) and, once something used it, its engine (DAG and
//! fold) and the view readers share. Loading folds the repository's log (operations
//! are decoded without re-verifying their signatures, see `SignedOp::decode_stored`);
//! when the estimated size of what is loaded passes the budget, the least recently
//! used repositories are dropped back to their summaries, all but the most recently
//! used one (a repository larger than the budget stays while it is the one in use).
//! Nothing is lost by that: the log is the truth, and the next use loads it again.
//!
//! Three rules keep an eviction from racing a write:
//! - only an entry whose append lock is free can be evicted (`try_lock`), so no append,
//!   push or replication batch is between taking and putting back the engine;
//! - nor one with a write queued and not yet durable (`inflight`): its engine already
//!   holds an operation the log does not, and a load now would miss it;
//! - a reader that finds the lock taken loads a view without installing an engine.
//!
//! The estimate counts each operation's encoding twice (the stored bytes and the
//! decoded payload; the folded state names bodies rather than copying them) plus a
//! fixed overhead per operation for the DAG, fold bookkeeping and the state's share,
//! and a state loaded from a checkpoint at [`DECODED_PER_CHECKPOINT_BYTE`] times the
//! checkpoint; `guts_repo_cache_bytes` reports it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use guts_core::RepoId;

use super::summary::Summary;
use super::{Engine, RepoView, Repositories};
use crate::error::StoreError;

/// The default budget (`GUTS_CACHE_MB`'s default, in bytes).
pub const DEFAULT_CACHE_BYTES: u64 = 128 * 1024 * 1024;
/// Fixed bytes per operation besides its encoding: DAG node, fold bookkeeping, and
/// the state's share (a thread or comment in the state's maps, with its sets and
/// title, is about 1.2 kB whatever its body: measured with the scale bench's data,
/// 1,000 issues and comments a repository).
pub(super) const PER_OP_OVERHEAD: usize = 1_500;
/// Bytes a state decoded from a checkpoint takes per byte of the checkpoint. The
/// encoding is dense (ids, lengths); in memory every thread and comment is an entry of
/// a persistent map's node (about half full after the sorted inserts of a decode)
/// with its own sets, vectors and strings. Measured with the scale bench's data: 873
/// states loaded with no eviction held 1.05 GB above the node's baseline for 196 MB
/// of checkpoints, about 5.3 times.
pub(super) const DECODED_PER_CHECKPOINT_BYTE: usize = 6;
/// Eviction frees down to this share of the budget (in percent), so that a node at its
/// budget does not evict on every load.
const LOW_WATER_PERCENT: u64 = 90;

/// Estimated bytes an engine and its view hold.
pub(super) fn estimate(engine: &Engine) -> u64 {
    let per_op = engine.dag.len().saturating_mul(PER_OP_OVERHEAD);
    u64::try_from(engine.ops_bytes.saturating_mul(2).saturating_add(per_op)).unwrap_or(u64::MAX)
}

/// What an entry's append lock guards, once something loaded it.
#[derive(Debug)]
pub(super) enum Loaded {
    /// The DAG and its continuable fold: any operation folds onto it.
    Log(Box<Engine>),
    /// The newest state alone, from a checkpoint and moved on by local appends (whose
    /// writes may not be durable yet): local operations that do not move refs fold
    /// onto it (see `local`); anything else loads the log, once those writes are.
    Frontier(Arc<RepoView>),
}

/// One repository: its engine (guarded for appends, which must see current heads),
/// the latest fold (swapped atomically for readers) and its summary.
///
/// An append takes the engine out of the lock into the blocking pool (folding is CPU
/// work that must not stall the async workers) and puts it back. If that task fails,
/// or the durable write does, the slot is left empty and the next append rebuilds the
/// engine from the stored log, so memory never holds an operation the disk does not.
/// Eviction empties both the slot and the view.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) engine: tokio::sync::Mutex<Option<Loaded>>,
    view: RwLock<Option<Arc<RepoView>>>,
    summary: RwLock<Arc<Summary>>,
    /// Estimated bytes while loaded (what [`Cache::used`] counts for it), else 0.
    pub(super) bytes: AtomicU64,
    /// [`Cache::clock`] at the last use.
    last_used: AtomicU64,
    /// Milliseconds since [`Cache::started`] at the last use.
    last_used_ms: AtomicU64,
    /// Writes queued with the lock released and not yet durable.
    pub(super) inflight: AtomicUsize,
    /// Told when `inflight` drops to 0.
    settled: tokio::sync::Notify,
    /// The version of the newest checkpoint known to be stored (0: none known).
    pub(super) checkpointed: AtomicUsize,
    /// The digest of the state at a version, kept when the state is evicted.
    digest: Mutex<Option<(usize, [u8; 32])>>,
}

impl Entry {
    /// An entry with nothing loaded.
    pub(super) fn unloaded(summary: Summary) -> Entry {
        Entry {
            engine: tokio::sync::Mutex::new(None),
            view: RwLock::new(None),
            summary: RwLock::new(Arc::new(summary)),
            bytes: AtomicU64::new(0),
            last_used: AtomicU64::new(0),
            last_used_ms: AtomicU64::new(0),
            inflight: AtomicUsize::new(0),
            settled: tokio::sync::Notify::new(),
            checkpointed: AtomicUsize::new(0),
            digest: Mutex::new(None),
        }
    }

    /// An entry holding `view` (its engine is put in the slot by the caller).
    pub(super) fn loaded(view: Arc<RepoView>) -> Entry {
        let entry = Entry::unloaded(view.summary.as_ref().clone());
        if let Ok(mut slot) = entry.view.write() {
            *slot = Some(view);
        }
        entry
    }

    /// A write is queued for the log (see [`Entry::inflight`]).
    pub(super) fn begin_write(&self) {
        self.inflight.fetch_add(1, Ordering::AcqRel);
    }

    /// A write queued by [`Entry::begin_write`] is durable, or failed.
    pub(super) fn end_write(&self) {
        if self.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.settled.notify_waiters();
        }
    }

    /// Resolves once no write is on its way to the log: what a fold of the log must
    /// wait for to include them.
    pub(super) async fn settle(&self) {
        loop {
            let notified = self.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inflight.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    pub(super) fn summary(&self) -> Arc<Summary> {
        match self.summary.read() {
            Ok(summary) => summary.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The loaded view, if any (no load, no hit counted).
    pub(super) fn peek(&self) -> Option<Arc<RepoView>> {
        self.view.read().ok().and_then(|v| v.clone())
    }

    /// Makes `view` the one readers see and its summary the one kept, unless a newer
    /// one is already there (pipelined appends finish their fsyncs together and may
    /// publish out of order).
    pub(super) fn publish(&self, view: &Arc<RepoView>) {
        if let Ok(mut current) = self.view.write()
            && current.as_ref().is_none_or(|c| c.version <= view.version)
        {
            *current = Some(view.clone());
        }
        if let Ok(mut summary) = self.summary.write()
            && summary.version <= view.version
        {
            *summary = view.summary.clone();
        }
    }

    /// Drops the view (readers load the state again), returning it.
    pub(super) fn unload_view(&self) -> Option<Arc<RepoView>> {
        self.view.write().ok().and_then(|mut v| v.take())
    }

    /// The digest of the current state, if known without loading it.
    pub(super) fn known_digest(&self) -> Option<[u8; 32]> {
        let version = self.summary().version;
        let kept = self.digest.lock().ok().and_then(|d| *d);
        kept.filter(|(v, _)| *v == version).map(|(_, d)| d)
    }

    pub(super) fn keep_digest(&self, version: usize, digest: [u8; 32]) {
        if let Ok(mut kept) = self.digest.lock() {
            *kept = Some((version, digest));
        }
    }
}

/// Compares the summary kept for `entry` with the one just folded from its log at the
/// same version (a later write may have moved the kept one on): they can only differ
/// by a bug or damage the decoder did not catch, and the log wins. The stored copy is
/// rewritten by the repository's next write.
fn check_summary(id: RepoId, entry: &Entry, folded: &Arc<Summary>) {
    let kept = entry.summary();
    if kept.version == folded.version && !kept.agrees_with(folded) {
        tracing::error!(repo = %id, "the repository's summary disagreed with its log: replaced");
        if let Ok(mut summary) = entry.summary.write() {
            *summary = folded.clone();
        }
    }
}

/// An evicted state whose checkpoint is still to be written.
type Pending = (RepoId, Arc<Entry>, Arc<RepoView>);

/// The budget and what is charged against it.
#[derive(Debug)]
pub(super) struct Cache {
    budget: AtomicU64,
    used: AtomicU64,
    clock: AtomicU64,
    /// One eviction pass at a time.
    evicting: Mutex<()>,
    /// Evicted states held for their checkpoint, and their charge: at most
    /// [`Cache::pending_cap`], beyond which an evicted state is just dropped (its next
    /// load folds the log).
    pending: Mutex<(Vec<Pending>, u64)>,
    /// Told when something is held for its checkpoint (or wants its thread rows).
    pub(super) wanted: tokio::sync::Notify,
    /// Repositories whose thread rows are to be rewritten from their loaded state
    /// (see `rows`), and whether they were found damaged: ids only, at most
    /// [`super::rows::MAX_ROWS_WANTED`].
    pub(super) rows_wanted: Mutex<Vec<(RepoId, bool)>>,
    /// What [`Entry::last_used_ms`] counts from.
    started: Instant,
}

/// The least room for states awaiting their checkpoint, whatever the budget.
const MIN_PENDING_BYTES: u64 = 64 * 1024 * 1024;

impl Cache {
    pub(super) fn new(budget: u64) -> Cache {
        Cache {
            budget: AtomicU64::new(budget),
            used: AtomicU64::new(0),
            clock: AtomicU64::new(0),
            evicting: Mutex::new(()),
            pending: Mutex::new((Vec::new(), 0)),
            wanted: tokio::sync::Notify::new(),
            rows_wanted: Mutex::new(Vec::new()),
            started: Instant::now(),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn pending_cap(&self) -> u64 {
        (self.budget.load(Ordering::Relaxed) / 4).max(MIN_PENDING_BYTES)
    }
}

impl Repositories {
    /// Sets the memory budget for repository state (`GUTS_CACHE_MB`) and evicts down
    /// to it.
    pub fn set_cache_budget(&self, bytes: u64) {
        self.cache.budget.store(bytes, Ordering::Relaxed);
        self.enforce_budget();
    }

    /// Estimated bytes of repository state in memory now.
    pub fn cache_bytes(&self) -> u64 {
        self.cache.used.load(Ordering::Relaxed)
    }

    pub(super) fn touch(&self, entry: &Entry) {
        let now = self.cache.clock.fetch_add(1, Ordering::Relaxed);
        entry.last_used.store(now, Ordering::Relaxed);
        entry
            .last_used_ms
            .store(self.cache.elapsed_ms(), Ordering::Relaxed);
    }

    /// Whether `entry` has not been used for `idle_ms`.
    pub(super) fn idle(&self, entry: &Entry, idle_ms: u64) -> bool {
        let last = entry.last_used_ms.load(Ordering::Relaxed);
        self.cache.elapsed_ms().saturating_sub(last) >= idle_ms
    }

    /// Charges `entry` with `bytes` (replacing what it was charged).
    pub(super) fn charge(&self, entry: &Entry, bytes: u64) {
        self.touch(entry);
        let before = entry.bytes.swap(bytes, Ordering::Relaxed);
        if bytes >= before {
            self.cache.used.fetch_add(bytes - before, Ordering::Relaxed);
        } else {
            self.cache.used.fetch_sub(before - bytes, Ordering::Relaxed);
        }
        self.report_used();
    }

    fn report_used(&self) {
        let used = self.cache.used.load(Ordering::Relaxed);
        self.store
            .metrics()
            .cache_bytes
            .set(i64::try_from(used).unwrap_or(i64::MAX));
    }

    /// Counts a miss; the load starts now.
    pub(super) fn miss(&self) -> Instant {
        self.store.metrics().cache_misses.inc();
        Instant::now()
    }

    /// Records how long the load that started at `started` took.
    pub(super) fn opened(&self, started: Instant) {
        self.store
            .metrics()
            .open_duration
            .observe(started.elapsed().as_secs_f64());
    }

    /// The view of `entry`, loading the repository if it is not in memory. `None` if
    /// it cannot be loaded (the store failed; logged).
    pub(super) fn view_of(&self, id: RepoId, entry: &Arc<Entry>) -> Option<Arc<RepoView>> {
        if let Some(view) = entry.peek() {
            self.store.metrics().cache_hits.inc();
            self.touch(entry);
            return Some(view);
        }
        let started = self.miss();
        let loaded = self.load_view(id, entry);
        self.opened(started);
        match loaded {
            Ok(view) => {
                self.enforce_budget();
                Some(view)
            }
            Err(e) => {
                tracing::error!(repo = %id, error = %e, "cannot load the repository's state");
                None
            }
        }
    }

    fn load_view(&self, id: RepoId, entry: &Arc<Entry>) -> Result<Arc<RepoView>, StoreError> {
        match entry.engine.try_lock() {
            Ok(mut slot) => {
                match slot.as_ref() {
                    // Loaded by a writer meanwhile.
                    Some(Loaded::Log(engine)) => {
                        let view = Arc::new(engine.view());
                        entry.publish(&view);
                        return Ok(view);
                    }
                    Some(Loaded::Frontier(view)) => {
                        entry.publish(view);
                        return Ok(view.clone());
                    }
                    None => {}
                }
                if let Some((view, size)) = self.view_from_checkpoint(id, entry)? {
                    self.charge(entry, size);
                    entry.publish(&view);
                    return Ok(view);
                }
                let engine = self.load_engine(id)?;
                let view = Arc::new(engine.view());
                check_summary(id, entry, &view.summary);
                self.charge(entry, estimate(&engine));
                // An engine is installed only when no write is on its way to the log.
                if entry.inflight.load(Ordering::Acquire) == 0 {
                    *slot = Some(Loaded::Log(Box::new(engine)));
                }
                entry.publish(&view);
                // Folded for want of a usable checkpoint: have one written now, so the
                // next load of this repository decodes it.
                self.hold_for_checkpoint(entry, view.clone());
                Ok(view)
            }
            Err(_) => {
                // A writer holds the lock and will publish its own view; this one
                // serves the reader now.
                if let Some((view, size)) = self.view_from_checkpoint(id, entry)? {
                    self.charge(entry, size);
                    entry.publish(&view);
                    return Ok(view);
                }
                let engine = self.load_engine(id)?;
                let view = Arc::new(engine.view());
                self.charge(entry, estimate(&engine));
                entry.publish(&view);
                Ok(view)
            }
        }
    }

    /// The engine from its slot, or rebuilt from the log if the slot holds none (never
    /// loaded, evicted, left empty by a failed append, or holding a state alone): then
    /// once the writes on their way to the log are durable, so the fold includes them.
    /// The caller holds the slot's lock and puts an engine back (or not).
    pub(super) async fn take_engine(
        &self,
        entry: &Entry,
        slot: &mut Option<Loaded>,
        id: RepoId,
    ) -> Result<Box<Engine>, super::RepoError> {
        if let Some(Loaded::Log(engine)) = slot.take() {
            self.store.metrics().cache_hits.inc();
            self.touch(entry);
            return Ok(engine);
        }
        entry.settle().await;
        let started = self.miss();
        let engine = Box::new(self.load_engine(id)?);
        self.opened(started);
        check_summary(id, entry, &Arc::new(engine.summary()));
        self.charge(entry, estimate(&engine));
        Ok(engine)
    }

    /// Drops the least recently used states until what is loaded fits the budget
    /// (with some room to spare). O(repositories) per pass, and a pass runs only when
    /// the budget is exceeded.
    pub(super) fn enforce_budget(&self) {
        let budget = self.cache.budget.load(Ordering::Relaxed);
        if self.cache.used.load(Ordering::Relaxed) <= budget {
            return;
        }
        let Ok(_pass) = self.cache.evicting.try_lock() else {
            return;
        };
        let low_water = budget / 100 * LOW_WATER_PERCENT;
        let mut loaded: Vec<(u64, Arc<Entry>)> = match self.index.read() {
            Ok(index) => index
                .by_id
                .values()
                .filter(|e| e.bytes.load(Ordering::Relaxed) > 0)
                .map(|e| (e.last_used.load(Ordering::Relaxed), e.clone()))
                .collect(),
            Err(_) => return,
        };
        loaded.sort_unstable_by_key(|(used, _)| *used);
        // The most recently used state stays, even alone over the budget: evicting the
        // repository in use would fold its log again on its next request.
        loaded.pop();
        for (_, entry) in loaded {
            if self.cache.used.load(Ordering::Relaxed) <= low_water {
                break;
            }
            let Ok(mut slot) = entry.engine.try_lock() else {
                continue;
            };
            if entry.inflight.load(Ordering::Acquire) > 0 {
                continue;
            }
            if let Some(view) = entry.unload_view() {
                if let Some(digest) = view.digest.get() {
                    entry.keep_digest(view.version, *digest);
                }
                if !super::checkpoint::covered(&view, entry.checkpointed.load(Ordering::Acquire)) {
                    self.hold_for_checkpoint(&entry, view);
                }
            }
            *slot = None;
            drop(slot);
            self.charge(&entry, 0);
            self.store.metrics().cache_evictions.inc();
        }
    }

    /// Keeps a state whose checkpoint is due (folded from the log, or evicted before
    /// its checkpoint was written) until the next [`Repositories::write_checkpoints`],
    /// if there is room, and wakes the writer of checkpoints.
    fn hold_for_checkpoint(&self, entry: &Arc<Entry>, view: Arc<RepoView>) {
        // The state alone (its engine is dropped) is most of the estimate.
        let bytes = entry.bytes.load(Ordering::Relaxed);
        let cap = self.cache.pending_cap();
        let Ok(mut pending) = self.cache.pending.lock() else {
            return;
        };
        let (held, charged) = &mut *pending;
        // A newer state of the same repository replaces the one held.
        if let Some(at) = held.iter().position(|(id, ..)| *id == view.id) {
            held.swap_remove(at);
        }
        if charged.saturating_add(bytes) <= cap {
            *charged = charged.saturating_add(bytes);
            held.push((view.id, entry.clone(), view));
            self.cache.wanted.notify_one();
        }
    }

    /// Resolves when a state is held for its checkpoint (or was since the last
    /// call): what the writer of checkpoints waits for besides its interval.
    pub async fn checkpoints_wanted(&self) {
        self.cache.wanted.notified().await;
    }

    /// The states held for their checkpoint, handed over.
    pub(super) fn evicted_dirty(&self) -> Vec<Pending> {
        match self.cache.pending.lock() {
            Ok(mut pending) => {
                pending.1 = 0;
                std::mem::take(&mut pending.0)
            }
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
