//! The Kubernetes manifests (k8s/) and the image (Dockerfile): validated offline
//! against Kubernetes' schemas and structural schemas of our own for the Prometheus
//! Operator's kinds, checked against each other, against `guts-node config check` and
//! by promtool (tests/k8s/check.py says exactly what); and every metric the alert
//! rules and the Grafana dashboard query is checked against a live node's `/metrics`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::clients::python;
use crate::gitutil::{Git, auth_url, create_repo};
use crate::harness::{NodeOptions, TestNode, client, create_user, free_port, node_binary};

/// Every metric name k8s/prometheusrule.yaml and k8s/grafana-dashboard.yaml query,
/// exactly: the test fails if the manifests use one more or one fewer, so this list is
/// the review point for what the alerting depends on.
const QUERIED: &[&str] = &[
    "guts_circuit_breaker_state",
    "guts_http_request_duration_seconds_bucket",
    "guts_http_requests_total",
    "guts_issues_total",
    "guts_operations_rejected_total",
    "guts_p2p_message_latency_seconds_bucket",
    "guts_p2p_messages_received_total",
    "guts_p2p_messages_sent_total",
    "guts_p2p_peers_connected",
    "guts_p2p_replication_lag_seconds_bucket",
    "guts_pull_requests_total",
    "guts_repositories_total",
    "guts_retries_total",
    "guts_storage_operation_duration_seconds_bucket",
    "guts_storage_size_bytes",
    "guts_users_total",
    "up",
];

/// Series Prometheus makes itself; the node does not export them.
const PROMETHEUS_OWN: &[&str] = &["up"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check_py(args: &[&str]) -> Output {
    Command::new(python())
        .arg(root().join("tests/k8s/check.py"))
        .args(args)
        .arg(root().join("k8s"))
        .env("GUTS_NODE_BIN", node_binary())
        .output()
        .unwrap()
}

#[test]
fn manifests_validate_and_agree_with_the_node_and_the_image() {
    let out = check_py(&["validate"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("k8s manifests: ok"),
        "tests/k8s/check.py validate failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Each part really ran: the rules were checked and found.
    assert!(stdout.contains("SUCCESS: 10 rules found"), "{stdout}");
    eprintln!("{stdout}");
}

/// Makes every labelled family the manifests query have a sample (a family without
/// one is not on the page at all): an issue, a pull request from a pushed branch, and
/// an operation the fold rejects.
fn exercise(node: &TestNode) {
    let alice = create_user(node, "alice");
    let bob = create_user(node, "bob");
    create_repo(node, &alice, "hello", false);
    let tmp = tempfile::tempdir().unwrap();
    let git = Git::v(2);
    let work = git.init(tmp.path(), "hello");
    git.commits(&work, "base", 2);
    git.ok(&work, &["branch", "feature"]);
    git.ok(&work, &["checkout", "-q", "feature"]);
    git.commits(&work, "feature", 1);
    let url = auth_url(node, "alice", &alice, "alice/hello");
    git.ok(&work, &["push", "--quiet", &url, "main", "feature"]);
    let post = |path: &str, body: serde_json::Value| {
        let r = client()
            .post(node.url(&format!("/api/v3/repos/alice/hello/{path}")))
            .bearer_auth(&alice)
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 201, "{path}: {}", r.text().unwrap_or_default());
    };
    post("issues", json!({"title": "an issue"}));
    post(
        "pulls",
        json!({"title": "a change", "head": "feature", "base": "main"}),
    );
    let r = client()
        .delete(node.url("/api/v3/repos/alice/hello"))
        .bearer_auth(&bob)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "bob's deletion is rejected");
}

/// The series names a `/metrics` page in OpenMetrics text offers, from its TYPE
/// lines: a counter family `x` is queried as `x_total`, a histogram as `x_bucket`,
/// `x_sum` and `x_count`, a gauge as `x`.
fn exported_series(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                out.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    out.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                out.insert(name.to_string());
            }
        }
    }
    out
}

#[test]
fn alert_rules_and_dashboard_query_only_metrics_a_live_node_exports() {
    let out = check_py(&["metric-names"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let queried: BTreeSet<String> = serde_json::from_slice(&out.stdout).unwrap();
    let expected: BTreeSet<String> = QUERIED.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        queried, expected,
        "the manifests query other metrics than QUERIED lists"
    );

    // Two nodes, B bootstrapped to A and to an address where nothing listens, so that
    // the P2P families get samples: a connected peer and messages (A), and failed
    // calls that are retried and open a circuit breaker (the dead address).
    let p2p = |port: u16| format!("/ip4/127.0.0.1/tcp/{port}");
    let a_port = free_port();
    let a = TestNode::start_with(NodeOptions::default().env("GUTS_P2P_ADDR", &p2p(a_port)));
    let peers = format!("{},{}", p2p(a_port), p2p(free_port()));
    let node = TestNode::start_with(
        NodeOptions::default()
            .env("GUTS_P2P_ADDR", &p2p(free_port()))
            .env("GUTS_BOOTSTRAP_PEERS", &peers)
            .env("GUTS_RETRY_MAX_ATTEMPTS", "3")
            .env("GUTS_CIRCUIT_BREAKER_THRESHOLD", "1"),
    );
    exercise(&node);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (missing, exported) = loop {
        let text = client()
            .get(node.metrics_url("/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        let exported = exported_series(&text);
        assert!(
            exported.contains("guts_http_requests_total") && exported.contains("guts_users_total"),
            "unexpected /metrics page:\n{text}"
        );
        let missing: Vec<&str> = QUERIED
            .iter()
            .copied()
            .filter(|name| !PROMETHEUS_OWN.contains(name) && !exported.contains(*name))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break (missing, exported);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    drop(a);
    assert!(
        missing.is_empty(),
        "the alert rules or the dashboard query metrics this node does not export: {missing:?}\nexported: {exported:?}"
    );
}
