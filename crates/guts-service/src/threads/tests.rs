//! The issue, pull request, review and merge use cases without a front end: what a
//! reader's issue keeps, the field problems of bad text, why a pull request cannot
//! merge, and a merge refused because its head moved.

use guts_core::{BranchProtection, Payload, RequiredChecks, Role, Verdict};
use guts_storage::{RepoView, Scope};
use std::sync::Arc;

use crate::tests::{new_repo, user, world};
use crate::{
    Authed, Caller, FieldCode, FieldProblem, FileRequest, MergeBlocker, MergeInput, NewIssue,
    NewPull, NewStatus, ReviewInput, Service, ServiceError,
};

/// A repository `alice/r` with a README on `main`, and its owner.
async fn repo_of_alice(s: &Service) -> (Authed, Arc<RepoView>) {
    let alice = s
        .authenticate(&user(s, "alice", vec![Scope::Repo]).await)
        .unwrap();
    let mut new = new_repo("r", false);
    new.auto_init = true;
    let view = s.create_user_repo(&alice, new).await.unwrap();
    (alice, view)
}

/// A user with role `role` in `view` (granted by `owner`).
async fn member(s: &Service, owner: &Authed, view: &RepoView, login: &str, role: Role) -> Authed {
    let who = s
        .authenticate(&user(s, login, vec![Scope::Repo]).await)
        .unwrap();
    let payload = Payload::SetRole {
        user: who.key(),
        role: Some(role),
    };
    s.append(owner, view, payload).await.unwrap();
    who
}

/// Commits `path` on `branch` (created from `main` first if it does not exist) as
/// `who`; the repository afterwards.
async fn commit_on(s: &Service, who: &Authed, branch: &str, path: &str) -> Arc<RepoView> {
    let access = s.repo(Caller::from(who), "alice", "r").unwrap();
    if access.view.state.branch(branch).is_none() {
        let main = access.view.state.branch("main").unwrap().to_string();
        s.create_ref(who, &access, &format!("refs/heads/{branch}"), &main)
            .await
            .unwrap();
    }
    let access = s.repo(Caller::from(who), "alice", "r").unwrap();
    let request = FileRequest {
        path: path.into(),
        branch: Some(branch.into()),
        sha: None,
        content: Some(path.as_bytes().to_vec()),
        message: format!("add {path}"),
        author: None,
        committer: None,
    };
    s.write_file(who, &access, request).await.unwrap();
    s.repo(Caller::from(who), "alice", "r").unwrap().view
}

/// Pull request #`number` of `feature` into `main`, opened by `who`.
async fn open_feature_pull(s: &Service, who: &Authed) -> (Arc<RepoView>, u64) {
    let view = commit_on(s, who, "feature", "a.txt").await;
    let new = NewPull {
        title: "Add a".into(),
        head: "feature".into(),
        base: "main".into(),
        ..NewPull::default()
    };
    let (view, id) = s.open_pull(who, &view, new).await.unwrap();
    let number = view.state.collab.threads.get(&id).unwrap().number;
    (view, number)
}

fn problem(e: ServiceError) -> FieldProblem {
    match e {
        ServiceError::Invalid { mut problems, .. } if problems.len() == 1 => problems.remove(0),
        other => panic!("not one field problem: {other:?}"),
    }
}

#[tokio::test]
async fn a_readers_labels_and_assignees_are_dropped_a_writers_kept() {
    let w = world().await;
    let s = &w.service;
    let (alice, view) = repo_of_alice(s).await;
    let bob = member(s, &alice, &view, "bob", Role::Read).await;
    let label = Payload::SetLabel {
        name: "bug".into(),
        label: Some(guts_core::LabelDef {
            name: "bug".into(),
            color: "ff0000".into(),
            description: String::new(),
        }),
    };
    let view = s.append(&alice, &view, label).await.unwrap().0;
    let new = NewIssue {
        title: "Broken".into(),
        body: Some("It breaks.".into()),
        labels: vec!["bug".into()],
        assignees: vec!["alice".into()],
    };
    let (view, id) = s.open_issue(&bob, &view, new.clone()).await.unwrap();
    let thread = view.state.collab.threads.get(&id).unwrap();
    assert!(thread.labels.is_empty());
    assert!(thread.assignees.is_empty());
    assert_eq!(thread.author, bob.key());

    let (view, id) = s.open_issue(&alice, &view, new).await.unwrap();
    let thread = view.state.collab.threads.get(&id).unwrap();
    assert!(thread.labels.contains("bug"));
    assert!(thread.assignees.contains(&alice.key()));

    // A writer's unknown assignee is a field problem, a reader's is ignored.
    let stranger = NewIssue {
        title: "Who".into(),
        assignees: vec!["nobody".into()],
        ..NewIssue::default()
    };
    let e = s
        .open_issue(&alice, &view, stranger.clone())
        .await
        .unwrap_err();
    assert_eq!(problem(e).field, "assignees");
    assert!(s.open_issue(&bob, &view, stranger).await.is_ok());
}

