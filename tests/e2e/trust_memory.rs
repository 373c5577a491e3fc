//! Memory bombs (audit finding): requests and pushes that are small on the wire but
//! used to cost the node gigabytes. A commit adding a 99 MiB file of newlines is about
//! 100 KB pushed; showing it (`GET …/commits/{sha}`, `…/compare/{base}...{head}`) used
//! to inflate the blob and split it into 104 million lines (1.9 GB a request). A blob of
//! 900 MiB of zeros is about 1 MB pushed; verifying it used to inflate all of it.
//!
//! Each test samples the node's resident set (`VmRSS` in `/proc/<pid>/status`) every
//! 20 ms while the bomb goes off and asserts the growth stays under 256 MB, and checks
//! what the client sees: GitHub's shapes without the patch, or git's refusal naming the
//! limit with no ref moved.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::gitutil::*;
use crate::harness::*;

const MIB: u64 = 1024 * 1024;

/// The most a bomb may grow the node's resident set by.
const MAX_GROWTH: u64 = 256 * MIB;

/// A process's resident set in bytes; `None` once it has exited.
fn rss(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())?;
    Some(kib * 1024)
}

/// Samples a process's resident set every 20 ms until stopped.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
    baseline: u64,
}

impl RssSampler {
    fn start(pid: i32) -> RssSampler {
        let baseline = rss(pid).expect("the node is running");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = baseline;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak.max(rss(pid).unwrap_or(0))
        });
        RssSampler {
            stop,
            thread,
            baseline,
        }
    }

    /// (baseline, peak) in bytes.
    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        (self.baseline, self.thread.join().unwrap())
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// Asserts the growth from baseline to peak is under [`MAX_GROWTH`], and reports it.
fn assert_bounded(what: &str, (baseline, peak): (u64, u64)) {
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "{what}: VmRSS {} before, peak {}, growth {}",
        mib(baseline),
        mib(peak),
        mib(growth)
    );
    assert!(
        growth < MAX_GROWTH,
        "{what}: the node grew by {} (from {} to {}), over {}",
        mib(growth),
        mib(baseline),
        mib(peak),
        mib(MAX_GROWTH)
    );
}

/// The entry of `files` for `path` in a commit or comparison.
fn file_entry<'a>(body: &'a Value, path: &str) -> &'a Value {
    body["files"]
        .as_array()
        .and_then(|files| files.iter().find(|f| f["filename"] == path))
        .unwrap_or_else(|| panic!("no {path} in {body}"))
}

/// An anonymous GET of `path`: 200 with a JSON body, or what went wrong.
fn try_get_json(node: &TestNode, path: &str) -> Result<Value, String> {
    let response = client()
        .get(node.url(path))
        .send()
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status();
    let text = response.text().map_err(|e| format!("GET {path}: {e}"))?;
    if status != 200 {
        return Err(format!("GET {path}: {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("GET {path}: {e}: {text}"))
}

fn get_json(node: &TestNode, path: &str) -> Value {
    try_get_json(node, path).unwrap_or_else(|e| panic!("{e}"))
}

/// A commit adding a 99 MiB file of newlines, which git compresses to about 100 KB,
/// and editing a small file. Four anonymous requests for the commit and one for a
/// comparison at once: each is a valid GitHub commit or comparison whose big file is
/// listed without `patch` (and the small file with its patch), and the node grows by
/// less than 256 MB.
#[test]
fn a_huge_file_of_newlines_is_shown_without_its_patch_in_bounded_memory() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "newlines", false);
    let tmp = tempfile::tempdir().unwrap();
    let git = Git::v(2);
    let work = git.init(tmp.path(), "work");
    let base = git.commit(&work, &[("small.txt", b"one\n")], "base");
    let big = vec![b'\n'; 99 * MIB as usize];
    let head = git.commit(
        &work,
        &[("newlines.txt", &big), ("small.txt", b"one\ntwo\n")],
        "a 99 MiB file of newlines",
    );
    drop(big);
    let url = auth_url(&node, "alice", &alice, "alice/newlines");
    git.ok(&work, &["push", &url, "HEAD:refs/heads/main"]);
    // The work tree's copy is not needed any more.
    std::fs::remove_file(work.join("newlines.txt")).unwrap();

    let commit_path = format!("/api/v3/repos/alice/newlines/commits/{head}");
    let compare_path = format!("/api/v3/repos/alice/newlines/compare/{base}...{head}");
    // Warm up what any request sets up once (pools, caches of the repository list).
    get_json(&node, "/api/v3/repos/alice/newlines");

    let sampler = RssSampler::start(node.pid().as_raw());
    let node = Arc::new(node);
    let requests: Vec<JoinHandle<Result<(String, Value), String>>> = (0..5)
        .map(|i| {
            let node = node.clone();
            let path = if i < 4 {
                commit_path.clone()
            } else {
                compare_path.clone()
            };
            std::thread::spawn(move || try_get_json(&node, &path).map(|body| (path, body)))
        })
        .collect();
    let answers: Vec<Result<(String, Value), String>> =
        requests.into_iter().map(|t| t.join().unwrap()).collect();
    // Memory first: a node that chokes on the bomb fails here, with the figures.
    assert_bounded(
        "4 commits and a compare of a 99 MiB file of newlines",
        sampler.finish(),
    );
    let bodies: Vec<(String, Value)> = answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|e| panic!("{e}")))
        .collect();

    for (path, body) in &bodies {
        let newlines = file_entry(body, "newlines.txt");
        assert!(
            newlines.get("patch").is_none(),
            "{path}: a file over the diff limit has no patch: {newlines}"
        );
        assert_eq!(newlines["status"], "added", "{path}");
        for key in ["additions", "deletions", "changes"] {
            assert!(newlines[key].is_u64(), "{path}: {key} in {newlines}");
        }
        assert!(newlines["sha"].is_string() && newlines["blob_url"].is_string());
        let small = file_entry(body, "small.txt");
        assert_eq!(
            small["patch"], "@@ -1 +1,2 @@\n one\n+two",
            "{path}: small files keep their patch"
        );
        assert_eq!(
            (&small["additions"], &small["deletions"]),
            (&1.into(), &0.into())
        );
    }
    let (_, commit) = &bodies[0];
    assert_eq!(commit["sha"], head);
    assert_eq!(commit["parents"][0]["sha"], base);
    assert!(commit["stats"]["total"].is_u64());
    let (_, compare) = &bodies[4];
    assert_eq!(compare["status"], "ahead");
    assert_eq!(compare["ahead_by"], 1);
    assert_eq!(compare["commits"][0]["sha"], head);

    // The blob itself is refused by the blob API from its header (it is larger than a
    // request may hold), and the contents API describes it without its bytes.
    let blob = file_entry(&bodies[0].1, "newlines.txt")["sha"]
        .as_str()
        .unwrap()
        .to_string();
    let response = client()
        .get(node.url(&format!("/api/v3/repos/alice/newlines/git/blobs/{blob}")))
        .send()
        .unwrap();
    assert_eq!(response.status(), 403);
    let error: Value = response.json().unwrap();
    assert_eq!(error["errors"][0]["code"], "too_large", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("32 MiB"),
        "{error}"
    );
    let contents = get_json(&node, "/api/v3/repos/alice/newlines/contents/newlines.txt");
    assert_eq!(
        (
            &contents["encoding"],
            &contents["content"],
            &contents["size"]
        ),
        (&"none".into(), &"".into(), &(99 * MIB).into())
    );
}

