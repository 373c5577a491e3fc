//! Online backups of a running node's data directory, and their offline restore.
//!
//! A backup taken while the node serves writes must be a state the node could have
//! crashed into and recovered from. Two facts of the storage design make that cheap:
//!
//! - redb read transactions are MVCC snapshots that never block the writer:
//!   [`Snapshot::begin`] fixes the backup point, and every table is copied from that one
//!   snapshot into a fresh database file, so the operation log and the accounts in the
//!   backup are exactly what was durable at that instant.
//! - Git objects are written and fsynced *before* the operations that name them are
//!   stored, and packs never change once installed. Objects copied *after* the snapshot
//!   therefore include every object its operations reference; objects that arrived later
//!   are unreferenced extras, which are harmless.
//!
//! Git's refs are not copied: they are a cache of the fold, and opening the restored
//! directory (`Repositories::open`) writes them from the operation log. A maintenance
//! repack may replace packs while they are copied; a pack that vanished is relisted
//! (`git repack` installs the new pack before it deletes the old ones, so its objects
//! are in a pack the next listing shows).
//!
//! The manifest (`backup.json`) is written last, after everything else is fsynced: a
//! directory without it is an interrupted backup, and [`restore`] refuses it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{
    Database, Key, MultimapTableDefinition, MultimapTableHandle as _, ReadTransaction,
    ReadableMultimapTable as _, ReadableTable as _, TableDefinition, TableHandle as _, Value,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::db::{DB_FILE, Store};
use crate::error::StoreError;
use crate::git::GitRepos;
use crate::schema;

/// The manifest of a complete backup, written last.
pub const MANIFEST_FILE: &str = "backup.json";

/// Version of the backup layout; [`restore`] refuses a newer one.
pub const FORMAT_VERSION: u32 = 1;

/// The node's secrets in the data directory, copied along when present: the node key
/// and the single-node cluster secret (guts-node's `keyfile` writes them; a test there
/// keeps the names equal). When they come from `GUTS_PRIVATE_KEY` and
/// `GUTS_CLUSTER_SECRET` instead, they are not in the data directory and not in the
/// backup.
pub const KEY_FILES: [&str; 2] = ["node.key", "cluster.secret"];

/// How many times the packs of one repository are relisted after some vanished
/// (concurrent repacks) before the backup gives up. Maintenance repacks a repository at
/// most once a minute, so two rounds nearly always suffice.
const PACK_ROUNDS: usize = 16;

