//! Operations: every mutation of a repository, signed by its author.
//!
//! An [`Operation`] is what an author means to do; a [`SignedOp`] is an operation with
//! its id and a signature that verifies. The only ways to obtain a `SignedOp` are
//! [`Operation::sign`] and [`SignedOp::decode`], and both establish that invariant, so
//! code holding a `SignedOp` never re-checks it. Whether the author was *allowed* to do
//! what the operation says is a different question, answered by the fold.

use ed25519_dalek::Signature;

use crate::check_runs::CheckRunFields;
use crate::checks::StatusState;
use crate::codec::{self, DecodeError, EncodeError, MAX_OP_BYTES, Reader};
use crate::collab::{Assignment, LabelDef, MergeMethod, ReviewComment, ThreadEdit, Verdict};
use crate::hlc::Hlc;
use crate::hooks::HookConfig;
use crate::identity::{Keypair, PublicKey};
use crate::ids::{ObjectId, OpId, RepoId};

/// blake3 `derive_key` context for operation ids. Part of the protocol.
const OP_ID_CONTEXT: &str = "guts/op-id/v1";
/// Prefix of the signed message. Signing `domain || id` rather than the bare id keeps
/// an operation signature from ever being valid as a signature of anything else.
const OP_SIGNATURE_DOMAIN: &[u8] = b"guts/op/v1";
/// Length of an ed25519 signature.
const SIGNATURE_LEN: usize = 64;

/// A collaborator's role in a repository. Ordered by power, so "at least Write" is
/// `role >= Role::Write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Read,
    Write,
    Admin,
    /// The creator. Exactly one per repository, fixed at creation.
    Owner,
}

impl Role {
    /// Stable lowercase name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

/// Rules on one branch. Nobody bypasses them, admins included: lifting a rule takes an
/// operation of its own, which leaves a trace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct BranchProtection {
    pub no_force_push: bool,
    pub no_deletion: bool,
    /// Approving reviews a pull request needs before it merges into this branch.
    pub required_approvals: u8,
    /// GitHub's `dismiss_stale_reviews`: an approval counts only if it approved the
    /// head being merged, so commits pushed after an approval need a new one.
    pub dismiss_stale_reviews: bool,
    /// GitHub's `required_status_checks`: what must be green before a merge or a push
    /// lands on the branch.
    pub required_checks: Option<RequiredChecks>,
}

/// Status checks a protected branch requires.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RequiredChecks {
    /// GitHub's `strict`: a pull request's head must contain the base branch's tip.
    pub strict: bool,
    /// Each context's latest status on the commit must be `success` (contexts compare
    /// case-insensitively, as statuses do).
    pub contexts: Vec<String>,
}

