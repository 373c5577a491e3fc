//! Repository webhooks against real nodes and a real receiver (tests/webhooks/receiver.py,
//! an HTTP server on loopback that records every request): hooks are managed through
//! GitHub's REST shapes by repository admins only; the node that accepted an operation
//! delivers its event once across the cluster, signed with the hook's secret; a
//! failing receiver gets the same delivery (same `X-GitHub-Delivery`) again until it
//! answers 2xx, and every attempt is listed; events queued while the receiver is down
//! survive a kill -9 of the node; hook URLs on loopback, link-local (cloud metadata),
//! private or unspecified addresses are refused unless the operator allows their net;
//! and a CI acting on the `pull_request` event holds back the merge with its status.
//! Every payload received is checked against GitHub's published webhook descriptions
//! (tests/webhooks/validate_payloads.py, npm `@octokit/openapi-webhooks`).

mod bad_input;
mod events;
mod org;
mod takeover;
mod trace;

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::clients::python;
use crate::gitutil::{Git, add_collaborator, auth_url, create_repo, workspace_root};
use crate::harness::{NodeOptions, Signal, TestNode, api, create_user, eventually, peer_count};

/// How long a delivery may take to arrive (retries included) before a test fails.
const DELIVERY: Duration = Duration::from_secs(20);
/// How long replication between two nodes may take.
const CONVERGE: Duration = Duration::from_secs(60);
const SECRET: &str = "hook-secret-for-the-e2e-tests";
const CLUSTER_SECRET: &str = "webhooks-test-cluster-secret-0123456789ab";

// ---- The receiver ----

/// A running tests/webhooks/receiver.py. Stopped (SIGTERM, then SIGKILL) on drop.
#[derive(Debug)]
struct Receiver {
    child: Child,
    port: u16,
    record: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    /// A receiver on a free port that answers 500 to its first `fail_first` requests.
    fn start(fail_first: u32) -> Receiver {
        Self::start_on(0, fail_first)
    }

    /// A receiver on `port` (0: a free one).
    fn start_on(port: u16, fail_first: u32) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("deliveries.jsonl");
        let stderr = dir.path().join("receiver.stderr");
        let mut child = Command::new(python())
            .arg(workspace_root().join("tests/webhooks/receiver.py"))
            .arg("--record")
            .arg(&record)
            .args(["--secret", SECRET])
            .args(["--fail-first", &fail_first.to_string()])
            .args(["--port", &port.to_string()])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "the receiver did not start ({line:?}):\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            });
        Receiver {
            child,
            port,
            record,
            stderr,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Every request received so far, in order (a line being written is skipped).
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The requests carrying `X-GitHub-Event: event`.
    fn of(&self, event: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|d| d["headers"]["x-github-event"] == event)
            .collect()
    }

    /// Polls until `done` holds for the requests received; fails with what arrived.
    fn wait(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        self.wait_within(DELIVERY, what, done)
    }

