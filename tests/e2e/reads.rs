//! The reads tools expect, from a real node with history pushed by the real `git`:
//! tags (annotated ones peeled), the README (GitHub's search order), languages,
//! contributors (matched to accounts by no-reply address), organization lists and
//! membership checks (GitHub's 302 for a non-member asking), the caller's issues,
//! assignees, and repository-wide review comments.

use std::path::Path;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::gitutil::{Git, add_collaborator, auth_url, create_repo};
use crate::harness::{TestNode, api, client, create_org, create_user};

/// `GET /api/v3{path}` as `token` (anonymous when empty), following no redirect.
fn get(node: &TestNode, token: &str, path: &str) -> (u16, Value, Option<String>) {
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = http.get(node.url(&format!("/api/v3{path}")));
    if !token.is_empty() {
        req = req.header("Authorization", format!("token {token}"));
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        location,
    )
}

/// Commits everything in `dir` as `name <email>`.
fn commit_as(git: &Git, dir: &Path, files: &[(&str, &[u8])], name: &str, email: &str) {
    for (path, contents) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    git.ok(dir, &["add", "-A"]);
    let (user, mail) = (format!("user.name={name}"), format!("user.email={email}"));
    git.ok(
        dir,
        &["-c", &user, "-c", &mail, "commit", "--quiet", "-m", name],
    );
}

fn logins(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].as_str().unwrap())
        .collect()
}

