//! Organization webhooks: what `/orgs/{org}/hooks…` asks, for the organization's
//! admins (others get `NotFound`, as on GitHub). The hooks live in the organization's
//! account record (`guts_storage::accounts::org_hooks`), which replicates to every
//! node; every event of every repository the organization owns reaches them. The
//! rules are the repository hooks' ([`crate::hooks`]): the same input, bounds, sealed
//! secret and outbound policy.

use guts_core::RepoId;
use guts_core::hooks::HookConfig;
use guts_storage::accounts::numeric_id;
use guts_storage::accounts::org_hooks::OrgHook;
use guts_storage::hooks::now_ms;
use guts_storage::{AccountError, Delivery, OrgRecord};

use crate::Service;
use crate::caller::Authed;
use crate::error::ServiceError;
use crate::hooks::{HookInput, MAX_DELIVERIES_PAGE, internal, new_config};

/// The binding of an organization's hook secrets in the seal.
fn secret_binding(org: &str) -> String {
    format!("guts/org-hook-secret/{}", org.to_ascii_lowercase())
}

/// The API's id of `hook`.
pub fn org_hook_number(hook: &OrgHook) -> u64 {
    hook.key_bytes().map_or(0, |k| numeric_id(&k))
}

/// Hook `number` of `org`.
fn find(org: &OrgRecord, number: u64) -> Result<OrgHook, ServiceError> {
    org.hooks
        .iter()
        .find(|h| org_hook_number(h) == number)
        .cloned()
        .ok_or(ServiceError::NotFound)
}

/// The 32 bytes of `hook`, as the `OpId`-shaped name deliveries carry.
fn hook_id(hook: &OrgHook) -> Result<guts_core::OpId, ServiceError> {
    hook.key_bytes()
        .map(guts_core::OpId::from_bytes)
        .ok_or(ServiceError::Internal)
}

impl Service {
    /// `NotFound` unless `who` administers `org`.
    fn may_manage_org_hooks(&self, who: &Authed, org: &OrgRecord) -> Result<(), ServiceError> {
        self.require_org_admin(who, org)
            .map_err(|_| ServiceError::NotFound)
    }

    /// The organization's hooks, for an admin.
    pub fn org_hooks(&self, who: &Authed, org: &OrgRecord) -> Result<Vec<OrgHook>, ServiceError> {
        self.may_manage_org_hooks(who, org)?;
        Ok(org.hooks.clone())
    }

    /// Hook `number` of `org`, for an admin.
    pub fn org_hook(
        &self,
        who: &Authed,
        org: &OrgRecord,
        number: u64,
    ) -> Result<OrgHook, ServiceError> {
        self.may_manage_org_hooks(who, org)?;
        find(org, number)
    }

    /// Creates a hook of `org`; answers it.
    pub async fn create_org_hook(
        &self,
        who: &Authed,
        org: &OrgRecord,
        input: HookInput,
    ) -> Result<OrgHook, ServiceError> {
        self.may_manage_org_hooks(who, org)?;
        let base = new_config(&input)?;
        let config = self
            .edited(&secret_binding(&org.login), base, input)
            .await?;
        let key: [u8; 32] = rand::random();
        let now = now_ms();
        let hook = OrgHook::new(key, &config, now, now);
        let added = hook.clone();
        self.accounts
            .change_org_hooks(&org.login, move |hooks| {
                if hooks.len() >= guts_core::hooks::MAX_HOOKS {
                    return Err(AccountError::TooManyHooks(guts_core::hooks::MAX_HOOKS));
                }
                hooks.push(added.clone());
                Ok(())
            })
            .await?;
        self.request_org_ping(org, &hook, who).await?;
        Ok(hook)
    }

