//! The push path: a git push's ref updates applied as signed `UpdateRef` operations,
//! each a compare-and-swap against the folded state, and git's answer for each one.
//! Kept apart from `repos.rs` because it is what guts-git's receive-pack calls.

use std::sync::Arc;

use guts_core::{
    Ancestry, AppendError, Hlc, Keypair, ObjectId, OpId, Operation, Payload, Rejection, RepoId,
};

use super::cache::Loaded;
use super::rows::RowsUpdate;
use super::{Engine, GitAncestry, RepoError, Repositories, ThreadCounts};
use crate::error::StoreError;
use crate::schema::{OPS, REPO_OPS};

/// One ref update of a push: what the client believes the ref is (`old`) and what it
/// wants it to become (`None` = absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefCommand {
    pub name: String,
    pub old: Option<ObjectId>,
    pub new: Option<ObjectId>,
}

/// Why one ref update of a push was refused; `Display` is what git shows the user after
/// `! [remote rejected]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefRefusal {
    /// The ref is no longer what the client saw: another push won the race.
    #[error("failed to update ref: {name} moved during the push (non-fast-forward); fetch first")]
    Stale { name: String },
    #[error("{}", rejection_message(.0))]
    Rejected(Rejection),
    /// Another update of the same atomic push was refused.
    #[error("atomic push failed")]
    AtomicAborted,
}

fn rejection_message(rejection: &Rejection) -> String {
    use guts_core::ProtectedAction;
    match rejection {
        Rejection::NonFastForward => "non-fast-forward".to_owned(),
        Rejection::NotPermitted { .. } => "permission denied: write access required".to_owned(),
        Rejection::Protected(ProtectedAction::ForcePush) => {
            "protected branch: force-push is not allowed".to_owned()
        }
        Rejection::Protected(ProtectedAction::Deletion) => {
            "protected branch: deletion is not allowed".to_owned()
        }
        Rejection::ReservedRef => "refs under refs/guts/ are reserved".to_owned(),
        other => other.to_string(),
    }
}