/// What an operation does.
///
/// Non-exhaustive: payloads are added with new codec tags, and an old node decoding one
/// fails with a typed error instead of misreading it.
///
/// Issues and pull requests are "threads", named by the id of the operation that
/// opened them: numbers are display names that the fold hands out (see
/// [`crate::collab`]), so nothing refers to a thread by number.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Payload {
    /// The root of a repository's DAG. `default_branch` is a short branch name
    /// (`main`), as GitHub reports it.
    CreateRepo {
        owner: String,
        name: String,
        description: String,
        private: bool,
        default_branch: String,
    },
    /// Changes the fields that are `Some`.
    UpdateRepo {
        description: Option<String>,
        private: Option<bool>,
        default_branch: Option<String>,
    },
    /// Changes the repository settings that are `Some`, beside [`Payload::UpdateRepo`]
    /// (a payload of its own so that the operations made before these settings existed
    /// keep their bytes, and an older node refuses these by tag instead of misreading
    /// them). `name` renames the repository (its old names keep answering until another
    /// repository takes them); an archived repository refuses every change except being
    /// unarchived, deleted, or having its access changed; without issues, no issue can
    /// be opened.
    RepoSettings {
        name: Option<String>,
        homepage: Option<String>,
        has_issues: Option<bool>,
        archived: Option<bool>,
    },
    DeleteRepo,
    /// Grants `role` to `user`, or removes them as a collaborator when `None`.
    SetRole {
        user: PublicKey,
        role: Option<Role>,
    },
    /// Sets the access `user` has through the organization that owns the repository,
    /// signed by the repository's owner (for an organization's repository, the
    /// organization's own key). `None`: the user left the organization, which ends this
    /// access and any collaborator role granted to them, as leaving does on GitHub.
    /// The user's effective role is the higher of this and their collaborator role, so
    /// a repository admin can neither lower nor remove it.
    SetOrgAccess {
        user: PublicKey,
        role: Option<Role>,
    },
    /// Sets or (with `None`) lifts the protection of `branch`, a full ref name
    /// (`refs/heads/main`).
    SetBranchProtection {
        branch: String,
        protection: Option<BranchProtection>,
    },
    /// Moves ref `name` (a full ref name) from `old` to `new`, as one command of a git
    /// push: `old: None` creates the ref, `new: None` deletes it.
    UpdateRef {
        name: String,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        force: bool,
    },
    /// Opens an issue. `number` is the number the author saw free; when a concurrent
    /// thread took it, the fold gives this one the next free number.
    OpenIssue {
        number: u64,
        title: String,
        body: String,
        labels: Vec<String>,
        assignees: Vec<PublicKey>,
    },
    /// Opens a pull request from branch `head` into branch `base` (short names, same
    /// repository). Numbers as for issues: one sequence for both.
    OpenPull {
        number: u64,
        title: String,
        body: String,
        head: String,
        base: String,
        draft: bool,
    },
    /// Edits an issue or pull request: title, body, open/closed, lock, draft, base.
    EditThread {
        thread: OpId,
        edit: ThreadEdit,
    },
    /// Adds and removes labels (by name, case-insensitive) on a thread. A label the
    /// repository does not define yet is created with a default colour, as on GitHub.
    LabelThread {
        thread: OpId,
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// Adds and removes the people assigned to a thread, as assignees or (on a pull
    /// request) as requested reviewers: `as_` says which.
    AssignThread {
        thread: OpId,
        as_: Assignment,
        add: Vec<PublicKey>,
        remove: Vec<PublicKey>,
    },
    /// A comment on an issue or pull request conversation.
    Comment {
        thread: OpId,
        body: String,
    },
    /// Replaces a comment's body, or deletes the comment when `body` is `None`.
    EditComment {
        comment: OpId,
        body: Option<String>,
    },
    /// Replaces the body of inline comment `index` of review `review`, or deletes it
    /// when `body` is `None` (the others keep their place, and their ids).
    EditReviewComment {
        review: OpId,
        index: u32,
        body: Option<String>,
    },
    /// Creates or updates the repository label `name` (renaming it when
    /// `label.name` differs), or deletes it when `None`.
    SetLabel {
        name: String,
        label: Option<LabelDef>,
    },
    /// A review of pull request `pull` at `commit`, with inline comments.
    Review {
        pull: OpId,
        verdict: Verdict,
        body: String,
        commit: ObjectId,
        comments: Vec<ReviewComment>,
    },
    /// Merges pull request `pull`: moves its base branch from `old` to `new` (a commit
    /// written by the merging node) and marks the pull request merged, in one
    /// operation, so a merge is never half-recorded. `head` is the head commit that was
    /// merged.
    MergePull {
        pull: OpId,
        method: MergeMethod,
        head: ObjectId,
        old: ObjectId,
        new: ObjectId,
    },
    /// A commit status: what CI says of `commit` under `context` (see
    /// [`crate::checks`]). Each one is kept; the latest of a context is its state.
    SetStatus {
        commit: ObjectId,
        state: StatusState,
        context: String,
        description: Option<String>,
        target_url: Option<String>,
    },
    /// Creates a webhook (`hook` `None`; the hook is then named by this operation's
    /// id), replaces a hook's configuration, or deletes it (`config` `None`). See
    /// [`crate::hooks`].
    SetHook {
        hook: Option<OpId>,
        config: Option<HookConfig>,
    },
    /// A check run on `head` (see [`crate::check_runs`]); `fields.name` is required.
    CreateCheckRun {
        head: ObjectId,
        fields: CheckRunFields,
    },
    /// Changes the check run created by operation `run`: the fields that are `Some`.
    UpdateCheckRun {
        run: OpId,
        fields: CheckRunFields,
    },
}

