//! An incoming pack, from the wire to the object database: streamed into a quarantine
//! directory (its checksum verified, a thin pack completed with the bases it refers
//! to), indexed (every object inflated and hashed), checked for connectivity (every
//! object its commits, trees and tags name is in the pack or already in the
//! repository), and only then moved into the repository. A pack that fails any step
//! never becomes visible, and its quarantine is removed (on drop, or by the next start
//! after a crash).
//!
//! A pack whose deltas name their bases by offset (what git and Guts send) is indexed
//! and checked in one traversal (`index.rs`); one whose deltas name in-pack bases by id
//! is indexed by gix's bundle writer and then checked on a traversal of its own, which
//! inflates the commits and trees again but never the blobs (here).

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use gix::objs::Exists as _;
use guts_storage::{GitRepo, Quarantine};

use super::{ServeError, index};

/// A verified pack waiting in its quarantine.
#[derive(Debug)]
pub struct Ingested {
    // Held so the quarantine lives until the pack is installed (or dropped with it).
    _quarantine: Quarantine,
    pub pack: PathBuf,
    pub index: PathBuf,
    pub objects: u32,
    pub bytes: u64,
}

/// Reads a pack from `pack` into `quarantine`, indexes and verifies it. `Ok(None)` for a
/// pack without objects (what git sends when the pushed commits are all here already).
///
/// `max_object_bytes` caps any single object (inflated) and so the memory one hostile
/// object can claim: a blob of 900 MiB of zeros is 1 MB on the wire. While the pack
/// streams in, each entry is inflated only to measure it (nothing is kept); whole
/// objects are inflated when they are resolved and hashed for the index, and the size
/// an entry declares (and a delta's base and result sizes) is compared with this cap
/// *before* allocating. What else indexing holds is a few words per entry (offsets,
/// ids, CRC-32s) and one id per distinct id the commits and trees name, which the
/// pack's size bounds. An object over the cap refuses the pack with a message naming
/// the limit (git prints it as `remote unpack failed`).
pub fn ingest(
    repo: &GitRepo,
    quarantine: Quarantine,
    pack: &mut dyn BufRead,
    max_object_bytes: usize,
) -> Result<Option<Ingested>, ServeError> {
    let mut counted = CountingRead {
        inner: pack,
        read: 0,
        failure: None,
    };
    let odb = &repo.gix().objects;
    let written = index::write_pack(odb.clone(), quarantine.path(), &mut counted).map_err(|e| {
        match counted.failure.take() {
            // The body could not be read (over the push limit, idle too long, client
            // gone): that is the story, not how gix noticed.
            Some(read) => ServeError::Read(read),
            None => refusal("index-pack failed", &e, max_object_bytes),
        }
    })?;
    let bytes = counted.read;
    let objects = u32::try_from(written.objects()).unwrap_or(u32::MAX);
    if objects == 0 {
        return Ok(None);
    }
    let (pack, index) = if written.in_pack_ref_deltas {
        index_with_gix(repo, &written.path, max_object_bytes)?
    } else {
        let indexed = index::index_pack(written, odb, max_object_bytes)?;
        match indexed.problem {
            None => {}
            Some(index::Problem::Malformed(what)) => {
                return Err(ServeError::Refused(format!(
                    "missing necessary objects: {what}"
                )));
            }
            // Rare (a broken or hostile pack): the slower check tells what names it.
            Some(index::Problem::Missing(id)) => {
                return Err(check_connectivity(repo, &indexed.index, max_object_bytes)
                    .err()
                    .unwrap_or_else(|| {
                        ServeError::Refused(format!("missing necessary objects: {id}"))
                    }));
            }
        }
        (indexed.pack, indexed.index)
    };
    Ok(Some(Ingested {
        _quarantine: quarantine,
        pack,
        index,
        objects,
        bytes,
    }))
}

