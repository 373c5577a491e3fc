//! Which objects a fetch sends: the commits reachable from the wants and not from what
//! the client has, their trees and blobs minus those the client has at the edge, and
//! the shallow boundary of `deepen` requests. Also the "ready" test of negotiation.
//!
//! The commit walk is git's: newest first by committer time, interesting and
//! uninteresting commits in one queue, stopping once only uninteresting ones are left,
//! so an incremental fetch reads the new commits and a few old ones, not the whole
//! history. Clock skew can only make it send a commit the client already has, never
//! omit one it lacks: the walk ends only when no interesting commit is queued.

use std::collections::BinaryHeap;

use gix::hashtable::{HashMap, HashSet};

use gix::ObjectId;
use gix::objs::Find as _;

use super::{ServeError, from_gix, to_gix};
use crate::{Deepen, Oid};

/// `deepen 2147483647`: what `git fetch --unshallow` sends.
const INFINITE_DEPTH: u32 = 0x7fff_ffff;

/// A parsed commit: what the walks need of it.
#[derive(Debug, Clone)]
pub struct CommitNode {
    pub tree: ObjectId,
    pub parents: Vec<ObjectId>,
    /// Committer time, seconds since the epoch.
    pub time: i64,
}

/// Bytes of decoded delta bases kept while walking. Trees are stored as long delta
/// chains; without a cache every tree re-inflates its chain, which dominated the walk.
const DELTA_BASE_CACHE_BYTES: usize = 64 << 20;

/// Commits parsed on demand and kept for the request.
pub struct Graph<'r> {
    repo: &'r gix::Repository,
    /// The repository's object database with a delta-base cache sized for walks.
    objects: gix::OdbHandle,
    buf: Vec<u8>,
    commits: HashMap<ObjectId, CommitNode>,
}

impl std::fmt::Debug for Graph<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("commits", &self.commits.len())
            .finish()
    }
}

impl<'r> Graph<'r> {
    pub fn new(repo: &'r gix::Repository) -> Self {
        let mut objects = repo.objects.clone();
        objects.set_pack_cache(|| {
            Box::new(gix_pack::cache::lru::MemoryCappedHashmap::new(
                DELTA_BASE_CACHE_BYTES,
            ))
        });
        Graph {
            repo,
            objects,
            buf: Vec::new(),
            commits: HashMap::default(),
        }
    }

    pub fn repo(&self) -> &'r gix::Repository {
        self.repo
    }

    /// The object's kind, `None` if it is absent.
    pub fn kind(&self, id: &ObjectId) -> Result<Option<gix::object::Kind>, ServeError> {
        match self.repo.try_find_header(*id) {
            Ok(header) => Ok(header.map(|h| h.kind())),
            Err(e) => Err(ServeError::git(e)),
        }
    }

    /// The commit `id`, `None` if it is absent or not a commit.
    pub fn commit(&mut self, id: &ObjectId) -> Result<Option<&CommitNode>, ServeError> {
        if !self.commits.contains_key(id) {
            let Some(data) = self
                .objects
                .try_find(id, &mut self.buf)
                .map_err(ServeError::git)?
            else {
                return Ok(None);
            };
            if data.kind != gix::object::Kind::Commit {
                return Ok(None);
            }
            let commit = gix::objs::CommitRef::from_bytes(data.data, gix::hash::Kind::Sha1)
                .map_err(|e| ServeError::Git(format!("commit {id}: {e}")))?;
            let node = CommitNode {
                tree: commit.tree(),
                parents: commit.parents().collect(),
                time: commit.time().map(|t| t.seconds).unwrap_or(0),
            };
            self.commits.insert(*id, node);
        }
        Ok(self.commits.get(id))
    }

    fn parents(&mut self, id: &ObjectId) -> Result<Vec<ObjectId>, ServeError> {
        Ok(self
            .commit(id)?
            .map(|c| c.parents.clone())
            .unwrap_or_default())
    }

    fn time(&mut self, id: &ObjectId) -> Result<i64, ServeError> {
        Ok(self.commit(id)?.map(|c| c.time).unwrap_or(0))
    }
}

