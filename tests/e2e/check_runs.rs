//! Check runs against real nodes: CI creates a run on a pushed commit, moves it to in
//! progress and completes it (GitHub's shapes, the commit's runs and its synthesised
//! suite, their filters); readers and strangers are refused; bad input is a 422 (an
//! unknown run a 404), never a 5xx; and on a two-node cluster a run written on node B
//! holds back, then lets through, a merge on node A into a branch that requires it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::gitutil::{add_collaborator, create_repo};
use crate::harness::{TestNode, api, create_user, eventually};
use crate::statuses::{feature, push_history, two_nodes_with_alice};

fn call(node: &TestNode, method: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    api(node, method, token, path, body)
}

fn get(node: &TestNode, token: &str, path: &str) -> (u16, Value) {
    call(node, "GET", token, path, Value::Null)
}

#[test]
fn ci_writes_check_runs_through_their_life() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    let carol = create_user(&node, "carol");
    create_repo(&node, &alice, "ci", false);
    add_collaborator(&node, &alice, "alice/ci", "bob", "pull");
    let sha = push_history(&node, "alice", &alice, "alice/ci");
    let runs = "/repos/alice/ci/check-runs";

    // None yet: empty lists in GitHub's shapes.
    let (status, body) = get(&node, &alice, "/repos/alice/ci/commits/main/check-runs");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"total_count": 0, "check_runs": []}));
    let (status, body) = get(&node, &alice, "/repos/alice/ci/commits/main/check-suites");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"total_count": 0, "check_suites": []}));

    let (status, run) = call(
        &node,
        "POST",
        &alice,
        runs,
        json!({"name": "build", "head_sha": sha, "details_url": "https://ci.example/1", "external_id": "42"}),
    );
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["status"], "queued");
    assert_eq!(run["conclusion"], Value::Null);
    assert_eq!(run["head_sha"], sha.as_str());
    assert_eq!(run["external_id"], "42");
    assert!(run["started_at"].is_string(), "{run}");
    let id = run["id"].as_u64().unwrap();
    let one = format!("{runs}/{id}");
    assert!(run["url"].as_str().unwrap().ends_with(&one), "{run}");

    let (status, body) = call(
        &node,
        "PATCH",
        &alice,
        &one,
        json!({"status": "in_progress", "started_at": "2026-01-02T03:04:05Z"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "in_progress");
    assert_eq!(body["started_at"], "2026-01-02T03:04:05Z");
    // A second, independent check, completed at once.
    let (status, lint) = call(
        &node,
        "POST",
        &alice,
        runs,
        json!({"name": "lint", "head_sha": sha, "conclusion": "neutral",
               "output": {"title": "Lint", "summary": "nothing to say"}}),
    );
    assert_eq!(status, 201, "{lint}");
    assert_eq!(lint["status"], "completed");
    assert!(lint["completed_at"].is_string(), "{lint}");
    assert_eq!(lint["output"]["summary"], "nothing to say");

    let (_, suites) = get(
        &node,
        &bob,
        "/repos/alice/ci/commits/feature/x/check-suites",
    );
    assert_eq!(suites["total_count"], 1, "{suites}");
    assert_eq!(suites["check_suites"][0]["status"], "in_progress");
    assert_eq!(suites["check_suites"][0]["latest_check_runs_count"], 2);
    assert_eq!(suites["check_suites"][0]["head_commit"]["id"], sha.as_str());
    assert_eq!(suites["check_suites"][0]["head_branch"], "feature/x");

    let (status, body) = call(
        &node,
        "PATCH",
        &alice,
        &one,
        json!({"conclusion": "success", "output": {"title": "Build", "summary": "ok", "text": "details"}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["conclusion"], "success");
    let (status, body) = get(&node, &bob, &one);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["text"], "details");
    assert_eq!(body["check_suite"]["id"], suites["check_suites"][0]["id"]);

    // Filters and paging of the commit's runs.
    let list = |query: &str| {
        let (status, body) = get(
            &node,
            &alice,
            &format!("/repos/alice/ci/commits/{sha}/check-runs{query}"),
        );
        assert_eq!(status, 200, "{query}: {body}");
        body
    };
    assert_eq!(list("")["total_count"], 2);
    assert_eq!(list("?check_name=build")["check_runs"][0]["id"], id);
    assert_eq!(list("?status=queued")["total_count"], 0);
    let paged = list("?per_page=1&page=2");
    assert_eq!(paged["total_count"], 2);
    assert_eq!(paged["check_runs"].as_array().unwrap().len(), 1);
    let (_, suites) = get(&node, &alice, "/repos/alice/ci/commits/main/check-suites");
    assert_eq!(suites["check_suites"][0]["status"], "completed");
    assert_eq!(suites["check_suites"][0]["conclusion"], "success");

    // A reader may read but not write; a stranger neither writes.
    for token in [&bob, &carol] {
        let (status, body) = call(
            &node,
            "POST",
            token,
            runs,
            json!({"name": "x", "head_sha": sha}),
        );
        assert_eq!(status, 403, "{body}");
        let (status, body) = call(&node, "PATCH", token, &one, json!({"status": "queued"}));
        assert_eq!(status, 403, "{body}");
    }

    // Bad input: 422 naming the problem, never a 5xx.
    let unknown = "0".repeat(40);
    for body in [
        json!({"head_sha": sha}),
        json!({"name": "x"}),
        json!({"name": "", "head_sha": sha}),
        json!({"name": "n".repeat(256), "head_sha": sha}),
        json!({"name": "x", "head_sha": unknown}),
        json!({"name": "x", "head_sha": "nope"}),
        json!({"name": "x", "head_sha": sha, "status": "done"}),
        json!({"name": "x", "head_sha": sha, "status": "completed"}),
        json!({"name": "x", "head_sha": sha, "completed_at": "2026-01-01T00:00:00Z"}),
        json!({"name": "x", "head_sha": sha, "conclusion": "stale"}),
        json!({"name": "x", "head_sha": sha, "started_at": "yesterday"}),
        json!({"name": "x", "head_sha": sha, "output": {"title": "t"}}),
        json!({"name": "x", "head_sha": sha, "output": {"title": "t", "summary": "s".repeat(65_536)}}),
        json!({"name": "x", "head_sha": sha, "details_url": "u".repeat(2049)}),
        json!({"name": 5, "head_sha": sha}),
    ] {
        let (status, answer) = call(&node, "POST", &alice, runs, body.clone());
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(answer["message"].is_string(), "{answer}");
    }
    let (status, body) = call(
        &node,
        "PATCH",
        &alice,
        &one,
        json!({"status": "completed", "conclusion": "nope"}),
    );
    assert_eq!(status, 422, "{body}");
    let (status, body) = call(
        &node,
        "PATCH",
        &alice,
        &format!("{runs}/1"),
        json!({"status": "queued"}),
    );
    assert_eq!(status, 404, "{body}");
    let (status, _) = get(&node, &alice, &format!("{runs}/1"));
    assert_eq!(status, 404);
    let (status, body) = get(
        &node,
        &alice,
        "/repos/alice/ci/commits/main/check-runs?filter=some",
    );
    assert_eq!(status, 422, "{body}");
    let (status, body) = get(&node, &alice, "/repos/alice/ci/commits/nope/check-runs");
    assert_eq!(status, 422, "{body}");
    // Back in progress, the run loses its conclusion.
    let (status, body) = call(
        &node,
        "PATCH",
        &alice,
        &one,
        json!({"status": "in_progress"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["conclusion"], Value::Null);
}

/// The CI loop through the checks API on a two-node cluster: `main` requires the check
/// `build` (named through `checks`, as GitHub's newer clients send it); a run created
/// on B is visible on A, and the pull request cannot merge on A while the run is in
/// progress or failed, and merges once it completed with success.
#[test]
fn a_check_run_written_on_b_gates_the_merge_on_a() {
    //  A <── B   (B bootstraps from A)
    let converge = Duration::from_secs(60);
    let (a, b, alice) = two_nodes_with_alice(converge);
    let head = feature(&a, &alice).head;

    let protection = "/repos/alice/ci/branches/main/protection";
    let (status, body) = call(
        &a,
        "PUT",
        &alice,
        protection,
        json!({
            "required_status_checks": {"strict": false, "checks": [{"context": "build", "app_id": 15368}]},
            "enforce_admins": null,
            "required_pull_request_reviews": null,
            "restrictions": null
        }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["required_status_checks"]["contexts"], json!(["build"]));
    assert_eq!(
        body["required_status_checks"]["checks"],
        json!([{"context": "build", "app_id": null}])
    );
    let (status, pull) = call(
        &a,
        "POST",
        &alice,
        "/repos/alice/ci/pulls",
        json!({"title": "Feature", "head": "feature", "base": "main"}),
    );
    assert_eq!(status, 201, "{pull}");
    eventually(converge, "the feature branch to reach B", || {
        (get(&b, &alice, &format!("/repos/alice/ci/commits/{head}")).0 == 200).then_some(())
    });

    let (status, run) = call(
        &b,
        "POST",
        &alice,
        "/repos/alice/ci/check-runs",
        json!({"name": "build", "head_sha": head, "status": "in_progress"}),
    );
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_u64().unwrap();
    let on_b = format!("/repos/alice/ci/check-runs/{id}");
    // Visible on A under the same id.
    let seen = eventually(converge, "the run to reach A", || {
        let (status, body) = get(&a, &alice, &on_b);
        (status == 200).then_some(body)
    });
    assert_eq!(seen["status"], "in_progress");
    assert_eq!(seen["name"], "build");

    let merge = "/repos/alice/ci/pulls/1/merge";
    let (status, body) = call(&a, "PUT", &alice, merge, json!({}));
    assert_eq!(status, 405, "{body}");
    assert_eq!(
        body["message"],
        "Required status check \"build\" is expected."
    );
    let (_, pull) = get(&a, &alice, "/repos/alice/ci/pulls/1");
    assert_ne!(pull["mergeable_state"], "clean", "{pull}");

    let (status, body) = call(&b, "PATCH", &alice, &on_b, json!({"conclusion": "failure"}));
    assert_eq!(status, 200, "{body}");
    let body = eventually(converge, "the failure to reach A", || {
        let (status, body) = call(&a, "PUT", &alice, merge, json!({}));
        assert_eq!(status, 405, "{body}");
        (body["message"] == "Required status check \"build\" is failing.").then_some(body)
    });
    assert_eq!(
        body["message"],
        "Required status check \"build\" is failing."
    );

    let (status, body) = call(&b, "PATCH", &alice, &on_b, json!({"conclusion": "success"}));
    assert_eq!(status, 200, "{body}");
    eventually(converge, "the success to reach A", || {
        let (_, body) = get(
            &a,
            &alice,
            &format!("/repos/alice/ci/commits/{head}/check-runs"),
        );
        (body["check_runs"][0]["conclusion"] == "success").then_some(())
    });
    let state = eventually(converge, "mergeable_state to be computed", || {
        let (_, pull) = get(&a, &alice, "/repos/alice/ci/pulls/1");
        let state = pull["mergeable_state"].as_str()?.to_string();
        (state != "unknown").then_some(state)
    });
    assert_eq!(state, "clean");
    let (status, body) = call(&a, "PUT", &alice, merge, json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["merged"], true);
}
