//! The stream servers (`guts_git::serve::{upload_pack_stream, receive_pack_stream}`)
//! driven by the real `git` binary, the way git over SSH drives them, without SSH.
//!
//! The transport is git's `ext::` remote helper: `ext::python3 proxy.py PORT %S PROTO
//! PATH` runs a tiny proxy that connects to a TCP listener of this test process, sends
//! one header line (`<service> <protocol> <path>`, what an SSH server learns from the
//! exec request and the `GIT_PROTOCOL` variable), then copies stdin to the socket and
//! the socket to stdout, half-closing as each side ends. `ext::` does not pass
//! `GIT_PROTOCOL` to its command (git's remote-ext.c sets no environment), so the
//! protocol rides in the URL: the client is configured with the same
//! `protocol.version`, and a v2 client speaks v2 once it reads `version 2`.
//!
//! ```text
//!   git (client) ──stdin/stdout── proxy.py ──TCP── test thread ── upload_pack_stream
//!                                                               └─ receive_pack_stream
//! ```
//!
//! Every git process runs under a deadline, so a server that waits for a client that
//! waits for it fails the test instead of hanging it.

#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use guts_core::{Keypair, RepoId};
use guts_git::pktline::{self, Packet, PktReader};
use guts_git::serve::{PlanCache, Protocol, ServeError, receive_pack_stream, upload_pack_stream};
use guts_storage::{
    GitRepos, RefCommand, RefRefusal, Repositories, StorageMetrics, Store, WriterHandle,
};

mod common;
use common::{T0, git, git_command, run};

const PROXY: &str = r#"
import os, socket, sys, threading
port, service, proto, path = sys.argv[1:5]
s = socket.create_connection(("127.0.0.1", int(port)))
s.sendall(f"{service} {proto} {path}\n".encode())
def upstream():
    while True:
        data = os.read(0, 65536)
        if not data:
            break
        s.sendall(data)
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
threading.Thread(target=upstream, daemon=True).start()
out = sys.stdout.buffer
while True:
    data = s.recv(65536)
    if not data:
        break
    out.write(data)
    out.flush()
"#;

// ---------------------------------------------------------------------------------
// Running git
// ---------------------------------------------------------------------------------

/// `git args` with no input, whatever its exit status.
fn try_git(dir: &Path, args: &[&str]) -> Output {
    run(git_command(dir, args), b"")
}

