//! Tests of the fold, kept out of `fold.rs` so that it holds only the rules: scenarios
//! per operation kind, and the property tests that state is a function of the operation
//! set (their proptest seeds are in `proptest-regressions/fold/tests.txt`).

use super::*;
use crate::arbitrary::{CommitGraph, keypair, protection, role};
use crate::collab::{
    Assignment, LabelDef, MergeMethod, ReviewComment, TextRef, ThreadEdit, Verdict,
};
use crate::identity::Keypair;
use crate::op::{BranchProtection, Operation};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

const MAIN: &str = "refs/heads/main";

fn commit(n: u8) -> ObjectId {
    CommitGraph::commit(n)
}

fn at(wall_ms: u64) -> Hlc {
    Hlc {
        wall_ms,
        counter: 0,
    }
}

/// A repository created by `keypair(1)` ("alice/repo"), with a commit graph:
///
/// ```text
/// 1 -- 2 -- 4
///  \    \
///   3    5
/// ```
struct World {
    dag: RepoDag,
    graph: CommitGraph,
    create: SignedOp,
}

impl World {
    /// Created at the epoch, so that the tests' operations, stamped in small
    /// numbers, are never stamped before the creation they follow.
    fn new() -> Self {
        Self::created_at(0)
    }

    fn created_at(wall_ms: u64) -> Self {
        let owner = keypair(1);
        let created = at(wall_ms);
        let repo = RepoId::derive(&owner.public(), "alice", "repo", created);
        let create = Operation {
            repo,
            parents: vec![],
            author: owner.public(),
            timestamp: created,
            payload: Payload::CreateRepo {
                owner: "alice".into(),
                name: "repo".into(),
                description: "a repository".into(),
                private: false,
                default_branch: "main".into(),
            },
        }
        .sign(&owner)
        .unwrap();
        let mut dag = RepoDag::new(repo);
        dag.insert(create.clone()).unwrap();
        let mut graph = CommitGraph::default();
        graph.add(1, &[]);
        graph.add(2, &[1]);
        graph.add(3, &[1]);
        graph.add(4, &[2]);
        graph.add(5, &[2]);
        Self { dag, graph, create }
    }

    /// Signs and inserts an operation.
    fn op(
        &mut self,
        key: &Keypair,
        parents: &[&SignedOp],
        wall_ms: u64,
        payload: Payload,
    ) -> SignedOp {
        let signed = Operation {
            repo: self.dag.repo(),
            parents: parents.iter().map(|p| p.id()).collect(),
            author: key.public(),
            timestamp: at(wall_ms),
            payload,
        }
        .sign(key)
        .unwrap();
        self.dag.insert(signed.clone()).unwrap();
        signed
    }

    fn state(&self) -> RepoState {
        fold(&self.dag, &self.graph)
    }
}

fn push(old: Option<u8>, new: Option<u8>, force: bool) -> Payload {
    Payload::UpdateRef {
        name: MAIN.into(),
        old: old.map(commit),
        new: new.map(commit),
        force,
    }
}

fn grant(user: &Keypair, role: Option<Role>) -> Payload {
    Payload::SetRole {
        user: user.public(),
        role,
    }
}

fn protect(no_force_push: bool, no_deletion: bool) -> Payload {
    Payload::SetBranchProtection {
        branch: MAIN.into(),
        protection: Some(BranchProtection {
            no_force_push,
            no_deletion,
            required_approvals: 0,
            dismiss_stale_reviews: false,
            required_checks: None,
        }),
    }
}

fn target(state: &RepoState) -> Option<ObjectId> {
    state.refs.get(MAIN).map(|r| r.target)
}

#[test]
fn creation_makes_the_author_owner() {
    let w = World::new();
    let state = w.state();
    let meta = state.meta.as_ref().unwrap();
    assert_eq!((meta.owner.as_str(), meta.name.as_str()), ("alice", "repo"));
    assert_eq!(meta.created_by, keypair(1).public());
    assert_eq!(state.role(&keypair(1).public()), Some(Role::Owner));
    assert_eq!(state.applied, 1);
    assert!(state.rejected.is_empty());
}

#[test]
fn fast_forward_of_the_concurrent_update_wins_in_either_order() {
    // 2 is an ancestor of 4: whichever of the two pushes is folded first, 4 ends
    // up on main and nothing is recorded as a conflict.
    for (t_a, t_b) in [(10, 20), (20, 10)] {
        let mut w = World::new();
        let owner = keypair(1);
        let writer = keypair(2);
        let create = w.create.clone();
        let g = w.op(&owner, &[&create], 5, grant(&writer, Some(Role::Write)));
        let base = w.op(&owner, &[&g], 6, push(None, Some(1), false));
        w.op(&owner, &[&base], t_a, push(Some(1), Some(2), false));
        w.op(&writer, &[&base], t_b, push(Some(1), Some(4), false));
        let state = w.state();
        assert_eq!(target(&state), Some(commit(4)), "order {t_a} {t_b}");
        assert!(state.conflicts.is_empty());
        assert!(state.rejected.is_empty());
    }
}

#[test]
fn diverged_updates_keep_the_loser_as_a_conflict_ref() {
    for (t_a, t_b) in [(10, 20), (20, 10)] {
        let mut w = World::new();
        let owner = keypair(1);
        let writer = keypair(2);
        let create = w.create.clone();
        let g = w.op(&owner, &[&create], 5, grant(&writer, Some(Role::Write)));
        let base = w.op(&owner, &[&g], 6, push(None, Some(1), false));
        // 2 and 3 have diverged from 1.
        let a = w.op(&owner, &[&base], t_a, push(Some(1), Some(2), false));
        let b = w.op(&writer, &[&base], t_b, push(Some(1), Some(3), false));
        let state = w.state();
        let (winner, loser, lost_tip) = if t_a > t_b {
            (a, b, commit(3))
        } else {
            (b, a, commit(2))
        };
        assert_eq!(state.refs.get(MAIN).unwrap().op, winner.id());
        let key = format!("refs/guts/conflicts/heads/main/{}", loser.id());
        assert_eq!(conflict_ref_name(MAIN, &loser.id()), key);
        assert_eq!(state.conflicts, BTreeMap::from([(key, lost_tip)]));
        assert!(state.rejected.is_empty());
    }
}

#[test]
fn equal_timestamps_are_broken_by_id() {
    let mut w = World::new();
    let owner = keypair(1);
    let create = w.create.clone();
    let base = w.op(&owner, &[&create], 6, push(None, Some(1), false));
    let a = w.op(&owner, &[&base], 10, push(Some(1), Some(2), false));
    let b = w.op(&owner, &[&base], 10, push(Some(1), Some(3), false));
    let winner = a.id().max(b.id());
    assert_eq!(w.state().refs.get(MAIN).unwrap().op, winner);
    assert_eq!(w.state().conflicts.len(), 1);
}

#[test]
fn concurrent_revoke_does_not_reject_the_concurrent_push() {
    let mut w = World::new();
    let owner = keypair(1);
    let writer = keypair(2);
    let create = w.create.clone();
    let g = w.op(&owner, &[&create], 5, grant(&writer, Some(Role::Write)));
    // The revocation is folded first (earlier timestamp) but the push did not
    // descend from it.
    let revoke = w.op(&owner, &[&g], 10, grant(&writer, None));
    let concurrent = w.op(&writer, &[&g], 20, push(None, Some(1), false));
    let state = w.state();
    assert!(state.rejected.is_empty(), "{:?}", state.rejected);
    assert_eq!(target(&state), Some(commit(1)));
    assert_eq!(state.role(&writer.public()), None);
    // A push that saw the revocation is rejected.
    let after = w.op(
        &writer,
        &[&revoke, &concurrent],
        30,
        push(Some(1), Some(2), false),
    );
    let state = w.state();
    assert_eq!(
        state.rejected.get(&after.id()),
        Some(&Rejection::NotPermitted {
            required: Role::Write,
            held: None
        })
    );
    assert_eq!(target(&state), Some(commit(1)));
}

#[test]
fn grants_reach_descendants_through_merges_and_rejected_ops() {
    let mut w = World::new();
    let owner = keypair(1);
    let writer = keypair(2);
    let stranger = keypair(3);
    let create = w.create.clone();
    let g = w.op(&owner, &[&create], 5, grant(&writer, Some(Role::Write)));
    let side = w.op(&owner, &[&create], 6, protect(false, false));
    // Rejected (no permission), but still a parent.
    let noise = w.op(&stranger, &[&g], 7, push(None, Some(5), false));
    let merge = w.op(&writer, &[&noise, &side], 8, push(None, Some(1), false));
    let state = w.state();
    assert_eq!(
        state.rejected.keys().copied().collect::<Vec<_>>(),
        vec![noise.id()]
    );
    assert_eq!(state.refs.get(MAIN).unwrap().op, merge.id());
}

#[test]
fn authors_without_a_role_are_not_permitted() {
    let mut w = World::new();
    let stranger = keypair(3);
    let reader = keypair(4);
    let owner = keypair(1);
    let create = w.create.clone();
    let g = w.op(&owner, &[&create], 5, grant(&reader, Some(Role::Read)));
    let push_op = w.op(&stranger, &[&g], 10, push(None, Some(1), false));
    let read_push = w.op(&reader, &[&g], 11, push(None, Some(1), false));
    let read_grant = w.op(&reader, &[&g], 12, grant(&stranger, Some(Role::Write)));
    let state = w.state();
    assert_eq!(
        state.rejected.get(&push_op.id()),
        Some(&Rejection::NotPermitted {
            required: Role::Write,
            held: None
        })
    );
    assert_eq!(
        state.rejected.get(&read_push.id()),
        Some(&Rejection::NotPermitted {
            required: Role::Write,
            held: Some(Role::Read)
        })
    );
    assert_eq!(
        state.rejected.get(&read_grant.id()),
        Some(&Rejection::NotPermitted {
            required: Role::Admin,
            held: Some(Role::Read)
        })
    );
    assert!(state.refs.is_empty());
    assert_eq!(state.role(&stranger.public()), None);
    assert_eq!(
        state.rejected.values().next().unwrap().reason(),
        "not_permitted"
    );
}

#[test]
fn non_fast_forward_needs_force() {
    let mut w = World::new();
    let owner = keypair(1);
    let create = w.create.clone();
    let base = w.op(&owner, &[&create], 5, push(None, Some(2), false));
    let refused = w.op(&owner, &[&base], 6, push(Some(2), Some(3), false));
    assert_eq!(
        w.state().rejected.get(&refused.id()),
        Some(&Rejection::NonFastForward)
    );
    assert_eq!(target(&w.state()), Some(commit(2)));
    w.op(&owner, &[&refused], 7, push(Some(2), Some(3), true));
    assert_eq!(target(&w.state()), Some(commit(3)));
}

#[test]
fn protected_branch_refuses_force_and_deletion() {
    let mut w = World::new();
    let owner = keypair(1);
    let create = w.create.clone();
    let base = w.op(&owner, &[&create], 5, push(None, Some(2), false));
    let p = w.op(&owner, &[&base], 6, protect(true, true));
    let forced = w.op(&owner, &[&p], 7, push(Some(2), Some(3), true));
    let deleted = w.op(&owner, &[&p], 8, push(Some(2), None, false));
    // A fast-forward with the force flag set is not a force push.
    let ff = w.op(
        &owner,
        &[&forced, &deleted],
        9,
        push(Some(2), Some(4), true),
    );
    let state = w.state();
    assert_eq!(
        state.rejected.get(&forced.id()),
        Some(&Rejection::Protected(ProtectedAction::ForcePush))
    );
    assert_eq!(
        state.rejected.get(&deleted.id()),
        Some(&Rejection::Protected(ProtectedAction::Deletion))
    );
    assert_eq!(state.refs.get(MAIN).unwrap().op, ff.id());
    // Lifting the protection allows both again.
    let lift = w.op(
        &owner,
        &[&ff],
        10,
        Payload::SetBranchProtection {
            branch: MAIN.into(),
            protection: None,
        },
    );
    w.op(&owner, &[&lift], 11, push(Some(4), None, false));
    let state = w.state();
    assert!(state.refs.is_empty());
    assert!(state.protections.is_empty());
}

