//! Page behaviour over plain HTTP, beyond the browser flows: a writer sets an issue's
//! labels and assignees from its page, the issue list filters by them, and a reader
//! gets no such form and cannot post it.

use reqwest::Method;
use serde_json::json;

use super::http::WebClient;
use super::{ALICE_PW, BOB_PW, create_web_user};
use crate::gitutil::create_repo;
use crate::harness::{TestNode, api};

#[test]
fn a_writer_triages_an_issue_and_the_list_filters_by_it() {
    let node = TestNode::start();
    let alice = create_web_user(&node, "alice", ALICE_PW);
    create_web_user(&node, "bob", BOB_PW);
    create_repo(&node, &alice, "tracker", false);
    for title in ["Crash on start", "Typo in docs"] {
        let (status, _) = api(
            &node,
            Method::POST,
            &alice,
            "/repos/alice/tracker/issues",
            json!({ "title": title }),
        );
        assert_eq!(status, 201);
    }
    let mut web = WebClient::new(&node);
    web.sign_in("alice", ALICE_PW);
    let page = web.get("/alice/tracker/issues/1");
    page.expect(200);
    let csrf = page.csrf("triage-form");
    let done = web.submit(
        "/alice/tracker/issues/1/triage",
        &[
            ("labels", "bug, urgent"),
            ("assignees", "bob"),
            ("_csrf", &csrf),
        ],
    );
    assert_eq!(done.status, 303, "{}", done.describe());
    let (_, issue) = api(
        &node,
        Method::GET,
        &alice,
        "/repos/alice/tracker/issues/1",
        json!(null),
    );
    let labels: Vec<&str> = issue["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(labels, ["bug", "urgent"], "{issue}");
    assert_eq!(issue["assignees"][0]["login"], "bob", "{issue}");

    let listed = |web: &mut WebClient, query: &str| {
        let page = web.get(&format!("/alice/tracker/issues?{query}"));
        page.expect(200);
        (
            page.body.contains("Crash on start"),
            page.body.contains("Typo in docs"),
        )
    };
    assert_eq!(listed(&mut web, "labels=bug"), (true, false));
    assert_eq!(listed(&mut web, "assignee=bob"), (true, false));
    assert_eq!(listed(&mut web, "assignee=none"), (false, true));
    assert_eq!(listed(&mut web, "creator=alice"), (true, true));
    assert_eq!(listed(&mut web, "labels=nope"), (false, false));
    // An unknown login names nobody: a 404 page, as GitHub's list answers.
    web.get("/alice/tracker/issues?assignee=no-such-user")
        .expect_error_page(404);

    // Bob reads the repository but may not triage: no form, and a forged post is
    // refused by the fold.
    let mut bob = WebClient::new(&node);
    bob.sign_in("bob", BOB_PW);
    let page = bob.get("/alice/tracker/issues/2");
    page.expect(200);
    assert!(!page.body.contains("triage-form"), "{}", page.describe());
    let csrf = page.csrf("comment-form");
    let refused = bob.submit(
        "/alice/tracker/issues/2/triage",
        &[("labels", "wontfix"), ("assignees", ""), ("_csrf", &csrf)],
    );
    refused.expect_error_page(403);
    let (_, issue) = api(
        &node,
        Method::GET,
        &alice,
        "/repos/alice/tracker/issues/2",
        json!(null),
    );
    assert_eq!(issue["labels"], json!([]), "{issue}");
}

/// A repository admin adds a webhook from the settings page (the service's outbound
/// policy applies: loopback only because the operator allowed it here) and deletes it;
/// a writer sees no settings at all.
#[test]
fn an_admin_manages_webhooks_from_the_settings_page() {
    let node = TestNode::start_with(
        crate::harness::NodeOptions::default().env("GUTS_WEBHOOK_ALLOWED_NETS", "127.0.0.0/8"),
    );
    let alice = create_web_user(&node, "alice", ALICE_PW);
    create_web_user(&node, "bob", BOB_PW);
    create_repo(&node, &alice, "hooked", false);
    let (status, _) = api(
        &node,
        Method::PUT,
        &alice,
        "/repos/alice/hooked/collaborators/bob",
        json!({ "permission": "push" }),
    );
    assert_eq!(status, 204);
    let mut web = WebClient::new(&node);
    web.sign_in("alice", ALICE_PW);
    let page = web.get("/alice/hooked/settings");
    page.expect(200);
    let csrf = page.csrf("hook-form");
    let added = web.submit(
        "/alice/hooked/settings/hooks",
        &[
            ("url", "http://127.0.0.1:9/ci"),
            ("secret", "s3cret"),
            ("events", "push, pull_request"),
            ("_csrf", &csrf),
        ],
    );
    assert_eq!(added.status, 303, "{}", added.describe());
    let (_, hooks) = api(
        &node,
        Method::GET,
        &alice,
        "/repos/alice/hooked/hooks",
        json!(null),
    );
    assert_eq!(
        hooks[0]["config"]["url"], "http://127.0.0.1:9/ci",
        "{hooks}"
    );
    assert_eq!(
        hooks[0]["events"],
        json!(["push", "pull_request"]),
        "{hooks}"
    );
    let id = hooks[0]["id"].as_u64().unwrap();
    let page = web.get("/alice/hooked/settings");
    assert!(
        page.body.contains("http://127.0.0.1:9/ci"),
        "{}",
        page.describe()
    );
    assert!(!page.body.contains("s3cret"), "the secret is never shown");
    let bad = web.submit(
        "/alice/hooked/settings/hooks",
        &[
            ("url", "ftp://127.0.0.1/x"),
            ("events", "push"),
            ("_csrf", &csrf),
        ],
    );
    bad.expect_error_page(422);
    let deleted = web.submit(
        &format!("/alice/hooked/settings/hooks/{id}/delete"),
        &[("_csrf", &csrf)],
    );
    assert_eq!(deleted.status, 303, "{}", deleted.describe());
    let (_, hooks) = api(
        &node,
        Method::GET,
        &alice,
        "/repos/alice/hooked/hooks",
        json!(null),
    );
    assert_eq!(hooks, json!([]));

    let mut bob = WebClient::new(&node);
    bob.sign_in("bob", BOB_PW);
    bob.get("/alice/hooked/settings").expect_error_page(403);
}

/// An admin protects a branch from the settings page (approvals and a required check)
/// and removes the protection; the REST API sees both.
#[test]
fn an_admin_protects_a_branch_from_the_settings_page() {
    let node = TestNode::start();
    let alice = create_web_user(&node, "alice", ALICE_PW);
    let (status, _) = api(
        &node,
        Method::POST,
        &alice,
        "/user/repos",
        json!({ "name": "guarded", "auto_init": true }),
    );
    assert_eq!(status, 201);
    let mut web = WebClient::new(&node);
    web.sign_in("alice", ALICE_PW);
    let page = web.get("/alice/guarded/settings");
    page.expect(200);
    let csrf = page.csrf("protection-form");
    let saved = web.submit(
        "/alice/guarded/settings/protection",
        &[
            ("branch", "main"),
            ("approvals", "2"),
            ("checks", "ci, lint"),
            ("_csrf", &csrf),
        ],
    );
    assert_eq!(saved.status, 303, "{}", saved.describe());
    let path = "/repos/alice/guarded/branches/main/protection";
    let (status, rule) = api(&node, Method::GET, &alice, path, json!(null));
    assert_eq!(status, 200, "{rule}");
    assert_eq!(
        rule["required_pull_request_reviews"]["required_approving_review_count"],
        2
    );
    assert_eq!(
        rule["required_status_checks"]["contexts"],
        json!(["ci", "lint"])
    );
    let bad = web.submit(
        "/alice/guarded/settings/protection",
        &[("branch", "main"), ("approvals", "99"), ("_csrf", &csrf)],
    );
    bad.expect_error_page(400);
    let removed = web.submit(
        "/alice/guarded/settings/protection",
        &[("branch", "main"), ("remove", "1"), ("_csrf", &csrf)],
    );
    assert_eq!(removed.status, 303, "{}", removed.describe());
    let (status, _) = api(&node, Method::GET, &alice, path, json!(null));
    assert_eq!(status, 404);
}

/// The README on a repository's home resolves its relative links to the blob view and
/// its relative images to the raw download, as GitHub does.
#[test]
fn the_readme_links_relative_paths_into_the_repository() {
    let node = TestNode::start();
    let alice = create_web_user(&node, "alice", ALICE_PW);
    let (status, _) = api(
        &node,
        Method::POST,
        &alice,
        "/user/repos",
        json!({ "name": "docs", "auto_init": true }),
    );
    assert_eq!(status, 201);
    let (_, current) = api(
        &node,
        Method::GET,
        &alice,
        "/repos/alice/docs/contents/README.md",
        json!(null),
    );
    use base64::Engine as _;
    let text = "# Docs\n\nSee [the guide](docs/guide.md) and [home](https://example.com).\n\n![logo](img/logo.png)\n";
    let (status, written) = api(
        &node,
        Method::PUT,
        &alice,
        "/repos/alice/docs/contents/README.md",
        json!({
            "message": "Link the guide",
            "content": base64::engine::general_purpose::STANDARD.encode(text),
            "sha": current["sha"],
        }),
    );
    assert_eq!(status, 200, "{written}");
    let mut web = WebClient::new(&node);
    let page = web.get("/alice/docs");
    page.expect(200);
    for wanted in [
        "href=\"/alice/docs/blob/main/docs/guide.md\"",
        "href=\"https://example.com\"",
        "src=\"/alice/docs/raw/main/img/logo.png\"",
    ] {
        assert!(page.body.contains(wanted), "{wanted}: {}", page.describe());
    }
}
