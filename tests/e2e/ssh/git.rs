//! Stock git over SSH: everything a developer does with a remote, in both protocol
//! versions, ending with the same refs as over HTTP.

use serde_json::json;

use super::*;
use crate::gitutil::{Git, PROTOCOLS, auth_url, create_repo, protect_branch};

/// Push (branches, a tag), clone, shallow clone, fetch, branch delete and tag push over
/// SSH in v2 and v0, with both URL forms (`ssh://` and scp-like); each clone holds
/// exactly the refs HTTP advertises, and the API's `ssh_url` is what git accepts.
#[test]
fn clone_fetch_and_push_over_ssh_in_both_protocols() {
    let node = TestNode::start();
    let token = create_user(&node, "alice");
    let tmp = tempfile::tempdir().unwrap();
    let key = SshKey::new(tmp.path(), "alice", "ed25519", &node);
    add_user_key(&node, &token, &key);
    let ssh = key.command(&node);
    let env = [("GIT_SSH_COMMAND", ssh.as_str())];

    for proto in PROTOCOLS {
        let git = Git::v(proto);
        let name = format!("tools-v{proto}");
        let repo = format!("alice/{name}");
        create_repo(&node, &token, &name, false);
        let url = ssh_url(&node, &repo);
        let http = auth_url(&node, "alice", &token, &repo);

        // The API tells clients where to clone over SSH.
        let (status, body) = api(
            &node,
            reqwest::Method::GET,
            &token,
            &format!("/repos/{repo}"),
            json!(null),
        );
        assert_eq!(status, 200);
        assert_eq!(body["ssh_url"], json!(url), "{body}");

        let work = git.init(tmp.path(), &format!("work-v{proto}"));
        git.commits(&work, "first", 5);
        git.ok(&work, &["checkout", "-q", "-b", "feature"]);
        git.commits(&work, "feature", 3);
        git.ok(&work, &["checkout", "-q", "main"]);
        git.ok(&work, &["tag", "-a", "v1.0", "-m", "release"]);
        git.ok_env(&work, &["push", &url, "main", "feature", "v1.0"], &env);

        // A full clone over SSH holds exactly what HTTP advertises.
        let over_http = git.remote_refs(&http);
        assert_eq!(over_http.len(), 3, "{over_http:?}");
        let clone = tmp.path().join(format!("clone-v{proto}"));
        git.ok_env(
            tmp.path(),
            &["clone", "--bare", "--quiet", &url, clone.to_str().unwrap()],
            &env,
        );
        assert_eq!(git.local_refs(&clone), over_http, "v{proto}");
        git.fsck(&clone);
        // ls-remote over SSH and over HTTP agree line for line (HEAD, peeled tags).
        let listed = git.ok_env(tmp.path(), &["ls-remote", &url], &env).stdout;
        let listed_http = git.ok(tmp.path(), &["ls-remote", &http]).stdout;
        assert_eq!(listed, listed_http, "v{proto}");

        // The scp-like form, as GitHub prints it (the port comes from the ssh command).
        let scp = format!("git@127.0.0.1:{repo}.git");
        let shallow = tmp.path().join(format!("shallow-v{proto}"));
        git.ok_env(
            tmp.path(),
            &[
                "clone",
                "--quiet",
                "--depth",
                "1",
                &scp,
                shallow.to_str().unwrap(),
            ],
            &env,
        );
        assert_eq!(git.out(&shallow, &["rev-list", "--count", "HEAD"]), "1");
        assert_eq!(git.rev(&shallow, "HEAD"), over_http["refs/heads/main"]);

        // New work arrives by fetch, a shallow clone deepens.
        let head = git.commits(&work, "second", 4);
        git.ok_env(&work, &["push", "--quiet", &url, "main"], &env);
        git.ok_env(
            &clone,
            &["fetch", "--quiet", &url, "+refs/heads/*:refs/heads/*"],
            &env,
        );
        assert_eq!(git.rev(&clone, "main"), head);
        // The 4 new commits, and 3 more below the old boundary.
        git.ok_env(&shallow, &["fetch", "--quiet", "--deepen", "3"], &env);
        assert_eq!(
            git.out(&shallow, &["rev-list", "--count", "origin/main"]),
            "8"
        );
        git.ok_env(&shallow, &["fetch", "--quiet", "--unshallow"], &env);
        assert_eq!(
            git.out(&shallow, &["rev-list", "--count", "origin/main"]),
            "9"
        );

        // A tag push and a branch delete (which sends no pack).
        git.ok(&work, &["tag", "v2.0"]);
        git.ok_env(&work, &["push", "--quiet", &url, "v2.0"], &env);
        git.ok_env(
            &work,
            &["push", "--quiet", &url, "--delete", "feature"],
            &env,
        );
        let after = git.remote_refs(&http);
        assert!(after.contains_key("refs/tags/v2.0"), "{after:?}");
        assert!(!after.contains_key("refs/heads/feature"), "{after:?}");
        // Nothing to push: git says so and the server answers nothing.
        let idle = git.ok_env(&work, &["push", &url, "main"], &env);
        assert!(idle.text().contains("Everything up-to-date"), "{idle}");
    }

    // Fetches and pushes are counted under their transport.
    let fetches = node
        .metric("guts_git_fetches_total{transport=\"ssh\",protocol=\"v2\",result=\"ok\"}")
        .unwrap_or(0.0);
    assert!(fetches >= 2.0, "ssh v2 fetches counted: {fetches}");
    let pushes = node
        .metric("guts_git_pushes_total{transport=\"ssh\",result=\"ok\"}")
        .unwrap_or(0.0);
    assert!(pushes >= 6.0, "ssh pushes counted: {pushes}");
    // Every session is over.
    assert_eq!(node.metric("guts_ssh_sessions_active"), Some(0.0));
}

