//! Tests of SSH key claims: uniqueness, caps, tombstones and re-adds, lists, and their
//! replication (concurrent claims of one key resolve alike on every node; any order of
//! page exchange converges).

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::metrics::StorageMetrics;
use crate::seal::Sealer;
use crate::{Store, WriterHandle};

struct Node {
    accounts: Accounts,
    _writer: WriterHandle,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Node {
    type Target = Accounts;
    fn deref(&self) -> &Accounts {
        &self.accounts
    }
}

fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let (store, writer) = Store::open(
        dir.path(),
        Arc::new(StorageMetrics::register(&mut registry)),
    )
    .unwrap();
    Node {
        accounts: Accounts::new(store, Arc::new(Sealer::new(b"cluster"))),
        _writer: writer,
        _dir: dir,
    }
}

/// Sends every page of `from` to `to`.
async fn sync(from: &Accounts, to: &Accounts) -> usize {
    let mut after: Option<String> = None;
    let mut changed = 0;
    loop {
        let (page, next) = from.export_sealed(after.as_deref(), 400).unwrap();
        changed += to.import_sealed(&page).await.unwrap();
        match next {
            Some(next) => after = Some(next),
            None => return changed,
        }
    }
}

fn fp(n: u8) -> [u8; 32] {
    [n; 32]
}

fn user_key(user: &UserRecord, n: u8, title: &str) -> NewSshKey {
    NewSshKey {
        fingerprint: fp(n),
        key: format!("ssh-ed25519 KEY{n}"),
        title: title.to_string(),
        owner: KeyOwner::User {
            login: user.login.clone(),
            user_key: user.public_key.clone(),
        },
    }
}

fn deploy_key(repo: RepoId, by: &UserRecord, n: u8) -> NewSshKey {
    NewSshKey {
        fingerprint: fp(n),
        key: format!("ssh-ed25519 KEY{n}"),
        title: "deploy".into(),
        owner: KeyOwner::Deploy {
            repo,
            read_only: true,
            added_by: by.login.clone(),
            added_by_key: by.public_key.clone(),
        },
    }
}

#[tokio::test]
async fn a_key_has_one_live_claim_and_comes_back_after_deletion() {
    let a = node();
    let alice = a.create_user("Alice", false).await.unwrap();
    let bob = a.create_user("bob", false).await.unwrap();
    let repo = RepoId::from_bytes([9; 32]);

    let mut changes = a.changes();
    changes.mark_unchanged();
    let first = a.add_ssh_key(user_key(&alice, 1, "laptop")).await.unwrap();
    // What wakes the cluster's account announcements wakes for keys too.
    assert!(changes.has_changed().unwrap());
    assert!(first.id > 0 && first.id < 1 << 53);
    assert_eq!(first.fingerprint, hex::encode(fp(1)));
    // The same key again: for alice, for bob, as a deploy key.
    for again in [
        user_key(&alice, 1, "again"),
        user_key(&bob, 1, "mine"),
        deploy_key(repo, &bob, 1),
    ] {
        assert!(matches!(
            a.add_ssh_key(again).await,
            Err(AccountError::SshKeyInUse)
        ));
    }
    assert_eq!(
        a.ssh_key_by_fingerprint(&fp(1)).unwrap(),
        Some(first.clone())
    );
    assert_eq!(a.ssh_key_by_fingerprint(&fp(2)).unwrap(), None);
    assert_eq!(a.user_ssh_keys(&alice).unwrap(), vec![first.clone()]);
    assert!(a.user_ssh_keys(&bob).unwrap().is_empty());

    // Bob cannot delete alice's key; alice can, once.
    let bob_lower = "bob".to_string();
    let owned_by_bob = move |o: &KeyOwner| matches!(o, KeyOwner::User { login, .. } if login.eq_ignore_ascii_case(&bob_lower));
    assert!(matches!(
        a.revoke_ssh_key(first.id, owned_by_bob).await,
        Err(AccountError::NoSuchSshKey)
    ));
    changes.mark_unchanged();
    let gone = a.revoke_ssh_key(first.id, |_| true).await.unwrap();
    assert!(changes.has_changed().unwrap());
    assert!(gone.revoked && gone.updated_ms > first.updated_ms);
    assert!(matches!(
        a.revoke_ssh_key(first.id, |_| true).await,
        Err(AccountError::NoSuchSshKey)
    ));
    assert_eq!(a.ssh_key_by_fingerprint(&fp(1)).unwrap(), None);
    assert!(a.user_ssh_keys(&alice).unwrap().is_empty());
    assert!(a.ssh_key(first.id).unwrap().unwrap().revoked);

    // Re-added, as a deploy key this time: a new claim.
    let again = a.add_ssh_key(deploy_key(repo, &bob, 1)).await.unwrap();
    assert_ne!(again.id, first.id);
    assert_eq!(a.deploy_keys(&repo).unwrap(), vec![again.clone()]);
    assert_eq!(a.ssh_key_by_fingerprint(&fp(1)).unwrap(), Some(again));

    // A key for an account that no longer holds the login is refused.
    let mut stale = user_key(&alice, 3, "stale");
    stale.owner = KeyOwner::User {
        login: "alice".into(),
        user_key: bob.public_key.clone(),
    };
    assert!(matches!(
        a.add_ssh_key(stale).await,
        Err(AccountError::NoSuchUser(_))
    ));
}

