//! Webhook delivery: the task that turns this node's outbox into HTTP requests.
//!
//! The outbox is written by storage in the transaction of each operation this node
//! accepted (`guts_storage::hooks`), so an acknowledged operation's events are never
//! lost; this task renders each entry's events ([`events`]) into one job per
//! subscribed hook, then sends the jobs that are due ([`send`]), retrying timeouts,
//! connection failures and 5xx answers with exponential backoff and full jitter, behind
//! one circuit breaker per target host. Every attempt is logged (what
//! `GET hooks/{id}/deliveries` lists) and counted in
//! `guts_webhook_deliveries_total{event,outcome}`; the attempt runs in a span that
//! continues the trace of the operation that caused it.
//!
//! One node delivers an event: the one that accepted its operation (replicated
//! operations are not queued). At least once: a node killed between an attempt and
//! its log sends that attempt again after restart; receivers deduplicate by
//! `X-GitHub-Delivery`, which is derived from the operation.

mod events;
mod send;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use guts_core::OpId;
use guts_service::delivery_guid;
use guts_storage::accounts::numeric_id;
use guts_storage::accounts::org_hooks::OrgHook;
use guts_storage::hooks::{OutboxEntry, now_ms};
use guts_storage::{Delivery, Job, RepoView};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::links::Links;
use crate::state::AppState;
use crate::threads::Render;
use crate::time::iso8601;
use crate::views::{
    DeliveryExchange, DeliveryFull, DeliveryItem, HookConfigView, HookResponse, HookView, OrgPing,
    SimpleUser,
};

pub(crate) use events::Events;

/// How the deliverer behaves; from the node's configuration.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Attempts per event before it is marked failed (`GUTS_WEBHOOK_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// Ceiling of the first retry's delay, doubled per retry
    /// (`GUTS_WEBHOOK_RETRY_BASE_MS`).
    pub retry_base: Duration,
    /// No retry waits longer than this.
    pub retry_max: Duration,
    /// Connecting to a receiver.
    pub connect_timeout: Duration,
    /// A whole attempt, body included.
    pub timeout: Duration,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// Delivery log rows kept, and for how long.
    pub keep_deliveries: u64,
    pub keep_for: Duration,
    /// `scheme://host[:port]` the payloads' URLs name (this node's API).
    pub origin: String,
    /// How long after an operation a peer's node that received it waits before it
    /// takes over its delivery, if the accepting node seems gone
    /// (`GUTS_WEBHOOK_TAKEOVER_SECS`).
    pub takeover_after: Duration,
}

/// Largest payload sent (GitHub's cap is 25 MB; a push lists at most
/// [`events::MAX_PUSH_COMMITS`] commits, so real payloads stay far below).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Response bytes kept in the delivery log.
pub const MAX_RESPONSE_EXCERPT: usize = 2048;

/// `event` and `outcome` of a delivery attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    /// One of the event names this node sends (a bounded set).
    event: String,
    /// `delivered`, `retrying` or `failed`.
    outcome: &'static str,
}

/// The deliverer's metrics, registered once per node.
#[derive(Debug)]
pub struct WebhookMetrics {
    deliveries: Family<Labels, Counter>,
    duration: Histogram,
    queue_depth: Gauge,
}

impl WebhookMetrics {
    /// Creates the handles and registers them into `registry` (prefixed `guts`).
    pub fn register(registry: &mut Registry) -> Self {
        let this = WebhookMetrics {
            deliveries: Family::default(),
            duration: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            queue_depth: Gauge::default(),
        };
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by event and outcome (delivered, retrying, failed)",
            this.deliveries.clone(),
        );
        registry.register(
            "webhook_delivery_duration_seconds",
            "Time of one webhook delivery attempt",
            this.duration.clone(),
        );
        registry.register(
            "webhook_queue_depth",
            "Webhook events and deliveries waiting on this node",
            this.queue_depth.clone(),
        );
        this
    }
}