#[test]
fn deletion_competes_like_an_update() {
    for (t_delete, t_push) in [(10, 20), (20, 10)] {
        let mut w = World::new();
        let owner = keypair(1);
        let create = w.create.clone();
        let base = w.op(&owner, &[&create], 5, push(None, Some(1), false));
        let delete = w.op(&owner, &[&base], t_delete, push(Some(1), None, false));
        let update = w.op(&owner, &[&base], t_push, push(Some(1), Some(2), false));
        let state = w.state();
        assert!(state.rejected.is_empty());
        if t_delete > t_push {
            assert_eq!(target(&state), None);
            assert_eq!(
                state.conflicts,
                BTreeMap::from([(conflict_ref_name(MAIN, &update.id()), commit(2))])
            );
        } else {
            assert_eq!(state.refs.get(MAIN).unwrap().op, update.id());
            assert!(
                state.conflicts.is_empty(),
                "a deletion leaves no tip to keep"
            );
        }
        let _ = delete;
    }
}

#[test]
fn ref_names_are_checked_and_guts_refs_reserved() {
    let mut w = World::new();
    let owner = keypair(1);
    let create = w.create.clone();
    let cases = [
        ("refs/guts/conflicts/heads/main/x", Rejection::ReservedRef),
        (
            "refs/heads/a..b",
            Rejection::InvalidName {
                field: "ref name",
                error: NameError::DoubleDot,
            },
        ),
        (
            "main",
            Rejection::InvalidName {
                field: "ref name",
                error: NameError::NotUnderRefs,
            },
        ),
    ];
    for (i, (name, want)) in cases.into_iter().enumerate() {
        let op = w.op(
            &owner,
            &[&create],
            10 + i as u64,
            Payload::UpdateRef {
                name: name.into(),
                old: None,
                new: Some(commit(1)),
                force: false,
            },
        );
        assert_eq!(w.state().rejected.get(&op.id()), Some(&want), "{name}");
    }
    let empty = w.op(&owner, &[&create], 20, push(None, None, false));
    assert_eq!(
        w.state().rejected.get(&empty.id()),
        Some(&Rejection::EmptyRefUpdate)
    );
}

fn create_branch(name: &str, at: u8) -> Payload {
    Payload::UpdateRef {
        name: name.into(),
        old: None,
        new: Some(commit(at)),
        force: false,
    }
}

fn default_branch(state: &RepoState) -> &str {
    state
        .meta
        .as_ref()
        .map_or("", |m| m.default_branch.as_str())
}

#[test]
fn the_first_branch_of_an_empty_repository_becomes_its_default() {
    // Configured `main`, first pushed `master`: `master` is the default from then on,
    // and a later `main` does not take it back.
    let mut w = World::new();
    let owner = keypair(1);
    let create = w.create.clone();
    let master = w.op(&owner, &[&create], 5, create_branch("refs/heads/master", 1));
    assert_eq!(default_branch(&w.state()), "master");
    let main = w.op(&owner, &[&master], 6, create_branch(MAIN, 2));
    let state = w.state();
    assert!(!state.rejected.contains_key(&main.id()));
    assert_eq!(default_branch(&state), "master");

    // A tag is not a branch; the configured branch pushed first stays the default.
    let mut w = World::new();
    let create = w.create.clone();
    let tag = w.op(&owner, &[&create], 5, create_branch("refs/tags/v1", 1));
    assert_eq!(default_branch(&w.state()), "main");
    let main = w.op(&owner, &[&tag], 6, create_branch(MAIN, 1));
    w.op(&owner, &[&main], 7, create_branch("refs/heads/master", 2));
    assert_eq!(default_branch(&w.state()), "main");

    // A refused first push (no role) changes nothing; once every branch is deleted,
    // the next branch pushed is the default again.
    let mut w = World::new();
    let create = w.create.clone();
    let refused = w.op(
        &keypair(9),
        &[&create],
        5,
        create_branch("refs/heads/dev", 1),
    );
    let state = w.state();
    assert!(state.rejected.contains_key(&refused.id()));
    assert_eq!(default_branch(&state), "main");
    let dev = w.op(&owner, &[&create], 6, create_branch("refs/heads/dev", 1));
    let gone = w.op(
        &owner,
        &[&dev],
        7,
        Payload::UpdateRef {
            name: "refs/heads/dev".into(),
            old: Some(commit(1)),
            new: None,
            force: false,
        },
    );
    assert_eq!(default_branch(&w.state()), "dev");
    w.op(&owner, &[&gone], 8, create_branch("refs/heads/trunk", 1));
    assert_eq!(default_branch(&w.state()), "trunk");
}

#[test]
fn concurrent_first_branches_agree_on_the_default_in_any_order() {
    let mut w = World::new();
    let (owner, create) = (keypair(1), w.create.clone());
    let a = w.op(&owner, &[&create], 5, create_branch("refs/heads/master", 1));
    let b = w.op(&owner, &[&create], 6, create_branch("refs/heads/trunk", 3));
    let state = w.state();
    let mut other = RepoDag::new(w.dag.repo());
    for op in [&create, &b, &a] {
        other.insert(op.clone()).unwrap();
    }
    let reversed = fold(&other, &w.graph);
    assert_eq!(state.digest(), reversed.digest());
    assert!(["master", "trunk"].contains(&default_branch(&state)));
}

fn settings(name: Option<&str>, has_issues: Option<bool>, archived: Option<bool>) -> Payload {
    Payload::RepoSettings {
        name: name.map(str::to_owned),
        homepage: None,
        has_issues,
        archived,
    }
}

#[test]
fn an_archived_repository_is_read_only_until_unarchived() {
    let mut w = World::new();
    let (owner, writer) = (keypair(1), keypair(2));
    let create = w.create.clone();
    let granted = w.op(&owner, &[&create], 1, grant(&writer, Some(Role::Write)));
    let before = w.state().encode();
    let archive = w.op(&owner, &[&granted], 2, settings(None, None, Some(true)));
    let state = w.state();
    assert!(state.meta.as_ref().unwrap().archived);
    assert_ne!(state.encode(), before, "archiving changes the digest");
    let pushed = w.op(&writer, &[&archive], 3, push(None, Some(1), false));
    let opened = w.op(&owner, &[&archive], 4, issue(1, "while archived"));
    let renamed = w.op(&owner, &[&archive], 5, settings(Some("other"), None, None));
    let revoked = w.op(&owner, &[&archive], 6, grant(&writer, None));
    let state = w.state();
    for op in [&pushed, &opened, &renamed] {
        assert_eq!(state.rejected.get(&op.id()), Some(&Rejection::Archived));
    }
    assert!(!state.rejected.contains_key(&revoked.id()));
    // Only an admin unarchives; then writes are accepted again.
    let by_writer = w.op(&writer, &[&revoked], 7, settings(None, None, Some(false)));
    let unarchive = w.op(&owner, &[&revoked], 8, settings(None, None, Some(false)));
    let pushed = w.op(&owner, &[&unarchive], 9, push(None, Some(1), false));
    let state = w.state();
    assert!(matches!(
        state.rejected.get(&by_writer.id()),
        Some(Rejection::Archived | Rejection::NotPermitted { .. })
    ));
    assert!(!state.rejected.contains_key(&unarchive.id()));
    assert!(!state.rejected.contains_key(&pushed.id()));
    assert_eq!(target(&state), Some(commit(1)));
}

#[test]
fn issues_can_be_disabled_and_a_rename_keeps_former_names() {
    let mut w = World::new();
    let owner = keypair(1);
    let create = w.create.clone();
    let off = w.op(&owner, &[&create], 1, settings(None, Some(false), None));
    let refused = w.op(&owner, &[&off], 2, issue(1, "no issues here"));
    let state = w.state();
    assert_eq!(
        state.rejected.get(&refused.id()),
        Some(&Rejection::IssuesDisabled)
    );

    let first = w.op(&owner, &[&off], 3, settings(Some("second"), None, None));
    let back = w.op(&owner, &[&first], 4, settings(Some("third"), None, None));
    let bad = w.op(&owner, &[&back], 5, settings(Some("no/slash"), None, None));
    let state = w.state();
    let meta = state.meta.as_ref().unwrap();
    assert_eq!(meta.name, "third");
    assert_eq!(meta.former_names, ["repo", "second"]);
    assert_eq!(meta.named_at, at(4));
    assert!(matches!(
        state.rejected.get(&bad.id()),
        Some(Rejection::InvalidName { field: "name", .. })
    ));
    // Renaming back to a former name takes it out of the former names.
    w.op(&owner, &[&bad], 6, settings(Some("REPO"), None, None));
    let state = w.state();
    let meta = state.meta.as_ref().unwrap();
    assert_eq!(meta.name, "REPO");
    assert_eq!(meta.former_names, ["second", "third"]);
}

#[test]
fn refs_cannot_be_both_a_file_and_a_directory() {
    let mut w = World::new();
    let owner = keypair(1);
    let create = w.create.clone();
    let update = |name: &str| Payload::UpdateRef {
        name: name.into(),
        old: None,
        new: Some(commit(1)),
        force: false,
    };
    let base = w.op(&owner, &[&create], 5, update("refs/heads/a/b"));
    let above = w.op(&owner, &[&base], 6, update("refs/heads/a"));
    let below = w.op(&owner, &[&base], 7, update("refs/heads/a/b/c"));
    let sibling = w.op(&owner, &[&base], 8, update("refs/heads/a/bc"));
    let state = w.state();
    let existing = "refs/heads/a/b".to_owned();
    assert_eq!(
        state.rejected.get(&above.id()),
        Some(&Rejection::RefPathConflict {
            existing: existing.clone()
        })
    );
    assert_eq!(
        state.rejected.get(&below.id()),
        Some(&Rejection::RefPathConflict { existing })
    );
    assert!(!state.rejected.contains_key(&sibling.id()));
}

#[test]
fn create_repo_rules() {
    let mut w = World::new();
    let owner = keypair(1);
    let create = w.create.clone();
    let payload = create.op().payload.clone();
    // Same id inputs, different description: a second root, rejected.
    let mut second = payload.clone();
    if let Payload::CreateRepo { description, .. } = &mut second {
        *description = "another".into();
    }
    let twin = w.op(&owner, &[], 0, second);
    // Claims this repository but derives another id.
    let forged = w.op(&owner, &[], 999, payload.clone());
    let with_parents = w.op(&owner, &[&create], 1_000, payload);
    let state = w.state();
    assert_eq!(
        state.rejected.get(&with_parents.id()),
        Some(&Rejection::CreateWithParents)
    );
    assert_eq!(
        state.rejected.get(&forged.id()),
        Some(&Rejection::RepoIdMismatch)
    );
    // Equal timestamps: the root with the smaller id was created; the other lost.
    let (first, other) = if create.id() < twin.id() {
        (&create, &twin)
    } else {
        (&twin, &create)
    };
    assert_eq!(
        state.rejected.get(&other.id()),
        Some(&Rejection::AlreadyCreated)
    );
    assert!(!state.rejected.contains_key(&first.id()));

    // Invalid names are rejected even with a matching id.
    let bad_owner = "-bad-";
    let id = RepoId::derive(&owner.public(), bad_owner, "repo", at(5));
    let op = Operation {
        repo: id,
        parents: vec![],
        author: owner.public(),
        timestamp: at(5),
        payload: Payload::CreateRepo {
            owner: bad_owner.into(),
            name: "repo".into(),
            description: String::new(),
            private: true,
            default_branch: "main".into(),
        },
    }
    .sign(&owner)
    .unwrap();
    let mut dag = RepoDag::new(id);
    dag.insert(op.clone()).unwrap();
    let state = fold(&dag, &CommitGraph::default());
    assert_eq!(
        state.rejected.get(&op.id()),
        Some(&Rejection::InvalidName {
            field: "owner",
            error: NameError::EdgeHyphen
        })
    );
    assert!(state.meta.is_none());
}

