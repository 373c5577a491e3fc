//! Commit statuses against real nodes: CI posts `pending` then `success` on a pushed
//! commit and the combined state follows GitHub's rules; branches, tags and shas name
//! the commit alike (a branch with `/` included); readers and strangers are refused;
//! bad input is a 422, never a 5xx; and a status posted on node B is served by node A.

use std::time::Duration;

use serde_json::{Value, json};

use crate::gitutil::{Git, add_collaborator, auth_url, create_repo};
use crate::harness::{NodeOptions, TestNode, api, create_user, eventually, peer_count};

fn get(node: &TestNode, token: &str, path: &str) -> (u16, Value) {
    api(node, reqwest::Method::GET, token, path, Value::Null)
}

fn post(node: &TestNode, token: &str, path: &str, body: Value) -> (u16, Value) {
    api(node, reqwest::Method::POST, token, path, body)
}

/// Pushes one commit to `main` and one to `feature/x` of `repo`, and tag `v1`;
/// answers main's sha (check runs' tests use it too).
pub(crate) fn push_history(node: &TestNode, login: &str, token: &str, repo: &str) -> String {
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let tree = git.init(work.path(), "w");
    let sha = git.commit(&tree, &[("README.md", b"# ci\n")], "Initial commit");
    let url = auth_url(node, login, token, repo);
    git.ok(
        &tree,
        &["push", "--quiet", &url, "main", "main:refs/heads/feature/x"],
    );
    git.ok(&tree, &["tag", "v1"]);
    git.ok(&tree, &["push", "--quiet", &url, "v1"]);
    sha.trim().to_string()
}

#[test]
fn ci_posts_statuses_and_the_combined_state_follows() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    let carol = create_user(&node, "carol");
    create_repo(&node, &alice, "ci", false);
    add_collaborator(&node, &alice, "alice/ci", "bob", "pull");
    let sha = push_history(&node, "alice", &alice, "alice/ci");

    // No status yet: pending, none listed.
    let (status, body) = get(
        &node,
        &alice,
        &format!("/repos/alice/ci/commits/{sha}/status"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "pending");
    assert_eq!(body["total_count"], 0);
    assert_eq!(body["sha"], sha.as_str());

    let path = format!("/repos/alice/ci/statuses/{sha}");
    let (status, body) = post(
        &node,
        &alice,
        &path,
        json!({"state": "pending", "context": "ci", "description": "building", "target_url": "https://ci.example/1"}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"], "pending");
    assert_eq!(body["context"], "ci");
    assert_eq!(body["creator"]["login"], "alice");
    assert_eq!(body["target_url"], "https://ci.example/1");
    assert!(body["url"].as_str().unwrap().ends_with(&path), "{body}");

    // No context: GitHub's `default`.
    let (status, body) = post(&node, &alice, &path, json!({"state": "success"}));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["context"], "default");
    assert_eq!(body["description"], Value::Null);

    let combined = |rev: &str| {
        get(
            &node,
            &alice,
            &format!("/repos/alice/ci/commits/{rev}/status"),
        )
    };
    let (_, body) = combined(&sha);
    assert_eq!(body["state"], "pending", "{body}");
    assert_eq!(body["total_count"], 2);

    let (status, _) = post(
        &node,
        &alice,
        &path,
        json!({"state": "success", "context": "CI"}),
    );
    assert_eq!(status, 201);
    // Every name of the commit answers the same: sha, branch, branch with `/`, tag.
    for rev in [sha.as_str(), "main", "feature/x", "v1"] {
        let (status, body) = combined(rev);
        assert_eq!(status, 200, "{rev}: {body}");
        assert_eq!(body["state"], "success", "{rev}: {body}");
        assert_eq!(body["total_count"], 2, "{rev}");
        assert_eq!(body["repository"]["full_name"], "alice/ci");
    }
    let (status, list) = get(&node, &alice, "/repos/alice/ci/commits/main/statuses");
    assert_eq!(status, 200, "{list}");
    let states: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["success", "success", "pending"],
        "newest first: {list}"
    );

    // A failure on any context fails the combination.
    let (status, _) = post(
        &node,
        &alice,
        &path,
        json!({"state": "error", "context": "lint"}),
    );
    assert_eq!(status, 201);
    assert_eq!(combined("main").1["state"], "failure");

    // The commit route itself still answers.
    let (status, body) = get(&node, &alice, "/repos/alice/ci/commits/main");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sha"], sha.as_str());

    // A reader may read but not post; a stranger cannot post either.
    let (status, _) = get(
        &node,
        &bob,
        &format!("/repos/alice/ci/commits/{sha}/statuses"),
    );
    assert_eq!(status, 200);
    for token in [&bob, &carol] {
        let (status, body) = post(&node, token, &path, json!({"state": "success"}));
        assert_eq!(status, 403, "{body}");
    }
    // A private repository is not found for a stranger.
    create_repo(&node, &alice, "secret", true);
    let secret = push_history(&node, "alice", &alice, "alice/secret");
    let (status, _) = post(
        &node,
        &carol,
        &format!("/repos/alice/secret/statuses/{secret}"),
        json!({"state": "success"}),
    );
    assert_eq!(status, 404);
    let (status, _) = get(
        &node,
        &carol,
        &format!("/repos/alice/secret/commits/{secret}/status"),
    );
    assert_eq!(status, 404);

    // Bad input: 422 naming the problem, never a 5xx.
    let unknown = "0".repeat(40);
    for (target, body) in [
        (path.clone(), json!({"state": "done"})),
        (path.clone(), json!({})),
        (
            path.clone(),
            json!({"state": "success", "description": "x".repeat(141)}),
        ),
        (
            path.clone(),
            json!({"state": "success", "context": "c".repeat(256)}),
        ),
        (path.clone(), json!({"state": "success", "context": ""})),
        (
            path.clone(),
            json!({"state": "success", "target_url": "u".repeat(2049)}),
        ),
        (path.clone(), json!({"state": 5})),
        (
            format!("/repos/alice/ci/statuses/{unknown}"),
            json!({"state": "success"}),
        ),
        (
            "/repos/alice/ci/statuses/nope".to_string(),
            json!({"state": "success"}),
        ),
    ] {
        let (status, answer) = post(&node, &alice, &target, body.clone());
        assert_eq!(status, 422, "{target} {body}: {answer}");
    }
    let (status, body) = get(&node, &alice, "/repos/alice/ci/commits/nope/status");
    assert_eq!(status, 422, "{body}");
    // 140 characters of four bytes each are accepted: the limit is in characters.
    let (status, body) = post(
        &node,
        &alice,
        &path,
        json!({"state": "success", "context": "wide", "description": "😀".repeat(140)}),
    );
    assert_eq!(status, 201, "{body}");
}

