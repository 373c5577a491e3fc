//! The write use cases without HTTP: a contents write's compare-and-swap on the file
//! and on the branch, refs created, moved (fast-forward or forced) and deleted, the
//! push permission and branch protection applied as for a push; and the ref-name rules
//! as properties.

use guts_core::{BranchProtection, Payload, Role};
use guts_storage::Scope;
use proptest::prelude::*;

use super::*;
use crate::tests::{new_repo, user, world};
use crate::{Caller, Denied};

fn put(path: &str, content: &[u8], sha: Option<&Oid>) -> FileRequest {
    FileRequest {
        path: path.into(),
        branch: None,
        sha: sha.map(hex),
        content: Some(content.to_vec()),
        message: format!("write {path}"),
        author: None,
        committer: None,
    }
}

#[tokio::test]
async fn contents_and_refs_go_through_the_push_path() {
    let w = world().await;
    let s = &w.service;
    let alice = s
        .authenticate(&user(s, "alice", vec![Scope::Repo]).await)
        .unwrap();
    let reader = s
        .authenticate(&user(s, "reader", vec![Scope::Repo]).await)
        .unwrap();
    let view = s
        .create_user_repo(&alice, new_repo("proj", false))
        .await
        .unwrap();
    let payload = Payload::SetRole {
        user: reader.key(),
        role: Some(Role::Read),
    };
    s.append(&alice, &view, payload).await.unwrap();
    let access = || s.repo(Caller::from(&alice), "alice", "proj").unwrap();
    let ops = || access().view.version;

    // The first write to an empty repository makes its default branch: one
    // operation, as every ref change below.
    let before = ops();
    let first = s
        .write_file(&alice, &access(), put("README.md", b"hi\n", None))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.branch, "main");
    assert_eq!(ops(), before + 1);
    let blob = first.blob.unwrap();
    let main = |a: &RepoAccess| {
        a.view
            .state
            .refs
            .get("refs/heads/main")
            .map(|r| *r.target.as_bytes())
    };
    assert_eq!(main(&access()), Some(first.commit));

    // Updating: the sha is required and must be the file's.
    let err = s
        .write_file(&alice, &access(), put("README.md", b"two\n", None))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Unprocessable(_)), "{err:?}");
    let err = s
        .write_file(
            &alice,
            &access(),
            put("README.md", b"two\n", Some(&[1; 20])),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
    let second = s
        .write_file(&alice, &access(), put("README.md", b"two\n", Some(&blob)))
        .await
        .unwrap();
    assert!(!second.created);

    // A reader may not write; a token without the repo scope may not either.
    let as_reader = s.repo(Caller::from(&reader), "alice", "proj").unwrap();
    let err = s
        .write_file(&reader, &as_reader, put("x", b"x", None))
        .await
        .unwrap_err();
    assert_eq!(err, ServiceError::Forbidden(Denied::Role(Role::Write)));
    let err = s
        .create_blob(&reader, &as_reader, b"x".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err, ServiceError::Forbidden(Denied::Role(Role::Write)));

    // Refs: create, fast-forward, non-fast-forward refused unless forced, delete.
    let before = ops();
    s.create_blob(&alice, &access(), b"loose".to_vec())
        .await
        .unwrap();
    assert_eq!(ops(), before, "an object write signs nothing");
    let first_hex = hex(&first.commit);
    let second_hex = hex(&second.commit);
    s.create_ref(&alice, &access(), "refs/heads/dev", &first_hex)
        .await
        .unwrap();
    let err = s
        .create_ref(&alice, &access(), "refs/heads/dev", &first_hex)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ServiceError::Unprocessable("Reference already exists".into())
    );
    for bad in [
        "refs/heads/a..b",
        "refs/x",
        "heads/x",
        "refs/guts/x/y",
        "refs/heads/x.lock",
    ] {
        let err = s
            .create_ref(&alice, &access(), bad, &first_hex)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ServiceError::Invalid { .. }),
            "{bad}: {err:?}"
        );
    }
    let plus = "+f".repeat(20);
    let err = s
        .create_ref(&alice, &access(), "refs/heads/plus", &plus)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Invalid { .. }), "{err:?}");
    let err = s
        .create_ref(&alice, &access(), "refs/heads/ghost", &"0".repeat(40))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ServiceError::Unprocessable("Object does not exist".into())
    );
    let before = ops();
    s.update_ref(&alice, &access(), "heads/dev", &second_hex, false)
        .await
        .unwrap();
    assert_eq!(ops(), before + 1);
    let err = s
        .update_ref(&alice, &access(), "heads/dev", &first_hex, false)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ServiceError::Unprocessable("Update is not a fast forward".into())
    );
    s.update_ref(&alice, &access(), "heads/dev", &first_hex, true)
        .await
        .unwrap();
    let before = ops();
    s.delete_ref(&alice, &access(), "heads/dev").await.unwrap();
    assert_eq!(ops(), before + 1);
    let err = s
        .delete_ref(&alice, &access(), "heads/dev")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ServiceError::Unprocessable("Reference does not exist".into())
    );

    // A branch that requires reviews refuses a direct write, as it refuses a push;
    // one that refuses force-pushes refuses a forced ref update.
    let protect = Payload::SetBranchProtection {
        branch: "refs/heads/main".into(),
        protection: Some(BranchProtection {
            no_force_push: true,
            no_deletion: true,
            required_approvals: 1,
            dismiss_stale_reviews: false,
            required_checks: None,
        }),
    };
    s.administer(&alice, &access().view, protect).await.unwrap();
    let tip = second.blob.unwrap();
    let err = s
        .write_file(&alice, &access(), put("README.md", b"three\n", Some(&tip)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ServiceError::Conflict(m) if m.contains("pull request")),
        "{err:?}"
    );
    let err = s
        .update_ref(&alice, &access(), "heads/main", &first_hex, true)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ServiceError::Unprocessable(m) if m.starts_with("Protected branch")),
        "{err:?}"
    );
    let err = s
        .delete_ref(&alice, &access(), "heads/main")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ServiceError::Unprocessable(m) if m.starts_with("Protected branch")),
        "{err:?}"
    );
    assert_eq!(main(&access()), Some(second.commit));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any string is answered without a panic, and what is accepted is a valid ref of
    /// at least three components outside `refs/guts/`.
    #[test]
    fn any_ref_name_is_answered(name in any::<String>()) {
        if check_new_ref_name(&name).is_ok() {
            prop_assert!(validate_ref_name(&name).is_ok());
            prop_assert!(name.starts_with("refs/") && name.matches('/').count() >= 2);
            prop_assert!(!name.starts_with("refs/guts/"));
        }
        if let Some(full) = ref_from_path(&name) {
            prop_assert!(check_new_ref_name(&full).is_ok());
        }
    }

    /// Each dangerous spelling anywhere in a ref name refuses it.
    #[test]
    fn dangerous_ref_names_are_refused(
        prefix in "[a-z]{1,8}(/[a-z]{1,8}){0,2}",
        bad in prop_oneof![
            Just("..".to_string()),
            Just("@{".to_string()),
            Just("//".to_string()),
            "[ ~^:?*\\[\\\\]",
            "[\u{0}-\u{1f}\u{7f}]",
            Just("/.hidden".to_string()),
            Just(".lock/x".to_string()),
        ],
        suffix in "[a-z]{1,8}",
    ) {
        let name = format!("refs/heads/{prefix}{bad}{suffix}");
        prop_assert!(check_new_ref_name(&name).is_err(), "{name:?}");
        let short = format!("heads/{prefix}{bad}{suffix}");
        prop_assert!(ref_from_path(&short).is_none(), "{short:?}");
        for end in [".lock", "/", "."] {
            let name = format!("refs/heads/{prefix}{end}");
            prop_assert!(check_new_ref_name(&name).is_err(), "{name:?}");
        }
        let reserved = format!("refs/guts/{prefix}/{suffix}");
        prop_assert!(check_new_ref_name(&reserved).is_err(), "{reserved:?}");
    }
}
