//! The operation DAG of one repository.
//!
//! Operations arrive in any order from any peer. The DAG holds an operation as
//! *pending* until all its parents are present and then makes it *complete*, promoting
//! whatever was waiting on it in turn; only complete operations take part in heads and
//! in the topological order, so the fold always sees a causally closed set. The
//! structure depends only on the set of operations inserted, never on the order of
//! insertion, which is what makes the fold's output a function of the set.
//!
//! Maps are `BTreeMap`s rather than `HashMap`s: their iteration order is a function of
//! the keys alone (std's hasher is randomly seeded, and core reads no randomness), and
//! the logarithmic factor is irrelevant at thousands of operations.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use crate::hlc::Hlc;
use crate::ids::{OpId, RepoId};
use crate::op::SignedOp;

/// Why an operation was not inserted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    #[error("operation belongs to repository {found}, not {expected}")]
    WrongRepo { expected: RepoId, found: RepoId },
}

/// What an insertion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The operation is now complete (and so may be every pending operation that
    /// waited on it).
    New,
    /// The operation was already present, complete or pending. Nothing changed.
    Duplicate,
    /// Some parents are absent: the operation is held until they arrive (see
    /// [`RepoDag::missing`]).
    Pending,
}

/// A complete operation and its edges, by dense local index. Indices follow the order
/// in which operations became complete on this node, so they never leave this module
/// except as an opaque handle to the fold.
#[derive(Debug, Clone)]
struct Node {
    op: SignedOp,
    parents: Vec<usize>,
    children: Vec<usize>,
}

/// The operations of one repository: complete ones with their edges, and pending ones
/// waiting for parents.
///
/// Pending operations are unbounded here; bounding what an untrusted peer may park in
/// them is the caller's policy (see [`RepoDag::pending_len`]).
#[derive(Debug, Clone)]
pub struct RepoDag {
    repo: RepoId,
    /// Boxed so that growing the vector moves pointers, not operations: a doubling
    /// of a large repository's DAG would otherwise copy every operation while the
    /// repository's appends wait.
    #[expect(
        clippy::vec_box,
        reason = "a Node is a whole operation; growth must move pointers"
    )]
    nodes: Vec<Box<Node>>,
    index: BTreeMap<OpId, usize>,
    pending: BTreeMap<OpId, SignedOp>,
    /// Absent or pending op id -> pending operations that name it as a parent.
    waiting: BTreeMap<OpId, Vec<OpId>>,
    /// Complete operations without complete children.
    heads: BTreeSet<OpId>,
}

impl RepoDag {
    pub fn new(repo: RepoId) -> Self {
        Self {
            repo,
            nodes: Vec::new(),
            index: BTreeMap::new(),
            pending: BTreeMap::new(),
            waiting: BTreeMap::new(),
            heads: BTreeSet::new(),
        }
    }

    pub fn repo(&self) -> RepoId {
        self.repo
    }

    /// Adds an operation of this repository. Idempotent: inserting an operation twice
    /// reports `Duplicate` and changes nothing.
    pub fn insert(&mut self, op: SignedOp) -> Result<Inserted, DagError> {
        if op.op().repo != self.repo {
            return Err(DagError::WrongRepo {
                expected: self.repo,
                found: op.op().repo,
            });
        }
        let id = op.id();
        if self.index.contains_key(&id) || self.pending.contains_key(&id) {
            return Ok(Inserted::Duplicate);
        }
        let absent: Vec<OpId> = op
            .op()
            .parents
            .iter()
            .filter(|parent| !self.index.contains_key(parent))
            .copied()
            .collect();
        if absent.is_empty() {
            self.complete(op);
            self.promote(id);
            Ok(Inserted::New)
        } else {
            for parent in absent {
                self.waiting.entry(parent).or_default().push(id);
            }
            self.pending.insert(id, op);
            Ok(Inserted::Pending)
        }
    }

    /// Whether the operation is held, complete or pending. A node asks this before
    /// fetching an operation it heard of.
    pub fn contains(&self, id: &OpId) -> bool {
        self.index.contains_key(id) || self.pending.contains_key(id)
    }