/// Indexes the complete pack at `path` (thin bases inserted already) with gix's bundle
/// writer, which resolves deltas that name in-pack bases by id, then checks
/// connectivity on its own pass. Used only for such packs (see `index.rs`).
fn index_with_gix(
    repo: &GitRepo,
    path: &std::path::Path,
    max_object_bytes: usize,
) -> Result<(PathBuf, PathBuf), ServeError> {
    let file = std::fs::File::open(path).map_err(ServeError::Read)?;
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, file);
    let interrupt = AtomicBool::new(false);
    let outcome = gix_pack::Bundle::write_to_directory(
        &mut reader,
        path.parent(),
        &mut gix::progress::Discard,
        &interrupt,
        None::<gix::OdbHandle>,
        gix::hash::Kind::Sha1,
        gix_pack::bundle::write::Options {
            thread_limit: None,
            iteration_mode: gix_pack::data::input::Mode::Verify,
            index_version: gix_pack::index::Version::V2,
            alloc_limit_bytes: Some(max_object_bytes),
            compression: gix::zlib::Compression::BEST_SPEED,
        },
    )
    .map_err(|e| refusal("index-pack failed", &e, max_object_bytes))?;
    let _ = std::fs::remove_file(path);
    let (Some(pack), Some(index)) = (outcome.data_path, outcome.index_path) else {
        return Err(ServeError::Git("index-pack wrote no files".to_owned()));
    };
    check_connectivity(repo, &index, max_object_bytes)?;
    Ok((pack, index))
}

fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

/// Why gix refused a pack, for the pusher. Going over `max_object_bytes` is told as
/// such (gix says only that an entry is too large to fit in memory, without naming it:
/// it refuses before inflating, so it never learns the object's id).
pub(super) fn refusal(step: &str, e: &gix::Error, max_object_bytes: usize) -> ServeError {
    use gix::error::{Class, ResourceExhaustionKind};
    if e.classify().has(Class::ResourceExhaustion(
        ResourceExhaustionKind::AllocationLimit,
    )) {
        return ServeError::Refused(format!(
            "object in the pack exceeds the {} limit on the size of one object",
            size_text(max_object_bytes)
        ));
    }
    ServeError::Refused(format!("{step}: {}", first_line(e)))
}