#[test]
fn operations_stamped_before_their_parents_are_rejected() {
    let mut w = World::created_at(1_000);
    let owner = keypair(1);
    let create = w.create.clone();
    // Three days before the creation it names as its parent: a clock set back.
    let backdated = w.op(&owner, &[&create], 1, push(None, Some(1), false));
    let same_ms = w.op(&owner, &[&create], 1_000, push(None, Some(2), false));
    let later = w.op(&owner, &[&same_ms], 1_001, push(None, Some(3), false));
    let state = w.state();
    assert_eq!(
        state.rejected.get(&backdated.id()),
        Some(&Rejection::BeforeParents {
            at: 1,
            parent: 1_000
        })
    );
    assert_eq!(
        Rejection::BeforeParents { at: 1, parent: 2 }.reason(),
        "before_parents"
    );
    assert!(!state.rejected.contains_key(&same_ms.id()));
    assert!(!state.rejected.contains_key(&later.id()));
    // Incremental appends refuse it too, and the fold stays as it was.
    let mut dag = RepoDag::new(w.dag.repo());
    dag.insert(create.clone()).unwrap();
    let mut fold = Fold::new(&dag, &w.graph);
    let before = fold.state().clone();
    let op = Operation {
        repo: dag.repo(),
        parents: vec![create.id()],
        author: owner.public(),
        timestamp: at(999),
        payload: push(None, Some(1), false),
    }
    .sign(&owner)
    .unwrap();
    assert!(matches!(
        fold.append(&mut dag, op, &w.graph),
        Err(AppendError::Rejected(Rejection::BeforeParents { .. }))
    ));
    assert_eq!(fold.state(), &before);
}

#[test]
fn operations_before_creation_or_after_deletion_are_rejected() {
    let mut w = World::created_at(1_000);
    let owner = keypair(1);
    let create = w.create.clone();
    let early = w.op(&owner, &[], 1, push(None, Some(1), false));
    let admin = keypair(2);
    let g = w.op(&owner, &[&create], 1_005, grant(&admin, Some(Role::Admin)));
    let not_owner = w.op(&admin, &[&g], 1_006, Payload::DeleteRepo);
    let delete = w.op(&owner, &[&g], 1_007, Payload::DeleteRepo);
    let late = w.op(&owner, &[&delete], 1_008, push(None, Some(1), false));
    let state = w.state();
    assert_eq!(state.rejected.get(&early.id()), Some(&Rejection::NoRepo));
    assert_eq!(
        state.rejected.get(&not_owner.id()),
        Some(&Rejection::NotPermitted {
            required: Role::Owner,
            held: Some(Role::Admin)
        })
    );
    assert_eq!(
        state.rejected.get(&late.id()),
        Some(&Rejection::RepoDeleted)
    );
    assert!(state.deleted);
    assert!(state.refs.is_empty());
}

fn org_access(user: &Keypair, role: Option<Role>) -> Payload {
    Payload::SetOrgAccess {
        user: user.public(),
        role,
    }
}

/// An organization's repository: its key (the owner) grants access through
/// membership; the member who created the repository is an admin who can neither
/// demote an org admin nor touch what membership gives; leaving the organization
/// ends every role its member held, in operations that saw the departure.
#[test]
fn organization_access_is_the_owners_to_give_and_ends_with_membership() {
    let mut w = World::new();
    let org = keypair(1);
    let creator = keypair(2);
    let org_admin = keypair(3);
    let member = keypair(4);
    let create = w.create.clone();
    let g1 = w.op(&org, &[&create], 5, grant(&creator, Some(Role::Admin)));
    let o1 = w.op(&org, &[&g1], 6, org_access(&org_admin, Some(Role::Admin)));
    let o2 = w.op(&org, &[&o1], 7, org_access(&member, Some(Role::Read)));
    let remove_admin = w.op(&creator, &[&o2], 8, grant(&org_admin, None));
    let demote_admin = w.op(&creator, &[&o2], 9, grant(&org_admin, Some(Role::Read)));
    let end_member = w.op(&creator, &[&o2], 10, org_access(&member, None));
    let as_owner = w.op(&org, &[&o2], 11, org_access(&org, None));
    let make_owner = w.op(&org, &[&o2], 12, org_access(&member, Some(Role::Owner)));
    let promote = w.op(&creator, &[&o2], 13, grant(&member, Some(Role::Write)));
    let unpromote = w.op(&creator, &[&promote], 14, grant(&member, None));
    let admin_push = w.op(&org_admin, &[&unpromote], 15, push(None, Some(1), false));
    let leave = w.op(&org, &[&admin_push], 16, org_access(&creator, None));
    let concurrent = w.op(&creator, &[&admin_push], 17, push(Some(1), Some(2), false));
    let after = w.op(
        &creator,
        &[&leave, &concurrent],
        18,
        push(Some(2), Some(4), false),
    );
    let state = w.state();
    let rejected = |op: &SignedOp| state.rejected.get(&op.id()).cloned();
    assert_eq!(rejected(&remove_admin), Some(Rejection::AdminRequiresOwner));
    assert_eq!(rejected(&demote_admin), Some(Rejection::AdminRequiresOwner));
    assert_eq!(
        rejected(&end_member),
        Some(Rejection::NotPermitted {
            required: Role::Owner,
            held: Some(Role::Admin)
        })
    );
    assert_eq!(rejected(&as_owner), Some(Rejection::OwnerImmutable));
    assert_eq!(rejected(&make_owner), Some(Rejection::OwnerImmutable));
    for accepted in [&promote, &unpromote, &admin_push, &leave, &concurrent] {
        assert_eq!(rejected(accepted), None, "{:?}", accepted.op().payload);
    }
    // The departure is in the last push's causal past: refused.
    assert_eq!(
        rejected(&after),
        Some(Rejection::NotPermitted {
            required: Role::Write,
            held: None
        })
    );
    assert_eq!(state.role(&org.public()), Some(Role::Owner));
    assert_eq!(state.role(&org_admin.public()), Some(Role::Admin));
    // A collaborator role removed, the membership's remains.
    assert_eq!(state.role(&member.public()), Some(Role::Read));
    assert_eq!(state.role(&creator.public()), None);
    assert_eq!(state.branch("main"), Some(commit(2)));
    // Organization access is part of the state every node compares.
    let mut without = state.clone();
    without.access.org.clear();
    assert_ne!(without.digest(), state.digest());
}

#[test]
fn set_role_rules() {
    let mut w = World::new();
    let owner = keypair(1);
    let admin = keypair(2);
    let other_admin = keypair(3);
    let writer = keypair(4);
    let create = w.create.clone();
    let g1 = w.op(&owner, &[&create], 5, grant(&admin, Some(Role::Admin)));
    let g2 = w.op(&owner, &[&g1], 6, grant(&other_admin, Some(Role::Admin)));
    let g3 = w.op(&admin, &[&g2], 7, grant(&writer, Some(Role::Write)));
    let demote_admin = w.op(&admin, &[&g3], 8, grant(&other_admin, Some(Role::Read)));
    let grant_owner = w.op(&admin, &[&g3], 9, grant(&writer, Some(Role::Owner)));
    let touch_owner = w.op(&admin, &[&g3], 10, grant(&owner, Some(Role::Read)));
    let owner_self = w.op(&owner, &[&g3], 11, grant(&owner, None));
    let promote = w.op(&admin, &[&g3], 12, grant(&writer, Some(Role::Admin)));
    let step_down = w.op(
        &other_admin,
        &[&g3],
        13,
        grant(&other_admin, Some(Role::Write)),
    );
    let describe = w.op(
        &admin,
        &[&g3],
        14,
        Payload::UpdateRepo {
            description: Some("new".into()),
            private: Some(true),
            default_branch: Some("trunk".into()),
        },
    );
    let bad_branch = w.op(
        &admin,
        &[&g3],
        15,
        Payload::UpdateRepo {
            description: None,
            private: None,
            default_branch: Some("a..b".into()),
        },
    );
    // Names git refuses as branches although `refs/heads/{name}` is a valid ref.
    let git_refused: Vec<(SignedOp, NameError)> = [
        ("HEAD", NameError::HeadBranch),
        ("-x", NameError::LeadingHyphen),
    ]
    .into_iter()
    .zip(16..)
    .map(|((branch, error), at)| {
        let op = w.op(
            &admin,
            &[&g3],
            at,
            Payload::UpdateRepo {
                description: None,
                private: None,
                default_branch: Some(branch.into()),
            },
        );
        (op, error)
    })
    .collect();
    let state = w.state();
    let rejected = |op: &SignedOp| state.rejected.get(&op.id()).cloned();
    for (op, error) in git_refused {
        assert_eq!(
            rejected(&op),
            Some(Rejection::InvalidName {
                field: "default_branch",
                error
            })
        );
    }
    assert_eq!(rejected(&demote_admin), Some(Rejection::AdminRequiresOwner));
    assert_eq!(rejected(&grant_owner), Some(Rejection::OwnerImmutable));
    assert_eq!(rejected(&touch_owner), Some(Rejection::OwnerImmutable));
    assert_eq!(rejected(&owner_self), Some(Rejection::OwnerImmutable));
    assert_eq!(rejected(&promote), None);
    assert_eq!(rejected(&step_down), None);
    assert_eq!(rejected(&describe), None);
    assert!(matches!(
        rejected(&bad_branch),
        Some(Rejection::InvalidName {
            field: "default_branch",
            ..
        })
    ));
    assert_eq!(state.role(&owner.public()), Some(Role::Owner));
    assert_eq!(state.role(&writer.public()), Some(Role::Admin));
    assert_eq!(state.role(&other_admin.public()), Some(Role::Write));
    let meta = state.meta.unwrap();
    assert_eq!(
        (
            meta.description.as_str(),
            meta.private,
            meta.default_branch.as_str()
        ),
        ("new", true, "trunk")
    );
}

#[test]
fn state_encoding_reflects_every_change() {
    let mut w = World::new();
    let owner = keypair(1);
    let create = w.create.clone();
    let before = w.state();
    w.op(&owner, &[&create], 5, push(None, Some(1), false));
    let after = w.state();
    assert_ne!(before.encode(), after.encode());
    assert_ne!(before.digest(), after.digest());
    assert_eq!(after.digest(), *blake3::hash(&after.encode()).as_bytes());
    assert_eq!(RepoState::default().encode()[0], STATE_FORMAT_VERSION);
}

#[test]
fn ancestry_past_sets_scale_linearly_on_a_long_history() {
    // Thousands of operations with interleaved grants: completes quickly only if
    // causal-past ACLs are shared rather than recomputed per operation.
    let mut w = World::new();
    let owner = keypair(1);
    let writer = keypair(2);
    let mut head = w.create.clone();
    for i in 0..2_000u64 {
        let payload = if i % 100 == 0 {
            grant(&writer, Some(Role::Write))
        } else {
            Payload::UpdateRepo {
                description: Some(format!("{i}")),
                private: None,
                default_branch: None,
            }
        };
        head = w.op(&owner, &[&head], 10 + i, payload);
    }
    let state = w.state();
    assert_eq!(state.applied, 2_001);
}

// ---- convergence ----------------------------------------------------------------

#[derive(Debug, Clone)]
enum Action {
    Grant {
        user: u8,
        role: Option<Role>,
        org: bool,
    },
    Protect {
        branch: usize,
        protection: Option<BranchProtection>,
    },
    Push {
        branch: usize,
        old: prop::sample::Index,
        new: Option<prop::sample::Index>,
        force: bool,
    },
    /// `UpdateRepo`, or with `archive` a `RepoSettings` that archives or unarchives
    /// (and turns issues on or off with `private`).
    Describe {
        private: bool,
        archive: Option<bool>,
    },
    Delete,
    Open {
        number: u64,
        pull: bool,
    },
    Discuss {
        thread: prop::sample::Index,
        kind: u8,
        commit: prop::sample::Index,
    },
}

#[derive(Debug, Clone)]
struct Step {
    author: u8,
    parents: Vec<prop::sample::Index>,
    delta: u64,
    action: Action,
}

