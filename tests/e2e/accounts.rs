//! End-to-end tests of accounts, tokens and repositories as signed operations: the REST
//! API in GitHub's shapes, permissions decided by the fold, restarts, and SIGKILL in the
//! middle of a burst of writes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

fn create_repo(node: &TestNode, token: &str, body: Value) -> reqwest::blocking::Response {
    client()
        .post(node.url("/api/v3/user/repos"))
        .header("Authorization", format!("token {token}"))
        .json(&body)
        .send()
        .unwrap()
}

fn get(node: &TestNode, path: &str, token: Option<&str>) -> reqwest::blocking::Response {
    let mut r = client().get(node.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

#[test]
fn users_tokens_and_repositories_in_github_shapes() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");

    // GET /user with each accepted credential form; bad or missing credentials are 401.
    for auth in [format!("token {alice}"), format!("Bearer {alice}")] {
        let r = client()
            .get(node.url("/api/v3/user"))
            .header("Authorization", auth)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let me: Value = r.json().unwrap();
        assert_eq!(me["login"], "alice");
        assert_eq!(me["type"], "User");
        assert!(me["id"].as_u64().unwrap() > 0);
        assert_eq!(me["url"], node.url("/api/v3/users/alice"));
    }
    let r = client()
        .get(node.url("/api/v3/user"))
        .basic_auth("alice", Some(&alice))
        .send()
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "token as the Basic password, as git sends it"
    );
    assert_eq!(get(&node, "/api/v3/user", None).status(), 401);
    let r = get(
        &node,
        "/api/v3/user",
        Some("guts_0000000000000000000000000000000000000000"),
    );
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().unwrap()["message"], "Bad credentials");
    assert_eq!(
        get(&node, "/api/v3/users/bob", None)
            .json::<Value>()
            .unwrap()["login"],
        "bob"
    );
    assert_eq!(get(&node, "/api/v3/users/nobody", None).status(), 404);

    // Create: 201 with GitHub's repository object.
    let r = create_repo(
        &node,
        &alice,
        json!({"name": "hello", "description": "first"}),
    );
    assert_eq!(r.status(), 201);
    let repo: Value = r.json().unwrap();
    assert_eq!(repo["full_name"], "alice/hello");
    assert_eq!(repo["owner"]["login"], "alice");
    assert_eq!(repo["private"], false);
    assert_eq!(repo["default_branch"], "main");
    assert_eq!(repo["description"], "first");
    assert_eq!(repo["url"], node.url("/api/v3/repos/alice/hello"));
    assert_eq!(repo["clone_url"], node.url("/alice/hello.git"));
    assert_eq!(repo["permissions"]["admin"], true);

    // Validation: missing, invalid and taken names are 422 with field errors.
    let r = create_repo(&node, &alice, json!({}));
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().unwrap()["errors"][0]["code"],
        "missing_field"
    );
    let r = create_repo(&node, &alice, json!({"name": "bad name!"}));
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().unwrap()["errors"][0]["field"], "name");
    let r = create_repo(&node, &alice, json!({"name": "HELLO"}));
    assert_eq!(r.status(), 422);
    let body: Value = r.json().unwrap();
    assert_eq!(body["message"], "Repository creation failed.");
    assert_eq!(
        body["errors"][0]["message"],
        "name already exists on this account"
    );
    let r = client()
        .post(node.url("/api/v3/user/repos"))
        .json(&json!({"name": "x"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = create_repo(&node, &alice, json!({"name": 5}));
    assert_eq!(r.status(), 422, "wrong JSON type");
    let r = client()
        .post(node.url("/api/v3/user/repos"))
        .bearer_auth(&alice)
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);

    // Visibility: public repositories are readable anonymously, private ones are 404
    // to everyone without a role.
    assert_eq!(get(&node, "/api/v3/repos/alice/hello", None).status(), 200);
    let r = create_repo(&node, &alice, json!({"name": "secret", "private": true}));
    assert_eq!(r.status(), 201);
    assert_eq!(get(&node, "/api/v3/repos/alice/secret", None).status(), 404);
    assert_eq!(
        get(&node, "/api/v3/repos/alice/secret", Some(&bob)).status(),
        404
    );
    let mine = get(&node, "/api/v3/repos/alice/secret", Some(&alice));
    assert_eq!(mine.status(), 200);
    assert_eq!(mine.json::<Value>().unwrap()["visibility"], "private");
    let listed: Value = get(&node, "/api/v3/users/alice/repos", None)
        .json()
        .unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "anonymous sees only the public one"
    );

    // Bob may not delete Alice's repository: the fold rejects his signed operation,
    // the rejection is counted, and the repository stays.
    let series = r#"guts_operations_rejected_total{reason="not_permitted"}"#;
    let before = node.metric(series).unwrap_or(0.0);
    let r = client()
        .delete(node.url("/api/v3/repos/alice/hello"))
        .bearer_auth(&bob)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().unwrap()["message"],
        "Must have admin rights to Repository."
    );
    assert_eq!(node.metric(series), Some(before + 1.0));
    assert_eq!(get(&node, "/api/v3/repos/alice/hello", None).status(), 200);
    let r = client()
        .delete(node.url("/api/v3/repos/alice/secret"))
        .bearer_auth(&bob)
        .send()
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "private repositories do not reveal themselves"
    );

    // Alice deletes it: 204, then gone, and the name can be used again.
    let r = client()
        .delete(node.url("/api/v3/repos/alice/hello"))
        .bearer_auth(&alice)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        get(&node, "/api/v3/repos/alice/hello", Some(&alice)).status(),
        404
    );
    assert_eq!(
        create_repo(&node, &alice, json!({"name": "hello"})).status(),
        201
    );
    assert_eq!(node.metric("guts_repositories_total"), Some(2.0));
    assert_eq!(node.metric("guts_users_total"), Some(2.0));
    assert_eq!(
        node.metric(r#"guts_storage_objects_total{type="repository"}"#),
        Some(2.0)
    );
    let creates = r#"guts_storage_operation_duration_seconds_count{operation="create_repo"}"#;
    assert!(node.metric(creates).unwrap() >= 3.0);
    assert!(node.metric("guts_storage_size_bytes").unwrap() > 0.0);
}

