//! Streaming a pack of chosen objects with gix: entries are copied from the stored
//! packs, deltas included when their base is in the same outgoing pack (gix computes
//! no new deltas), and written chunk by chunk as they are produced, so memory holds a
//! few chunks, never the pack.

use std::io::Write;

use gix::ObjectId;
use gix_pack::data::output;

use super::ServeError;
use crate::pktline::{self, Band};

/// Bytes of stored entries per chunk of work (see `write_pack`).
const CHUNK_BYTES: u64 = 4 << 20;

/// Most entries per chunk.
const MAX_CHUNK: usize = 64;

/// What a pack contained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackStats {
    pub objects: usize,
    pub bytes: u64,
    /// Entries copied as stored (deltas kept).
    pub copied: usize,
    /// Entries decoded and deflated again (loose objects, deltas whose base is not sent).
    pub recompressed: usize,
}

/// Writes a version-2 pack of `objects` to `out`. Every object must exist: a missing
/// one fails the pack rather than corrupt it.
pub fn write_pack(
    repo: &gix::Repository,
    objects: Vec<ObjectId>,
    out: &mut dyn Write,
) -> Result<PackStats, ServeError> {
    let db = super::packs::PackSet::open(repo)?;
    // Locations from the indexes, sizes from the offsets: nothing is inflated to find
    // where an entry ends (see `packs`).
    let mut counts: Vec<output::Count> = Vec::with_capacity(objects.len());
    let mut buf = Vec::new();
    for id in objects {
        let location =
            gix_pack::Find::location_by_oid(&db, &id, &mut buf).map_err(ServeError::git)?;
        counts.push(output::Count {
            id,
            entry_pack_location: output::count::PackLocation::LookedUp(location),
        });
    }
    write_counts(db, counts, out)
}

/// [`write_pack`] of every object `db` holds (see `PackSet::stored_objects`).
pub fn write_stored(
    db: super::packs::PackSet,
    out: &mut dyn Write,
) -> Result<PackStats, ServeError> {
    let counts = db.stored_objects()?;
    write_counts(db, counts, out)
}

/// Writes the pack of `counts`, objects of `db` located (or not, for loose ones).
fn write_counts(
    db: super::packs::PackSet,
    counts: Vec<output::Count>,
    out: &mut dyn Write,
) -> Result<PackStats, ServeError> {
    let num_entries = u32::try_from(counts.len())
        .map_err(|_| ServeError::Refused("more than 2^32 objects requested".to_owned()))?;
    // Chunks of entries (compressed data included) wait in memory until written in
    // order, a few per thread: size them to hold about CHUNK_BYTES, so that large
    // objects stay bounded and small ones are not handed over one by one.
    let chunk_size = usize::try_from(CHUNK_BYTES / db.mean_entry_bytes().max(1))
        .unwrap_or(MAX_CHUNK)
        .clamp(1, MAX_CHUNK);
    let mut entries = Entries::new(db, counts, chunk_size);
    let mut stats = PackStats::default();
    let mut counter = CountingWriter {
        inner: out,
        written: 0,
    };
    {
        let mut writer = output::bytes::FromEntriesIter::new(
            entries.by_ref(),
            &mut counter,
            num_entries,
            gix_pack::data::Version::V2,
            gix::hash::Kind::Sha1,
        );
        for written in writer.by_ref() {
            written.map_err(|e| write_or_git(&e))?;
        }
    }
    stats.objects = num_entries as usize;
    stats.bytes = counter.written;
    stats.copied = entries.copied;
    stats.recompressed = entries.recompressed;
    Ok(stats)
}

/// The pack's entries, made one chunk at a time as the writer asks for them.
///
/// gix-pack has `iter_from_counts` for this, on worker threads, but it sizes its chunks
/// itself (a quarter of the objects per chunk on two cores, up to 1,000), ignoring the
/// size asked for, and several chunks wait in channels: a clone of 200 MB of large
/// objects held 190 MB. Here a chunk is made only when the writer needs it, so memory
/// holds one chunk. Entries are copied as stored (no inflating, no deflating) unless a
/// delta's base is not in this pack, which is cheap work done serially.
///
/// Order: counts sorted by pack and offset (the order gix-pack needs to copy deltas: a
/// delta names its base by position in this order), loose objects first.
struct Entries {
    db: super::packs::PackSet,
    counts: Vec<output::Count>,
    /// For each pack, the range of `counts` it holds.
    by_pack: Vec<(u32, std::ops::Range<usize>)>,
    next: usize,
    chunk: usize,
    buf: Vec<u8>,
    copied: usize,
    recompressed: usize,
}

