//! Tests of replication's storage side, each between nodes that are stores in their own
//! temporary directories: batches in any order, missing parents, the objects gate,
//! `ops_since` paging, name clashes and bindings, dead letters and their replay.

use std::path::Path;

use guts_core::{Hlc, Keypair, Operation, ThreadEdit};

use super::*;
use crate::metrics::{ReasonLabels, StorageMetrics};
use crate::repos::{RefCommand, ReplayReport};
use crate::testing::{commit, open_repos};
use crate::{Oid, WriterHandle};

const MAX: usize = 4 << 20;

/// One node's storage in its own data directory.
struct Node {
    repos: Repositories,
    writer: Option<WriterHandle>,
    metrics: Arc<StorageMetrics>,
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let (repos, writer, metrics) = open_repos(dir.path());
        Node {
            repos,
            writer: Some(writer),
            metrics,
            dir,
        }
    }

    /// Closes and opens the node's storage again: state comes from the log.
    fn reopen(self) -> Node {
        let Node {
            repos, writer, dir, ..
        } = self;
        drop(repos);
        if let Some(writer) = writer {
            writer.join();
        }
        let (repos, writer, metrics) = open_repos(dir.path());
        Node {
            repos,
            writer: Some(writer),
            metrics,
            dir,
        }
    }

    /// [`Node::reopen`] for a node made by [`bound_node`].
    fn reopen_bound(self, secret: &[u8]) -> Node {
        let Node {
            repos, writer, dir, ..
        } = self;
        drop(repos);
        if let Some(writer) = writer {
            writer.join();
        }
        open_bound(dir, secret).0
    }

    fn rejected(&self, reason: &'static str) -> u64 {
        self.metrics
            .rejected
            .get_or_create(&ReasonLabels { reason })
            .get()
    }

    fn git(&self, id: RepoId) -> crate::GitRepo {
        self.repos.git().open_repo(&id.to_string()).unwrap()
    }

    fn refs(&self, id: RepoId) -> Vec<(String, Oid)> {
        let mut refs = self.git(id).refs().unwrap();
        refs.sort();
        refs
    }
}

fn push(name: &str, old: Option<ObjectId>, new: Option<ObjectId>) -> RefCommand {
    RefCommand {
        name: name.into(),
        old,
        new,
    }
}

/// Every operation of `id` on `repos`, parents first.
async fn all_ops(repos: &Repositories, id: RepoId) -> Vec<SignedOp> {
    let heads = repos.heads(id).unwrap();
    let (ops, not_held) = repos
        .ops_since(id, heads, vec![], usize::MAX)
        .await
        .unwrap();
    assert!(not_held.is_empty());
    ops
}

/// Copies the git objects of `id` from one node to another (what a pack transfer
/// does), leaving objects already there alone.
fn copy_objects(from: &Node, to: &Node, id: RepoId) {
    fn walk(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &target);
            } else if !target.exists() {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let hex = id.to_string();
    walk(
        &from.repos.git().path(&hex).join("objects"),
        &to.repos.git().path(&hex).join("objects"),
    );
}

/// Anti-entropy in miniature: `to` asks `from` for what it lacks, page by page,
/// fetching objects when told to, until it holds everything `from` holds.
async fn pull(from: &Node, to: &Node, id: RepoId) {
    for _ in 0..32 {
        let want = from.repos.heads(id).unwrap();
        let have = to.repos.heads(id).unwrap_or_default();
        let (ops, not_held) = from.repos.ops_since(id, want, have, MAX).await.unwrap();
        assert!(not_held.is_empty());
        if ops.is_empty() {
            return;
        }
        let result = to.repos.insert_remote(id, ops).await.unwrap();
        assert!(result.rejected.is_empty(), "{result:?}");
        if !result.needs_objects.is_empty() {
            copy_objects(from, to, id);
        }
    }
    panic!("no convergence");
}

/// Node A's repository with some history: roles, two branches (so objects are
/// needed), an issue with a comment, label and close, a pull request, a settings
/// change.
async fn history(a: &Node, alice: &Keypair) -> RepoId {
    let repos = &a.repos;
    let view = repos
        .create(alice, "alice", "project", "", false, "main")
        .await
        .unwrap();
    let id = view.id;
    let bob = Keypair::generate();
    repos
        .append(
            id,
            alice,
            Payload::SetRole {
                user: bob.public(),
                role: Some(Role::Write),
            },
        )
        .await
        .unwrap();
    let git = a.git(id);
    let c1 = commit(git.gix(), &[], "one");
    let c2 = commit(git.gix(), &[c1], "two");
    let f1 = commit(git.gix(), &[c1], "feature");
    let main = "refs/heads/main";
    for commands in [
        vec![push(main, None, Some(c1))],
        vec![
            push(main, Some(c1), Some(c2)),
            push("refs/heads/feature", None, Some(f1)),
        ],
    ] {
        let done = repos.update_refs(id, &bob, commands, false).await.unwrap();
        assert!(done.iter().all(Result::is_ok), "{done:?}");
    }
    let (_, issue) = repos
        .append_checked(
            id,
            &bob,
            Payload::OpenIssue {
                number: 0,
                title: "bug".into(),
                body: "it breaks".into(),
                labels: vec!["bug".into()],
                assignees: vec![],
            },
            |_| Ok(()),
        )
        .await
        .unwrap();
    for payload in [
        Payload::Comment {
            thread: issue,
            body: "confirmed".into(),
        },
        Payload::EditThread {
            thread: issue,
            edit: ThreadEdit {
                open: Some(false),
                ..ThreadEdit::default()
            },
        },
        Payload::OpenPull {
            number: 0,
            title: "feature".into(),
            body: String::new(),
            head: "feature".into(),
            base: "main".into(),
            draft: false,
        },
        Payload::UpdateRepo {
            description: Some("a project".into()),
            private: None,
            default_branch: None,
        },
    ] {
        repos.append(id, alice, payload).await.unwrap();
    }
    id
}

