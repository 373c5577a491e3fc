//! Writing git objects without git: the blobs, trees, commits and annotated tags that
//! GitHub's git data API creates, and the commit a contents `PUT`/`DELETE` makes (one
//! file changed on top of a branch tip).
//!
//! Refs are never touched here, as in [`crate::merge`]: the caller moves a ref through
//! a signed operation, so the fold stays the only truth about refs. Objects are built
//! in a copy of the repository whose writes stay in memory and reach the disk, fsynced,
//! only when the whole write succeeded ([`GitRepo::persist`]): a request refused half
//! way (an unknown sha in the fifth tree entry) leaves nothing behind, and an object a
//! later operation names never outlives a crash.
//!
//! Everything a client names is checked here before gix sees it: paths
//! ([`validate_path`]), modes, that every sha exists with the kind its place needs, the
//! identities written into headers, and the sizes and counts this module bounds.
//! Everything blocks and runs on the blocking pool.

use gix::ObjectId;
use gix::bstr::BString;
use gix::object::Kind;
use gix::objs::tree::EntryKind;

use crate::git::{GitRepo, Oid};
use crate::merge::{Signature, actor};

/// The largest blob written through the API: the read budget of one request
/// ([`crate::browse::READ_BUDGET_BYTES`]), so that whatever is written this way can
/// be read back the same way. Larger files are for `git push`.
pub const MAX_WRITE_BLOB_BYTES: usize = 32 * 1024 * 1024;
/// Longest path in a tree or contents request, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest path component in bytes (the `NAME_MAX` of every common file system: a
/// longer name could be committed but never checked out).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Entries of one tree request. GitHub states no number; this bounds the work and the
/// memory of one request (each entry may carry its content).
pub const MAX_TREE_EDITS: usize = 10_000;
/// Path components over all entries of one tree request. Each component of a new
/// path may become a tree the editor holds in memory, so this, not the entry count
/// alone, bounds the work of a request (10,000 entries of 2,000 components each
/// would otherwise be twenty million trees).
pub const MAX_TREE_EDIT_COMPONENTS: usize = 100_000;
/// Parents of one commit (an octopus merge of more is not something a bot makes).
pub const MAX_PARENTS: usize = 64;
/// Longest author, committer or tagger name or email, in bytes.
pub const MAX_IDENTITY_BYTES: usize = 1024;

/// Why a path is refused. Each rule closes a way to write a tree that is dangerous
/// to check out or that git itself would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_PATH_BYTES} bytes")]
    TooLong,
    #[error("must be relative (no leading \"/\")")]
    Absolute,
    #[error("must not contain an empty component (\"//\" or a trailing \"/\")")]
    EmptyComponent,
    #[error("must not contain \".\" or \"..\" components")]
    DotComponent,
    #[error("no component may be longer than {MAX_COMPONENT_BYTES} bytes")]
    ComponentTooLong,
    /// `.git` in any case, with trailing dots or spaces (Windows ignores them), its
    /// 8.3 short name `git~1`, or spelled with characters HFS+ ignores: a checkout
    /// would write into the repository's own metadata (CVE-2014-9390 and kin).
    #[error("must not contain a \".git\" component")]
    GitComponent,
    #[error("must not contain NUL or other control characters")]
    Control,
    /// Git allows a backslash in a name, but Windows reads it as a separator, so
    /// `a\..\..\x` would escape the work tree there; git for Windows refuses such
    /// paths on checkout. Refused here so that every file written is checkable out
    /// everywhere.
    #[error("must not contain a backslash")]
    Backslash,
    /// `.gitmodules`, `.gitattributes`, `.gitignore` or `.mailmap` as a symlink: git
    /// would follow it out of the work tree when it reads the file (CVE-2018-11235's
    /// class), and `git fsck` refuses such trees.
    #[error("must not be a symlink named like a file git reads ({0})")]
    SymlinkedGitFile(&'static str),
}

