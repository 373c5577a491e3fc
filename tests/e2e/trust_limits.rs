//! Limits and trust at the HTTP edge, against the real binary (audit findings: the
//! operation encoder's caps answered 500, the JSON body limit was axum's 2 MiB whatever
//! `GUTS_MAX_REQUEST_SIZE_MB` said, and `X-Forwarded-*` headers were believed from
//! anyone). The caps on a real pull request, pushed with git; the body limit just under
//! and just over a configured size; forwarded headers with and without
//! `GUTS_TRUSTED_PROXIES`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::gitutil::*;
use crate::harness::*;

/// The body limit of the nodes below: above axum's 2 MiB default, so a body between the
/// two tells whether the setting is what applies.
const LIMIT_MB: usize = 3;
const LIMIT: usize = LIMIT_MB * 1024 * 1024;

/// GitHub's validation error naming `resource` and `field`.
#[track_caller]
fn assert_validation(status: u16, body: &Value, resource: &str, field: &str) {
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["message"], "Validation Failed", "{body}");
    assert!(body["documentation_url"].is_string(), "{body}");
    assert_eq!(body["errors"][0]["resource"], resource, "{body}");
    assert_eq!(body["errors"][0]["field"], field, "{body}");
}

#[test]
fn encoder_caps_are_validation_errors_on_a_real_pull_request() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let repo = "alice/caps";
    create_repo(&node, &alice, "caps", false);
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();
    let url = auth_url(&node, "alice", &alice, repo);
    let work = git.init(tmp.path(), "caps");
    git.commits(&work, "base", 1);
    git.ok(&work, &["push", &url, "main"]);
    git.ok(&work, &["checkout", "--quiet", "-b", "feature"]);
    git.commits(&work, "feature", 1);
    git.ok(&work, &["push", &url, "feature"]);
    let (status, body) = api(
        &node,
        Method::POST,
        &alice,
        &format!("/repos/{repo}/pulls"),
        json!({ "title": "t", "head": "feature", "base": "main" }),
    );
    assert_eq!(status, 201, "{body}");
    let number = body["number"].as_u64().unwrap();
    let reviews = format!("/repos/{repo}/pulls/{number}/reviews");

    // 1,001 inline comments: one more than a review operation carries.
    let comment = json!({ "path": "a.txt", "line": 1, "body": "x" });
    let review = json!({ "event": "COMMENT", "body": "b", "comments": vec![comment; 1001] });
    let (status, body) = api(&node, Method::POST, &alice, &reviews, review);
    assert_validation(status, &body, "PullRequestReview", "comments");

    // A 2,000-byte path.
    let comment = json!({ "path": "p/".repeat(1000), "line": 1, "body": "x" });
    let (status, body) = api(
        &node,
        Method::POST,
        &alice,
        &format!("/repos/{repo}/pulls/{number}/comments"),
        comment,
    );
    assert_validation(status, &body, "PullRequestReviewComment", "path");

    // Every field within its cap, the whole over the 1 MiB of one operation.
    let comment = json!({ "path": "a.txt", "line": 1, "body": "y".repeat(60_000) });
    let review = json!({ "event": "COMMENT", "body": "b", "comments": vec![comment; 20] });
    let (status, body) = api(&node, Method::POST, &alice, &reviews, review);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["resource"], "PullRequestReview", "{body}");
    assert_eq!(body["errors"][0]["code"], "custom", "{body}");

    // A 2,000-byte base branch.
    let (status, body) = api(
        &node,
        Method::PATCH,
        &alice,
        &format!("/repos/{repo}/pulls/{number}"),
        json!({ "base": "b".repeat(2000) }),
    );
    assert_validation(status, &body, "PullRequest", "base");

    // Eleven assignees, all real users.
    let mut logins = vec!["alice".to_string()];
    for i in 1..=10 {
        let login = format!("user{i}");
        create_user(&node, &login);
        logins.push(login);
    }
    let (status, body) = api(
        &node,
        Method::POST,
        &alice,
        &format!("/repos/{repo}/issues"),
        json!({ "title": "t", "assignees": logins }),
    );
    assert_validation(status, &body, "Issue", "assignees");

    // Nothing above was a server error, and a review within the caps still works.
    let comment = json!({ "path": "a.txt", "line": 1, "body": "fine" });
    let review = json!({ "event": "COMMENT", "body": "b", "comments": [comment] });
    let (status, body) = api(&node, Method::POST, &alice, &reviews, review);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn the_configured_request_size_is_the_json_body_limit() {
    let node = TestNode::start_with(
        NodeOptions::default().env("GUTS_MAX_REQUEST_SIZE_MB", &LIMIT_MB.to_string()),
    );
    let alice = create_user(&node, "alice");
    // Exactly the limit, over axum's 2 MiB default: read, the padding ignored.
    let head = r#"{"name":"big","pad":""#;
    let body = format!(r#"{head}{}"}}"#, "x".repeat(LIMIT - head.len() - 2));
    assert_eq!(body.len(), LIMIT);
    let r = client()
        .post(node.url("/api/v3/user/repos"))
        .header("Authorization", format!("token {alice}"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());

    // One byte more, declared up front: 413 with GitHub's error JSON. (Only the
    // headers are sent: the node answers from them and closes, and a client still
    // writing the body would see a broken pipe instead of the answer.)
    let raw = RawRequest::begin(
        node.api,
        &format!(
            "POST /api/v3/user/repos HTTP/1.1\r\nHost: x\r\nAuthorization: token {alice}\r\nContent-Type: application/json\r\nContent-Length: {}",
            LIMIT + 1
        ),
        b"",
    );
    let response = raw.response();
    assert_eq!(response.status, 413);
    let body = response.json();
    assert_eq!(body["message"], "Payload Too Large", "{body}");
    assert_eq!(body["status"], "413", "{body}");
    assert!(body["documentation_url"].is_string(), "{body}");
}

/// `GET /api/v3/users/alice` with forged forwarded headers; its `url` field.
fn user_url(node: &TestNode) -> String {
    let r = client()
        .get(node.url("/api/v3/users/alice"))
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "https")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().unwrap();
    body["url"].as_str().unwrap().to_string()
}

/// Anonymous requests from "client" `ip` (as `X-Forwarded-For` says); the status.
fn anonymous_as(node: &TestNode, ip: &str) -> u16 {
    client()
        .get(node.url("/api/v3/users/alice"))
        .header("X-Forwarded-For", ip)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn forwarded_headers_count_only_from_trusted_proxies() {
    // Nobody trusted (the default): the forged host never reaches a URL, and a new
    // X-Forwarded-For per request does not buy a new rate-limit bucket.
    let direct =
        TestNode::start_with(NodeOptions::default().env("GUTS_RATE_LIMIT_ANONYMOUS_PER_HOUR", "2"));
    create_user(&direct, "alice");
    let url = user_url(&direct);
    assert!(!url.contains("evil.example"), "{url}");
    assert!(
        url.starts_with(&format!("http://{}/api/v3/", direct.api)),
        "{url}"
    );
    assert_eq!(anonymous_as(&direct, "1.1.1.1"), 200);
    assert_eq!(anonymous_as(&direct, "2.2.2.2"), 429);

    // The test client, on loopback, is the trusted proxy: its headers count.
    let proxied = TestNode::start_with(
        NodeOptions::default()
            .env("GUTS_TRUSTED_PROXIES", "127.0.0.1")
            .env("GUTS_RATE_LIMIT_ANONYMOUS_PER_HOUR", "2"),
    );
    create_user(&proxied, "alice");
    assert_eq!(
        user_url(&proxied),
        "https://evil.example/api/v3/users/alice"
    );
    assert_eq!(anonymous_as(&proxied, "1.1.1.1"), 200);
    assert_eq!(anonymous_as(&proxied, "1.1.1.1"), 200);
    assert_eq!(anonymous_as(&proxied, "1.1.1.1"), 429);
    assert_eq!(anonymous_as(&proxied, "2.2.2.2"), 200);
}
