//! The web interface's defences over plain HTTP (no browser): forms without the CSRF
//! token or posted from another site are refused, failed sign-ins are limited (and the
//! right password is refused while they are), private repositories are 404 pages to
//! everyone without access, every page carries the security headers, unknown pages are
//! HTML 404 pages, and the session cookie is HttpOnly and SameSite=Lax.

use serde_json::Value;

use super::http::{Page, WebClient};
use super::{ALICE_PW, BOB_PW, create_web_user};
use crate::gitutil::{Git, auth_url, create_repo};
use crate::harness::{TestNode, api, client};

/// The API's view of `repo`: 200 or 404.
fn repo_status(node: &TestNode, token: &str, repo: &str) -> u16 {
    api(
        node,
        reqwest::Method::GET,
        token,
        &format!("/repos/{repo}"),
        Value::Null,
    )
    .0
}

#[test]
fn forms_without_the_csrf_token_or_from_another_site_are_refused() {
    let node = TestNode::start();
    let alice = create_web_user(&node, "alice", ALICE_PW);
    create_web_user(&node, "bob", BOB_PW);
    let mut web = WebClient::new(&node);
    web.sign_in("alice", ALICE_PW);
    let form = web.get("/new");
    form.expect(200);
    let token = form.csrf("new-repo-form");
    let origin = web.base.clone();

    // No token; a made-up one; bob's (valid for his session only).
    let refused = web.post("/new", &[("name", "no-token")], &[("Origin", &origin)]);
    refused.expect_error_page(403);
    let forged = "A".repeat(token.len().max(32));
    let refused = web.post(
        "/new",
        &[("name", "forged"), ("_csrf", &forged)],
        &[("Origin", &origin)],
    );
    refused.expect_error_page(403);
    let mut bob = WebClient::new(&node);
    bob.sign_in("bob", BOB_PW);
    let bobs = bob.get("/new").csrf("new-repo-form");
    assert_ne!(bobs, token, "two sessions share a CSRF token");
    let refused = web.post(
        "/new",
        &[("name", "bobs-token"), ("_csrf", &bobs)],
        &[("Origin", &origin)],
    );
    refused.expect_error_page(403);

    // A valid session and token, but another site's page posted it. (A fresh token
    // each time: one-time tokens are fine.)
    let token = web.get("/new").csrf("new-repo-form");
    let cross = web.post(
        "/new",
        &[("name", "cross-origin"), ("_csrf", &token)],
        &[("Origin", "http://evil.example")],
    );
    cross.expect_error_page(403);
    let token = web.get("/new").csrf("new-repo-form");
    let cross = web.post(
        "/new",
        &[("name", "cross-site"), ("_csrf", &token)],
        &[("Sec-Fetch-Site", "cross-site")],
    );
    cross.expect_error_page(403);
    for name in [
        "no-token",
        "forged",
        "bobs-token",
        "cross-origin",
        "cross-site",
    ] {
        assert_eq!(
            repo_status(&node, &alice, &format!("alice/{name}")),
            404,
            "a refused form created alice/{name}"
        );
    }

    // The same form, same site, with the token: it works (the refusals were the
    // token's and the origin's doing, not a broken request).
    let token = web.get("/new").csrf("new-repo-form");
    let made = web.submit("/new", &[("name", "made-here"), ("_csrf", &token)]);
    assert_eq!(made.status, 303, "{}", made.describe());
    assert_eq!(
        made.location().as_deref(),
        Some("/alice/made-here"),
        "{}",
        made.describe()
    );
    assert_eq!(repo_status(&node, &alice, "alice/made-here"), 200);

    // Signing out without the token does not sign out; signing in needs one too.
    let stay = web.post("/logout", &[], &[("Origin", &origin)]);
    stay.expect_error_page(403);
    assert_eq!(web.who().as_deref(), Some("alice"));
    let mut stranger = WebClient::new(&node);
    let login = stranger.post(
        "/login",
        &[("login", "alice"), ("password", ALICE_PW)],
        &[("Origin", &origin)],
    );
    login.expect_error_page(403);
    assert!(
        !stranger.cookies.contains_key("guts_session"),
        "{}",
        login.describe()
    );
    let evil = stranger.get("/login");
    let token = evil.csrf("login-form");
    let login = stranger.post(
        "/login",
        &[
            ("login", "alice"),
            ("password", ALICE_PW),
            ("_csrf", &token),
        ],
        &[("Origin", "http://evil.example")],
    );
    login.expect_error_page(403);
    assert!(
        !stranger.cookies.contains_key("guts_session"),
        "{}",
        login.describe()
    );
}