const CLUSTER_SECRET: &str = "statuses-test-cluster-secret-0123456789ab";

fn options() -> NodeOptions {
    NodeOptions::default()
        .env("GUTS_CLUSTER_SECRET", CLUSTER_SECRET)
        .env("GUTS_ANTI_ENTROPY_INTERVAL", "1")
}

/// Nodes A and B of one cluster (B bootstraps from A, anti-entropy every second),
/// connected, with user alice known to both: answers them and alice's token (check
/// runs' two-node test starts the same way).
pub(crate) fn two_nodes_with_alice(converge: Duration) -> (TestNode, TestNode, String) {
    let a = TestNode::start_with(options());
    let b = TestNode::start_with(options().env("GUTS_BOOTSTRAP_PEERS", &a.p2p_addr()));
    eventually(converge, "peers to connect", || {
        (peer_count(&a) >= 1 && peer_count(&b) >= 1).then_some(())
    });
    let alice = create_user(&a, "alice");
    eventually(converge, "the account to reach B", || {
        (get(&b, &alice, "/user").0 == 200).then_some(())
    });
    (a, b, alice)
}

#[test]
fn a_status_posted_on_b_is_served_by_a() {
    //  A <── B   (B bootstraps from A)
    let converge = Duration::from_secs(60);
    let (a, b, alice) = two_nodes_with_alice(converge);
    create_repo(&a, &alice, "ci", false);
    let sha = push_history(&a, "alice", &alice, "alice/ci");
    eventually(converge, "the push to reach B", || {
        (get(&b, &alice, &format!("/repos/alice/ci/commits/{sha}")).0 == 200).then_some(())
    });

    let (status, body) = post(
        &b,
        &alice,
        &format!("/repos/alice/ci/statuses/{sha}"),
        json!({"state": "failure", "context": "ci"}),
    );
    assert_eq!(status, 201, "{body}");
    let on_a = eventually(converge, "the status to reach A", || {
        let (status, body) = get(&a, &alice, "/repos/alice/ci/commits/main/status");
        (status == 200 && body["total_count"] == 1).then_some(body)
    });
    assert_eq!(on_a["state"], "failure");
    assert_eq!(on_a["statuses"][0]["context"], "ci");
}

