//! Placeholder until the SSH key records land (replaced by the real module).

use crate::Service;
use crate::caller::Authed;
use crate::error::ServiceError;
use crate::git_access::DeployLimit;

/// Who an SSH key is.
#[derive(Debug, Clone)]
pub struct SshCaller {
    pub authed: Authed,
    pub key_id: u64,
    pub fingerprint: String,
    pub deploy: Option<DeployLimit>,
}

impl Service {
    /// The caller an SSH public key authenticates.
    pub fn ssh_caller(&self, _key_blob: &[u8]) -> Result<Option<SshCaller>, ServiceError> {
        Ok(None)
    }
}
