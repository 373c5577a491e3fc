//! Branch protection: setting or removing a branch's rules (a signed
//! `SetBranchProtection`; the fold lets only admins do it and enforces the rules on
//! every push and merge).

use guts_core::{BranchProtection, Payload};
use guts_storage::{RepoView, Scope};

use crate::Service;
use crate::caller::Authed;
use crate::error::ServiceError;

/// `refs/heads/{branch}`, or why `branch` cannot name a branch.
pub fn branch_ref(branch: &str) -> Result<String, ServiceError> {
    let full = format!("refs/heads/{branch}");
    guts_core::validate_ref_name(&full)
        .map_err(|e| ServiceError::Unprocessable(format!("invalid branch: {e}")))?;
    Ok(full)
}

impl Service {
    /// Protects `branch` of `view` with `protection`, or (with `None`) removes its
    /// protection, as `who`.
    pub async fn set_branch_protection(
        &self,
        who: &Authed,
        view: &RepoView,
        branch: &str,
        protection: Option<BranchProtection>,
    ) -> Result<(), ServiceError> {
        who.require(Scope::Repo)?;
        let branch = branch_ref(branch)?;
        self.append(
            who,
            view,
            Payload::SetBranchProtection { branch, protection },
        )
        .await?;
        Ok(())
    }
}
