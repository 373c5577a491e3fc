//! Generated operation sequences for the decoder's round-trip property: actions that
//! pick among the threads, reviews, comments, runs and hooks made so far, so that the
//! folded states reach every section of the encoding (which a test checks), unlike
//! payloads drawn at random, which the fold mostly rejects.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::*;
use crate::collab::{Collab, Thread};

/// What a generated sequence does; indices pick among what exists so far.
#[derive(Debug, Clone)]
enum Action {
    Grant(u8, Option<Role>, bool),
    Push(u8, Option<u8>, Option<u8>, bool),
    Protect(u8, bool, bool),
    OpenPull(u8, u8),
    OpenIssue,
    Request(usize, u8),
    Review(usize, u8, u8),
    EditReview(usize, u32, bool),
    Comment(usize),
    DeleteComment(usize),
    Merge(usize, u8),
    Status(u8, u8, u8),
    CreateRun(u8, u8),
    UpdateRun(usize, u8),
    Hook(usize, u8),
    Settings(u8, bool),
    Any(Box<Payload>),
}

const BRANCHES: [&str; 3] = ["main", "feature", "dev"];

fn action() -> impl Strategy<Value = Action> {
    let role = prop_oneof![
        Just(None),
        Just(Some(Role::Read)),
        Just(Some(Role::Write)),
        Just(Some(Role::Admin)),
    ];
    let commit = || proptest::option::of(1u8..=5);
    prop_oneof![
        1 => (2u8..=4, role, any::<bool>()).prop_map(|(u, r, o)| Action::Grant(u, r, o)),
        3 => (0u8..3, commit(), commit(), any::<bool>())
            .prop_map(|(b, old, new, f)| Action::Push(b, old, new, f)),
        1 => (0u8..3, any::<bool>(), any::<bool>()).prop_map(|(b, c, s)| Action::Protect(b, c, s)),
        2 => (0u8..3, 0u8..3).prop_map(|(h, b)| Action::OpenPull(h, b)),
        1 => Just(Action::OpenIssue),
        1 => (any::<usize>(), 2u8..=4).prop_map(|(t, u)| Action::Request(t, u)),
        3 => (any::<usize>(), 0u8..3, 1u8..4).prop_map(|(t, v, n)| Action::Review(t, v, n)),
        4 => (any::<usize>(), 0u32..3, any::<bool>())
            .prop_map(|(r, i, d)| Action::EditReview(r, i, d)),
        1 => any::<usize>().prop_map(Action::Comment),
        1 => any::<usize>().prop_map(Action::DeleteComment),
        1 => (any::<usize>(), 1u8..=5).prop_map(|(t, h)| Action::Merge(t, h)),
        2 => (1u8..=5, 0u8..3, 1u8..=4).prop_map(|(c, x, s)| Action::Status(c, x, s)),
        2 => (1u8..=5, 0u8..3).prop_map(|(c, n)| Action::CreateRun(c, n)),
        1 => (any::<usize>(), 0u8..=7).prop_map(|(r, c)| Action::UpdateRun(r, c)),
        1 => (any::<usize>(), 0u8..4).prop_map(|(h, k)| Action::Hook(h, k)),
        1 => (0u8..4, any::<bool>()).prop_map(|(k, v)| Action::Settings(k, v)),
        2 => crate::arbitrary::payload().prop_map(|p| Action::Any(Box::new(p))),
    ]
}

fn pick(ids: &[OpId], n: usize) -> OpId {
    ids.get(n % ids.len().max(1))
        .copied()
        .unwrap_or(OpId::from_bytes([7; 32]))
}

/// Folds a generated sequence: authors 1 (the owner) to 4, two in three operations
/// after every head, the rest concurrent with the previous one.
fn generated(steps: &[(u8, bool, Action)]) -> RepoState {
    generated_chain(steps).state()
}

