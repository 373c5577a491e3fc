//! SSH keys and deploy keys over REST against real nodes, with real keys from
//! `ssh-keygen`: GitHub's shapes and statuses, uniqueness across users and deploy keys,
//! refusals, the per-user cap, repository admins only for deploy keys, and a key and
//! its deletion replicating between two nodes of a cluster.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::gitutil::{add_collaborator, create_repo};
use crate::harness::{TestNode, api, create_user, eventually};
use crate::statuses::two_nodes_with_alice;

fn get(node: &TestNode, token: &str, path: &str) -> (u16, Value) {
    api(node, reqwest::Method::GET, token, path, Value::Null)
}

fn post(node: &TestNode, token: &str, path: &str, body: Value) -> (u16, Value) {
    api(node, reqwest::Method::POST, token, path, body)
}

fn delete(node: &TestNode, token: &str, path: &str) -> (u16, Value) {
    api(node, reqwest::Method::DELETE, token, path, Value::Null)
}

/// A fresh key pair made by `ssh-keygen` (`-t kind`, plus `extra`); the public key's
/// line, comment included.
fn keygen(dir: &Path, name: &str, kind: &str, extra: &[&str]) -> String {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            kind,
            "-N",
            "",
            "-C",
            &format!("{name}@test"),
            "-f",
        ])
        .arg(&path)
        .args(extra)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "{out:?}");
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// `type base64`: the key as GitHub shows it, without its comment.
fn without_comment(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A 422 whose one field error is about `key` and says `message` (in part).
#[track_caller]
fn assert_key_refused((status, body): (u16, Value), message: &str) {
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["message"], "Validation Failed", "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["resource"], "PublicKey", "{body}");
    assert_eq!(error["field"], "key", "{body}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains(message),
        "{body}"
    );
}

#[test]
fn user_keys_are_added_listed_and_deleted_with_githubs_shapes() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    let dir = tempfile::tempdir().unwrap();
    let ed = keygen(dir.path(), "ed", "ed25519", &[]);
    let rsa = keygen(dir.path(), "rsa", "rsa", &["-b", "2048"]);
    let ecdsa = keygen(dir.path(), "ec", "ecdsa", &["-b", "384"]);

    let (status, key) = post(
        &node,
        &alice,
        "/user/keys",
        json!({"title": "laptop", "key": ed}),
    );
    assert_eq!(status, 201, "{key}");
    assert_eq!(key["key"], without_comment(&ed));
    assert_eq!(key["title"], "laptop");
    assert_eq!(key["verified"], true);
    assert_eq!(key["read_only"], false);
    let id = key["id"].as_u64().unwrap();
    assert!(id > 0 && id < 1 << 53);
    assert_eq!(key["url"], node.url(&format!("/api/v3/user/keys/{id}")));
    for other in [&rsa, &ecdsa] {
        let (status, body) = post(&node, &alice, "/user/keys", json!({"key": other}));
        assert_eq!(status, 201, "{body}");
    }

    let (status, list) = get(&node, &alice, "/user/keys");
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert_eq!(get(&node, &alice, &format!("/user/keys/{id}")), (200, key));
    // Anyone may list a user's keys.
    let public: Value = crate::harness::client()
        .get(node.url("/api/v3/users/alice/keys"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(public.as_array().unwrap().len(), 3, "{public}");
    assert!(
        public
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["key"] == without_comment(&ed)),
        "{public}"
    );
    assert_eq!(get(&node, &bob, "/users/nobody/keys").0, 404);

    // Someone else's key id: not found, to read or to delete.
    assert_eq!(get(&node, &bob, &format!("/user/keys/{id}")).0, 404);
    assert_eq!(delete(&node, &bob, &format!("/user/keys/{id}")).0, 404);
    assert_eq!(get(&node, &bob, "/user/keys").1, json!([]));

    // One key, one owner: the same key again, by anyone, is refused.
    for token in [&alice, &bob] {
        assert_key_refused(
            post(&node, token, "/user/keys", json!({"key": ed})),
            "key is already in use",
        );
    }
    // Deleted, it can be added again (by anyone: here bob).
    assert_eq!(delete(&node, &alice, &format!("/user/keys/{id}")).0, 204);
    assert_eq!(delete(&node, &alice, &format!("/user/keys/{id}")).0, 404);
    assert_eq!(get(&node, &alice, &format!("/user/keys/{id}")).0, 404);
    let (status, again) = post(&node, &bob, "/user/keys", json!({"key": ed}));
    assert_eq!(status, 201, "{again}");
    assert_ne!(again["id"], id);
}

#[test]
fn bad_keys_are_refused_with_a_reason() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let dir = tempfile::tempdir().unwrap();
    let small = keygen(dir.path(), "small", "rsa", &["-b", "1024"]);
    let dsa = keygen(dir.path(), "dsa", "dsa", &[]);
    let ed = keygen(dir.path(), "ed", "ed25519", &[]);
    let private = std::fs::read_to_string(dir.path().join("ed")).unwrap();
    let cert = {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(dir.path().join("ed"))
            .args(["-I", "cert", "-n", "alice"])
            .arg(dir.path().join("small.pub"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        std::fs::read_to_string(dir.path().join("small-cert.pub")).unwrap()
    };
    for (key, why) in [
        (json!(small), "at least 2048 bits"),
        (json!(dsa), "DSA"),
        (json!(private), "private key"),
        (json!(cert), "certificates"),
        (json!(format!("{ed}{ed}")), "one key"),
        (json!("ssh-ed25519 AAAA"), "OpenSSH public key format"),
        (json!("not a key"), "OpenSSH public key format"),
        // A huge body is refused before anything parses it.
        (
            json!(format!("{} {}", ed.trim(), "x".repeat(64 * 1024))),
            "over",
        ),
    ] {
        assert_key_refused(post(&node, &alice, "/user/keys", json!({"key": key})), why);
    }
    // No key at all: GitHub's missing field.
    let (status, body) = post(&node, &alice, "/user/keys", json!({"title": "t"}));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["code"], "missing_field", "{body}");
    assert_eq!(get(&node, &alice, "/user/keys").1, json!([]));
}

#[test]
fn one_user_cannot_spam_keys() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let dir = tempfile::tempdir().unwrap();
    for n in 0..100 {
        let key = keygen(dir.path(), &format!("k{n}"), "ed25519", &[]);
        let (status, body) = post(&node, &alice, "/user/keys", json!({"key": key}));
        assert_eq!(status, 201, "key {n}: {body}");
    }
    let key = keygen(dir.path(), "one-more", "ed25519", &[]);
    assert_key_refused(
        post(&node, &alice, "/user/keys", json!({"key": key})),
        "at most 100 keys",
    );
}