/// A path of a tree entry or a file, `/`-separated and relative to the root; see
/// [`PathError`] for each rule. A pure function, so it is property-tested.
pub fn validate_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    if path.chars().any(|c| c.is_control()) {
        return Err(PathError::Control);
    }
    if path.contains('\\') {
        return Err(PathError::Backslash);
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(PathError::EmptyComponent);
        }
        if component == "." || component == ".." {
            return Err(PathError::DotComponent);
        }
        if component.len() > MAX_COMPONENT_BYTES {
            return Err(PathError::ComponentTooLong);
        }
        if is_git_component(component) {
            return Err(PathError::GitComponent);
        }
    }
    Ok(())
}

/// Characters HFS+ ignores in names (so `.g\u{200c}it` is `.git` there).
/// The files git reads from the work tree itself, which must never be symlinks.
const GIT_READS: [&str; 4] = [".gitmodules", ".gitattributes", ".gitignore", ".mailmap"];

/// [`validate_path`], and for a symlink entry the rule of
/// [`PathError::SymlinkedGitFile`] on its last component (any case, trailing dots or
/// spaces, and ignorable code points, as for `.git`).
pub fn validate_entry_path(path: &str, mode: Mode) -> Result<(), PathError> {
    validate_path(path)?;
    if mode == Mode::Symlink {
        let last = path.rsplit('/').next().unwrap_or(path);
        let folded = fold_name(last);
        if let Some(name) = GIT_READS.iter().find(|n| **n == folded) {
            return Err(PathError::SymlinkedGitFile(name));
        }
    }
    Ok(())
}

/// A name as case-insensitive file systems that ignore some code points and trailing
/// dots and spaces see it.
fn fold_name(name: &str) -> String {
    let folded: String = name
        .chars()
        .filter(|&c| !hfs_ignorable(c))
        .flat_map(char::to_lowercase)
        .collect();
    folded.trim_end_matches(['.', ' ']).to_string()
}

fn hfs_ignorable(c: char) -> bool {
    matches!(c, '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}')
}

fn is_git_component(component: &str) -> bool {
    let folded = fold_name(component);
    folded == ".git" || folded == "git~1"
}

/// A tree entry's mode: the five GitHub accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `100644`
    File,
    /// `100755`
    Executable,
    /// `040000`
    Dir,
    /// `160000`: a commit of another repository.
    Submodule,
    /// `120000`: a blob holding the link's target.
    Symlink,
}

impl Mode {
    /// The mode spelled in octal, as GitHub's API takes it (`040000` or `40000`).
    pub fn parse(text: &str) -> Option<Mode> {
        Some(match text {
            "100644" => Mode::File,
            "100755" => Mode::Executable,
            "040000" | "40000" => Mode::Dir,
            "160000" => Mode::Submodule,
            "120000" => Mode::Symlink,
            _ => return None,
        })
    }

    /// The git object type an entry of this mode names (`blob`, `tree`, `commit`).
    pub fn object_type(self) -> &'static str {
        match self {
            Mode::File | Mode::Executable | Mode::Symlink => "blob",
            Mode::Dir => "tree",
            Mode::Submodule => "commit",
        }
    }

    fn entry_kind(self) -> EntryKind {
        match self {
            Mode::File => EntryKind::Blob,
            Mode::Executable => EntryKind::BlobExecutable,
            Mode::Dir => EntryKind::Tree,
            Mode::Submodule => EntryKind::Commit,
            Mode::Symlink => EntryKind::Link,
        }
    }

    fn from_entry_kind(kind: EntryKind) -> Mode {
        match kind {
            EntryKind::Blob => Mode::File,
            EntryKind::BlobExecutable => Mode::Executable,
            EntryKind::Tree => Mode::Dir,
            EntryKind::Commit => Mode::Submodule,
            EntryKind::Link => Mode::Symlink,
        }
    }
}

/// What one entry of a tree request does at its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryChange {
    /// An existing object (a blob, a tree, or for a submodule any commit id).
    Object(Oid),
    /// A new blob with these bytes.
    Content(Vec<u8>),
    /// Removes whatever is at the path (GitHub's `sha: null`); nothing there is fine.
    Remove,
}

/// One entry of a tree request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEdit {
    pub path: String,
    pub mode: Mode,
    pub change: EntryChange,
}

/// A commit to write.
#[derive(Debug, Clone)]
pub struct NewCommit<'a> {
    pub tree: Oid,
    pub parents: &'a [Oid],
    pub author: &'a Signature,
    pub committer: &'a Signature,
    pub message: &'a str,
}

