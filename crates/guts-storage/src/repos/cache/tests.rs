//! Tests of summaries and the state budget: a reopened node folds nothing, loads what
//! is used and agrees with a fold of the whole log; damaged or missing summaries are
//! rebuilt; a budget too small for one repository keeps only the one in use and
//! breaks nothing; checkpoints serve reads, and a damaged or stale one is replaced.

use guts_core::{Keypair, Payload, RepoDag, ThreadEdit};

use super::super::summary::Summary;
use super::super::{GitAncestry, Repositories};
use crate::schema::{OPS, REPO_OPS, REPO_SUMMARIES};
use crate::testing::open_repos as open;
use guts_core::{OpId, RepoId, SignedOp};
use redb::ReadableTable as _;

/// Opens issues, comments on them and closes every other one, in `repo`.
async fn busy(repos: &Repositories, key: &Keypair, repo: RepoId, issues: usize) {
    for i in 0..issues {
        let view = repos
            .append(
                repo,
                key,
                Payload::OpenIssue {
                    number: 0,
                    title: format!("issue {i}"),
                    body: "x".repeat(100 + i),
                    labels: vec![format!("l{}", i % 3)],
                    assignees: Vec::new(),
                },
            )
            .await
            .unwrap();
        let (thread, _) = view
            .state
            .collab
            .thread_by_number(view.state.collab.next_number() - 1)
            .unwrap();
        repos
            .append(
                repo,
                key,
                Payload::Comment {
                    thread,
                    body: format!("comment on {i}"),
                },
            )
            .await
            .unwrap();
        if i % 2 == 0 {
            repos
                .append(
                    repo,
                    key,
                    Payload::EditThread {
                        thread,
                        edit: ThreadEdit {
                            open: Some(false),
                            ..ThreadEdit::default()
                        },
                    },
                )
                .await
                .unwrap();
        }
    }
}

/// The digest of a fold of every operation stored for `id`, read straight from the
/// tables and verified as a peer's would be: the reference a loaded state must match.
fn replayed_digest(dir: &std::path::Path, id: RepoId) -> [u8; 32] {
    let (repos, w, _m) = open(dir);
    let mut dag = RepoDag::new(id);
    {
        let read = repos.store.read().unwrap();
        let members = read.open_multimap_table(REPO_OPS).unwrap();
        let ops = read.open_table(OPS).unwrap();
        for member in members.get(id.as_bytes().as_slice()).unwrap() {
            let op_id = member.unwrap();
            let bytes = ops.get(op_id.value()).unwrap().unwrap();
            dag.insert(SignedOp::decode(bytes.value()).unwrap())
                .unwrap();
        }
    }
    let ancestry = GitAncestry(repos.git.open_repo(&id.to_string()).ok());
    let digest = guts_core::fold(&dag, &ancestry).digest();
    drop(repos);
    w.join();
    digest
}

fn gauge(metrics: &crate::StorageMetrics, state: &'static str) -> i64 {
    metrics
        .issues
        .get_or_create(&crate::metrics::StateLabels { state })
        .get()
}

#[tokio::test]
async fn a_reopened_node_folds_nothing_until_used_and_agrees_with_a_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Keypair::generate();
    let (ids, digests, heads) = {
        let (repos, w, metrics) = open(dir.path());
        let mut ids = Vec::new();
        for name in ["one", "two", "three"] {
            let view = repos
                .create(&alice, "alice", name, "", false, "main")
                .await
                .unwrap();
            busy(&repos, &alice, view.id, 6).await;
            ids.push(view.id);
        }
        assert_eq!((gauge(&metrics, "open"), gauge(&metrics, "closed")), (9, 9));
        let digests: Vec<[u8; 32]> = ids
            .iter()
            .map(|id| repos.state_digest(*id).unwrap())
            .collect();
        let heads: Vec<Vec<OpId>> = ids.iter().map(|id| repos.heads(*id).unwrap()).collect();
        drop(repos);
        w.join();
        (ids, digests, heads)
    };

    let (repos, w, metrics) = open(dir.path());
    // Nothing loaded, yet names, heads, counts and the clock are all there.
    assert_eq!(repos.cache_bytes(), 0);
    assert_eq!(metrics.cache_misses.get(), 0);
    assert_eq!(repos.live_count(), 3);
    assert_eq!((gauge(&metrics, "open"), gauge(&metrics, "closed")), (9, 9));
    for (id, heads) in ids.iter().zip(&heads) {
        assert_eq!(repos.heads(*id).as_ref(), Some(heads));
    }
    let listed: Vec<String> = repos
        .listings()
        .iter()
        .filter_map(|l| l.header.meta.as_ref().map(|m| m.name.clone()))
        .collect();
    assert_eq!(listed, ["one", "three", "two"]);
    assert_eq!(metrics.cache_misses.get(), 0);

    // First use loads; the state is the full replay's, byte for byte.
    let view = repos.find("alice", "two").unwrap();
    assert_eq!(metrics.cache_misses.get(), 1);
    assert!(repos.cache_bytes() > 0);
    assert_eq!(view.digest(), digests[1]);
    for (id, digest) in ids.iter().zip(&digests) {
        assert_eq!(repos.state_digest(*id), Some(*digest));
    }
    assert_eq!(metrics.cache_misses.get(), 3);
    repos.find("alice", "two").unwrap();
    assert!(metrics.cache_hits.get() >= 1);

    // And it continues: a new issue numbers after the old ones.
    let view = repos
        .append(
            ids[0],
            &alice,
            Payload::OpenIssue {
                number: 0,
                title: "after".into(),
                body: String::new(),
                labels: Vec::new(),
                assignees: Vec::new(),
            },
        )
        .await
        .unwrap();
    assert!(view.state.collab.thread_by_number(7).is_some());
    drop(repos);
    w.join();
    for id in &ids {
        let (repos, w, _m) = open(dir.path());
        let loaded = repos.state_digest(*id).unwrap();
        drop(repos);
        w.join();
        assert_eq!(loaded, replayed_digest(dir.path(), *id));
    }
}

