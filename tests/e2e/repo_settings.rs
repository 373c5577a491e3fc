//! Repository settings over `PATCH /repos/{owner}/{repo}`, seen from stock git: the
//! default branch decides what a new clone checks out, only an admin changes it, a
//! rename keeps the old name answering, an archived repository is read-only, and bad
//! values are refused by name.

use serde_json::{Value, json};

use crate::gitutil::{Git, add_collaborator, anon_url, auth_url, create_repo, synth_repo};
use crate::harness::{NodeOptions, TestNode, api, client, create_user};

fn patch(node: &TestNode, token: &str, repo: &str, body: Value) -> (u16, Value) {
    api(
        node,
        reqwest::Method::PATCH,
        token,
        &format!("/repos/{repo}"),
        body,
    )
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

    // A branch that does not exist, a push collaborator, and values that break a rule
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
        ("name", json!("bad/name")),
        ("name", json!("..")),
        (
            "homepage",
            json!(format!("https://example.com/{}", "x".repeat(300))),
        ),
        ("homepage", json!("https://example.com/\u{0}")),
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

fn post(node: &TestNode, token: &str, path: &str, body: Value) -> (u16, Value) {
    api(node, reqwest::Method::POST, token, path, body)
}

fn get(node: &TestNode, path: &str) -> (u16, Value) {
    let r = client()
        .get(node.url(&format!("/api/v3{path}")))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Rename, archive and issues, from GitHub clients and stock git: the old name answers
/// (API and git) until a new repository takes it; an archived repository refuses
/// pushes and writes with GitHub's messages until unarchived; without issues, opening
/// one is 410 Gone; the settings survive a restart.
#[test]
fn renamed_archived_and_issueless_repositories_behave_as_on_github() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut node = TestNode::start_with(NodeOptions::default().data_dir(&data));
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "old", false);
    create_repo(&node, &alice, "taken", false);
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let tree = git.init(work.path(), "proj");
    git.commit(&tree, &[("README.md", b"# proj\n")], "Initial commit");
    git.ok(
        &tree,
        &[
            "push",
            "--quiet",
            &auth_url(&node, "alice", &alice, "alice/old"),
            "main",
        ],
    );

    // A name another repository holds is refused; a free one is taken.
    let (status, body) = patch(&node, &alice, "alice/old", json!({"name": "Taken"}));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "name", "{body}");
    let (status, body) = patch(
        &node,
        &alice,
        "alice/old",
        json!({"name": "new", "homepage": "https://guts.example", "has_issues": false}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "new", "{body}");
    assert_eq!(body["full_name"], "alice/new", "{body}");
    assert_eq!(body["homepage"], "https://guts.example", "{body}");
    assert_eq!(body["has_issues"], false, "{body}");
    let (status, body) = get(&node, "/repos/alice/old");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["full_name"], "alice/new",
        "the old name answers: {body}"
    );
    let clone = git.clone(&anon_url(&node, "alice/old"), work.path(), "by-old-name");
    assert!(clone.join("README.md").exists());
    let (status, body) = post(
        &node,
        &alice,
        "/repos/alice/new/issues",
        json!({"title": "t"}),
    );
    assert_eq!(status, 410, "{body}");

    // Archived: pushes and writes refused as GitHub words it, reads still served.
    let (status, body) = patch(&node, &alice, "alice/new", json!({"archived": true}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["archived"], true, "{body}");
    git.commit(&tree, &[("more.txt", b"more\n")], "More");
    let url = auth_url(&node, "alice", &alice, "alice/new");
    let run = git.fails(&tree, &["push", "--quiet", &url, "main"]);
    assert!(run.text().contains("archived so it is read-only"), "{run}");
    let (status, body) = post(
        &node,
        &alice,
        "/repos/alice/new/labels",
        json!({"name": "bug", "color": "ff0000"}),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["message"], "Repository was archived so is read-only.",
        "{body}"
    );
    let (status, body) = patch(&node, &alice, "alice/new", json!({"description": "x"}));
    assert_eq!(status, 403, "{body}");
    git.clone(&anon_url(&node, "alice/new"), work.path(), "archived-clone");

    // Unarchived (with another change in the same request): writes work again.
    let (status, body) = patch(
        &node,
        &alice,
        "alice/new",
        json!({"archived": false, "description": "back", "has_issues": true}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["description"], "back", "{body}");
    git.ok(&tree, &["push", "--quiet", &url, "main"]);
    let (status, body) = post(
        &node,
        &alice,
        "/repos/alice/new/issues",
        json!({"title": "t"}),
    );
    assert_eq!(status, 201, "{body}");

    // The settings and the old name survive a restart.
    assert!(node.stop().success());
    let node = TestNode::start_with(NodeOptions::default().data_dir(&data));
    let (status, body) = get(&node, "/repos/alice/old");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["full_name"], "alice/new", "{body}");
    assert_eq!(body["homepage"], "https://guts.example", "{body}");

    // A new repository takes the old name: from then on it answers to it.
    create_repo(&node, &alice, "old", false);
    let (status, body) = get(&node, "/repos/alice/old");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["full_name"], "alice/old", "{body}");
    let (status, body) = get(&node, "/repos/alice/new");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["description"], "back", "{body}");
}

/// `auto_init: true`: the new repository has a first commit with a README (its name and
/// description), on its default branch, authored by its creator; stock git clones it.
#[test]
fn auto_init_makes_a_first_commit_with_a_readme() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let (status, body) = post(
        &node,
        &alice,
        "/user/repos",
        json!({"name": "fresh", "description": "Made fresh.", "auto_init": true, "default_branch": "trunk"}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["default_branch"], "trunk", "{body}");
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let clone = git.clone(&anon_url(&node, "alice/fresh"), work.path(), "fresh");
    assert_eq!(
        std::fs::read_to_string(clone.join("README.md")).unwrap(),
        "# fresh\n\nMade fresh.\n"
    );
    assert_eq!(
        git.out(&clone, &["rev-parse", "--abbrev-ref", "HEAD"])
            .trim(),
        "trunk"
    );
    assert_eq!(
        git.out(&clone, &["log", "--format=%an %s"]).trim(),
        "alice Initial commit"
    );
    // Without it, the repository stays empty.
    let (status, body) = post(&node, &alice, "/user/repos", json!({"name": "empty"}));
    assert_eq!(status, 201, "{body}");
    let (status, body) = get(&node, "/repos/alice/empty/commits");
    assert_eq!(status, 409, "an empty repository has no commits: {body}");
}
