//! An incoming pack, from the wire to the object database: streamed into a quarantine
//! directory while gix indexes it (verifying every object's checksum and completing a
//! thin pack with the bases it refers to), then checked for connectivity (every object
//! it names is in the pack or already in the repository), and only then moved into the
//! repository. A pack that fails any step never becomes visible, and its quarantine is
//! removed (on drop, or by the next start after a crash).

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use gix::objs::Exists as _;
use guts_storage::{GitRepo, Quarantine};

use super::ServeError;

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
/// streams in, gix inflates each entry only to measure it (into a small buffer); it
/// inflates whole objects when it resolves and hashes them for the index, and again in
/// the connectivity check, and both times it compares the size the entry declares (and
/// a delta's base and result sizes) with this cap *before* allocating. An object over
/// it refuses the pack with a message naming the limit (git prints it as
/// `remote unpack failed`).
pub fn ingest(
    repo: &GitRepo,
    quarantine: Quarantine,
    pack: &mut dyn BufRead,
    max_object_bytes: usize,
) -> Result<Option<Ingested>, ServeError> {
    let interrupt = AtomicBool::new(false);
    let mut counted = CountingRead {
        inner: pack,
        read: 0,
        failure: None,
    };
    let outcome = gix_pack::Bundle::write_to_directory(
        &mut counted,
        Some(quarantine.path()),
        &mut gix::progress::Discard,
        &interrupt,
        Some(repo.gix().objects.clone()),
        gix::hash::Kind::Sha1,
        gix_pack::bundle::write::Options {
            thread_limit: None,
            iteration_mode: gix_pack::data::input::Mode::Verify,
            index_version: gix_pack::index::Version::V2,
            alloc_limit_bytes: Some(max_object_bytes),
            compression: gix::zlib::Compression::BEST_SPEED,
        },
    )
    .map_err(|e| match counted.failure.take() {
        // The body could not be read (over the push limit, idle too long, client
        // gone): that is the story, not how gix noticed.
        Some(read) => ServeError::Read(read),
        None => refusal("index-pack failed", &e, max_object_bytes),
    })?;
    let bytes = counted.read;
    if outcome.index.num_objects == 0 {
        return Ok(None);
    }
    let (Some(pack), Some(index)) = (outcome.data_path, outcome.index_path) else {
        return Err(ServeError::Git("index-pack wrote no files".to_owned()));
    };
    check_connectivity(repo, &index, max_object_bytes)?;
    Ok(Some(Ingested {
        _quarantine: quarantine,
        pack,
        index,
        objects: outcome.index.num_objects,
        bytes,
    }))
}

fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

/// Why gix refused a pack, for the pusher. Going over `max_object_bytes` is told as
/// such (gix says only that an entry is too large to fit in memory, without naming it:
/// it refuses before inflating, so it never learns the object's id).
fn refusal(step: &str, e: &gix::Error, max_object_bytes: usize) -> ServeError {
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
fn check_connectivity(
    repo: &GitRepo,
    index: &std::path::Path,
    max_object_bytes: usize,
) -> Result<(), ServeError> {
    let bundle = gix_pack::Bundle::at(index, gix::hash::Kind::Sha1).map_err(ServeError::git)?;
    let missing: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let processor = {
        let missing = missing.clone();
        let index = &bundle.index;
        let odb = repo.gix().objects.clone();
        move |kind: gix::object::Kind,
              data: &[u8],
              entry: &gix_pack::index::Entry,
              _: &dyn gix::Progress|
              -> gix::Result<()> {
            let present = |id: &gix::oid| index.lookup(id).is_some() || odb.exists(id);
            let note = |what: String| {
                if let Ok(mut slot) = missing.lock()
                    && slot.is_none()
                {
                    *slot = Some(what);
                }
            };
            match kind {
                gix::object::Kind::Commit => {
                    match gix::objs::CommitRef::from_bytes(data, gix::hash::Kind::Sha1) {
                        Ok(commit) => {
                            let tree = commit.tree();
                            if !present(&tree) {
                                note(format!("tree {tree} of commit {}", entry.oid));
                            }
                            for parent in commit.parents() {
                                if !present(&parent) {
                                    note(format!("parent {parent} of commit {}", entry.oid));
                                }
                            }
                        }
                        Err(e) => note(format!("malformed commit {}: {e}", entry.oid)),
                    }
                }
                gix::object::Kind::Tree => {
                    for item in gix::objs::TreeRefIter::from_bytes(data, gix::hash::Kind::Sha1) {
                        match item {
                            Ok(item) if item.mode.is_commit() => {}
                            Ok(item) => {
                                if !present(item.oid) {
                                    note(format!("{} of tree {}", item.oid, entry.oid));
                                }
                            }
                            Err(e) => {
                                note(format!("malformed tree {}: {e}", entry.oid));
                                break;
                            }
                        }
                    }
                }
                gix::object::Kind::Tag => {
                    match gix::objs::TagRefIter::from_bytes(data, gix::hash::Kind::Sha1).target_id()
                    {
                        Ok(target) if present(&target) => {}
                        Ok(target) => note(format!("{target} tagged by {}", entry.oid)),
                        Err(e) => note(format!("malformed tag {}: {e}", entry.oid)),
                    }
                }
                gix::object::Kind::Blob => {}
            }
            Ok(())
        }
    };
    bundle
        .index
        .traverse(
            &bundle.pack,
            &mut gix::progress::Discard,
            &AtomicBool::new(false),
            processor,
            gix_pack::index::traverse::Options {
                traversal: gix_pack::index::traverse::Algorithm::DeltaTreeLookup,
                thread_limit: None,
                check:
                    gix_pack::index::traverse::SafetyCheck::SkipFileAndObjectChecksumVerification,
                alloc_limit_bytes: Some(max_object_bytes),
                make_pack_lookup_cache: || gix_pack::cache::Never,
            },
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