impl Repositories {
    /// Applies a push's ref updates as signed `UpdateRef` operations by `key`'s holder,
    /// then moves git's refs to match. The objects must already be in the repository.
    ///
    /// Each update is a compare-and-swap against the folded state: it applies only if
    /// the ref still is `old` (git's semantics; the fold's concurrent-update rule is for
    /// operations that did not see each other, which a local push always does), and
    /// only if the fold accepts it (permission, fast-forward or force, protection,
    /// ref-name rules). With `atomic`, one refusal refuses all and nothing is stored.
    /// Returns one result per command, in order; `Err` only for storage failures.
    pub async fn update_refs(
        &self,
        id: RepoId,
        key: &Keypair,
        commands: Vec<RefCommand>,
        atomic: bool,
    ) -> Result<Vec<Result<(), RefRefusal>>, RepoError> {
        let entry = self.entry(id)?;
        let mut slot = entry.engine.lock().await;
        let engine = self.take_engine(&entry, &mut slot, id).await?;
        // Shares every node with the engine's: O(1).
        let base_threads = (engine.dag.len(), engine.fold.state().collab.threads.clone());
        let stamps: Vec<Hlc> = commands.iter().map(|_| self.tick()).collect();
        let (git, key) = (self.git.clone(), key.clone());
        let (engine, results, ops, rejections) = tokio::task::spawn_blocking(move || {
            let mut engine = engine;
            let repo = git.open_repo(&id.to_string()).ok();
            let ancestry = GitAncestry(repo);
            let order = creation_order(&commands, engine.fold.state());
            let mut commands: Vec<Option<RefCommand>> = commands.into_iter().map(Some).collect();
            let mut results: Vec<Result<(), RefRefusal>> = Vec::with_capacity(commands.len());
            // Every slot is written below: each index of `order` is visited once.
            results.resize(commands.len(), Err(RefRefusal::AtomicAborted));
            let mut ops = Vec::new();
            let mut rejections = Vec::new();
            for (index, at) in order.into_iter().zip(stamps) {
                let Some(command) = commands.get_mut(index).and_then(Option::take) else {
                    continue;
                };
                let Some(result) = results.get_mut(index) else {
                    continue;
                };
                let Engine { dag, fold, .. } = &mut *engine;
                let current = fold.state().refs.get(&command.name).map(|r| r.target);
                if current != command.old {
                    *result = Err(RefRefusal::Stale { name: command.name });
                    continue;
                }
                let force = match (command.old, command.new) {
                    (Some(old), Some(new)) => !ancestry.is_ancestor(&old, &new),
                    _ => false,
                };
                let signed = Operation {
                    repo: id,
                    parents: dag.heads(),
                    author: key.public(),
                    timestamp: at,
                    payload: Payload::UpdateRef {
                        name: command.name,
                        old: command.old,
                        new: command.new,
                        force,
                    },
                }
                .sign(&key);
                let signed = match signed {
                    Ok(signed) => signed,
                    Err(e) => return Err(RepoError::Encode(e)),
                };
                match fold.append(dag, signed.clone(), &ancestry) {
                    Ok(()) => {
                        engine.note(&signed);
                        ops.push(signed);
                        *result = Ok(());
                    }
                    Err(AppendError::Rejected(rejection)) => {
                        rejections.push(rejection.clone());
                        *result = Err(RefRefusal::Rejected(rejection));
                    }
                    Err(other) => return Err(StoreError::Corrupt(other.to_string()).into()),
                }
            }
            // A ref update can close or merge pull requests.
            engine.counts = ThreadCounts::of(engine.fold.state());
            Ok((engine, results, ops, rejections))
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("fold task failed: {e}")))??;
        for rejection in &rejections {
            self.count_rejection(rejection);
        }
        let refused = results.iter().any(Result::is_err);
        if atomic && refused {
            // Accepted updates are folded in memory but will not be stored: rebuild
            // the engine from the log next time (or keep it if nothing was folded).
            *slot = if ops.is_empty() {
                Some(Loaded::Log(engine))
            } else {
                None
            };
            return Ok(results
                .into_iter()
                .map(|r| r.and(Err(RefRefusal::AtomicAborted)))
                .collect());
        }
        if ops.is_empty() {
            *slot = Some(Loaded::Log(engine));
            return Ok(results);
        }
        let encoded: Vec<(OpId, Vec<u8>)> = ops.iter().map(|op| (op.id(), op.encode())).collect();
        // Pushed here, so announced from here (see `crate::hooks`).
        let traced = crate::hooks::outbox_value(&id, engine.dag.len());
        let outbox: Vec<Vec<u8>> = ops
            .iter()
            .map(|op| crate::hooks::outbox_key(op.op().timestamp.wall_ms, &op.id()))
            .collect();
        let state = engine.fold.state();
        let hooked = state.hooks.any_active();
        let owner = state.meta.as_ref().map(|m| m.owner.to_ascii_lowercase());
        let view = Arc::new(engine.view());
        let summary = view.summary.encode();
        let rows = RowsUpdate::between(Some((base_threads.0, &base_threads.1)), &view);
        let written = self
            .store
            .write("update_refs", move |txn| {
                super::put_summary(txn, id, &summary)?;
                rows.write(txn)?;
                let mut table = txn.open_table(OPS)?;
                let mut members = txn.open_multimap_table(REPO_OPS)?;
                for (op_id, bytes) in &encoded {
                    table.insert(op_id.as_bytes().as_slice(), bytes.as_slice())?;
                    members.insert(id.as_bytes().as_slice(), op_id.as_bytes().as_slice())?;
                }
                crate::hooks::hold_if_hooked(
                    txn,
                    crate::hooks::HOOK_OUTBOX,
                    hooked,
                    owner.as_deref(),
                    &outbox,
                    &traced,
                )
            })
            .await;
        if let Err(e) = written {
            // The engine holds operations the disk does not (the slot stays empty).
            entry.unload_view();
            self.charge(&entry, 0);
            return Err(e.into());
        }
        let size = super::cache::estimate(&engine);
        *slot = Some(Loaded::Log(engine));
        entry.publish(&view);
        self.charge(&entry, size);
        // Still under the engine lock, so git's refs change in the fold's order.
        self.sync_git_refs(id, &view.state).await?;
        drop(slot);
        self.enforce_budget();
        self.notify(id);
        Ok(results)
    }
}

/// The order in which a push's commands are applied: the order the client sent them,
/// except that into a repository without branches the branch that should become the
/// default goes first (the configured default branch, else `main`, else `master`),
/// because the fold makes the first branch created the default. Without this, pushing
/// `develop` and `master` together would make `develop` the default only because git
/// sends refs in name order.
fn creation_order(commands: &[RefCommand], state: &guts_core::RepoState) -> Vec<usize> {
    let mut order: Vec<usize> = (0..commands.len()).collect();
    if state.has_branches() {
        return order;
    }
    let configured = state.meta.as_ref().map(|m| m.default_branch.as_str());
    let rank = |command: &RefCommand| -> u8 {
        let short = command.name.strip_prefix("refs/heads/");
        match short {
            _ if command.new.is_none() => 3,
            Some(s) if Some(s) == configured => 0,
            Some("main") => 1,
            Some("master") => 2,
            _ => 3,
        }
    };
    order.sort_by_key(|&i| commands.get(i).map_or(3, rank));
    order
}
