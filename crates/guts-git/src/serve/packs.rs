//! The repository's packs as gix-pack's object source for pack generation.
//!
//! Why not the object database handle gix gives every repository: to copy an entry
//! from a stored pack, gix-pack needs its location and on-disk size, and the generic
//! handle learns the size by inflating the entry, so a clone inflated every object it
//! sent (blobs included) before sending the first byte. Here the size comes from the
//! index, as git does it: entries lie back to back, so an entry ends where the next
//! one (by offset) starts. Objects not in any pack (loose objects) are read through
//! the repository's own handle and sent recompressed.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use gix::ObjectId;
use gix_pack::data;
use gix_pack::data::output;

use super::ServeError;

/// One pack: its index, its data, and every entry's offset in ascending order.
struct Pack {
    bundle: gix_pack::Bundle,
    offsets: Vec<data::Offset>,
}

/// Every pack of a repository, loaded once per request. Clones share the packs and
/// get their own decompressor (gix clones the source per worker thread).
pub struct PackSet {
    packs: Arc<Vec<Pack>>,
    /// For loose objects, and for decoding entries that must be recompressed.
    fallback: gix::OdbHandle,
    inflate: RefCell<gix::zlib::Inflate>,
}

impl Clone for PackSet {
    fn clone(&self) -> Self {
        PackSet {
            packs: self.packs.clone(),
            fallback: self.fallback.clone(),
            inflate: RefCell::new(gix::zlib::Inflate::default()),
        }
    }
}

impl std::fmt::Debug for PackSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackSet")
            .field("packs", &self.packs.len())
            .finish()
    }
}

impl PackSet {
    /// Loads the indexes and maps the packs under `objects/pack`.
    pub fn open(repo: &gix::Repository) -> Result<PackSet, ServeError> {
        let dir = repo.objects.store_ref().path().join("pack");
        let mut packs = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(ServeError::Git(format!("{}: {e}", dir.display()))),
        };
        let mut indexes: Vec<_> = entries
            .into_iter()
            .filter(|p: &std::path::PathBuf| p.extension().is_some_and(|x| x == "idx"))
            .collect();
        // Newest first (git's order for lookups); the name breaks ties.
        indexes.sort_by_key(|p| {
            let modified = std::fs::metadata(p).and_then(|m| m.modified()).ok();
            (std::cmp::Reverse(modified), p.clone())
        });
        for index in indexes {
            if let Some(pack) = load(&index)? {
                packs.push(pack);
            }
        }
        Ok(PackSet {
            packs: Arc::new(packs),
            fallback: repo.objects.clone(),
            inflate: RefCell::new(gix::zlib::Inflate::default()),
        })
    }
}

impl PackSet {
    /// Every object stored here, each once, with where it is stored: the entries of
    /// every loaded pack's index (an object in several packs from the newest, as
    /// lookups find it) and the loose objects. Nothing is read but indexes and
    /// directory names, and no object is looked up: each pack is listed once.
    pub fn stored_objects(&self) -> Result<Vec<output::Count>, ServeError> {
        let stored: usize = self
            .packs
            .iter()
            .map(|p| p.bundle.index.num_objects() as usize)
            .sum();
        let mut seen: gix::hashtable::HashSet<ObjectId> = gix::hashtable::HashSet::default();
        seen.reserve(stored);
        let mut counts = Vec::with_capacity(stored);
        for (pack_id, pack) in self.packs.iter().enumerate() {
            for entry in pack.bundle.index.iter() {
                if !seen.insert(entry.oid) {
                    continue;
                }
                let location =
                    pack.entry_size(entry.pack_offset)
                        .map(|entry_size| data::entry::Location {
                            pack_id: pack_id as u32,
                            entry_size,
                            pack_offset: entry.pack_offset,
                        });
                counts.push(output::Count {
                    id: entry.oid,
                    entry_pack_location: output::count::PackLocation::LookedUp(location),
                });
            }
        }
        let mut loose = Vec::new();
        loose_ids(self.fallback.store_ref().path(), &mut loose)?;
        for id in loose {
            if seen.insert(id) {
                counts.push(output::Count {
                    id,
                    entry_pack_location: output::count::PackLocation::LookedUp(None),
                });
            }
        }
        Ok(counts)
    }

    /// The one pack that holds every object stored here, as mapped, with its object
    /// count: when there is exactly one pack and no loose object (a repository that
    /// arrived in one push or one catch-up, or was just repacked), what a peer with
    /// nothing gets is that pack, byte for byte, without reading an entry or hashing.
    pub fn sole_pack(&self) -> Result<Option<(&[u8], usize)>, ServeError> {
        let [pack] = self.packs.as_slice() else {
            return Ok(None);
        };
        let mut loose = Vec::new();
        loose_ids(self.fallback.store_ref().path(), &mut loose)?;
        if !loose.is_empty() {
            return Ok(None);
        }
        let data = &pack.bundle.pack;
        Ok(data
            .entry_slice(0..data.data_len() as u64)
            .map(|bytes| (bytes, pack.bundle.index.num_objects() as usize)))
    }