/// What a fetch asked for, after negotiation.
#[derive(Debug, Clone, Default)]
pub struct WalkRequest {
    pub wants: Vec<Oid>,
    /// Haves the server has too (the common commits).
    pub common: Vec<Oid>,
    /// The client's current shallow boundary.
    pub client_shallows: Vec<Oid>,
    pub deepen: Option<Deepen>,
    pub deepen_relative: bool,
    /// `deepen-not` revisions resolved to commits.
    pub deepen_not: Vec<ObjectId>,
    /// Annotated tags for `include-tag`: the chain of tag objects a tag ref names
    /// (outermost first; more than one for a tag of a tag) and the final target.
    pub include_tags: Vec<(Vec<Oid>, Oid)>,
}

/// The result: what to send and how the client's shallow boundary moves.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Every object of the pack, commits first (newest first), then trees and blobs.
    pub objects: Vec<ObjectId>,
    pub commits: usize,
    /// New shallow commits to announce (`shallow <id>`).
    pub shallow: Vec<Oid>,
    /// Client shallow commits that are shallow no more (`unshallow <id>`).
    pub unshallow: Vec<Oid>,
}

/// Heap entry: newest commit first; ties by id so the order is deterministic.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    time: i64,
    id: ObjectId,
    interesting: bool,
}

pub fn plan(graph: &mut Graph<'_>, req: &WalkRequest) -> Result<Plan, ServeError> {
    plan_with(graph, req, None)
}

/// [`plan`], with the objects the client is known to have (everything reachable from
/// `req.common`) given instead of found by walking the trees of the edge commits:
/// what a refresh of a cached selection has at hand, and the edge walk (a whole tree
/// per edge) was most of its cost.
fn plan_with(
    graph: &mut Graph<'_>,
    req: &WalkRequest,
    known: Option<&HashSet<ObjectId>>,
) -> Result<Plan, ServeError> {
    let mut plan = Plan::default();
    let mut sent: HashSet<ObjectId> = HashSet::default();

    // Wants: annotated tags are sent and peeled; commits start the walk.
    let mut start: Vec<ObjectId> = Vec::new();
    let mut loose_trees: Vec<ObjectId> = Vec::new();
    for want in &req.wants {
        let mut id = to_gix(want);
        for _ in 0..64 {
            match graph.kind(&id)? {
                None => {
                    return Err(ServeError::Refused(format!(
                        "upload-pack: not our ref {want}"
                    )));
                }
                Some(gix::object::Kind::Tag) => {
                    if sent.insert(id) {
                        plan.objects.push(id);
                    }
                    id = super::refs::tag_target(graph.repo(), id)?;
                }
                Some(gix::object::Kind::Commit) => {
                    start.push(id);
                    break;
                }
                Some(gix::object::Kind::Tree) => {
                    loose_trees.push(id);
                    break;
                }
                Some(gix::object::Kind::Blob) => {
                    if sent.insert(id) {
                        plan.objects.push(id);
                    }
                    break;
                }
            }
        }
    }

    let Shallow {
        client_shallow,
        boundary,
        unshallowed,
        shallow,
        unshallow,
    } = shallow_boundary(graph, req, &start)?;
    plan.shallow = shallow;
    plan.unshallow = unshallow;
    for id in &unshallowed {
        start.extend(graph.parents(id)?);
    }

    // The commit walk.
    let mut uninteresting: HashSet<ObjectId> = HashSet::default();
    let mut queued_interesting: HashSet<ObjectId> = HashSet::default();
    let mut heap = BinaryHeap::new();
    let mut interesting_in_heap = 0usize;
    // Uninteresting commits are marked when queued, not when popped: a commit reached
    // both ways must never be walked as interesting.
    for have in &req.common {
        let id = to_gix(have);
        if graph.commit(&id)?.is_some() && uninteresting.insert(id) {
            heap.push(Queued {
                time: graph.time(&id)?,
                id,
                interesting: false,
            });
        }
    }
    // The client has its shallow commits (not their parents).
    for id in &client_shallow {
        uninteresting.insert(*id);
    }
    for id in &start {
        // A want the client has needs no walk; queued, it would keep the walk going
        // down to its (possibly old) commit.
        if !uninteresting.contains(id) && queued_interesting.insert(*id) {
            heap.push(Queued {
                time: graph.time(id)?,
                id: *id,
                interesting: true,
            });
            interesting_in_heap += 1;
        }
    }
    let mut walked: Vec<ObjectId> = Vec::new();
    while interesting_in_heap > 0 {
        let Some(entry) = heap.pop() else { break };
        if entry.interesting {
            interesting_in_heap -= 1;
            if uninteresting.contains(&entry.id) {
                continue;
            }
            walked.push(entry.id);
            if boundary.contains(&entry.id) {
                continue;
            }
            for parent in graph.parents(&entry.id)? {
                if !uninteresting.contains(&parent)
                    && queued_interesting.insert(parent)
                    && graph.commit(&parent)?.is_some()
                {
                    heap.push(Queued {
                        time: graph.time(&parent)?,
                        id: parent,
                        interesting: true,
                    });
                    interesting_in_heap += 1;
                }
            }
        } else {
            if client_shallow.contains(&entry.id) {
                continue;
            }
            for parent in graph.parents(&entry.id)? {
                if graph.commit(&parent)?.is_some() && uninteresting.insert(parent) {
                    heap.push(Queued {
                        time: graph.time(&parent)?,
                        id: parent,
                        interesting: false,
                    });
                }
            }
        }
    }
    let commits: Vec<ObjectId> = walked
        .into_iter()
        .filter(|c| !uninteresting.contains(c))
        .collect();

    // Trees the client has: those of the uninteresting commits at the edge.
    let mut excluded: HashSet<ObjectId> = HashSet::default();
    let mut edges: Vec<ObjectId> = unshallowed.clone();
    for c in &commits {
        if boundary.contains(c) {
            continue;
        }
        for p in graph.parents(c)? {
            if uninteresting.contains(&p) {
                edges.push(p);
            }
        }
    }
    edges.sort();
    edges.dedup();
    if known.is_some() {
        edges.clear();
    }
    let mut ignored = Vec::new();
    for edge in &edges {
        if let Some(tree) = graph.commit(edge)?.map(|c| c.tree) {
            collect_tree(
                graph,
                tree,
                &mut excluded,
                &HashSet::default(),
                &mut ignored,
            )?;
        }
    }

    for c in &commits {
        if sent.insert(*c) {
            plan.objects.push(*c);
        }
    }
    plan.commits = commits.len();
    let mut roots = Vec::with_capacity(commits.len());
    for c in &commits {
        if let Some(tree) = graph.commit(c)?.map(|n| n.tree) {
            roots.push(tree);
        }
    }
    let excluded = known.unwrap_or(&excluded);
    collect_trees(graph, roots, &mut sent, excluded, &mut plan.objects)?;
    for tree in loose_trees {
        collect_tree(graph, tree, &mut sent, excluded, &mut plan.objects)?;
    }
    add_tags(&mut plan, &mut sent, &req.include_tags);
    Ok(plan)
}

