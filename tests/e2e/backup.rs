//! Online backup and offline restore (docs/operations.md): a backup taken through the
//! admin API while stock git pushes land, restored with `guts-node restore` into a
//! fresh data directory, on which a new node serves every repository acknowledged
//! before the backup began (identical clones, clean `git fsck`) and accepts every
//! account's token, including for a new push (so the users' keys were restored too).
//!
//! ```text
//!   writers ──push──▶ node A ──POST /admin/backup──▶ backup dir
//!                                                       │ guts-node restore
//!                                                       ▼
//!                      node B ◀── fresh data dir ◀──────┘   clone, fsck, tokens
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::gitutil::*;
use crate::harness::*;

/// One acknowledged push: when it ran and the refs the pusher had afterwards.
#[derive(Debug, Clone)]
struct Push {
    repo: String,
    start: Instant,
    end: Instant,
    refs: BTreeMap<String, String>,
}

/// A repository created and first pushed by a writer during the run.
#[derive(Debug, Clone)]
struct Created {
    repo: String,
    acknowledged: Instant,
}

#[derive(Debug, Default)]
struct Log {
    pushes: Vec<Push>,
    created: Vec<Created>,
}

fn push(git: &Git, work: &Path, repo: &str, log: &Mutex<Log>) {
    let start = Instant::now();
    git.ok(work, &["push", "--quiet", "origin", "main"]);
    let end = Instant::now();
    let refs = git.local_refs(work);
    log.lock().unwrap().pushes.push(Push {
        repo: repo.to_string(),
        start,
        end,
        refs,
    });
}

/// Keeps pushing new commits (each with a fresh incompressible blob) to `repo`, and
/// now and then creates and pushes a new repository, until `stop`.
fn writer(
    node_api: String,
    token: String,
    repo: String,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Log>>,
) {
    let git = Git::v(2);
    let url = |name: &str| format!("http://alice:{token}@{node_api}/alice/{name}.git");
    let work = dir.join(&repo);
    let mut round = 0u64;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        write_random_files(&work, &format!("round{round}"), 1, 128 * 1024, round);
        git.commit(&work, &[], &format!("{repo} round {round}"));
        push(&git, &work, &repo, &log);
        if round.is_multiple_of(4) {
            let name = format!("{repo}-late-{round}");
            let r = client()
                .post(format!("http://{node_api}/api/v3/user/repos"))
                .header("Authorization", format!("token {token}"))
                .json(&json!({ "name": name }))
                .send()
                .unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
            log.lock().unwrap().created.push(Created {
                repo: name.clone(),
                acknowledged: Instant::now(),
            });
            let late = git.init(&dir, &name);
            git.commits(&late, &name, 2);
            git.ok(&late, &["remote", "add", "origin", &url(&name)]);
            push(&git, &late, &name, &log);
        }
    }
}

