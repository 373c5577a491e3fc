//! Tests of the state decoder: folded states round-trip exactly (scenarios that reach
//! every trailing section, and generated operation sequences that are checked to reach
//! them too), and hostile bytes (prefixes, extensions, mutations, noise, huge counts)
//! are refused without panicking.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::arbitrary::{CommitGraph, keypair};
use crate::check_runs::{CheckRunFields, CheckStatus, Conclusion};
use crate::checks::StatusState;
use crate::collab::{Assignment, ReviewComment, Verdict};
use crate::dag::RepoDag;
use crate::fold::{ProtectedAction, Rejection, fold};
use crate::hlc::Hlc;
use crate::hooks::{ContentType, HookConfig};
use crate::identity::Keypair;
use crate::ids::RepoId;
use crate::names::NameError;
use crate::op::{Operation, Payload};

fn at(wall_ms: u64) -> Hlc {
    Hlc {
        wall_ms,
        counter: 0,
    }
}

fn commit(n: u8) -> ObjectId {
    CommitGraph::commit(n)
}

/// Operations signed and inserted one after another; each names the current heads as
/// parents unless it is one of a concurrent group.
struct Chain {
    dag: RepoDag,
    graph: CommitGraph,
    heads: Vec<OpId>,
    clock: u64,
}

impl Chain {
    fn new() -> Self {
        let owner = keypair(1);
        let created = at(1_000);
        let repo = RepoId::derive(&owner.public(), "alice", "repo", created);
        let mut graph = CommitGraph::default();
        graph.add(1, &[]);
        graph.add(2, &[1]);
        graph.add(3, &[1]);
        graph.add(4, &[2]);
        graph.add(5, &[2]);
        let mut chain = Self {
            dag: RepoDag::new(repo),
            graph,
            heads: Vec::new(),
            clock: 999,
        };
        let create = Payload::CreateRepo {
            owner: "alice".into(),
            name: "repo".into(),
            description: "a repository".into(),
            private: false,
            default_branch: "main".into(),
        };
        chain.op(&owner, create);
        chain
    }

    fn sign(&mut self, key: &Keypair, parents: &[OpId], wall_ms: u64, payload: Payload) -> OpId {
        let mut parents = parents.to_vec();
        parents.sort();
        let signed = Operation {
            repo: self.dag.repo(),
            parents,
            author: key.public(),
            timestamp: at(wall_ms),
            payload,
        }
        .sign(key)
        .unwrap();
        let id = signed.id();
        self.dag.insert(signed).unwrap();
        id
    }

    /// An operation after every head.
    fn op(&mut self, key: &Keypair, payload: Payload) -> OpId {
        self.clock += 1;
        let heads = self.heads.clone();
        let id = self.sign(key, &heads, self.clock, payload);
        self.heads = vec![id];
        id
    }

    /// Operations concurrent with each other, all after the current heads.
    fn concurrent(&mut self, ops: Vec<(Keypair, Payload)>) -> Vec<OpId> {
        self.clock += 1;
        let parents = self.heads.clone();
        let ids: Vec<OpId> = ops
            .into_iter()
            .map(|(key, payload)| self.sign(&key, &parents, self.clock, payload))
            .collect();
        self.heads = ids.clone();
        ids
    }

    fn state(&self) -> RepoState {
        fold(&self.dag, &self.graph)
    }
}

fn update_ref(name: &str, old: Option<u8>, new: Option<u8>, force: bool) -> Payload {
    Payload::UpdateRef {
        name: name.into(),
        old: old.map(commit),
        new: new.map(commit),
        force,
    }
}

fn hook(url: &str) -> HookConfig {
    HookConfig {
        url: url.into(),
        content_type: ContentType::Form,
        secret: vec![1, 2, 3],
        insecure_ssl: true,
        events: vec!["push".into(), "pull_request".into()],
        active: true,
    }
}

fn run_fields(name: &str, conclusion: Option<Conclusion>) -> CheckRunFields {
    CheckRunFields {
        name: Some(name.into()),
        status: Some(CheckStatus::InProgress),
        conclusion,
        details_url: Some("https://ci.example/run".into()),
        external_id: Some("42".into()),
        output: Some(crate::check_runs::CheckOutput {
            title: "built".into(),
            summary: "all good".into(),
            text: Some("details".into()),
        }),
        ..CheckRunFields::default()
    }
}

