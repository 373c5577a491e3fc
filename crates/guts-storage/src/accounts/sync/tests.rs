//! Tests of cluster account replication: digests, pages, the merge rules and lost
//! logins.
//!
//! Nodes here are stores in temporary directories: `a`, `b` (and `c`, `d`) share a
//! cluster secret, `x` has another.

use super::*;
use crate::accounts::{OrgRole, Scope};
use crate::metrics::StorageMetrics;
use crate::seal::Sealer;
use crate::{Store, WriterHandle};

const SECRET: &[u8] = b"cluster one";

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

fn node(secret: &[u8]) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = open_store(dir.path());
    Node {
        accounts: Accounts::new(store, Arc::new(Sealer::new(secret))),
        _writer: writer,
        _dir: dir,
    }
}

fn open_store(dir: &std::path::Path) -> (Store, WriterHandle) {
    let mut registry = prometheus_client::registry::Registry::default();
    Store::open(dir, Arc::new(StorageMetrics::register(&mut registry))).unwrap()
}

/// Every page of `from`, `max_bytes` of plaintext at most each.
fn pages(from: &Accounts, max_bytes: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = from.export_sealed(after.as_deref(), max_bytes).unwrap();
        out.push(page);
        match next {
            Some(next) => {
                assert!(after.as_ref().is_none_or(|a| *a < next), "cursors advance");
                after = Some(next);
            }
            None => return out,
        }
    }
}

async fn import(into: &Accounts, pages: &[Vec<u8>]) -> usize {
    let mut changed = 0;
    for page in pages {
        changed += into.import_sealed(page).await.unwrap();
    }
    changed
}

/// Sends everything `from` holds to `to`; how many records changed there.
async fn sync(from: &Accounts, to: &Accounts) -> usize {
    import(to, &pages(from, 64 * 1024)).await
}

async fn converge(a: &Accounts, b: &Accounts) {
    sync(a, b).await;
    sync(b, a).await;
    assert_eq!(
        a.replication_digest().unwrap(),
        b.replication_digest().unwrap()
    );
}

#[tokio::test]
async fn a_user_and_token_made_on_one_node_work_on_another() {
    let (a, b) = (node(SECRET), node(SECRET));
    assert_eq!(
        a.replication_digest().unwrap(),
        b.replication_digest().unwrap(),
        "two empty nodes agree"
    );
    let alice = a.create_user("Alice", false).await.unwrap();
    let before = a.replication_digest().unwrap();
    let token = a
        .create_token("alice", "laptop", vec![Scope::Repo])
        .await
        .unwrap();
    assert_ne!(
        a.replication_digest().unwrap(),
        before,
        "a write invalidates"
    );
    assert_ne!(
        a.replication_digest().unwrap(),
        b.replication_digest().unwrap()
    );

    assert_eq!(sync(&a, &b).await, 2);
    let (user, record) = b.authenticate(token.token.expose()).unwrap().unwrap();
    assert_eq!(user, alice);
    assert_eq!(record, token.record);
    // B can sign for A's user: the same key.
    let key = b.signing_key(&user).unwrap();
    assert_eq!(key.public().to_string(), alice.public_key);
    assert_eq!(b.user_by_key(&key.public()).unwrap(), Some(alice));
    assert_eq!(b.store.metrics().users.get(), 1);
    assert_eq!(
        a.replication_digest().unwrap(),
        b.replication_digest().unwrap()
    );
    // Idempotent, both ways.
    assert_eq!(sync(&a, &b).await, 0);
    assert_eq!(sync(&b, &a).await, 0);
}

