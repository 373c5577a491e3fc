//! The low-level git data API's objects (`/git/refs`, `/git/trees`, `/git/blobs`):
//! refs, tree listings and the fields of a blob that precede its streamed content.

use guts_storage::Oid;
use guts_storage::browse::{EntryKind, TreeEntry, TreeListing};
use serde::Serialize;

use crate::browse::{Repo, hex};

/// A ref (`GET /git/ref/{ref}`, `GET /git/refs`) with the object it names.
#[derive(Debug, Serialize)]
pub(crate) struct GitRef {
    #[serde(rename = "ref")]
    name: String,
    node_id: String,
    url: String,
    object: RefObject,
}

/// The object a ref names: its kind (`commit`, `tag`, …), sha and API URL.
#[derive(Debug, Serialize)]
pub(crate) struct RefObject {
    #[serde(rename = "type")]
    kind: &'static str,
    sha: String,
    url: String,
}

impl GitRef {
    /// The ref `name` (full, `refs/…`) naming object `id` of kind `kind`.
    pub(crate) fn new(repo: &Repo, name: String, id: &Oid, kind: &'static str) -> GitRef {
        let sha = hex(id);
        let short = name.strip_prefix("refs/").unwrap_or(&name);
        GitRef {
            node_id: format!("REF_{}", hex::encode(name.as_bytes())),
            url: repo.api(&format!("/git/refs/{short}")),
            object: RefObject {
                kind,
                url: repo.api(&format!("/git/{kind}s/{sha}")),
                sha,
            },
            name,
        }
    }
}

/// `GET /git/trees/{sha}`: a tree's entries, `truncated` when there were more than
/// storage lists.
#[derive(Debug, Serialize)]
pub(crate) struct GitTree {
    sha: String,
    url: String,
    tree: Vec<GitTreeEntry>,
    truncated: bool,
}

impl GitTree {
    pub(crate) fn new(repo: &Repo, listing: TreeListing) -> GitTree {
        let sha = hex(&listing.id);
        GitTree {
            url: repo.api(&format!("/git/trees/{sha}")),
            sha,
            tree: listing
                .entries
                .into_iter()
                .map(|e| GitTreeEntry::new(repo, e))
                .collect(),
            truncated: listing.truncated,
        }
    }
}

/// The git object type a tree entry names.
fn git_type(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File | EntryKind::Symlink => "blob",
        EntryKind::Dir => "tree",
        EntryKind::Submodule => "commit",
    }
}

/// One entry of a [`GitTree`].
#[derive(Debug, Serialize)]
pub(crate) struct GitTreeEntry {
    path: String,
    /// Git's mode in six octal digits (`100644`).
    mode: String,
    #[serde(rename = "type")]
    kind: &'static str,
    sha: String,
    /// Blobs only; absent for trees and submodules, as on GitHub.
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    /// Absent for a submodule: its commit lives in another repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

impl GitTreeEntry {
    fn new(repo: &Repo, entry: TreeEntry) -> GitTreeEntry {
        let sha = hex(&entry.id);
        let kind = git_type(entry.kind);
        GitTreeEntry {
            url: (entry.kind != EntryKind::Submodule)
                .then(|| repo.api(&format!("/git/{kind}s/{sha}"))),
            path: entry.path,
            mode: format!("{:06o}", entry.mode),
            kind,
            sha,
            size: entry.size,
        }
    }
}

/// `GET /git/blobs/{sha}` without its `content`, which is streamed after these
/// fields (see [`super::json_with_base64`]).
#[derive(Debug, Serialize)]
pub(crate) struct BlobHead {
    sha: String,
    node_id: String,
    size: usize,
    url: String,
    encoding: &'static str,
}

impl BlobHead {
    /// Blob `id` of `size` bytes, whose content is sent in base64.
    pub(crate) fn new(repo: &Repo, id: &Oid, size: usize) -> BlobHead {
        let sha = hex(id);
        BlobHead {
            node_id: format!("B_{sha}"),
            url: repo.api(&format!("/git/blobs/{sha}")),
            sha,
            size,
            encoding: "base64",
        }
    }
}
