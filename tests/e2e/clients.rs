//! Real GitHub client libraries against a real node: PyGithub drives a whole
//! collaboration flow (tests/clients/pygithub_flow.py), octokit a flow that commits
//! without git (tests/clients/octokit_flow.mjs). Each records every answer it received,
//! and each answer must be valid against GitHub's published description
//! (tests/conformance/recording.py), not only parse in the client.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{TestNode, create_user};

/// The Python that has PyGithub: `GUTS_PYTHON` (set by scripts/test.sh, which installs
/// it), else the venv scripts/test.sh makes under target/.
pub(crate) fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("GUTS_PYTHON") {
        return PathBuf::from(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join("target/pyvenv/bin/python");
    assert!(
        venv.exists(),
        "no Python with PyGithub: run scripts/test.sh (it installs one) or set GUTS_PYTHON"
    );
    venv
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What a flow printed, with the node's log tail, for a failure message.
fn report(what: &str, out: &std::process::Output, node: &TestNode) -> String {
    format!(
        "{what} failed\nstdout:\n{}\nstderr:\n{}\nnode log tail:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        node.logs()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// Every REST answer in `recording` is valid against GitHub's description (but the
/// named `ssh_url` exception); at least `at_least` answers were recorded.
fn assert_recording_conforms(recording: &std::path::Path, at_least: usize) {
    let lines = std::fs::read_to_string(recording).unwrap().lines().count();
    assert!(lines >= at_least, "only {lines} answers recorded");
    let description = std::env::var("GUTS_GITHUB_OPENAPI").unwrap_or_else(|_| {
        root()
            .join("target/npm/node_modules/@octokit/openapi/generated/api.github.com.json")
            .display()
            .to_string()
    });
    let out = Command::new(python())
        .arg(root().join("tests/conformance/recording.py"))
        .arg(recording)
        .arg(&description)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "answers the client received break GitHub's description:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn octokit_commits_without_git_and_merges_a_reviewed_pull_request() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    let work = tempfile::tempdir().unwrap();
    let recording = work.path().join("answers.jsonl");
    let rest = std::env::var_os("GUTS_OCTOKIT_REST").map_or_else(
        || root().join("target/npm/node_modules/@octokit/rest"),
        PathBuf::from,
    );
    assert!(
        rest.join("package.json").exists(),
        "no @octokit/rest at {}: run scripts/test.sh (it installs it) or set GUTS_OCTOKIT_REST",
        rest.display()
    );
    let out = Command::new("node")
        .arg(root().join("tests/clients/octokit_flow.mjs"))
        .env("GUTS_URL", node.url(""))
        .env("ALICE_TOKEN", &alice)
        .env("BOB_TOKEN", &bob)
        .env("OCTOKIT_REST", &rest)
        .env("RECORDING", &recording)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node (scripts/test.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "{}",
        report("octokit flow", &out, &node)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("octokit flow: ok"), "{stdout}");
    assert_recording_conforms(&recording, 15);
}

#[test]
fn pygithub_drives_issues_pull_requests_reviews_and_merge() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    let work = tempfile::tempdir().unwrap();
    let recording = work.path().join("answers.jsonl");
    let out = Command::new(python())
        .arg(root().join("tests/clients/pygithub_flow.py"))
        .env("GUTS_URL", node.url(""))
        .env("ALICE_TOKEN", &alice)
        .env("BOB_TOKEN", &bob)
        .env("WORK", work.path())
        .env("RECORDING", &recording)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        report("PyGithub flow", &out, &node)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pygithub flow: ok"), "{stdout}");
    assert_recording_conforms(&recording, 20);
}
