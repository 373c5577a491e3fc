//! Proptest generators for the domain types, kept next to the types so every module's
//! tests build values the same way.

use proptest::prelude::*;

use crate::check_runs::{CheckOutput, CheckRunFields, CheckStatus, Conclusion};
use crate::checks::StatusState;
use crate::collab::{Assignment, LabelDef, MergeMethod, ReviewComment, ThreadEdit, Verdict};
use crate::hlc::Hlc;
use crate::hooks::{ContentType, HookConfig};
use crate::identity::{Keypair, PublicKey};
use crate::ids::{ObjectId, OpId, RepoId};
use crate::op::{BranchProtection, Operation, Payload, RequiredChecks, Role};

/// A small fixed cast of keys, so generated operations reuse authors.
pub(crate) fn keypair(seed: u8) -> Keypair {
    Keypair::from_seed(&[seed; 32])
}

pub(crate) fn any_keypair() -> impl Strategy<Value = Keypair> {
    (1u8..=5).prop_map(keypair)
}

pub(crate) fn public_key() -> impl Strategy<Value = PublicKey> {
    any_keypair().prop_map(|k| k.public())
}

pub(crate) fn hlc() -> impl Strategy<Value = Hlc> {
    (any::<u64>(), any::<u32>()).prop_map(|(wall_ms, counter)| Hlc { wall_ms, counter })
}

pub(crate) fn object_id() -> impl Strategy<Value = ObjectId> {
    any::<[u8; 20]>().prop_map(ObjectId::from_bytes)
}

pub(crate) fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Read),
        Just(Role::Write),
        Just(Role::Admin),
        Just(Role::Owner)
    ]
}

pub(crate) fn protection() -> impl Strategy<Value = BranchProtection> {
    let checks = proptest::option::of((any::<bool>(), 0usize..3)).prop_map(|checks| {
        checks.map(|(strict, n)| RequiredChecks {
            strict,
            contexts: ["ci", "lint", "CI"][..n]
                .iter()
                .map(|c| c.to_string())
                .collect(),
        })
    });
    (
        any::<bool>(),
        any::<bool>(),
        any::<u8>(),
        any::<bool>(),
        checks,
    )
        .prop_map(
            |(no_force_push, no_deletion, required_approvals, dismiss_stale_reviews, checks)| {
                BranchProtection {
                    no_force_push,
                    no_deletion,
                    required_approvals,
                    dismiss_stale_reviews,
                    required_checks: checks,
                }
            },
        )
}

/// Text that exercises multi-byte UTF-8 as well as plain names.
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9._-]{0,16}", "\\PC{0,24}"]
}

fn ref_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "refs/heads/[a-z]{1,8}",
        "refs/tags/v[0-9]{1,3}",
        "\\PC{0,24}"
    ]
}

/// The two access payloads and `SetHook`, one arm of [`payload`] (a flatter union
/// overflows the stack of a debug build's test thread).
fn access_payload() -> impl Strategy<Value = Payload> {
    let hook = (
        proptest::option::of(op_id()),
        any::<bool>(),
        "https?://[a-z]{1,8}/[a-z]{0,8}",
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec("[a-z_]{1,12}|\\*", 0..4),
        any::<(bool, bool, bool)>(),
    );
    (public_key(), proptest::option::of(role()), 0u8..3, hook).prop_map(
        |(user, role, kind, (hook, keep, url, secret, events, (form, insecure, active)))| match kind
        {
            0 => Payload::SetOrgAccess { user, role },
            1 => Payload::SetRole { user, role },
            _ => Payload::SetHook {
                hook,
                config: keep.then_some(HookConfig {
                    url,
                    content_type: if form {
                        ContentType::Form
                    } else {
                        ContentType::Json
                    },
                    secret,
                    insecure_ssl: insecure,
                    events,
                    active,
                }),
            },
        },
    )
}

/// `UpdateRepo` and `RepoSettings`, one arm of [`payload`] (for the same reason).
fn settings_payload() -> impl Strategy<Value = Payload> {
    let text = || proptest::option::of(text());
    let flag = || proptest::option::of(any::<bool>());
    (any::<bool>(), text(), text(), flag(), flag()).prop_map(|(settings, a, b, x, y)| {
        if settings {
            Payload::RepoSettings {
                name: a,
                homepage: b,
                has_issues: x,
                archived: y,
            }
        } else {
            Payload::UpdateRepo {
                description: a,
                private: x,
                default_branch: b,
            }
        }
    })
}