/// `n` commits on `branch` by fast-import, the first on top of `from` (or a root), at
/// times from `T0 + 10 * start`, each changing `<prefix>.txt` and one of 7 other files.
fn commits(dir: &Path, branch: &str, from: Option<&str>, start: i64, n: i64, prefix: &str) {
    let mut stream = String::new();
    for i in 0..n {
        let time = T0 + 10 * (start + i);
        let message = format!("{prefix} {i}\n");
        stream.push_str(&format!(
            "commit refs/heads/{branch}\ncommitter t <t@t> {time} +0000\ndata {}\n{message}\n",
            message.len()
        ));
        if i == 0
            && let Some(from) = from
        {
            stream.push_str(&format!("from {from}\n"));
        }
        for (path, content) in [
            (format!("{prefix}.txt"), format!("{prefix} {i}\n")),
            (
                format!("dir/{}.txt", i % 7),
                format!("{prefix} {i} {}\n", "x".repeat(64)),
            ),
        ] {
            stream.push_str(&format!(
                "M 100644 inline {path}\ndata {}\n{content}\n",
                content.len()
            ));
        }
        stream.push('\n');
    }
    let out = run(
        git_command(dir, &["fast-import", "--quiet"]),
        stream.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `(name, id)` of every ref and HEAD as `git show-ref --head -d` lists them (peeled
/// tags as `name^{}`).
fn show_refs(dir: &Path) -> BTreeSet<(String, String)> {
    let out = try_git(dir, &["show-ref", "--head", "-d"]);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, name)| (name.to_owned(), id.to_owned()))
        .collect()
}

/// `(name, id)` from `git ls-remote` output.
fn ls_remote_refs(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(id, name)| (name.to_owned(), id.to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------

/// A node's storage with one repository, `alice/r` (empty at first), served one
/// connection per git command on a port of 127.0.0.1.
struct Server {
    tmp: tempfile::TempDir,
    repos: Arc<Repositories>,
    id: RepoId,
    /// The owner's key, which signs the ref updates.
    key: Keypair,
    port: u16,
    proxy: PathBuf,
    /// Ref updates of this name are refused (as a protection rule would).
    refuse: Arc<Mutex<Option<String>>>,
    /// Each session's error, for the tests that expect one.
    errors: Arc<Mutex<Vec<String>>>,
    _writer: WriterHandle,
    _rt: tokio::runtime::Runtime,
}

impl Server {
    fn new() -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(StorageMetrics::register(&mut registry));
        let (store, writer) = rt.block_on(async { Store::open(&data, metrics) }).unwrap();
        let repos = Arc::new(
            Repositories::open_with(
                store,
                GitRepos::open(&data).unwrap(),
                guts_storage::NameBinding::Unchecked,
            )
            .unwrap(),
        );
        let key = Keypair::generate();
        let view = rt
            .block_on(repos.create(&key, "alice", "r", "", false, "main"))
            .unwrap();
        let proxy = tmp.path().join("proxy.py");
        std::fs::write(&proxy, PROXY).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = Server {
            tmp,
            repos,
            id: view.id,
            key: key.clone(),
            port,
            proxy,
            refuse: Arc::new(Mutex::new(None)),
            errors: Arc::new(Mutex::new(Vec::new())),
            _writer: writer,
            _rt: rt,
        };
        let session = Session {
            repos: server.repos.clone(),
            plans: Arc::new(PlanCache::new(4)),
            id: server.id,
            key,
            refuse: server.refuse.clone(),
            errors: server.errors.clone(),
            rt: server._rt.handle().clone(),
        };
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let session = session.clone();
                std::thread::spawn(move || session.serve(conn));
            }
        });
        server
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// The remote URL for protocol `version` (0 or 2).
    fn url(&self, version: u8) -> String {
        let proto = if version == 2 { "version=2" } else { "v0" };
        format!(
            "ext::python3 {} {} %S {proto} /alice/r.git",
            self.proxy.display(),
            self.port
        )
    }

    fn git_dir(&self) -> PathBuf {
        self.repos.git().path(&self.id.to_string())
    }

    fn refs(&self) -> BTreeSet<(String, String)> {
        show_refs(&self.git_dir())
    }

    fn git_ref(&self, name: &str) -> Option<String> {
        self.refs()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id)
    }
}

/// What serves one connection.
#[derive(Clone)]
struct Session {
    repos: Arc<Repositories>,
    plans: Arc<PlanCache>,
    id: RepoId,
    key: Keypair,
    refuse: Arc<Mutex<Option<String>>>,
    errors: Arc<Mutex<Vec<String>>>,
    rt: tokio::runtime::Handle,
}

