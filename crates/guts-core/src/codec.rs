//! The canonical, versioned binary encoding of operations, and the small writer and
//! reader it is built from.
//!
//! An operation's id is the hash of its encoding, so the encoding must be canonical:
//! one operation, one byte string. Hence a hand-written format with no choices left to
//! an encoder (no varints, no optional fields, no maps), and a decoder that refuses
//! every other spelling (trailing bytes, unsorted parents, booleans other than 0 and 1)
//! instead of normalising it. The reader is written for hostile input: it never panics,
//! never indexes without a bounds check, and compares a declared length with the input
//! that remains *before* allocating for it, so memory use is bounded by the input size.
//!
//! Layout of an unsigned operation (all integers big-endian):
//!
//! | field      | bytes                                                          |
//! |------------|----------------------------------------------------------------|
//! | version    | `u8` = [`FORMAT_VERSION`]                                      |
//! | repo       | 32                                                             |
//! | parents    | `u32` count (≤ [`MAX_PARENTS`]), then 32 each, strictly ascending |
//! | author     | 32 (ed25519 public key)                                        |
//! | timestamp  | `u64` wall_ms, `u32` counter                                   |
//! | payload    | `u16` tag, then the variant's fields in declaration order      |
//!
//! Strings are a `u32` byte length then UTF-8; `Option` is a `u8` tag (0 none, 1 some)
//! then the value; `bool` is a `u8` 0 or 1; `Role` is a `u8` (1 read, 2 write, 3 admin,
//! 4 owner). A signed operation is this encoding followed by the 64-byte signature.
//! A list is a `u32` count then its items. Payload tags 0x0001..=0x0009 are repository
//! payloads; 0x0100..=0x010B are collaboration payloads (issues, pull requests,
//! comments, labels, reviews, merges); 0x010C is a commit status; 0x010D creates a
//! check run and 0x010E updates one (their fields are encoded by `crate::check_runs`);
//! 0x000B is a webhook's configuration (`crate::hooks`). A decoder meeting a tag it
//! does not know fails
//! with [`DecodeError::UnknownPayload`].
//!
//! A payload gains fields through a new tag, never by changing an old one, so bytes
//! signed by an older node keep decoding to what they meant. `SetBranchProtection` has
//! two: 0x0005 (no force-push, no deletion, required approvals) and 0x0007 (the same,
//! then `dismiss_stale_reviews`, which must be true: a protection without it is
//! spelled 0x0005, so each operation still has exactly one encoding). A protection
//! with required status checks is 0x000A: the fields of 0x0005, `dismiss_stale_reviews`,
//! then `strict` and the required contexts (a protection without them is never
//! spelled 0x000A).

use crate::check_runs;
use crate::checks::{
    MAX_CONTEXT_BYTES, MAX_DESCRIPTION_BYTES, MAX_REQUIRED_CONTEXTS, MAX_TARGET_URL_BYTES,
    StatusState,
};
use crate::collab::{
    Assignment, LabelDef, MAX_ASSIGNEES, MAX_LABELS, MAX_REVIEW_COMMENTS, MergeMethod,
    ReviewComment, ThreadEdit, Verdict,
};
use crate::ids::{ObjectId, OpId, RepoId};
use crate::op::{BranchProtection, Operation, Payload, RequiredChecks, Role};

/// The first byte of every encoded operation.
pub const FORMAT_VERSION: u8 = 1;
/// Largest encoded signed operation, signature included.
pub const MAX_OP_BYTES: usize = 1024 * 1024;
/// Most parents an operation may name. An author lists the heads it saw; more than
/// this many concurrent heads means it should merge in steps.
pub const MAX_PARENTS: usize = 64;
/// Longest name (owner, repository, branch or ref name) in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest free text (a description) in bytes.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

