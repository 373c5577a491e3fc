//! State at scale, from outside: a restarted node folds nothing until a repository is
//! used and reports it in `guts_repo_cache_*`; a budget of nothing keeps only the
//! repository in use; a node killed while writing operations and checkpoints comes
//! back with every acknowledged write and the same state as a node that replays the
//! whole log from zero.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::gitutil::create_repo;
use crate::harness::{
    ADMIN_TOKEN, NodeOptions, Signal, TestNode, api, client, create_user, eventually,
};

const CLUSTER_SECRET: &str = "scale-test-cluster-secret-0123456789abcdef";

fn options(cache_mb: &str) -> NodeOptions {
    NodeOptions::default()
        .env("GUTS_CLUSTER_SECRET", CLUSTER_SECRET)
        .env("GUTS_ANTI_ENTROPY_INTERVAL", "1")
        .env("GUTS_CACHE_MB", cache_mb)
}

/// Opens an issue with a comment; `Some(number)` once both are acknowledged.
fn issue_with_comment(node: &TestNode, token: &str, repo: &str, i: usize) -> Option<u64> {
    let r = client()
        .post(node.url(&format!("/api/v3/repos/{repo}/issues")))
        .header("Authorization", format!("token {token}"))
        .json(&json!({
            "title": format!("issue {i}"),
            "body": "b".repeat(200 + i % 700),
            "labels": [format!("l{}", i % 3)],
        }))
        .timeout(Duration::from_secs(5))
        .send()
        .ok()?;
    if r.status() != 201 {
        return None;
    }
    let number = r.json::<Value>().ok()?["number"].as_u64()?;
    let r = client()
        .post(node.url(&format!("/api/v3/repos/{repo}/issues/{number}/comments")))
        .header("Authorization", format!("token {token}"))
        .json(&json!({ "body": format!("comment {i}") }))
        .timeout(Duration::from_secs(5))
        .send()
        .ok()?;
    (r.status() == 201).then_some(number)
}