#[tokio::test]
async fn damaged_stale_or_missing_summaries_are_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Keypair::generate();
    let ids = {
        let (repos, w, _m) = open(dir.path());
        let mut ids = Vec::new();
        for name in ["garbage", "stale", "missing", "fine"] {
            let view = repos
                .create(&alice, "alice", name, "", false, "main")
                .await
                .unwrap();
            busy(&repos, &alice, view.id, 2).await;
            ids.push(view.id);
        }
        // Damage three of them behind the node's back.
        let stale = {
            let read = repos.store.read().unwrap();
            let table = read.open_table(REPO_SUMMARIES).unwrap();
            let bytes = table.get(ids[1].as_bytes().as_slice()).unwrap().unwrap();
            let mut summary = Summary::decode(bytes.value()).unwrap();
            summary.version -= 1;
            summary.encode()
        };
        let (g, s, m) = (ids[0], ids[1], ids[2]);
        repos
            .store
            .write("test", move |txn| {
                let mut table = txn.open_table(REPO_SUMMARIES)?;
                table.insert(g.as_bytes().as_slice(), [1u8, 2, 3].as_slice())?;
                table.insert(s.as_bytes().as_slice(), stale.as_slice())?;
                table.remove(m.as_bytes().as_slice())?;
                Ok(())
            })
            .await
            .unwrap();
        drop(repos);
        w.join();
        ids
    };
    let (repos, w, metrics) = open(dir.path());
    // The three were folded at open (and stay loaded); the fine one was not.
    assert!(repos.cache_bytes() > 0);
    assert_eq!(metrics.cache_misses.get(), 0);
    for (id, name) in ids.iter().zip(["garbage", "stale", "missing", "fine"]) {
        assert_eq!(repos.find("alice", name).unwrap().id, *id);
    }
    assert_eq!(
        metrics.cache_misses.get(),
        1,
        "only the fine one loads on use"
    );
    // And their summaries were rewritten, counting every operation.
    let read = repos.store.read().unwrap();
    let table = read.open_table(REPO_SUMMARIES).unwrap();
    let members = read.open_multimap_table(REPO_OPS).unwrap();
    for id in &ids {
        let bytes = table.get(id.as_bytes().as_slice()).unwrap().unwrap();
        let summary = Summary::decode(bytes.value()).unwrap();
        let stored = members.get(id.as_bytes().as_slice()).unwrap().len();
        assert_eq!(summary.version as u64, stored);
        assert_eq!(Some(summary.heads), repos.heads(*id));
    }
    drop((table, members, read, repos));
    w.join();
    for id in &ids {
        let (repos, w, metrics) = open(dir.path());
        assert_eq!(repos.cache_bytes(), 0, "nothing left to rebuild");
        let loaded = repos.state_digest(*id).unwrap();
        assert_eq!(metrics.cache_misses.get(), 1);
        drop(repos);
        w.join();
        assert_eq!(loaded, replayed_digest(dir.path(), *id));
    }
}

