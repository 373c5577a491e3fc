//! Archives of a commit's tree, GitHub's tarball (gzipped ustar with pax headers) and
//! zipball (zip with data descriptors), written to any `Write` as the tree is walked.
//!
//! Why by hand rather than through the `tar` and `zip` crates: both formats are a few
//! fixed headers, and what matters here is that nothing is held whole: an entry's
//! header, then its bytes as they are read, then the next. Memory is bounded by one
//! blob read at a time (a blob over [`STREAM_ABOVE_BYTES`] is streamed from its loose
//! file or pack entry, so a 100 MB file costs a buffer, not 100 MB), the tree objects
//! on the current path (decoded one entry at a time, at most [`MAX_HELD_TREE_BYTES`]),
//! and for zip the central directory (a few dozen bytes per entry, capped by
//! [`MAX_CENTRAL_DIRECTORY_BYTES`]).
//!
//! What is written is what `git archive` writes, with GitHub's top directory: every
//! path under `{top}/`, directories as entries of their own, files `0664` (`0775` when
//! executable), symlinks as symlinks, submodules left out, every time the commit's
//! committer time, and the commit id as the pax global header's `comment` (tar) or the
//! archive comment (zip), so `git get-tar-commit-id` reads it back.
//!
//! Pure git and format work: no HTTP. Blocks; run it on the blocking pool.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek as _, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder};

use crate::browse::{BrowseError, Browser, EntryKind, READ_BUDGET_BYTES, TreeCursor, TreeEntry};
use crate::git::Oid;

/// Blobs larger than this are streamed from their file when they are stored whole
/// (loose, or a non-delta pack entry, which is how git stores large files); smaller
/// ones, and deltas, are inflated into memory, at most [`READ_BUDGET_BYTES`] each.
pub const STREAM_ABOVE_BYTES: u64 = 1024 * 1024;
/// Entries (files, directories, symlinks) in one archive at most: a bound on the
/// walk's work for one request, far above any real repository's tree.
pub const MAX_ENTRIES: u64 = 2_000_000;
/// Directory nesting at most (git itself refuses paths this deep on checkout).
pub const MAX_DEPTH: usize = 4096;
/// Bytes of tree objects held at once by a walk (the trees on the current path, each
/// read whole and decoded one entry at a time).
pub const MAX_HELD_TREE_BYTES: usize = 64 * 1024 * 1024;
/// Memory the zip central directory may take (it must be written after every entry,
/// so it is the one thing an archive keeps per entry).
pub const MAX_CENTRAL_DIRECTORY_BYTES: usize = 32 * 1024 * 1024;

/// Which archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A gzipped tar (`tarball`).
    TarGz,
    /// A zip (`zipball`).
    Zip,
}