#[tokio::test]
async fn suspension_and_revocation_replicate_and_are_honoured_at_once() {
    let (a, b) = (node(SECRET), node(SECRET));
    a.create_user("bob", false).await.unwrap();
    let t1 = a
        .create_token("bob", "one", vec![Scope::Repo])
        .await
        .unwrap();
    let t2 = a
        .create_token("bob", "two", vec![Scope::Repo])
        .await
        .unwrap();
    sync(&a, &b).await;
    let before_revocation = pages(&a, 64 * 1024);
    // Authenticated on B, so remembered there.
    assert!(b.authenticate(t1.token.expose()).unwrap().is_some());
    assert!(b.authenticate(t2.token.expose()).unwrap().is_some());

    a.revoke_token("bob", t1.record.id).await.unwrap();
    assert_eq!(sync(&a, &b).await, 1);
    assert!(b.authenticate(t1.token.expose()).unwrap().is_none());
    assert!(b.authenticate(t2.token.expose()).unwrap().is_some());
    // An old page cannot bring the token back.
    assert_eq!(import(&b, &before_revocation).await, 0);
    assert!(b.authenticate(t1.token.expose()).unwrap().is_none());
    assert!(b.tokens("bob").unwrap().iter().any(|t| t.revoked));

    a.set_suspended("bob", true).await.unwrap();
    assert_eq!(sync(&a, &b).await, 1);
    assert!(b.authenticate(t2.token.expose()).unwrap().is_none());
    assert!(b.user("bob").unwrap().unwrap().suspended);
    // Unsuspended on B this time: the later change wins on A too.
    b.set_suspended("bob", false).await.unwrap();
    assert_eq!(sync(&b, &a).await, 1);
    assert!(a.authenticate(t2.token.expose()).unwrap().is_some());
    assert!(a.authenticate(t1.token.expose()).unwrap().is_none());
    converge(&a, &b).await;
}

#[tokio::test]
async fn orgs_and_memberships_replicate_with_removals() {
    let (a, b) = (node(SECRET), node(SECRET));
    a.create_user("alice", false).await.unwrap();
    a.create_user("bob", false).await.unwrap();
    a.create_org("Acme", "alice").await.unwrap();
    a.set_membership("acme", "bob", Some(OrgRole::Member))
        .await
        .unwrap();
    sync(&a, &b).await;
    let with_bob = pages(&a, 64 * 1024);
    assert_eq!(b.org("acme").unwrap(), a.org("acme").unwrap());
    assert_eq!(b.members("acme").unwrap(), a.members("acme").unwrap());
    assert_eq!(b.membership("acme", "bob").unwrap(), Some(OrgRole::Member));
    assert_eq!(b.store.metrics().organizations.get(), 1);
    assert_eq!(b.store.metrics().users.get(), 2);
    // Org logins are taken on B too.
    assert!(matches!(
        b.create_user("acme", false).await,
        Err(AccountError::LoginTaken(_))
    ));

    a.set_membership("acme", "bob", None).await.unwrap();
    assert_eq!(sync(&a, &b).await, 1);
    assert_eq!(b.membership("acme", "bob").unwrap(), None);
    assert_eq!(b.members("acme").unwrap().len(), 1);
    // The removal outranks the membership it ended, whatever arrives later.
    assert_eq!(import(&b, &with_bob).await, 0);
    assert_eq!(b.membership("acme", "bob").unwrap(), None);
    // Removing a non-member again writes nothing.
    let digest = b.replication_digest().unwrap();
    b.set_membership("acme", "bob", None).await.unwrap();
    assert_eq!(b.replication_digest().unwrap(), digest);

    // Re-added on B, as admin: the later change wins on A.
    b.set_membership("acme", "bob", Some(OrgRole::Admin))
        .await
        .unwrap();
    sync(&b, &a).await;
    assert_eq!(a.membership("acme", "bob").unwrap(), Some(OrgRole::Admin));
    converge(&a, &b).await;
}