#[test]
fn lists_paginate_with_link_headers() {
    let node = TestNode::start();
    let token = create_user(&node, "carol");
    for i in 0..7 {
        assert_eq!(
            create_repo(&node, &token, json!({"name": format!("r{i}")})).status(),
            201
        );
    }
    let mut seen = Vec::new();
    let mut next = Some(node.url("/api/v3/user/repos?per_page=3"));
    let mut pages = 0;
    while let Some(url) = next.take() {
        let r = client().get(&url).bearer_auth(&token).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-total-count"], "7");
        let link = r
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_string());
        let page: Vec<Value> = r.json().unwrap();
        seen.extend(page.iter().map(|v| v["name"].as_str().unwrap().to_string()));
        pages += 1;
        if let Some(link) = link {
            for part in link.split(", ") {
                let (target, rel) = part.split_once("; ").unwrap();
                let target = target.trim_matches(|c| c == '<' || c == '>');
                assert!(
                    target.starts_with("http://127.0.0.1:"),
                    "absolute: {target}"
                );
                if rel == "rel=\"next\"" {
                    next = Some(target.to_string());
                }
                if rel == "rel=\"last\"" {
                    assert!(target.ends_with("page=3"), "{target}");
                }
            }
        }
    }
    assert_eq!(pages, 3);
    seen.sort();
    assert_eq!(seen, (0..7).map(|i| format!("r{i}")).collect::<Vec<_>>());
    // per_page is capped at 100; nonsense falls back to the default.
    let r = client()
        .get(node.url("/api/v3/user/repos?per_page=1000&page=x"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.json::<Vec<Value>>().unwrap().len(), 7);
}

