//! The deterministic fold of a repository's operation DAG into its state.
//!
//! State is never stored as truth: it is what [`fold`] computes from the complete
//! operations of a [`RepoDag`], visited in the DAG's topological order (ties broken by
//! `(timestamp, id)`). The order and every rule below depend only on the set of
//! operations and on git ancestry, so two nodes holding the same operations and objects
//! hold byte-identical state ([`RepoState::encode`]), whatever order the operations
//! arrived in. An operation that breaks a rule is recorded in
//! [`RepoState::rejected`] and changes nothing else; it still counts as a parent, so its
//! descendants are folded normally.
//!
//! # Permissions in the causal past
//!
//! An operation is authorised against the ACL *its author could have seen*: the fold of
//! the accepted ACL operations (the `CreateRepo` that makes its author owner, and
//! `SetRole`s) among its ancestors, applied in topological order. A revocation that is
//! concurrent with a push therefore does not retroactively reject the push, and no
//! author can be rejected because of an operation they could not know about.
//!
//! Computing that ACL per operation by walking ancestors would be O(n²). Instead each
//! accepted ACL operation gets a bit (in topological order), each operation's causal
//! past is the bit set of ACL operations among its ancestors (the union of its
//! parents' sets plus the parents themselves), and bit sets are interned with the ACL
//! they produce. On a linear history an operation shares its parent's set in O(1); a
//! new set (after an ACL operation, or at a merge that joins different sets) costs
//! O(k/64) to build and at most O(k) ACL steps to evaluate, for k accepted ACL
//! operations. Restricting the global topological order to a set of ancestors gives
//! exactly the topological order of that set (Kahn's algorithm with a fixed priority
//! commutes with taking down-closed subsets), so replaying bits in ascending order is
//! the ACL fold the rule describes.
//!
//! An accepted `SetRole` applies unconditionally wherever it is in the past: when an
//! admin demotes a collaborator while the owner concurrently promotes them to admin,
//! the one later in topological order wins, everywhere alike.
//!
//! Branch protections, in contrast, are read from the state at the operation's
//! position in the global order: they constrain what a ref may become, not who may act.

use std::collections::BTreeMap;

use crate::check_runs::Author;
use crate::checks::CommitStatus;
use crate::collab::{Actor, Assignment, Merged, NewPull};
use crate::dag::{DagError, RepoDag};
use crate::hlc::Hlc;
use crate::ids::{ObjectId, OpId, RepoId};
use crate::names::{self, NameError};
use crate::op::{Payload, Role, SignedOp};

mod decode;
mod frontier;
mod header;
mod past;
mod rejection;
mod state;

pub use frontier::{FrontierError, append_at_frontier, folds_at_frontier};
pub use header::RepoHeader;
use past::{AclEffect, Pasts, apply_effect};
pub use rejection::{ProtectedAction, Rejection};
pub use state::{Access, MAX_FORMER_NAMES, RefState, RepoMeta, RepoState};

/// Version byte leading [`RepoState::encode`].
const STATE_FORMAT_VERSION: u8 = 4;
/// Refs under this prefix belong to Guts (conflict refs) and cannot be pushed.
pub const RESERVED_REF_PREFIX: &str = "refs/guts/";
/// Where losing tips of concurrent ref updates are kept.
pub const CONFLICT_REF_PREFIX: &str = "refs/guts/conflicts/";

/// Git commit ancestry, answered by storage.
pub trait Ancestry {
    /// Whether `ancestor` is reachable from `descendant` through commit parents; true
    /// when they are equal. Must be a function of the object graph alone (storage
    /// inserts a ref operation only once its objects are present, so every node gives
    /// the same answers for the operations it folds).
    fn is_ancestor(&self, ancestor: &ObjectId, descendant: &ObjectId) -> bool;
}