/// An authenticated GET (anonymous reads have a small hourly budget).
/// Opens a pull request `feature` → `main` in `repo` (empty), written without git
/// through the contents and refs APIs; returns its head commit.
fn open_pull_without_git(node: &TestNode, token: &str, repo: &str) -> String {
    use base64::Engine as _;
    let call = |method: reqwest::Method, path: &str, body: Value| {
        let (status, body) = api(node, method, token, &format!("/repos/{repo}{path}"), body);
        assert!((200..300).contains(&status), "{path}: {status} {body}");
        body
    };
    let file = |name: &str, branch: &str| {
        let content = base64::engine::general_purpose::STANDARD.encode(name);
        let body = json!({"message": name, "content": content, "branch": branch});
        call(reqwest::Method::PUT, &format!("/contents/{name}"), body)["commit"]["sha"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let main = file("a.txt", "main");
    let body = json!({"ref": "refs/heads/feature", "sha": main});
    call(reqwest::Method::POST, "/git/refs", body);
    let head = file("b.txt", "feature");
    let body = json!({"title": "feature", "head": "feature", "base": "main"});
    call(reqwest::Method::POST, "/pulls", body);
    head
}

fn get(node: &TestNode, token: &str, path: &str) -> (u16, Value) {
    let r = client()
        .get(node.url(path))
        .header("Authorization", format!("token {token}"))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn node_digest(node: &TestNode) -> (String, usize) {
    let r: Value = client()
        .get(node.url("/admin/replication"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    (
        r["state_digest"].as_str().unwrap().to_string(),
        r["repositories"].as_array().unwrap().len(),
    )
}

fn metric(node: &TestNode, series: &str) -> f64 {
    node.metric(series).unwrap_or_else(|| panic!("no {series}"))
}

#[test]
fn a_restarted_node_loads_repositories_on_first_use_and_evicts_under_a_budget() {
    let mut a = TestNode::start_with(options("64"));
    let alice = create_user(&a, "alice");
    for name in ["one", "two"] {
        create_repo(&a, &alice, name, false);
        for i in 0..5 {
            issue_with_comment(&a, &alice, &format!("alice/{name}"), i).unwrap();
        }
    }
    let head = open_pull_without_git(&a, &alice, "alice/two");
    let data = a.data_dir.clone();
    a.stop();

    // Restarted with a budget: nothing is loaded until used, then it stays.
    // (The first node, shadowed, keeps the temporary directory alive.)
    let a = TestNode::start_with(options("64").data_dir(&data));
    assert_eq!(metric(&a, "guts_repo_cache_misses_total"), 0.0);
    assert_eq!(metric(&a, "guts_repo_cache_bytes"), 0.0);
    assert_eq!(metric(&a, "guts_repositories_total"), 2.0);
    assert_eq!(metric(&a, r#"guts_issues_total{state="open"}"#), 10.0);
    let (status, issue) = get(&a, &alice, "/api/v3/repos/alice/two/issues/3");
    assert_eq!(status, 200, "{issue}");
    assert_eq!(issue["title"], "issue 2");
    assert_eq!(issue["comments"], 1);
    // An issue is read from the store's thread rows: a miss that loads nothing.
    assert_eq!(metric(&a, "guts_repo_cache_misses_total"), 1.0);
    assert_eq!(metric(&a, "guts_repo_cache_bytes"), 0.0);
    // So is the pull request list: rendered whole (branches, author's role) from the
    // rows and the repository's header.
    let (status, pulls) = get(&a, &alice, "/api/v3/repos/alice/two/pulls?state=open");
    assert_eq!(status, 200, "{pulls}");
    let pulls = pulls.as_array().unwrap();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert_eq!(pulls[0]["number"], 6, "after the five issues");
    assert_eq!(pulls[0]["head"]["sha"], head.as_str());
    assert_eq!(pulls[0]["base"]["ref"], "main");
    assert_eq!(pulls[0]["author_association"], "OWNER");
    let (status, closed) = get(&a, &alice, "/api/v3/repos/alice/two/pulls?state=closed");
    assert_eq!((status, closed), (200, json!([])));
    assert_eq!(metric(&a, "guts_repo_cache_misses_total"), 3.0);
    assert_eq!(metric(&a, "guts_repo_cache_bytes"), 0.0);
    // Its comments need the state: loaded, then kept.
    let (status, comments) = get(&a, &alice, "/api/v3/repos/alice/two/issues/3/comments");
    assert_eq!(status, 200, "{comments}");
    assert_eq!(comments.as_array().unwrap().len(), 1);
    assert_eq!(metric(&a, "guts_repo_cache_misses_total"), 4.0);
    assert!(metric(&a, "guts_repo_cache_bytes") > 0.0);
    get(&a, &alice, "/api/v3/repos/alice/two/issues/4/comments");
    get(&a, &alice, "/api/v3/repos/alice/two/issues/4");
    assert!(metric(&a, "guts_repo_cache_hits_total") >= 2.0);
    assert_eq!(metric(&a, "guts_repo_cache_evictions_total"), 0.0);
    assert!(metric(&a, "guts_repo_open_duration_seconds_count") >= 1.0);
    drop(a);

    // With no budget, only the repository in use stays: moving between two loads and
    // evicts every time (issue lists need no state), and everything still works.
    let a = TestNode::start_with(options("0").data_dir(&data));
    for _ in 0..3 {
        for name in ["one", "two"] {
            let (status, list) = get(
                &a,
                &alice,
                &format!("/api/v3/repos/alice/{name}/issues?state=all&per_page=100"),
            );
            assert_eq!(status, 200);
            // GitHub's issue list holds pull requests too: `two` has one.
            let pulls = usize::from(name == "two");
            assert_eq!(list.as_array().unwrap().len(), 5 + pulls);
            // Lists come from thread rows, filtered ones too; comments load the state.
            let (status, l1) = get(
                &a,
                &alice,
                &format!("/api/v3/repos/alice/{name}/issues?state=open&labels=L1"),
            );
            assert_eq!(status, 200);
            let numbers: Vec<u64> = l1
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["number"].as_u64().unwrap())
                .collect();
            assert_eq!(numbers, vec![5, 2], "issues 1 and 4 carry l1");
            let path = format!("/api/v3/repos/alice/{name}/issues/1/comments");
            let (status, comments) = get(&a, &alice, &path);
            assert_eq!(status, 200);
            assert_eq!(comments.as_array().unwrap().len(), 1);
        }
    }
    issue_with_comment(&a, &alice, "alice/one", 9).unwrap();
    let (_, list) = get(
        &a,
        &alice,
        "/api/v3/repos/alice/one/issues?state=all&per_page=100",
    );
    assert_eq!(list.as_array().unwrap().len(), 6);
    assert!(metric(&a, "guts_repo_cache_evictions_total") >= 5.0);
    assert!(
        metric(&a, "guts_repo_cache_bytes") > 0.0,
        "the one in use stays"
    );
}

#[test]
fn a_node_killed_while_writing_keeps_every_acknowledged_write_and_agrees_with_a_replay() {
    let mut a = TestNode::start_with(options("1"));
    let alice = create_user(&a, "alice");
    let repos: Vec<String> = (0..3).map(|i| format!("alice/r{i}")).collect();
    for repo in &repos {
        create_repo(&a, &alice, repo.trim_start_matches("alice/"), false);
    }
    // One repository is written before the load and not during it: its checkpoint is
    // current when the node dies, and the restarted node reads it.
    create_repo(&a, &alice, "quiet", false);
    let quiet: Vec<u64> = (0..5)
        .map(|i| issue_with_comment(&a, &alice, "alice/quiet", i).unwrap())
        .collect();
    // Writers on every repository, each recording what was acknowledged, until the
    // node dies under them.
    let stop = Arc::new(AtomicBool::new(false));
    let url_node = &a;
    let acked: Vec<(String, u64)> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (stop, repos, alice) = (stop.clone(), repos.clone(), alice.clone());
                scope.spawn(move || {
                    let mut done = Vec::new();
                    let mut i = w;
                    while !stop.load(Ordering::Relaxed) {
                        let repo = &repos[i % repos.len()];
                        match issue_with_comment(url_node, &alice, repo, i) {
                            Some(number) => done.push((repo.clone(), number)),
                            None => break,
                        }
                        i += 4;
                    }
                    done
                })
            })
            .collect();
        // Checkpoints are written every 2 s: the kill lands amid writes and passes.
        eventually(
            Duration::from_secs(30),
            "checkpoints written under load",
            || {
                url_node
                    .logs()
                    .contains("checkpoints written")
                    .then_some(())
            },
        );
        std::thread::sleep(Duration::from_millis(2300));
        url_node.signal(Signal::SIGKILL);
        stop.store(true, Ordering::Relaxed);
        writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(
        acked.len() > 20,
        "too few writes to mean anything: {}",
        acked.len()
    );
    a.wait_exit(Duration::from_secs(10)).unwrap();
    // The killed node keeps its temporary data directory alive until the test ends.
    let (data, port) = (a.data_dir.clone(), a.p2p);

    let a = TestNode::start_with(options("1").data_dir(&data).p2p_port(port));
    for (repo, number) in &acked {
        let (status, issue) = get(&a, &alice, &format!("/api/v3/repos/{repo}/issues/{number}"));
        assert_eq!(status, 200, "{repo}#{number} was acknowledged: {issue}");
    }
    assert!(
        !a.logs().contains("summary disagreed"),
        "a summary was wrong after the kill"
    );
    for number in &quiet {
        let (status, _) = get(
            &a,
            &alice,
            &format!("/api/v3/repos/alice/quiet/issues/{number}"),
        );
        assert_eq!(status, 200);
        // The comments need the state.
        let (status, _) = get(
            &a,
            &alice,
            &format!("/api/v3/repos/alice/quiet/issues/{number}/comments"),
        );
        assert_eq!(status, 200);
    }
    assert!(
        a.logs().contains("state loaded from its checkpoint"),
        "the quiet repository was not read from its checkpoint"
    );

    // A fresh node takes every operation from A and folds it from zero: the states
    // agree, repository by repository.
    let b = TestNode::start_with(options("1").env("GUTS_BOOTSTRAP_PEERS", &a.p2p_addr()));
    let agreed = eventually(Duration::from_secs(60), "the nodes to agree", || {
        let (da, db) = (node_digest(&a), node_digest(&b));
        (da.1 == repos.len() + 1 && da == db).then_some(da.0)
    });
    assert!(!agreed.is_empty());
    let issues = |node: &TestNode, repo: &str, filter: &str| -> Vec<(u64, String, u64)> {
        let path = format!("/api/v3/repos/{repo}/issues?state=all&per_page=100{filter}");
        let (status, list) = get(node, &alice, &path);
        assert_eq!(status, 200);
        list.as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let title = i["title"].as_str().unwrap().to_string();
                (
                    i["number"].as_u64().unwrap(),
                    title,
                    i["comments"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    for repo in repos.iter().map(String::as_str).chain(["alice/quiet"]) {
        assert_eq!(issues(&a, repo, ""), issues(&b, repo, ""), "{repo}");
        let labelled = "&labels=l1";
        assert_eq!(
            issues(&a, repo, labelled),
            issues(&b, repo, labelled),
            "{repo}"
        );
    }
}
