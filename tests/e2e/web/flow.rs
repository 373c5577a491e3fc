//! The whole collaboration flow in a real browser (scenario `flow` of
//! tests/web/flow.py), on one node and started on A then finished on B; what the
//! browser did is then checked where it lands: git history and the REST API of every
//! node. And signing out, over HTTP, ends the session on both nodes.

use std::path::Path;

use serde_json::{Value, json};

use super::http::WebClient;
use super::{
    ALICE_PW, CONVERGE, cluster, create_web_user, require_browser, run_browser, user_args,
};
use crate::gitutil::{Git, auth_url};
use crate::harness::{TestNode, api, client, eventually};

const REPO: &str = "alice/webflow";
const LIB_V1: &str = "pub fn answer() -> u32 {\n    42\n}\n";
const LIB_V2: &str = "pub fn answer() -> u32 {\n    42\n}\n\npub fn greet(name: &str) -> String {\n    format!(\"hello {name}\")\n}\n";

/// Answers the script's `NEED push`: pushes `main` (two commits) and `feature` (one
/// more) to the repository the browser created, requires one approval on `main`, and
/// tells the script what it should now see.
fn push_fixture(node: &TestNode, token: &str, work: &Path, ask: &Value) -> Value {
    assert_eq!(ask["repo"], REPO, "{ask}");
    assert_eq!(
        ask["clone_url"],
        node.url(&format!("/{REPO}.git")),
        "the page's clone URL: {ask}"
    );
    let git = Git::v(2);
    let tree = git.init(work, "webflow");
    let first = git.commit(
        &tree,
        &[
            (
                "README.md",
                b"# Web flow fixture\n\nPushed by the test with git.\n".as_slice(),
            ),
            ("docs/guide.md", b"Read the code.\n".as_slice()),
            ("src/lib.rs", LIB_V1.as_bytes()),
        ],
        "Initial commit",
    );
    let main = git.commit(&tree, &[("src/lib.rs", LIB_V2.as_bytes())], "Add greeting");
    let url = auth_url(node, "alice", token, REPO);
    git.ok(&tree, &["push", "--quiet", &url, "main"]);
    git.ok(&tree, &["checkout", "--quiet", "-b", "feature"]);
    let feature = git.commit(
        &tree,
        &[("src/farewell.rs", b"pub fn bye() {}\n".as_slice())],
        "Say goodbye",
    );
    git.ok(&tree, &["push", "--quiet", &url, "feature"]);
    let r = client()
        .put(node.url(&format!("/api/v3/repos/{REPO}/branches/main/protection")))
        .header("Authorization", format!("token {token}"))
        .json(&json!({
            "required_status_checks": null,
            "enforce_admins": true,
            "required_pull_request_reviews": {"required_approving_review_count": 1},
            "restrictions": null,
        }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    json!({
        "first": first,
        "main": main,
        "feature": feature,
        "feature_branch": "feature",
        "feature_file": "src/farewell.rs",
        "top": ["README.md", "docs", "src"],
        "readme_heading": "Web flow fixture",
        "blob_path": "src/lib.rs",
        "blob_lines": LIB_V2.lines().collect::<Vec<_>>(),
        "titles": ["Add greeting", "Initial commit"],
    })
}

/// What the browser did, as `node`'s REST API tells it (eventually, for a node that
/// learns it by replication): the pull request merged by alice with a merge commit of
/// the old `main` and `feature`, bob's approval, the issue with its comment.
fn assert_landed(node: &TestNode, token: &str, pushed: &Value, result: &Value) {
    let pull = result["pull"].as_u64().unwrap();
    let issue = result["issue"].as_u64().unwrap();
    let merged = eventually(CONVERGE, "the merge to be known", || {
        let (status, body) = api(
            node,
            reqwest::Method::GET,
            token,
            &format!("/repos/{REPO}/pulls/{pull}"),
            Value::Null,
        );
        (status == 200 && body["merged"] == true).then_some(body)
    });
    assert_eq!(merged["title"], "Say goodbye", "{merged}");
    assert_eq!(merged["merged_by"]["login"], "alice", "{merged}");
    let sha = merged["merge_commit_sha"].as_str().unwrap().to_string();
    let (status, commit) = api(
        node,
        reqwest::Method::GET,
        token,
        &format!("/repos/{REPO}/git/commits/{sha}"),
        Value::Null,
    );
    assert_eq!(status, 200, "{commit}");
    let parents: Vec<&str> = commit["parents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sha"].as_str().unwrap())
        .collect();
    assert_eq!(
        parents,
        [
            pushed["main"].as_str().unwrap(),
            pushed["feature"].as_str().unwrap()
        ],
        "the merge method chosen in the form (merge) makes a merge commit: {commit}"
    );
    let head = eventually(CONVERGE, "main to move to the merge", || {
        let (_, branch) = api(
            node,
            reqwest::Method::GET,
            token,
            &format!("/repos/{REPO}/branches/main"),
            Value::Null,
        );
        (branch["commit"]["sha"] == sha.as_str()).then_some(branch)
    });
    assert_eq!(head["commit"]["sha"], sha.as_str());
    let (_, reviews) = api(
        node,
        reqwest::Method::GET,
        token,
        &format!("/repos/{REPO}/pulls/{pull}/reviews"),
        Value::Null,
    );
    let reviews = reviews
        .as_array()
        .unwrap_or_else(|| panic!("{reviews}"))
        .clone();
    assert!(
        reviews.iter().any(|r| r["user"]["login"] == "bob"
            && r["state"] == "APPROVED"
            && r["body"] == "Looks good to me."),
        "bob's approval: {reviews:?}"
    );
    let (_, body) = api(
        node,
        reqwest::Method::GET,
        token,
        &format!("/repos/{REPO}/issues/{issue}"),
        Value::Null,
    );
    assert_eq!(body["title"], "The greeting is rude", "{body}");
    assert_eq!(body["body"], "It says **hey** instead of hello.", "{body}");
    assert_eq!(body["user"]["login"], "alice", "{body}");
    let (_, comments) = api(
        node,
        reqwest::Method::GET,
        token,
        &format!("/repos/{REPO}/issues/{issue}/comments"),
        Value::Null,
    );
    let comments = comments
        .as_array()
        .unwrap_or_else(|| panic!("{comments}"))
        .clone();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0]["body"], "Reproduced with `cargo test`.");
    let (_, collaborator) = api(
        node,
        reqwest::Method::GET,
        token,
        &format!("/repos/{REPO}/collaborators/bob/permission"),
        Value::Null,
    );
    assert_eq!(collaborator["permission"], "write", "{collaborator}");
}