/// The REST view of hook `id` of `view` (`None` if it is gone).
pub(crate) fn hook_view(
    state: &AppState,
    links: &Links,
    view: &RepoView,
    id: &OpId,
) -> Option<HookView> {
    let hook = view.state.hooks.hooks.get(id)?;
    let number = numeric_id(id.as_bytes());
    let full = Render::new(state, links, view).full_name();
    let url = links.api(&format!("/repos/{full}/hooks/{number}"));
    let last = state
        .repos
        .hook_queue()
        .deliveries(Some(&view.id), id, 0, 1)
        .ok()
        .and_then(|d| d.into_iter().next());
    let last_response = match last {
        Some(d) => HookResponse {
            code: Some(d.status_code),
            status: Some(
                if (200..300).contains(&d.status_code) {
                    "active"
                } else {
                    "misconfigured"
                }
                .into(),
            ),
            message: Some(d.status),
        },
        None => HookResponse {
            code: None,
            status: Some("unused".into()),
            message: None,
        },
    };
    let config = &hook.config;
    Some(HookView {
        kind: "Repository",
        id: number,
        name: "web",
        active: config.active,
        events: config.events.clone(),
        config: HookConfigView {
            url: config.url.clone(),
            content_type: config.content_type.as_str(),
            insecure_ssl: if config.insecure_ssl { "1" } else { "0" },
            secret: (!config.secret.is_empty()).then_some("********"),
        },
        updated_at: iso8601(hook.updated.wall_ms / 1000),
        created_at: iso8601(hook.created.wall_ms / 1000),
        // GitHub writes `/test`, which no route serves; this one answers.
        test_url: Some(format!("{url}/tests")),
        ping_url: format!("{url}/pings"),
        deliveries_url: format!("{url}/deliveries"),
        url,
        last_response,
    })
}

/// GitHub's `hook-delivery-item` of logged attempt `d`.
pub(crate) fn delivery_item(d: &Delivery) -> DeliveryItem {
    DeliveryItem {
        id: d.id,
        guid: d.guid.clone(),
        delivered_at: iso8601(d.delivered_at_ms / 1000),
        redelivery: d.redelivery,
        duration: d.duration_ms as f64 / 1000.0,
        status: d.status.clone(),
        status_code: d.status_code,
        event: d.event.clone(),
        action: d.action.clone(),
        installation_id: None,
        repository_id: Some(numeric_id(d.repo.as_bytes())),
        throttled_at: None,
    }
}

/// GitHub's `hook-delivery` of logged attempt `d` to `url`.
pub(crate) fn delivery_full(d: &Delivery, url: String) -> DeliveryFull {
    let headers = |pairs: &[(String, String)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>()
    };
    DeliveryFull {
        item: delivery_item(d),
        url,
        request: DeliveryExchange {
            headers: headers(&d.request_headers),
            payload: serde_json::from_str(&d.payload).ok(),
        },
        response: DeliveryExchange {
            headers: headers(&d.response_headers),
            payload: Some(serde_json::Value::String(d.response_body.clone())),
        },
    }
}