#[test]
fn failed_sign_ins_are_limited_and_the_right_password_is_refused_while_limited() {
    let node = TestNode::start();
    create_web_user(&node, "alice", ALICE_PW);
    // The password is right (a browser that knows it signs in).
    WebClient::new(&node).sign_in("alice", ALICE_PW);

    let mut attacker = WebClient::new(&node);
    let mut token = attacker.get("/login").csrf("login-form");
    let mut limited = None;
    for attempt in 1..=50 {
        let answer = attacker.submit(
            "/login",
            &[
                ("login", "alice"),
                ("password", &format!("wrong-password-{attempt}")),
                ("_csrf", &token),
            ],
        );
        if answer.status == 429 {
            assert!(attempt > 1, "the first failed attempt is limited already");
            answer.expect_error_page(429);
            limited = Some(attempt);
            break;
        }
        assert!(
            answer.status == 200 || answer.status == 401,
            "attempt {attempt}: {}",
            answer.describe()
        );
        assert!(
            answer.body.contains("flash-error")
                && answer.body.contains("Incorrect username or password."),
            "attempt {attempt} without the flash: {}",
            answer.describe()
        );
        assert!(
            !attacker.cookies.contains_key("guts_session"),
            "{}",
            answer.describe()
        );
        if let Some(fresh) = super::http::form_csrf(&answer.body, "login-form") {
            token = fresh;
        }
    }
    let limited = limited.unwrap_or_else(|| panic!("50 wrong passwords and still no 429"));
    println!("limited after {limited} failed attempts");

    // While limited, the right password does not sign in, with this client or a
    // fresh one (the limit is not a cookie the attacker can drop).
    let right = |client: &mut WebClient, token: &str| -> Page {
        client.submit(
            "/login",
            &[("login", "alice"), ("password", ALICE_PW), ("_csrf", token)],
        )
    };
    let page = attacker.get("/login");
    let token = super::http::form_csrf(&page.body, "login-form").unwrap_or(token);
    let answer = right(&mut attacker, &token);
    answer.expect_error_page(429);
    assert!(
        !attacker.cookies.contains_key("guts_session"),
        "{}",
        answer.describe()
    );
    assert_eq!(attacker.who(), None);
    let mut fresh = WebClient::new(&node);
    let page = fresh.get("/login");
    if let Some(token) = super::http::form_csrf(&page.body, "login-form") {
        let answer = right(&mut fresh, &token);
        answer.expect_error_page(429);
    } else {
        page.expect_error_page(429);
    }
    assert!(!fresh.cookies.contains_key("guts_session"));
    assert_eq!(fresh.who(), None);
}