/// `100 MiB` for whole mebibytes (how the setting is given), else `KiB`, else bytes.
fn size_text(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Every object the pack's commits, trees and tags name must be in the pack or in the
/// repository; the repository is connected already, so then everything reachable from
/// the pack is present (what git's `--check-connectivity` establishes).
///
/// Why only commits, trees and tags are decoded: indexing has just inflated and hashed
/// every object, and blobs (most of a pack's bytes) name nothing. An entry's kind is
/// known without inflating it (a delta has its base's kind, read from the entry
/// headers), so the blob delta chains are left out of the traversal entirely. Each
/// remaining delta is applied once (gix's delta tree), on every core.
fn check_connectivity(
    repo: &GitRepo,
    index: &std::path::Path,
    max_object_bytes: usize,
) -> Result<(), ServeError> {
    let bundle = gix_pack::Bundle::at(index, gix::hash::Kind::Sha1).map_err(ServeError::git)?;
    let entries = kinds_by_offset(&bundle)?;
    // Where each entry ends: where the next one (by offset) starts. The delta tree
    // below holds only some entries, so it cannot tell this itself.
    let offsets: Vec<u64> = entries.iter().map(|e| e.offset).collect();
    let named: Vec<Node> = entries
        .into_iter()
        .filter(|e| e.kind != gix::object::Kind::Blob || e.first)
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let interrupt = AtomicBool::new(false);
    let index_file = &bundle.index;
    let tree = gix_pack::cache::delta::Tree::from_offsets_in_pack(
        bundle.pack.path(),
        named.into_iter(),
        &|node: &Node| node.offset,
        &|id| {
            Ok(index_file
                .lookup(id)
                .map(|at| index_file.pack_offset_at_index(at)))
        },
        &mut gix::progress::Discard,
        &interrupt,
        gix::hash::Kind::Sha1,
    )
    .map_err(|e| refusal("pack verification failed", &e, max_object_bytes))?;
    let pack_end = bundle.pack.pack_end() as u64;
    let resolve = entry_bytes(&offsets, pack_end);
    let missing: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let inspect = {
        let missing = missing.clone();
        let odb = repo.gix().objects.clone();
        // Cloned for each thread of the traversal.
        let mut seen = Seen::new();
        move |node: &mut Node,
              _: &dyn gix::progress::Progress,
              context: gix_pack::cache::delta::traverse::Context<'_>|
              -> gix::Result<()> {
            let present = |id: &gix::oid| {
                seen.check(id, |id| index_file.lookup(id).is_some() || odb.exists(id))
            };
            if let Some(what) = first_missing(node, context.decompressed, present)
                && let Ok(mut slot) = missing.lock()
                && slot.is_none()
            {
                *slot = Some(what);
            }
            Ok(())
        }
    };
    let mut size_progress = gix::progress::Discard;
    tree.traverse(
        resolve,
        &bundle.pack,
        pack_end,
        inspect,
        index::traverse_options(&mut size_progress, &interrupt, max_object_bytes),
    )
    .map_err(|e| refusal("pack verification failed", &e, max_object_bytes))?;
    let missing = missing.lock().map(|m| m.clone()).unwrap_or_default();
    match missing {
        Some(what) => Err(ServeError::Refused(format!(
            "missing necessary objects: {what}"
        ))),
        None => Ok(()),
    }
}

/// Slots of [`Seen`].
const SEEN_SLOTS: usize = 4096;

/// Object ids found present lately, each in the slot its first bits pick (ids are
/// uniformly distributed): the trees of successive versions list mostly the same
/// entries, and a hit spares a binary search of the pack's index (which took a sixth
/// of a catch-up's CPU) or a lookup in the repository. Only presence is remembered,
/// and only of ids that were looked up, so a hit is never wrong; a slot holds one id
/// at a time, so memory is fixed (per traversal thread) whatever the pack holds.
#[derive(Clone)]
pub(super) struct Seen(Vec<Option<gix::ObjectId>>);

impl Seen {
    pub(super) fn new() -> Seen {
        Seen(vec![None; SEEN_SLOTS])
    }

    /// Whether `id` is present: remembered, or answered by `lookup`.
    pub(super) fn check(&mut self, id: &gix::oid, lookup: impl FnOnce(&gix::oid) -> bool) -> bool {
        let bytes = id.as_bytes();
        let slot = usize::from(u16::from_le_bytes([
            bytes.first().copied().unwrap_or(0),
            bytes.get(1).copied().unwrap_or(0),
        ])) % SEEN_SLOTS;
        let Some(remembered) = self.0.get_mut(slot) else {
            return lookup(id);
        };
        if remembered.as_deref() == Some(id) {
            return true;
        }
        let present = lookup(id);
        if present {
            *remembered = Some(id.to_owned());
        }
        present
    }
}

/// The bytes of the entry at a range's start, up to where the next entry of the pack
/// starts (`offsets`: every entry's, ascending) rather than the range's end, which
/// counts only the entries in the delta tree.
fn entry_bytes(
    offsets: &[u64],
    pack_end: u64,
) -> impl for<'r> Fn(gix_pack::data::EntryRange, &'r gix_pack::data::File) -> Option<&'r [u8]>
+ Send
+ Clone
+ '_ {
    move |range, pack| {
        let end = match offsets.binary_search(&range.start) {
            Ok(at) => offsets.get(at + 1).copied().unwrap_or(pack_end),
            Err(_) => range.end,
        };
        pack.entry_slice(range.start..end)
    }
}

/// One entry of the indexed pack.
#[derive(Debug, Clone, Copy)]
struct Node {
    offset: u64,
    id: gix::ObjectId,
    /// For a delta, the kind of the object at the root of its chain (its own kind).
    kind: gix::object::Kind,
    /// The pack's first entry or one of its bases: always in the delta tree, because
    /// gix builds that tree reading entry headers from the start of the pack and
    /// expects the first one it is given right after the pack header.
    first: bool,
}

