//! Repositories as operations: every change to a repository is a signed operation,
//! checked by folding it into the repository's DAG *before* it is stored, and stored
//! durably before it is acknowledged.
//!
//! The operation log (`OPS`, `REPO_OPS`) is the only truth. Repository state is the
//! fold of that log; what is derived from it and stored (summaries, checkpoints) is
//! checked against the log and thrown away when it disagrees, so nothing materialised
//! can outvote it after a crash. `REPO_NAMES` exists so that a name is claimed
//! atomically with the operation that claims it.
//!
//! Cost model: a local append names every head as a parent, so it is last in the
//! topological order and is folded incrementally: onto the loaded DAG (`Fold::append`:
//! one visit, no copy of the DAG), or onto the state alone when only that is loaded
//! (see [`local`]). Opening folds nothing (see [`summary`]); states load on first use. Appends to one repository are
//! serialised up to the moment their write is queued, so that each names the previous
//! one as its parent; they wait for their fsync after releasing the append lock, so
//! concurrent appends share group commits.
//!
//! Operations from peers arrive through [`replicate`] (`insert_remote`, `ops_since`),
//! and operations the fold refuses for good are kept in [`dead_letters`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use guts_core::names::{NameError, validate_repo_name};
use guts_core::{
    Ancestry, Clock, Fold, Hlc, Keypair, ObjectId, OpId, Operation, Payload, Rejection, RepoDag,
    RepoId, RepoState, SignedOp,
};
use redb::{ReadableMultimapTable as _, ReadableTable as _};

use crate::db::Store;
use crate::error::StoreError;
use crate::git::GitRepos;
use crate::metrics::{ReasonLabels, TypeLabels};
use crate::schema::{OPS, REPO_NAMES, REPO_OPS, REPO_SUMMARIES};

mod cache;
mod checkpoint;
mod dead_letters;
mod local;
mod names;
mod push;
mod replicate;
mod rows;
mod summary;
mod texts;

pub use cache::DEFAULT_CACHE_BYTES;
use cache::Entry;
pub use checkpoint::CheckpointPass;
pub use dead_letters::{DeadLetter, ReplayReport};
use names::{Index, bound, holds, move_name, name_key, release_name, served_owner};
pub use names::{Listing, NameBinding, ServedName};
pub use push::{RefCommand, RefRefusal};
pub use replicate::{RemoteInsert, RepoStatus, node_state_digest};
pub use rows::RowSelect;
use summary::{Summary, ThreadCounts, thread_state};
pub use texts::Texts;

/// Capacity of the change notification channel ([`Repositories::subscribe`]): enough
/// for a burst of pushes; a receiver that falls further behind loses the oldest
/// messages, which anti-entropy makes up for.
const CHANGES_CAPACITY: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("invalid repository name: {0}")]
    InvalidName(NameError),
    #[error("invalid default branch: {0}")]
    InvalidBranch(NameError),
    #[error("name already exists on this account")]
    NameTaken,
    /// The creating key neither is the login's user nor belongs to the organization.
    #[error("the author does not hold the login {0}")]
    NameNotHeld(String),
    #[error("no such repository")]
    NotFound,
    /// The state moved since the caller looked (a merge's base branch or head).
    #[error("{0}")]
    Moved(String),
    /// The fold refused the operation (permission, rules); counted and not stored.
    #[error("operation rejected: {0}")]
    Rejected(Rejection),
    /// What a peer sent makes no sense here (operations of another repository, or of
    /// an unknown one without its creation): the sender is to blame.
    #[error("invalid operations: {0}")]
    Invalid(String),
    #[error("cannot encode the operation: {0}")]
    Encode(#[from] guts_core::EncodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A durable change of a repository, as [`Repositories::subscribe`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub repo: RepoId,
    /// The W3C `traceparent` of the request that made the change, when traces are
    /// exported.
    pub trace: Option<String>,
}

impl From<Change> for (RepoId, Option<String>) {
    fn from(change: Change) -> Self {
        (change.repo, change.trace)
    }
}

