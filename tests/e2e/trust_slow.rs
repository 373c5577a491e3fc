//! Slow clients (audit finding): 600 anonymous `git-upload-pack` POSTs that trickle
//! their body used to hold every thread of the blocking pool (each request body was read
//! on a blocking thread, with an idle timeout that any byte resets), so `git ls-remote`
//! from anyone else took 25 s and REST reads timed out; git routes were outside the
//! request timeout and the rate limit.
//!
//! These tests hold real sockets open against the real binary: the node must keep
//! answering others quickly while slow bodies trickle, cut a body that stays below the
//! minimum transfer rate, refuse a single address more than its share of git requests,
//! and count anonymous git traffic against a per-address budget.

use std::io::Write as _;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::gitutil::*;
use crate::harness::*;

/// How many slow clients the flood holds open (within the default 1024 descriptors of
/// the test process).
const SLOW_CLIENTS: usize = 600;

/// What another client's request may take while the flood is on.
const FAST_ENOUGH: Duration = Duration::from_secs(1);

/// The head of an upload-pack POST promising a body far larger than what is sent.
fn slow_upload_head(repo: &str) -> String {
    format!(
        "POST /{repo}.git/git-upload-pack HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/x-git-upload-pack-request\r\n\
         Accept: application/x-git-upload-pack-result\r\nContent-Length: 1000000"
    )
}

/// A node with `alice/pub`, public, holding one commit on `main`.
fn node_with_repo(options: NodeOptions) -> (TestNode, String) {
    let node = TestNode::start_with(options);
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "pub", false);
    let tmp = tempfile::tempdir().unwrap();
    let git = Git::v(2);
    let work = git.init(tmp.path(), "work");
    git.commit(&work, &[("README", b"hello\n")], "first");
    git.ok(
        &work,
        &[
            "push",
            &auth_url(&node, "alice", &alice, "alice/pub"),
            "main",
        ],
    );
    (node, alice)
}

/// Sends one byte on every stream each `every` until stopped (a write error drops the
/// stream: the node cut it).
fn trickle(
    streams: Vec<TcpStream>,
    every: Duration,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<usize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut streams = streams;
        while !flag.load(Ordering::Relaxed) {
            streams.retain_mut(|s| s.write_all(b"0").is_ok());
            let until = Instant::now() + every;
            while Instant::now() < until && !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        streams.len()
    });
    (stop, thread)
}

/// Longest a measured `git ls-remote` may run before it is killed (so that a starved
/// node fails the test with numbers instead of hanging it).
const LS_REMOTE_LIMIT: Duration = Duration::from_secs(40);

/// What a measured `git ls-remote` did.
#[derive(Debug)]
struct LsRemote {
    /// `None` when it was killed at [`LS_REMOTE_LIMIT`].
    success: Option<bool>,
    output: String,
}

/// `git ls-remote` of `url`: what it did and how long it took. Output goes to a file
/// rather than a pipe, so a helper process left behind by a kill cannot hold us.
fn timed_ls_remote(url: &str) -> (LsRemote, Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let out_path = tmp.path().join("out.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let started = Instant::now();
    let mut child = Git::v(2)
        .cmd(tmp.path(), &["ls-remote", url])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let success = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.success());
        }
        if started.elapsed() > LS_REMOTE_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = started.elapsed();
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    (LsRemote { success, output }, took)
}