    fn wait_within(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.requests();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {within:?} waiting for {what}; received:\n{}\nreceiver stderr:\n{}",
                summary(&got),
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(d: &Value) -> &str {
    d["headers"]["x-github-event"].as_str().unwrap_or("")
}

fn guid(d: &Value) -> &str {
    d["headers"]["x-github-delivery"].as_str().unwrap_or("")
}

/// The parsed payload (the receiver decodes JSON and GitHub's form encoding alike).
fn payload(d: &Value) -> &Value {
    &d["body_json"]
}

/// One line per request, for failure messages.
fn summary(requests: &[Value]) -> String {
    requests
        .iter()
        .map(|d| {
            format!(
                "  {} {} action={} answered={} signature_ok={}",
                event(d),
                guid(d),
                payload(d)["action"],
                d["status"],
                d["signature_ok"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- GitHub's published webhook descriptions ----

/// `GUTS_GITHUB_WEBHOOKS_OPENAPI`: npm `@octokit/openapi-webhooks`'
/// `generated/api.github.com.json`.
fn webhooks_description() -> PathBuf {
    let path = std::env::var_os("GUTS_GITHUB_WEBHOOKS_OPENAPI")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "GUTS_GITHUB_WEBHOOKS_OPENAPI is not set: point it at @octokit/openapi-webhooks' \
                 generated/api.github.com.json (scripts/test.sh installs it under target/npm)"
            )
        });
    assert!(
        path.is_file(),
        "GUTS_GITHUB_WEBHOOKS_OPENAPI names {}, which is not a file",
        path.display()
    );
    path
}

/// Every delivery in `record` satisfies GitHub's description of its webhook (payload
/// and headers, signature under `SECRET` included), after the validator proved on
/// known-bad deliveries that it would have said otherwise.
fn assert_payloads_conform(description: &Path, record: &Path) {
    let script = workspace_root().join("tests/webhooks/validate_payloads.py");
    let run = |extra: &[&OsStr]| {
        let out = Command::new(python())
            .arg(&script)
            .arg("--openapi")
            .arg(description)
            .args(extra)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = run(&[OsStr::new("--self-check")]);
    assert!(
        ok && text.contains("self-check ok"),
        "validator self-check:\n{text}"
    );
    let (ok, text) = run(&[
        OsStr::new("--secret"),
        OsStr::new(SECRET),
        record.as_os_str(),
    ]);
    assert!(
        ok,
        "deliveries departing from GitHub's descriptions:\n{text}"
    );
    println!("{text}");
}

// ---- Nodes, hooks and deliveries through the REST API ----

fn get(node: &TestNode, token: &str, path: &str) -> (u16, Value) {
    api(node, reqwest::Method::GET, token, path, Value::Null)
}

fn post(node: &TestNode, token: &str, path: &str, body: Value) -> (u16, Value) {
    api(node, reqwest::Method::POST, token, path, body)
}

fn patch(node: &TestNode, token: &str, path: &str, body: Value) -> (u16, Value) {
    api(node, reqwest::Method::PATCH, token, path, body)
}

fn put(node: &TestNode, token: &str, path: &str, body: Value) -> (u16, Value) {
    api(node, reqwest::Method::PUT, token, path, body)
}

/// A node that may deliver to the loopback receiver and retries fast.
fn deliverer() -> NodeOptions {
    NodeOptions::default()
        .env("GUTS_WEBHOOK_ALLOWED_NETS", "127.0.0.0/8")
        .env("GUTS_WEBHOOK_RETRY_BASE_MS", "100")
}

fn clustered(options: NodeOptions) -> NodeOptions {
    options
        .env("GUTS_CLUSTER_SECRET", CLUSTER_SECRET)
        .env("GUTS_ANTI_ENTROPY_INTERVAL", "1")
}

/// `A <── B` (B bootstraps from A), both started with `options`, connected, with
/// account `alice` (whose token is returned) known to both.
fn cluster(options: NodeOptions) -> (TestNode, TestNode, String) {
    let a = TestNode::start_with(clustered(options.clone()));
    let b = TestNode::start_with(clustered(options).env("GUTS_BOOTSTRAP_PEERS", &a.p2p_addr()));
    eventually(CONVERGE, "peers to connect", || {
        (peer_count(&a) >= 1 && peer_count(&b) >= 1).then_some(())
    });
    let alice = create_user(&a, "alice");
    eventually(CONVERGE, "the account to reach B", || {
        (get(&b, &alice, "/user").0 == 200).then_some(())
    });
    (a, b, alice)
}

/// Creates a `web` hook on `repo` for `events`, signed with `SECRET`, and checks
/// GitHub's answer: 201 with the hook object, the secret masked.
#[track_caller]
fn create_hook(node: &TestNode, token: &str, repo: &str, url: &str, events: &[&str]) -> Value {
    let (status, hook) = post(
        node,
        token,
        &format!("/repos/{repo}/hooks"),
        json!({
            "name": "web",
            "config": {"url": url, "content_type": "json", "secret": SECRET, "insecure_ssl": "0"},
            "events": events,
            "active": true,
        }),
    );
    assert_eq!(status, 201, "{hook}");
    let id = hook["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no id: {hook}"));
    assert_eq!(hook["name"], "web", "{hook}");
    assert_eq!(hook["active"], true, "{hook}");
    assert_eq!(hook["events"], json!(events), "{hook}");
    assert_eq!(hook["config"]["url"], url, "{hook}");
    assert_eq!(hook["config"]["content_type"], "json", "{hook}");
    assert_eq!(
        hook["config"]["secret"], "********",
        "the secret is never shown: {hook}"
    );
    let base = format!("/api/v3/repos/{repo}/hooks/{id}");
    for (field, suffix) in [
        ("url", ""),
        ("ping_url", "/pings"),
        ("test_url", "/tests"),
        ("deliveries_url", "/deliveries"),
    ] {
        let value = hook[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field}: {hook}"));
        assert!(
            value.ends_with(&format!("{base}{suffix}")),
            "{field}: {hook}"
        );
    }
    hook
}

fn hook_id(hook: &Value) -> u64 {
    hook["id"].as_u64().unwrap()
}

/// The hook's delivery items (every attempt is one), as the node that made them lists.
fn deliveries(node: &TestNode, token: &str, repo: &str, id: u64) -> Vec<Value> {
    let (status, list) = get(
        node,
        token,
        &format!("/repos/{repo}/hooks/{id}/deliveries?per_page=100"),
    );
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .clone()
}

/// Pushes `main` with a README, then checks out `feature` with one more commit (not
/// pushed); answers the work tree.
fn history(node: &TestNode, token: &str, repo: &str, git: &Git, work: &Path) -> PathBuf {
    let tree = git.init(work, "w");
    git.commit(&tree, &[("README.md", b"# hooked\n")], "Initial commit");
    let url = auth_url(node, "alice", token, repo);
    git.ok(&tree, &["push", "--quiet", &url, "main"]);
    git.ok(&tree, &["checkout", "--quiet", "-b", "feature"]);
    git.commit(&tree, &[("feature.txt", b"f\n")], "Feature");
    tree
}

// ---- The scenarios ----

/// A push accepted by A and a pull request opened on B each reach the receiver once
/// (the push once per pushed ref), signed, in GitHub's shapes; and the hook's creation
/// pinged it first.
#[test]
fn a_push_on_one_node_and_a_pull_request_on_the_other_each_deliver_once_signed() {
    //  A <── B   (B bootstraps from A); the receiver listens on loopback
    let description = webhooks_description();
    // B drops its standby copies of A's operations after 2 s (A stays connected):
    // the quiet period below would see a second copy if it did not.
    let (a, b, alice) = cluster(deliverer().env("GUTS_WEBHOOK_TAKEOVER_SECS", "2"));
    create_repo(&a, &alice, "hooked", false);
    let repo = "alice/hooked";
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let tree = history(&a, &alice, repo, &git, work.path());
    let old_main = git.rev(&tree, "main");

    let receiver = Receiver::start(0);
    let hook = create_hook(
        &a,
        &alice,
        repo,
        &receiver.url(),
        &["push", "pull_request", "create"],
    );
    let id = hook_id(&hook);
    let got = receiver.wait("the ping", |r| r.iter().any(|d| event(d) == "ping"));
    let ping = &got[0];
    assert_eq!(event(ping), "ping", "{}", summary(&got));
    assert_eq!(payload(ping)["hook_id"], id, "{ping}");
    assert_eq!(payload(ping)["hook"]["id"], id, "{ping}");
    assert_eq!(ping["headers"]["x-github-hook-id"], id.to_string());
    assert!(payload(ping)["zen"].is_string(), "{ping}");
    assert_eq!(payload(ping)["repository"]["full_name"], repo, "{ping}");

    // The hook is the repository's, so B knows it too (and lists it, secret masked).
    let on_b = eventually(CONVERGE, "the hook to reach B", || {
        let (status, body) = get(&b, &alice, &format!("/repos/{repo}/hooks/{id}"));
        (status == 200).then_some(body)
    });
    assert_eq!(on_b["config"]["url"], receiver.url().as_str(), "{on_b}");
    assert_eq!(on_b["config"]["secret"], "********", "{on_b}");
    let (status, list) = get(&b, &alice, &format!("/repos/{repo}/hooks"));
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // One git push to A moves main and creates feature: one push per ref, one create.
    git.ok(&tree, &["checkout", "--quiet", "main"]);
    let new_main = git.commit(&tree, &[("CHANGES.md", b"more\n")], "More");
    let new_main = new_main.trim().to_string();
    let feature = git.rev(&tree, "feature");
    let url = auth_url(&a, "alice", &alice, repo);
    git.ok(&tree, &["push", "--quiet", &url, "main", "feature"]);

    // A pull request opened on B, once B has the branch.
    eventually(CONVERGE, "the push to reach B", || {
        let (_, branch) = get(&b, &alice, &format!("/repos/{repo}/branches/feature"));
        (branch["commit"]["sha"] == feature.as_str()).then_some(())
    });
    let (status, pull) = post(
        &b,
        &alice,
        &format!("/repos/{repo}/pulls"),
        json!({"title": "Feature", "head": "feature", "base": "main"}),
    );
    assert_eq!(status, 201, "{pull}");
    let number = pull["number"].as_u64().unwrap();

    let expected = |r: &[Value]| {
        let count = |e: &str| r.iter().filter(|d| event(d) == e).count();
        count("push") >= 2 && count("create") >= 1 && count("pull_request") >= 1
    };
    receiver.wait("the push, create and pull_request events", expected);
    // Nothing more comes: no second node delivers the same event again. (A fixed
    // quiet period: several anti-entropy rounds, where a duplicate would show.)
    std::thread::sleep(Duration::from_secs(4));
    let all = receiver.requests();
    let count = |e: &str| all.iter().filter(|d| event(d) == e).count();
    let listing = summary(&all);
    assert_eq!(count("ping"), 1, "{listing}");
    assert_eq!(count("push"), 2, "one push per pushed ref:\n{listing}");
    assert_eq!(count("create"), 1, "{listing}");
    assert_eq!(count("pull_request"), 1, "{listing}");
    assert_eq!(all.len(), 5, "{listing}");
    for d in &all {
        assert_eq!(d["signature_ok"], true, "unsigned or badly signed: {d}");
        assert_eq!(d["status"], 200);
        assert_eq!(d["headers"]["x-github-hook-id"], id.to_string(), "{d}");
    }
    let mut guids: Vec<&str> = all.iter().map(guid).collect();
    guids.sort();
    guids.dedup();
    assert_eq!(
        guids.len(),
        5,
        "each event has its own delivery id:\n{listing}"
    );

    let pushes = receiver.of("push");
    let push_of = |r: &str| {
        pushes
            .iter()
            .map(payload)
            .find(|p| p["ref"] == r)
            .unwrap_or_else(|| panic!("no push of {r}:\n{listing}"))
    };
    let main_push = push_of("refs/heads/main");
    assert_eq!(main_push["before"], old_main.as_str(), "{main_push}");
    assert_eq!(main_push["after"], new_main.as_str(), "{main_push}");
    assert_eq!(main_push["created"], false);
    assert_eq!(main_push["head_commit"]["id"], new_main.as_str());
    assert_eq!(main_push["commits"][0]["id"], new_main.as_str());
    assert_eq!(main_push["repository"]["full_name"], repo);
    assert_eq!(main_push["sender"]["login"], "alice");
    let feature_push = push_of("refs/heads/feature");
    assert_eq!(feature_push["before"], "0".repeat(40), "{feature_push}");
    assert_eq!(feature_push["after"], feature.as_str());
    assert_eq!(feature_push["created"], true);
    let create = payload(&receiver.of("create")[0]).clone();
    assert_eq!(create["ref"], "feature", "{create}");
    assert_eq!(create["ref_type"], "branch", "{create}");
    let opened = payload(&receiver.of("pull_request")[0]).clone();
    assert_eq!(opened["action"], "opened", "{opened}");
    assert_eq!(opened["number"], number);
    assert_eq!(opened["pull_request"]["head"]["sha"], feature.as_str());
    assert_eq!(opened["pull_request"]["base"]["ref"], "main");
    assert_eq!(opened["sender"]["login"], "alice");

    // The delivering node lists what it sent, under the ids the receiver saw.
    let on_a = deliveries(&a, &alice, repo, id);
    for d in all.iter().filter(|d| event(d) != "pull_request") {
        let item = on_a
            .iter()
            .find(|i| i["guid"] == guid(d))
            .unwrap_or_else(|| panic!("A does not list {}: {on_a:?}", guid(d)));
        assert_eq!(item["event"], event(d), "{item}");
        assert_eq!(item["status_code"], 200, "{item}");
        assert_eq!(item["redelivery"], false, "{item}");
    }
    let pr_guid = guid(&receiver.of("pull_request")[0]).to_string();
    let item = deliveries(&b, &alice, repo, id)
        .into_iter()
        .find(|i| i["guid"] == pr_guid.as_str())
        .unwrap_or_else(|| panic!("B does not list the pull_request delivery {pr_guid}"));
    assert_eq!(item["action"], "opened", "{item}");
    let (status, detail) = get(
        &b,
        &alice,
        &format!("/repos/{repo}/hooks/{id}/deliveries/{}", item["id"]),
    );
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["guid"], pr_guid.as_str(), "{detail}");
    assert_eq!(detail["request"]["payload"]["number"], number, "{detail}");
    let headers = detail["request"]["headers"].as_object().unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("X-GitHub-Event"),
        Some(json!("pull_request")),
        "{detail}"
    );
    assert!(detail["response"]["headers"].is_object(), "{detail}");

    assert_payloads_conform(&description, &receiver.record);
}

/// A receiver that answers 500 twice gets the push on the third attempt, under one
/// delivery id; the hook lists the three attempts (500, 500, 200); a redelivery, a
/// ping and a test push are sent on request.
#[test]
fn a_receiver_failing_twice_gets_the_event_on_the_third_attempt() {
    let description = webhooks_description();
    let node = TestNode::start_with(deliverer());
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "hooked", false);
    let repo = "alice/hooked";
    // The hook's creation pings a healthy receiver; the hook is then moved (an edit
    // does not ping) to the one that fails twice, so the push is the event that fails.
    let healthy = Receiver::start(0);
    let hook = create_hook(&node, &alice, repo, &healthy.url(), &["push"]);
    let id = hook_id(&hook);
    healthy.wait("the ping", |r| !r.is_empty());
    let failing = Receiver::start(2);
    let (status, edited) = patch(
        &node,
        &alice,
        &format!("/repos/{repo}/hooks/{id}"),
        json!({"config": {"url": failing.url(), "content_type": "json", "secret": SECRET}}),
    );
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["config"]["url"], failing.url().as_str(), "{edited}");
    assert_eq!(edited["config"]["secret"], "********", "{edited}");

    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let tree = history(&node, &alice, repo, &git, work.path());
    let main = git.rev(&tree, "main");
    let got = failing.wait("three attempts", |r| r.len() >= 3);
    let listing = summary(&got);
    assert_eq!(got.len(), 3, "{listing}");
    let answered: Vec<u64> = got.iter().map(|d| d["status"].as_u64().unwrap()).collect();
    assert_eq!(answered, [500, 500, 200], "{listing}");
    assert!(got.iter().all(|d| event(d) == "push"), "{listing}");
    assert!(got.iter().all(|d| guid(d) == guid(&got[0])), "{listing}");
    assert!(got.iter().all(|d| d["signature_ok"] == true), "{listing}");
    assert!(
        got.iter().all(|d| d["body"] == got[0]["body"]),
        "the same payload each time"
    );
    assert_eq!(payload(&got[2])["after"], main.as_str());
    assert!(
        healthy.of("push").is_empty(),
        "{}",
        summary(&healthy.requests())
    );