/// A repository's state as last folded, shared with readers without copying.
#[derive(Debug, Clone)]
pub struct RepoView {
    pub id: RepoId,
    pub state: RepoState,
    /// Wall-clock milliseconds of the newest operation.
    pub updated_ms: u64,
    /// Operations in the DAG when this state was folded: a later view has more, so a
    /// view is only ever replaced by a newer one.
    pub version: usize,
    /// The DAG's heads when this state was folded, sorted: what replication announces
    /// and compares, readable without taking the repository's append lock.
    pub heads: Vec<OpId>,
    /// What is kept of the repository when this state is evicted, and persisted with
    /// the operations that led to it.
    summary: Arc<Summary>,
    /// [`RepoState::digest`], computed on first use: encoding the whole state costs
    /// O(issues), which an append must not pay for a value only replication status
    /// asks for.
    digest: OnceLock<[u8; 32]>,
}

impl RepoView {
    /// A view of `state`, decoded from a checkpoint of the version `summary` counts.
    fn from_checkpoint(id: RepoId, state: RepoState, summary: Arc<Summary>) -> RepoView {
        RepoView {
            id,
            state,
            updated_ms: summary.latest.wall_ms,
            version: summary.version,
            heads: summary.heads.clone(),
            summary,
            digest: OnceLock::new(),
        }
    }

    /// The digest of the folded state ([`RepoState::digest`]): two nodes holding the
    /// same operations (and objects) report the same digest.
    pub fn digest(&self) -> [u8; 32] {
        *self.digest.get_or_init(|| self.state.digest())
    }
}

/// A repository's DAG and its continuable fold, owned by whoever appends.
#[derive(Debug)]
struct Engine {
    dag: RepoDag,
    fold: Fold,
    /// The newest operation's timestamp.
    latest: Hlc,
    /// Bytes of its operations' encodings: what the cache budget is estimated from.
    ops_bytes: usize,
    /// Its issues and pull requests per gauge state.
    counts: ThreadCounts,
}

impl Engine {
    fn new(dag: RepoDag, ancestry: &dyn Ancestry) -> Engine {
        let fold = Fold::new(&dag, ancestry);
        let mut latest = Hlc::default();
        let mut ops_bytes = 0usize;
        for op in dag.topological() {
            latest = latest.max(op.op().timestamp);
            ops_bytes = ops_bytes.saturating_add(op.as_bytes().len());
        }
        let counts = ThreadCounts::of(fold.state());
        Engine {
            dag,
            fold,
            latest,
            ops_bytes,
            counts,
        }
    }

    /// Accounts for `op`, just folded in.
    fn note(&mut self, op: &SignedOp) {
        self.latest = self.latest.max(op.op().timestamp);
        self.ops_bytes = self.ops_bytes.saturating_add(op.as_bytes().len());
    }

    /// What is kept of the repository in this state when it is not loaded.
    fn summary(&self) -> Summary {
        Summary {
            header: self.fold.state().header(),
            version: self.dag.len(),
            heads: self.dag.heads(),
            latest: self.latest,
            counts: self.counts,
            frontier: Vec::new(),
        }
    }

    fn view(&self) -> RepoView {
        let summary = self.summary();
        RepoView {
            id: self.dag.repo(),
            state: self.fold.state().clone(),
            updated_ms: self.latest.wall_ms,
            version: self.dag.len(),
            heads: summary.heads.clone(),
            summary: Arc::new(summary),
            digest: OnceLock::new(),
        }
    }
}

#[derive(Debug)]
pub struct Repositories {
    store: Store,
    git: GitRepos,
    index: RwLock<Index>,
    clock: Mutex<Clock>,
    /// Told the id of every repository after each durable change (see
    /// [`Repositories::subscribe`]).
    changes: tokio::sync::broadcast::Sender<Change>,
    /// Serialises the creation of repositories first heard of from peers, so that two
    /// batches carrying one new repository do not both create it.
    creating: tokio::sync::Mutex<()>,
    /// Who may hold a name (see [`Index`]).
    binding: NameBinding,
    /// What is loaded and the budget it must fit (see [`cache`]).
    cache: cache::Cache,
    /// Bodies read lately (see `texts`).
    texts: Arc<texts::TextCache>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Git ancestry from the repository's objects; without a repository (or objects) nothing
/// is an ancestor of anything but itself.
struct GitAncestry(Option<crate::git::GitRepo>);

impl Ancestry for GitAncestry {
    fn is_ancestor(&self, ancestor: &ObjectId, descendant: &ObjectId) -> bool {
        if ancestor == descendant {
            return true;
        }
        self.0
            .as_ref()
            .is_some_and(|r| r.is_ancestor(ancestor.as_bytes(), descendant.as_bytes()))
    }
}

/// [`GitAncestry`], opening the repository on the first question.
struct LazyAncestry<'a> {
    git: &'a GitRepos,
    id: RepoId,
    repo: std::cell::OnceCell<GitAncestry>,
}