/// Runs the deliverer until `stop`.
pub async fn run(
    state: AppState,
    settings: WebhookSettings,
    metrics: Arc<WebhookMetrics>,
    stop: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    let sender = match send::Sender::new(&settings, state.service.hook_policy().clone()) {
        Ok(sender) => Arc::new(sender),
        Err(e) => {
            tracing::error!(error = %e, "webhook delivery is off: no HTTP client");
            return Ok(());
        }
    };
    let links = Links::for_origin(
        settings.origin.clone(),
        state.node.ssh_url.as_deref().map(Arc::from),
    );
    let mut changes = state.repos.subscribe();
    let queue = state.repos.hook_queue();
    let capacity = settings.concurrency.max(1);
    // Attempts in flight, by task and by job: a slow receiver holds one slot, not the
    // whole deliverer; a job in flight is not started twice.
    let mut attempts = tokio::task::JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, u64> = HashMap::new();
    let mut watch = PeerWatch::default();
    loop {
        if stop.is_cancelled() {
            attempts.abort_all();
            return Ok(());
        }
        watch.settle(&state, settings.takeover_after).await;
        expand_outbox(&state, &links).await;
        let mut next = None;
        if in_flight.len() < capacity {
            let busy: HashSet<u64> = in_flight.values().copied().collect();
            match queue.due(now_ms(), capacity + busy.len()) {
                Ok(found) => {
                    next = found.next_at_ms;
                    for (id, job) in found.jobs {
                        if in_flight.len() >= capacity {
                            break;
                        }
                        if busy.contains(&id) {
                            continue;
                        }
                        let (state, links, settings, metrics, sender) = (
                            state.clone(),
                            links.clone(),
                            settings.clone(),
                            metrics.clone(),
                            sender.clone(),
                        );
                        let task = attempts.spawn(async move {
                            attempt(&state, &links, &settings, &metrics, &sender, id, job).await;
                        });
                        in_flight.insert(task.id(), id);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading the webhook queue failed");
                    next = Some(now_ms() + 1000);
                }
            }
        }
        if let Ok(depth) = queue.depth() {
            metrics
                .queue_depth
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
        }
        let wait = next.map_or(Duration::from_secs(1), |at| {
            Duration::from_millis(at.saturating_sub(now_ms())).min(Duration::from_secs(1))
        });
        tokio::select! {
            () = stop.cancelled() => {
                attempts.abort_all();
                return Ok(());
            }
            Some(done) = attempts.join_next_with_id(), if !attempts.is_empty() => {
                let task = match done {
                    Ok((task, ())) => task,
                    Err(e) => e.id(),
                };
                in_flight.remove(&task);
            }
            _ = changes.recv() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Which peers this node has seen connected, and when: what decides whether a peer's
/// operations held on standby are this node's to deliver.
///
/// In normal operation the node that accepted an operation delivers its events, and
/// every other node holds the operation on standby (`guts_storage::hooks`) for
/// `takeover_after`, then drops it. If by then a peer this node saw connected within
/// the last two leases is no longer connected, that peer may be the accepting node,
/// gone before it delivered: the connected node with the smallest peer id (itself
/// included) takes the operation over and delivers its events. At least once: the
/// gone node, if it comes back, sends what it had queued too, under the same
/// `X-GitHub-Delivery`; a node whose peers all stay connected never sends a copy.
#[derive(Default)]
struct PeerWatch {
    last_seen: HashMap<String, std::time::Instant>,
    checked: Option<std::time::Instant>,
}

impl PeerWatch {
    async fn settle(&mut self, state: &AppState, lease: Duration) {
        let now = std::time::Instant::now();
        if self
            .checked
            .is_some_and(|at| now.duration_since(at) < Duration::from_millis(500))
        {
            return;
        }
        self.checked = Some(now);
        let connected: Vec<String> = match &state.peers {
            Some(peers) => peers
                .0
                .peers()
                .await
                .into_iter()
                .map(|p| p.peer_id)
                .collect(),
            None => Vec::new(),
        };
        for peer in &connected {
            self.last_seen.insert(peer.clone(), now);
        }
        let remembered = lease.saturating_mul(2).max(Duration::from_secs(10));
        self.last_seen
            .retain(|_, seen| now.duration_since(*seen) <= remembered);
        let queue = state.repos.hook_queue();
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
        let held = match queue.standby(now_ms().saturating_sub(lease_ms), 256) {
            Ok(held) if !held.is_empty() => held,
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, "reading the webhook standby failed");
                return;
            }
        };
        let gone: Vec<&String> = self
            .last_seen
            .keys()
            .filter(|p| !connected.contains(p))
            .collect();
        let me = &state.node.peer_id;
        let smallest = connected.iter().all(|p| me < p);
        let keys: Vec<Vec<u8>> = held.into_iter().map(|e| e.key).collect();
        let (take, drop) = if !gone.is_empty() && smallest {
            tracing::warn!(
                operations = keys.len(),
                gone = ?gone,
                "a peer is gone: taking over the delivery of its operations' webhook events"
            );
            (keys, Vec::new())
        } else {
            (Vec::new(), keys)
        };
        if let Err(e) = queue.settle_standby(take, drop).await {
            tracing::error!(error = %e, "settling the webhook standby failed");
        }
    }
}

/// Turns each outbox entry into its jobs, once the repository's published state holds
/// its operation.
async fn expand_outbox(state: &AppState, links: &Links) {
    let queue = state.repos.hook_queue();
    let entries = match queue.outbox(64) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!(error = %e, "reading the webhook outbox failed");
            return;
        }
    };
    // An entry commits before its operation's view is published: wait for that view.
    let entries: Vec<OutboxEntry> = entries
        .into_iter()
        .filter(|e| {
            state
                .repos
                .get(e.repo)
                .is_none_or(|view| u64::try_from(view.version).unwrap_or(u64::MAX) >= e.version)
        })
        .collect();
    if entries.is_empty() {
        return;
    }
    // Rendered together on the blocking pool, queued together in one transaction.
    let (state2, links2) = (state.clone(), links.clone());
    let expanded = tokio::task::spawn_blocking(move || {
        entries
            .into_iter()
            .map(|entry| {
                let OutboxEntry {
                    key,
                    repo,
                    op,
                    trace,
                    ..
                } = entry;
                (key, jobs_for(&state2, &links2, repo, &op, trace))
            })
            .collect::<Vec<_>>()
    })
    .await;
    let Ok(expanded) = expanded else {
        tracing::error!("rendering webhook events failed");
        return;
    };
    if let Err(e) = queue.expand(expanded).await {
        tracing::error!(error = %e, "queueing webhook deliveries failed");
    }
}