impl Session {
    fn serve(self, conn: TcpStream) {
        // The header line, a byte at a time: nothing of git's stream may be read here.
        let mut header = Vec::new();
        let mut byte = [0u8; 1];
        let mut reader = conn.try_clone().unwrap();
        while reader.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            header.push(byte[0]);
        }
        let header = String::from_utf8(header).unwrap();
        let mut words = header.split(' ');
        let (service, proto) = (words.next().unwrap(), words.next().unwrap());
        let protocol = Protocol::from_header(Some(proto));
        let out = BufWriter::new(conn.try_clone().unwrap());
        let result: Result<(), ServeError> = match service {
            "git-upload-pack" => {
                let repo = self.repos.git().open_repo(&self.id.to_string()).unwrap();
                let mut out = out;
                upload_pack_stream(&repo, &self.plans, protocol, &mut reader, &mut out).map(|_| ())
            }
            "git-receive-pack" => {
                let (repos, id, key, refuse) = (
                    self.repos.clone(),
                    self.id,
                    self.key.clone(),
                    self.refuse.lock().unwrap().clone(),
                );
                let update = move |commands: Vec<RefCommand>, atomic| async move {
                    let refused = |c: &RefCommand| Some(&c.name) == refuse.as_ref();
                    let good: Vec<RefCommand> =
                        commands.iter().filter(|c| !refused(c)).cloned().collect();
                    let mut applied = match good.is_empty() {
                        true => Vec::new().into_iter(),
                        false => repos.update_refs(id, &key, good, atomic).await?.into_iter(),
                    };
                    Ok(commands
                        .iter()
                        .map(|c| match refused(c) {
                            true => Err(RefRefusal::Stale {
                                name: c.name.clone(),
                            }),
                            false => applied.next().unwrap_or(Ok(())),
                        })
                        .collect())
                };
                self.rt
                    .block_on(receive_pack_stream(
                        self.repos.clone(),
                        self.plans.clone(),
                        self.id,
                        update,
                        Box::new(reader),
                        Box::new(out),
                        64 << 20,
                    ))
                    .map(|_| ())
            }
            other => panic!("unknown service {other}"),
        };
        if let Err(e) = result {
            self.errors.lock().unwrap().push(e.to_string());
        }
        let _ = conn.shutdown(Shutdown::Both);
    }
}

// ---------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------