    // Each attempt is a delivery item of its own, under the one guid.
    let the_guid = guid(&got[0]).to_string();
    let items = eventually(DELIVERY, "three listed attempts", || {
        let items: Vec<Value> = deliveries(&node, &alice, repo, id)
            .into_iter()
            .filter(|i| i["event"] == "push")
            .collect();
        (items.len() >= 3).then_some(items)
    });
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(
        items.iter().all(|i| i["guid"] == the_guid.as_str()),
        "{items:?}"
    );
    let mut codes: Vec<u64> = items
        .iter()
        .map(|i| i["status_code"].as_u64().unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, [200, 500, 500], "{items:?}");
    let first: Vec<&Value> = items.iter().filter(|i| i["redelivery"] == false).collect();
    assert_eq!(first.len(), 1, "one first attempt, two retries: {items:?}");
    assert_eq!(first[0]["status_code"], 500, "{items:?}");
    let ok = items.iter().find(|i| i["status_code"] == 200).unwrap();
    assert_eq!(ok["redelivery"], true, "{ok}");
    assert!(
        ok["delivered_at"].is_string() && ok["duration"].is_number(),
        "{ok}"
    );

    // The attempts are counted: two retried, one delivered.
    let metric = |series: &str| node.metric(series).unwrap_or(0.0);
    assert_eq!(
        metric(r#"guts_webhook_deliveries_total{event="push",outcome="retrying"}"#),
        2.0
    );
    assert_eq!(
        metric(r#"guts_webhook_deliveries_total{event="push",outcome="delivered"}"#),
        1.0
    );
    assert!(node.metric("guts_webhook_queue_depth").is_some());

    // Redelivery of the successful attempt: the same delivery again, listed too.
    let (status, body) = post(
        &node,
        &alice,
        &format!("/repos/{repo}/hooks/{id}/deliveries/{}/attempts", ok["id"]),
        json!({}),
    );
    assert_eq!(status, 202, "{body}");
    let got = failing.wait("the redelivery", |r| r.len() >= 4);
    assert_eq!(guid(&got[3]), the_guid, "{}", summary(&got));
    assert_eq!(got[3]["status"], 200);
    let pushes = eventually(DELIVERY, "the redelivery to be listed", || {
        let items: Vec<Value> = deliveries(&node, &alice, repo, id)
            .into_iter()
            .filter(|i| i["event"] == "push")
            .collect();
        (items.len() >= 4).then_some(items)
    });
    assert_eq!(pushes.len(), 4, "{pushes:?}");

    // A ping and a test push on request, each a new delivery.
    let (status, body) = post(
        &node,
        &alice,
        &format!("/repos/{repo}/hooks/{id}/pings"),
        json!({}),
    );
    assert_eq!(status, 204, "{body}");
    let got = failing.wait("the requested ping", |r| {
        r.iter().any(|d| event(d) == "ping")
    });
    let ping = got.iter().find(|d| event(d) == "ping").unwrap();
    assert_eq!(payload(ping)["hook_id"], id);
    let (status, body) = post(
        &node,
        &alice,
        &format!("/repos/{repo}/hooks/{id}/tests"),
        json!({}),
    );
    assert_eq!(status, 204, "{body}");
    let got = failing.wait("the test push", |r| {
        r.iter().filter(|d| event(d) == "push").count() >= 5
    });
    let test = got.iter().rev().find(|d| event(d) == "push").unwrap();
    assert_ne!(guid(test), the_guid, "a test push is a delivery of its own");
    assert_eq!(
        payload(test)["after"],
        main.as_str(),
        "the latest push: {test}"
    );

    assert_payloads_conform(&description, &failing.record);
}

/// Issues opened on A while the receiver is down are queued; A is killed -9, the
/// receiver comes up, A restarts on the same data: every issue's `opened` event
/// arrives, each under one delivery id, and never from B.
#[test]
fn queued_events_survive_kill_9_of_the_delivering_node() {
    //  A <── B   (B bootstraps from A); the receiver's port is closed until A is dead
    let description = webhooks_description();
    let options = deliverer()
        .env("GUTS_WEBHOOK_RETRY_BASE_MS", "1000")
        .env("GUTS_WEBHOOK_MAX_ATTEMPTS", "10");
    let (mut a, b, alice) = cluster(options.clone());
    create_repo(&a, &alice, "hooked", false);
    let repo = "alice/hooked";
    let port = crate::harness::free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let hook = create_hook(&a, &alice, repo, &url, &["issues"]);
    let id = hook_id(&hook);
    eventually(CONVERGE, "the hook to reach B", || {
        (get(&b, &alice, &format!("/repos/{repo}/hooks/{id}")).0 == 200).then_some(())
    });

    // (number, title) of each issue, as A acknowledged it.
    let mut issues = Vec::new();
    for i in 0..20 {
        let title = format!("issue {i}");
        let (status, issue) = post(
            &a,
            &alice,
            &format!("/repos/{repo}/issues"),
            json!({ "title": title }),
        );
        assert_eq!(status, 201, "{issue}");
        issues.push((issue["number"].as_u64().unwrap(), title));
    }
    a.signal(Signal::SIGKILL);
    assert!(
        a.wait_exit(Duration::from_secs(5)).is_some(),
        "A survived kill -9"
    );

    let receiver = Receiver::start_on(port, 0);
    let data = a.data_dir.clone();
    let restarted = TestNode::start_with(clustered(options).data_dir(&data).p2p_port(a.p2p));
    let opened = |r: &[Value]| -> Vec<u64> {
        let mut seen: Vec<u64> = r
            .iter()
            .filter(|d| event(d) == "issues" && payload(d)["action"] == "opened")
            .filter_map(|d| payload(d)["issue"]["number"].as_u64())
            .collect();
        seen.sort();
        seen.dedup();
        seen
    };
    // Up to twice the usual wait: what A had queued is retried with a backoff (1 s,
    // doubling) that may have grown while the receiver was down.
    receiver.wait_within(2 * DELIVERY, "every issue's opened event", |r| {
        let seen = opened(r);
        issues.iter().all(|(n, _)| seen.contains(n))
    });
    // Late retries may still be on their way; let them land before counting ids.
    std::thread::sleep(Duration::from_secs(3));
    let got = receiver.requests();
    let listing = summary(&got);
    for (n, title) in &issues {
        let mut ids: Vec<&str> = got
            .iter()
            .filter(|d| event(d) == "issues" && payload(d)["issue"]["number"] == *n)
            .map(guid)
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            1,
            "issue {n} delivered under several ids:\n{listing}"
        );
        let d = got.iter().find(|d| guid(d) == ids[0]).unwrap();
        assert_eq!(d["signature_ok"], true, "{d}");
        assert_eq!(payload(d)["issue"]["title"], title.as_str(), "{d}");
    }
    let distinct: std::collections::BTreeSet<&str> = got
        .iter()
        .filter(|d| event(d) == "issues")
        .map(guid)
        .collect();
    assert_eq!(distinct.len(), issues.len(), "one id per issue:\n{listing}");
    // The delivering node was A: its restarted self lists the deliveries.
    let listed = deliveries(&restarted, &alice, repo, id);
    let guid0 = guid(got.iter().find(|d| event(d) == "issues").unwrap());
    assert!(
        listed
            .iter()
            .any(|i| i["guid"] == guid0 && i["status_code"] == 200),
        "the restarted A does not list {guid0} as delivered: {listed:?}"
    );
    assert_payloads_conform(&description, &receiver.record);
}

/// Without an operator's allowance, hook URLs that reach the node's own host, its
/// network or the cloud metadata service are refused with GitHub's validation error,
/// as are schemes other than http(s); and only repository admins manage hooks.
#[test]
fn hooks_to_loopback_or_metadata_are_refused_by_default() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    let carol = create_user(&node, "carol");
    create_repo(&node, &alice, "hooked", false);
    add_collaborator(&node, &alice, "alice/hooked", "bob", "push");
    let hooks = "/repos/alice/hooked/hooks";
    let body = |url: &str| json!({"name": "web", "config": {"url": url, "content_type": "json"}, "events": ["push"]});
    let refused = [
        "http://127.0.0.1:9/",
        "http://localhost:9/",
        "http://[::1]:9/",
        "http://[::ffff:127.0.0.1]:9/",
        "http://2130706433:9/",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/hook",
        "http://192.168.1.1/hook",
        "http://0.0.0.0:9/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "not a url",
    ];
    let assert_validation_error = |what: &str, status: u16, answer: &Value| {
        assert_eq!(status, 422, "{what}: {answer}");
        assert_eq!(answer["message"], "Validation Failed", "{what}: {answer}");
        let errors = answer["errors"].as_array();
        assert!(errors.is_some_and(|e| !e.is_empty()), "{what}: {answer}");
    };
    for url in refused {
        let (status, answer) = post(&node, &alice, hooks, body(url));
        assert_validation_error(url, status, &answer);
    }
    let (status, list) = get(&node, &alice, hooks);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list, json!([]), "a refused hook was stored");

    // A public address is accepted (inactive, so nothing is sent to it); moving it to
    // a refused one is not.
    let public = "http://93.184.215.14/hook";
    let mut inactive = body(public);
    inactive["active"] = json!(false);
    let (status, hook) = post(&node, &alice, hooks, inactive);
    assert_eq!(status, 201, "{hook}");
    let path = format!("{hooks}/{}", hook["id"]);
    for url in [
        "http://127.0.0.1:9/",
        "http://169.254.169.254/latest/meta-data",
        "ftp://example.com/",
    ] {
        let (status, answer) = patch(&node, &alice, &path, json!({"config": {"url": url}}));
        assert_validation_error(url, status, &answer);
    }
    let (status, kept) = get(&node, &alice, &path);
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["config"]["url"], public, "{kept}");

    // A writer and a stranger can neither see nor manage hooks (GitHub: 404 or 403).
    for token in [&bob, &carol] {
        for (status, answer) in [
            get(&node, token, hooks),
            get(&node, token, &path),
            post(&node, token, hooks, body(public)),
            patch(&node, token, &path, json!({"active": false})),
            post(&node, token, &format!("{path}/pings"), json!({})),
            api(&node, reqwest::Method::DELETE, token, &path, Value::Null),
        ] {
            assert!(status == 404 || status == 403, "{status}: {answer}");
        }
    }
    let (status, list) = get(&node, &alice, hooks);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{status}: {list}");
    let (status, _) = api(&node, reqwest::Method::DELETE, &alice, &path, Value::Null);
    assert_eq!(status, 204);
    assert_eq!(get(&node, &alice, &path).0, 404);
}