impl Ancestry for LazyAncestry<'_> {
    fn is_ancestor(&self, ancestor: &ObjectId, descendant: &ObjectId) -> bool {
        if ancestor == descendant {
            return true;
        }
        self.repo
            .get_or_init(|| GitAncestry(self.git.open_repo(&self.id.to_string()).ok()))
            .is_ancestor(ancestor, descendant)
    }
}

/// Whether folding `payload` consults git ancestry.
fn needs_ancestry(payload: &Payload) -> bool {
    matches!(
        payload,
        Payload::UpdateRef { .. } | Payload::OpenPull { .. } | Payload::MergePull { .. }
    )
}

/// For payloads the fold never asks about ancestry (see [`needs_ancestry`]); answers
/// as a repository without objects would, should that ever change.
struct NoAncestry;

impl Ancestry for NoAncestry {
    fn is_ancestor(&self, ancestor: &ObjectId, descendant: &ObjectId) -> bool {
        ancestor == descendant
    }
}

impl Repositories {
    /// Opens the repositories from their summaries (see [`summary`]): nothing is
    /// folded, except a repository whose summary is missing, unreadable or does not
    /// count exactly the operations stored for it (a data directory from before
    /// summaries, or damage), which is folded from its log and its summary rewritten.
    /// Then git directories that no live repository owns are removed (left by a crash
    /// between creating a directory and committing its operation, or between
    /// committing a deletion and removing the directory), and git's refs are made to
    /// agree with the fold. States load on first use ([`cache`]).
    /// `sealer`: the cluster's, for the organization keys names are bound to.
    pub fn open(
        store: Store,
        git: GitRepos,
        sealer: Arc<crate::Sealer>,
    ) -> Result<Repositories, StoreError> {
        Self::open_with(store, git, NameBinding::Accounts(sealer))
    }

    /// [`Repositories::open`] with a choice of [`NameBinding`].
    pub fn open_with(
        store: Store,
        git: GitRepos,
        binding: NameBinding,
    ) -> Result<Repositories, StoreError> {
        let mut summaries: BTreeMap<RepoId, Option<Summary>> = BTreeMap::new();
        {
            let read = store.read()?;
            let members = read.open_multimap_table(REPO_OPS)?;
            let stored = read.open_table(REPO_SUMMARIES)?;
            for entry in members.iter()? {
                let (key, ops) = entry?;
                let id = <[u8; 32]>::try_from(key.value())
                    .map(RepoId::from_bytes)
                    .map_err(|_| {
                        StoreError::Corrupt("repository id of a stored operation".into())
                    })?;
                let count = usize::try_from(ops.len()).unwrap_or(usize::MAX);
                let summary = stored
                    .get(key.value())?
                    .and_then(|bytes| match Summary::decode(bytes.value()) {
                        Ok(summary) => Some(summary),
                        Err(e) => {
                            tracing::warn!(repo = %id, error = %e, "unreadable repository summary: folding its log");
                            None
                        }
                    })
                    .filter(|summary| summary.version == count);
                summaries.insert(id, summary);
            }
        }
        let this = Repositories {
            store,
            git,
            index: RwLock::new(Index::default()),
            clock: Mutex::new(Clock::new()),
            changes: tokio::sync::broadcast::channel(CHANGES_CAPACITY).0,
            creating: tokio::sync::Mutex::new(()),
            binding,
            cache: cache::Cache::new(cache::DEFAULT_CACHE_BYTES),
            texts: Arc::default(),
        };
        let mut latest = Hlc::default();
        let mut rebuilt: Vec<(RepoId, Vec<u8>)> = Vec::new();
        let mut index = Index::default();
        for (id, summary) in summaries {
            let (entry, summary) = match summary {
                Some(summary) => (Arc::new(Entry::unloaded(summary.clone())), summary),
                None => {
                    let engine = this.load_engine(id)?;
                    let view = Arc::new(engine.view());
                    let entry = Arc::new(Entry::loaded(view.clone()));
                    this.charge(&entry, cache::estimate(&engine));
                    if let Ok(mut slot) = entry.engine.try_lock() {
                        *slot = Some(cache::Loaded::Log(Box::new(engine)));
                    }
                    rebuilt.push((id, view.summary.encode()));
                    (entry, view.summary.as_ref().clone())
                }
            };
            latest = latest.max(summary.latest);
            let meta = summary.header.meta.as_ref();
            let bound = bound(&this.store, &this.binding, meta);
            index.set_claim(id, meta, summary.header.deleted, bound);
            summary.counts.add_to(this.store.metrics());
            index.by_id.insert(id, entry);
        }
        index.resolve_names();
        if !rebuilt.is_empty() {
            tracing::info!(
                repositories = rebuilt.len(),
                "repository summaries rebuilt from the operation log"
            );
            this.store.write_blocking(|txn| {
                let mut table = txn.open_table(REPO_SUMMARIES)?;
                for (id, bytes) in &rebuilt {
                    table.insert(id.as_bytes().as_slice(), bytes.as_slice())?;
                }
                Ok(())
            })?;
        }
        let live: std::collections::HashSet<String> =
            index.live.keys().map(|id| id.to_string()).collect();
        this.git.remove_orphans(&live)?;
        // Git's refs are a cache of the fold: a crash between storing a ref operation
        // and writing the ref leaves them behind, so they are made to agree here.
        for id in index.live.keys() {
            let Some(entry) = index.by_id.get(id) else {
                continue;
            };
            let header = entry.summary().header.clone();
            let repo = this.git.open_repo(&id.to_string())?;
            let mut changed =
                repo.sync_refs(&materialised_refs(&header.refs, &header.conflicts))?;
            if let Some(meta) = &header.meta {
                changed +=
                    usize::from(repo.set_head(&format!("refs/heads/{}", meta.default_branch))?);
            }
            if changed > 0 {
                tracing::warn!(repo = %id, changed, "git refs restored from the operation log");
            }
        }
        if let Ok(mut slot) = this.index.write() {
            *slot = index;
        }
        if let Ok(mut clock) = this.clock.lock() {
            clock.tick(latest.wall_ms.max(now_ms()));
        }
        this.refresh_count();
        Ok(this)
    }

