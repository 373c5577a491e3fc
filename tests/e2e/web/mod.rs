//! The web interface (guts-web) end to end, against the contract of its pages (ids,
//! form fields, URLs): a real headless chromium driven by selenium
//! (tests/web/flow.py) signs in, creates a repository that stock git then pushes,
//! browses it, opens an issue and a pull request, and a second user approves what the
//! first merges, on one node and across two nodes of a cluster; hostile content
//! renders inert; and, over plain HTTP, CSRF protection, the failed-login limit,
//! sign-out revoking a session on every node, private repositories, security headers,
//! HTML error pages. Screenshots of every page the browser visits are kept under
//! `target/web-screenshots/<test>/`.
//!
//! The browser tools are installed by scripts/test.sh (Debian's `chromium` and
//! `chromium-driver`, PyPI's `selenium` in its venv); a test fails, never skips, when
//! they are missing.

mod flow;
mod http;
mod pages;
mod security;
mod xss;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::clients::python;
use crate::gitutil::workspace_root;
use crate::harness::{ADMIN_TOKEN, NodeOptions, TestNode, client, eventually};

/// How long replication between two nodes may take.
const CONVERGE: Duration = Duration::from_secs(60);
/// How long one browser scenario may run.
const SCENARIO: Duration = Duration::from_secs(100);
const CLUSTER_SECRET: &str = "web-tests-cluster-secret-0123456789abcdef";

pub(crate) const ALICE_PW: &str = "alice-web-password-1";
pub(crate) const BOB_PW: &str = "bob-web-password-22";

/// Creates an account with a password through the admin API; returns its token.
#[track_caller]
pub(crate) fn create_web_user(node: &TestNode, login: &str, password: &str) -> String {
    let r = client()
        .post(node.url("/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "login": login, "password": password, "site_admin": false }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
    let body: Value = r.json().unwrap();
    assert_eq!(body["login"], login, "{body}");
    body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {body}"))
        .to_string()
}

/// `A <── B` (B bootstraps from A), connected, with `alice` and `bob` (passwords
/// [`ALICE_PW`], [`BOB_PW`]) created on A and known to B; answers their tokens.
pub(crate) fn cluster() -> (TestNode, TestNode, String, String) {
    let options = NodeOptions::default()
        .env("GUTS_CLUSTER_SECRET", CLUSTER_SECRET)
        .env("GUTS_ANTI_ENTROPY_INTERVAL", "1");
    let a = TestNode::start_with(options.clone());
    let b = TestNode::start_with(options.env("GUTS_BOOTSTRAP_PEERS", &a.p2p_addr()));
    eventually(CONVERGE, "the two nodes to connect", || {
        (crate::harness::peer_count(&a) >= 1 && crate::harness::peer_count(&b) >= 1).then_some(())
    });
    let alice = create_web_user(&a, "alice", ALICE_PW);
    let bob = create_web_user(&a, "bob", BOB_PW);
    for token in [&alice, &bob] {
        eventually(CONVERGE, "the accounts to reach B", || {
            let r = client()
                .get(b.url("/api/v3/user"))
                .header("Authorization", format!("token {token}"))
                .send()
                .ok()?;
            (r.status() == 200).then_some(())
        });
    }
    (a, b, alice, bob)
}

// ---- The browser ----

/// The browser and its driver (`GUTS_CHROMIUM`, `GUTS_CHROMEDRIVER`, else Debian's
/// paths) and selenium in the test Python: a failure naming scripts/test.sh when one
/// is missing.
pub(crate) fn require_browser() {
    for (var, default, package) in [
        ("GUTS_CHROMIUM", "/usr/bin/chromium", "chromium"),
        (
            "GUTS_CHROMEDRIVER",
            "/usr/bin/chromedriver",
            "chromium-driver",
        ),
    ] {
        let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
        assert!(
            path.is_file(),
            "{} is missing: run scripts/test.sh (it installs Debian's {package}), or set {var}",
            path.display()
        );
    }
    let out = Command::new(python())
        .args(["-c", "import selenium"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
    assert!(
        out.status.success(),
        "selenium is missing from {}: run scripts/test.sh (it installs it)\n{}",
        python().display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `target/web-screenshots/<test>`, emptied.
fn screenshots(test: &str) -> PathBuf {
    let dir = workspace_root().join("target/web-screenshots").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running flow.py, killed on drop (a failing test leaves no browser behind).
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// What a scenario printed: its stdout lines.
pub(crate) struct Run {
    pub(crate) lines: Vec<String>,
}

impl Run {
    /// The JSON of its `RESULT` line.
    #[track_caller]
    pub(crate) fn result(&self) -> Value {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix("RESULT "))
            .map(|r| serde_json::from_str(r).unwrap())
            .unwrap_or_else(|| panic!("no RESULT line:\n{}", self.lines.join("\n")))
    }
}

/// Runs scenario `scenario` of tests/web/flow.py with `args` (plus `--shots`),
/// answering each of its `NEED <what> <json>` lines with `need(what, json)`; fails
/// with everything it printed (and the nodes' log tails) unless it ends with
/// `WEB <scenario>: ok`.
pub(crate) fn run_browser(
    test: &str,
    scenario: &str,
    args: &[String],
    nodes: &[&TestNode],
    mut need: impl FnMut(&str, &Value) -> Value,
) -> Run {
    require_browser();
    let shots = screenshots(test);
    let work = tempfile::tempdir().unwrap();
    let stderr_path = work.path().join("stderr");
    let mut child = Command::new(python())
        .arg(workspace_root().join("tests/web/flow.py"))
        .arg(scenario)
        .args(args)
        .arg("--shots")
        .arg(&shots)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
    let stdout = child.stdout.take().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut script = Script(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let report = |lines: &[String], why: &str| {
        let logs: Vec<String> = nodes
            .iter()
            .map(|n| {
                let logs = n.logs();
                let tail: Vec<&str> = logs.lines().rev().take(20).collect();
                format!(
                    "--- node {} log tail ---\n{}",
                    n.api,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect();
        format!(
            "web scenario `{scenario}` {why}\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}\nscreenshots: {}",
            lines.join("\n"),
            std::fs::read_to_string(&stderr_path).unwrap_or_default(),
            logs.join("\n"),
            shots.display()
        )
    };
    let deadline = Instant::now() + SCENARIO;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                println!("{line}");
                if let Some(ask) = line.strip_prefix("NEED ") {
                    let (what, payload) = ask.split_once(' ').unwrap_or((ask, "null"));
                    let payload: Value = serde_json::from_str(payload).unwrap();
                    let answer = need(what, &payload);
                    writeln!(stdin, "{answer}").unwrap();
                    stdin.flush().unwrap();
                }
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!(
                    "{}",
                    report(&lines, &format!("did not finish in {SCENARIO:?}"))
                )
            }
        }
    }
    let status = script.0.wait().unwrap();
    assert!(
        status.success(),
        "{}",
        report(&lines, &format!("failed ({status})"))
    );
    assert!(
        lines.iter().any(|l| l == &format!("WEB {scenario}: ok")),
        "{}",
        report(&lines, "did not say it finished")
    );
    let shot_count = std::fs::read_dir(&shots).unwrap().count();
    assert!(shot_count > 0, "no screenshot in {}", shots.display());
    Run { lines }
}

/// `--alice alice:… --bob bob:…` (and `--url`).
pub(crate) fn user_args(url: &str) -> Vec<String> {
    vec![
        "--url".into(),
        url.into(),
        "--alice".into(),
        format!("alice:{ALICE_PW}"),
        "--bob".into(),
        format!("bob:{BOB_PW}"),
    ]
}
