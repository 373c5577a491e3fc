//! Which live repository answers to which `owner/name`: the name index, its
//! deterministic resolution of concurrent claims and the binding of names to the keys
//! that hold their logins. Kept apart from `repos.rs` (the operation log and appends)
//! because names are derived from the set of live repositories, never stored as truth.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use guts_core::{Hlc, RepoHeader, RepoId, RepoMeta};
use redb::ReadableTable as _;

use super::summary::Summary;
use super::{Entry, RepoView, Repositories};
use crate::db::Store;
use crate::error::StoreError;
use crate::schema::REPO_NAMES;

/// A live repository's claim on a name.
#[derive(Debug, Clone)]
pub(super) struct Claim {
    /// Lowercase `owner/name`, `owner` as served ([`ServedName::owner`]).
    key: String,
    /// The owner it is served under: its `CreateRepo`'s owner if the author holds that
    /// login here, else a namespace no local login can spell (see [`Index`]).
    owner: String,
    /// The name as its `CreateRepo` (or its last rename) spells it (without the owner).
    name: String,
    /// When it took that name (`RepoMeta::named_at`): with the id, ranks concurrent
    /// claims of a name, so a rename never takes a name from its earlier holder.
    created_at: Hlc,
    /// Lowercase `owner/name` of its former names, which answer until taken.
    former: Vec<String>,
}

/// Every repository held here, and which live repository answers to which name.
///
/// Names are derived, never stored as truth: two nodes may create `owner/name`
/// concurrently, and both repositories replicate everywhere. Every node then resolves
/// the clash the same way, from the set of live repositories alone: the claim with the
/// smaller `(created_at, id)` keeps `owner/name`; each other one is reachable as
/// `owner/name-<first 8 hex digits of its id>` (the whole id in the absurd case that
/// this is taken too). Nothing is lost, and the outcome depends neither on arrival
/// order nor on history, so it is recomputed from `live` whenever that changes (and on
/// open). When the holder of a name is deleted, the next claimant takes it.
///
/// Only a repository whose author holds its owner's login here takes part in that
/// contest (accounts decide: `accounts::holds_name`): a login belongs to a key, and the
/// accounts that say so are cluster data no outsider can write. A repository created
/// under a login by any other key (a node of another cluster that has its own `alice`)
/// is served under `<owner>--<first 16 hex digits of its author's key>` instead, a
/// namespace no login can spell (logins never contain `--`), so it can neither take
/// nor shadow a local name however early its author dates it. Binding is re-derived
/// when accounts arrive from the cluster ([`Repositories::rebind`]).
#[derive(Debug, Default)]
pub(super) struct Index {
    /// Every repository, deleted ones included (their deletion replicates), ordered by
    /// id for replication's paging.
    pub(super) by_id: BTreeMap<RepoId, Arc<Entry>>,
    /// Live (created, not deleted) repositories and their claims.
    pub(super) live: BTreeMap<RepoId, Claim>,
    /// Lowercase `owner/name` (or suffixed name) -> live repository: derived from
    /// `live` by [`Index::resolve_names`].
    pub(super) by_name: HashMap<String, RepoId>,
    /// The name each live repository is served under (spelled as created, plus the
    /// suffix if it lost a clash): derived with `by_name`.
    pub(super) served: HashMap<RepoId, ServedName>,
    /// Former names (lowercase `owner/name`) of renamed live repositories that no
    /// live repository holds now: they still answer, as on GitHub, until taken.
    /// Derived with `by_name`; among repositories that once had the same name, the
    /// smallest id answers.
    pub(super) former: HashMap<String, RepoId>,
}

/// What is known of a live repository without loading its state.
#[derive(Debug, Clone)]
pub struct Listing {
    pub id: RepoId,
    pub header: RepoHeader,
    /// Wall-clock milliseconds of its newest operation.
    pub updated_ms: u64,
}

