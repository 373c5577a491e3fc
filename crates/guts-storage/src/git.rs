//! Bare git repositories on disk, one per repository: `<data_dir>/repos/<repo-id>.git`,
//! created, opened, read, written and deleted through gix.
//!
//! Directory changes are made atomic with renames: a repository is initialised under
//! `repos/.tmp/` and renamed into place; a deleted one is renamed into `repos/.trash/`
//! before it is removed. Whatever an interrupted run left in either is removed on open,
//! so a crash never leaves a half-created repository visible.

use std::path::{Path, PathBuf};

use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};

use crate::error::StoreError;

/// A git object id (SHA-1). Kept as raw bytes at this boundary so that callers do not
/// need gix types.
pub type Oid = [u8; 20];

#[derive(Debug, Clone)]
pub struct GitRepos {
    root: PathBuf,
}

/// Why a ref update was refused.
#[derive(Debug, thiserror::Error)]
pub enum RefUpdateError {
    /// The ref's current value was not the expected one (a concurrent update won).
    #[error("ref {name} changed concurrently")]
    Mismatch { name: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn git_error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Git {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl GitRepos {
    /// Opens the repository root under `data_dir`, removing leftovers of interrupted
    /// creations and deletions.
    pub fn open(data_dir: &Path) -> Result<GitRepos, StoreError> {
        let root = data_dir.join("repos");
        for dir in [root.join(".tmp"), root.join(".trash")] {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
            }
            std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        }
        // A ref write killed half-way leaves its lock file, which would refuse every
        // later update of that ref. Nothing else writes here, so at open any lock is
        // stale.
        for entry in std::fs::read_dir(&root).map_err(io_error(&root))? {
            let path = entry.map_err(io_error(&root))?.path();
            if path.extension().is_some_and(|e| e == "git") {
                remove_locks(&path, 0)?;
            }
        }
        Ok(GitRepos { root })
    }

    /// Where the repository with this (hex) id lives.
    pub fn path(&self, id_hex: &str) -> PathBuf {
        self.root.join(format!("{id_hex}.git"))
    }

    pub fn exists(&self, id_hex: &str) -> bool {
        self.path(id_hex).join("HEAD").is_file()
    }

    /// Creates an empty bare repository whose HEAD points at `default_branch` (a full
    /// ref name). Idempotent: an existing repository is left as it is.
    pub fn create(&self, id_hex: &str, default_branch: &str) -> Result<(), StoreError> {
        let target = self.path(id_hex);
        if self.exists(id_hex) {
            return Ok(());
        }
        let staging = self.root.join(".tmp").join(format!("{id_hex}.git"));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io_error(&staging))?;
        }
        let repo = gix::init_bare(&staging).map_err(|e| git_error(&staging, e))?;
        let head: FullName = default_branch
            .try_into()
            .map_err(|e| git_error(&staging, format!("default branch {default_branch:?}: {e}")))?;
        repo.edit_reference(RefEdit {
            change: Change::Update {
                log: LogChange::default(),
                expected: PreviousValue::Any,
                new: Target::Symbolic(head),
            },
            name: "HEAD".try_into().map_err(|e| git_error(&staging, e))?,
            deref: false,
        })
        .map_err(|e| git_error(&staging, e))?;
        drop(repo);
        // gix writes git's sample hooks; nothing here runs hooks, and each file would
        // cost an fsync below (about half of a creation's fsyncs).
        let hooks = staging.join("hooks");
        if hooks.exists() {
            std::fs::remove_dir_all(&hooks).map_err(io_error(&hooks))?;
        }
        sync_tree(&staging)?;
        std::fs::rename(&staging, &target).map_err(io_error(&target))?;
        sync_dir(&self.root)?;
        Ok(())
    }