/// 600 trickling upload-pack bodies, then `git ls-remote` and a REST read by someone
/// else: both answer within a second. (Per-address limits are raised here so that every
/// slow request is admitted: the point is that an admitted slow body costs nothing.)
#[test]
fn six_hundred_trickling_fetches_do_not_slow_anyone_else() {
    let (node, _) = node_with_repo(
        NodeOptions::default()
            .env("GUTS_GIT_MAX_PER_IP", "10000")
            .env("GUTS_RATE_LIMIT_GIT_ANONYMOUS_PER_HOUR", "100000"),
    );
    let head = slow_upload_head("alice/pub");
    let mut held = Vec::with_capacity(SLOW_CLIENTS);
    for _ in 0..SLOW_CLIENTS {
        held.push(RawRequest::begin(node.api, &head, b"0032want "));
    }
    let streams: Vec<TcpStream> = held.iter().map(RawRequest::writer).collect();
    let (stop, thread) = trickle(streams, Duration::from_millis(500));
    // Let the node take every request into its handler.
    std::thread::sleep(Duration::from_secs(3));

    let (run, ls_remote) = timed_ls_remote(&anon_url(&node, "alice/pub"));
    let timed_get = |path: &str| {
        let started = Instant::now();
        let status = client()
            .get(node.url(path))
            .send()
            .map(|r| r.status().as_u16());
        (status.ok(), started.elapsed())
    };
    // A repository read (memory only) and a contents read (git objects, on the
    // blocking pool that the slow bodies used to take).
    let (rest, rest_time) = timed_get("/api/v3/repos/alice/pub");
    let (contents, contents_time) = timed_get("/api/v3/repos/alice/pub/contents/README");
    eprintln!(
        "with {SLOW_CLIENTS} trickling upload-pack bodies: git ls-remote {ls_remote:?} \
         (success: {:?}), GET /api/v3/repos/alice/pub {rest_time:?} ({rest:?}), \
         GET .../contents/README {contents_time:?} ({contents:?})",
        run.success
    );
    stop.store(true, Ordering::Relaxed);
    let still_open = thread.join().unwrap();
    eprintln!("{still_open} of {SLOW_CLIENTS} slow connections were still open");

    assert_eq!(run.success, Some(true), "{}", run.output);
    assert!(run.output.contains("refs/heads/main"), "{}", run.output);
    assert_eq!(rest, Some(200));
    assert_eq!(contents, Some(200));
    assert!(
        ls_remote < FAST_ENOUGH,
        "git ls-remote took {ls_remote:?} while slow clients trickled"
    );
    assert!(
        rest_time < FAST_ENOUGH,
        "the REST read took {rest_time:?} while slow clients trickled"
    );
    assert!(
        contents_time < FAST_ENOUGH,
        "the contents read took {contents_time:?} while slow clients trickled"
    );
    drop(held);
}

/// A body trickling below `GUTS_GIT_MIN_TRANSFER_RATE` is cut once the rate window
/// (2 s here) has passed, with a message saying why.
#[test]
fn a_trickling_body_is_cut_after_the_rate_window() {
    let (node, _) = node_with_repo(
        NodeOptions::default()
            .env("GUTS_GIT_MIN_TRANSFER_RATE", "1024")
            .env("GUTS_GIT_MIN_RATE_WINDOW", "2"),
    );
    let started = Instant::now();
    let request = RawRequest::begin(node.api, &slow_upload_head("alice/pub"), b"0032want ");
    let (stop, thread) = trickle(vec![request.writer()], Duration::from_millis(200));
    let response = request.response();
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
    let body = String::from_utf8_lossy(&response.body).into_owned();
    eprintln!(
        "trickling body answered {} after {took:?}: {body}",
        response.status
    );
    assert_eq!(response.status, 408, "{body}");
    assert!(body.contains("minimum transfer rate"), "{body}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "cut after {took:?}, expected about 2 s"
    );
}

/// A body that keeps above the minimum rate is still ended at the whole-request
/// deadline (`GUTS_GIT_REQUEST_DEADLINE`, 2 s here).
#[test]
fn a_git_request_is_ended_at_its_deadline() {
    let (node, _) = node_with_repo(
        NodeOptions::default()
            .env("GUTS_GIT_MIN_TRANSFER_RATE", "1")
            .env("GUTS_GIT_MIN_RATE_WINDOW", "1")
            .env("GUTS_GIT_REQUEST_DEADLINE", "2"),
    );
    let started = Instant::now();
    let request = RawRequest::begin(node.api, &slow_upload_head("alice/pub"), b"0032want ");
    // Ten bytes a second: above the rate, below the promised length for a long time.
    let (stop, thread) = trickle(vec![request.writer()], Duration::from_millis(100));
    let response = request.response();
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
    let body = String::from_utf8_lossy(&response.body).into_owned();
    eprintln!(
        "request past its deadline answered {} after {took:?}: {body}",
        response.status
    );
    assert_eq!(response.status, 408, "{body}");
    assert!(body.contains("deadline of 2 s"), "{body}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "ended after {took:?}, expected about 2 s"
    );
}