/// A repository that reaches every section of the encoding through the fold.
fn scenario() -> RepoState {
    let (alice, bob, carol, mallory) = (keypair(1), keypair(2), keypair(3), keypair(4));
    let mut c = Chain::new();
    c.op(
        &alice,
        Payload::SetRole {
            user: bob.public(),
            role: Some(Role::Write),
        },
    );
    c.op(
        &alice,
        Payload::SetOrgAccess {
            user: carol.public(),
            role: Some(Role::Read),
        },
    );
    c.op(&bob, update_ref("refs/heads/main", None, Some(2), false));
    c.op(&bob, update_ref("refs/heads/feature", None, Some(4), false));
    let protection = BranchProtection {
        no_force_push: true,
        no_deletion: true,
        required_approvals: 0,
        dismiss_stale_reviews: true,
        required_checks: Some(RequiredChecks {
            strict: false,
            contexts: vec!["ci".into(), "build".into()],
        }),
    };
    c.op(
        &alice,
        Payload::SetBranchProtection {
            branch: "refs/heads/main".into(),
            protection: Some(protection),
        },
    );
    let pull = c.op(
        &bob,
        Payload::OpenPull {
            number: 1,
            title: "a change".into(),
            body: "please".into(),
            head: "feature".into(),
            base: "main".into(),
            draft: false,
        },
    );
    c.op(
        &bob,
        Payload::AssignThread {
            thread: pull,
            as_: Assignment::Reviewer,
            add: vec![carol.public()],
            remove: vec![],
        },
    );
    let comments = ["a.rs", "b.rs", "c.rs"].map(|path| ReviewComment {
        path: path.into(),
        line: 7,
        body: format!("on {path}"),
    });
    let review = c.op(
        &alice,
        Payload::Review {
            pull,
            verdict: Verdict::Approve,
            body: "fine".into(),
            commit: commit(4),
            comments: comments.to_vec(),
        },
    );
    c.op(
        &alice,
        Payload::EditReviewComment {
            review,
            index: 0,
            body: Some("edited".into()),
        },
    );
    c.op(
        &bob,
        Payload::EditReviewComment {
            review,
            index: 2,
            body: None,
        },
    );
    let issue = c.op(
        &mallory,
        Payload::OpenIssue {
            number: 2,
            title: "a bug".into(),
            body: "it breaks".into(),
            labels: vec![],
            assignees: vec![],
        },
    );
    let first = c.op(
        &mallory,
        Payload::Comment {
            thread: issue,
            body: "first".into(),
        },
    );
    c.op(
        &mallory,
        Payload::Comment {
            thread: issue,
            body: "second".into(),
        },
    );
    c.op(
        &mallory,
        Payload::EditComment {
            comment: first,
            body: None,
        },
    );
    c.op(
        &bob,
        Payload::LabelThread {
            thread: issue,
            add: vec!["Bug".into()],
            remove: vec![],
        },
    );
    c.op(
        &bob,
        Payload::SetStatus {
            commit: commit(4),
            state: StatusState::Success,
            context: "CI".into(),
            description: Some("green".into()),
            target_url: None,
        },
    );
    c.op(
        &bob,
        Payload::SetStatus {
            commit: commit(4),
            state: StatusState::Pending,
            context: "lint".into(),
            description: None,
            target_url: Some("https://ci.example/lint".into()),
        },
    );
    let run = c.op(
        &bob,
        Payload::CreateCheckRun {
            head: commit(4),
            fields: run_fields("build", None),
        },
    );
    c.op(
        &bob,
        Payload::UpdateCheckRun {
            run,
            fields: run_fields("build", Some(Conclusion::Success)),
        },
    );
    c.op(
        &alice,
        Payload::SetHook {
            hook: None,
            config: Some(hook("https://ci.example/hook")),
        },
    );
    c.op(
        &bob,
        Payload::MergePull {
            pull,
            method: crate::collab::MergeMethod::Merge,
            head: commit(4),
            old: commit(2),
            new: commit(4),
        },
    );
    c.op(
        &alice,
        Payload::RepoSettings {
            name: Some("renamed".into()),
            homepage: Some("https://example.org".into()),
            has_issues: None,
            archived: None,
        },
    );
    // Rejections of several kinds.
    c.op(
        &mallory,
        Payload::SetRole {
            user: mallory.public(),
            role: Some(Role::Admin),
        },
    );
    c.op(&bob, update_ref("refs/heads/main", Some(4), Some(3), false));
    c.op(&bob, update_ref("refs/heads/a..b", None, Some(1), false));
    c.op(
        &alice,
        Payload::SetHook {
            hook: None,
            config: Some(hook("ftp://nope")),
        },
    );
    c.op(
        &bob,
        Payload::Comment {
            thread: OpId::from_bytes([9; 32]),
            body: "lost".into(),
        },
    );
    c.op(&bob, update_ref("refs/heads/main", Some(4), None, true));
    let heads = c.heads.clone();
    c.sign(
        &bob,
        &heads,
        1,
        update_ref("refs/heads/late", None, Some(1), false),
    );
    // Concurrent creations of one branch: the loser is kept as a conflict.
    c.concurrent(vec![
        (
            bob.clone(),
            update_ref("refs/heads/dev", None, Some(4), false),
        ),
        (
            alice.clone(),
            update_ref("refs/heads/dev", None, Some(3), false),
        ),
    ]);
    c.op(
        &alice,
        Payload::SetHook {
            hook: None,
            config: Some(hook("http://ci.example/second")),
        },
    );
    c.state()
}