/// Bytes copied between two checks of the stop flag: a shutdown does not wait for a
/// multi-gigabyte pack to finish copying.
const CHUNK: u64 = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} must be an absolute path")]
    NotAbsolute(PathBuf),
    #[error("{0} must not contain `..`")]
    ParentComponent(PathBuf),
    #[error("{0} is not empty")]
    NotEmpty(PathBuf),
    #[error("{0} is inside the data directory; back up to another directory or volume")]
    InsideDataDir(PathBuf),
    #[error(
        "table {0:?} is unknown to the backup (written by a newer version?); refusing an incomplete backup"
    )]
    UnknownTable(String),
    #[error("repository {0} was deleted while the backup ran; run the backup again")]
    RepositoryVanished(String),
    #[error("the packs of repository {0} kept changing (concurrent repacks); run the backup again")]
    Unstable(String),
    #[error("the backup was cancelled: the node is shutting down")]
    Cancelled,
    #[error("{0} is not a complete backup (it has no {MANIFEST_FILE})")]
    NoManifest(PathBuf),
    #[error("backup {path}: {reason}")]
    BadManifest { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for BackupError {
            fn from(e: $t) -> Self {
                BackupError::Store(StoreError::from(e))
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a complete backup holds; `backup.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// When the snapshot was taken (Unix milliseconds): every write acknowledged before
    /// it is in the backup.
    pub snapshot_at_ms: u64,
    pub finished_at_ms: u64,
    /// Entries copied per table (multimap tables count key-value pairs).
    pub tables: BTreeMap<String, u64>,
    /// The repositories copied (hex ids): every live one of the snapshot.
    pub repositories: Vec<String>,
    /// Which of [`KEY_FILES`] were in the data directory and are in the backup.
    pub key_files: Vec<String>,
    /// Bytes written, database and objects included.
    pub bytes: u64,
}

/// A fixed backup point: a read transaction of the store plus what it says about
/// repositories. Writes go on while it is held; the database file grows a little
/// instead of reusing the pages this snapshot still sees.
pub struct Snapshot {
    read: ReadTransaction,
    at_ms: u64,
    /// Repositories holding a name in the snapshot (`repo_names`): each must be copied.
    live: BTreeSet<String>,
    /// Repositories with operations in the snapshot: copied when their directory exists
    /// (a deleted one has none; opening the restored directory removes any extra).
    known: BTreeSet<String>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("at_ms", &self.at_ms)
            .field("live", &self.live.len())
            .finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Refuses relative paths and `..`: the path is the node's, named by a remote caller,
/// and must mean one place whatever the node's working directory.
pub fn check_path(path: &Path) -> Result<(), BackupError> {
    if !path.is_absolute() {
        return Err(BackupError::NotAbsolute(path.to_path_buf()));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(BackupError::ParentComponent(path.to_path_buf()));
    }
    Ok(())
}

/// Creates (mode 0700: a backup holds secrets) or accepts an empty directory for a
/// backup, outside `data_dir`: a backup inside the data directory would be counted in
/// its size, and one under `repos/` removed as an orphan at the next start.
pub fn prepare_target(target: &Path, data_dir: &Path) -> Result<(), BackupError> {
    check_path(target)?;
    // Where the target will be once created: its nearest existing ancestor, resolved,
    // plus the rest. Checked before anything is created inside the data directory.
    let mut existing = target;
    let mut rest = Vec::new();
    while !existing.exists() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            break;
        };
        rest.push(name);
        existing = parent;
    }
    let mut resolved = fs::canonicalize(existing).map_err(io_error(existing))?;
    resolved.extend(rest.iter().rev());
    let data = fs::canonicalize(data_dir).map_err(io_error(data_dir))?;
    if resolved.starts_with(&data) || data.starts_with(&resolved) {
        return Err(BackupError::InsideDataDir(target.to_path_buf()));
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(target)
        .map_err(io_error(target))?;
    ensure_empty(target)
}

/// A directory is empty if it holds nothing but `lost+found`, which the root of a
/// freshly formatted volume (a Kubernetes PersistentVolume mount) always has.
fn ensure_empty(dir: &Path) -> Result<(), BackupError> {
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        if entry.file_name() != "lost+found" {
            return Err(BackupError::NotEmpty(dir.to_path_buf()));
        }
    }
    Ok(())
}

impl Snapshot {
    /// Fixes the backup point. Cheap: one read transaction and two small table scans.
    pub fn begin(store: &Store) -> Result<Snapshot, BackupError> {
        let read = store.read()?;
        let at_ms = now_ms();
        let mut live = BTreeSet::new();
        for entry in read.open_table(schema::REPO_NAMES)?.iter()? {
            let (_, id) = entry?;
            live.insert(hex::encode(id.value()));
        }
        let mut known = BTreeSet::new();
        for entry in read.open_multimap_table(schema::REPO_OPS)?.iter()? {
            let (id, _) = entry?;
            known.insert(hex::encode(id.value()));
        }
        Ok(Snapshot {
            read,
            at_ms,
            live,
            known,
        })
    }

    /// When the snapshot was taken (Unix milliseconds).
    pub fn at_ms(&self) -> u64 {
        self.at_ms
    }

    /// Live repositories in the snapshot.
    pub fn repositories(&self) -> usize {
        self.live.len()
    }

    /// Writes the backup into `target` (empty, see [`prepare_target`]): the database
    /// from the snapshot, then the repositories' objects, then the key files of
    /// `data_dir`, then the manifest. Blocking. `stop` is asked between files and
    /// chunks; when it says yes the backup ends with [`BackupError::Cancelled`] and no
    /// manifest.
    pub fn write(
        self,
        data_dir: &Path,
        git: &GitRepos,
        target: &Path,
        stop: &dyn Fn() -> bool,
    ) -> Result<Manifest, BackupError> {
        let Snapshot {
            read,
            at_ms,
            live,
            known,
        } = self;
        let mut bytes = 0u64;
        let db_path = target.join(DB_FILE);
        let tables = copy_database(&read, &db_path)?;
        bytes += fs::metadata(&db_path).map_err(io_error(&db_path))?.len();
        // Objects are copied after the snapshot was taken, which is what makes them a
        // superset of what it references; the snapshot itself is no longer needed.
        drop(read);

        let repos_dir = target.join("repos");
        make_dir(&repos_dir)?;
        let mut repositories = Vec::new();
        for id in &known {
            if stop() {
                return Err(BackupError::Cancelled);
            }
            let source = git.path(id);
            let copied = copy_repository(&source, &repos_dir.join(format!("{id}.git")), stop)?;
            match copied {
                Some(n) => {
                    bytes += n;
                    repositories.push(id.clone());
                }
                None if live.contains(id) => {
                    return Err(BackupError::RepositoryVanished(id.clone()));
                }
                None => {}
            }
        }
        sync_dir(&repos_dir)?;

        let mut key_files = Vec::new();
        for name in KEY_FILES {
            let to = target.join(name);
            if let Some(n) = copy_file(&data_dir.join(name), &to, stop)? {
                bytes += n;
                key_files.push(name.to_string());
            }
        }

        let manifest = Manifest {
            format: FORMAT_VERSION,
            snapshot_at_ms: at_ms,
            finished_at_ms: now_ms(),
            tables,
            repositories,
            key_files,
            bytes,
        };
        write_manifest(target, &manifest)?;
        Ok(manifest)
    }
}

/// Copies every table of the snapshot into a new database at `path`, in one write
/// transaction. A table this function does not know fails the backup rather than
/// being left out: an incomplete backup would restore to a node that silently lost data.
fn copy_database(
    read: &ReadTransaction,
    path: &Path,
) -> Result<BTreeMap<String, u64>, BackupError> {
    let db = Database::builder()
        .create(path)
        .map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let write = db.begin_write()?;
    let mut counts = BTreeMap::new();
    let names: Vec<String> = read.list_tables()?.map(|t| t.name().to_string()).collect();
    for name in names {
        let n = match name.as_str() {
            "meta" => copy_table(read, &write, schema::META)?,
            "ops" => copy_table(read, &write, schema::OPS)?,
            "repo_names" => copy_table(read, &write, schema::REPO_NAMES)?,
            "users" => copy_table(read, &write, schema::USERS)?,
            "user_keys" => copy_table(read, &write, schema::USER_KEYS)?,
            "tokens" => copy_table(read, &write, schema::TOKENS)?,
            "orgs" => copy_table(read, &write, schema::ORGS)?,
            "org_members" => copy_table(read, &write, schema::ORG_MEMBERS)?,
            "rejected" => copy_table(read, &write, schema::REJECTED)?,
            "displaced_users" => copy_table(read, &write, schema::DISPLACED_USERS)?,
            _ => return Err(BackupError::UnknownTable(name)),
        };
        counts.insert(name, n);
    }
    let names: Vec<String> = read
        .list_multimap_tables()?
        .map(|t| t.name().to_string())
        .collect();
    for name in names {
        let n = match name.as_str() {
            "repo_ops" => copy_multimap(read, &write, schema::REPO_OPS)?,
            _ => return Err(BackupError::UnknownTable(name)),
        };
        counts.insert(name, n);
    }
    write.commit()?;
    Ok(counts)
}

fn copy_table<K: Key + 'static, V: Value + 'static>(
    read: &ReadTransaction,
    write: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<u64, BackupError> {
    let from = read.open_table(table)?;
    let mut to = write.open_table(table)?;
    let mut n = 0;
    for entry in from.iter()? {
        let (k, v) = entry?;
        to.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}

fn copy_multimap<K: Key + 'static, V: Key + 'static>(
    read: &ReadTransaction,
    write: &WriteTransaction,
    table: MultimapTableDefinition<K, V>,
) -> Result<u64, BackupError> {
    let from = read.open_multimap_table(table)?;
    let mut to = write.open_multimap_table(table)?;
    let mut n = 0;
    for entry in from.iter()? {
        let (k, values) = entry?;
        for v in values {
            let v = v?;
            to.insert(k.value(), v.value())?;
            n += 1;
        }
    }
    Ok(n)
}

/// Copies one bare repository without its refs: `HEAD`, `config`, loose objects, then
/// packs. `None` if the repository directory is not there (deleted). Returns the bytes
/// copied.
fn copy_repository(
    source: &Path,
    target: &Path,
    stop: &dyn Fn() -> bool,
) -> Result<Option<u64>, BackupError> {
    if !source.join("HEAD").is_file() {
        return Ok(None);
    }
    let id = source
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".git").to_string())
        .unwrap_or_default();
    for dir in ["refs/heads", "refs/tags", "objects/info", "objects/pack"] {
        make_dir(&target.join(dir))?;
    }
    let mut bytes = 0;
    for file in ["HEAD", "config"] {
        match copy_file(&source.join(file), &target.join(file), stop)? {
            Some(n) => bytes += n,
            None => return Err(BackupError::RepositoryVanished(id)),
        }
    }

    // Loose objects first: one that vanishes was packed by a repack, into a pack that
    // exists before the loose copy is pruned, so the pack listing below finds it.
    let objects = source.join("objects");
    let entries = match fs::read_dir(&objects) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::RepositoryVanished(id));
        }
        Err(e) => return Err(io_error(&objects)(e)),
    };
    let mut fanout: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    fanout.sort();
    for dir in fanout {
        let from = objects.join(&dir);
        let files = match fs::read_dir(&from) {
            Ok(files) => files,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(&from)(e)),
        };
        let names: Vec<String> = files
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.len() == 38 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect();
        if names.is_empty() {
            continue;
        }
        let to = target.join("objects").join(&dir);
        make_dir(&to)?;
        for name in names {
            if let Some(n) = copy_file(&from.join(&name), &to.join(&name), stop)? {
                bytes += n;
            }
        }
        sync_dir(&to)?;
    }

    bytes += copy_packs(
        &objects.join("pack"),
        &target.join("objects/pack"),
        &id,
        stop,
    )?;
    for dir in ["objects/pack", "objects", "refs", ""] {
        sync_dir(&target.join(dir))?;
    }
    Ok(Some(bytes))
}

/// The base names (`pack-<hash>`) of the installed packs: those whose index exists
/// (the index is installed last, by us and by git).
fn list_packs(dir: &Path) -> Result<BTreeSet<String>, BackupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(io_error(dir)(e)),
    };
    Ok(entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|n| {
            n.strip_suffix(".idx")
                .filter(|base| base.starts_with("pack-"))
                .map(str::to_string)
        })
        .collect())
}

/// Copies every installed pack, relisting while packs vanish under it. Once a round
/// finds every listed pack, each object present when copying began is in a copied
/// pack: a repack writes its new pack before deleting the old ones, so an object of a
/// vanished pack is in a pack of a later listing.
fn copy_packs(
    from: &Path,
    to: &Path,
    id: &str,
    stop: &dyn Fn() -> bool,
) -> Result<u64, BackupError> {
    let mut copied = BTreeSet::new();
    let mut bytes = 0;
    for _ in 0..PACK_ROUNDS {
        let mut vanished = false;
        for base in list_packs(from)? {
            if copied.contains(&base) {
                continue;
            }
            let (pack, idx) = (format!("{base}.pack"), format!("{base}.idx"));
            let pack_bytes = copy_file(&from.join(&pack), &to.join(&pack), stop)?;
            let idx_bytes = match pack_bytes {
                Some(_) => copy_file(&from.join(&idx), &to.join(&idx), stop)?,
                None => None,
            };
            match (pack_bytes, idx_bytes) {
                (Some(p), Some(i)) => {
                    bytes += p + i;
                    copied.insert(base);
                }
                _ => {
                    let _ = fs::remove_file(to.join(&pack));
                    vanished = true;
                }
            }
        }
        if !vanished {
            return Ok(bytes);
        }
    }
    Err(BackupError::Unstable(id.to_string()))
}

fn make_dir(dir: &Path) -> Result<(), BackupError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error(dir))
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_error(dir))
}

/// Copies `from` to a new file `to` (mode 0600) and fsyncs it; `None` if `from` does
/// not exist. Every file is created exclusively: a backup never overwrites.
fn copy_file(from: &Path, to: &Path, stop: &dyn Fn() -> bool) -> Result<Option<u64>, BackupError> {
    let source = match fs::File::open(from) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(from)(e)),
    };
    let mut target = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(io_error(to))?;
    let mut total = 0;
    loop {
        if stop() {
            return Err(BackupError::Cancelled);
        }
        let n = std::io::copy(&mut (&source).take(CHUNK), &mut target).map_err(io_error(to))?;
        if n == 0 {
            break;
        }
        total += n;
    }
    target.sync_all().map_err(io_error(to))?;
    Ok(Some(total))
}

fn write_manifest(target: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| BackupError::BadManifest {
        path: target.to_path_buf(),
        reason: e.to_string(),
    })?;
    let tmp = target.join(format!("{MANIFEST_FILE}.tmp"));
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_error(&tmp))?;
        file.write_all(&json).map_err(io_error(&tmp))?;
        file.write_all(b"\n").map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
    }
    sync_dir(target)?;
    let path = target.join(MANIFEST_FILE);
    fs::rename(&tmp, &path).map_err(io_error(&path))?;
    sync_dir(target)
}

/// Reads and checks a backup's manifest: present, of a known format, and naming only
/// what the directory holds.
pub fn read_manifest(backup: &Path) -> Result<Manifest, BackupError> {
    let path = backup.join(MANIFEST_FILE);
    let mut text = String::new();
    match fs::File::open(&path) {
        Ok(mut file) => file.read_to_string(&mut text).map_err(io_error(&path))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::NoManifest(backup.to_path_buf()));
        }
        Err(e) => return Err(io_error(&path)(e)),
    };
    let bad = |reason: String| BackupError::BadManifest {
        path: backup.to_path_buf(),
        reason,
    };
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if manifest.format > FORMAT_VERSION {
        return Err(bad(format!(
            "format {} is newer than this binary's {FORMAT_VERSION}",
            manifest.format
        )));
    }
    if !backup.join(DB_FILE).is_file() {
        return Err(bad(format!("{DB_FILE} is missing")));
    }
    for id in &manifest.repositories {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!("repository id {id:?} is not hex")));
        }
        if !backup
            .join("repos")
            .join(format!("{id}.git/HEAD"))
            .is_file()
        {
            return Err(bad(format!("repository {id} is missing")));
        }
    }
    for name in &manifest.key_files {
        if !KEY_FILES.contains(&name.as_str()) || !backup.join(name).is_file() {
            return Err(bad(format!("key file {name:?} is unknown or missing")));
        }
    }
    Ok(manifest)
}

/// Lays a backup out as a data directory at `data_dir`, which must be empty or absent.
/// Offline: the node must not run on `data_dir`. Refs are written when the node (or the
/// caller) first opens the directory.
pub fn restore(backup: &Path, data_dir: &Path) -> Result<Manifest, BackupError> {
    let manifest = read_manifest(backup)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(io_error(data_dir))?;
    ensure_empty(data_dir)?;
    let never = || false;
    for id in &manifest.repositories {
        let name = format!("{id}.git");
        copy_tree(
            &backup.join("repos").join(&name),
            &data_dir.join("repos").join(&name),
            &never,
        )?;
    }
    make_dir(&data_dir.join("repos"))?;
    sync_dir(&data_dir.join("repos"))?;
    for name in &manifest.key_files {
        copy_file(&backup.join(name), &data_dir.join(name), &never)?;
    }
    // The database last: a directory whose restore was interrupted has no database,
    // so a node started on it by mistake holds no half-restored state.
    copy_file(&backup.join(DB_FILE), &data_dir.join(DB_FILE), &never)?;
    sync_dir(data_dir)?;
    Ok(manifest)
}

/// Copies a directory tree (regular files and directories), fsyncing as it goes.
fn copy_tree(from: &Path, to: &Path, stop: &dyn Fn() -> bool) -> Result<(), BackupError> {
    make_dir(to)?;
    for entry in fs::read_dir(from).map_err(io_error(from))? {
        let entry = entry.map_err(io_error(from))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_error(&path))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&path, &target, stop)?;
        } else if kind.is_file() {
            copy_file(&path, &target, stop)?;
        }
    }
    sync_dir(to)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use redb::{ReadableDatabase as _, ReadableTableMetadata as _};

    use super::*;
    use crate::metrics::StorageMetrics;
    use crate::testing::{git, git_retrying};

    fn open_store(dir: &Path) -> (Store, crate::WriterHandle) {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(StorageMetrics::register(&mut registry));
        fs::create_dir_all(dir).unwrap();
        Store::open(dir, metrics).unwrap()
    }

    /// One entry in every table, keyed by `tag`, and `tag` as a live repository.
    async fn fill(store: &Store, tag: u8) {
        store
            .write("test", move |txn| {
                let key = [tag; 32];
                let name = format!("k{tag}");
                txn.open_table(schema::META)?
                    .insert(name.as_str(), [tag].as_slice())?;
                txn.open_table(schema::OPS)?
                    .insert(key.as_slice(), [tag; 3].as_slice())?;
                txn.open_multimap_table(schema::REPO_OPS)?
                    .insert(key.as_slice(), [tag; 32].as_slice())?;
                txn.open_multimap_table(schema::REPO_OPS)?
                    .insert(key.as_slice(), [tag ^ 0xff; 32].as_slice())?;
                txn.open_table(schema::REPO_NAMES)?
                    .insert(format!("o/r{tag}").as_str(), key.as_slice())?;
                txn.open_table(schema::USERS)?
                    .insert(name.as_str(), b"{}".as_slice())?;
                txn.open_table(schema::USER_KEYS)?
                    .insert(key.as_slice(), name.as_str())?;
                txn.open_table(schema::TOKENS)?
                    .insert(key.as_slice(), b"{}".as_slice())?;
                txn.open_table(schema::ORGS)?
                    .insert(name.as_str(), b"{}".as_slice())?;
                txn.open_table(schema::ORG_MEMBERS)?
                    .insert(name.as_str(), b"\"admin\"".as_slice())?;
                txn.open_table(schema::REJECTED)?
                    .insert(key.as_slice(), b"{}".as_slice())?;
                txn.open_table(schema::DISPLACED_USERS)?
                    .insert(key.as_slice(), b"{}".as_slice())?;
                Ok(())
            })
            .await
            .unwrap();
    }

    /// A bare repository for `[tag; 32]` with one commit pushed by real git; returns
    /// the commit id.
    fn repo_with_commit(dir: &Path, repos: &GitRepos, tag: u8, message: &str) -> String {
        let id = hex::encode([tag; 32]);
        repos.create(&id, "refs/heads/main").unwrap();
        let work = dir.join(format!("work-{tag}"));
        if !work.exists() {
            fs::create_dir(&work).unwrap();
            git(&work, &["init", "-q", "-b", "main"]);
        }
        fs::write(work.join("file.txt"), message).unwrap();
        git(&work, &["add", "-A"]);
        git(
            &work,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "-m",
                message,
            ],
        );
        let path = repos.path(&id);
        git(&work, &["push", "-q", path.to_str().unwrap(), "main"]);
        git(&work, &["rev-parse", "HEAD"])
    }

    #[tokio::test]
    async fn the_backup_holds_the_snapshot_and_not_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (store, _writer) = open_store(&data);
        let repos = GitRepos::open(&data).unwrap();
        fill(&store, 1).await;
        fill(&store, 2).await;
        let commit = repo_with_commit(dir.path(), &repos, 1, "one");
        repo_with_commit(dir.path(), &repos, 2, "two");
        fs::write(data.join("node.key"), "k").unwrap();

        let snapshot = Snapshot::begin(&store).unwrap();
        assert_eq!(snapshot.repositories(), 2);
        // Written after the snapshot: neither the rows nor the new repository may be in
        // the backup; the new objects of an old repository may (they are unreferenced).
        fill(&store, 3).await;
        repo_with_commit(dir.path(), &repos, 3, "three");

        let target = dir.path().join("backup");
        prepare_target(&target, &data).unwrap();
        let manifest = snapshot.write(&data, &repos, &target, &|| false).unwrap();
        assert_eq!(manifest.format, FORMAT_VERSION);
        assert_eq!(
            manifest.repositories,
            vec![hex::encode([1u8; 32]), hex::encode([2u8; 32])]
        );
        assert_eq!(manifest.key_files, vec!["node.key".to_string()]);
        // Every table, at its snapshot size (meta also holds the schema version).
        let expected: BTreeMap<String, u64> = [
            ("meta", 3),
            ("ops", 2),
            ("repo_ops", 4),
            ("repo_names", 2),
            ("users", 2),
            ("user_keys", 2),
            ("tokens", 2),
            ("orgs", 2),
            ("org_members", 2),
            ("rejected", 2),
            ("displaced_users", 2),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(manifest.tables, expected);
        assert_eq!(read_manifest(&target).unwrap(), manifest);

        // The copy is a real database with the same rows.
        {
            let db = Database::builder().create(target.join(DB_FILE)).unwrap();
            let read = db.begin_read().unwrap();
            let ops = read.open_table(schema::OPS).unwrap();
            assert_eq!(
                ops.get([1u8; 32].as_slice()).unwrap().unwrap().value(),
                [1; 3]
            );
            assert!(ops.get([3u8; 32].as_slice()).unwrap().is_none());
            let names = read.open_table(schema::REPO_NAMES).unwrap();
            assert!(names.get("o/r3").unwrap().is_none());
            let keys = read.open_table(schema::USER_KEYS).unwrap();
            assert_eq!(
                keys.get([2u8; 32].as_slice()).unwrap().unwrap().value(),
                "k2"
            );
            let members = read.open_multimap_table(schema::REPO_OPS).unwrap();
            assert_eq!(members.get([1u8; 32].as_slice()).unwrap().count(), 2);
        }

        // The repository copy is a bare repository with every object and no refs.
        let copy = target
            .join("repos")
            .join(format!("{}.git", hex::encode([1u8; 32])));
        assert_eq!(git(&copy, &["rev-parse", "--is-bare-repository"]), "true");
        assert_eq!(git(&copy, &["symbolic-ref", "HEAD"]), "refs/heads/main");
        assert_eq!(git(&copy, &["for-each-ref"]), "");
        git(&copy, &["cat-file", "-e", &format!("{commit}^{{tree}}")]);
        git(&copy, &["update-ref", "refs/heads/main", &commit]);
        git(&copy, &["fsck", "--full", "--no-dangling"]);
        assert!(
            !target
                .join("repos")
                .join(format!("{}.git", hex::encode([3u8; 32])))
                .exists()
        );

        // Restore lays it out as a data directory, secrets private.
        let restored = dir.path().join("restored");
        let again = restore(&target, &restored).unwrap();
        assert_eq!(again, manifest);
        assert!(restored.join(DB_FILE).is_file());
        assert!(
            restored
                .join("repos")
                .join(format!("{}.git/HEAD", hex::encode([2u8; 32])))
                .is_file()
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(restored.join("node.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (store, _w) = open_store(&restored);
        let read = store.read().unwrap();
        assert_eq!(read.open_table(schema::OPS).unwrap().len().unwrap(), 2);
    }

    #[tokio::test]
    async fn targets_must_be_absolute_empty_and_outside_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir(&data).unwrap();
        assert!(matches!(
            prepare_target(Path::new("relative/dir"), &data),
            Err(BackupError::NotAbsolute(_))
        ));
        assert!(matches!(
            prepare_target(&dir.path().join("a/../b"), &data),
            Err(BackupError::ParentComponent(_))
        ));
        assert!(matches!(
            prepare_target(&data.join("backups/one"), &data),
            Err(BackupError::InsideDataDir(_))
        ));
        assert!(!data.join("backups/one").exists());
        assert!(matches!(
            prepare_target(dir.path(), &data),
            Err(BackupError::InsideDataDir(_))
        ));
        let full = dir.path().join("full");
        fs::create_dir(&full).unwrap();
        fs::write(full.join("x"), "x").unwrap();
        assert!(matches!(
            prepare_target(&full, &data),
            Err(BackupError::NotEmpty(_))
        ));
        prepare_target(&dir.path().join("new/nested"), &data).unwrap();
        let empty = dir.path().join("empty");
        fs::create_dir_all(empty.join("lost+found")).unwrap();
        prepare_target(&empty, &data).unwrap();

        // Restore refuses a non-empty target and an incomplete backup.
        assert!(matches!(
            restore(&empty, &dir.path().join("r")),
            Err(BackupError::NoManifest(_))
        ));
        let (store, _w) = open_store(&data);
        let repos = GitRepos::open(&data).unwrap();
        Snapshot::begin(&store)
            .unwrap()
            .write(&data, &repos, &empty, &|| false)
            .unwrap();
        assert!(matches!(
            restore(&empty, &full),
            Err(BackupError::NotEmpty(_))
        ));
        restore(&empty, &dir.path().join("r")).unwrap();
    }

    #[tokio::test]
    async fn an_unknown_table_fails_the_backup_instead_of_being_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (store, _writer) = open_store(&data);
        store
            .write("test", |txn| {
                let t: TableDefinition<&str, u64> = TableDefinition::new("future_table");
                txn.open_table(t)?.insert("x", 1)?;
                Ok(())
            })
            .await
            .unwrap();
        let repos = GitRepos::open(&data).unwrap();
        let target = dir.path().join("backup");
        prepare_target(&target, &data).unwrap();
        let err = Snapshot::begin(&store)
            .unwrap()
            .write(&data, &repos, &target, &|| false)
            .unwrap_err();
        assert!(
            matches!(&err, BackupError::UnknownTable(t) if t == "future_table"),
            "{err}"
        );
        assert!(!target.join(MANIFEST_FILE).exists());
    }

    #[tokio::test]
    async fn a_live_repository_deleted_during_the_backup_fails_it_and_a_stop_cancels() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (store, _writer) = open_store(&data);
        let repos = GitRepos::open(&data).unwrap();
        fill(&store, 1).await;
        repo_with_commit(dir.path(), &repos, 1, "one");
        let snapshot = Snapshot::begin(&store).unwrap();
        repos.delete(&hex::encode([1u8; 32])).unwrap();
        let target = dir.path().join("b1");
        prepare_target(&target, &data).unwrap();
        let err = snapshot
            .write(&data, &repos, &target, &|| false)
            .unwrap_err();
        assert!(matches!(err, BackupError::RepositoryVanished(_)), "{err}");
        assert!(read_manifest(&target).is_err());

        let stopped = AtomicBool::new(false);
        repo_with_commit(dir.path(), &repos, 1, "again");
        let target = dir.path().join("b2");
        prepare_target(&target, &data).unwrap();
        let snapshot = Snapshot::begin(&store).unwrap();
        let stop = || {
            // Let the database through, stop at the first repository file.
            let was = stopped.load(Ordering::SeqCst);
            stopped.store(true, Ordering::SeqCst);
            was
        };
        let err = snapshot.write(&data, &repos, &target, &stop).unwrap_err();
        assert!(matches!(err, BackupError::Cancelled), "{err}");
        assert!(matches!(
            read_manifest(&target),
            Err(BackupError::NoManifest(_))
        ));
    }

    /// The race the relisting exists for, made deterministic: a repack replaces every
    /// pack right after they were listed (inside the first stop check, once the first
    /// pack is open). The copy must end up with the new pack.
    #[test]
    fn packs_replaced_while_copied_are_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let repos = GitRepos::open(&data).unwrap();
        let id = hex::encode([9u8; 32]);
        repos.create(&id, "refs/heads/main").unwrap();
        let path = repos.path(&id);
        // Keep every push as a pack, as the node's own receive path does.
        git(&path, &["config", "receive.unpackLimit", "1"]);
        let mut head = String::new();
        for round in 0..3 {
            head = repo_with_commit(dir.path(), &repos, 9, &format!("round {round}"));
        }
        let packs = path.join("objects/pack");
        assert!(list_packs(&packs).unwrap().len() >= 3);

        let copy = dir.path().join("copy.git");
        git(
            dir.path(),
            &["init", "-q", "--bare", copy.to_str().unwrap()],
        );
        let calls = std::cell::Cell::new(0);
        let repack_once = || {
            if calls.get() == 0 {
                git(&path, &["repack", "-a", "-d", "-q"]);
            }
            calls.set(calls.get() + 1);
            false
        };
        copy_packs(&packs, &copy.join("objects/pack"), &id, &repack_once).unwrap();
        assert!(calls.get() > 0);
        assert_eq!(list_packs(&packs).unwrap().len(), 1, "the repack ran");
        git(&copy, &["update-ref", "refs/heads/main", &head]);
        git(&copy, &["fsck", "--full", "--no-dangling"]);
    }

    /// Repacks replace packs and prune loose objects while backups copy them: every
    /// object present before a backup began is in that backup.
    #[tokio::test]
    async fn backups_during_repacks_hold_every_object_that_existed_before() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (store, _writer) = open_store(&data);
        let repos = GitRepos::open(&data).unwrap();
        fill(&store, 7).await;
        let id = hex::encode([7u8; 32]);
        let mut head = repo_with_commit(dir.path(), &repos, 7, "start");
        let path = repos.path(&id);
        let running = Arc::new(AtomicBool::new(true));
        let repacker = {
            let (running, path) = (running.clone(), path.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while running.load(Ordering::SeqCst) && n < 400 {
                    // -a -d: a new pack, then the old ones and the loose objects go.
                    git(&path, &["repack", "-a", "-d", "-q"]);
                    n += 1;
                }
                n
            })
        };
        for round in 0..12 {
            // A loose object and a new pack per round, so there is something to race.
            let work = dir.path().join("work-7");
            fs::write(work.join(format!("f{round}")), format!("{round}")).unwrap();
            git(&work, &["add", "-A"]);
            git(
                &work,
                &[
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "commit",
                    "-q",
                    "-m",
                    "r",
                ],
            );
            // The repack running meanwhile races git's own object writes (see
            // `git_retrying`).
            git_retrying(&work, &["push", "-q", path.to_str().unwrap(), "main"]);
            head = git(&work, &["rev-parse", "HEAD"]);
            let loose = work.join(format!("loose{round}"));
            fs::write(&loose, format!("loose object {round}")).unwrap();
            let blob = git_retrying(&path, &["hash-object", "-w", loose.to_str().unwrap()]);
            let target = dir.path().join(format!("b{round}"));
            prepare_target(&target, &data).unwrap();
            Snapshot::begin(&store)
                .unwrap()
                .write(&data, &repos, &target, &|| false)
                .unwrap();
            let copy = target.join("repos").join(format!("{id}.git"));
            git(&copy, &["update-ref", "refs/heads/main", &head]);
            git(
                &copy,
                &["fsck", "--full", "--no-dangling", "--connectivity-only"],
            );
            git(&copy, &["cat-file", "-e", &blob]);
        }
        running.store(false, Ordering::SeqCst);
        assert!(repacker.join().unwrap() > 0);
        let _ = head;
    }
}