/// Why an archive could not be written (once bytes are out, the caller can only cut
/// the transfer).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Browse(#[from] BrowseError),
    #[error("writing the archive: {0}")]
    Io(#[from] io::Error),
    #[error("the archive is over its limit: {0}")]
    Limit(&'static str),
}

/// Writes the archive of `commit`'s tree to `out`, every path under `top/`; returns
/// `out` once the archive is complete (and flushed into it).
pub fn write<W: Write>(
    browser: &Browser,
    commit: &Oid,
    top: &str,
    format: Format,
    out: W,
) -> Result<W, ArchiveError> {
    let info = browser.commit(commit)?;
    let time = info.committer.seconds + i64::from(info.committer.offset);
    let comment = hex(commit);
    match format {
        Format::TarGz => {
            let mut tar = Tar {
                out: GzEncoder::new(out, Compression::default()),
                mtime: u64::try_from(info.committer.seconds).unwrap_or(0),
            };
            tar.global_comment(&comment)?;
            walk(browser, &info.tree, top, &mut tar)?;
            tar.finish().map_err(ArchiveError::from)
        }
        Format::Zip => {
            let (date, clock) = dos_time(time);
            let mut zip = Zip {
                out: Counting {
                    inner: out,
                    count: 0,
                },
                date,
                clock,
                central: Vec::new(),
                entries: 0,
            };
            walk(browser, &info.tree, top, &mut zip)?;
            zip.finish(&comment)
        }
    }
}

/// The executable bit of a git file mode.
const EXECUTABLE: u16 = 0o100755;

/// What a format does with each kind of entry.
trait Sink {
    fn dir(&mut self, path: &str) -> Result<(), ArchiveError>;
    fn symlink(&mut self, path: &str, target: &[u8]) -> Result<(), ArchiveError>;
    fn file(
        &mut self,
        path: &str,
        executable: bool,
        size: u64,
        data: &mut dyn Read,
    ) -> Result<(), ArchiveError>;
}

/// Depth first, in git's order (what `git archive` writes): each directory before its
/// contents. Only the trees on the current path are held.
fn walk(browser: &Browser, tree: &Oid, top: &str, sink: &mut dyn Sink) -> Result<(), ArchiveError> {
    let mut blobs = BlobReader::new(browser);
    sink.dir(top)?;
    let mut stack = vec![browser.tree_cursor(tree, "")?];
    let mut held = stack.iter().map(TreeCursor::held).sum::<usize>();
    let mut count = 0u64;
    while let Some(level) = stack.last_mut() {
        let Some(entry) = level.next(browser)? else {
            held -= level.held();
            stack.pop();
            continue;
        };
        count += 1;
        if count > MAX_ENTRIES {
            return Err(ArchiveError::Limit("too many entries"));
        }
        let path = format!("{top}/{}", entry.path);
        match entry.kind {
            EntryKind::Dir => {
                if stack.len() >= MAX_DEPTH {
                    return Err(ArchiveError::Limit("directories nested too deep"));
                }
                sink.dir(&path)?;
                let cursor = browser.tree_cursor(&entry.id, &entry.path)?;
                held += cursor.held();
                if held > MAX_HELD_TREE_BYTES {
                    return Err(ArchiveError::Limit("trees on one path too large"));
                }
                stack.push(cursor);
            }
            // GitHub's archives leave submodules out: their commits are not here.
            EntryKind::Submodule => {}
            EntryKind::Symlink => sink.symlink(&path, &browser.blob_once(&entry.id)?)?,
            EntryKind::File => {
                let (size, mut data) = blobs.open(&entry)?;
                sink.file(&path, entry.mode == EXECUTABLE, size, &mut data)?;
            }
        }
    }
    Ok(())
}

fn hex(id: &Oid) -> String {
    gix::ObjectId::Sha1(*id).to_hex().to_string()
}

// ---- Reading blobs, large ones as streams ----

/// One pack: its index and where its data is.
struct Pack {
    index: gix::odb::pack::index::File,
    data: gix::odb::pack::data::File,
    path: PathBuf,
}

/// Opens blobs for an archive: small ones from gix, large stored-whole ones as a
/// stream from their file. The pack indexes are loaded on the first large blob.
struct BlobReader<'a> {
    browser: &'a Browser,
    objects: PathBuf,
    packs: Option<Vec<Pack>>,
}

impl<'a> BlobReader<'a> {
    fn new(browser: &'a Browser) -> Self {
        BlobReader {
            browser,
            objects: browser.objects_dir(),
            packs: None,
        }
    }

    /// The blob's size and a reader of exactly its bytes.
    fn open(&mut self, entry: &TreeEntry) -> Result<(u64, Box<dyn Read + 'a>), ArchiveError> {
        let size = match entry.size {
            Some(size) => size,
            None => self
                .browser
                .header(&entry.id)
                .map(|(_, size)| size)
                .ok_or_else(|| BrowseError::NotFound {
                    kind: "blob",
                    id: hex(&entry.id),
                })?,
        };
        if size > STREAM_ABOVE_BYTES
            && let Some(stream) = self.stream(&entry.id)?
        {
            return Ok((size, stream));
        }
        if size > READ_BUDGET_BYTES {
            // A delta too large to resolve within the read budget: git stores large
            // files whole, so only a repacked repository with deltas between huge
            // files gets here.
            return Err(BrowseError::TooLarge {
                id: hex(&entry.id),
                size,
                max: READ_BUDGET_BYTES,
            }
            .into());
        }
        let data = self.browser.blob_once(&entry.id)?;
        Ok((size, Box::new(io::Cursor::new(data))))
    }