#[test]
fn private_repositories_are_404_pages_for_visitors_and_non_collaborators() {
    let node = TestNode::start();
    let alice = create_web_user(&node, "alice", ALICE_PW);
    create_web_user(&node, "bob", BOB_PW);
    create_repo(&node, &alice, "secret", true);
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let tree = git.init(work.path(), "secret");
    git.commit(
        &tree,
        &[("README.md", b"# top-secret-marker\n".as_slice())],
        "Secret commit",
    );
    git.ok(
        &tree,
        &[
            "push",
            "--quiet",
            &auth_url(&node, "alice", &alice, "alice/secret"),
            "main",
        ],
    );
    let (status, issue) = api(
        &node,
        reqwest::Method::POST,
        &alice,
        "/repos/alice/secret/issues",
        serde_json::json!({"title": "secret-issue-marker"}),
    );
    assert_eq!(status, 201, "{issue}");
    let number = issue["number"].as_u64().unwrap();
    let pages = [
        "/alice/secret".to_string(),
        "/alice/secret/tree/main".to_string(),
        "/alice/secret/blob/main/README.md".to_string(),
        "/alice/secret/commits/main".to_string(),
        "/alice/secret/issues".to_string(),
        format!("/alice/secret/issues/{number}"),
        "/alice/secret/pulls".to_string(),
    ];

    // The owner sees it (the pages exist).
    let mut owner = WebClient::new(&node);
    owner.sign_in("alice", ALICE_PW);
    let page = owner.get("/alice/secret");
    page.expect(200);
    assert!(
        page.body.contains("top-secret-marker"),
        "{}",
        page.describe()
    );
    let page = owner.get(&format!("/alice/secret/issues/{number}"));
    page.expect(200);
    assert!(
        page.body.contains("secret-issue-marker"),
        "{}",
        page.describe()
    );

    let mut visitor = WebClient::new(&node);
    let mut bob = WebClient::new(&node);
    bob.sign_in("bob", BOB_PW);
    // The settings page may send a signed-out visitor to sign in first; bob, signed in,
    // gets the same 404 as everywhere else.
    let settings = ["/alice/secret/settings".to_string()];
    for (who, client, extra) in [
        ("a signed-out visitor", &mut visitor, &[][..]),
        ("bob", &mut bob, &settings[..]),
    ] {
        for path in pages.iter().chain(extra) {
            let page = client.get(path);
            page.expect_error_page(404);
            for marker in ["top-secret-marker", "secret-issue-marker"] {
                assert!(
                    !page.body.contains(marker),
                    "{who} sees {marker} on {path}: {}",
                    page.describe()
                );
            }
        }
        let profile = client.get("/alice");
        profile.expect(200);
        assert!(
            !profile.body.contains("/alice/secret\""),
            "{who} sees the private repository on alice's profile: {}",
            profile.describe()
        );
        // Raw files are git's edge's downloads (GitHub's error JSON), which honour the
        // session cookie for reads: still a 404 that shows nothing.
        let raw = client.get("/alice/secret/raw/main/README.md");
        raw.expect(404);
        assert!(
            !raw.body.contains("top-secret-marker"),
            "{}",
            raw.describe()
        );
    }
    // The owner's session opens the raw file the blob page links to.
    let raw = owner.get("/alice/secret/raw/main/README.md");
    raw.expect(200);
    assert!(raw.body.contains("top-secret-marker"), "{}", raw.describe());
}

/// The contract's policy: each directive with exactly these sources.
/// The policy of every page, exactly: nothing is allowed by default and no script runs
/// at all (the pages need none), our own stylesheet, images from anywhere over https.
const CSP: [(&str, &[&str]); 8] = [
    ("default-src", &["'none'"]),
    ("script-src", &["'none'"]),
    ("style-src", &["'self'"]),
    ("img-src", &["'self'", "data:", "https:"]),
    ("object-src", &["'none'"]),
    ("base-uri", &["'none'"]),
    ("frame-ancestors", &["'none'"]),
    ("form-action", &["'self'"]),
];

#[track_caller]
fn assert_security_headers(page: &Page) {
    let policy = page
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("no Content-Security-Policy: {}", page.describe()));
    for (directive, sources) in CSP {
        let found = policy
            .split(';')
            .map(|d| d.split_whitespace().collect::<Vec<_>>())
            .find(|d| d.first() == Some(&directive))
            .unwrap_or_else(|| panic!("no {directive} in {policy:?}: {}", page.what));
        let mut got: Vec<&str> = found[1..].to_vec();
        let mut want = sources.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{directive} of {policy:?}: {}", page.what);
    }
    assert_eq!(
        page.header("x-frame-options"),
        Some("DENY"),
        "{}",
        page.describe()
    );
    assert_eq!(
        page.header("x-content-type-options"),
        Some("nosniff"),
        "{}",
        page.describe()
    );
    assert_eq!(
        page.header("referrer-policy"),
        Some("same-origin"),
        "{}",
        page.describe()
    );
}

#[test]
fn pages_carry_security_headers_and_unknown_pages_are_html_404s() {
    let node = TestNode::start();
    let alice = create_web_user(&node, "alice", ALICE_PW);
    create_repo(&node, &alice, "open", false);
    let mut web = WebClient::new(&node);
    for path in ["/", "/login", "/alice", "/alice/open", "/alice/open/issues"] {
        let page = web.get(path);
        page.expect(200);
        assert!(
            page.header("content-type")
                .unwrap_or_default()
                .starts_with("text/html"),
            "{}",
            page.describe()
        );
        assert_security_headers(&page);
    }
    for path in [
        "/no-such-user",
        "/alice/no-such-repo",
        "/alice/open/no-such-page",
        "/a/b/c/d/e/f",
    ] {
        let page = web.get(path);
        page.expect_error_page(404);
        assert_security_headers(&page);
    }
    // The REST API's unknown paths stay JSON.
    let r = client()
        .get(node.url("/api/v3/no-such-endpoint"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        r.headers()
    );

    // The session cookie: HttpOnly, SameSite=Lax, Path=/.
    let form = web.get("/login");
    let token = form.csrf("login-form");
    let done = web.submit(
        "/login",
        &[
            ("login", "alice"),
            ("password", ALICE_PW),
            ("_csrf", &token),
        ],
    );
    assert_eq!(done.status, 303, "{}", done.describe());
    let cookie = done
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("guts_session="))
        .unwrap_or_else(|| panic!("no guts_session cookie: {}", done.describe()))
        .to_string();
    let attrs: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase().replace(' ', ""))
        .collect();
    for wanted in ["httponly", "samesite=lax", "path=/"] {
        assert!(
            attrs.iter().any(|a| a == wanted),
            "{wanted} missing from {cookie:?}"
        );
    }
    let signed_in = web.get("/");
    assert_eq!(signed_in.current_user().as_deref(), Some("alice"));
    assert_security_headers(&signed_in);
}

