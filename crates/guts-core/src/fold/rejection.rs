//! Why the fold refused an operation ([`Rejection`]), and its canonical encoding: kept
//! apart from the rules in `fold.rs` because rejections are part of the state nodes
//! agree on ([`super::RepoState::encode`]), so their tags must never change.

use crate::codec::{DecodeError, Reader, Writer};
use crate::names::NameError;
use crate::op::Role;

/// Which protection rule refused an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectedAction {
    ForcePush,
    Deletion,
    /// A push to a branch that takes changes through reviewed pull requests only.
    DirectPush,
}

/// Why an operation was not applied. Stored in the state, so it is part of what nodes
/// agree on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("create_repo must have no parents")]
    CreateWithParents,
    #[error("repository id does not match the create_repo operation")]
    RepoIdMismatch,
    #[error("repository already created")]
    AlreadyCreated,
    #[error("repository does not exist")]
    NoRepo,
    #[error("repository is deleted")]
    RepoDeleted,
    #[error("invalid {field}: {error}")]
    InvalidName {
        field: &'static str,
        error: NameError,
    },
    #[error("requires role {required:?}, author holds {held:?}")]
    NotPermitted { required: Role, held: Option<Role> },
    #[error("the owner role cannot be granted, changed or removed")]
    OwnerImmutable,
    #[error("only the owner can change another admin's role")]
    AdminRequiresOwner,
    #[error("refs under refs/guts/ are reserved")]
    ReservedRef,
    #[error("ref update with neither an old nor a new value")]
    EmptyRefUpdate,
    /// Creating the ref would make it a directory of an existing ref or the other way
    /// round (`refs/heads/a` next to `refs/heads/a/b`), which git cannot store.
    #[error("ref {existing} occupies the path")]
    RefPathConflict { existing: String },
    #[error("non-fast-forward update without force")]
    NonFastForward,
    #[error("branch protection forbids {0:?}")]
    Protected(ProtectedAction),
    #[error("no such issue or pull request")]
    NoSuchThread,
    #[error("not a pull request")]
    NotAPull,
    #[error("no such comment")]
    NoSuchComment,
    #[error("the pull request is closed")]
    ThreadClosed,
    #[error("the pull request is already merged")]
    AlreadyMerged,
    #[error("the pull request is a draft")]
    Draft,
    #[error("authors cannot approve or request changes on their own pull request")]
    OwnPullReview,
    #[error("{required} approving reviews are required, found {approvals}")]
    ReviewRequired { required: u8, approvals: u8 },
    #[error("head and base must be different branches")]
    SameBranch,
    #[error("the branch does not exist")]
    BranchMissing,
    #[error("a pull request for this head and base is already open")]
    DuplicatePull,
    #[error("no commits between base and head")]
    NoCommits,
    #[error("a label with that name already exists")]
    LabelExists,
    #[error("invalid {field}")]
    InvalidText { field: &'static str },
    #[error("too many {field}")]
    TooMany { field: &'static str },
    /// Stamped before one of its parents: an honest clock always moves past what its
    /// author saw, so this is a clock set back (or a forgery of history), and such a
    /// timestamp must not win a conflict against the operations it follows.
    #[error("stamped {at} ms, before its parent stamped {parent} ms")]
    BeforeParents { at: u64, parent: u64 },
    #[error("the repository is archived and read-only")]
    Archived,
    #[error("issues are disabled in this repository")]
    IssuesDisabled,
    /// A required status check is not `success` on the commit: `failing` when its
    /// latest status is an error or a failure, else it is expected (pending or absent).
    #[error("Required status check \"{context}\" is {}.", if *failing { "failing" } else { "expected" })]
    StatusCheck { context: String, failing: bool },
    /// Strict required checks: the head does not contain the base branch's tip.
    #[error("Head branch is not up to date with the base branch.")]
    HeadBehind,
    #[error("no such hook")]
    NoSuchHook,
    #[error("no such check run")]
    NoSuchCheckRun,
}

impl Rejection {
    /// Stable snake_case reason, for the `reason` label of
    /// `guts_operations_rejected_total` (bounded: one value per variant).
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::CreateWithParents => "create_with_parents",
            Rejection::RepoIdMismatch => "repo_id_mismatch",
            Rejection::AlreadyCreated => "already_created",
            Rejection::NoRepo => "no_repo",
            Rejection::RepoDeleted => "repo_deleted",
            Rejection::InvalidName { .. } => "invalid_name",
            Rejection::NotPermitted { .. } => "not_permitted",
            Rejection::OwnerImmutable => "owner_immutable",
            Rejection::AdminRequiresOwner => "admin_requires_owner",
            Rejection::ReservedRef => "reserved_ref",
            Rejection::EmptyRefUpdate => "empty_ref_update",
            Rejection::RefPathConflict { .. } => "ref_path_conflict",
            Rejection::NonFastForward => "non_fast_forward",
            Rejection::Protected(_) => "protected",
            Rejection::NoSuchThread => "no_such_thread",
            Rejection::NotAPull => "not_a_pull",
            Rejection::NoSuchComment => "no_such_comment",
            Rejection::ThreadClosed => "thread_closed",
            Rejection::AlreadyMerged => "already_merged",
            Rejection::Draft => "draft",
            Rejection::OwnPullReview => "own_pull_review",
            Rejection::ReviewRequired { .. } => "review_required",
            Rejection::SameBranch => "same_branch",
            Rejection::BranchMissing => "branch_missing",
            Rejection::DuplicatePull => "duplicate_pull",
            Rejection::NoCommits => "no_commits",
            Rejection::LabelExists => "label_exists",
            Rejection::InvalidText { .. } => "invalid_text",
            Rejection::TooMany { .. } => "too_many",
            Rejection::BeforeParents { .. } => "before_parents",
            Rejection::Archived => "archived",
            Rejection::IssuesDisabled => "issues_disabled",
            Rejection::StatusCheck { .. } => "status_check",
            Rejection::HeadBehind => "head_behind",
            Rejection::NoSuchHook => "no_such_hook",
            Rejection::NoSuchCheckRun => "no_such_check_run",
        }
    }
}