impl Entries {
    fn new(db: super::packs::PackSet, mut counts: Vec<output::Count>, chunk: usize) -> Self {
        let key = |c: &output::Count| match &c.entry_pack_location {
            output::count::PackLocation::LookedUp(Some(l)) => (1u8, l.pack_id, l.pack_offset),
            _ => (0, 0, 0),
        };
        counts.sort_by_key(key);
        let mut by_pack: Vec<(u32, std::ops::Range<usize>)> = Vec::new();
        for (i, count) in counts.iter().enumerate() {
            let (packed, pack_id, _) = key(count);
            if packed == 0 {
                continue;
            }
            match by_pack.last_mut() {
                Some((id, range)) if *id == pack_id => range.end = i + 1,
                _ => by_pack.push((pack_id, i..i + 1)),
            }
        }
        Entries {
            db,
            counts,
            by_pack,
            next: 0,
            chunk: chunk.max(1),
            buf: Vec::new(),
            copied: 0,
            recompressed: 0,
        }
    }

    fn entry(&mut self, at: usize) -> gix::Result<output::Entry> {
        let Some(count) = self.counts.get(at) else {
            return Err(gix::error::message!("entry {at} is out of range").into());
        };
        if let output::count::PackLocation::LookedUp(Some(location)) = &count.entry_pack_location
            && let Some(stored) = gix_pack::Find::entry_by_location(&self.db, location)
            && let Some((_, range)) = self.by_pack.iter().find(|(id, _)| *id == location.pack_id)
            && let Some(bases) = self.counts.get(range.clone())
        {
            let copied = output::Entry::from_pack_entry(
                stored,
                count,
                bases,
                range.start,
                None::<fn(u32, u64) -> gix::Result<Option<ObjectId>>>,
                gix_pack::data::Version::V2,
            );
            if let Some(entry) = copied {
                self.copied += 1;
                return entry;
            }
        }
        // Not stored in a pack, or a delta whose base is not sent: decode, deflate.
        let id = count.id;
        let object = gix_pack::Find::try_find(&self.db, &id, &mut self.buf)?
            .ok_or_else(|| gix::error::message!("object {id} is missing"))?;
        self.recompressed += 1;
        output::Entry::from_data(count, &object.0, Default::default())
    }
}

impl Iterator for Entries {
    type Item = gix::Result<Vec<output::Entry>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.counts.len() {
            return None;
        }
        let end = (self.next + self.chunk).min(self.counts.len());
        let mut chunk = Vec::with_capacity(end - self.next);
        for at in self.next..end {
            match self.entry(at) {
                Ok(entry) => chunk.push(entry),
                Err(e) => {
                    self.next = self.counts.len();
                    return Some(Err(e));
                }
            }
        }
        self.next = end;
        Some(Ok(chunk))
    }
}

/// A failed write to the client is the client's doing (it went away); anything else
/// is the object database's.
fn write_or_git(e: &gix::Error) -> ServeError {
    let text = format!("{e:?}");
    if text.contains("Broken pipe") || text.contains("BrokenPipe") || text.contains("client") {
        ServeError::Write(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            e.to_string(),
        ))
    } else {
        ServeError::Git(e.to_string())
    }
}

struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    written: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Frames everything written into side-band packets of one band (64k: payloads of at
/// most 65515 bytes), buffering up to one packet.
pub struct Sideband<'a> {
    inner: &'a mut dyn Write,
    band: Band,
    buf: Vec<u8>,
    max: usize,
}

impl std::fmt::Debug for Sideband<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sideband")
            .field("band", &self.band)
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl<'a> Sideband<'a> {
    /// `small`: plain `side-band` (1000-byte packets) rather than `side-band-64k`.
    pub fn new(inner: &'a mut dyn Write, band: Band, small: bool) -> Self {
        let max = if small {
            999
        } else {
            pktline::MAX_SIDEBAND_DATA_LEN
        };
        Sideband {
            inner,
            band,
            buf: Vec::with_capacity(max),
            max,
        }
    }

    fn emit(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        pktline::write_sideband(self.inner, self.band, &self.buf).map_err(to_io)?;
        self.buf.clear();
        Ok(())
    }
}

fn to_io(e: crate::WriteError) -> std::io::Error {
    match e {
        crate::WriteError::Io(io) => io,
        other => std::io::Error::other(other.to_string()),
    }
}

impl Write for Sideband<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.max - self.buf.len();
        let n = room.min(data.len());
        self.buf
            .extend_from_slice(data.get(..n).unwrap_or_default());
        if self.buf.len() == self.max {
            self.emit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.emit()?;
        self.inner.flush()
    }
}

/// Writes a progress message on band 2 (shown by git as `remote: ...`).
pub fn progress(out: &mut dyn Write, message: &str) -> Result<(), ServeError> {
    pktline::write_sideband(out, Band::Progress, message.as_bytes())?;
    Ok(())
}