    /// The blob as a stream of its inflated bytes, if it is stored whole; `None` when
    /// it is a delta (which must be resolved in memory).
    fn stream(&mut self, id: &Oid) -> Result<Option<Box<dyn Read + 'a>>, ArchiveError> {
        let name = hex(id);
        let (dir, file) = name.split_at(2);
        let loose = self.objects.join(dir).join(file);
        if let Ok(file) = File::open(&loose) {
            let mut inflated = flate2::read::ZlibDecoder::new(BufReader::new(file));
            // "blob <size>\0": the header is short; more than 32 bytes is not a blob.
            let mut byte = [0u8; 1];
            for _ in 0..32 {
                inflated.read_exact(&mut byte)?;
                if byte[0] == 0 {
                    return Ok(Some(Box::new(inflated)));
                }
            }
            return Err(
                io::Error::new(io::ErrorKind::InvalidData, "bad loose object header").into(),
            );
        }
        let packs = match &mut self.packs {
            Some(packs) => packs,
            packs @ None => packs.insert(load_packs(&self.objects.join("pack"))?),
        };
        let oid = gix::ObjectId::Sha1(*id);
        for pack in packs.iter() {
            let Some(at) = pack.index.lookup(oid) else {
                continue;
            };
            let offset = pack.index.pack_offset_at_index(at);
            let entry = pack
                .data
                .entry(offset)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if !matches!(entry.header, gix::odb::pack::data::entry::Header::Blob) {
                return Ok(None);
            }
            let mut file = File::open(&pack.path)?;
            file.seek(SeekFrom::Start(entry.data_offset))?;
            let inflated = flate2::read::ZlibDecoder::new(BufReader::new(file));
            return Ok(Some(Box::new(inflated)));
        }
        Ok(None)
    }
}

/// The packs under `dir` (none if it does not exist).
fn load_packs(dir: &Path) -> io::Result<Vec<Pack>> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut packs = Vec::new();
    for path in listing.filter_map(Result::ok).map(|e| e.path()) {
        if path.extension().is_none_or(|x| x != "idx") {
            continue;
        }
        let data_path = path.with_extension("pack");
        let kind = gix::hash::Kind::Sha1;
        // A pack being installed or removed by a concurrent repack: skip it, its
        // objects are elsewhere too (or the read falls back to gix).
        let (Ok(index), Ok(data)) = (
            gix::odb::pack::index::File::at(&path, kind),
            gix::odb::pack::data::File::at(&data_path, kind),
        ) else {
            continue;
        };
        packs.push(Pack {
            index,
            data,
            path: data_path,
        });
    }
    Ok(packs)
}

/// Copies exactly `size` bytes of `data` to `out`, refusing a source that is shorter
/// (a corrupt object must not make a short file that looks complete).
fn copy_exact(data: &mut dyn Read, out: &mut dyn Write, size: u64) -> io::Result<()> {
    let copied = io::copy(&mut data.take(size), out)?;
    if copied != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("a blob ended after {copied} of its {size} bytes"),
        ));
    }
    Ok(())
}

// ---- tar ----

const BLOCK: usize = 512;

/// A ustar stream as `git archive` writes it.
struct Tar<W: Write> {
    out: GzEncoder<W>,
    mtime: u64,
}

impl<W: Write> Tar<W> {
    /// pax global header carrying the commit id, as `git archive` writes it.
    fn global_comment(&mut self, id: &str) -> io::Result<()> {
        let records = pax_record("comment", id.as_bytes());
        self.header("pax_global_header", b'g', 0o666, records.len() as u64, b"")?;
        self.data(&records)
    }