#[tokio::test]
async fn blank_titles_are_missing_and_long_text_invalid() {
    let w = world().await;
    let s = &w.service;
    let (alice, view) = repo_of_alice(s).await;
    let blank = NewIssue {
        title: "  ".into(),
        ..NewIssue::default()
    };
    let p = problem(s.open_issue(&alice, &view, blank).await.unwrap_err());
    assert_eq!(
        (p.resource.as_ref(), p.field.as_ref(), p.code),
        ("Issue", "title", FieldCode::MissingField)
    );
    let long = NewIssue {
        title: "t".repeat(crate::MAX_TITLE_CHARS + 1),
        ..NewIssue::default()
    };
    let p = problem(s.open_issue(&alice, &view, long).await.unwrap_err());
    assert_eq!((p.field.as_ref(), p.code), ("title", FieldCode::Invalid));
    // Characters, not bytes: the longest title of wide characters is fine.
    assert!(crate::check_text("Issue", Some(&"é".repeat(crate::MAX_TITLE_CHARS)), None).is_ok());
    let p = problem(
        crate::check_text(
            "PullRequest",
            None,
            Some(&"b".repeat(crate::MAX_BODY_CHARS + 1)),
        )
        .unwrap_err(),
    );
    assert_eq!(
        (p.resource.as_ref(), p.field.as_ref()),
        ("PullRequest", "body")
    );

    let (view, issue) = s
        .open_issue(
            &alice,
            &view,
            NewIssue {
                title: "Talk".into(),
                ..NewIssue::default()
            },
        )
        .await
        .unwrap();
    let number = view.state.collab.threads.get(&issue).unwrap().number;
    let p = problem(
        s.comment(&alice, &view, number, " ".into())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (p.field.as_ref(), p.code),
        ("body", FieldCode::MissingField)
    );
    assert_eq!(
        s.comment(&alice, &view, number + 1, "hi".into())
            .await
            .err(),
        Some(ServiceError::NotFound)
    );
    let (view, _) = s.comment(&alice, &view, number, "hi".into()).await.unwrap();
    let (view, _) = s
        .set_thread_open(&alice, &view, number, false)
        .await
        .unwrap();
    assert!(!view.state.collab.threads.get(&issue).unwrap().open);
}

#[tokio::test]
async fn pulls_need_existing_branches_and_reviews_a_body_unless_approving() {
    let w = world().await;
    let s = &w.service;
    let (alice, view) = repo_of_alice(s).await;
    let missing = NewPull {
        title: "Nothing".into(),
        head: "nope".into(),
        base: "main".into(),
        ..NewPull::default()
    };
    let p = problem(s.open_pull(&alice, &view, missing).await.unwrap_err());
    assert_eq!(
        (p.field.as_ref(), p.message.as_deref()),
        ("head", Some("no such branch"))
    );
    let (view, number) = open_feature_pull(s, &alice).await;
    let bob = member(s, &alice, &view, "bob", Role::Write).await;
    let view = s.repo(Caller::from(&bob), "alice", "r").unwrap().view;
    let review = |verdict, body: &str| ReviewInput {
        verdict,
        body: body.into(),
        commit_id: None,
        comments: Vec::new(),
    };
    for verdict in [Verdict::RequestChanges, Verdict::Comment] {
        let p = problem(
            s.submit_review(&bob, &view, number, review(verdict, ""))
                .await
                .unwrap_err(),
        );
        assert_eq!(
            (p.resource.as_ref(), p.field.as_ref(), p.code),
            ("PullRequestReview", "body", FieldCode::MissingField)
        );
    }
    let (view, id) = s
        .submit_review(&bob, &view, number, review(Verdict::Approve, ""))
        .await
        .unwrap();
    assert_eq!(
        view.state.collab.reviews.get(&id).unwrap().verdict,
        Verdict::Approve
    );
}