fn assert_same(a: &Node, b: &Node, id: RepoId) {
    assert_eq!(b.repos.heads(id), a.repos.heads(id));
    assert_eq!(b.repos.state_digest(id), a.repos.state_digest(id));
    assert_eq!(
        b.repos.get(id).unwrap().state.encode(),
        a.repos.get(id).unwrap().state.encode()
    );
    assert_eq!(b.refs(id), a.refs(id));
    crate::repos::rows::assert_rows_match(&b.repos, id);
    crate::repos::rows::assert_rows_match(&a.repos, id);
}

#[tokio::test]
async fn offers_in_any_batches_and_orders_converge() {
    let a = Node::new();
    let alice = Keypair::generate();
    let id = history(&a, &alice).await;
    let ops = all_ops(&a.repos, id).await;
    assert!(ops.len() >= 10, "{}", ops.len());
    let reversed: Vec<SignedOp> = ops.iter().rev().cloned().collect();
    let doubled: Vec<SignedOp> = ops.iter().chain(&ops).cloned().collect();
    let batchings: Vec<(&str, Vec<Vec<SignedOp>>)> = vec![
        ("all at once", vec![ops.clone()]),
        ("all at once, reversed", vec![reversed.clone()]),
        (
            "one at a time",
            ops.iter().map(|op| vec![op.clone()]).collect(),
        ),
        (
            "one at a time, reversed",
            reversed.iter().map(|op| vec![op.clone()]).collect(),
        ),
        (
            "pairs from the end, each twice",
            reversed
                .chunks(2)
                .flat_map(|c| [c.to_vec(), c.to_vec()])
                .collect(),
        ),
        ("duplicated", vec![doubled.clone()]),
        (
            "interleaved thirds",
            vec![
                ops.iter().skip(1).step_by(3).cloned().collect(),
                ops.iter().step_by(3).cloned().collect(),
                ops.iter().skip(2).step_by(3).cloned().collect(),
            ],
        ),
    ];
    for (what, batches) in batchings {
        let b = Node::new();
        let mut results = Vec::new();
        for batch in batches {
            let result = b.repos.insert_remote(id, batch).await.unwrap();
            assert!(result.rejected.is_empty(), "{what}: {result:?}");
            if !result.needs_objects.is_empty() {
                copy_objects(&a, &b, id);
            }
            results.push(result);
        }
        match what {
            // The repository is created with what needs no objects, so that it can
            // receive them; the first push and all that follows it waits.
            "all at once" => {
                assert_eq!(results[0].applied, 2, "{:?}", results[0]);
                assert_eq!(results[0].needs_objects.len(), 3, "{:?}", results[0]);
            }
            "one at a time, reversed" => {
                assert!(results.iter().rev().skip(1).all(|r| !r.missing.is_empty()));
            }
            _ => {}
        }
        // Whatever waited for parents or objects comes with anti-entropy.
        pull(&a, &b, id).await;
        assert_same(&a, &b, id);
        // Idempotent: everything again is all duplicates.
        let again = b.repos.insert_remote(id, ops.clone()).await.unwrap();
        assert_eq!(again.applied, 0, "{what}");
        assert_eq!(again.duplicates, ops.len(), "{what}");
        // The log is the truth: a reopened node folds the same state.
        let b = b.reopen();
        assert_same(&a, &b, id);
        assert_eq!(b.repos.find("alice", "project").unwrap().id, id, "{what}");
        assert_eq!(b.metrics.repositories.get(), 1);
        let open_pulls = b
            .metrics
            .pulls
            .get_or_create(&crate::metrics::StateLabels { state: "open" })
            .get();
        assert_eq!(open_pulls, 1, "{what}");
    }
}