/// `include-tag`: annotated tags whose target is sent go along, with every tag of the
/// chain (a tag of a tag needs the inner tag too).
fn add_tags(plan: &mut Plan, sent: &mut HashSet<ObjectId>, tags: &[(Vec<Oid>, Oid)]) {
    for (chain, peeled) in tags {
        if !sent.contains(&to_gix(peeled)) {
            continue;
        }
        for tag in chain {
            let tag = to_gix(tag);
            if sent.insert(tag) {
                plan.objects.push(tag);
            }
        }
    }
}

/// Plans of full clones, by repository and wants. What is reachable from given commits
/// never changes (objects are immutable), so a plan for wants without haves or
/// shallow lines stays right forever; only `include-tag`, which depends on the tags of
/// the moment, is applied per request. This plays the part of git's reachability
/// bitmaps: a repeated clone of the same refs skips the walk.
#[derive(Debug)]
pub struct PlanCache {
    entries: std::sync::Mutex<std::collections::VecDeque<CachedPlan>>,
    capacity: usize,
}

#[derive(Debug)]
struct CachedPlan {
    repo: String,
    wants: Vec<Oid>,
    plan: std::sync::Arc<Plan>,
}

/// Plans above this many objects are not kept (about 20 bytes each).
const MAX_CACHED_OBJECTS: usize = 4_000_000;

impl PlanCache {
    pub fn new(capacity: usize) -> Self {
        PlanCache {
            entries: std::sync::Mutex::new(std::collections::VecDeque::new()),
            capacity,
        }
    }