/// Writes a blob of `size` zero bytes into the repository at `work` without a file of
/// that size on disk (git compresses it to about 0.1% of its size); returns its id.
fn zero_blob(git: &Git, work: &Path, size: u64) -> String {
    let mut child = git
        .cmd(work, &["hash-object", "-w", "--stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![0u8; MIB as usize];
        for _ in 0..size / MIB {
            stdin.write_all(&chunk).unwrap();
        }
    });
    let run = finish(
        child,
        "git hash-object -w --stdin",
        Duration::from_secs(300),
    );
    writer.join().unwrap();
    assert!(run.status.success(), "{run}");
    run.stdout.trim().to_string()
}

/// A push of a commit holding a 900 MiB blob of zeros (about 1 MB on the wire), with
/// `GUTS_MAX_OBJECT_SIZE_MB` at its default: git reports the refusal naming the limit,
/// the branch stays where it was, nothing of the pack is kept, and the node grows by
/// less than 256 MB.
#[test]
fn a_push_of_a_huge_zero_blob_is_refused_in_bounded_memory() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "zeros", false);
    let tmp = tempfile::tempdir().unwrap();
    let git = Git::v(2);
    let work = git.init(tmp.path(), "work");
    let base = git.commit(&work, &[("readme.txt", b"zeros follow\n")], "base");
    let url = auth_url(&node, "alice", &alice, "alice/zeros");
    git.ok(&work, &["push", &url, "HEAD:refs/heads/main"]);

    let blob = zero_blob(&git, &work, 900 * MIB);
    git.ok(
        &work,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{blob},zeros.bin"),
        ],
    );
    git.ok(&work, &["commit", "--quiet", "-m", "900 MiB of zeros"]);
    let head = git.rev(&work, "HEAD");
    assert_ne!(head, base);

    let sampler = RssSampler::start(node.pid().as_raw());
    let run = git.run(&work, &["push", &url, "HEAD:refs/heads/main"]);
    assert_bounded("a push of a 900 MiB zero blob", sampler.finish());
    assert!(!run.status.success(), "the push must fail: {run}");
    assert!(
        run.stderr
            .contains("object in the pack exceeds the 100 MiB limit"),
        "git shows the limit: {run}"
    );
    assert_eq!(
        ref_of(&git, &anon_url(&node, "alice/zeros"), "refs/heads/main").as_deref(),
        Some(base.as_str()),
        "the branch did not move"
    );
    let leftovers: Vec<_> = std::fs::read_dir(node.data_dir.join("repos/.tmp"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "quarantines left: {leftovers:?}");
}

fn ref_of(git: &Git, url: &str, name: &str) -> Option<String> {
    git.ls_remote(url).remove(name)
}