/// `Comment`, `SetStatus`, `CreateCheckRun` and `UpdateCheckRun`, one arm of
/// [`collab_payload`] (for the same reason as [`settings_payload`]).
fn comment_or_status() -> impl Strategy<Value = Payload> {
    let text = || proptest::option::of(text());
    (
        0u8..4,
        op_id(),
        object_id(),
        1u8..=4,
        text(),
        text(),
        text(),
        check_run_fields(),
    )
        .prop_map(|(kind, thread, commit, state, a, b, c, fields)| {
            match (kind, StatusState::from_tag(state)) {
                (1, Some(state)) => Payload::SetStatus {
                    commit,
                    state,
                    context: a.unwrap_or_default(),
                    description: b,
                    target_url: c,
                },
                (2, _) => Payload::CreateCheckRun {
                    head: commit,
                    fields,
                },
                (3, _) => Payload::UpdateCheckRun {
                    run: thread,
                    fields,
                },
                _ => Payload::Comment {
                    thread,
                    body: a.unwrap_or_default(),
                },
            }
        })
}

/// Any check run fields, each present or not (tags out of range stand for absent).
pub(crate) fn check_run_fields() -> impl Strategy<Value = CheckRunFields> {
    let opt = || proptest::option::of(text());
    (
        opt(),
        (0u8..=3, 0u8..=7),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
        opt(),
        opt(),
        proptest::option::of((text(), text(), opt())),
    )
        .prop_map(
            |(
                name,
                (status, conclusion),
                started_at,
                completed_at,
                details_url,
                external_id,
                output,
            )| {
                CheckRunFields {
                    name,
                    status: CheckStatus::from_tag(status),
                    conclusion: Conclusion::from_tag(conclusion),
                    started_at,
                    completed_at,
                    details_url,
                    external_id,
                    output: output.map(|(title, summary, text)| CheckOutput {
                        title,
                        summary,
                        text,
                    }),
                }
            },
        )
}

pub(crate) fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (text(), text(), text(), any::<bool>(), text()).prop_map(
            |(owner, name, description, private, default_branch)| Payload::CreateRepo {
                owner,
                name,
                description,
                private,
                default_branch,
            }
        ),
        settings_payload(),
        Just(Payload::DeleteRepo),
        access_payload(),
        (ref_name(), proptest::option::of(protection())).prop_map(|(branch, protection)| {
            Payload::SetBranchProtection { branch, protection }
        }),
        (
            ref_name(),
            proptest::option::of(object_id()),
            proptest::option::of(object_id()),
            any::<bool>()
        )
            .prop_map(|(name, old, new, force)| Payload::UpdateRef {
                name,
                old,
                new,
                force,
            }),
        collab_payload(),
    ]
}

fn op_id() -> impl Strategy<Value = OpId> {
    any::<[u8; 32]>().prop_map(OpId::from_bytes)
}

fn names() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(text(), 0..4)
}

fn keys() -> impl Strategy<Value = Vec<PublicKey>> {
    proptest::collection::vec(public_key(), 0..3)
}

fn thread_edit() -> impl Strategy<Value = ThreadEdit> {
    use proptest::option::of;
    (
        of(text()),
        of(text()),
        of(any::<bool>()),
        of(any::<bool>()),
        of(any::<bool>()),
        of(text()),
    )
        .prop_map(|(title, body, open, locked, draft, base)| ThreadEdit {
            title,
            body,
            open,
            locked,
            draft,
            base,
        })
}

