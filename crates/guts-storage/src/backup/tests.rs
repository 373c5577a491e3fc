//! Tests of online backups and restore: the snapshot point, refused targets, tables
//! and repositories that change or vanish meanwhile, and repacks racing the copy.

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
            txn.open_table(schema::SSH_KEYS)?
                .insert(u64::from(tag), b"{}".as_slice())?;
            txn.open_table(schema::SSH_KEY_FINGERPRINTS)?
                .insert(key.as_slice(), ())?;
            txn.open_table(schema::SSH_KEY_OWNERS)?
                .insert(name.as_str(), ())?;
            txn.open_table(crate::hooks::HOOK_OUTBOX)?
                .insert(key.as_slice(), key.as_slice())?;
            txn.open_table(crate::hooks::HOOK_JOBS)?
                .insert(u64::from(tag), b"{}".as_slice())?;
            txn.open_table(crate::hooks::HOOK_DUE)?
                .insert([tag; 16].as_slice(), ())?;
            txn.open_table(crate::hooks::HOOK_STANDBY)?
                .insert(key.as_slice(), key.as_slice())?;
            txn.open_table(crate::hooks::HOOK_DELIVERIES)?
                .insert(u64::from(tag), b"{}".as_slice())?;
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
        // Written by the repository layer, which this test bypasses.
        ("repo_summaries", 0),
        ("repo_checkpoints", 0),
        ("thread_rows", 0),
        ("thread_rows_at", 0),
        ("users", 2),
        ("user_keys", 2),
        ("tokens", 2),
        ("orgs", 2),
        ("org_members", 2),
        ("rejected", 2),
        ("displaced_users", 2),
        ("ssh_keys", 2),
        ("ssh_key_fingerprints", 2),
        ("ssh_key_owners", 2),
        ("hook_outbox", 2),
        ("hook_jobs", 2),
        ("hook_due", 2),
        ("hook_standby", 2),
        ("hook_deliveries", 2),
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