/// A protected branch refuses a force push and a deletion over SSH with the same words
/// as over HTTP.
#[test]
fn protected_branch_refusals_read_as_on_http() {
    let node = TestNode::start();
    let token = create_user(&node, "carol");
    let tmp = tempfile::tempdir().unwrap();
    let key = SshKey::new(tmp.path(), "carol", "ecdsa", &node);
    add_user_key(&node, &token, &key);
    let ssh = key.command(&node);
    let env = [("GIT_SSH_COMMAND", ssh.as_str())];
    let git = Git::v(2);
    create_repo(&node, &token, "guarded", false);
    let url = ssh_url(&node, "carol/guarded");
    let http = auth_url(&node, "carol", &token, "carol/guarded");
    let work = git.init(tmp.path(), "work");
    git.commits(&work, "base", 3);
    git.ok_env(&work, &["push", "--quiet", &url, "main"], &env);
    protect_branch(&node, &token, "carol/guarded", "main");

    git.ok(&work, &["commit", "--quiet", "--amend", "-m", "rewritten"]);
    let refusal = |run: &crate::gitutil::GitRun| {
        run.text()
            .lines()
            .find(|l| l.contains("main -> main"))
            .map(|l| l.trim().to_owned())
            .unwrap_or_else(|| panic!("no refusal line: {run}"))
    };
    let over_ssh = git.run_env(&work, &["push", "--force", &url, "main"], &env);
    assert!(!over_ssh.status.success(), "{over_ssh}");
    let over_http = git.fails(&work, &["push", "--force", &http, "main"]);
    assert_eq!(refusal(&over_ssh), refusal(&over_http));
    assert!(refusal(&over_ssh).contains("protected"), "{over_ssh}");

    let delete = git.run_env(&work, &["push", &url, "--delete", "main"], &env);
    assert!(!delete.status.success(), "{delete}");
    assert!(delete.text().contains("protected"), "{delete}");
}