/// Every entry of the pack by ascending offset, with its kind, read from the entry
/// headers alone. A delta's base is found by offset or, for a reference delta, through
/// the index; a chain that does not end in a whole object (a base outside the pack,
/// a cycle) refuses the pack, though indexing has refused such packs already.
fn kinds_by_offset(bundle: &gix_pack::Bundle) -> Result<Vec<Node>, ServeError> {
    use gix_pack::data::entry::Header;
    let corrupt = |what: String| ServeError::Refused(format!("pack verification failed: {what}"));
    let mut entries: Vec<(u64, gix::ObjectId)> = bundle
        .index
        .iter()
        .map(|e| (e.pack_offset, e.oid))
        .collect();
    entries.sort_unstable_by_key(|e| e.0);
    let position = |offset: u64| entries.binary_search_by_key(&offset, |e| e.0).ok();
    // Per entry: its kind if whole, else the position of its base.
    let mut kinds: Vec<Option<gix::object::Kind>> = Vec::with_capacity(entries.len());
    let mut bases: Vec<usize> = Vec::with_capacity(entries.len());
    for (offset, id) in &entries {
        let entry = bundle
            .pack
            .entry(*offset)
            .map_err(|e| corrupt(format!("entry of {id}: {}", first_line(&e))))?;
        let base = match entry.header {
            Header::OfsDelta { base_distance } => {
                Header::verified_base_pack_offset(*offset, base_distance).and_then(position)
            }
            Header::RefDelta { base_id } => bundle
                .index
                .lookup(base_id)
                .map(|at| bundle.index.pack_offset_at_index(at))
                .and_then(position),
            _ => None,
        };
        let kind = entry.header.as_kind();
        match (kind, base) {
            (Some(_), _) => bases.push(usize::MAX),
            (None, Some(base)) => bases.push(base),
            (None, None) => return Err(corrupt(format!("the base of {id} is not in the pack"))),
        }
        kinds.push(kind);
    }
    // Resolve chains: walk down to a known kind, then mark the whole path. Each entry
    // is marked once, so this is linear; a path longer than the pack is a cycle.
    let mut path = Vec::new();
    for start in 0..entries.len() {
        let mut at = start;
        path.clear();
        let kind = loop {
            if let Some(kind) = kinds.get(at).copied().flatten() {
                break kind;
            }
            if path.len() > entries.len() {
                return Err(corrupt("a cycle of deltas".to_owned()));
            }
            path.push(at);
            at = bases.get(at).copied().unwrap_or(usize::MAX);
        };
        for &p in &path {
            if let Some(slot) = kinds.get_mut(p) {
                *slot = Some(kind);
            }
        }
    }
    let mut first = vec![false; entries.len()];
    let mut at = 0;
    while let Some(slot) = first.get_mut(at)
        && !*slot
    {
        *slot = true;
        at = bases.get(at).copied().unwrap_or(usize::MAX);
    }
    Ok(entries
        .into_iter()
        .zip(kinds)
        .zip(first)
        .map(|(((offset, id), kind), first)| Node {
            offset,
            id,
            kind: kind.unwrap_or(gix::object::Kind::Blob),
            first,
        })
        .collect())
}

/// The first object `data` (the object of `node`) names that is not `present`, told
/// with what names it; a malformed object is told too.
fn first_missing(
    node: &Node,
    data: &[u8],
    mut present: impl FnMut(&gix::oid) -> bool,
) -> Option<String> {
    let mut missing = None;
    let named = names(node.id, node.kind, data, |named, how| {
        if present(named) {
            return true;
        }
        missing = Some(how.describe(named, &node.id));
        false
    });
    match named {
        Err(malformed) => Some(malformed),
        Ok(()) => missing,
    }
}

/// How an object names another.
#[derive(Debug, Clone, Copy)]
pub(super) enum Naming {
    TreeOfCommit,
    ParentOfCommit,
    EntryOfTree,
    TaggedBy,
}

impl Naming {
    /// `named`, as `by` names it, for a refusal.
    fn describe(self, named: &gix::oid, by: &gix::oid) -> String {
        match self {
            Naming::TreeOfCommit => format!("tree {named} of commit {by}"),
            Naming::ParentOfCommit => format!("parent {named} of commit {by}"),
            Naming::EntryOfTree => format!("{named} of tree {by}"),
            Naming::TaggedBy => format!("{named} tagged by {by}"),
        }
    }
}

