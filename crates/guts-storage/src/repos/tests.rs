//! Tests of repositories as operations: creation and deletion with permissions,
//! compare-and-swap pushes, rebuilding from the log on reopen, thread numbering.

use super::*;
use crate::metrics::StorageMetrics;
use crate::testing::{commit, open_repos as open};
use guts_core::Role;

#[tokio::test]
async fn create_find_delete_and_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let (repos, _w, metrics) = open(dir.path());
    let alice = Keypair::generate();
    let mallory = Keypair::generate();
    let view = repos
        .create(&alice, "alice", "Hello", "greets", false, "main")
        .await
        .unwrap();
    assert_eq!(view.state.role(&alice.public()), Some(Role::Owner));
    assert!(repos.git().exists(&view.id.to_string()));
    assert_eq!(repos.find("ALICE", "hello").unwrap().id, view.id);
    assert!(matches!(
        repos
            .create(&alice, "alice", "hello", "", false, "main")
            .await,
        Err(RepoError::NameTaken)
    ));
    assert!(matches!(
        repos.create(&alice, "alice", "..", "", false, "main").await,
        Err(RepoError::InvalidName(_))
    ));

    // Mallory cannot delete it: the fold rejects, the metric counts, nothing is stored.
    let refused = repos.append(view.id, &mallory, Payload::DeleteRepo).await;
    assert!(
        matches!(
            refused,
            Err(RepoError::Rejected(Rejection::NotPermitted { .. }))
        ),
        "{refused:?}"
    );
    let counted = metrics
        .rejected
        .get_or_create(&ReasonLabels {
            reason: "not_permitted",
        })
        .get();
    assert_eq!(counted, 1);
    assert!(repos.find("alice", "hello").is_some());

    repos
        .append(view.id, &alice, Payload::DeleteRepo)
        .await
        .unwrap();
    assert!(repos.find("alice", "hello").is_none());
    assert!(!repos.git().exists(&view.id.to_string()));
    // The name is free again.
    repos
        .create(&alice, "alice", "hello", "", true, "trunk")
        .await
        .unwrap();
    assert_eq!(repos.list().len(), 1);
}

fn push(name: &str, old: Option<ObjectId>, new: Option<ObjectId>) -> RefCommand {
    RefCommand {
        name: name.into(),
        old,
        new,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ref_updates_are_compare_and_swap_atomic_and_survive_a_lost_ref_write() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Keypair::generate();
    let (id, c2) = {
        let (repos, writer, _) = open(dir.path());
        let view = repos
            .create(&alice, "alice", "r", "", false, "main")
            .await
            .unwrap();
        let git = repos.git().open_repo(&view.id.to_string()).unwrap();
        let c1 = commit(git.gix(), &[], "one");
        let c2 = commit(git.gix(), &[c1], "two");
        let side = commit(git.gix(), &[c1], "side");
        let main = "refs/heads/main";
        let done = repos
            .update_refs(view.id, &alice, vec![push(main, None, Some(c1))], false)
            .await
            .unwrap();
        assert_eq!(done, vec![Ok(())]);
        assert_eq!(git.ref_target(main).unwrap(), Some(*c1.as_bytes()));
        // A stale old value loses, whatever the new value is.
        let stale = repos
            .update_refs(view.id, &alice, vec![push(main, None, Some(c2))], false)
            .await
            .unwrap();
        assert!(
            matches!(stale[0], Err(RefRefusal::Stale { .. })),
            "{stale:?}"
        );
        // Atomic: one refusal refuses all, and nothing is stored.
        let before = repos.find("alice", "r").unwrap().state.applied;
        let atomic = repos
            .update_refs(
                view.id,
                &alice,
                vec![
                    push("refs/heads/x", None, Some(side)),
                    push("refs/guts/nope", None, Some(side)),
                ],
                true,
            )
            .await
            .unwrap();
        assert_eq!(atomic[0], Err(RefRefusal::AtomicAborted));
        assert_eq!(atomic[1], Err(RefRefusal::Rejected(Rejection::ReservedRef)));
        assert_eq!(repos.find("alice", "r").unwrap().state.applied, before);
        assert_eq!(git.ref_target("refs/heads/x").unwrap(), None);
        // A fast-forward and a non-fast-forward (allowed: unprotected) in one push.
        let both = repos
            .update_refs(
                view.id,
                &alice,
                vec![
                    push(main, Some(c1), Some(c2)),
                    push("refs/heads/side", None, Some(side)),
                ],
                false,
            )
            .await
            .unwrap();
        assert_eq!(both, vec![Ok(()), Ok(())]);
        // Simulate a crash between the durable operation and the ref write.
        std::fs::remove_file(git.path().join("refs/heads/main")).unwrap();
        std::fs::write(git.path().join("refs/heads/side.lock"), b"").unwrap();
        drop(repos);
        writer.join();
        (view.id, c2)
    };
    let (repos, _w, _) = open(dir.path());
    let git = repos.git().open_repo(&id.to_string()).unwrap();
    assert_eq!(
        git.ref_target("refs/heads/main").unwrap(),
        Some(*c2.as_bytes()),
        "restored from the operation log"
    );
    assert!(!git.path().join("refs/heads/side.lock").exists());
}

#[tokio::test]
async fn reopen_rebuilds_state_from_the_log_and_removes_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Keypair::generate();
    let (id, digest) = {
        let (repos, writer, _) = open(dir.path());
        let view = repos
            .create(&alice, "alice", "kept", "", false, "main")
            .await
            .unwrap();
        let bob = Keypair::generate();
        let view2 = repos
            .append(
                view.id,
                &alice,
                Payload::SetRole {
                    user: bob.public(),
                    role: Some(Role::Write),
                },
            )
            .await
            .unwrap();
        let gone = repos
            .create(&alice, "alice", "gone", "", false, "main")
            .await
            .unwrap();
        repos
            .append(gone.id, &alice, Payload::DeleteRepo)
            .await
            .unwrap();
        drop(repos);
        writer.join();
        (view.id, view2.state.digest())
    };
    // A directory no operation owns (a crash after mkdir, before commit).
    std::fs::create_dir_all(
        dir.path()
            .join(format!("repos/{}.git/objects", "ee".repeat(32))),
    )
    .unwrap();
    let (repos, _w, metrics) = open(dir.path());
    let view = repos.find("alice", "kept").unwrap();
    assert_eq!(view.id, id);
    assert_eq!(view.state.digest(), digest, "same log, same state");
    // The engine rebuilt from the log (what a failed append falls back to) agrees.
    let rebuilt = repos.load_engine(id).unwrap();
    assert_eq!(rebuilt.view().state.digest(), digest);
    assert!(repos.find("alice", "gone").is_none());
    assert!(
        !dir.path()
            .join(format!("repos/{}.git", "ee".repeat(32)))
            .exists()
    );
    assert_eq!(metrics.repositories.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_issues_get_consecutive_numbers_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (repos, writer, metrics) = open(dir.path());
    let alice = Keypair::generate();
    let view = repos
        .create(&alice, "alice", "issues", "", false, "main")
        .await
        .unwrap();
    let repos = Arc::new(repos);
    let repo_id = view.id;
    let opens: Vec<_> = (0..24)
        .map(|i| {
            let (repos, alice) = (repos.clone(), alice.clone());
            tokio::spawn(async move {
                let payload = Payload::OpenIssue {
                    number: 0,
                    title: format!("issue {i}"),
                    body: String::new(),
                    labels: vec![],
                    assignees: vec![],
                };
                repos
                    .append_checked(repo_id, &alice, payload, |_| Ok(()))
                    .await
                    .unwrap()
                    .1
            })
        })
        .collect();
    let mut ids = Vec::new();
    for open in opens {
        ids.push(open.await.unwrap());
    }
    let state = repos.find("alice", "issues").unwrap().state.clone();
    let mut numbers: Vec<u64> = ids
        .iter()
        .map(|id| state.collab.threads[id].number)
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=24).collect::<Vec<u64>>());
    let open_gauge = |m: &StorageMetrics| {
        m.issues
            .get_or_create(&crate::metrics::StateLabels { state: "open" })
            .get()
    };
    assert_eq!(open_gauge(&metrics), 24);

    // A refused check stores nothing.
    let refused = repos
        .append_checked(repo_id, &alice, Payload::DeleteRepo, |_| {
            Err(RepoError::Moved("moved".into()))
        })
        .await;
    assert!(matches!(refused, Err(RepoError::Moved(_))), "{refused:?}");

    // The log is the truth: reopening folds the same state.
    drop(repos);
    writer.join();
    let (reopened, _w, metrics) = open(dir.path());
    let again = reopened.find("alice", "issues").unwrap();
    assert!(!again.state.deleted);
    assert_eq!(again.state.encode(), state.encode());
    assert_eq!(open_gauge(&metrics), 24);
}

