//! Organization roles as GitHub's (audit finding: a plain member who created an org
//! repository became its Owner, could remove the org admins from it, and kept full
//! access after leaving the organization). Two real nodes of one cluster: the org's
//! repository is owned by the org, its creator is an admin who cannot touch the org
//! admins, members read through membership, and leaving the org ends access on every
//! node, over the REST API and over git.

use std::time::Duration;

use serde_json::{Value, json};

use crate::gitutil::*;
use crate::harness::*;

const CLUSTER_SECRET: &str = "trust-orgs-test-cluster-secret-0123456789";
const CONVERGE: Duration = Duration::from_secs(30);
const REPO: &str = "acme/proj";

fn options() -> NodeOptions {
    NodeOptions::default()
        .env("GUTS_CLUSTER_SECRET", CLUSTER_SECRET)
        .env("GUTS_ANTI_ENTROPY_INTERVAL", "1")
}

fn get(node: &TestNode, token: &str, path: &str) -> (u16, Value) {
    api(node, reqwest::Method::GET, token, path, Value::Null)
}

/// `login`'s permission on the repository as `token`'s holder sees it.
fn permission(node: &TestNode, token: &str, login: &str) -> String {
    let (status, body) = get(
        node,
        token,
        &format!("/repos/{REPO}/collaborators/{login}/permission"),
    );
    assert_eq!(status, 200, "{body}");
    body["permission"].as_str().unwrap().to_string()
}

fn set_membership(node: &TestNode, admin: &str, login: &str, role: &str) {
    let (status, body) = api(
        node,
        reqwest::Method::PUT,
        admin,
        &format!("/orgs/acme/memberships/{login}"),
        json!({ "role": role }),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn org_admins_administer_org_repositories_and_leaving_the_org_ends_access() {
    let a = TestNode::start_with(options());
    let b = TestNode::start_with(options().env("GUTS_BOOTSTRAP_PEERS", &a.p2p_addr()));
    let alice = create_user(&a, "alice");
    let dave = create_user(&a, "dave");
    let bob = create_user(&a, "bob");
    let carol = create_user(&a, "carol");
    create_org(&a, "acme", "alice");
    set_membership(&a, &alice, "dave", "admin");
    set_membership(&a, &alice, "bob", "member");

    // A plain member creates a private org repository: the org owns it, bob
    // administers it, the org admins administer it too.
    let (status, body) = api(
        &a,
        reqwest::Method::POST,
        &bob,
        "/orgs/acme/repos",
        json!({ "name": "proj", "private": true }),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["owner"]["login"], "acme", "{body}");
    assert_eq!(body["owner"]["type"], "Organization", "{body}");
    for login in ["bob", "alice", "dave"] {
        assert_eq!(permission(&a, &alice, login), "admin", "{login}");
    }
    // Carol joins after the repository exists: read through membership.
    set_membership(&a, &alice, "carol", "member");
    assert_eq!(permission(&a, &alice, "carol"), "read");

    // Bob can neither remove nor demote an org admin, nor delete the org's repository.
    let path = format!("/repos/{REPO}/collaborators/alice");
    let (status, body) = api(&a, reqwest::Method::DELETE, &bob, &path, Value::Null);
    assert_eq!(status, 403, "{body}");
    let (status, body) = api(
        &a,
        reqwest::Method::PUT,
        &bob,
        &path,
        json!({ "permission": "pull" }),
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = api(
        &a,
        reqwest::Method::DELETE,
        &bob,
        &format!("/repos/{REPO}"),
        Value::Null,
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = get(&a, &alice, &format!("/repos/{REPO}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["permissions"]["admin"], true, "{body}");
    // Removing carol as a collaborator leaves what membership gives her.
    let (status, body) = api(
        &a,
        reqwest::Method::DELETE,
        &bob,
        "/repos/acme/proj/collaborators/carol",
        Value::Null,
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(permission(&a, &alice, "carol"), "read");

    // Bob pushes as the repository admin he is; carol (read) may clone, not push.
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();
    let work = git.init(tmp.path(), "work");
    git.commits(&work, "base", 2);
    git.ok(&work, &["push", &auth_url(&a, "bob", &bob, REPO), "main"]);
    let head = git.rev(&work, "main");
    let carol_url = auth_url(&a, "carol", &carol, REPO);
    assert_eq!(
        git.remote_refs(&carol_url).get("refs/heads/main"),
        Some(&head)
    );
    git.commits(&work, "carol", 1);
    git.fails(&work, &["push", &carol_url, "main"]);

    // Node B, of the same cluster, agrees.
    eventually(
        CONVERGE,
        "node B to serve the org repository to bob",
        || {
            let (status, body) = get(&b, &bob, &format!("/repos/{REPO}"));
            (status == 200 && body["permissions"]["admin"] == true).then_some(())
        },
    );

    // An org admin takes bob's repository admin away (only the org could).
    let (status, body) = api(
        &a,
        reqwest::Method::PUT,
        &dave,
        "/repos/acme/proj/collaborators/bob",
        json!({ "permission": "push" }),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(permission(&a, &alice, "bob"), "write");

    // Bob leaves the org: no access left, on either node, over REST or git.
    let (status, body) = api(
        &a,
        reqwest::Method::DELETE,
        &alice,
        "/orgs/acme/memberships/bob",
        Value::Null,
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(permission(&a, &alice, "bob"), "none");
    let (status, body) = get(&a, &bob, &format!("/repos/{REPO}"));
    assert_eq!(status, 404, "{body}");
    let bob_url = auth_url(&a, "bob", &bob, REPO);
    git.fails(&work, &["push", &bob_url, "HEAD:refs/heads/left"]);
    let ls = git.run(&work, &["ls-remote", &bob_url]);
    assert!(!ls.status.success(), "bob still lists refs: {}", ls.text());
    eventually(CONVERGE, "node B to refuse bob", || {
        let (status, _) = get(&b, &bob, &format!("/repos/{REPO}"));
        (status == 404).then_some(())
    });
    let bob_on_b = auth_url(&b, "bob", &bob, REPO);
    git.fails(&work, &["push", &bob_on_b, "HEAD:refs/heads/left"]);
    // Carol and the org admins keep theirs on B too.
    assert_eq!(permission(&b, &alice, "carol"), "read");
    assert_eq!(permission(&b, &alice, "dave"), "admin");

    // The org's admins delete the org's repository; nobody else could.
    let (status, body) = api(
        &b,
        reqwest::Method::DELETE,
        &dave,
        &format!("/repos/{REPO}"),
        Value::Null,
    );
    assert_eq!(status, 204, "{body}");
    eventually(CONVERGE, "the deletion to reach node A", || {
        let (status, _) = get(&a, &alice, &format!("/repos/{REPO}"));
        (status == 404).then_some(())
    });
}