    /// Removes a repository: renamed out of sight first (atomic), then deleted.
    pub fn delete(&self, id_hex: &str) -> Result<(), StoreError> {
        let path = self.path(id_hex);
        if !path.exists() {
            return Ok(());
        }
        let trash = self.root.join(".trash").join(format!("{id_hex}.git"));
        if trash.exists() {
            std::fs::remove_dir_all(&trash).map_err(io_error(&trash))?;
        }
        std::fs::rename(&path, &trash).map_err(io_error(&path))?;
        sync_dir(&self.root)?;
        std::fs::remove_dir_all(&trash).map_err(io_error(&trash))
    }

    /// Removes every repository directory whose id is not in `live`: what a crash left
    /// between creating a directory and committing its operation, or between committing
    /// a deletion and removing the directory.
    pub fn remove_orphans(
        &self,
        live: &std::collections::HashSet<String>,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.root).map_err(io_error(&self.root))? {
            let entry = entry.map_err(io_error(&self.root))?;
            let file_name = entry.file_name();
            let Some(id) = file_name.to_str().and_then(|n| n.strip_suffix(".git")) else {
                continue;
            };
            if !live.contains(id) {
                tracing::warn!(
                    repo = id,
                    "removing a repository directory no operation owns"
                );
                let path = entry.path();
                std::fs::remove_dir_all(&path).map_err(io_error(&path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A fresh directory for an incoming pack, under `repos/.tmp/` (same filesystem as
    /// the repositories, so the verified pack moves into place by rename; wiped on open,
    /// so an interrupted push leaves nothing behind).
    pub fn quarantine(&self) -> Result<Quarantine, StoreError> {
        let dir = self.root.join(".tmp").join(format!(
            "incoming-{}",
            hex::encode(rand::random::<[u8; 12]>())
        ));
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        Ok(Quarantine { dir })
    }

    pub fn open_repo(&self, id_hex: &str) -> Result<GitRepo, StoreError> {
        let path = self.path(id_hex);
        let repo = gix::open(&path).map_err(|e| git_error(&path, e))?;
        Ok(GitRepo { repo, path })
    }

    /// Opens a repository for reads on behalf of someone else (the REST API), with
    /// memory bounds gix enforces itself: no single object decode may allocate more than
    /// `alloc_limit` bytes (gix checks the declared sizes of the object *and of every
    /// delta base* before allocating, so a tiny blob stored as a delta of a huge one
    /// cannot make it inflate the huge one), and the delta-base cache holds at most
    /// `delta_cache` bytes (gix's default is 96 MB per handle, i.e. per request).
    pub fn open_repo_bounded(
        &self,
        id_hex: &str,
        alloc_limit: usize,
        delta_cache: usize,
    ) -> Result<GitRepo, StoreError> {
        let path = self.path(id_hex);
        let options = gix::open::Options::default().config_overrides([
            format!("gitoxide.objects.allocLimit={alloc_limit}"),
            format!("core.deltaBaseCacheLimit={delta_cache}"),
        ]);
        let repo = gix::open_opts(&path, options).map_err(|e| git_error(&path, e))?;
        Ok(GitRepo { repo, path })
    }
}

/// A directory holding one incoming pack until it is verified; removed on drop.
#[derive(Debug)]
pub struct Quarantine {
    dir: PathBuf,
}

impl Quarantine {
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Quarantine {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One open repository.
#[derive(Debug)]
pub struct GitRepo {
    repo: gix::Repository,
    path: PathBuf,
}

impl GitRepo {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write_blob(&self, bytes: &[u8]) -> Result<Oid, StoreError> {
        let id = self
            .repo
            .write_blob(bytes)
            .map_err(|e| git_error(&self.path, e))?;
        to_oid(&self.path, id.detach())
    }

    /// The object's kind and content, or `None` if it is absent.
    pub fn read_object(
        &self,
        id: &Oid,
    ) -> Result<Option<(gix::object::Kind, Vec<u8>)>, StoreError> {
        match self.repo.try_find_object(gix::ObjectId::Sha1(*id)) {
            Ok(Some(object)) => Ok(Some((object.kind, object.data.clone()))),
            Ok(None) => Ok(None),
            Err(e) => Err(git_error(&self.path, e)),
        }
    }

    pub fn has_object(&self, id: &Oid) -> bool {
        self.repo.has_object(gix::ObjectId::Sha1(*id))
    }

    /// Points HEAD at `target` (a full ref name, which may not exist yet) unless it
    /// already does: what a clone checks out follows the repository's default branch.
    /// Returns whether HEAD changed.
    pub fn set_head(&self, target: &str) -> Result<bool, StoreError> {
        let current = self
            .repo
            .head_name()
            .map_err(|e| git_error(&self.path, e))?;
        if current.as_ref().is_some_and(|n| n.as_bstr() == target) {
            return Ok(false);
        }
        let head: FullName = target
            .try_into()
            .map_err(|e| git_error(&self.path, format!("HEAD target {target:?}: {e}")))?;
        self.repo
            .edit_reference(RefEdit {
                change: Change::Update {
                    log: LogChange::default(),
                    expected: PreviousValue::Any,
                    new: Target::Symbolic(head),
                },
                name: "HEAD".try_into().map_err(|e| git_error(&self.path, e))?,
                deref: false,
            })
            .map_err(|e| git_error(&self.path, e))?;
        Ok(true)
    }

    /// The object a ref points at (peeling nothing), `None` if the ref does not exist.
    pub fn ref_target(&self, name: &str) -> Result<Option<Oid>, StoreError> {
        let found = self
            .repo
            .try_find_reference(name)
            .map_err(|e| git_error(&self.path, e))?;
        match found.map(|r| r.inner.target) {
            Some(Target::Object(id)) => Ok(Some(to_oid(&self.path, id)?)),
            Some(Target::Symbolic(_)) | None => Ok(None),
        }
    }

    /// Compare-and-swap of one ref: moves `name` from `old` to `new` (`None` = absent)
    /// only if it currently is `old`; the check and the write happen under the ref's
    /// lock file.
    pub fn update_ref(
        &self,
        name: &str,
        old: Option<Oid>,
        new: Option<Oid>,
    ) -> Result<(), RefUpdateError> {
        let full: FullName = name
            .try_into()
            .map_err(|e| git_error(&self.path, format!("ref {name:?}: {e}")))?;
        let expected = match old {
            Some(id) => PreviousValue::MustExistAndMatch(Target::Object(gix::ObjectId::Sha1(id))),
            None => PreviousValue::MustNotExist,
        };
        let change = match new {
            Some(id) => Change::Update {
                log: LogChange::default(),
                expected,
                new: Target::Object(gix::ObjectId::Sha1(id)),
            },
            None => Change::Delete {
                expected,
                log: RefLog::AndReference,
            },
        };
        let edit = RefEdit {
            change,
            name: full,
            deref: false,
        };
        match self.repo.edit_reference(edit) {
            Ok(_) => Ok(()),
            Err(e) => {
                // gix reports a failed precondition through its transaction error; check
                // the ref again to tell a lost race from an I/O failure.
                let now = self.ref_target(name)?;
                if now != old {
                    Err(RefUpdateError::Mismatch {
                        name: name.to_string(),
                    })
                } else {
                    Err(git_error(&self.path, e).into())
                }
            }
        }
    }

    /// Moves a verified pack and its index from a quarantine into `objects/pack`,
    /// durably: both files are fsynced before the renames and the directory after, and
    /// the index goes last (readers load a pack once its index exists), so a crash never
    /// leaves an index pointing at a missing or partial pack.
    pub fn install_pack(&self, pack: &Path, index: &Path) -> Result<(), StoreError> {
        let dir = self.path.join("objects").join("pack");
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        for file in [pack, index] {
            std::fs::File::open(file)
                .and_then(|f| f.sync_all())
                .map_err(io_error(file))?;
        }
        for file in [pack, index] {
            let Some(name) = file.file_name() else {
                return Err(git_error(file, "pack path has no file name"));
            };
            let target = dir.join(name);
            std::fs::rename(file, &target).map_err(io_error(&target))?;
        }
        sync_dir(&dir)
    }

    /// The underlying gix repository, for the git protocol servers (object database,
    /// packs); refs are written only through [`GitRepo::update_ref`] and
    /// [`GitRepo::sync_refs`].
    pub fn gix(&self) -> &gix::Repository {
        &self.repo
    }

    /// Every ref that points at an object, by full name (symbolic refs such as HEAD are
    /// not listed).
    pub fn refs(&self) -> Result<Vec<(String, Oid)>, StoreError> {
        let platform = self
            .repo
            .references()
            .map_err(|e| git_error(&self.path, e))?;
        let mut out = Vec::new();
        for r in platform.all().map_err(|e| git_error(&self.path, e))? {
            let r = r.map_err(|e| git_error(&self.path, e))?;
            if let Target::Object(id) = &r.inner.target {
                out.push((r.inner.name.as_bstr().to_string(), to_oid(&self.path, *id)?));
            }
        }
        Ok(out)
    }

    /// Makes the refs on disk exactly `desired` (the fold's refs, the truth): sets what
    /// differs, deletes what is not desired. A desired ref whose object is absent is
    /// left unset and reported, never written dangling. Returns how many refs changed.
    pub fn sync_refs(
        &self,
        desired: &std::collections::BTreeMap<String, Oid>,
    ) -> Result<usize, StoreError> {
        let current: std::collections::BTreeMap<String, Oid> = self.refs()?.into_iter().collect();
        let mut edits = Vec::new();
        for (name, id) in desired {
            if current.get(name) == Some(id) {
                continue;
            }
            if !self.has_object(id) {
                tracing::error!(
                    repo = %self.path.display(),
                    r#ref = %name,
                    "the fold names an object this repository lacks; ref left unset"
                );
                continue;
            }
            edits.push(RefEdit {
                change: Change::Update {
                    log: LogChange::default(),
                    expected: PreviousValue::Any,
                    new: Target::Object(gix::ObjectId::Sha1(*id)),
                },
                name: full_name(&self.path, name)?,
                deref: false,
            });
        }
        for name in current.keys().filter(|n| !desired.contains_key(*n)) {
            edits.push(RefEdit {
                change: Change::Delete {
                    expected: PreviousValue::Any,
                    log: RefLog::AndReference,
                },
                name: full_name(&self.path, name)?,
                deref: false,
            });
        }
        let changed = edits.len();
        if changed > 0 {
            self.repo
                .edit_references(edits)
                .map_err(|e| git_error(&self.path, e))?;
        }
        Ok(changed)
    }

    /// Whether commit `ancestor` is reachable from commit `descendant` (true when equal).
    /// Missing objects mean "not known to be an ancestor".
    pub fn is_ancestor(&self, ancestor: &Oid, descendant: &Oid) -> bool {
        if ancestor == descendant {
            return true;
        }
        let (a, d) = (
            gix::ObjectId::Sha1(*ancestor),
            gix::ObjectId::Sha1(*descendant),
        );
        match self.repo.merge_base(a, d) {
            Ok(base) => base.is_some_and(|b| b.detach() == a),
            Err(_) => false,
        }
    }
}

fn full_name(path: &Path, name: &str) -> Result<FullName, StoreError> {
    name.try_into()
        .map_err(|e| git_error(path, format!("ref {name:?}: {e}")))
}

fn to_oid(path: &Path, id: gix::ObjectId) -> Result<Oid, StoreError> {
    id.as_bytes()
        .try_into()
        .map_err(|_| git_error(path, format!("object id {id} is not SHA-1")))
}

/// fsyncs every file and directory under `dir`, so a renamed-into-place repository is
/// complete on disk before it becomes visible.
fn sync_tree(dir: &Path) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_error(&path))?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else if kind.is_file() {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io_error(&path))?;
        }
    }
    sync_dir(dir)
}

/// Removes `*.lock` files at the top of a repository and anywhere under `refs/`.
fn remove_locks(dir: &Path, depth: usize) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_error(&path))?;
        if kind.is_file() && path.extension().is_some_and(|e| e == "lock") {
            tracing::warn!(path = %path.display(), "removing a stale lock file");
            std::fs::remove_file(&path).map_err(io_error(&path))?;
        } else if kind.is_dir() && (depth > 0 || entry.file_name() == "refs") && depth < 64 {
            remove_locks(&path, depth + 1)?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::git;

    #[test]
    fn create_write_cas_delete_and_recover() {
        let dir = tempfile::tempdir().unwrap();
        let repos = GitRepos::open(dir.path()).unwrap();
        let id = "ab".repeat(32);
        repos.create(&id, "refs/heads/trunk").unwrap();
        assert!(repos.exists(&id));
        // Real git agrees it is a bare repository with HEAD -> trunk.
        let path = repos.path(&id);
        assert_eq!(git(&path, &["rev-parse", "--is-bare-repository"]), "true");
        assert_eq!(git(&path, &["symbolic-ref", "HEAD"]), "refs/heads/trunk");

        let repo = repos.open_repo(&id).unwrap();
        let blob = repo.write_blob(b"hello\n").unwrap();
        let file = dir.path().join("hello.txt");
        std::fs::write(&file, b"hello\n").unwrap();
        assert_eq!(
            hex::encode(blob),
            git(dir.path(), &["hash-object", file.to_str().unwrap()])
        );
        let (kind, data) = repo.read_object(&blob).unwrap().unwrap();
        assert_eq!(kind, gix::object::Kind::Blob);
        assert_eq!(data, b"hello\n");
        assert_eq!(git(&path, &["cat-file", "-p", &hex::encode(blob)]), "hello");

        // CAS: create, move with the right old value, refuse with a stale one.
        repo.update_ref("refs/tags/t", None, Some(blob)).unwrap();
        let other = repo.write_blob(b"other\n").unwrap();
        repo.update_ref("refs/tags/t", Some(blob), Some(other))
            .unwrap();
        let stale = repo.update_ref("refs/tags/t", Some(blob), Some(blob));
        assert!(
            matches!(stale, Err(RefUpdateError::Mismatch { .. })),
            "{stale:?}"
        );
        assert!(matches!(
            repo.update_ref("refs/tags/t", None, Some(blob)),
            Err(RefUpdateError::Mismatch { .. })
        ));
        assert_eq!(repo.ref_target("refs/tags/t").unwrap(), Some(other));
        repo.update_ref("refs/tags/t", Some(other), None).unwrap();
        assert_eq!(repo.ref_target("refs/tags/t").unwrap(), None);

        // Leftovers of an interrupted creation vanish on open; the repository stays.
        std::fs::create_dir_all(dir.path().join("repos/.tmp/zz.git/objects")).unwrap();
        let repos = GitRepos::open(dir.path()).unwrap();
        assert!(!dir.path().join("repos/.tmp/zz.git").exists());
        assert!(repos.exists(&id));
        repos.delete(&id).unwrap();
        assert!(!repos.exists(&id) && !path.exists());
    }

    #[test]
    fn ancestry_follows_commits() {
        let dir = tempfile::tempdir().unwrap();
        let repos = GitRepos::open(dir.path()).unwrap();
        let id = "cd".repeat(32);
        repos.create(&id, "refs/heads/main").unwrap();
        let path = repos.path(&id);
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(
            &work,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "one",
            ],
        );
        let one = git(&work, &["rev-parse", "HEAD"]);
        git(
            &work,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "two",
            ],
        );
        let two = git(&work, &["rev-parse", "HEAD"]);
        git(&work, &["push", "-q", path.to_str().unwrap(), "main"]);
        let repo = repos.open_repo(&id).unwrap();
        let oid = |h: &str| -> Oid { hex::decode(h).unwrap().try_into().unwrap() };
        assert!(repo.is_ancestor(&oid(&one), &oid(&two)));
        assert!(!repo.is_ancestor(&oid(&two), &oid(&one)));
        assert!(repo.is_ancestor(&oid(&two), &oid(&two)));
        assert!(!repo.is_ancestor(&[7; 20], &oid(&two)));
        assert_eq!(repo.ref_target("refs/heads/main").unwrap(), Some(oid(&two)));
    }
}
