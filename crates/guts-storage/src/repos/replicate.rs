//! Replication's side of repositories: what a node tells peers (heads, operations they
//! lack, ref tips) and how it takes operations from them (`insert_remote`).
//!
//! Everything here keeps one property: two nodes that end up holding the same set of
//! operations (and the git objects they name) hold byte-identical state, whatever
//! batches and orders the operations came in. So an operation from a peer is stored
//! whenever every node would store it, and only refused when every node would refuse
//! it ([`is_permanent`]); the fold, which is a function of the set, does the rest.
//!
//! Remote operations can land anywhere in the topological order, so in general a batch
//! means a fold from scratch of the repository (O(n) in its operations, plus git
//! ancestry for its ref updates). The common case of live replication — a peer's new
//! operation that names exactly our heads as parents — is last in the order, as a local
//! append is, and is folded incrementally (`Fold::append`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use guts_core::hlc::MAX_CLOCK_DRIFT_MS;
use guts_core::{
    Fold, ObjectId, OpId, Payload, Rejection, RepoDag, RepoId, RepoState, Role, SignedOp,
};
use redb::ReadableTable as _;

use super::dead_letters::{self, Dead};
use super::{
    Engine, Entry, GitAncestry, RepoError, RepoView, Repositories, name_key, now_ms, publish,
    thread_state,
};
use crate::error::StoreError;
use crate::git::GitRepo;
use crate::metrics::ReasonLabels;
use crate::schema::{OPS, REJECTED, REPO_NAMES, REPO_OPS};

/// What [`Repositories::insert_remote`] did with a batch of operations from a peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteInsert {
    /// New operations stored and folded (including those the fold records as rejected
    /// for an order-dependent reason: every node holding them must hold them too).
    pub applied: usize,
    /// Operations already held (or repeated within the batch).
    pub duplicates: usize,
    /// Operations refused for good ([`is_permanent`]): not stored, written to the
    /// dead-letter log, counted in `guts_operations_rejected_total{reason}`. A peer
    /// that sends these relays forged authority or malformed payloads.
    pub rejected: Vec<(OpId, Rejection)>,
    /// Operations of the batch that descend from a rejected one: they can never become
    /// complete here, so they are not stored either (dead-lettered with reason code
    /// `rejected_ancestor`).
    pub orphaned: Vec<OpId>,
    /// Git objects that operations of the batch move refs to and this node lacks,
    /// sorted. Those operations and their descendants in the batch were not applied
    /// (everything else was): fetch a pack of these and offer the batch again.
    pub needs_objects: Vec<ObjectId>,
    /// Parents named by operations of the batch that are neither held here nor in the
    /// batch, sorted. The operations waiting on them were not stored: fetch these (and
    /// their ancestors) and offer again.
    pub missing: Vec<OpId>,
}

/// One repository as admin replication status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoStatus {
    pub id: RepoId,
    /// The owner it is served under ([`Repositories::served`]), or as created when
    /// deleted.
    pub owner: String,
    /// The name it is served under ([`Repositories::served`]), or as created when
    /// deleted.
    pub name: String,
    pub deleted: bool,
    /// Operations held (complete DAG size).
    pub ops: usize,
    /// The DAG's heads, sorted.
    pub heads: Vec<OpId>,
    /// [`RepoState::digest`]: equal on two nodes exactly when they agree.
    pub digest: [u8; 32],
    /// Wall-clock milliseconds of the newest operation.
    pub updated_ms: u64,
}

/// Whether the fold refused an operation for a reason fixed by the operation itself and
/// its causal past, so that every node folding *any* set of operations containing it
/// refuses it too. Only those are dropped (not stored, dead-lettered); every other
/// rejection depends on where concurrent operations land in the order, and the node
/// that made the operation accepted it, so it is stored and the fold records the
/// rejection deterministically. Reviewed against guts-core's fold and collab rules:
///
/// - `CreateWithParents`, `RepoIdMismatch`: the payload, parents and id alone.
/// - `InvalidName`, `ReservedRef`, `EmptyRefUpdate`, `InvalidText`: validation of the
///   payload's own fields, which every accepting path runs. Except for `MergePull`,
///   whose ref name is the pull request's base from the state (cannot fail today; kept
///   out so a change there cannot make this list wrong).
/// - `TooMany`: counts of the payload's lists, except `AssignThread`, which counts the
///   thread's assignees (state) plus the payload's.
/// - `OwnerImmutable`, `AdminRequiresOwner`: the roles in the causal-past ACL.
/// - `NotPermitted` requiring `Write` or more: the author's role is always read from
///   the ACL of the causal past (whose accepted ACL operations are themselves decided by
///   their causal pasts, deletion aside, which rejects everything after it anyway).
///   Except on `Comment` and `Review`, where a lock — state, which a concurrent edit
///   changes — raises the requirement to `Write`. `NotPermitted` requiring `Read`
///   comes from the repository's visibility, which a concurrent `UpdateRepo` changes.
///
/// Everything else (`NoRepo`, `RepoDeleted`, `AlreadyCreated`, `NonFastForward`,
/// `Protected`, `RefPathConflict`, thread and review rules, …) depends on the state at
/// the operation's place in the global order: stored.
pub(crate) fn is_permanent(payload: &Payload, rejection: &Rejection) -> bool {
    match rejection {
        Rejection::CreateWithParents
        | Rejection::RepoIdMismatch
        | Rejection::OwnerImmutable
        | Rejection::AdminRequiresOwner
        | Rejection::InvalidText { .. }
        | Rejection::BeforeParents { .. } => true,
        Rejection::InvalidName { .. } | Rejection::ReservedRef | Rejection::EmptyRefUpdate => {
            !matches!(payload, Payload::MergePull { .. })
        }
        Rejection::TooMany { .. } => !matches!(payload, Payload::AssignThread { .. }),
        Rejection::NotPermitted { required, .. } => {
            *required >= Role::Write
                && !matches!(payload, Payload::Comment { .. } | Payload::Review { .. })
        }
        _ => false,
    }
}

/// The git objects an operation moves a ref to. Folding it asks git about their
/// ancestry, and the answer must be the same on every node, so it takes effect only
/// once they are present (DESIGN section 4). Every other object an operation names
/// (a review's commit, a merge's head) is recorded, never walked.
fn ref_targets(payload: &Payload) -> Option<ObjectId> {
    match payload {
        Payload::UpdateRef { new: Some(new), .. } | Payload::MergePull { new, .. } => Some(*new),
        _ => None,
    }
}

/// Whether the batch holds the creation of repository `id`: a root `CreateRepo` whose
/// fields derive the id.
fn creates(ops: &[SignedOp], id: RepoId) -> bool {
    ops.iter().any(|op| {
        let o = op.op();
        match &o.payload {
            Payload::CreateRepo { owner, name, .. } => {
                o.parents.is_empty() && RepoId::derive(&o.author, owner, name, o.timestamp) == id
            }
            _ => false,
        }
    })
}

/// Orders the operations of a batch that are not held yet, parents first (Kahn's
/// algorithm, smallest `(timestamp, id)` first among the ready, as the fold orders), and
/// splits off those that cannot be complete: a parent neither in `dag` nor in the batch,
/// or such an operation among their ancestors. Returns the complete ones in order and
/// the absent parents.
fn order_batch(
    dag: &RepoDag,
    mut fresh: BTreeMap<OpId, SignedOp>,
) -> (Vec<SignedOp>, BTreeSet<OpId>) {
    let mut indegree: HashMap<OpId, usize> = HashMap::with_capacity(fresh.len());
    let mut children: HashMap<OpId, Vec<OpId>> = HashMap::new();
    let mut blocked: HashSet<OpId> = HashSet::new();
    let mut missing = BTreeSet::new();
    let mut ready = BinaryHeap::new();
    for (id, op) in &fresh {
        let mut waiting = 0;
        for parent in &op.op().parents {
            if fresh.contains_key(parent) {
                waiting += 1;
                children.entry(*parent).or_default().push(*id);
            } else if !dag.is_complete(parent) {
                missing.insert(*parent);
                blocked.insert(*id);
            }
        }
        if waiting == 0 {
            ready.push(Reverse((op.op().timestamp, *id)));
        }
        indegree.insert(*id, waiting);
    }
    let mut order = Vec::with_capacity(fresh.len());
    while let Some(Reverse((_, id))) = ready.pop() {
        let is_blocked = blocked.contains(&id);
        for child in children.get(&id).into_iter().flatten() {
            if is_blocked {
                blocked.insert(*child);
            }
            if let Some(count) = indegree.get_mut(child) {
                *count = count.saturating_sub(1);
                if *count == 0
                    && let Some(op) = fresh.get(child)
                {
                    ready.push(Reverse((op.op().timestamp, *child)));
                }
            }
        }
        if !is_blocked && let Some(op) = fresh.remove(&id) {
            order.push(op);
        }
    }
    (order, missing)
}