    /// Folds a repository's whole stored log into an engine: on first use, after an
    /// eviction, or after a failed append. Operations are decoded as stored
    /// ([`SignedOp::decode_stored`]: ids checked, signatures not verified again).
    fn load_engine(&self, id: RepoId) -> Result<Engine, StoreError> {
        let read = self.store.read()?;
        let members = read.open_multimap_table(REPO_OPS)?;
        let ops = read.open_table(OPS)?;
        let mut dag = RepoDag::new(id);
        for member in members.get(id.as_bytes().as_slice())? {
            let op_id = member?;
            let key = <[u8; 32]>::try_from(op_id.value())
                .map(OpId::from_bytes)
                .map_err(|_| StoreError::Corrupt(format!("repository {id}: operation id")))?;
            let Some(bytes) = ops.get(op_id.value())? else {
                return Err(StoreError::Corrupt(format!(
                    "repository {id}: operation missing"
                )));
            };
            let op = SignedOp::decode_stored(bytes.value(), &key)
                .map_err(|e| StoreError::Corrupt(format!("stored operation {key}: {e}")))?;
            dag.insert(op)
                .map_err(|e| StoreError::Corrupt(format!("stored operation: {e}")))?;
        }
        drop((ops, members, read));
        // Most logs have no operation that asks git (issues, comments): open the
        // repository only if one does.
        let ancestry = LazyAncestry {
            git: &self.git,
            id,
            repo: std::cell::OnceCell::new(),
        };
        Ok(Engine::new(dag, &ancestry))
    }

    fn entry(&self, id: RepoId) -> Result<Arc<Entry>, RepoError> {
        self.index
            .read()
            .ok()
            .and_then(|i| i.by_id.get(&id).cloned())
            .ok_or(RepoError::NotFound)
    }

    fn tick(&self) -> Hlc {
        match self.clock.lock() {
            Ok(mut clock) => clock.tick(now_ms()),
            Err(poisoned) => poisoned.into_inner().tick(now_ms()),
        }
    }

    fn refresh_count(&self) {
        let n = self.index.read().map(|i| i.live.len()).unwrap_or(0) as i64;
        let metrics = self.store.metrics();
        metrics.repositories.set(n);
        metrics
            .objects
            .get_or_create(&TypeLabels {
                r#type: "repository",
            })
            .set(n);
    }

    fn count_rejection(&self, rejection: &Rejection) {
        self.store
            .metrics()
            .rejected
            .get_or_create(&ReasonLabels {
                reason: rejection.reason(),
            })
            .inc();
    }