#[tokio::test]
async fn pages_in_any_order_and_repeated_converge() {
    let (a, b, c, d) = (node(SECRET), node(SECRET), node(SECRET), node(SECRET));
    for i in 0..4 {
        a.create_user(&format!("a{i}"), false).await.unwrap();
        b.create_user(&format!("b{i}"), i == 0).await.unwrap();
        a.create_token(&format!("a{i}"), "t", vec![Scope::Repo])
            .await
            .unwrap();
    }
    a.create_org("org-a", "a0").await.unwrap();
    a.set_membership("org-a", "a1", Some(OrgRole::Member))
        .await
        .unwrap();
    b.create_org("org-b", "b0").await.unwrap();
    // Both nodes change records the other knows (after a first exchange).
    sync(&a, &b).await;
    let t = b
        .create_token("a2", "from b", vec![Scope::Admin])
        .await
        .unwrap();
    b.set_suspended("a3", true).await.unwrap();
    a.set_membership("org-a", "a1", None).await.unwrap();
    a.revoke_token("a0", a.tokens("a0").unwrap()[0].id)
        .await
        .unwrap();

    let from_a = pages(&a, 300);
    let from_b = pages(&b, 300);
    assert!(from_a.len() > 3 && from_b.len() > 3, "several pages each");
    // C: everything in order. D: backwards, interleaved, twice.
    import(&c, &from_a).await;
    import(&c, &from_b).await;
    let mut mixed: Vec<_> = from_b.iter().rev().chain(from_a.iter().rev()).collect();
    mixed.sort_by_key(|p| p.len());
    for page in mixed.iter().chain(mixed.iter().rev()) {
        d.import_sealed(page).await.unwrap();
    }
    import(&a, &from_b.iter().rev().cloned().collect::<Vec<_>>()).await;
    import(&b, &from_a).await;
    import(&b, &from_a[..2]).await;

    let digest = a.replication_digest().unwrap();
    for other in [&b, &c, &d] {
        assert_eq!(other.replication_digest().unwrap(), digest);
        assert_eq!(other.users().unwrap(), a.users().unwrap());
        assert_eq!(other.members("org-a").unwrap(), a.members("org-a").unwrap());
    }
    assert!(d.user("a3").unwrap().unwrap().suspended);
    assert!(d.authenticate(t.token.expose()).unwrap().is_some());
    assert_eq!(d.store.metrics().users.get(), 8);
    assert_eq!(d.store.metrics().organizations.get(), 2);
    // And nothing more to exchange.
    assert_eq!(sync(&a, &d).await + sync(&d, &a).await, 0);
}

#[tokio::test]
async fn another_clusters_page_does_not_open_and_changes_nothing() {
    let (a, x) = (node(SECRET), node(b"cluster two"));
    a.create_user("alice", false).await.unwrap();
    x.create_user("mallory", true).await.unwrap();
    let token = x
        .create_token("mallory", "t", vec![Scope::Admin])
        .await
        .unwrap();
    let digest = a.replication_digest().unwrap();

    for page in pages(&x, 64 * 1024) {
        assert!(matches!(
            a.import_sealed(&page).await,
            Err(AccountError::Page(PageError::NotOurs))
        ));
        // Tampered: no longer ours either.
        let mut flipped = page.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            a.import_sealed(&flipped).await,
            Err(AccountError::Page(PageError::NotOurs))
        ));
    }
    for garbage in [
        &b""[..],
        b"\x01",
        b"\x01not a page at all, but long enough to try",
    ] {
        assert!(matches!(
            a.import_sealed(garbage).await,
            Err(AccountError::Page(PageError::NotOurs))
        ));
    }
    assert!(matches!(
        a.import_sealed(b"\x02whatever").await,
        Err(AccountError::Page(PageError::Version(2)))
    ));
    let huge = vec![PAGE_VERSION; MAX_SEALED_PAGE + 1];
    assert!(matches!(
        a.import_sealed(&huge).await,
        Err(AccountError::Page(PageError::TooLarge { .. }))
    ));
    assert_eq!(a.replication_digest().unwrap(), digest);
    assert!(a.user("mallory").unwrap().is_none());
    assert!(a.authenticate(token.token.expose()).unwrap().is_none());
    // A page sealed under our key that is not a list of records.
    let mut odd = vec![PAGE_VERSION];
    odd.extend(a.sealer.seal_page(b"{\"k\":1}", PAGE_FORMAT).unwrap());
    assert!(matches!(
        a.import_sealed(&odd).await,
        Err(AccountError::Page(PageError::Malformed(_)))
    ));
}

