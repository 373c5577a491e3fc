//! Replication between real node processes on 127.0.0.1: pushes, accounts and issues
//! travel; concurrent pushes converge with the losing tip kept; partitions heal; a
//! killed node and a late node catch up. Convergence is judged by the state digests
//! the admin API reports, the way an operator compares nodes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::gitutil::{Git, anon_url, auth_url, create_repo};
use crate::harness::{
    ADMIN_TOKEN, NodeOptions, Signal, SpanSink, TestNode, client, create_user, eventually,
};

const CLUSTER_SECRET: &str = "replication-test-cluster-secret-0123456789";

/// How long replication may take in these tests (announcements arrive in
/// milliseconds; anti-entropy runs every second here).
const CONVERGE: Duration = Duration::from_secs(60);

fn options() -> NodeOptions {
    NodeOptions::default()
        .env("GUTS_CLUSTER_SECRET", CLUSTER_SECRET)
        .env("GUTS_ANTI_ENTROPY_INTERVAL", "1")
}

/// A node that joins through `bootstrap`.
fn join(bootstrap: &[&TestNode], options: NodeOptions) -> TestNode {
    let peers: Vec<String> = bootstrap.iter().map(|n| n.p2p_addr()).collect();
    TestNode::start_with(options.env("GUTS_BOOTSTRAP_PEERS", &peers.join(",")))
}

/// Three nodes of one cluster: B and C bootstrap from A.
fn three() -> (TestNode, TestNode, TestNode) {
    let a = TestNode::start_with(options());
    let b = join(&[&a], options());
    let c = join(&[&a], options());
    for node in [&a, &b, &c] {
        wait_peers(node, if std::ptr::eq(node, &a) { 2 } else { 1 });
    }
    (a, b, c)
}