const TAG_CREATE_REPO: u16 = 0x0001;
const TAG_UPDATE_REPO: u16 = 0x0002;
const TAG_DELETE_REPO: u16 = 0x0003;
const TAG_SET_ROLE: u16 = 0x0004;
const TAG_SET_BRANCH_PROTECTION: u16 = 0x0005;
const TAG_UPDATE_REF: u16 = 0x0006;
/// `SetBranchProtection` with `dismiss_stale_reviews` set (see the module docs).
const TAG_SET_BRANCH_PROTECTION_STALE: u16 = 0x0007;
const TAG_SET_ORG_ACCESS: u16 = 0x0008;
const TAG_REPO_SETTINGS: u16 = 0x0009;
/// `SetBranchProtection` with required status checks (see the module docs).
const TAG_SET_BRANCH_PROTECTION_CHECKS: u16 = 0x000A;
const TAG_SET_HOOK: u16 = 0x000B;
const TAG_OPEN_ISSUE: u16 = 0x0100;
const TAG_OPEN_PULL: u16 = 0x0101;
const TAG_EDIT_THREAD: u16 = 0x0102;
const TAG_LABEL_THREAD: u16 = 0x0103;
const TAG_ASSIGN_THREAD: u16 = 0x0104;
const TAG_COMMENT: u16 = 0x0105;
const TAG_EDIT_COMMENT: u16 = 0x0106;
const TAG_SET_LABEL: u16 = 0x0107;
const TAG_REVIEW: u16 = 0x0108;
const TAG_MERGE_PULL: u16 = 0x0109;
const TAG_REQUEST_REVIEWERS: u16 = 0x010A;
const TAG_EDIT_REVIEW_COMMENT: u16 = 0x010B;
const TAG_SET_STATUS: u16 = 0x010C;
const TAG_CREATE_CHECK_RUN: u16 = 0x010D;
const TAG_UPDATE_CHECK_RUN: u16 = 0x010E;

/// Why a value could not be encoded: it exceeds a cap the decoder would enforce, so
/// encoding it would produce bytes no peer accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{found} {field}, more than the limit of {max}")]
    TooManyItems {
        field: &'static str,
        max: usize,
        found: usize,
    },
    #[error("{field} is {found} bytes, more than the limit of {max}")]
    FieldTooLong {
        field: &'static str,
        max: usize,
        found: usize,
    },
    #[error("encoded operation is {found} bytes, more than the limit of {max}")]
    TooLarge { max: usize, found: usize },
    /// The key passed to `sign` is not the operation's author, so the signature could
    /// never verify. (The keys are not carried: a `PublicKey` is large, and the caller
    /// has both.)
    #[error("signing key is not the operation's author")]
    WrongKey,
}

