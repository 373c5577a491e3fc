//! Tests of SSH keys: what a pasted key may be (real `ssh-keygen` output), the user and
//! deploy key use cases with their permissions, and who [`Service::ssh_caller`] says a
//! key is.

use guts_storage::Scope;

use super::*;
use crate::Caller;
use crate::tests::{new_repo, user, world};

const RSA_1024: &str = include_str!("fixtures/rsa1024.pub");
const RSA_2048: &str = include_str!("fixtures/rsa2048.pub");
const ED25519: &str = include_str!("fixtures/ed.pub");
const ECDSA_256: &str = include_str!("fixtures/ec256.pub");
const ECDSA_384: &str = include_str!("fixtures/ec384.pub");
const ECDSA_521: &str = include_str!("fixtures/ec521.pub");
const DSA: &str = include_str!("fixtures/dsa.pub");
const CERT: &str = include_str!("fixtures/ec256-cert.pub");

#[test]
fn accepted_keys_lose_their_comment_and_keep_their_blob() {
    for (input, algorithm) in [
        (RSA_2048, "ssh-rsa"),
        (ED25519, "ssh-ed25519"),
        (ECDSA_256, "ecdsa-sha2-nistp256"),
        (ECDSA_384, "ecdsa-sha2-nistp384"),
        (ECDSA_521, "ecdsa-sha2-nistp521"),
    ] {
        let parsed = parse_public_key(input).unwrap();
        let mut words = input.split_whitespace();
        assert_eq!(words.next(), Some(algorithm));
        let base64 = words.next().unwrap();
        assert_eq!(parsed.text, format!("{algorithm} {base64}"), "no comment");
        assert_eq!(
            parsed.blob,
            base64::engine::general_purpose::STANDARD
                .decode(base64)
                .unwrap()
        );
        assert_eq!(
            parsed.fingerprint,
            <[u8; 32]>::from(Sha256::digest(&parsed.blob))
        );
        // Surrounding blanks and a trailing newline change nothing.
        assert_eq!(
            parse_public_key(&format!("\n  {input}\n\n")).unwrap(),
            parsed
        );
    }
    // As `ssh-keygen -lf` prints them.
    let ed = parse_public_key(ED25519).unwrap();
    assert_eq!(
        ssh_fingerprint_text(&ed.blob),
        "SHA256:cx+PTw3qkq+kJnWdiLoQ17T/4Q7MqCbvIGZgxR1f4yI"
    );
    let rsa = parse_public_key(RSA_2048).unwrap();
    assert_eq!(
        ssh_fingerprint_text(&rsa.blob),
        "SHA256:7INSCNNHTx80pTjL6F3H2598R0G8QYMeYv2MaNqj0jY"
    );
}

#[test]
fn refused_keys_say_why() {
    let ed_base64 = ED25519.split_whitespace().nth(1).unwrap();
    let cases: Vec<(String, KeyRefusal)> = vec![
        (RSA_1024.into(), KeyRefusal::RsaTooSmall(1024)),
        (DSA.into(), KeyRefusal::Dsa),
        (CERT.into(), KeyRefusal::Certificate),
        (String::new(), KeyRefusal::Empty),
        (" \n\t".into(), KeyRefusal::Empty),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n".into(),
            KeyRefusal::PrivateKey,
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n".into(),
            KeyRefusal::PrivateKey,
        ),
        (format!("{ED25519}{RSA_2048}"), KeyRefusal::MultipleKeys),
        (
            format!("ssh-ed25519 {ed_base64} ssh-ed25519 {ed_base64}"),
            KeyRefusal::MultipleKeys,
        ),
        ("garbage".into(), KeyRefusal::Malformed),
        ("ssh-ed25519".into(), KeyRefusal::Malformed),
        ("ssh-ed25519 not-base64!!".into(), KeyRefusal::Malformed),
        // The text names one type, the blob holds another.
        (
            format!("ssh-rsa {ed_base64}"),
            KeyRefusal::Malformed,
        ),
        // Truncated blob.
        (
            format!("ssh-ed25519 {}", &ed_base64[..40]),
            KeyRefusal::Malformed,
        ),
        (
            format!("command=\"ls\" {}", ED25519.trim()),
            KeyRefusal::Malformed,
        ),
        (
            format!("ssh-ed25519 {ed_base64} {}", "x".repeat(MAX_SSH_KEY_INPUT_BYTES)),
            KeyRefusal::TooLong,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_public_key(&input), Err(want), "{input:.60}");
    }
    // The message is the user's answer.
    assert!(
        KeyRefusal::RsaTooSmall(1024)
            .to_string()
            .contains("at least 2048 bits")
    );
}

