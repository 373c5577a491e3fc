//! One delivery attempt over HTTP: GitHub's headers, the HMAC-SHA256 signature, the
//! outbound policy on every connection, and a bounded answer.
//!
//! The client resolves names through [`PolicyResolver`], which drops every address
//! the policy refuses (so a name that now points inside the cluster is refused at
//! connect time, not only when the hook was saved), checks IP literals itself (the
//! client does not resolve those), follows no redirect (a 3xx is the answer), and
//! bounds connect and total time. A circuit breaker per target host stops hammering a
//! receiver that keeps failing: while it is open, attempts fail at once and are retried
//! later like any failure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use guts_core::hooks::ContentType;
use guts_ops::resilience::{Breakers, ResilienceMetrics};
use guts_service::HookPolicy;
use guts_storage::hooks::now_ms;
use guts_storage::{Delivery, Job};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{MAX_RESPONSE_EXCERPT, Target, WebhookSettings};

/// What an attempt came to.
pub(super) struct Outcome {
    /// A 2xx answer.
    pub(super) delivered: bool,
    /// Worth another attempt: a timeout, a connection failure, a 5xx (or 429), an
    /// open breaker.
    pub(super) retryable: bool,
    pub(super) delivery: Delivery,
}

/// Resolves names, keeping only the addresses the policy allows.
struct PolicyResolver(Arc<HookPolicy>);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no address webhooks may reach").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP clients (checking certificates, and not, for `insecure_ssl`) and the
/// breakers.
pub(super) struct Sender {
    strict: reqwest::Client,
    insecure: reqwest::Client,
    policy: Arc<HookPolicy>,
    breakers: Breakers,
}

impl Sender {
    pub(super) fn new(
        settings: &WebhookSettings,
        policy: Arc<HookPolicy>,
    ) -> Result<Sender, reqwest::Error> {
        let build = |insecure: bool| {
            reqwest::Client::builder()
                .user_agent(concat!("GitHub-Hookshot/guts-", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
                // Never through an `HTTP(S)_PROXY` from the environment: the proxy would
                // resolve the name, and the policy could not see where it connects.
                .no_proxy()
                .connect_timeout(settings.connect_timeout)
                .timeout(settings.timeout)
                .pool_max_idle_per_host(2)
                .dns_resolver(Arc::new(PolicyResolver(policy.clone())))
                .danger_accept_invalid_certs(insecure)
                .build()
        };
        Ok(Sender {
            strict: build(false)?,
            insecure: build(true)?,
            breakers: Breakers::with_max_keys(
                5,
                Duration::from_secs(30),
                1024,
                // Not registered: host names would be unbounded label values.
                Arc::new(ResilienceMetrics::default()),
            ),
            policy,
        })
    }

    /// Sends `job` to `target` once.
    pub(super) async fn deliver(&self, target: &Target, job: &Job) -> Outcome {
        let (config, secret) = (&target.config, target.secret.as_slice());
        let body = match config.content_type {
            ContentType::Json => job.payload.clone().into_bytes(),
            ContentType::Form => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("payload", &job.payload);
                form.finish().into_bytes()
            }
        };
        let content_type = match config.content_type {
            ContentType::Json => "application/json",
            ContentType::Form => "application/x-www-form-urlencoded",
        };
        let mut headers: Vec<(String, String)> = vec![
            ("Accept".into(), "*/*".into()),
            ("Content-Type".into(), content_type.into()),
            (
                "User-Agent".into(),
                concat!("GitHub-Hookshot/guts-", env!("CARGO_PKG_VERSION")).into(),
            ),
            ("X-GitHub-Delivery".into(), job.guid.clone()),
            ("X-GitHub-Event".into(), job.event.clone()),
            ("X-GitHub-Hook-ID".into(), target.hook_number.to_string()),
            (
                "X-GitHub-Hook-Installation-Target-ID".into(),
                target.target_id.to_string(),
            ),
            (
                "X-GitHub-Hook-Installation-Target-Type".into(),
                target.target_type.into(),
            ),
        ];
        if !secret.is_empty()
            && let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret)
        {
            mac.update(&body);
            let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            headers.push(("X-Hub-Signature-256".into(), signature));
        }
        let started = Instant::now();
        let delivered_at_ms = now_ms();
        let mut delivery = Delivery {
            id: 0,
            guid: job.guid.clone(),
            repo: job.repo,
            hook: job.hook,
            event: job.event.clone(),
            action: job.action.clone(),
            redelivery: job.redelivery || job.attempts > 0,
            delivered_at_ms,
            duration_ms: 0,
            status_code: 0,
            status: String::new(),
            request_headers: headers.clone(),
            payload: job.payload.clone(),
            response_headers: Vec::new(),
            response_body: String::new(),
            org: job.org.clone(),
        };
        let fail = |mut delivery: Delivery, status: String, retryable: bool| {
            delivery.status = status;
            delivery.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            Outcome {
                delivered: false,
                retryable,
                delivery,
            }
        };
        let (host, _) = match HookPolicy::target(&config.url) {
            Ok(target) => target,
            Err(e) => return fail(delivery, e.to_string(), false),
        };
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>()
            && !self.policy.permits(ip)
        {
            return fail(
                delivery,
                format!("{ip} is not an address webhooks may reach"),
                false,
            );
        }
        let permit = match self.breakers.permit(&host) {
            Ok(permit) => permit,
            Err(open) => {
                return fail(
                    delivery,
                    format!("circuit open for {host}, retry in {:?}", open.retry_after),
                    true,
                );
            }
        };
        let client = if config.insecure_ssl {
            &self.insecure
        } else {
            &self.strict
        };
        let mut request = client.post(&config.url).body(body);
        for (name, value) in &headers {
            if name != "User-Agent" {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                permit.failure();
                let status = if e.is_timeout() {
                    "timed out".to_string()
                } else if e.is_connect() {
                    "failed to connect".to_string()
                } else {
                    format!("request failed: {e}")
                };
                return fail(delivery, status, true);
            }
        };
        let code = response.status();
        delivery.status_code = code.as_u16();
        delivery.response_headers = response
            .headers()
            .iter()
            .take(64)
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut excerpt = Vec::new();
        let mut response = response;
        while excerpt.len() < MAX_RESPONSE_EXCERPT {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                _ => break,
            }
        }
        excerpt.truncate(MAX_RESPONSE_EXCERPT);
        delivery.response_body = String::from_utf8_lossy(&excerpt).into_owned();
        let delivered = code.is_success();
        let retryable = code.is_server_error() || code.as_u16() == 429;
        if delivered || !retryable {
            permit.success();
        } else {
            permit.failure();
        }
        delivery.status = if delivered {
            "OK".to_string()
        } else {
            format!("Invalid HTTP Response: {}", code.as_u16())
        };
        delivery.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Outcome {
            delivered,
            retryable,
            delivery,
        }
    }
}