    /// Mean size of a stored entry, compressed: what one object costs in memory while
    /// it waits to be written.
    pub fn mean_entry_bytes(&self) -> u64 {
        let (bytes, objects) = self.packs.iter().fold((0u64, 0u64), |(b, o), p| {
            (
                b + p.bundle.pack.data_len() as u64,
                o + u64::from(p.bundle.index.num_objects()),
            )
        });
        bytes.checked_div(objects).unwrap_or(0)
    }
}

/// Adds the ids of the loose objects under `objects` (`ab/cdef…` files) to `out`.
/// Anything else there (`pack`, `info`, temporary files) is not an object.
fn loose_ids(objects: &Path, out: &mut Vec<ObjectId>) -> Result<(), ServeError> {
    let listing = |dir: &Path| match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect::<Vec<String>>()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(ServeError::Git(format!("{}: {e}", dir.display()))),
    };
    for prefix in listing(objects)? {
        if prefix.len() != 2 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        for rest in listing(&objects.join(&prefix))? {
            if rest.len() != 38 {
                continue;
            }
            if let Ok(id) = ObjectId::from_hex(format!("{prefix}{rest}").as_bytes()) {
                out.push(id);
            }
        }
    }
    Ok(())
}

/// A pack whose files vanished in between (a concurrent repack) is skipped: its
/// objects are in the pack that replaced it, which the listing also saw or the
/// fallback handle finds.
fn load(index: &Path) -> Result<Option<Pack>, ServeError> {
    let bundle = match gix_pack::Bundle::at(index, gix::hash::Kind::Sha1) {
        Ok(bundle) => bundle,
        Err(_) if !index.exists() || !index.with_extension("pack").exists() => return Ok(None),
        Err(e) => return Err(ServeError::Git(format!("{}: {e}", index.display()))),
    };
    let mut offsets: Vec<data::Offset> = (0..bundle.index.num_objects())
        .map(|i| bundle.index.pack_offset_at_index(i))
        .collect();
    offsets.sort_unstable();
    Ok(Some(Pack { bundle, offsets }))
}

impl Pack {
    /// The size on disk of the entry at `offset`: up to the next entry, or to the
    /// trailing checksum for the last one.
    fn entry_size(&self, offset: data::Offset) -> Option<usize> {
        let at = self.offsets.binary_search(&offset).ok()?;
        let end = match self.offsets.get(at + 1) {
            Some(next) => *next,
            None => self.bundle.pack.pack_end() as u64,
        };
        usize::try_from(end.checked_sub(offset)?).ok()
    }
}

impl gix_pack::Find for PackSet {
    fn contains(&self, id: &gix::oid) -> bool {
        self.packs
            .iter()
            .any(|p| p.bundle.index.lookup(id).is_some())
            || gix::objs::Exists::exists(&self.fallback, id)
    }

    fn try_find_cached<'a>(
        &self,
        id: &gix::oid,
        buffer: &'a mut Vec<u8>,
        pack_cache: &mut dyn gix_pack::cache::DecodeEntry,
    ) -> gix::Result<Option<(gix::objs::Data<'a>, Option<data::entry::Location>)>> {
        let found = self
            .packs
            .iter()
            .position(|p| p.bundle.index.lookup(id).is_some());
        match found {
            Some(pack_id) => {
                let Some(pack) = self.packs.get(pack_id) else {
                    return Ok(None);
                };
                let mut inflate = self.inflate.borrow_mut();
                let found = pack.bundle.find(id, buffer, &mut inflate, pack_cache)?;
                Ok(found.map(|(object, mut location)| {
                    location.pack_id = pack_id as u32;
                    (object, Some(location))
                }))
            }
            None => {
                let object = gix::objs::Find::try_find(&self.fallback, id, buffer)?;
                Ok(object.map(|object| (object, None)))
            }
        }
    }

    fn location_by_oid(
        &self,
        id: &gix::oid,
        _buf: &mut Vec<u8>,
    ) -> gix::Result<Option<data::entry::Location>> {
        for (pack_id, pack) in self.packs.iter().enumerate() {
            if let Some(index) = pack.bundle.index.lookup(id) {
                let pack_offset = pack.bundle.index.pack_offset_at_index(index);
                let Some(entry_size) = pack.entry_size(pack_offset) else {
                    continue;
                };
                return Ok(Some(data::entry::Location {
                    pack_id: pack_id as u32,
                    entry_size,
                    pack_offset,
                }));
            }
        }
        Ok(None)
    }

    fn pack_offsets_and_oid(
        &self,
        pack_id: u32,
    ) -> gix::Result<Option<Vec<(data::Offset, ObjectId)>>> {
        Ok(self.packs.get(pack_id as usize).map(|pack| {
            pack.bundle
                .index
                .iter()
                .map(|e| (e.pack_offset, e.oid))
                .collect()
        }))
    }

    fn entry_by_location(&self, location: &data::entry::Location) -> Option<gix_pack::find::Entry> {
        let pack = self.packs.get(location.pack_id as usize)?;
        let bytes = pack
            .bundle
            .pack
            .entry_slice(location.entry_range(location.pack_offset))?;
        Some(gix_pack::find::Entry {
            data: bytes.to_vec(),
            version: pack.bundle.pack.version(),
        })
    }
}