#[tokio::test]
async fn user_keys_are_unique_and_come_back_after_deletion() {
    let w = world().await;
    let s = &w.service;
    let alice = s
        .authenticate(&user(s, "alice", vec![Scope::Repo]).await)
        .unwrap();
    let bob = s
        .authenticate(&user(s, "bob", vec![Scope::Repo]).await)
        .unwrap();
    let noscope = s.authenticate(&user(s, "noscope", vec![]).await).unwrap();

    let key = s
        .add_own_ssh_key(&alice, Some(" laptop "), Some(ED25519))
        .await
        .unwrap();
    assert!(key.active);
    assert_eq!(key.record.title, "laptop");
    let in_use = Err(ServiceError::invalid(
        "PublicKey",
        "key",
        FieldCode::Custom,
        Some("key is already in use".into()),
    ));
    assert_eq!(s.add_own_ssh_key(&alice, None, Some(ED25519)).await, in_use);
    assert_eq!(s.add_own_ssh_key(&bob, None, Some(ED25519)).await, in_use);
    assert!(matches!(
        s.add_own_ssh_key(&alice, None, None).await,
        Err(ServiceError::Invalid { .. })
    ));
    assert!(matches!(
        s.add_own_ssh_key(&alice, None, Some(RSA_1024)).await,
        Err(ServiceError::Invalid { .. })
    ));
    assert!(matches!(
        s.add_own_ssh_key(&noscope, None, Some(ECDSA_256)).await,
        Err(ServiceError::Forbidden(_))
    ));

    assert_eq!(s.own_ssh_keys(&alice).unwrap(), vec![key.clone()]);
    assert_eq!(s.own_ssh_key(&alice, key.record.id).unwrap(), key);
    assert_eq!(
        s.public_ssh_keys("ALICE").unwrap(),
        vec![key.record.clone()]
    );
    assert_eq!(s.public_ssh_keys("nobody"), Err(ServiceError::NotFound));
    // Someone else's key id: not found, to read or to delete.
    assert_eq!(
        s.own_ssh_key(&bob, key.record.id),
        Err(ServiceError::NotFound)
    );
    assert_eq!(
        s.delete_own_ssh_key(&bob, key.record.id).await,
        Err(ServiceError::NotFound)
    );

    let caller = s
        .ssh_caller(&parse_public_key(ED25519).unwrap().blob)
        .unwrap()
        .unwrap();
    assert_eq!(caller.authed.user.login, "alice");
    assert_eq!(caller.key_id, key.record.id);
    assert!(caller.deploy.is_none());
    assert!(caller.authed.allows(Scope::Repo) && !caller.authed.allows(Scope::Admin));
    assert!(caller.fingerprint.starts_with("SHA256:"));

    s.delete_own_ssh_key(&alice, key.record.id).await.unwrap();
    assert_eq!(
        s.delete_own_ssh_key(&alice, key.record.id).await,
        Err(ServiceError::NotFound)
    );
    assert!(s.own_ssh_keys(&alice).unwrap().is_empty());
    assert!(
        s.ssh_caller(&parse_public_key(ED25519).unwrap().blob)
            .unwrap()
            .is_none()
    );
    // Deleted, it may be added again, by anyone.
    let again = s.add_own_ssh_key(&bob, None, Some(ED25519)).await.unwrap();
    assert_ne!(again.record.id, key.record.id);
    let caller = s
        .ssh_caller(&parse_public_key(ED25519).unwrap().blob)
        .unwrap()
        .unwrap();
    assert_eq!(caller.authed.user.login, "bob");

    // A suspended user's keys open nothing.
    s.accounts().set_suspended("bob", true).await.unwrap();
    assert!(
        s.ssh_caller(&parse_public_key(ED25519).unwrap().blob)
            .unwrap()
            .is_none()
    );
    assert!(s.ssh_caller(b"unknown blob").unwrap().is_none());
}