pub(super) fn encode_rejection(w: &mut Writer, rejection: &Rejection) {
    match rejection {
        Rejection::CreateWithParents => w.u8(1),
        Rejection::RepoIdMismatch => w.u8(2),
        Rejection::AlreadyCreated => w.u8(3),
        Rejection::NoRepo => w.u8(4),
        Rejection::RepoDeleted => w.u8(5),
        Rejection::InvalidName { field, error } => {
            w.u8(6);
            w.long_bytes(field.as_bytes());
            encode_name_error(w, error);
        }
        Rejection::NotPermitted { required, held } => {
            w.u8(7);
            w.u8(crate::codec::role_tag(*required));
            w.u8(held.map_or(0, crate::codec::role_tag));
        }
        Rejection::OwnerImmutable => w.u8(8),
        Rejection::AdminRequiresOwner => w.u8(9),
        Rejection::ReservedRef => w.u8(10),
        Rejection::EmptyRefUpdate => w.u8(11),
        Rejection::NonFastForward => w.u8(12),
        Rejection::RefPathConflict { existing } => {
            w.u8(14);
            w.long_bytes(existing.as_bytes());
        }
        Rejection::Protected(action) => {
            w.u8(13);
            w.u8(match action {
                ProtectedAction::ForcePush => 1,
                ProtectedAction::Deletion => 2,
                ProtectedAction::DirectPush => 3,
            });
        }
        Rejection::NoSuchThread => w.u8(15),
        Rejection::NotAPull => w.u8(16),
        Rejection::NoSuchComment => w.u8(17),
        Rejection::ThreadClosed => w.u8(18),
        Rejection::AlreadyMerged => w.u8(19),
        Rejection::Draft => w.u8(20),
        Rejection::OwnPullReview => w.u8(21),
        Rejection::ReviewRequired {
            required,
            approvals,
        } => {
            w.u8(22);
            w.u8(*required);
            w.u8(*approvals);
        }
        Rejection::SameBranch => w.u8(23),
        Rejection::BranchMissing => w.u8(24),
        Rejection::DuplicatePull => w.u8(25),
        Rejection::NoCommits => w.u8(26),
        Rejection::LabelExists => w.u8(27),
        Rejection::InvalidText { field } => {
            w.u8(28);
            w.long_bytes(field.as_bytes());
        }
        Rejection::TooMany { field } => {
            w.u8(29);
            w.long_bytes(field.as_bytes());
        }
        Rejection::BeforeParents { at, parent } => {
            w.u8(30);
            w.u64(*at);
            w.u64(*parent);
        }
        Rejection::Archived => w.u8(31),
        Rejection::IssuesDisabled => w.u8(32),
        Rejection::StatusCheck { context, failing } => {
            w.u8(33);
            w.long_bytes(context.as_bytes());
            w.bool(*failing);
        }
        Rejection::HeadBehind => w.u8(34),
        Rejection::NoSuchHook => w.u8(40),
        Rejection::NoSuchCheckRun => w.u8(35),
    }
}