    /// One 512-byte header; a pax extended header first when the name or link target
    /// does not fit ustar's fields.
    fn entry(&mut self, path: &str, kind: u8, mode: u32, size: u64, link: &[u8]) -> io::Result<()> {
        let mut pax = Vec::new();
        if path.len() > 100 {
            pax.extend(pax_record("path", path.as_bytes()));
        }
        if link.len() > 100 {
            pax.extend(pax_record("linkpath", link));
        }
        if !pax.is_empty() {
            self.header("././@PaxHeader", b'x', 0o666, pax.len() as u64, b"")?;
            self.data(&pax)?;
        }
        self.header(path, kind, mode, size, link)
    }

    fn header(
        &mut self,
        path: &str,
        kind: u8,
        mode: u32,
        size: u64,
        link: &[u8],
    ) -> io::Result<()> {
        let mut h = [0u8; BLOCK];
        put(&mut h[0..100], path.as_bytes());
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], self.mtime);
        h[148..156].fill(b' ');
        h[156] = kind;
        put(&mut h[157..257], link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        put(&mut h[265..297], b"root");
        put(&mut h[297..329], b"root");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        octal(&mut h[148..155], sum);
        self.out.write_all(&h)
    }

    /// `data` and the padding to the next block.
    fn data(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.pad(data.len() as u64)
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rest = (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64;
        self.out.write_all(&[0u8; BLOCK][..rest as usize])
    }

    fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.finish()
    }
}

impl<W: Write> Sink for Tar<W> {
    fn dir(&mut self, path: &str) -> Result<(), ArchiveError> {
        Ok(self.entry(&format!("{path}/"), b'5', 0o775, 0, b"")?)
    }

    fn symlink(&mut self, path: &str, target: &[u8]) -> Result<(), ArchiveError> {
        Ok(self.entry(path, b'2', 0o777, 0, target)?)
    }

    fn file(
        &mut self,
        path: &str,
        executable: bool,
        size: u64,
        data: &mut dyn Read,
    ) -> Result<(), ArchiveError> {
        // ustar's size field holds 11 octal digits (8 GiB); no blob here is that large
        // (pushes cap objects far below), but a wrong header would corrupt the rest.
        if size >= 1 << 33 {
            return Err(ArchiveError::Limit("a file over 8 GiB"));
        }
        let mode = if executable { 0o775 } else { 0o664 };
        self.entry(path, b'0', mode, size, b"")?;
        copy_exact(data, &mut self.out, size)?;
        Ok(self.pad(size)?)
    }
}

/// `field` holds `bytes`, NUL padded (truncated if longer: a pax record carries the
/// whole value then).
fn put(field: &mut [u8], bytes: &[u8]) {
    let n = bytes.len().min(field.len());
    field[..n].copy_from_slice(&bytes[..n]);
}

/// Zero-padded octal, NUL terminated, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    put(field, text.as_bytes());
    field[digits] = 0;
}

/// One pax record, `"<len> <key>=<value>\n"`, where `len` counts the whole record,
/// itself included.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

// ---- zip ----

/// A writer that counts what passed through it (zip records offsets and sizes).
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A zip stream: each entry's local header (sizes and CRC left zero, bit 3 set), its
/// deflated bytes, a data descriptor; the central directory at the end. Zip64 records
/// are written when offsets or the entry count outgrow the classic fields.
struct Zip<W: Write> {
    out: Counting<W>,
    date: u16,
    clock: u16,
    /// The central directory, built as entries are written.
    central: Vec<u8>,
    entries: u64,
}

/// Bit 3 (sizes in a data descriptor) and bit 11 (names are UTF-8).
const ZIP_FLAGS: u16 = 0x0808;
const DEFLATE: u16 = 8;
const STORE: u16 = 0;

