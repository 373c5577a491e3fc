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
use gix::diff::blob::{Algorithm, Diff, Hunk, InternedInput, Token};
use gix::object::Kind;
use gix::objs::{CommitRef, TreeRef};

use crate::error::StoreError;
use crate::git::{GitRepo, GitRepos, Oid};

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

    /// The direct entries of a tree, in git's order, with paths under `prefix`.
    fn entries(&self, tree: &Oid, prefix: &str) -> Result<Vec<TreeEntry>> {
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

    /// The entry at `path` (`/`-separated, relative to `tree`), `None` if absent.
    fn entry_at(&self, tree: &Oid, path: &str) -> Result<Option<TreeEntry>> {
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

/// Lines added and removed from `old` to `new`, as git's numstat counts them (git's
/// Myers diff, through gix's copy of imara-diff).
pub fn line_changes(old: &[u8], new: &[u8]) -> (usize, usize) {
    let diff = LineDiff::new(old, new);
    (diff.additions(), diff.deletions())
}

/// The unified diff of two texts (without its file header), `context` lines around
/// each change, as `git diff` prints its hunks: GitHub's `patch`.
pub fn unified_patch(old: &[u8], new: &[u8], context: usize) -> String {
    LineDiff::new(old, new).patch(context)
}

/// A line diff of two texts. Its memory is a few words per line of either side, which
/// is why callers bound the sides' sizes first.
struct LineDiff<'a> {
    input: InternedInput<&'a [u8]>,
    diff: Diff,
}

impl<'a> LineDiff<'a> {
    fn new(old: &'a [u8], new: &'a [u8]) -> LineDiff<'a> {
        let input = InternedInput::new(old, new);
        let mut diff = Diff::compute(Algorithm::Myers, &input);
        // git's indent heuristic (on by default since git 2.14) slides each change
        // to where a person would put it; counts are unaffected.
        diff.postprocess_lines(&input);
        LineDiff { input, diff }
    }

    fn additions(&self) -> usize {
        self.diff.count_additions() as usize
    }

    fn deletions(&self) -> usize {
        self.diff.count_removals() as usize
    }

    fn line(&self, token: Token) -> &[u8] {
        self.input.interner[token]
    }

    fn before(&self, at: usize) -> &[u8] {
        self.input.before.get(at).map_or(&[][..], |t| self.line(*t))
    }

    /// git's hunks: changes closer than two contexts apart share one hunk; each hunk
    /// header names the nearest preceding line that starts with a letter, `_` or `$`
    /// (git's default function-name rule), as `git diff` and GitHub show it.
    fn patch(&self, context: usize) -> String {
        let hunks: Vec<Hunk> = self.diff.hunks().collect();
        let (old_len, new_len) = (self.input.before.len(), self.input.after.len());
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(first) = hunks.get(i) {
            // The hunks that join this one.
            let mut last = i;
            while let Some(next) = hunks.get(last + 1) {
                let end = hunks.get(last).map_or(0, |h| h.before.end as usize);
                if (next.before.start as usize).saturating_sub(end) > 2 * context {
                    break;
                }
                last += 1;
            }
            let lead = context.min(first.before.start as usize);
            let old_start = (first.before.start as usize).saturating_sub(lead);
            let new_start = (first.after.start as usize).saturating_sub(lead);
            let tail_end = hunks.get(last).map_or((0, 0), |h| {
                let old_end = (h.before.end as usize + context).min(old_len);
                (
                    old_end,
                    h.after.end as usize + old_end.saturating_sub(h.before.end as usize),
                )
            });
            let (old_end, new_end) = (tail_end.0, tail_end.1.min(new_len));
            out.extend_from_slice(
                format!(
                    "@@ -{} +{} @@",
                    hunk_range(old_start, old_end.saturating_sub(old_start)),
                    hunk_range(new_start, new_end.saturating_sub(new_start))
                )
                .as_bytes(),
            );
            if let Some(name) = self.function_name(old_start) {
                out.push(b' ');
                out.extend_from_slice(name);
            }
            out.push(b'\n');
            let mut at = old_start;
            for hunk in hunks.get(i..=last).unwrap_or(&[]) {
                while at < hunk.before.start as usize {
                    push_line(&mut out, b' ', self.before(at));
                    at += 1;
                }
                for token in self.range(&self.input.before, &hunk.before) {
                    push_line(&mut out, b'-', self.line(*token));
                }
                for token in self.range(&self.input.after, &hunk.after) {
                    push_line(&mut out, b'+', self.line(*token));
                }
                at = hunk.before.end as usize;
            }
            while at < old_end {
                push_line(&mut out, b' ', self.before(at));
                at += 1;
            }
            i = last + 1;
        }
        // A patch ends without a newline in GitHub's JSON.
        if out.last() == Some(&b'\n') {
            out.pop();
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn range<'t>(&self, tokens: &'t [Token], range: &std::ops::Range<u32>) -> &'t [Token] {
        tokens
            .get(range.start as usize..range.end as usize)
            .unwrap_or(&[])
    }

    /// git's default `funcname`: the closest line before `start` (0-based, old side)
    /// that begins with a letter, `_` or `$`, trailing whitespace removed, at most 80
    /// bytes.
    fn function_name(&self, start: usize) -> Option<&[u8]> {
        (0..start).rev().find_map(|at| {
            let line = self.before(at);
            let first = *line.first()?;
            if !(first.is_ascii_alphabetic() || first == b'_' || first == b'$') {
                return None;
            }
            let line = line.get(..line.len().min(80)).unwrap_or(line);
            Some(line.trim_ascii_end())
        })
    }
}