const BRANCHES: [&str; 2] = ["refs/heads/main", "refs/heads/dev"];
const COMMITS: u8 = 10;

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (2u8..=4, proptest::option::of(role()), proptest::bool::weighted(0.3))
            .prop_map(|(user, role, org)| Action::Grant { user, role, org }),
        1 => (0..BRANCHES.len(), proptest::option::of(protection()))
            .prop_map(|(branch, protection)| Action::Protect { branch, protection }),
        10 => (
            0..BRANCHES.len(),
            any::<prop::sample::Index>(),
            proptest::option::weighted(0.9, any::<prop::sample::Index>()),
            proptest::bool::weighted(0.3),
        )
            .prop_map(|(branch, old, new, force)| Action::Push { branch, old, new, force }),
        2 => (any::<bool>(), proptest::option::of(any::<bool>()))
            .prop_map(|(private, archive)| Action::Describe { private, archive }),
        1 => proptest::strategy::LazyJust::new(|| Action::Delete),
        3 => (1u64..6, any::<bool>()).prop_map(|(number, pull)| Action::Open { number, pull }),
        5 => (any::<prop::sample::Index>(), 0u8..6, any::<prop::sample::Index>())
            .prop_map(|(thread, kind, commit)| Action::Discuss { thread, kind, commit }),
        1 => (any::<prop::sample::Index>(), 6u8..10, any::<prop::sample::Index>())
            .prop_map(|(thread, kind, commit)| Action::Discuss { thread, kind, commit }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (
        1u8..=4,
        proptest::collection::vec(any::<prop::sample::Index>(), 1..4),
        0u64..4,
        action(),
    )
        .prop_map(|(author, parents, delta, action)| Step {
            author,
            parents,
            delta,
            action,
        })
}

/// A commit graph (each commit has one or two earlier parents) and the
/// operations of a scenario, root first.
fn scenario() -> impl Strategy<Value = (CommitGraph, Vec<SignedOp>)> {
    (
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                proptest::option::weighted(0.2, any::<prop::sample::Index>()),
            ),
            usize::from(COMMITS - 1),
        ),
        proptest::collection::vec(step(), 1..40),
    )
        .prop_map(|(commit_parents, steps)| {
            let mut graph = CommitGraph::default();
            graph.add(0, &[]);
            for (n, (first, second)) in (1..COMMITS).zip(commit_parents) {
                let mut parents = vec![first.index(usize::from(n)) as u8];
                if let Some(second) = second {
                    parents.push(second.index(usize::from(n)) as u8);
                }
                graph.add(n, &parents);
            }
            (graph, build(&steps))
        })
}

fn build(steps: &[Step]) -> Vec<SignedOp> {
    let owner = keypair(1);
    let created = at(1_000);
    let repo = RepoId::derive(&owner.public(), "alice", "repo", created);
    let create = Operation {
        repo,
        parents: vec![],
        author: owner.public(),
        timestamp: created,
        payload: Payload::CreateRepo {
            owner: "alice".into(),
            name: "repo".into(),
            description: String::new(),
            private: false,
            default_branch: "main".into(),
        },
    }
    .sign(&owner)
    .unwrap();
    let mut ops = vec![create];
    // Values pushed so far per branch, so that `old` often matches something.
    let mut pushed: [Vec<ObjectId>; 2] = [Vec::new(), Vec::new()];
    // Issues and pull requests opened so far.
    let mut threads: Vec<OpId> = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let parents: Vec<&SignedOp> = step
            .parents
            .iter()
            .map(|p| &ops[p.index(ops.len())])
            .collect();
        let wall_ms = parents
            .iter()
            .map(|p| p.op().timestamp.wall_ms)
            .max()
            .unwrap_or(0)
            + step.delta;
        let parent_ids: Vec<OpId> = parents.iter().map(|p| p.id()).collect();
        let payload = match &step.action {
            Action::Grant {
                user,
                role,
                org: false,
            } => Payload::SetRole {
                user: keypair(*user).public(),
                role: *role,
            },
            Action::Grant {
                user,
                role,
                org: true,
            } => Payload::SetOrgAccess {
                user: keypair(*user).public(),
                role: *role,
            },
            Action::Protect { branch, protection } => Payload::SetBranchProtection {
                branch: BRANCHES[*branch].into(),
                protection: protection.clone(),
            },
            Action::Push {
                branch,
                old,
                new,
                force,
            } => {
                let mut candidates: Vec<Option<ObjectId>> = vec![None];
                candidates.extend(pushed[*branch].iter().copied().map(Some));
                let old = candidates[old.index(candidates.len())];
                let new = new.map(|n| commit(n.index(usize::from(COMMITS)) as u8));
                if let Some(new) = new {
                    pushed[*branch].push(new);
                }
                Payload::UpdateRef {
                    name: BRANCHES[*branch].into(),
                    old,
                    new,
                    force: *force,
                }
            }
            Action::Describe {
                private,
                archive: Some(archived),
            } => Payload::RepoSettings {
                name: None,
                homepage: None,
                has_issues: Some(*private),
                archived: Some(*archived),
            },
            Action::Describe { private, .. } => Payload::UpdateRepo {
                description: Some(format!("step {n}")),
                private: Some(*private),
                default_branch: None,
            },
            Action::Delete => Payload::DeleteRepo,
            Action::Open { number, pull } => open_payload(*number, *pull),
            Action::Discuss {
                thread,
                kind,
                commit: c,
            } => {
                let thread = if threads.is_empty() {
                    OpId::from_bytes([7; 32])
                } else {
                    threads[thread.index(threads.len())]
                };
                let main = pushed[0].last().copied().unwrap_or(commit(0));
                discuss_payload(
                    thread,
                    *kind,
                    main,
                    commit(c.index(usize::from(COMMITS)) as u8),
                )
            }
        };
        // Check runs join the threads, so later updates name them.
        let opens = matches!(step.action, Action::Open { .. })
            || matches!(payload, Payload::CreateCheckRun { .. });
        // Merges by the owner, who may always merge, so that some succeed.
        let merges = matches!(payload, Payload::MergePull { .. });
        let key = keypair(if merges { 1 } else { step.author });
        let op = Operation {
            repo,
            parents: parent_ids,
            author: key.public(),
            timestamp: Hlc {
                wall_ms,
                counter: n as u32,
            },
            payload,
        }
        .sign(&key)
        .unwrap();
        if opens {
            threads.push(op.id());
        }
        ops.push(op);
    }
    ops
}

fn open_payload(number: u64, pull: bool) -> Payload {
    if pull {
        Payload::OpenPull {
            number,
            title: format!("pull {number}"),
            body: String::new(),
            head: "dev".into(),
            base: "main".into(),
            draft: false,
        }
    } else {
        issue(number, "issue")
    }
}

/// One of the things done to a thread: comment, close or reopen, label, review,
/// merge, rename a label.
fn discuss_payload(thread: OpId, kind: u8, main: ObjectId, new: ObjectId) -> Payload {
    match kind {
        0 => Payload::Comment {
            thread,
            body: "c".into(),
        },
        1 => Payload::EditThread {
            thread,
            edit: ThreadEdit {
                open: Some(new.as_bytes()[0].is_multiple_of(2)),
                ..ThreadEdit::default()
            },
        },
        2 => Payload::LabelThread {
            thread,
            add: vec!["x".into()],
            remove: vec!["y".into()],
        },
        3 => Payload::Review {
            pull: thread,
            verdict: Verdict::Approve,
            body: String::new(),
            commit: new,
            comments: vec![],
        },
        // The newest commit descends from many others, so merges often apply.
        4 => Payload::MergePull {
            pull: thread,
            method: MergeMethod::Merge,
            head: new,
            old: main,
            new: commit(COMMITS - 1),
        },
        6 => Payload::AssignThread {
            thread,
            as_: Assignment::Reviewer,
            add: vec![keypair(2 + new.as_bytes()[0] % 3).public()],
            remove: vec![keypair(2 + new.as_bytes()[1] % 3).public()],
        },
        7 => Payload::SetStatus {
            commit: new,
            state: crate::checks::StatusState::from_tag(1 + new.as_bytes()[0] % 4)
                .unwrap_or(crate::checks::StatusState::Pending),
            context: ["ci", "CI", "lint"][usize::from(new.as_bytes()[1] % 3)].into(),
            description: None,
            target_url: None,
        },
        8 => Payload::CreateCheckRun {
            head: new,
            fields: crate::check_runs::CheckRunFields {
                name: Some(["ci", "CI", "lint"][usize::from(new.as_bytes()[1] % 3)].into()),
                ..Default::default()
            },
        },
        9 => Payload::UpdateCheckRun {
            run: thread,
            fields: crate::check_runs::CheckRunFields {
                conclusion: crate::check_runs::Conclusion::from_tag(1 + new.as_bytes()[0] % 7),
                ..Default::default()
            },
        },
        _ => Payload::SetLabel {
            name: if new.as_bytes()[0].is_multiple_of(2) {
                "x"
            } else {
                "y"
            }
            .into(),
            label: Some(LabelDef {
                name: "y".into(),
                color: "00ff00".into(),
                description: String::new(),
            }),
        },
    }
}

fn fold_in_order(ops: &[SignedOp], graph: &CommitGraph) -> RepoState {
    let repo = ops[0].op().repo;
    let mut dag = RepoDag::new(repo);
    for op in ops {
        dag.insert(op.clone()).unwrap();
    }
    assert_eq!(dag.pending_len(), 0);
    fold(&dag, graph)
}