fn put(node: &TestNode, token: &str, path: &str, body: Value) -> (u16, Value) {
    api(node, reqwest::Method::PUT, token, path, body)
}

/// The CI loop of issue 16 on a two-node cluster: a pull request into a branch that
/// requires `ci` cannot merge while `ci` is pending, absent or failing (on either
/// node, and neither can a direct push land the commit), and merges once it is green.
/// A pushed `alice/ci` whose `feature` is one commit ahead of `main`.
pub(crate) struct Feature {
    pub(crate) git: Git,
    /// Holds the work tree.
    pub(crate) _work: tempfile::TempDir,
    pub(crate) tree: std::path::PathBuf,
    /// Alice's push URL.
    pub(crate) url: String,
    /// The feature head's sha.
    pub(crate) head: String,
}

/// Creates `alice/ci` on `node` and pushes `main` (one commit) and `feature` (one
/// commit more) with the real git (check runs' two-node test starts the same way).
pub(crate) fn feature(node: &TestNode, alice: &str) -> Feature {
    create_repo(node, alice, "ci", false);
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let tree = git.init(work.path(), "w");
    git.commit(&tree, &[("README.md", b"# ci\n")], "Initial commit");
    let url = auth_url(node, "alice", alice, "alice/ci");
    git.ok(&tree, &["push", "--quiet", &url, "main"]);
    git.ok(&tree, &["checkout", "--quiet", "-b", "feature"]);
    let head = git.commit(&tree, &[("feature.txt", b"f\n")], "Feature");
    let head = head.trim().to_string();
    git.ok(&tree, &["push", "--quiet", &url, "feature"]);
    Feature {
        git,
        _work: work,
        tree,
        url,
        head,
    }
}

#[test]
fn required_checks_hold_back_the_merge_on_every_node() {
    //  A <── B   (B bootstraps from A)
    let converge = Duration::from_secs(60);
    let (a, b, alice) = two_nodes_with_alice(converge);
    let Feature {
        git,
        _work,
        tree,
        url,
        head,
    } = feature(&a, &alice);

    let protection = "/repos/alice/ci/branches/main/protection";
    let (status, body) = put(
        &a,
        &alice,
        protection,
        json!({
            "required_status_checks": {"strict": true, "contexts": ["ci"]},
            "enforce_admins": null,
            "required_pull_request_reviews": null,
            "restrictions": null
        }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["required_status_checks"]["contexts"], json!(["ci"]));
    assert_eq!(body["required_status_checks"]["strict"], true);
    let (_, body) = get(&a, &alice, protection);
    assert_eq!(
        body["required_status_checks"]["checks"][0]["context"], "ci",
        "{body}"
    );

    let (status, pull) = post(
        &a,
        &alice,
        "/repos/alice/ci/pulls",
        json!({"title": "Feature", "head": "feature", "base": "main"}),
    );
    assert_eq!(status, 201, "{pull}");
    let merge = "/repos/alice/ci/pulls/1/merge";
    let statuses = format!("/repos/alice/ci/statuses/{head}");

    // Absent, then pending: expected; the pull request says it is blocked.
    let (status, body) = put(&a, &alice, merge, json!({}));
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["message"], "Required status check \"ci\" is expected.");
    let (status, _) = post(
        &a,
        &alice,
        &statuses,
        json!({"state": "pending", "context": "ci"}),
    );
    assert_eq!(status, 201);
    let state = eventually(converge, "mergeable_state to be computed", || {
        let (_, pull) = get(&a, &alice, "/repos/alice/ci/pulls/1");
        let state = pull["mergeable_state"].as_str()?.to_string();
        (state != "unknown").then_some(state)
    });
    assert_eq!(state, "blocked");
    let (status, body) = put(&a, &alice, merge, json!({}));
    assert_eq!(status, 405, "{body}");

    // A direct push of the unchecked commit is refused too.
    let pushed = git.fails(&tree, &["push", "--quiet", &url, "feature:main"]);
    assert!(pushed.stderr.contains("Required status check"), "{pushed}");

    // Failing, posted on B: refused on both nodes.
    let (status, _) = post(
        &b,
        &alice,
        &statuses,
        json!({"state": "failure", "context": "ci"}),
    );
    assert_eq!(status, 201);
    for node in [&a, &b] {
        let body = eventually(converge, "the failure to replicate", || {
            let (status, body) = put(node, &alice, merge, json!({}));
            assert_eq!(status, 405, "{body}");
            (body["message"] == "Required status check \"ci\" is failing.").then_some(body)
        });
        assert_eq!(body["message"], "Required status check \"ci\" is failing.");
    }

    // Green: the merge goes through, and B sees it merged.
    let (status, _) = post(
        &a,
        &alice,
        &statuses,
        json!({"state": "success", "context": "ci"}),
    );
    assert_eq!(status, 201);
    let (status, body) = put(&a, &alice, merge, json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["merged"], true);
    eventually(converge, "the merge to reach B", || {
        (get(&b, &alice, "/repos/alice/ci/pulls/1").1["merged"] == true).then_some(())
    });
}

