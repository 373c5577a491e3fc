//! Repository webhooks: managing them (one signed `SetHook` per change, by an admin),
//! and what a front end asks of their deliveries (the log, a ping, a redelivery).
//!
//! The secret is sealed here with the cluster secret, bound to the repository, before
//! it enters an operation, so it replicates to every node (any of which may deliver)
//! without ever being readable on the wire or in the log; the API shows it as
//! `********`. Target URLs are checked against the node's [`HookPolicy`] here, and
//! again by the deliverer on every connection.

use std::sync::Arc;

use guts_core::RepoId;
use guts_core::hooks::{self, ContentType, Hook, HookConfig};
use guts_core::{OpId, Payload, PublicKey, Rejection, Role};
use guts_storage::accounts::numeric_id;
use guts_storage::{Delivery, HookQueue, Job, RepoView, Scope};

use crate::Service;
use crate::caller::Authed;
use crate::error::{FieldCode, ServiceError};
use crate::repos::RepoAccess;

/// Longest secret a hook may have, in bytes (sealed, it stays within the fold's cap).
pub(crate) const MAX_SECRET_BYTES: usize = 256;
/// Delivery log rows one request may list.
pub const MAX_DELIVERIES_PAGE: usize = 100;

/// A hook's fields as a client sends them; `None` keeps (on an edit) or defaults
/// (on a creation) the field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookInput {
    pub url: Option<String>,
    pub content_type: Option<String>,
    /// `Some("")` removes the secret.
    pub secret: Option<String>,
    pub insecure_ssl: Option<bool>,
    pub events: Option<Vec<String>>,
    pub add_events: Vec<String>,
    pub remove_events: Vec<String>,
    pub active: Option<bool>,
}

/// An event the deliverer renders when it sends it, rather than from an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// `POST hooks/{id}/pings`.
    Ping,
    /// `POST hooks/{id}/tests`: the latest push, as a `push` event.
    Test,
}

impl Requested {
    /// The event name the job carries until it is rendered.
    pub fn event(self) -> &'static str {
        match self {
            Requested::Ping => "ping",
            Requested::Test => "push",
        }
    }
}

/// The binding of a repository's hook secrets in the seal.
fn secret_binding(view: &RepoView) -> String {
    format!("guts/hook-secret/{}", view.id)
}