#[tokio::test]
async fn bad_records_are_skipped_and_good_ones_kept() {
    let (a, b) = (node(SECRET), node(SECRET));
    let alice = a.create_user("alice", false).await.unwrap();
    let good = encode(&alice).unwrap();
    let good = std::str::from_utf8(&good).unwrap();
    let plain = format!(
        "[{{\"k\":\"u:bob\",\"v\":{good}}},\
              {{\"k\":\"u:alice\",\"v\":{good}}},\
              {{\"k\":\"u:x\",\"v\":[1,2]}},\
              {{\"k\":\"z:what\",\"v\":{{}}}},\
              {{\"v\":{{}}}},\
              7,\
              {{\"k\":\"t:00\",\"v\":{{}}}},\
              {{\"k\":\"m:acme\",\"v\":{{\"login\":\"x\",\"role\":null}}}}]"
    );
    let mut page = vec![PAGE_VERSION];
    page.extend(a.sealer.seal_page(plain.as_bytes(), PAGE_FORMAT).unwrap());
    assert_eq!(b.import_sealed(&page).await.unwrap(), 1);
    assert_eq!(b.users().unwrap(), vec![alice]);
}

#[tokio::test]
async fn small_pages_cover_every_record() {
    let (a, b) = (node(SECRET), node(SECRET));
    for i in 0..5 {
        a.create_user(&format!("user{i}"), false).await.unwrap();
        a.create_token(&format!("user{i}"), "t", vec![Scope::Repo])
            .await
            .unwrap();
    }
    a.create_org("org", "user0").await.unwrap();
    a.set_membership("org", "user1", Some(OrgRole::Member))
        .await
        .unwrap();
    let records = 5 + 5 + 1 + 2;
    // One record a page when a record is over the budget.
    let single = pages(&a, 1);
    assert_eq!(single.len(), records);
    // Otherwise, pages stay under the budget.
    let budget = 700;
    let several = pages(&a, budget);
    assert!(several.len() < records);
    for page in &several {
        assert!(page.len() <= PAGE_OVERHEAD + budget, "{}", page.len());
    }
    assert_eq!(import(&b, &several).await, records);
    assert_eq!(
        a.replication_digest().unwrap(),
        b.replication_digest().unwrap()
    );
    // Cursors from elsewhere (or nowhere) never fail.
    for cursor in ["", "a", "m:", "t:zz", "t:0", "u:user2", "zzz"] {
        a.export_sealed(Some(cursor), 1000).unwrap();
    }
    let (page, next) = a.export_sealed(Some("zzz"), 1000).unwrap();
    assert_eq!((next, b.import_sealed(&page).await.unwrap()), (None, 0));
    let (page, _) = a.export_sealed(Some("u:user3"), 100_000).unwrap();
    let c = node(SECRET);
    assert_eq!(
        c.import_sealed(&page).await.unwrap(),
        1,
        "only user4 follows"
    );
    assert!(c.user("user4").unwrap().is_some());
}