/// Strict required checks: a green head that does not contain the base's tip is
/// refused (the fold's rule, after the merge commit is written), and merges once the
/// head is brought up to date and checked again.
#[test]
fn strict_checks_want_the_head_up_to_date() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "ci", false);
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let tree = git.init(work.path(), "w");
    git.commit(&tree, &[("README.md", b"# ci\n")], "Initial commit");
    let url = auth_url(&node, "alice", &alice, "alice/ci");
    git.ok(&tree, &["push", "--quiet", &url, "main"]);
    git.ok(&tree, &["checkout", "--quiet", "-b", "feature"]);
    let head = git.commit(&tree, &[("feature.txt", b"f\n")], "Feature");
    git.ok(&tree, &["push", "--quiet", &url, "feature"]);
    // Main moves on (through a branch first, so its commit can be checked).
    git.ok(&tree, &["checkout", "--quiet", "main"]);
    let ahead = git.commit(&tree, &[("main.txt", b"m\n")], "Main moves");
    git.ok(&tree, &["push", "--quiet", &url, "main:refs/heads/next"]);
    let green = |sha: &str| {
        let path = format!("/repos/alice/ci/statuses/{}", sha.trim());
        let (status, body) = post(
            &node,
            &alice,
            &path,
            json!({"state": "success", "context": "ci"}),
        );
        assert_eq!(status, 201, "{body}");
    };
    let (status, body) = put(
        &node,
        &alice,
        "/repos/alice/ci/branches/main/protection",
        json!({"required_status_checks": {"strict": true, "contexts": ["ci"]},
               "enforce_admins": null, "required_pull_request_reviews": null, "restrictions": null}),
    );
    assert_eq!(status, 200, "{body}");
    green(&ahead);
    git.ok(&tree, &["push", "--quiet", &url, "main"]);
    let (status, pull) = post(
        &node,
        &alice,
        "/repos/alice/ci/pulls",
        json!({"title": "Feature", "head": "feature", "base": "main"}),
    );
    assert_eq!(status, 201, "{pull}");
    green(&head);
    let (status, body) = put(&node, &alice, "/repos/alice/ci/pulls/1/merge", json!({}));
    assert_eq!(status, 405, "{body}");
    assert_eq!(
        body["message"],
        "Head branch is not up to date with the base branch."
    );
    let (_, main) = get(&node, &alice, "/repos/alice/ci/branches/main");
    assert_eq!(
        main["commit"]["sha"],
        ahead.trim(),
        "the refused merge moved main"
    );

    // Brought up to date and checked again: it merges.
    git.ok(&tree, &["checkout", "--quiet", "feature"]);
    git.ok(&tree, &["merge", "--quiet", "--no-edit", "main"]);
    let updated = git.rev(&tree, "HEAD");
    git.ok(&tree, &["push", "--quiet", &url, "feature"]);
    green(&updated);
    let (status, body) = put(&node, &alice, "/repos/alice/ci/pulls/1/merge", json!({}));
    assert_eq!(status, 200, "{body}");
}