#[test]
fn a_scenario_reaching_every_section_round_trips() {
    let state = scenario();
    // Every trailing section, and the main ones that are easy to leave empty.
    assert!(!state.access.org.is_empty());
    let meta = state.meta.as_ref().unwrap();
    assert_eq!(meta.former_names, vec!["repo".to_string()]);
    let pull = state.collab.threads.values().find_map(|t| t.pull.as_ref());
    assert!(!pull.unwrap().requested.is_empty());
    assert!(pull.unwrap().merged.is_some());
    let review = state.collab.reviews.values().next().unwrap();
    assert!(!review.edited.is_empty() && !review.deleted.is_empty());
    assert!(state.required_checks("refs/heads/main").is_some());
    assert_eq!(
        state
            .checks
            .statuses
            .values()
            .map(BTreeMap::len)
            .sum::<usize>(),
        2
    );
    assert_eq!(state.hooks.hooks.len(), 2);
    assert!(!state.checks.runs.is_empty());
    assert!(!state.conflicts.is_empty());
    assert!(!state.collab.comment_ids.is_empty());
    let kinds: BTreeSet<&str> = state.rejected.values().map(Rejection::reason).collect();
    for kind in [
        "not_permitted",
        "invalid_name",
        "invalid_text",
        "no_such_thread",
    ] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }
    assert!(kinds.len() >= 6, "{kinds:?}");
    assert_eq!(RepoState::decode(&state.encode()), Ok(state));
}

/// Every rejection the encoding knows, with fields of every shape.
fn every_rejection() -> Vec<Rejection> {
    let mut all = vec![
        Rejection::CreateWithParents,
        Rejection::RepoIdMismatch,
        Rejection::AlreadyCreated,
        Rejection::NoRepo,
        Rejection::RepoDeleted,
        Rejection::NotPermitted {
            required: Role::Write,
            held: None,
        },
        Rejection::NotPermitted {
            required: Role::Owner,
            held: Some(Role::Read),
        },
        Rejection::OwnerImmutable,
        Rejection::AdminRequiresOwner,
        Rejection::ReservedRef,
        Rejection::EmptyRefUpdate,
        Rejection::RefPathConflict {
            existing: "refs/heads/a".into(),
        },
        Rejection::NonFastForward,
        Rejection::NoSuchThread,
        Rejection::NotAPull,
        Rejection::NoSuchComment,
        Rejection::ThreadClosed,
        Rejection::AlreadyMerged,
        Rejection::Draft,
        Rejection::OwnPullReview,
        Rejection::ReviewRequired {
            required: 3,
            approvals: 1,
        },
        Rejection::SameBranch,
        Rejection::BranchMissing,
        Rejection::DuplicatePull,
        Rejection::NoCommits,
        Rejection::LabelExists,
        Rejection::BeforeParents { at: 5, parent: 9 },
        Rejection::Archived,
        Rejection::IssuesDisabled,
        Rejection::StatusCheck {
            context: "ci".into(),
            failing: true,
        },
        Rejection::HeadBehind,
        Rejection::NoSuchHook,
        Rejection::NoSuchCheckRun,
    ];
    all.extend(
        [
            ProtectedAction::ForcePush,
            ProtectedAction::Deletion,
            ProtectedAction::DirectPush,
        ]
        .map(Rejection::Protected),
    );
    for field in crate::fold::rejection::FIELDS {
        all.push(Rejection::InvalidText { field });
        all.push(Rejection::TooMany { field });
    }
    let errors = [
        NameError::Empty,
        NameError::TooLong { max: 9, found: 12 },
        NameError::InvalidChar {
            ch: 'é',
            position: 3,
        },
        NameError::EdgeHyphen,
        NameError::DoubleHyphen,
        NameError::DotName,
        NameError::GitSuffix,
        NameError::NotUnderRefs,
        NameError::DoubleDot,
        NameError::AtBrace,
        NameError::BareAt,
        NameError::EmptyComponent,
        NameError::TrailingSlash,
        NameError::TrailingDot,
        NameError::DotComponent,
        NameError::LockComponent,
        NameError::HeadBranch,
        NameError::LeadingHyphen,
    ];
    all.extend(errors.into_iter().map(|error| Rejection::InvalidName {
        field: "ref name",
        error,
    }));
    all
}

