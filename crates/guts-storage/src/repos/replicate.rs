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

use super::cache::Loaded;
use super::dead_letters::{self, Dead};
use super::{
    Engine, Entry, GitAncestry, RepoError, RepoView, Repositories, ThreadCounts, name_key, now_ms,
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

/// The state digest of a whole node: every repository's id and state digest, in the
/// order `statuses` lists them ([`Repositories::replication_status`]'s). Two nodes
/// holding the same repositories in the same state report the same digest.
pub fn node_state_digest(statuses: &[RepoStatus]) -> [u8; 32] {
    let mut node = blake3::Hasher::new_derive_key("guts/node-state-digest/v1");
    for status in statuses {
        node.update(status.id.as_bytes());
        node.update(&status.digest);
    }
    *node.finalize().as_bytes()
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
///
/// This and [`select_since`] order operations the DAG's own order does not cover (a
/// batch not inserted yet; the part of the DAG between two cuts, whose Kahn order can
/// differ from the DAG-wide one when timestamps are skewed), with std's hash maps,
/// which guts-core does not use (its iteration order would be randomly seeded): so they
/// live here rather than in `guts_core::dag`.
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
    for op in &plan.stored {
        engine.note(op);
    }
    engine.counts = ThreadCounts::of(engine.fold.state());
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
        self.view_of(id, &entry)
    }

    /// The heads of repository `id` (sorted), deleted or not; `None` if not held.
    /// Lock-free with respect to appends, and loads nothing: read from the summary.
    pub fn heads(&self, id: RepoId) -> Option<Vec<OpId>> {
        Some(self.entry(id).ok()?.summary().heads.clone())
    }

    /// Heads of every repository held, deleted ones included (their deletion must
    /// replicate), ascending by id, strictly after `after`, at most `limit`: the pages
    /// anti-entropy compares.
    pub fn all_heads(&self, after: Option<RepoId>, limit: usize) -> Vec<(RepoId, Vec<OpId>)> {
        self.entries_after(after, limit)
            .into_iter()
            .map(|(id, entry)| (id, entry.summary().heads.clone()))
            .collect()
    }

    /// Up to `limit` entries, ascending by id, strictly after `after`.
    fn entries_after(&self, after: Option<RepoId>, limit: usize) -> Vec<(RepoId, Arc<Entry>)> {
        use std::ops::Bound;
        let Ok(index) = self.index.read() else {
            return Vec::new();
        };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        index
            .by_id
            .range((lower, Bound::Unbounded))
            .map(|(id, entry)| (*id, entry.clone()))
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

    /// The digest of repository `id`'s folded state ([`RepoState::digest`]): kept
    /// from the last time it was computed if the state has not changed since, else
    /// computed (loading the state if it is not in memory).
    pub fn state_digest(&self, id: RepoId) -> Option<[u8; 32]> {
        let entry = self.entry(id).ok()?;
        self.digest_of(id, &entry)
    }

    fn digest_of(&self, id: RepoId, entry: &Arc<Entry>) -> Option<[u8; 32]> {
        if let Some(digest) = entry.known_digest() {
            return Some(digest);
        }
        let view = self.view_of(id, entry)?;
        let digest = view.digest();
        entry.keep_digest(view.version, digest);
        Some(digest)
    }

    /// Replication status of up to `limit` repositories, ascending by id, strictly
    /// after `after`, deleted ones included. Computes each digest not known yet
    /// (O(state) each, and a load for a state not in memory).
    pub fn replication_status(&self, after: Option<RepoId>, limit: usize) -> Vec<RepoStatus> {
        self.entries_after(after, limit)
            .into_iter()
            .filter_map(|(id, entry)| {
                let digest = self.digest_of(id, &entry)?;
                // Read after the digest: a change in between makes the next status
                // differ, never a digest of one version reported with another's heads
                // for long (heads and digest converge together).
                let summary = entry.summary();
                let meta = summary.header.meta.as_ref()?;
                let served = self.served(id);
                Some(RepoStatus {
                    id,
                    owner: served
                        .as_ref()
                        .map_or_else(|| meta.owner.clone(), |s| s.owner.clone()),
                    name: served.map_or_else(|| meta.name.clone(), |s| s.name),
                    deleted: summary.header.deleted,
                    ops: summary.version,
                    heads: summary.heads.clone(),
                    digest,
                    updated_ms: summary.latest.wall_ms,
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
        let engine = self.take_engine(&entry, &mut slot, id).await?;
        let selected = select_since(&engine.dag, &want, &have, max_bytes);
        *slot = Some(Loaded::Log(engine));
        drop(slot);
        self.enforce_budget();
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
        let entry = Arc::new(Entry::loaded(Arc::new(engine.view())));
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
        let engine = self.take_engine(entry, &mut slot, id).await?;
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
        slot: &mut Option<Loaded>,
        engine: Box<Engine>,
        ops: Vec<SignedOp>,
        is_new: bool,
    ) -> Result<RemoteInsert, RepoError> {
        let before = engine.fold.state().clone();
        let base_version = engine.dag.len();
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
                *slot = Some(Loaded::Log(engine));
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
        let bound = self.bound(state.meta.as_ref());
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
        let release = key.clone().filter(|_| was_live && now_deleted);
        // A rename (by these operations) moves the local name claim.
        let rename = match (&before.meta, &state.meta, key) {
            (Some(old), Some(meta), Some(new))
                if was_live && !now_deleted && old.name != meta.name =>
            {
                Some((name_key(&super::served_owner(meta, bound), &old.name), new))
            }
            _ => None,
        };
        let names_change = claim.is_some() || release.is_some() || rename.is_some();
        let encoded: Vec<(OpId, Vec<u8>)> =
            stored.iter().map(|op| (op.id(), op.encode())).collect();
        // Held in case the node that accepted them is gone before delivering their
        // webhook events (see `crate::hooks`).
        let standby: Vec<Vec<u8>> = stored
            .iter()
            .map(|op| crate::hooks::outbox_key(op.op().timestamp.wall_ms, &op.id()))
            .collect();
        let standby_value = crate::hooks::outbox_value(&id, engine.dag.len());
        let hooked = state.hooks.any_active();
        let owner = state.meta.as_ref().map(|m| m.owner.to_ascii_lowercase());
        let view = Arc::new(engine.view());
        let summary = view.summary.encode();
        let rows = super::rows::RowsUpdate::between(
            (!is_new).then_some((base_version, &before.collab.threads)),
            &view,
        );
        let written = self
            .store
            .write("insert_remote", move |txn| {
                super::put_summary(txn, id, &summary)?;
                rows.write(txn)?;
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
                if let Some((old, new)) = &rename {
                    super::move_name(txn, old, new, id)?;
                }
                crate::hooks::hold_if_hooked(
                    txn,
                    crate::hooks::HOOK_STANDBY,
                    hooked,
                    owner.as_deref(),
                    &standby,
                    &standby_value,
                )?;
                dead_letters::put(txn, &letters)
            })
            .await;
        if let Err(e) = written {
            // The engine holds operations the disk does not: rebuilt from the log by
            // the next append (a new repository is simply not installed).
            *slot = None;
            entry.unload_view();
            self.charge(entry, 0);
            return Err(e.into());
        }
        self.observe(&stored);

        let size = super::cache::estimate(&engine);
        *slot = Some(Loaded::Log(engine));
        entry.publish(&view);
        self.charge(entry, size);
        if is_new && let Ok(mut index) = self.index.write() {
            index.by_id.insert(id, entry.clone());
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
                index.set_claim(id, view.state.meta.as_ref(), view.state.deleted, bound);
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
mod tests;