    /// Changes hook `number` of `org`; answers it.
    pub async fn update_org_hook(
        &self,
        who: &Authed,
        org: &OrgRecord,
        number: u64,
        input: HookInput,
    ) -> Result<OrgHook, ServiceError> {
        self.may_manage_org_hooks(who, org)?;
        let old = find(org, number)?;
        let current = old.config().ok_or(ServiceError::Internal)?;
        let config: HookConfig = self
            .edited(&secret_binding(&org.login), current, input)
            .await?;
        let hook = OrgHook::new(
            old.key_bytes().ok_or(ServiceError::Internal)?,
            &config,
            old.created_ms,
            now_ms().max(old.updated_ms + 1),
        );
        let replacement = hook.clone();
        self.accounts
            .change_org_hooks(&org.login, move |hooks| {
                match hooks.iter_mut().find(|h| h.key == replacement.key) {
                    Some(slot) => *slot = replacement.clone(),
                    None => return Err(AccountError::NoSuchHook),
                }
                Ok(())
            })
            .await?;
        Ok(hook)
    }

    /// Deletes hook `number` of `org`.
    pub async fn delete_org_hook(
        &self,
        who: &Authed,
        org: &OrgRecord,
        number: u64,
    ) -> Result<(), ServiceError> {
        self.may_manage_org_hooks(who, org)?;
        let key = find(org, number)?.key;
        self.accounts
            .change_org_hooks(&org.login, move |hooks| {
                hooks.retain(|h| h.key != key);
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Queues a `ping` to hook `number` of `org` from `who`.
    pub async fn ping_org_hook(
        &self,
        who: &Authed,
        org: &OrgRecord,
        number: u64,
    ) -> Result<(), ServiceError> {
        self.may_manage_org_hooks(who, org)?;
        let hook = find(org, number)?;
        self.request_org_ping(org, &hook, who).await
    }

    async fn request_org_ping(
        &self,
        org: &OrgRecord,
        hook: &OrgHook,
        who: &Authed,
    ) -> Result<(), ServiceError> {
        // An organization's ping is about no repository.
        let nowhere = RepoId::from_bytes([0; 32]);
        let org = Some(org.login.to_ascii_lowercase());
        self.queue_requested(who, nowhere, hook_id(hook)?, "ping", org)
            .await
    }

    /// The attempts logged on this node for hook `number` of `org`, newest first.
    pub fn org_hook_deliveries(
        &self,
        who: &Authed,
        org: &OrgRecord,
        number: u64,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Delivery>, ServiceError> {
        let hook = self.org_hook(who, org, number)?;
        self.hook_queue()
            .deliveries(None, &hook_id(&hook)?, skip, limit.min(MAX_DELIVERIES_PAGE))
            .map_err(internal)
    }

    /// Attempt `delivery` of hook `number` of `org`.
    pub fn org_hook_delivery(
        &self,
        who: &Authed,
        org: &OrgRecord,
        number: u64,
        delivery: u64,
    ) -> Result<Delivery, ServiceError> {
        let hook = self.org_hook(who, org, number)?;
        self.hook_queue()
            .delivery(None, &hook_id(&hook)?, delivery)
            .map_err(internal)?
            .ok_or(ServiceError::NotFound)
    }

    /// Sends attempt `delivery`'s event again (same payload, same GUID).
    pub async fn redeliver_org(
        &self,
        who: &Authed,
        org: &OrgRecord,
        number: u64,
        delivery: u64,
    ) -> Result<(), ServiceError> {
        let past = self.org_hook_delivery(who, org, number, delivery)?;
        self.queue_again(past).await
    }

    /// The hooks of the organization `login` (none if it is not one), for delivery.
    pub fn org_hooks_of(&self, login: &str) -> Vec<OrgHook> {
        self.accounts
            .org(login)
            .ok()
            .flatten()
            .map(|o| o.hooks)
            .unwrap_or_default()
    }

    /// Opens `hook`'s sealed secret (empty when it has none).
    pub fn org_hook_secret(&self, org: &str, hook: &OrgHook) -> Result<Vec<u8>, ServiceError> {
        let sealed = hex::decode(&hook.secret).map_err(|_| ServiceError::Internal)?;
        if sealed.is_empty() {
            return Ok(Vec::new());
        }
        self.accounts
            .sealer()
            .open(&sealed, &secret_binding(org))
            .map(|s| s.to_vec())
            .map_err(|e| {
                tracing::warn!(error = %e, "an organization hook secret does not open here");
                ServiceError::Internal
            })
    }
}