#[tokio::test]
async fn caps_per_user_and_per_repository() {
    let a = node();
    let spammer = a.create_user("spammer", false).await.unwrap();
    for n in 0..MAX_KEYS_PER_USER {
        let mut key = user_key(&spammer, 0, "k");
        key.fingerprint[..8].copy_from_slice(&(n as u64).to_be_bytes());
        a.add_ssh_key(key).await.unwrap();
    }
    assert!(matches!(
        a.add_ssh_key(user_key(&spammer, 200, "one more")).await,
        Err(AccountError::TooManySshKeys(MAX_KEYS_PER_USER))
    ));
    // Deleting one makes room for one.
    let first = a.user_ssh_keys(&spammer).unwrap()[0].id;
    a.revoke_ssh_key(first, |_| true).await.unwrap();
    a.add_ssh_key(user_key(&spammer, 200, "one more"))
        .await
        .unwrap();

    let repo = RepoId::from_bytes([1; 32]);
    for n in 0..MAX_DEPLOY_KEYS_PER_REPO {
        let mut key = deploy_key(repo, &spammer, 0);
        key.fingerprint[..8].copy_from_slice(&(n as u64 + 1000).to_be_bytes());
        a.add_ssh_key(key).await.unwrap();
    }
    assert!(matches!(
        a.add_ssh_key(deploy_key(repo, &spammer, 201)).await,
        Err(AccountError::TooManySshKeys(MAX_DEPLOY_KEYS_PER_REPO))
    ));
    // Another repository has its own allowance.
    a.add_ssh_key(deploy_key(RepoId::from_bytes([2; 32]), &spammer, 201))
        .await
        .unwrap();
}

#[tokio::test]
async fn concurrent_claims_resolve_to_the_earliest_on_every_node() {
    let (a, b) = (node(), node());
    let alice = a.create_user("alice", false).await.unwrap();
    let bob = a.create_user("bob", false).await.unwrap();
    sync(&a, &b).await;
    let changes = b.changes();
    // Both nodes accept key 7 before they hear of each other.
    let on_a = a.add_ssh_key(user_key(&alice, 7, "a")).await.unwrap();
    let on_b = b.add_ssh_key(user_key(&bob, 7, "b")).await.unwrap();
    sync(&a, &b).await;
    sync(&b, &a).await;
    // An import that changed something wakes whoever watches the accounts.
    assert!(changes.has_changed().unwrap());
    assert_eq!(
        a.replication_digest().unwrap(),
        b.replication_digest().unwrap()
    );
    let winner = if (on_a.created_at, on_a.id) < (on_b.created_at, on_b.id) {
        &on_a
    } else {
        &on_b
    };
    let loser = if winner.id == on_a.id { &on_b } else { &on_a };
    for n in [&a, &b] {
        assert_eq!(
            n.ssh_key_by_fingerprint(&fp(7)).unwrap().as_ref(),
            Some(winner)
        );
        assert!(n.ssh_key_owns(winner).unwrap());
        assert!(!n.ssh_key_owns(loser).unwrap());
        // Both owners still list their claim (the shadowed one to delete it).
        assert_eq!(n.user_ssh_keys(&alice).unwrap(), vec![on_a.clone()]);
        assert_eq!(n.user_ssh_keys(&bob).unwrap(), vec![on_b.clone()]);
    }
    // The owning claim deleted on one node: the other claim owns the key everywhere.
    b.revoke_ssh_key(winner.id, |_| true).await.unwrap();
    sync(&b, &a).await;
    for n in [&a, &b] {
        assert_eq!(
            n.ssh_key_by_fingerprint(&fp(7)).unwrap().as_ref(),
            Some(loser)
        );
    }
}

#[tokio::test]
async fn a_deletion_beats_a_live_version_whatever_the_clocks() {
    let (a, b) = (node(), node());
    let alice = a.create_user("alice", false).await.unwrap();
    let key = a.add_ssh_key(user_key(&alice, 5, "t")).await.unwrap();
    sync(&a, &b).await;
    assert!(b.ssh_key_by_fingerprint(&fp(5)).unwrap().is_some());
    a.revoke_ssh_key(key.id, |_| true).await.unwrap();
    // B edits nothing but its clock runs ahead: the live claim is stamped far later.
    b.store
        .write("skew", move |txn| {
            let mut tables = KeyTables::open(txn)?;
            let mut skewed = key.clone();
            skewed.updated_ms = u64::MAX / 2;
            tables.put(Some(&key), &skewed, &encode(&skewed)?)?;
            Ok(())
        })
        .await
        .unwrap();
    sync(&b, &a).await;
    sync(&a, &b).await;
    for n in [&a, &b] {
        assert_eq!(n.ssh_key_by_fingerprint(&fp(5)).unwrap(), None);
        assert!(n.user_ssh_keys(&alice).unwrap().is_empty());
    }
    assert_eq!(
        a.replication_digest().unwrap(),
        b.replication_digest().unwrap()
    );
}