/// The jobs of operation `op_id` of repository `repo`: each event, to each active
/// hook that subscribes to it.
fn jobs_for(
    state: &AppState,
    links: &Links,
    repo: guts_core::RepoId,
    op_id: &OpId,
    trace: Option<String>,
) -> Vec<Job> {
    let (Some(view), Ok(Some(op))) = (state.repos.get(repo), state.repos.hook_queue().op(op_id))
    else {
        return Vec::new();
    };
    let rendered = Events::new(state, links, &view).of(&op);
    let owner = view
        .state
        .meta
        .as_ref()
        .map(|m| m.owner.to_ascii_lowercase());
    // Every hook that may hear this repository's events: its own, then its owning
    // organization's (`None`: the repository's, `Some(org)`: the organization's).
    let mut hooks: Vec<(OpId, guts_core::hooks::HookConfig, Option<String>)> = view
        .state
        .hooks
        .hooks
        .iter()
        .map(|(id, hook)| (*id, hook.config.clone(), None))
        .collect();
    if let Some(owner) = &owner {
        for hook in state.service.org_hooks_of(owner) {
            if let (Some(config), Some(key)) = (hook.config(), hook.key_bytes()) {
                hooks.push((OpId::from_bytes(key), config, Some(owner.clone())));
            }
        }
    }
    let mut jobs = Vec::new();
    for event in rendered {
        if event.json.len() > MAX_PAYLOAD_BYTES {
            tracing::warn!(
                event = event.event,
                bytes = event.json.len(),
                "webhook payload too large, not sent"
            );
            continue;
        }
        let kind = match event.action {
            Some(action) => format!("{}.{action}", event.event),
            None => event.event.to_string(),
        };
        for (hook_id, config, org) in &hooks {
            // A repository hook's creation pings that hook alone.
            if event.only.is_some_and(|only| only != *hook_id) || !config.wants(event.event) {
                continue;
            }
            jobs.push(Job {
                guid: delivery_guid(op_id.as_bytes(), hook_id, &kind),
                repo,
                hook: *hook_id,
                event: event.event.to_string(),
                action: event.action.map(str::to_string),
                payload: event.json.clone(),
                attempts: 0,
                next_at_ms: 0,
                redelivery: false,
                trace: trace.clone(),
                sender: None,
                org: org.clone(),
            });
        }
    }
    jobs
}

/// One attempt of job `id`, logged, and the job rescheduled or done.
async fn attempt(
    state: &AppState,
    links: &Links,
    settings: &WebhookSettings,
    metrics: &WebhookMetrics,
    sender: &send::Sender,
    id: u64,
    mut job: Job,
) {
    let queue = state.repos.hook_queue();
    let Some(target) = resolve(state, &job) else {
        // The hook (or its repository) is gone: nothing to deliver to.
        let _ = queue.drop_job(id).await;
        return;
    };
    if job.payload.is_empty() {
        let (state2, links2, job2, view) = (
            state.clone(),
            links.clone(),
            job.clone(),
            state.repos.get(job.repo),
        );
        let rendered = tokio::task::spawn_blocking(move || {
            render_requested(&state2, &links2, view.as_ref(), &job2)
        })
        .await
        .ok()
        .flatten();
        match rendered {
            Some(json) => job.payload = json,
            None => {
                let _ = queue.drop_job(id).await;
                return;
            }
        }
    }
    let span = tracing::info_span!("webhook_delivery", event = %job.event, guid = %job.guid);
    if let Some(parent) = &job.trace {
        guts_ops::telemetry::set_remote_parent(&span, parent);
    }
    let outcome = sender.deliver(&target, &job).instrument(span).await;
    metrics
        .duration
        .observe(outcome.delivery.duration_ms as f64 / 1000.0);
    job.attempts += 1;
    let ok = outcome.delivered;
    let next = if ok || !outcome.retryable || job.attempts >= settings.max_attempts {
        None
    } else {
        let policy = guts_ops::resilience::RetryPolicy {
            max_attempts: settings.max_attempts,
            base: settings.retry_base,
            max_delay: settings.retry_max,
        };
        // Never sooner than a fifth of the ceiling: full jitter may draw 0.
        let ceiling = policy.ceiling(job.attempts);
        let delay = policy.delay(job.attempts).max(ceiling / 5);
        let mut next = job.clone();
        next.next_at_ms =
            now_ms().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        next.redelivery = true;
        Some(next)
    };
    let outcome_label = match (&next, ok) {
        (_, true) => "delivered",
        (Some(_), false) => "retrying",
        (None, false) => "failed",
    };
    metrics
        .deliveries
        .get_or_create(&Labels {
            event: job.event.clone(),
            outcome: outcome_label,
        })
        .inc();
    let keep_ms = u64::try_from(settings.keep_for.as_millis()).unwrap_or(u64::MAX);
    if let Err(e) = queue
        .record(
            id,
            next,
            outcome.delivery,
            settings.keep_deliveries,
            keep_ms,
        )
        .await
    {
        tracing::error!(error = %e, "logging a webhook delivery failed");
    }
}