/// `guts-node user create --password-stdin` (offline) gives the account a password the
/// web interface accepts once the node runs; a short password is refused with exit 2.
#[test]
fn an_account_created_offline_with_a_password_signs_in() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |login: &str, password: &str| {
        let mut child = std::process::Command::new(crate::harness::node_binary())
            .args(["user", "create", login, "--password-stdin"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GUTS_DATA_DIR", &data)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let short = run("shorty", "short");
    assert_eq!(short.status.code(), Some(2), "{short:?}");
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("password"),
        "{short:?}"
    );
    let made = run("carol", "carol-offline-password");
    assert!(made.status.success(), "{made:?}");
    assert!(String::from_utf8_lossy(&made.stdout).starts_with("guts_"));

    let node = TestNode::start_with(crate::harness::NodeOptions::default().data_dir(&data));
    let mut web = WebClient::new(&node);
    web.sign_in("carol", "carol-offline-password");
    let home = web.get("/");
    home.expect(200);
    assert!(
        home.body.contains("id=\"current-user\""),
        "{}",
        home.describe()
    );
}

/// The admin page shows the node, its peers, replication and refused operations to site
/// admins only; to anyone else it does not exist.
#[test]
fn the_admin_page_is_for_site_admins_only() {
    let node = TestNode::start();
    let r = client()
        .post(node.url("/admin/users"))
        .bearer_auth(crate::harness::ADMIN_TOKEN)
        .json(&serde_json::json!({ "login": "root", "password": "root-password", "site_admin": true }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let alice = create_web_user(&node, "alice", ALICE_PW);
    create_repo(&node, &alice, "listed", false);
    let mut admin = WebClient::new(&node);
    admin.sign_in("root", "root-password");
    let page = admin.get("/admin");
    page.expect(200);
    for id in [
        "node-info",
        "peers",
        "replication",
        "rejections",
        "node-digest",
    ] {
        assert!(
            page.body.contains(&format!("id=\"{id}\"")),
            "{id}: {}",
            page.describe()
        );
    }
    assert!(page.body.contains("alice/listed"), "{}", page.describe());
    let mut user = WebClient::new(&node);
    user.sign_in("alice", ALICE_PW);
    user.get("/admin").expect_error_page(404);
    let mut visitor = WebClient::new(&node);
    let page = visitor.get("/admin");
    assert_eq!(page.status, 303, "{}", page.describe());
}

/// The admin API sets a password for an existing account (one made without, or a
/// forgotten one); the rule on length holds, and an unknown login is 404.
#[test]
fn the_admin_api_sets_a_password() {
    let node = TestNode::start();
    crate::harness::create_user(&node, "dora");
    let set = |login: &str, password: &str| {
        client()
            .put(node.url(&format!("/admin/users/{login}/password")))
            .bearer_auth(crate::harness::ADMIN_TOKEN)
            .json(&serde_json::json!({ "password": password }))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let mut web = WebClient::new(&node);
    let form = web.get("/login");
    let csrf = form.csrf("login-form");
    let refused = web.submit(
        "/login",
        &[
            ("login", "dora"),
            ("password", "dora-password"),
            ("_csrf", &csrf),
        ],
    );
    assert_eq!(
        refused.status,
        401,
        "no password yet: {}",
        refused.describe()
    );
    assert_eq!(set("dora", "short"), 422);
    assert_eq!(set("nobody-here", "long-enough-password"), 404);
    assert_eq!(set("dora", "dora-password"), 204);
    web.sign_in("dora", "dora-password");
}
