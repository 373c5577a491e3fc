//! An incoming pack indexed in two passes, each inflating every object once: the first
//! streams it into the quarantine (checking its checksum, completing a thin pack with
//! the bases it names from the repository, noting every entry's offset and CRC-32);
//! the second resolves the deltas on every core, hashes every object for the index,
//! and collects the ids the commits, trees and tags name, which are then looked up in
//! the pack's own index or the repository (the connectivity check, done without
//! inflating anything again).
//!
//! gix's delta tree can be built from offsets only when a delta names its base by
//! offset (or by an id the repository has, which the first pass turns into an offset),
//! as git sends when the server offers `ofs-delta` (this one does) and as a Guts node's
//! packs for peers do; a pack whose deltas name in-pack bases by id is reported as
//! such, and the caller indexes it the slower way.

use std::collections::HashSet;
use std::io::{BufRead, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use gix::objs::Exists as _;
use gix_pack::data::input::{
    BytesToEntriesIter, EntriesToBytesIter, EntryDataMode, LookupRefDeltaObjectsIter, Mode,
};

use super::ServeError;

/// A pack written to the quarantine by [`write_pack`], not yet indexed.
#[derive(Debug)]
pub(super) struct Written {
    pub path: PathBuf,
    /// Every entry: offset and CRC-32, by ascending offset.
    entries: Vec<(u64, u32)>,
    /// Where the last entry ends (the trailer follows).
    end: u64,
    pub checksum: gix::ObjectId,
    /// A delta names its base by id, and that base is in the pack (see the module doc).
    pub in_pack_ref_deltas: bool,
}

impl Written {
    pub(super) fn objects(&self) -> usize {
        self.entries.len()
    }
}

/// Streams `input` into `dir/incoming.pack`, verifying the pack's checksum. Into a
/// repository that has objects, a thin pack is completed with the bases `odb` holds
/// (inserted before the first delta that needs them, as gix's bundle writer does), the
/// entries written again one by one. Into one that has none (a node catching up, a
/// first push) nothing can complete a pack, so its bytes are copied as they are read:
/// no entry is kept in memory on the way, and the pack needs no second hashing.
pub(super) fn write_pack(
    odb: gix::OdbHandle,
    dir: &Path,
    input: &mut dyn BufRead,
) -> Result<Written, gix::Error> {
    let path = dir.join("incoming.pack");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(gix::Error::from_error)?;
    let file = BufWriter::with_capacity(256 * 1024, file);
    let empty = odb
        .iter()
        .map(|mut all| all.next().is_none())
        .unwrap_or(false);
    if empty {
        let mut tee = Tee {
            input,
            copy: file,
            failure: None,
        };
        let entries = BytesToEntriesIter::new_from_header(
            &mut tee,
            Mode::Verify,
            EntryDataMode::Crc32,
            gix::hash::Kind::Sha1,
        )?;
        let written = collect(path, entries)?;
        if let Some(e) = tee.failure.take() {
            return Err(gix::Error::from_error(e));
        }
        tee.copy.flush().map_err(gix::Error::from_error)?;
        return Ok(written);
    }
    let entries = BytesToEntriesIter::new_from_header(
        input,
        Mode::Verify,
        EntryDataMode::KeepAndCrc32,
        gix::hash::Kind::Sha1,
    )?;
    let version = entries.version();
    let completed =
        LookupRefDeltaObjectsIter::new(entries, odb, gix::zlib::Compression::BEST_SPEED);
    let written =
        EntriesToBytesIter::new(completed, PackFile(file), version, gix::hash::Kind::Sha1);
    collect(path, written)
}

/// Notes where each entry of the pack being written to `path` lies.
fn collect(
    path: PathBuf,
    entries: impl Iterator<Item = Result<gix_pack::data::input::Entry, gix::Error>>,
) -> Result<Written, gix::Error> {
    let mut out = Written {
        path,
        entries: Vec::new(),
        end: 0,
        checksum: gix::ObjectId::null(gix::hash::Kind::Sha1),
        in_pack_ref_deltas: false,
    };
    for entry in entries {
        let entry = entry?;
        let crc32 = entry
            .crc32
            .ok_or_else(|| gix::Error::from_error(std::io::Error::other("no CRC-32")))?;
        if matches!(entry.header, gix_pack::data::entry::Header::RefDelta { .. }) {
            out.in_pack_ref_deltas = true;
        }
        out.entries.push((entry.pack_offset, crc32));
        out.end = entry.pack_offset + u64::from(entry.header_size) + entry.compressed_size;
        if let Some(trailer) = entry.trailer {
            out.checksum = trailer;
        }
    }
    Ok(out)
}

/// Reads `input` and writes what was read (consumed) to `copy`. A failed write is kept
/// and fails the reads after it.
struct Tee<'a, W> {
    input: &'a mut dyn BufRead,
    copy: W,
    failure: Option<std::io::Error>,
}