#[test]
fn every_rejection_kind_round_trips() {
    let mut state = scenario();
    for (n, rejection) in every_rejection().into_iter().enumerate() {
        let mut id = [0xEE; 32];
        id[..8].copy_from_slice(&(n as u64).to_be_bytes());
        state.rejected.insert(OpId::from_bytes(id), rejection);
    }
    assert_eq!(RepoState::decode(&state.encode()), Ok(state));
}

#[test]
fn the_smallest_states_round_trip() {
    let empty = RepoState::default();
    assert_eq!(RepoState::decode(&empty.encode()), Ok(empty));
    let created = Chain::new().state();
    assert_eq!(RepoState::decode(&created.encode()), Ok(created));
}

#[test]
fn every_strict_prefix_and_every_extension_is_refused() {
    let state = scenario();
    let bytes = state.encode();
    // The trailing sections are optional, so a prefix that stops right before one is
    // the encoding of the state without it (and without every later one): the format
    // is not prefix-free, whatever the decoder does. Every other prefix fails.
    let mut boundaries = Vec::new();
    for len in 0..bytes.len() {
        if let Ok(shorter) = RepoState::decode(&bytes[..len]) {
            assert_eq!(shorter.encode(), &bytes[..len]);
            assert_ne!(shorter, state);
            boundaries.push(len);
        }
    }
    // Org access, then settings, requested reviewers, edited review comments, required
    // checks, statuses, hooks and check runs: one boundary before each.
    assert_eq!(boundaries.len(), 8, "{boundaries:?}");
    let marker = |len: usize| bytes[len..len + 8].try_into().map(u64::from_be_bytes);
    for len in boundaries.iter().skip(1) {
        assert!(SECTIONS.contains(&marker(*len).unwrap()), "{len}");
    }
    for extra in [0u8, 1, 0xFF] {
        let mut longer = bytes.clone();
        longer.push(extra);
        assert!(RepoState::decode(&longer).is_err());
    }
    let mut other = bytes.clone();
    other[0] = other[0].wrapping_add(1);
    assert_eq!(
        RepoState::decode(&other),
        Err(DecodeError::UnsupportedVersion(other[0]))
    );
}

#[test]
fn huge_counts_are_refused_before_allocating() {
    for count in [u64::MAX, u64::MAX - 7, 1 << 40, 1 << 20] {
        // No meta, not deleted, then the collaborators' count with nothing behind it.
        let mut bytes = vec![STATE_FORMAT_VERSION, 0, 0];
        bytes.extend_from_slice(&count.to_be_bytes());
        bytes.extend_from_slice(&[0; 64]);
        assert!(matches!(
            RepoState::decode(&bytes),
            Err(DecodeError::UnexpectedEnd { .. } | DecodeError::TooManyItems { .. })
        ));
    }
    // A huge string length in the meta.
    let mut bytes = vec![STATE_FORMAT_VERSION, 1];
    bytes.extend_from_slice(&u64::MAX.to_be_bytes());
    assert!(RepoState::decode(&bytes).is_err());
}