/// What [`plan`] decided about a batch.
#[derive(Debug, Default)]
struct Plan {
    /// New operations to store, parents first (all folded into the engine).
    stored: Vec<SignedOp>,
    /// Refused for good, or descending from such an operation: for the dead-letter log.
    dead: Vec<Dead>,
    /// Whether the repository was folded from scratch (then any thread may have
    /// changed), rather than only appended to.
    refolded: bool,
    result: RemoteInsert,
}

/// The CPU (and git read) part of [`Repositories::insert_remote`], on the blocking
/// pool: dedup, completeness, the objects gate, and the fold, leaving in `engine` the
/// DAG and fold with every operation of `Plan::stored`. `repo` is the repository's git
/// directory (`None` while it is being created: then nothing that needs objects
/// passes); `gate` is false for a deleted repository, whose objects are gone for good.
fn plan(
    mut engine: Box<Engine>,
    ops: Vec<SignedOp>,
    repo: Option<GitRepo>,
    gate: bool,
) -> Result<(Box<Engine>, Plan), StoreError> {
    let mut plan = Plan::default();
    let mut fresh = BTreeMap::new();
    for op in ops {
        if engine.dag.contains(&op.id()) || fresh.contains_key(&op.id()) {
            plan.result.duplicates += 1;
        } else {
            fresh.insert(op.id(), op);
        }
    }
    let (complete, missing) = order_batch(&engine.dag, fresh);
    plan.result.missing = missing.into_iter().collect();

    // The objects gate: an operation that moves a ref to an absent object waits, and
    // so does everything of the batch that descends from it.
    let mut held_back: HashSet<OpId> = HashSet::new();
    let mut needs = BTreeSet::new();
    let mut candidates = Vec::with_capacity(complete.len());
    for op in complete {
        let absent = ref_targets(&op.op().payload)
            .filter(|_| gate)
            .filter(|o| !repo.as_ref().is_some_and(|r| r.has_object(o.as_bytes())));
        let blocked = op.op().parents.iter().any(|p| held_back.contains(p));
        if let Some(object) = absent {
            needs.insert(object);
        }
        if blocked || absent.is_some() {
            held_back.insert(op.id());
        } else {
            candidates.push(op);
        }
    }
    plan.result.needs_objects = needs.into_iter().collect();
    if candidates.is_empty() {
        return Ok((engine, plan));
    }

    let ancestry = GitAncestry(repo);
    let mut candidates = candidates.into_iter().peekable();
    // Live replication: an operation naming exactly our heads is last in the order and
    // folds incrementally. Anything the rules refuse there (rare: the author's node
    // accepted it at these very heads) goes the general way below.
    while let Some(op) = candidates.peek() {
        if op.op().parents != engine.dag.heads() {
            break;
        }
        let Engine { dag, fold, .. } = &mut *engine;
        if fold.append(dag, op.clone(), &ancestry).is_err() {
            break;
        }
        if let Some(op) = candidates.next() {
            plan.stored.push(op);
        }
    }
    let mut rest: Vec<SignedOp> = candidates.collect();
    if !rest.is_empty() {
        for op in &rest {
            engine
                .dag
                .insert(op.clone())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        // Defensive: every one is complete by construction.
        rest.retain(|op| engine.dag.is_complete(&op.id()));
        plan.refolded = true;
        loop {
            let fold = Fold::new(&engine.dag, &ancestry);
            let refused: BTreeMap<OpId, Rejection> = rest
                .iter()
                .filter_map(|op| {
                    let rejection = fold.state().rejected.get(&op.id())?;
                    is_permanent(&op.op().payload, rejection).then(|| (op.id(), rejection.clone()))
                })
                .collect();
            if refused.is_empty() {
                engine.fold = fold;
                break;
            }
            // Drop them and their descendants (parents come first in `rest`), rebuild
            // the DAG without them and fold again. Dropping cannot make another
            // operation permanently refused: that depends on its causal past alone,
            // which holds none of them. The loop runs twice at most.
            let mut dropped: HashSet<OpId> = HashSet::new();
            let mut kept = Vec::with_capacity(rest.len());
            for op in rest {
                if let Some(rejection) = refused.get(&op.id()) {
                    plan.result.rejected.push((op.id(), rejection.clone()));
                    dropped.insert(op.id());
                    plan.dead.push(Dead::rejected(op, rejection));
                } else if let Some(parent) = op
                    .op()
                    .parents
                    .iter()
                    .find(|p| dropped.contains(*p))
                    .copied()
                {
                    plan.result.orphaned.push(op.id());
                    dropped.insert(op.id());
                    plan.dead.push(Dead::orphaned(op, parent));
                } else {
                    kept.push(op);
                }
            }
            rest = kept;
            let mut dag = RepoDag::new(engine.dag.repo());
            for op in engine.dag.topological() {
                if !dropped.contains(&op.id()) {
                    dag.insert(op.clone())
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                }
            }
            engine.dag = dag;
        }
        plan.stored.extend(rest);
    }
    let newest = plan.stored.iter().map(|op| op.op().timestamp.wall_ms).max();
    engine.updated_ms = engine.updated_ms.max(newest.unwrap_or(0));
    plan.result.applied = plan.stored.len();
    Ok((engine, plan))
}

/// The operations `want` names and their ancestors, minus `have` and their ancestors,
/// parents first, as many as fit in `max_bytes` of encodings; and the wanted ids not
/// held. See [`Repositories::ops_since`].
fn select_since(
    dag: &RepoDag,
    want: &[OpId],
    have: &[OpId],
    max_bytes: usize,
) -> (Vec<SignedOp>, Vec<OpId>) {
    let mut not_held: Vec<OpId> = want
        .iter()
        .filter(|id| !dag.is_complete(id))
        .copied()
        .collect();
    not_held.sort_unstable();
    not_held.dedup();
    let known = closure(
        dag,
        have.iter().filter(|id| dag.is_complete(id)),
        &HashSet::new(),
    );
    let wanted = closure(
        dag,
        want.iter()
            .filter(|id| dag.is_complete(id) && !known.contains(*id)),
        &known,
    );
    // Kahn's algorithm within `wanted` (parents outside it are held by the asker).
    let mut indegree: HashMap<OpId, usize> = HashMap::with_capacity(wanted.len());
    let mut children: HashMap<OpId, Vec<OpId>> = HashMap::new();
    let mut ready = BinaryHeap::new();
    for id in &wanted {
        let Some(op) = dag.get(id) else { continue };
        let mut waiting = 0;
        for parent in &op.op().parents {
            if wanted.contains(parent) {
                waiting += 1;
                children.entry(*parent).or_default().push(*id);
            }
        }
        if waiting == 0 {
            ready.push(Reverse((op.op().timestamp, *id)));
        }
        indegree.insert(*id, waiting);
    }
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(Reverse((_, id))) = ready.pop() {
        let Some(op) = dag.get(&id) else { continue };
        let size = op.as_bytes().len();
        if bytes.saturating_add(size) > max_bytes {
            break;
        }
        bytes += size;
        out.push(op.clone());
        for child in children.get(&id).into_iter().flatten() {
            if let Some(count) = indegree.get_mut(child) {
                *count = count.saturating_sub(1);
                if *count == 0
                    && let Some(op) = dag.get(child)
                {
                    ready.push(Reverse((op.op().timestamp, *child)));
                }
            }
        }
    }
    (out, not_held)
}

/// `start` and every ancestor of it in `dag`, not descending into `stop`.
fn closure<'a>(
    dag: &RepoDag,
    start: impl Iterator<Item = &'a OpId>,
    stop: &HashSet<OpId>,
) -> HashSet<OpId> {
    let mut seen: HashSet<OpId> = HashSet::new();
    let mut stack: Vec<OpId> = Vec::new();
    for id in start {
        if seen.insert(*id) {
            stack.push(*id);
        }
    }
    while let Some(id) = stack.pop() {
        let Some(op) = dag.get(&id) else { continue };
        for parent in &op.op().parents {
            if !stop.contains(parent) && seen.insert(*parent) {
                stack.push(*parent);
            }
        }
    }
    seen
}

impl Repositories {
    /// Repository `id` as last folded, deleted or not.
    pub fn get(&self, id: RepoId) -> Option<Arc<RepoView>> {
        let entry = self.entry(id).ok()?;
        entry.view.read().ok().map(|v| v.clone())
    }

    /// The heads of repository `id` (sorted), deleted or not; `None` if not held.
    /// Lock-free with respect to appends: read from the published view.
    pub fn heads(&self, id: RepoId) -> Option<Vec<OpId>> {
        self.get(id).map(|view| view.heads.clone())
    }

    /// Heads of every repository held, deleted ones included (their deletion must
    /// replicate), ascending by id, strictly after `after`, at most `limit`: the pages
    /// anti-entropy compares.
    pub fn all_heads(&self, after: Option<RepoId>, limit: usize) -> Vec<(RepoId, Vec<OpId>)> {
        self.views_after(after, limit)
            .into_iter()
            .map(|view| (view.id, view.heads.clone()))
            .collect()
    }

    /// Up to `limit` views, ascending by id, strictly after `after`.
    fn views_after(&self, after: Option<RepoId>, limit: usize) -> Vec<Arc<RepoView>> {
        use std::ops::Bound;
        let Ok(index) = self.index.read() else {
            return Vec::new();
        };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        index
            .by_id
            .range((lower, Bound::Unbounded))
            .filter_map(|(_, entry)| entry.view.read().ok().map(|v| v.clone()))
            .take(limit)
            .collect()
    }