#[test]
fn tags_readme_languages_and_contributors() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    create_user(&node, "bob");
    create_repo(&node, &alice, "proj", false);
    create_repo(&node, &alice, "empty", false);
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();
    let work = git.init(tmp.path(), "proj");
    let rust = b"pub fn answer() -> u32 {\n    42\n}\n";
    commit_as(
        &git,
        &work,
        &[
            ("README.md", b"# proj\n"),
            ("docs/readme.txt", b"the docs\n"),
            ("src/lib.rs", rust),
        ],
        "Alice",
        "alice@users.noreply.guts",
    );
    git.ok(&work, &["tag", "v1"]);
    let first = git.rev(&work, "HEAD");
    commit_as(
        &git,
        &work,
        &[
            ("web/app.js", b"console.log(1);\n"),
            ("Makefile", b"all:\n"),
        ],
        "Dev",
        "dev@example.com",
    );
    commit_as(
        &git,
        &work,
        &[("tool.py", b"print('hi')\n")],
        "Bob",
        "12345+bob@users.noreply.github.com",
    );
    commit_as(
        &git,
        &work,
        &[("README.md", b"# proj\n\nNow longer.\n")],
        "Alice again",
        "ALICE@users.noreply.guts",
    );
    git.ok(&work, &["tag", "-a", "-m", "Second", "v2"]);
    let head = git.rev(&work, "HEAD");
    let url = auth_url(&node, "alice", &alice, "alice/proj");
    git.ok(&work, &["push", "--quiet", &url, "main", "v1", "v2"]);

    // Tags, newest name first; the annotated one peeled to its commit; the archive
    // URLs are served (302 to the download).
    let (status, tags, _) = get(&node, "", "/repos/alice/proj/tags");
    assert_eq!(status, 200, "{tags}");
    let names: Vec<_> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["v2", "v1"]);
    assert_eq!(tags[0]["commit"]["sha"], head.as_str());
    assert_eq!(tags[1]["commit"]["sha"], first.as_str());
    let tarball = tags[0]["tarball_url"].as_str().unwrap();
    let path = tarball.split("/api/v3").nth(1).unwrap();
    let (status, _, location) = get(&node, "", path);
    assert_eq!(status, 302);
    assert!(location.unwrap().ends_with(&head));
    let (status, commit, _) = get(
        &node,
        "",
        tags[0]["commit"]["url"]
            .as_str()
            .unwrap()
            .split("/api/v3")
            .nth(1)
            .unwrap(),
    );
    assert_eq!((status, commit["sha"].as_str()), (200, Some(head.as_str())));

    // The README: the root's, then a directory's (any case, any extension), then none.
    let decode = |v: &Value| {
        let text: String = v["content"].as_str().unwrap().split('\n').collect();
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap()
    };
    let (status, readme, _) = get(&node, "", "/repos/alice/proj/readme");
    assert_eq!(status, 200, "{readme}");
    assert_eq!(
        (readme["path"].as_str(), readme["type"].as_str()),
        (Some("README.md"), Some("file"))
    );
    assert_eq!(decode(&readme), b"# proj\n\nNow longer.\n");
    let (_, old, _) = get(&node, "", "/repos/alice/proj/readme?ref=v1");
    assert_eq!(decode(&old), b"# proj\n");
    let (status, docs, _) = get(&node, "", "/repos/alice/proj/readme/docs");
    assert_eq!(
        (status, docs["path"].as_str()),
        (200, Some("docs/readme.txt"))
    );
    let (status, body, _) = get(&node, "", "/repos/alice/proj/readme/src");
    assert_eq!((status, body["message"].as_str()), (404, Some("Not Found")));
    assert_eq!(get(&node, "", "/repos/alice/empty/readme").0, 404);

    // Languages: bytes per language; Markdown and text are prose, not counted.
    let (status, languages, _) = get(&node, "", "/repos/alice/proj/languages");
    assert_eq!(status, 200);
    assert_eq!(
        languages,
        json!({"Rust": rust.len(), "JavaScript": 16, "Python": 12, "Makefile": 5})
    );
    // Most bytes first, in the body's own order (a JSON object parsed here is sorted).
    let text = client()
        .get(node.url("/api/v3/repos/alice/proj/languages"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let at = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
    assert!(
        at("Rust") < at("JavaScript") && at("JavaScript") < at("Python"),
        "{text}"
    );
    assert!(at("Python") < at("Makefile"), "{text}");
    assert_eq!(get(&node, "", "/repos/alice/empty/languages").1, json!({}));

    // Contributors: accounts by no-reply address (case-insensitive, GitHub's
    // `id+login` form too); others only with anon=1, as `Anonymous`.
    let (status, users, _) = get(&node, "", "/repos/alice/proj/contributors");
    assert_eq!(status, 200, "{users}");
    assert_eq!(logins(&users), ["alice", "bob"]);
    assert_eq!(users[0]["contributions"], 2);
    assert_eq!(users[1]["contributions"], 1);
    let (_, everyone, _) = get(&node, "", "/repos/alice/proj/contributors?anon=1");
    let everyone = everyone.as_array().unwrap();
    assert_eq!(everyone.len(), 3, "{everyone:?}");
    let dev = everyone.iter().find(|c| c["type"] == "Anonymous").unwrap();
    assert_eq!(
        (dev["email"].as_str(), dev["contributions"].as_u64()),
        (Some("dev@example.com"), Some(1))
    );
    assert_eq!(get(&node, "", "/repos/alice/empty/contributors").0, 204);
    let (status, page, _) = get(
        &node,
        "",
        "/repos/alice/proj/contributors?anon=1&per_page=1&page=3",
    );
    assert_eq!((status, page.as_array().unwrap().len()), (200, 1));
}

#[test]
fn orgs_assignees_my_issues_and_review_comments() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    let carol = create_user(&node, "carol");
    create_org(&node, "acme", "alice");
    create_repo(&node, &alice, "proj", false);

    // Organizations of a user; membership checks as GitHub answers them.
    assert_eq!(logins(&get(&node, &alice, "/user/orgs").1), ["acme"]);
    assert_eq!(
        logins(&get(&node, &bob, "/user/orgs").1),
        Vec::<&str>::new()
    );
    assert_eq!(get(&node, "", "/user/orgs").0, 401);
    assert_eq!(logins(&get(&node, "", "/users/alice/orgs").1), ["acme"]);
    assert_eq!(get(&node, "", "/users/nobody/orgs").0, 404);
    assert_eq!(get(&node, &alice, "/orgs/acme/members/alice").0, 204);
    assert_eq!(get(&node, &alice, "/orgs/acme/members/bob").0, 404);
    let (status, _, location) = get(&node, &bob, "/orgs/acme/members/alice");
    assert_eq!(status, 302, "a non-member is sent to the public check");
    let public = location.unwrap();
    assert!(
        public.ends_with("/api/v3/orgs/acme/public_members/alice"),
        "{public}"
    );
    let r = client().get(&public).send().unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(get(&node, "", "/orgs/acme/members/alice").0, 302);
    assert_eq!(get(&node, "", "/orgs/acme/public_members/bob").0, 404);
    assert_eq!(get(&node, "", "/orgs/nope/members/alice").0, 404);

    // Assignees: push access and the owner, not a pull collaborator.
    add_collaborator(&node, &alice, "alice/proj", "bob", "push");
    add_collaborator(&node, &alice, "alice/proj", "carol", "pull");
    let (status, assignees, _) = get(&node, "", "/repos/alice/proj/assignees");
    assert_eq!(status, 200);
    assert_eq!(logins(&assignees), ["alice", "bob"]);
    assert_eq!(get(&node, "", "/repos/alice/proj/assignees/bob").0, 204);
    assert_eq!(get(&node, "", "/repos/alice/proj/assignees/carol").0, 404);
    assert_eq!(get(&node, "", "/repos/alice/proj/assignees/nobody").0, 404);

    // The caller's issues across repositories.
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();
    let work = git.init(tmp.path(), "proj");
    git.commit(&work, &[("a.txt", b"one\ntwo\n")], "First");
    let url = auth_url(&node, "alice", &alice, "alice/proj");
    git.ok(&work, &["push", "--quiet", &url, "main"]);
    let (status, issue) = api(
        &node,
        reqwest::Method::POST,
        &alice,
        "/repos/alice/proj/issues",
        json!({"title": "For bob", "assignees": ["bob"]}),
    );
    assert_eq!(status, 201, "{issue}");
    api(
        &node,
        reqwest::Method::POST,
        &alice,
        "/repos/alice/proj/issues",
        json!({"title": "Nobody's"}),
    );
    let (status, mine, _) = get(&node, &bob, "/user/issues");
    assert_eq!(status, 200);
    let titles: Vec<_> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["For bob"]);
    assert!(
        mine[0]["repository_url"]
            .as_str()
            .unwrap()
            .ends_with("/repos/alice/proj")
    );
    assert_eq!(get(&node, &carol, "/user/issues").1, json!([]));
    let (_, created, _) = get(
        &node,
        &alice,
        "/user/issues?filter=created&sort=created&direction=asc",
    );
    let titles: Vec<_> = created
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["For bob", "Nobody's"]);
    assert_eq!(get(&node, &alice, "/user/issues?filter=nope").0, 422);

    // Review comments across the repository's pull requests.
    git.ok(&work, &["checkout", "--quiet", "-b", "feature"]);
    git.commit(&work, &[("a.txt", b"one\n2\n")], "Edit");
    git.ok(&work, &["push", "--quiet", &url, "feature"]);
    let (status, pull) = api(
        &node,
        reqwest::Method::POST,
        &alice,
        "/repos/alice/proj/pulls",
        json!({"title": "Edit", "head": "feature", "base": "main"}),
    );
    assert_eq!(status, 201, "{pull}");
    let n = pull["number"].as_u64().unwrap();
    for body in ["First remark", "Second remark"] {
        let (status, c) = api(
            &node,
            reqwest::Method::POST,
            &bob,
            &format!("/repos/alice/proj/pulls/{n}/comments"),
            json!({"body": body, "commit_id": pull["head"]["sha"], "path": "a.txt", "line": 2, "side": "RIGHT"}),
        );
        assert_eq!(status, 201, "{c}");
    }
    let (status, all, _) = get(&node, "", "/repos/alice/proj/pulls/comments");
    assert_eq!(status, 200);
    let bodies: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["First remark", "Second remark"]);
    let (_, newest, _) = get(
        &node,
        "",
        "/repos/alice/proj/pulls/comments?sort=created&direction=desc&per_page=1",
    );
    assert_eq!(newest[0]["body"], "Second remark");
    let id = all[0]["id"].as_u64().unwrap();
    let (status, one, _) = get(&node, "", &format!("/repos/alice/proj/pulls/comments/{id}"));
    assert_eq!((status, one["body"].as_str()), (200, Some("First remark")));
    // The `url` each comment carries is that route.
    assert!(
        one["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/pulls/comments/{id}"))
    );
    assert_eq!(get(&node, "", "/repos/alice/proj/pulls/comments/1").0, 404);

    // Editing and deleting one: its author or a writer, never a stranger; bad bodies
    // and unknown ids are GitHub's 4xx; the other comment keeps its id.
    let path = format!("/repos/alice/proj/pulls/comments/{id}");
    let patch = |token: &str, path: &str, body: Value| {
        api(&node, reqwest::Method::PATCH, token, path, body)
    };
    assert_eq!(patch(&carol, &path, json!({"body": "mine now"})).0, 403);
    assert_eq!(patch(&bob, &path, json!({"body": "  "})).0, 422);
    assert_eq!(
        patch(
            &bob,
            "/repos/alice/proj/pulls/comments/1",
            json!({"body": "x"})
        )
        .0,
        404
    );
    let (status, edited) = patch(&bob, &path, json!({"body": "First remark, edited"}));
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (edited["id"].as_u64(), edited["body"].as_str()),
        (Some(id), Some("First remark, edited"))
    );
    let delete = |token: &str| api(&node, reqwest::Method::DELETE, token, &path, Value::Null).0;
    assert_eq!(delete(&carol), 403);
    assert_eq!(delete(&alice), 204);
    assert_eq!(delete(&alice), 404);
    let (_, all, _) = get(&node, "", "/repos/alice/proj/pulls/comments");
    let left: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["Second remark"]);
    assert_eq!(
        get(
            &node,
            "",
            "/repos/alice/proj/pulls/comments?since=2999-01-01T00:00:00Z"
        )
        .1,
        json!([])
    );

    // What Guts does not model: empty for what exists, 404 for what does not.
    assert_eq!(get(&node, "", "/repos/alice/proj/forks").1, json!([]));
    assert_eq!(get(&node, "", "/repos/alice/nope/forks").0, 404);
    assert_eq!(
        get(&node, &carol, "/repos/alice/proj/stargazers").1,
        json!([])
    );
    assert_eq!(get(&node, "", "/users/acme/followers").1, json!([]));
    assert_eq!(get(&node, "", "/users/nobody/gists").0, 404);
    assert_eq!(get(&node, "", "/user/emails").0, 401);

    // The API root and meta.
    let (status, root, _) = get(&node, "", "/");
    assert_eq!(status, 200);
    assert!(
        root["repository_url"]
            .as_str()
            .unwrap()
            .ends_with("/api/v3/repos/{owner}/{repo}")
    );
    assert_eq!(get(&node, "", "").0, 200);
    let (status, meta, _) = get(&node, "", "/meta");
    assert_eq!(
        (status, meta["verifiable_password_authentication"].as_bool()),
        (200, Some(false))
    );
}