impl Payload {
    /// Stable snake_case name of the variant, for logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::CreateRepo { .. } => "create_repo",
            Payload::UpdateRepo { .. } => "update_repo",
            Payload::RepoSettings { .. } => "repo_settings",
            Payload::DeleteRepo => "delete_repo",
            Payload::SetRole { .. } => "set_role",
            Payload::SetOrgAccess { .. } => "set_org_access",
            Payload::SetBranchProtection { .. } => "set_branch_protection",
            Payload::UpdateRef { .. } => "update_ref",
            Payload::OpenIssue { .. } => "open_issue",
            Payload::OpenPull { .. } => "open_pull",
            Payload::EditThread { .. } => "edit_thread",
            Payload::LabelThread { .. } => "label_thread",
            Payload::AssignThread { .. } => "assign_thread",
            Payload::Comment { .. } => "comment",
            Payload::EditComment { .. } => "edit_comment",
            Payload::EditReviewComment { .. } => "edit_review_comment",
            Payload::SetStatus { .. } => "set_status",
            Payload::SetHook { .. } => "set_hook",
            Payload::CreateCheckRun { .. } => "create_check_run",
            Payload::UpdateCheckRun { .. } => "update_check_run",
            Payload::SetLabel { .. } => "set_label",
            Payload::Review { .. } => "review",
            Payload::MergePull { .. } => "merge_pull",
        }
    }

    /// Text `part` of the operation, as a [`crate::collab::TextRef`] names it: 0 its
    /// body, `i + 1` a review's inline comment `i`. `None` for a part it does not have.
    pub fn text(&self, part: u32) -> Option<&str> {
        let body = match (self, part) {
            (Payload::OpenIssue { body, .. } | Payload::OpenPull { body, .. }, 0)
            | (Payload::Comment { body, .. } | Payload::Review { body, .. }, 0) => body,
            (Payload::EditThread { edit, .. }, 0) => edit.body.as_ref()?,
            (Payload::EditComment { body, .. } | Payload::EditReviewComment { body, .. }, 0) => {
                body.as_ref()?
            }
            (Payload::Review { comments, .. }, part) => {
                let index = usize::try_from(part.checked_sub(1)?).ok()?;
                &comments.get(index)?.body
            }
            _ => return None,
        };
        Some(body)
    }
}

/// An unsigned operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Operation {
    pub repo: RepoId,
    /// The heads of the repository's DAG the author had seen: what this operation
    /// happened after. Empty only for `CreateRepo`.
    pub parents: Vec<OpId>,
    pub author: PublicKey,
    pub timestamp: Hlc,
    pub payload: Payload,
}

impl Operation {
    /// Encodes, hashes and signs the operation with the author's key.
    ///
    /// Parents are sorted and deduplicated first, because the set of parents is what
    /// matters and the encoding must be canonical. Fails if a cap of the codec is
    /// exceeded or `key` is not `self.author`.
    pub fn sign(mut self, key: &Keypair) -> Result<SignedOp, EncodeError> {
        if key.public() != self.author {
            return Err(EncodeError::WrongKey);
        }
        self.parents.sort_unstable();
        self.parents.dedup();
        let mut bytes = codec::encode_operation(&self)?;
        let id = op_id(&bytes);
        let signature = key.sign(&signing_message(&id));
        bytes.extend_from_slice(&signature.to_bytes());
        if bytes.len() > MAX_OP_BYTES {
            return Err(EncodeError::TooLarge {
                max: MAX_OP_BYTES,
                found: bytes.len(),
            });
        }
        Ok(SignedOp {
            id,
            op: self,
            signature,
            bytes,
        })
    }
}

/// An operation with its id and a signature by its author that verifies.
///
/// Keeps its own encoding, so storing or sending it never re-encodes (and cannot
/// produce bytes other than those that were hashed and signed).
#[derive(Clone, PartialEq, Eq)]
pub struct SignedOp {
    id: OpId,
    op: Operation,
    signature: Signature,
    /// The encoded signed operation: unsigned encoding, then the signature.
    bytes: Vec<u8>,
}

impl SignedOp {
    pub fn id(&self) -> OpId {
        self.id
    }