#[test]
fn scenarios_are_not_vacuous() {
    // The generator must produce accepted pushes and conflicts, or the convergence
    // property would only compare empty states. Merges are rare (a pull request
    // needs both branches, then an approval or an unprotected base), so scenarios
    // are drawn until every kind has been seen, within a bound.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut refs, mut conflicts, mut rejected, mut applied) = (0, 0, 0, 0);
    let (mut threads, mut renumbered, mut comments, mut merged) = (0, 0, 0, 0);
    let mut drawn = 0;
    while drawn < 32 || (merged == 0 || comments == 0) && drawn < 1024 {
        drawn += 1;
        let (graph, ops) = scenario().new_tree(&mut runner).unwrap().current();
        let state = fold_in_order(&ops, &graph);
        refs += state.refs.len();
        conflicts += state.conflicts.len();
        rejected += state.rejected.len();
        applied += state.applied;
        threads += state.collab.threads.len();
        comments += state.collab.comments.len();
        for (id, thread) in &state.collab.threads {
            let proposed = ops
                .iter()
                .find(|op| op.id() == *id)
                .map(|op| match &op.op().payload {
                    Payload::OpenIssue { number, .. } | Payload::OpenPull { number, .. } => *number,
                    _ => 0,
                });
            renumbered += usize::from(proposed != Some(thread.number));
            merged += usize::from(thread.pull.as_ref().is_some_and(|p| p.merged.is_some()));
        }
    }
    assert!(refs > 0 && conflicts > 0 && rejected > 0 && applied > 100);
    assert!(
        threads > 10 && renumbered > 0 && comments > 0,
        "{threads} {renumbered} {comments}"
    );
    assert!(merged > 0, "no scenario merged a pull request");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The central property: any permutation, with any duplication, of the same
    /// operations folds to byte-identical state.
    #[test]
    fn fold_converges_for_any_insertion_order(
        ((graph, ops), orders) in scenario().prop_flat_map(|(graph, ops)| {
            let shuffles = proptest::collection::vec(
                (Just(ops.clone()).prop_shuffle(), proptest::collection::vec(any::<prop::sample::Index>(), 0..6)),
                3,
            );
            (Just((graph, ops)), shuffles)
        })
    ) {
        let reference = fold_in_order(&ops, &graph);
        let bytes = reference.encode();
        for (mut order, duplicates) in orders {
            let extra: Vec<SignedOp> =
                duplicates.iter().map(|d| order[d.index(order.len())].clone()).collect();
            for (k, op) in extra.into_iter().enumerate() {
                let at = (k * 7) % (order.len() + 1);
                order.insert(at, op);
            }
            let state = fold_in_order(&order, &graph);
            prop_assert_eq!(&state.encode(), &bytes);
        }
        // Invariants of any folded state.
        prop_assert_eq!(reference.role(&keypair(1).public()), Some(Role::Owner));
        prop_assert_eq!(
            reference.access.members().values().filter(|r| **r == Role::Owner).count(),
            1
        );
        prop_assert_eq!(reference.applied as usize + reference.rejected.len(), ops.len());
        for name in reference.refs.keys() {
            prop_assert!(!name.starts_with(RESERVED_REF_PREFIX));
        }
        for name in reference.conflicts.keys() {
            prop_assert!(name.starts_with(CONFLICT_REF_PREFIX));
            prop_assert_eq!(names::validate_ref_name(name), Ok(()));
        }
    }

    /// A local append (parents = all heads) folded incrementally equals a re-fold of
    /// the DAG with it, and a refused one changes nothing.
    #[test]
    fn appending_equals_refolding(
        (graph, ops) in scenario(),
        tail in proptest::collection::vec(step(), 1..24),
    ) {
        let repo = ops[0].op().repo;
        let mut dag = RepoDag::new(repo);
        for op in &ops {
            dag.insert(op.clone()).unwrap();
        }
        let mut incremental = Fold::new(&dag, &graph);
        let templates = build(&tail);
        let latest = ops
            .iter()
            .chain(&templates)
            .map(|o| o.op().timestamp.wall_ms)
            .max()
            .unwrap();
        let (mut accepted, mut refused, mut frontier_checked) = (0, 0, 0);
        for (k, template) in templates.iter().skip(1).enumerate() {
            let wall = latest + 1 + k as u64;
            let key = (0..=u8::MAX)
                .map(keypair)
                .find(|k| k.public() == template.op().author)
                .unwrap();
            let op = Operation {
                repo,
                parents: dag.heads(),
                author: key.public(),
                timestamp: Hlc { wall_ms: wall, counter: 0 },
                payload: template.op().payload.clone(),
            }
            .sign(&key)
            .unwrap();
            let mut with = dag.clone();
            with.insert(op.clone()).unwrap();
            let full = fold(&with, &graph);
            let before = incremental.state().encode();
            // The same operation folded onto the state alone, where it can be.
            let newest = dag.topological().into_iter().map(|o| o.op().timestamp).max().unwrap();
            let mut alone = incremental.state().clone();
            let at_frontier = append_at_frontier(&mut alone, repo, &op, newest, &graph);
            match &at_frontier {
                Ok(()) => {
                    prop_assert_eq!(alone.encode(), full.encode());
                    frontier_checked += 1;
                }
                Err(FrontierError::Rejected(rejection)) => {
                    prop_assert_eq!(full.rejected.get(&op.id()), Some(rejection));
                    prop_assert_eq!(alone.encode(), before.clone());
                    frontier_checked += 1;
                }
                Err(FrontierError::NeedsLog) => {
                    prop_assert!(!folds_at_frontier(&op.op().payload));
                    prop_assert_eq!(alone.encode(), before.clone());
                }
                Err(FrontierError::WrongRepo) => prop_assert!(false, "wrong repository"),
            }
            match incremental.append(&mut dag, op.clone(), &graph) {
                Ok(()) => {
                    prop_assert_eq!(incremental.state().encode(), full.encode());
                    accepted += 1;
                }
                Err(AppendError::Rejected(rejection)) => {
                    prop_assert_eq!(full.rejected.get(&op.id()), Some(&rejection));
                    prop_assert_eq!(incremental.state().encode(), before);
                    prop_assert!(!dag.contains(&op.id()));
                    refused += 1;
                }
                Err(other) => prop_assert!(false, "unexpected {other}"),
            }
        }
        prop_assert_eq!(accepted + refused, templates.len() - 1);
        prop_assert_eq!(Fold::new(&dag, &graph).state().encode(), incremental.state().encode());
        let eligible = templates.iter().skip(1).filter(|t| folds_at_frontier(&t.op().payload)).count();
        prop_assert_eq!(frontier_checked, eligible);
    }
}

#[test]
fn append_refuses_what_it_cannot_fold_incrementally() {
    let graph = CommitGraph::default();
    let ops = build(&[]);
    let repo = ops[0].op().repo;
    let mut dag = RepoDag::new(repo);
    dag.insert(ops[0].clone()).unwrap();
    let mut f = Fold::new(&dag, &graph);
    let owner = keypair(1);
    let describe = |parents: Vec<OpId>, wall_ms: u64| {
        Operation {
            repo,
            parents,
            author: owner.public(),
            timestamp: Hlc {
                wall_ms,
                counter: 0,
            },
            payload: Payload::UpdateRepo {
                description: Some("x".into()),
                private: None,
                default_branch: None,
            },
        }
        .sign(&owner)
        .unwrap()
    };
    let orphan = describe(vec![], 5_000);
    assert_eq!(
        f.append(&mut dag, orphan, &graph),
        Err(AppendError::NotAtHeads)
    );
    let good = describe(dag.heads(), 5_001);
    f.append(&mut dag, good.clone(), &graph).unwrap();
    assert_eq!(
        f.append(&mut dag, good, &graph),
        Err(AppendError::Duplicate)
    );
    let stale = Fold::new(&RepoDag::new(repo), &graph);
    let next = describe(dag.heads(), 5_002);
    let mut stale = stale;
    assert_eq!(
        stale.append(&mut dag, next, &graph),
        Err(AppendError::Stale)
    );
    assert_eq!(f.state().applied, 2);
}

fn issue(number: u64, title: &str) -> Payload {
    Payload::OpenIssue {
        number,
        title: title.into(),
        body: String::new(),
        labels: vec![],
        assignees: vec![],
    }
}

fn number_of(state: &RepoState, id: &SignedOp) -> u64 {
    state.collab.threads[&id.id()].number
}

#[test]
fn concurrent_issues_with_one_number_get_distinct_numbers_in_either_order() {
    let mut w = World::new();
    let (alice, bob) = (keypair(1), keypair(2));
    let create = w.create.clone();
    let first = w.op(&alice, &[&create], 2_000, issue(1, "first"));
    // Bob, on another node, saw only the creation and proposed 1 too, later.
    let second = w.op(&bob, &[&create], 2_001, issue(1, "second"));
    let third = w.op(&alice, &[&first, &second], 3_000, issue(3, "third"));
    let state = w.state();
    assert_eq!(number_of(&state, &first), 1);
    assert_eq!(number_of(&state, &second), 2);
    assert_eq!(number_of(&state, &third), 3);
    assert_eq!(state.collab.next_number(), 4);
    // A proposal beyond the next free number is not taken at face value.
    let far = w.op(&alice, &[&third], 4_000, issue(1_000_000, "far"));
    assert_eq!(number_of(&w.state(), &far), 4);
}

#[test]
fn discussion_permissions_follow_github() {
    let mut w = World::new();
    let (alice, stranger) = (keypair(1), keypair(9));
    let create = w.create.clone();
    // Public repository: anyone opens issues and comments, nobody else edits them.
    let opened = w.op(&stranger, &[&create], 2_000, issue(1, "bug"));
    let comment = w.op(
        &stranger,
        &[&opened],
        2_001,
        Payload::Comment {
            thread: opened.id(),
            body: "details".into(),
        },
    );
    let label = w.op(
        &stranger,
        &[&comment],
        2_002,
        Payload::LabelThread {
            thread: opened.id(),
            add: vec!["bug".into()],
            remove: vec![],
        },
    );
    let lock = w.op(
        &alice,
        &[&label],
        2_003,
        Payload::EditThread {
            thread: opened.id(),
            edit: ThreadEdit {
                locked: Some(true),
                ..ThreadEdit::default()
            },
        },
    );
    let after_lock = w.op(
        &stranger,
        &[&lock],
        2_004,
        Payload::Comment {
            thread: opened.id(),
            body: "more".into(),
        },
    );
    let close = w.op(
        &stranger,
        &[&after_lock],
        2_005,
        Payload::EditThread {
            thread: opened.id(),
            edit: ThreadEdit {
                open: Some(false),
                ..ThreadEdit::default()
            },
        },
    );
    let state = w.state();
    let thread = &state.collab.threads[&opened.id()];
    assert_eq!(thread.comments, vec![comment.id()]);
    assert!(thread.labels.is_empty());
    assert!(thread.locked);
    assert!(matches!(
        state.rejected[&label.id()],
        Rejection::NotPermitted { .. }
    ));
    assert!(matches!(
        state.rejected[&after_lock.id()],
        Rejection::NotPermitted { .. }
    ));
    // The author may still close their own issue.
    assert!(!state.rejected.contains_key(&close.id()));
    assert!(!thread.open);
    assert_eq!(thread.closed.map(|(_, by)| by), Some(stranger.public()));
}

#[test]
fn pull_requests_merge_only_with_required_approvals() {
    let mut w = World::new();
    let (alice, bob, carol) = (keypair(1), keypair(2), keypair(3));
    let create = w.create.clone();
    let g1 = w.op(&alice, &[&create], 1_500, grant(&bob, Some(Role::Write)));
    let g2 = w.op(&alice, &[&g1], 1_501, grant(&carol, Some(Role::Write)));
    let main = w.op(&alice, &[&g2], 2_000, push(None, Some(1), false));
    let feature = w.op(
        &bob,
        &[&main],
        2_001,
        Payload::UpdateRef {
            name: "refs/heads/feature".into(),
            old: None,
            new: Some(commit(2)),
            force: false,
        },
    );
    let protect = w.op(
        &alice,
        &[&feature],
        2_002,
        Payload::SetBranchProtection {
            branch: MAIN.into(),
            protection: Some(BranchProtection {
                required_approvals: 1,
                ..BranchProtection::default()
            }),
        },
    );
    // Direct pushes to a reviewed branch are refused.
    let direct = w.op(&bob, &[&protect], 2_003, push(Some(1), Some(2), false));
    let open = w.op(
        &bob,
        &[&direct],
        2_004,
        Payload::OpenPull {
            number: 1,
            title: "feature".into(),
            body: String::new(),
            head: "feature".into(),
            base: "main".into(),
            draft: false,
        },
    );
    let merge = |pull: &SignedOp| Payload::MergePull {
        pull: pull.id(),
        method: MergeMethod::Merge,
        head: commit(2),
        old: commit(1),
        new: commit(4),
    };
    let early = w.op(&bob, &[&open], 2_005, merge(&open));
    let own = w.op(
        &bob,
        &[&early],
        2_006,
        Payload::Review {
            pull: open.id(),
            verdict: Verdict::Approve,
            body: String::new(),
            commit: commit(2),
            comments: vec![],
        },
    );
    let approve = w.op(
        &carol,
        &[&own],
        2_007,
        Payload::Review {
            pull: open.id(),
            verdict: Verdict::Approve,
            body: "ok".into(),
            commit: commit(2),
            comments: vec![],
        },
    );
    let merged = w.op(&bob, &[&approve], 2_008, merge(&open));
    let state = w.state();
    assert_eq!(
        state.rejected[&direct.id()],
        Rejection::Protected(ProtectedAction::DirectPush)
    );
    assert_eq!(
        state.rejected[&early.id()],
        Rejection::ReviewRequired {
            required: 1,
            approvals: 0
        }
    );
    assert_eq!(state.rejected[&own.id()], Rejection::OwnPullReview);
    assert!(!state.rejected.contains_key(&merged.id()), "{state:?}");
    assert_eq!(target(&state), Some(commit(4)));
    let pull = state.collab.threads[&open.id()].pull.clone().unwrap();
    assert_eq!(pull.merged.map(|m| m.commit), Some(commit(4)));
    assert_eq!(state.merge_approvals(&pull, &commit(2)), 1);
    assert!(!state.collab.threads[&open.id()].open);
}

