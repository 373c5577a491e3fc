//! [`ServiceError`]: what a use case answers instead of a result, one enum for every
//! front end to map once (GitHub's error JSON at the REST edge, a git `ERR` line or
//! `remote rejected` on the wire, a page in the browser).

use std::borrow::Cow;

use guts_core::{EncodeError, Rejection, Role};
use guts_storage::{AccountError, RepoError, Scope};

/// Why a use case did not do what it was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    /// Credentials that match no live token of an active user.
    #[error("bad credentials")]
    BadCredentials,
    /// Nothing the caller may see by that name. Private repositories are not found, not
    /// forbidden, for whoever may not see them.
    #[error("not found")]
    NotFound,
    /// The caller is known but may not do this.
    #[error("forbidden: {0}")]
    Forbidden(Denied),
    /// The fold refused the operation (a role it needs, a rule it breaks).
    #[error("rejected: {0}")]
    Rejected(Rejection),
    /// Arguments that break a rule, each naming its field; `summary` replaces the
    /// front end's generic headline when set.
    #[error("invalid: {problems:?}")]
    Invalid {
        summary: Option<&'static str>,
        problems: Vec<FieldProblem>,
    },
    /// The state the caller acted on changed (a merge's base branch or head).
    #[error("moved: {0}")]
    Moved(String),
    /// The request conflicts with what exists.
    #[error("conflict: {0}")]
    Conflict(Cow<'static, str>),
    /// A field over one of the operation encoder's caps (a count or a length), with
    /// the resource the operation is about.
    #[error("too large: {resource}: {error}")]
    TooLarge {
        resource: &'static str,
        error: EncodeError,
    },
    /// The thing cannot be done in its present state (a pull request that is closed,
    /// a draft, blocked by its base branch's protection, or in conflict); the message
    /// says why.
    #[error("not mergeable: {0}")]
    NotMergeable(Cow<'static, str>),
    /// Something this node cannot do now but might later (an unreadable peer's data).
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// Too many failed sign-ins for the login or from the address, or every password
    /// verification slot busy: try again after `retry_after`.
    #[error("too many attempts")]
    TooManyAttempts { retry_after: std::time::Duration },
    /// This node failed (storage); logged where it happened, never shown in detail.
    #[error("internal error")]
    Internal,
}

/// What a [`ServiceError::Forbidden`] caller lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The token lacks a scope.
    #[error("the token lacks the {0:?} scope")]
    Scope(Scope),
    /// Organization repositories are created by its members.
    #[error("not a member of the organization")]
    NotOrgMember,
    /// Memberships are changed by the organization's admins.
    #[error("not an admin of the organization")]
    NotOrgAdmin,
    /// The account signs its own operations; this node holds no key to sign with.
    #[error("the account has no custodial key here")]
    NotCustodial,
    /// The caller's role in the repository is below the one this needs.
    #[error("needs the {0:?} role")]
    Role(Role),
    /// The signing key does not hold the login a repository would be created under.
    #[error("may not create repositories under {0}")]
    NameNotHeld(String),
    /// The repository is archived: read-only until an admin unarchives it.
    #[error("This repository was archived so it is read-only.")]
    Archived,
}

/// One broken rule: GitHub's `{resource, field, code, message}` without the JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub resource: Cow<'static, str>,
    pub field: Cow<'static, str>,
    pub code: FieldCode,
    pub message: Option<String>,
}

/// Which kind of rule a field breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldCode {
    /// A required field is absent.
    MissingField,
    /// The value breaks the field's rule.
    Invalid,
    /// The value names something that exists already.
    AlreadyExists,
    /// A rule with its own message.
    Custom,
}

impl ServiceError {
    /// One invalid field.
    pub fn invalid(
        resource: &'static str,
        field: impl Into<Cow<'static, str>>,
        code: FieldCode,
        message: Option<String>,
    ) -> ServiceError {
        ServiceError::Invalid {
            summary: None,
            problems: vec![FieldProblem {
                resource: resource.into(),
                field: field.into(),
                code,
                message,
            }],
        }
    }
}

impl From<RepoError> for ServiceError {
    fn from(e: RepoError) -> ServiceError {
        match e {
            RepoError::InvalidName(reason) => ServiceError::invalid(
                "Repository",
                "name",
                FieldCode::Invalid,
                Some(reason.to_string()),
            ),
            RepoError::InvalidBranch(reason) => ServiceError::invalid(
                "Repository",
                "default_branch",
                FieldCode::Invalid,
                Some(reason.to_string()),
            ),
            RepoError::NameTaken => {
                ServiceError::Conflict("name already exists on this account".into())
            }
            RepoError::NotFound => ServiceError::NotFound,
            RepoError::NameNotHeld(login) => ServiceError::Forbidden(Denied::NameNotHeld(login)),
            RepoError::Moved(what) => ServiceError::Moved(what),
            RepoError::Invalid(what) => ServiceError::Unprocessable(what),
            RepoError::Rejected(rejection) => ServiceError::Rejected(rejection),
            RepoError::Encode(error) => ServiceError::TooLarge {
                resource: "Repository",
                error,
            },
            e @ RepoError::Store(_) => {
                tracing::error!(error = %e, "repository storage failed");
                ServiceError::Internal
            }
        }
    }
}

impl From<AccountError> for ServiceError {
    fn from(e: AccountError) -> ServiceError {
        match e {
            AccountError::InvalidLogin(reason) => ServiceError::invalid(
                "User",
                "login",
                FieldCode::Invalid,
                Some(reason.to_string()),
            ),
            AccountError::LoginTaken(_) => ServiceError::invalid(
                "User",
                "login",
                FieldCode::AlreadyExists,
                Some("login is already taken".to_string()),
            ),
            AccountError::NoSuchUser(_)
            | AccountError::NoSuchOrg(_)
            | AccountError::NoSuchHook
            | AccountError::NoSuchToken
            | AccountError::NoSuchSshKey => ServiceError::NotFound,
            AccountError::SshKeyInUse => ServiceError::invalid(
                "PublicKey",
                "key",
                FieldCode::Custom,
                Some("key is already in use".to_string()),
            ),
            AccountError::TooManySshKeys(max) => ServiceError::invalid(
                "PublicKey",
                "key",
                FieldCode::Custom,
                Some(format!("at most {max} keys may be added here")),
            ),
            AccountError::TooManyHooks(max) => ServiceError::invalid(
                "Hook",
                "hook",
                FieldCode::Custom,
                Some(format!(
                    "The organization already has the maximum of {max} hooks."
                )),
            ),
            AccountError::LastOrgAdmin => ServiceError::invalid(
                "Membership",
                "role",
                FieldCode::Custom,
                Some("an organization keeps at least one admin".to_string()),
            ),
            AccountError::NotCustodial(_) => ServiceError::Forbidden(Denied::NotCustodial),
            e @ (AccountError::Seal(_) | AccountError::Page(_) | AccountError::Store(_)) => {
                tracing::error!(error = %e, "account storage failed");
                ServiceError::Internal
            }
        }
    }
}
