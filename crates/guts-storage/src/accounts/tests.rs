//! Tests of accounts: users, organizations and memberships in one login namespace,
//! tokens and custodial keys.

use super::*;
use crate::metrics::StorageMetrics;

async fn accounts(dir: &std::path::Path, secret: &[u8]) -> (Accounts, crate::WriterHandle) {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(StorageMetrics::register(&mut registry));
    let (store, writer) = Store::open(dir, metrics).unwrap();
    (Accounts::new(store, Arc::new(Sealer::new(secret))), writer)
}

#[tokio::test]
async fn users_tokens_and_custody() {
    let dir = tempfile::tempdir().unwrap();
    let (accounts, _w) = accounts(dir.path(), b"secret").await;
    let alice = accounts.create_user("Alice", false).await.unwrap();
    assert!(matches!(
        accounts.create_user("alice", false).await,
        Err(AccountError::LoginTaken(_))
    ));
    assert!(matches!(
        accounts.create_user("-bad-", false).await,
        Err(AccountError::InvalidLogin(_))
    ));
    assert_eq!(accounts.user("ALICE").unwrap().unwrap(), alice);
    let key = accounts.signing_key(&alice).unwrap();
    assert_eq!(key.public().to_string(), alice.public_key);
    assert_eq!(
        accounts.user_by_key(&key.public()).unwrap().unwrap().login,
        "Alice"
    );

    let new = accounts
        .create_token("alice", "laptop", vec![Scope::Repo])
        .await
        .unwrap();
    let text = new.token.expose().clone();
    assert!(text.starts_with(TOKEN_PREFIX));
    let (user, token) = accounts.authenticate(&text).unwrap().unwrap();
    assert_eq!(user.login, "Alice");
    assert_eq!(token.scopes, vec![Scope::Repo]);
    assert!(accounts.authenticate("guts_nope").unwrap().is_none());
    assert!(
        accounts
            .authenticate(&text[..text.len() - 1])
            .unwrap()
            .is_none()
    );

    // The token's text is nowhere on disk.
    drop(accounts);
    let raw = std::fs::read(dir.path().join(crate::db::DB_FILE)).unwrap();
    assert!(!raw.windows(text.len()).any(|w| w == text.as_bytes()));
}

#[tokio::test]
async fn revocation_suspension_and_wrong_cluster_secret() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (accounts, writer) = accounts(dir.path(), b"secret").await;
        accounts.create_user("bob", true).await.unwrap();
        let t1 = accounts
            .create_token("bob", "a", vec![Scope::Admin])
            .await
            .unwrap();
        let t2 = accounts
            .create_token("bob", "b", vec![Scope::Repo])
            .await
            .unwrap();
        // Authenticated once (and so remembered), then revoked: refused at once.
        assert!(accounts.authenticate(t1.token.expose()).unwrap().is_some());
        accounts.revoke_token("bob", t1.record.id).await.unwrap();
        assert!(accounts.authenticate(t1.token.expose()).unwrap().is_none());
        assert!(accounts.authenticate(t2.token.expose()).unwrap().is_some());
        assert!(matches!(
            accounts.revoke_token("bob", 42).await,
            Err(AccountError::NoSuchToken)
        ));
        accounts.set_suspended("bob", true).await.unwrap();
        assert!(accounts.authenticate(t2.token.expose()).unwrap().is_none());
        assert_eq!(accounts.tokens("bob").unwrap().len(), 2);
        drop(accounts);
        writer.join();
    }
    // Same data, different cluster secret: the user exists but cannot be signed for.
    let (other, _w) = accounts(dir.path(), b"another secret").await;
    let bob = other.user("bob").unwrap().unwrap();
    assert!(matches!(
        other.signing_key(&bob),
        Err(AccountError::Seal(SealError::WrongSecret))
    ));
}

#[tokio::test]
async fn orgs_share_the_login_namespace_and_keep_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let (accounts, _w) = accounts(dir.path(), b"secret").await;
    accounts.create_user("alice", false).await.unwrap();
    accounts.create_user("bob", false).await.unwrap();
    assert!(matches!(
        accounts.create_org("Alice", "alice").await,
        Err(AccountError::LoginTaken(_))
    ));
    assert!(matches!(
        accounts.create_org("acme", "nobody").await,
        Err(AccountError::NoSuchUser(_))
    ));
    let org = accounts.create_org("Acme", "alice").await.unwrap();
    assert_eq!(org.login, "Acme");
    assert!(matches!(
        accounts.create_user("ACME", false).await,
        Err(AccountError::LoginTaken(_))
    ));
    assert_eq!(accounts.org("acme").unwrap(), Some(org));
    assert_eq!(
        accounts.membership("acme", "ALICE").unwrap(),
        Some(OrgRole::Admin)
    );
    accounts
        .set_membership("acme", "bob", Some(OrgRole::Member))
        .await
        .unwrap();
    let members = accounts.members("acme").unwrap();
    let logins: Vec<_> = members.iter().map(|m| m.login.as_str()).collect();
    assert_eq!(logins, ["alice", "bob"]);
    assert!(matches!(
        accounts.set_membership("acme", "alice", None).await,
        Err(AccountError::LastOrgAdmin)
    ));
    accounts.set_membership("acme", "bob", None).await.unwrap();
    assert_eq!(accounts.membership("acme", "bob").unwrap(), None);
    assert!(matches!(
        accounts.set_membership("nope", "bob", None).await,
        Err(AccountError::NoSuchOrg(_))
    ));
    assert_eq!(accounts.orgs().unwrap().len(), 1);
    assert_eq!(accounts.store.metrics().organizations.get(), 1);
}