impl<W: Write> Tee<'_, W> {
    fn failed(&self) -> std::io::Result<()> {
        match &self.failure {
            Some(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            None => Ok(()),
        }
    }
}

impl<W: Write> Read for Tee<'_, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.failed()?;
        let n = self.input.read(buf)?;
        self.copy.write_all(buf.get(..n).unwrap_or_default())?;
        Ok(n)
    }
}

impl<W: Write> BufRead for Tee<'_, W> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.failed()?;
        self.input.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if self.failure.is_none() {
            let copied = match self.input.fill_buf() {
                Ok(buf) => self.copy.write_all(buf.get(..amt).unwrap_or(buf)),
                Err(e) => Err(e),
            };
            self.failure = copied.err();
        }
        self.input.consume(amt);
    }
}

/// The pack file being written: buffered writes (one per entry otherwise), and reads
/// and seeks (the writer rewrites the header and hashes the whole file at the end)
/// after flushing.
struct PackFile(BufWriter<std::fs::File>);

impl Write for PackFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Read for PackFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.flush()?;
        self.0.get_mut().read(buf)
    }
}

impl Seek for PackFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.flush()?;
        self.0.get_mut().seek(pos)
    }
}

/// A pack indexed by [`index_pack`], files named after its checksum.
#[derive(Debug)]
pub(super) struct Indexed {
    pub pack: PathBuf,
    pub index: PathBuf,
    /// The first object named by a commit, tree or tag that is neither in the pack nor
    /// in the repository, or the first malformed commit, tree or tag.
    pub problem: Option<Problem>,
}

#[derive(Debug)]
pub(super) enum Problem {
    Missing(gix::ObjectId),
    Malformed(String),
}

/// What the traversal keeps per entry: where it is, its CRC-32, and the id it hashes to.
#[derive(Clone, Copy)]
struct Entry {
    offset: u64,
    crc32: u32,
    id: gix::ObjectId,
}