#[tokio::test]
async fn a_concurrent_login_collision_resolves_identically_on_both_nodes() {
    let (a, b) = (node(SECRET), node(SECRET));
    let on_a = a.create_user("carol", false).await.unwrap();
    let on_b = b.create_user("Carol", false).await.unwrap();
    let ta = a
        .create_token("carol", "a", vec![Scope::Repo])
        .await
        .unwrap();
    let tb = b
        .create_token("carol", "b", vec![Scope::Repo])
        .await
        .unwrap();
    converge(&a, &b).await;

    let rank = |u: &UserRecord| (u.created_at, u.public_key.clone());
    let (winner, loser, winning_token, losing_token, losers_node, other) =
        if rank(&on_a) < rank(&on_b) {
            (&on_a, &on_b, &ta, &tb, &b, &a)
        } else {
            (&on_b, &on_a, &tb, &ta, &a, &b)
        };
    for node in [&a, &b] {
        let carol = node.user("carol").unwrap().unwrap();
        assert_eq!(carol.public_key, winner.public_key);
        assert_eq!(
            node.signing_key(&carol).unwrap().public().to_string(),
            winner.public_key
        );
        let (user, _) = node
            .authenticate(winning_token.token.expose())
            .unwrap()
            .unwrap();
        assert_eq!(user.public_key, winner.public_key);
        // The loser's token never serves the winner's account.
        assert!(
            node.authenticate(losing_token.token.expose())
                .unwrap()
                .is_none()
        );
        assert_eq!(node.tokens("carol").unwrap().len(), 1);
        assert!(
            node.user_by_key(&loser.public_key().unwrap())
                .unwrap()
                .is_none()
        );
        assert_eq!(node.store.metrics().users.get(), 1);
    }
    // Kept under its key, with its sealed custodial key, where it was made (and
    // wherever else it arrived before the winner: not replicated further).
    assert_eq!(losers_node.displaced_users().unwrap(), vec![loser.clone()]);
    let elsewhere = other.displaced_users().unwrap();
    assert!(elsewhere.is_empty() || elsewhere == vec![loser.clone()]);
    // The winner is still the winner after more changes on the loser's node.
    converge(&a, &b).await;
    assert_eq!(
        b.user("carol").unwrap().unwrap().public_key,
        winner.public_key
    );
}

#[tokio::test]
async fn a_user_and_an_org_claiming_one_login_resolve_identically() {
    let (a, b) = (node(SECRET), node(SECRET));
    let user = a.create_user("acme", false).await.unwrap();
    b.create_user("dave", false).await.unwrap();
    let org = b.create_org("ACME", "dave").await.unwrap();
    converge(&a, &b).await;
    let user_wins = user.created_at <= org.created_at;
    for node in [&a, &b] {
        assert_eq!(node.user("acme").unwrap().is_some(), user_wins);
        assert_eq!(node.org("acme").unwrap().is_some(), !user_wins);
    }
    let displaced = usize::from(user_wins);
    assert_eq!(a.displaced_users().unwrap().len(), 1 - displaced);
}

/// A page of hand-made records, sealed as a node of `to`'s cluster would.
fn page_of(to: &Accounts, records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<_> = records.iter().map(|(k, v)| page_entry(k, v)).collect();
    let plain = [b"[".as_slice(), &entries.join(&b","[..]), b"]"].concat();
    let mut page = vec![PAGE_VERSION];
    page.extend(to.sealer.seal_page(&plain, PAGE_FORMAT).unwrap());
    page
}

fn user_record(login: &str, created_at: u64, updated_ms: u64) -> (String, Vec<u8>) {
    let public = guts_core::Keypair::generate().public();
    let record = UserRecord {
        login: login.to_string(),
        id: numeric_id(public.as_bytes()),
        public_key: public.to_string(),
        sealed_key: None,
        site_admin: false,
        suspended: false,
        created_at,
        updated_ms,
        password_hash: None,
    };
    (
        format!("u:{}", login.to_ascii_lowercase()),
        encode(&record).unwrap(),
    )
}

fn org_record(login: &str, created_at: u64, updated_ms: u64) -> (String, Vec<u8>) {
    let lower = login.to_ascii_lowercase();
    let record = OrgRecord {
        login: login.to_string(),
        id: org_id(&lower),
        created_at,
        updated_ms,
        hooks: Vec::new(),
    };
    (format!("o:{lower}"), encode(&record).unwrap())
}

