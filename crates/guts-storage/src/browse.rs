//! Reading a repository's history and files for the REST API: revisions, commits,
//! history walks with git's path and date filters, trees, blobs, tree-to-tree changes
//! with line counts, merge bases and ahead/behind counts.
//!
//! Pure reads through gix; every function blocks and can be CPU-heavy on a large
//! history, so callers run it on the blocking pool. Results are domain values (raw
//! object ids, strings, counts): what they look like on the wire is the API crate's
//! business.

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

use gix::bstr::ByteSlice as _;
use gix::object::Kind;
use gix::objs::{CommitRef, TagRef, TreeRef};

use crate::error::StoreError;
use crate::git::{GitRepo, GitRepos, Oid};

mod cursor;
mod diff;
mod stats;

pub(crate) use cursor::TreeCursor;
use diff::LineDiff;
pub use diff::{line_changes, unified_patch};
pub use stats::{Author, Authors, MAX_CONTRIBUTOR_COMMITS, Readme};

/// GitHub truncates recursive trees here and says so with `truncated: true`.
pub const MAX_TREE_ENTRIES: usize = 100_000;
/// The largest blob GitHub's contents API describes (larger ones are refused with
/// `too_large`); only its metadata is read, so the size costs nothing here.
pub const MAX_BLOB_BYTES: u64 = 100 * 1024 * 1024;
/// The memory one request may spend on object contents. Two rules, both checked from
/// an object's header before anything is inflated:
///
/// - the blobs a request inflates (both sides of every diffed file, a served blob or
///   file) count against it *in total*: past it, further files are listed without a
///   patch or line counts and a blob is refused, so a commit touching thousands of
///   files costs what one touching a few does;
/// - no single object decode may allocate more, delta bases included (gix enforces
///   this when the repository is opened by [`Browser::open`]).
///
/// 32 MiB: GitHub serves blobs up to 100 MB, but as base64 JSON a blob costs about
/// four times its size in memory while it is encoded and sent, and a node answers many
/// requests at once; a node is a smaller machine than GitHub's fleet. Larger files are
/// for `git clone`.
pub const READ_BUDGET_BYTES: u64 = 32 * 1024 * 1024;
/// Files whose blob is larger than this on either side are listed without `patch` and
/// with zero line counts, as GitHub does for large files: a line diff costs memory per
/// line (a 99 MiB file of newlines is 104 million lines, 1.6 GB of line slices) and
/// time that grows with the product of the edits and the lines. The side's size comes
/// from the object header, so such a blob is never inflated.
pub const MAX_DIFF_BLOB_BYTES: u64 = 1024 * 1024;
/// A file whose diff changes more lines than this is listed without `patch` (GitHub
/// omits the patch of such a file; its line counts stay).
pub const MAX_PATCH_LINES_PER_FILE: usize = 3_000;
/// Changed lines of all patches of one response together (GitHub's limit for a
/// commit or comparison): once reached, further files are listed without `patch`.
pub const MAX_PATCH_LINES_TOTAL: usize = 20_000;
/// Line counts are computed for this many changed files at most; the rest are listed
/// with zero counts, so a commit touching a million files still answers.
pub const MAX_COUNTED_FILES: usize = 3_000;
/// Lines of context around each change in a patch (git's and GitHub's default).
const PATCH_CONTEXT: usize = 3;
/// How much of the object cache gix may use for one browse (trees and commits are
/// read over and over in a history walk with a path filter).
const OBJECT_CACHE_BYTES: usize = 8 * 1024 * 1024;
/// How much gix may keep of delta bases for one browse (its default is 96 MB a handle).
const DELTA_CACHE_BYTES: usize = 8 * 1024 * 1024;
/// Bytes git looks at to decide a file is binary (`buffer_is_binary`).
const BINARY_SNIFF_BYTES: usize = 8000;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum BrowseError {
    /// A branch, tag or sha that names no commit here.
    #[error("no commit found for {0}")]
    UnknownRevision(String),
    /// An object that is absent, or is not of the kind asked for.
    #[error("no {kind} {id}")]
    NotFound { kind: &'static str, id: String },
    #[error("object {id} is {size} bytes, more than the {max} that can be returned")]
    TooLarge { id: String, size: u64, max: u64 },
    #[error("cannot read object {id}: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("git: {0}")]
    Git(String),
}

type Result<T> = std::result::Result<T, BrowseError>;

/// Who wrote or committed, and when (seconds since the epoch and the offset east of
/// UTC in seconds, as git stores it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub email: String,
    pub seconds: i64,
    pub offset: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: Oid,
    pub tree: Oid,
    pub parents: Vec<Oid>,
    pub author: Signature,
    pub committer: Signature,
    /// The whole message; one trailing newline removed, as GitHub shows it.
    pub message: String,
}