    /// A local operation the fold refused: counted, and the caller's error.
    fn refused(&self, rejection: Rejection) -> RepoError {
        self.count_rejection(&rejection);
        RepoError::Rejected(rejection)
    }

    pub fn git(&self) -> &GitRepos {
        &self.git
    }

    /// This node's webhook outbox, jobs and delivery log.
    pub fn hook_queue(&self) -> crate::hooks::HookQueue {
        crate::hooks::HookQueue::new(self.store.clone())
    }

    /// A receiver of repository ids, one message after every durable change of a
    /// repository (local creation, append, push, operations from a peer). The channel
    /// is bounded: a receiver that lags loses the oldest messages (`RecvError::Lagged`)
    /// and should fall back to comparing heads, which replication's anti-entropy does
    /// anyway. Nothing here waits for receivers.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Tells subscribers that `id` changed durably, with the trace of the request that
    /// changed it (the caller's span) so that replication can continue it.
    fn notify(&self, id: RepoId) {
        // An error only means nobody listens.
        let _ = self.changes.send(Change {
            repo: id,
            trace: guts_ops::telemetry::current_traceparent(),
        });
    }

    /// Creates a repository owned by `key`'s holder under `owner`: a root `CreateRepo`
    /// operation, an empty bare git repository, and the name claim, atomically.
    pub async fn create(
        &self,
        key: &Keypair,
        owner: &str,
        name: &str,
        description: &str,
        private: bool,
        default_branch: &str,
    ) -> Result<Arc<RepoView>, RepoError> {
        validate_repo_name(name).map_err(RepoError::InvalidName)?;
        guts_core::validate_branch_name(default_branch).map_err(RepoError::InvalidBranch)?;
        if !holds(&self.store, &self.binding, owner, &key.public()) {
            return Err(RepoError::NameNotHeld(owner.to_string()));
        }
        let claim = name_key(owner, name);
        if self
            .index
            .read()
            .is_ok_and(|i| i.by_name.contains_key(&claim))
        {
            return Err(RepoError::NameTaken);
        }
        let at = self.tick();
        let author = key.public();
        let id = RepoId::derive(&author, owner, name, at);
        let op = Operation {
            repo: id,
            parents: Vec::new(),
            author,
            timestamp: at,
            payload: Payload::CreateRepo {
                owner: owner.to_string(),
                name: name.to_string(),
                description: description.to_string(),
                private,
                default_branch: default_branch.to_string(),
            },
        }
        .sign(key)?;
        let mut dag = RepoDag::new(id);
        dag.insert(op.clone())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let engine = Engine::new(dag, &GitAncestry(None));
        let view = engine.view();
        if let Some(rejection) = view.state.rejected.get(&op.id()) {
            self.count_rejection(rejection);
            return Err(RepoError::Rejected(rejection.clone()));
        }

        let hex_id = id.to_string();
        let git = self.git.clone();
        let branch = format!("refs/heads/{default_branch}");
        let dir_id = hex_id.clone();
        tokio::task::spawn_blocking(move || git.create(&dir_id, &branch))
            .await
            .map_err(|e| StoreError::Corrupt(format!("git task: {e}")))??;

        let bytes = op.encode();
        let op_id = op.id();
        let summary = view.summary.encode();
        let view = Arc::new(view);
        let rows = rows::RowsUpdate::between(None, &view);
        let claimed = self
            .store
            .write("create_repo", move |txn| {
                let mut names = txn.open_table(REPO_NAMES)?;
                if names.get(claim.as_str())?.is_some() {
                    return Ok(false);
                }
                names.insert(claim.as_str(), id.as_bytes().as_slice())?;
                txn.open_table(OPS)?
                    .insert(op_id.as_bytes().as_slice(), bytes.as_slice())?;
                txn.open_multimap_table(REPO_OPS)?
                    .insert(id.as_bytes().as_slice(), op_id.as_bytes().as_slice())?;
                put_summary(txn, id, &summary)?;
                rows.write(txn)?;
                Ok(true)
            })
            .await?;
        if !claimed {
            let _ = self.git.delete(&hex_id);
            return Err(RepoError::NameTaken);
        }
        let bound = self.bound(view.state.meta.as_ref());
        let entry = Arc::new(Entry::loaded(view.clone()));
        self.charge(&entry, cache::estimate(&engine));
        if let Ok(mut slot) = entry.engine.try_lock() {
            *slot = Some(cache::Loaded::Log(Box::new(engine)));
        }
        if let Ok(mut index) = self.index.write() {
            index.set_claim(id, view.state.meta.as_ref(), view.state.deleted, bound);
            index.resolve_names();
            index.by_id.insert(id, entry);
        }
        self.enforce_budget();
        self.refresh_count();
        self.notify(id);
        Ok(view)
    }