#[test]
fn registration_admin_tokens_and_suspension() {
    let node = TestNode::start();
    let r = client()
        .post(node.url("/api/v3/users"))
        .json(&json!({"login": "dave"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "registration is closed by default");

    let open = TestNode::start_with(NodeOptions::default().env("GUTS_OPEN_REGISTRATION", "true"));
    let r = client()
        .post(open.url("/api/v3/users"))
        .json(&json!({"login": "dave"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get(&open, "/api/v3/user", Some(&token)).status(), 200);
    let r = client()
        .post(open.url("/api/v3/users"))
        .json(&json!({"login": "Dave"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 422, "logins are case-insensitive");

    // A second token, revocation, suspension.
    let r = client()
        .post(node.url("/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"login": "erin"}))
        .send()
        .unwrap();
    let first = r.json::<Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = client()
        .post(node.url("/admin/users/erin/tokens"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "ci", "scopes": ["repo"]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let second: Value = r.json().unwrap();
    let second_token = second["token"].as_str().unwrap().to_string();
    let r = client()
        .post(node.url("/admin/users/erin/tokens"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"scopes": ["everything"]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = client()
        .delete(node.url(&format!("/admin/users/erin/tokens/{}", second["id"])))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        get(&node, "/api/v3/user", Some(&second_token)).status(),
        401
    );
    assert_eq!(get(&node, "/api/v3/user", Some(&first)).status(), 200);
    let r = client()
        .put(node.url("/admin/users/erin/suspended"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"suspended": true}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&node, "/api/v3/user", Some(&first)).status(), 401);
    // The admin API needs the admin token, not a user's.
    let r = client()
        .get(node.url("/admin/users"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn restart_keeps_users_tokens_and_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An account created offline with the CLI ...
    let (status, stdout, stderr) = run_to_exit(
        &["user", "create", "frank", "--admin"],
        &[("GUTS_DATA_DIR", data.to_str().unwrap())],
        dir.path(),
    );
    assert!(status.success(), "{stderr}");
    let token = stdout.trim().to_string();
    assert!(token.starts_with("guts_"), "{stdout}");

    let mut node = TestNode::start_with(NodeOptions::default().data_dir(&data));
    // ... works against the running node, and the CLI refuses while it runs.
    assert_eq!(
        get(&node, "/api/v3/user", Some(&token))
            .json::<Value>()
            .unwrap()["site_admin"],
        true
    );
    let (status, _, stderr) = run_to_exit(
        &["user", "create", "grace"],
        &[("GUTS_DATA_DIR", data.to_str().unwrap())],
        dir.path(),
    );
    assert!(!status.success(), "the store is locked while the node runs");
    assert!(!stderr.is_empty());
    let grace = create_user(&node, "grace");
    for name in ["one", "two"] {
        assert_eq!(
            create_repo(&node, &token, json!({"name": name, "private": true})).status(),
            201
        );
    }
    let before: Value = get(&node, "/api/v3/repos/frank/one", Some(&token))
        .json()
        .unwrap();
    assert!(node.stop().success());

    let node = TestNode::start_with(NodeOptions::default().data_dir(&data));
    assert_eq!(get(&node, "/api/v3/user", Some(&token)).status(), 200);
    assert_eq!(get(&node, "/api/v3/user", Some(&grace)).status(), 200);
    let after: Value = get(&node, "/api/v3/repos/frank/one", Some(&token))
        .json()
        .unwrap();
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["node_id"], before["node_id"]);
    assert_eq!(after["created_at"], before["created_at"]);
    assert_eq!(
        get(&node, "/api/v3/repos/frank/two", Some(&token)).status(),
        200
    );
    assert_eq!(node.metric("guts_repositories_total"), Some(2.0));
    assert_eq!(node.metric("guts_users_total"), Some(2.0));
}

#[test]
fn sigkill_during_a_burst_of_writes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut node = TestNode::start_with(NodeOptions::default().data_dir(&data));
    let token = create_user(&node, "heidi");
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let api = node.api;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let acknowledged = acknowledged.clone();
            let token = token.clone();
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                for i in 0.. {
                    let name = format!("w{w}-{i}");
                    let r = http
                        .post(format!("http://{api}/api/v3/user/repos"))
                        .bearer_auth(&token)
                        .json(&json!({ "name": name }))
                        .send();
                    match r {
                        Ok(r) if r.status() == 201 => acknowledged.lock().unwrap().push(name),
                        Ok(r) => panic!("unexpected {}", r.status()),
                        Err(_) => return, // the node died mid-request: not acknowledged
                    }
                }
            })
        })
        .collect();
    // Let the burst run, then kill the node without warning.
    eventually(Duration::from_secs(20), "some writes acknowledged", || {
        (acknowledged.lock().unwrap().len() >= 40).then_some(())
    });
    node.signal(Signal::SIGKILL);
    assert!(node.wait_exit(Duration::from_secs(5)).is_some());
    for w in writers {
        w.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 40);

    let node = TestNode::start_with(NodeOptions::default().data_dir(&data));
    for name in &acknowledged {
        let r = get(&node, &format!("/api/v3/repos/heidi/{name}"), Some(&token));
        assert_eq!(r.status(), 200, "acknowledged repository {name} lost");
    }
    // No partial state: every repository the node knows has its git directory, and no
    // directory exists without its repository (in-flight creations were rolled back).
    let mut listed = Vec::new();
    let mut page = 1;
    loop {
        let r = get(
            &node,
            &format!("/api/v3/user/repos?per_page=100&page={page}"),
            Some(&token),
        );
        let batch: Vec<Value> = r.json().unwrap();
        if batch.is_empty() {
            break;
        }
        listed.extend(batch);
        page += 1;
    }
    assert!(listed.len() >= acknowledged.len());
    assert!(
        listed.len() <= acknowledged.len() + 8,
        "at most one unacknowledged write per writer"
    );
    let mut dirs: Vec<String> = std::fs::read_dir(data.join("repos"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".git"))
        .collect();
    dirs.sort();
    let mut expected: Vec<String> = listed
        .iter()
        .map(|r| {
            format!(
                "{}.git",
                r["node_id"].as_str().unwrap().trim_start_matches("R_")
            )
        })
        .collect();
    expected.sort();
    assert_eq!(dirs, expected);
    for dir in &dirs {
        assert!(data.join("repos").join(dir).join("HEAD").is_file());
    }
}
