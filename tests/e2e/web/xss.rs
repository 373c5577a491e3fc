//! Hostile content in a real browser (scenarios `xss` and `big-blob` of
//! tests/web/flow.py): file names, file contents, a README, an issue's title and body
//! and a comment carrying `<script>`, `<img onerror>`, attribute breakouts and
//! `javascript:` links render inert with their text visible; raw HTML and SVG files
//! are served as sandboxed plain text; and a 5,000-line file renders every line, with
//! `#L4999` on its line.

use serde_json::{Value, json};

use super::http::WebClient;
use super::{ALICE_PW, create_web_user, require_browser, run_browser, user_args};
use crate::gitutil::{Git, Prng, auth_url, create_repo};
use crate::harness::{TestNode, api, client, create_user};

/// File names that break out of markup if pasted into it unescaped (git and Linux
/// accept every one; none has a `/`).
const NAMES: [&str; 4] = [
    "<img src=x onerror=alert('name')>.txt",
    "<svg onload=window.__xss='svg-name'>.md",
    "x\" onmouseover=\"window.__xss='attr'\" y.txt",
    "javascript:window.__xss='js-name'",
];

const EVIL_HTML: &str = "<!doctype html>\n<title>x</title>\n<script>window.__xss='html';document.title='pwned'</script>\n<img src=x onerror=\"alert('html')\">\n";
const EVIL_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"window.__xss='svg'\">\n<script>window.__xss='svg-script';alert('svg')</script>\n<circle r=\"5\"/>\n</svg>\n";

const README: &str = "# Hostile README\n\nVisible marker: readme-visible-marker\n\n\
<script>window.__xss='readme';document.title='pwned'</script>\n\n\
<img src=\"x\" onerror=\"window.__xss='readme-img';alert('readme')\">\n\n\
[click me](javascript:window.__xss='readme-link')\n\n\
<a href=\"javascript:alert('readme-a')\">raw link</a>\n\n\
`<script>window.__xss='readme-code'</script>`\n";

const TITLE: &str = "<script>window.__xss='title'</script><img src=x onerror=\"alert('title')\">";
const BODY: &str = "Visible marker: body-visible-marker\n\n\
<script>window.__xss='body';document.title='pwned'</script>\n\n\
<img src=x onerror=\"window.__xss='body-img'\">\n\n\
[click me](javascript:window.__xss='body-link')\n\n\
<a href=\"javascript:alert('body-a')\" onclick=\"window.__xss='body-onclick'\">raw link</a>\n\n\
`<img src=x onerror=alert(1)>`";
const COMMENT: &str = "Visible marker: comment-visible-marker\n\n\
<img src=x onerror=\"alert('comment')\">\n\n\
<iframe src=\"javascript:window.__xss='comment-frame'\"></iframe>\n\n\
[click me](JaVaScRiPt:window.__xss='comment-link')\n\n\
`<script>alert('comment')</script>`";