    /// Appends an operation with `payload`, authored by `key`, to repository `id`. The
    /// fold decides whether it is allowed; a rejected operation is counted and not stored.
    pub async fn append(
        &self,
        id: RepoId,
        key: &Keypair,
        payload: Payload,
    ) -> Result<Arc<RepoView>, RepoError> {
        self.append_checked(id, key, payload, |_| Ok(()))
            .await
            .map(|(view, _)| view)
    }

    /// [`Repositories::append`], after `check` accepted the current state (under the
    /// repository's append lock, so nothing changes between the check and the append:
    /// how a merge insists the base branch is still where the merge commit was built).
    /// Returns the new state and the operation's id.
    ///
    /// An `OpenIssue` or `OpenPull` proposing number 0 is given the next free number
    /// at the heads it names, so concurrent requests to one node never race for a
    /// number.
    pub async fn append_checked(
        &self,
        id: RepoId,
        key: &Keypair,
        payload: Payload,
        check: impl FnOnce(&RepoState) -> Result<(), RepoError>,
    ) -> Result<(Arc<RepoView>, OpId), RepoError> {
        let entry = self.entry(id)?;
        let mut slot = entry.engine.lock().await;
        let at = self.tick();
        let local::Folded {
            op,
            view,
            size,
            before,
            counted,
            name_before,
            rows,
        } = self
            .fold_local(id, &entry, &mut slot, key, payload, at, check)
            .await?;
        // A merge moves a branch; a new default branch moves HEAD.
        let moves_refs = matches!(
            op.op().payload,
            Payload::MergePull { .. }
                | Payload::UpdateRepo {
                    default_branch: Some(_),
                    ..
                }
        );
        let deleted = view.state.deleted;
        let release = view
            .state
            .meta
            .as_ref()
            .filter(|_| deleted)
            .map(|m| name_key(&m.owner, &m.name));
        // A rename moves the local name claim with the operation that makes it.
        let rename = match (&view.state.meta, name_before) {
            (Some(meta), Some(old)) if !deleted && meta.name != old => {
                let owner = served_owner(meta, self.bound(Some(meta)));
                Some((name_key(&owner, &old), name_key(&owner, &meta.name)))
            }
            _ => None,
        };
        let renamed = rename.clone();
        let bytes = op.encode();
        let op_id = op.id();
        let released = release.clone();
        // This node accepted the operation: its events go out from here, so they are
        // queued with it (see `crate::hooks`).
        let outbox = (
            crate::hooks::outbox_key(op.op().timestamp.wall_ms, &op_id),
            crate::hooks::outbox_value(&id, view.version),
        );
        let hooked = view.state.hooks.any_active();
        let owner = view
            .state
            .meta
            .as_ref()
            .map(|m| m.owner.to_ascii_lowercase());
        let summary = view.summary.encode();
        entry.begin_write();
        let pending = self
            .store
            .submit("append_operation", move |txn| {
                txn.open_table(OPS)?
                    .insert(op_id.as_bytes().as_slice(), bytes.as_slice())?;
                txn.open_multimap_table(REPO_OPS)?
                    .insert(id.as_bytes().as_slice(), op_id.as_bytes().as_slice())?;
                put_summary(txn, id, &summary)?;
                rows.write(txn)?;
                if let Some(name) = &released {
                    release_name(txn, name, id)?;
                }
                if let Some((old, new)) = &renamed {
                    move_name(txn, old, new, id)?;
                }
                let (key, value) = &outbox;
                crate::hooks::hold_if_hooked(
                    txn,
                    crate::hooks::HOOK_OUTBOX,
                    hooked,
                    owner.as_deref(),
                    std::slice::from_ref(key),
                    value,
                )
            })
            .await;
        let pending = match pending {
            Ok(pending) => pending,
            Err(e) => {
                // Folded in memory but never queued: rebuild from the log next time.
                *slot = None;
                entry.unload_view();
                self.charge(&entry, 0);
                entry.end_write();
                return Err(e.into());
            }
        };
        // Commits happen in submission order, so the next append to this repository
        // may fold and queue while this one waits for its fsync: appends to one
        // repository share commits instead of taking one each. Operations that move
        // refs or delete the repository keep the lock until git agrees with them.
        let slot = if moves_refs || release.is_some() {
            Some(slot)
        } else {
            drop(slot);
            None
        };
        if let Err(e) = pending.durable().await {
            // The engine holds an operation the disk does not: drop it so the next
            // append rebuilds it from the log. (Operations folded on top of it meanwhile
            // wait in the rebuilt DAG for a parent that never comes: a failed commit
            // here is a failing disk, and nothing acknowledged depends on this one.)
            match slot {
                Some(mut slot) => *slot = None,
                None => *entry.engine.lock().await = None,
            }
            entry.unload_view();
            self.charge(&entry, 0);
            entry.end_write();
            return Err(e.into());
        }
        entry.publish(&view);
        self.charge(&entry, size);
        entry.end_write();
        if moves_refs {
            // Still under the append lock, so git's refs change in the fold's order.
            self.sync_git_refs(id, &view.state).await?;
        }
        drop(slot);
        if rename.is_some() {
            let bound = self.bound(view.state.meta.as_ref());
            if let Ok(mut index) = self.index.write() {
                index.set_claim(id, view.state.meta.as_ref(), view.state.deleted, bound);
                index.resolve_names();
            }
        }
        let thread = counted.unwrap_or(op_id);
        let after = view.state.collab.threads.get(&thread).map(thread_state);
        self.store.metrics().move_thread(before, after);
        if release.is_some() {
            for thread in view.state.collab.threads.values() {
                self.store
                    .metrics()
                    .move_thread(Some(thread_state(thread)), None);
            }
        }
        if release.is_some() {
            if let Ok(mut index) = self.index.write() {
                index.set_claim(id, view.state.meta.as_ref(), view.state.deleted, false);
                index.resolve_names();
            }
            self.refresh_count();
            let git = self.git.clone();
            let dir = id.to_string();
            // The deletion is durable; the directory goes now, or at the next open.
            let _ = tokio::task::spawn_blocking(move || git.delete(&dir)).await;
        }
        self.enforce_budget();
        self.notify(id);
        Ok((view, op_id))
    }
}

