//! Issues, comments and labels over HTTP against the real node: GitHub's statuses and
//! error shapes for who may do what, and pagination of the lists.

use reqwest::blocking::Response;
use serde_json::{Value, json};

use crate::harness::{TestNode, client, create_user};

struct Api<'a> {
    node: &'a TestNode,
    token: Option<&'a str>,
}

impl Api<'_> {
    fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
        let mut request = client().request(method, self.node.url(&format!("/api/v3{path}")));
        if let Some(token) = self.token {
            request = request.header("Authorization", format!("token {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().unwrap()
    }

    fn get(&self, path: &str) -> Response {
        self.send(reqwest::Method::GET, path, None)
    }

    fn post(&self, path: &str, body: Value) -> Response {
        self.send(reqwest::Method::POST, path, Some(body))
    }
}

#[track_caller]
fn expect(response: Response, status: u16) -> Value {
    let code = response.status().as_u16();
    let text = response.text().unwrap();
    assert_eq!(code, status, "{text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[test]
fn issue_permissions_errors_and_pagination_follow_github() {
    let node = TestNode::start();
    let alice_token = create_user(&node, "alice");
    let stranger_token = create_user(&node, "stranger");
    let alice = Api {
        node: &node,
        token: Some(&alice_token),
    };
    let stranger = Api {
        node: &node,
        token: Some(&stranger_token),
    };
    let anonymous = Api {
        node: &node,
        token: None,
    };
    expect(alice.post("/user/repos", json!({"name": "open"})), 201);
    expect(
        alice.post("/user/repos", json!({"name": "secret", "private": true})),
        201,
    );

    // Unauthenticated writes are 401 with GitHub's error JSON.
    let e = expect(
        anonymous.post("/repos/alice/open/issues", json!({"title": "x"})),
        401,
    );
    assert_eq!(e["message"], "Requires authentication");
    // Private repositories are invisible to outsiders, for reads and writes.
    expect(stranger.get("/repos/alice/secret/issues"), 404);
    expect(anonymous.get("/repos/alice/secret/issues"), 404);
    expect(
        stranger.post("/repos/alice/secret/issues", json!({"title": "x"})),
        404,
    );
    let own = expect(
        alice.post("/repos/alice/secret/issues", json!({"title": "mine"})),
        201,
    );
    assert_eq!(own["number"], 1);

    // On a public repository anyone signed in opens issues and comments...
    let issue = expect(
        stranger.post(
            "/repos/alice/open/issues",
            json!({"title": "bug", "labels": ["x"]}),
        ),
        201,
    );
    assert_eq!(issue["number"], 1);
    assert_eq!(issue["user"]["login"], "stranger");
    // ...but labels from someone without push access are dropped, as on GitHub,
    assert_eq!(issue["labels"], json!([]));
    assert!(
        issue["url"]
            .as_str()
            .unwrap()
            .ends_with("/api/v3/repos/alice/open/issues/1")
    );
    expect(
        stranger.post("/repos/alice/open/issues/1/comments", json!({"body": "hi"})),
        201,
    );
    // and labelling, locking or editing someone else's thread is 403.
    let e = expect(
        stranger.post(
            "/repos/alice/open/issues/1/labels",
            json!({"labels": ["bug"]}),
        ),
        403,
    );
    assert_eq!(e["message"], "Must have push access to repository.");
    let e = expect(
        stranger.send(
            reqwest::Method::PUT,
            "/repos/alice/open/issues/1/lock",
            None,
        ),
        403,
    );
    assert!(e["documentation_url"].is_string());
    expect(
        alice.send(
            reqwest::Method::PUT,
            "/repos/alice/open/issues/1/lock",
            None,
        ),
        204,
    );
    // A locked thread takes comments from writers only.
    expect(
        stranger.post(
            "/repos/alice/open/issues/1/comments",
            json!({"body": "more"}),
        ),
        403,
    );
    expect(
        alice.post(
            "/repos/alice/open/issues/1/comments",
            json!({"body": "locked"}),
        ),
        201,
    );
    // The author may still close their own issue.
    let closed = expect(
        stranger.send(
            reqwest::Method::PATCH,
            "/repos/alice/open/issues/1",
            Some(json!({"state": "closed"})),
        ),
        200,
    );
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["closed_by"]["login"], "stranger");

    // Bad input: 422 with the field named, 400 for broken JSON, 404 for no such issue.
    let e = expect(
        alice.post("/repos/alice/open/issues", json!({"body": "no title"})),
        422,
    );
    assert_eq!(e["errors"][0]["field"], "title");
    assert_eq!(e["errors"][0]["code"], "missing_field");
    let broken = client()
        .post(node.url("/api/v3/repos/alice/open/issues"))
        .header("Authorization", format!("token {alice_token}"))
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(expect(broken, 400)["message"], "Problems parsing JSON");
    expect(alice.get("/repos/alice/open/issues?state=bogus"), 422);
    expect(alice.get("/repos/alice/open/issues/99"), 404);
    expect(alice.get("/repos/alice/open/issues/comments/12345"), 404);
    let e = expect(
        alice.post(
            "/repos/alice/open/labels",
            json!({"name": "x", "color": "nothex"}),
        ),
        422,
    );
    assert_eq!(e["errors"][0]["field"], "color");

    // Labels: create, duplicate (422 already_exists), rename, and the issue follows.
    expect(
        alice.post(
            "/repos/alice/open/labels",
            json!({"name": "Bug", "color": "#FF0000"}),
        ),
        201,
    );
    let e = expect(
        alice.post("/repos/alice/open/labels", json!({"name": "bug"})),
        422,
    );
    assert_eq!(e["errors"][0]["code"], "already_exists");
    let labels = expect(
        alice.post("/repos/alice/open/issues/1/labels", json!(["bug"])),
        200,
    );
    assert_eq!(labels[0]["name"], "Bug");
    assert_eq!(labels[0]["color"], "ff0000");
    expect(
        alice.send(
            reqwest::Method::PATCH,
            "/repos/alice/open/labels/bug",
            Some(json!({"new_name": "defect"})),
        ),
        200,
    );
    let issue = expect(alice.get("/repos/alice/open/issues/1"), 200);
    assert_eq!(issue["labels"][0]["name"], "defect");

    // Comments paginate with absolute Link headers and X-Total-Count.
    for i in 0..33 {
        expect(
            alice.post(
                "/repos/alice/open/issues/1/comments",
                json!({"body": format!("c{i}")}),
            ),
            201,
        );
    }
    let page = alice.get("/repos/alice/open/issues/1/comments?per_page=30");
    assert_eq!(page.headers()["x-total-count"], "35");
    let link = page.headers()["link"].to_str().unwrap().to_string();
    assert!(link.contains("page=2>; rel=\"next\""), "{link}");
    assert!(link.starts_with("<http://"), "{link}");
    assert_eq!(expect(page, 200).as_array().unwrap().len(), 30);
    let last = expect(
        alice.get("/repos/alice/open/issues/1/comments?per_page=30&page=2"),
        200,
    );
    assert_eq!(last.as_array().unwrap().len(), 5);
    assert_eq!(last[4]["body"], "c32");

    // The business metric moved.
    assert_eq!(node.metric("guts_issues_total{state=\"open\"}"), Some(1.0));
    assert_eq!(
        node.metric("guts_issues_total{state=\"closed\"}"),
        Some(1.0)
    );
}

/// `since` keeps the issues updated at or after a time, on a repository's list and on
/// `/user/issues`, whatever else filters or sorts them; a time that is not ISO 8601 is
/// GitHub's 422 naming `since`.
#[test]
fn issue_lists_keep_what_was_updated_since_a_time() {
    let node = TestNode::start();
    let token = create_user(&node, "alice");
    let alice = Api {
        node: &node,
        token: Some(&token),
    };
    expect(alice.post("/user/repos", json!({"name": "since"})), 201);
    for title in ["one", "two"] {
        expect(
            alice.post("/repos/alice/since/issues", json!({"title": title})),
            201,
        );
    }
    // Times have seconds on the wire: the next issue is made in a later second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let three = expect(
        alice.post("/repos/alice/since/issues", json!({"title": "three"})),
        201,
    );
    let since = three["created_at"].as_str().unwrap().to_owned();
    let numbers = |path: &str| -> Vec<u64> {
        expect(alice.get(path), 200)
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["number"].as_u64().unwrap())
            .collect()
    };
    let list = format!("/repos/alice/since/issues?since={since}");
    assert_eq!(numbers(&list), vec![3]);
    assert_eq!(numbers("/repos/alice/since/issues"), vec![3, 2, 1]);
    // A comment updates issue 1, which then counts as updated since.
    expect(
        alice.post(
            "/repos/alice/since/issues/1/comments",
            json!({"body": "up"}),
        ),
        201,
    );
    assert_eq!(numbers(&list), vec![3, 1]);
    assert_eq!(
        numbers(&format!("{list}&sort=updated&direction=asc")),
        vec![3, 1]
    );
    assert_eq!(numbers(&format!("{list}&state=closed")), Vec::<u64>::new());
    assert_eq!(
        numbers(&format!("/user/issues?filter=created&since={since}")),
        vec![3, 1]
    );
    assert_eq!(
        numbers("/repos/alice/since/issues?since=2999-01-01T00:00:00Z"),
        Vec::<u64>::new()
    );
    for bad in ["yesterday", "2024-13-01T00:00:00Z"] {
        for path in [
            format!("/repos/alice/since/issues?since={bad}"),
            format!("/user/issues?since={bad}"),
        ] {
            let e = expect(alice.get(&path), 422);
            assert_eq!(e["errors"][0]["field"], "since", "{path}");
        }
    }
}