/// The operations of a generated sequence.
fn generated_chain(steps: &[(u8, bool, Action)]) -> Chain {
    let mut c = Chain::new();
    let (mut threads, mut reviews, mut comments, mut runs, mut hooks) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let ci = ["ci", "build", "Lint"];
    // Branches to open pull requests between, and a writer and a reader besides the
    // owner, so that reviews, merges and their edits are reachable.
    let owner = keypair(1);
    for (b, n) in BRANCHES.iter().zip([2, 4, 5]) {
        c.op(
            &owner,
            update_ref(&format!("refs/heads/{b}"), None, Some(n), false),
        );
    }
    for (user, role) in [(2, Role::Write), (3, Role::Read)] {
        let user = keypair(user).public();
        c.op(
            &owner,
            Payload::SetRole {
                user,
                role: Some(role),
            },
        );
    }
    for (author, branch_off, action) in steps {
        let key = keypair(*author);
        let branch = |b: &u8| BRANCHES[usize::from(*b) % 3];
        let payload = match action.clone() {
            Action::Grant(user, role, org) => {
                let user = keypair(user).public();
                if org {
                    Payload::SetOrgAccess { user, role }
                } else {
                    Payload::SetRole { user, role }
                }
            }
            Action::Push(b, old, new, force) => {
                update_ref(&format!("refs/heads/{}", branch(&b)), old, new, force)
            }
            Action::Protect(b, checks, stale) => Payload::SetBranchProtection {
                branch: format!("refs/heads/{}", branch(&b)),
                protection: Some(BranchProtection {
                    no_force_push: stale,
                    no_deletion: checks,
                    required_approvals: u8::from(stale),
                    dismiss_stale_reviews: stale,
                    required_checks: checks.then(|| RequiredChecks {
                        strict: stale,
                        contexts: vec!["ci".into(), "build".into()],
                    }),
                }),
            },
            Action::OpenPull(h, b) => Payload::OpenPull {
                number: 1,
                title: "pull".into(),
                body: String::new(),
                head: branch(&(h + 1)).into(),
                base: branch(&(h + 1 + b % 2 + 1)).into(),
                draft: false,
            },
            Action::OpenIssue => Payload::OpenIssue {
                number: 1,
                title: "issue".into(),
                body: String::new(),
                labels: vec![],
                assignees: vec![],
            },
            Action::Request(t, user) => Payload::AssignThread {
                thread: pick(&threads, t),
                as_: Assignment::Reviewer,
                add: vec![keypair(user).public()],
                remove: vec![],
            },
            Action::Review(t, verdict, n) => Payload::Review {
                pull: pick(&threads, t),
                verdict: [Verdict::Approve, Verdict::RequestChanges, Verdict::Comment]
                    [usize::from(verdict)],
                body: "review".into(),
                commit: commit(4),
                comments: (0..n)
                    .map(|line| ReviewComment {
                        path: "src/lib.rs".into(),
                        line: u32::from(line),
                        body: "here".into(),
                    })
                    .collect(),
            },
            Action::EditReview(r, index, delete) => Payload::EditReviewComment {
                review: pick(&reviews, r),
                index,
                body: (!delete).then(|| "changed".into()),
            },
            Action::Comment(t) => Payload::Comment {
                thread: pick(&threads, t),
                body: "a comment".into(),
            },
            Action::DeleteComment(n) => Payload::EditComment {
                comment: pick(&comments, n),
                body: None,
            },
            Action::Merge(t, head) => Payload::MergePull {
                pull: pick(&threads, t),
                method: crate::collab::MergeMethod::Squash,
                head: commit(head),
                old: commit(2),
                new: commit(head),
            },
            Action::Status(n, context, state) => Payload::SetStatus {
                commit: commit(n),
                state: StatusState::from_tag(state).unwrap_or(StatusState::Success),
                context: ci[usize::from(context)].into(),
                description: None,
                target_url: None,
            },
            Action::CreateRun(n, name) => Payload::CreateCheckRun {
                head: commit(n),
                fields: run_fields(ci[usize::from(name)], None),
            },
            Action::UpdateRun(r, conclusion) => Payload::UpdateCheckRun {
                run: pick(&runs, r),
                fields: CheckRunFields {
                    conclusion: Conclusion::from_tag(conclusion),
                    ..CheckRunFields::default()
                },
            },
            Action::Hook(h, kind) => Payload::SetHook {
                hook: (kind > 0).then(|| pick(&hooks, h)),
                config: (kind != 2).then(|| hook("https://ci.example/h")),
            },
            Action::Settings(kind, value) => Payload::RepoSettings {
                name: (kind == 0).then(|| format!("repo-{}", c.clock)),
                homepage: (kind == 1).then(|| "https://example.org".into()),
                has_issues: (kind == 2).then_some(value),
                archived: (kind == 3).then_some(value),
            },
            Action::Any(payload) => *payload,
        };
        let id = if *branch_off {
            let parents = c.heads.clone();
            let id = c.sign(&key, &parents, c.clock + 1, payload);
            c.heads.push(id);
            id
        } else {
            c.op(&key, payload)
        };
        match action {
            Action::OpenPull(..) | Action::OpenIssue => threads.push(id),
            Action::Review(..) => reviews.push(id),
            Action::Comment(..) => comments.push(id),
            Action::CreateRun(..) => runs.push(id),
            Action::Hook(_, 0) => hooks.push(id),
            _ => {}
        }
    }
    c
}

fn steps() -> impl Strategy<Value = Vec<(u8, bool, Action)>> {
    proptest::collection::vec(
        (
            prop_oneof![3 => Just(1u8), 1 => 2u8..=4],
            proptest::bool::weighted(0.15),
            action(),
        ),
        1..60,
    )
}

