//! Required approving reviews count only reviewers with write access, as on GitHub
//! (audit finding: an approval by a pull-only collaborator, or by anyone at all on a
//! public repository, let a push collaborator merge into a protected branch). Over
//! HTTP against the real node: collaborators, branch protection, pull requests,
//! reviews and merges through GitHub's REST shapes, the branches pushed with git.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::gitutil::*;
use crate::harness::*;

/// The error the merge endpoint answers while approvals are missing (GitHub's words).
const REVIEW_REQUIRED: &str =
    "At least 1 approving review is required by reviewers with write access.";

/// Protects `main` of `repo` with one required approval (and stale dismissal if asked).
fn require_one_approval(node: &TestNode, owner: &str, repo: &str, dismiss_stale_reviews: bool) {
    let (status, body) = api(
        node,
        reqwest::Method::PUT,
        owner,
        &format!("/repos/{repo}/branches/main/protection"),
        json!({
            "required_status_checks": null,
            "enforce_admins": true,
            "required_pull_request_reviews": {
                "required_approving_review_count": 1,
                "dismiss_stale_reviews": dismiss_stale_reviews,
            },
            "restrictions": null,
        }),
    );
    assert_eq!(status, 200, "{body}");
    let reviews = &body["required_pull_request_reviews"];
    assert_eq!(reviews["required_approving_review_count"], 1, "{body}");
    assert_eq!(
        reviews["dismiss_stale_reviews"], dismiss_stale_reviews,
        "{body}"
    );
}

/// Opens a pull request `head` → `main` as `token`'s user; returns its number.
fn open_pull(node: &TestNode, token: &str, repo: &str, head: &str) -> u64 {
    let (status, body) = api(
        node,
        reqwest::Method::POST,
        token,
        &format!("/repos/{repo}/pulls"),
        json!({ "title": format!("merge {head}"), "head": head, "base": "main" }),
    );
    assert_eq!(status, 201, "{body}");
    body["number"].as_u64().unwrap()
}

fn approve(node: &TestNode, token: &str, repo: &str, number: u64) {
    let (status, body) = api(
        node,
        reqwest::Method::POST,
        token,
        &format!("/repos/{repo}/pulls/{number}/reviews"),
        json!({ "event": "APPROVE" }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "APPROVED", "{body}");
}

fn merge(node: &TestNode, token: &str, repo: &str, number: u64) -> (u16, Value) {
    api(
        node,
        reqwest::Method::PUT,
        token,
        &format!("/repos/{repo}/pulls/{number}/merge"),
        json!({}),
    )
}

/// Seeds `repo`: `main` (one commit) pushed by alice, then `branch` (one commit more)
/// pushed by `pusher_url`; returns the work tree, on `branch`.
fn seed(git: &Git, dir: &Path, alice_url: &str, pusher_url: &str, branch: &str) -> PathBuf {
    let work = git.init(dir, branch);
    git.commits(&work, "base", 1);
    git.ok(&work, &["push", alice_url, "main"]);
    git.ok(&work, &["checkout", "--quiet", "-b", branch]);
    git.commits(&work, branch, 1);
    git.ok(&work, &["push", pusher_url, branch]);
    work
}

fn pull(node: &TestNode, token: &str, repo: &str, number: u64) -> Value {
    let (status, body) = api(
        node,
        reqwest::Method::GET,
        token,
        &format!("/repos/{repo}/pulls/{number}"),
        Value::Null,
    );
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn approvals_by_reviewers_without_write_access_do_not_satisfy_protection() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    let carol = create_user(&node, "carol");
    let dave = create_user(&node, "dave");
    let erin = create_user(&node, "erin");
    let tmp = tempfile::tempdir().unwrap();
    let repo = "alice/trusted";
    create_repo(&node, &alice, "trusted", false);
    // bob may push, carol may only read, erin may push; dave is nobody here.
    add_collaborator(&node, &alice, repo, "bob", "push");
    add_collaborator(&node, &alice, repo, "carol", "pull");
    add_collaborator(&node, &alice, repo, "erin", "push");
    seed(
        &Git::v(2),
        tmp.path(),
        &auth_url(&node, "alice", &alice, repo),
        &auth_url(&node, "bob", &bob, repo),
        "feature",
    );
    require_one_approval(&node, &alice, repo, false);

    let number = open_pull(&node, &bob, repo, "feature");
    let (status, body) = merge(&node, &bob, repo, number);
    assert_eq!(
        (status, body["message"].as_str()),
        (405, Some(REVIEW_REQUIRED)),
        "{body}"
    );

    // A read collaborator's and a stranger's approvals are accepted as reviews (the
    // repository is public) but count for nothing.
    approve(&node, &carol, repo, number);
    approve(&node, &dave, repo, number);
    let (status, body) = merge(&node, &bob, repo, number);
    assert_eq!(
        (status, body["message"].as_str()),
        (405, Some(REVIEW_REQUIRED)),
        "{body}"
    );
    let waiting = pull(&node, &bob, repo, number);
    assert_eq!(waiting["merged"], false);
    assert_eq!(waiting["mergeable_state"], "blocked", "{waiting}");

    // A write collaborator's approval counts.
    approve(&node, &erin, repo, number);
    let ready = pull(&node, &bob, repo, number);
    assert_eq!(ready["mergeable_state"], "clean", "{ready}");
    let (status, body) = merge(&node, &bob, repo, number);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["merged"], true, "{body}");
    let merged = pull(&node, &bob, repo, number);
    assert_eq!(merged["merged"], true, "{merged}");
    assert_eq!(merged["merge_commit_sha"], body["sha"], "{merged}");
}

#[test]
fn new_commits_dismiss_approvals_when_the_protection_says_so() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    let erin = create_user(&node, "erin");
    let tmp = tempfile::tempdir().unwrap();
    let repo = "alice/fresh";
    create_repo(&node, &alice, "fresh", false);
    add_collaborator(&node, &alice, repo, "bob", "push");
    add_collaborator(&node, &alice, repo, "erin", "push");
    let git = Git::v(2);
    let bob_url = auth_url(&node, "bob", &bob, repo);
    let work = seed(
        &git,
        tmp.path(),
        &auth_url(&node, "alice", &alice, repo),
        &bob_url,
        "topic",
    );
    require_one_approval(&node, &alice, repo, true);

    let number = open_pull(&node, &bob, repo, "topic");
    approve(&node, &erin, repo, number);
    // bob pushes once more: erin approved the previous head, so that approval is stale.
    git.commits(&work, "topic-more", 1);
    git.ok(&work, &["push", &bob_url, "topic"]);
    let (status, body) = merge(&node, &bob, repo, number);
    assert_eq!(
        (status, body["message"].as_str()),
        (405, Some(REVIEW_REQUIRED)),
        "{body}"
    );

    approve(&node, &erin, repo, number);
    let (status, body) = merge(&node, &bob, repo, number);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["merged"], true, "{body}");
}