#[test]
fn deploy_keys_are_for_repository_admins() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    create_repo(&node, &alice, "app", true);
    add_collaborator(&node, &alice, "alice/app", "bob", "push");
    let dir = tempfile::tempdir().unwrap();
    let ci = keygen(dir.path(), "ci", "ed25519", &[]);
    let deployer = keygen(dir.path(), "deployer", "ecdsa", &[]);
    let own = keygen(dir.path(), "own", "ed25519", &[]);

    // A collaborator with write access is not an admin: not found, as on GitHub.
    let keys = "/repos/alice/app/keys";
    assert_eq!(post(&node, &bob, keys, json!({"key": ci})).0, 404);
    assert_eq!(get(&node, &bob, keys).0, 404);

    let (status, key) = post(&node, &alice, keys, json!({"title": "ci", "key": ci}));
    assert_eq!(status, 201, "{key}");
    assert_eq!(key["read_only"], true, "read-only unless asked");
    assert_eq!(key["added_by"], "alice");
    assert_eq!(key["key"], without_comment(&ci));
    assert_eq!(key["verified"], true);
    let id = key["id"].as_u64().unwrap();
    assert_eq!(key["url"], node.url(&format!("/api/v3{keys}/{id}")));
    let (status, writer) = post(
        &node,
        &alice,
        keys,
        json!({"title": "deploy", "key": deployer, "read_only": false}),
    );
    assert_eq!(status, 201, "{writer}");
    assert_eq!(writer["read_only"], false);
    assert_eq!(get(&node, &alice, keys).1.as_array().unwrap().len(), 2);
    assert_eq!(get(&node, &alice, &format!("{keys}/{id}")), (200, key));
    assert_eq!(get(&node, &bob, &format!("{keys}/{id}")).0, 404);
    assert_eq!(delete(&node, &bob, &format!("{keys}/{id}")).0, 404);
    // A deploy key is not a user key, nor the reverse: one key, one owner.
    assert_key_refused(
        post(&node, &alice, "/user/keys", json!({"key": ci})),
        "key is already in use",
    );
    assert_eq!(post(&node, &bob, "/user/keys", json!({"key": own})).0, 201);
    assert_key_refused(
        post(&node, &alice, keys, json!({"key": own})),
        "key is already in use",
    );
    // A deploy key of this repository is not reachable through another one.
    create_repo(&node, &alice, "other", false);
    assert_eq!(
        get(&node, &alice, &format!("/repos/alice/other/keys/{id}")).0,
        404
    );

    assert_eq!(delete(&node, &alice, &format!("{keys}/{id}")).0, 204);
    assert_eq!(get(&node, &alice, &format!("{keys}/{id}")).0, 404);
    assert_eq!(get(&node, &alice, keys).1.as_array().unwrap().len(), 1);
}

#[test]
fn a_key_and_its_deletion_reach_every_node_of_the_cluster() {
    //  A <── B   (B bootstraps from A)
    let converge = Duration::from_secs(60);
    let (a, b, alice) = two_nodes_with_alice(converge);
    let dir = tempfile::tempdir().unwrap();
    let ed = keygen(dir.path(), "ed", "ed25519", &[]);

    let (status, key) = post(&a, &alice, "/user/keys", json!({"key": ed}));
    assert_eq!(status, 201, "{key}");
    let id = key["id"].as_u64().unwrap();
    eventually(converge, "the key to reach B", || {
        let listed = get(&b, &alice, "/user/keys").1;
        (listed[0]["id"] == id && listed[0]["key"] == key["key"]).then_some(())
    });
    // B knows it is in use.
    assert_key_refused(
        post(&b, &alice, "/user/keys", json!({"key": ed})),
        "key is already in use",
    );

    assert_eq!(delete(&b, &alice, &format!("/user/keys/{id}")).0, 204);
    eventually(converge, "the deletion to reach A", || {
        (get(&a, &alice, "/user/keys").1 == json!([])
            && get(&a, &alice, "/users/alice/keys").1 == json!([]))
        .then_some(())
    });
    // And the key may be added again there.
    let (status, again) = post(&a, &alice, "/user/keys", json!({"key": ed}));
    assert_eq!(status, 201, "{again}");
}