fn admin_get(node: &TestNode, path: &str) -> Value {
    let r = client()
        .get(node.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{path}: {}", r.text().unwrap_or_default());
    r.json().unwrap()
}

fn peers(node: &TestNode) -> Vec<String> {
    admin_get(node, "/admin/peers")["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["peer_id"].as_str().unwrap().to_string())
        .collect()
}

fn wait_peers(node: &TestNode, at_least: usize) {
    eventually(CONVERGE, "peers to connect", || {
        (peers(node).len() >= at_least).then_some(())
    });
}

fn isolate(node: &TestNode, isolated: bool) {
    let r = client()
        .put(node.url("/admin/p2p/isolation"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "isolated": isolated }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
}

/// `(node digest, repositories held)`.
fn digest(node: &TestNode) -> (String, usize) {
    let r = admin_get(node, "/admin/replication");
    (
        r["state_digest"].as_str().unwrap().to_string(),
        r["repositories"].as_array().unwrap().len(),
    )
}

/// Waits until every node reports the same state digest over `repos` repositories.
fn converge(nodes: &[&TestNode], repos: usize) -> String {
    eventually(CONVERGE, "state digests to agree", || {
        let digests: Vec<(String, usize)> = nodes.iter().map(|n| digest(n)).collect();
        let first = digests.first()?.clone();
        (first.1 == repos && digests.iter().all(|d| *d == first)).then_some(first.0)
    })
}

/// Waits until `token` authenticates on `node` (accounts replicated).
fn wait_account(node: &TestNode, token: &str) {
    eventually(CONVERGE, "the account to replicate", || {
        let r = client()
            .get(node.url("/api/v3/user"))
            .header("Authorization", format!("token {token}"))
            .send()
            .ok()?;
        (r.status() == 200).then_some(())
    });
}

fn open_issue(node: &TestNode, token: &str, repo: &str, title: &str) {
    let r = client()
        .post(node.url(&format!("/api/v3/repos/{repo}/issues")))
        .header("Authorization", format!("token {token}"))
        .json(&json!({ "title": title }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
}

fn issue_titles(node: &TestNode, repo: &str) -> Vec<String> {
    let r = client()
        .get(node.url(&format!(
            "/api/v3/repos/{repo}/issues?state=all&per_page=100"
        )))
        .send()
        .unwrap();
    if r.status() != 200 {
        return Vec::new();
    }
    let mut titles: Vec<String> = r
        .json::<Value>()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    titles
}

/// A work tree with `commits` commits on main, pushed to `url`.
fn push_new(git: &Git, parent: &Path, name: &str, url: &str, commits: usize) -> std::path::PathBuf {
    let work = git.init(parent, name);
    git.ok(&work, &["checkout", "-q", "-b", "main"]);
    git.commits(&work, name, commits);
    git.ok(&work, &["push", "-q", url, "main"]);
    work
}

/// The branches `url` advertises, or none while the repository is not there yet.
fn heads_of(git: &Git, dir: &Path, url: &str) -> BTreeMap<String, String> {
    let run = git.run(dir, &["ls-remote", "--heads", url]);
    if !run.status.success() {
        return BTreeMap::new();
    }
    crate::gitutil::parse_refs(&run.stdout)
}

fn metric_total(node: &TestNode, family: &str) -> f64 {
    crate::gitutil::metric_sum(node, family)
}

#[test]
fn a_push_an_account_and_an_issue_reach_every_node() {
    let (a, b, c) = three();
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();

    // An account made on A works on C: the cluster shares its users.
    let alice = create_user(&a, "alice");
    wait_account(&c, &alice);

    create_repo(&a, &alice, "proj", false);
    let work = push_new(
        &git,
        tmp.path(),
        "proj",
        &auth_url(&a, "alice", &alice, "alice/proj"),
        5,
    );
    let pushed = git.local_refs(&work);
    let expected: BTreeMap<String, String> = pushed
        .iter()
        .filter(|(k, _)| k.starts_with("refs/heads/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let from_c = anon_url(&c, "alice/proj");
    eventually(CONVERGE, "the push to reach C", || {
        (heads_of(&git, tmp.path(), &from_c) == expected).then_some(())
    });
    git.assert_clone_identical(&from_c, &expected, tmp.path(), "clone-from-c");

    // The same token pushes through C, and A sees it.
    git.commits(&work, "via-c", 2);
    git.ok(
        &work,
        &[
            "push",
            "-q",
            &auth_url(&c, "alice", &alice, "alice/proj"),
            "main",
        ],
    );
    let tip = git.rev(&work, "main");
    eventually(CONVERGE, "C's push to reach A", || {
        (heads_of(&git, tmp.path(), &anon_url(&a, "alice/proj")).get("refs/heads/main")
            == Some(&tip))
        .then_some(())
    });

    // An issue opened on B by a user of B is listed on A and C.
    let bob = create_user(&b, "bob");
    eventually(CONVERGE, "the repository to reach B", || {
        (heads_of(&git, tmp.path(), &anon_url(&b, "alice/proj")).get("refs/heads/main")
            == Some(&tip))
        .then_some(())
    });
    open_issue(&b, &bob, "alice/proj", "found on B");
    for node in [&a, &c] {
        eventually(CONVERGE, "the issue to replicate", || {
            (issue_titles(node, "alice/proj") == ["found on B"]).then_some(())
        });
    }
    converge(&[&a, &b, &c], 1);

    // The p2p metrics moved.
    assert!(metric_total(&c, "guts_p2p_peers_connected") >= 1.0);
    assert!(metric_total(&c, "guts_p2p_messages_received_total") > 0.0);
    assert!(metric_total(&c, "guts_p2p_messages_sent_total") > 0.0);
    assert!(metric_total(&c, "guts_p2p_replication_lag_seconds_count") > 0.0);
    assert!(metric_total(&c, "guts_p2p_message_latency_seconds_count") > 0.0);
    // The admin API names the peers.
    let listed = peers(&a);
    assert!(
        listed.contains(&b.peer_id()) && listed.contains(&c.peer_id()),
        "{listed:?}"
    );
}

#[test]
fn concurrent_pushes_converge_and_keep_the_losing_tip() {
    let (a, b, c) = three();
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();
    let alice = create_user(&a, "alice");
    wait_account(&b, &alice);
    create_repo(&a, &alice, "race", false);
    let work_a = push_new(
        &git,
        tmp.path(),
        "race",
        &auth_url(&a, "alice", &alice, "alice/race"),
        1,
    );
    converge(&[&a, &b, &c], 1);

    // B is cut off; both sides move main from the same base.
    isolate(&b, true);
    let work_b = tmp.path().join("race-b");
    std::fs::create_dir_all(&work_b).unwrap();
    let work_b = git.clone(&anon_url(&b, "alice/race"), &work_b, "w");
    git.commits(&work_a, "side-a", 1);
    git.ok(
        &work_a,
        &[
            "push",
            "-q",
            &auth_url(&a, "alice", &alice, "alice/race"),
            "main",
        ],
    );
    git.commits(&work_b, "side-b", 1);
    git.ok(
        &work_b,
        &[
            "push",
            "-q",
            &auth_url(&b, "alice", &alice, "alice/race"),
            "main",
        ],
    );
    let (tip_a, tip_b) = (git.rev(&work_a, "main"), git.rev(&work_b, "main"));
    assert_ne!(tip_a, tip_b);
    isolate(&b, false);

    converge(&[&a, &b, &c], 1);
    let mut winners = Vec::new();
    for node in [&a, &b, &c] {
        let refs = git.ls_remote(&anon_url(node, "alice/race"));
        let main = refs.get("refs/heads/main").cloned().unwrap();
        let losers: Vec<&String> = refs
            .iter()
            .filter(|(k, _)| k.starts_with("refs/guts/conflicts/heads/main/"))
            .map(|(_, v)| v)
            .collect();
        let loser = if main == tip_a { &tip_b } else { &tip_a };
        assert!(
            main == tip_a || main == tip_b,
            "main is neither tip: {refs:?}"
        );
        assert_eq!(losers, vec![loser], "the losing tip is kept: {refs:?}");
        winners.push(main);
    }
    assert!(winners.windows(2).all(|w| w[0] == w[1]), "{winners:?}");
}

#[test]
fn partitions_heal_and_killed_and_late_nodes_catch_up() {
    let (a, mut b, c) = three();
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();
    let alice = create_user(&a, "alice");
    wait_account(&c, &alice);
    create_repo(&a, &alice, "heal", false);
    let work = push_new(
        &git,
        tmp.path(),
        "heal",
        &auth_url(&a, "alice", &alice, "alice/heal"),
        3,
    );
    converge(&[&a, &b, &c], 1);

    // Partition C; write on both sides; heal.
    isolate(&c, true);
    open_issue(&a, &alice, "alice/heal", "written on A");
    open_issue(&c, &alice, "alice/heal", "written on C");
    create_repo(&c, &alice, "only-on-c", false);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(issue_titles(&a, "alice/heal"), ["written on A"]);
    isolate(&c, false);
    converge(&[&a, &b, &c], 2);
    for node in [&a, &b, &c] {
        assert_eq!(
            issue_titles(node, "alice/heal"),
            ["written on A", "written on C"]
        );
    }

    // SIGKILL B, write on A, restart B: it catches up.
    b.signal(Signal::SIGKILL);
    b.wait_exit(Duration::from_secs(10)).unwrap();
    git.commits(&work, "while-b-down", 2);
    git.ok(
        &work,
        &[
            "push",
            "-q",
            &auth_url(&a, "alice", &alice, "alice/heal"),
            "main",
        ],
    );
    let b = join(
        &[&a],
        options().data_dir(&b.data_dir.clone()).p2p_port(b.p2p),
    );
    converge(&[&a, &b, &c], 2);
    let tip = git.rev(&work, "main");
    assert_eq!(
        git.ls_remote(&anon_url(&b, "alice/heal"))
            .get("refs/heads/main"),
        Some(&tip)
    );

    // A fourth node, empty, joins late and catches up everything.
    let d = join(&[&b], options());
    converge(&[&a, &b, &c, &d], 2);
    let expected: BTreeMap<String, String> = git
        .ls_remote(&anon_url(&a, "alice/heal"))
        .into_iter()
        .filter(|(k, _)| k.starts_with("refs/heads/"))
        .collect();
    git.assert_clone_identical(
        &anon_url(&d, "alice/heal"),
        &expected,
        tmp.path(),
        "clone-d",
    );
    assert_eq!(
        issue_titles(&d, "alice/heal"),
        ["written on A", "written on C"]
    );
}

/// A node with its own keys, built from guts-p2p in this process: it announces an
/// operation that its key has no authority to sign and serves it when asked.
#[test]
fn a_rogue_peers_forged_operations_are_refused_dead_lettered_and_it_is_banned() {
    use guts_core::{Hlc, Keypair, OpId, Operation, Payload, RepoId, Role};
    use guts_p2p::net::{NetConfig, NetEvent, NetMetrics, Network};
    use guts_p2p::wire::{ErrorCode, Gossip, Request, Response};

    let a = TestNode::start_with(options());
    let b = join(&[&a], options());
    wait_peers(&a, 1);
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();
    let alice = create_user(&a, "alice");
    create_repo(&a, &alice, "target", false);
    push_new(
        &git,
        tmp.path(),
        "target",
        &auth_url(&a, "alice", &alice, "alice/target"),
        1,
    );
    let agreed = converge(&[&a, &b], 1);
    let status = admin_get(&a, "/admin/replication");
    let repo: RepoId = status["repositories"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let heads: Vec<OpId> = status["repositories"][0]["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().parse().unwrap())
        .collect();

    // Mallory makes herself an admin of alice's repository.
    let mallory = Keypair::generate();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let forged = Operation {
        repo,
        parents: heads,
        author: mallory.public(),
        timestamp: Hlc {
            wall_ms: now,
            counter: 0,
        },
        payload: Payload::SetRole {
            user: mallory.public(),
            role: Some(Role::Admin),
        },
    }
    .sign(&mallory)
    .unwrap();
    let forged_id = forged.id();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let rogue_id = runtime.block_on(async {
        let mut registry = prometheus_client::registry::Registry::default();
        let (net, mut events, task) = Network::start(
            NetConfig {
                secret_key: *Keypair::generate().seed_bytes(),
                listen: "/ip4/127.0.0.1/tcp/0".to_string(),
                bootstrap: vec![a.p2p_addr()],
                mdns: false,
                max_connections: 16,
                request_timeout: Duration::from_secs(5),
                cluster: [7; 32],
            },
            std::sync::Arc::new(NetMetrics::register(&mut registry)),
        )
        .unwrap();
        tokio::spawn(task);
        net.subscribe(repo).await.unwrap();
        let deadline = tokio::time::Instant::now() + CONVERGE;
        let mut announce = tokio::time::interval(Duration::from_millis(300));
        let mut served = false;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the rogue was never banned (served the forgery: {served})"
            );
            tokio::select! {
                _ = announce.tick() => {
                    if served && net.connected().await.is_empty() {
                        break;
                    }
                    let _ = net.publish(Gossip::Announce { repo, heads: vec![forged_id], trace: None }).await;
                }
                Some(event) = events.recv() => {
                    if let NetEvent::Request { request, reply, .. } = event {
                        let response = match request {
                            Request::Ops { repo: asked, .. } if asked == repo => {
                                served = true;
                                Response::Ops { repo, ops: vec![forged.clone()], missing: vec![] }
                            }
                            _ => Response::Error { code: ErrorCode::NotFound, message: String::new() },
                        };
                        let _ = reply.send(response);
                    }
                }
            }
        }
        let id = net.local_peer_id().to_string();
        net.shutdown().await;
        id
    });

    // Nothing was applied; the forgery is in the dead-letter log and counted.
    assert_eq!(digest(&a).0, agreed);
    let letters = admin_get(&a, "/admin/rejected");
    let letter = letters
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == forged_id.to_string())
        .unwrap_or_else(|| panic!("no dead letter for the forgery: {letters}"));
    assert_eq!(letter["reason_code"], "not_permitted");
    assert!(
        a.metric("guts_operations_rejected_total{reason=\"not_permitted\"}")
            .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        !peers(&a).contains(&rogue_id),
        "the rogue is still connected"
    );
    // Replaying changes nothing: the forgery is refused again.
    let r = client()
        .post(a.url("/admin/rejected/replay"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().unwrap();
    assert_eq!(report["still_rejected"], 1, "{report}");
    assert_eq!(digest(&a).0, agreed);
}

/// One write followed across nodes: the request's trace travels in the announcement,
/// the pull on the other node joins it, and so does the serving of that pull.
#[test]
fn a_writes_trace_continues_on_the_node_that_pulls_it() {
    let sink = SpanSink::start();
    let traced = || options().env("GUTS_OTLP_ENDPOINT", &sink.endpoint);
    let mut a = TestNode::start_with(traced());
    let mut b = join(&[&a], traced());
    wait_peers(&a, 1);
    let alice = create_user(&a, "alice");
    create_repo(&a, &alice, "traced", false);
    converge(&[&a, &b], 1);

    let trace_id = "5af7651916cd43dd8448eb211c80319c";
    let r = client()
        .post(a.url("/api/v3/repos/alice/traced/issues"))
        .header("Authorization", format!("token {alice}"))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .json(&json!({ "title": "follow me" }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    eventually(CONVERGE, "the issue on B", || {
        (issue_titles(&b, "alice/traced") == ["follow me"]).then_some(())
    });
    assert!(b.stop().success());
    assert!(a.stop().success());

    let in_trace = sink.names_in_trace(trace_id, &["request", "p2p_pull", "p2p_serve"]);
    for name in ["request", "p2p_pull", "p2p_serve"] {
        assert!(
            in_trace.iter().any(|s| s == name),
            "no {name} span in the write's trace: {in_trace:?}"
        );
    }
}

/// With anti-entropy out of the picture (once an hour), a repository created after the
/// nodes met still reaches the peer: its first announcement goes on the topic every
/// node joins, and later ones on the repository's own topic.
#[test]
fn announcements_alone_carry_new_repositories_and_their_pushes() {
    let slow = || {
        NodeOptions::default()
            .env("GUTS_CLUSTER_SECRET", CLUSTER_SECRET)
            .env("GUTS_ANTI_ENTROPY_INTERVAL", "3600")
    };
    let a = TestNode::start_with(slow());
    let b = join(&[&a], slow());
    wait_peers(&a, 1);
    let alice = create_user(&a, "alice");
    // B reads anonymously: the repository is public, and accounts are not the point.
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();
    create_repo(&a, &alice, "fresh", false);
    let work = push_new(
        &git,
        tmp.path(),
        "fresh",
        &auth_url(&a, "alice", &alice, "alice/fresh"),
        2,
    );
    let from_b = anon_url(&b, "alice/fresh");
    for round in 0..3 {
        let tip = git.rev(&work, "main");
        eventually(
            Duration::from_secs(10),
            "the announcement to reach B",
            || {
                (heads_of(&git, tmp.path(), &from_b).get("refs/heads/main") == Some(&tip))
                    .then_some(())
            },
        );
        git.commits(&work, &format!("more{round}"), 1);
        git.ok(
            &work,
            &[
                "push",
                "-q",
                &auth_url(&a, "alice", &alice, "alice/fresh"),
                "main",
            ],
        );
    }
}

/// Readiness waits for a bootstrap peer: a pod whose peers are not up yet is live but
/// not ready, names the failing check, and turns ready once a peer appears (its address
/// is dialed again with backoff).
#[test]
fn readiness_waits_for_a_bootstrap_peer() {
    let port = crate::harness::free_port();
    let waiting = TestNode::start_unready(options().env(
        "GUTS_BOOTSTRAP_PEERS",
        &format!("/dns4/localhost/tcp/{port}"),
    ));
    let r = client().get(waiting.url("/health/ready")).send().unwrap();
    assert_eq!(r.status(), 503);
    let report: Value = r.json().unwrap();
    let p2p = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "p2p")
        .unwrap_or_else(|| panic!("no p2p check: {report}"));
    assert_eq!(p2p["status"], "fail", "{report}");
    let _peer = TestNode::start_with(options().p2p_port(port));
    eventually(CONVERGE, "readiness once the peer is up", || {
        let r = client().get(waiting.url("/health/ready")).send().ok()?;
        (r.status() == 200).then_some(())
    });
}

/// A peer that stops answering (SIGSTOP: its connections stay open, nothing comes
/// back) costs retries and then opens its circuit breaker; once it runs again
/// (SIGCONT) the nodes converge.
#[test]
fn a_frozen_peer_opens_its_breaker_and_catches_up_when_it_thaws() {
    let impatient = || {
        options()
            .env("GUTS_P2P_TIMEOUT", "1")
            .env("GUTS_RETRY_MAX_ATTEMPTS", "2")
            .env("GUTS_CIRCUIT_BREAKER_THRESHOLD", "2")
    };
    let a = TestNode::start_with(impatient());
    let b = join(&[&a], impatient());
    wait_peers(&a, 1);
    let b_id = b.peer_id();
    let alice = create_user(&a, "alice");
    create_repo(&a, &alice, "thaw", false);
    converge(&[&a, &b], 1);

    b.signal(Signal::SIGSTOP);
    let breaker = format!("guts_circuit_breaker_state{{peer=\"{b_id}\"}}");
    eventually(CONVERGE, "B's breaker to open on A", || {
        (a.metric(&breaker) == Some(1.0)).then_some(())
    });
    assert!(
        a.metric("guts_retries_total{operation=\"p2p_request\"}")
            .unwrap_or(0.0)
            >= 1.0
    );
    open_issue(&a, &alice, "alice/thaw", "while B was frozen");
    b.signal(Signal::SIGCONT);
    converge(&[&a, &b], 1);
    assert_eq!(issue_titles(&b, "alice/thaw"), ["while B was frozen"]);
}

/// A peer of another cluster (another `GUTS_CLUSTER_SECRET`) replicates public data
/// only: it never receives a private repository, and it cannot act for the cluster's
/// users (their keys and tokens do not open for it).
#[test]
fn another_cluster_gets_public_repositories_only() {
    let a = TestNode::start_with(options());
    let b = join(&[&a], options());
    let stranger = join(
        &[&a],
        NodeOptions::default()
            .env(
                "GUTS_CLUSTER_SECRET",
                "another-cluster-secret-0123456789abcdef",
            )
            .env("GUTS_ANTI_ENTROPY_INTERVAL", "1"),
    );
    wait_peers(&a, 2);
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();
    let alice = create_user(&a, "alice");
    create_repo(&a, &alice, "open", false);
    create_repo(&a, &alice, "secret", true);
    push_new(
        &git,
        tmp.path(),
        "open",
        &auth_url(&a, "alice", &alice, "alice/open"),
        1,
    );
    push_new(
        &git,
        tmp.path(),
        "secret",
        &auth_url(&a, "alice", &alice, "alice/secret"),
        1,
    );

    converge(&[&a, &b], 2);
    let names = |node: &TestNode| -> Vec<String> {
        admin_get(node, "/admin/replication")["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["full_name"].as_str().unwrap().to_string())
            .collect()
    };
    // The stranger has no `alice` of ours (accounts are cluster data): it serves the
    // repository in the namespace of alice's key, which none of its logins can spell.
    let foreign = |name: &str| name.starts_with("alice--") && name.ends_with("/open");
    let served = eventually(CONVERGE, "the public repository on the stranger", || {
        names(&stranger).into_iter().find(|n| foreign(n))
    });
    // Several anti-entropy rounds later, still only the public one.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(names(&stranger), std::slice::from_ref(&served));
    let r = client()
        .get(stranger.url(&format!("/api/v3/repos/{served}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().unwrap()["full_name"], served);
    assert_eq!(
        client()
            .get(stranger.url("/api/v3/repos/alice/open"))
            .send()
            .unwrap()
            .status(),
        404
    );
    let mut on_b = names(&b);
    on_b.sort();
    assert_eq!(on_b, ["alice/open", "alice/secret"]);
    // Alice's token means nothing there.
    let r = client()
        .get(stranger.url("/api/v3/user"))
        .header("Authorization", format!("token {alice}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// `LD_PRELOAD` shim that moves `CLOCK_REALTIME` by `$GUTS_SKEW_SECONDS` (monotonic
/// clocks untouched): a node whose operator set its clock wrong, or an attacker who
/// dates operations to win ties. Built with the system C compiler into `dir`.
fn clock_skew_shim(dir: &Path) -> std::path::PathBuf {
    let source = dir.join("skew.c");
    std::fs::write(
        &source,
        r#"#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int r = real(id, ts);
    const char *skew = getenv("GUTS_SKEW_SECONDS");
    if (r == 0 && skew && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += atol(skew);
    return r;
}
"#,
    )
    .unwrap();
    let lib = dir.join("libskew.so");
    let out = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&lib)
        .arg(&source)
        .arg("-ldl")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}

/// A work tree whose one commit holds `README` = `text`, pushed to `url`'s main.
fn push_readme(git: &Git, parent: &Path, dir: &str, url: &str, text: &str) {
    let work = git.init(parent, dir);
    git.ok(&work, &["checkout", "-q", "-b", "main"]);
    git.commit(&work, &[("README", text.as_bytes())], text);
    git.ok(&work, &["push", "-q", url, "main"]);
}

/// The README of `url`'s main, cloned anonymously with stock git.
fn readme(git: &Git, parent: &Path, dir: &str, url: &str) -> String {
    let work = git.clone(url, parent, dir);
    std::fs::read_to_string(work.join("README")).unwrap()
}

/// ```text
///   A ==== B        our cluster (one secret)
///   |
///   E               another cluster, clock three days back, its own `alice`
/// ```
/// E creates `alice/pub` (EVIL) and `alice/squat` and joins A: its public repositories
/// replicate, but in the namespace of E's alice key, so our `alice/pub` stays ours on
/// every node of our cluster, nothing appears under our alice, and our alice can still
/// push. (The audit's critical finding: E's repository used to take the name.)
#[test]
fn another_clusters_node_with_a_skewed_clock_cannot_take_our_names() {
    let tmp = tempfile::tempdir().unwrap();
    let shim = clock_skew_shim(tmp.path());
    let a = TestNode::start_with(options());
    let b = join(&[&a], options());
    wait_peers(&a, 1);
    let git = Git::v(2);
    let alice = create_user(&a, "alice");
    create_repo(&a, &alice, "pub", false);
    push_readme(
        &git,
        tmp.path(),
        "good",
        &auth_url(&a, "alice", &alice, "alice/pub"),
        "GOOD\n",
    );
    converge(&[&a, &b], 1);

    let three_days: i64 = 3 * 24 * 3600;
    let evil = join(
        &[&a],
        NodeOptions::default()
            .env(
                "GUTS_CLUSTER_SECRET",
                "another-cluster-secret-0123456789abcdef",
            )
            .env("GUTS_ANTI_ENTROPY_INTERVAL", "1")
            .env("LD_PRELOAD", shim.to_str().unwrap())
            .env("GUTS_SKEW_SECONDS", &(-three_days).to_string()),
    );
    let mallory = create_user(&evil, "alice");
    for name in ["pub", "squat"] {
        create_repo(&evil, &mallory, name, false);
        let url = auth_url(&evil, "alice", &mallory, &format!("alice/{name}"));
        push_readme(&git, tmp.path(), &format!("evil-{name}"), &url, "EVIL\n");
    }
    // The shim is real: E dates its repositories three days back.
    let created_at = |node: &TestNode| -> String {
        let repo: Value = client()
            .get(node.url("/api/v3/repos/alice/pub"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        repo["created_at"].as_str().unwrap().to_string()
    };
    let (created, now_year_day) = (created_at(&evil), created_at(&a));
    assert!(
        created < now_year_day,
        "E's clock is not skewed: {created} vs {now_year_day}"
    );

    // E's public repositories reach both our nodes, in E's alice's namespace.
    let names = |node: &TestNode| -> Vec<String> {
        let mut names: Vec<String> = admin_get(node, "/admin/replication")["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["full_name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    let mut foreign = Vec::new();
    for node in [&a, &b] {
        foreign = eventually(CONVERGE, "E's repositories on our nodes", || {
            let all = names(node);
            let theirs: Vec<String> = all
                .iter()
                .filter(|n| n.starts_with("alice--"))
                .cloned()
                .collect();
            (theirs.len() == 2).then_some(theirs)
        });
        // Several anti-entropy rounds: nothing moves onto our names.
        assert!(names(node).contains(&"alice/pub".to_string()));
    }
    std::thread::sleep(Duration::from_secs(3));
    for (i, node) in [&a, &b].into_iter().enumerate() {
        assert_eq!(names(node), [&foreign[0], &foreign[1], "alice/pub"]);
        let ours = client()
            .get(node.url("/api/v3/repos/alice/pub"))
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap();
        assert_eq!(ours["full_name"], "alice/pub");
        assert_eq!(ours["created_at"], now_year_day.as_str());
        assert_eq!(
            readme(
                &git,
                tmp.path(),
                &format!("check-{i}"),
                &anon_url(node, "alice/pub")
            ),
            "GOOD\n"
        );
        let squat = client()
            .get(node.url("/api/v3/repos/alice/squat"))
            .send()
            .unwrap();
        assert_eq!(squat.status(), 404);
        let listed: Vec<String> = client()
            .get(node.url("/api/v3/users/alice/repos"))
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["full_name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(listed, ["alice/pub"]);
        // E's data is still there, public, under its own namespace and owner.
        let theirs = &foreign[0];
        assert!(theirs.ends_with("/pub"));
        let repo = client()
            .get(node.url(&format!("/api/v3/repos/{theirs}")))
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap();
        assert_eq!(repo["full_name"], theirs.as_str());
        assert_eq!(repo["owner"]["login"], theirs.split('/').next().unwrap());
        assert_eq!(
            readme(
                &git,
                tmp.path(),
                &format!("theirs-{i}"),
                &anon_url(node, theirs)
            ),
            "EVIL\n"
        );
    }
    // Our alice keeps full access: a push through B lands.
    let work = git.clone(
        &auth_url(&b, "alice", &alice, "alice/pub"),
        tmp.path(),
        "again",
    );
    git.commit(&work, &[("README", b"GOOD AGAIN\n")], "again");
    git.ok(&work, &["push", "-q", "origin", "main"]);
    converge(&[&a, &b], 3);
}

/// Status of `GET /api/v3/user` on `node` with `token`.
fn user_status(node: &TestNode, token: &str) -> u16 {
    client()
        .get(node.url("/api/v3/user"))
        .header("Authorization", format!("token {token}"))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// ```text
///   A ==== B ==== C     one cluster, anti-entropy once an hour
/// ```
/// Account changes travel by gossip, not by anti-entropy rounds: a token made on A works
/// on B and C, a revocation and a suspension on A are refused on B and C (their auth
/// caches evicted), and a healed partition converges at once. With anti-entropy this
/// rare, all of it used to wait an hour (the audit measured 3-5 s at the default 5 s).
#[test]
fn account_changes_and_healed_partitions_reach_the_cluster_without_waiting_for_anti_entropy() {
    let hourly = || options().env("GUTS_ANTI_ENTROPY_INTERVAL", "3600");
    let a = TestNode::start_with(hourly());
    let b = join(&[&a], hourly());
    let c = join(&[&a], hourly());
    for (node, n) in [(&a, 2), (&b, 1), (&c, 1)] {
        wait_peers(node, n);
    }
    // Every node has met every other by now (each peer's first round is done).
    std::thread::sleep(Duration::from_secs(2));
    let within = Duration::from_secs(10);

    let alice = create_user(&a, "alice");
    for node in [&b, &c] {
        eventually(within, "alice's first token on the other nodes", || {
            (user_status(node, &alice) == 200).then_some(())
        });
    }
    // A second token: B has already cached alice; the new one must still work there.
    let r = client()
        .post(a.url("/admin/users/alice/tokens"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "ci" }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().unwrap();
    let second = created["token"].as_str().unwrap().to_string();
    for node in [&b, &c] {
        eventually(within, "the second token on the other nodes", || {
            (user_status(node, &second) == 200).then_some(())
        });
    }
    // Revoked on A: refused on B and C, whose caches held it a moment ago.
    let r = client()
        .delete(a.url(&format!("/admin/users/alice/tokens/{}", created["id"])))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    for node in [&b, &c] {
        eventually(within, "the revocation on the other nodes", || {
            (user_status(node, &second) == 401).then_some(())
        });
    }
    // Suspended on A: alice's other token is refused everywhere.
    assert_eq!(user_status(&b, &alice), 200);
    let r = client()
        .put(a.url("/admin/users/alice/suspended"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "suspended": true }))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    for node in [&b, &c] {
        eventually(within, "the suspension on the other nodes", || {
            (user_status(node, &alice) != 200).then_some(())
        });
    }

    // A partition: C is cut off while bob works on it; once healed, all agree.
    let bob = create_user(&a, "bob");
    wait_account(&c, &bob);
    isolate(&c, true);
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();
    create_repo(&c, &bob, "island", false);
    push_new(
        &git,
        tmp.path(),
        "island",
        &auth_url(&c, "bob", &bob, "bob/island"),
        2,
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(digest(&a).1, 0, "C was not cut off");
    isolate(&c, false);
    eventually(within, "the nodes to agree after the heal", || {
        let digests: Vec<(String, usize)> = [&a, &b, &c].iter().map(|n| digest(n)).collect();
        (digests[0].1 == 1 && digests.iter().all(|d| *d == digests[0])).then_some(())
    });
}