#[tokio::test]
async fn a_bad_claim_in_a_page_is_skipped() {
    let alice_key = guts_core::Keypair::generate().public().to_string();
    let good = SshKeyRecord {
        id: 5,
        fingerprint: hex::encode([1u8; 32]),
        key: "ssh-ed25519 AAAA".into(),
        title: "t".into(),
        owner: KeyOwner::User {
            login: "alice".into(),
            user_key: alice_key,
        },
        created_at: 1,
        revoked: false,
        updated_ms: 1,
    };
    assert!(check_incoming(&record_key(5), &good).is_ok());
    assert!(check_incoming("5", &good).is_err());
    assert!(check_incoming(&record_key(6), &good).is_err());
    let mut big = good.clone();
    big.id = 1 << 53;
    assert!(check_incoming(&record_key(1 << 53), &big).is_err());
    let mut bad_fp = good.clone();
    bad_fp.fingerprint = "zz".into();
    assert!(check_incoming(&record_key(5), &bad_fp).is_err());
    let mut bad_owner = good.clone();
    bad_owner.owner = KeyOwner::User {
        login: "-nope-".into(),
        user_key: "00".into(),
    };
    assert!(check_incoming(&record_key(5), &bad_owner).is_err());
    let mut long = good;
    long.key = "a".repeat(MAX_KEY_TEXT_BYTES + 1);
    assert!(check_incoming(&record_key(5), &long).is_err());
}

/// One step of a replication scenario over three nodes.
#[derive(Debug, Clone)]
enum Step {
    /// Node, user (0 or 1), key (of a small pool, so claims collide).
    Add(usize, usize, u8),
    /// Node, index into the node's live claims.
    Delete(usize, usize),
    /// From, to.
    Sync(usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize, 0..2usize, 0..4u8).prop_map(|(n, u, k)| Step::Add(n, u, k)),
        (0..3usize, 0..4usize).prop_map(|(n, i)| Step::Delete(n, i)),
        (0..3usize, 0..3usize).prop_map(|(f, t)| Step::Sync(f, t)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Whatever nodes add, delete and exchange, in any order and with repeats, once
    /// every node has heard every other they hold the same claims and the same owner
    /// of every key (merging is commutative, associative and idempotent).
    #[test]
    fn claims_converge_in_any_order(steps in proptest::collection::vec(step(), 1..24)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let nodes = [node(), node(), node()];
            let users = [
                nodes[0].create_user("alice", false).await.unwrap(),
                nodes[0].create_user("bob", false).await.unwrap(),
            ];
            sync(&nodes[0], &nodes[1]).await;
            sync(&nodes[0], &nodes[2]).await;
            for step in steps {
                match step {
                    Step::Add(n, u, k) => {
                        let _ = nodes[n].add_ssh_key(user_key(&users[u], k, "t")).await;
                    }
                    Step::Delete(n, i) => {
                        let live: Vec<_> = users
                            .iter()
                            .flat_map(|u| nodes[n].user_ssh_keys(u).unwrap())
                            .collect();
                        if let Some(key) = live.get(i) {
                            nodes[n].revoke_ssh_key(key.id, |_| true).await.unwrap();
                        }
                    }
                    Step::Sync(f, t) if f != t => {
                        sync(&nodes[f], &nodes[t]).await;
                    }
                    Step::Sync(..) => {}
                }
            }
            // Twice round the ring, so everything reaches everyone.
            for _ in 0..2 {
                for (f, t) in [(0, 1), (1, 2), (2, 0)] {
                    sync(&nodes[f], &nodes[t]).await;
                }
            }
            let digest = nodes[0].replication_digest().unwrap();
            for n in &nodes[1..] {
                assert_eq!(n.replication_digest().unwrap(), digest);
                assert_eq!(sync(&nodes[0], n).await + sync(n, &nodes[0]).await, 0);
            }
            for k in 0..4 {
                let owner = nodes[0].ssh_key_by_fingerprint(&fp(k)).unwrap();
                for n in &nodes[1..] {
                    assert_eq!(n.ssh_key_by_fingerprint(&fp(k)).unwrap(), owner);
                }
            }
            for u in &users {
                let keys = nodes[0].user_ssh_keys(u).unwrap();
                for n in &nodes[1..] {
                    assert_eq!(n.user_ssh_keys(u).unwrap(), keys);
                }
            }
        });
    }
}