/// A pull request `feature` (commit 2) into `main` (commit 1) opened by bob (a
/// write collaborator), `main` requiring one approval (and dismissing stale ones
/// if asked); returns the world, the pull request's opening and the last
/// operation so far.
fn reviewed_pull(dismiss_stale_reviews: bool) -> (World, SignedOp, SignedOp) {
    let mut w = World::new();
    let (alice, bob) = (keypair(1), keypair(2));
    let create = w.create.clone();
    let grant_bob = w.op(&alice, &[&create], 1_500, grant(&bob, Some(Role::Write)));
    let main = w.op(&alice, &[&grant_bob], 2_000, push(None, Some(1), false));
    let feature = w.op(
        &bob,
        &[&main],
        2_001,
        Payload::UpdateRef {
            name: "refs/heads/feature".into(),
            old: None,
            new: Some(commit(2)),
            force: false,
        },
    );
    let protect = w.op(
        &alice,
        &[&feature],
        2_002,
        Payload::SetBranchProtection {
            branch: MAIN.into(),
            protection: Some(BranchProtection {
                required_approvals: 1,
                dismiss_stale_reviews,
                ..BranchProtection::default()
            }),
        },
    );
    let open = w.op(
        &bob,
        &[&protect],
        2_003,
        Payload::OpenPull {
            number: 1,
            title: "feature".into(),
            body: String::new(),
            head: "feature".into(),
            base: "main".into(),
            draft: false,
        },
    );
    (w, open.clone(), open)
}

fn review(pull: &SignedOp, verdict: Verdict, commit: ObjectId) -> Payload {
    Payload::Review {
        pull: pull.id(),
        verdict,
        body: "r".into(),
        commit,
        comments: vec![],
    }
}

/// A merge of the pull request at head `head` (2, or 5 after a push): into commit
/// 4 (a child of 2) or a fast-forward to the head, both fast-forwards of `main`.
fn merge_at(pull: &SignedOp, head: u8) -> Payload {
    Payload::MergePull {
        pull: pull.id(),
        method: MergeMethod::Merge,
        head: commit(head),
        old: commit(1),
        new: commit(if head == 2 { 4 } else { head }),
    }
}

fn review_required(state: &RepoState, merge: &SignedOp) -> bool {
    state.rejected.get(&merge.id())
        == Some(&Rejection::ReviewRequired {
            required: 1,
            approvals: 0,
        })
}

#[test]
fn approvals_count_only_from_reviewers_with_write_access() {
    let bob = keypair(2);
    // (role granted to the reviewer before the review, whether the approval counts)
    let cases = [
        (None, false),
        (Some(Role::Read), false),
        (Some(Role::Write), true),
        (Some(Role::Admin), true),
    ];
    for (role, counts) in cases {
        let (mut w, open, last) = reviewed_pull(false);
        let (alice, carol) = (keypair(1), keypair(3));
        let granted = match role {
            Some(role) => w.op(&alice, &[&last], 2_100, grant(&carol, Some(role))),
            None => last,
        };
        let approve = w.op(
            &carol,
            &[&granted],
            2_200,
            review(&open, Verdict::Approve, commit(2)),
        );
        let merge = w.op(&bob, &[&approve], 2_300, merge_at(&open, 2));
        let state = w.state();
        assert!(!state.rejected.contains_key(&approve.id()), "{role:?}");
        assert_eq!(state.collab.reviews[&approve.id()].role, role);
        let pull = state.collab.threads[&open.id()].pull.clone().unwrap();
        if counts {
            assert!(!state.rejected.contains_key(&merge.id()), "{role:?}");
            assert_eq!(pull.merged.map(|m| m.commit), Some(commit(4)));
        } else {
            assert!(review_required(&state, &merge), "{role:?}: {state:?}");
            assert_eq!(state.merge_approvals(&pull, &commit(2)), 0);
            assert_eq!(target(&state), Some(commit(1)));
        }
    }
}

#[test]
fn write_access_is_needed_when_reviewing_and_still_at_the_merge() {
    let (alice, bob, carol) = (keypair(1), keypair(2), keypair(3));

    // Revoked (or demoted to read) before the merge, in the merge's causal past:
    // the approval no longer counts.
    for revoked_to in [None, Some(Role::Read)] {
        let (mut w, open, last) = reviewed_pull(false);
        let g = w.op(&alice, &[&last], 2_100, grant(&carol, Some(Role::Write)));
        let approve = w.op(
            &carol,
            &[&g],
            2_200,
            review(&open, Verdict::Approve, commit(2)),
        );
        let revoke = w.op(&alice, &[&approve], 2_300, grant(&carol, revoked_to));
        let merge = w.op(&bob, &[&revoke], 2_400, merge_at(&open, 2));
        let state = w.state();
        assert!(review_required(&state, &merge), "{revoked_to:?}: {state:?}");
    }

    // A revocation concurrent with the merge (the merger could not see it) does
    // not unmerge it, whichever comes first in the order.
    let (mut w, open, last) = reviewed_pull(false);
    let g = w.op(&alice, &[&last], 2_100, grant(&carol, Some(Role::Write)));
    let approve = w.op(
        &carol,
        &[&g],
        2_200,
        review(&open, Verdict::Approve, commit(2)),
    );
    let revoke = w.op(&alice, &[&approve], 2_300, grant(&carol, None));
    let merge = w.op(&bob, &[&approve], 2_400, merge_at(&open, 2));
    let state = w.state();
    assert!(!state.rejected.contains_key(&revoke.id()));
    assert!(!state.rejected.contains_key(&merge.id()), "{state:?}");
    assert_eq!(target(&state), Some(commit(4)));

    // Write access granted only after approving: the approval was given without
    // it and does not count.
    let (mut w, open, last) = reviewed_pull(false);
    let g = w.op(&alice, &[&last], 2_100, grant(&carol, Some(Role::Read)));
    let approve = w.op(
        &carol,
        &[&g],
        2_200,
        review(&open, Verdict::Approve, commit(2)),
    );
    let promote = w.op(&alice, &[&approve], 2_300, grant(&carol, Some(Role::Write)));
    let merge = w.op(&bob, &[&promote], 2_400, merge_at(&open, 2));
    let state = w.state();
    assert!(review_required(&state, &merge), "{state:?}");
    // Approving again, now with write access, counts.
    let again = w.op(
        &carol,
        &[&merge],
        2_500,
        review(&open, Verdict::Approve, commit(2)),
    );
    let merge = w.op(&bob, &[&again], 2_600, merge_at(&open, 2));
    let state = w.state();
    assert!(!state.rejected.contains_key(&merge.id()), "{state:?}");
}

#[test]
fn the_latest_review_of_each_reviewer_counts() {
    let (alice, bob, carol, dave) = (keypair(1), keypair(2), keypair(3), keypair(4));
    let (mut w, open, last) = reviewed_pull(false);
    let g1 = w.op(&alice, &[&last], 2_100, grant(&carol, Some(Role::Write)));
    let g2 = w.op(&alice, &[&g1], 2_101, grant(&dave, Some(Role::Write)));
    // Carol approves, then asks for changes: she no longer approves.
    let approve = w.op(
        &carol,
        &[&g2],
        2_200,
        review(&open, Verdict::Approve, commit(2)),
    );
    let changes = w.op(
        &carol,
        &[&approve],
        2_201,
        review(&open, Verdict::RequestChanges, commit(2)),
    );
    let merge = w.op(&bob, &[&changes], 2_300, merge_at(&open, 2));
    let state = w.state();
    assert!(review_required(&state, &merge), "{state:?}");
    // Two approvals by one reviewer are one approval; a later plain comment
    // does not take it back.
    let first = w.op(
        &dave,
        &[&merge],
        2_400,
        review(&open, Verdict::Approve, commit(2)),
    );
    let second = w.op(
        &dave,
        &[&first],
        2_401,
        review(&open, Verdict::Approve, commit(2)),
    );
    let comment = w.op(
        &dave,
        &[&second],
        2_402,
        review(&open, Verdict::Comment, commit(2)),
    );
    let pull = w.state().collab.threads[&open.id()].pull.clone().unwrap();
    assert_eq!(w.state().merge_approvals(&pull, &commit(2)), 1);
    // Carol approving again makes two.
    let back = w.op(
        &carol,
        &[&comment],
        2_403,
        review(&open, Verdict::Approve, commit(2)),
    );
    let state = w.state();
    let pull = state.collab.threads[&open.id()].pull.clone().unwrap();
    assert_eq!(state.merge_approvals(&pull, &commit(2)), 2);
    let merge = w.op(&bob, &[&back], 2_500, merge_at(&open, 2));
    assert!(!w.state().rejected.contains_key(&merge.id()));
}

#[test]
fn stale_approvals_are_dismissed_when_the_protection_asks() {
    let (alice, bob, carol) = (keypair(1), keypair(2), keypair(3));
    for dismiss in [true, false] {
        let (mut w, open, last) = reviewed_pull(dismiss);
        let g = w.op(&alice, &[&last], 2_100, grant(&carol, Some(Role::Write)));
        let approve = w.op(
            &carol,
            &[&g],
            2_200,
            review(&open, Verdict::Approve, commit(2)),
        );
        // Bob pushes another commit to the pull request's branch.
        let moved = w.op(
            &bob,
            &[&approve],
            2_300,
            Payload::UpdateRef {
                name: "refs/heads/feature".into(),
                old: Some(commit(2)),
                new: Some(commit(5)),
                force: false,
            },
        );
        let state = w.state();
        let pull = state.collab.threads[&open.id()].pull.clone().unwrap();
        assert_eq!(state.merge_approvals(&pull, &commit(2)), 1, "{dismiss}");
        assert_eq!(
            state.merge_approvals(&pull, &commit(5)),
            usize::from(!dismiss),
            "{dismiss}"
        );
        let merge = w.op(&bob, &[&moved], 2_400, merge_at(&open, 5));
        let state = w.state();
        if !dismiss {
            assert!(!state.rejected.contains_key(&merge.id()), "{state:?}");
            assert_eq!(target(&state), Some(commit(5)));
            continue;
        }
        assert!(review_required(&state, &merge), "{state:?}");
        // Approving the new head counts again.
        let again = w.op(
            &carol,
            &[&merge],
            2_500,
            review(&open, Verdict::Approve, commit(5)),
        );
        let merge = w.op(&bob, &[&again], 2_600, merge_at(&open, 5));
        let state = w.state();
        assert!(!state.rejected.contains_key(&merge.id()), "{state:?}");
        assert_eq!(target(&state), Some(commit(5)));
        let pull = state.collab.threads[&open.id()].pull.clone().unwrap();
        assert_eq!(pull.merged.map(|m| m.head), Some(commit(5)));
    }
}

#[test]
fn the_stale_review_flag_is_part_of_the_state() {
    let states: Vec<Vec<u8>> = [false, true]
        .into_iter()
        .map(|dismiss| reviewed_pull(dismiss).0.state().encode())
        .collect();
    assert_ne!(states[0], states[1]);
}

#[test]
fn labels_rename_and_delete_reach_every_thread() {
    let mut w = World::new();
    let alice = keypair(1);
    let create = w.create.clone();
    let opened = w.op(
        &alice,
        &[&create],
        2_000,
        Payload::OpenIssue {
            number: 1,
            title: "t".into(),
            body: String::new(),
            labels: vec!["Bug".into()],
            assignees: vec![],
        },
    );
    let rename = w.op(
        &alice,
        &[&opened],
        2_001,
        Payload::SetLabel {
            name: "bug".into(),
            label: Some(LabelDef {
                name: "defect".into(),
                color: "ff0000".into(),
                description: String::new(),
            }),
        },
    );
    let state = w.state();
    assert!(state.collab.threads[&opened.id()].labels.contains("defect"));
    assert_eq!(state.collab.labels["defect"].color, "ff0000");
    w.op(
        &alice,
        &[&rename],
        2_002,
        Payload::SetLabel {
            name: "DEFECT".into(),
            label: None,
        },
    );
    let state = w.state();
    assert!(state.collab.labels.is_empty());
    assert!(state.collab.threads[&opened.id()].labels.is_empty());
}

fn request(pull: &SignedOp, add: &[&Keypair], remove: &[&Keypair]) -> Payload {
    Payload::AssignThread {
        thread: pull.id(),
        as_: Assignment::Reviewer,
        add: add.iter().map(|k| k.public()).collect(),
        remove: remove.iter().map(|k| k.public()).collect(),
    }
}

