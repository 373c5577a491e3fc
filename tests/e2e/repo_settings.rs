//! Repository settings over `PATCH /repos/{owner}/{repo}`, seen from stock git: the
//! default branch decides what a new clone checks out, only an admin changes it, and
//! what Guts does not model yet is refused by name rather than ignored.

use serde_json::{Value, json};

use crate::gitutil::{Git, add_collaborator, anon_url, auth_url, create_repo, synth_repo};
use crate::harness::{NodeOptions, TestNode, client, create_user};

fn patch(node: &TestNode, token: &str, repo: &str, body: Value) -> (u16, Value) {
    let r = client()
        .patch(node.url(&format!("/api/v3/repos/{repo}")))
        .header("Authorization", format!("token {token}"))
        .json(&body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn the_default_branch_decides_what_a_clone_checks_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut node = TestNode::start_with(NodeOptions::default().data_dir(&data));
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    create_repo(&node, &alice, "proj", false);
    add_collaborator(&node, &alice, "alice/proj", "bob", "push");

    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let tree = git.init(work.path(), "proj");
    git.commit(&tree, &[("README.md", b"# proj\n")], "Initial commit");
    let url = auth_url(&node, "alice", &alice, "alice/proj");
    git.ok(&tree, &["push", "--quiet", &url, "main"]);
    git.ok(&tree, &["checkout", "--quiet", "-b", "dev"]);
    git.commit(&tree, &[("dev.txt", b"dev\n")], "On dev");
    git.ok(&tree, &["push", "--quiet", &url, "dev"]);

    let checked_out = |name: &str| {
        let clone = git.clone(&anon_url(&node, "alice/proj"), work.path(), name);
        git.out(&clone, &["rev-parse", "--abbrev-ref", "HEAD"])
    };
    assert_eq!(checked_out("before").trim(), "main");

    // A branch that does not exist, a push collaborator, and what Guts does not model
    // are all refused, each with GitHub's error naming the field.
    let (status, body) = patch(
        &node,
        &alice,
        "alice/proj",
        json!({"default_branch": "nope"}),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "default_branch", "{body}");
    let (status, body) = patch(&node, &bob, "alice/proj", json!({"default_branch": "dev"}));
    assert_eq!(status, 403, "{body}");
    for (field, value) in [
        ("name", json!("renamed")),
        ("archived", json!(true)),
        ("homepage", json!("https://example.com")),
        ("has_issues", json!(false)),
        ("visibility", json!("internal")),
    ] {
        let (status, body) = patch(&node, &alice, "alice/proj", json!({ field: value }));
        assert_eq!(status, 422, "{field}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }

    // The admin's change: the answer, a new read and a new clone all agree.
    let (status, body) = patch(
        &node,
        &alice,
        "alice/proj",
        json!({"default_branch": "dev", "description": "now on dev", "name": "proj", "archived": false}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["default_branch"], "dev", "{body}");
    assert_eq!(body["description"], "now on dev", "{body}");
    let read: Value = client()
        .get(node.url("/api/v3/repos/alice/proj"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(read["default_branch"], "dev", "{read}");
    assert_eq!(checked_out("after").trim(), "dev");

    // Private, then public again: an anonymous clone follows.
    let (status, body) = patch(&node, &alice, "alice/proj", json!({"private": true}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["private"], true, "{body}");
    git.fails(
        work.path(),
        &["clone", "--quiet", &anon_url(&node, "alice/proj"), "hidden"],
    );
    let (status, body) = patch(&node, &alice, "alice/proj", json!({"visibility": "public"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["private"], false, "{body}");
    assert_eq!(checked_out("public-again").trim(), "dev");

    // HEAD survives a restart (it is restored from the operation log on open).
    assert!(node.stop().success());
    let node = TestNode::start_with(NodeOptions::default().data_dir(&data));
    let clone = git.clone(&anon_url(&node, "alice/proj"), work.path(), "restarted");
    assert_eq!(
        git.out(&clone, &["rev-parse", "--abbrev-ref", "HEAD"])
            .trim(),
        "dev"
    );
}

/// A project whose default branch is `master` (with `develop`, which git sends first,
/// and tags), pushed whole into a new repository created with `main`: the clone checks
/// out `master` with no warning, the API says `master`, and a PATCH moves what new
/// clones check out.
#[test]
fn a_project_pushed_with_master_is_cloned_on_master() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "legacy", false);
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let project = synth_repo(work.path(), "project.git", 1200, 200, 3);
    git.ok(&project, &["branch", "-m", "main", "master"]);
    git.ok(&project, &["branch", "develop", "master~5"]);
    let url = auth_url(&node, "alice", &alice, "alice/legacy");
    git.ok(&project, &["push", "--quiet", &url, "--all"]);
    git.ok(&project, &["push", "--quiet", &url, "--tags"]);

    let run = git.ok(
        work.path(),
        &["clone", &anon_url(&node, "alice/legacy"), "first"],
    );
    assert!(!run.text().contains("warning"), "{run}");
    let clone = work.path().join("first");
    assert_eq!(
        git.out(&clone, &["rev-parse", "--abbrev-ref", "HEAD"])
            .trim(),
        "master"
    );
    assert_eq!(git.rev(&clone, "HEAD"), git.rev(&project, "master"));
    let read: Value = client()
        .get(node.url("/api/v3/repos/alice/legacy"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(read["default_branch"], "master", "{read}");

    let (status, body) = patch(
        &node,
        &alice,
        "alice/legacy",
        json!({"default_branch": "develop"}),
    );
    assert_eq!(status, 200, "{body}");
    let clone = git.clone(&anon_url(&node, "alice/legacy"), work.path(), "second");
    assert_eq!(
        git.out(&clone, &["rev-parse", "--abbrev-ref", "HEAD"])
            .trim(),
        "develop"
    );
}