#[tokio::test]
async fn readiness_lists_missing_approvals_and_failing_checks() {
    let w = world().await;
    let s = &w.service;
    let (alice, _) = repo_of_alice(s).await;
    let (view, number) = open_feature_pull(s, &alice).await;
    assert!(s.merge_readiness(&view, number).unwrap().is_ready());
    let protection = Payload::SetBranchProtection {
        branch: "refs/heads/main".into(),
        protection: Some(BranchProtection {
            required_approvals: 1,
            required_checks: Some(RequiredChecks {
                strict: false,
                contexts: vec!["ci".into()],
            }),
            ..BranchProtection::default()
        }),
    };
    s.append(&alice, &view, protection).await.unwrap();
    let access = s.repo(Caller::from(&alice), "alice", "r").unwrap();
    let head = access.view.state.branch("feature").unwrap().to_string();
    let failed = NewStatus {
        state: "failure".into(),
        context: Some("ci".into()),
        description: None,
        target_url: None,
    };
    let (view, _) = s
        .create_status(&alice, &access, &head, failed)
        .await
        .unwrap();
    let blockers = s.merge_readiness(&view, number).unwrap().blockers;
    assert_eq!(blockers.len(), 2, "{blockers:?}");
    assert_eq!(
        blockers[0],
        MergeBlocker::Approvals {
            required: 1,
            given: 0
        }
    );
    let MergeBlocker::Checks(rejection) = &blockers[1] else {
        panic!("no failing check: {blockers:?}");
    };
    assert_eq!(blockers[1].to_string(), rejection.to_string());
    // A merge attempted now answers the first of them.
    let input = MergeInput {
        method: crate::parse_merge_method(None).unwrap(),
        sha: None,
        commit_title: None,
        commit_message: None,
    };
    assert_eq!(
        s.merge_pull(&alice, &view, number, input).await,
        Err(ServiceError::NotMergeable(
            "At least 1 approving review is required by reviewers with write access.".into()
        ))
    );
    assert_eq!(
        s.merge_readiness(&view, number + 1),
        Err(ServiceError::NotFound)
    );
}

#[tokio::test]
async fn a_merge_of_a_moved_head_is_refused_and_of_the_seen_head_lands() {
    let w = world().await;
    let s = &w.service;
    let (alice, _) = repo_of_alice(s).await;
    let (view, number) = open_feature_pull(s, &alice).await;
    let seen = view.state.branch("feature").unwrap().to_string();
    let view = commit_on(s, &alice, "feature", "b.txt").await;
    let input = |sha: &str| MergeInput {
        method: crate::parse_merge_method(Some("squash")).unwrap(),
        sha: Some(sha.to_string()),
        commit_title: None,
        commit_message: None,
    };
    assert_eq!(
        s.merge_pull(&alice, &view, number, input(&seen)).await,
        Err(ServiceError::Moved(
            "Head branch was modified. Review and try the merge again.".into()
        ))
    );
    // Readers may not merge, whatever the state.
    let bob = member(s, &alice, &view, "bob", Role::Read).await;
    let view = s.repo(Caller::from(&bob), "alice", "r").unwrap().view;
    let head = view.state.branch("feature").unwrap().to_string();
    assert!(matches!(
        s.merge_pull(&bob, &view, number, input(&head)).await,
        Err(ServiceError::Rejected(
            guts_core::Rejection::NotPermitted { .. }
        ))
    ));
    let done = s
        .merge_pull(&alice, &view, number, input(&head))
        .await
        .unwrap();
    let view = s.repo(Caller::from(&alice), "alice", "r").unwrap().view;
    assert_eq!(view.state.branch("main"), Some(done.sha));
    assert_eq!(
        s.merge_readiness(&view, number).unwrap().blockers.first(),
        Some(&MergeBlocker::Merged)
    );
    let p = problem(crate::parse_merge_method(Some("octopus")).unwrap_err());
    assert_eq!(p.field, "merge_method");
}
