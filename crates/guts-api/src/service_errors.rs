//! The one mapping of the use-case layer's errors (`ServiceError`, and the storage
//! errors it wraps) to GitHub's statuses, messages and field errors: every route gets
//! it through `?`, none writes its own.

use std::borrow::Cow;

use guts_core::{Rejection, Role};
use guts_service::{Denied, FieldCode, ServiceError};
use guts_storage::{AccountError, RepoError, Scope};
use http::StatusCode;

use crate::error::{ApiError, FieldError};

/// The one mapping of the use-case layer's errors to GitHub's statuses and messages.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match e {
            ServiceError::BadCredentials => ApiError::bad_credentials(),
            ServiceError::NotFound => ApiError::not_found(),
            ServiceError::Forbidden(denied) => ApiError::forbidden(match denied {
                Denied::Scope(scope) => Cow::Owned(format!(
                    "Resource not accessible by personal access token: needs the {} scope",
                    match scope {
                        Scope::Repo => "repo",
                        Scope::Admin => "admin",
                    }
                )),
                Denied::NotOrgMember => {
                    "You must be a member of the organization to create its repositories".into()
                }
                Denied::NotOrgAdmin => {
                    "You must be an admin of the organization to change memberships".into()
                }
                Denied::NotCustodial => {
                    "This account signs its own operations: submit pre-signed operations instead"
                        .into()
                }
                Denied::NameNotHeld(login) => Cow::Owned(format!(
                    "You do not have permission to create repositories under {login}."
                )),
                Denied::Archived => "Repository was archived so is read-only.".into(),
                Denied::Role(role) => Cow::Owned(format!(
                    "Must have {} access to this repository.",
                    match role {
                        Role::Read => "read",
                        Role::Write => "push",
                        Role::Admin | Role::Owner => "admin",
                    }
                )),
            }),
            ServiceError::Rejected(rejection) => rejected(rejection),
            ServiceError::Invalid { summary, problems } => {
                let fields = problems
                    .into_iter()
                    .map(|p| FieldError {
                        resource: p.resource,
                        field: p.field,
                        code: match p.code {
                            FieldCode::MissingField => "missing_field",
                            FieldCode::Invalid => "invalid",
                            FieldCode::AlreadyExists => "already_exists",
                            FieldCode::Custom => "custom",
                        }
                        .into(),
                        message: p.message,
                    })
                    .collect();
                let e = ApiError::validation_all(fields);
                match summary {
                    Some(summary) => e.with_message(summary),
                    None => e,
                }
            }
            ServiceError::Moved(what) => ApiError::new(StatusCode::CONFLICT, what),
            ServiceError::TooManyAttempts { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts. Try again later.",
            ),
            ServiceError::Conflict(what) => ApiError::new(StatusCode::CONFLICT, what),
            ServiceError::TooLarge { resource, error } => {
                crate::caps::encode_error(resource, &error)
            }
            ServiceError::NotMergeable(why) => ApiError::new(StatusCode::METHOD_NOT_ALLOWED, why),
            ServiceError::Unprocessable(what) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, what)
            }
            ServiceError::Internal => ApiError::internal(),
        }
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> ApiError {
        ServiceError::from(e).into()
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> ApiError {
        ServiceError::from(e).into()
    }
}

/// 422 naming one field.
fn field_error(
    resource: &'static str,
    field: &'static str,
    code: &'static str,
    message: String,
) -> ApiError {
    ApiError::validation(FieldError {
        resource: resource.into(),
        field: field.into(),
        code: code.into(),
        message: Some(message),
    })
}

/// GitHub's statuses for what the fold refuses.
fn rejected(rejection: Rejection) -> ApiError {
    match rejection {
        Rejection::NotPermitted { required, .. } => ApiError::forbidden(match required {
            Role::Read => "Must have read access to repository.",
            Role::Write => "Must have push access to repository.",
            Role::Admin | Role::Owner => "Must have admin rights to Repository.",
        }),
        Rejection::AdminRequiresOwner | Rejection::OwnerImmutable => ApiError::forbidden(
            "Only the repository's owner (or its organization's admins) may change the role of an admin or the owner.",
        ),
        Rejection::NoSuchThread | Rejection::NoSuchComment | Rejection::NoSuchCheckRun => {
            ApiError::not_found()
        }
        Rejection::Archived => ApiError::forbidden("Repository was archived so is read-only."),
        Rejection::IssuesDisabled => {
            ApiError::new(StatusCode::GONE, "Issues are disabled for this repo")
        }
        Rejection::AlreadyMerged | Rejection::ThreadClosed | Rejection::Draft => {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, rejection.to_string())
        }
        Rejection::StatusCheck { .. } | Rejection::HeadBehind => {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, rejection.to_string())
        }
        Rejection::ReviewRequired { .. } | Rejection::Protected(_) => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Protected branch rules not satisfied: {rejection}"),
        ),
        Rejection::InvalidText { field } | Rejection::TooMany { field } => {
            field_error("Issue", field, "invalid", rejection.to_string())
        }
        Rejection::LabelExists => ApiError::validation(FieldError {
            resource: "Label".into(),
            field: "name".into(),
            code: "already_exists".into(),
            message: None,
        }),
        Rejection::OwnPullReview => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unprocessable Entity: Can not approve your own pull request",
        ),
        Rejection::DuplicatePull => field_error(
            "PullRequest",
            "",
            "custom",
            "A pull request already exists.".into(),
        ),
        Rejection::NoCommits => field_error(
            "PullRequest",
            "",
            "custom",
            "No commits between base and head.".into(),
        ),
        Rejection::SameBranch | Rejection::BranchMissing | Rejection::NotAPull => {
            field_error("PullRequest", "base", "invalid", rejection.to_string())
        }
        other => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
    }
}