/// Raw files at the `download_url` the contents API gives: the bytes as pushed, at a
/// branch with a slash or a sha, always as inert text (a pushed HTML page must not
/// run on this origin), private ones only for who may see them.
#[test]
fn raw_files_are_served_as_inert_text_where_download_url_points() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "site", false);
    create_repo(&node, &alice, "secret", true);
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();
    let work = git.init(tmp.path(), "site");
    let page: &[u8] = b"<html><script>alert(document.cookie)</script></html>\n";
    git.commit(
        &work,
        &[("web/index.html", page), ("a b.txt", b"spaced\n")],
        "Site",
    );
    git.ok(&work, &["checkout", "--quiet", "-b", "feature/x"]);
    git.commit(&work, &[("web/index.html", b"v2\n")], "V2");
    let url = auth_url(&node, "alice", &alice, "alice/site");
    git.ok(&work, &["push", "--quiet", &url, "main", "feature/x"]);
    git.ok(
        &work,
        &[
            "push",
            "--quiet",
            &auth_url(&node, "alice", &alice, "alice/secret"),
            "main",
        ],
    );

    let (status, file, _) = get(&node, "", "/repos/alice/site/contents/web/index.html");
    assert_eq!(status, 200, "{file}");
    let fetch = |url: &str, token: &str| {
        let mut req = client().get(url);
        if !token.is_empty() {
            req = req.header("Authorization", format!("token {token}"));
        }
        let r = req.send().unwrap();
        let headers = r.headers().clone();
        (r.status().as_u16(), headers, r.bytes().unwrap().to_vec())
    };
    let (status, headers, body) = fetch(file["download_url"].as_str().unwrap(), "");
    assert_eq!(status, 200);
    assert_eq!(body, page);
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );

    let raw = |path: &str| node.url(&format!("/alice/site/raw/{path}"));
    assert_eq!(fetch(&raw("feature/x/web/index.html"), "").2, b"v2\n");
    let sha = git.rev(&work, "main");
    assert_eq!(fetch(&raw(&format!("{sha}/web/index.html")), "").2, page);
    assert_eq!(fetch(&raw("main/a%20b.txt"), "").2, b"spaced\n");
    for missing in [
        "main/nope.txt",
        "main/web",
        "nobranch/web/index.html",
        "main",
    ] {
        assert_eq!(fetch(&raw(missing), "").0, 404, "{missing}");
    }
    let secret = node.url("/alice/secret/raw/main/web/index.html");
    assert_eq!(fetch(&secret, "").0, 404);
    assert_eq!(fetch(&secret, &alice).2, page);
}
