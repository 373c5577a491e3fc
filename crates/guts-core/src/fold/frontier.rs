//! Folding a local operation onto a state alone, without the DAG it was folded from.
//!
//! A [`Fold`] keeps, besides the state, what it needs to place an operation anywhere
//! in the order: every operation's causal past, the ACL effects, the deletions of refs.
//! A local operation needs almost none of that. It names every head as a parent, so it
//! descends from every operation and comes last in the topological order, and:
//! - its causal past is every operation, so the ACL it is checked against is the fold
//!   of every accepted ACL operation in topological order, which is exactly
//!   [`RepoState::access`] (the fold applies each accepted ACL effect to it in that
//!   order, and nothing else changes it);
//! - its latest parent is stamped no later than the newest operation of the DAG, so if
//!   it is stamped at least that late it is not before its parents;
//! - it is visited after everything, so the rules read the state as it is.
//!
//! What is left is the deletion bookkeeping of refs, which only ref updates and merges
//! read: those are refused here ([`FrontierError::NeedsLog`]) and go through a `Fold`.
//! Storage uses this to append to a repository loaded from its checkpoint without
//! reading its log.

use std::collections::BTreeMap;

use super::past::Pasts;
use super::{Ancestry, Fold, Folder, Rejection};
use crate::hlc::Hlc;
use crate::ids::RepoId;
use crate::op::{Payload, SignedOp};

use super::state::RepoState;

/// Why [`append_at_frontier`] did not fold an operation. The state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontierError {
    /// The rules refuse it, exactly as a fold of the DAG with it would.
    #[error("operation rejected: {0}")]
    Rejected(Rejection),
    /// Deciding needs more than the state (a ref update or a merge, or a timestamp
    /// before the newest operation's): fold it with a [`Fold`] over the DAG.
    #[error("the operation needs the operation log to be folded")]
    NeedsLog,
    /// The operation belongs to another repository.
    #[error("the operation is for another repository")]
    WrongRepo,
}

/// Whether [`append_at_frontier`] can decide an operation with this payload: not ref
/// updates and merges, which read the history of deletions of refs.
pub fn folds_at_frontier(payload: &Payload) -> bool {
    !matches!(
        payload,
        Payload::UpdateRef { .. } | Payload::MergePull { .. }
    )
}

/// Folds `op` onto `state`, the fold of a DAG of repository `repo` whose newest
/// operation is stamped `newest`. `op` must name every head of that DAG as a parent
/// (the caller checks: this function cannot). On success `state` equals the fold of the
/// DAG with `op`, counting it as applied; on any error it is unchanged.
pub fn append_at_frontier(
    state: &mut RepoState,
    repo: RepoId,
    op: &SignedOp,
    newest: Hlc,
    ancestry: &dyn Ancestry,
) -> Result<(), FrontierError> {
    if op.op().repo != repo {
        return Err(FrontierError::WrongRepo);
    }
    if !folds_at_frontier(&op.op().payload) || op.op().timestamp < newest {
        return Err(FrontierError::NeedsLog);
    }
    // The past of an operation after everything: every accepted ACL effect, in order.
    let past = Pasts::everything(state.access.clone());
    let mut folder = Folder {
        ancestry,
        fold: Fold {
            repo,
            state: std::mem::take(state),
            deletions: BTreeMap::new(),
            effects: Vec::new(),
            pasts: past,
            info: Vec::new(),
        },
    };
    // `apply` checks everything before it mutates anything, so a refusal leaves the
    // state as it was.
    let outcome = folder.apply(op, 0, Some(newest));
    *state = folder.fold.state;
    match outcome {
        Ok(_) => {
            state.applied = state.applied.saturating_add(1);
            Ok(())
        }
        Err(rejection) => Err(FrontierError::Rejected(rejection)),
    }
}
