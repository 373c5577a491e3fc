//! A StatefulSet's rolling restart, on 127.0.0.1: three node processes configured only
//! with what k8s/configmap.yaml and k8s/statefulset.yaml set (listen addresses and the
//! data directory adapted to one machine, peers found by DNS name through the bootstrap
//! list that names every replica, itself included), restarted one by one with SIGTERM
//! while a client keeps pushing and cloning against ready nodes. No acknowledged push
//! may be lost, and every node must end with the same state digest.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::gitutil::{Git, anon_url, auth_url, create_repo, workspace_root};
use crate::harness::{
    ADMIN_TOKEN, NodeOptions, TestNode, client, create_user, eventually, free_port,
};

const CLUSTER_SECRET: &str = "rolling-restart-cluster-secret-0123456789";

/// `GUTS_*` entries of the ConfigMap, minus what one machine must change: listen
/// addresses (the harness gives each node its own loopback ports) and the data
/// directory (the harness gives each node its own).
fn configmap_env() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(workspace_root().join("k8s/configmap.yaml")).unwrap();
    let adapted = [
        "GUTS_API_ADDR",
        "GUTS_METRICS_ADDR",
        "GUTS_P2P_ADDR",
        "GUTS_SSH_ADDR",
        "GUTS_DATA_DIR",
    ];
    let env: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| {
            let (key, value) = line.trim().split_once(':')?;
            let key = key.trim();
            let value = value.trim().trim_matches('"');
            (key.starts_with("GUTS_") && !adapted.contains(&key))
                .then(|| (key.to_string(), value.to_string()))
        })
        .collect();
    assert!(
        env.iter().any(|(k, _)| k == "GUTS_SHUTDOWN_TIMEOUT"),
        "the ConfigMap was not read: {env:?}"
    );
    env
}

/// The StatefulSet's per-pod environment: the bootstrap list names every replica by
/// DNS (here `localhost`, on each replica's p2p port), and the Secret's values.
fn pod_options(p2p_ports: &[u16], me: usize, data_dir: &Path) -> NodeOptions {
    let mut options = NodeOptions::default()
        .data_dir(data_dir)
        .p2p_port(p2p_ports[me]);
    for (k, v) in configmap_env() {
        options = options.env(&k, &v);
    }
    let peers: Vec<String> = p2p_ports
        .iter()
        .map(|port| format!("/dns4/localhost/tcp/{port}"))
        .collect();
    options
        .env("GUTS_BOOTSTRAP_PEERS", &peers.join(","))
        .env("GUTS_CLUSTER_SECRET", CLUSTER_SECRET)
        // The manifests' admin token is a placeholder the node refuses; the harness
        // sets its own, as the Secret would.
        .env("GUTS_ADMIN_TOKEN", ADMIN_TOKEN)
        // Anti-entropy every second rather than every five keeps the test short; the
        // announcements do the real work.
        .env("GUTS_ANTI_ENTROPY_INTERVAL", "1")
        .env("GUTS_SHUTDOWN_TIMEOUT", "20")
}