/// An annotated tag to write.
#[derive(Debug, Clone)]
pub struct NewTag<'a> {
    /// The short name (`v1.0`); `refs/tags/{name}` must be a valid ref name.
    pub name: &'a str,
    pub message: &'a str,
    pub object: Oid,
    /// The kind the client says `object` is (`commit`, `tree`, `blob`, `tag`).
    pub object_type: &'a str,
    pub tagger: &'a Signature,
}

/// One file changed on top of a branch tip (a contents `PUT` or `DELETE`).
#[derive(Debug, Clone)]
pub struct FileEdit<'a> {
    /// The branch's tip; `None` for a branch that does not exist yet (an empty
    /// repository), whose first commit this is.
    pub tip: Option<Oid>,
    pub path: &'a str,
    /// The blob the client believes is at `path` (GitHub's `sha`), required when a
    /// file is there.
    pub expected: Option<Oid>,
    /// The new bytes, or `None` to delete the file.
    pub content: Option<&'a [u8]>,
    pub message: &'a str,
    pub author: &'a Signature,
    pub committer: &'a Signature,
}

/// What a [`FileEdit`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileEdited {
    pub commit: Oid,
    /// The file's new blob (`None` after a deletion).
    pub blob: Option<Oid>,
    /// Whether the file did not exist before.
    pub created: bool,
}