/// Imports `records` one page each into a fresh node, in the given order; its
/// digest and what holds `login` (user key or "org").
async fn holder_after(records: &[&(String, Vec<u8>)], login: &str) -> ([u8; 32], String) {
    let n = node(SECRET);
    for record in records {
        n.import_sealed(&page_of(&n, &[(*record).clone()]))
            .await
            .unwrap();
    }
    let holder = match (n.user(login).unwrap(), n.org(login).unwrap()) {
        (Some(user), None) => user.public_key,
        (None, Some(_)) => "org".to_string(),
        other => panic!("{login} held by {other:?}"),
    };
    (n.replication_digest().unwrap(), holder)
}

#[tokio::test]
async fn the_earlier_account_keeps_a_login_whatever_its_rivals_later_versions() {
    let early = user_record("carol", 100, 1);
    // Created later, changed much later: still loses.
    let late = user_record("Carol", 200, 9_999_999);
    let late_key = {
        let r: UserRecord = serde_json::from_slice(&late.1).unwrap();
        r.public_key
    };
    let early_key = {
        let r: UserRecord = serde_json::from_slice(&early.1).unwrap();
        r.public_key
    };
    let org = org_record("carol", 150, 5);
    let same_second_org = org_record("carol", 100, 7);
    let early_org = org_record("CAROL", 50, 1);
    let early_org_v2 = org_record("CAROL", 50, 2);

    let one = holder_after(&[&early, &late], "carol").await;
    assert_eq!(one, holder_after(&[&late, &early], "carol").await);
    assert_eq!(one.1, early_key);
    // A user beats an organization created later or in the same second.
    let orders: [&[&(String, Vec<u8>)]; 3] = [
        &[&late, &org, &same_second_org, &early],
        &[&early, &same_second_org, &org, &late],
        &[&same_second_org, &late, &early, &org],
    ];
    let mut outcomes = Vec::new();
    for order in orders {
        outcomes.push(holder_after(order, "carol").await);
    }
    assert!(outcomes.iter().all(|o| *o == outcomes[0]));
    assert_eq!(outcomes[0].1, early_key);
    // An earlier organization beats them all; its later version wins over its earlier.
    let all = [&late, &early_org, &early, &early_org_v2, &org];
    let forwards = holder_after(&all, "carol").await;
    let backwards: Vec<_> = all.iter().rev().copied().collect();
    assert_eq!(forwards, holder_after(&backwards, "carol").await);
    assert_eq!(forwards.1, "org");
    let n = node(SECRET);
    n.import_sealed(&page_of(&n, &[early_org_v2.clone(), early.clone()]))
        .await
        .unwrap();
    n.import_sealed(&page_of(&n, &[early_org.clone(), late.clone()]))
        .await
        .unwrap();
    assert_eq!(n.org("carol").unwrap().unwrap().updated_ms, 2);
    assert_eq!(n.replication_digest().unwrap(), forwards.0);
    // Both users lost the login; both are kept under their keys.
    let mut displaced: Vec<_> = n
        .displaced_users()
        .unwrap()
        .into_iter()
        .map(|u| u.public_key)
        .collect();
    displaced.sort();
    let mut expected = vec![early_key, late_key];
    expected.sort();
    assert_eq!(displaced, expected);
    assert_eq!(n.store.metrics().users.get(), 0);
    assert_eq!(n.store.metrics().organizations.get(), 1);
}

#[tokio::test]
async fn a_revoked_token_stays_revoked_whatever_the_clocks_say() {
    let (a, b) = (node(SECRET), node(SECRET));
    a.create_user("erin", false).await.unwrap();
    let token = a
        .create_token("erin", "t", vec![Scope::Repo])
        .await
        .unwrap();
    sync(&a, &b).await;
    a.revoke_token("erin", token.record.id).await.unwrap();
    // A live version stamped far in the future, as a node with a fast clock might.
    let mut live = token.record.clone();
    live.updated_ms = u64::MAX / 2;
    let hash = *blake3::hash(token.token.expose().as_bytes()).as_bytes();
    let live = (format!("t:{}", hex::encode(hash)), encode(&live).unwrap());
    assert_eq!(
        a.import_sealed(&page_of(&a, std::slice::from_ref(&live)))
            .await
            .unwrap(),
        0
    );
    assert!(a.authenticate(token.token.expose()).unwrap().is_none());
    b.import_sealed(&page_of(&b, &[live])).await.unwrap();
    assert!(b.authenticate(token.token.expose()).unwrap().is_some());
    converge(&a, &b).await;
    assert!(b.authenticate(token.token.expose()).unwrap().is_none());
}