    /// After a push: brings the cached selection for a full clone of the repository's
    /// branches and tags (the wants `git clone` sends) up to date, so that the first
    /// clone after a push does not pay for the walk. Cheap when the refs moved forward
    /// from a cached selection (an incremental walk from the old tips, as for a fetch);
    /// a whole walk only when `allow_full` (a first push, whose cost is of the order of
    /// the push itself); otherwise left to the next clone. Returns whether a selection
    /// was stored.
    pub fn refresh_clone(
        &self,
        repo: &str,
        git: &guts_storage::GitRepo,
        allow_full: bool,
    ) -> Result<bool, ServeError> {
        if self.capacity == 0 {
            return Ok(false);
        }
        let refs = super::refs::RefList::read(git)?;
        let mut wants: Vec<Oid> = refs
            .refs
            .iter()
            .filter(|(name, _, _)| {
                name.starts_with("refs/heads/") || name.starts_with("refs/tags/")
            })
            .map(|(_, oid, _)| *oid)
            .collect();
        wants.sort();
        wants.dedup();
        if wants.is_empty() {
            return Ok(false);
        }
        let (current, previous) = match self.entries.lock() {
            Ok(entries) => (
                entries.iter().any(|e| e.repo == repo && e.wants == wants),
                entries
                    .iter()
                    .find(|e| e.repo == repo)
                    .map(|e| (e.wants.clone(), e.plan.clone())),
            ),
            Err(_) => return Ok(false),
        };
        if current {
            return Ok(false);
        }
        let mut graph = Graph::new(git.gix());
        let plan = match previous {
            Some((old_wants, old_plan)) if moved_forward(&mut graph, &old_wants, &wants)? => {
                let mut merged = Plan::clone(&old_plan);
                let mut have: HashSet<ObjectId> = merged.objects.iter().copied().collect();
                let delta = plan_with(
                    &mut graph,
                    &WalkRequest {
                        wants: wants.clone(),
                        common: old_wants,
                        ..WalkRequest::default()
                    },
                    Some(&have),
                )?;
                merged.commits += delta.commits;
                for id in delta.objects {
                    if have.insert(id) {
                        merged.objects.push(id);
                    }
                }
                merged
            }
            _ if allow_full => plan(
                &mut graph,
                &WalkRequest {
                    wants: wants.clone(),
                    ..WalkRequest::default()
                },
            )?,
            _ => return Ok(false),
        };
        if plan.objects.len() > MAX_CACHED_OBJECTS {
            return Ok(false);
        }
        if let Ok(mut entries) = self.entries.lock() {
            entries.push_front(CachedPlan {
                repo: repo.to_owned(),
                wants,
                plan: std::sync::Arc::new(plan),
            });
            entries.truncate(self.capacity);
        }
        Ok(true)
    }

    /// The plan for `req` on repository `repo` (any stable key), from the cache when
    /// the request is a plain full clone.
    pub fn plan(
        &self,
        repo: &str,
        graph: &mut Graph<'_>,
        req: &WalkRequest,
    ) -> Result<Plan, ServeError> {
        let cacheable = req.common.is_empty()
            && req.client_shallows.is_empty()
            && req.deepen.is_none()
            && self.capacity > 0;
        if !cacheable {
            return plan(graph, req);
        }
        let mut wants = req.wants.clone();
        wants.sort();
        wants.dedup();
        let hit = self.entries.lock().ok().and_then(|mut entries| {
            let at = entries
                .iter()
                .position(|e| e.repo == repo && e.wants == wants)?;
            let entry = entries.remove(at)?;
            let plan = entry.plan.clone();
            entries.push_front(entry);
            Some(plan)
        });
        let base = match hit {
            Some(plan) => plan,
            None => {
                let untagged = WalkRequest {
                    include_tags: Vec::new(),
                    ..req.clone()
                };
                let plan = std::sync::Arc::new(plan(graph, &untagged)?);
                if plan.objects.len() <= MAX_CACHED_OBJECTS
                    && let Ok(mut entries) = self.entries.lock()
                {
                    entries.push_front(CachedPlan {
                        repo: repo.to_owned(),
                        wants,
                        plan: plan.clone(),
                    });
                    entries.truncate(self.capacity);
                }
                plan
            }
        };
        let mut plan = Plan::clone(&base);
        if !req.include_tags.is_empty() {
            let mut sent: HashSet<ObjectId> = plan.objects.iter().copied().collect();
            add_tags(&mut plan, &mut sent, &req.include_tags);
        }
        Ok(plan)
    }
}