/// Why a write was refused or failed. Everything but [`WriteError::Git`] is the
/// client's mistake.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("path {path:?} {reason}")]
    InvalidPath { path: String, reason: PathError },
    /// A sha that names no object of this repository.
    #[error("{what} {sha} does not exist")]
    Missing { what: &'static str, sha: String },
    /// A sha that names an object of another kind than its place needs.
    #[error("{what} {sha} is not a {expected}")]
    WrongKind {
        what: &'static str,
        sha: String,
        expected: &'static str,
    },
    #[error("{what} is too large (maximum is {max} bytes)")]
    TooLarge { what: &'static str, max: usize },
    /// `content` makes a blob, but the entry's mode is a tree's or a submodule's.
    #[error("{0}: content makes a blob; a tree or submodule entry needs a sha")]
    ContentNotABlob(String),
    #[error("too many {what} (maximum is {max})")]
    TooMany { what: &'static str, max: usize },
    /// An author, committer or tagger git could not write into a header.
    #[error("{role}.{field} {reason}")]
    InvalidIdentity {
        role: &'static str,
        field: &'static str,
        reason: &'static str,
    },
    #[error("tag name {0:?} is invalid: {1}")]
    InvalidTagName(String, guts_core::NameError),
    #[error("message must not contain NUL")]
    InvalidMessage,
    /// A file is at the path and the client did not say which blob it replaces.
    #[error("sha wasn't supplied")]
    ShaRequired,
    /// The file at the path is not the blob the client named.
    #[error("{path} does not match {sha}")]
    ShaMismatch { path: String, sha: String },
    /// Nothing to delete at the path.
    #[error("{0} not found")]
    FileNotFound(String),
    /// The path, or a directory on the way to it, is not a file.
    #[error("{0} is not a file")]
    NotAFile(String),
    #[error("git: {0}")]
    Git(String),
}

fn git_err(e: impl std::fmt::Display) -> WriteError {
    WriteError::Git(e.to_string())
}

fn hex(id: &ObjectId) -> String {
    id.to_hex().to_string()
}

fn checked_path(path: &str) -> Result<(), WriteError> {
    validate_path(path).map_err(|reason| WriteError::InvalidPath {
        path: path.to_string(),
        reason,
    })
}

fn check_blob_size(bytes: &[u8]) -> Result<(), WriteError> {
    if bytes.len() > MAX_WRITE_BLOB_BYTES {
        return Err(WriteError::TooLarge {
            what: "content",
            max: MAX_WRITE_BLOB_BYTES,
        });
    }
    Ok(())
}

/// Git writes `name <email> time zone` into a header: `<`, `>` or a newline would
/// forge fields or headers, NUL ends the object for many readers.
fn check_identity(role: &'static str, who: &Signature) -> Result<(), WriteError> {
    for (field, value) in [("name", &who.name), ("email", &who.email)] {
        let invalid = |reason| WriteError::InvalidIdentity {
            role,
            field,
            reason,
        };
        if value.trim().is_empty() {
            return Err(invalid("must not be empty"));
        }
        if value.len() > MAX_IDENTITY_BYTES {
            return Err(invalid("is too long"));
        }
        if value
            .chars()
            .any(|c| c == '<' || c == '>' || c.is_control())
        {
            return Err(invalid("must not contain '<', '>' or control characters"));
        }
    }
    Ok(())
}

fn check_message(message: &str) -> Result<(), WriteError> {
    if message.contains('\0') {
        return Err(WriteError::InvalidMessage);
    }
    Ok(())
}

/// The kind of object `id` is in `repo`, `None` when absent.
fn kind_of(repo: &gix::Repository, id: ObjectId) -> Result<Option<Kind>, WriteError> {
    Ok(repo.try_find_header(id).map_err(git_err)?.map(|h| h.kind()))
}

/// `id` if it is an object of kind `expected` in `repo`.
fn require(
    repo: &gix::Repository,
    what: &'static str,
    id: &Oid,
    expected: Kind,
) -> Result<ObjectId, WriteError> {
    let id = ObjectId::Sha1(*id);
    match kind_of(repo, id)? {
        None => Err(WriteError::Missing {
            what,
            sha: hex(&id),
        }),
        Some(kind) if kind != expected => Err(WriteError::WrongKind {
            what,
            sha: hex(&id),
            expected: kind_name(expected),
        }),
        Some(_) => Ok(id),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Blob => "blob",
        Kind::Tree => "tree",
        Kind::Commit => "commit",
        Kind::Tag => "tag",
    }
}

fn to_oid(id: ObjectId) -> Result<Oid, WriteError> {
    id.as_bytes().try_into().map_err(git_err)
}

impl GitRepo {
    /// The type of object `id` is (`blob`, `tree`, `commit`, `tag`), `None` when it
    /// is absent: what a ref may point at is decided from it.
    pub fn object_kind(&self, id: &Oid) -> Result<Option<&'static str>, WriteError> {
        Ok(kind_of(self.gix(), ObjectId::Sha1(*id))?.map(kind_name))
    }

    /// Writes a blob (at most [`MAX_WRITE_BLOB_BYTES`]), durably.
    pub fn create_blob(&self, bytes: &[u8]) -> Result<Oid, WriteError> {
        check_blob_size(bytes)?;
        let mut memory = self.in_memory();
        let id = memory.write_blob(bytes).map_err(git_err)?.detach();
        self.persist(&mut memory).map_err(git_err)?;
        to_oid(id)
    }

    /// Writes the tree `base` (or the empty tree) with `edits` applied in order, as
    /// GitHub's `POST git/trees` does: a nested path creates or enters the trees on
    /// its way, a removal of the last entry of a tree removes that tree, and a later
    /// entry for the same path wins. Every named object must exist with the kind its
    /// mode needs (a submodule's commit lives elsewhere and is not checked).
    pub fn create_tree(&self, base: Option<&Oid>, edits: &[TreeEdit]) -> Result<Oid, WriteError> {
        if edits.len() > MAX_TREE_EDITS {
            return Err(WriteError::TooMany {
                what: "tree entries",
                max: MAX_TREE_EDITS,
            });
        }
        let components: usize = edits.iter().map(|e| e.path.split('/').count()).sum();
        if components > MAX_TREE_EDIT_COMPONENTS {
            return Err(WriteError::TooMany {
                what: "path components",
                max: MAX_TREE_EDIT_COMPONENTS,
            });
        }
        let mut memory = self.in_memory();
        let root = match base {
            Some(base) => Some(require(&memory, "base_tree", base, Kind::Tree)?),
            None => None,
        };
        let id = {
            let mut editor = match root {
                Some(root) => memory.edit_tree(root).map_err(git_err)?,
                None => memory.empty_tree().edit().map_err(git_err)?,
            };
            for edit in edits {
                validate_entry_path(&edit.path, edit.mode).map_err(|reason| {
                    WriteError::InvalidPath {
                        path: edit.path.clone(),
                        reason,
                    }
                })?;
                let target = match &edit.change {
                    EntryChange::Remove => {
                        editor.remove(edit.path.as_str()).map_err(git_err)?;
                        continue;
                    }
                    EntryChange::Content(bytes) => {
                        if edit.mode == Mode::Dir || edit.mode == Mode::Submodule {
                            return Err(WriteError::ContentNotABlob(edit.path.clone()));
                        }
                        check_blob_size(bytes)?;
                        memory.write_blob(bytes).map_err(git_err)?.detach()
                    }
                    EntryChange::Object(id) => match edit.mode {
                        Mode::Submodule => ObjectId::Sha1(*id),
                        Mode::Dir => require(&memory, "tree.sha", id, Kind::Tree)?,
                        Mode::File | Mode::Executable | Mode::Symlink => {
                            require(&memory, "tree.sha", id, Kind::Blob)?
                        }
                    },
                };
                editor
                    .upsert(edit.path.as_str(), edit.mode.entry_kind(), target)
                    .map_err(git_err)?;
            }
            editor.write().map_err(git_err)?.detach()
        };
        self.persist(&mut memory).map_err(git_err)?;
        to_oid(id)
    }

    /// Writes a commit of an existing tree with existing parent commits.
    pub fn create_commit(&self, commit: &NewCommit<'_>) -> Result<Oid, WriteError> {
        if commit.parents.len() > MAX_PARENTS {
            return Err(WriteError::TooMany {
                what: "parents",
                max: MAX_PARENTS,
            });
        }
        check_identity("author", commit.author)?;
        check_identity("committer", commit.committer)?;
        check_message(commit.message)?;
        let mut memory = self.in_memory();
        let tree = require(&memory, "tree", &commit.tree, Kind::Tree)?;
        let parents = commit
            .parents
            .iter()
            .map(|p| require(&memory, "parents", p, Kind::Commit))
            .collect::<Result<Vec<_>, _>>()?;
        let id = write_commit(
            &memory,
            tree,
            parents,
            commit.author,
            commit.committer,
            commit.message,
        )?;
        self.persist(&mut memory).map_err(git_err)?;
        to_oid(id)
    }

    /// Writes an annotated tag object (no ref: `POST git/refs` makes that).
    pub fn create_tag(&self, tag: &NewTag<'_>) -> Result<Oid, WriteError> {
        guts_core::names::validate_ref_name(&format!("refs/tags/{}", tag.name))
            .map_err(|e| WriteError::InvalidTagName(tag.name.to_string(), e))?;
        check_identity("tagger", tag.tagger)?;
        check_message(tag.message)?;
        let expected = match tag.object_type {
            "commit" => Kind::Commit,
            "tree" => Kind::Tree,
            "blob" => Kind::Blob,
            "tag" => Kind::Tag,
            _ => {
                return Err(WriteError::WrongKind {
                    what: "type",
                    sha: tag.object_type.to_string(),
                    expected: "commit, tree, blob or tag",
                });
            }
        };
        let mut memory = self.in_memory();
        let target = require(&memory, "object", &tag.object, expected)?;
        let id = memory
            .write_object(&gix::objs::Tag {
                target,
                target_kind: expected,
                name: tag.name.into(),
                tagger: Some(actor(tag.tagger)),
                message: message_bytes(tag.message),
                signature: None,
            })
            .map_err(git_err)?
            .detach();
        self.persist(&mut memory).map_err(git_err)?;
        to_oid(id)
    }

    /// Writes the commit that changes one file on top of `edit.tip`, with git's
    /// compare-and-swap on the file: an existing file is replaced or deleted only when
    /// the client names its current blob. A file keeps its mode when updated; a new one
    /// is `100644`.
    pub fn edit_file(&self, edit: &FileEdit<'_>) -> Result<FileEdited, WriteError> {
        checked_path(edit.path)?;
        check_identity("author", edit.author)?;
        check_identity("committer", edit.committer)?;
        check_message(edit.message)?;
        if let Some(content) = edit.content {
            check_blob_size(content)?;
        }
        let mut memory = self.in_memory();
        let (parents, root) = match edit.tip {
            Some(tip) => {
                let tip = require(&memory, "branch", &tip, Kind::Commit)?;
                let tree = memory
                    .find_commit(tip)
                    .map_err(git_err)?
                    .tree_id()
                    .map_err(git_err)?
                    .detach();
                (vec![tip], Some(tree))
            }
            None => (Vec::new(), None),
        };
        let current = match root {
            Some(root) => existing_file(&memory, root, edit.path, edit.content.is_some())?,
            None => None,
        };
        let created = current.is_none();
        match (current, edit.expected) {
            (Some(_), None) => return Err(WriteError::ShaRequired),
            (Some((id, _)), Some(expected)) if id.as_bytes() != expected.as_slice() => {
                return Err(WriteError::ShaMismatch {
                    path: edit.path.to_string(),
                    sha: hex(&ObjectId::Sha1(expected)),
                });
            }
            (None, _) if edit.content.is_none() => {
                return Err(WriteError::FileNotFound(edit.path.to_string()));
            }
            _ => {}
        }
        let (tree, blob) = {
            let mut editor = match root {
                Some(root) => memory.edit_tree(root).map_err(git_err)?,
                None => memory.empty_tree().edit().map_err(git_err)?,
            };
            let blob = match edit.content {
                Some(content) => {
                    let blob = memory.write_blob(content).map_err(git_err)?.detach();
                    let mode = current.map_or(Mode::File, |(_, mode)| mode);
                    editor
                        .upsert(edit.path, mode.entry_kind(), blob)
                        .map_err(git_err)?;
                    Some(blob)
                }
                None => {
                    editor.remove(edit.path).map_err(git_err)?;
                    None
                }
            };
            (editor.write().map_err(git_err)?.detach(), blob)
        };
        let commit = write_commit(
            &memory,
            tree,
            parents,
            edit.author,
            edit.committer,
            edit.message,
        )?;
        self.persist(&mut memory).map_err(git_err)?;
        Ok(FileEdited {
            commit: to_oid(commit)?,
            blob: blob.map(to_oid).transpose()?,
            created,
        })
    }
}

/// The file (blob, symlink or submodule entry) at `path` under `root` with its mode,
/// `None` when nothing is there. A directory at `path`, or a file on the way to it,
/// is [`WriteError::NotAFile`] for a write; for a deletion it is "not found" (there is
/// no file to delete).
fn existing_file(
    repo: &gix::Repository,
    root: ObjectId,
    path: &str,
    writing: bool,
) -> Result<Option<(ObjectId, Mode)>, WriteError> {
    let tree = repo.find_tree(root).map_err(git_err)?;
    let refuse = |at: &str| {
        if writing {
            WriteError::NotAFile(at.to_string())
        } else {
            WriteError::FileNotFound(path.to_string())
        }
    };
    let mut end = 0;
    for component in path.split('/') {
        end += component.len();
        let prefix = path.get(..end).unwrap_or(path);
        let last = end == path.len();
        end += 1;
        let Some(entry) = tree.lookup_entry_by_path(prefix).map_err(git_err)? else {
            return Ok(None);
        };
        let mode = entry.mode();
        match (last, mode.is_tree()) {
            (true, true) => return Err(refuse(prefix)),
            (true, false) => {
                let mode = Mode::from_entry_kind(mode.kind());
                return Ok(Some((entry.object_id(), mode)));
            }
            (false, true) => {}
            (false, false) => return Err(refuse(prefix)),
        }
    }
    Ok(None)
}

/// A message as git stores it: newline-terminated.
fn message_bytes(message: &str) -> BString {
    let mut out = message.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.into()
}

fn write_commit(
    repo: &gix::Repository,
    tree: ObjectId,
    parents: Vec<ObjectId>,
    author: &Signature,
    committer: &Signature,
    message: &str,
) -> Result<ObjectId, WriteError> {
    Ok(repo
        .write_object(&gix::objs::Commit {
            tree,
            parents: parents.into(),
            author: actor(author),
            committer: actor(committer),
            encoding: None,
            message: message_bytes(message),
            extra_headers: Vec::new(),
        })
        .map_err(git_err)?
        .detach())
}

#[cfg(test)]
mod tests;
