//! Writing without git, as bots and CI tools do: contents `PUT`/`DELETE` and the git
//! data API (blobs, trees, commits, refs) against a real node, checked with the real
//! `git` binary (a clone sees every commit), against branch protection and roles (a
//! write is refused where the same push is), against hostile input (4xx, never 5xx),
//! and across two nodes of a cluster (a write on A is served by B).

use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::gitutil::{Git, add_collaborator, anon_url, auth_url, create_repo};
use crate::harness::{NodeOptions, TestNode, api, client, create_user, eventually};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[track_caller]
fn expect(got: (u16, Value), status: u16) -> Value {
    assert_eq!(got.0, status, "{}", got.1);
    got.1
}

fn sha(v: &Value) -> String {
    v["sha"].as_str().unwrap().to_string()
}

#[test]
fn bots_write_files_and_objects_that_git_then_clones() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let reader = create_user(&node, "reader");
    create_repo(&node, &alice, "proj", false);
    add_collaborator(&node, &alice, "alice/proj", "reader", "pull");
    let r = "/repos/alice/proj";
    let call = |method: Method, token: &str, path: &str, body: Value| {
        api(&node, method, token, &format!("{r}{path}"), body)
    };

    // ---- Contents: create (the empty repository's first commit), update, conflict, delete.
    let created = expect(
        call(
            Method::PUT,
            &alice,
            "/contents/docs/hello.txt",
            json!({"message": "Add hello", "content": b64(b"hello\n")}),
        ),
        201,
    );
    assert_eq!(created["content"]["path"], "docs/hello.txt", "{created}");
    assert_eq!(created["commit"]["author"]["name"], "alice", "{created}");
    assert_eq!(created["commit"]["parents"].as_array().unwrap().len(), 0);
    let blob = sha(&created["content"]);
    let missing_sha = call(
        Method::PUT,
        &alice,
        "/contents/docs/hello.txt",
        json!({"message": "no sha", "content": b64(b"x")}),
    );
    assert_eq!(missing_sha.0, 422, "{}", missing_sha.1);
    let updated = expect(
        call(
            Method::PUT,
            &alice,
            "/contents/docs/hello.txt",
            json!({"message": "Update hello", "content": b64(b"hello, world\n"), "sha": blob,
                   "committer": {"name": "CI Bot", "email": "ci@example.com", "date": "2024-01-02T03:04:05+01:00"}}),
        ),
        200,
    );
    assert_eq!(
        updated["commit"]["committer"]["name"], "CI Bot",
        "{updated}"
    );
    assert_eq!(
        updated["commit"]["author"]["email"], "ci@example.com",
        "{updated}"
    );
    assert_eq!(
        updated["commit"]["committer"]["date"],
        "2024-01-02T02:04:05Z"
    );
    let stale = call(
        Method::PUT,
        &alice,
        "/contents/docs/hello.txt",
        json!({"message": "stale", "content": b64(b"x"), "sha": blob}),
    );
    assert_eq!(stale.0, 409, "{}", stale.1);
    let read = expect(
        call(Method::GET, &alice, "/contents/docs/hello.txt", json!(null)),
        200,
    );
    assert_eq!(read["sha"], updated["content"]["sha"]);
    expect(
        call(
            Method::PUT,
            &alice,
            "/contents/tmp.txt",
            json!({"message": "tmp", "content": b64(b"tmp")}),
        ),
        201,
    );
    let tmp = expect(
        call(Method::GET, &alice, "/contents/tmp.txt", json!(null)),
        200,
    );
    let stale_delete = call(
        Method::DELETE,
        &alice,
        "/contents/tmp.txt",
        json!({"message": "rm", "sha": blob}),
    );
    assert_eq!(stale_delete.0, 409, "{}", stale_delete.1);
    let deleted = expect(
        call(
            Method::DELETE,
            &alice,
            "/contents/tmp.txt",
            json!({"message": "Remove tmp", "sha": sha(&tmp)}),
        ),
        200,
    );
    assert_eq!(deleted["content"], Value::Null, "{deleted}");
    let gone = call(
        Method::DELETE,
        &alice,
        "/contents/tmp.txt",
        json!({"message": "again", "sha": sha(&tmp)}),
    );
    assert_eq!(gone.0, 404, "{}", gone.1);
    let main = sha(&deleted["commit"]);

    // ---- Git data: blob -> tree (on the base tree, nested) -> commit -> ref.
    let new_blob = expect(
        call(
            Method::POST,
            &alice,
            "/git/blobs",
            json!({"content": b64(b"fn main() {}\n"), "encoding": "base64"}),
        ),
        201,
    );
    let base_tree = deleted["commit"]["tree"]["sha"]
        .as_str()
        .unwrap()
        .to_string();
    let tree = expect(
        call(
            Method::POST,
            &alice,
            "/git/trees",
            json!({"base_tree": base_tree, "tree": [
                {"path": "src/bin/main.rs", "mode": "100644", "type": "blob", "sha": sha(&new_blob)},
                {"path": "NOTES.md", "mode": "100644", "type": "blob", "content": "notes\n"},
            ]}),
        ),
        201,
    );
    let names: Vec<&str> = tree["tree"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["NOTES.md", "docs", "src"], "{tree}");
    let commit = expect(
        call(
            Method::POST,
            &alice,
            "/git/commits",
            json!({"message": "Add main", "tree": sha(&tree), "parents": [main]}),
        ),
        201,
    );
    let feature = sha(&commit);
    expect(
        call(
            Method::POST,
            &alice,
            "/git/refs",
            json!({"ref": "refs/heads/feature", "sha": main}),
        ),
        201,
    );
    let exists = call(
        Method::POST,
        &alice,
        "/git/refs",
        json!({"ref": "refs/heads/feature", "sha": main}),
    );
    assert_eq!(exists.0, 422, "{}", exists.1);
    assert_eq!(exists.1["message"], "Reference already exists");
    let moved = expect(
        call(
            Method::PATCH,
            &alice,
            "/git/refs/heads/feature",
            json!({"sha": feature}),
        ),
        200,
    );
    assert_eq!(moved["object"]["sha"], feature.as_str(), "{moved}");
    let backwards = call(
        Method::PATCH,
        &alice,
        "/git/refs/heads/feature",
        json!({"sha": main}),
    );
    assert_eq!(backwards.0, 422, "{}", backwards.1);
    assert_eq!(backwards.1["message"], "Update is not a fast forward");
    expect(
        call(
            Method::PATCH,
            &alice,
            "/git/refs/heads/feature",
            json!({"sha": main, "force": true}),
        ),
        200,
    );
    expect(
        call(
            Method::PATCH,
            &alice,
            "/git/refs/heads/feature",
            json!({"sha": feature, "force": true}),
        ),
        200,
    );
    let tag = expect(
        call(
            Method::POST,
            &alice,
            "/git/tags",
            json!({"tag": "v1.0", "message": "First", "object": feature, "type": "commit"}),
        ),
        201,
    );
    expect(
        call(
            Method::POST,
            &alice,
            "/git/refs",
            json!({"ref": "refs/tags/v1.0", "sha": sha(&tag)}),
        ),
        201,
    );
    expect(
        call(
            Method::POST,
            &alice,
            "/git/refs",
            json!({"ref": "refs/heads/doomed", "sha": feature}),
        ),
        201,
    );
    let (status, _) = call(
        Method::DELETE,
        &alice,
        "/git/refs/heads/doomed",
        json!(null),
    );
    assert_eq!(status, 204);
    let again = call(
        Method::DELETE,
        &alice,
        "/git/refs/heads/doomed",
        json!(null),
    );
    assert_eq!(again.0, 422, "{}", again.1);
    assert_eq!(again.1["message"], "Reference does not exist");

    // ---- The real git sees it all.
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let clone = git.clone(&anon_url(&node, "alice/proj"), work.path(), "proj");
    git.fsck(&clone);
    assert_eq!(
        std::fs::read_to_string(clone.join("docs/hello.txt")).unwrap(),
        "hello, world\n"
    );
    assert!(!clone.join("tmp.txt").exists());
    git.ok(&clone, &["checkout", "--quiet", "feature"]);
    assert_eq!(git.rev(&clone, "HEAD"), feature);
    assert_eq!(
        std::fs::read_to_string(clone.join("src/bin/main.rs")).unwrap(),
        "fn main() {}\n"
    );
    assert_eq!(
        std::fs::read_to_string(clone.join("NOTES.md")).unwrap(),
        "notes\n"
    );
    assert_eq!(git.rev(&clone, "v1.0^{commit}"), feature);
    assert_eq!(
        git.out(&clone, &["log", "-1", "--format=%s", "main"])
            .trim(),
        "Remove tmp"
    );

    // ---- Roles: a reader is refused (403), a stranger does not see a private repo.
    let denied = call(
        Method::PUT,
        &reader,
        "/contents/x.txt",
        json!({"message": "x", "content": b64(b"x")}),
    );
    assert_eq!(denied.0, 403, "{}", denied.1);
    let denied = call(Method::POST, &reader, "/git/blobs", json!({"content": "x"}));
    assert_eq!(denied.0, 403, "{}", denied.1);
    let stranger = create_user(&node, "stranger");
    create_repo(&node, &alice, "secret", true);
    let hidden = api(
        &node,
        Method::PUT,
        &stranger,
        "/repos/alice/secret/contents/x.txt",
        json!({"message": "x", "content": b64(b"x")}),
    );
    assert_eq!(hidden.0, 404, "{}", hidden.1);

    // ---- Hostile input: 4xx with GitHub's error body, never a 5xx.
    let current = expect(
        call(Method::GET, &alice, "/contents/docs/hello.txt", json!(null)),
        200,
    );
    let hello = sha(&current);
    let put = |path: &str| {
        call(
            Method::PUT,
            &alice,
            &format!("/contents/{path}"),
            json!({"message": "evil", "content": b64(b"evil")}),
        )
    };
    for path in [
        "a/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        ".git/config",
        "x/.GIT/hooks/pre-commit",
        "a%00b",
        "a//b",
        "docs",
    ] {
        let (status, body) = put(path);
        assert!((400..500).contains(&status), "{path}: {status} {body}");
        assert!(body["message"].is_string(), "{path}: {body}");
    }
    let tree_with =
        |entry: Value| call(Method::POST, &alice, "/git/trees", json!({"tree": [entry]}));
    for entry in [
        json!({"path": "../x", "mode": "100644", "type": "blob", "sha": hello}),
        json!({"path": "a\u{0}b", "mode": "100644", "type": "blob", "content": "x"}),
        json!({"path": ".git/config", "mode": "100644", "type": "blob", "content": "x"}),
        json!({"path": "x", "mode": "100644", "type": "blob", "sha": "not-a-sha"}),
        json!({"path": "x", "mode": "100644", "type": "blob", "sha": "0".repeat(40)}),
        json!({"path": "x", "mode": "040000", "type": "tree", "sha": hello}),
        json!({"path": "x", "mode": "100666", "type": "blob", "content": "x"}),
    ] {
        let (status, body) = tree_with(entry.clone());
        assert_eq!(status, 422, "{entry}: {body}");
    }
    let (status, body) = call(
        Method::POST,
        &alice,
        "/git/trees",
        json!({"base_tree": "1".repeat(40), "tree": []}),
    );
    assert_eq!(status, 422, "{body}");
    let (status, body) = call(
        Method::POST,
        &alice,
        "/git/commits",
        json!({"message": "m", "tree": "2".repeat(40)}),
    );
    assert_eq!(status, 422, "{body}");
    let (status, body) = call(
        Method::POST,
        &alice,
        "/git/commits",
        json!({"message": "m", "tree": sha(&tree), "author": {"name": "x>\ncommitter evil", "email": "e@x"}}),
    );
    assert_eq!(status, 422, "{body}");
    for bad_ref in [
        "refs/heads/a..b",
        "refs/heads/x.lock",
        "heads/x",
        "refs/guts/conflicts/x",
    ] {
        let (status, body) = call(
            Method::POST,
            &alice,
            "/git/refs",
            json!({"ref": bad_ref, "sha": feature}),
        );
        assert_eq!(status, 422, "{bad_ref}: {body}");
    }
    let (status, body) = call(
        Method::POST,
        &alice,
        "/git/refs",
        json!({"ref": "refs/heads/blobby", "sha": hello}),
    );
    assert_eq!(status, 422, "{body}");
    let (status, body) = call(
        Method::POST,
        &alice,
        "/git/blobs",
        json!({"content": "!!!", "encoding": "base64"}),
    );
    assert_eq!(status, 422, "{body}");

    // ---- A branch that takes changes through reviewed pull requests refuses a
    // contents write (409) as it refuses a push; its tip stays.
    let protection = client()
        .put(node.url("/api/v3/repos/alice/proj/branches/main/protection"))
        .header("Authorization", format!("token {alice}"))
        .json(&json!({
            "required_status_checks": null, "enforce_admins": false, "restrictions": null,
            "required_pull_request_reviews": {"required_approving_review_count": 1},
        }))
        .send()
        .unwrap();
    assert_eq!(protection.status(), 200);
    let refused = call(
        Method::PUT,
        &alice,
        "/contents/docs/hello.txt",
        json!({"message": "direct", "content": b64(b"direct\n"), "sha": hello}),
    );
    assert_eq!(refused.0, 409, "{}", refused.1);
    git.ok(&clone, &["checkout", "--quiet", "main"]);
    git.commit(&clone, &[("direct.txt", b"direct\n")], "Direct push");
    let url = auth_url(&node, "alice", &alice, "alice/proj");
    git.fails(&clone, &["push", "--quiet", &url, "main"]);
    let branch = expect(
        call(Method::GET, &alice, "/git/ref/heads/main", json!(null)),
        200,
    );
    assert_eq!(branch["object"]["sha"], main.as_str());
}