/// The conflict ref under which a losing tip of `name` set by `op` is kept.
pub fn conflict_ref_name(name: &str, op: &OpId) -> String {
    let short = name.strip_prefix("refs/").unwrap_or(name);
    format!("{CONFLICT_REF_PREFIX}{short}/{op}")
}

/// Folds the complete operations of `dag` into state. A pure function of the DAG's
/// operation set and of `ancestry`.
pub fn fold(dag: &RepoDag, ancestry: &dyn Ancestry) -> RepoState {
    Fold::new(dag, ancestry).into_state()
}

/// A fold that can be continued: the state of a DAG plus what the fold needs to visit
/// more operations, so a local append costs one visit instead of a re-fold.
///
/// A local operation names every current head as a parent, so it descends from every
/// operation in the DAG and comes last in the topological order; folding the DAG with
/// it is folding the DAG, then visiting it. [`Fold::append`] relies on exactly that
/// (and checks it). Operations from elsewhere can land anywhere in the order: for them,
/// build a new `Fold`.
#[derive(Debug, Clone)]
pub struct Fold {
    repo: RepoId,
    state: RepoState,
    deletions: BTreeMap<String, (Hlc, OpId)>,
    effects: Vec<AclEffect>,
    pasts: Pasts,
    info: Vec<OpInfo>,
}

/// Why [`Fold::append`] did not add an operation. In every case the DAG and the fold
/// are unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The rules refuse it; nothing was inserted.
    #[error("operation rejected: {0}")]
    Rejected(Rejection),
    /// Its parents are not exactly the DAG's heads, so it is not last in the order.
    #[error("the operation's parents are not the current heads")]
    NotAtHeads,
    /// The fold does not cover the DAG it is given.
    #[error("the fold does not match the DAG")]
    Stale,
    #[error("the operation is already in the DAG")]
    Duplicate,
    #[error(transparent)]
    Dag(#[from] DagError),
}

impl Fold {
    /// Folds every complete operation of `dag`.
    pub fn new(dag: &RepoDag, ancestry: &dyn Ancestry) -> Fold {
        let mut folder = Folder {
            ancestry,
            fold: Fold {
                repo: dag.repo(),
                state: RepoState::default(),
                deletions: BTreeMap::new(),
                effects: Vec::new(),
                pasts: Pasts::new(),
                info: vec![OpInfo::default(); dag.len()],
            },
        };
        for i in dag.order() {
            let Some(op) = dag.op_at(i) else {
                continue;
            };
            folder.visit(i, op, dag.parents_at(i));
        }
        folder.fold
    }

    pub fn state(&self) -> &RepoState {
        &self.state
    }

    pub fn into_state(self) -> RepoState {
        self.state
    }

    /// Checks `op`, which must name every head of `dag` as a parent, and if the rules
    /// accept it inserts it into `dag` and folds it: the result equals
    /// `Fold::new(&dag_with_op)`. If they refuse it, nothing changes and the rejection
    /// is returned (a refused local operation is never stored).
    pub fn append(
        &mut self,
        dag: &mut RepoDag,
        op: SignedOp,
        ancestry: &dyn Ancestry,
    ) -> Result<(), AppendError> {
        if op.op().repo != dag.repo() {
            return Err(DagError::WrongRepo {
                expected: dag.repo(),
                found: op.op().repo,
            }
            .into());
        }
        if self.repo != dag.repo() || self.info.len() != dag.len() || dag.pending_len() != 0 {
            return Err(AppendError::Stale);
        }
        if dag.contains(&op.id()) {
            return Err(AppendError::Duplicate);
        }
        if op.op().parents != dag.heads() {
            return Err(AppendError::NotAtHeads);
        }
        let parents: Vec<usize> = op
            .op()
            .parents
            .iter()
            .filter_map(|p| dag.index_of(p))
            .collect();
        let mut folder = Folder {
            ancestry,
            fold: std::mem::replace(self, Fold::empty(dag.repo())),
        };
        let past = folder
            .fold
            .pasts
            .combine(&parents, &folder.fold.info, &folder.fold.effects);
        // `apply` checks everything before it mutates anything, so a refusal leaves
        // the fold exactly as it was.
        let latest = latest_parent(&parents, &folder.fold.info);
        let outcome = folder.apply(&op, past, latest);
        *self = folder.fold;
        let effect = outcome.map_err(AppendError::Rejected)?;
        let timestamp = op.op().timestamp;
        let expected = dag.len();
        dag.insert(op)?;
        if dag.len() != expected + 1 {
            // Cannot happen for a fresh local operation (nothing can wait for it),
            // but if something was promoted with it, start over rather than guess.
            *self = Fold::new(dag, ancestry);
            return Ok(());
        }
        self.state.applied = self.state.applied.saturating_add(1);
        let acl_bit = effect.map(|effect| {
            self.effects.push(effect);
            self.effects.len() - 1
        });
        self.info.push(OpInfo {
            past,
            acl_bit,
            at: timestamp,
        });
        Ok(())
    }