/// Why bytes are not a valid encoded value. Every malformed input maps to one of these;
/// none panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input is {found} bytes, more than the limit of {max}")]
    TooLarge { max: usize, found: usize },
    #[error("unexpected end of input: needed {needed} bytes, {remaining} remaining")]
    UnexpectedEnd { needed: usize, remaining: usize },
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    #[error("invalid boolean byte {0}")]
    InvalidBool(u8),
    #[error("invalid option tag {0}")]
    InvalidOptionTag(u8),
    #[error("unknown payload tag {0:#06x}")]
    UnknownPayload(u16),
    #[error("unknown role tag {0}")]
    UnknownRole(u8),
    #[error("unknown {field} tag {tag}")]
    UnknownTag { field: &'static str, tag: u8 },
    #[error("{field} is {found} bytes, more than the limit of {max}")]
    FieldTooLong {
        field: &'static str,
        max: usize,
        found: usize,
    },
    #[error("{found} {field}, more than the limit of {max}")]
    TooManyItems {
        field: &'static str,
        max: usize,
        found: usize,
    },
    #[error("parents are not strictly ascending")]
    ParentsNotCanonical,
    /// A value spelled in a form reserved for other values (another tag encodes it).
    #[error("{field} is not in its canonical form")]
    NotCanonical { field: &'static str },
    #[error("{field} is not valid utf-8")]
    InvalidUtf8 { field: &'static str },
    #[error("{field} is not a valid ed25519 public key")]
    InvalidPublicKey { field: &'static str },
    #[error("signature does not verify against the author's key")]
    BadSignature,
    /// A stored operation whose bytes do not hash to the id it is stored under.
    #[error("the operation's bytes do not hash to the id it is stored under")]
    IdMismatch,
}

/// The canonical encoding of an unsigned operation: the bytes its id hashes and its
/// author signs. Parents must already be sorted and unique (`Operation::sign` sees to
/// it); this function encodes what it is given.
pub(crate) fn encode_operation(op: &Operation) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::new();
    w.u8(FORMAT_VERSION);
    w.fixed(op.repo.as_bytes());
    w.count("parents", op.parents.len(), MAX_PARENTS)?;
    for parent in &op.parents {
        w.fixed(parent.as_bytes());
    }
    w.fixed(op.author.as_bytes());
    w.hlc(op.timestamp);
    encode_payload(&mut w, &op.payload)?;
    Ok(w.into_bytes())
}

fn encode_payload(w: &mut Writer, payload: &Payload) -> Result<(), EncodeError> {
    match payload {
        Payload::CreateRepo {
            owner,
            name,
            description,
            private,
            default_branch,
        } => {
            w.u16(TAG_CREATE_REPO);
            w.str("owner", owner, MAX_NAME_BYTES)?;
            w.str("name", name, MAX_NAME_BYTES)?;
            w.str("description", description, MAX_TEXT_BYTES)?;
            w.bool(*private);
            w.str("default_branch", default_branch, MAX_NAME_BYTES)?;
        }
        Payload::UpdateRepo {
            description,
            private,
            default_branch,
        } => {
            w.u16(TAG_UPDATE_REPO);
            w.option_tag(description.is_some());
            if let Some(description) = description {
                w.str("description", description, MAX_TEXT_BYTES)?;
            }
            w.option_tag(private.is_some());
            if let Some(private) = private {
                w.bool(*private);
            }
            w.option_tag(default_branch.is_some());
            if let Some(branch) = default_branch {
                w.str("default_branch", branch, MAX_NAME_BYTES)?;
            }
        }
        Payload::RepoSettings {
            name,
            homepage,
            has_issues,
            archived,
        } => {
            w.u16(TAG_REPO_SETTINGS);
            encode_opt_str(w, "name", name.as_deref(), MAX_NAME_BYTES)?;
            encode_opt_str(w, "homepage", homepage.as_deref(), MAX_NAME_BYTES)?;
            encode_opt_bool(w, *has_issues);
            encode_opt_bool(w, *archived);
        }
        Payload::DeleteRepo => w.u16(TAG_DELETE_REPO),
        Payload::SetHook { hook, config } => {
            w.u16(TAG_SET_HOOK);
            crate::hooks::encode_payload(w, hook.as_ref(), config.as_ref())?;
        }
        Payload::SetRole { user, role } => {
            w.u16(TAG_SET_ROLE);
            w.fixed(user.as_bytes());
            w.option_tag(role.is_some());
            if let Some(role) = role {
                w.u8(role_tag(*role));
            }
        }
        Payload::SetOrgAccess { user, role } => {
            w.u16(TAG_SET_ORG_ACCESS);
            w.fixed(user.as_bytes());
            w.option_tag(role.is_some());
            if let Some(role) = role {
                w.u8(role_tag(*role));
            }
        }
        Payload::SetBranchProtection { branch, protection } => match protection.as_ref() {
            Some(
                protection @ BranchProtection {
                    required_checks: Some(checks),
                    ..
                },
            ) => {
                w.u16(TAG_SET_BRANCH_PROTECTION_CHECKS);
                w.str("branch", branch, MAX_NAME_BYTES)?;
                encode_protection(w, protection);
                w.bool(protection.dismiss_stale_reviews);
                w.bool(checks.strict);
                w.count("contexts", checks.contexts.len(), MAX_REQUIRED_CONTEXTS)?;
                for context in &checks.contexts {
                    w.str("context", context, MAX_CONTEXT_BYTES)?;
                }
            }
            Some(protection) if protection.dismiss_stale_reviews => {
                w.u16(TAG_SET_BRANCH_PROTECTION_STALE);
                w.str("branch", branch, MAX_NAME_BYTES)?;
                encode_protection(w, protection);
                w.bool(protection.dismiss_stale_reviews);
            }
            _ => {
                w.u16(TAG_SET_BRANCH_PROTECTION);
                w.str("branch", branch, MAX_NAME_BYTES)?;
                w.option_tag(protection.is_some());
                if let Some(protection) = protection {
                    encode_protection(w, protection);
                }
            }
        },
        Payload::UpdateRef {
            name,
            old,
            new,
            force,
        } => {
            w.u16(TAG_UPDATE_REF);
            w.str("ref name", name, MAX_NAME_BYTES)?;
            encode_object_id(w, old.as_ref());
            encode_object_id(w, new.as_ref());
            w.bool(*force);
        }
        other => encode_collab(w, other)?,
    }
    Ok(())
}

fn encode_collab(w: &mut Writer, payload: &Payload) -> Result<(), EncodeError> {
    match payload {
        Payload::OpenIssue {
            number,
            title,
            body,
            labels,
            assignees,
        } => {
            w.u16(TAG_OPEN_ISSUE);
            w.u64(*number);
            w.str("title", title, MAX_NAME_BYTES)?;
            w.str("body", body, MAX_TEXT_BYTES)?;
            encode_names(w, "labels", labels, MAX_LABELS)?;
            encode_keys(w, "assignees", assignees, MAX_ASSIGNEES)?;
        }
        Payload::OpenPull {
            number,
            title,
            body,
            head,
            base,
            draft,
        } => {
            w.u16(TAG_OPEN_PULL);
            w.u64(*number);
            w.str("title", title, MAX_NAME_BYTES)?;
            w.str("body", body, MAX_TEXT_BYTES)?;
            w.str("head", head, MAX_NAME_BYTES)?;
            w.str("base", base, MAX_NAME_BYTES)?;
            w.bool(*draft);
        }
        Payload::EditThread { thread, edit } => {
            w.u16(TAG_EDIT_THREAD);
            w.fixed(thread.as_bytes());
            encode_opt_str(w, "title", edit.title.as_deref(), MAX_NAME_BYTES)?;
            encode_opt_str(w, "body", edit.body.as_deref(), MAX_TEXT_BYTES)?;
            encode_opt_bool(w, edit.open);
            encode_opt_bool(w, edit.locked);
            encode_opt_bool(w, edit.draft);
            encode_opt_str(w, "base", edit.base.as_deref(), MAX_NAME_BYTES)?;
        }
        Payload::LabelThread {
            thread,
            add,
            remove,
        } => {
            w.u16(TAG_LABEL_THREAD);
            w.fixed(thread.as_bytes());
            encode_names(w, "labels", add, MAX_LABELS)?;
            encode_names(w, "labels", remove, MAX_LABELS)?;
        }
        Payload::AssignThread {
            thread,
            as_,
            add,
            remove,
        } => {
            w.u16(match as_ {
                Assignment::Assignee => TAG_ASSIGN_THREAD,
                Assignment::Reviewer => TAG_REQUEST_REVIEWERS,
            });
            w.fixed(thread.as_bytes());
            encode_keys(w, "assignees", add, MAX_ASSIGNEES)?;
            encode_keys(w, "assignees", remove, MAX_ASSIGNEES)?;
        }
        Payload::Comment { thread, body } => {
            w.u16(TAG_COMMENT);
            w.fixed(thread.as_bytes());
            w.str("body", body, MAX_TEXT_BYTES)?;
        }
        Payload::EditComment { comment, body } => {
            w.u16(TAG_EDIT_COMMENT);
            w.fixed(comment.as_bytes());
            encode_opt_str(w, "body", body.as_deref(), MAX_TEXT_BYTES)?;
        }
        Payload::EditReviewComment {
            review,
            index,
            body,
        } => {
            w.u16(TAG_EDIT_REVIEW_COMMENT);
            w.fixed(review.as_bytes());
            w.u32(*index);
            encode_opt_str(w, "body", body.as_deref(), MAX_TEXT_BYTES)?;
        }
        Payload::SetLabel { name, label } => {
            w.u16(TAG_SET_LABEL);
            w.str("label", name, MAX_NAME_BYTES)?;
            w.option_tag(label.is_some());
            if let Some(label) = label {
                w.str("label", &label.name, MAX_NAME_BYTES)?;
                w.str("color", &label.color, MAX_NAME_BYTES)?;
                w.str("description", &label.description, MAX_TEXT_BYTES)?;
            }
        }
        Payload::Review {
            pull,
            verdict,
            body,
            commit,
            comments,
        } => {
            w.u16(TAG_REVIEW);
            w.fixed(pull.as_bytes());
            w.u8(verdict_tag(*verdict));
            w.str("body", body, MAX_TEXT_BYTES)?;
            w.fixed(commit.as_bytes());
            w.count("comments", comments.len(), MAX_REVIEW_COMMENTS)?;
            for c in comments {
                w.str("path", &c.path, MAX_NAME_BYTES)?;
                w.u32(c.line);
                w.str("body", &c.body, MAX_TEXT_BYTES)?;
            }
        }
        Payload::MergePull {
            pull,
            method,
            head,
            old,
            new,
        } => {
            w.u16(TAG_MERGE_PULL);
            w.fixed(pull.as_bytes());
            w.u8(merge_method_tag(*method));
            w.fixed(head.as_bytes());
            w.fixed(old.as_bytes());
            w.fixed(new.as_bytes());
        }
        Payload::SetStatus {
            commit,
            state,
            context,
            description,
            target_url,
        } => {
            w.u16(TAG_SET_STATUS);
            w.fixed(commit.as_bytes());
            w.u8(state.tag());
            w.str("context", context, MAX_CONTEXT_BYTES)?;
            encode_opt_str(
                w,
                "description",
                description.as_deref(),
                MAX_DESCRIPTION_BYTES,
            )?;
            encode_opt_str(w, "target_url", target_url.as_deref(), MAX_TARGET_URL_BYTES)?;
        }
        Payload::CreateCheckRun { head, fields } => {
            w.u16(TAG_CREATE_CHECK_RUN);
            w.fixed(head.as_bytes());
            check_runs::encode_fields(w, fields)?;
        }
        Payload::UpdateCheckRun { run, fields } => {
            w.u16(TAG_UPDATE_CHECK_RUN);
            w.fixed(run.as_bytes());
            check_runs::encode_fields(w, fields)?;
        }
        // Repository payloads are encoded by `encode_payload`.
        Payload::CreateRepo { .. }
        | Payload::UpdateRepo { .. }
        | Payload::RepoSettings { .. }
        | Payload::DeleteRepo
        | Payload::SetRole { .. }
        | Payload::SetOrgAccess { .. }
        | Payload::SetBranchProtection { .. }
        | Payload::SetHook { .. }
        | Payload::UpdateRef { .. } => {}
    }
    Ok(())
}

fn encode_names(
    w: &mut Writer,
    field: &'static str,
    names: &[String],
    max: usize,
) -> Result<(), EncodeError> {
    w.count(field, names.len(), max)?;
    names
        .iter()
        .try_for_each(|name| w.str(field, name, MAX_NAME_BYTES))
}

fn encode_keys(
    w: &mut Writer,
    field: &'static str,
    keys: &[crate::identity::PublicKey],
    max: usize,
) -> Result<(), EncodeError> {
    w.count(field, keys.len(), max)?;
    keys.iter().for_each(|key| w.fixed(key.as_bytes()));
    Ok(())
}

/// An optional string of at most `max` bytes (check runs' fields too).
pub(crate) fn encode_opt_str(
    w: &mut Writer,
    field: &'static str,
    text: Option<&str>,
    max: usize,
) -> Result<(), EncodeError> {
    w.option_tag(text.is_some());
    text.map_or(Ok(()), |text| w.str(field, text, max))
}

fn encode_opt_bool(w: &mut Writer, value: Option<bool>) {
    w.option_tag(value.is_some());
    if let Some(value) = value {
        w.bool(value);
    }
}

pub(crate) fn verdict_tag(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Approve => 1,
        Verdict::RequestChanges => 2,
        Verdict::Comment => 3,
    }
}

pub(crate) fn merge_method_tag(method: MergeMethod) -> u8 {
    match method {
        MergeMethod::Merge => 1,
        MergeMethod::Squash => 2,
        MergeMethod::Rebase => 3,
    }
}

/// The fields of the original (0x0005) protection encoding; `dismiss_stale_reviews`
/// is written by the callers that carry it.
pub(crate) fn encode_protection(w: &mut Writer, protection: &BranchProtection) {
    w.bool(protection.no_force_push);
    w.bool(protection.no_deletion);
    w.u8(protection.required_approvals);
}

fn encode_object_id(w: &mut Writer, oid: Option<&ObjectId>) {
    w.option_tag(oid.is_some());
    if let Some(oid) = oid {
        w.fixed(oid.as_bytes());
    }
}

pub(crate) fn role_tag(role: Role) -> u8 {
    match role {
        Role::Read => 1,
        Role::Write => 2,
        Role::Admin => 3,
        Role::Owner => 4,
    }
}

/// Reads one unsigned operation, leaving the reader just after it (where a signed
/// operation's signature starts).
pub(crate) fn decode_operation(r: &mut Reader<'_>) -> Result<Operation, DecodeError> {
    let version = r.u8()?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let repo = RepoId::from_bytes(r.array()?);
    let count = r.count("parents", MAX_PARENTS, OpId::LEN)?;
    let mut parents = Vec::with_capacity(count);
    for _ in 0..count {
        let parent = OpId::from_bytes(r.array()?);
        if parents.last().is_some_and(|last| *last >= parent) {
            return Err(DecodeError::ParentsNotCanonical);
        }
        parents.push(parent);
    }
    let author = r.public_key("author")?;
    let timestamp = r.hlc()?;
    let payload = decode_payload(r)?;
    Ok(Operation {
        repo,
        parents,
        author,
        timestamp,
        payload,
    })
}

fn decode_payload(r: &mut Reader<'_>) -> Result<Payload, DecodeError> {
    let payload = match r.u16()? {
        TAG_CREATE_REPO => Payload::CreateRepo {
            owner: r.string("owner", MAX_NAME_BYTES)?,
            name: r.string("name", MAX_NAME_BYTES)?,
            description: r.string("description", MAX_TEXT_BYTES)?,
            private: r.bool()?,
            default_branch: r.string("default_branch", MAX_NAME_BYTES)?,
        },
        TAG_UPDATE_REPO => Payload::UpdateRepo {
            description: decode_option(r, |r| r.string("description", MAX_TEXT_BYTES))?,
            private: decode_option(r, Reader::bool)?,
            default_branch: decode_option(r, |r| r.string("default_branch", MAX_NAME_BYTES))?,
        },
        TAG_REPO_SETTINGS => Payload::RepoSettings {
            name: decode_option(r, |r| r.string("name", MAX_NAME_BYTES))?,
            homepage: decode_option(r, |r| r.string("homepage", MAX_NAME_BYTES))?,
            has_issues: decode_option(r, Reader::bool)?,
            archived: decode_option(r, Reader::bool)?,
        },
        TAG_DELETE_REPO => Payload::DeleteRepo,
        TAG_SET_HOOK => {
            let (hook, config) = crate::hooks::decode_payload(r)?;
            Payload::SetHook { hook, config }
        }
        TAG_SET_ROLE => Payload::SetRole {
            user: r.public_key("user")?,
            role: decode_option(r, decode_role)?,
        },
        TAG_SET_ORG_ACCESS => Payload::SetOrgAccess {
            user: r.public_key("user")?,
            role: decode_option(r, decode_role)?,
        },
        TAG_SET_BRANCH_PROTECTION => Payload::SetBranchProtection {
            branch: r.string("branch", MAX_NAME_BYTES)?,
            protection: decode_option(r, decode_protection)?,
        },
        TAG_SET_BRANCH_PROTECTION_STALE => {
            let branch = r.string("branch", MAX_NAME_BYTES)?;
            let mut protection = decode_protection(r)?;
            protection.dismiss_stale_reviews = r.bool()?;
            if !protection.dismiss_stale_reviews {
                return Err(DecodeError::NotCanonical {
                    field: "protection",
                });
            }
            Payload::SetBranchProtection {
                branch,
                protection: Some(protection),
            }
        }
        TAG_SET_BRANCH_PROTECTION_CHECKS => {
            let branch = r.string("branch", MAX_NAME_BYTES)?;
            let mut protection = decode_protection(r)?;
            protection.dismiss_stale_reviews = r.bool()?;
            let strict = r.bool()?;
            let count = r.count("contexts", MAX_REQUIRED_CONTEXTS, 4)?;
            let contexts = (0..count)
                .map(|_| r.string("context", MAX_CONTEXT_BYTES))
                .collect::<Result<Vec<_>, _>>()?;
            protection.required_checks = Some(RequiredChecks { strict, contexts });
            Payload::SetBranchProtection {
                branch,
                protection: Some(protection),
            }
        }
        TAG_UPDATE_REF => Payload::UpdateRef {
            name: r.string("ref name", MAX_NAME_BYTES)?,
            old: decode_option(r, |r| r.array().map(ObjectId::from_bytes))?,
            new: decode_option(r, |r| r.array().map(ObjectId::from_bytes))?,
            force: r.bool()?,
        },
        other => return decode_collab(r, other),
    };
    Ok(payload)
}

fn decode_collab(r: &mut Reader<'_>, tag: u16) -> Result<Payload, DecodeError> {
    let op_id = |r: &mut Reader<'_>| r.array().map(OpId::from_bytes);
    let object = |r: &mut Reader<'_>| r.array().map(ObjectId::from_bytes);
    let payload = match tag {
        TAG_OPEN_ISSUE => Payload::OpenIssue {
            number: r.u64()?,
            title: r.string("title", MAX_NAME_BYTES)?,
            body: r.string("body", MAX_TEXT_BYTES)?,
            labels: decode_names(r, "labels", MAX_LABELS)?,
            assignees: decode_keys(r, "assignees", MAX_ASSIGNEES)?,
        },
        TAG_OPEN_PULL => Payload::OpenPull {
            number: r.u64()?,
            title: r.string("title", MAX_NAME_BYTES)?,
            body: r.string("body", MAX_TEXT_BYTES)?,
            head: r.string("head", MAX_NAME_BYTES)?,
            base: r.string("base", MAX_NAME_BYTES)?,
            draft: r.bool()?,
        },
        TAG_EDIT_THREAD => Payload::EditThread {
            thread: op_id(r)?,
            edit: ThreadEdit {
                title: decode_option(r, |r| r.string("title", MAX_NAME_BYTES))?,
                body: decode_option(r, |r| r.string("body", MAX_TEXT_BYTES))?,
                open: decode_option(r, Reader::bool)?,
                locked: decode_option(r, Reader::bool)?,
                draft: decode_option(r, Reader::bool)?,
                base: decode_option(r, |r| r.string("base", MAX_NAME_BYTES))?,
            },
        },
        TAG_LABEL_THREAD => Payload::LabelThread {
            thread: op_id(r)?,
            add: decode_names(r, "labels", MAX_LABELS)?,
            remove: decode_names(r, "labels", MAX_LABELS)?,
        },
        TAG_ASSIGN_THREAD | TAG_REQUEST_REVIEWERS => Payload::AssignThread {
            thread: op_id(r)?,
            as_: match tag {
                TAG_ASSIGN_THREAD => Assignment::Assignee,
                _ => Assignment::Reviewer,
            },
            add: decode_keys(r, "assignees", MAX_ASSIGNEES)?,
            remove: decode_keys(r, "assignees", MAX_ASSIGNEES)?,
        },
        TAG_COMMENT => Payload::Comment {
            thread: op_id(r)?,
            body: r.string("body", MAX_TEXT_BYTES)?,
        },
        TAG_EDIT_COMMENT => Payload::EditComment {
            comment: op_id(r)?,
            body: decode_option(r, |r| r.string("body", MAX_TEXT_BYTES))?,
        },
        TAG_SET_STATUS => Payload::SetStatus {
            commit: object(r)?,
            state: {
                let tag = r.u8()?;
                StatusState::from_tag(tag).ok_or(DecodeError::UnknownTag {
                    field: "status state",
                    tag,
                })?
            },
            context: r.string("context", MAX_CONTEXT_BYTES)?,
            description: decode_option(r, |r| r.string("description", MAX_DESCRIPTION_BYTES))?,
            target_url: decode_option(r, |r| r.string("target_url", MAX_TARGET_URL_BYTES))?,
        },
        TAG_CREATE_CHECK_RUN => Payload::CreateCheckRun {
            head: object(r)?,
            fields: check_runs::decode_fields(r)?,
        },
        TAG_UPDATE_CHECK_RUN => Payload::UpdateCheckRun {
            run: op_id(r)?,
            fields: check_runs::decode_fields(r)?,
        },
        TAG_EDIT_REVIEW_COMMENT => Payload::EditReviewComment {
            review: op_id(r)?,
            index: r.u32()?,
            body: decode_option(r, |r| r.string("body", MAX_TEXT_BYTES))?,
        },
        TAG_SET_LABEL => Payload::SetLabel {
            name: r.string("label", MAX_NAME_BYTES)?,
            label: decode_option(r, |r| {
                Ok(LabelDef {
                    name: r.string("label", MAX_NAME_BYTES)?,
                    color: r.string("color", MAX_NAME_BYTES)?,
                    description: r.string("description", MAX_TEXT_BYTES)?,
                })
            })?,
        },
        TAG_REVIEW => Payload::Review {
            pull: op_id(r)?,
            verdict: decode_verdict(r)?,
            body: r.string("body", MAX_TEXT_BYTES)?,
            commit: object(r)?,
            comments: {
                // Each comment is at least a path length, a line and a body length.
                let count = r.count("comments", MAX_REVIEW_COMMENTS, 12)?;
                let mut comments = Vec::with_capacity(count);
                for _ in 0..count {
                    comments.push(ReviewComment {
                        path: r.string("path", MAX_NAME_BYTES)?,
                        line: r.u32()?,
                        body: r.string("body", MAX_TEXT_BYTES)?,
                    });
                }
                comments
            },
        },
        TAG_MERGE_PULL => Payload::MergePull {
            pull: op_id(r)?,
            method: decode_merge_method(r)?,
            head: object(r)?,
            old: object(r)?,
            new: object(r)?,
        },
        other => return Err(DecodeError::UnknownPayload(other)),
    };
    Ok(payload)
}

fn decode_names(
    r: &mut Reader<'_>,
    field: &'static str,
    max: usize,
) -> Result<Vec<String>, DecodeError> {
    // Each name is at least its 4-byte length.
    let count = r.count(field, max, 4)?;
    (0..count)
        .map(|_| r.string(field, MAX_NAME_BYTES))
        .collect()
}

fn decode_keys(
    r: &mut Reader<'_>,
    field: &'static str,
    max: usize,
) -> Result<Vec<crate::identity::PublicKey>, DecodeError> {
    let count = r.count(field, max, 32)?;
    (0..count).map(|_| r.public_key(field)).collect()
}

pub(crate) fn decode_verdict(r: &mut Reader<'_>) -> Result<Verdict, DecodeError> {
    match r.u8()? {
        1 => Ok(Verdict::Approve),
        2 => Ok(Verdict::RequestChanges),
        3 => Ok(Verdict::Comment),
        tag => Err(DecodeError::UnknownTag {
            field: "verdict",
            tag,
        }),
    }
}

pub(crate) fn decode_merge_method(r: &mut Reader<'_>) -> Result<MergeMethod, DecodeError> {
    match r.u8()? {
        1 => Ok(MergeMethod::Merge),
        2 => Ok(MergeMethod::Squash),
        3 => Ok(MergeMethod::Rebase),
        tag => Err(DecodeError::UnknownTag {
            field: "merge method",
            tag,
        }),
    }
}

pub(crate) fn decode_option<'a, T>(
    r: &mut Reader<'a>,
    value: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    if r.option_tag()? {
        value(r).map(Some)
    } else {
        Ok(None)
    }
}

pub(crate) fn decode_role(r: &mut Reader<'_>) -> Result<Role, DecodeError> {
    match r.u8()? {
        1 => Ok(Role::Read),
        2 => Ok(Role::Write),
        3 => Ok(Role::Admin),
        4 => Ok(Role::Owner),
        other => Err(DecodeError::UnknownRole(other)),
    }
}

/// The fields of the original (0x0005) protection encoding.
pub(crate) fn decode_protection(r: &mut Reader<'_>) -> Result<BranchProtection, DecodeError> {
    Ok(BranchProtection {
        no_force_push: r.bool()?,
        no_deletion: r.bool()?,
        required_approvals: r.u8()?,
        dismiss_stale_reviews: false,
        required_checks: None,
    })
}

mod rw;

pub use rw::{Reader, Writer};

#[cfg(test)]
mod tests;