/// An annotated tag object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    pub id: Oid,
    pub name: String,
    /// One trailing newline removed, as GitHub shows it.
    pub message: String,
    pub object: Oid,
    /// `commit`, `tree`, `blob` or `tag`.
    pub object_kind: &'static str,
    /// `None` for the rare tag written without one.
    pub tagger: Option<Signature>,
}

/// What a tree entry is, from its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Submodule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// Relative to the listed tree, `/`-separated.
    pub path: String,
    /// Git's mode, e.g. `0o100644`.
    pub mode: u16,
    pub kind: EntryKind,
    pub id: Oid,
    /// Blob size in bytes; `None` for trees and submodules.
    pub size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeListing {
    pub id: Oid,
    pub entries: Vec<TreeEntry>,
    /// More entries existed than [`MAX_TREE_ENTRIES`].
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeStatus {
    Added,
    Modified,
    Removed,
    Renamed,
}

/// One file changed between two trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    /// The old path of a rename.
    pub previous_path: Option<String>,
    pub status: ChangeStatus,
    /// The blob before (`None` when added).
    pub old_id: Option<Oid>,
    /// The blob after (`None` when removed).
    pub new_id: Option<Oid>,
    pub additions: usize,
    pub deletions: usize,
    /// The changed lines with three lines of context, as git's hunks (`@@ -a,b +c,d
    /// @@` …): GitHub's `patch`. `None` for binary files, files without changed lines,
    /// and files past the limits ([`MAX_DIFF_BLOB_BYTES`], [`MAX_PATCH_LINES_PER_FILE`],
    /// [`MAX_PATCH_LINES_TOTAL`], [`READ_BUDGET_BYTES`]).
    pub patch: Option<String>,
}

/// The filters of a history listing, all optional (git's `-- path`, `--since`,
/// `--until`, `--author`).
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub path: Option<String>,
    /// Committer time at or after, seconds since the epoch.
    pub since: Option<i64>,
    /// Committer time at or before.
    pub until: Option<i64>,
    /// A case-insensitive substring of the author's name or email.
    pub author: Option<String>,
}

/// How `head` relates to `base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub merge_base: Option<Oid>,
    /// Commits reachable from head and not from base, oldest first.
    pub ahead: Vec<Oid>,
    /// How many commits are reachable from base and not from head.
    pub behind_by: usize,
}

/// What a path names at a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathContent {
    /// A file or a symlink, with its entry (path relative to the root) and its bytes,
    /// `None` when it is larger than the caller asked to read (its size is in the
    /// entry).
    Blob {
        entry: TreeEntry,
        data: Option<Vec<u8>>,
    },
    /// A directory's direct entries (paths relative to the root).
    Dir(Vec<TreeEntry>),
    /// A submodule: the entry names the commit it pins.
    Submodule(TreeEntry),
}

/// Read access to one repository's objects, for one request: it carries what is left
/// of the request's [`READ_BUDGET_BYTES`], so it is made per request and never shared.
#[derive(Debug)]
pub struct Browser {
    repo: gix::Repository,
    /// Blob bytes this request may still inflate.
    budget: Cell<u64>,
}

fn git_err(e: impl std::fmt::Display) -> BrowseError {
    BrowseError::Git(e.to_string())
}

fn hex(id: &Oid) -> String {
    gix::ObjectId::Sha1(*id).to_hex().to_string()
}

fn to_oid(id: &gix::oid) -> Result<Oid> {
    id.as_bytes()
        .try_into()
        .map_err(|_| BrowseError::Git(format!("object id {id} is not SHA-1")))
}