/// Which sections of the encoding `state` reaches.
fn sections(state: &RepoState) -> [bool; 12] {
    let meta = state.meta.as_ref();
    let pulls = || {
        state
            .collab
            .threads
            .values()
            .filter_map(|t| t.pull.as_ref())
    };
    let reviews = || state.collab.reviews.values();
    [
        !state.access.org.is_empty(),
        meta.is_some_and(|m| !m.former_names.is_empty() || m.archived || !m.has_issues),
        pulls().any(|p| !p.requested.is_empty()),
        reviews().any(|r| !r.edited.is_empty()),
        reviews().any(|r| !r.deleted.is_empty()),
        state
            .protections
            .values()
            .any(|p| p.required_checks.is_some()),
        !state.checks.statuses.is_empty(),
        !state.hooks.hooks.is_empty(),
        !state.checks.runs.is_empty(),
        !state.conflicts.is_empty(),
        pulls().any(|p| p.merged.is_some()),
        state
            .rejected
            .values()
            .map(Rejection::reason)
            .collect::<BTreeSet<_>>()
            .len()
            >= 5,
    ]
}

#[test]
fn generated_sequences_reach_every_section_and_round_trip() {
    // Deterministic, so that what the assertion on sections sees never varies.
    let mut runner = TestRunner::deterministic();
    let mut reached = [0usize; 12];
    for _ in 0..64 {
        let steps = steps().new_tree(&mut runner).unwrap().current();
        let state = generated(&steps);
        for (count, hit) in reached.iter_mut().zip(sections(&state)) {
            *count += usize::from(hit);
        }
        assert_eq!(RepoState::decode(&state.encode()), Ok(state), "{steps:?}");
    }
    println!("sections reached in 64 sequences: {reached:?}");
    assert!(
        reached.iter().all(|n| *n > 0),
        "sections reached: {reached:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any folded sequence round-trips exactly, and so do its bytes.
    #[test]
    fn folded_states_round_trip(steps in steps()) {
        let state = generated(&steps);
        let bytes = state.encode();
        let decoded = RepoState::decode(&bytes);
        prop_assert_eq!(decoded.as_ref(), Ok(&state));
        prop_assert_eq!(decoded.map(|s| s.encode()), Ok(bytes));
    }

    /// Every body the state names is in the operation it names, at the length it says:
    /// what a read renders is what was written.
    #[test]
    fn every_text_reference_resolves(steps in steps()) {
        let chain = generated_chain(&steps);
        let collab = chain.state().collab;
        let texts = collab.threads.values().map(|t| &t.body)
            .chain(collab.comments.values().map(|c| &c.body))
            .chain(collab.reviews.values().flat_map(|r| {
                std::iter::once(&r.body).chain(r.comments.iter().map(|c| &c.body))
            }));
        for text in texts {
            let op = chain.dag.get(&text.op);
            let resolved = op.and_then(|op| op.op().payload.text(text.part));
            prop_assert_eq!(resolved.map(str::len), Some(text.len as usize), "{:?}", text);
        }
    }

    /// A thread alone and a repository's labels alone (what the store keeps to serve
    /// issue lists without the state) read back exactly, requested reviewers included;
    /// every cut of them is an error, never a panic.
    #[test]
    fn thread_rows_and_labels_read_back_exactly(steps in steps()) {
        let collab = generated_chain(&steps).state().collab;
        for (id, thread) in collab.threads.iter() {
            let row = thread.encode_row(id);
            let (back_id, back) = Thread::decode_row(&row).unwrap();
            prop_assert_eq!(back_id, *id);
            prop_assert_eq!(&back, thread);
            for cut in 0..row.len() {
                prop_assert!(Thread::decode_row(&row[..cut]).is_err());
            }
        }
        // The filter read from a row's bytes agrees with the decoded thread.
        let keys: Vec<String> = collab.labels.keys().cloned().collect();
        for (id, thread) in collab.threads.iter() {
            let row = thread.encode_row(id);
            for open in [None, Some(true), Some(false)] {
                let singles = keys.iter().map(std::slice::from_ref);
                for wanted in [&keys[..0], &keys[..]].into_iter().chain(singles) {
                    let decoded = open.is_none_or(|o| thread.open == o)
                        && wanted.iter().all(|l| thread.labels.contains(l));
                    prop_assert_eq!(Thread::row_may_match(&row, open, wanted), Ok(decoded));
                }
            }
        }
        let labels = collab.encode_labels();
        prop_assert_eq!(Collab::decode_labels(&labels).unwrap(), collab.labels.clone());
        let mut longer = labels.clone();
        longer.push(0);
        prop_assert!(Collab::decode_labels(&longer).is_err());
    }
}