#[test]
fn reviews_are_requested_from_collaborators_and_answered_by_reviewing() {
    let (mut w, open, last) = reviewed_pull(false);
    let (alice, bob, carol, stranger) = (keypair(1), keypair(2), keypair(3), keypair(9));
    let carol_in = w.op(&alice, &[&last], 2_010, grant(&carol, Some(Role::Read)));
    let asked = w.op(
        &bob,
        &[&carol_in],
        2_011,
        request(&open, &[&alice, &carol], &[]),
    );
    let author = w.op(&alice, &[&asked], 2_012, request(&open, &[&bob], &[]));
    let outsider = w.op(&alice, &[&asked], 2_013, request(&open, &[&stranger], &[]));
    let by_reader = w.op(&carol, &[&asked], 2_014, request(&open, &[], &[&alice]));
    let state = w.state();
    assert!(
        !state.rejected.contains_key(&asked.id()),
        "{:?}",
        state.rejected
    );
    assert_eq!(
        state.rejected.get(&author.id()),
        Some(&Rejection::OwnPullReview)
    );
    assert!(matches!(
        state.rejected.get(&outsider.id()),
        Some(Rejection::NotPermitted { held: None, .. })
    ));
    assert!(matches!(
        state.rejected.get(&by_reader.id()),
        Some(Rejection::NotPermitted { .. })
    ));
    let requested = |state: &RepoState| {
        state.collab.threads[&open.id()]
            .pull
            .as_ref()
            .unwrap()
            .requested
            .clone()
    };
    assert_eq!(requested(&state).len(), 2);
    let with_requests = state.encode();

    // Alice reviews: her request is answered; bob withdraws carol's.
    let reviewed = w.op(
        &alice,
        &[&by_reader, &outsider, &author],
        2_020,
        review(&open, Verdict::Approve, commit(2)),
    );
    assert_eq!(
        requested(&w.state()).into_iter().collect::<Vec<_>>(),
        [carol.public()]
    );
    w.op(&bob, &[&reviewed], 2_021, request(&open, &[], &[&carol]));
    let state = w.state();
    assert!(requested(&state).is_empty());
    assert_ne!(state.encode(), with_requests);
}

fn edit_inline(review: &SignedOp, index: u32, body: Option<&str>) -> Payload {
    Payload::EditReviewComment {
        review: review.id(),
        index,
        body: body.map(str::to_owned),
    }
}

#[test]
fn inline_review_comments_are_edited_and_deleted_in_place() {
    let (mut w, open, last) = reviewed_pull(false);
    let (alice, bob, carol) = (keypair(1), keypair(2), keypair(3));
    let carol_in = w.op(&alice, &[&last], 2_010, grant(&carol, Some(Role::Read)));
    let inline = |n: u32| ReviewComment {
        path: "src/lib.rs".into(),
        line: n,
        body: format!("note {n}"),
    };
    let review = w.op(
        &carol,
        &[&carol_in],
        2_011,
        Payload::Review {
            pull: open.id(),
            verdict: Verdict::Comment,
            body: String::new(),
            commit: commit(2),
            comments: vec![inline(1), inline(2)],
        },
    );
    let before = w.state().encode();
    let edited = w.op(
        &carol,
        &[&review],
        2_012,
        edit_inline(&review, 0, Some("better")),
    );
    let by_other = w.op(&bob, &[&edited], 2_013, edit_inline(&review, 1, None));
    let out_of_range = w.op(
        &carol,
        &[&by_other],
        2_014,
        edit_inline(&review, 2, Some("x")),
    );
    let state = w.state();
    assert!(!state.rejected.contains_key(&edited.id()));
    // Bob has write access: he may delete carol's comment, as on GitHub.
    assert!(!state.rejected.contains_key(&by_other.id()));
    assert_eq!(
        state.rejected.get(&out_of_range.id()),
        Some(&Rejection::NoSuchComment)
    );
    let stored = &state.collab.reviews[&review.id()];
    // The state names the operation that wrote each text, and that operation holds it.
    assert_eq!(
        stored.comments[0].body,
        TextRef::new(edited.id(), 0, "better")
    );
    assert_eq!(edited.op().payload.text(0), Some("better"));
    assert_eq!(
        stored.comments[1].body,
        TextRef::new(review.id(), 2, "note 2")
    );
    assert_eq!(review.op().payload.text(2), Some("note 2"));
    assert_eq!(review.op().payload.text(3), None);
    assert_eq!(stored.edited.get(&0), Some(&at(2_012)));
    assert!(stored.deleted.contains(&1));
    assert_ne!(state.encode(), before);
    // A deleted comment cannot be edited again; a reader cannot edit someone else's.
    let again = w.op(
        &carol,
        &[&out_of_range],
        2_015,
        edit_inline(&review, 1, Some("back")),
    );
    let stranger = w.op(&keypair(9), &[&again], 2_016, edit_inline(&review, 0, None));
    let state = w.state();
    assert_eq!(
        state.rejected.get(&again.id()),
        Some(&Rejection::NoSuchComment)
    );
    assert!(matches!(
        state.rejected.get(&stranger.id()),
        Some(Rejection::NotPermitted { .. })
    ));
}

// ---- commit statuses --------------------------------------------------------------

fn status(commit_n: u8, state: crate::checks::StatusState, context: &str) -> Payload {
    Payload::SetStatus {
        commit: commit(commit_n),
        state,
        context: context.into(),
        description: Some("the build".into()),
        target_url: Some("https://ci.example/1".into()),
    }
}

#[test]
fn statuses_need_write_access_and_keep_every_post_newest_last() {
    use crate::checks::{StatusState, combined_state};
    let mut w = World::new();
    let create = w.create.clone();
    let reader = keypair(2);
    let writer = keypair(3);
    let g1 = w.op(&keypair(1), &[&create], 1, grant(&reader, Some(Role::Read)));
    let g2 = w.op(&keypair(1), &[&g1], 2, grant(&writer, Some(Role::Write)));
    let forged = w.op(&reader, &[&g2], 3, status(1, StatusState::Success, "ci"));
    let pending = w.op(&writer, &[&g2], 4, status(1, StatusState::Pending, "ci"));
    let success = w.op(
        &writer,
        &[&pending],
        5,
        status(1, StatusState::Success, "CI"),
    );
    let state = w.state();
    assert_eq!(
        state.rejected.get(&forged.id()),
        Some(&Rejection::NotPermitted {
            required: Role::Write,
            held: Some(Role::Read)
        })
    );
    let all = state.checks.all(&commit(1));
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].op, success.id());
    assert_eq!(all[1].op, pending.id());
    // Contexts compare case-insensitively: "CI" is the latest of "ci".
    let latest = state.checks.latest(&commit(1));
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].context, "CI");
    assert_eq!(combined_state(latest), StatusState::Success);
    assert_eq!(
        combined_state(state.checks.latest(&commit(2))),
        StatusState::Pending
    );
}

#[test]
fn combined_state_follows_githubs_rules() {
    use crate::checks::{StatusState, combined_state};
    let mut w = World::new();
    let create = w.create.clone();
    let owner = keypair(1);
    let a = w.op(&owner, &[&create], 1, status(1, StatusState::Success, "a"));
    let b = w.op(&owner, &[&a], 2, status(1, StatusState::Pending, "b"));
    assert_eq!(
        combined_state(w.state().checks.latest(&commit(1))),
        StatusState::Pending
    );
    let c = w.op(&owner, &[&b], 3, status(1, StatusState::Error, "c"));
    assert_eq!(
        combined_state(w.state().checks.latest(&commit(1))),
        StatusState::Failure
    );
    let d = w.op(&owner, &[&c], 4, status(1, StatusState::Success, "c"));
    w.op(&owner, &[&d], 5, status(1, StatusState::Success, "b"));
    assert_eq!(
        combined_state(w.state().checks.latest(&commit(1))),
        StatusState::Success
    );
}

#[test]
fn status_fields_and_counts_are_bounded() {
    use crate::checks::{MAX_DESCRIPTION_CHARS, StatusState};
    let mut w = World::new();
    let create = w.create.clone();
    let owner = keypair(1);
    let bad =
        |context: &str, description: Option<String>, url: Option<String>| Payload::SetStatus {
            commit: commit(1),
            state: StatusState::Success,
            context: context.into(),
            description,
            target_url: url,
        };
    let empty = w.op(&owner, &[&create], 1, bad(" ", None, None));
    let long = w.op(
        &owner,
        &[&create],
        1,
        bad("ci", Some("é".repeat(MAX_DESCRIPTION_CHARS + 1)), None),
    );
    let control = w.op(&owner, &[&create], 1, bad("ci", None, Some("a\nb".into())));
    let ok = w.op(
        &owner,
        &[&create],
        1,
        bad("ci", Some("é".repeat(MAX_DESCRIPTION_CHARS)), None),
    );
    let state = w.state();
    for (op, field) in [
        (empty, "context"),
        (long, "description"),
        (control, "target_url"),
    ] {
        assert_eq!(
            state.rejected.get(&op.id()),
            Some(&Rejection::InvalidText { field })
        );
    }
    assert!(!state.rejected.contains_key(&ok.id()));
    // The per-context cap, exercised directly on the rule (a thousand signed operations
    // would only slow the test down).
    let mut checks = crate::checks::Checks::default();
    let post = |n: u64| crate::checks::CommitStatus {
        state: StatusState::Pending,
        context: "ci".into(),
        description: None,
        target_url: None,
        creator: owner.public(),
        at: at(n),
        op: OpId::from_bytes([0; 32]),
    };
    for n in 0..crate::checks::MAX_STATUSES_PER_CONTEXT as u64 {
        checks.set_status(commit(1), post(n)).unwrap();
    }
    assert_eq!(
        checks.set_status(commit(1), post(5_000)),
        Err(Rejection::TooMany { field: "statuses" })
    );
    // And the per-commit cap, over many contexts.
    let mut checks = crate::checks::Checks::default();
    let per_context = crate::checks::MAX_STATUSES_PER_CONTEXT as u64;
    let total = crate::checks::MAX_STATUSES_PER_COMMIT as u64;
    for n in 0..total {
        let mut status = post(n);
        status.context = format!("ctx-{}", n / per_context);
        checks.set_status(commit(2), status).unwrap();
    }
    let mut extra = post(total);
    extra.context = "fresh".into();
    assert_eq!(
        checks.set_status(commit(2), extra),
        Err(Rejection::TooMany { field: "statuses" })
    );
}

#[test]
fn statuses_converge_in_either_order() {
    use crate::checks::StatusState;
    let mut w = World::new();
    let create = w.create.clone();
    let owner = keypair(1);
    let a = w.op(&owner, &[&create], 7, status(1, StatusState::Pending, "ci"));
    let b = w.op(&owner, &[&create], 7, status(1, StatusState::Failure, "ci"));
    let state = w.state();
    let forward = fold_in_order(&[create.clone(), a.clone(), b.clone()], &w.graph);
    let backward = fold_in_order(&[create, b, a], &w.graph);
    assert_eq!(forward.digest(), backward.digest());
    assert_eq!(forward.digest(), state.digest());
}