#[tokio::test]
async fn a_budget_smaller_than_one_repository_keeps_only_the_one_in_use_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Keypair::generate();
    let (repos, w, metrics) = open(dir.path());
    repos.set_cache_budget(1);
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let view = repos
            .create(&alice, "alice", name, "", false, "main")
            .await
            .unwrap();
        ids.push(view.id);
    }
    // Interleaved writes: every append finds its repository evicted by the last one.
    for round in 0..3 {
        for id in &ids {
            busy(&repos, &alice, *id, 1 + round % 2).await;
        }
    }
    assert!(
        metrics.cache_evictions.get() >= 9,
        "{}",
        metrics.cache_evictions.get()
    );
    assert!(metrics.cache_misses.get() >= 9);
    // Only the repository used last is still in memory.
    assert!(!has_engine(&repos, ids[0]) && !has_engine(&repos, ids[1]));
    assert!(has_engine(&repos, ids[2]));
    assert!(repos.cache_bytes() > 0);
    assert_eq!(metrics.cache_bytes.get() as u64, repos.cache_bytes());
    for (id, name) in ids.iter().zip(["a", "b", "c"]) {
        let view = repos.find("alice", name).unwrap();
        assert_eq!(view.id, *id);
        // 1 + 2 + 1 issues, numbered without a gap or a repeat.
        let numbers: Vec<u64> = view.state.collab.numbers.keys().copied().collect();
        assert_eq!(numbers, [1, 2, 3, 4]);
    }
    // Evicted states wait for their checkpoints, which the next pass writes; then a
    // read decodes one instead of folding the log.
    assert_eq!(
        repos
            .write_checkpoints(crate::CheckpointPass::Final)
            .await
            .unwrap(),
        3
    );
    for id in &ids {
        repos.get(*id).unwrap();
        assert!(!has_engine(&repos, *id));
    }
    let digests: Vec<[u8; 32]> = ids
        .iter()
        .map(|id| repos.state_digest(*id).unwrap())
        .collect();
    drop(repos);
    w.join();
    for (id, digest) in ids.iter().zip(digests) {
        assert_eq!(replayed_digest(dir.path(), *id), digest);
    }
}

/// Whether repository `id` has an engine in memory (a fold of its log was needed).
fn has_engine(repos: &Repositories, id: RepoId) -> bool {
    let entry = repos.entry(id).unwrap();
    let slot = entry.engine.try_lock().unwrap();
    matches!(*slot, Some(super::Loaded::Log(_)))
}

#[tokio::test]
async fn reads_load_checkpoints_and_a_damaged_or_stale_one_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Keypair::generate();
    let ids = {
        let (repos, w, _m) = open(dir.path());
        let mut ids = Vec::new();
        for name in ["kept", "flipped", "stale"] {
            let view = repos
                .create(&alice, "alice", name, "", false, "main")
                .await
                .unwrap();
            busy(&repos, &alice, view.id, 4).await;
            ids.push(view.id);
        }
        assert_eq!(
            repos
                .write_checkpoints(crate::CheckpointPass::Final)
                .await
                .unwrap(),
            3
        );
        // Nothing moved since: nothing to write.
        assert_eq!(
            repos
                .write_checkpoints(crate::CheckpointPass::Final)
                .await
                .unwrap(),
            0
        );
        // One moves on after its checkpoint; another's checkpoint is damaged.
        busy(&repos, &alice, ids[2], 1).await;
        let flipped = ids[1];
        repos
            .store
            .write("test", move |txn| {
                let mut table = txn.open_table(crate::schema::REPO_CHECKPOINTS)?;
                let mut bytes = table
                    .get(flipped.as_bytes().as_slice())?
                    .map(|b| b.value().to_vec())
                    .unwrap_or_default();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x20;
                table.insert(flipped.as_bytes().as_slice(), bytes.as_slice())?;
                Ok(())
            })
            .await
            .unwrap();
        drop(repos);
        w.join();
        ids
    };
    let names = ["kept", "flipped", "stale"];
    let digests = {
        let (repos, w, _m) = open(dir.path());
        let mut digests = Vec::new();
        for (id, name) in ids.iter().zip(names) {
            let view = repos.find("alice", name).unwrap();
            assert_eq!(
                has_engine(&repos, *id),
                name != "kept",
                "{name}: only a sound, current checkpoint spares the fold"
            );
            digests.push(view.digest());
        }
        // The two that were folded get a checkpoint; the sound one needs none.
        assert_eq!(
            repos
                .write_checkpoints(crate::CheckpointPass::Final)
                .await
                .unwrap(),
            2
        );
        drop(repos);
        w.join();
        digests
    };
    for (id, digest) in ids.iter().zip(&digests) {
        assert_eq!(*digest, replayed_digest(dir.path(), *id));
    }
    // Now all three load from their checkpoints, with the same states.
    let (repos, w, _m) = open(dir.path());
    for ((id, name), digest) in ids.iter().zip(names).zip(&digests) {
        let view = repos.find("alice", name).unwrap();
        assert!(!has_engine(&repos, *id), "{name}");
        assert_eq!(view.digest(), *digest, "{name}");
    }
    // A write after a checkpoint load folds onto the state alone and carries on.
    let view = repos
        .append(ids[0], &alice, Payload::DeleteRepo)
        .await
        .unwrap();
    assert!(view.state.deleted);
    assert!(!has_engine(&repos, ids[0]));
    drop(repos);
    w.join();
}