impl<W: Write> Zip<W> {
    /// Writes one entry: `mode` is the Unix mode (file type included) for the
    /// external attributes, as Info-ZIP records it.
    fn add(
        &mut self,
        name: &str,
        mode: u32,
        data: Option<(&mut dyn Read, u64)>,
    ) -> Result<(), ArchiveError> {
        let offset = self.out.count;
        let method = if data.is_some() { DEFLATE } else { STORE };
        let flags = if data.is_some() { ZIP_FLAGS } else { 0x0800 };
        let name_bytes = name.as_bytes();
        let name_len = u16::try_from(name_bytes.len())
            .map_err(|_| ArchiveError::Limit("a path over 64 KiB"))?;
        let mut local = Vec::with_capacity(30 + name_bytes.len());
        local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        local.extend_from_slice(&20u16.to_le_bytes());
        local.extend_from_slice(&flags.to_le_bytes());
        local.extend_from_slice(&method.to_le_bytes());
        local.extend_from_slice(&self.clock.to_le_bytes());
        local.extend_from_slice(&self.date.to_le_bytes());
        local.extend_from_slice(&[0u8; 12]); // CRC and sizes: in the data descriptor
        local.extend_from_slice(&name_len.to_le_bytes());
        local.extend_from_slice(&0u16.to_le_bytes());
        local.extend_from_slice(name_bytes);
        self.out.write_all(&local)?;
        let (crc, compressed, size) = match data {
            None => (0, 0, 0),
            Some((data, size)) => {
                let start = self.out.count;
                let mut crc = flate2::Crc::new();
                let mut deflate = DeflateEncoder::new(&mut self.out, Compression::default());
                let mut hashing = CrcWriter {
                    inner: &mut deflate,
                    crc: &mut crc,
                };
                copy_exact(data, &mut hashing, size)?;
                deflate.finish()?;
                let compressed = self.out.count - start;
                let fits =
                    |n: u64| u32::try_from(n).map_err(|_| ArchiveError::Limit("a file over 4 GiB"));
                let (compressed, size) = (fits(compressed)?, fits(size)?);
                let mut descriptor = Vec::with_capacity(16);
                descriptor.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
                descriptor.extend_from_slice(&crc.sum().to_le_bytes());
                descriptor.extend_from_slice(&compressed.to_le_bytes());
                descriptor.extend_from_slice(&size.to_le_bytes());
                self.out.write_all(&descriptor)?;
                (crc.sum(), compressed, size)
            }
        };
        let zip64 = offset > u64::from(u32::MAX - 1);
        let c = &mut self.central;
        c.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        c.extend_from_slice(&(3u16 << 8 | 30).to_le_bytes()); // made by Unix, zip 3.0
        c.extend_from_slice(&(if zip64 { 45u16 } else { 20 }).to_le_bytes());
        c.extend_from_slice(&flags.to_le_bytes());
        c.extend_from_slice(&method.to_le_bytes());
        c.extend_from_slice(&self.clock.to_le_bytes());
        c.extend_from_slice(&self.date.to_le_bytes());
        c.extend_from_slice(&crc.to_le_bytes());
        c.extend_from_slice(&compressed.to_le_bytes());
        c.extend_from_slice(&size.to_le_bytes());
        c.extend_from_slice(&name_len.to_le_bytes());
        c.extend_from_slice(&(if zip64 { 12u16 } else { 0 }).to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes()); // comment
        c.extend_from_slice(&0u16.to_le_bytes()); // disk
        c.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        c.extend_from_slice(&(mode << 16).to_le_bytes());
        let short_offset = if zip64 { u32::MAX } else { offset as u32 };
        c.extend_from_slice(&short_offset.to_le_bytes());
        c.extend_from_slice(name_bytes);
        if zip64 {
            c.extend_from_slice(&1u16.to_le_bytes());
            c.extend_from_slice(&8u16.to_le_bytes());
            c.extend_from_slice(&offset.to_le_bytes());
        }
        self.entries += 1;
        if self.central.len() > MAX_CENTRAL_DIRECTORY_BYTES {
            return Err(ArchiveError::Limit("the zip central directory"));
        }
        Ok(())
    }