    /// Whether the operation is complete: held with all its ancestors.
    pub fn is_complete(&self, id: &OpId) -> bool {
        self.index.contains_key(id)
    }

    /// The operation, complete or pending.
    pub fn get(&self, id: &OpId) -> Option<&SignedOp> {
        self.index
            .get(id)
            .and_then(|&i| self.nodes.get(i))
            .map(|node| &node.op)
            .or_else(|| self.pending.get(id))
    }

    /// Complete operations that no complete operation names as a parent, sorted: what
    /// a new local operation lists as its parents, and what a node announces.
    pub fn heads(&self) -> Vec<OpId> {
        self.heads.iter().copied().collect()
    }

    /// Operations named as parents by pending operations and held nowhere, sorted:
    /// what to ask peers for.
    pub fn missing(&self) -> Vec<OpId> {
        self.waiting
            .keys()
            .filter(|id| !self.pending.contains_key(id))
            .copied()
            .collect()
    }

    /// Number of complete operations.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Number of operations waiting for parents.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Complete operations in the fold's order: parents before children, and among
    /// operations whose parents are all placed, the smallest `(timestamp, id)` first
    /// (Kahn's algorithm with a priority queue). Deterministic for a given set.
    /// O((n + e) log n).
    pub fn topological(&self) -> Vec<&SignedOp> {
        self.order()
            .into_iter()
            .filter_map(|i| self.nodes.get(i).map(|node| &node.op))
            .collect()
    }

    /// Whether `ancestor` is `descendant` or reachable from it through parents, among
    /// complete operations. A breadth-first walk: O(n) in the worst case.
    pub fn is_ancestor(&self, ancestor: &OpId, descendant: &OpId) -> bool {
        let (Some(&target), Some(&start)) = (self.index.get(ancestor), self.index.get(descendant))
        else {
            return false;
        };
        let mut seen = vec![false; self.nodes.len()];
        let mut queue = vec![start];
        while let Some(i) = queue.pop() {
            if i == target {
                return true;
            }
            let Some(node) = self.nodes.get(i) else {
                continue;
            };
            for &parent in &node.parents {
                if let Some(flag) = seen.get_mut(parent)
                    && !*flag
                {
                    *flag = true;
                    queue.push(parent);
                }
            }
        }
        false
    }