    /// The objects repository `id`'s refs point at — branches, tags and conflict refs,
    /// as the fold says — sorted and deduplicated: what a pack request names as haves.
    pub fn ref_tips(&self, id: RepoId) -> Vec<ObjectId> {
        let Some(view) = self.get(id) else {
            return Vec::new();
        };
        let tips: BTreeSet<ObjectId> = view
            .state
            .refs
            .values()
            .map(|r| r.target)
            .chain(view.state.conflicts.values().copied())
            .collect();
        tips.into_iter().collect()
    }

    /// The digest of repository `id`'s folded state ([`RepoState::digest`]).
    pub fn state_digest(&self, id: RepoId) -> Option<[u8; 32]> {
        self.get(id).map(|view| view.digest())
    }

    /// Replication status of up to `limit` repositories, ascending by id, strictly
    /// after `after`, deleted ones included. Computes each digest not computed yet
    /// (O(state) each).
    pub fn replication_status(&self, after: Option<RepoId>, limit: usize) -> Vec<RepoStatus> {
        self.views_after(after, limit)
            .into_iter()
            .filter_map(|view| {
                let meta = view.state.meta.as_ref()?;
                let served = self.served(view.id);
                Some(RepoStatus {
                    id: view.id,
                    owner: served
                        .as_ref()
                        .map_or_else(|| meta.owner.clone(), |s| s.owner.clone()),
                    name: served.map_or_else(|| meta.name.clone(), |s| s.name),
                    deleted: view.state.deleted,
                    ops: view.version,
                    heads: view.heads.clone(),
                    digest: view.digest(),
                    updated_ms: view.updated_ms,
                })
            })
            .collect()
    }

    /// The operations `want` names and all their ancestors, minus everything reachable
    /// from `have` (ids not held here are ignored), parents before children (the fold's
    /// order restricted to them), stopping before the encodings would exceed
    /// `max_bytes`; and the wanted ids not held here. Deleted repositories answer too.
    ///
    /// Holds the repository's append lock only to walk the DAG and clone what is sent
    /// (at most `max_bytes` of operations): O(operations of the repository) at worst,
    /// no I/O.
    pub async fn ops_since(
        &self,
        id: RepoId,
        want: Vec<OpId>,
        have: Vec<OpId>,
        max_bytes: usize,
    ) -> Result<(Vec<SignedOp>, Vec<OpId>), RepoError> {
        let entry = self.entry(id)?;
        let mut slot = entry.engine.lock().await;
        let engine = self.take_engine(&mut slot, id)?;
        let selected = select_since(&engine.dag, &want, &have, max_bytes);
        *slot = Some(engine);
        Ok(selected)
    }

    /// Takes operations received from a peer (signatures were verified by decoding)
    /// into repository `id`. Idempotent, and convergent: nodes offered the same
    /// operations in any batches and orders end with identical state.
    ///
    /// - Operations of another repository: `RepoError::Invalid`, nothing done.
    /// - A repository not held here is created (git directory, name claim) when the
    ///   batch carries its `CreateRepo`; without it, the batch's absent parents come back
    ///   in `missing` (`RepoError::Invalid` if there are none: nothing could ever
    ///   complete it).
    /// - Held operations are duplicates; operations with absent parents are not stored
    ///   (`missing`).
    /// - The objects gate: an operation that moves a ref to an object absent from git,
    ///   and its descendants in the batch, are not applied (`needs_objects`); the rest
    ///   of the batch is, so that a new repository exists to receive the pack.
    /// - The rest is folded with the repository; operations refused for good
    ///   ([`is_permanent`]) and their descendants are dead-lettered and not stored;
    ///   everything else is stored, in one durable write, then folded state is
    ///   published, git's refs follow, names, counts and gauges are refreshed, and
    ///   subscribers are told.
    ///
    /// Holds the repository's append lock throughout, so git's refs change in the
    /// fold's order and local appends see the result.
    pub async fn insert_remote(
        &self,
        id: RepoId,
        ops: Vec<SignedOp>,
    ) -> Result<RemoteInsert, RepoError> {
        if let Some(stray) = ops.iter().find(|op| op.op().repo != id) {
            return Err(RepoError::Invalid(format!(
                "operation {} belongs to repository {}, not {id}",
                stray.id(),
                stray.op().repo
            )));
        }
        let ops = self.refuse_from_the_future(ops);
        if ops.is_empty() {
            return Ok(RemoteInsert::default());
        }
        if let Ok(entry) = self.entry(id) {
            return self.insert_existing(id, &entry, ops).await;
        }
        let creating = self.creating.lock().await;
        if let Ok(entry) = self.entry(id) {
            drop(creating);
            return self.insert_existing(id, &entry, ops).await;
        }
        if !creates(&ops, id) {
            let (_, missing) = order_batch(
                &RepoDag::new(id),
                ops.into_iter().map(|op| (op.id(), op)).collect(),
            );
            if missing.is_empty() {
                return Err(RepoError::Invalid(format!(
                    "operations of unknown repository {id} without its creation"
                )));
            }
            return Ok(RemoteInsert {
                missing: missing.into_iter().collect(),
                ..RemoteInsert::default()
            });
        }
        let engine = Box::new(Engine::new(RepoDag::new(id), &super::NoAncestry));
        let entry = Arc::new(Entry {
            engine: tokio::sync::Mutex::new(None),
            view: std::sync::RwLock::new(Arc::new(engine.view())),
        });
        let mut slot = entry.engine.lock().await;
        let result = self
            .insert_locked(id, &entry, &mut slot, engine, ops, true)
            .await;
        drop(slot);
        drop(creating);
        result
    }

    /// Drops the operations stamped more than [`MAX_CLOCK_DRIFT_MS`] ahead of this
    /// node's clock, counted as `guts_operations_rejected_total{reason="ahead_of_clock"}`.
    /// They are not dead letters: the peer still holds them, and once our clock has
    /// caught up the next pull takes them (their descendants wait until then, reported
    /// missing). Accepting them now would let a skewed author win every conflict and drag
    /// our clock forward.
    fn refuse_from_the_future(&self, ops: Vec<SignedOp>) -> Vec<SignedOp> {
        let limit = now_ms().saturating_add(MAX_CLOCK_DRIFT_MS);
        let (kept, ahead): (Vec<SignedOp>, Vec<SignedOp>) = ops
            .into_iter()
            .partition(|op| op.op().timestamp.wall_ms <= limit);
        if let Some(first) = ahead.first() {
            self.store
                .metrics()
                .rejected
                .get_or_create(&ReasonLabels {
                    reason: "ahead_of_clock",
                })
                .inc_by(ahead.len() as u64);
            tracing::warn!(
                op = %first.id(),
                stamped_ms = first.op().timestamp.wall_ms,
                limit_ms = limit,
                refused = ahead.len(),
                "refused operations stamped ahead of this node's clock"
            );
        }
        kept
    }

    async fn insert_existing(
        &self,
        id: RepoId,
        entry: &Arc<Entry>,
        ops: Vec<SignedOp>,
    ) -> Result<RemoteInsert, RepoError> {
        let mut slot = entry.engine.lock().await;
        let engine = self.take_engine(&mut slot, id)?;
        self.insert_locked(id, entry, &mut slot, engine, ops, false)
            .await
    }

