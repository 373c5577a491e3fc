//! The permission matrix of the use cases, without HTTP: every kind of caller against
//! read, write and admin actions on a public and a private user repository and a
//! private organization repository.

use std::sync::Arc;

use guts_core::{LabelDef, Payload, Role};
use guts_storage::{Accounts, GitRepos, OrgRole, Repositories, Scope, Sealer, Store};

use crate::{Caller, Denied, NewRepo, Service, ServiceError};

pub(crate) struct World {
    pub(crate) service: Service,
    _dir: tempfile::TempDir,
    _writer: guts_storage::WriterHandle,
}

pub(crate) async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(guts_storage::StorageMetrics::register(&mut registry));
    let (store, writer) = Store::open(dir.path(), metrics).unwrap();
    let sealer = Arc::new(Sealer::new(b"service tests"));
    let repos = Repositories::open(
        store.clone(),
        GitRepos::open(dir.path()).unwrap(),
        sealer.clone(),
    )
    .unwrap();
    let accounts = Accounts::new(store, sealer);
    World {
        service: Service::new(accounts, Arc::new(repos)),
        _dir: dir,
        _writer: writer,
    }
}

/// A user with a token of `scopes`; returns the token's text.
pub(crate) async fn user(s: &Service, login: &str, scopes: Vec<Scope>) -> String {
    s.accounts().create_user(login, false).await.unwrap();
    let token = s.accounts().create_token(login, "t", scopes).await.unwrap();
    token.token.expose().clone()
}

pub(crate) fn new_repo(name: &str, private: bool) -> NewRepo {
    NewRepo {
        name: Some(name.to_string()),
        private,
        ..NewRepo::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Done.
    Ok,
    /// 404: the repository is not visible.
    Hidden,
    /// Refused by the fold for want of a role.
    Refused,
    /// Refused by this layer (a token scope).
    NoScope,
    /// The credentials are no good at all.
    Unauthenticated,
    /// Anonymous: changes need a user.
    NeedsLogin,
}

fn outcome<T>(result: Result<T, ServiceError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(ServiceError::NotFound) => Outcome::Hidden,
        Err(ServiceError::Rejected(guts_core::Rejection::NotPermitted { .. })) => Outcome::Refused,
        Err(ServiceError::Forbidden(Denied::Scope(_))) => Outcome::NoScope,
        Err(ServiceError::BadCredentials) => Outcome::Unauthenticated,
        Err(other) => panic!("unexpected {other:?}"),
    }
}

/// read: find the repository; write: define a label (Write); admin: change the
/// description (Admin). Each action is attempted only when the previous one succeeded
/// (as a client would first find the repository).
async fn try_all(s: &Service, caller: Caller<'_>, repo: &str) -> [Outcome; 3] {
    let (owner, name) = repo.split_once('/').unwrap();
    let found = s.repo(caller, owner, name);
    let read = outcome(found.as_ref().map(|_| ()).map_err(Clone::clone));
    let Ok(access) = found else {
        return [read; 3];
    };
    let Some(who) = caller.user() else {
        return [read, Outcome::NeedsLogin, Outcome::NeedsLogin];
    };
    let label = Payload::SetLabel {
        name: format!("l-{}", who.user.login),
        label: Some(LabelDef {
            name: format!("l-{}", who.user.login),
            color: "ffffff".into(),
            description: String::new(),
        }),
    };
    let write = outcome(s.append(who, &access.view, label).await);
    let describe = Payload::UpdateRepo {
        description: Some(format!("by {}", who.user.login)),
        private: None,
        default_branch: None,
    };
    let admin = outcome(s.administer(who, &access.view, describe).await);
    [read, write, admin]
}

