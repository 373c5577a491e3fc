//! Collaborators: giving a user a role in a repository, or taking it away (a signed
//! `SetRole`, by an admin of the repository or of its organization).

use guts_core::{Payload, Role};
use guts_storage::{RepoView, Scope};

use crate::Service;
use crate::caller::Authed;
use crate::error::{FieldCode, ServiceError};

/// The role GitHub's permission name stands for (`pull`, `triage`, `push`, `maintain`,
/// `admin`); Guts has three roles below owner, so `triage` reads and `maintain` writes.
pub fn role_for(permission: &str) -> Option<Role> {
    match permission {
        "pull" | "triage" => Some(Role::Read),
        "push" | "maintain" => Some(Role::Write),
        "admin" => Some(Role::Admin),
        _ => None,
    }
}

impl Service {
    /// Gives `login` the role GitHub's `permission` names in `view` (or, with `None`,
    /// removes them): at once, Guts has no invitations.
    pub async fn set_collaborator(
        &self,
        who: &Authed,
        view: &RepoView,
        login: &str,
        permission: Option<&str>,
    ) -> Result<(), ServiceError> {
        who.require(Scope::Repo)?;
        let role = match permission {
            None => None,
            Some(name) => Some(role_for(name).ok_or_else(|| {
                ServiceError::invalid(
                    "Repository",
                    "permission",
                    FieldCode::Invalid,
                    Some("permission must be pull, triage, push, maintain or admin".into()),
                )
            })?),
        };
        let user = self.user(login)?;
        let key = user.public_key().map_err(|e| {
            tracing::error!(error = %e, "stored user key unreadable");
            ServiceError::Internal
        })?;
        self.administer(who, view, Payload::SetRole { user: key, role })
            .await?;
        Ok(())
    }
}