#[tokio::test]
async fn deploy_keys_are_for_repository_admins() {
    let w = world().await;
    let s = &w.service;
    let alice = s
        .authenticate(&user(s, "alice", vec![Scope::Repo]).await)
        .unwrap();
    let pusher = s
        .authenticate(&user(s, "pusher", vec![Scope::Repo]).await)
        .unwrap();
    let view = s
        .create_user_repo(&alice, new_repo("app", true))
        .await
        .unwrap();
    s.set_collaborator(&alice, &view, "pusher", Some("push"))
        .await
        .unwrap();
    let as_alice = s.repo(Caller::User(&alice), "alice", "app").unwrap();
    let as_pusher = s.repo(Caller::User(&pusher), "alice", "app").unwrap();

    assert_eq!(
        s.add_deploy_key(&pusher, &as_pusher, None, Some(ED25519), None)
            .await,
        Err(ServiceError::NotFound)
    );
    assert_eq!(
        s.deploy_keys(&pusher, &as_pusher),
        Err(ServiceError::NotFound)
    );

    let key = s
        .add_deploy_key(&alice, &as_alice, Some("ci"), Some(ED25519), None)
        .await
        .unwrap();
    let KeyOwner::Deploy { read_only, .. } = &key.record.owner else {
        panic!("a deploy key")
    };
    assert!(*read_only, "read-only unless asked");
    let writer = s
        .add_deploy_key(&alice, &as_alice, Some("ci"), Some(ECDSA_384), Some(false))
        .await
        .unwrap();
    // A deploy key's key is as unique as a user's.
    assert!(matches!(
        s.add_own_ssh_key(&alice, None, Some(ED25519)).await,
        Err(ServiceError::Invalid { .. })
    ));
    assert_eq!(s.deploy_keys(&alice, &as_alice).unwrap().len(), 2);
    assert_eq!(s.deploy_key(&alice, &as_alice, key.record.id).unwrap(), key);
    assert_eq!(
        s.deploy_key(&pusher, &as_pusher, key.record.id),
        Err(ServiceError::NotFound)
    );

    let caller = s
        .ssh_caller(&parse_public_key(ECDSA_384).unwrap().blob)
        .unwrap()
        .unwrap();
    assert_eq!(caller.authed.user.login, "alice");
    assert_eq!(
        caller.deploy,
        Some(DeployLimit {
            repo: view.id,
            read_only: false
        })
    );
    assert_eq!(caller.key_id, writer.record.id);

    // Another repository's admin cannot reach these keys by id.
    let other = s
        .create_user_repo(&pusher, new_repo("other", false))
        .await
        .unwrap();
    let other = s.access(Caller::User(&pusher), other);
    assert_eq!(
        s.delete_deploy_key(&pusher, &other, key.record.id).await,
        Err(ServiceError::NotFound)
    );
    s.delete_deploy_key(&alice, &as_alice, key.record.id)
        .await
        .unwrap();
    assert!(
        s.ssh_caller(&parse_public_key(ED25519).unwrap().blob)
            .unwrap()
            .is_none()
    );
    // The adder suspended: the deploy key opens nothing.
    s.accounts().set_suspended("alice", true).await.unwrap();
    assert!(
        s.ssh_caller(&parse_public_key(ECDSA_384).unwrap().blob)
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_deleted_repositorys_deploy_keys_open_nothing_and_are_released() {
    let w = world().await;
    let s = &w.service;
    let alice = s
        .authenticate(&user(s, "alice", vec![Scope::Repo]).await)
        .unwrap();
    let view = s
        .create_user_repo(&alice, new_repo("gone", false))
        .await
        .unwrap();
    let access = s.access(Caller::User(&alice), view.clone());
    s.add_deploy_key(&alice, &access, None, Some(ED25519), None)
        .await
        .unwrap();
    let blob = parse_public_key(ED25519).unwrap().blob;
    assert!(s.ssh_caller(&blob).unwrap().is_some());
    s.administer(&alice, &view, guts_core::Payload::DeleteRepo)
        .await
        .unwrap();
    assert!(s.ssh_caller(&blob).unwrap().is_none());
    // Nobody can reach that key through its repository any more: adding it again
    // releases it instead of answering "in use" forever.
    let key = s
        .add_own_ssh_key(&alice, None, Some(ED25519))
        .await
        .unwrap();
    assert_eq!(s.ssh_caller(&blob).unwrap().unwrap().key_id, key.record.id);
}

proptest::proptest! {
    /// Whatever a user pastes, parsing answers (never panics), and what it accepts is
    /// canonical: parsing the stored text again gives the same key.
    #[test]
    fn any_input_parses_or_is_refused(
        junk in "\\PC{0,300}",
        cut in 0usize..200,
        flip in 0usize..200,
    ) {
        let _ = parse_public_key(&junk);
        for base in [ED25519, RSA_2048, ECDSA_521] {
            let mut bytes = base.as_bytes().to_vec();
            let at = flip % bytes.len();
            bytes[at] ^= 0x01;
            let mutated = String::from_utf8_lossy(&bytes).into_owned();
            if let Ok(parsed) = parse_public_key(&mutated) {
                proptest::prop_assert_eq!(parse_public_key(&parsed.text), Ok(parsed.clone()));
            }
            let _ = parse_public_key(&base[..cut.min(base.len())]);
        }
    }
}