/// A hunk header's range: `start,len`, git's way (`start` alone for one line; the line
/// before, and `,0`, for none).
fn hunk_range(start: usize, len: usize) -> String {
    match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        n => format!("{},{n}", start + 1),
    }
}

/// One patch line; a last line without a newline gets git's marker.
fn push_line(out: &mut Vec<u8>, prefix: u8, line: &[u8]) {
    out.push(prefix);
    out.extend_from_slice(line);
    if !line.ends_with(b"\n") {
        out.extend_from_slice(b"\n\\ No newline at end of file\n");
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::git::GitRepos;

    /// A work tree made with the real `git` under `repos/t.git`, so [`GitRepos`]
    /// opens it, with commit dates set by the test.
    struct Fixture {
        _tmp: tempfile::TempDir,
        work: PathBuf,
        repos: GitRepos,
    }

    const DAY: i64 = 86_400;
    const T0: i64 = 1_600_000_000;

    impl Fixture {
        fn new() -> Fixture {
            let tmp = tempfile::tempdir().unwrap();
            let repos = GitRepos::open(tmp.path()).unwrap();
            let work = repos.path("t");
            std::fs::create_dir_all(&work).unwrap();
            let fx = Fixture {
                _tmp: tmp,
                work,
                repos,
            };
            fx.git(&["init", "--quiet", "-b", "main"]);
            fx
        }

        fn git_at(&self, date: i64, author: &str, args: &[&str]) -> String {
            let out = Command::new("git")
                .current_dir(&self.work)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_AUTHOR_NAME", author)
                .env("GIT_AUTHOR_EMAIL", format!("{author}@example.com"))
                .env("GIT_COMMITTER_NAME", "Committer")
                .env("GIT_COMMITTER_EMAIL", "c@example.com")
                .env("GIT_AUTHOR_DATE", format!("@{date} +0200"))
                .env("GIT_COMMITTER_DATE", format!("@{date} +0200"))
                .args(["-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        }

        fn git(&self, args: &[&str]) -> String {
            self.git_at(T0, "Alice", args)
        }

        /// Writes (`Some`) or deletes (`None`) files, commits everything at `date`.
        fn commit(&self, files: &[(&str, Option<&str>)], date: i64, author: &str) -> Oid {
            for (path, content) in files {
                let path = self.work.join(path);
                match content {
                    Some(text) => {
                        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                        std::fs::write(&path, text).unwrap();
                    }
                    None => std::fs::remove_file(&path).unwrap(),
                }
            }
            self.git(&["add", "-A"]);
            self.git_at(
                date,
                author,
                &["commit", "--quiet", "--allow-empty", "-m", "m"],
            );
            self.oid("HEAD")
        }

        fn oid(&self, rev: &str) -> Oid {
            let hex = self.git(&["rev-parse", rev]);
            gix::ObjectId::from_hex(hex.as_bytes())
                .unwrap()
                .as_bytes()
                .try_into()
                .unwrap()
        }

        fn browser(&self) -> Browser {
            Browser::open(&self.repos, "t").unwrap()
        }

        /// `git <args>` output lines as object ids.
        fn oids(&self, args: &[&str]) -> Vec<Oid> {
            self.git(args).lines().map(|l| self.oid(l.trim())).collect()
        }
    }

    fn path(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    /// c1 adds a.txt and b/c.txt, c2 edits a.txt, c3 edits b/c.txt, c4 removes a.txt,
    /// c5 adds d.txt; one day apart; c3 by Bob.
    fn linear() -> (Fixture, Vec<Oid>) {
        let fx = Fixture::new();
        let ids = vec![
            fx.commit(
                &[("a.txt", Some("1\n2\n3\n")), ("b/c.txt", Some("x\n"))],
                T0,
                "Alice",
            ),
            fx.commit(&[("a.txt", Some("1\ntwo\n3\n4\n"))], T0 + DAY, "Alice"),
            fx.commit(&[("b/c.txt", Some("y\n"))], T0 + 2 * DAY, "Bob"),
            fx.commit(&[("a.txt", None)], T0 + 3 * DAY, "Alice"),
            fx.commit(&[("d.txt", Some("d\n"))], T0 + 4 * DAY, "Alice"),
        ];
        (fx, ids)
    }

    #[test]
    fn log_with_a_path_lists_what_git_log_lists() {
        let (fx, ids) = linear();
        let b = fx.browser();
        let head = ids[4];
        for p in ["a.txt", "b", "b/c.txt", "d.txt", "nothing"] {
            let query = LogQuery {
                path: Some(p.to_string()),
                ..LogQuery::default()
            };
            let expected = fx.oids(&["log", "--format=%H", "--", p]);
            assert_eq!(b.log(&head, &query).unwrap(), expected, "path {p}");
        }
        assert_eq!(
            b.log(&head, &LogQuery::default()).unwrap(),
            fx.oids(&["log", "--format=%H"])
        );
        let a_history = LogQuery {
            path: Some("a.txt".into()),
            ..LogQuery::default()
        };
        assert_eq!(
            b.log(&head, &a_history).unwrap(),
            vec![ids[3], ids[1], ids[0]]
        );
    }

    #[test]
    fn log_filters_by_date_and_author() {
        let (fx, ids) = linear();
        let b = fx.browser();
        let since = LogQuery {
            since: Some(T0 + 2 * DAY),
            ..LogQuery::default()
        };
        assert_eq!(
            b.log(&ids[4], &since).unwrap(),
            vec![ids[4], ids[3], ids[2]]
        );
        let until = LogQuery {
            until: Some(T0 + DAY),
            ..LogQuery::default()
        };
        assert_eq!(b.log(&ids[4], &until).unwrap(), vec![ids[1], ids[0]]);
        let window = LogQuery {
            since: Some(T0 + DAY),
            until: Some(T0 + 3 * DAY - 1),
            ..LogQuery::default()
        };
        assert_eq!(b.log(&ids[4], &window).unwrap(), vec![ids[2], ids[1]]);
        let bob = LogQuery {
            author: Some("BOB@example".into()),
            ..LogQuery::default()
        };
        assert_eq!(b.log(&ids[4], &bob).unwrap(), vec![ids[2]]);
        let by_name = LogQuery {
            author: Some("bob".into()),
            ..LogQuery::default()
        };
        assert_eq!(b.log(&ids[4], &by_name).unwrap(), vec![ids[2]]);
    }

    #[test]
    fn commit_is_decoded_as_git_shows_it() {
        let (fx, ids) = linear();
        let c = fx.browser().commit(&ids[2]).unwrap();
        assert_eq!(c.parents, vec![ids[1]]);
        assert_eq!(c.tree, fx.oid(&format!("{}^{{tree}}", hex(&ids[2]))));
        assert_eq!(c.author.name, "Bob");
        assert_eq!(c.author.email, "Bob@example.com");
        assert_eq!(c.author.seconds, T0 + 2 * DAY);
        assert_eq!(c.author.offset, 7200);
        assert_eq!(c.committer.name, "Committer");
        assert_eq!(c.message, "m");
        assert!(matches!(
            fx.browser().commit(&c.tree),
            Err(BrowseError::NotFound { kind: "commit", .. })
        ));
    }

    #[test]
    fn resolve_names_branches_tags_and_shas() {
        let (fx, ids) = linear();
        fx.git(&["tag", "-a", "-m", "v1", "v1", &hex(&ids[1])]);
        fx.git(&["tag", "light", &hex(&ids[2])]);
        fx.git(&["branch", "topic", &hex(&ids[3])]);
        let b = fx.browser();
        assert_eq!(b.resolve("main").unwrap(), ids[4]);
        assert_eq!(b.resolve("topic").unwrap(), ids[3]);
        assert_eq!(b.resolve("refs/heads/topic").unwrap(), ids[3]);
        assert_eq!(b.resolve("v1").unwrap(), ids[1]);
        assert_eq!(b.resolve("light").unwrap(), ids[2]);
        assert_eq!(b.resolve(&hex(&ids[0])).unwrap(), ids[0]);
        assert_eq!(b.resolve(&hex(&ids[0])[..10]).unwrap(), ids[0]);
        for bad in [
            "nope",
            "0000000000000000000000000000000000000000",
            "zz",
            "",
            "../x",
        ] {
            assert!(
                matches!(b.resolve(bad), Err(BrowseError::UnknownRevision(_))),
                "{bad}"
            );
        }
        // A tree's sha is an object but not a commit.
        let tree = hex(&b.commit(&ids[0]).unwrap().tree);
        assert!(b.resolve(&tree).is_err());
    }

    #[test]
    fn trees_list_as_git_ls_tree_does() {
        let fx = Fixture::new();
        fx.commit(
            &[
                ("z.txt", Some("z\n")),
                ("a/b/c.txt", Some("abc\n")),
                ("a/b.txt", Some("hello\n")),
                ("a-b", Some("dash\n")),
            ],
            T0,
            "Alice",
        );
        let head = fx.oid("HEAD");
        let b = fx.browser();
        let names = |l: &TreeListing| l.entries.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
        let flat = b.tree(&head, false).unwrap();
        let git_flat: Vec<String> = fx
            .git(&["ls-tree", "--name-only", "HEAD"])
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(names(&flat), git_flat);
        assert_eq!(flat.id, fx.oid("HEAD^{tree}"));
        let deep = b.tree(&flat.id, true).unwrap();
        let git_deep: Vec<String> = fx
            .git(&["ls-tree", "-r", "-t", "--name-only", "HEAD"])
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(names(&deep), git_deep);
        assert!(!deep.truncated);
        for e in &deep.entries {
            let spec = format!("HEAD:{}", e.path);
            assert_eq!(e.id, fx.oid(&spec), "{}", e.path);
            match e.kind {
                EntryKind::File => {
                    let size: u64 = fx.git(&["cat-file", "-s", &spec]).parse().unwrap();
                    assert_eq!(e.size, Some(size));
                    assert_eq!(e.mode, 0o100644);
                }
                _ => assert_eq!((e.kind, e.size, e.mode), (EntryKind::Dir, None, 0o40000)),
            }
        }
        let blob = deep.entries.iter().find(|e| e.path == "a/b.txt").unwrap();
        assert_eq!(b.blob(&blob.id, MAX_BLOB_BYTES).unwrap(), b"hello\n");
        assert!(matches!(
            b.blob(&blob.id, 3),
            Err(BrowseError::TooLarge { size: 6, .. })
        ));
        assert!(b.blob(&flat.id, MAX_BLOB_BYTES).is_err());
        assert!(b.tree(&blob.id, false).is_err());
    }

    #[test]
    fn changes_match_git_diff_numstat_and_name_status() {
        let fx = Fixture::new();
        let lines: String = (0..50).map(|i| format!("line {i}\n")).collect();
        let base = fx.commit(
            &[
                ("keep.txt", Some(&lines)),
                ("gone.txt", Some("bye\n")),
                ("moved.txt", Some("I move\nintact\n")),
                ("bin.dat", Some("a\0b")),
            ],
            T0,
            "Alice",
        );
        let edited = lines.replace("line 10\n", "ten\n").replace("line 30\n", "") + "end\n";
        let head = fx.commit(
            &[
                ("keep.txt", Some(&edited)),
                ("gone.txt", None),
                ("moved.txt", None),
                ("dir/moved.txt", Some("I move\nintact\n")),
                ("new.txt", Some("n1\nn2\n")),
                ("bin.dat", Some("a\0c")),
            ],
            T0 + DAY,
            "Alice",
        );
        let b = fx.browser();
        let commit = b.commit(&head).unwrap();
        assert_eq!(commit.parents, vec![base]);
        let changes = b.commit_changes(&commit).unwrap();
        let status = |c: &FileChange| match c.status {
            ChangeStatus::Added => "A",
            ChangeStatus::Modified => "M",
            ChangeStatus::Removed => "D",
            ChangeStatus::Renamed => "R100",
        };
        let mut ours: Vec<String> = changes
            .iter()
            .map(|c| match &c.previous_path {
                Some(old) => format!("{}\t{old}\t{}", status(c), c.path),
                None => format!("{}\t{}", status(c), c.path),
            })
            .collect();
        ours.sort();
        let mut theirs: Vec<String> = fx
            .git(&["diff", "--name-status", "-M100%", "HEAD~", "HEAD"])
            .lines()
            .map(String::from)
            .collect();
        theirs.sort();
        assert_eq!(ours, theirs);
        for line in fx
            .git(&["diff", "--numstat", "-M100%", "HEAD~", "HEAD"])
            .lines()
        {
            let mut parts = line.split('\t');
            let (adds, dels, name) = (parts.next().unwrap(), parts.next().unwrap(), line);
            let change = changes
                .iter()
                .find(|c| name.ends_with(&c.path) || name.contains(&format!("=> {}", c.path)))
                .unwrap_or_else(|| panic!("{line}"));
            let expect = |n: &str| if n == "-" { 0 } else { n.parse().unwrap() };
            assert_eq!(
                (change.additions, change.deletions),
                (expect(adds), expect(dels)),
                "{line}"
            );
        }
        let root = b.commit_changes(&b.commit(&base).unwrap()).unwrap();
        assert!(root.iter().all(|c| c.status == ChangeStatus::Added));
        assert_eq!(root.len(), 4);
    }

    #[test]
    fn compare_counts_ahead_and_behind_like_git() {
        let (fx, ids) = linear();
        fx.git(&["checkout", "--quiet", "-b", "topic", &hex(&ids[2])]);
        let t1 = fx.commit(&[("t.txt", Some("t\n"))], T0 + 10 * DAY, "Alice");
        let t2 = fx.commit(&[("t.txt", Some("tt\n"))], T0 + 11 * DAY, "Alice");
        let b = fx.browser();
        let diverged = b.compare(&ids[4], &t2).unwrap();
        assert_eq!(diverged.merge_base, Some(ids[2]));
        assert_eq!(diverged.ahead, vec![t1, t2]);
        assert_eq!(diverged.behind_by, 2);
        let counts = fx.git(&["rev-list", "--left-right", "--count", "main...topic"]);
        assert_eq!(counts, "2\t2");

        let behind = b.compare(&ids[4], &ids[1]).unwrap();
        assert_eq!((behind.ahead.len(), behind.behind_by), (0, 3));
        let ahead = b.compare(&ids[1], &ids[4]).unwrap();
        assert_eq!(ahead.ahead, vec![ids[2], ids[3], ids[4]]);
        assert_eq!((ahead.merge_base, ahead.behind_by), (Some(ids[1]), 0));
        let same = b.compare(&ids[3], &ids[3]).unwrap();
        assert_eq!((same.ahead.len(), same.behind_by), (0, 0));

        // A merge back into main: git log with a path keeps git's simplification.
        fx.git(&["checkout", "--quiet", "main"]);
        fx.git_at(
            T0 + 12 * DAY,
            "Alice",
            &["merge", "--quiet", "--no-edit", "topic"],
        );
        let head = fx.oid("HEAD");
        for p in ["t.txt", "a.txt", "b/c.txt", "d.txt"] {
            let query = LogQuery {
                path: Some(p.to_string()),
                ..LogQuery::default()
            };
            assert_eq!(
                b.log(&head, &query).unwrap(),
                fx.oids(&["log", "--format=%H", "--", p]),
                "path {p} at {}",
                path(&fx.work)
            );
        }
        assert_eq!(
            b.log(&head, &LogQuery::default()).unwrap(),
            fx.oids(&["log", "--format=%H"])
        );
    }

    #[test]
    fn paths_resolve_to_files_directories_or_nothing() {
        let (fx, ids) = linear();
        let b = fx.browser();
        match b.at_path(&ids[4], "b/c.txt", MAX_BLOB_BYTES).unwrap() {
            Some(PathContent::Blob { entry, data }) => {
                assert_eq!(
                    (entry.path.as_str(), data.as_deref()),
                    ("b/c.txt", Some(&b"y\n"[..]))
                );
            }
            other => panic!("{other:?}"),
        }
        match b.at_path(&ids[4], "/b/", MAX_BLOB_BYTES).unwrap() {
            Some(PathContent::Dir(entries)) => assert_eq!(entries[0].path, "b/c.txt"),
            other => panic!("{other:?}"),
        }
        match b.at_path(&ids[4], "", MAX_BLOB_BYTES).unwrap() {
            Some(PathContent::Dir(entries)) => {
                let names: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
                assert_eq!(names, ["b", "d.txt"]);
            }
            other => panic!("{other:?}"),
        }
        for missing in ["a.txt", "b/c.txt/x", "b/nope", "zz/y"] {
            assert_eq!(
                b.at_path(&ids[4], missing, MAX_BLOB_BYTES).unwrap(),
                None,
                "{missing}"
            );
        }
    }

    #[test]
    fn line_changes_count_a_minimal_diff() {
        assert_eq!(line_changes(b"", b""), (0, 0));
        assert_eq!(line_changes(b"", b"a\nb\n"), (2, 0));
        assert_eq!(line_changes(b"a\nb\n", b""), (0, 2));
        assert_eq!(line_changes(b"a\nb\nc\n", b"a\nB\nc\n"), (1, 1));
        assert_eq!(line_changes(b"a\nb\nc\nd\n", b"b\nc\nd\ne\n"), (1, 1));
        assert_eq!(line_changes(b"a\nb", b"a\nb\n"), (1, 1));
        assert_eq!(line_changes(b"x\ny\nz\n", b"z\ny\nx\n"), (2, 2));
    }

    /// `git diff` of one path between HEAD~ and HEAD, from its first hunk on, as
    /// GitHub's `patch` holds it (no trailing newline).
    fn git_patch(fx: &Fixture, path: &str) -> String {
        let diff = fx.git(&["diff", "-U3", "HEAD~", "HEAD", "--", path]);
        let at = diff.find("@@").unwrap_or_else(|| panic!("no hunk: {diff}"));
        diff[at..].to_string()
    }

    #[test]
    fn patches_are_git_diffs_hunks() {
        let fx = Fixture::new();
        let long: String = (0..60).map(|i| format!("line {i}\n")).collect();
        let code: String = std::iter::once("fn main() {\n".to_string())
            .chain((0..6).map(|i| format!("    let x{i} = {i};\n")))
            .chain(std::iter::once("}\n".to_string()))
            .collect();
        fx.commit(
            &[
                ("long.txt", Some(&long)),
                ("code.rs", Some(&code)),
                ("tail.txt", Some("a\nb\nc")),
                ("gone.txt", Some("one\ntwo\n")),
            ],
            T0,
            "Alice",
        );
        // Two changes far apart (two hunks), two close together (one hunk), a line
        // appended, a last line without its newline, a removal, an addition.
        let edited = long
            .replace("line 3\n", "three\n")
            .replace("line 30\n", "")
            .replace("line 34\n", "thirty-four\nmore\n")
            + "end\n";
        let code2 = code.replace("let x4 = 4;", "let x4 = 40;");
        let head = fx.commit(
            &[
                ("long.txt", Some(&edited)),
                ("code.rs", Some(&code2)),
                ("tail.txt", Some("a\nB\nc")),
                ("gone.txt", None),
                ("new.txt", Some("n1\nn2")),
            ],
            T0 + DAY,
            "Alice",
        );
        let b = fx.browser();
        let changes = b.commit_changes(&b.commit(&head).unwrap()).unwrap();
        assert_eq!(changes.len(), 5);
        for change in &changes {
            let patch = change
                .patch
                .as_deref()
                .unwrap_or_else(|| panic!("{change:?}"));
            assert_eq!(patch, git_patch(&fx, &change.path), "{}", change.path);
            let plus = patch.lines().filter(|l| l.starts_with('+')).count();
            let minus = patch.lines().filter(|l| l.starts_with('-')).count();
            assert_eq!((change.additions, change.deletions), (plus, minus));
        }
        let code = changes.iter().find(|c| c.path == "code.rs").unwrap();
        assert!(
            code.patch
                .as_deref()
                .unwrap()
                .starts_with("@@ -3,6 +3,6 @@ fn main() {\n"),
            "{code:?}"
        );
    }

    #[test]
    fn big_blobs_are_listed_without_patch_and_never_inflated() {
        let fx = Fixture::new();
        fx.commit(&[("small.txt", Some("a\n"))], T0, "Alice");
        let big = "\n".repeat(MAX_DIFF_BLOB_BYTES as usize + 1);
        let head = fx.commit(
            &[("small.txt", Some("a\nb\n")), ("big.txt", Some(&big))],
            T0 + DAY,
            "Alice",
        );
        let b = fx.browser();
        let changes = b.commit_changes(&b.commit(&head).unwrap()).unwrap();
        let big = changes.iter().find(|c| c.path == "big.txt").unwrap();
        assert_eq!(big.status, ChangeStatus::Added);
        assert_eq!(
            (big.additions, big.deletions, big.patch.as_deref()),
            (0, 0, None)
        );
        let small = changes.iter().find(|c| c.path == "small.txt").unwrap();
        assert_eq!((small.additions, small.deletions), (1, 0));
        assert_eq!(small.patch.as_deref(), Some("@@ -1 +1,2 @@\n a\n+b"));
        // Only the small file's two sides were read.
        assert_eq!(b.budget_left(), READ_BUDGET_BYTES - 2 - 4);
    }

    #[test]
    fn patches_stop_at_the_line_limits() {
        let fx = Fixture::new();
        fx.commit(&[("seed.txt", Some("s\n"))], T0, "Alice");
        let lines =
            |n: usize, tag: &str| -> String { (0..n).map(|i| format!("{tag} {i}\n")).collect() };
        let over = lines(MAX_PATCH_LINES_PER_FILE + 1, "over");
        let at_limit = lines(MAX_PATCH_LINES_PER_FILE, "at");
        // 2,999 changed lines each: six fit in 20,000, the seventh does not.
        let files: Vec<(String, String)> = (0..7)
            .map(|i| (format!("f{i}.txt"), lines(2_999, &format!("f{i}"))))
            .collect();
        let mut edits: Vec<(&str, Option<&str>)> =
            vec![("a-over.txt", Some(&over)), ("a-at.txt", Some(&at_limit))];
        edits.extend(files.iter().map(|(p, c)| (p.as_str(), Some(c.as_str()))));
        let head = fx.commit(&edits, T0 + DAY, "Alice");
        let b = fx.browser();
        let changes = b.commit_changes(&b.commit(&head).unwrap()).unwrap();
        let find = |p: &str| changes.iter().find(|c| c.path == p).unwrap();
        let over = find("a-over.txt");
        assert_eq!((over.additions, over.patch.is_none()), (3_001, true));
        let at = find("a-at.txt");
        assert_eq!((at.additions, at.patch.is_some()), (3_000, true));
        // 3,000 + 5 × 2,999 = 17,995 lines of patches; the sixth file would make
        // 20,994.
        let with_patch: Vec<&str> = changes
            .iter()
            .filter(|c| c.path.starts_with('f') && c.patch.is_some())
            .map(|c| c.path.as_str())
            .collect();
        assert_eq!(
            with_patch,
            ["f0.txt", "f1.txt", "f2.txt", "f3.txt", "f4.txt"]
        );
        assert!(
            changes
                .iter()
                .all(|c| c.path == "seed.txt" || c.additions > 0)
        );
    }

    #[test]
    fn a_request_reads_at_most_its_budget() {
        let fx = Fixture::new();
        fx.commit(&[("seed.txt", Some("s\n"))], T0, "Alice");
        // 33 files of 1 MiB each (the largest diffed): 33 MiB, one more than the budget.
        let files: Vec<(String, String)> = (0..33)
            .map(|i| {
                let line = format!("{i:07}\n");
                (
                    format!("f{i:02}.txt"),
                    line.repeat(MAX_DIFF_BLOB_BYTES as usize / 8),
                )
            })
            .collect();
        let edits: Vec<(&str, Option<&str>)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), Some(c.as_str())))
            .collect();
        let head = fx.commit(&edits, T0 + DAY, "Alice");
        let b = fx.browser();
        let changes = b.commit_changes(&b.commit(&head).unwrap()).unwrap();
        let counted = changes.iter().filter(|c| c.additions > 0).count();
        assert_eq!(counted, 32, "the 33rd file is past the budget");
        assert_eq!(b.budget_left(), 0);
        // And a served blob is refused, from its header, once nothing is left.
        let blob = changes[0].new_id.unwrap();
        assert!(matches!(
            b.blob(&blob, MAX_BLOB_BYTES),
            Err(BrowseError::TooLarge { max: 0, .. })
        ));
        // A fresh request may read it.
        assert_eq!(
            fx.browser().blob(&blob, MAX_BLOB_BYTES).unwrap().len(),
            1 << 20
        );
    }

    /// Resolving a delta holds its base and result at once; gix checks their declared
    /// sizes against the budget before allocating, so a blob whose header looks small
    /// enough cannot make a request hold more (here two 20 MiB blobs, one a delta of
    /// the other: 40 MiB to resolve it).
    #[test]
    fn a_delta_is_refused_when_resolving_it_would_exceed_the_budget() {
        let fx = Fixture::new();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let base: Vec<u8> = (0..20 * 1024 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let mut longer = base.clone();
        longer.extend_from_slice(b"and a little more");
        for (content, message) in [(&base, "base"), (&longer, "longer")] {
            std::fs::write(fx.work.join("data.bin"), content).unwrap();
            fx.git(&["add", "data.bin"]);
            fx.git_at(T0, "Alice", &["commit", "--quiet", "-m", message]);
        }
        fx.git(&["repack", "-a", "-d", "-f", "-q"]);
        let ids = [fx.oid("HEAD~:data.bin"), fx.oid("HEAD:data.bin")];
        // git stored one of them as a delta of the other.
        let bases = Command::new("git")
            .current_dir(&fx.work)
            .args(["cat-file", "--batch-check=%(objectname) %(deltabase)"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                let mut stdin = child.stdin.take().unwrap();
                for id in &ids {
                    writeln!(stdin, "{}", hex(id))?;
                }
                drop(stdin);
                child.wait_with_output()
            })
            .unwrap();
        let bases = String::from_utf8(bases.stdout).unwrap();
        let delta = ids
            .iter()
            .find(|id| {
                bases.contains(&format!("{} {}", hex(id), hex(&ids[0])))
                    || bases.contains(&format!("{} {}", hex(id), hex(&ids[1])))
            })
            .unwrap_or_else(|| panic!("no delta: {bases}"));
        let whole = ids.iter().find(|id| *id != delta).unwrap();
        let b = fx.browser();
        match b.blob(delta, MAX_BLOB_BYTES) {
            Err(BrowseError::TooLarge { size, max, .. }) => {
                assert!(size < READ_BUDGET_BYTES && max == READ_BUDGET_BYTES)
            }
            other => panic!("{other:?}"),
        }
        // The one stored whole is within the budget.
        let data = fx.browser().blob(whole, MAX_BLOB_BYTES).unwrap();
        assert!(data.len() >= base.len());
    }

    #[test]
    fn objects_over_the_budget_are_refused_without_inflating() {
        let fx = Fixture::new();
        let huge = vec![0u8; READ_BUDGET_BYTES as usize + 1];
        std::fs::write(fx.work.join("huge.bin"), &huge).unwrap();
        fx.git(&["add", "huge.bin"]);
        fx.git_at(T0, "Alice", &["commit", "--quiet", "-m", "huge"]);
        let head = fx.oid("HEAD");
        let id = fx.oid("HEAD:huge.bin");
        let b = fx.browser();
        assert!(matches!(
            b.blob(&id, MAX_BLOB_BYTES),
            Err(BrowseError::TooLarge {
                max: READ_BUDGET_BYTES,
                ..
            })
        ));
        // Asking for it as a commit or a revision inflates nothing either.
        assert!(matches!(
            b.resolve(&hex(&id)),
            Err(BrowseError::UnknownRevision(_))
        ));
        assert!(matches!(b.commit(&id), Err(BrowseError::TooLarge { .. })));
        assert_eq!(b.budget_left(), READ_BUDGET_BYTES);
        // Its entry is still listed, with its size, and a diff names it.
        let changes = b.commit_changes(&b.commit(&head).unwrap()).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].patch, None);
        match b.at_path(&head, "huge.bin", MAX_BLOB_BYTES).unwrap() {
            Some(PathContent::Blob { entry, data: None }) => {
                assert_eq!(entry.size, Some(READ_BUDGET_BYTES + 1));
            }
            other => panic!("{other:?}"),
        }
    }
}