#[tokio::test]
async fn inserts_keep_gauges_and_notify_subscribers() {
    let (a, b) = (Node::new(), Node::new());
    let alice = Keypair::generate();
    let id = history(&a, &alice).await;
    let mut changes = b.repos.subscribe();
    pull(&a, &b, id).await;
    assert_eq!(changes.recv().await.unwrap().repo, id);
    let gauge = |n: &Node, state: &'static str| {
        n.metrics
            .issues
            .get_or_create(&crate::metrics::StateLabels { state })
            .get()
    };
    assert_eq!(gauge(&b, "closed"), 1);
    assert_eq!(gauge(&b, "open"), 0);
    assert_eq!(b.metrics.repositories.get(), 1);
    // An issue opened and closed on A arrives in one batch at B's heads (folded
    // incrementally): counted once, as closed.
    let (_, issue) = a
        .repos
        .append_checked(
            id,
            &alice,
            Payload::OpenIssue {
                number: 0,
                title: "short-lived".into(),
                body: String::new(),
                labels: vec![],
                assignees: vec![],
            },
            |_| Ok(()),
        )
        .await
        .unwrap();
    let close = Payload::EditThread {
        thread: issue,
        edit: ThreadEdit {
            open: Some(false),
            ..ThreadEdit::default()
        },
    };
    a.repos.append(id, &alice, close).await.unwrap();
    pull(&a, &b, id).await;
    assert_eq!(gauge(&b, "closed"), 2);
    assert_eq!(gauge(&b, "open"), 0);
    // A local change notifies too.
    let mut local = a.repos.subscribe();
    a.repos
        .append(
            id,
            &alice,
            Payload::UpdateRepo {
                description: Some("again".into()),
                private: None,
                default_branch: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(local.recv().await.unwrap().repo, id);
}

#[tokio::test]
async fn an_unknown_repository_without_its_creation_reports_what_is_missing() {
    let a = Node::new();
    let alice = Keypair::generate();
    let id = history(&a, &alice).await;
    let ops = all_ops(&a.repos, id).await;
    let create = ops[0].clone();
    assert!(matches!(create.op().payload, Payload::CreateRepo { .. }));
    let b = Node::new();
    let result = b.repos.insert_remote(id, ops[1..].to_vec()).await.unwrap();
    assert_eq!(result.missing, vec![create.id()]);
    assert_eq!(result.applied, 0);
    assert!(b.repos.get(id).is_none());
    assert!(!b.repos.git().exists(&id.to_string()));
    assert!(b.repos.all_heads(None, 10).is_empty());

    // Operations of another repository are the sender's fault.
    let other = RepoId::from_bytes([1; 32]);
    assert!(matches!(
        b.repos.insert_remote(other, ops.clone()).await,
        Err(RepoError::Invalid(_))
    ));
    // So is a root that is not the repository's creation.
    let stray = Operation {
        repo: id,
        parents: vec![],
        author: alice.public(),
        timestamp: Hlc {
            wall_ms: 1,
            counter: 0,
        },
        payload: Payload::DeleteRepo,
    }
    .sign(&alice)
    .unwrap();
    assert!(matches!(
        b.repos.insert_remote(id, vec![stray]).await,
        Err(RepoError::Invalid(_))
    ));
    assert!(b.repos.get(id).is_none());
}

/// An operation signed by `key` at `a`'s heads of `id`.
fn forge(a: &Node, id: RepoId, key: &Keypair, parents: Vec<OpId>, payload: Payload) -> SignedOp {
    let at = a.repos.get(id).unwrap().updated_ms + 1;
    Operation {
        repo: id,
        parents,
        author: key.public(),
        timestamp: Hlc {
            wall_ms: at,
            counter: 0,
        },
        payload,
    }
    .sign(key)
    .unwrap()
}

#[tokio::test]
async fn forged_authority_is_dead_lettered_not_stored() {
    let (a, b) = (Node::new(), Node::new());
    let alice = Keypair::generate();
    let id = history(&a, &alice).await;
    pull(&a, &b, id).await;
    let mallory = Keypair::generate();
    let heads = a.repos.heads(id).unwrap();
    let grab = forge(
        &a,
        id,
        &mallory,
        heads.clone(),
        Payload::SetRole {
            user: mallory.public(),
            role: Some(Role::Admin),
        },
    );
    // Fine on its own (anyone may open an issue on a public repository), but it
    // descends from the forgery.
    let after = forge(
        &a,
        id,
        &mallory,
        vec![grab.id()],
        Payload::OpenIssue {
            number: 0,
            title: "hi".into(),
            body: String::new(),
            labels: vec![],
            assignees: vec![],
        },
    );
    let digest = b.repos.state_digest(id);
    let result = b
        .repos
        .insert_remote(id, vec![after.clone(), grab.clone()])
        .await
        .unwrap();
    assert_eq!(result.applied, 0);
    assert_eq!(result.rejected.len(), 1);
    assert_eq!(result.rejected[0].0, grab.id());
    assert!(matches!(
        result.rejected[0].1,
        Rejection::NotPermitted {
            required: Role::Admin,
            held: None
        }
    ));
    assert_eq!(result.orphaned, vec![after.id()]);
    assert_eq!(b.rejected("not_permitted"), 1);
    assert_eq!(b.rejected("rejected_ancestor"), 1);
    assert_eq!(b.repos.heads(id).unwrap(), heads);
    assert_eq!(b.repos.state_digest(id), digest);

    // It survives a restart, in the log and not in the DAG.
    let b = b.reopen();
    let letters = b.repos.dead_letters(10).unwrap();
    assert_eq!(letters.len(), 2);
    let letter = letters.iter().find(|l| l.id == grab.id()).unwrap();
    assert_eq!(letter.repo, id);
    assert_eq!(letter.reason_code, "not_permitted");
    assert_eq!(letter.op, grab);
    assert!(letter.reason.contains("requires role"), "{}", letter.reason);
    assert!(letters.iter().any(|l| l.reason_code == "rejected_ancestor"));
    let (sent, not_held) = b
        .repos
        .ops_since(id, vec![grab.id()], vec![], MAX)
        .await
        .unwrap();
    assert!(sent.is_empty());
    assert_eq!(not_held, vec![grab.id()]);
    assert_eq!(b.repos.state_digest(id), a.repos.state_digest(id));

    // Replaying refuses them again (the rules have not changed) and keeps them.
    let report = b.repos.replay_dead_letters().await.unwrap();
    assert_eq!(
        report,
        ReplayReport {
            replayed: 2,
            still_rejected: 2,
            removed: 0
        }
    );
    assert_eq!(b.repos.dead_letters(10).unwrap().len(), 2);

    // A letter whose operation is held by now (here: planted) is removed.
    let held = all_ops(&a.repos, id).await.pop().unwrap();
    let planted = Dead::rejected(held, &Rejection::NoRepo)
        .record(id, 1)
        .unwrap();
    b.repos
        .store
        .write("test", move |txn| {
            dead_letters::put(txn, std::slice::from_ref(&planted))
        })
        .await
        .unwrap();
    let report = b.repos.replay_dead_letters().await.unwrap();
    assert_eq!(report.removed, 1);
    assert_eq!(report.still_rejected, 2);
    assert_eq!(b.repos.dead_letters(10).unwrap().len(), 2);
}

#[tokio::test]
async fn the_dead_letter_log_is_bounded() {
    let a = Node::new();
    let alice = Keypair::generate();
    let id = history(&a, &alice).await;
    let op = all_ops(&a.repos, id).await.pop().unwrap();
    let letter = Dead::rejected(op, &Rejection::NoRepo);
    // Distinct keys for one letter: what matters here is the count.
    let many: Vec<(OpId, Vec<u8>)> = (0..dead_letters::MAX_DEAD_LETTERS + 5)
        .map(|i| {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let (_, json) = letter.record(id, i as u64).unwrap();
            (OpId::from_bytes(key), json)
        })
        .collect();
    a.repos
        .store
        .write("test", move |txn| dead_letters::put(txn, &many))
        .await
        .unwrap();
    let read = a.repos.store.read().unwrap();
    let table = read.open_table(REJECTED).unwrap();
    use redb::ReadableTableMetadata as _;
    let len = table.len().unwrap() as usize;
    assert!(
        (dead_letters::MAX_DEAD_LETTERS * 8 / 10..=dead_letters::MAX_DEAD_LETTERS).contains(&len)
    );
    // The oldest went first.
    let mut oldest = [0u8; 32];
    oldest[..8].copy_from_slice(&0u64.to_be_bytes());
    assert!(table.get(oldest.as_slice()).unwrap().is_none());
    let mut newest = [0u8; 32];
    newest[..8].copy_from_slice(&(dead_letters::MAX_DEAD_LETTERS as u64 + 4).to_be_bytes());
    assert!(table.get(newest.as_slice()).unwrap().is_some());
}

#[tokio::test]
async fn a_ref_update_waits_for_its_objects() {
    let (a, b) = (Node::new(), Node::new());
    let alice = Keypair::generate();
    let view = a
        .repos
        .create(&alice, "alice", "r", "", false, "main")
        .await
        .unwrap();
    let id = view.id;
    pull(&a, &b, id).await;
    let c1 = commit(a.git(id).gix(), &[], "one");
    let main = "refs/heads/main";
    a.repos
        .update_refs(id, &alice, vec![push(main, None, Some(c1))], false)
        .await
        .unwrap();
    // And something that descends from the push.
    a.repos
        .append(
            id,
            &alice,
            Payload::UpdateRepo {
                description: Some("pushed".into()),
                private: None,
                default_branch: None,
            },
        )
        .await
        .unwrap();
    let (ops, _) = a
        .repos
        .ops_since(
            id,
            a.repos.heads(id).unwrap(),
            b.repos.heads(id).unwrap(),
            MAX,
        )
        .await
        .unwrap();
    assert_eq!(ops.len(), 2);
    let result = b.repos.insert_remote(id, ops.clone()).await.unwrap();
    assert_eq!(result.needs_objects, vec![c1]);
    assert_eq!(result.applied, 0);
    assert!(b.repos.get(id).unwrap().state.refs.is_empty());
    assert_eq!(b.git(id).ref_target(main).unwrap(), None);

    // The object arrives (the same commit written there), the batch is offered again.
    assert_eq!(commit(b.git(id).gix(), &[], "one"), c1);
    let result = b.repos.insert_remote(id, ops).await.unwrap();
    assert_eq!(result.applied, 2);
    assert!(result.needs_objects.is_empty());
    assert_eq!(b.git(id).ref_target(main).unwrap(), Some(*c1.as_bytes()));
    assert_same(&a, &b, id);
}

#[tokio::test]
async fn concurrent_pushes_converge_and_keep_the_losing_tip() {
    let (a, b) = (Node::new(), Node::new());
    let alice = Keypair::generate();
    let view = a
        .repos
        .create(&alice, "alice", "r", "", false, "main")
        .await
        .unwrap();
    let id = view.id;
    pull(&a, &b, id).await;
    let main = "refs/heads/main";
    let on_a = commit(a.git(id).gix(), &[], "pushed to a");
    let on_b = commit(b.git(id).gix(), &[], "pushed to b");
    for (node, tip) in [(&a, on_a), (&b, on_b)] {
        let done = node
            .repos
            .update_refs(id, &alice, vec![push(main, None, Some(tip))], false)
            .await
            .unwrap();
        assert_eq!(done, vec![Ok(())]);
    }
    pull(&a, &b, id).await;
    pull(&b, &a, id).await;
    assert_same(&a, &b, id);
    let state = a.repos.get(id).unwrap().state.clone();
    let winner = state.refs[main].target;
    assert!(winner == on_a || winner == on_b);
    let loser = if winner == on_a { on_b } else { on_a };
    assert_eq!(state.conflicts.len(), 1);
    for node in [&a, &b] {
        let refs = node.refs(id);
        assert!(refs.contains(&(main.to_owned(), *winner.as_bytes())));
        assert!(
            refs.iter().any(
                |(name, target)| name.starts_with("refs/guts/conflicts/heads/main/")
                    && target == loser.as_bytes()
            ),
            "{refs:?}"
        );
    }
    assert_eq!(a.repos.ref_tips(id), {
        let mut tips = vec![on_a, on_b];
        tips.sort();
        tips
    });
}

#[tokio::test]
async fn an_order_dependent_rejection_is_stored_everywhere() {
    let (a, b) = (Node::new(), Node::new());
    let alice = Keypair::generate();
    let id = a
        .repos
        .create(&alice, "alice", "r", "", false, "main")
        .await
        .unwrap()
        .id;
    let (_, issue) = a
        .repos
        .append_checked(
            id,
            &alice,
            Payload::OpenIssue {
                number: 0,
                title: "t".into(),
                body: String::new(),
                labels: vec![],
                assignees: vec![],
            },
            |_| Ok(()),
        )
        .await
        .unwrap();
    pull(&a, &b, id).await;
    // The owner locks the issue on A; a stranger, who has not seen the lock,
    // comments on B (fine there: the repository is public). Both also open an
    // issue, proposing the same number.
    let lock = Payload::EditThread {
        thread: issue,
        edit: ThreadEdit {
            locked: Some(true),
            ..ThreadEdit::default()
        },
    };
    a.repos.append(id, &alice, lock).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let stranger = Keypair::generate();
    let (_, comment) = b
        .repos
        .append_checked(
            id,
            &stranger,
            Payload::Comment {
                thread: issue,
                body: "hello".into(),
            },
            |_| Ok(()),
        )
        .await
        .unwrap();
    let open = |n: u64| Payload::OpenIssue {
        number: n,
        title: "again".into(),
        body: String::new(),
        labels: vec![],
        assignees: vec![],
    };
    a.repos.append(id, &alice, open(0)).await.unwrap();
    b.repos.append(id, &stranger, open(0)).await.unwrap();
    pull(&a, &b, id).await;
    pull(&b, &a, id).await;
    assert_same(&a, &b, id);
    // The comment came after the lock in the order: refused by the fold on both
    // nodes, yet held by both (its author's node accepted it).
    let state = a.repos.get(id).unwrap().state.clone();
    assert!(matches!(
        state.rejected.get(&comment),
        Some(Rejection::NotPermitted {
            required: Role::Write,
            ..
        })
    ));
    for n in [&a, &b] {
        let (held, not_held) = n
            .repos
            .ops_since(id, vec![comment], vec![], MAX)
            .await
            .unwrap();
        assert!(not_held.is_empty());
        assert_eq!(held.last().map(SignedOp::id), Some(comment));
        assert!(n.repos.dead_letters(10).unwrap().is_empty());
    }
    let mut numbers: Vec<u64> = state.collab.threads.values().map(|t| t.number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, vec![1, 2, 3]);
    let open_issues = |n: &Node| {
        n.metrics
            .issues
            .get_or_create(&crate::metrics::StateLabels { state: "open" })
            .get()
    };
    assert_eq!(open_issues(&a), 3);
    assert_eq!(open_issues(&b), 3);
}

#[tokio::test]
async fn ops_since_sends_the_difference_parent_first_within_max_bytes() {
    let a = Node::new();
    let alice = Keypair::generate();
    let id = history(&a, &alice).await;
    let ops = all_ops(&a.repos, id).await;
    let position: HashMap<OpId, usize> =
        ops.iter().enumerate().map(|(i, op)| (op.id(), i)).collect();
    for op in &ops {
        for parent in &op.op().parents {
            assert!(position[parent] < position[&op.id()]);
        }
    }
    // The asker holds the first half: it gets exactly the rest.
    let half = ops.len() / 2;
    let have = ops[half - 1].id();
    let ancestors = closure(
        &{
            let mut dag = RepoDag::new(id);
            for op in &ops {
                dag.insert(op.clone()).unwrap();
            }
            dag
        },
        [have].iter(),
        &HashSet::new(),
    );
    let unknown = OpId::from_bytes([7; 32]);
    let heads = a.repos.heads(id).unwrap();
    let (sent, not_held) = a
        .repos
        .ops_since(
            id,
            [heads.clone(), vec![unknown]].concat(),
            vec![have, unknown],
            MAX,
        )
        .await
        .unwrap();
    assert_eq!(not_held, vec![unknown]);
    let expected: BTreeSet<OpId> = ops
        .iter()
        .map(SignedOp::id)
        .filter(|id| !ancestors.contains(id))
        .collect();
    assert_eq!(
        sent.iter().map(SignedOp::id).collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(sent.len(), expected.len());
    let sent_at: HashMap<OpId, usize> = sent
        .iter()
        .enumerate()
        .map(|(i, op)| (op.id(), i))
        .collect();
    for op in &sent {
        for parent in &op.op().parents {
            if let Some(p) = sent_at.get(parent) {
                assert!(*p < sent_at[&op.id()]);
            }
        }
    }
    // A byte budget cuts the page before it would be exceeded.
    let budget: usize = sent.iter().take(3).map(|op| op.as_bytes().len()).sum();
    for (max, count) in [(budget, 3), (budget + 1, 3), (budget - 1, 2), (0, 0)] {
        let (page, _) = a
            .repos
            .ops_since(id, heads.clone(), vec![have], max)
            .await
            .unwrap();
        assert_eq!(page.len(), count, "max {max}");
        assert_eq!(page[..], sent[..count]);
    }
    // Everything held: nothing to send.
    let (nothing, _) = a
        .repos
        .ops_since(id, heads.clone(), heads, MAX)
        .await
        .unwrap();
    assert!(nothing.is_empty());
}

#[tokio::test]
async fn concurrent_name_claims_resolve_alike_everywhere() {
    let (a, b) = (Node::new(), Node::new());
    let alice = Keypair::generate();
    let first = a
        .repos
        .create(&alice, "alice", "hello", "", false, "main")
        .await
        .unwrap()
        .id;
    let second = b
        .repos
        .create(&alice, "Alice", "Hello", "", false, "main")
        .await
        .unwrap()
        .id;
    assert_ne!(first, second);
    pull(&a, &b, first).await;
    pull(&b, &a, second).await;
    let at = |n: &Node, id| {
        n.repos
            .get(id)
            .unwrap()
            .state
            .meta
            .clone()
            .unwrap()
            .created_at
    };
    let (winner, loser) = if (at(&a, first), first) < (at(&a, second), second) {
        (first, second)
    } else {
        (second, first)
    };
    let suffix = &loser.to_string()[..8];
    let check = |n: &Node| {
        assert_eq!(n.repos.find("alice", "hello").unwrap().id, winner);
        assert_eq!(
            n.repos
                .find("alice", &format!("hello-{suffix}"))
                .unwrap()
                .id,
            loser
        );
        let served = n.repos.served(loser).unwrap();
        assert_eq!(served.name.to_lowercase(), format!("hello-{suffix}"));
        assert!(served.owner.eq_ignore_ascii_case("alice"));
        assert_eq!(n.repos.served(winner).unwrap().name.to_lowercase(), "hello");
        assert_eq!(n.repos.list().len(), 2);
        assert_eq!(n.metrics.repositories.get(), 2);
        let status = n.repos.replication_status(None, 10);
        assert_eq!(status.len(), 2);
        assert!(status.windows(2).all(|w| w[0].id < w[1].id));
    };
    check(&a);
    check(&b);
    // A local creation cannot take either name.
    for name in ["hello", &format!("HELLO-{suffix}")] {
        assert!(matches!(
            b.repos
                .create(&alice, "alice", name, "", false, "main")
                .await,
            Err(RepoError::NameTaken)
        ));
    }
    let (a, b) = (a.reopen(), b.reopen());
    check(&a);
    check(&b);

    // The winner is deleted on one node; the deletion replicates and the other
    // repository takes the name everywhere.
    a.repos
        .append(winner, &alice, Payload::DeleteRepo)
        .await
        .unwrap();
    pull(&a, &b, winner).await;
    for n in [&a, &b] {
        assert_eq!(n.repos.find("alice", "hello").unwrap().id, loser);
        assert!(n.repos.find("alice", &format!("hello-{suffix}")).is_none());
        assert!(!n.repos.git().exists(&winner.to_string()));
        assert_eq!(n.metrics.repositories.get(), 1);
        // Deleted repositories are still announced: their deletion replicates.
        assert_eq!(n.repos.all_heads(None, 10).len(), 2);
        assert!(n.repos.get(winner).unwrap().state.deleted);
    }
    assert_eq!(a.repos.state_digest(winner), b.repos.state_digest(winner));
    let (a, b) = (a.reopen(), b.reopen());
    for n in [&a, &b] {
        assert_eq!(n.repos.find("alice", "hello").unwrap().id, loser);
    }
    assert_eq!(a.repos.state_digest(winner), b.repos.state_digest(winner));
}

#[tokio::test]
async fn all_heads_pages_by_id() {
    let a = Node::new();
    let alice = Keypair::generate();
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(
            a.repos
                .create(&alice, "alice", name, "", false, "main")
                .await
                .unwrap()
                .id,
        );
    }
    ids.sort();
    let first = a.repos.all_heads(None, 2);
    assert_eq!(
        first.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        ids[..2]
    );
    let rest = a.repos.all_heads(Some(first[1].0), 2);
    assert_eq!(rest.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids[2..]);
    assert_eq!(rest[0].1, a.repos.heads(ids[2]).unwrap());
    assert_eq!(rest[0].1.len(), 1);
}

/// One node of a cluster whose secret is `secret`: storage that binds names by its
/// accounts, as a node runs.
fn bound_node(secret: &[u8]) -> (Node, crate::Accounts) {
    let (node, store) = open_bound(tempfile::tempdir().unwrap(), secret);
    let accounts = crate::Accounts::new(store, Arc::new(crate::Sealer::new(secret)));
    (node, accounts)
}

/// Opens the storage in `dir` binding names by its accounts; also returns the store
/// for the accounts.
fn open_bound(dir: tempfile::TempDir, secret: &[u8]) -> (Node, crate::Store) {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(StorageMetrics::register(&mut registry));
    let (store, writer) = crate::Store::open(dir.path(), metrics.clone()).unwrap();
    let repos = Repositories::open_with(
        store.clone(),
        crate::GitRepos::open(dir.path()).unwrap(),
        crate::NameBinding::Accounts(Arc::new(crate::Sealer::new(secret))),
    )
    .unwrap();
    let node = Node {
        repos,
        writer: Some(writer),
        metrics,
        dir,
    };
    (node, store)
}

/// A root `CreateRepo` signed by `key`, stamped `wall_ms`.
fn creation(key: &Keypair, owner: &str, name: &str, wall_ms: u64) -> SignedOp {
    let at = Hlc {
        wall_ms,
        counter: 0,
    };
    Operation {
        repo: RepoId::derive(&key.public(), owner, name, at),
        parents: vec![],
        author: key.public(),
        timestamp: at,
        payload: Payload::CreateRepo {
            owner: owner.into(),
            name: name.into(),
            description: "EVIL".into(),
            private: false,
            default_branch: "main".into(),
        },
    }
    .sign(key)
    .unwrap()
}

#[tokio::test]
async fn another_clusters_author_never_takes_or_shadows_a_local_name() {
    let (ours, accounts) = bound_node(b"our cluster");
    let alice = accounts.create_user("alice", false).await.unwrap();
    let alice_key = accounts.signing_key(&alice).unwrap();
    let real = ours
        .repos
        .create(&alice_key, "alice", "pub", "", false, "main")
        .await
        .unwrap()
        .id;
    // Another cluster's `alice`, its clock three days back.
    let foreign = Keypair::generate();
    let days_ago = now_ms() - 3 * 24 * 3600 * 1000;
    let (pub_op, squat_op) = (
        creation(&foreign, "alice", "pub", days_ago),
        creation(&foreign, "Alice", "squat", days_ago),
    );
    let (evil, squat) = (pub_op.op().repo, squat_op.op().repo);
    for op in [pub_op, squat_op] {
        let id = op.op().repo;
        ours.repos.insert_remote(id, vec![op]).await.unwrap();
    }
    let namespace = format!("alice--{}", &foreign.public().to_string()[..16]);
    let check = |n: &Node| {
        assert_eq!(n.repos.find("alice", "pub").unwrap().id, real);
        assert!(n.repos.find("alice", "squat").is_none());
        assert_eq!(n.repos.find(&namespace, "pub").unwrap().id, evil);
        assert_eq!(n.repos.find(&namespace, "squat").unwrap().id, squat);
        let served = n.repos.served(evil).unwrap();
        assert_eq!(
            (served.owner.as_str(), served.name.as_str()),
            (namespace.as_str(), "pub")
        );
        assert_eq!(n.repos.served(real).unwrap().owner, "alice");
        let status = n.repos.replication_status(None, 10);
        assert!(
            status
                .iter()
                .any(|s| s.id == squat && s.owner.eq_ignore_ascii_case(&namespace))
        );
    };
    check(&ours);
    // A key that does not hold the login cannot create under it here either.
    assert!(matches!(
        ours.repos
            .create(&foreign, "alice", "other", "", false, "main")
            .await,
        Err(RepoError::NameNotHeld(_))
    ));
    // The names are derived again the same way from the log.
    drop(accounts);
    let ours = ours.reopen_bound(b"our cluster");
    check(&ours);
}

/// An organization's names are held by its own key, which only this cluster's
/// secret derives: another cluster's key for the same org (or a stranger's) is
/// served in its author's namespace, and a non-member cannot create there.
#[tokio::test]
async fn organization_names_are_held_by_the_clusters_organization_key() {
    let (ours, accounts) = bound_node(b"our cluster");
    accounts.create_user("alice", false).await.unwrap();
    accounts.create_org("acme", "alice").await.unwrap();
    let org_key = accounts.org_signing_key("ACME");
    assert_eq!(org_key.public(), accounts.org_signing_key("acme").public());
    let theirs = crate::Sealer::new(b"their cluster").org_keypair("acme");
    assert_ne!(theirs.public(), org_key.public());
    let real = ours
        .repos
        .create(&org_key, "acme", "tools", "", false, "main")
        .await
        .unwrap()
        .id;
    assert_eq!(ours.repos.served(real).unwrap().owner, "acme");
    let foreign = creation(&theirs, "acme", "tools", now_ms() - 3 * 24 * 3600 * 1000);
    let evil = foreign.op().repo;
    ours.repos.insert_remote(evil, vec![foreign]).await.unwrap();
    assert_eq!(ours.repos.find("acme", "tools").unwrap().id, real);
    assert!(ours.repos.served(evil).unwrap().owner.starts_with("acme--"));
    let stranger = accounts.create_user("mallory", false).await.unwrap();
    let stranger = accounts.signing_key(&stranger).unwrap();
    assert!(matches!(
        ours.repos
            .create(&stranger, "acme", "other", "", false, "main")
            .await,
        Err(RepoError::NameNotHeld(_))
    ));
}

#[tokio::test]
async fn a_repository_that_arrives_before_its_account_is_bound_when_the_account_comes() {
    let (a, accounts_a) = bound_node(b"one cluster");
    let (b, accounts_b) = bound_node(b"one cluster");
    let alice = accounts_a.create_user("alice", false).await.unwrap();
    let key = accounts_a.signing_key(&alice).unwrap();
    let id = a
        .repos
        .create(&key, "alice", "early", "", false, "main")
        .await
        .unwrap()
        .id;
    accounts_a.create_org("acme", "alice").await.unwrap();
    let org_repo = a
        .repos
        .create(&key, "acme", "tools", "", false, "main")
        .await
        .unwrap()
        .id;
    pull(&a, &b, id).await;
    pull(&a, &b, org_repo).await;
    assert!(b.repos.find("alice", "early").is_none());
    assert!(b.repos.find("acme", "tools").is_none());
    assert_ne!(b.repos.served(id).unwrap().owner, "alice");
    let (page, _) = accounts_a.export_sealed(None, 1 << 20).unwrap();
    accounts_b.import_sealed(&page).await.unwrap();
    assert!(b.repos.rebind());
    assert_eq!(b.repos.find("alice", "early").unwrap().id, id);
    assert_eq!(b.repos.find("acme", "tools").unwrap().id, org_repo);
    assert!(!b.repos.rebind(), "nothing moves the second time");
    // Removing the creator from the organization does not take the name away.
    accounts_b.create_user("bob", false).await.unwrap();
    accounts_b
        .set_membership("acme", "bob", Some(crate::OrgRole::Admin))
        .await
        .unwrap();
    accounts_b
        .set_membership("acme", "alice", None)
        .await
        .unwrap();
    b.repos.rebind();
    assert_eq!(b.repos.find("acme", "tools").unwrap().id, org_repo);
}

#[tokio::test]
async fn operations_stamped_far_ahead_of_our_clock_wait_until_it_catches_up() {
    let n = Node::new();
    let key = Keypair::generate();
    let op = creation(
        &key,
        "alice",
        "future",
        now_ms() + MAX_CLOCK_DRIFT_MS + 60_000,
    );
    let id = op.op().repo;
    let result = n.repos.insert_remote(id, vec![op]).await.unwrap();
    assert_eq!(result.applied, 0);
    assert!(n.repos.get(id).is_none());
    assert_eq!(n.rejected("ahead_of_clock"), 1);
    let near = creation(&key, "alice", "near", now_ms() + 60_000);
    let id = near.op().repo;
    n.repos.insert_remote(id, vec![near]).await.unwrap();
    assert!(n.repos.find("alice", "near").is_some());
}

fn rename(name: &str) -> Payload {
    Payload::RepoSettings {
        name: Some(name.into()),
        homepage: None,
        has_issues: None,
        archived: None,
    }
}

#[tokio::test]
async fn renames_replicate_and_concurrent_renames_resolve_alike_everywhere() {
    let (a, b) = (Node::new(), Node::new());
    let alice = Keypair::generate();
    let one = a.repos.create(&alice, "alice", "one", "", false, "main");
    let one = one.await.unwrap().id;
    let two = a.repos.create(&alice, "alice", "two", "", false, "main");
    let two = two.await.unwrap().id;
    pull(&a, &b, one).await;
    pull(&a, &b, two).await;

    // Both renamed to the same name, on different nodes, then exchanged.
    a.repos.append(one, &alice, rename("shared")).await.unwrap();
    b.repos.append(two, &alice, rename("Shared")).await.unwrap();
    pull(&a, &b, one).await;
    pull(&b, &a, two).await;
    let named_at = |id| {
        a.repos
            .get(id)
            .unwrap()
            .state
            .meta
            .clone()
            .unwrap()
            .named_at
    };
    let (winner, loser) = if (named_at(one), one) < (named_at(two), two) {
        (one, two)
    } else {
        (two, one)
    };
    let suffix = &loser.to_string()[..8];
    let check = |n: &Node| {
        assert_eq!(n.repos.find("alice", "shared").unwrap().id, winner);
        let suffixed = format!("shared-{suffix}");
        assert_eq!(n.repos.find("alice", &suffixed).unwrap().id, loser);
        // The former names still answer, each for its own repository.
        assert_eq!(n.repos.find("alice", "one").unwrap().id, one);
        assert_eq!(n.repos.find("alice", "TWO").unwrap().id, two);
        assert_eq!(n.repos.holder("alice", "one"), None);
    };
    check(&a);
    check(&b);
    assert_eq!(a.repos.state_digest(one), b.repos.state_digest(one));
    assert_eq!(a.repos.state_digest(two), b.repos.state_digest(two));
    let (a, b) = (a.reopen(), b.reopen());
    check(&a);
    check(&b);

    // A new repository may take a former name, and then answers to it.
    let taken = b.repos.create(&alice, "alice", "one", "", false, "main");
    let taken = taken.await.unwrap().id;
    assert_eq!(b.repos.find("alice", "one").unwrap().id, taken);
    pull(&b, &a, taken).await;
    assert_eq!(a.repos.find("alice", "one").unwrap().id, taken);
}