/// The payload of a ping or test job, rendered now.
fn render_requested(
    state: &AppState,
    links: &Links,
    view: Option<&Arc<RepoView>>,
    job: &Job,
) -> Option<String> {
    let key: guts_core::PublicKey = job.sender.as_deref()?.parse().ok()?;
    if let Some(org) = &job.org {
        // An organization's ping: about no repository.
        let user = state.accounts.user_by_key(&key).ok().flatten()?;
        let hook = state
            .service
            .org_hooks_of(org)
            .into_iter()
            .find(|h| h.key_bytes() == Some(*job.hook.as_bytes()))?;
        let record = state.accounts.org(org).ok().flatten()?;
        let view = org_hook_view(links, &record.login, &hook);
        let body = OrgPing {
            zen: "Keep it logically awesome.",
            hook_id: view.id,
            hook: view,
            organization: crate::views::OrgSimple::new(links, &record),
            sender: SimpleUser::of(links, &user),
        };
        return serde_json::to_string(&body).ok();
    }
    let view = view?;
    let events = Events::new(state, links, view);
    let sender = Render::new(state, links, view).user(&key);
    let rendered = match job.event.as_str() {
        "ping" => events.ping(&sender, &job.hook),
        _ => events.test_push(&sender),
    }?;
    Some(rendered.json)
}

/// Where a job goes: the hook's configuration and secret, and who it belongs to.
pub(crate) struct Target {
    pub(crate) config: guts_core::hooks::HookConfig,
    pub(crate) secret: Vec<u8>,
    /// `X-GitHub-Hook-ID`.
    pub(crate) hook_number: u64,
    /// `X-GitHub-Hook-Installation-Target-ID` and `-Type`.
    pub(crate) target_id: u64,
    pub(crate) target_type: &'static str,
}

/// The hook `job` is for, as it is configured now (`None` if it is gone).
fn resolve(state: &AppState, job: &Job) -> Option<Target> {
    if let Some(org) = &job.org {
        let record = state.accounts.org(org).ok().flatten()?;
        let hook = record
            .hooks
            .iter()
            .find(|h| h.key_bytes() == Some(*job.hook.as_bytes()))?;
        return Some(Target {
            config: hook.config()?,
            secret: state.service.org_hook_secret(org, hook).unwrap_or_default(),
            hook_number: guts_service::org_hook_number(hook),
            target_id: record.id,
            target_type: "organization",
        });
    }
    let view = state.repos.get(job.repo)?;
    let hook = view.state.hooks.hooks.get(&job.hook)?;
    Some(Target {
        config: hook.config.clone(),
        secret: state.service.hook_secret(&view, hook).unwrap_or_default(),
        hook_number: numeric_id(job.hook.as_bytes()),
        target_id: numeric_id(job.repo.as_bytes()),
        target_type: "repository",
    })
}

/// The REST view of organization hook `hook` of `org`.
pub(crate) fn org_hook_view(links: &Links, org: &str, hook: &OrgHook) -> HookView {
    let number = guts_service::org_hook_number(hook);
    let url = links.api(&format!("/orgs/{org}/hooks/{number}"));
    HookView {
        kind: "Organization",
        id: number,
        name: "web",
        active: hook.active,
        events: hook.events.clone(),
        config: HookConfigView {
            url: hook.url.clone(),
            content_type: if hook.content_type == "form" {
                "form"
            } else {
                "json"
            },
            insecure_ssl: if hook.insecure_ssl { "1" } else { "0" },
            secret: (!hook.secret.is_empty()).then_some("********"),
        },
        updated_at: iso8601(hook.updated_ms / 1000),
        created_at: iso8601(hook.created_ms / 1000),
        test_url: None,
        ping_url: format!("{url}/pings"),
        deliveries_url: format!("{url}/deliveries"),
        url,
        last_response: HookResponse::default(),
    }
}
