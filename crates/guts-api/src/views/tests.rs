//! The key sets of the shapes, pinned: clients (PyGithub, octokit) read keys that Guts
//! never fills, so a key dropped from a view, or a `null` turned into an absent key,
//! breaks them even though every value Guts models is still right. Which keys a shape
//! has, and which may be `null`, is GitHub's published description's call (the
//! conformance test in tests/e2e checks every answer against it); this pins the sets
//! so that a change to one is deliberate.

use serde_json::{Value, json};

use crate::middleware::RateLimits;
use crate::test_support::{ADMIN_TOKEN, TestApp};

const SIMPLE_USER: &[&str] = &[
    "avatar_url",
    "events_url",
    "followers_url",
    "following_url",
    "gists_url",
    "gravatar_id",
    "html_url",
    "id",
    "login",
    "node_id",
    "organizations_url",
    "received_events_url",
    "repos_url",
    "site_admin",
    "starred_url",
    "subscriptions_url",
    "type",
    "url",
    "user_view_type",
];

const USER_PROFILE: &[&str] = &[
    "bio",
    "blog",
    "company",
    "created_at",
    "email",
    "followers",
    "following",
    "hireable",
    "location",
    "name",
    "public_gists",
    "public_repos",
    "twitter_username",
    "updated_at",
];

const ORG: &[&str] = &[
    "archived_at",
    "avatar_url",
    "created_at",
    "description",
    "events_url",
    "followers",
    "following",
    "has_organization_projects",
    "has_repository_projects",
    "hooks_url",
    "html_url",
    "id",
    "is_verified",
    "issues_url",
    "login",
    "members_url",
    "node_id",
    "public_gists",
    "public_members_url",
    "public_repos",
    "repos_url",
    "type",
    "updated_at",
    "url",
];

const REPOSITORY: &[&str] = &[
    "allow_forking",
    "archive_url",
    "archived",
    "assignees_url",
    "blobs_url",
    "branches_url",
    "clone_url",
    "collaborators_url",
    "comments_url",
    "commits_url",
    "compare_url",
    "contents_url",
    "contributors_url",
    "created_at",
    "default_branch",
    "deployments_url",
    "description",
    "disabled",
    "downloads_url",
    "events_url",
    "fork",
    "forks",
    "forks_count",
    "forks_url",
    "full_name",
    "git_commits_url",
    "git_refs_url",
    "git_tags_url",
    "git_url",
    "has_discussions",
    "has_downloads",
    "has_issues",
    "has_pages",
    "has_projects",
    "has_wiki",
    "homepage",
    "hooks_url",
    "html_url",
    "id",
    "is_template",
    "issue_comment_url",
    "issue_events_url",
    "issues_url",
    "keys_url",
    "labels_url",
    "language",
    "languages_url",
    "license",
    "merges_url",
    "milestones_url",
    "mirror_url",
    "name",
    "network_count",
    "node_id",
    "notifications_url",
    "open_issues",
    "open_issues_count",
    "owner",
    "private",
    "pulls_url",
    "pushed_at",
    "releases_url",
    "size",
    "ssh_url",
    "stargazers_count",
    "stargazers_url",
    "statuses_url",
    "subscribers_count",
    "subscribers_url",
    "subscription_url",
    "svn_url",
    "tags_url",
    "teams_url",
    "topics",
    "trees_url",
    "updated_at",
    "url",
    "visibility",
    "watchers",
    "watchers_count",
];

const ISSUE: &[&str] = &[
    "active_lock_reason",
    "assignee",
    "assignees",
    "author_association",
    "body",
    "closed_at",
    "closed_by",
    "comments",
    "comments_url",
    "created_at",
    "events_url",
    "html_url",
    "id",
    "labels",
    "labels_url",
    "locked",
    "milestone",
    "node_id",
    "number",
    "reactions",
    "repository_url",
    "state",
    "state_reason",
    "title",
    "updated_at",
    "url",
    "user",
];

const LABEL: &[&str] = &[
    "color",
    "default",
    "description",
    "id",
    "name",
    "node_id",
    "url",
];

const COMMENT: &[&str] = &[
    "author_association",
    "body",
    "created_at",
    "html_url",
    "id",
    "issue_url",
    "node_id",
    "performed_via_github_app",
    "reactions",
    "updated_at",
    "url",
    "user",
];

/// The keys of `value`, sorted, beside the `expected` groups merged and sorted.
#[track_caller]
fn assert_keys(value: &Value, expected: &[&[&str]]) {
    let mut have: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    have.sort_unstable();
    let mut want: Vec<&str> = expected.concat();
    want.sort_unstable();
    assert_eq!(have, want, "{value}");
}

async fn ok(app: &TestApp, method: &str, path: &str, token: &str, body: Value) -> Value {
    let body = (!body.is_null()).then_some(body);
    let (res, json) = app.call(method, path, Some(token), body).await;
    assert!(res.status().is_success(), "{method} {path}: {json}");
    json
}