/// A push trickling its commands and pack below the rate is cut the same way; the
/// pusher reads why in receive-pack's report, and no ref moves.
#[test]
fn a_trickling_push_is_cut_after_the_rate_window() {
    let (node, alice) = node_with_repo(
        NodeOptions::default()
            .env("GUTS_GIT_MIN_TRANSFER_RATE", "1024")
            .env("GUTS_GIT_MIN_RATE_WINDOW", "2"),
    );
    let before = Git::v(2).remote_refs(&anon_url(&node, "alice/pub"));
    let head = format!(
        "POST /alice/pub.git/git-receive-pack HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: token {alice}\r\n\
         Content-Type: application/x-git-receive-pack-request\r\n\
         Accept: application/x-git-receive-pack-result\r\nContent-Length: 1000000"
    );
    let started = Instant::now();
    let request = RawRequest::begin(node.api, &head, b"0094");
    let (stop, thread) = trickle(vec![request.writer()], Duration::from_millis(200));
    let response = request.response();
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
    let body = String::from_utf8_lossy(&response.body).into_owned();
    eprintln!(
        "trickling push answered {} after {took:?}: {body}",
        response.status
    );
    assert!(response.status < 500, "{body}");
    assert!(body.contains("minimum transfer rate"), "{body}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "cut after {took:?}, expected about 2 s"
    );
    assert_eq!(Git::v(2).remote_refs(&anon_url(&node, "alice/pub")), before);
}

/// One address may hold `GUTS_GIT_MAX_PER_IP` git requests at once: the next is
/// answered 429 with Retry-After and a message git prints, and the slots come back when
/// the slow requests go.
#[test]
fn one_address_cannot_hold_more_than_its_git_requests() {
    let (node, _) = node_with_repo(NodeOptions::default().env("GUTS_GIT_MAX_PER_IP", "3"));
    let head = slow_upload_head("alice/pub");
    let held: Vec<RawRequest> = (0..3)
        .map(|_| RawRequest::begin(node.api, &head, b"0032want "))
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    let r = client()
        .get(node.url("/alice/pub.git/info/refs?service=git-upload-pack"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    let text = r.text().unwrap();
    assert!(text.contains("Too many git requests in flight"), "{text}");

    let (run, _) = timed_ls_remote(&anon_url(&node, "alice/pub"));
    assert_eq!(run.success, Some(false), "{}", run.output);
    assert!(
        run.output.contains("Too many git requests in flight"),
        "{}",
        run.output
    );

    drop(held);
    eventually(Duration::from_secs(10), "the slots to come back", || {
        let (run, _) = timed_ls_remote(&anon_url(&node, "alice/pub"));
        (run.success == Some(true)).then_some(())
    });
}

/// Anonymous git requests spend a per-address budget of their own: over it, 429 with
/// Retry-After (git prints the message); a token has its own bucket, and the REST
/// budget is untouched.
#[test]
fn anonymous_git_traffic_is_rate_limited_per_address() {
    let (node, alice) =
        node_with_repo(NodeOptions::default().env("GUTS_RATE_LIMIT_GIT_ANONYMOUS_PER_HOUR", "8"));
    // The setup's push spent some of the address's budget already (git asks
    // anonymously first, and is challenged): spend the rest.
    let refs = node.url("/alice/pub.git/info/refs?service=git-upload-pack");
    let mut served = 0;
    let r = loop {
        let r = client().get(&refs).send().unwrap();
        if r.status() != 200 || served == 8 {
            break r;
        }
        served += 1;
    };
    assert!((1..8).contains(&served), "{served} served");
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let text = r.text().unwrap();
    assert!(text.contains("rate limit"), "{text}");

    let (run, _) = timed_ls_remote(&anon_url(&node, "alice/pub"));
    assert_eq!(run.success, Some(false), "{}", run.output);
    assert!(run.output.contains("rate limit"), "{}", run.output);

    let authed = client()
        .get(&refs)
        .basic_auth("alice", Some(&alice))
        .send()
        .unwrap();
    assert_eq!(authed.status(), 200, "a token has its own git budget");
    let rest = client()
        .get(node.url("/api/v3/repos/alice/pub"))
        .send()
        .unwrap();
    assert_eq!(rest.status(), 200, "REST has its own budget");
}
