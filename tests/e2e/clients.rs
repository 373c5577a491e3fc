//! Real GitHub client libraries against a real node: PyGithub drives a whole
//! collaboration flow (tests/clients/pygithub_flow.py).

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

#[test]
fn pygithub_drives_issues_pull_requests_reviews_and_merge() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    let work = tempfile::tempdir().unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/pygithub_flow.py");
    let out = Command::new(python())
        .arg(script)
        .env("GUTS_URL", node.url(""))
        .env("ALICE_TOKEN", &alice)
        .env("BOB_TOKEN", &bob)
        .env("WORK", work.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "PyGithub flow failed\nstdout:\n{stdout}\nstderr:\n{stderr}\nnode log tail:\n{}",
        node.logs()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(stdout.contains("pygithub flow: ok"), "{stdout}");
}