/// `GET path` without credentials.
async fn anon(app: &TestApp, path: &str) -> Value {
    app.call("GET", path, None, None).await.1
}

#[tokio::test]
async fn every_shape_carries_githubs_keys_nulls_included() {
    let app = TestApp::new(RateLimits::default());
    let alice = app.user("alice").await;

    let me = ok(&app, "GET", "/api/v3/user", &alice, Value::Null).await;
    assert_keys(&me, &[SIMPLE_USER, USER_PROFILE]);
    assert!(me["name"].is_null() && me["bio"].is_null(), "{me}");

    let org = json!({ "login": "acme", "admin": "alice" });
    ok(&app, "POST", "/admin/orgs", ADMIN_TOKEN, org).await;
    assert_keys(&anon(&app, "/api/v3/orgs/acme").await, &[ORG]);
    let as_user = anon(&app, "/api/v3/users/acme").await;
    assert_keys(&as_user, &[SIMPLE_USER, &["created_at", "updated_at"]]);
    assert_eq!(as_user["type"], "Organization");

    ok(
        &app,
        "POST",
        "/api/v3/user/repos",
        &alice,
        json!({ "name": "proj" }),
    )
    .await;
    let repo = ok(&app, "GET", "/api/v3/repos/alice/proj", &alice, Value::Null).await;
    assert_keys(&repo, &[REPOSITORY, &["permissions"]]);
    assert_keys(&repo["owner"], &[SIMPLE_USER]);
    // Anonymous callers get no `permissions`, as on GitHub.
    assert_keys(&anon(&app, "/api/v3/repos/alice/proj").await, &[REPOSITORY]);

    let r = "/api/v3/repos/alice/proj";
    let label = json!({ "name": "good first issue", "color": "00ff00" });
    let label = ok(&app, "POST", &format!("{r}/labels"), &alice, label).await;
    assert_keys(&label, &[LABEL]);
    assert!(label["description"].is_null(), "{label}");
    let issue = json!({ "title": "t", "labels": ["good first issue"], "assignees": ["alice"] });
    let issue = ok(&app, "POST", &format!("{r}/issues"), &alice, issue).await;
    assert_keys(&issue, &[ISSUE]);
    assert_keys(&issue["user"], &[SIMPLE_USER]);
    assert_keys(&issue["labels"][0], &[LABEL]);
    assert_eq!(issue["assignee"], issue["assignees"][0], "{issue}");
    assert!(
        issue["body"].is_null() && issue.get("draft").is_none(),
        "{issue}"
    );

    let comment = json!({ "body": "hello" });
    let comment = ok(
        &app,
        "POST",
        &format!("{r}/issues/1/comments"),
        &alice,
        comment,
    )
    .await;
    assert_keys(&comment, &[COMMENT]);
}

const KEY: &[&str] = &[
    "created_at",
    "id",
    "key",
    "last_used",
    "read_only",
    "title",
    "url",
    "verified",
];

const KEY_SIMPLE: &[&str] = &["created_at", "id", "key", "last_used"];

const DEPLOY_KEY: &[&str] = &[
    "added_by",
    "created_at",
    "enabled",
    "id",
    "key",
    "last_used",
    "read_only",
    "title",
    "url",
    "verified",
];

#[tokio::test]
async fn ssh_key_shapes_carry_githubs_keys() {
    let app = TestApp::new(RateLimits::default());
    let alice = app.user("alice").await;
    let body = json!({ "title": "laptop", "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMX2LmyNdQo7aLkAvq9ePbvjQ8HEonBNUZJHinyXqPKf me@host" });
    let key = ok(&app, "POST", "/api/v3/user/keys", &alice, body).await;
    assert_keys(&key, &[KEY]);
    assert_eq!(
        key["key"],
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMX2LmyNdQo7aLkAvq9ePbvjQ8HEonBNUZJHinyXqPKf",
        "the comment is dropped"
    );
    assert!(
        key["last_used"].is_null() && key["verified"] == true,
        "{key}"
    );
    let listed = anon(&app, "/api/v3/users/alice/keys").await;
    assert_keys(&listed[0], &[KEY_SIMPLE]);

    ok(
        &app,
        "POST",
        "/api/v3/user/repos",
        &alice,
        json!({ "name": "proj" }),
    )
    .await;
    ok(
        &app,
        "DELETE",
        &format!("/api/v3/user/keys/{}", key["id"]),
        &alice,
        Value::Null,
    )
    .await;
    let body = json!({ "title": "ci", "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMX2LmyNdQo7aLkAvq9ePbvjQ8HEonBNUZJHinyXqPKf" });
    let deploy = ok(&app, "POST", "/api/v3/repos/alice/proj/keys", &alice, body).await;
    assert_keys(&deploy, &[DEPLOY_KEY]);
    assert_eq!(deploy["read_only"], true);
    assert_eq!(deploy["added_by"], "alice");
}
