//! A tree's entries read one at a time from the tree object's bytes, for walks over a
//! whole tree (archives, languages) that must hold neither a listing of a huge tree nor
//! the listings of every tree on the path.

use gix::bstr::ByteSlice as _;

use gix::object::Kind;

use super::{Browser, EntryKind, Result, TreeEntry, corrupt, join};
use crate::git::Oid;

/// A tree's entries decoded one at a time from its raw bytes (`<octal mode> <name>\0`
/// and 20 bytes of id, repeated): a tree of a million entries costs its own bytes
/// (bounded by [`READ_BUDGET_BYTES`](super::READ_BUDGET_BYTES)), not a million decoded entries.
#[derive(Debug)]
pub(crate) struct TreeCursor {
    data: Vec<u8>,
    pos: usize,
    prefix: String,
    tree: Oid,
}

impl Browser {
    /// A tree's entries one at a time (see [`TreeCursor`]), for walks that must not
    /// hold a whole listing: only the tree object's own bytes are held.
    pub(crate) fn tree_cursor(&self, tree: &Oid, prefix: &str) -> Result<TreeCursor> {
        Ok(TreeCursor {
            data: self.object_of(tree, Kind::Tree)?,
            pos: 0,
            prefix: prefix.to_string(),
            tree: *tree,
        })
    }
}

impl TreeCursor {
    /// Bytes of the tree object held.
    pub(crate) fn held(&self) -> usize {
        self.data.len()
    }

    /// The next entry, with its blob size from the object header; `None` at the end.
    pub(crate) fn next(&mut self, browser: &Browser) -> Result<Option<TreeEntry>> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(None);
        }
        let bad = |what: &str| corrupt(&self.tree, format!("tree entry: {what}"));
        let space = rest
            .iter()
            .position(|b| *b == b' ')
            .ok_or_else(|| bad("no mode"))?;
        let nul = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| bad("no name"))?;
        if nul < space {
            return Err(bad("no name"));
        }
        let mode_text =
            std::str::from_utf8(rest.get(..space).unwrap_or_default()).map_err(|_| bad("mode"))?;
        let mode = u32::from_str_radix(mode_text, 8).map_err(|_| bad("mode"))?;
        let name = rest.get(space + 1..nul).unwrap_or_default();
        let id: Oid = rest
            .get(nul + 1..nul + 21)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("truncated id"))?;
        self.pos += nul + 21;
        let kind = match mode & 0o170000 {
            0o040000 => EntryKind::Dir,
            0o160000 => EntryKind::Submodule,
            0o120000 => EntryKind::Symlink,
            _ => EntryKind::File,
        };
        let size = matches!(kind, EntryKind::File | EntryKind::Symlink)
            .then(|| browser.header(&id).map(|(_, size)| size))
            .flatten();
        Ok(Some(TreeEntry {
            path: join(&self.prefix, &name.to_str_lossy()),
            mode: u16::try_from(mode).map_err(|_| bad("mode"))?,
            kind,
            id,
            size,
        }))
    }
}