    fn finish(mut self, comment: &str) -> Result<W, ArchiveError> {
        let start = self.out.count;
        self.out.write_all(&self.central)?;
        let size = self.out.count - start;
        let zip64 =
            self.entries >= 0xffff || start >= u64::from(u32::MAX) || size >= u64::from(u32::MAX);
        let mut end = Vec::new();
        if zip64 {
            let record = self.out.count;
            end.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
            end.extend_from_slice(&44u64.to_le_bytes());
            end.extend_from_slice(&(3u16 << 8 | 45).to_le_bytes());
            end.extend_from_slice(&45u16.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&self.entries.to_le_bytes());
            end.extend_from_slice(&self.entries.to_le_bytes());
            end.extend_from_slice(&size.to_le_bytes());
            end.extend_from_slice(&start.to_le_bytes());
            end.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&record.to_le_bytes());
            end.extend_from_slice(&1u32.to_le_bytes());
        }
        let clip16 = |n: u64| u16::try_from(n).unwrap_or(u16::MAX);
        let clip32 = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        end.extend_from_slice(&clip16(self.entries).to_le_bytes());
        end.extend_from_slice(&clip16(self.entries).to_le_bytes());
        end.extend_from_slice(&clip32(size).to_le_bytes());
        end.extend_from_slice(&clip32(start).to_le_bytes());
        end.extend_from_slice(&clip16(comment.len() as u64).to_le_bytes());
        end.extend_from_slice(comment.as_bytes());
        self.out.write_all(&end)?;
        self.out.flush()?;
        Ok(self.out.inner)
    }
}

impl<W: Write> Sink for Zip<W> {
    fn dir(&mut self, path: &str) -> Result<(), ArchiveError> {
        self.add(&format!("{path}/"), 0o040775, None)
    }

    fn symlink(&mut self, path: &str, target: &[u8]) -> Result<(), ArchiveError> {
        let mut data = target;
        self.add(path, 0o120777, Some((&mut data, target.len() as u64)))
    }

    fn file(
        &mut self,
        path: &str,
        executable: bool,
        size: u64,
        data: &mut dyn Read,
    ) -> Result<(), ArchiveError> {
        let mode = if executable { 0o100775 } else { 0o100664 };
        self.add(path, mode, Some((data, size)))
    }
}

/// Passes bytes on and folds them into a CRC-32.
struct CrcWriter<'a, W: Write> {
    inner: &'a mut W,
    crc: &'a mut flate2::Crc,
}

impl<W: Write> Write for CrcWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// MS-DOS date and time of `seconds` (already shifted to the committer's zone, as
/// `git archive` does), clamped to what the format holds (1980 to 2107).
fn dos_time(seconds: i64) -> (u16, u16) {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if year < 1980 {
        return (1 << 5 | 1, 0);
    }
    if year > 2107 {
        return (127 << 9 | 12 << 5 | 31, 23 << 11 | 59 << 5 | 29);
    }
    let date = (((year - 1980) << 9) | (month << 5) | day) as u16;
    let clock = (((secs / 3600) << 11) | ((secs % 3600 / 60) << 5) | ((secs % 60) / 2)) as u16;
    (date, clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record("path", b"a"), b"9 path=a\n");
        let long = vec![b'x'; 95];
        let record = pax_record("path", &long);
        let len: usize = String::from_utf8_lossy(&record)
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, record.len());
    }

    #[test]
    fn dos_time_of_a_known_instant() {
        // 2024-02-29 13:45:30 UTC.
        let (date, clock) = dos_time(1_709_214_330);
        assert_eq!(date, (44 << 9) | (2 << 5) | 29);
        assert_eq!(clock, (13 << 11) | (45 << 5) | 15);
        assert_eq!(dos_time(0), (1 << 5 | 1, 0));
    }

    #[test]
    fn octal_fields_are_nul_terminated() {
        let mut field = [0u8; 8];
        octal(&mut field, 0o664);
        assert_eq!(&field, b"0000664\0");
    }
}
