//! Check runs as CI tools write them (`POST /repos/{o}/{r}/check-runs`, `PATCH
//! …/check-runs/{id}`): one signed `CreateCheckRun` or `UpdateCheckRun` of the caller
//! per request.
//!
//! Writing needs what a push needs ([`Service::may_push`]), as posting a status does
//! (GitHub gives the checks API to apps with write access). The fold checks the role,
//! GitHub's status rules and the bounds again, so a peer's forged run is refused there
//! too; this layer checks first to answer with GitHub's field errors, and checks what
//! the fold cannot see: that the head commit exists in this node's git store.

use std::sync::Arc;

use guts_core::check_runs::{
    self, CheckOutput, CheckRunFields, CheckStatus, Conclusion, MAX_CHECK_RUNS_PER_COMMIT,
};
use guts_core::{OpId, Payload, Rejection};
use guts_storage::RepoView;

use crate::Service;
use crate::caller::Authed;
use crate::error::{FieldCode, ServiceError};
use crate::repos::RepoAccess;

/// A check run's fields as the client sent them, times already read as seconds since
/// the epoch; on update, absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckRunInput {
    pub name: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub details_url: Option<String>,
    pub external_id: Option<String>,
    pub output: Option<CheckOutput>,
}

fn invalid(field: &'static str, message: String) -> ServiceError {
    ServiceError::invalid("CheckRun", field, FieldCode::Custom, Some(message))
}

impl CheckRunInput {
    /// The fields of the payload, checked by the fold's own rules.
    fn fields(self) -> Result<CheckRunFields, ServiceError> {
        let status = self
            .status
            .map(|s| {
                CheckStatus::parse(&s).ok_or_else(|| {
                    invalid(
                        "status",
                        "status must be queued, in_progress or completed".into(),
                    )
                })
            })
            .transpose()?;
        let conclusion = self
            .conclusion
            .map(|c| {
                Conclusion::parse(&c).ok_or_else(|| {
                    invalid(
                        "conclusion",
                        "conclusion must be action_required, cancelled, failure, neutral, success, skipped or timed_out".into(),
                    )
                })
            })
            .transpose()?;
        let time = |field: &'static str, at: Option<i64>| {
            at.map(|t| {
                u64::try_from(t).map_err(|_| invalid(field, format!("{field} must be after 1970")))
            })
            .transpose()
        };
        let fields = CheckRunFields {
            name: self.name,
            status,
            conclusion,
            started_at: time("started_at", self.started_at)?,
            completed_at: time("completed_at", self.completed_at)?,
            details_url: self.details_url,
            external_id: self.external_id,
            output: self.output,
        };
        check_runs::validate_fields(&fields).map_err(explain)?;
        Ok(fields)
    }
}

/// GitHub's field error for a refused field.
fn explain(rejection: Rejection) -> ServiceError {
    match rejection {
        Rejection::InvalidText { field: "name" } => invalid(
            "name",
            format!(
                "name must be 1 to {} bytes without control characters",
                check_runs::MAX_CHECK_NAME_BYTES
            ),
        ),
        Rejection::InvalidText {
            field: "conclusion",
        } => invalid(
            "conclusion",
            "conclusion is required when status is completed".into(),
        ),
        Rejection::InvalidText { field: "output" } => invalid(
            "output",
            format!(
                "output needs a title of at most {} bytes, and a summary and text of at most {} characters",
                check_runs::MAX_TITLE_BYTES,
                check_runs::MAX_OUTPUT_CHARS
            ),
        ),
        Rejection::InvalidText { field } => invalid(
            field,
            format!("{field} is too long or holds control characters"),
        ),
        Rejection::TooMany { field: "output" } => invalid(
            "output",
            format!(
                "the check runs of this commit hold at most {} bytes of output",
                check_runs::MAX_OUTPUT_BYTES_PER_COMMIT
            ),
        ),
        Rejection::TooMany { field } => invalid(
            field,
            format!("a commit holds at most {MAX_CHECK_RUNS_PER_COMMIT} check runs"),
        ),
        other => ServiceError::Rejected(other),
    }
}

impl Service {
    /// Creates a check run on commit `head_sha` (40 hex digits naming a commit of
    /// this repository) as `who`; answers the new state and the run's operation id.
    pub async fn create_check_run(
        &self,
        who: &Authed,
        access: &RepoAccess,
        head_sha: &str,
        input: CheckRunInput,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        self.may_push(who, access)?;
        let fields = input.fields()?;
        if fields.name.is_none() {
            return Err(explain(Rejection::InvalidText { field: "name" }));
        }
        // GitHub: a conclusion is required with `completed_at` or a completed status.
        let completed =
            fields.status == Some(CheckStatus::Completed) || fields.completed_at.is_some();
        if completed && fields.conclusion.is_none() {
            return Err(explain(Rejection::InvalidText {
                field: "conclusion",
            }));
        }
        let head = self.existing_commit(who, access, head_sha).await?;
        let payload = Payload::CreateCheckRun { head, fields };
        self.append(who, &access.view, payload)
            .await
            .map_err(|e| match e {
                ServiceError::Rejected(rejection) => explain(rejection),
                other => other,
            })
    }

    /// Changes check run `id` (GitHub's integer) as `who`; answers the new state and
    /// the run's operation id. 404 when no run has that id.
    pub async fn update_check_run(
        &self,
        who: &Authed,
        access: &RepoAccess,
        id: u64,
        input: CheckRunInput,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        self.may_push(who, access)?;
        let run = access
            .view
            .state
            .checks
            .runs
            .by_number(id)
            .map(|r| r.op)
            .ok_or(ServiceError::NotFound)?;
        let fields = input.fields()?;
        let payload = Payload::UpdateCheckRun { run, fields };
        let (view, _) = self
            .append(who, &access.view, payload)
            .await
            .map_err(|e| match e {
                ServiceError::Rejected(rejection) => explain(rejection),
                other => other,
            })?;
        Ok((view, run))
    }
}