/// Every id the object `id` (of `kind`, content `data`) names, in order, to `visit`,
/// until it returns false; a submodule's commit is not named (it is not an object of
/// this repository). Err tells a malformed commit, tree or tag.
pub(super) fn names(
    id: gix::ObjectId,
    kind: gix::object::Kind,
    data: &[u8],
    mut visit: impl FnMut(&gix::oid, Naming) -> bool,
) -> Result<(), String> {
    match kind {
        gix::object::Kind::Commit => {
            let commit = gix::objs::CommitRef::from_bytes(data, gix::hash::Kind::Sha1)
                .map_err(|e| format!("malformed commit {id}: {e}"))?;
            if visit(&commit.tree(), Naming::TreeOfCommit) {
                for parent in commit.parents() {
                    if !visit(&parent, Naming::ParentOfCommit) {
                        break;
                    }
                }
            }
            Ok(())
        }
        gix::object::Kind::Tree => {
            for item in gix::objs::TreeRefIter::from_bytes(data, gix::hash::Kind::Sha1) {
                let item = item.map_err(|e| format!("malformed tree {id}: {e}"))?;
                if !item.mode.is_commit() && !visit(item.oid, Naming::EntryOfTree) {
                    break;
                }
            }
            Ok(())
        }
        gix::object::Kind::Tag => {
            let target = gix::objs::TagRefIter::from_bytes(data, gix::hash::Kind::Sha1)
                .target_id()
                .map_err(|e| format!("malformed tag {id}: {e}"))?;
            visit(&target, Naming::TaggedBy);
            Ok(())
        }
        gix::object::Kind::Blob => Ok(()),
    }
}

/// Counts what the pack reader consumed and keeps the first read error, which gix
/// reports only as "an IO operation failed".
struct CountingRead<'a> {
    inner: &'a mut dyn BufRead,
    read: u64,
    failure: Option<std::io::Error>,
}

impl CountingRead<'_> {
    fn note<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result
            && self.failure.is_none()
        {
            self.failure = Some(std::io::Error::new(e.kind(), e.to_string()));
        }
        result
    }
}

impl std::io::Read for CountingRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let result = self.inner.read(buf);
        let n = self.note(result)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl BufRead for CountingRead<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        let CountingRead { inner, failure, .. } = self;
        inner.fill_buf().inspect_err(|e| {
            if failure.is_none() {
                *failure = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        })
    }

    fn consume(&mut self, amt: usize) {
        self.read += amt as u64;
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(first: u8, second: u8, rest: u8) -> gix::ObjectId {
        let mut bytes = [rest; 20];
        bytes[0] = first;
        bytes[1] = second;
        gix::ObjectId::from_bytes_or_panic(&bytes)
    }

    /// A hit only ever repeats a lookup that found the id: an empty slot never
    /// matches (not even the null id, which a hostile tree may name), and an id
    /// sharing a slot with a remembered one is looked up.
    #[test]
    fn seen_remembers_only_ids_that_were_found() {
        let mut seen = Seen::new();
        let mut lookups = 0;
        let mut check = |seen: &mut Seen, id: &gix::ObjectId, found: bool| {
            seen.check(id, |_| {
                lookups += 1;
                found
            })
        };
        let null = gix::ObjectId::null(gix::hash::Kind::Sha1);
        assert!(!check(&mut seen, &null, false));
        assert!(!check(&mut seen, &null, false));
        let a = id(1, 1, 7);
        assert!(check(&mut seen, &a, true));
        assert!(check(&mut seen, &a, false), "remembered, not asked again");
        // Same slot, another id: asked, and absent stays absent.
        let b = id(1, 1, 8);
        assert!(!check(&mut seen, &b, false));
        assert!(check(&mut seen, &b, true));
        assert!(check(&mut seen, &b, false));
        // `b` took the slot: `a` is asked again.
        assert!(!check(&mut seen, &a, false));
        assert_eq!(lookups, 6);
    }
}
