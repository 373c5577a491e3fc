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
            // Consistent with the operations copied in the same snapshot.
            "repo_summaries" => copy_table(read, &write, schema::REPO_SUMMARIES)?,
            // Checked against the operations on use; copied so a restore starts warm.
            "repo_checkpoints" => copy_table(read, &write, schema::REPO_CHECKPOINTS)?,
            // Written with the operations copied in the same snapshot.
            "thread_rows" => copy_table(read, &write, schema::THREAD_ROWS)?,
            "thread_rows_at" => copy_table(read, &write, schema::THREAD_ROWS_AT)?,
            "users" => copy_table(read, &write, schema::USERS)?,
            "user_keys" => copy_table(read, &write, schema::USER_KEYS)?,
            "tokens" => copy_table(read, &write, schema::TOKENS)?,
            "orgs" => copy_table(read, &write, schema::ORGS)?,
            "org_members" => copy_table(read, &write, schema::ORG_MEMBERS)?,
            "rejected" => copy_table(read, &write, schema::REJECTED)?,
            "displaced_users" => copy_table(read, &write, schema::DISPLACED_USERS)?,
            "ssh_keys" => copy_table(read, &write, schema::SSH_KEYS)?,
            "ssh_key_fingerprints" => copy_table(read, &write, schema::SSH_KEY_FINGERPRINTS)?,
            "ssh_key_owners" => copy_table(read, &write, schema::SSH_KEY_OWNERS)?,
            // Queued webhook events and the delivery log: a restored node sends what
            // was queued (at least once) and lists what was sent.
            "hook_outbox" => copy_table(read, &write, crate::hooks::HOOK_OUTBOX)?,
            "hook_jobs" => copy_table(read, &write, crate::hooks::HOOK_JOBS)?,
            "hook_due" => copy_table(read, &write, crate::hooks::HOOK_DUE)?,
            "hook_standby" => copy_table(read, &write, crate::hooks::HOOK_STANDBY)?,
            "hook_deliveries" => copy_table(read, &write, crate::hooks::HOOK_DELIVERIES)?,
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
mod tests;