/// Where a live repository is served: `owner/name` as `find` answers to it and as the
/// front ends spell it in URLs and `full_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedName {
    /// The owner login, or a foreign namespace `<login>--<key prefix>` when the author
    /// does not hold the login here (see [`Index`]).
    pub owner: String,
    /// The repository name as created, plus `-<id prefix>` if it lost a name clash.
    pub name: String,
}

impl ServedName {
    /// Whether this repository is served under its creator's login (not a foreign
    /// namespace).
    pub fn is_bound(&self, meta: &guts_core::RepoMeta) -> bool {
        self.owner == meta.owner
    }
}

/// Hex digits of the author's key in a foreign namespace: 64 bits, so that nobody
/// grinds a key into another author's namespace.
const FOREIGN_KEY_DIGITS: usize = 16;

/// The owner a repository is served under: its login if `bound`, else the foreign
/// namespace of its author.
pub(super) fn served_owner(meta: &guts_core::RepoMeta, bound: bool) -> String {
    if bound {
        return meta.owner.clone();
    }
    let key = meta.created_by.to_string();
    let prefix = key.get(..FOREIGN_KEY_DIGITS).unwrap_or(&key);
    format!("{}--{prefix}", meta.owner)
}

impl Index {
    /// Records `id` as live if it is created and not deleted, else forgets
    /// its claim; `bound`: whether its author holds its owner's login. Callers then
    /// [`Index::resolve_names`].
    pub(super) fn set_claim(
        &mut self,
        id: RepoId,
        meta: Option<&RepoMeta>,
        deleted: bool,
        bound: bool,
    ) {
        match (meta, deleted) {
            (Some(meta), false) => {
                let owner = served_owner(meta, bound);
                let former = meta
                    .former_names
                    .iter()
                    .map(|name| name_key(&owner, name))
                    .collect();
                self.live.insert(
                    id,
                    Claim {
                        key: name_key(&owner, &meta.name),
                        owner,
                        name: meta.name.clone(),
                        created_at: meta.named_at,
                        former,
                    },
                );
            }
            _ => {
                self.live.remove(&id);
            }
        }
    }

    /// Recomputes `by_name` and `served` from `live` (see [`Index`]). O(n log n) in live
    /// repositories; runs when one is created or deleted, never per operation.
    pub(super) fn resolve_names(&mut self) {
        let mut claims: BTreeMap<&str, Vec<(Hlc, RepoId)>> = BTreeMap::new();
        for (id, claim) in &self.live {
            claims
                .entry(claim.key.as_str())
                .or_default()
                .push((claim.created_at, *id));
        }
        let mut by_name = HashMap::with_capacity(self.live.len());
        let mut served = HashMap::with_capacity(self.live.len());
        let mut losers = Vec::new();
        for (key, mut claimants) in claims {
            claimants.sort_unstable();
            let mut ranked = claimants.into_iter();
            if let Some((_, winner)) = ranked.next() {
                by_name.insert(key.to_owned(), winner);
                if let Some(claim) = self.live.get(&winner) {
                    served.insert(
                        winner,
                        ServedName {
                            owner: claim.owner.clone(),
                            name: claim.name.clone(),
                        },
                    );
                }
            }
            losers.extend(ranked.map(|(at, id)| (key, at, id)));
        }
        // Plain names first, so a suffixed name never takes a name someone claimed;
        // losers in a fixed order, so two suffixes that collide resolve alike.
        for (key, _, id) in losers {
            let hex = id.to_string();
            let short = hex.get(..8).unwrap_or(&hex);
            let Some(claim) = self.live.get(&id) else {
                continue;
            };
            let free = [short, hex.as_str()]
                .into_iter()
                .find(|suffix| !by_name.contains_key(&format!("{key}-{suffix}")));
            match free {
                Some(suffix) => {
                    by_name.insert(format!("{key}-{suffix}"), id);
                    served.insert(
                        id,
                        ServedName {
                            owner: claim.owner.clone(),
                            name: format!("{}-{suffix}", claim.name),
                        },
                    );
                }
                None => {
                    tracing::error!(repo = %id, name = %key, "no free name for a repository that lost a name clash");
                }
            }
        }
        let mut former = HashMap::new();
        for (id, claim) in &self.live {
            for key in &claim.former {
                if !by_name.contains_key(key) {
                    former.entry(key.clone()).or_insert(*id);
                }
            }
        }
        self.by_name = by_name;
        self.served = served;
        self.former = former;
    }
}