    fn empty(repo: RepoId) -> Fold {
        Fold {
            repo,
            state: RepoState::default(),
            deletions: BTreeMap::new(),
            effects: Vec::new(),
            pasts: Pasts::new(),
            info: Vec::new(),
        }
    }
}

type Acl = Access;

/// The latest timestamp among the operations at `parents` (local indices).
fn latest_parent(parents: &[usize], info: &[OpInfo]) -> Option<Hlc> {
    parents
        .iter()
        .filter_map(|&p| info.get(p))
        .map(|i| i.at)
        .max()
}

/// Refuses an operation stamped before its latest parent ([`Rejection::BeforeParents`]).
/// Only the causal past decides, so every node refuses the same operations. (An honest
/// hybrid clock stamps strictly later; an equal stamp is let through, the id breaking
/// the tie as everywhere else.)
fn after_parents(signed: &SignedOp, latest: Option<Hlc>) -> Result<(), Rejection> {
    let at = signed.op().timestamp;
    match latest {
        Some(parent) if at < parent => Err(Rejection::BeforeParents {
            at: at.wall_ms,
            parent: parent.wall_ms,
        }),
        _ => Ok(()),
    }
}

/// What the fold remembers about an operation it has visited, by local index.
#[derive(Debug, Clone, Copy, Default)]
struct OpInfo {
    /// Interned set of accepted ACL operations among the strict ancestors.
    past: usize,
    /// This operation's bit, if it is an accepted ACL operation.
    acl_bit: Option<usize>,
    /// This operation's timestamp: its children must be stamped later.
    at: Hlc,
}

/// The fold in progress: a [`Fold`] and the ancestry oracle it consults.
struct Folder<'a> {
    ancestry: &'a dyn Ancestry,
    fold: Fold,
}