#[test]
fn a_browser_signs_in_pushes_browses_reviews_and_merges_on_one_node() {
    require_browser();
    let node = TestNode::start();
    let alice = create_web_user(&node, "alice", ALICE_PW);
    create_web_user(&node, "bob", super::BOB_PW);
    let work = tempfile::tempdir().unwrap();
    let mut pushed = Value::Null;
    let mut args = user_args(&node.url(""));
    args.extend(["--repo".to_string(), "webflow".to_string()]);
    let run = run_browser("flow-one-node", "flow", &args, &[&node], |what, ask| {
        assert_eq!(what, "push", "unexpected request {what} {ask}");
        pushed = push_fixture(&node, &alice, work.path(), ask);
        pushed.clone()
    });
    assert!(pushed.is_object(), "the script never asked for the push");
    assert_landed(&node, &alice, &pushed, &run.result());
}

#[test]
fn a_flow_started_on_node_a_finishes_on_node_b_and_sign_out_ends_the_session_on_both() {
    require_browser();
    //  A <── B   (B bootstraps from A); the browser's cookies of 127.0.0.1 go to both
    let (a, b, alice, _bob) = cluster();
    let work = tempfile::tempdir().unwrap();
    let mut pushed = Value::Null;
    let mut args = user_args(&a.url(""));
    args.extend([
        "--url-b".to_string(),
        b.url(""),
        "--repo".to_string(),
        "webflow".to_string(),
    ]);
    let run = run_browser("flow-two-nodes", "flow", &args, &[&a, &b], |what, ask| {
        assert_eq!(what, "push", "unexpected request {what} {ask}");
        pushed = push_fixture(&a, &alice, work.path(), ask);
        pushed.clone()
    });
    assert!(pushed.is_object(), "the script never asked for the push");
    // Approved and merged on B: both nodes agree.
    let result = run.result();
    assert_landed(&b, &alice, &pushed, &result);
    assert_landed(&a, &alice, &pushed, &result);

    // A session made on A is valid on B; signing out on A ends it on both.
    let mut web = WebClient::new(&a);
    web.sign_in("alice", ALICE_PW);
    let cookies = web.cookies.clone();
    web.base = b.url("");
    eventually(CONVERGE, "A's session to be valid on B", || {
        (web.who().as_deref() == Some("alice")).then_some(())
    });
    web.base = a.url("");
    let home = web.get("/");
    let token = home.csrf("sign-out");
    let out = web.submit("/logout", &[("_csrf", &token)]);
    assert_eq!(out.status, 303, "{}", out.describe());
    assert_eq!(out.location().as_deref(), Some("/"), "{}", out.describe());
    let mut old = WebClient::new(&a);
    old.cookies = cookies;
    assert_eq!(old.who(), None, "the signed-out session still works on A");
    old.base = b.url("");
    eventually(CONVERGE, "the revocation to reach B", || {
        old.who().is_none().then_some(())
    });
    // Refused, not only unrecognised on the home page: a signed-in page sends it away.
    let new = old.get("/new");
    assert_ne!(
        new.status,
        200,
        "/new with a revoked session: {}",
        new.describe()
    );
    assert_eq!(new.current_user(), None, "{}", new.describe());
}