#[tokio::test]
async fn records_older_than_replication_still_load_and_replicate() {
    let dir = tempfile::tempdir().unwrap();
    let token = format!("{}{}", crate::accounts::TOKEN_PREFIX, "ab".repeat(20));
    let hash = *blake3::hash(token.as_bytes()).as_bytes();
    let old;
    {
        let (store, writer) = open_store(dir.path());
        let accounts = Accounts::new(store.clone(), Arc::new(Sealer::new(SECRET)));
        old = accounts.create_user("Old", false).await.unwrap();
        accounts.create_user("other", false).await.unwrap();
        accounts.create_org("guild", "other").await.unwrap();
        // Rewrite as the previous version stored them: no stamps, no token key, a
        // membership as {"login","role"}.
        let mut user = serde_json::to_value(&old).unwrap();
        user.as_object_mut().unwrap().remove("updated_ms");
        let user = user.to_string();
        let legacy_token = format!(
            "{{\"id\":{},\"login\":\"Old\",\"name\":\"n\",\"scopes\":[\"repo\"],\
                 \"created_at\":1,\"revoked\":false}}",
            numeric_id(&hash)
        );
        store
            .write("legacy", move |txn| {
                txn.open_table(USERS)?.insert("old", user.as_bytes())?;
                txn.open_table(TOKENS)?
                    .insert(hash.as_slice(), legacy_token.as_bytes())?;
                txn.open_table(ORG_MEMBERS)?.insert(
                    "guild/old",
                    br#"{"login":"Old","role":"member"}"#.as_slice(),
                )?;
                Ok(())
            })
            .await
            .unwrap();
        accounts.digest.invalidate();
        assert_eq!(accounts.user("old").unwrap().unwrap().updated_ms, 0);
        assert!(accounts.authenticate(&token).unwrap().is_some());
        assert_eq!(
            accounts.membership("guild", "old").unwrap(),
            Some(OrgRole::Member)
        );
        // Not bound to a key yet: not replicated.
        let b = node(SECRET);
        sync(&accounts, &b).await;
        assert!(b.authenticate(&token).unwrap().is_none());
        drop(accounts);
        writer.join();
    }
    // Reopened: the token is bound to its user's key, and replicates.
    let (store, writer) = open_store(dir.path());
    let accounts = Accounts::new(store, Arc::new(Sealer::new(SECRET)));
    let (user, record) = accounts.authenticate(&token).unwrap().unwrap();
    assert_eq!(user.updated_ms, 0);
    assert_eq!(record.user_key.as_deref(), Some(old.public_key.as_str()));
    let b = node(SECRET);
    sync(&accounts, &b).await;
    assert_eq!(
        b.authenticate(&token).unwrap().unwrap().0.public_key,
        old.public_key
    );
    assert_eq!(b.membership("guild", "old").unwrap(), Some(OrgRole::Member));
    assert_eq!(
        b.replication_digest().unwrap(),
        accounts.replication_digest().unwrap()
    );
    // Binding happens once: opening again changes nothing.
    let digest = accounts.replication_digest().unwrap();
    drop(accounts);
    writer.join();
    let (store, _writer) = open_store(dir.path());
    let again = Accounts::new(store, Arc::new(Sealer::new(SECRET)));
    assert_eq!(again.replication_digest().unwrap(), digest);
}