impl Folder<'_> {
    fn visit(&mut self, i: usize, op: &SignedOp, parents: &[usize]) {
        let past = self
            .fold
            .pasts
            .combine(parents, &self.fold.info, &self.fold.effects);
        let latest = latest_parent(parents, &self.fold.info);
        let outcome = self.apply(op, past, latest);
        let mut acl_bit = None;
        match outcome {
            Ok(effect) => {
                self.fold.state.applied = self.fold.state.applied.saturating_add(1);
                if let Some(effect) = effect {
                    acl_bit = Some(self.fold.effects.len());
                    self.fold.effects.push(effect);
                }
            }
            Err(rejection) => {
                self.fold.state.rejected.insert(op.id(), rejection);
            }
        }
        if let Some(slot) = self.fold.info.get_mut(i) {
            *slot = OpInfo {
                past,
                acl_bit,
                at: op.op().timestamp,
            };
        }
    }

    /// Checks and applies one operation. Every check runs before any mutation, so a
    /// rejected operation changes nothing. Returns the ACL effect of an accepted ACL
    /// operation.
    /// `latest`: the latest timestamp among its parents.
    fn apply(
        &mut self,
        signed: &SignedOp,
        past: usize,
        latest: Option<Hlc>,
    ) -> Result<Option<AclEffect>, Rejection> {
        let op = signed.op();
        if let Payload::CreateRepo {
            owner,
            name,
            description,
            private,
            default_branch,
        } = &op.payload
        {
            if !op.parents.is_empty() {
                return Err(Rejection::CreateWithParents);
            }
            if RepoId::derive(&op.author, owner, name, op.timestamp) != self.fold.repo {
                return Err(Rejection::RepoIdMismatch);
            }
            if self.fold.state.meta.is_some() {
                return Err(Rejection::AlreadyCreated);
            }
            names::validate_login(owner).map_err(invalid("owner"))?;
            names::validate_repo_name(name).map_err(invalid("name"))?;
            validate_default_branch(default_branch)?;
            self.fold.state.meta = Some(RepoMeta {
                owner: owner.clone(),
                name: name.clone(),
                description: description.clone(),
                private: *private,
                default_branch: default_branch.clone(),
                created_by: op.author,
                created_at: op.timestamp,
                named_at: op.timestamp,
                former_names: Vec::new(),
                homepage: String::new(),
                has_issues: true,
                archived: false,
            });
            let effect = AclEffect::Collaborator(op.author, Some(Role::Owner));
            apply_effect(&mut self.fold.state.access, &effect);
            return Ok(Some(effect));
        }

        after_parents(signed, latest)?;
        if self.fold.state.meta.is_none() {
            return Err(Rejection::NoRepo);
        }
        if self.fold.state.deleted {
            return Err(Rejection::RepoDeleted);
        }
        let empty = Acl::default();
        let acl = self.fold.pasts.acl(past).unwrap_or(&empty);
        let held = acl.role(&op.author);
        let require = |required: Role| {
            if held >= Some(required) {
                Ok(())
            } else {
                Err(Rejection::NotPermitted { required, held })
            }
        };

        if self.fold.state.meta.as_ref().is_some_and(|m| m.archived)
            && !archive_permits(&op.payload)
        {
            return Err(Rejection::Archived);
        }

        match &op.payload {
            // Handled above; a creation reaching this point would be a second one.
            Payload::CreateRepo { .. } => Err(Rejection::AlreadyCreated),
            Payload::RepoSettings {
                name,
                homepage,
                has_issues,
                archived,
            } => {
                require(Role::Admin)?;
                if let Some(name) = name {
                    names::validate_repo_name(name).map_err(invalid("name"))?;
                }
                if let Some(homepage) = homepage
                    && (homepage.len() > MAX_HOMEPAGE_BYTES
                        || homepage.chars().any(char::is_control))
                {
                    return Err(Rejection::InvalidText { field: "homepage" });
                }
                if let Some(meta) = &mut self.fold.state.meta {
                    if let Some(name) = name.as_ref().filter(|n| **n != meta.name) {
                        let old = std::mem::replace(&mut meta.name, name.clone());
                        meta.former_names.retain(|n| {
                            !n.eq_ignore_ascii_case(name) && !n.eq_ignore_ascii_case(&old)
                        });
                        meta.former_names.push(old);
                        if meta.former_names.len() > MAX_FORMER_NAMES {
                            meta.former_names.remove(0);
                        }
                        meta.named_at = op.timestamp;
                    }
                    if let Some(homepage) = homepage {
                        meta.homepage.clone_from(homepage);
                    }
                    if let Some(has_issues) = has_issues {
                        meta.has_issues = *has_issues;
                    }
                    if let Some(archived) = archived {
                        meta.archived = *archived;
                    }
                }
                Ok(None)
            }
            Payload::UpdateRepo {
                description,
                private,
                default_branch,
            } => {
                require(Role::Admin)?;
                if let Some(branch) = default_branch {
                    validate_default_branch(branch)?;
                }
                if let Some(meta) = &mut self.fold.state.meta {
                    if let Some(description) = description {
                        meta.description.clone_from(description);
                    }
                    if let Some(private) = private {
                        meta.private = *private;
                    }
                    if let Some(branch) = default_branch {
                        meta.default_branch.clone_from(branch);
                    }
                }
                Ok(None)
            }
            Payload::DeleteRepo => {
                require(Role::Owner)?;
                self.fold.state.deleted = true;
                Ok(None)
            }
            Payload::SetRole { user, role } => {
                require(Role::Admin)?;
                // The effective role: an admin through the organization is an admin
                // whom only the owner may touch.
                let target = acl.role(user);
                if *role == Some(Role::Owner) || target == Some(Role::Owner) {
                    return Err(Rejection::OwnerImmutable);
                }
                if target == Some(Role::Admin) && *user != op.author && held != Some(Role::Owner) {
                    return Err(Rejection::AdminRequiresOwner);
                }
                let effect = AclEffect::Collaborator(*user, *role);
                apply_effect(&mut self.fold.state.access, &effect);
                Ok(Some(effect))
            }
            Payload::SetOrgAccess { user, role } => {
                require(Role::Owner)?;
                if *role == Some(Role::Owner) || acl.role(user) == Some(Role::Owner) {
                    return Err(Rejection::OwnerImmutable);
                }
                let effect = AclEffect::Org(*user, *role);
                apply_effect(&mut self.fold.state.access, &effect);
                Ok(Some(effect))
            }
            Payload::SetBranchProtection { branch, protection } => {
                require(Role::Admin)?;
                validate_pushable_ref(branch)?;
                if let Some(checks) = protection.as_ref().and_then(|p| p.required_checks.as_ref()) {
                    crate::checks::validate_required(checks)?;
                }
                match protection {
                    Some(protection) => {
                        self.fold
                            .state
                            .protections
                            .insert(branch.clone(), protection.clone());
                    }
                    None => {
                        self.fold.state.protections.remove(branch);
                    }
                }
                Ok(None)
            }
            Payload::UpdateRef {
                name,
                old,
                new,
                force,
            } => {
                require(Role::Write)?;
                let reviewed = self
                    .fold
                    .state
                    .protections
                    .get(name)
                    .is_some_and(|p| p.required_approvals > 0);
                if reviewed && new.is_some() {
                    return Err(Rejection::Protected(ProtectedAction::DirectPush));
                }
                let state = &self.fold.state;
                if let (Some(new), Some(required)) = (new, state.required_checks(name)) {
                    state.checks.require(required, new)?;
                }
                let first_branch = new.is_some() && !self.fold.state.has_branches();
                self.update_ref(signed, name, *old, *new, *force)?;
                if first_branch {
                    self.first_branch(name);
                }
                Ok(None)
            }
            Payload::SetStatus {
                commit,
                state,
                context,
                description,
                target_url,
            } => {
                require(Role::Write)?;
                let status = CommitStatus {
                    state: *state,
                    context: context.clone(),
                    description: description.clone(),
                    target_url: target_url.clone(),
                    creator: op.author,
                    at: op.timestamp,
                    op: signed.id(),
                };
                self.fold.state.checks.set_status(*commit, status)?;
                Ok(None)
            }
            Payload::SetHook { hook, config } => {
                require(Role::Admin)?;
                let id = signed.id();
                let hooks = &mut self.fold.state.hooks;
                hooks.apply(id, op.author, op.timestamp, *hook, config.as_ref())?;
                Ok(None)
            }
            Payload::CreateCheckRun { head, fields } => {
                require(Role::Write)?;
                let by = Author {
                    key: op.author,
                    at: op.timestamp,
                    op: signed.id(),
                };
                self.fold.state.checks.runs.create(*head, fields, by)?;
                Ok(None)
            }
            Payload::UpdateCheckRun { run, fields } => {
                require(Role::Write)?;
                let runs = &mut self.fold.state.checks.runs;
                runs.update(run, fields, op.timestamp)?;
                Ok(None)
            }
            collab => {
                let actor = Actor {
                    key: op.author,
                    held,
                    at: op.timestamp,
                    op: signed.id(),
                    public: self.fold.state.meta.as_ref().is_some_and(|m| !m.private),
                };
                self.apply_collab(signed, &actor, past, collab)?;
                Ok(None)
            }
        }
    }

    /// Issues, pull requests and their discussion; the rules live in [`crate::collab`],
    /// this adds what needs refs, ancestry and the ACL of the causal past (`past`).
    fn apply_collab(
        &mut self,
        signed: &SignedOp,
        actor: &Actor,
        past: usize,
        payload: &Payload,
    ) -> Result<(), Rejection> {
        let branch = |state: &RepoState, name: &str| state.branch(name);
        if matches!(payload, Payload::OpenIssue { .. })
            && self.fold.state.meta.as_ref().is_some_and(|m| !m.has_issues)
        {
            return Err(Rejection::IssuesDisabled);
        }
        let collab = &mut self.fold.state.collab;
        match payload {
            Payload::OpenIssue {
                number,
                title,
                body,
                labels,
                assignees,
            } => collab.open_issue(actor, *number, title, body, labels, assignees),
            Payload::OpenPull {
                number,
                title,
                body,
                head,
                base,
                draft,
            } => {
                let state = &self.fold.state;
                let head_sha = branch(state, head).ok_or(Rejection::BranchMissing)?;
                let base_sha = branch(state, base).ok_or(Rejection::BranchMissing)?;
                if self.ancestry.is_ancestor(&head_sha, &base_sha) {
                    return Err(Rejection::NoCommits);
                }
                let new = NewPull {
                    number: *number,
                    title,
                    body,
                    head,
                    base,
                    draft: *draft,
                    head_sha,
                    base_sha,
                };
                self.fold.state.collab.open_pull(actor, &new)
            }
            Payload::EditThread { thread, edit } => {
                let base_exists = edit
                    .base
                    .as_ref()
                    .is_some_and(|b| branch(&self.fold.state, b).is_some());
                self.fold
                    .state
                    .collab
                    .edit_thread(actor, thread, edit, base_exists)
            }
            Payload::LabelThread {
                thread,
                add,
                remove,
            } => collab.label_thread(actor, thread, add, remove),
            Payload::AssignThread {
                thread,
                as_: Assignment::Assignee,
                add,
                remove,
            } => collab.assign_thread(actor, thread, add, remove),
            Payload::AssignThread {
                thread,
                as_: Assignment::Reviewer,
                add,
                remove,
            } => {
                // Reviews are requested from people with a role, as GitHub requests
                // them only from collaborators: the ACL of the request's causal past.
                let empty = Acl::default();
                let acl = self.fold.pasts.acl(past).unwrap_or(&empty);
                if add.iter().any(|user| acl.role(user).is_none()) {
                    return Err(Rejection::NotPermitted {
                        required: Role::Read,
                        held: None,
                    });
                }
                collab.request_reviewers(actor, thread, add, remove)
            }
            Payload::Comment { thread, body } => collab.comment(actor, thread, body),
            Payload::EditReviewComment {
                review,
                index,
                body,
            } => collab.edit_review_comment(actor, review, *index, body.as_deref()),
            Payload::EditComment { comment, body } => {
                collab.edit_comment(actor, comment, body.as_deref())
            }
            Payload::SetLabel { name, label } => collab.set_label(actor, name, label.as_ref()),
            Payload::Review {
                pull,
                verdict,
                body,
                commit,
                comments,
            } => collab.review(actor, pull, *verdict, body, *commit, comments),
            Payload::MergePull {
                pull,
                method,
                head,
                old,
                new,
            } => {
                let state = &self.fold.state;
                let empty = Acl::default();
                // Approvals are re-checked against the merge's own causal past: a
                // reviewer whose write access the merger saw revoked no longer counts.
                let acl = self.fold.pasts.acl(past).unwrap_or(&empty);
                // With stale reviews dismissed, approvals must be of the head the merge
                // says it merges (recorded as `Merged::head`): the head the merging
                // node saw, so a push concurrent with the merge does not unmerge it.
                // A merger who names another head gains nothing: `new` is theirs to
                // choose anyway, as it is for any writer's push.
                let base = state
                    .collab
                    .check_merge(actor, pull, &state.protections, acl, head)?;
                if let Some(required) = state.required_checks(&base) {
                    state.checks.require(required, head)?;
                    if required.strict && !self.ancestry.is_ancestor(old, head) {
                        return Err(Rejection::HeadBehind);
                    }
                }
                self.update_ref(signed, &base, Some(*old), Some(*new), false)?;
                let merged = Merged {
                    by: actor.key,
                    at: actor.at,
                    method: *method,
                    head: *head,
                    commit: *new,
                };
                self.fold.state.collab.mark_merged(pull, merged);
                Ok(())
            }
            // Repository payloads are applied by `apply`.
            Payload::CreateRepo { .. }
            | Payload::UpdateRepo { .. }
            | Payload::RepoSettings { .. }
            | Payload::DeleteRepo
            | Payload::SetRole { .. }
            | Payload::SetOrgAccess { .. }
            | Payload::SetBranchProtection { .. }
            | Payload::UpdateRef { .. }
            | Payload::SetHook { .. }
            | Payload::SetStatus { .. }
            | Payload::CreateCheckRun { .. }
            | Payload::UpdateCheckRun { .. } => Err(Rejection::AlreadyCreated),
        }
    }

    /// The first branch of a repository that has none becomes its default branch when
    /// it is not the configured one (which therefore does not exist): a project pushed
    /// with `master` into a repository created with `main` checks out `master`, as on
    /// GitHub. A rule of the fold, not of the pushing node, so every node (and every
    /// replay of the log) picks the same branch: the first one in fold order.
    fn first_branch(&mut self, name: &str) {
        let Some(short) = name.strip_prefix("refs/heads/") else {
            return;
        };
        if self.fold.state.refs.contains_key(name)
            && let Some(meta) = &mut self.fold.state.meta
            && meta.default_branch != short
            && names::validate_branch_name(short).is_ok()
        {
            short.clone_into(&mut meta.default_branch);
        }
    }

    /// Git's push semantics when `old` matches the folded value, and the conflict rule
    /// of DESIGN section 4 when a concurrent update was folded first.
    fn update_ref(
        &mut self,
        signed: &SignedOp,
        name: &str,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        force: bool,
    ) -> Result<(), Rejection> {
        validate_pushable_ref(name)?;
        if old.is_none() && new.is_none() {
            return Err(Rejection::EmptyRefUpdate);
        }
        let protection = self
            .fold
            .state
            .protections
            .get(name)
            .cloned()
            .unwrap_or_default();
        if let (Some(old), Some(new)) = (old, new)
            && !self.ancestry.is_ancestor(&old, &new)
        {
            if !force {
                return Err(Rejection::NonFastForward);
            }
            if protection.no_force_push {
                return Err(Rejection::Protected(ProtectedAction::ForcePush));
            }
        }
        if new.is_none() && protection.no_deletion {
            return Err(Rejection::Protected(ProtectedAction::Deletion));
        }

        let mine = (signed.op().timestamp, signed.id());
        let current = self.fold.state.refs.get(name).copied();
        if current.is_none()
            && new.is_some()
            && let Some(existing) = self.path_conflict(name)
        {
            return Err(Rejection::RefPathConflict { existing });
        }
        if old == current.map(|c| c.target) {
            self.set_ref(name, new, mine);
            return Ok(());
        }
        match (current, new) {
            (Some(cur), Some(new)) => {
                if self.ancestry.is_ancestor(&cur.target, &new) {
                    // A fast-forward of the concurrent update: nothing is lost.
                    self.set_ref(name, Some(new), mine);
                } else if self.ancestry.is_ancestor(&new, &cur.target) {
                    // The concurrent update already contains ours.
                } else if mine > (cur.at, cur.op) {
                    self.keep_conflict(name, &cur.op, cur.target);
                    self.set_ref(name, Some(new), mine);
                } else {
                    self.keep_conflict(name, &signed.id(), new);
                }
            }
            (Some(cur), None) => {
                // A deletion against a concurrent update: the later wins, and a losing
                // tip is kept.
                if mine > (cur.at, cur.op) {
                    self.keep_conflict(name, &cur.op, cur.target);
                    self.set_ref(name, None, mine);
                }
            }
            (None, Some(new)) => match self.fold.deletions.get(name) {
                Some(&deletion) if deletion > mine => {
                    self.keep_conflict(name, &signed.id(), new);
                }
                // Our update beats a concurrent deletion, or there is nothing to
                // compete with (the ref's creation was rejected): nothing is lost.
                _ => self.set_ref(name, Some(new), mine),
            },
            // Deleting what a concurrent operation already deleted.
            (None, None) => {}
        }
        Ok(())
    }

    /// An existing ref that is a directory prefix of `name`, or lies under `name` as a
    /// directory. O(depth · log n).
    fn path_conflict(&self, name: &str) -> Option<String> {
        let refs = &self.fold.state.refs;
        let above = name
            .match_indices('/')
            .map(|(slash, _)| name.get(..slash).unwrap_or_default())
            .find(|prefix| refs.contains_key(*prefix));
        if let Some(prefix) = above {
            return Some(prefix.to_owned());
        }
        let directory = format!("{name}/");
        refs.range(directory.clone()..)
            .next()
            .map(|(existing, _)| existing)
            .filter(|existing| existing.starts_with(&directory))
            .cloned()
    }

    fn set_ref(&mut self, name: &str, target: Option<ObjectId>, (at, op): (Hlc, OpId)) {
        match target {
            Some(target) => {
                self.fold.deletions.remove(name);
                self.fold
                    .state
                    .refs
                    .insert(name.to_owned(), RefState { target, op, at });
            }
            None => {
                self.fold.state.refs.remove(name);
                self.fold.deletions.insert(name.to_owned(), (at, op));
            }
        }
    }

    fn keep_conflict(&mut self, name: &str, losing_op: &OpId, tip: ObjectId) {
        self.fold
            .state
            .conflicts
            .insert(conflict_ref_name(name, losing_op), tip);
    }
}