/// Bodies are read from the log by the references the state keeps, also after an
/// edit and after a restart; a
/// reference to an operation or a part that is not there is a typed error, not a panic.
#[tokio::test]
async fn bodies_are_read_from_the_log_by_reference() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Keypair::generate();
    let (id, issue) = {
        let (repos, writer, _) = open(dir.path());
        let view = repos
            .create(&alice, "alice", "texts", "", false, "main")
            .await
            .unwrap();
        let open_issue = Payload::OpenIssue {
            number: 0,
            title: "t".into(),
            body: "first words".into(),
            labels: vec![],
            assignees: vec![],
        };
        let (view, issue) = repos
            .append_checked(view.id, &alice, open_issue, |_| Ok(()))
            .await
            .unwrap();
        let texts = repos.texts();
        let thread = &view.state.collab.threads[&issue];
        assert_eq!(texts.get(&thread.body).unwrap(), "first words");
        let comment = Payload::Comment {
            thread: issue,
            body: "a comment".into(),
        };
        let (view, comment) = repos
            .append_checked(view.id, &alice, comment, |_| Ok(()))
            .await
            .unwrap();
        let edit = Payload::EditThread {
            thread: issue,
            edit: guts_core::ThreadEdit {
                body: Some("second words".into()),
                ..Default::default()
            },
        };
        let view = repos.append(view.id, &alice, edit).await.unwrap();
        let texts = repos.texts();
        let thread = &view.state.collab.threads[&issue];
        assert_eq!(texts.get(&thread.body).unwrap(), "second words");
        let stored = &view.state.collab.comments[&comment];
        assert_eq!(texts.get(&stored.body).unwrap(), "a comment");

        // Not there: an operation no one wrote, a part the operation lacks.
        let missing = guts_core::TextRef {
            op: OpId::from_bytes([7; 32]),
            part: 0,
            len: 3,
        };
        assert!(matches!(texts.get(&missing), Err(StoreError::Corrupt(_))));
        let no_part = guts_core::TextRef {
            part: 9,
            ..thread.body
        };
        assert!(matches!(texts.get(&no_part), Err(StoreError::Corrupt(_))));
        repos
            .write_checkpoints(CheckpointPass::Final)
            .await
            .unwrap();
        drop(repos);
        writer.join();
        (view.id, issue)
    };
    let (repos, _writer, _) = open(dir.path());
    let view = repos.get(id).unwrap();
    let thread = &view.state.collab.threads[&issue];
    assert_eq!(repos.texts().get(&thread.body).unwrap(), "second words");
}