/// Writes repository `id`'s summary in the transaction that stores the operations it
/// counts.
fn put_summary(txn: &redb::WriteTransaction, id: RepoId, summary: &[u8]) -> Result<(), StoreError> {
    txn.open_table(REPO_SUMMARIES)?
        .insert(id.as_bytes().as_slice(), summary)?;
    Ok(())
}

/// The thread whose state an operation may change, for the issue and pull request
/// gauges: the one it opens is its own id (`None` here, resolved after signing).
fn counted_thread(payload: &Payload) -> Option<OpId> {
    match payload {
        Payload::EditThread { thread, .. } => Some(*thread),
        Payload::MergePull { pull, .. } => Some(*pull),
        _ => None,
    }
}

/// Every ref the fold says exists, with its target: branches and tags, plus the losing
/// tips of concurrent updates under `refs/guts/conflicts/`.
fn materialised_refs(
    refs: &BTreeMap<String, guts_core::RefState>,
    conflicts: &BTreeMap<String, ObjectId>,
) -> BTreeMap<String, crate::git::Oid> {
    refs.iter()
        .map(|(name, r)| (name.clone(), *r.target.as_bytes()))
        .chain(
            conflicts
                .iter()
                .map(|(name, target)| (name.clone(), *target.as_bytes())),
        )
        .collect()
}

impl Repositories {
    /// Makes git's refs of repository `id` what `state` says, HEAD included (it
    /// follows the default branch, which `UpdateRepo` may change). Callers hold the
    /// repository's append lock.
    async fn sync_git_refs(&self, id: RepoId, state: &RepoState) -> Result<(), StoreError> {
        let git = self.git.clone();
        let desired = materialised_refs(&state.refs, &state.conflicts);
        let head = state
            .meta
            .as_ref()
            .map(|m| format!("refs/heads/{}", m.default_branch));
        tokio::task::spawn_blocking(move || {
            let repo = git.open_repo(&id.to_string())?;
            repo.sync_refs(&desired)?;
            if let Some(head) = head {
                repo.set_head(&head)?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("ref sync task failed: {e}")))??;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