fn signature(sig: gix::actor::SignatureRef<'_>) -> Signature {
    let sig = sig.trim();
    let time = sig.time().unwrap_or_default();
    Signature {
        name: sig.name.to_str_lossy().into_owned(),
        email: sig.email.to_str_lossy().into_owned(),
        seconds: time.seconds,
        offset: time.offset,
    }
}

fn kind_of(mode: gix::objs::tree::EntryMode) -> EntryKind {
    if mode.is_tree() {
        EntryKind::Dir
    } else if mode.is_commit() {
        EntryKind::Submodule
    } else if mode.is_link() {
        EntryKind::Symlink
    } else {
        EntryKind::File
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Whether git would call these bytes binary (a NUL in the first 8000 bytes).
pub fn is_binary(data: &[u8]) -> bool {
    data.iter().take(BINARY_SNIFF_BYTES).any(|b| *b == 0)
}

impl Browser {
    /// A browser over a repository as it was opened; the request budget applies to
    /// blobs, but gix's own allocations are bounded only if `repo` was opened with
    /// [`GitRepos::open_repo_bounded`] (which [`Browser::open`] does).
    pub fn new(repo: &GitRepo) -> Browser {
        let mut repo = repo.gix().clone();
        repo.object_cache_size_if_unset(OBJECT_CACHE_BYTES);
        Browser {
            repo,
            budget: Cell::new(READ_BUDGET_BYTES),
        }
    }

    /// Opens repository `id_hex` of `repos` for one request, with every memory bound
    /// of [`READ_BUDGET_BYTES`] in force.
    pub fn open(repos: &GitRepos, id_hex: &str) -> std::result::Result<Browser, StoreError> {
        let limit = usize::try_from(READ_BUDGET_BYTES).unwrap_or(usize::MAX);
        let repo = repos.open_repo_bounded(id_hex, limit, DELTA_CACHE_BYTES)?;
        Ok(Browser::new(&repo))
    }

    /// Blob bytes this request may still inflate.
    pub fn budget_left(&self) -> u64 {
        self.budget.get()
    }

    /// Takes `bytes` from the request's budget; `false` (and nothing taken) if fewer
    /// are left.
    fn charge(&self, bytes: u64) -> bool {
        let left = self.budget.get();
        if bytes > left {
            return false;
        }
        self.budget.set(left - bytes);
        true
    }

    /// The object's kind and content, or `None` if it is absent. An object gix refuses
    /// to inflate because it, or a delta base it is made from, is over the allocation
    /// limit is `TooLarge`; the header is read only then, so the common path looks the
    /// object up once.
    fn object(&self, id: &Oid) -> Result<Option<(Kind, Vec<u8>)>> {
        match self.repo.try_find_object(gix::ObjectId::Sha1(*id)) {
            Ok(Some(object)) => {
                let object = object.detach();
                Ok(Some((object.kind, object.data)))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                let size = self.header(id).map_or(0, |(_, size)| size);
                let limited = gix::error::classify(&e).is_resource_exhausted();
                if limited || size > READ_BUDGET_BYTES {
                    Err(BrowseError::TooLarge {
                        id: hex(id),
                        size,
                        max: READ_BUDGET_BYTES,
                    })
                } else {
                    Err(BrowseError::Corrupt {
                        id: hex(id),
                        reason: e.to_string(),
                    })
                }
            }
        }
    }

    /// The object's content if it is of `kind`; `NotFound` otherwise.
    fn object_of(&self, id: &Oid, kind: Kind) -> Result<Vec<u8>> {
        match self.object(id)? {
            Some((k, data)) if k == kind => Ok(data),
            _ => Err(BrowseError::NotFound {
                kind: kind_name(kind),
                id: hex(id),
            }),
        }
    }

    /// The kind and size of an object, `None` if absent.
    pub fn header(&self, id: &Oid) -> Option<(&'static str, u64)> {
        let header = self.repo.find_header(gix::ObjectId::Sha1(*id)).ok()?;
        Some((kind_name(header.kind()), header.size()))
    }

    /// A branch, tag, full ref name or (abbreviated) sha, peeled to a commit.
    pub fn resolve(&self, rev: &str) -> Result<Oid> {
        let unknown = || BrowseError::UnknownRevision(rev.to_string());
        let target = self.ref_target(rev)?.or_else(|| self.hex_object(rev));
        let id = target.ok_or_else(unknown)?;
        self.peel_to_commit(&id)?.ok_or_else(unknown)
    }

    /// The object a branch, tag or full ref name points at.
    fn ref_target(&self, rev: &str) -> Result<Option<Oid>> {
        let full = [
            format!("refs/heads/{rev}"),
            format!("refs/tags/{rev}"),
            rev.to_string(),
        ];
        for name in full.iter().filter(|n| n.starts_with("refs/")) {
            let Ok(Some(found)) = self.repo.try_find_reference(name.as_str()) else {
                continue;
            };
            if let gix::refs::Target::Object(id) = found.inner.target {
                return to_oid(&id).map(Some);
            }
        }
        Ok(None)
    }

    /// A full or abbreviated (4 or more digits, unambiguous) hex object id.
    fn hex_object(&self, rev: &str) -> Option<Oid> {
        let plausible = (4..=40).contains(&rev.len()) && rev.bytes().all(|b| b.is_ascii_hexdigit());
        if !plausible {
            return None;
        }
        let prefix = gix::hash::Prefix::from_hex(rev).ok()?;
        match self.repo.objects.lookup_prefix(prefix, None) {
            Ok(Some(Ok(id))) => to_oid(&id).ok(),
            _ => None,
        }
    }

    /// Follows annotated tags to the commit they name; `None` if it is not a commit.
    pub fn peel_to_commit(&self, id: &Oid) -> Result<Option<Oid>> {
        let mut id = *id;
        // A tag of a tag of …: bounded, so a cycle (impossible in a valid
        // repository) cannot hang a request.
        for _ in 0..64 {
            // The header first: a blob's sha must not cost inflating the blob.
            match self.header(&id) {
                Some(("commit", _)) => return Ok(Some(id)),
                Some(("tag", _)) => {}
                _ => return Ok(None),
            }
            match self.object(&id)? {
                Some((Kind::Tag, data)) => {
                    let tag = gix::objs::TagRef::from_bytes(&data, self.repo.object_hash())
                        .map_err(|e| corrupt(&id, e))?;
                    id = to_oid(&tag.target())?;
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// A commit, decoded.
    pub fn commit(&self, id: &Oid) -> Result<CommitInfo> {
        let data = self.object_of(id, Kind::Commit)?;
        let commit =
            CommitRef::from_bytes(&data, self.repo.object_hash()).map_err(|e| corrupt(id, e))?;
        let message = commit.message.to_str_lossy();
        Ok(CommitInfo {
            id: *id,
            tree: to_oid(&commit.tree())?,
            parents: commit
                .parents()
                .map(|p| to_oid(&p))
                .collect::<Result<_>>()?,
            author: signature(commit.author().map_err(|e| corrupt(id, e))?),
            committer: signature(commit.committer().map_err(|e| corrupt(id, e))?),
            message: message.strip_suffix('\n').unwrap_or(&message).to_string(),
        })
    }

    /// The annotated tag object `id` (not a ref: `git/tags/{sha}` names the object).
    pub fn tag(&self, id: &Oid) -> Result<TagInfo> {
        let data = self.object_of(id, Kind::Tag)?;
        let tag = TagRef::from_bytes(&data, self.repo.object_hash()).map_err(|e| corrupt(id, e))?;
        Ok(TagInfo {
            id: *id,
            name: tag.name.to_str_lossy().into_owned(),
            // One trailing newline removed, as for commits and as GitHub shows it.
            message: {
                let message = tag.message.to_str_lossy();
                message.strip_suffix('\n').unwrap_or(&message).to_owned()
            },
            object: to_oid(&tag.target())?,
            object_kind: kind_name(tag.target_kind),
            tagger: tag.tagger().map_err(|e| corrupt(id, e))?.map(signature),
        })
    }

    /// The direct entries of a tree, in git's order, with paths under `prefix`.
    pub(crate) fn entries(&self, tree: &Oid, prefix: &str) -> Result<Vec<TreeEntry>> {
        let data = self.object_of(tree, Kind::Tree)?;
        let parsed =
            TreeRef::from_bytes(&data, self.repo.object_hash()).map_err(|e| corrupt(tree, e))?;
        parsed
            .entries
            .iter()
            .map(|e| {
                let kind = kind_of(e.mode);
                let id = to_oid(e.oid)?;
                let size = matches!(kind, EntryKind::File | EntryKind::Symlink)
                    .then(|| self.header(&id).map(|(_, size)| size))
                    .flatten();
                Ok(TreeEntry {
                    path: join(prefix, &e.filename.to_str_lossy()),
                    mode: e.mode.value(),
                    kind,
                    id,
                    size,
                })
            })
            .collect()
    }

    /// A tree's entries, or all entries below it when `recursive` (directories before
    /// their contents, as git's `ls-tree -r -t`), at most [`MAX_TREE_ENTRIES`]. `id`
    /// may name a tree, or a commit or tag whose tree is meant.
    pub fn tree(&self, id: &Oid, recursive: bool) -> Result<TreeListing> {
        let tree = self.peel_to_tree(id)?;
        let mut entries = Vec::new();
        let mut truncated = false;
        self.list_into(&tree, "", recursive, &mut entries, &mut truncated)?;
        Ok(TreeListing {
            id: tree,
            entries,
            truncated,
        })
    }

    fn list_into(
        &self,
        tree: &Oid,
        prefix: &str,
        recursive: bool,
        out: &mut Vec<TreeEntry>,
        truncated: &mut bool,
    ) -> Result<()> {
        for entry in self.entries(tree, prefix)? {
            if out.len() >= MAX_TREE_ENTRIES {
                *truncated = true;
                return Ok(());
            }
            let descend =
                (recursive && entry.kind == EntryKind::Dir).then(|| (entry.id, entry.path.clone()));
            out.push(entry);
            if let Some((id, path)) = descend {
                self.list_into(&id, &path, recursive, out, truncated)?;
            }
        }
        Ok(())
    }

    /// The tree a tree, commit or tag id stands for.
    fn peel_to_tree(&self, id: &Oid) -> Result<Oid> {
        match self.header(id) {
            Some(("tree", _)) => Ok(*id),
            Some(("commit" | "tag", _)) => match self.peel_to_commit(id)? {
                Some(commit) => Ok(self.commit(&commit)?.tree),
                None => Err(not_found("tree", id)),
            },
            _ => Err(not_found("tree", id)),
        }
    }

    /// A blob's bytes, refused (from its header, before inflating anything) above
    /// `max` bytes or above what is left of the request's budget, which it spends.
    pub fn blob(&self, id: &Oid, max: u64) -> Result<Vec<u8>> {
        match self.header(id) {
            Some(("blob", size)) => {
                let max = max.min(self.budget.get());
                if size > max || !self.charge(size) {
                    return Err(BrowseError::TooLarge {
                        id: hex(id),
                        size,
                        max,
                    });
                }
                self.object_of(id, Kind::Blob)
            }
            _ => Err(not_found("blob", id)),
        }
    }

    /// A blob's bytes without spending the request's budget, for callers that write
    /// each blob out and drop it before the next (archives): no single read may
    /// allocate more than [`READ_BUDGET_BYTES`] (gix's limit when opened by
    /// [`Browser::open`]; refused from the header before inflating).
    pub(crate) fn blob_once(&self, id: &Oid) -> Result<Vec<u8>> {
        match self.header(id) {
            Some(("blob", size)) if size > READ_BUDGET_BYTES => Err(BrowseError::TooLarge {
                id: hex(id),
                size,
                max: READ_BUDGET_BYTES,
            }),
            Some(("blob", _)) => self.object_of(id, Kind::Blob),
            _ => Err(not_found("blob", id)),
        }
    }

    /// The repository's `objects` directory, for readers that stream an object from
    /// its file instead of inflating it into memory.
    pub(crate) fn objects_dir(&self) -> std::path::PathBuf {
        self.repo.objects.store_ref().path().to_path_buf()
    }

    /// The entry at `path` (`/`-separated, relative to `tree`), `None` if absent.
    pub(crate) fn entry_at(&self, tree: &Oid, path: &str) -> Result<Option<TreeEntry>> {
        let mut current = *tree;
        let mut found = None;
        let mut prefix = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if found
                .as_ref()
                .is_some_and(|e: &TreeEntry| e.kind != EntryKind::Dir)
            {
                return Ok(None);
            }
            let entry = self
                .entries(&current, &prefix)?
                .into_iter()
                .find(|e| e.path.rsplit('/').next() == Some(part));
            let Some(entry) = entry else {
                return Ok(None);
            };
            current = entry.id;
            prefix = entry.path.clone();
            found = Some(entry);
        }
        Ok(found)
    }

    /// What `path` names in `commit`'s tree; the root directory for an empty path. A
    /// file's bytes are read only if it is at most `max` bytes (and within the request's
    /// budget); otherwise it comes back with its entry alone.
    pub fn at_path(&self, commit: &Oid, path: &str, max: u64) -> Result<Option<PathContent>> {
        let root = self.commit(commit)?.tree;
        let path = path.trim_matches('/');
        if path.is_empty() {
            return self.entries(&root, "").map(|e| Some(PathContent::Dir(e)));
        }
        let Some(entry) = self.entry_at(&root, path)? else {
            return Ok(None);
        };
        Ok(Some(match entry.kind {
            EntryKind::Dir => PathContent::Dir(self.entries(&entry.id, &entry.path)?),
            EntryKind::Submodule => PathContent::Submodule(entry),
            EntryKind::File | EntryKind::Symlink => {
                let data = match self.blob(&entry.id, max) {
                    Ok(data) => Some(data),
                    Err(BrowseError::TooLarge { .. }) => None,
                    Err(e) => return Err(e),
                };
                PathContent::Blob { entry, data }
            }
        }))
    }

    /// Commits reachable from `start`, newest first by committer time (git log's
    /// default order), filtered as `query` says. With a path, history is simplified as
    /// git's default does: a commit is listed when its tree entry at the path differs
    /// from every parent's, and a commit that matches one parent is followed only
    /// through that parent.
    pub fn log(&self, start: &Oid, query: &LogQuery) -> Result<Vec<Oid>> {
        let mut queue = BinaryHeap::new();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let first = self.commit(start)?;
        seen.insert(first.id);
        queue.push(Queued(first));
        while let Some(Queued(commit)) = queue.pop() {
            // Newest first: once the newest queued commit is older than `since`, so is
            // everything after it (git stops its walk the same way).
            if query.since.is_some_and(|s| commit.committer.seconds < s) {
                break;
            }
            let (show, follow) = self.simplify(&commit, query.path.as_deref())?;
            if show && query.matches(&commit) {
                out.push(commit.id);
            }
            for parent in follow {
                if seen.insert(parent) {
                    queue.push(Queued(self.commit(&parent)?));
                }
            }
        }
        Ok(out)
    }

    /// Whether `commit` is shown under a path filter, and which parents to follow.
    fn simplify(&self, commit: &CommitInfo, path: Option<&str>) -> Result<(bool, Vec<Oid>)> {
        let Some(path) = path.filter(|p| !p.trim_matches('/').is_empty()) else {
            return Ok((true, commit.parents.clone()));
        };
        let mine = self.entry_at(&commit.tree, path)?.map(|e| (e.mode, e.id));
        for parent in &commit.parents {
            let tree = self.commit(parent)?.tree;
            let theirs = self.entry_at(&tree, path)?.map(|e| (e.mode, e.id));
            if theirs == mine {
                return Ok((false, vec![*parent]));
            }
        }
        Ok((
            mine.is_some() || !commit.parents.is_empty(),
            commit.parents.clone(),
        ))
    }

    /// The files changed from `old` (a tree; `None` for a root commit) to `new`, in
    /// path order, with exact renames (a removed and an added file with the same
    /// content) paired as git's rename detection would at 100% similarity, and with
    /// line counts and patches within the limits (see [`FileChange::patch`]).
    pub fn diff(&self, old: Option<&Oid>, new: &Oid) -> Result<Vec<FileChange>> {
        let mut changes = Vec::new();
        self.diff_into(old, Some(new), "", &mut changes)?;
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        pair_renames(&mut changes);
        let mut patch_lines_left = MAX_PATCH_LINES_TOTAL;
        for change in changes.iter_mut().take(MAX_COUNTED_FILES) {
            self.measure(change, &mut patch_lines_left)?;
        }
        Ok(changes)
    }

    /// The changes a commit made against its first parent.
    pub fn commit_changes(&self, commit: &CommitInfo) -> Result<Vec<FileChange>> {
        let parent_tree = match commit.parents.first() {
            Some(p) => Some(self.commit(p)?.tree),
            None => None,
        };
        self.diff(parent_tree.as_ref(), &commit.tree)
    }

    fn diff_into(
        &self,
        old: Option<&Oid>,
        new: Option<&Oid>,
        prefix: &str,
        out: &mut Vec<FileChange>,
    ) -> Result<()> {
        if old == new {
            return Ok(());
        }
        let list = |t: Option<&Oid>| t.map_or(Ok(Vec::new()), |t| self.entries(t, prefix));
        let (before, after) = (list(old)?, list(new)?);
        for path in merged_names(&before, &after) {
            let a = before.iter().find(|e| e.path == path);
            let b = after.iter().find(|e| e.path == path);
            self.diff_entry(a, b, &path, out)?;
        }
        Ok(())
    }

    fn diff_entry(
        &self,
        a: Option<&TreeEntry>,
        b: Option<&TreeEntry>,
        path: &str,
        out: &mut Vec<FileChange>,
    ) -> Result<()> {
        let dir = |e: Option<&TreeEntry>| e.filter(|e| e.kind == EntryKind::Dir).map(|e| e.id);
        let (old_dir, new_dir) = (dir(a), dir(b));
        if old_dir.is_some() || new_dir.is_some() {
            self.diff_into(old_dir.as_ref(), new_dir.as_ref(), path, out)?;
        }
        let (old_file, new_file) = (non_dir(a), non_dir(b));
        if old_file.map(|e| (e.id, e.mode)) == new_file.map(|e| (e.id, e.mode)) {
            return Ok(());
        }
        let status = match (old_file, new_file) {
            (None, _) => ChangeStatus::Added,
            (_, None) => ChangeStatus::Removed,
            _ => ChangeStatus::Modified,
        };
        out.push(FileChange {
            path: path.to_string(),
            previous_path: None,
            status,
            old_id: old_file.map(|e| e.id),
            new_id: new_file.map(|e| e.id),
            additions: 0,
            deletions: 0,
            patch: None,
        });
        Ok(())
    }

    /// Fills in a change's added and removed line counts and its patch, within the
    /// limits: sizes come from the object headers, so a blob over
    /// [`MAX_DIFF_BLOB_BYTES`] or past the request's budget is never inflated (its
    /// counts stay zero, as they cannot be known cheaply); binary files have neither
    /// counts nor patch, as with git's numstat.
    fn measure(&self, change: &mut FileChange, patch_lines_left: &mut usize) -> Result<()> {
        let (Some(old_size), Some(new_size)) = (
            self.side_size(change.old_id.as_ref()),
            self.side_size(change.new_id.as_ref()),
        ) else {
            // A submodule's "blob" is a commit elsewhere: nothing to count.
            return Ok(());
        };
        if old_size.max(new_size) > MAX_DIFF_BLOB_BYTES
            || !self.charge(old_size.saturating_add(new_size))
        {
            return Ok(());
        }
        let old = self.side(change.old_id.as_ref())?;
        let new = self.side(change.new_id.as_ref())?;
        if is_binary(&old) || is_binary(&new) {
            return Ok(());
        }
        let diff = LineDiff::new(&old, &new);
        change.additions = diff.additions();
        change.deletions = diff.deletions();
        let changed = change.additions + change.deletions;
        if changed > 0 && changed <= MAX_PATCH_LINES_PER_FILE && changed <= *patch_lines_left {
            *patch_lines_left -= changed;
            change.patch = Some(diff.patch(PATCH_CONTEXT));
        }
        Ok(())
    }

    /// The size of one side of a change: 0 for none, `None` if it is not a blob here.
    fn side_size(&self, id: Option<&Oid>) -> Option<u64> {
        match id {
            None => Some(0),
            Some(id) => match self.header(id) {
                Some(("blob", size)) => Some(size),
                _ => None,
            },
        }
    }

    /// One side's bytes (already paid for by [`Browser::measure`]): empty for none.
    fn side(&self, id: Option<&Oid>) -> Result<Vec<u8>> {
        match id {
            None => Ok(Vec::new()),
            Some(id) => self.object_of(id, Kind::Blob),
        }
    }

    /// Where `head` stands against `base`: the merge base, the commits only head has
    /// (oldest first) and how many only base has.
    pub fn compare(&self, base: &Oid, head: &Oid) -> Result<Comparison> {
        let merge_base = if base == head {
            Some(*base)
        } else {
            match self
                .repo
                .merge_base(gix::ObjectId::Sha1(*base), gix::ObjectId::Sha1(*head))
            {
                Ok(found) => found.map(|id| to_oid(&id.detach())).transpose()?,
                Err(e) => return Err(git_err(e)),
            }
        };
        let mut ahead = self.only_in(head, base)?;
        ahead.reverse();
        let behind_by = self.only_in(base, head)?.len();
        Ok(Comparison {
            merge_base,
            ahead,
            behind_by,
        })
    }

    /// Commits reachable from `tip` and not from `hidden`, newest first.
    fn only_in(&self, tip: &Oid, hidden: &Oid) -> Result<Vec<Oid>> {
        let walk = self
            .repo
            .rev_walk([gix::ObjectId::Sha1(*tip)])
            .with_hidden([gix::ObjectId::Sha1(*hidden)])
            .sorting(gix::revision::walk::Sorting::ByCommitTime(
                Default::default(),
            ))
            .all()
            .map_err(git_err)?;
        walk.map(|info| info.map_err(git_err).and_then(|i| to_oid(&i.id)))
            .collect()
    }
}

impl LogQuery {
    /// The date and author filters (the path filter is the walk's).
    fn matches(&self, commit: &CommitInfo) -> bool {
        let time = commit.committer.seconds;
        let author = |needle: &str| {
            let needle = needle.to_lowercase();
            commit.author.name.to_lowercase() == needle
                || commit.author.email.to_lowercase().contains(&needle)
        };
        self.since.is_none_or(|s| time >= s)
            && self.until.is_none_or(|u| time <= u)
            && self.author.as_deref().is_none_or(author)
    }
}

/// A commit in the walk's queue, ordered by committer time (then id, for a stable
/// order among commits made in the same second).
struct Queued(CommitInfo);

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0.committer.seconds, self.0.id).cmp(&(other.0.committer.seconds, other.0.id))
    }
}

fn non_dir(entry: Option<&TreeEntry>) -> Option<&TreeEntry> {
    entry.filter(|e| e.kind != EntryKind::Dir)
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Commit => "commit",
        Kind::Tree => "tree",
        Kind::Blob => "blob",
        Kind::Tag => "tag",
    }
}

fn not_found(kind: &'static str, id: &Oid) -> BrowseError {
    BrowseError::NotFound { kind, id: hex(id) }
}

fn corrupt(id: &Oid, e: impl std::fmt::Display) -> BrowseError {
    BrowseError::Corrupt {
        id: hex(id),
        reason: e.to_string(),
    }
}

/// Every path in either listing, once, sorted.
fn merged_names(a: &[TreeEntry], b: &[TreeEntry]) -> Vec<String> {
    let mut names: Vec<String> = a.iter().chain(b).map(|e| e.path.clone()).collect();
    names.sort();
    names.dedup();
    names
}

/// Turns a removed and an added file with the same content into one rename.
fn pair_renames(changes: &mut Vec<FileChange>) {
    let mut i = 0;
    while i < changes.len() {
        let added = changes
            .get(i)
            .filter(|c| c.status == ChangeStatus::Added)
            .and_then(|c| c.new_id);
        let source = added.and_then(|id| {
            changes
                .iter()
                .position(|c| c.status == ChangeStatus::Removed && c.old_id == Some(id))
        });
        if let Some(source) = source {
            let removed = changes.remove(source);
            let at = if source < i { i - 1 } else { i };
            if let Some(change) = changes.get_mut(at) {
                change.status = ChangeStatus::Renamed;
                change.old_id = removed.old_id;
                change.previous_path = Some(removed.path);
            }
            i = at + 1;
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests;
