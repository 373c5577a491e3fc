//! Who an SSH key lets in: user keys with their user's permissions, deploy keys on one
//! repository, unknown and revoked keys nowhere, across the nodes of a cluster; and one
//! host key per cluster, across restarts.

use serde_json::json;

use super::*;
use crate::gitutil::{Git, add_collaborator, auth_url, create_repo};

fn join(bootstrap: &TestNode) -> TestNode {
    TestNode::start_with(options().env("GUTS_BOOTSTRAP_PEERS", &bootstrap.p2p_addr()))
}

/// On a two-node cluster: an unknown key is refused before any command; a user key
/// reads and writes what its user may and no more; a key revoked on node B stops
/// working on node A; and both nodes present one host key, before and after a restart.
#[test]
fn user_keys_follow_their_users_permissions_and_revocation_reaches_every_node() {
    let a = TestNode::start_with(options());
    let b = join(&a);
    eventually(Duration::from_secs(60), "the nodes to peer", || {
        (peer_count(&a) >= 1 && peer_count(&b) >= 1).then_some(())
    });
    // One host key for the cluster.
    let host_key = |node: &TestNode| {
        keyscan(node)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' ').map(|(_, key)| key.to_owned()))
            .next()
            .unwrap()
    };
    assert_eq!(host_key(&a), host_key(&b));
    // `config check` prints it, for known_hosts, before any node runs.
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(node_binary())
        .args(["config", "check"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GUTS_CLUSTER_SECRET", SECRET)
        .env("GUTS_DATA_DIR", empty.path().join("never-created"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!(
            "# SSH host key (for known_hosts): {}",
            host_key(&a)
        )),
        "{printed}"
    );
    assert!(!empty.path().join("never-created").exists());

    let alice = create_user(&a, "alice");
    let bob = create_user(&a, "bob");
    let tmp = tempfile::tempdir().unwrap();
    let git = Git::v(2);
    create_repo(&a, &alice, "secret", true);
    create_repo(&a, &alice, "open", false);
    let work = git.init(tmp.path(), "work");
    git.commits(&work, "base", 2);
    let http = auth_url(&a, "alice", &alice, "alice/secret");
    git.ok(&work, &["push", "--quiet", &http, "main"]);
    git.ok(
        &work,
        &[
            "push",
            "--quiet",
            &auth_url(&a, "alice", &alice, "alice/open"),
            "main",
        ],
    );

    // An unknown key never gets as far as a command.
    let stranger = SshKey::new(tmp.path(), "stranger", "ed25519", &a);
    let env = |key: &SshKey, node: &TestNode| key.command(node);
    let run = git.run_env(
        tmp.path(),
        &["ls-remote", &ssh_url(&a, "alice/open")],
        &[("GIT_SSH_COMMAND", &env(&stranger, &a))],
    );
    assert!(!run.status.success(), "{run}");
    assert!(
        run.text().contains("Permission denied (publickey)"),
        "{run}"
    );

    // Bob's key: the public repository reads, the private one is not there, and
    // pushing to Alice's repository is refused by name.
    let bob_key = SshKey::new(tmp.path(), "bob", "rsa", &a);
    add_user_key(&a, &bob, &bob_key);
    let bob_ssh = env(&bob_key, &a);
    git.ok_env(
        tmp.path(),
        &["ls-remote", &ssh_url(&a, "alice/open")],
        &[("GIT_SSH_COMMAND", &bob_ssh)],
    );
    let hidden = git.run_env(
        tmp.path(),
        &["ls-remote", &ssh_url(&a, "alice/secret")],
        &[("GIT_SSH_COMMAND", &bob_ssh)],
    );
    assert!(!hidden.status.success(), "{hidden}");
    assert!(hidden.text().contains("Repository not found."), "{hidden}");
    let push = git.run_env(
        &work,
        &["push", &ssh_url(&a, "alice/open"), "main:bob"],
        &[("GIT_SSH_COMMAND", &bob_ssh)],
    );
    assert!(!push.status.success(), "{push}");
    assert!(
        push.text()
            .contains("Permission to alice/open denied to bob."),
        "{push}"
    );
    // Made a collaborator, Bob pushes over SSH.
    add_collaborator(&a, &alice, "alice/open", "bob", "push");
    git.ok_env(
        &work,
        &["push", "--quiet", &ssh_url(&a, "alice/open"), "main:bob"],
        &[("GIT_SSH_COMMAND", &bob_ssh)],
    );

    // Alice's key, added on A, works on B once the accounts replicated.
    let alice_key = SshKey::new(tmp.path(), "alice", "ed25519", &a);
    alice_key.trust(&b);
    let id = add_user_key(&a, &alice, &alice_key);
    wait_key_works(&b, &alice_key, "Hi alice!");
    // B sees the repositories too: Alice clones her private one from B.
    eventually(Duration::from_secs(60), "the repository on B", || {
        git.run_env(
            tmp.path(),
            &["ls-remote", &ssh_url(&b, "alice/secret")],
            &[("GIT_SSH_COMMAND", &env(&alice_key, &b))],
        )
        .status
        .success()
        .then_some(())
    });

    // Revoked on B: refused on A, promptly.
    let (status, _) = api(
        &b,
        reqwest::Method::DELETE,
        &alice,
        &format!("/user/keys/{id}"),
        json!(null),
    );
    assert_eq!(status, 204);
    eventually(Duration::from_secs(30), "the revocation to reach A", || {
        let (_, _, stderr) = alice_key.ssh(&a, &[]);
        stderr
            .contains("Permission denied (publickey)")
            .then_some(())
    });
    let refused = git.run_env(
        tmp.path(),
        &["ls-remote", &ssh_url(&a, "alice/secret")],
        &[("GIT_SSH_COMMAND", &env(&alice_key, &a))],
    );
    assert!(!refused.status.success(), "{refused}");
    assert!(
        a.metric("guts_ssh_auth_total{outcome=\"unknown_key\"}")
            .unwrap_or(0.0)
            >= 1.0
    );

    // The host key survives a restart: the same known_hosts still checks strictly.
    let (data, addr) = (a.data_dir.clone(), a.ssh.to_string());
    let mut a = a;
    a.stop();
    let a = TestNode::start_with(options().data_dir(&data).env("GUTS_SSH_ADDR", &addr));
    let (code, _, stderr) = bob_key.ssh(&a, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Hi bob!"), "{stderr}");
}

/// A read-only deploy key clones its repository and nothing else, and cannot push; a
/// write deploy key pushes (signed by the admin who added it).
#[test]
fn deploy_keys_open_one_repository() {
    let node = TestNode::start();
    let token = create_user(&node, "dora");
    let tmp = tempfile::tempdir().unwrap();
    let git = Git::v(2);
    for name in ["app", "other"] {
        create_repo(&node, &token, name, true);
    }
    let work = git.init(tmp.path(), "work");
    git.commits(&work, "base", 2);
    for name in ["app", "other"] {
        git.ok(
            &work,
            &[
                "push",
                "--quiet",
                &auth_url(&node, "dora", &token, &format!("dora/{name}")),
                "main",
            ],
        );
    }

    let reader = SshKey::new(tmp.path(), "reader", "ed25519", &node);
    add_deploy_key(&node, &token, "dora/app", &reader, true);
    let reader_ssh = reader.command(&node);
    let env = [("GIT_SSH_COMMAND", reader_ssh.as_str())];
    let clone = tmp.path().join("app");
    git.ok_env(
        tmp.path(),
        &[
            "clone",
            "--quiet",
            &ssh_url(&node, "dora/app"),
            clone.to_str().unwrap(),
        ],
        &env,
    );
    git.commits(&clone, "ci", 1);
    let push = git.run_env(&clone, &["push", "origin", "HEAD:main"], &env);
    assert!(!push.status.success(), "{push}");
    assert!(push.text().contains("read-only deploy key"), "{push}");
    let other = git.run_env(
        tmp.path(),
        &["ls-remote", &ssh_url(&node, "dora/other")],
        &env,
    );
    assert!(!other.status.success(), "{other}");
    assert!(other.text().contains("Repository not found."), "{other}");

    let writer = SshKey::new(tmp.path(), "writer", "ed25519", &node);
    add_deploy_key(&node, &token, "dora/app", &writer, false);
    let writer_ssh = writer.command(&node);
    git.ok_env(
        &clone,
        &["push", "--quiet", "origin", "HEAD:main"],
        &[("GIT_SSH_COMMAND", &writer_ssh)],
    );
    let head = git.rev(&clone, "HEAD");
    let refs = git.remote_refs(&auth_url(&node, "dora", &token, "dora/app"));
    assert_eq!(refs["refs/heads/main"], head);
    // A deploy key is greeted by its repository, as on GitHub.
    let (_, _, stderr) = writer.ssh(&node, &[]);
    assert!(
        stderr.contains("Hi dora/app! You've successfully authenticated"),
        "{stderr}"
    );
}