/// How [`Repositories`] decides whether a repository's author holds its owner's login.
#[derive(Debug, Clone)]
pub enum NameBinding {
    /// By this store's accounts and the organization keys the cluster secret derives
    /// (`accounts::holds_name`): what a node runs with.
    Accounts(Arc<crate::Sealer>),
    /// Every author holds every login: for tests of storage rules unrelated to
    /// accounts, which sign with throwaway keys. Never for a node.
    Unchecked,
}

pub(super) fn name_key(owner: &str, name: &str) -> String {
    format!(
        "{}/{}",
        owner.to_ascii_lowercase(),
        name.to_ascii_lowercase()
    )
}

/// Whether the author of a repository's creation (`meta`) holds its owner's login (see
/// [`Index`]). A store that cannot be read binds nothing: a name is never handed out on
/// an error.
pub(super) fn bound(store: &Store, binding: &NameBinding, meta: Option<&RepoMeta>) -> bool {
    meta.is_some_and(|meta| holds(store, binding, &meta.owner, &meta.created_by))
}

/// Whether `author` holds the login `owner` here (see [`Index`]). A store that cannot
/// be read binds nothing: a name is never handed out on an error.
pub(super) fn holds(
    store: &Store,
    binding: &NameBinding,
    owner: &str,
    author: &guts_core::PublicKey,
) -> bool {
    match binding {
        NameBinding::Unchecked => true,
        NameBinding::Accounts(sealer) => store
            .read()
            .and_then(|read| crate::accounts::holds_name(&read, sealer, owner, author))
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, owner, "cannot read accounts to bind a repository name");
                false
            }),
    }
}

/// Moves repository `id`'s claim in `REPO_NAMES` from `old` to `new` after a rename:
/// `old` is released if `id` held it, `new` claimed if free (if another repository
/// holds it, the names index ranks the claims; see [`Index`]).
pub(super) fn move_name(
    txn: &redb::WriteTransaction,
    old: &str,
    new: &str,
    id: RepoId,
) -> Result<(), StoreError> {
    release_name(txn, old, id)?;
    let mut names = txn.open_table(REPO_NAMES)?;
    if names.get(new)?.is_none() {
        names.insert(new, id.as_bytes().as_slice())?;
    }
    Ok(())
}

/// Releases the claim of repository `id` on `name` in `REPO_NAMES`, if it holds it (a
/// repository that lost a name clash never held the claim, so its deletion must not
/// free the winner's).
pub(super) fn release_name(
    txn: &redb::WriteTransaction,
    name: &str,
    id: RepoId,
) -> Result<(), StoreError> {
    let mut names = txn.open_table(REPO_NAMES)?;
    let holds = names
        .get(name)?
        .is_some_and(|held| held.value() == id.as_bytes().as_slice());
    if holds {
        names.remove(name)?;
    }
    Ok(())
}

impl Repositories {
    /// Where repository `id` is served (`find` answers to it): the owner and name it
    /// was created with, the name suffixed if a concurrent creation on another node won
    /// it, the owner a foreign namespace if its author does not hold the login here
    /// (see [`Index`]). `None` for deleted or unknown repositories.
    pub fn served(&self, id: RepoId) -> Option<ServedName> {
        self.index.read().ok()?.served.get(&id).cloned()
    }