/// Pushes (new branch, tags, fast-forward, delete-only, nothing, a refused ref) and
/// clones, fetches and lists in both protocol versions, comparing what git sees with
/// the server's refs.
#[test]
fn push_clone_fetch_and_ls_remote_in_both_versions() {
    let server = Server::new();
    let work = server.dir("work");
    git(
        server.tmp.path(),
        &["init", "-q", "-b", "main", work.to_str().unwrap()],
    );
    commits(&work, "main", None, 0, 20, "main");
    git(&work, &["tag", "-a", "-m", "v1", "v1", "main~5"]);
    git(&work, &["tag", "light", "main~10"]);

    // A new branch into an empty repository, then the tags.
    git(&work, &["push", "-q", &server.url(0), "main"]);
    let main = git(&work, &["rev-parse", "main"]);
    assert_eq!(server.git_ref("refs/heads/main"), Some(main.clone()));
    git(&work, &["push", "-q", &server.url(2), "--tags"]);
    assert_eq!(
        server.git_ref("refs/tags/v1"),
        Some(git(&work, &["rev-parse", "v1"]))
    );
    assert_eq!(
        server.git_ref("refs/tags/v1^{}"),
        Some(git(&work, &["rev-parse", "main~5"]))
    );

    // ls-remote lists exactly the server's refs and HEAD, peeled tags included.
    for version in [0, 2] {
        let listed = git(
            &work,
            &[
                "-c",
                &format!("protocol.version={version}"),
                "ls-remote",
                &server.url(version),
            ],
        );
        assert_eq!(ls_remote_refs(&listed), server.refs(), "v{version}");
    }

    // Clones: every ref, a checkout of main, a complete object graph.
    for version in [0u8, 2] {
        let clone = server.dir(&format!("clone{version}"));
        git(
            server.tmp.path(),
            &[
                "-c",
                &format!("protocol.version={version}"),
                "clone",
                "-q",
                &server.url(version),
                clone.to_str().unwrap(),
            ],
        );
        assert_eq!(git(&clone, &["rev-parse", "HEAD"]), main);
        assert_eq!(git(&clone, &["symbolic-ref", "HEAD"]), "refs/heads/main");
        let remote: BTreeSet<(String, String)> = show_refs(&clone)
            .into_iter()
            .filter(|(n, _)| n.starts_with("refs/tags/") || n.starts_with("refs/remotes/"))
            .map(|(n, id)| (n.replace("refs/remotes/origin/", "refs/heads/"), id))
            .filter(|(n, _)| n != "refs/heads/HEAD")
            .collect();
        let served: BTreeSet<(String, String)> = server
            .refs()
            .into_iter()
            .filter(|(n, _)| n != "HEAD")
            .collect();
        assert_eq!(remote, served, "refs of the v{version} clone");
        git(&clone, &["fsck", "--no-dangling"]);
    }

    // A fast-forward, fetched by both clones.
    commits(&work, "main", Some(&main), 20, 3, "main");
    let main2 = git(&work, &["rev-parse", "main"]);
    git(&work, &["push", "-q", &server.url(0), "main"]);
    assert_eq!(server.git_ref("refs/heads/main"), Some(main2.clone()));
    for version in [0u8, 2] {
        let clone = server.dir(&format!("clone{version}"));
        git(
            &clone,
            &["-c", &format!("protocol.version={version}"), "fetch", "-q"],
        );
        assert_eq!(git(&clone, &["rev-parse", "origin/main"]), main2);
        git(&clone, &["fsck", "--no-dangling"]);
        // Up to date: v0 sends a bare flush for its want section, v2 only ls-refs.
        git(
            &clone,
            &["-c", &format!("protocol.version={version}"), "fetch", "-q"],
        );
        assert_eq!(git(&clone, &["rev-parse", "origin/main"]), main2);
    }

    // A branch, then its deletion: no pack, and the client waits for the report with
    // its side open.
    git(
        &work,
        &["push", "-q", &server.url(0), "main~2:refs/heads/feature"],
    );
    assert!(server.git_ref("refs/heads/feature").is_some());
    git(
        &work,
        &["push", "-q", &server.url(0), ":refs/heads/feature"],
    );
    assert_eq!(server.git_ref("refs/heads/feature"), None);

    // Nothing to push: the client sends a bare flush and hears nothing back.
    let out = try_git(&work, &["push", &server.url(0), "main"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Everything up-to-date"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A refused update is git's usual rejection; the other ref of the push goes in.
    *server.refuse.lock().unwrap() = Some("refs/heads/refused".to_owned());
    let out = try_git(
        &work,
        &[
            "push",
            &server.url(0),
            "main:refs/heads/refused",
            "main:refs/heads/accepted",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("[remote rejected] main -> refused"),
        "{stderr}"
    );
    assert_eq!(server.git_ref("refs/heads/refused"), None);
    assert_eq!(server.git_ref("refs/heads/accepted"), Some(main2));
    assert!(
        server.errors.lock().unwrap().is_empty(),
        "{:?}",
        server.errors
    );
}

/// A v0 fetch by a client with 150 commits the server lacks: several rounds of haves
/// on one stream (the server remembering what was common), ending in a pack of only
/// what is new.
#[test]
fn v0_fetch_negotiates_over_several_rounds() {
    let server = Server::new();
    let work = server.dir("work");
    git(
        server.tmp.path(),
        &["init", "-q", "-b", "main", work.to_str().unwrap()],
    );
    commits(&work, "main", None, 0, 30, "main");
    git(&work, &["push", "-q", &server.url(0), "main"]);
    let clone = server.dir("clone");
    git(
        server.tmp.path(),
        &[
            "-c",
            "protocol.version=0",
            "clone",
            "-q",
            &server.url(0),
            clone.to_str().unwrap(),
        ],
    );
    // The client's own branch, newer than anything on the server: its commits are the
    // first haves it sends, none of them known to the server.
    let base = git(&clone, &["rev-parse", "main"]);
    commits(&clone, "side", Some(&base), 1000, 150, "side");
    // Meanwhile the server's main moves on.
    let tip = git(&work, &["rev-parse", "main"]);
    commits(&work, "main", Some(&tip), 30, 5, "main");
    git(&work, &["push", "-q", &server.url(0), "main"]);
    let new_main = git(&work, &["rev-parse", "main"]);

    for version in [0u8, 2] {
        if version == 2 {
            // Once more, with v2's stateless fetch commands on one stream.
            commits(&work, "main", Some(&new_main), 40, 2, "more");
            git(&work, &["push", "-q", &server.url(0), "main"]);
        }
        let trace = server.dir(&format!("trace{version}"));
        let mut cmd = git_command(
            &clone,
            &[
                "-c",
                &format!("protocol.version={version}"),
                "fetch",
                "-q",
                &server.url(version),
                "+refs/heads/*:refs/remotes/origin/*",
            ],
        );
        cmd.env("GIT_TRACE_PACKET", &trace);
        let out = run(cmd, b"");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            git(&clone, &["rev-parse", "origin/main"]),
            git(&work, &["rev-parse", "main"])
        );
        git(&clone, &["fsck", "--no-dangling"]);
        let trace = std::fs::read_to_string(&trace).unwrap();
        let haves = trace.matches("> have ").count();
        assert!(haves > 100, "{haves} haves sent");
        if version == 0 {
            let naks = trace.matches("< NAK").count();
            assert!(naks >= 3, "{naks} rounds answered");
            assert!(trace.contains(" common"), "no ACK common");
            assert!(trace.contains(" ready"), "no ACK ready");
        }
    }
    assert!(
        server.errors.lock().unwrap().is_empty(),
        "{:?}",
        server.errors
    );
}

/// `--depth 1` clones in both versions, then `--deepen` and `--unshallow`.
#[test]
fn shallow_clone_deepen_and_unshallow() {
    let server = Server::new();
    let work = server.dir("work");
    git(
        server.tmp.path(),
        &["init", "-q", "-b", "main", work.to_str().unwrap()],
    );
    commits(&work, "main", None, 0, 12, "main");
    git(&work, &["push", "-q", &server.url(0), "main"]);
    let mut total = 12;
    for version in [0u8, 2] {
        let v = format!("protocol.version={version}");
        let clone = server.dir(&format!("shallow{version}"));
        git(
            server.tmp.path(),
            &[
                "-c",
                &v,
                "clone",
                "-q",
                "--depth",
                "1",
                &server.url(version),
                clone.to_str().unwrap(),
            ],
        );
        assert_eq!(git(&clone, &["rev-list", "--count", "HEAD"]), "1");
        assert!(clone.join(".git/shallow").exists());
        // New commits on the server, fetched by the shallow clone without deepening:
        // it sends its shallow lines only, and gets no shallow update.
        let tip = git(&work, &["rev-parse", "main"]);
        commits(&work, "main", Some(&tip), 100 + total, 2, "more");
        total += 2;
        git(&work, &["push", "-q", &server.url(0), "main"]);
        git(&clone, &["-c", &v, "fetch", "-q"]);
        assert_eq!(git(&clone, &["rev-list", "--count", "origin/main"]), "3");
        git(&clone, &["reset", "-q", "--hard", "origin/main"]);
        git(&clone, &["-c", &v, "fetch", "-q", "--deepen", "2"]);
        assert_eq!(git(&clone, &["rev-list", "--count", "HEAD"]), "5");
        git(&clone, &["fsck", "--no-dangling"]);
        git(&clone, &["-c", &v, "fetch", "-q", "--unshallow"]);
        assert_eq!(
            git(&clone, &["rev-list", "--count", "HEAD"]),
            total.to_string()
        );
        assert!(!clone.join(".git/shallow").exists());
        git(&clone, &["fsck", "--no-dangling"]);
    }
    assert!(
        server.errors.lock().unwrap().is_empty(),
        "{:?}",
        server.errors
    );
}

// ---------------------------------------------------------------------------------
// Hostile input, without git
// ---------------------------------------------------------------------------------

/// Runs upload-pack on `input`; returns the result and the packets written after the
/// advertisement (which ends at the first flush).
fn upload(
    server: &Server,
    protocol: Protocol,
    input: &[u8],
) -> (Result<(), ServeError>, Vec<String>) {
    let repo = server
        .repos
        .git()
        .open_repo(&server.id.to_string())
        .unwrap();
    let plans = PlanCache::new(0);
    let mut out = Vec::new();
    let mut input = input;
    let result = upload_pack_stream(&repo, &plans, protocol, &mut input, &mut out).map(|_| ());
    let mut packets = PktReader::new(&out);
    let mut lines = Vec::new();
    let mut advertised = false;
    while let Some(packet) = packets.next_packet().unwrap() {
        match packet {
            Packet::Flush if !advertised => advertised = true,
            _ if !advertised => {}
            Packet::Data(d) => lines.push(String::from_utf8_lossy(pktline::chomp(d)).into_owned()),
            other => lines.push(other.kind().to_owned()),
        }
    }
    (result, lines)
}

fn pkt(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    pktline::write_line(&mut out, text.as_bytes()).unwrap();
    out
}

#[test]
fn hostile_sessions_end_with_an_err_packet() {
    let server = Server::new();
    let work = server.dir("work");
    git(
        server.tmp.path(),
        &["init", "-q", "-b", "main", work.to_str().unwrap()],
    );
    commits(&work, "main", None, 0, 3, "main");
    git(&work, &["push", "-q", &server.url(0), "main"]);
    let main = git(&work, &["rev-parse", "main"]);
    let want = pkt(&format!("want {main} multi_ack_detailed side-band-64k"));

    // Nothing wanted (a bare flush, or the stream closed): nothing said after the
    // advertisement.
    for input in [&b"0000"[..], b""] {
        let (result, lines) = upload(&server, Protocol::V0, input);
        assert!(result.is_ok());
        assert!(lines.is_empty(), "{lines:?}");
    }
    let (result, lines) = upload(&server, Protocol::V2, b"0000");
    assert!(result.is_ok() && lines.is_empty(), "{lines:?}");

    // The stream ends inside the want section, or inside a round.
    let truncated = [want.clone(), b"0032want".to_vec()].concat();
    let (result, lines) = upload(&server, Protocol::V0, &truncated);
    assert!(matches!(result, Err(ServeError::Refused(_))), "{result:?}");
    assert!(
        lines.last().unwrap().starts_with("ERR upload-pack: "),
        "{lines:?}"
    );
    let mid_round = [want.clone(), b"0000".to_vec(), pkt(&format!("have {main}"))].concat();
    let (result, lines) = upload(&server, Protocol::V0, &mid_round);
    assert!(matches!(result, Err(ServeError::Refused(_))), "{result:?}");
    // The round was cut short: not answered, only the error.
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("ERR upload-pack: "), "{lines:?}");

    // A v2 request cut short.
    let (result, lines) = upload(&server, Protocol::V2, b"0014command=ls-refs\n");
    assert!(result.is_err());
    assert!(
        lines.last().unwrap().starts_with("ERR upload-pack: "),
        "{lines:?}"
    );

    // Rounds that never end: refused once the session's cap on messages is reached,
    // each round answered until then.
    let mut endless = [want.clone(), b"0000".to_vec()].concat();
    let unknown = pkt(&format!("have {}", "1".repeat(40)));
    for _ in 0..5000 {
        endless.extend_from_slice(&unknown);
        endless.extend_from_slice(b"0000");
    }
    let (result, lines) = upload(&server, Protocol::V0, &endless);
    assert!(matches!(result, Err(ServeError::Refused(_))), "{result:?}");
    assert_eq!(
        lines.iter().filter(|l| *l == "NAK").count() as u64,
        guts_git::section::MAX_SECTIONS - 1
    );
    assert!(
        lines.last().unwrap().contains("messages"),
        "{:?}",
        lines.last()
    );

    // An oversized packet header.
    let (result, lines) = upload(&server, Protocol::V0, b"fff1");
    assert!(result.is_err());
    assert!(lines.last().unwrap().starts_with("ERR "), "{lines:?}");
}

/// Reads `data`, then fails any further read: a client that has sent its push and
/// waits for the report with its side of the stream open.
struct OpenAfter(std::io::Cursor<Vec<u8>>);

impl Read for OpenAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(std::io::Error::other(
                "read past the push: the client is waiting",
            )),
            n => Ok(n),
        }
    }
}