/// `X-GitHub-Delivery` of `event` for `hook`, caused by `cause`: a GUID derived from
/// them, so the same event carries the same one from every node and every retry.
pub fn delivery_guid(cause: &[u8], hook: &OpId, event: &str) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("guts/hook-delivery/v1");
    hasher.update(cause);
    hasher.update(hook.as_bytes());
    hasher.update(event.as_bytes());
    let h = hasher.finalize();
    let hex = hex::encode(&h.as_bytes()[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Service {
    /// Whether `who` may manage `access`'s hooks: the `repo` scope and the admin role.
    /// Others get `NotFound`, as on GitHub: hooks are not shown to non-admins at all.
    fn may_manage_hooks(&self, who: &Authed, access: &RepoAccess) -> Result<(), ServiceError> {
        if access.role.is_none_or(|r| r < Role::Admin) {
            return Err(ServiceError::NotFound);
        }
        who.require(Scope::Repo)
    }

    /// The node's delivery queue and log.
    pub fn hook_queue(&self) -> HookQueue {
        self.repos.hook_queue()
    }

    /// The repository's hooks, oldest first, for an admin.
    pub fn hooks(
        &self,
        who: &Authed,
        access: &RepoAccess,
    ) -> Result<Vec<(OpId, Hook)>, ServiceError> {
        self.may_manage_hooks(who, access)?;
        let mut hooks: Vec<(OpId, Hook)> = access
            .view
            .state
            .hooks
            .hooks
            .iter()
            .map(|(id, h)| (*id, h.clone()))
            .collect();
        hooks.sort_by_key(|(id, h)| (h.created, *id));
        Ok(hooks)
    }

    /// Hook `number` (its API id), for an admin.
    pub fn hook(
        &self,
        who: &Authed,
        access: &RepoAccess,
        number: u64,
    ) -> Result<(OpId, Hook), ServiceError> {
        self.may_manage_hooks(who, access)?;
        find(&access.view, number)
    }

    /// Creates a hook; answers the new state and the hook's id.
    pub async fn create_hook(
        &self,
        who: &Authed,
        access: &RepoAccess,
        input: HookInput,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        self.may_manage_hooks(who, access)?;
        let base = new_config(&input)?;
        let config = self
            .edited(&secret_binding(&access.view), base, input)
            .await?;
        let payload = Payload::SetHook {
            hook: None,
            config: Some(config),
        };
        self.write_hook(who, access, payload).await
    }

    /// Changes hook `number`; answers the new state and the hook's id.
    pub async fn update_hook(
        &self,
        who: &Authed,
        access: &RepoAccess,
        number: u64,
        input: HookInput,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        self.may_manage_hooks(who, access)?;
        let (id, hook) = find(&access.view, number)?;
        let config = self
            .edited(&secret_binding(&access.view), hook.config, input)
            .await?;
        let payload = Payload::SetHook {
            hook: Some(id),
            config: Some(config),
        };
        self.write_hook(who, access, payload)
            .await
            .map(|(v, _)| (v, id))
    }

    /// Deletes hook `number`.
    pub async fn delete_hook(
        &self,
        who: &Authed,
        access: &RepoAccess,
        number: u64,
    ) -> Result<(), ServiceError> {
        self.may_manage_hooks(who, access)?;
        let (id, _) = find(&access.view, number)?;
        let payload = Payload::SetHook {
            hook: Some(id),
            config: None,
        };
        self.write_hook(who, access, payload).await.map(|_| ())
    }

    /// Queues a `ping` or a test `push` to hook `number`, rendered when sent, with
    /// `who` as its sender.
    pub async fn request_hook_event(
        &self,
        who: &Authed,
        access: &RepoAccess,
        number: u64,
        requested: Requested,
    ) -> Result<(), ServiceError> {
        self.may_manage_hooks(who, access)?;
        let (hook, _) = find(&access.view, number)?;
        self.queue_requested(who, access.view.id, hook, requested.event(), None)
            .await
    }

    /// The attempts logged on this node for hook `number`, newest first.
    pub fn hook_deliveries(
        &self,
        who: &Authed,
        access: &RepoAccess,
        number: u64,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Delivery>, ServiceError> {
        self.may_manage_hooks(who, access)?;
        let (hook, _) = find(&access.view, number)?;
        self.hook_queue()
            .deliveries(
                Some(&access.view.id),
                &hook,
                skip,
                limit.min(MAX_DELIVERIES_PAGE),
            )
            .map_err(internal)
    }

    /// Attempt `delivery` of hook `number`.
    pub fn hook_delivery(
        &self,
        who: &Authed,
        access: &RepoAccess,
        number: u64,
        delivery: u64,
    ) -> Result<Delivery, ServiceError> {
        self.may_manage_hooks(who, access)?;
        let (hook, _) = find(&access.view, number)?;
        self.hook_queue()
            .delivery(Some(&access.view.id), &hook, delivery)
            .map_err(internal)?
            .ok_or(ServiceError::NotFound)
    }

    /// Sends attempt `delivery`'s event again (same payload, same GUID).
    pub async fn redeliver(
        &self,
        who: &Authed,
        access: &RepoAccess,
        number: u64,
        delivery: u64,
    ) -> Result<(), ServiceError> {
        let past = self.hook_delivery(who, access, number, delivery)?;
        self.queue_again(past).await
    }

    /// Queues logged attempt `past`'s event again: same payload, same GUID, marked a
    /// redelivery (a repository's or an organization's hook alike).
    pub(crate) async fn queue_again(&self, past: Delivery) -> Result<(), ServiceError> {
        let job = Job {
            guid: past.guid,
            repo: past.repo,
            hook: past.hook,
            event: past.event,
            action: past.action,
            payload: past.payload,
            attempts: 0,
            next_at_ms: 0,
            redelivery: true,
            trace: guts_ops_trace(),
            sender: None,
            org: past.org,
        };
        self.hook_queue().enqueue(job).await.map_err(internal)
    }

    /// Queues `event` to hook `hook` (of `org`, for an organization's), rendered when
    /// sent, with `who` as its sender: a ping or a test push.
    pub(crate) async fn queue_requested(
        &self,
        who: &Authed,
        repo: RepoId,
        hook: OpId,
        event: &str,
        org: Option<String>,
    ) -> Result<(), ServiceError> {
        let cause = format!("request/{}/{}", who.key(), guts_storage::hooks::now_ms());
        let job = Job {
            guid: delivery_guid(cause.as_bytes(), &hook, event),
            repo,
            hook,
            event: event.to_string(),
            action: None,
            payload: String::new(),
            attempts: 0,
            next_at_ms: 0,
            redelivery: false,
            trace: guts_ops_trace(),
            sender: Some(who.key().to_string()),
            org,
        };
        self.hook_queue().enqueue(job).await.map_err(internal)
    }

    /// Opens hook `hook`'s sealed secret (empty when it has none).
    pub fn hook_secret(&self, view: &RepoView, hook: &Hook) -> Result<Vec<u8>, ServiceError> {
        if hook.config.secret.is_empty() {
            return Ok(Vec::new());
        }
        self.accounts
            .sealer()
            .open(&hook.config.secret, &secret_binding(view))
            .map(|s| s.to_vec())
            .map_err(|e| {
                tracing::warn!(error = %e, "a hook secret does not open with this cluster secret");
                ServiceError::Internal
            })
    }

    /// Who `key` is, by login, for payloads (`None` for an unknown key).
    pub fn login_of(&self, key: &PublicKey) -> Option<String> {
        self.accounts
            .user_by_key(key)
            .ok()
            .flatten()
            .map(|u| u.login)
    }

    async fn write_hook(
        &self,
        who: &Authed,
        access: &RepoAccess,
        payload: Payload,
    ) -> Result<(Arc<RepoView>, OpId), ServiceError> {
        self.administer(who, &access.view, payload)
            .await
            .map_err(|e| match e {
                ServiceError::Rejected(Rejection::TooMany { field: "hooks" }) => {
                    ServiceError::invalid(
                        "Hook",
                        "hook",
                        FieldCode::Custom,
                        Some(format!(
                            "The repository already has the maximum of {} hooks.",
                            hooks::MAX_HOOKS
                        )),
                    )
                }
                ServiceError::Rejected(Rejection::NoSuchHook) => ServiceError::NotFound,
                other => other,
            })
    }

    /// `config` with `input` applied, validated, its secret sealed under `binding`.
    pub(crate) async fn edited(
        &self,
        binding: &str,
        mut config: HookConfig,
        input: HookInput,
    ) -> Result<HookConfig, ServiceError> {
        let invalid = |field: &'static str, message: String| {
            ServiceError::invalid("Hook", field, FieldCode::Custom, Some(message))
        };
        if let Some(url) = input.url {
            config.url = url;
        }
        if let Some(kind) = input.content_type {
            config.content_type = ContentType::parse(&kind).ok_or_else(|| {
                invalid("content_type", "content_type must be json or form".into())
            })?;
        }
        if let Some(secret) = input.secret {
            if secret.len() > MAX_SECRET_BYTES {
                return Err(invalid(
                    "secret",
                    format!("secret is too long (maximum is {MAX_SECRET_BYTES} bytes)"),
                ));
            }
            config.secret = if secret.is_empty() {
                Vec::new()
            } else {
                self.accounts
                    .sealer()
                    .seal(secret.as_bytes(), binding)
                    .map_err(|e| {
                        tracing::error!(error = %e, "sealing a hook secret failed");
                        ServiceError::Internal
                    })?
            };
        }
        if let Some(insecure) = input.insecure_ssl {
            config.insecure_ssl = insecure;
        }
        if let Some(events) = input.events {
            config.events = events;
        }
        for event in input.add_events {
            if !config.events.contains(&event) {
                config.events.push(event);
            }
        }
        config.events.retain(|e| !input.remove_events.contains(e));
        // In the order given, each once.
        let mut seen = std::collections::BTreeSet::new();
        config.events.retain(|e| seen.insert(e.clone()));
        if let Some(active) = input.active {
            config.active = active;
        }
        hooks::validate(&config).map_err(|rejection| match rejection {
            Rejection::InvalidText { field: "url" } => invalid(
                "url",
                format!(
                    "url must be an http or https URL of at most {} bytes",
                    hooks::MAX_URL_BYTES
                ),
            ),
            Rejection::TooMany { .. } => invalid(
                "events",
                format!("a hook receives at most {} events", hooks::MAX_EVENTS),
            ),
            _ => invalid(
                "events",
                "events must be event names such as push, pull_request or *".into(),
            ),
        })?;
        self.hook_policy
            .check(&config.url)
            .await
            .map_err(|refused| invalid("url", refused.to_string()))?;
        Ok(config)
    }
}

/// A new hook's configuration before `input` is applied: GitHub's defaults (`form`,
/// `push`, active) at `input`'s URL, which a creation must give.
pub(crate) fn new_config(input: &HookInput) -> Result<HookConfig, ServiceError> {
    let Some(url) = input.url.clone() else {
        return Err(ServiceError::invalid(
            "Hook",
            "url",
            FieldCode::MissingField,
            Some("url is missing".into()),
        ));
    };
    Ok(HookConfig {
        url,
        content_type: ContentType::Form,
        secret: Vec::new(),
        insecure_ssl: false,
        events: vec!["push".to_string()],
        active: true,
    })
}

/// Hook `number` of `view`.
fn find(view: &RepoView, number: u64) -> Result<(OpId, Hook), ServiceError> {
    view.state
        .hooks
        .hooks
        .iter()
        .find(|(id, _)| numeric_id(id.as_bytes()) == number)
        .map(|(id, h)| (*id, h.clone()))
        .ok_or(ServiceError::NotFound)
}

pub(crate) fn internal(e: guts_storage::StoreError) -> ServiceError {
    tracing::error!(error = %e, "the webhook queue failed");
    ServiceError::Internal
}

/// The current request's trace, carried to the delivery it causes.
fn guts_ops_trace() -> Option<String> {
    guts_ops::telemetry::current_traceparent()
}
