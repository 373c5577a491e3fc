//! Organization webhooks: kept in the organization's account record, so they replicate
//! with it to every node of the cluster (sealed, like every account page), and any
//! node can deliver an event of any of the organization's repositories to them.
//!
//! The record is one register (the newest version wins, see [`super::sync`]), so two
//! admins changing the organization's hooks at the same moment on two nodes keep one
//! of the two changes, on every node alike. Secrets are sealed with the cluster
//! secret, bound to the organization, before they enter the record.

use guts_core::hooks::{self, ContentType, HookConfig, MAX_HOOKS};
use redb::ReadableTable as _;
use serde::{Deserialize, Serialize};

use super::{AccountError, Accounts, OrgRecord, decode, encode, stamp};
use crate::error::StoreError;
use crate::schema::ORGS;

/// One organization webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgHook {
    /// 32 random bytes in hex: the hook's identity in deliveries; the API's id is
    /// [`super::numeric_id`] of these bytes.
    pub key: String,
    pub url: String,
    /// `json` or `form`.
    pub content_type: String,
    /// The sealed secret in hex; empty when there is none.
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub insecure_ssl: bool,
    pub events: Vec<String>,
    pub active: bool,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl OrgHook {
    /// The hook's configuration in the domain's terms; `None` if the record is not one
    /// this node can use (a bad content type or secret).
    pub fn config(&self) -> Option<HookConfig> {
        Some(HookConfig {
            url: self.url.clone(),
            content_type: ContentType::parse(&self.content_type)?,
            secret: hex::decode(&self.secret).ok()?,
            insecure_ssl: self.insecure_ssl,
            events: self.events.clone(),
            active: self.active,
        })
    }

    /// A record of `config` under `key`, stamped `created_ms` and `updated_ms`.
    pub fn new(key: [u8; 32], config: &HookConfig, created_ms: u64, updated_ms: u64) -> OrgHook {
        OrgHook {
            key: hex::encode(key),
            url: config.url.clone(),
            content_type: config.content_type.as_str().to_string(),
            secret: hex::encode(&config.secret),
            insecure_ssl: config.insecure_ssl,
            events: config.events.clone(),
            active: config.active,
            created_ms,
            updated_ms,
        }
    }

    /// The 32 bytes of [`OrgHook::key`].
    pub fn key_bytes(&self) -> Option<[u8; 32]> {
        hex::decode(&self.key).ok()?.try_into().ok()
    }
}

/// Whether `hooks` (an organization's, perhaps from a peer) are within the bounds a
/// repository's hooks are held to.
pub(crate) fn valid(hooks: &[OrgHook]) -> bool {
    hooks.len() <= MAX_HOOKS
        && hooks.iter().all(|h| {
            h.key_bytes().is_some() && h.config().is_some_and(|c| hooks::validate(&c).is_ok())
        })
}

impl Accounts {
    /// Applies `change` to the hooks of organization `org` and stores the record,
    /// restamped, durably; answers the record as stored. `change` may refuse.
    pub async fn change_org_hooks<F>(&self, org: &str, change: F) -> Result<OrgRecord, AccountError>
    where
        F: Fn(&mut Vec<OrgHook>) -> Result<(), AccountError> + Send + 'static,
    {
        let lower = org.to_ascii_lowercase();
        let outcome = self
            .store
            .write("org_hooks", move |txn| {
                let mut orgs = txn.open_table(ORGS)?;
                let Some(mut record) = orgs
                    .get(lower.as_str())?
                    .map(|v| decode::<OrgRecord>("org", v.value()))
                    .transpose()?
                else {
                    return Ok(Err(AccountError::NoSuchOrg(lower.clone())));
                };
                if let Err(e) = change(&mut record.hooks) {
                    return Ok(Err(e));
                }
                if !valid(&record.hooks) {
                    return Err(StoreError::Corrupt(
                        "organization hooks out of bounds".into(),
                    ));
                }
                record.updated_ms = stamp(record.updated_ms);
                orgs.insert(lower.as_str(), encode(&record)?.as_slice())?;
                Ok(Ok(record))
            })
            .await?;
        let record = outcome?;
        self.digest.invalidate();
        Ok(record)
    }
}