/// A writer the test can read after the server dropped its box.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Pushes `commands` and `pack` to receive-pack on a stream that stays open after
/// them; returns the report's lines (after the advertisement).
fn push_open(server: &Server, commands: &[String], caps: &str, pack: &[u8]) -> Vec<String> {
    let mut input = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        let line = match i {
            0 => format!("{command}\0{caps}\n"),
            _ => format!("{command}\n"),
        };
        pktline::write_data(&mut input, line.as_bytes()).unwrap();
    }
    pktline::write_flush(&mut input).unwrap();
    input.extend_from_slice(pack);
    let out = Shared::default();
    let (repos, id) = (server.repos.clone(), server.id);
    let owner = server.key.clone();
    let result = server._rt.block_on(receive_pack_stream(
        server.repos.clone(),
        Arc::new(PlanCache::new(0)),
        server.id,
        move |commands, atomic| async move { repos.update_refs(id, &owner, commands, atomic).await },
        Box::new(OpenAfter(std::io::Cursor::new(input))),
        Box::new(out.clone()),
        64 << 20,
    ));
    result.unwrap();
    let bytes = out.0.lock().unwrap().clone();
    let mut packets = PktReader::new(&bytes);
    let mut flushes = 0;
    let mut lines = Vec::new();
    while let Some(packet) = packets.next_packet().unwrap() {
        match packet {
            Packet::Flush => flushes += 1,
            Packet::Data(d) if flushes > 0 => {
                lines.push(String::from_utf8_lossy(pktline::chomp(d)).into_owned())
            }
            _ => {}
        }
    }
    assert!(packets.is_at_end());
    lines
}