#[test]
fn hostile_names_contents_issues_and_comments_render_inert() {
    require_browser();
    let node = TestNode::start();
    let alice = create_web_user(&node, "alice", ALICE_PW);
    create_repo(&node, &alice, "xss", false);
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let tree = git.init(work.path(), "xss");
    let mut files: Vec<(&str, &[u8])> = NAMES
        .iter()
        .map(|n| (*n, b"harmless contents\n".as_slice()))
        .collect();
    files.extend([
        ("README.md", README.as_bytes()),
        ("evil.html", EVIL_HTML.as_bytes()),
        ("evil.svg", EVIL_SVG.as_bytes()),
    ]);
    let commit = git.commit(&tree, &files, "Hostile content");
    // Every name really is a file of the commit (nothing was mangled on the way).
    let listed = git.out(&tree, &["ls-tree", "--name-only", "-z", "HEAD"]);
    for name in NAMES {
        assert!(
            listed.split('\0').any(|n| n == name),
            "{name:?} not committed: {listed:?}"
        );
    }
    git.ok(
        &tree,
        &[
            "push",
            "--quiet",
            &auth_url(&node, "alice", &alice, "alice/xss"),
            "main",
        ],
    );

    let fixture = json!({
        "repo": "alice/xss",
        "commit": commit,
        "names": NAMES,
        "contents": {
            "evil.html": EVIL_HTML.lines().collect::<Vec<_>>(),
            "evil.svg": EVIL_SVG.lines().collect::<Vec<_>>(),
        },
        "readme_marker": "readme-visible-marker",
        "readme_code": "<script>window.__xss='readme-code'</script>",
        "title": TITLE,
        "body": BODY,
        "body_marker": "body-visible-marker",
        "body_code": "<img src=x onerror=alert(1)>",
        "comment": COMMENT,
        "comment_marker": "comment-visible-marker",
        "comment_code": "<script>alert('comment')</script>",
    });
    let mut args = user_args(&node.url(""));
    args.extend(["--fixture".to_string(), fixture.to_string()]);
    run_browser("xss", "xss", &args, &[&node], |what, ask| {
        panic!("unexpected request {what} {ask}")
    });

    // The payloads reached the node verbatim (the browser typed them, the forms
    // carried them): the test proved something about them.
    let (status, issues) = api(
        &node,
        reqwest::Method::GET,
        &alice,
        "/repos/alice/xss/issues",
        Value::Null,
    );
    assert_eq!(status, 200, "{issues}");
    let issue = issues
        .as_array()
        .and_then(|l| l.iter().find(|i| i["title"] == TITLE))
        .unwrap_or_else(|| panic!("no issue titled {TITLE:?}: {issues}"));
    let crlf = |v: &Value| v.as_str().unwrap_or_default().replace("\r\n", "\n");
    assert_eq!(crlf(&issue["body"]), BODY, "{issue}");
    let number = issue["number"].as_u64().unwrap();
    let (_, comments) = api(
        &node,
        reqwest::Method::GET,
        &alice,
        &format!("/repos/alice/xss/issues/{number}/comments"),
        Value::Null,
    );
    let comments = comments
        .as_array()
        .unwrap_or_else(|| panic!("{comments}"))
        .clone();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(crlf(&comments[0]["body"]), COMMENT);

    // Raw HTML and SVG: the bytes, as sandboxed, unsniffable plain text.
    let mut web = WebClient::new(&node);
    for (path, contents) in [("evil.html", EVIL_HTML), ("evil.svg", EVIL_SVG)] {
        let raw = web.get(&format!("/alice/xss/raw/main/{path}"));
        raw.expect(200);
        assert_eq!(
            raw.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{}",
            raw.describe()
        );
        let csp = raw.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.split(';')
                .any(|d| d.split_whitespace().next() == Some("sandbox")),
            "raw {path} without a `sandbox` policy: {}",
            raw.describe()
        );
        assert_eq!(
            raw.header("x-content-type-options"),
            Some("nosniff"),
            "{}",
            raw.describe()
        );
        assert_eq!(raw.body, contents);
    }
}

#[test]
fn a_5000_line_file_renders_every_line_and_its_anchor_targets_line_4999() {
    require_browser();
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "big", false);
    let mut rng = Prng::new(4999);
    let lines: Vec<String> = (1..=5000)
        .map(|n| format!("{n:04} {:08x}", rng.next_u64() >> 32))
        .collect();
    let text = lines.join("\n") + "\n";
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let tree = git.init(work.path(), "big");
    git.commit(&tree, &[("big.txt", text.as_bytes())], "A long file");
    git.ok(
        &tree,
        &[
            "push",
            "--quiet",
            &auth_url(&node, "alice", &alice, "alice/big"),
            "main",
        ],
    );
    let fixture = json!({
        "repo": "alice/big",
        "path": "big.txt",
        "lines": 5000,
        "anchor_line": 4999,
        "anchor_text": lines[4998],
    });
    let args = vec![
        "--url".to_string(),
        node.url(""),
        "--fixture".to_string(),
        fixture.to_string(),
    ];
    run_browser("big-blob", "big-blob", &args, &[&node], |what, ask| {
        panic!("unexpected request {what} {ask}")
    });
    // The HTML itself, without a browser: one row per line, ids L1..L5000.
    let page = client()
        .get(node.url("/alice/big/blob/main/big.txt"))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    for id in ["L1", "L4999", "L5000"] {
        assert!(
            html.contains(&format!("id=\"{id}\"")) || html.contains(&format!("id={id}")),
            "no row {id}"
        );
    }
    assert!(!html.contains("id=\"L5001\""), "a row past the end");
}