    /// Whether the author of a repository's creation (`meta`) holds its owner's login
    /// here.
    pub(super) fn bound(&self, meta: Option<&RepoMeta>) -> bool {
        bound(&self.store, &self.binding, meta)
    }

    /// Re-derives which repositories are bound to their owner's login, after accounts
    /// changed (records from the cluster arrived: a repository can arrive before the
    /// account of the user who created it). O(live repositories) store reads; returns
    /// whether any repository moved.
    pub fn rebind(&self) -> bool {
        let states: Vec<(RepoId, Arc<Summary>)> = {
            let Ok(index) = self.index.read() else {
                return false;
            };
            index
                .live
                .keys()
                .filter_map(|id| Some((*id, index.by_id.get(id)?.summary())))
                .collect()
        };
        let bindings: Vec<(RepoId, Arc<Summary>, bool)> = states
            .into_iter()
            .map(|(id, summary)| {
                let bound = self.bound(summary.header.meta.as_ref());
                (id, summary, bound)
            })
            .collect();
        let Ok(mut index) = self.index.write() else {
            return false;
        };
        let before = index.served.clone();
        for (id, summary, bound) in bindings {
            // Skip repositories deleted meanwhile: their claim is already gone.
            if index.live.contains_key(&id) {
                let header = &summary.header;
                index.set_claim(id, header.meta.as_ref(), header.deleted, bound);
            }
        }
        index.resolve_names();
        let moved = index.served != before;
        if moved {
            tracing::info!("repository names re-derived after an accounts change");
        }
        moved
    }

    /// The live repository `owner/name` (case-insensitive), or the one renamed from
    /// it while no other holds the name (see [`Index::former`]).
    pub fn find(&self, owner: &str, name: &str) -> Option<Arc<RepoView>> {
        let (id, entry) = self.entry_by_name(owner, name)?;
        self.view_of(id, &entry)
    }

    /// The repository `owner/name` names now or named before, and its cache entry.
    pub(super) fn entry_by_name(&self, owner: &str, name: &str) -> Option<(RepoId, Arc<Entry>)> {
        let index = self.index.read().ok()?;
        let key = name_key(owner, name);
        let id = *index.by_name.get(&key).or_else(|| index.former.get(&key))?;
        Some((id, index.by_id.get(&id)?.clone()))
    }

    /// The live repository that holds `owner/name` now (former names not included:
    /// a rename may take a name that only answers as somebody's former one).
    pub fn holder(&self, owner: &str, name: &str) -> Option<RepoId> {
        let index = self.index.read().ok()?;
        index.by_name.get(&name_key(owner, name)).copied()
    }

    /// Every live repository, ordered by `owner/name` (as served: see
    /// [`Repositories::served`]). Loads every state not in memory: O(everything) on a
    /// cold node, for the callers that must see each repository's state.
    pub fn list(&self) -> Vec<Arc<RepoView>> {
        self.live_entries()
            .into_iter()
            .filter_map(|(id, entry)| self.view_of(id, &entry))
            .collect()
    }

    /// Every live repository as known without loading its state, ordered by
    /// `owner/name` as [`Repositories::list`].
    pub fn listings(&self) -> Vec<Listing> {
        self.live_entries()
            .into_iter()
            .map(|(id, entry)| {
                let summary = entry.summary();
                Listing {
                    id,
                    updated_ms: summary.latest.wall_ms,
                    header: summary.header.clone(),
                }
            })
            .collect()
    }

    /// How many live repositories there are.
    pub fn live_count(&self) -> usize {
        self.index.read().map_or(0, |i| i.live.len())
    }

    fn live_entries(&self) -> Vec<(RepoId, Arc<Entry>)> {
        let Ok(index) = self.index.read() else {
            return Vec::new();
        };
        let mut names: Vec<(&String, &RepoId)> = index.by_name.iter().collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|(_, id)| Some((*id, index.by_id.get(id)?.clone())))
            .collect()
    }
}