/// Starts the pods in parallel (the StatefulSet's `podManagementPolicy: Parallel`: a
/// pod is ready once it reached a peer, so they must come up together).
fn start_all(ports: &[u16], dirs: &[std::path::PathBuf]) -> Vec<TestNode> {
    let handles: Vec<_> = (0..ports.len())
        .map(|i| {
            let options = pod_options(ports, i, &dirs[i]);
            std::thread::spawn(move || TestNode::start_with(options))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn state_digest(node: &TestNode) -> Option<(String, usize)> {
    let r = client()
        .get(node.url("/admin/replication"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .ok()?;
    let body: serde_json::Value = r.json().ok()?;
    Some((
        body["state_digest"].as_str()?.to_string(),
        body["repositories"].as_array()?.len(),
    ))
}

/// Where the client may go: the API addresses of the nodes that are up.
type Ready = Arc<Mutex<Vec<Option<String>>>>;

#[test]
fn a_rolling_restart_under_pushes_and_clones_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let dirs: Vec<_> = (0..3)
        .map(|i| tmp.path().join(format!("guts-{i}")))
        .collect();
    let mut nodes = start_all(&ports, &dirs);

    let alice = create_user(&nodes[0], "alice");
    create_repo(&nodes[0], &alice, "busy", false);
    eventually(
        Duration::from_secs(60),
        "the repository on every pod",
        || {
            nodes
                .iter()
                .all(|n| {
                    client()
                        .get(n.url("/api/v3/repos/alice/busy"))
                        .send()
                        .is_ok_and(|r| r.status() == 200)
                })
                .then_some(())
        },
    );

    let ready: Ready = Arc::new(Mutex::new(
        nodes.iter().map(|n| Some(n.api.to_string())).collect(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let clones = Arc::new(Mutex::new(0usize));
    let git = Git::v(2);
    let work = git.init(tmp.path(), "work");
    git.ok(&work, &["checkout", "-q", "-b", "main"]);

    let client_thread = {
        let (ready, stop, acknowledged, clones) = (
            ready.clone(),
            stop.clone(),
            acknowledged.clone(),
            clones.clone(),
        );
        let (work, scratch, alice) = (work.clone(), tmp.path().join("clones"), alice.clone());
        std::thread::spawn(move || {
            std::fs::create_dir_all(&scratch).unwrap();
            let mut round = 0usize;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let targets: Vec<String> =
                    ready.lock().unwrap().iter().flatten().cloned().collect();
                let Some(api) = targets.get(round % targets.len().max(1)).cloned() else {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                git.commits(&work, &format!("r{round}"), 1);
                let url = format!("http://alice:{alice}@{api}/alice/busy.git");
                // A push to a node that is going down may fail: not acknowledged, so
                // it is retried (with the next commit) against another node.
                if git
                    .run(&work, &["push", "-q", &url, "main"])
                    .status
                    .success()
                {
                    acknowledged.lock().unwrap().push(git.rev(&work, "main"));
                }
                if round.is_multiple_of(3) {
                    let dest = scratch.join(format!("c{round}"));
                    let run = git.run(
                        &scratch,
                        &[
                            "clone",
                            "-q",
                            "--bare",
                            &format!("http://{api}/alice/busy.git"),
                            dest.to_str().unwrap(),
                        ],
                    );
                    if run.status.success() {
                        git.fsck(&dest);
                        *clones.lock().unwrap() += 1;
                    }
                }
            }
        })
    };

    // Roll: each pod in turn is stopped with SIGTERM (it must exit 0 within its
    // shutdown timeout), restarted on its volume, and waited for until ready.
    for i in (0..3).rev() {
        std::thread::sleep(Duration::from_secs(2));
        ready.lock().unwrap()[i] = None;
        let status = nodes[i].stop();
        assert!(
            status.success(),
            "pod {i} exited with {status}:\n{}",
            nodes[i].logs()
        );
        let restarted = TestNode::start_with(pod_options(&ports, i, &dirs[i]));
        ready.lock().unwrap()[i] = Some(restarted.api.to_string());
        nodes[i] = restarted;
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    client_thread.join().unwrap();

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 10,
        "too few pushes went through: {}",
        acknowledged.len()
    );
    assert!(*clones.lock().unwrap() >= 3, "too few clones went through");
    let last = acknowledged.last().unwrap().clone();

    // Every pod ends identical, at the last acknowledged push, which contains every
    // earlier one.
    let agreed = eventually(Duration::from_secs(60), "the pods to agree", || {
        let digests: Vec<(String, usize)> =
            nodes.iter().map(state_digest).collect::<Option<_>>()?;
        let heads: Vec<BTreeMap<String, String>> = nodes
            .iter()
            .map(|n| git.ls_remote(&anon_url(n, "alice/busy")))
            .collect();
        let same = digests.windows(2).all(|w| w[0] == w[1]);
        let at_last = heads
            .iter()
            .all(|h| h.get("refs/heads/main") == Some(&last));
        (same && at_last).then(|| digests[0].clone())
    });
    assert_eq!(agreed.1, 1);
    for tip in &acknowledged {
        git.ok(&work, &["merge-base", "--is-ancestor", tip, &last]);
    }
    let check = tmp.path().join("final");
    std::fs::create_dir_all(&check).unwrap();
    let expected: BTreeMap<String, String> = [("refs/heads/main".to_string(), last)].into();
    for (i, node) in nodes.iter().enumerate() {
        git.assert_clone_identical(
            &auth_url(node, "alice", &alice, "alice/busy"),
            &expected,
            &check,
            &format!("pod{i}"),
        );
    }
}