    pub fn op(&self) -> &Operation {
        &self.op
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The canonical encoding, as stored and sent.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn encode(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// Parses untrusted bytes, recomputes the id and verifies the signature.
    ///
    /// Everything is checked in order of cost: the size cap, then structure and
    /// canonical form, then the signature.
    pub fn decode(bytes: &[u8]) -> Result<SignedOp, DecodeError> {
        let signed = Self::parse(bytes)?;
        if !signed
            .op
            .author
            .verify(&signing_message(&signed.id), &signed.signature)
        {
            return Err(DecodeError::BadSignature);
        }
        Ok(signed)
    }

    /// Parses bytes this node stored under `expected` after [`SignedOp::decode`]
    /// verified them: structure, canonical form and the id (a hash of the bytes, so a
    /// flipped bit is still caught) are checked, the signature is not checked again.
    /// Verifying a signature costs about as much as folding the operation, and doing
    /// it on every load would make opening a repository twice as slow for no gain:
    /// whoever can rewrite the store can rewrite the node's keys too.
    pub fn decode_stored(bytes: &[u8], expected: &OpId) -> Result<SignedOp, DecodeError> {
        let signed = Self::parse(bytes)?;
        if signed.id != *expected {
            return Err(DecodeError::IdMismatch);
        }
        Ok(signed)
    }

    /// The size cap, structure and canonical form, and the id; not the signature.
    fn parse(bytes: &[u8]) -> Result<SignedOp, DecodeError> {
        if bytes.len() > MAX_OP_BYTES {
            return Err(DecodeError::TooLarge {
                max: MAX_OP_BYTES,
                found: bytes.len(),
            });
        }
        let mut reader = Reader::new(bytes);
        let op = codec::decode_operation(&mut reader)?;
        let unsigned_len = reader.position();
        let signature = Signature::from_bytes(&reader.array::<SIGNATURE_LEN>()?);
        reader.finish()?;
        let (unsigned, _) =
            bytes
                .split_at_checked(unsigned_len)
                .ok_or(DecodeError::UnexpectedEnd {
                    needed: unsigned_len,
                    remaining: bytes.len(),
                })?;
        Ok(SignedOp {
            id: op_id(unsigned),
            op,
            signature,
            bytes: bytes.to_vec(),
        })
    }
}

impl std::fmt::Debug for SignedOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedOp")
            .field("id", &self.id)
            .field("op", &self.op)
            .finish_non_exhaustive()
    }
}

fn op_id(unsigned: &[u8]) -> OpId {
    OpId::from_bytes(blake3::derive_key(OP_ID_CONTEXT, unsigned))
}