fn encode_name_error(w: &mut Writer, error: &NameError) {
    match error {
        NameError::Empty => w.u8(1),
        NameError::TooLong { max, found } => {
            w.u8(2);
            w.long_count(*max);
            w.long_count(*found);
        }
        NameError::InvalidChar { ch, position } => {
            w.u8(3);
            w.u32(u32::from(*ch));
            w.long_count(*position);
        }
        NameError::EdgeHyphen => w.u8(4),
        NameError::DoubleHyphen => w.u8(5),
        NameError::DotName => w.u8(6),
        NameError::GitSuffix => w.u8(7),
        NameError::NotUnderRefs => w.u8(8),
        NameError::DoubleDot => w.u8(9),
        NameError::AtBrace => w.u8(10),
        NameError::BareAt => w.u8(11),
        NameError::EmptyComponent => w.u8(12),
        NameError::TrailingSlash => w.u8(13),
        NameError::TrailingDot => w.u8(14),
        NameError::DotComponent => w.u8(15),
        NameError::LockComponent => w.u8(16),
        NameError::HeadBranch => w.u8(17),
        NameError::LeadingHyphen => w.u8(18),
    }
}

/// Every field a rejection names: a rejection holds a `&'static str`, so decoding one
/// maps the stored text back to its constant. A field the fold gains must be added here
/// (the decode tests fold every rejection kind, and a missing name fails them).
pub(super) const FIELDS: &[&str] = &[
    "assignees",
    "body",
    "check_run_id",
    "check_runs",
    "color",
    "comments",
    "completed_at",
    "conclusion",
    "context",
    "contexts",
    "default_branch",
    "description",
    "details_url",
    "events",
    "external_id",
    "homepage",
    "hooks",
    "label",
    "labels",
    "name",
    "output",
    "owner",
    "path",
    "ref name",
    "reviewers",
    "secret",
    "started_at",
    "statuses",
    "target_url",
    "title",
    "url",
];