#[test]
fn a_backup_taken_during_pushes_restores_everything_acknowledged_before_it() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    let bob = create_user(&node, "bob");
    let tmp = tempfile::tempdir().unwrap();
    let work_dir = tmp.path().join("work");
    std::fs::create_dir(&work_dir).unwrap();
    let git = Git::v(2);

    // Stable repositories: pushed before the backup, untouched after. A few MiB each,
    // so that copying them takes a moment while the writers go on.
    let mut stable = BTreeMap::new();
    for i in 0..3 {
        let name = format!("stable-{i}");
        create_repo(&node, &alice, &name, i == 2);
        let work = git.init(&work_dir, &name);
        write_random_files(&work, "blobs", 4, 512 * 1024, i);
        git.commit(&work, &[], "blobs");
        git.commits(&work, &name, 5);
        git.ok(&work, &["branch", "feature", "HEAD~2"]);
        git.ok(&work, &["tag", "v1", "HEAD~1"]);
        let url = auth_url(&node, "alice", &alice, &format!("alice/{name}"));
        git.ok(&work, &["push", "--quiet", &url, "main", "feature", "v1"]);
        stable.insert(name.clone(), git.local_refs(&work));
    }

    // Busy repositories: one writer thread each keeps pushing during the backup.
    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for i in 0..2 {
        let name = format!("busy-{i}");
        create_repo(&node, &alice, &name, false);
        let work = git.init(&work_dir, &name);
        git.commits(&work, &name, 3);
        let url = auth_url(&node, "alice", &alice, &format!("alice/{name}"));
        git.ok(&work, &["remote", "add", "origin", &url]);
        push(&git, &work, &name, &log);
        let (api, token, dir) = (node.api.to_string(), alice.clone(), work_dir.clone());
        let (stop, log) = (stop.clone(), log.clone());
        writers.push(std::thread::spawn(move || {
            writer(api, token, name, dir, stop, log)
        }));
    }
    eventually(Duration::from_secs(60), "the writers to get going", || {
        (log.lock().unwrap().pushes.len() >= 6).then_some(())
    });

    // The backup, while the writers push.
    let backup_dir = tmp.path().join("backups/one");
    let began = Instant::now();
    let r = client()
        .post(node.url("/admin/backup"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "path": backup_dir }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
    let started: serde_json::Value = r.json().unwrap();
    assert_eq!(started["state"], "running", "{started}");
    let done = eventually(Duration::from_secs(90), "the backup to finish", || {
        let r = client()
            .get(node.url("/admin/backup"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().unwrap();
        (body["state"] != "running").then_some(body)
    });
    let finished = Instant::now();
    assert_eq!(done["state"], "done", "{done}");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let log = Arc::try_unwrap(log).unwrap().into_inner().unwrap();
    assert!(
        log.pushes
            .iter()
            .any(|p| p.start < finished && p.end > began),
        "no push overlapped the backup: the test proved nothing"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join("backup.json")).unwrap()).unwrap();
    assert!(
        manifest["repositories"].as_array().unwrap().len() >= 5,
        "{manifest}"
    );
    assert!(
        backup_dir.join("cluster.secret").is_file(),
        "the backup holds the cluster secret the node generated"
    );

    // Restore into a fresh directory; a second restore into it is refused.
    let restored = tmp.path().join("restored");
    let (status, stdout, stderr) = run_to_exit(
        &[
            "restore",
            backup_dir.to_str().unwrap(),
            "--data-dir",
            restored.to_str().unwrap(),
        ],
        &[],
        tmp.path(),
    );
    assert!(status.success(), "restore failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("restored"), "{stdout}");
    let (status, _, stderr) = run_to_exit(
        &[
            "restore",
            backup_dir.to_str().unwrap(),
            "--data-dir",
            restored.to_str().unwrap(),
        ],
        &[],
        tmp.path(),
    );
    assert!(
        !status.success() && stderr.contains("not empty"),
        "{stderr}"
    );

    let restored_node = TestNode::start_with(NodeOptions::default().data_dir(&restored));
    let b = &restored_node;
    let clones = tmp.path().join("clones");
    std::fs::create_dir(&clones).unwrap();

    // Everything acknowledged before the backup began is there, exactly.
    for (name, refs) in &stable {
        let url = auth_url(b, "alice", &alice, &format!("alice/{name}"));
        git.assert_clone_identical(&url, refs, &clones, name);
    }
    let repos: std::collections::BTreeSet<String> =
        log.pushes.iter().map(|p| p.repo.clone()).collect();
    for repo in &repos {
        let acked: Vec<&Push> = log.pushes.iter().filter(|p| &p.repo == repo).collect();
        let created_before = log
            .created
            .iter()
            .find(|c| &c.repo == repo)
            .is_none_or(|c| c.acknowledged < began);
        let last_before = acked.iter().rposition(|p| p.end < began);
        let url = auth_url(b, "alice", &alice, &format!("alice/{repo}"));
        let r = client()
            .get(b.url(&format!("/api/v3/repos/alice/{repo}")))
            .bearer_auth(&alice)
            .send()
            .unwrap();
        if r.status() == 404 {
            assert!(
                !created_before && last_before.is_none(),
                "{repo} was acknowledged before the backup began but is not restored"
            );
            continue;
        }
        assert_eq!(r.status(), 200, "{repo}");
        let served = git.remote_refs(&url);
        // The restored state is one the node acknowledged, no older than the last
        // acknowledgement before the backup began (a push in flight may be in or out).
        let candidates = &acked[last_before.unwrap_or(0)..];
        assert!(
            (last_before.is_none() && served.is_empty())
                || candidates.iter().any(|p| p.refs == served),
            "{repo}: restored refs {served:?} are no acknowledged state since the backup began ({} candidates)",
            candidates.len()
        );
        if !served.is_empty() {
            git.assert_clone_identical(&url, &served, &clones, &format!("{repo}-restored"));
        }
    }

    // The accounts: tokens authenticate, and alice's key signs a new push.
    for (login, token) in [("alice", &alice), ("bob", &bob)] {
        let r = client()
            .get(b.url("/api/v3/user"))
            .bearer_auth(token)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{login}");
        let body: serde_json::Value = r.json().unwrap();
        assert_eq!(body["login"], login);
    }
    let work = work_dir.join("stable-0");
    git.commits(&work, "after-restore", 1);
    let url = auth_url(b, "alice", &alice, "alice/stable-0");
    git.ok(&work, &["push", "--quiet", &url, "main"]);
    assert_eq!(
        git.remote_refs(&url).get("refs/heads/main"),
        Some(&git.rev(&work, "HEAD"))
    );
}

#[test]
fn backup_and_restore_refuse_what_they_cannot_do_well() {
    let node = TestNode::start();
    let tmp = tempfile::tempdir().unwrap();
    let post = |body: serde_json::Value| {
        client()
            .post(node.url("/admin/backup"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .unwrap()
    };
    // Inside the data directory, relative, or not empty: 422 with the reason.
    for (path, why) in [
        (
            node.data_dir.join("backup").display().to_string(),
            "inside the data directory",
        ),
        ("relative/dir".to_string(), "absolute"),
        (tmp.path().display().to_string(), "not empty"),
    ] {
        std::fs::write(tmp.path().join("occupied"), "x").unwrap();
        let r = post(json!({ "path": path }));
        assert_eq!(r.status(), 422, "{path}");
        let body: serde_json::Value = r.json().unwrap();
        assert!(
            body["errors"][0]["message"].as_str().unwrap().contains(why),
            "{path}: {body}"
        );
    }

    // The CLI: through the admin API named by the usual configuration.
    let env = |token: &str| {
        vec![
            ("GUTS_API_ADDR".to_string(), node.api.to_string()),
            ("GUTS_ADMIN_TOKEN".to_string(), token.to_string()),
        ]
    };
    let target = tmp.path().join("cli-backup");
    let vars = env(ADMIN_TOKEN);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, stdout, stderr) =
        run_to_exit(&["backup", target.to_str().unwrap()], &vars, tmp.path());
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("\"state\": \"done\""), "{stdout}");
    assert!(target.join("backup.json").is_file());
    let (status, _, stderr) = run_to_exit(&["backup", "again"], &[], tmp.path());
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("GUTS_ADMIN_TOKEN"), "{stderr}");

    // Restore refuses an incomplete backup, and one whose cluster secret is not there
    // when none is configured.
    let incomplete = tmp.path().join("incomplete");
    std::fs::create_dir(&incomplete).unwrap();
    let (status, _, stderr) = run_to_exit(
        &[
            "restore",
            incomplete.to_str().unwrap(),
            "--data-dir",
            "/nonexistent/x",
        ],
        &[],
        tmp.path(),
    );
    assert!(
        !status.success() && stderr.contains("backup.json"),
        "{stderr}"
    );
    std::fs::remove_file(target.join("cluster.secret")).unwrap();
    let manifest_path = target.join("backup.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["key_files"] = json!(["node.key"]);
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let restored = tmp.path().join("restored");
    let (status, _, stderr) = run_to_exit(
        &[
            "restore",
            target.to_str().unwrap(),
            "--data-dir",
            restored.to_str().unwrap(),
        ],
        &[],
        tmp.path(),
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("GUTS_CLUSTER_SECRET"), "{stderr}");
    assert!(!restored.exists(), "nothing was written");
}