fn signing_message(id: &OpId) -> [u8; OP_SIGNATURE_DOMAIN.len() + OpId::LEN] {
    let mut message = [0u8; OP_SIGNATURE_DOMAIN.len() + OpId::LEN];
    let (domain, rest) = message.split_at_mut(OP_SIGNATURE_DOMAIN.len());
    domain.copy_from_slice(OP_SIGNATURE_DOMAIN);
    rest.copy_from_slice(id.as_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arbitrary;
    use crate::codec::{MAX_NAME_BYTES, MAX_PARENTS, MAX_TEXT_BYTES};
    use proptest::prelude::*;

    fn key(seed: u8) -> Keypair {
        Keypair::from_seed(&[seed; 32])
    }

    fn op_with(payload: Payload) -> Operation {
        Operation {
            repo: RepoId::from_bytes([7; 32]),
            parents: vec![OpId::from_bytes([2; 32]), OpId::from_bytes([1; 32])],
            author: key(1).public(),
            timestamp: Hlc {
                wall_ms: 1_700_000_000_000,
                counter: 3,
            },
            payload,
        }
    }

    #[test]
    fn sign_canonicalises_parents() {
        let mut op = op_with(Payload::DeleteRepo);
        op.parents.push(OpId::from_bytes([2; 32]));
        let signed = op.sign(&key(1)).unwrap();
        assert_eq!(
            signed.op().parents,
            vec![OpId::from_bytes([1; 32]), OpId::from_bytes([2; 32])]
        );
        let reordered = op_with(Payload::DeleteRepo).sign(&key(1)).unwrap();
        assert_eq!(signed.id(), reordered.id());
        assert_eq!(signed.encode(), reordered.encode());
    }

    #[test]
    fn sign_refuses_the_wrong_key_and_oversized_fields() {
        assert!(matches!(
            op_with(Payload::DeleteRepo).sign(&key(2)),
            Err(EncodeError::WrongKey)
        ));
        let mut op = op_with(Payload::DeleteRepo);
        op.parents = (0..=MAX_PARENTS as u8)
            .map(|i| OpId::from_bytes([i; 32]))
            .collect();
        assert!(matches!(
            op.sign(&key(1)),
            Err(EncodeError::TooManyItems { .. })
        ));
        let op = op_with(Payload::UpdateRef {
            name: "x".repeat(MAX_NAME_BYTES + 1),
            old: None,
            new: None,
            force: false,
        });
        assert!(matches!(
            op.sign(&key(1)),
            Err(EncodeError::FieldTooLong {
                field: "ref name",
                ..
            })
        ));
        let op = op_with(Payload::UpdateRepo {
            description: Some("x".repeat(MAX_TEXT_BYTES + 1)),
            private: None,
            default_branch: None,
        });
        assert!(matches!(
            op.sign(&key(1)),
            Err(EncodeError::FieldTooLong {
                field: "description",
                ..
            })
        ));
    }

    #[test]
    fn stored_operations_decode_by_id_without_reverifying() {
        let signed = op_with(Payload::DeleteRepo).sign(&key(1)).unwrap();
        let bytes = signed.encode();
        let decoded = SignedOp::decode_stored(&bytes, &signed.id()).unwrap();
        assert_eq!(decoded.id(), signed.id());
        assert_eq!(decoded.as_bytes(), bytes.as_slice());
        // Stored under another id: refused.
        let mut other = op_with(Payload::DeleteRepo);
        other.timestamp.counter += 1;
        let other = other.sign(&key(1)).unwrap();
        assert_eq!(
            SignedOp::decode_stored(&bytes, &other.id()),
            Err(DecodeError::IdMismatch)
        );
        // A flipped bit in the signed part changes the id.
        let mut flipped = bytes.clone();
        let last_unsigned = bytes.len() - 65;
        flipped[last_unsigned] ^= 1;
        assert!(SignedOp::decode_stored(&flipped, &signed.id()).is_err());
    }

    #[test]
    fn decode_rejects_typed() {
        let signed = op_with(Payload::DeleteRepo).sign(&key(1)).unwrap();
        let bytes = signed.encode();

        let mut version = bytes.clone();
        version[0] = 2;
        assert_eq!(
            SignedOp::decode(&version),
            Err(DecodeError::UnsupportedVersion(2))
        );

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            SignedOp::decode(&trailing),
            Err(DecodeError::TrailingBytes(1))
        );

        assert!(matches!(
            SignedOp::decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::UnexpectedEnd { .. })
        ));

        // Swap the two (sorted) parents: structurally fine, but not canonical.
        let mut swapped = bytes.clone();
        let first = 1 + 32 + 4;
        let (a, b) = (first, first + 32);
        let parent_a: Vec<u8> = swapped[a..a + 32].to_vec();
        let parent_b: Vec<u8> = swapped[b..b + 32].to_vec();
        swapped[a..a + 32].copy_from_slice(&parent_b);
        swapped[b..b + 32].copy_from_slice(&parent_a);
        assert_eq!(
            SignedOp::decode(&swapped),
            Err(DecodeError::ParentsNotCanonical)
        );

        let mut forged = bytes.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(SignedOp::decode(&forged), Err(DecodeError::BadSignature));

        assert!(matches!(
            SignedOp::decode(&vec![0; MAX_OP_BYTES + 1]),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn unknown_payload_tags_are_typed_errors() {
        let signed = op_with(Payload::DeleteRepo).sign(&key(1)).unwrap();
        let mut bytes = signed.encode();
        // The tag sits right before the signature for a field-less payload.
        let tag_at = bytes.len() - SIGNATURE_LEN - 2;
        bytes[tag_at..tag_at + 2].copy_from_slice(&0x0200u16.to_be_bytes());
        assert_eq!(
            SignedOp::decode(&bytes),
            Err(DecodeError::UnknownPayload(0x0200))
        );
    }

    #[test]
    fn branch_protection_keeps_its_original_encoding_and_adds_a_tag() {
        let old = BranchProtection {
            no_force_push: true,
            no_deletion: false,
            required_approvals: 2,
            dismiss_stale_reviews: false,
            required_checks: None,
        };
        let protect = |protection| Payload::SetBranchProtection {
            branch: "refs/heads/main".into(),
            protection: Some(protection),
        };
        let payload_bytes = |signed: &SignedOp| {
            let bytes = signed.encode();
            bytes[..bytes.len() - SIGNATURE_LEN].to_vec()
        };
        let mut branch = vec![0, 0, 0, 15];
        branch.extend_from_slice(b"refs/heads/main");

        // Without stale dismissal: tag 0x0005, the branch, `Some`, the three fields,
        // byte for byte what nodes signed before the flag existed.
        let signed = op_with(protect(old.clone())).sign(&key(1)).unwrap();
        let expected = [&[0x00, 0x05][..], &branch, &[1, 1, 0, 2]].concat();
        assert!(payload_bytes(&signed).ends_with(&expected));
        let decoded = SignedOp::decode(&signed.encode()).unwrap();
        assert_eq!(decoded.op().payload, protect(old.clone()));

        // With it: tag 0x0007, the branch, the three fields, then the flag.
        let new = BranchProtection {
            dismiss_stale_reviews: true,
            ..old.clone()
        };
        let signed = op_with(protect(new.clone())).sign(&key(1)).unwrap();
        let expected = [&[0x00, 0x07][..], &branch, &[1, 0, 2, 1]].concat();
        assert!(payload_bytes(&signed).ends_with(&expected));
        assert_eq!(
            SignedOp::decode(&signed.encode()).unwrap().op().payload,
            protect(new.clone())
        );

        // With required status checks: tag 0x000A, the fields and the flag, `strict`,
        // then the contexts.
        let checked = BranchProtection {
            required_checks: Some(RequiredChecks {
                strict: true,
                contexts: vec!["ci".into()],
            }),
            ..old
        };
        let with_checks = op_with(protect(checked.clone())).sign(&key(1)).unwrap();
        let expected = [
            &[0x00, 0x0A][..],
            &branch,
            &[1, 0, 2, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2],
            b"ci",
        ]
        .concat();
        assert!(payload_bytes(&with_checks).ends_with(&expected));
        assert_eq!(
            SignedOp::decode(&with_checks.encode())
                .unwrap()
                .op()
                .payload,
            protect(checked)
        );

        // Tag 0x0007 without the flag would be a second spelling of a 0x0005 payload.
        let mut bytes = signed.encode();
        let flag_at = bytes.len() - SIGNATURE_LEN - 1;
        bytes[flag_at] = 0;
        assert_eq!(
            SignedOp::decode(&bytes),
            Err(DecodeError::NotCanonical {
                field: "protection"
            })
        );
    }

    #[test]
    fn signature_covers_the_domain() {
        let signed = op_with(Payload::DeleteRepo).sign(&key(1)).unwrap();
        // The bare id is not what was signed.
        assert!(
            !key(1)
                .public()
                .verify(signed.id().as_bytes(), signed.signature())
        );
        assert!(
            key(1)
                .public()
                .verify(&signing_message(&signed.id()), signed.signature())
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn every_payload_round_trips((op, key) in arbitrary::signable_operation()) {
            let signed = op.clone().sign(&key).unwrap();
            let bytes = signed.encode();
            let decoded = SignedOp::decode(&bytes).unwrap();
            prop_assert_eq!(decoded.id(), signed.id());
            prop_assert_eq!(decoded.op(), signed.op());
            prop_assert_eq!(decoded.encode(), bytes);
            prop_assert_eq!(&decoded, &signed);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = SignedOp::decode(&bytes);
        }

        #[test]
        fn any_flipped_bit_is_rejected(
            (op, key) in arbitrary::signable_operation(),
            position in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut bytes = op.sign(&key).unwrap().encode();
            let at = position.index(bytes.len());
            bytes[at] ^= 1 << bit;
            prop_assert!(SignedOp::decode(&bytes).is_err());
        }

        /// Mutated encodings either fail or decode to something whose encoding is
        /// exactly the input: the decoder accepts one spelling per operation.
        #[test]
        fn accepted_bytes_are_canonical(
            (op, key) in arbitrary::signable_operation(),
            cut in any::<prop::sample::Index>(),
            junk in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let bytes = op.sign(&key).unwrap().encode();
            let at = cut.index(bytes.len());
            let mut mutated = bytes[..at].to_vec();
            mutated.extend_from_slice(&junk);
            mutated.extend_from_slice(&bytes[at..]);
            if let Ok(decoded) = SignedOp::decode(&mutated) {
                prop_assert_eq!(decoded.encode(), mutated);
            }
        }
    }
}
