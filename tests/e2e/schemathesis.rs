//! Schemathesis (PyPI) against the OpenAPI document a real node serves: generated
//! requests of every shape, valid and not, to every documented operation. No answer may
//! be a 5xx, and every answer must match the document's schema for it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::clients::python;
use crate::harness::{NodeOptions, TestNode, client, create_user};

/// The `schemathesis` of the venv that holds the test Python (scripts/test.sh installs
/// both).
fn schemathesis() -> PathBuf {
    let bin = python().with_file_name("schemathesis");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/test.sh, which installs schemathesis",
        bin.display()
    );
    bin
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    // Generous limits: the run makes tens of thousands of requests.
    let node = TestNode::start_with(
        NodeOptions::default()
            .env("GUTS_RATE_LIMIT_AUTHENTICATED_PER_HOUR", "100000000")
            .env("GUTS_RATE_LIMIT_ANONYMOUS_PER_HOUR", "100000000"),
    );
    let token = create_user(&node, "alice");
    // Some real data, so that generated requests also reach existing objects.
    let api = |path: &str| node.url(&format!("/api/v3{path}"));
    let post = |path: &str, body: serde_json::Value| {
        let r = client()
            .post(api(path))
            .header("Authorization", format!("token {token}"))
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.text().unwrap());
    };
    post("/user/repos", json!({"name": "r"}));
    post(
        "/repos/alice/r/issues",
        json!({"title": "one", "labels": ["bug"]}),
    );
    post(
        "/repos/alice/r/issues/1/comments",
        json!({"body": "a comment"}),
    );

    // Schemathesis keeps a cache in its working directory: not in the checkout.
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(schemathesis())
        .current_dir(cwd.path())
        .args([
            "run",
            &node.url("/api/v3/openapi.json"),
            "--header",
            &format!("Authorization: token {token}"),
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--max-examples",
            "25",
            // One worker: CPython 3.11's ast module is not safe across the threads
            // hypothesis would describe strategies in.
            "--workers",
            "1",
            "--max-time",
            "150",
            "--seed",
            "20261122",
            "--phases",
            "examples,fuzzing,stateful",
            "--request-timeout",
            "30",
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // It really ran: many generated cases, every operation tested.
    assert!(stdout.contains("generated"), "{stdout}");
    assert!(!stdout.contains("Selected: 0"), "{stdout}");
}