/// CI driven by the webhook: on each `pull_request` event the test, acting as CI,
/// posts its status on the payload's head sha. Pending holds the merge back, success
/// lets it through; a failing pull request is refused on both nodes.
#[test]
fn ci_simulation_merge_waits_for_the_required_status() {
    //  A <── B   (B bootstraps from A); the receiver stands in for CI
    let description = webhooks_description();
    let (a, b, alice) = cluster(deliverer());
    create_repo(&a, &alice, "ci", false);
    let repo = "alice/ci";
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let tree = history(&a, &alice, repo, &git, work.path());
    let url = auth_url(&a, "alice", &alice, repo);
    git.ok(&tree, &["push", "--quiet", &url, "feature"]);
    git.ok(&tree, &["checkout", "--quiet", "-b", "other", "main"]);
    git.commit(&tree, &[("other.txt", b"o\n")], "Other");
    git.ok(&tree, &["push", "--quiet", &url, "other"]);
    let (status, body) = put(
        &a,
        &alice,
        &format!("/repos/{repo}/branches/main/protection"),
        json!({"required_status_checks": {"strict": false, "contexts": ["ci/test"]},
               "enforce_admins": null, "required_pull_request_reviews": null, "restrictions": null}),
    );
    assert_eq!(status, 200, "{body}");

    let ci = Receiver::start(0);
    let hook = create_hook(&a, &alice, repo, &ci.url(), &["pull_request"]);
    let id = hook_id(&hook);
    eventually(CONVERGE, "the hook to reach B", || {
        (get(&b, &alice, &format!("/repos/{repo}/hooks/{id}")).0 == 200).then_some(())
    });
    // CI's side: the head sha of pull request `number`, from its `opened` event.
    let head_of = |number: u64| -> String {
        let got = ci.wait("the pull_request event", |r| {
            r.iter()
                .any(|d| event(d) == "pull_request" && payload(d)["number"] == number)
        });
        let d = got
            .iter()
            .find(|d| event(d) == "pull_request" && payload(d)["number"] == number)
            .unwrap();
        assert_eq!(d["signature_ok"], true, "CI trusts signed events only: {d}");
        assert_eq!(payload(d)["action"], "opened", "{d}");
        payload(d)["pull_request"]["head"]["sha"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let status_on = |node: &TestNode, sha: &str, state: &str| {
        let (status, body) = post(
            node,
            &alice,
            &format!("/repos/{repo}/statuses/{sha}"),
            json!({"state": state, "context": "ci/test", "target_url": "https://ci.example/run/1"}),
        );
        assert_eq!(status, 201, "{body}");
    };
    let merge = |node: &TestNode, number: u64| {
        put(
            node,
            &alice,
            &format!("/repos/{repo}/pulls/{number}/merge"),
            json!({}),
        )
    };

    let (status, pull) = post(
        &a,
        &alice,
        &format!("/repos/{repo}/pulls"),
        json!({"title": "Feature", "head": "feature", "base": "main"}),
    );
    assert_eq!(status, 201, "{pull}");
    let first = pull["number"].as_u64().unwrap();
    let head = head_of(first);
    assert_eq!(head, git.rev(&tree, "feature"));
    status_on(&a, &head, "pending");
    let (status, body) = merge(&a, first);
    assert_eq!(status, 405, "pending must hold the merge back: {body}");
    status_on(&a, &head, "success");
    let (status, body) = merge(&a, first);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["merged"], true, "{body}");

    // The second pull request is opened on B (once B knows the first is merged and
    // has the branch), so B delivers its event; CI fails it.
    eventually(CONVERGE, "the merge and the branch to reach B", || {
        let merged = get(&b, &alice, &format!("/repos/{repo}/pulls/{first}")).1["merged"] == true;
        let branch = get(&b, &alice, &format!("/repos/{repo}/branches/other")).0 == 200;
        (merged && branch).then_some(())
    });
    let (status, pull) = post(
        &b,
        &alice,
        &format!("/repos/{repo}/pulls"),
        json!({"title": "Other", "head": "other", "base": "main"}),
    );
    assert_eq!(status, 201, "{pull}");
    let second = pull["number"].as_u64().unwrap();
    let head = head_of(second);
    assert_eq!(head, git.rev(&tree, "other"));
    status_on(&b, &head, "failure");
    for node in [&a, &b] {
        let body = eventually(CONVERGE, "the failure to replicate", || {
            let (status, body) = merge(node, second);
            if status == 404 {
                return None; // the pull request has not reached this node yet
            }
            assert_eq!(status, 405, "a failing check must refuse the merge: {body}");
            (body["message"] == "Required status check \"ci/test\" is failing.").then_some(body)
        });
        assert_eq!(
            body["message"],
            "Required status check \"ci/test\" is failing."
        );
    }
    let opened = ci.of("pull_request");
    assert_eq!(
        opened
            .iter()
            .filter(|d| payload(d)["action"] == "opened")
            .count(),
        2,
        "{}",
        summary(&ci.requests())
    );
    assert_payloads_conform(&description, &ci.record);
}