/// Whether every old want is still wanted or is a commit the new wants reach: then
/// what the new wants reach is what the old ones did plus what an incremental walk
/// finds. A deleted or moved tag, or a rewritten branch, says no.
fn moved_forward(graph: &mut Graph<'_>, old: &[Oid], new: &[Oid]) -> Result<bool, ServeError> {
    let starts: Vec<ObjectId> = new.iter().map(to_gix).collect();
    for want in old {
        if new.contains(want) {
            continue;
        }
        let target = to_gix(want);
        let Some(oldest) = graph.commit(&target)?.map(|c| c.time) else {
            return Ok(false);
        };
        let mut stack: Vec<ObjectId> = starts.clone();
        let mut seen: HashSet<ObjectId> = stack.iter().copied().collect();
        let mut found = false;
        while let Some(c) = stack.pop() {
            if c == target {
                found = true;
                break;
            }
            for p in graph.parents(&c)? {
                if seen.insert(p) && graph.time(&p)? >= oldest {
                    stack.push(p);
                }
            }
        }
        if !found {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Below this many root trees, one thread walks them all.
const PARALLEL_MIN_ROOTS: usize = 512;

/// Collects the objects of `roots` (commit trees, newest first) like [`collect_tree`],
/// on several threads for long histories: inflating trees is most of a full clone's
/// walk. The roots are cut into contiguous runs, one per thread, because consecutive
/// commits share most of their trees; each run dedups on its own, and the runs are
/// merged in order, so the result holds each object once (what a run shares with the
/// run before it is walked twice, which is roughly one tree's worth).
fn collect_trees(
    graph: &Graph<'_>,
    roots: Vec<ObjectId>,
    sent: &mut HashSet<ObjectId>,
    skip: &HashSet<ObjectId>,
    out: &mut Vec<ObjectId>,
) -> Result<(), ServeError> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    if threads == 1 || roots.len() < PARALLEL_MIN_ROOTS {
        for tree in roots {
            collect_tree(graph, tree, sent, skip, out)?;
        }
        return Ok(());
    }
    let run = roots.len().div_ceil(threads);
    let results: Vec<Result<Vec<ObjectId>, ServeError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = roots
            .chunks(run)
            .map(|chunk| {
                let repo = graph.repo().clone();
                let known = &*sent;
                scope.spawn(move || {
                    let local = Graph::new(&repo);
                    let mut seen: HashSet<ObjectId> = HashSet::default();
                    let mut found = Vec::new();
                    for tree in chunk {
                        if known.contains(tree) {
                            continue;
                        }
                        collect_tree(&local, *tree, &mut seen, skip, &mut found)?;
                    }
                    Ok(found)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join().unwrap_or_else(|_| {
                    Err(ServeError::Git("tree walk thread panicked".to_owned()))
                })
            })
            .collect()
    });
    for found in results {
        for id in found? {
            if sent.insert(id) {
                out.push(id);
            }
        }
    }
    Ok(())
}

/// Adds `tree` and everything below it that is neither in `seen` nor in `skip` to
/// `out` (and `seen`). Submodule commits (gitlinks) are not objects of this repository.
fn collect_tree(
    graph: &Graph<'_>,
    tree: ObjectId,
    seen: &mut HashSet<ObjectId>,
    skip: &HashSet<ObjectId>,
    out: &mut Vec<ObjectId>,
) -> Result<(), ServeError> {
    if skip.contains(&tree) || !seen.insert(tree) {
        return Ok(());
    }
    out.push(tree);
    let mut stack = vec![tree];
    let mut buf = Vec::new();
    while let Some(id) = stack.pop() {
        let data = graph
            .objects
            .try_find(&id, &mut buf)
            .map_err(ServeError::git)?
            .ok_or_else(|| ServeError::Git(format!("tree {id} is missing")))?;
        for entry in gix::objs::TreeRefIter::from_bytes(data.data, gix::hash::Kind::Sha1) {
            let entry = entry.map_err(|e| ServeError::Git(format!("tree {id}: {e}")))?;
            if entry.mode.is_commit() {
                continue;
            }
            let child = entry.oid.to_owned();
            if skip.contains(&child) || !seen.insert(child) {
                continue;
            }
            out.push(child);
            if entry.mode.is_tree() {
                stack.push(child);
            }
        }
    }
    Ok(())
}

/// How a request moves the client's shallow boundary.
struct Shallow {
    /// The client's shallow commits that this repository has (others are ignored, as
    /// git does).
    client_shallow: HashSet<ObjectId>,
    /// Where the walk stops: the new shallow commits and the client's that stay.
    boundary: HashSet<ObjectId>,
    /// Client shallow commits whose parents are now sent, sorted.
    unshallowed: Vec<ObjectId>,
    /// New shallow commits to announce, sorted.
    shallow: Vec<Oid>,
    /// `unshallowed` as announced.
    unshallow: Vec<Oid>,
}

fn shallow_boundary(
    graph: &mut Graph<'_>,
    req: &WalkRequest,
    start: &[ObjectId],
) -> Result<Shallow, ServeError> {
    let mut client_shallow: HashSet<ObjectId> = HashSet::default();
    for s in &req.client_shallows {
        let id = to_gix(s);
        if graph.commit(&id)?.is_some() {
            client_shallow.insert(id);
        }
    }
    let mut out = Shallow {
        boundary: client_shallow.clone(),
        client_shallow,
        unshallowed: Vec::new(),
        shallow: Vec::new(),
        unshallow: Vec::new(),
    };
    let Some(deepen) = &req.deepen else {
        return Ok(out);
    };
    let (shallow, not_shallow) = deepen_boundary(graph, req, deepen, start, &out.client_shallow)?;
    for id in &out.client_shallow {
        if not_shallow.contains(id) && !shallow.contains(id) {
            out.unshallowed.push(*id);
        }
    }
    out.unshallowed.sort();
    for id in &out.unshallowed {
        out.boundary.remove(id);
        out.unshallow.extend(from_gix(id));
    }
    let mut fresh: Vec<&ObjectId> = shallow
        .iter()
        .filter(|id| !out.client_shallow.contains(*id))
        .collect();
    fresh.sort();
    out.shallow
        .extend(fresh.into_iter().filter_map(|id| from_gix(id)));
    out.boundary.extend(shallow);
    Ok(out)
}

/// Only the shallow update of `req` (`shallow` and `unshallow` lines), without
/// selecting objects: what a stateful (stream) v0 fetch answers right after its want
/// section, before negotiation has found what the pack may leave out.
pub fn shallow_update(
    graph: &mut Graph<'_>,
    req: &WalkRequest,
) -> Result<(Vec<Oid>, Vec<Oid>), ServeError> {
    let mut start = Vec::new();
    for want in &req.wants {
        let mut id = to_gix(want);
        for _ in 0..64 {
            match graph.kind(&id)? {
                Some(gix::object::Kind::Tag) => id = super::refs::tag_target(graph.repo(), id)?,
                Some(gix::object::Kind::Commit) => {
                    start.push(id);
                    break;
                }
                _ => break,
            }
        }
    }
    let shallow = shallow_boundary(graph, req, &start)?;
    Ok((shallow.shallow, shallow.unshallow))
}

/// The new shallow boundary of a deepen request, and the commits found not to be
/// shallow (whose parents the client gets).
fn deepen_boundary(
    graph: &mut Graph<'_>,
    req: &WalkRequest,
    deepen: &Deepen,
    start: &[ObjectId],
    client_shallow: &HashSet<ObjectId>,
) -> Result<(HashSet<ObjectId>, HashSet<ObjectId>), ServeError> {
    let mut shallow = HashSet::default();
    let mut not_shallow = HashSet::default();
    match deepen {
        Deepen::Depth(depth) if *depth >= INFINITE_DEPTH => {
            // Everything reachable is wanted: nothing is shallow; every client shallow
            // commit reachable from the wants is unshallowed.
            let mut stack: Vec<ObjectId> = start.to_vec();
            let mut seen: HashSet<ObjectId> = stack.iter().copied().collect();
            while let Some(id) = stack.pop() {
                not_shallow.insert(id);
                for p in graph.parents(&id)? {
                    if seen.insert(p) {
                        stack.push(p);
                    }
                }
            }
        }
        Deepen::Depth(depth) => {
            // Breadth-first by levels, so each commit gets its smallest depth. With
            // deepen-relative the count starts at the client's shallow commits.
            let (roots, limit): (Vec<ObjectId>, u32) = if req.deepen_relative {
                let mut roots: Vec<ObjectId> = client_shallow.iter().copied().collect();
                roots.sort();
                (roots, depth.saturating_add(1))
            } else {
                (start.to_vec(), *depth)
            };
            let mut level: Vec<ObjectId> = roots;
            let mut seen: HashSet<ObjectId> = level.iter().copied().collect();
            let mut d = 1u32;
            while !level.is_empty() {
                let mut next = Vec::new();
                for id in level {
                    let parents = graph.parents(&id)?;
                    if d >= limit {
                        if !parents.is_empty() {
                            shallow.insert(id);
                        }
                        continue;
                    }
                    not_shallow.insert(id);
                    for p in parents {
                        if seen.insert(p) {
                            next.push(p);
                        }
                    }
                }
                level = next;
                d = d.saturating_add(1);
            }
        }
        Deepen::Cut { since, .. } => {
            // Excluded: older than `since`, or reachable from a deepen-not revision.
            let mut excluded: HashSet<ObjectId> = HashSet::default();
            let mut stack: Vec<ObjectId> = req.deepen_not.clone();
            while let Some(id) = stack.pop() {
                if excluded.insert(id) {
                    stack.extend(graph.parents(&id)?);
                }
            }
            let included = |graph: &mut Graph<'_>, id: &ObjectId| -> Result<bool, ServeError> {
                if excluded.contains(id) {
                    return Ok(false);
                }
                let time = graph.time(id)?;
                Ok(since.is_none_or(|s| time >= i64::try_from(s).unwrap_or(i64::MAX)))
            };
            let mut stack: Vec<ObjectId> = Vec::new();
            for id in start {
                if included(graph, id)? {
                    stack.push(*id);
                }
            }
            if stack.is_empty() {
                return Err(ServeError::Refused(
                    "no commits selected for shallow requests".to_owned(),
                ));
            }
            let mut seen: HashSet<ObjectId> = stack.iter().copied().collect();
            while let Some(id) = stack.pop() {
                let mut cut = false;
                for p in graph.parents(&id)? {
                    if included(graph, &p)? {
                        if seen.insert(p) {
                            stack.push(p);
                        }
                    } else {
                        cut = true;
                    }
                }
                if cut {
                    shallow.insert(id);
                } else {
                    not_shallow.insert(id);
                }
            }
        }
    }
    Ok((shallow, not_shallow))
}

/// Negotiation's "ready": every wanted commit reaches a common commit, looking only at
/// commits no older than the oldest common one (git's `ok_to_give_up` cut-off), so
/// the test costs little even on long histories.
pub fn ready(
    graph: &mut Graph<'_>,
    wants: &[Oid],
    common: &HashSet<ObjectId>,
) -> Result<bool, ServeError> {
    if common.is_empty() {
        return Ok(false);
    }
    let mut oldest = i64::MAX;
    for c in common {
        oldest = oldest.min(graph.time(c)?);
    }
    let mut reaches: HashSet<ObjectId> = common.clone();
    for want in wants {
        let mut id = to_gix(want);
        for _ in 0..64 {
            if graph.kind(&id)? != Some(gix::object::Kind::Tag) {
                break;
            }
            id = super::refs::tag_target(graph.repo(), id)?;
        }
        if graph.commit(&id)?.is_none() {
            // Trees and blobs have no history to negotiate.
            continue;
        }
        let mut stack = vec![id];
        let mut seen: HashSet<ObjectId> = HashSet::default();
        seen.insert(id);
        let mut found = false;
        while let Some(c) = stack.pop() {
            if reaches.contains(&c) {
                found = true;
                break;
            }
            for p in graph.parents(&c)? {
                if !seen.insert(p) {
                    continue;
                }
                if reaches.contains(&p) || graph.time(&p)? >= oldest {
                    stack.push(p);
                }
            }
        }
        if !found {
            return Ok(false);
        }
        reaches.insert(id);
    }
    Ok(true)
}
