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
    let num_entries = u32::try_from(objects.len())
        .map_err(|_| ServeError::Refused("more than 2^32 objects requested".to_owned()))?;
    // Locations from the indexes, sizes from the offsets: nothing is inflated to find
    // where an entry ends (see `packs`).
    let db = super::packs::PackSet::open(repo)?;
    // Chunks of entries (compressed data included) wait in memory until written in
    // order, a few per thread: size them to hold about CHUNK_BYTES, so that large
    // objects stay bounded and small ones are not handed over one by one.
    let chunk_size = usize::try_from(CHUNK_BYTES / db.mean_entry_bytes().max(1))
        .unwrap_or(MAX_CHUNK)
        .clamp(1, MAX_CHUNK);
    let counts: Vec<output::Count> = objects
        .into_iter()
        .map(|id| output::Count {
            id,
            entry_pack_location: output::count::PackLocation::NotLookedUp,
        })
        .collect();
    let mut entries = output::entry::iter_from_counts(
        counts,
        db,
        Box::new(gix::progress::Discard),
        output::entry::iter_from_counts::Options {
            thread_limit: None,
            mode: output::entry::iter_from_counts::Mode::PackCopyAndBaseObjects,
            // A delta against an object the client may lack would make a broken pack.
            allow_thin_pack: false,
            chunk_size,
            version: gix_pack::data::Version::V2,
            compression: Default::default(),
        },
    )
    .map_err(ServeError::git)?;
    let mut stats = PackStats::default();
    let mut counter = CountingWriter {
        inner: out,
        written: 0,
    };
    {
        let in_order = gix::parallel::InOrderIter::from(entries.by_ref()).map(|chunk| {
            let chunk = chunk?;
            if let Some(bad) = chunk.iter().find(|e| e.is_invalid()) {
                return Err(gix::error::message!("object {} is missing", bad.id).into());
            }
            Ok(chunk)
        });
        let mut writer = output::bytes::FromEntriesIter::new(
            in_order,
            &mut counter,
            num_entries,
            gix_pack::data::Version::V2,
            gix::hash::Kind::Sha1,
        );
        for written in writer.by_ref() {
            written.map_err(|e| write_or_git(&e))?;
        }
    }
    let outcome = gix::parallel::Finalize::finalize(entries).map_err(ServeError::git)?;
    stats.objects = num_entries as usize;
    stats.bytes = counter.written;
    stats.copied = outcome.objects_copied_from_pack;
    stats.recompressed = outcome.decoded_and_recompressed_objects;
    Ok(stats)
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