fn invalid(field: &'static str) -> impl Fn(NameError) -> Rejection {
    move |error| Rejection::InvalidName { field, error }
}

/// A default branch is a short name git accepts as a branch (`check-ref-format
/// --branch`): a pure function of the operation, so every node refuses the same ones.
/// The longest homepage URL kept (GitHub's own limit is about as long).
pub const MAX_HOMEPAGE_BYTES: usize = 255;

/// What an archived repository still accepts: being unarchived (with other settings in
/// the same operation), deleted, and changes of who has access, as on GitHub, where an
/// archive is read-only content, not a frozen team.
fn archive_permits(payload: &Payload) -> bool {
    matches!(
        payload,
        Payload::RepoSettings {
            archived: Some(false),
            ..
        } | Payload::DeleteRepo
            | Payload::SetRole { .. }
            | Payload::SetOrgAccess { .. }
    )
}

fn validate_default_branch(branch: &str) -> Result<(), Rejection> {
    names::validate_branch_name(branch).map_err(invalid("default_branch"))
}

fn validate_pushable_ref(name: &str) -> Result<(), Rejection> {
    names::validate_ref_name(name).map_err(invalid("ref name"))?;
    if name.starts_with(RESERVED_REF_PREFIX) {
        return Err(Rejection::ReservedRef);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
