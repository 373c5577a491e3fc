//! Git over SSH end to end, with the stock OpenSSH client (`ssh`, `ssh-keygen`,
//! `ssh-keyscan`) driven by stock git through `GIT_SSH_COMMAND`, against real node
//! processes: clones, fetches and pushes in both protocol versions, refusals that
//! read as on HTTP, user keys, deploy keys and their revocation across a cluster, one
//! host key per cluster, and hostile clients.

mod access;
mod git;
mod hostile;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

/// The cluster secret of every node these tests start (so two nodes share a host key).
pub(crate) const SECRET: &str = "ssh-tests-cluster-secret-0123456789abcdef";

/// Options for a node of the test cluster.
pub(crate) fn options() -> NodeOptions {
    NodeOptions::default()
        .env("GUTS_CLUSTER_SECRET", SECRET)
        .env("GUTS_ANTI_ENTROPY_INTERVAL", "1")
}

/// A key pair made by `ssh-keygen` and a `known_hosts` file holding the node's host key
/// (as `ssh-keyscan` reads it), so every run checks the host key strictly.
pub(crate) struct SshKey {
    pub(crate) path: PathBuf,
    pub(crate) public: String,
    known_hosts: PathBuf,
}

impl SshKey {
    /// A new `kind` key (`ed25519`, `rsa`, `ecdsa`) in `dir`, trusting `node`'s host key.
    pub(crate) fn new(dir: &Path, name: &str, kind: &str, node: &TestNode) -> SshKey {
        let path = dir.join(name);
        let mut keygen = Command::new("ssh-keygen");
        keygen
            .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(&path);
        if kind == "rsa" {
            keygen.args(["-b", "3072"]);
        }
        let out = keygen
            .output()
            .expect("ssh-keygen (OpenSSH) must be installed");
        assert!(out.status.success(), "ssh-keygen: {out:?}");
        let public = std::fs::read_to_string(path.with_extension("pub"))
            .or_else(|_| std::fs::read_to_string(format!("{}.pub", path.display())))
            .unwrap()
            .trim()
            .to_owned();
        let known_hosts = dir.join(format!("{name}.known_hosts"));
        std::fs::write(&known_hosts, keyscan(node)).unwrap();
        SshKey {
            path,
            public,
            known_hosts,
        }
    }

    /// Trusts `node`'s host key too (known_hosts lines are per host and port).
    pub(crate) fn trust(&self, node: &TestNode) {
        let mut lines = std::fs::read_to_string(&self.known_hosts).unwrap();
        lines.push_str(&keyscan(node));
        std::fs::write(&self.known_hosts, lines).unwrap();
    }

    /// The `ssh` command git runs (`GIT_SSH_COMMAND`): this key only, the node's port,
    /// strict host key checking, never a prompt.
    pub(crate) fn command(&self, node: &TestNode) -> String {
        format!(
            "ssh -i {} -p {} -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes \
             -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o LogLevel=ERROR \
             -o ConnectTimeout=10",
            self.path.display(),
            node.ssh.port(),
            self.known_hosts.display()
        )
    }

    /// Runs `ssh … git@127.0.0.1 <remote>` (no git), for what a person at a terminal
    /// sees: exit status, stdout, stderr.
    pub(crate) fn ssh(&self, node: &TestNode, remote: &[&str]) -> (i32, String, String) {
        let command = self.command(node);
        let mut words: Vec<&str> = command.split_whitespace().collect();
        let program = words.remove(0);
        let out = Command::new(program)
            .args(&words)
            .arg("-T")
            .arg("git@127.0.0.1")
            .args(remote)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The node's host key lines, as `ssh-keyscan` reads them (`[127.0.0.1]:PORT ssh-ed25519 …`).
pub(crate) fn keyscan(node: &TestNode) -> String {
    let out = Command::new("ssh-keyscan")
        .args(["-T", "10", "-t", "ed25519", "-p"])
        .arg(node.ssh.port().to_string())
        .arg("127.0.0.1")
        .stderr(Stdio::null())
        .output()
        .expect("ssh-keyscan (OpenSSH) must be installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("ssh-ed25519 AAAA"),
        "ssh-keyscan found no host key on port {}: {text}",
        node.ssh.port()
    );
    text
}

/// The `ssh://` URL of `owner/repo` on `node`.
pub(crate) fn ssh_url(node: &TestNode, repo: &str) -> String {
    format!("ssh://git@127.0.0.1:{}/{repo}.git", node.ssh.port())
}

/// Adds `key` to the token's user (`POST /user/keys`); returns the key's id.
#[track_caller]
pub(crate) fn add_user_key(node: &TestNode, token: &str, key: &SshKey) -> u64 {
    let (status, body) = api(
        node,
        reqwest::Method::POST,
        token,
        "/user/keys",
        json!({ "title": "laptop", "key": key.public }),
    );
    assert_eq!(status, 201, "{body}");
    body["id"].as_u64().unwrap()
}

/// Adds `key` as a deploy key of `repo`; returns its id.
#[track_caller]
pub(crate) fn add_deploy_key(
    node: &TestNode,
    token: &str,
    repo: &str,
    key: &SshKey,
    read_only: bool,
) -> u64 {
    let (status, body) = api(
        node,
        reqwest::Method::POST,
        token,
        &format!("/repos/{repo}/keys"),
        json!({ "title": "ci", "key": key.public, "read_only": read_only }),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["read_only"], Value::Bool(read_only), "{body}");
    body["id"].as_u64().unwrap()
}

/// Waits until `key` authenticates on `node` (`ssh -T` greets by name).
pub(crate) fn wait_key_works(node: &TestNode, key: &SshKey, greeting: &str) {
    eventually(Duration::from_secs(30), "the key to authenticate", || {
        let (_, _, stderr) = key.ssh(node, &[]);
        stderr.contains(greeting).then_some(())
    });
}
