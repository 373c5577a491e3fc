//! GitHub REST conformance: every JSON answer of a real node, for every operation it
//! shares with GitHub, checked against GitHub's own published OpenAPI description
//! (npm `@octokit/openapi`, installed under target/ by scripts/test.sh).
//!
//! The Rust side sets the stage the way an operator and a developer would (accounts
//! and an organization through the admin API, history pushed with the stock `git`);
//! tests/conformance/drive.py then drives the REST API and compares the violations it
//! finds with tests/conformance/known_violations.txt, which must equal them exactly.

use std::path::PathBuf;
use std::process::Command;

use crate::clients::python;
use crate::gitutil::{Git, auth_url, create_repo, workspace_root};
use crate::harness::{NodeOptions, TestNode, create_org, create_user};

/// GitHub's description of api.github.com: `GUTS_GITHUB_OPENAPI`, else where
/// scripts/test.sh installs the pinned `@octokit/openapi`.
fn github_description() -> PathBuf {
    let path = std::env::var_os("GUTS_GITHUB_OPENAPI")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root()
                .join("target/npm/node_modules/@octokit/openapi/generated/api.github.com.json")
        });
    assert!(
        path.is_file(),
        "GitHub's OpenAPI description is missing at {}: run scripts/test.sh (it installs \
         @octokit/openapi with npm) or set GUTS_GITHUB_OPENAPI",
        path.display()
    );
    path
}

#[test]
fn every_answer_matches_githubs_published_description() {
    let description = github_description();
    let python = python();
    assert!(
        python.exists(),
        "GUTS_PYTHON points at {}, which does not exist",
        python.display()
    );

    // Webhooks may target loopback here: the driver's hook points at a closed port.
    let node = TestNode::start_with(
        NodeOptions::default()
            .env("GUTS_WEBHOOK_ALLOWED_NETS", "127.0.0.0/8")
            .env("GUTS_WEBHOOK_MAX_ATTEMPTS", "1"),
    );
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    create_org(&node, "acme", "alice");
    create_repo(&node, &alice, "conf", false);

    // Real history: two commits on main (a file at the root, a directory), and a
    // feature branch that adds a file and edits one, for the pull request.
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let tree = git.init(work.path(), "conf");
    git.commit(&tree, &[("README.md", b"# conf\n")], "Initial commit");
    git.commit(
        &tree,
        &[
            ("docs/guide.md", b"# Guide\n\nRead me first.\n"),
            ("docs/README.md", b"# Docs\n"),
            ("src/lib.rs", b"pub fn answer() -> u32 {\n    42\n}\n"),
        ],
        "Add a guide and the code",
    );
    let url = auth_url(&node, "alice", &alice, "alice/conf");
    git.ok(&tree, &["tag", "-a", "-m", "First release", "v0.1"]);
    git.ok(&tree, &["push", "--quiet", &url, "main", "v0.1"]);
    git.ok(&tree, &["checkout", "--quiet", "-b", "feature"]);
    git.commit(
        &tree,
        &[
            ("feature.txt", b"a feature\n"),
            ("README.md", b"# conf\n\nNow with a feature.\n"),
        ],
        "Add a feature",
    );
    git.ok(&tree, &["push", "--quiet", &url, "feature"]);

    let script = workspace_root().join("tests/conformance/drive.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg("--url")
        .arg(node.url(""))
        .arg("--description")
        .arg(&description)
        .args(["--repo", "alice/conf", "--org", "acme"])
        // After a fix: regenerate the known list from this very run (then review the
        // diff: it may only lose lines).
        .args(std::env::var_os("GUTS_CONFORMANCE_WRITE_KNOWN").map(|_| "--write-known"))
        .env("ALICE_TOKEN", &alice)
        .env("BOB_TOKEN", &bob)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the conformance driver failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}\nnode log tail:\n{}",
        out.status,
        node.logs()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        stdout.contains("conformance: ok"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    println!("{stdout}");
}