/// The constant spelled by the next long string, which must be one of [`FIELDS`].
fn decode_field(r: &mut Reader<'_>) -> Result<&'static str, DecodeError> {
    let text = r.long_bytes("rejection field")?;
    FIELDS
        .iter()
        .copied()
        .find(|field| field.as_bytes() == text)
        .ok_or(DecodeError::NotCanonical {
            field: "rejection field",
        })
}

/// The inverse of [`encode_rejection`]: unknown tags are errors.
pub(crate) fn decode_rejection(r: &mut Reader<'_>) -> Result<Rejection, DecodeError> {
    let tag = r.u8()?;
    let rejection = match tag {
        1 => Rejection::CreateWithParents,
        2 => Rejection::RepoIdMismatch,
        3 => Rejection::AlreadyCreated,
        4 => Rejection::NoRepo,
        5 => Rejection::RepoDeleted,
        6 => Rejection::InvalidName {
            field: decode_field(r)?,
            error: decode_name_error(r)?,
        },
        7 => Rejection::NotPermitted {
            required: crate::codec::decode_role(r)?,
            held: match r.u8()? {
                0 => None,
                tag => Some(role_of(tag)?),
            },
        },
        8 => Rejection::OwnerImmutable,
        9 => Rejection::AdminRequiresOwner,
        10 => Rejection::ReservedRef,
        11 => Rejection::EmptyRefUpdate,
        12 => Rejection::NonFastForward,
        13 => Rejection::Protected(match r.u8()? {
            1 => ProtectedAction::ForcePush,
            2 => ProtectedAction::Deletion,
            3 => ProtectedAction::DirectPush,
            tag => {
                return Err(DecodeError::UnknownTag {
                    field: "protected action",
                    tag,
                });
            }
        }),
        14 => Rejection::RefPathConflict {
            existing: r.long_string("existing ref")?,
        },
        15 => Rejection::NoSuchThread,
        16 => Rejection::NotAPull,
        17 => Rejection::NoSuchComment,
        18 => Rejection::ThreadClosed,
        19 => Rejection::AlreadyMerged,
        20 => Rejection::Draft,
        21 => Rejection::OwnPullReview,
        22 => Rejection::ReviewRequired {
            required: r.u8()?,
            approvals: r.u8()?,
        },
        23 => Rejection::SameBranch,
        24 => Rejection::BranchMissing,
        25 => Rejection::DuplicatePull,
        26 => Rejection::NoCommits,
        27 => Rejection::LabelExists,
        28 => Rejection::InvalidText {
            field: decode_field(r)?,
        },
        29 => Rejection::TooMany {
            field: decode_field(r)?,
        },
        30 => Rejection::BeforeParents {
            at: r.u64()?,
            parent: r.u64()?,
        },
        31 => Rejection::Archived,
        32 => Rejection::IssuesDisabled,
        33 => Rejection::StatusCheck {
            context: r.long_string("context")?,
            failing: r.bool()?,
        },
        34 => Rejection::HeadBehind,
        35 => Rejection::NoSuchCheckRun,
        40 => Rejection::NoSuchHook,
        tag => {
            return Err(DecodeError::UnknownTag {
                field: "rejection",
                tag,
            });
        }
    };
    Ok(rejection)
}

/// A role from its tag (the `held` of `NotPermitted`, where 0 stands for none).
fn role_of(tag: u8) -> Result<Role, DecodeError> {
    let byte = [tag];
    crate::codec::decode_role(&mut Reader::new(&byte))
}

/// A `u64` written by `long_count` as a `usize`.
fn decode_usize(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    usize::try_from(r.u64()?).map_err(|_| DecodeError::NotCanonical {
        field: "name error",
    })
}

fn decode_name_error(r: &mut Reader<'_>) -> Result<NameError, DecodeError> {
    let error = match r.u8()? {
        1 => NameError::Empty,
        2 => NameError::TooLong {
            max: decode_usize(r)?,
            found: decode_usize(r)?,
        },
        3 => NameError::InvalidChar {
            ch: char::from_u32(r.u32()?).ok_or(DecodeError::NotCanonical {
                field: "name error",
            })?,
            position: decode_usize(r)?,
        },
        4 => NameError::EdgeHyphen,
        5 => NameError::DoubleHyphen,
        6 => NameError::DotName,
        7 => NameError::GitSuffix,
        8 => NameError::NotUnderRefs,
        9 => NameError::DoubleDot,
        10 => NameError::AtBrace,
        11 => NameError::BareAt,
        12 => NameError::EmptyComponent,
        13 => NameError::TrailingSlash,
        14 => NameError::TrailingDot,
        15 => NameError::DotComponent,
        16 => NameError::LockComponent,
        17 => NameError::HeadBranch,
        18 => NameError::LeadingHyphen,
        tag => {
            return Err(DecodeError::UnknownTag {
                field: "name error",
                tag,
            });
        }
    };
    Ok(error)
}