/// Indexes `written` (see the module doc; the caller checks
/// [`Written::in_pack_ref_deltas`] first): writes `pack-<checksum>.idx` beside it and
/// renames the pack to match, and checks that everything its commits, trees and tags
/// name is in the pack or in `odb`.
pub(super) fn index_pack(
    written: Written,
    odb: &gix::OdbHandle,
    max_object_bytes: usize,
) -> Result<Indexed, ServeError> {
    let refused = |e: gix::Error| super::ingest::refusal("index-pack failed", &e, max_object_bytes);
    let interrupt = AtomicBool::new(false);
    let tree = gix_pack::cache::delta::Tree::from_offsets_in_pack(
        &written.path,
        written.entries.iter().map(|&(offset, crc32)| Entry {
            offset,
            crc32,
            id: gix::ObjectId::null(gix::hash::Kind::Sha1),
        }),
        &|e: &Entry| e.offset,
        // Unreachable: the caller indexes packs with in-pack reference deltas otherwise.
        &|_| Ok(None),
        &mut gix::progress::Discard,
        &interrupt,
        gix::hash::Kind::Sha1,
    )
    .map_err(refused)?;
    let pack = gix_pack::data::File::at(&written.path, gix::hash::Kind::Sha1)
        .map_err(|e| ServeError::Git(format!("opening the pack: {e}")))?;
    let named = Arc::new(Mutex::new(Named::default()));
    let inspect = {
        let mut collector = Collector::new(named.clone());
        move |entry: &mut Entry,
              _: &dyn gix::progress::Progress,
              context: gix_pack::cache::delta::traverse::Context<'_>|
              -> gix::Result<()> {
            let kind = context.entry.header.as_kind().ok_or_else(|| {
                gix::Error::from_error(std::io::Error::other("a delta without a kind"))
            })?;
            entry.id = gix::objs::compute_hash(gix::hash::Kind::Sha1, kind, context.decompressed)?;
            collector.names(entry.id, kind, context.decompressed);
            Ok(())
        }
    };
    let mut size_progress = gix::progress::Discard;
    let outcome = tree
        .traverse(
            |range, pack: &gix_pack::data::File| pack.entry_slice(range),
            &pack,
            written.end,
            inspect,
            traverse_options(&mut size_progress, &interrupt, max_object_bytes),
        )
        .map_err(refused)?;
    let mut entries: Vec<Entry> = outcome
        .roots
        .into_iter()
        .chain(outcome.children)
        .map(|item| item.data)
        .collect();
    entries.sort_unstable_by(|a, b| by_id(&a.id, &b.id));

    let stem = format!("pack-{}", written.checksum.to_hex());
    let dir = written
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let index = dir.join(format!("{stem}.idx"));
    write_index(&index, &entries, &written.checksum)
        .map_err(|e| ServeError::Git(format!("writing the pack index: {e}")))?;
    let pack_path = dir.join(format!("{stem}.pack"));
    std::fs::rename(&written.path, &pack_path)
        .map_err(|e| ServeError::Git(format!("naming the pack: {e}")))?;

    let named = std::mem::take(
        &mut *named
            .lock()
            .map_err(|_| ServeError::Git("connectivity check poisoned".to_owned()))?,
    );
    let problem = match named.malformed {
        Some(what) => Some(Problem::Malformed(what)),
        None => {
            let mut unknown: Vec<gix::ObjectId> = named.unknown.into_iter().flatten().collect();
            unknown.sort_unstable_by(|a, b| by_id(a, b));
            unknown.dedup();
            // Both sorted: one walk finds which are in the pack.
            let mut in_pack = entries.iter().map(|e| e.id).peekable();
            unknown
                .into_iter()
                .find(|id| {
                    while in_pack
                        .next_if(|p| by_id(p, id) == std::cmp::Ordering::Less)
                        .is_some()
                    {}
                    in_pack.peek() != Some(id) && !odb.exists(id)
                })
                .map(Problem::Missing)
        }
    };
    Ok(Indexed {
        pack: pack_path,
        index,
        problem,
    })
}

/// How a delta tree of an incoming pack is traversed: on every core, no object (nor
/// delta base) over `max_object_bytes`, no progress reported.
pub(super) fn traverse_options<'a, 's>(
    size_progress: &'s mut gix::progress::Discard,
    interrupt: &'a AtomicBool,
    max_object_bytes: usize,
) -> gix_pack::cache::delta::traverse::Options<'a, 's> {
    gix_pack::cache::delta::traverse::Options {
        object_progress: Box::new(gix::progress::Discard),
        size_progress,
        thread_limit: None,
        should_interrupt: interrupt,
        object_hash: gix::hash::Kind::Sha1,
        alloc_limit_bytes: Some(max_object_bytes),
    }
}