    /// [`Repositories::insert_remote`] with the repository's append lock held (`slot`)
    /// and its engine taken out of it. `is_new`: the repository is not in the index
    /// yet, and `entry` is installed there once something is stored.
    async fn insert_locked(
        &self,
        id: RepoId,
        entry: &Arc<Entry>,
        slot: &mut Option<Box<Engine>>,
        engine: Box<Engine>,
        ops: Vec<SignedOp>,
        is_new: bool,
    ) -> Result<RemoteInsert, RepoError> {
        let before = engine.fold.state().clone();
        let was_live = !is_new && !before.deleted;
        // A deleted repository's objects are gone: its operations cannot wait for
        // them (they would wait forever, and the operation sets would never agree).
        let gate = is_new || !before.deleted;
        let git = self.git.clone();
        let (engine, plan) = tokio::task::spawn_blocking(move || {
            let repo = if is_new {
                None
            } else {
                git.open_repo(&id.to_string()).ok()
            };
            plan(engine, ops, repo, gate)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("fold task failed: {e}")))??;
        let Plan {
            stored,
            dead,
            refolded,
            mut result,
        } = plan;
        for letter in &dead {
            self.count_dead(letter);
        }
        let received_ms = now_ms();
        let letters = dead
            .iter()
            .map(|letter| letter.record(id, received_ms))
            .collect::<Result<Vec<_>, StoreError>>()?;

        let state = engine.fold.state();
        // A new repository is stored only with its creation accepted.
        if stored.is_empty() || (is_new && state.meta.is_none()) {
            if !is_new {
                *slot = Some(engine);
            }
            result.applied = 0;
            if !letters.is_empty() {
                self.store
                    .write("dead_letter", move |txn| dead_letters::put(txn, &letters))
                    .await?;
            }
            return Ok(result);
        }
        let now_deleted = state.deleted;
        let bound = self.bound(state);
        let key = state
            .meta
            .as_ref()
            .map(|m| name_key(&super::served_owner(m, bound), &m.name));
        if is_new
            && !now_deleted
            && let Some(meta) = &state.meta
        {
            // Visible only when complete, before its operations commit (as a local
            // creation); a failed commit leaves an orphan that the next open removes.
            let (git, dir) = (self.git.clone(), id.to_string());
            let branch = format!("refs/heads/{}", meta.default_branch);
            tokio::task::spawn_blocking(move || git.create(&dir, &branch))
                .await
                .map_err(|e| StoreError::Corrupt(format!("git task: {e}")))??;
        }
        let claim = key.clone().filter(|_| is_new && !now_deleted);
        let release = key.filter(|_| was_live && now_deleted);
        let names_change = claim.is_some() || release.is_some();
        let encoded: Vec<(OpId, Vec<u8>)> =
            stored.iter().map(|op| (op.id(), op.encode())).collect();
        let written = self
            .store
            .write("insert_remote", move |txn| {
                let mut table = txn.open_table(OPS)?;
                let mut members = txn.open_multimap_table(REPO_OPS)?;
                let mut rejected = txn.open_table(REJECTED)?;
                for (op_id, bytes) in &encoded {
                    table.insert(op_id.as_bytes().as_slice(), bytes.as_slice())?;
                    members.insert(id.as_bytes().as_slice(), op_id.as_bytes().as_slice())?;
                    // Held now: no longer a dead letter (if it ever was).
                    rejected.remove(op_id.as_bytes().as_slice())?;
                }
                drop((table, members, rejected));
                if let Some(key) = &claim {
                    let mut names = txn.open_table(REPO_NAMES)?;
                    if names.get(key.as_str())?.is_none() {
                        names.insert(key.as_str(), id.as_bytes().as_slice())?;
                    }
                }
                if let Some(key) = &release {
                    super::release_name(txn, key, id)?;
                }
                dead_letters::put(txn, &letters)
            })
            .await;
        if let Err(e) = written {
            // The engine holds operations the disk does not: rebuilt from the log by
            // the next append (a new repository is simply not installed).
            *slot = None;
            return Err(e.into());
        }
        self.observe(&stored);

        let view = Arc::new(engine.view());
        *slot = Some(engine);
        if is_new {
            if let Ok(mut current) = entry.view.write() {
                *current = view.clone();
            }
            if let Ok(mut index) = self.index.write() {
                index.by_id.insert(id, entry.clone());
            }
        } else {
            publish(entry, &view);
        }
        if !now_deleted {
            // Still under the append lock, so git's refs change in the fold's order.
            self.sync_git_refs(id, &view.state).await?;
        } else if was_live {
            let (git, dir) = (self.git.clone(), id.to_string());
            // The deletion is durable; the directory goes now, or at the next open.
            let _ = tokio::task::spawn_blocking(move || git.delete(&dir)).await;
        }
        if names_change {
            if let Ok(mut index) = self.index.write() {
                index.set_claim(id, &view.state, bound);
                index.resolve_names();
            }
            self.refresh_count();
        }
        if refolded || !was_live || now_deleted {
            self.move_threads(was_live.then_some(&before), &view.state);
        } else {
            // Appended at the end: only the threads these operations name can have
            // changed, and there is no need to visit every issue of the repository.
            let metrics = self.store.metrics();
            let touched: BTreeSet<OpId> = stored
                .iter()
                .map(|op| super::counted_thread(&op.op().payload).unwrap_or(op.id()))
                .collect();
            for thread in touched {
                let was = before.collab.threads.get(&thread).map(thread_state);
                let is = view.state.collab.threads.get(&thread).map(thread_state);
                metrics.move_thread(was, is);
            }
        }
        self.notify(id);
        Ok(result)
    }

    /// Moves the issue and pull request gauges from `before` (`None`: not counted,
    /// i.e. new or deleted) to `after` (not counted if deleted). O(threads): for
    /// changes that can reach any thread (a fold from scratch, a creation, a deletion).
    fn move_threads(&self, before: Option<&RepoState>, after: &RepoState) {
        let metrics = self.store.metrics();
        let old = before.map(|s| &s.collab.threads);
        let new = (!after.deleted).then_some(&after.collab.threads);
        if let Some(new) = new {
            for (id, thread) in new {
                let was = old.and_then(|o| o.get(id)).map(thread_state);
                metrics.move_thread(was, Some(thread_state(thread)));
            }
        }
        if let Some(old) = old {
            for (id, thread) in old {
                if !new.is_some_and(|n| n.contains_key(id)) {
                    metrics.move_thread(Some(thread_state(thread)), None);
                }
            }
        }
    }