    /// The topological order as local indices (see [`RepoDag::topological`]).
    pub(crate) fn order(&self) -> Vec<usize> {
        let mut indegree: Vec<usize> = self.nodes.iter().map(|n| n.parents.len()).collect();
        let mut ready: BinaryHeap<Reverse<(Hlc, OpId, usize)>> = BinaryHeap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.parents.is_empty() {
                ready.push(Reverse(Self::key(node, i)));
            }
        }
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(Reverse((_, _, i))) = ready.pop() {
            order.push(i);
            let Some(node) = self.nodes.get(i) else {
                continue;
            };
            for &child in &node.children {
                if let Some(count) = indegree.get_mut(child) {
                    *count = count.saturating_sub(1);
                    if *count == 0
                        && let Some(child_node) = self.nodes.get(child)
                    {
                        ready.push(Reverse(Self::key(child_node, child)));
                    }
                }
            }
        }
        order
    }

    /// The operation at a local index.
    pub(crate) fn op_at(&self, i: usize) -> Option<&SignedOp> {
        self.nodes.get(i).map(|node| &node.op)
    }

    /// The parents of the operation at a local index, as local indices.
    /// The local index of a complete operation.
    pub(crate) fn index_of(&self, id: &OpId) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub(crate) fn parents_at(&self, i: usize) -> &[usize] {
        self.nodes.get(i).map_or(&[], |node| &node.parents)
    }

    fn key(node: &Node, i: usize) -> (Hlc, OpId, usize) {
        (node.op.op().timestamp, node.op.id(), i)
    }

    /// Adds an operation whose parents are all complete.
    fn complete(&mut self, op: SignedOp) {
        let i = self.nodes.len();
        let id = op.id();
        let mut parents = Vec::with_capacity(op.op().parents.len());
        for parent in &op.op().parents {
            if let Some(&p) = self.index.get(parent) {
                parents.push(p);
                if let Some(node) = self.nodes.get_mut(p) {
                    node.children.push(i);
                }
                self.heads.remove(parent);
            }
        }
        self.heads.insert(id);
        self.index.insert(id, i);
        self.nodes.push(Box::new(Node {
            op,
            parents,
            children: Vec::new(),
        }));
    }

    /// Completes, transitively, the pending operations that were waiting on `id`.
    /// Each pending operation is examined once per parent, so promoting a long chain
    /// that arrived backwards is linear in its length.
    fn promote(&mut self, id: OpId) {
        let mut newly_complete = vec![id];
        while let Some(done) = newly_complete.pop() {
            let Some(waiters) = self.waiting.remove(&done) else {
                continue;
            };
            for waiter in waiters {
                let ready = self.pending.get(&waiter).is_some_and(|op| {
                    op.op()
                        .parents
                        .iter()
                        .all(|parent| self.index.contains_key(parent))
                });
                if ready && let Some(op) = self.pending.remove(&waiter) {
                    self.complete(op);
                    newly_complete.push(waiter);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arbitrary::keypair;
    use crate::op::{Operation, Payload};
    use proptest::prelude::*;

    fn repo() -> RepoId {
        RepoId::from_bytes([9; 32])
    }

    /// An operation with the given parents and timestamp; the payload is irrelevant
    /// to the DAG.
    fn op(parents: &[OpId], wall_ms: u64) -> SignedOp {
        op_n(parents, wall_ms, 0)
    }

    /// Like `op`, with a counter that keeps otherwise identical operations apart.
    fn op_n(parents: &[OpId], wall_ms: u64, counter: u32) -> SignedOp {
        Operation {
            repo: repo(),
            parents: parents.to_vec(),
            author: keypair(1).public(),
            timestamp: Hlc { wall_ms, counter },
            payload: Payload::DeleteRepo,
        }
        .sign(&keypair(1))
        .unwrap()
    }

    #[test]
    fn pending_ops_are_promoted_when_parents_arrive() {
        let a = op(&[], 1);
        let b = op(&[a.id()], 2);
        let c = op(&[b.id()], 3);
        let mut dag = RepoDag::new(repo());
        assert_eq!(dag.insert(c.clone()).unwrap(), Inserted::Pending);
        assert_eq!(dag.missing(), vec![b.id()]);
        assert_eq!(dag.insert(b.clone()).unwrap(), Inserted::Pending);
        assert_eq!(dag.missing(), vec![a.id()]);
        assert_eq!(dag.len(), 0);
        assert_eq!(dag.pending_len(), 2);
        assert!(dag.contains(&c.id()) && !dag.is_complete(&c.id()));
        assert_eq!(dag.insert(a.clone()).unwrap(), Inserted::New);
        assert_eq!(dag.len(), 3);
        assert_eq!(dag.pending_len(), 0);
        assert!(dag.missing().is_empty());
        assert_eq!(dag.heads(), vec![c.id()]);
        assert_eq!(dag.insert(b).unwrap(), Inserted::Duplicate);
        assert!(dag.is_ancestor(&a.id(), &c.id()));
        assert!(dag.is_ancestor(&c.id(), &c.id()));
        assert!(!dag.is_ancestor(&c.id(), &a.id()));
    }

    #[test]
    fn wrong_repository_is_refused() {
        let mut dag = RepoDag::new(RepoId::from_bytes([1; 32]));
        assert!(matches!(
            dag.insert(op(&[], 1)),
            Err(DagError::WrongRepo { .. })
        ));
        assert!(dag.is_empty());
    }

    #[test]
    fn heads_and_ties() {
        let root = op(&[], 10);
        let left = op(&[root.id()], 20);
        let right = op(&[root.id()], 15);
        let merge = op(&[left.id(), right.id()], 30);
        let mut dag = RepoDag::new(repo());
        for o in [&root, &left, &right] {
            dag.insert(o.clone()).unwrap();
        }
        let mut heads = vec![left.id(), right.id()];
        heads.sort();
        assert_eq!(dag.heads(), heads);
        dag.insert(merge.clone()).unwrap();
        assert_eq!(dag.heads(), vec![merge.id()]);
        let order: Vec<OpId> = dag.topological().iter().map(|o| o.id()).collect();
        // `right` has the smaller timestamp, so it goes first among the ready pair.
        assert_eq!(order, vec![root.id(), right.id(), left.id(), merge.id()]);
        assert!(!dag.is_ancestor(&left.id(), &right.id()));
    }

    #[test]
    fn parents_come_first_even_with_skewed_timestamps() {
        // A child claiming an earlier time than its parent still follows it.
        let root = op(&[], 100);
        let child = op(&[root.id()], 1);
        let mut dag = RepoDag::new(repo());
        dag.insert(child.clone()).unwrap();
        dag.insert(root.clone()).unwrap();
        let order: Vec<OpId> = dag.topological().iter().map(|o| o.id()).collect();
        assert_eq!(order, vec![root.id(), child.id()]);
    }

    /// A random DAG: each operation names a few earlier ones as parents.
    fn random_dag() -> impl Strategy<Value = Vec<SignedOp>> {
        proptest::collection::vec(
            (
                proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
                0u64..20,
            ),
            1..24,
        )
        .prop_map(|specs| {
            let mut ops: Vec<SignedOp> = Vec::new();
            for (picks, wall) in specs {
                let parents: Vec<OpId> = if ops.is_empty() {
                    Vec::new()
                } else {
                    picks.iter().map(|p| ops[p.index(ops.len())].id()).collect()
                };
                let counter = u32::try_from(ops.len()).unwrap();
                ops.push(op_n(&parents, wall, counter));
            }
            ops
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn structure_is_independent_of_insertion_order(
            (ops, shuffled) in random_dag().prop_flat_map(|ops| {
                let shuffled = Just(ops.clone()).prop_shuffle();
                (Just(ops), shuffled)
            }),
            duplicates in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut forward = RepoDag::new(repo());
            for o in &ops {
                forward.insert(o.clone()).unwrap();
            }
            let mut scrambled = RepoDag::new(repo());
            let mut order = shuffled.clone();
            for d in &duplicates {
                order.push(shuffled[d.index(shuffled.len())].clone());
            }
            for o in order {
                scrambled.insert(o).unwrap();
            }
            prop_assert_eq!(forward.len(), ops.len());
            prop_assert_eq!(scrambled.len(), ops.len());
            prop_assert_eq!(scrambled.pending_len(), 0);
            prop_assert_eq!(forward.heads(), scrambled.heads());
            let a: Vec<OpId> = forward.topological().iter().map(|o| o.id()).collect();
            let b: Vec<OpId> = scrambled.topological().iter().map(|o| o.id()).collect();
            prop_assert_eq!(&a, &b);
            // Parents always precede children.
            let position: BTreeMap<OpId, usize> = a.iter().enumerate().map(|(i, id)| (*id, i)).collect();
            for o in &ops {
                for p in &o.op().parents {
                    prop_assert!(position[p] < position[&o.id()]);
                }
            }
        }

        #[test]
        fn partial_sets_report_what_is_missing(
            ops in random_dag(),
            drop in any::<prop::sample::Index>(),
        ) {
            let dropped = ops[drop.index(ops.len())].id();
            let mut dag = RepoDag::new(repo());
            for o in ops.iter().filter(|o| o.id() != dropped) {
                dag.insert(o.clone()).unwrap();
            }
            let has_children = ops.iter().any(|o| o.op().parents.contains(&dropped));
            prop_assert_eq!(dag.missing(), if has_children { vec![dropped] } else { vec![] });
            dag.insert(ops[drop.index(ops.len())].clone()).unwrap();
            prop_assert!(dag.missing().is_empty());
            prop_assert_eq!(dag.len(), ops.len());
        }
    }
}