#[tokio::test]
async fn writes_after_a_checkpoint_load_fold_onto_the_state_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = (Keypair::generate(), Keypair::generate());
    let id = {
        let (repos, w, _m) = open(dir.path());
        let id = repos
            .create(&alice, "alice", "r", "", false, "main")
            .await
            .unwrap()
            .id;
        busy(&repos, &alice, id, 4).await;
        repos
            .write_checkpoints(crate::CheckpointPass::Final)
            .await
            .unwrap();
        drop(repos);
        w.join();
        id
    };
    let (digest, numbers) = {
        let (repos, w, m) = open(dir.path());
        let misses = m.cache_misses.get();
        busy(&repos, &alice, id, 3).await;
        // Concurrent appends queue behind one another, each on the state the one
        // before left, durable or not yet.
        let open_issue = |n: usize| {
            repos.append(
                id,
                &alice,
                Payload::OpenIssue {
                    number: 0,
                    title: format!("concurrent {n}"),
                    body: String::new(),
                    labels: Vec::new(),
                    assignees: Vec::new(),
                },
            )
        };
        let (a, b, c) = tokio::join!(open_issue(0), open_issue(1), open_issue(2));
        let mut numbers: Vec<u64> = [a, b, c]
            .into_iter()
            .map(|v| v.unwrap().state.collab.next_number() - 1)
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), 3, "three distinct numbers");
        // One load, of the checkpoint; the log was never folded.
        assert_eq!(m.cache_misses.get() - misses, 1);
        assert!(!has_engine(&repos, id));
        // The rules hold without the log: bob has no role here.
        let before = repos.get(id).unwrap().digest();
        let refused = repos
            .append(
                id,
                &bob,
                Payload::Comment {
                    thread: OpId::from_bytes([7; 32]),
                    body: "no".into(),
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(refused, super::super::RepoError::Rejected(_)),
            "{refused:?}"
        );
        let view = repos.get(id).unwrap();
        assert_eq!(view.digest(), before);
        // The checkpoint and the operations folded after it give this state: no new
        // checkpoint is due, even at shutdown.
        assert_eq!(
            repos
                .write_checkpoints(crate::CheckpointPass::Final)
                .await
                .unwrap(),
            0
        );
        drop(repos);
        w.join();
        (view.digest(), numbers)
    };
    assert_eq!(replayed_digest(dir.path(), id), digest);
    let (repos, w, m) = open(dir.path());
    let view = repos.get(id).unwrap();
    assert_eq!(view.digest(), digest);
    assert!(!has_engine(&repos, id), "the checkpoint, continued");
    assert_eq!(view.state.collab.next_number() - 1, numbers[2]);
    // Beyond what a load may fold after a checkpoint, a new one is due.
    busy(&repos, &alice, id, 30).await;
    assert!(!has_engine(&repos, id));
    assert_eq!(
        repos
            .write_checkpoints(crate::CheckpointPass::Final)
            .await
            .unwrap(),
        1
    );
    // A ref update needs the log: it waits for what is queued and folds it all.
    busy(&repos, &alice, id, 1).await;
    let misses = m.cache_misses.get();
    let view = repos
        .append(
            id,
            &alice,
            Payload::UpdateRef {
                name: "refs/heads/topic".into(),
                old: None,
                new: Some(guts_core::ObjectId::from_bytes([0xab; 20])),
                force: false,
            },
        )
        .await
        .unwrap();
    assert!(has_engine(&repos, id));
    assert_eq!(m.cache_misses.get() - misses, 1);
    assert!(view.state.refs.contains_key("refs/heads/topic"));
    assert_eq!(view.state.collab.next_number() - 1, numbers[2] + 31);
    // Deleted, so that no ref to a missing object is left for git.
    repos.append(id, &alice, Payload::DeleteRepo).await.unwrap();
    drop(repos);
    w.join();
}