    /// Merges the timestamps of stored remote operations into the node's clock (the
    /// hybrid logical clock's receive rule), so the next local operation orders after
    /// them. A timestamp too far ahead is not adopted.
    fn observe(&self, ops: &[SignedOp]) {
        let Some(latest) = ops.iter().map(|op| op.op().timestamp).max() else {
            return;
        };
        let mut clock = match self.clock.lock() {
            Ok(clock) => clock,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(e) = clock.observe(latest, now_ms()) {
            tracing::debug!(error = %e, "remote timestamp not adopted");
        }
    }

    fn count_dead(&self, letter: &Dead) {
        self.store
            .metrics()
            .rejected
            .get_or_create(&crate::metrics::ReasonLabels {
                reason: letter.code(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use guts_core::{Hlc, Keypair, Operation, ThreadEdit};

    use super::*;
    use crate::metrics::{ReasonLabels, StorageMetrics};
    use crate::repos::{RefCommand, ReplayReport};
    use crate::testing::{commit, open_repos};
    use crate::{Oid, WriterHandle};

    const MAX: usize = 4 << 20;

    /// One node's storage in its own data directory.
    struct Node {
        repos: Repositories,
        writer: Option<WriterHandle>,
        metrics: Arc<StorageMetrics>,
        dir: tempfile::TempDir,
    }

    impl Node {
        fn new() -> Node {
            let dir = tempfile::tempdir().unwrap();
            let (repos, writer, metrics) = open_repos(dir.path());
            Node {
                repos,
                writer: Some(writer),
                metrics,
                dir,
            }
        }

        /// Closes and opens the node's storage again: state comes from the log.
        fn reopen(self) -> Node {
            let Node {
                repos, writer, dir, ..
            } = self;
            drop(repos);
            if let Some(writer) = writer {
                writer.join();
            }
            let (repos, writer, metrics) = open_repos(dir.path());
            Node {
                repos,
                writer: Some(writer),
                metrics,
                dir,
            }
        }

        /// [`Node::reopen`] for a node made by [`bound_node`].
        fn reopen_bound(self, secret: &[u8]) -> Node {
            let Node {
                repos, writer, dir, ..
            } = self;
            drop(repos);
            if let Some(writer) = writer {
                writer.join();
            }
            open_bound(dir, secret).0
        }

        fn rejected(&self, reason: &'static str) -> u64 {
            self.metrics
                .rejected
                .get_or_create(&ReasonLabels { reason })
                .get()
        }

        fn git(&self, id: RepoId) -> crate::GitRepo {
            self.repos.git().open_repo(&id.to_string()).unwrap()
        }

        fn refs(&self, id: RepoId) -> Vec<(String, Oid)> {
            let mut refs = self.git(id).refs().unwrap();
            refs.sort();
            refs
        }
    }

    fn push(name: &str, old: Option<ObjectId>, new: Option<ObjectId>) -> RefCommand {
        RefCommand {
            name: name.into(),
            old,
            new,
        }
    }

    /// Every operation of `id` on `repos`, parents first.
    async fn all_ops(repos: &Repositories, id: RepoId) -> Vec<SignedOp> {
        let heads = repos.heads(id).unwrap();
        let (ops, not_held) = repos
            .ops_since(id, heads, vec![], usize::MAX)
            .await
            .unwrap();
        assert!(not_held.is_empty());
        ops
    }

    /// Copies the git objects of `id` from one node to another (what a pack transfer
    /// does), leaving objects already there alone.
    fn copy_objects(from: &Node, to: &Node, id: RepoId) {
        fn walk(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                let target = to.join(entry.file_name());
                if entry.file_type().unwrap().is_dir() {
                    walk(&entry.path(), &target);
                } else if !target.exists() {
                    std::fs::copy(entry.path(), &target).unwrap();
                }
            }
        }
        let hex = id.to_string();
        walk(
            &from.repos.git().path(&hex).join("objects"),
            &to.repos.git().path(&hex).join("objects"),
        );
    }

    /// Anti-entropy in miniature: `to` asks `from` for what it lacks, page by page,
    /// fetching objects when told to, until it holds everything `from` holds.
    async fn pull(from: &Node, to: &Node, id: RepoId) {
        for _ in 0..32 {
            let want = from.repos.heads(id).unwrap();
            let have = to.repos.heads(id).unwrap_or_default();
            let (ops, not_held) = from.repos.ops_since(id, want, have, MAX).await.unwrap();
            assert!(not_held.is_empty());
            if ops.is_empty() {
                return;
            }
            let result = to.repos.insert_remote(id, ops).await.unwrap();
            assert!(result.rejected.is_empty(), "{result:?}");
            if !result.needs_objects.is_empty() {
                copy_objects(from, to, id);
            }
        }
        panic!("no convergence");
    }

    /// Node A's repository with some history: roles, two branches (so objects are
    /// needed), an issue with a comment, label and close, a pull request, a settings
    /// change.
    async fn history(a: &Node, alice: &Keypair) -> RepoId {
        let repos = &a.repos;
        let view = repos
            .create(alice, "alice", "project", "", false, "main")
            .await
            .unwrap();
        let id = view.id;
        let bob = Keypair::generate();
        repos
            .append(
                id,
                alice,
                Payload::SetRole {
                    user: bob.public(),
                    role: Some(Role::Write),
                },
            )
            .await
            .unwrap();
        let git = a.git(id);
        let c1 = commit(git.gix(), &[], "one");
        let c2 = commit(git.gix(), &[c1], "two");
        let f1 = commit(git.gix(), &[c1], "feature");
        let main = "refs/heads/main";
        for commands in [
            vec![push(main, None, Some(c1))],
            vec![
                push(main, Some(c1), Some(c2)),
                push("refs/heads/feature", None, Some(f1)),
            ],
        ] {
            let done = repos.update_refs(id, &bob, commands, false).await.unwrap();
            assert!(done.iter().all(Result::is_ok), "{done:?}");
        }
        let (_, issue) = repos
            .append_checked(
                id,
                &bob,
                Payload::OpenIssue {
                    number: 0,
                    title: "bug".into(),
                    body: "it breaks".into(),
                    labels: vec!["bug".into()],
                    assignees: vec![],
                },
                |_| Ok(()),
            )
            .await
            .unwrap();
        for payload in [
            Payload::Comment {
                thread: issue,
                body: "confirmed".into(),
            },
            Payload::EditThread {
                thread: issue,
                edit: ThreadEdit {
                    open: Some(false),
                    ..ThreadEdit::default()
                },
            },
            Payload::OpenPull {
                number: 0,
                title: "feature".into(),
                body: String::new(),
                head: "feature".into(),
                base: "main".into(),
                draft: false,
            },
            Payload::UpdateRepo {
                description: Some("a project".into()),
                private: None,
                default_branch: None,
            },
        ] {
            repos.append(id, alice, payload).await.unwrap();
        }
        id
    }

    fn assert_same(a: &Node, b: &Node, id: RepoId) {
        assert_eq!(b.repos.heads(id), a.repos.heads(id));
        assert_eq!(b.repos.state_digest(id), a.repos.state_digest(id));
        assert_eq!(
            b.repos.get(id).unwrap().state.encode(),
            a.repos.get(id).unwrap().state.encode()
        );
        assert_eq!(b.refs(id), a.refs(id));
    }

    #[tokio::test]
    async fn offers_in_any_batches_and_orders_converge() {
        let a = Node::new();
        let alice = Keypair::generate();
        let id = history(&a, &alice).await;
        let ops = all_ops(&a.repos, id).await;
        assert!(ops.len() >= 10, "{}", ops.len());
        let reversed: Vec<SignedOp> = ops.iter().rev().cloned().collect();
        let doubled: Vec<SignedOp> = ops.iter().chain(&ops).cloned().collect();
        let batchings: Vec<(&str, Vec<Vec<SignedOp>>)> = vec![
            ("all at once", vec![ops.clone()]),
            ("all at once, reversed", vec![reversed.clone()]),
            (
                "one at a time",
                ops.iter().map(|op| vec![op.clone()]).collect(),
            ),
            (
                "one at a time, reversed",
                reversed.iter().map(|op| vec![op.clone()]).collect(),
            ),
            (
                "pairs from the end, each twice",
                reversed
                    .chunks(2)
                    .flat_map(|c| [c.to_vec(), c.to_vec()])
                    .collect(),
            ),
            ("duplicated", vec![doubled.clone()]),
            (
                "interleaved thirds",
                vec![
                    ops.iter().skip(1).step_by(3).cloned().collect(),
                    ops.iter().step_by(3).cloned().collect(),
                    ops.iter().skip(2).step_by(3).cloned().collect(),
                ],
            ),
        ];
        for (what, batches) in batchings {
            let b = Node::new();
            let mut results = Vec::new();
            for batch in batches {
                let result = b.repos.insert_remote(id, batch).await.unwrap();
                assert!(result.rejected.is_empty(), "{what}: {result:?}");
                if !result.needs_objects.is_empty() {
                    copy_objects(&a, &b, id);
                }
                results.push(result);
            }
            match what {
                // The repository is created with what needs no objects, so that it can
                // receive them; the first push and all that follows it waits.
                "all at once" => {
                    assert_eq!(results[0].applied, 2, "{:?}", results[0]);
                    assert_eq!(results[0].needs_objects.len(), 3, "{:?}", results[0]);
                }
                "one at a time, reversed" => {
                    assert!(results.iter().rev().skip(1).all(|r| !r.missing.is_empty()));
                }
                _ => {}
            }
            // Whatever waited for parents or objects comes with anti-entropy.
            pull(&a, &b, id).await;
            assert_same(&a, &b, id);
            // Idempotent: everything again is all duplicates.
            let again = b.repos.insert_remote(id, ops.clone()).await.unwrap();
            assert_eq!(again.applied, 0, "{what}");
            assert_eq!(again.duplicates, ops.len(), "{what}");
            // The log is the truth: a reopened node folds the same state.
            let b = b.reopen();
            assert_same(&a, &b, id);
            assert_eq!(b.repos.find("alice", "project").unwrap().id, id, "{what}");
            assert_eq!(b.metrics.repositories.get(), 1);
            let open_pulls = b
                .metrics
                .pulls
                .get_or_create(&crate::metrics::StateLabels { state: "open" })
                .get();
            assert_eq!(open_pulls, 1, "{what}");
        }
    }

    #[tokio::test]
    async fn inserts_keep_gauges_and_notify_subscribers() {
        let (a, b) = (Node::new(), Node::new());
        let alice = Keypair::generate();
        let id = history(&a, &alice).await;
        let mut changes = b.repos.subscribe();
        pull(&a, &b, id).await;
        assert_eq!(changes.recv().await.unwrap().repo, id);
        let gauge = |n: &Node, state: &'static str| {
            n.metrics
                .issues
                .get_or_create(&crate::metrics::StateLabels { state })
                .get()
        };
        assert_eq!(gauge(&b, "closed"), 1);
        assert_eq!(gauge(&b, "open"), 0);
        assert_eq!(b.metrics.repositories.get(), 1);
        // An issue opened and closed on A arrives in one batch at B's heads (folded
        // incrementally): counted once, as closed.
        let (_, issue) = a
            .repos
            .append_checked(
                id,
                &alice,
                Payload::OpenIssue {
                    number: 0,
                    title: "short-lived".into(),
                    body: String::new(),
                    labels: vec![],
                    assignees: vec![],
                },
                |_| Ok(()),
            )
            .await
            .unwrap();
        let close = Payload::EditThread {
            thread: issue,
            edit: ThreadEdit {
                open: Some(false),
                ..ThreadEdit::default()
            },
        };
        a.repos.append(id, &alice, close).await.unwrap();
        pull(&a, &b, id).await;
        assert_eq!(gauge(&b, "closed"), 2);
        assert_eq!(gauge(&b, "open"), 0);
        // A local change notifies too.
        let mut local = a.repos.subscribe();
        a.repos
            .append(
                id,
                &alice,
                Payload::UpdateRepo {
                    description: Some("again".into()),
                    private: None,
                    default_branch: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(local.recv().await.unwrap().repo, id);
    }

    #[tokio::test]
    async fn an_unknown_repository_without_its_creation_reports_what_is_missing() {
        let a = Node::new();
        let alice = Keypair::generate();
        let id = history(&a, &alice).await;
        let ops = all_ops(&a.repos, id).await;
        let create = ops[0].clone();
        assert!(matches!(create.op().payload, Payload::CreateRepo { .. }));
        let b = Node::new();
        let result = b.repos.insert_remote(id, ops[1..].to_vec()).await.unwrap();
        assert_eq!(result.missing, vec![create.id()]);
        assert_eq!(result.applied, 0);
        assert!(b.repos.get(id).is_none());
        assert!(!b.repos.git().exists(&id.to_string()));
        assert!(b.repos.all_heads(None, 10).is_empty());

        // Operations of another repository are the sender's fault.
        let other = RepoId::from_bytes([1; 32]);
        assert!(matches!(
            b.repos.insert_remote(other, ops.clone()).await,
            Err(RepoError::Invalid(_))
        ));
        // So is a root that is not the repository's creation.
        let stray = Operation {
            repo: id,
            parents: vec![],
            author: alice.public(),
            timestamp: Hlc {
                wall_ms: 1,
                counter: 0,
            },
            payload: Payload::DeleteRepo,
        }
        .sign(&alice)
        .unwrap();
        assert!(matches!(
            b.repos.insert_remote(id, vec![stray]).await,
            Err(RepoError::Invalid(_))
        ));
        assert!(b.repos.get(id).is_none());
    }

    /// An operation signed by `key` at `a`'s heads of `id`.
    fn forge(
        a: &Node,
        id: RepoId,
        key: &Keypair,
        parents: Vec<OpId>,
        payload: Payload,
    ) -> SignedOp {
        let at = a.repos.get(id).unwrap().updated_ms + 1;
        Operation {
            repo: id,
            parents,
            author: key.public(),
            timestamp: Hlc {
                wall_ms: at,
                counter: 0,
            },
            payload,
        }
        .sign(key)
        .unwrap()
    }

    #[tokio::test]
    async fn forged_authority_is_dead_lettered_not_stored() {
        let (a, b) = (Node::new(), Node::new());
        let alice = Keypair::generate();
        let id = history(&a, &alice).await;
        pull(&a, &b, id).await;
        let mallory = Keypair::generate();
        let heads = a.repos.heads(id).unwrap();
        let grab = forge(
            &a,
            id,
            &mallory,
            heads.clone(),
            Payload::SetRole {
                user: mallory.public(),
                role: Some(Role::Admin),
            },
        );
        // Fine on its own (anyone may open an issue on a public repository), but it
        // descends from the forgery.
        let after = forge(
            &a,
            id,
            &mallory,
            vec![grab.id()],
            Payload::OpenIssue {
                number: 0,
                title: "hi".into(),
                body: String::new(),
                labels: vec![],
                assignees: vec![],
            },
        );
        let digest = b.repos.state_digest(id);
        let result = b
            .repos
            .insert_remote(id, vec![after.clone(), grab.clone()])
            .await
            .unwrap();
        assert_eq!(result.applied, 0);
        assert_eq!(result.rejected.len(), 1);
        assert_eq!(result.rejected[0].0, grab.id());
        assert!(matches!(
            result.rejected[0].1,
            Rejection::NotPermitted {
                required: Role::Admin,
                held: None
            }
        ));
        assert_eq!(result.orphaned, vec![after.id()]);
        assert_eq!(b.rejected("not_permitted"), 1);
        assert_eq!(b.rejected("rejected_ancestor"), 1);
        assert_eq!(b.repos.heads(id).unwrap(), heads);
        assert_eq!(b.repos.state_digest(id), digest);

        // It survives a restart, in the log and not in the DAG.
        let b = b.reopen();
        let letters = b.repos.dead_letters(10).unwrap();
        assert_eq!(letters.len(), 2);
        let letter = letters.iter().find(|l| l.id == grab.id()).unwrap();
        assert_eq!(letter.repo, id);
        assert_eq!(letter.reason_code, "not_permitted");
        assert_eq!(letter.op, grab);
        assert!(letter.reason.contains("requires role"), "{}", letter.reason);
        assert!(letters.iter().any(|l| l.reason_code == "rejected_ancestor"));
        let (sent, not_held) = b
            .repos
            .ops_since(id, vec![grab.id()], vec![], MAX)
            .await
            .unwrap();
        assert!(sent.is_empty());
        assert_eq!(not_held, vec![grab.id()]);
        assert_eq!(b.repos.state_digest(id), a.repos.state_digest(id));

        // Replaying refuses them again (the rules have not changed) and keeps them.
        let report = b.repos.replay_dead_letters().await.unwrap();
        assert_eq!(
            report,
            ReplayReport {
                replayed: 2,
                still_rejected: 2,
                removed: 0
            }
        );
        assert_eq!(b.repos.dead_letters(10).unwrap().len(), 2);

        // A letter whose operation is held by now (here: planted) is removed.
        let held = all_ops(&a.repos, id).await.pop().unwrap();
        let planted = Dead::rejected(held, &Rejection::NoRepo)
            .record(id, 1)
            .unwrap();
        b.repos
            .store
            .write("test", move |txn| {
                dead_letters::put(txn, std::slice::from_ref(&planted))
            })
            .await
            .unwrap();
        let report = b.repos.replay_dead_letters().await.unwrap();
        assert_eq!(report.removed, 1);
        assert_eq!(report.still_rejected, 2);
        assert_eq!(b.repos.dead_letters(10).unwrap().len(), 2);
    }

    #[tokio::test]
    async fn the_dead_letter_log_is_bounded() {
        let a = Node::new();
        let alice = Keypair::generate();
        let id = history(&a, &alice).await;
        let op = all_ops(&a.repos, id).await.pop().unwrap();
        let letter = Dead::rejected(op, &Rejection::NoRepo);
        // Distinct keys for one letter: what matters here is the count.
        let many: Vec<(OpId, Vec<u8>)> = (0..dead_letters::MAX_DEAD_LETTERS + 5)
            .map(|i| {
                let mut key = [0u8; 32];
                key[..8].copy_from_slice(&(i as u64).to_be_bytes());
                let (_, json) = letter.record(id, i as u64).unwrap();
                (OpId::from_bytes(key), json)
            })
            .collect();
        a.repos
            .store
            .write("test", move |txn| dead_letters::put(txn, &many))
            .await
            .unwrap();
        let read = a.repos.store.read().unwrap();
        let table = read.open_table(REJECTED).unwrap();
        use redb::ReadableTableMetadata as _;
        let len = table.len().unwrap() as usize;
        assert!(
            (dead_letters::MAX_DEAD_LETTERS * 8 / 10..=dead_letters::MAX_DEAD_LETTERS)
                .contains(&len)
        );
        // The oldest went first.
        let mut oldest = [0u8; 32];
        oldest[..8].copy_from_slice(&0u64.to_be_bytes());
        assert!(table.get(oldest.as_slice()).unwrap().is_none());
        let mut newest = [0u8; 32];
        newest[..8].copy_from_slice(&(dead_letters::MAX_DEAD_LETTERS as u64 + 4).to_be_bytes());
        assert!(table.get(newest.as_slice()).unwrap().is_some());
    }

    #[tokio::test]
    async fn a_ref_update_waits_for_its_objects() {
        let (a, b) = (Node::new(), Node::new());
        let alice = Keypair::generate();
        let view = a
            .repos
            .create(&alice, "alice", "r", "", false, "main")
            .await
            .unwrap();
        let id = view.id;
        pull(&a, &b, id).await;
        let c1 = commit(a.git(id).gix(), &[], "one");
        let main = "refs/heads/main";
        a.repos
            .update_refs(id, &alice, vec![push(main, None, Some(c1))], false)
            .await
            .unwrap();
        // And something that descends from the push.
        a.repos
            .append(
                id,
                &alice,
                Payload::UpdateRepo {
                    description: Some("pushed".into()),
                    private: None,
                    default_branch: None,
                },
            )
            .await
            .unwrap();
        let (ops, _) = a
            .repos
            .ops_since(
                id,
                a.repos.heads(id).unwrap(),
                b.repos.heads(id).unwrap(),
                MAX,
            )
            .await
            .unwrap();
        assert_eq!(ops.len(), 2);
        let result = b.repos.insert_remote(id, ops.clone()).await.unwrap();
        assert_eq!(result.needs_objects, vec![c1]);
        assert_eq!(result.applied, 0);
        assert!(b.repos.get(id).unwrap().state.refs.is_empty());
        assert_eq!(b.git(id).ref_target(main).unwrap(), None);

        // The object arrives (the same commit written there), the batch is offered again.
        assert_eq!(commit(b.git(id).gix(), &[], "one"), c1);
        let result = b.repos.insert_remote(id, ops).await.unwrap();
        assert_eq!(result.applied, 2);
        assert!(result.needs_objects.is_empty());
        assert_eq!(b.git(id).ref_target(main).unwrap(), Some(*c1.as_bytes()));
        assert_same(&a, &b, id);
    }

    #[tokio::test]
    async fn concurrent_pushes_converge_and_keep_the_losing_tip() {
        let (a, b) = (Node::new(), Node::new());
        let alice = Keypair::generate();
        let view = a
            .repos
            .create(&alice, "alice", "r", "", false, "main")
            .await
            .unwrap();
        let id = view.id;
        pull(&a, &b, id).await;
        let main = "refs/heads/main";
        let on_a = commit(a.git(id).gix(), &[], "pushed to a");
        let on_b = commit(b.git(id).gix(), &[], "pushed to b");
        for (node, tip) in [(&a, on_a), (&b, on_b)] {
            let done = node
                .repos
                .update_refs(id, &alice, vec![push(main, None, Some(tip))], false)
                .await
                .unwrap();
            assert_eq!(done, vec![Ok(())]);
        }
        pull(&a, &b, id).await;
        pull(&b, &a, id).await;
        assert_same(&a, &b, id);
        let state = a.repos.get(id).unwrap().state.clone();
        let winner = state.refs[main].target;
        assert!(winner == on_a || winner == on_b);
        let loser = if winner == on_a { on_b } else { on_a };
        assert_eq!(state.conflicts.len(), 1);
        for node in [&a, &b] {
            let refs = node.refs(id);
            assert!(refs.contains(&(main.to_owned(), *winner.as_bytes())));
            assert!(
                refs.iter().any(|(name, target)| name
                    .starts_with("refs/guts/conflicts/heads/main/")
                    && target == loser.as_bytes()),
                "{refs:?}"
            );
        }
        assert_eq!(a.repos.ref_tips(id), {
            let mut tips = vec![on_a, on_b];
            tips.sort();
            tips
        });
    }

    #[tokio::test]
    async fn an_order_dependent_rejection_is_stored_everywhere() {
        let (a, b) = (Node::new(), Node::new());
        let alice = Keypair::generate();
        let id = a
            .repos
            .create(&alice, "alice", "r", "", false, "main")
            .await
            .unwrap()
            .id;
        let (_, issue) = a
            .repos
            .append_checked(
                id,
                &alice,
                Payload::OpenIssue {
                    number: 0,
                    title: "t".into(),
                    body: String::new(),
                    labels: vec![],
                    assignees: vec![],
                },
                |_| Ok(()),
            )
            .await
            .unwrap();
        pull(&a, &b, id).await;
        // The owner locks the issue on A; a stranger, who has not seen the lock,
        // comments on B (fine there: the repository is public). Both also open an
        // issue, proposing the same number.
        let lock = Payload::EditThread {
            thread: issue,
            edit: ThreadEdit {
                locked: Some(true),
                ..ThreadEdit::default()
            },
        };
        a.repos.append(id, &alice, lock).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let stranger = Keypair::generate();
        let (_, comment) = b
            .repos
            .append_checked(
                id,
                &stranger,
                Payload::Comment {
                    thread: issue,
                    body: "hello".into(),
                },
                |_| Ok(()),
            )
            .await
            .unwrap();
        let open = |n: u64| Payload::OpenIssue {
            number: n,
            title: "again".into(),
            body: String::new(),
            labels: vec![],
            assignees: vec![],
        };
        a.repos.append(id, &alice, open(0)).await.unwrap();
        b.repos.append(id, &stranger, open(0)).await.unwrap();
        pull(&a, &b, id).await;
        pull(&b, &a, id).await;
        assert_same(&a, &b, id);
        // The comment came after the lock in the order: refused by the fold on both
        // nodes, yet held by both (its author's node accepted it).
        let state = a.repos.get(id).unwrap().state.clone();
        assert!(matches!(
            state.rejected.get(&comment),
            Some(Rejection::NotPermitted {
                required: Role::Write,
                ..
            })
        ));
        for n in [&a, &b] {
            let (held, not_held) = n
                .repos
                .ops_since(id, vec![comment], vec![], MAX)
                .await
                .unwrap();
            assert!(not_held.is_empty());
            assert_eq!(held.last().map(SignedOp::id), Some(comment));
            assert!(n.repos.dead_letters(10).unwrap().is_empty());
        }
        let mut numbers: Vec<u64> = state.collab.threads.values().map(|t| t.number).collect();
        numbers.sort_unstable();
        assert_eq!(numbers, vec![1, 2, 3]);
        let open_issues = |n: &Node| {
            n.metrics
                .issues
                .get_or_create(&crate::metrics::StateLabels { state: "open" })
                .get()
        };
        assert_eq!(open_issues(&a), 3);
        assert_eq!(open_issues(&b), 3);
    }

    #[tokio::test]
    async fn ops_since_sends_the_difference_parent_first_within_max_bytes() {
        let a = Node::new();
        let alice = Keypair::generate();
        let id = history(&a, &alice).await;
        let ops = all_ops(&a.repos, id).await;
        let position: HashMap<OpId, usize> =
            ops.iter().enumerate().map(|(i, op)| (op.id(), i)).collect();
        for op in &ops {
            for parent in &op.op().parents {
                assert!(position[parent] < position[&op.id()]);
            }
        }
        // The asker holds the first half: it gets exactly the rest.
        let half = ops.len() / 2;
        let have = ops[half - 1].id();
        let ancestors = closure(
            &{
                let mut dag = RepoDag::new(id);
                for op in &ops {
                    dag.insert(op.clone()).unwrap();
                }
                dag
            },
            [have].iter(),
            &HashSet::new(),
        );
        let unknown = OpId::from_bytes([7; 32]);
        let heads = a.repos.heads(id).unwrap();
        let (sent, not_held) = a
            .repos
            .ops_since(
                id,
                [heads.clone(), vec![unknown]].concat(),
                vec![have, unknown],
                MAX,
            )
            .await
            .unwrap();
        assert_eq!(not_held, vec![unknown]);
        let expected: BTreeSet<OpId> = ops
            .iter()
            .map(SignedOp::id)
            .filter(|id| !ancestors.contains(id))
            .collect();
        assert_eq!(
            sent.iter().map(SignedOp::id).collect::<BTreeSet<_>>(),
            expected
        );
        assert_eq!(sent.len(), expected.len());
        let sent_at: HashMap<OpId, usize> = sent
            .iter()
            .enumerate()
            .map(|(i, op)| (op.id(), i))
            .collect();
        for op in &sent {
            for parent in &op.op().parents {
                if let Some(p) = sent_at.get(parent) {
                    assert!(*p < sent_at[&op.id()]);
                }
            }
        }
        // A byte budget cuts the page before it would be exceeded.
        let budget: usize = sent.iter().take(3).map(|op| op.as_bytes().len()).sum();
        for (max, count) in [(budget, 3), (budget + 1, 3), (budget - 1, 2), (0, 0)] {
            let (page, _) = a
                .repos
                .ops_since(id, heads.clone(), vec![have], max)
                .await
                .unwrap();
            assert_eq!(page.len(), count, "max {max}");
            assert_eq!(page[..], sent[..count]);
        }
        // Everything held: nothing to send.
        let (nothing, _) = a
            .repos
            .ops_since(id, heads.clone(), heads, MAX)
            .await
            .unwrap();
        assert!(nothing.is_empty());
    }

    #[tokio::test]
    async fn concurrent_name_claims_resolve_alike_everywhere() {
        let (a, b) = (Node::new(), Node::new());
        let alice = Keypair::generate();
        let first = a
            .repos
            .create(&alice, "alice", "hello", "", false, "main")
            .await
            .unwrap()
            .id;
        let second = b
            .repos
            .create(&alice, "Alice", "Hello", "", false, "main")
            .await
            .unwrap()
            .id;
        assert_ne!(first, second);
        pull(&a, &b, first).await;
        pull(&b, &a, second).await;
        let at = |n: &Node, id| {
            n.repos
                .get(id)
                .unwrap()
                .state
                .meta
                .clone()
                .unwrap()
                .created_at
        };
        let (winner, loser) = if (at(&a, first), first) < (at(&a, second), second) {
            (first, second)
        } else {
            (second, first)
        };
        let suffix = &loser.to_string()[..8];
        let check = |n: &Node| {
            assert_eq!(n.repos.find("alice", "hello").unwrap().id, winner);
            assert_eq!(
                n.repos
                    .find("alice", &format!("hello-{suffix}"))
                    .unwrap()
                    .id,
                loser
            );
            let served = n.repos.served(loser).unwrap();
            assert_eq!(served.name.to_lowercase(), format!("hello-{suffix}"));
            assert!(served.owner.eq_ignore_ascii_case("alice"));
            assert_eq!(n.repos.served(winner).unwrap().name.to_lowercase(), "hello");
            assert_eq!(n.repos.list().len(), 2);
            assert_eq!(n.metrics.repositories.get(), 2);
            let status = n.repos.replication_status(None, 10);
            assert_eq!(status.len(), 2);
            assert!(status.windows(2).all(|w| w[0].id < w[1].id));
        };
        check(&a);
        check(&b);
        // A local creation cannot take either name.
        for name in ["hello", &format!("HELLO-{suffix}")] {
            assert!(matches!(
                b.repos
                    .create(&alice, "alice", name, "", false, "main")
                    .await,
                Err(RepoError::NameTaken)
            ));
        }
        let (a, b) = (a.reopen(), b.reopen());
        check(&a);
        check(&b);

        // The winner is deleted on one node; the deletion replicates and the other
        // repository takes the name everywhere.
        a.repos
            .append(winner, &alice, Payload::DeleteRepo)
            .await
            .unwrap();
        pull(&a, &b, winner).await;
        for n in [&a, &b] {
            assert_eq!(n.repos.find("alice", "hello").unwrap().id, loser);
            assert!(n.repos.find("alice", &format!("hello-{suffix}")).is_none());
            assert!(!n.repos.git().exists(&winner.to_string()));
            assert_eq!(n.metrics.repositories.get(), 1);
            // Deleted repositories are still announced: their deletion replicates.
            assert_eq!(n.repos.all_heads(None, 10).len(), 2);
            assert!(n.repos.get(winner).unwrap().state.deleted);
        }
        assert_eq!(a.repos.state_digest(winner), b.repos.state_digest(winner));
        let (a, b) = (a.reopen(), b.reopen());
        for n in [&a, &b] {
            assert_eq!(n.repos.find("alice", "hello").unwrap().id, loser);
        }
        assert_eq!(a.repos.state_digest(winner), b.repos.state_digest(winner));
    }

    #[tokio::test]
    async fn all_heads_pages_by_id() {
        let a = Node::new();
        let alice = Keypair::generate();
        let mut ids = Vec::new();
        for name in ["a", "b", "c"] {
            ids.push(
                a.repos
                    .create(&alice, "alice", name, "", false, "main")
                    .await
                    .unwrap()
                    .id,
            );
        }
        ids.sort();
        let first = a.repos.all_heads(None, 2);
        assert_eq!(
            first.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            ids[..2]
        );
        let rest = a.repos.all_heads(Some(first[1].0), 2);
        assert_eq!(rest.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids[2..]);
        assert_eq!(rest[0].1, a.repos.heads(ids[2]).unwrap());
        assert_eq!(rest[0].1.len(), 1);
    }

    /// One node of a cluster whose secret is `secret`: storage that binds names by its
    /// accounts, as a node runs.
    fn bound_node(secret: &[u8]) -> (Node, crate::Accounts) {
        let (node, store) = open_bound(tempfile::tempdir().unwrap(), secret);
        let accounts = crate::Accounts::new(store, Arc::new(crate::Sealer::new(secret)));
        (node, accounts)
    }

    /// Opens the storage in `dir` binding names by its accounts; also returns the store
    /// for the accounts.
    fn open_bound(dir: tempfile::TempDir, secret: &[u8]) -> (Node, crate::Store) {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(StorageMetrics::register(&mut registry));
        let (store, writer) = crate::Store::open(dir.path(), metrics.clone()).unwrap();
        let repos = Repositories::open_with(
            store.clone(),
            crate::GitRepos::open(dir.path()).unwrap(),
            crate::NameBinding::Accounts(Arc::new(crate::Sealer::new(secret))),
        )
        .unwrap();
        let node = Node {
            repos,
            writer: Some(writer),
            metrics,
            dir,
        };
        (node, store)
    }

    /// A root `CreateRepo` signed by `key`, stamped `wall_ms`.
    fn creation(key: &Keypair, owner: &str, name: &str, wall_ms: u64) -> SignedOp {
        let at = Hlc {
            wall_ms,
            counter: 0,
        };
        Operation {
            repo: RepoId::derive(&key.public(), owner, name, at),
            parents: vec![],
            author: key.public(),
            timestamp: at,
            payload: Payload::CreateRepo {
                owner: owner.into(),
                name: name.into(),
                description: "EVIL".into(),
                private: false,
                default_branch: "main".into(),
            },
        }
        .sign(key)
        .unwrap()
    }

    #[tokio::test]
    async fn another_clusters_author_never_takes_or_shadows_a_local_name() {
        let (ours, accounts) = bound_node(b"our cluster");
        let alice = accounts.create_user("alice", false).await.unwrap();
        let alice_key = accounts.signing_key(&alice).unwrap();
        let real = ours
            .repos
            .create(&alice_key, "alice", "pub", "", false, "main")
            .await
            .unwrap()
            .id;
        // Another cluster's `alice`, its clock three days back.
        let foreign = Keypair::generate();
        let days_ago = now_ms() - 3 * 24 * 3600 * 1000;
        let (pub_op, squat_op) = (
            creation(&foreign, "alice", "pub", days_ago),
            creation(&foreign, "Alice", "squat", days_ago),
        );
        let (evil, squat) = (pub_op.op().repo, squat_op.op().repo);
        for op in [pub_op, squat_op] {
            let id = op.op().repo;
            ours.repos.insert_remote(id, vec![op]).await.unwrap();
        }
        let namespace = format!("alice--{}", &foreign.public().to_string()[..16]);
        let check = |n: &Node| {
            assert_eq!(n.repos.find("alice", "pub").unwrap().id, real);
            assert!(n.repos.find("alice", "squat").is_none());
            assert_eq!(n.repos.find(&namespace, "pub").unwrap().id, evil);
            assert_eq!(n.repos.find(&namespace, "squat").unwrap().id, squat);
            let served = n.repos.served(evil).unwrap();
            assert_eq!(
                (served.owner.as_str(), served.name.as_str()),
                (namespace.as_str(), "pub")
            );
            assert_eq!(n.repos.served(real).unwrap().owner, "alice");
            let status = n.repos.replication_status(None, 10);
            assert!(
                status
                    .iter()
                    .any(|s| s.id == squat && s.owner.eq_ignore_ascii_case(&namespace))
            );
        };
        check(&ours);
        // A key that does not hold the login cannot create under it here either.
        assert!(matches!(
            ours.repos
                .create(&foreign, "alice", "other", "", false, "main")
                .await,
            Err(RepoError::NameNotHeld(_))
        ));
        // The names are derived again the same way from the log.
        drop(accounts);
        let ours = ours.reopen_bound(b"our cluster");
        check(&ours);
    }

    /// An organization's names are held by its own key, which only this cluster's
    /// secret derives: another cluster's key for the same org (or a stranger's) is
    /// served in its author's namespace, and a non-member cannot create there.
    #[tokio::test]
    async fn organization_names_are_held_by_the_clusters_organization_key() {
        let (ours, accounts) = bound_node(b"our cluster");
        accounts.create_user("alice", false).await.unwrap();
        accounts.create_org("acme", "alice").await.unwrap();
        let org_key = accounts.org_signing_key("ACME");
        assert_eq!(org_key.public(), accounts.org_signing_key("acme").public());
        let theirs = crate::Sealer::new(b"their cluster").org_keypair("acme");
        assert_ne!(theirs.public(), org_key.public());
        let real = ours
            .repos
            .create(&org_key, "acme", "tools", "", false, "main")
            .await
            .unwrap()
            .id;
        assert_eq!(ours.repos.served(real).unwrap().owner, "acme");
        let foreign = creation(&theirs, "acme", "tools", now_ms() - 3 * 24 * 3600 * 1000);
        let evil = foreign.op().repo;
        ours.repos.insert_remote(evil, vec![foreign]).await.unwrap();
        assert_eq!(ours.repos.find("acme", "tools").unwrap().id, real);
        assert!(ours.repos.served(evil).unwrap().owner.starts_with("acme--"));
        let stranger = accounts.create_user("mallory", false).await.unwrap();
        let stranger = accounts.signing_key(&stranger).unwrap();
        assert!(matches!(
            ours.repos
                .create(&stranger, "acme", "other", "", false, "main")
                .await,
            Err(RepoError::NameNotHeld(_))
        ));
    }

    #[tokio::test]
    async fn a_repository_that_arrives_before_its_account_is_bound_when_the_account_comes() {
        let (a, accounts_a) = bound_node(b"one cluster");
        let (b, accounts_b) = bound_node(b"one cluster");
        let alice = accounts_a.create_user("alice", false).await.unwrap();
        let key = accounts_a.signing_key(&alice).unwrap();
        let id = a
            .repos
            .create(&key, "alice", "early", "", false, "main")
            .await
            .unwrap()
            .id;
        accounts_a.create_org("acme", "alice").await.unwrap();
        let org_repo = a
            .repos
            .create(&key, "acme", "tools", "", false, "main")
            .await
            .unwrap()
            .id;
        pull(&a, &b, id).await;
        pull(&a, &b, org_repo).await;
        assert!(b.repos.find("alice", "early").is_none());
        assert!(b.repos.find("acme", "tools").is_none());
        assert_ne!(b.repos.served(id).unwrap().owner, "alice");
        let (page, _) = accounts_a.export_sealed(None, 1 << 20).unwrap();
        accounts_b.import_sealed(&page).await.unwrap();
        assert!(b.repos.rebind());
        assert_eq!(b.repos.find("alice", "early").unwrap().id, id);
        assert_eq!(b.repos.find("acme", "tools").unwrap().id, org_repo);
        assert!(!b.repos.rebind(), "nothing moves the second time");
        // Removing the creator from the organization does not take the name away.
        accounts_b.create_user("bob", false).await.unwrap();
        accounts_b
            .set_membership("acme", "bob", Some(crate::OrgRole::Admin))
            .await
            .unwrap();
        accounts_b
            .set_membership("acme", "alice", None)
            .await
            .unwrap();
        b.repos.rebind();
        assert_eq!(b.repos.find("acme", "tools").unwrap().id, org_repo);
    }

    #[tokio::test]
    async fn operations_stamped_far_ahead_of_our_clock_wait_until_it_catches_up() {
        let n = Node::new();
        let key = Keypair::generate();
        let op = creation(
            &key,
            "alice",
            "future",
            now_ms() + MAX_CLOCK_DRIFT_MS + 60_000,
        );
        let id = op.op().repo;
        let result = n.repos.insert_remote(id, vec![op]).await.unwrap();
        assert_eq!(result.applied, 0);
        assert!(n.repos.get(id).is_none());
        assert_eq!(n.rejected("ahead_of_clock"), 1);
        let near = creation(&key, "alice", "near", now_ms() + 60_000);
        let id = near.op().repo;
        n.repos.insert_remote(id, vec![near]).await.unwrap();
        assert!(n.repos.find("alice", "near").is_some());
    }
}