#[test]
fn sections_are_refused_out_of_order_twice_or_empty() {
    let base = Chain::new().state().encode();
    let with = |tail: &[u64]| {
        let mut bytes = base.clone();
        tail.iter()
            .for_each(|word| bytes.extend_from_slice(&word.to_be_bytes()));
        RepoState::decode(&bytes)
    };
    // Empty sections: the encoder writes none of them.
    for marker in [u64::MAX - 1, u64::MAX - 2, u64::MAX - 3, u64::MAX - 4] {
        assert!(with(&[marker, 0]).is_err(), "{marker}");
    }
    assert!(with(&[u64::MAX - 5, 0]).is_err());
    assert!(with(&[u64::MAX - 6, 0]).is_err());
    // An organization section of no members.
    assert!(with(&[0]).is_err());
    // Default settings.
    let mut settings = base.clone();
    settings.extend_from_slice(&u64::MAX.to_be_bytes());
    let created = Chain::new().state();
    let meta = created.meta.as_ref().unwrap();
    settings.extend_from_slice(&meta.created_at.wall_ms.to_be_bytes());
    settings.extend_from_slice(&meta.created_at.counter.to_be_bytes());
    settings.extend_from_slice(&0u64.to_be_bytes());
    settings.extend_from_slice(&0u64.to_be_bytes());
    settings.extend_from_slice(&[1, 0]);
    assert_eq!(
        RepoState::decode(&settings),
        Err(DecodeError::NotCanonical {
            field: "repository settings"
        })
    );
    // The same settings, archived, are fine once and only once, and not after a later
    // section.
    let last = settings.len() - 1;
    settings[last] = 1;
    assert!(RepoState::decode(&settings).is_ok());
    let mut twice = settings.clone();
    twice.extend_from_slice(&settings[base.len()..]);
    assert!(RepoState::decode(&twice).is_err());
    let state = scenario();
    let bytes = state.encode();
    let mut reordered = bytes.clone();
    reordered.extend_from_slice(&settings[base.len()..]);
    assert!(RepoState::decode(&reordered).is_err());
}

mod generated;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Arbitrary bytes never panic; whatever decodes re-encodes to the same bytes.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(state) = RepoState::decode(&bytes) {
            prop_assert_eq!(state.encode(), bytes);
        }
    }

    /// Changed bytes of a real encoding never panic, and are refused unless they spell
    /// another state exactly.
    #[test]
    fn mutated_encodings_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = scenario().encode();
        for (index, byte) in edits {
            let i = index.index(bytes.len());
            bytes[i] = byte;
        }
        if let Ok(state) = RepoState::decode(&bytes) {
            prop_assert_eq!(state.encode(), bytes);
        }
    }
}

/// The literal after `prefix` wherever `source` spells `prefix"literal"`, the prefix
/// then whitespace and `{ field:` allowed between.
fn literals_after<'a>(source: &'a str, prefix: &str, braced: bool) -> Vec<&'a str> {
    let mut found = Vec::new();
    for (at, _) in source.match_indices(prefix) {
        let mut rest = &source[at + prefix.len()..];
        if braced {
            let Some(after) = rest.trim_start().strip_prefix('{') else {
                continue;
            };
            let Some(after) = after.trim_start().strip_prefix("field:") else {
                continue;
            };
            rest = after.trim_start();
        }
        if let Some(text) = rest.strip_prefix('"')
            && let Some(end) = text.find('"')
        {
            found.push(&text[..end]);
        }
    }
    found
}

/// A rejection's field is stored as text and decoded back to one of
/// `rejection::FIELDS`: every field the fold's rules name must be there, or a state
/// holding that rejection would not load.
#[test]
fn every_field_a_rejection_names_decodes() {
    let sources = [
        include_str!("../../fold.rs"),
        include_str!("../../collab.rs"),
        include_str!("../../checks.rs"),
        include_str!("../../check_runs.rs"),
        include_str!("../../hooks.rs"),
    ];
    let mut named = BTreeSet::new();
    for source in sources {
        for prefix in ["InvalidText", "TooMany ", "TooMany{", "InvalidName"] {
            named.extend(literals_after(source, prefix, true));
        }
        for prefix in ["fail(", "invalid("] {
            named.extend(literals_after(source, prefix, false));
        }
    }
    assert!(named.len() > 20, "{named:?}");
    let known: BTreeSet<&str> = crate::fold::rejection::FIELDS.iter().copied().collect();
    let missing: Vec<&&str> = named.difference(&known).collect();
    assert!(
        missing.is_empty(),
        "fields missing from FIELDS: {missing:?}"
    );
}