#[test]
fn receive_pack_answers_without_waiting_for_the_end_of_the_stream() {
    let server = Server::new();
    let work = server.dir("work");
    git(
        server.tmp.path(),
        &["init", "-q", "-b", "main", work.to_str().unwrap()],
    );
    commits(&work, "main", None, 0, 3, "main");
    git(&work, &["push", "-q", &server.url(0), "main"]);
    let old = git(&work, &["rev-parse", "main"]);
    commits(&work, "main", Some(&old), 3, 2, "main");
    let new = git(&work, &["rev-parse", "main"]);
    let pack = run(
        git_command(
            &work,
            &["pack-objects", "--stdout", "-q", "--revs", "--thin"],
        ),
        format!("{new}\n^{old}\n").as_bytes(),
    )
    .stdout;
    let zero = "0".repeat(40);

    // A pack, and the stream left open after it.
    let report = push_open(
        &server,
        &[format!("{zero} {new} refs/heads/x")],
        "report-status ofs-delta",
        &pack,
    );
    assert_eq!(report, ["unpack ok", "ok refs/heads/x"]);
    assert_eq!(server.git_ref("refs/heads/x"), Some(new.clone()));

    // A delete-only push: no pack at all.
    let report = push_open(
        &server,
        &[format!("{new} {zero} refs/heads/x")],
        "report-status delete-refs",
        b"",
    );
    assert_eq!(report, ["unpack ok", "ok refs/heads/x"]);
    assert_eq!(server.git_ref("refs/heads/x"), None);

    // A refused (corrupt) pack: reported, not drained from a stream that stays open.
    let mut bad = pack.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0xff;
    let report = push_open(
        &server,
        &[format!("{zero} {new} refs/heads/y")],
        "report-status",
        &bad,
    );
    assert!(report[0].starts_with("unpack "), "{report:?}");
    assert_ne!(report[0], "unpack ok");
    assert_eq!(server.git_ref("refs/heads/y"), None);
}