#[test]
fn required_checks_hold_back_merges_and_pushes_until_green() {
    use crate::checks::StatusState;
    use crate::op::RequiredChecks;
    let mut w = World::new();
    let alice = keypair(1);
    let create = w.create.clone();
    let main = w.op(&alice, &[&create], 1, push(None, Some(1), false));
    let feature = w.op(
        &alice,
        &[&main],
        2,
        Payload::UpdateRef {
            name: "refs/heads/feature".into(),
            old: None,
            new: Some(commit(2)),
            force: false,
        },
    );
    let protect = w.op(
        &alice,
        &[&feature],
        3,
        Payload::SetBranchProtection {
            branch: MAIN.into(),
            protection: Some(BranchProtection {
                required_checks: Some(RequiredChecks {
                    strict: true,
                    contexts: vec!["ci".into()],
                }),
                ..BranchProtection::default()
            }),
        },
    );
    let direct = w.op(&alice, &[&protect], 4, push(Some(1), Some(2), false));
    let open = w.op(
        &alice,
        &[&direct],
        5,
        Payload::OpenPull {
            number: 1,
            title: "feature".into(),
            body: String::new(),
            head: "feature".into(),
            base: "main".into(),
            draft: false,
        },
    );
    let expected = w.op(&alice, &[&open], 6, merge_at(&open, 2));
    let red = w.op(
        &alice,
        &[&expected],
        7,
        status(2, StatusState::Failure, "CI"),
    );
    let failing = w.op(&alice, &[&red], 8, merge_at(&open, 2));
    let green = w.op(
        &alice,
        &[&failing],
        9,
        status(2, StatusState::Success, "ci"),
    );
    let behind = w.op(
        &alice,
        &[&green],
        10,
        Payload::MergePull {
            pull: open.id(),
            method: MergeMethod::Merge,
            head: commit(2),
            old: commit(3),
            new: commit(4),
        },
    );
    let merged = w.op(&alice, &[&behind], 11, merge_at(&open, 2));
    let state = w.state();
    let check = |failing| Rejection::StatusCheck {
        context: "ci".into(),
        failing,
    };
    assert_eq!(state.rejected.get(&direct.id()), Some(&check(false)));
    assert_eq!(state.rejected.get(&expected.id()), Some(&check(false)));
    assert_eq!(state.rejected.get(&failing.id()), Some(&check(true)));
    assert_eq!(
        state.rejected.get(&behind.id()),
        Some(&Rejection::HeadBehind)
    );
    assert!(
        !state.rejected.contains_key(&merged.id()),
        "{:?}",
        state.rejected
    );
    assert_eq!(target(&state), Some(commit(4)));
    assert_eq!(
        check(true).to_string(),
        "Required status check \"ci\" is failing."
    );
}

// ---- check runs -------------------------------------------------------------------

fn run_fields(name: Option<&str>) -> crate::check_runs::CheckRunFields {
    crate::check_runs::CheckRunFields {
        name: name.map(Into::into),
        ..Default::default()
    }
}

fn create_run(commit_n: u8, fields: crate::check_runs::CheckRunFields) -> Payload {
    Payload::CreateCheckRun {
        head: commit(commit_n),
        fields,
    }
}

fn update_run(run: &SignedOp, fields: crate::check_runs::CheckRunFields) -> Payload {
    Payload::UpdateCheckRun {
        run: run.id(),
        fields,
    }
}

#[test]
fn check_runs_need_write_access_and_follow_githubs_status_rules() {
    use crate::check_runs::{CheckOutput, CheckRunFields, CheckStatus, Conclusion};
    let mut w = World::new();
    let create = w.create.clone();
    let reader = keypair(2);
    let writer = keypair(3);
    let g1 = w.op(&keypair(1), &[&create], 1, grant(&reader, Some(Role::Read)));
    let g2 = w.op(&keypair(1), &[&g1], 2, grant(&writer, Some(Role::Write)));
    let forged = w.op(
        &reader,
        &[&g2],
        3_000,
        create_run(1, run_fields(Some("ci"))),
    );
    let run = w.op(
        &writer,
        &[&g2],
        4_000,
        create_run(1, run_fields(Some("ci"))),
    );
    let nameless = w.op(&writer, &[&run], 5_000, create_run(1, run_fields(None)));
    let unconcluded = w.op(
        &writer,
        &[&nameless],
        6_000,
        update_run(
            &run,
            CheckRunFields {
                status: Some(CheckStatus::Completed),
                ..Default::default()
            },
        ),
    );
    let stranger = w.op(
        &writer,
        &[&unconcluded],
        7_000,
        update_run(&g2, run_fields(None)),
    );
    let state = w.state();
    assert!(matches!(
        state.rejected.get(&forged.id()),
        Some(Rejection::NotPermitted { .. })
    ));
    let invalid = |field| Some(Rejection::InvalidText { field });
    assert_eq!(state.rejected.get(&nameless.id()).cloned(), invalid("name"));
    assert_eq!(
        state.rejected.get(&unconcluded.id()).cloned(),
        invalid("conclusion")
    );
    assert_eq!(
        state.rejected.get(&stranger.id()),
        Some(&Rejection::NoSuchCheckRun)
    );
    let queued = state.checks.runs.by_number(run.id().numeric()).unwrap();
    assert_eq!(queued.status, CheckStatus::Queued);
    assert_eq!(queued.started_at, Some(4));
    assert_eq!(queued.conclusion, None);

    // A conclusion completes the run, at the update's time unless told otherwise.
    let output = CheckOutput {
        title: "Tests".into(),
        summary: "all passed".into(),
        text: None,
    };
    let done = w.op(
        &writer,
        &[&stranger],
        9_000,
        update_run(
            &run,
            CheckRunFields {
                conclusion: Some(Conclusion::Success),
                output: Some(output.clone()),
                ..Default::default()
            },
        ),
    );
    let state = w.state();
    assert!(!state.rejected.contains_key(&done.id()));
    let completed = state.checks.runs.by_number(run.id().numeric()).unwrap();
    assert_eq!(completed.status, CheckStatus::Completed);
    assert_eq!(completed.conclusion, Some(Conclusion::Success));
    assert_eq!(completed.completed_at, Some(9));
    assert_eq!(completed.output, Some(output));
    assert_eq!(completed.name, "ci");

    // Back in progress: the conclusion goes.
    w.op(
        &writer,
        &[&done],
        10_000,
        update_run(
            &run,
            CheckRunFields {
                status: Some(CheckStatus::InProgress),
                ..Default::default()
            },
        ),
    );
    let state = w.state();
    let again = state.checks.runs.by_number(run.id().numeric()).unwrap();
    assert_eq!(again.status, CheckStatus::InProgress);
    assert_eq!((again.conclusion, again.completed_at), (None, None));
}

#[test]
fn check_run_fields_and_counts_are_bounded() {
    use crate::check_runs::{
        CheckOutput, CheckRunFields, MAX_CHECK_RUNS_PER_COMMIT, MAX_OUTPUT_CHARS, MAX_TIMESTAMP,
    };
    let mut w = World::new();
    let create = w.create.clone();
    let owner = keypair(1);
    let cases = [
        ("name", run_fields(Some(" "))),
        ("name", run_fields(Some("a\nb"))),
        (
            "details_url",
            CheckRunFields {
                details_url: Some("https://x/\u{7}".into()),
                ..run_fields(Some("ci"))
            },
        ),
        (
            "started_at",
            CheckRunFields {
                started_at: Some(MAX_TIMESTAMP + 1),
                ..run_fields(Some("ci"))
            },
        ),
        (
            "output",
            CheckRunFields {
                output: Some(CheckOutput {
                    title: "t".into(),
                    summary: "é".repeat(MAX_OUTPUT_CHARS + 1),
                    text: None,
                }),
                ..run_fields(Some("ci"))
            },
        ),
    ];
    let mut parent = create;
    for (n, (field, fields)) in cases.into_iter().enumerate() {
        let op = w.op(&owner, &[&parent], n as u64 + 1, create_run(1, fields));
        assert_eq!(
            w.state().rejected.get(&op.id()),
            Some(&Rejection::InvalidText { field }),
            "{field}"
        );
        parent = op;
    }

    // The per-commit cap, straight on the state (a thousand operations are slow).
    let mut runs = crate::check_runs::CheckRuns::default();
    let by = |n: u32| crate::check_runs::Author {
        key: owner.public(),
        at: at(u64::from(n)),
        op: OpId::from_bytes(blake3::hash(&n.to_be_bytes()).into()),
    };
    for n in 0..MAX_CHECK_RUNS_PER_COMMIT as u32 {
        runs.create(commit(1), &run_fields(Some("ci")), by(n))
            .unwrap();
    }
    assert_eq!(
        runs.create(commit(1), &run_fields(Some("ci")), by(5_000)),
        Err(Rejection::TooMany {
            field: "check_runs"
        })
    );
    runs.create(commit(2), &run_fields(Some("ci")), by(5_001))
        .unwrap();
    assert_eq!(runs.latest(&commit(1)).len(), 1);
    assert_eq!(runs.of_commit(&commit(1)).len(), MAX_CHECK_RUNS_PER_COMMIT);

    // The per-commit output budget.
    let big = |n: u32| CheckRunFields {
        output: Some(CheckOutput {
            title: String::new(),
            summary: "s".repeat(MAX_OUTPUT_CHARS),
            text: Some("t".repeat(MAX_OUTPUT_CHARS)),
        }),
        ..run_fields(Some(&format!("big {n}")))
    };
    let mut refused = None;
    for n in 0..100 {
        if let Err(e) = runs.create(commit(3), &big(n), by(10_000 + n)) {
            refused = Some((n, e));
            break;
        }
    }
    let budget = crate::check_runs::MAX_OUTPUT_BYTES_PER_COMMIT / (2 * MAX_OUTPUT_CHARS);
    assert_eq!(
        refused,
        Some((budget as u32, Rejection::TooMany { field: "output" }))
    );
}

#[test]
fn required_checks_pass_on_a_completed_check_run_of_that_name() {
    use crate::check_runs::{CheckRunFields, CheckStatus, Conclusion};
    use crate::op::RequiredChecks;
    let mut w = World::new();
    let create = w.create.clone();
    let alice = keypair(1);
    let main = w.op(&alice, &[&create], 1, push(None, Some(1), false));
    let protect = w.op(
        &alice,
        &[&main],
        2,
        Payload::SetBranchProtection {
            branch: MAIN.into(),
            protection: Some(BranchProtection {
                required_checks: Some(RequiredChecks {
                    strict: false,
                    contexts: vec!["build".into()],
                }),
                ..BranchProtection::default()
            }),
        },
    );
    let run = w.op(
        &alice,
        &[&protect],
        3,
        create_run(
            2,
            CheckRunFields {
                status: Some(CheckStatus::InProgress),
                ..run_fields(Some("Build"))
            },
        ),
    );
    let early = w.op(&alice, &[&run], 4, push(Some(1), Some(2), false));
    let concluded = |c| CheckRunFields {
        conclusion: Some(c),
        ..Default::default()
    };
    let red = w.op(
        &alice,
        &[&early],
        5,
        update_run(&run, concluded(Conclusion::Failure)),
    );
    let failing = w.op(&alice, &[&red], 6, push(Some(1), Some(2), false));
    // A rerun: the latest run of the name counts.
    let rerun = w.op(
        &alice,
        &[&failing],
        7,
        create_run(
            2,
            CheckRunFields {
                conclusion: Some(Conclusion::Neutral),
                ..run_fields(Some("build"))
            },
        ),
    );
    let pushed = w.op(&alice, &[&rerun], 8, push(Some(1), Some(2), false));
    let state = w.state();
    let check = |failing| Rejection::StatusCheck {
        context: "build".into(),
        failing,
    };
    assert_eq!(state.rejected.get(&early.id()), Some(&check(false)));
    assert_eq!(state.rejected.get(&failing.id()), Some(&check(true)));
    assert!(
        !state.rejected.contains_key(&pushed.id()),
        "{:?}",
        state.rejected
    );
    assert_eq!(target(&state), Some(commit(2)));
    let (status, conclusion) = crate::check_runs::suite_state(state.checks.runs.latest(&commit(2)));
    assert_eq!(
        (status, conclusion),
        (CheckStatus::Completed, Some(Conclusion::Neutral))
    );
    let (status, conclusion) =
        crate::check_runs::suite_state(state.checks.runs.of_commit(&commit(2)));
    assert_eq!(
        (status, conclusion),
        (CheckStatus::Completed, Some(Conclusion::Failure))
    );
}

#[test]
fn a_repository_without_check_runs_encodes_as_before() {
    // The check-run section is written only when some run exists.
    let mut w = World::new();
    let create = w.create.clone();
    let before = w.state().encode();
    assert!(!before.windows(8).any(|b| b == (u64::MAX - 5).to_be_bytes()));
    w.op(
        &keypair(1),
        &[&create],
        1,
        create_run(1, run_fields(Some("ci"))),
    );
    let after = w.state().encode();
    assert!(after.windows(8).any(|b| b == (u64::MAX - 5).to_be_bytes()));
}