#[tokio::test]
async fn permission_matrix() {
    use Outcome::*;
    let w = world().await;
    let s = &w.service;
    let all = vec![Scope::Repo];
    let alice = user(s, "alice", all.clone()).await;
    let tokens = [
        ("stranger", user(s, "stranger", all.clone()).await),
        ("puller", user(s, "puller", all.clone()).await),
        ("pusher", user(s, "pusher", all.clone()).await),
        ("admin", user(s, "admin", all.clone()).await),
        ("member", user(s, "member", all.clone()).await),
        ("orgadmin", user(s, "orgadmin", all.clone()).await),
        ("noscope", user(s, "noscope", vec![]).await),
        ("suspended", user(s, "suspended", all.clone()).await),
        ("revoked", user(s, "revoked", all.clone()).await),
    ];
    let alice = s.authenticate(&alice).unwrap();
    s.accounts().create_org("acme", "orgadmin").await.unwrap();
    let orgadmin = s.authenticate(&tokens[5].1).unwrap();
    let member = s.authenticate(&tokens[4].1).unwrap();
    let acme = s.org("acme").unwrap();
    let member_user = member.user.clone();
    s.set_membership(&orgadmin, &acme, &member_user, OrgRole::Member)
        .await
        .unwrap();
    let puller = s.accounts().user("puller").unwrap().unwrap();
    // Membership changes are the org admins', never a member's.
    assert_eq!(
        s.set_membership(&member, &acme, &puller, OrgRole::Member)
            .await,
        Err(ServiceError::Forbidden(Denied::NotOrgAdmin))
    );

    for (name, private) in [("pub", false), ("priv", true)] {
        let view = s
            .create_user_repo(&alice, new_repo(name, private))
            .await
            .unwrap();
        for (login, role) in [
            ("puller", Role::Read),
            ("pusher", Role::Write),
            ("admin", Role::Admin),
            ("noscope", Role::Admin),
        ] {
            let key = s
                .accounts()
                .user(login)
                .unwrap()
                .unwrap()
                .public_key()
                .unwrap();
            s.append(
                &alice,
                &view,
                Payload::SetRole {
                    user: key,
                    role: Some(role),
                },
            )
            .await
            .unwrap();
        }
    }
    // A plain member creates the org's repository: the org owns it. Puller joins the
    // org afterwards and reads it through membership.
    let secret = s
        .create_org_repo(&member, &acme, new_repo("secret", true))
        .await
        .unwrap();
    s.set_membership(&orgadmin, &acme, &puller, OrgRole::Member)
        .await
        .unwrap();
    let org_key = s.accounts().org_signing_key("acme").public();
    assert_eq!(secret.state.role(&org_key), Some(Role::Owner));
    // Outsiders and non-members create nothing there.
    let stranger = s.authenticate(&tokens[0].1).unwrap();
    assert_eq!(
        s.create_org_repo(&stranger, &acme, new_repo("x", false))
            .await
            .err(),
        Some(ServiceError::Forbidden(Denied::NotOrgMember))
    );

    // Suspended users and revoked tokens are nobody.
    s.accounts().set_suspended("suspended", true).await.unwrap();
    let revoked = s.authenticate(&tokens[8].1).unwrap();
    s.accounts()
        .revoke_token("revoked", revoked.token.id)
        .await
        .unwrap();

    let callers: Vec<(&str, Result<Option<crate::Authed>, ServiceError>)> =
        std::iter::once(("anonymous", Result::Ok(None)))
            .chain(
                tokens
                    .iter()
                    .map(|(login, token)| (*login, s.authenticate(token).map(Some))),
            )
            .collect();
    // [public: read, write, admin], [private: …], [org private: …]
    let expected: &[(&str, [[Outcome; 3]; 3])] = &[
        (
            "anonymous",
            [[Ok, NeedsLogin, NeedsLogin], [Hidden; 3], [Hidden; 3]],
        ),
        (
            "stranger",
            [[Ok, Refused, Refused], [Hidden; 3], [Hidden; 3]],
        ),
        (
            "puller",
            [
                [Ok, Refused, Refused],
                [Ok, Refused, Refused],
                [Ok, Refused, Refused],
            ],
        ),
        (
            "pusher",
            [[Ok, Ok, Refused], [Ok, Ok, Refused], [Hidden; 3]],
        ),
        ("admin", [[Ok, Ok, Ok], [Ok, Ok, Ok], [Hidden; 3]]),
        (
            "member",
            [[Ok, Refused, Refused], [Hidden; 3], [Ok, Ok, Ok]],
        ),
        (
            "orgadmin",
            [[Ok, Refused, Refused], [Hidden; 3], [Ok, Ok, Ok]],
        ),
        (
            "noscope",
            [[Ok, NoScope, NoScope], [Ok, NoScope, NoScope], [Hidden; 3]],
        ),
        ("suspended", [[Unauthenticated; 3]; 3]),
        ("revoked", [[Unauthenticated; 3]; 3]),
    ];
    for ((login, caller), (name, rows)) in callers.iter().zip(expected) {
        assert_eq!(login, name);
        let caller = match caller {
            Result::Ok(authed) => Caller::from(authed.as_ref()),
            Err(e) => {
                assert_eq!(rows, &[[outcome::<()>(Err(e.clone())); 3]; 3], "{login}");
                continue;
            }
        };
        for (repo, want) in ["alice/pub", "alice/priv", "acme/secret"].iter().zip(rows) {
            let got = try_all(s, caller, repo).await;
            assert_eq!(&got, want, "{login} on {repo}");
        }
    }
}

/// Who may push: the write role and a token with the `repo` scope (what each ref update
/// may change is the fold's decision, tested with the push path in guts-storage).
#[tokio::test]
async fn pushes_need_the_write_role_and_the_repo_scope() {
    let w = world().await;
    let s = &w.service;
    let all = vec![Scope::Repo];
    let alice = s
        .authenticate(&user(s, "alice", all.clone()).await)
        .unwrap();
    let view = s
        .create_user_repo(&alice, new_repo("pub", false))
        .await
        .unwrap();
    let mut callers = Vec::new();
    for (login, role, scopes) in [
        ("stranger", None, all.clone()),
        ("puller", Some(Role::Read), all.clone()),
        ("pusher", Some(Role::Write), all.clone()),
        ("admin", Some(Role::Admin), all.clone()),
        ("noscope", Some(Role::Admin), vec![]),
    ] {
        let token = user(s, login, scopes).await;
        let authed = s.authenticate(&token).unwrap();
        if let Some(role) = role {
            let payload = Payload::SetRole {
                user: authed.key(),
                role: Some(role),
            };
            s.append(&alice, &view, payload).await.unwrap();
        }
        callers.push((login, authed));
    }
    callers.push(("alice", alice));
    for (login, authed) in &callers {
        let access = s.repo(Caller::from(authed), "alice", "pub").unwrap();
        let want = match *login {
            "stranger" | "puller" => Err(ServiceError::Forbidden(Denied::Role(Role::Write))),
            "noscope" => Err(ServiceError::Forbidden(Denied::Scope(Scope::Repo))),
            _ => Ok(()),
        };
        assert_eq!(s.may_push(authed, &access), want, "{login}");
        assert_eq!(s.pusher(authed, &access).map(|_| ()), want, "{login}");
    }
}