/// Two nodes of one cluster: B bootstraps from A.
///
/// ```text
///   A (contents PUT) ──p2p── B (serves the commit)
/// ```
#[test]
fn a_write_on_one_node_is_served_by_its_peer() {
    const SECRET: &str = "git-writes-test-cluster-secret-0123456789";
    let options = || {
        NodeOptions::default()
            .env("GUTS_CLUSTER_SECRET", SECRET)
            .env("GUTS_ANTI_ENTROPY_INTERVAL", "1")
    };
    let a = TestNode::start_with(options());
    let b = TestNode::start_with(options().env("GUTS_BOOTSTRAP_PEERS", &a.p2p_addr()));
    let alice = create_user(&a, "alice");
    create_repo(&a, &alice, "proj", false);
    let written = expect(
        api(
            &a,
            Method::PUT,
            &alice,
            "/repos/alice/proj/contents/README.md",
            json!({"message": "Written on A", "content": b64(b"from A\n")}),
        ),
        201,
    );
    let commit = sha(&written["commit"]);
    let served = eventually(Duration::from_secs(60), "B to serve the commit", || {
        let r = client()
            .get(b.url(&format!("/api/v3/repos/alice/proj/git/commits/{commit}")))
            .send()
            .ok()?;
        (r.status() == 200).then(|| r.json::<Value>().unwrap())
    });
    assert_eq!(served["message"], "Written on A", "{served}");
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    eventually(Duration::from_secs(60), "B's main to be the commit", || {
        let refs = git.ls_remote(&anon_url(&b, "alice/proj"));
        (refs.get("refs/heads/main") == Some(&commit)).then_some(())
    });
    let clone = git.clone(&anon_url(&b, "alice/proj"), work.path(), "from-b");
    assert_eq!(
        std::fs::read_to_string(clone.join("README.md")).unwrap(),
        "from A\n"
    );
}

