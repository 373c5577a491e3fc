//! Helpers shared by this crate's unit tests: the real `git` binary as the reference.

use std::path::Path;

/// Runs `git args` in `dir`, asserts success and returns its trimmed stdout.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs `git args` in `dir` up to five times until it succeeds and returns its trimmed
/// stdout. For writes racing a concurrent `git repack -d`, which may remove an empty
/// `objects/xx` directory between git creating it and writing a file there (git's own
/// race, seen under load): the test is about the backup, not about that race.
pub(crate) fn git_retrying(dir: &Path, args: &[&str]) -> String {
    let mut last = String::new();
    for _ in 0..5 {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        if out.status.success() {
            return String::from_utf8(out.stdout).unwrap().trim().to_string();
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
    }
    panic!("git {args:?} kept failing: {last}");
}

/// Opens the store and repositories of a data directory, with their own metrics.
pub(crate) fn open_repos(
    dir: &Path,
) -> (
    crate::Repositories,
    crate::WriterHandle,
    std::sync::Arc<crate::StorageMetrics>,
) {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = std::sync::Arc::new(crate::StorageMetrics::register(&mut registry));
    let (store, writer) = crate::Store::open(dir, metrics.clone()).unwrap();
    let repos = crate::Repositories::open_with(
        store,
        crate::GitRepos::open(dir).unwrap(),
        crate::NameBinding::Unchecked,
    )
    .unwrap();
    (repos, writer, metrics)
}

/// Writes a commit with an empty tree and a fixed signature: the same parents and
/// message give the same id in any repository.
pub(crate) fn commit(
    repo: &gix::Repository,
    parents: &[guts_core::ObjectId],
    message: &str,
) -> guts_core::ObjectId {
    let tree = repo
        .write_object(gix::objs::Tree::empty())
        .unwrap()
        .detach();
    let sig = gix::actor::Signature {
        name: "t".into(),
        email: "t@example.com".into(),
        time: gix::date::Time::new(1_700_000_000, 0),
    };
    let commit = gix::objs::Commit {
        tree,
        parents: parents
            .iter()
            .map(|p| gix::ObjectId::Sha1(*p.as_bytes()))
            .collect(),
        author: sig.clone(),
        committer: sig,
        encoding: None,
        message: message.into(),
        extra_headers: Vec::new(),
    };
    let id = repo.write_object(&commit).unwrap().detach();
    guts_core::ObjectId::from_bytes(id.as_bytes().try_into().unwrap())
}
