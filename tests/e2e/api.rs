//! End-to-end tests of the REST edge against the real binary: the OpenAPI document, the
//! rate limit (tiny limits from the environment, GitHub's headers and 429), and
//! organizations created through the admin API.

use serde_json::{Value, json};

use crate::harness::*;

fn send(
    node: &TestNode,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::blocking::Response {
    let mut r = client().request(method, node.url(path));
    if let Some(t) = token {
        r = r.header("Authorization", format!("token {t}"));
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().unwrap()
}

#[test]
fn rate_limit_answers_429_with_githubs_headers() {
    let node = TestNode::start_with(
        NodeOptions::default()
            .env("GUTS_RATE_LIMIT_ANONYMOUS_PER_HOUR", "3")
            .env("GUTS_RATE_LIMIT_AUTHENTICATED_PER_HOUR", "4"),
    );
    for remaining in ["2", "1", "0"] {
        let r = send(
            &node,
            reqwest::Method::GET,
            "/api/v3/users/nobody",
            None,
            None,
        );
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
        assert_eq!(r.headers()["x-ratelimit-remaining"], remaining);
        assert_eq!(r.headers()["x-ratelimit-resource"], "core");
    }
    let r = send(
        &node,
        reqwest::Method::GET,
        "/api/v3/users/nobody",
        None,
        None,
    );
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(r.headers()["x-ratelimit-used"], "3");
    assert_eq!(r.headers()["retry-after"], "1200");
    let reset: u64 = r.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > 1_700_000_000, "{reset}");
    let body: Value = r.json().unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("API rate limit exceeded for 127.0.0.1"),
        "{body}"
    );
    assert_eq!(body["documentation_url"], "https://docs.github.com/rest");

    // The overview is free; probes, the admin API and tokens are not held back.
    let r = send(
        &node,
        reqwest::Method::GET,
        "/api/v3/rate_limit",
        None,
        None,
    );
    assert_eq!(r.status(), 200);
    let overview: Value = r.json().unwrap();
    assert_eq!(overview["resources"]["core"]["remaining"], 0);
    assert_eq!(overview["rate"]["limit"], 3);
    assert_eq!(
        client()
            .get(node.url("/health/live"))
            .send()
            .unwrap()
            .status(),
        200
    );
    let token = create_user(&node, "alice");
    let r = send(
        &node,
        reqwest::Method::GET,
        "/api/v3/user",
        Some(&token),
        None,
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-limit"], "4");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "3");
}

#[test]
fn the_openapi_document_is_served() {
    let node = TestNode::start();
    let r = send(
        &node,
        reqwest::Method::GET,
        "/api/v3/openapi.json",
        None,
        None,
    );
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v3/user/repos",
        "/api/v3/orgs/{org}/repos",
        "/api/v3/rate_limit",
        "/admin/orgs",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
}

#[test]
fn organizations_members_and_their_repositories() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    let carol = create_user(&node, "carol");

    create_org(&node, "acme", "alice");
    // One namespace: a user's login cannot be an org's, nor the other way round.
    let clash = client()
        .post(node.url("/admin/orgs"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "login": "bob", "admin": "alice" }))
        .send()
        .unwrap();
    assert_eq!(clash.status(), 422);

    let org: Value = send(&node, reqwest::Method::GET, "/api/v3/orgs/acme", None, None)
        .json()
        .unwrap();
    assert_eq!(org["type"], "Organization");
    assert_eq!(org["url"], node.url("/api/v3/orgs/acme"));
    assert_eq!(org["repos_url"], node.url("/api/v3/orgs/acme/repos"));
    let as_user: Value = send(
        &node,
        reqwest::Method::GET,
        "/api/v3/users/acme",
        None,
        None,
    )
    .json()
    .unwrap();
    assert_eq!(as_user["type"], "Organization");

    // Only org admins manage memberships.
    let path = "/api/v3/orgs/acme/memberships/bob";
    let member = Some(json!({ "role": "member" }));
    let r = send(
        &node,
        reqwest::Method::PUT,
        path,
        Some(&carol),
        member.clone(),
    );
    assert_eq!(r.status(), 403);
    let r = send(&node, reqwest::Method::PUT, path, Some(&alice), member);
    assert_eq!(r.status(), 200);
    let m: Value = r.json().unwrap();
    assert_eq!(
        (m["role"].as_str(), m["state"].as_str()),
        (Some("member"), Some("active"))
    );
    let r = send(&node, reqwest::Method::GET, path, Some(&bob), None);
    assert_eq!(r.status(), 200);
    let members: Value = send(
        &node,
        reqwest::Method::GET,
        "/api/v3/orgs/acme/members",
        None,
        None,
    )
    .json()
    .unwrap();
    let logins: Vec<_> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["login"].clone())
        .collect();
    assert_eq!(logins, [json!("alice"), json!("bob")]);

    // Members create repositories owned by the org; org admins get admin on them.
    let repo = Some(json!({ "name": "widgets" }));
    let r = send(
        &node,
        reqwest::Method::POST,
        "/api/v3/orgs/acme/repos",
        Some(&carol),
        repo.clone(),
    );
    assert_eq!(r.status(), 403);
    let r = send(
        &node,
        reqwest::Method::POST,
        "/api/v3/orgs/acme/repos",
        Some(&bob),
        repo,
    );
    assert_eq!(r.status(), 201);
    let repo: Value = r.json().unwrap();
    assert_eq!(repo["full_name"], "acme/widgets");
    assert_eq!(repo["owner"]["type"], "Organization");
    let got: Value = send(
        &node,
        reqwest::Method::GET,
        "/api/v3/repos/acme/widgets",
        Some(&alice),
        None,
    )
    .json()
    .unwrap();
    assert_eq!(got["permissions"]["admin"], true, "{got}");
    let listed: Value = send(
        &node,
        reqwest::Method::GET,
        "/api/v3/orgs/acme/repos",
        None,
        None,
    )
    .json()
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let r = send(&node, reqwest::Method::DELETE, path, Some(&alice), None);
    assert_eq!(r.status(), 204);
    let info: Value = client()
        .get(node.url("/admin/info"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        (
            info["organizations"].as_u64(),
            info["repositories"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert!(info["data_size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(node.metric("guts_organizations_total"), Some(1.0));
}

/// A poller's conditional request against a real node: the 304 repeats the ETag, has
/// no body and leaves `X-RateLimit-Remaining` where the 200 left it; a change to the
/// repository changes the ETag, and the old one then gets the new answer.
#[test]
fn a_304_repeats_the_etag_and_leaves_the_rate_limit_alone() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    crate::gitutil::create_repo(&node, &alice, "polled", false);
    let url = node.url("/api/v3/repos/alice/polled");
    let get = |etag: Option<&str>| {
        let mut req = client()
            .get(&url)
            .header("Authorization", format!("token {alice}"));
        if let Some(etag) = etag {
            req = req.header("If-None-Match", etag);
        }
        let r = req.send().unwrap();
        let header = |name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (etag, remaining) = (header("etag"), header("x-ratelimit-remaining"));
        (r.status().as_u16(), etag, remaining, r.bytes().unwrap())
    };
    let (status, etag, remaining, body) = get(None);
    assert_eq!(status, 200);
    assert!(!body.is_empty());
    let etag = etag.expect("an ETag on a JSON GET");
    for _ in 0..3 {
        let (status, again, left, body) = get(Some(&etag));
        assert_eq!(status, 304);
        assert_eq!(again.as_deref(), Some(etag.as_str()));
        assert_eq!(left, remaining, "a 304 costs nothing");
        assert!(body.is_empty());
    }
    let r = client()
        .patch(&url)
        .header("Authorization", format!("token {alice}"))
        .json(&json!({"description": "changed"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, changed, _, body) = get(Some(&etag));
    assert_eq!(status, 200);
    assert_ne!(changed.as_deref(), Some(etag.as_str()));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["description"], "changed");
}