/// Bodies over the request limit are 413 before any work; content over the largest
/// blob written through the API is 422 naming the field; never a 5xx.
#[test]
fn oversized_writes_are_refused_with_4xx() {
    let small = TestNode::start_with(NodeOptions::default().env("GUTS_MAX_REQUEST_SIZE_MB", "1"));
    let alice = create_user(&small, "alice");
    create_repo(&small, &alice, "proj", false);
    let big = b64(&vec![b'x'; 2 * 1024 * 1024]);
    let (status, body) = api(
        &small,
        Method::POST,
        &alice,
        "/repos/alice/proj/git/blobs",
        json!({"content": big, "encoding": "base64"}),
    );
    assert_eq!(status, 413, "{body}");
    let (status, body) = api(
        &small,
        Method::PUT,
        &alice,
        "/repos/alice/proj/contents/big.bin",
        json!({"message": "big", "content": big}),
    );
    assert_eq!(status, 413, "{body}");

    // Within the default request limit (100 MiB) but over the blob limit (32 MiB).
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "proj", false);
    let huge = b64(&vec![b'y'; 33 * 1024 * 1024]);
    for (method, path, body) in [
        (
            Method::POST,
            "/repos/alice/proj/git/blobs",
            json!({"content": huge, "encoding": "base64"}),
        ),
        (
            Method::PUT,
            "/repos/alice/proj/contents/huge.bin",
            json!({"message": "huge", "content": huge}),
        ),
    ] {
        let (status, body) = api(&node, method, &alice, path, body);
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["errors"][0]["field"], "content", "{body}");
    }
}

/// PyGithub, as a bot would use it: files, then blob, tree, commit, tag and refs
/// (tests/clients/pygithub_writes.py); every answer parsed into its objects.
#[test]
fn pygithub_writes_files_and_git_objects() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "bots", false);
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/clients/pygithub_writes.py");
    let out = std::process::Command::new(crate::clients::python())
        .arg(script)
        .env("GUTS_URL", node.url(""))
        .env("ALICE_TOKEN", &alice)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "PyGithub writes failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("pygithub writes: ok"), "{stdout}");
}
