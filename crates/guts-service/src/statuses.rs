//! Commit statuses as CI posts them (`POST /repos/{o}/{r}/statuses/{sha}`): one signed
//! `SetStatus` operation of the caller per status.
//!
//! Posting needs what a push needs ([`Service::may_push`]: the `repo` scope, the write
//! role, a repository that is not archived), as GitHub requires push access. The fold
//! checks the role and the bounds again, so a peer's forged status is refused there
//! too; this layer checks first to answer with GitHub's field errors, and checks what
//! the fold cannot see: that the commit exists in this node's git store.

use std::sync::Arc;

use guts_core::checks::{self, StatusState};
use guts_core::{ObjectId, OpId, Payload, Rejection};
use guts_storage::RepoView;

use crate::Service;
use crate::caller::Authed;
use crate::error::{FieldCode, ServiceError};
use crate::repos::RepoAccess;

/// A status as the client posted it; `context` `None` is GitHub's `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStatus {
    pub state: String,
    pub context: Option<String>,
    pub description: Option<String>,
    pub target_url: Option<String>,
}

impl Service {
    /// Posts `status` on commit `sha` (40 hex digits naming a commit of this
    /// repository) as `who`; answers the new state and the status's operation id.
    pub async fn create_status(
        &self,
        who: &Authed,
        access: &RepoAccess,
        sha: &str,
        status: NewStatus,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        self.may_push(who, access)?;
        let invalid = |field: &'static str, message: String| {
            ServiceError::invalid("Status", field, FieldCode::Custom, Some(message))
        };
        let state = StatusState::parse(&status.state)
            .ok_or_else(|| invalid("state", "state is not included in the list".into()))?;
        let context = status.context.unwrap_or_else(|| "default".to_string());
        checks::validate_fields(
            &context,
            status.description.as_deref(),
            status.target_url.as_deref(),
        )
        .map_err(|rejection| match rejection {
            Rejection::InvalidText {
                field: "description",
            } => invalid(
                "description",
                format!(
                    "description is too long (maximum is {} characters)",
                    checks::MAX_DESCRIPTION_CHARS
                ),
            ),
            Rejection::InvalidText {
                field: "target_url",
            } => invalid(
                "target_url",
                format!(
                    "target_url is too long (maximum is {} bytes) or holds control characters",
                    checks::MAX_TARGET_URL_BYTES
                ),
            ),
            _ => invalid(
                "context",
                format!(
                    "context must be 1 to {} bytes without control characters",
                    checks::MAX_CONTEXT_BYTES
                ),
            ),
        })?;
        let commit = self.existing_commit(who, access, sha).await?;
        let payload = Payload::SetStatus {
            commit,
            state,
            context,
            description: status.description,
            target_url: status.target_url,
        };
        self.append(who, &access.view, payload)
            .await
            .map_err(|e| match e {
                ServiceError::Rejected(Rejection::TooMany { field }) => invalid(
                    field,
                    format!(
                        "This SHA and context has reached the maximum number of statuses ({}).",
                        checks::MAX_STATUSES_PER_CONTEXT
                    ),
                ),
                other => other,
            })
    }

    /// The commit `sha` names, or GitHub's 422 when it names none here (check runs'
    /// head too).
    pub(crate) async fn existing_commit(
        &self,
        who: &Authed,
        access: &RepoAccess,
        sha: &str,
    ) -> Result<ObjectId, ServiceError> {
        let missing = || ServiceError::Unprocessable(format!("No commit found for SHA: {sha}"));
        let id = crate::write::parse_sha("Status", "sha", sha).map_err(|_| missing())?;
        let kind = self
            .with_git(who, access, move |git| {
                git.object_kind(&id).map_err(|e| {
                    tracing::error!(error = %e, "reading an object's kind failed");
                    ServiceError::Internal
                })
            })
            .await?;
        match kind {
            Some("commit") => Ok(ObjectId::from_bytes(id)),
            _ => Err(missing()),
        }
    }
}