/// Issue, pull request, comment, label, review and merge payloads.
fn collab_payload() -> impl Strategy<Value = Payload> {
    let verdict = prop_oneof![
        Just(Verdict::Approve),
        Just(Verdict::RequestChanges),
        Just(Verdict::Comment)
    ];
    let method = prop_oneof![
        Just(MergeMethod::Merge),
        Just(MergeMethod::Squash),
        Just(MergeMethod::Rebase)
    ];
    let review_comment = (text(), any::<u32>(), text())
        .prop_map(|(path, line, body)| ReviewComment { path, line, body });
    prop_oneof![
        (any::<u64>(), text(), text(), names(), keys()).prop_map(
            |(number, title, body, labels, assignees)| Payload::OpenIssue {
                number,
                title,
                body,
                labels,
                assignees,
            }
        ),
        (any::<u64>(), text(), text(), text(), text(), any::<bool>()).prop_map(
            |(number, title, body, head, base, draft)| Payload::OpenPull {
                number,
                title,
                body,
                head,
                base,
                draft,
            }
        ),
        (op_id(), thread_edit()).prop_map(|(thread, edit)| Payload::EditThread { thread, edit }),
        (op_id(), names(), names()).prop_map(|(thread, add, remove)| Payload::LabelThread {
            thread,
            add,
            remove
        }),
        (op_id(), any::<bool>(), keys(), keys()).prop_map(|(thread, reviewers, add, remove)| {
            Payload::AssignThread {
                thread,
                as_: if reviewers {
                    Assignment::Reviewer
                } else {
                    Assignment::Assignee
                },
                add,
                remove,
            }
        }),
        comment_or_status(),
        (op_id(), proptest::option::of(text()))
            .prop_map(|(comment, body)| Payload::EditComment { comment, body }),
        (op_id(), any::<u32>(), proptest::option::of(text())).prop_map(|(review, index, body)| {
            Payload::EditReviewComment {
                review,
                index,
                body,
            }
        }),
        (
            text(),
            proptest::option::of((text(), text(), text()).prop_map(
                |(name, color, description)| LabelDef {
                    name,
                    color,
                    description
                }
            ))
        )
            .prop_map(|(name, label)| Payload::SetLabel { name, label }),
        (
            op_id(),
            verdict,
            text(),
            object_id(),
            proptest::collection::vec(review_comment, 0..3)
        )
            .prop_map(|(pull, verdict, body, commit, comments)| Payload::Review {
                pull,
                verdict,
                body,
                commit,
                comments,
            }),
        (op_id(), method, object_id(), object_id(), object_id()).prop_map(
            |(pull, method, head, old, new)| Payload::MergePull {
                pull,
                method,
                head,
                old,
                new,
            }
        ),
    ]
}

/// An operation with arbitrary (not necessarily sorted) parents and the key of its
/// author, ready for `sign`.
pub(crate) fn signable_operation() -> impl Strategy<Value = (Operation, Keypair)> {
    (
        any::<[u8; 32]>(),
        proptest::collection::vec(any::<[u8; 32]>().prop_map(OpId::from_bytes), 0..5),
        any_keypair(),
        hlc(),
        payload(),
    )
        .prop_map(|(repo, parents, key, timestamp, payload)| {
            let op = Operation {
                repo: RepoId::from_bytes(repo),
                parents,
                author: key.public(),
                timestamp,
                payload,
            };
            (op, key)
        })
}

/// An in-memory git commit graph: the [`Ancestry`] of tests.
///
/// [`Ancestry`]: crate::fold::Ancestry
#[derive(Debug, Clone, Default)]
pub(crate) struct CommitGraph {
    parents: std::collections::BTreeMap<ObjectId, Vec<ObjectId>>,
}

impl CommitGraph {
    /// A commit id that is easy to read in failures.
    pub(crate) fn commit(n: u8) -> ObjectId {
        ObjectId::from_bytes([n; 20])
    }

    /// Adds commit `n` with the given parent commits.
    pub(crate) fn add(&mut self, n: u8, parents: &[u8]) -> ObjectId {
        let id = Self::commit(n);
        self.parents
            .insert(id, parents.iter().map(|&p| Self::commit(p)).collect());
        id
    }
}

impl crate::fold::Ancestry for CommitGraph {
    fn is_ancestor(&self, ancestor: &ObjectId, descendant: &ObjectId) -> bool {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![*descendant];
        while let Some(commit) = stack.pop() {
            if commit == *ancestor {
                return true;
            }
            if seen.insert(commit) {
                stack.extend(self.parents.get(&commit).into_iter().flatten().copied());
            }
        }
        false
    }
}