/// Orders ids as bytes, comparing their first eight as one number first: the sort and
/// the walk over hundreds of thousands of ids spent a sixth of an ingest in `memcmp`.
fn by_id(a: &gix::oid, b: &gix::oid) -> std::cmp::Ordering {
    let key = |id: &gix::oid| {
        let bytes = id.as_bytes();
        let mut first = [0u8; 8];
        if let Some(head) = bytes.get(..8) {
            first.copy_from_slice(head);
        }
        u64::from_be_bytes(first)
    };
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

/// The ids named during the traversal (a set per thread), and the first malformed
/// object.
#[derive(Default)]
struct Named {
    unknown: Vec<HashSet<gix::ObjectId>>,
    malformed: Option<String>,
}

/// One traversal thread's view of the ids its objects name, each kept once, to be
/// looked up when the pack's index is complete (in it first, then in the repository).
/// Handed to [`Named`] when the thread ends (on drop).
///
/// Memory: one id per distinct id named, about one per object of a pack that brings
/// whole history; the delta tree already holds several times that per object, and a
/// hostile pack cannot name more distinct ids than its bytes hold (20 bytes each, and
/// a delta can only copy what its base already names).
struct Collector {
    named: Arc<Mutex<Named>>,
    unknown: HashSet<gix::ObjectId>,
    seen: super::ingest::Seen,
}

impl Collector {
    fn new(named: Arc<Mutex<Named>>) -> Self {
        Self {
            named,
            unknown: HashSet::new(),
            seen: super::ingest::Seen::new(),
        }
    }

    /// Notes what the object `id` (of `kind`, content `data`) names.
    fn names(&mut self, id: gix::ObjectId, kind: gix::object::Kind, data: &[u8]) {
        let Collector { unknown, seen, .. } = self;
        let named = super::ingest::names(id, kind, data, |named, _| {
            // `seen` remembers the ids kept already, sparing the set most inserts.
            seen.check(named, |named| {
                unknown.insert(named.to_owned());
                true
            });
            true
        });
        if let Err(what) = named
            && let Ok(mut named) = self.named.lock()
            && named.malformed.is_none()
        {
            named.malformed = Some(what);
        }
    }
}

impl Clone for Collector {
    /// A fresh, empty view for another thread.
    fn clone(&self) -> Self {
        Self::new(self.named.clone())
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if !self.unknown.is_empty()
            && let Ok(mut named) = self.named.lock()
        {
            named.unknown.push(std::mem::take(&mut self.unknown));
        }
    }
}

/// Writes a version 2 pack index of `entries` (sorted by id) for the pack whose
/// checksum is `checksum`: fan-out, ids, CRC-32s, 31-bit offsets with the larger ones
/// in a table of their own, the pack's checksum, and the index's own.
fn write_index(path: &Path, entries: &[Entry], checksum: &gix::ObjectId) -> std::io::Result<()> {
    const LARGE: u64 = 0x7fff_ffff;
    let file = std::fs::File::create_new(path)?;
    let mut out = HashingWriter {
        inner: BufWriter::with_capacity(256 * 1024, file),
        hasher: gix::hash::hasher(gix::hash::Kind::Sha1),
    };
    out.write_all(b"\xfftOc")?;
    out.write_all(&2u32.to_be_bytes())?;
    let mut fanout = [0u32; 256];
    for entry in entries {
        let first = entry.id.as_bytes().first().copied().unwrap_or(0);
        if let Some(count) = fanout.get_mut(usize::from(first)) {
            *count += 1;
        }
    }
    let mut total = 0u32;
    for count in fanout {
        total += count;
        out.write_all(&total.to_be_bytes())?;
    }
    for entry in entries {
        out.write_all(entry.id.as_bytes())?;
    }
    for entry in entries {
        out.write_all(&entry.crc32.to_be_bytes())?;
    }
    let mut large = Vec::new();
    for entry in entries {
        let small = if entry.offset > LARGE {
            let at = u32::try_from(large.len())
                .map_err(|_| std::io::Error::other("too many large offsets"))?;
            large.push(entry.offset);
            at | 0x8000_0000
        } else {
            entry.offset as u32
        };
        out.write_all(&small.to_be_bytes())?;
    }
    for offset in large {
        out.write_all(&offset.to_be_bytes())?;
    }
    out.write_all(checksum.as_bytes())?;
    let own = out
        .hasher
        .try_finalize()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut inner = out.inner;
    inner.write_all(own.as_bytes())?;
    inner.flush()
}

/// Hashes what it writes (an index ends with the hash of everything before it).
struct HashingWriter<W> {
    inner: W,
    hasher: gix::hash::Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets past 31 bits go to the index's table of large offsets, which gix (and
    /// git) read back; small ones stay inline, ids sorted, CRC-32s kept.
    #[test]
    fn an_index_with_large_offsets_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.idx");
        let id = |first: u8| gix::ObjectId::from_bytes_or_panic(&[first; 20]);
        let entries = [
            (id(0x01), 12, 7),
            (id(0x80), 0x8000_0000, 8),
            (id(0x81), 0x7fff_ffff, 9),
            (id(0xfe), 0x1_0000_0010, 10),
        ]
        .map(|(id, offset, crc32)| Entry { offset, crc32, id });
        let checksum = id(0x55);
        write_index(&path, &entries, &checksum).unwrap();
        let index = gix_pack::index::File::at(&path, gix::hash::Kind::Sha1).unwrap();
        assert_eq!(index.num_objects(), 4);
        assert_eq!(index.version(), gix_pack::index::Version::V2);
        assert_eq!(index.pack_checksum(), checksum);
        index
            .verify_checksum(&mut gix::progress::Discard, &AtomicBool::new(false))
            .unwrap();
        for entry in &entries {
            let at = index.lookup(entry.id).unwrap();
            assert_eq!(index.pack_offset_at_index(at), entry.offset);
            assert_eq!(index.crc32_at_index(at), Some(entry.crc32));
        }
        assert!(index.lookup(id(0x02)).is_none());
    }
}
