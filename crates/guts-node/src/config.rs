//! The node's configuration: embedded defaults, overridden by an optional TOML file
//! (`--config` / `GUTS_CONFIG`), overridden by `GUTS_*` environment variables.
//!
//! Both layers arrive as text and go through one parser per setting ([`Config::apply`]),
//! then the whole is checked by `validator`. Every failure names the variable, shows the
//! value (unless it is a secret) and states the rule, so a bad deployment fails at
//! start-up with one readable line instead of misbehaving later.
//!
//! [`SETTINGS`] is the single list of what exists: the README table, the example file
//! and `config check` are tested against it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use guts_api::TrustedProxies;
use guts_core::Keypair;
use guts_ops::{LogFormat, LogLevel, Secret};
use validator::{Validate, ValidationError};

/// One documented setting: TOML key `key`, environment variable `GUTS_<KEY>`.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub key: &'static str,
    /// The default as written in the README and the example file; empty means unset.
    pub default: &'static str,
    /// Secrets are never echoed: not in errors, not by `config check`.
    pub secret: bool,
    pub doc: &'static str,
}

impl Setting {
    pub fn env_var(&self) -> String {
        format!("GUTS_{}", self.key.to_ascii_uppercase())
    }
}

/// Every setting the node reads. A setting is listed here only once something reads it.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "api_addr",
        default: "127.0.0.1:8080",
        secret: false,
        doc: "Address of the API listener (REST API, git over HTTP, admin API, probes).",
    },
    Setting {
        key: "metrics_addr",
        default: "127.0.0.1:9090",
        secret: false,
        doc: "Address of the metrics listener (`/metrics` and the probes); it outlives the API listener during shutdown.",
    },
    Setting {
        key: "data_dir",
        default: "./guts-data",
        secret: false,
        doc: "Directory for all node state; created if missing.",
    },
    Setting {
        key: "private_key",
        default: "",
        secret: true,
        doc: "Node key: 64 hex characters (ed25519 seed). Unset: generated into `<data_dir>/node.key` (mode 0600) on first start and reused.",
    },
    Setting {
        key: "log_level",
        default: "info",
        secret: false,
        doc: "One of error, warn, info, debug, trace. Dependencies never log below info.",
    },
    Setting {
        key: "log_format",
        default: "json",
        secret: false,
        doc: "`json` (one object per line, for log shippers) or `pretty` (for people).",
    },
    Setting {
        key: "max_connections",
        default: "10000",
        secret: false,
        doc: "HTTP requests served at once; beyond it the node answers 503 with Retry-After.",
    },
    Setting {
        key: "max_request_size_mb",
        default: "100",
        secret: false,
        doc: "Largest request body in MiB; larger bodies get 413.",
    },
    Setting {
        key: "max_push_size_mb",
        default: "2048",
        secret: false,
        doc: "Largest git push in MiB (the pack, as sent); a larger push is refused with 413.",
    },
    Setting {
        key: "max_object_size_mb",
        default: "100",
        secret: false,
        doc: "Largest single git object in MiB, inflated, in a push or a pack from a peer; a pack holding a larger one is refused (`unpack` error naming the limit) and no ref moves. Bounds the memory one object can claim.",
    },
    Setting {
        key: "request_timeout",
        default: "30",
        secret: false,
        doc: "Seconds a request may take, body included; slower ones get 408.",
    },
    Setting {
        key: "rate_limit_anonymous_per_hour",
        default: "60",
        secret: false,
        doc: "REST requests (`/api/v3`) per hour per client IP without a token; beyond it 429 with Retry-After. Git has its own budget (`rate_limit_git_*`); the admin API is exempt.",
    },
    Setting {
        key: "rate_limit_authenticated_per_hour",
        default: "5000",
        secret: false,
        doc: "REST requests (`/api/v3`) per hour per token; beyond it 429 with Retry-After.",
    },
    Setting {
        key: "trusted_proxies",
        default: "",
        secret: false,
        doc: "Comma-separated IP addresses and CIDR networks of reverse proxies whose `X-Forwarded-Host`, `X-Forwarded-Proto` and `X-Forwarded-For` are believed (for the URLs in responses and the rate limiter's client IP). Unset: nobody's; the URLs use `Host` and the client is the TCP peer.",
    },
    Setting {
        key: "rate_limit_git_anonymous_per_hour",
        default: "3600",
        secret: false,
        doc: "Git requests (clone, fetch, push, ls-remote: each is a few) per hour per client IP without a token; a budget apart from REST's; beyond it 429 with Retry-After.",
    },
    Setting {
        key: "rate_limit_git_authenticated_per_hour",
        default: "20000",
        secret: false,
        doc: "Git requests per hour per token; beyond it 429 with Retry-After.",
    },
    Setting {
        key: "git_max_per_ip",
        default: "64",
        secret: false,
        doc: "Git requests one client IP may have in flight at once; beyond it 429 with Retry-After.",
    },
    Setting {
        key: "git_min_transfer_rate",
        default: "1024",
        secret: false,
        doc: "Bytes per second a git request body (a fetch's request, a pushed pack) must average over every `git_min_rate_window`; a slower or stalled body is cut with 408 or an unpack error saying so.",
    },
    Setting {
        key: "git_min_rate_window",
        default: "60",
        secret: false,
        doc: "Seconds over which `git_min_transfer_rate` is measured (a client may pause within it, e.g. to compress a pack).",
    },
    Setting {
        key: "git_request_deadline",
        default: "3600",
        secret: false,
        doc: "Seconds a git request may last in all, response included; then it is ended. Git requests are outside `request_timeout`, which would cut honest clones.",
    },
    Setting {
        key: "otlp_endpoint",
        default: "",
        secret: false,
        doc: "OpenTelemetry collector (OTLP/gRPC), e.g. `http://otel-collector:4317`. Unset: no spans are exported.",
    },
    Setting {
        key: "admin_token",
        default: "",
        secret: true,
        doc: "Token for the admin API (`Authorization: token …`), at least 16 characters. Unset: the admin API answers 403.",
    },
    Setting {
        key: "cluster_secret",
        default: "",
        secret: true,
        doc: "Secret shared by the nodes of one cluster (at least 32 characters); seals custodial user keys. Unset: generated into `<data_dir>/cluster.secret` (mode 0600) for a single node.",
    },
    Setting {
        key: "open_registration",
        default: "false",
        secret: false,
        doc: "`true` lets anyone create an account with `POST /api/v3/users`; otherwise accounts come from the admin API or `guts-node user create`.",
    },
    Setting {
        key: "p2p_addr",
        default: "/ip4/0.0.0.0/tcp/9000",
        secret: false,
        doc: "libp2p listen multiaddr for replication between nodes (TCP, noise, yamux).",
    },
    Setting {
        key: "bootstrap_peers",
        default: "",
        secret: false,
        doc: "Comma-separated multiaddrs of peers to join, e.g. `/dns4/guts-0.guts-headless/tcp/9000`; names are resolved again at every retry. Readiness waits until one is reached.",
    },
    Setting {
        key: "mdns",
        default: "false",
        secret: false,
        doc: "`true` finds peers on the local network by mDNS (development only).",
    },
    Setting {
        key: "seed",
        default: "all",
        secret: false,
        doc: "Which repositories this node replicates: `all`, or a comma-separated allowlist of `owner/name` and `owner/*`.",
    },
    Setting {
        key: "p2p_timeout",
        default: "10",
        secret: false,
        doc: "Seconds a request to a peer may take before it counts as failed.",
    },
    Setting {
        key: "retry_max_attempts",
        default: "3",
        secret: false,
        doc: "Attempts of a peer request that failed transiently (timeouts, dropped connections), with exponential backoff and jitter between them.",
    },
    Setting {
        key: "circuit_breaker_threshold",
        default: "5",
        secret: false,
        doc: "Consecutive failed requests to one peer that open its circuit breaker (requests to it are skipped for 30 s, then one is tried).",
    },
    Setting {
        key: "anti_entropy_interval",
        default: "5",
        secret: false,
        doc: "Seconds between comparisons of repository heads with a random peer (how partitions heal and missed announcements are found).",
    },
    Setting {
        key: "shutdown_timeout",
        default: "20",
        secret: false,
        doc: "Seconds a SIGTERM/SIGINT shutdown may take to drain before the node gives up and exits 1.",
    },
];

/// Environment variables that are read, but are not settings.
const OTHER_VARS: &[&str] = &["GUTS_CONFIG"];

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Validate)]
pub struct Config {
    #[validate(custom(function = "check_nonzero_port"))]
    pub api_addr: SocketAddr,
    #[validate(custom(function = "check_nonzero_port"))]
    pub metrics_addr: SocketAddr,
    #[validate(custom(function = "check_nonempty_path"))]
    pub data_dir: PathBuf,
    #[validate(custom(function = "check_node_key"))]
    pub private_key: Option<Secret<String>>,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    #[validate(range(min = 1, max = 1_000_000, message = "must be from 1 to 1000000"))]
    pub max_connections: u32,
    #[validate(range(min = 1, max = 16_384, message = "must be from 1 to 16384 (MiB)"))]
    pub max_request_size_mb: u32,
    #[validate(range(min = 1, max = 1_048_576, message = "must be from 1 to 1048576 (MiB)"))]
    pub max_push_size_mb: u32,
    #[validate(range(min = 1, max = 4096, message = "must be from 1 to 4096 (MiB)"))]
    pub max_object_size_mb: u32,
    #[validate(range(min = 1, max = 3600, message = "must be from 1 to 3600 (seconds)"))]
    pub request_timeout: u64,
    #[validate(range(
        min = 1,
        max = 100_000_000,
        message = "must be from 1 to 100000000 (requests per hour)"
    ))]
    pub rate_limit_anonymous_per_hour: u32,
    #[validate(range(
        min = 1,
        max = 100_000_000,
        message = "must be from 1 to 100000000 (requests per hour)"
    ))]
    pub rate_limit_authenticated_per_hour: u32,
    /// Checked when parsed: every entry is an address or a network.
    pub trusted_proxies: TrustedProxies,
    #[validate(range(
        min = 1,
        max = 100_000_000,
        message = "must be from 1 to 100000000 (requests per hour)"
    ))]
    pub rate_limit_git_anonymous_per_hour: u32,
    #[validate(range(
        min = 1,
        max = 100_000_000,
        message = "must be from 1 to 100000000 (requests per hour)"
    ))]
    pub rate_limit_git_authenticated_per_hour: u32,
    #[validate(range(min = 1, max = 1_000_000, message = "must be from 1 to 1000000"))]
    pub git_max_per_ip: u32,
    #[validate(range(
        min = 1,
        max = 1_073_741_824,
        message = "must be from 1 to 1073741824 (bytes per second)"
    ))]
    pub git_min_transfer_rate: u64,
    #[validate(range(min = 1, max = 3600, message = "must be from 1 to 3600 (seconds)"))]
    pub git_min_rate_window: u64,
    #[validate(range(min = 1, max = 86_400, message = "must be from 1 to 86400 (seconds)"))]
    pub git_request_deadline: u64,
    #[validate(custom(function = "check_http_url"))]
    pub otlp_endpoint: Option<String>,
    #[validate(custom(function = "check_admin_token"))]
    pub admin_token: Option<Secret<String>>,
    #[validate(custom(function = "check_cluster_secret"))]
    pub cluster_secret: Option<Secret<String>>,
    pub open_registration: bool,
    #[validate(range(min = 1, max = 3600, message = "must be from 1 to 3600 (seconds)"))]
    pub shutdown_timeout: u64,
    #[validate(custom(function = "check_multiaddr"))]
    pub p2p_addr: String,
    #[validate(custom(function = "check_multiaddrs"))]
    pub bootstrap_peers: Vec<String>,
    pub mdns: bool,
    pub seed: Seed,
    #[validate(range(min = 1, max = 600, message = "must be from 1 to 600 (seconds)"))]
    pub p2p_timeout: u64,
    #[validate(range(min = 1, max = 20, message = "must be from 1 to 20"))]
    pub retry_max_attempts: u32,
    #[validate(range(min = 1, max = 1000, message = "must be from 1 to 1000"))]
    pub circuit_breaker_threshold: u32,
    #[validate(range(min = 1, max = 3600, message = "must be from 1 to 3600 (seconds)"))]
    pub anti_entropy_interval: u64,
}

/// `GUTS_SEED`: which repositories a node replicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Seed {
    #[default]
    All,
    /// Lowercase `owner/name` entries, and `owner/*` for all of an owner's.
    Only(Vec<String>),
}

impl Seed {
    fn parse(raw: &str) -> Result<Seed, String> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("all") {
            return Ok(Seed::All);
        }
        let mut entries = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((owner, name)) = entry.split_once('/') else {
                return Err(format!(
                    "`{entry}` must be `all` or owner/name or owner/* entries"
                ));
            };
            guts_core::names::validate_login(owner).map_err(|e| format!("`{entry}`: owner {e}"))?;
            if name != "*" {
                guts_core::names::validate_repo_name(name)
                    .map_err(|e| format!("`{entry}`: repository name {e}"))?;
            }
            entries.push(entry.to_ascii_lowercase());
        }
        if entries.is_empty() {
            return Err("must be `all` or a comma-separated list of owner/name".to_string());
        }
        Ok(Seed::Only(entries))
    }

    /// Whether the repository `owner/name` is replicated.
    pub fn covers(&self, owner: &str, name: &str) -> bool {
        match self {
            Seed::All => true,
            Seed::Only(entries) => {
                let (owner, name) = (owner.to_ascii_lowercase(), name.to_ascii_lowercase());
                entries.iter().any(|e| {
                    e.split_once('/')
                        .is_some_and(|(o, n)| o == owner && (n == "*" || n == name))
                })
            }
        }
    }
}

impl std::fmt::Display for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seed::All => f.write_str("all"),
            Seed::Only(entries) => f.write_str(&entries.join(",")),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            data_dir: PathBuf::from("./guts-data"),
            private_key: None,
            log_level: LogLevel::Info,
            log_format: LogFormat::Json,
            max_connections: 10_000,
            max_request_size_mb: 100,
            max_push_size_mb: 2048,
            max_object_size_mb: 100,
            request_timeout: 30,
            rate_limit_anonymous_per_hour: 60,
            rate_limit_authenticated_per_hour: 5000,
            trusted_proxies: TrustedProxies::default(),
            rate_limit_git_anonymous_per_hour: 3600,
            rate_limit_git_authenticated_per_hour: 20_000,
            git_max_per_ip: 64,
            git_min_transfer_rate: 1024,
            git_min_rate_window: 60,
            git_request_deadline: 3600,
            otlp_endpoint: None,
            admin_token: None,
            cluster_secret: None,
            open_registration: false,
            shutdown_timeout: 20,
            p2p_addr: "/ip4/0.0.0.0/tcp/9000".to_string(),
            bootstrap_peers: Vec::new(),
            mdns: false,
            seed: Seed::All,
            p2p_timeout: 10,
            retry_max_attempts: 3,
            circuit_breaker_threshold: 5,
            anti_entropy_interval: 5,
        }
    }
}

/// Why the configuration was refused. Exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting's value broke its rule. `value` is `None` for secrets.
    #[error("invalid configuration: {var}{}: {rule}", value.as_ref().map(|v| format!("={v:?}")).unwrap_or_else(|| " (value hidden)".to_string()))]
    Invalid {
        var: String,
        value: Option<String>,
        rule: String,
    },
    #[error("invalid configuration: cannot read config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("invalid configuration: unknown key {key:?} in config file {path}")]
    UnknownFileKey { path: PathBuf, key: String },
    #[error("invalid configuration: cannot read GUTS_* environment: {0}")]
    Env(String),
}

/// A loaded configuration and what was noticed on the way (unknown variables).
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

fn invalid(setting: &Setting, raw: &str, rule: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var: setting.env_var(),
        value: (!setting.secret).then(|| raw.to_string()),
        rule: rule.into(),
    }
}

fn parse_addr(raw: &str) -> Result<SocketAddr, String> {
    raw.trim()
        .parse()
        .map_err(|_| "must be an IP socket address such as 127.0.0.1:8080".to_string())
}

fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("must be true or false".to_string()),
    }
}

fn parse_number<T: std::str::FromStr>(raw: &str) -> Result<T, String> {
    raw.trim()
        .parse()
        .map_err(|_| "must be a whole number".to_string())
}

/// Empty strings mean "unset" for optional settings, which is what an operator means by
/// `GUTS_OTLP_ENDPOINT=` in a manifest.
fn optional(raw: &str) -> Option<String> {
    let raw = raw.trim();
    (!raw.is_empty()).then(|| raw.to_string())
}

impl Config {
    /// Loads defaults, then `file` (if any), then the `GUTS_*` variables among `env`.
    /// `env` is passed in rather than read, so tests need not touch the process
    /// environment.
    pub fn load<I>(file: Option<&Path>, env: I) -> Result<Loaded, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut config = Config::default();
        if let Some(path) = file {
            for (key, raw) in read_file(path)? {
                let setting = SETTINGS.iter().find(|s| s.key == key).ok_or_else(|| {
                    ConfigError::UnknownFileKey {
                        path: path.to_path_buf(),
                        key: key.clone(),
                    }
                })?;
                config.apply(setting, &raw)?;
            }
        }

        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("GUTS_") && !OTHER_VARS.contains(&k.as_str()))
            .collect();
        let vars: HashMap<String, String> = envy::prefixed("GUTS_")
            .from_iter(env)
            .map_err(|e| ConfigError::Env(e.to_string()))?;
        let mut warnings = Vec::new();
        let mut keys: Vec<_> = vars.keys().collect();
        keys.sort();
        for key in keys {
            let raw = &vars[key];
            match SETTINGS.iter().find(|s| s.key == key.as_str()) {
                Some(setting) => config.apply(setting, raw)?,
                None => warnings.push(format!(
                    "unknown environment variable GUTS_{} is ignored",
                    key.to_ascii_uppercase()
                )),
            }
        }

        config.check()?;
        Ok(Loaded { config, warnings })
    }

    /// Parses one setting's text into its field.
    fn apply(&mut self, setting: &Setting, raw: &str) -> Result<(), ConfigError> {
        let err = |rule: String| invalid(setting, raw, rule);
        match setting.key {
            "api_addr" => self.api_addr = parse_addr(raw).map_err(err)?,
            "metrics_addr" => self.metrics_addr = parse_addr(raw).map_err(err)?,
            "data_dir" => self.data_dir = PathBuf::from(raw.trim()),
            "private_key" => self.private_key = optional(raw).map(Secret::new),
            "log_level" => self.log_level = raw.parse().map_err(|e| err(format!("{e}")))?,
            "log_format" => self.log_format = raw.parse().map_err(|e| err(format!("{e}")))?,
            "max_connections" => self.max_connections = parse_number(raw).map_err(err)?,
            "max_request_size_mb" => self.max_request_size_mb = parse_number(raw).map_err(err)?,
            "max_push_size_mb" => self.max_push_size_mb = parse_number(raw).map_err(err)?,
            "max_object_size_mb" => self.max_object_size_mb = parse_number(raw).map_err(err)?,
            "request_timeout" => self.request_timeout = parse_number(raw).map_err(err)?,
            "rate_limit_anonymous_per_hour" => {
                self.rate_limit_anonymous_per_hour = parse_number(raw).map_err(err)?
            }
            "rate_limit_authenticated_per_hour" => {
                self.rate_limit_authenticated_per_hour = parse_number(raw).map_err(err)?
            }
            "trusted_proxies" => self.trusted_proxies = TrustedProxies::parse(raw).map_err(err)?,
            "rate_limit_git_anonymous_per_hour" => {
                self.rate_limit_git_anonymous_per_hour = parse_number(raw).map_err(err)?
            }
            "rate_limit_git_authenticated_per_hour" => {
                self.rate_limit_git_authenticated_per_hour = parse_number(raw).map_err(err)?
            }
            "git_max_per_ip" => self.git_max_per_ip = parse_number(raw).map_err(err)?,
            "git_min_transfer_rate" => {
                self.git_min_transfer_rate = parse_number(raw).map_err(err)?
            }
            "git_min_rate_window" => self.git_min_rate_window = parse_number(raw).map_err(err)?,
            "git_request_deadline" => self.git_request_deadline = parse_number(raw).map_err(err)?,
            "otlp_endpoint" => self.otlp_endpoint = optional(raw),
            "admin_token" => self.admin_token = optional(raw).map(Secret::new),
            "cluster_secret" => self.cluster_secret = optional(raw).map(Secret::new),
            "open_registration" => self.open_registration = parse_bool(raw).map_err(err)?,
            "shutdown_timeout" => self.shutdown_timeout = parse_number(raw).map_err(err)?,
            "p2p_addr" => self.p2p_addr = raw.trim().to_string(),
            "bootstrap_peers" => {
                self.bootstrap_peers = raw
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "mdns" => self.mdns = parse_bool(raw).map_err(err)?,
            "seed" => self.seed = Seed::parse(raw).map_err(err)?,
            "p2p_timeout" => self.p2p_timeout = parse_number(raw).map_err(err)?,
            "retry_max_attempts" => self.retry_max_attempts = parse_number(raw).map_err(err)?,
            "circuit_breaker_threshold" => {
                self.circuit_breaker_threshold = parse_number(raw).map_err(err)?
            }
            "anti_entropy_interval" => {
                self.anti_entropy_interval = parse_number(raw).map_err(err)?
            }
            other => {
                return Err(ConfigError::Invalid {
                    var: format!("GUTS_{}", other.to_ascii_uppercase()),
                    value: None,
                    rule: "is listed but not handled (a bug)".to_string(),
                });
            }
        }
        Ok(())
    }

    /// Runs the `validator` rules and turns the first failure (in [`SETTINGS`] order,
    /// so the message is deterministic) into a [`ConfigError::Invalid`].
    fn check(&self) -> Result<(), ConfigError> {
        let Err(errors) = self.validate() else {
            return Ok(());
        };
        let fields = errors.field_errors();
        let rendered = self.rendered();
        for setting in SETTINGS {
            if let Some(list) = fields.get(setting.key) {
                let rule = list
                    .first()
                    .and_then(|e| e.message.as_ref().map(|m| m.to_string()))
                    .unwrap_or_else(|| "is invalid".to_string());
                let value = rendered.get(setting.key).cloned().unwrap_or_default();
                return Err(invalid(setting, &value, rule));
            }
        }
        Err(ConfigError::Invalid {
            var: "GUTS_*".to_string(),
            value: None,
            rule: errors.to_string(),
        })
    }

    /// Every setting as text, secrets as `<redacted>`, unset optionals absent.
    pub fn rendered(&self) -> BTreeMap<&'static str, String> {
        let secret =
            |s: &Option<Secret<String>>| s.as_ref().map(|_| guts_ops::secret::REDACTED.to_string());
        let mut out = BTreeMap::new();
        out.insert("api_addr", self.api_addr.to_string());
        out.insert("metrics_addr", self.metrics_addr.to_string());
        out.insert("data_dir", self.data_dir.display().to_string());
        if let Some(v) = secret(&self.private_key) {
            out.insert("private_key", v);
        }
        out.insert("log_level", self.log_level.to_string());
        out.insert("log_format", self.log_format.as_str().to_string());
        out.insert("max_connections", self.max_connections.to_string());
        out.insert("max_request_size_mb", self.max_request_size_mb.to_string());
        out.insert("max_push_size_mb", self.max_push_size_mb.to_string());
        out.insert("max_object_size_mb", self.max_object_size_mb.to_string());
        out.insert("request_timeout", self.request_timeout.to_string());
        out.insert(
            "rate_limit_anonymous_per_hour",
            self.rate_limit_anonymous_per_hour.to_string(),
        );
        out.insert(
            "rate_limit_authenticated_per_hour",
            self.rate_limit_authenticated_per_hour.to_string(),
        );
        if !self.trusted_proxies.is_empty() {
            out.insert("trusted_proxies", self.trusted_proxies.to_string());
        }
        out.insert(
            "rate_limit_git_anonymous_per_hour",
            self.rate_limit_git_anonymous_per_hour.to_string(),
        );
        out.insert(
            "rate_limit_git_authenticated_per_hour",
            self.rate_limit_git_authenticated_per_hour.to_string(),
        );
        out.insert("git_max_per_ip", self.git_max_per_ip.to_string());
        out.insert(
            "git_min_transfer_rate",
            self.git_min_transfer_rate.to_string(),
        );
        out.insert("git_min_rate_window", self.git_min_rate_window.to_string());
        out.insert(
            "git_request_deadline",
            self.git_request_deadline.to_string(),
        );
        if let Some(v) = &self.otlp_endpoint {
            out.insert("otlp_endpoint", v.clone());
        }
        if let Some(v) = secret(&self.admin_token) {
            out.insert("admin_token", v);
        }
        if let Some(v) = secret(&self.cluster_secret) {
            out.insert("cluster_secret", v);
        }
        out.insert("open_registration", self.open_registration.to_string());
        out.insert("shutdown_timeout", self.shutdown_timeout.to_string());
        out.insert("p2p_addr", self.p2p_addr.clone());
        if !self.bootstrap_peers.is_empty() {
            out.insert("bootstrap_peers", self.bootstrap_peers.join(","));
        }
        out.insert("mdns", self.mdns.to_string());
        out.insert("seed", self.seed.to_string());
        out.insert("p2p_timeout", self.p2p_timeout.to_string());
        out.insert("retry_max_attempts", self.retry_max_attempts.to_string());
        out.insert(
            "circuit_breaker_threshold",
            self.circuit_breaker_threshold.to_string(),
        );
        out.insert(
            "anti_entropy_interval",
            self.anti_entropy_interval.to_string(),
        );
        out
    }

    /// The effective configuration as TOML, secrets redacted: `config check`'s output.
    pub fn to_redacted_toml(&self) -> String {
        let numeric = [
            "max_connections",
            "max_request_size_mb",
            "max_push_size_mb",
            "max_object_size_mb",
            "request_timeout",
            "rate_limit_anonymous_per_hour",
            "rate_limit_authenticated_per_hour",
            "rate_limit_git_anonymous_per_hour",
            "rate_limit_git_authenticated_per_hour",
            "git_max_per_ip",
            "git_min_transfer_rate",
            "git_min_rate_window",
            "git_request_deadline",
            "shutdown_timeout",
            "p2p_timeout",
            "retry_max_attempts",
            "circuit_breaker_threshold",
            "anti_entropy_interval",
        ];
        let mut table = toml::Table::new();
        for (key, value) in self.rendered() {
            let value = match (value.parse::<i64>(), value.parse::<bool>()) {
                (Ok(n), _) if numeric.contains(&key) => toml::Value::Integer(n),
                (_, Ok(b)) => toml::Value::Boolean(b),
                _ => toml::Value::String(value),
            };
            table.insert(key.to_string(), value);
        }
        toml::to_string(&table).unwrap_or_default()
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout)
    }

    pub fn max_body_bytes(&self) -> usize {
        (self.max_request_size_mb as usize).saturating_mul(1024 * 1024)
    }

    pub fn git_min_rate_window(&self) -> Duration {
        Duration::from_secs(self.git_min_rate_window)
    }

    pub fn git_request_deadline(&self) -> Duration {
        Duration::from_secs(self.git_request_deadline)
    }

    pub fn p2p_timeout(&self) -> Duration {
        Duration::from_secs(self.p2p_timeout)
    }

    pub fn anti_entropy_interval(&self) -> Duration {
        Duration::from_secs(self.anti_entropy_interval)
    }

    pub fn max_push_bytes(&self) -> u64 {
        u64::from(self.max_push_size_mb).saturating_mul(1024 * 1024)
    }

    /// `GUTS_MAX_OBJECT_SIZE_MB` in bytes: what receive-pack and replication pass to
    /// gix as the largest allocation one object may cause.
    pub fn max_object_bytes(&self) -> usize {
        (self.max_object_size_mb as usize).saturating_mul(1024 * 1024)
    }
}

/// Reads a TOML file into `key -> text`, through the `config` crate (which also gives
/// us its file handling and error messages with line numbers).
fn read_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let file_error = |reason: String| ConfigError::File {
        path: path.to_path_buf(),
        reason,
    };
    let source = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .build()
        .map_err(|e| file_error(e.to_string()))?;
    let table: HashMap<String, config::Value> = source
        .try_deserialize()
        .map_err(|e| file_error(e.to_string()))?;
    let mut out = Vec::with_capacity(table.len());
    for (key, value) in table {
        let text = value
            .into_string()
            .map_err(|e| file_error(format!("{key}: {e}")))?;
        out.push((key, text));
    }
    out.sort();
    Ok(out)
}

fn check_nonzero_port(addr: &SocketAddr) -> Result<(), ValidationError> {
    if addr.port() == 0 {
        return Err(ValidationError::new("port").with_message("port must not be 0".into()));
    }
    Ok(())
}

fn check_nonempty_path(path: &Path) -> Result<(), ValidationError> {
    if path.as_os_str().is_empty() {
        return Err(ValidationError::new("path").with_message("must not be empty".into()));
    }
    Ok(())
}

fn check_node_key(key: &Secret<String>) -> Result<(), ValidationError> {
    Keypair::from_hex(key.expose())
        .map(|_| ())
        .map_err(|e| ValidationError::new("key").with_message(format!("ed25519 seed {e}").into()))
}

fn check_admin_token(token: &Secret<String>) -> Result<(), ValidationError> {
    let token = token.expose();
    if token.chars().count() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ValidationError::new("token")
            .with_message("must be at least 16 characters without spaces".into()));
    }
    Ok(())
}

fn check_cluster_secret(secret: &Secret<String>) -> Result<(), ValidationError> {
    if secret.expose().chars().count() < 32 {
        return Err(
            ValidationError::new("secret").with_message("must be at least 32 characters".into())
        );
    }
    Ok(())
}

fn check_multiaddr(addr: &str) -> Result<(), ValidationError> {
    guts_p2p::net::check_multiaddr(addr)
        .map_err(|e| ValidationError::new("multiaddr").with_message(e.into()))
}

fn check_multiaddrs(addrs: &[String]) -> Result<(), ValidationError> {
    addrs.iter().try_for_each(|a| check_multiaddr(a))
}

fn check_http_url(url: &str) -> Result<(), ValidationError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
        _ => Err(ValidationError::new("url").with_message(
            "must be an http:// or https:// URL such as http://collector:4317".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_env(pairs: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        Config::load(None, env(pairs))
    }

    #[test]
    fn defaults_need_nothing() {
        let loaded = load_env(&[("PATH", "/bin")]).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn every_setting_default_matches_the_code() {
        let rendered = Config::default().rendered();
        for s in SETTINGS {
            let actual = rendered.get(s.key).map(String::as_str).unwrap_or("");
            assert_eq!(actual, s.default, "{}", s.key);
            // Every listed setting is handled by apply().
            let mut c = Config::default();
            if !s.default.is_empty() {
                c.apply(s, s.default).unwrap();
            }
        }
        assert_eq!(
            rendered.len(),
            SETTINGS.iter().filter(|s| !s.default.is_empty()).count()
        );
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("guts.toml");
        std::fs::write(
            &path,
            "request_timeout = 7\nlog_level = \"debug\"\napi_addr = \"127.0.0.1:7000\"\n",
        )
        .unwrap();
        let loaded = Config::load(Some(&path), env(&[("GUTS_REQUEST_TIMEOUT", "9")])).unwrap();
        assert_eq!(loaded.config.request_timeout, 9);
        assert_eq!(loaded.config.log_level, LogLevel::Debug);
        assert_eq!(loaded.config.api_addr.port(), 7000);
        assert_eq!(loaded.config.shutdown_timeout, 20);
    }

    #[test]
    fn unknown_file_key_is_an_error_and_unknown_env_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("guts.toml");
        std::fs::write(&path, "request_timeot = 7\n").unwrap();
        let err = Config::load(Some(&path), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("request_timeot"), "{err}");

        let loaded = load_env(&[("GUTS_LOG_LEVL", "debug"), ("GUTS_CONFIG", "x")]).unwrap();
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("GUTS_LOG_LEVL"));
    }

    #[test]
    fn invalid_values_name_the_variable_value_and_rule() {
        let cases = [
            ("GUTS_API_ADDR", "localhost:80:80", "socket address"),
            ("GUTS_API_ADDR", "127.0.0.1:0", "port must not be 0"),
            ("GUTS_METRICS_ADDR", "0.0.0.0:0", "port must not be 0"),
            ("GUTS_LOG_LEVEL", "loud", "must be one of"),
            ("GUTS_LOG_FORMAT", "xml", "must be one of"),
            ("GUTS_REQUEST_TIMEOUT", "0", "from 1 to 3600"),
            ("GUTS_SHUTDOWN_TIMEOUT", "-3", "whole number"),
            ("GUTS_MAX_CONNECTIONS", "0", "from 1 to"),
            ("GUTS_MAX_REQUEST_SIZE_MB", "lots", "whole number"),
            ("GUTS_MAX_OBJECT_SIZE_MB", "0", "from 1 to 4096"),
            ("GUTS_MAX_OBJECT_SIZE_MB", "5000", "from 1 to 4096"),
            ("GUTS_MAX_OBJECT_SIZE_MB", "big", "whole number"),
            ("GUTS_RATE_LIMIT_ANONYMOUS_PER_HOUR", "0", "from 1 to"),
            (
                "GUTS_RATE_LIMIT_AUTHENTICATED_PER_HOUR",
                "many",
                "whole number",
            ),
            ("GUTS_RATE_LIMIT_GIT_ANONYMOUS_PER_HOUR", "0", "from 1 to"),
            (
                "GUTS_RATE_LIMIT_GIT_AUTHENTICATED_PER_HOUR",
                "lots",
                "whole number",
            ),
            ("GUTS_GIT_MAX_PER_IP", "0", "from 1 to 1000000"),
            ("GUTS_GIT_MIN_TRANSFER_RATE", "0", "bytes per second"),
            ("GUTS_GIT_MIN_RATE_WINDOW", "0", "from 1 to 3600"),
            ("GUTS_GIT_REQUEST_DEADLINE", "100000", "from 1 to 86400"),
            ("GUTS_OTLP_ENDPOINT", "collector:4317", "http://"),
            (
                "GUTS_TRUSTED_PROXIES",
                "127.0.0.1,10.0.0.0/33",
                "not an IP address or CIDR network",
            ),
            ("GUTS_TRUSTED_PROXIES", "ingress.local", "not an IP address"),
            ("GUTS_OPEN_REGISTRATION", "maybe", "true or false"),
            ("GUTS_P2P_ADDR", "0.0.0.0:9000", "multiaddr"),
            (
                "GUTS_BOOTSTRAP_PEERS",
                "/ip4/10.0.0.1/tcp/9000,guts-1:9000",
                "multiaddr",
            ),
            ("GUTS_MDNS", "sometimes", "true or false"),
            ("GUTS_SEED", "alice", "owner/name"),
            ("GUTS_SEED", "alice/bad name", "repository name"),
            ("GUTS_P2P_TIMEOUT", "0", "from 1 to 600"),
            ("GUTS_RETRY_MAX_ATTEMPTS", "50", "from 1 to 20"),
            ("GUTS_CIRCUIT_BREAKER_THRESHOLD", "0", "from 1 to 1000"),
            ("GUTS_ANTI_ENTROPY_INTERVAL", "soon", "whole number"),
        ];
        for (var, value, rule) in cases {
            let err = load_env(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(var), "{var}: {err}");
            assert!(err.contains(&format!("{value:?}")), "{var}: {err}");
            assert!(err.contains(rule), "{var}: {err}");
        }
    }

    #[test]
    fn trusted_proxies_parse_and_show_in_config_check() {
        let config = load_env(&[("GUTS_TRUSTED_PROXIES", " 127.0.0.1, 10.0.0.0/8 ,fd00::/8")])
            .unwrap()
            .config;
        assert!(config.trusted_proxies.contains("10.9.8.7".parse().unwrap()));
        assert!(
            !config
                .trusted_proxies
                .contains("192.168.0.1".parse().unwrap())
        );
        let dump = config.to_redacted_toml();
        assert!(
            dump.contains(r#"trusted_proxies = "127.0.0.1,10.0.0.0/8,fd00::/8""#),
            "{dump}"
        );
        // Empty, as the ConfigMap spells "unset", trusts nobody.
        let none = load_env(&[("GUTS_TRUSTED_PROXIES", "")]).unwrap().config;
        assert!(none.trusted_proxies.is_empty());
        assert!(!none.to_redacted_toml().contains("trusted_proxies"));
    }

    #[test]
    fn replication_settings_parse() {
        let loaded = load_env(&[
            (
                "GUTS_BOOTSTRAP_PEERS",
                " /dns4/guts-0.guts-headless/tcp/9000 ,, /ip4/10.0.0.2/tcp/9000/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
            ),
            ("GUTS_SEED", "Alice/*, bob/tools"),
            ("GUTS_MDNS", "yes"),
        ])
        .unwrap()
        .config;
        assert_eq!(loaded.bootstrap_peers.len(), 2);
        assert_eq!(
            loaded.bootstrap_peers[0],
            "/dns4/guts-0.guts-headless/tcp/9000"
        );
        assert!(loaded.mdns);
        assert!(loaded.seed.covers("alice", "anything"));
        assert!(loaded.seed.covers("BOB", "Tools"));
        assert!(!loaded.seed.covers("bob", "other"));
        assert!(!loaded.seed.covers("carol", "tools"));
        assert!(Seed::All.covers("anyone", "anything"));
        assert_eq!(loaded.seed.to_string(), "alice/*,bob/tools");
    }

    #[test]
    fn secrets_are_never_echoed() {
        let key = "a".repeat(63);
        let err = load_env(&[("GUTS_PRIVATE_KEY", &key)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("GUTS_PRIVATE_KEY") && err.contains("64 hex"),
            "{err}"
        );
        assert!(!err.contains(&key), "{err}");

        let err = load_env(&[("GUTS_ADMIN_TOKEN", "short-secret")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("GUTS_ADMIN_TOKEN") && !err.contains("short-secret"),
            "{err}"
        );

        let good_key = "b".repeat(64);
        let loaded = load_env(&[
            ("GUTS_PRIVATE_KEY", &good_key),
            ("GUTS_ADMIN_TOKEN", "a-long-enough-admin-token"),
        ])
        .unwrap();
        let dump = loaded.config.to_redacted_toml();
        assert!(
            !dump.contains(&good_key) && !dump.contains("a-long-enough"),
            "{dump}"
        );
        assert!(dump.contains("private_key = \"<redacted>\""), "{dump}");
        assert!(!format!("{:?}", loaded.config).contains(&good_key));
    }

    #[test]
    fn empty_optional_means_unset() {
        let loaded = load_env(&[("GUTS_OTLP_ENDPOINT", ""), ("GUTS_PRIVATE_KEY", " ")]).unwrap();
        assert_eq!(loaded.config.otlp_endpoint, None);
        assert!(loaded.config.private_key.is_none());
    }

    #[test]
    fn redacted_dump_is_loadable_toml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("effective.toml");
        let config = load_env(&[("GUTS_REQUEST_TIMEOUT", "12")]).unwrap().config;
        std::fs::write(&path, config.to_redacted_toml()).unwrap();
        let again = Config::load(Some(&path), Vec::new()).unwrap().config;
        assert_eq!(again, config);
    }

    /// The README table, the example file and SETTINGS must agree: a setting is
    /// documented once, everywhere, with the same default.
    #[test]
    fn readme_and_example_file_match_settings() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let mut table: BTreeMap<String, String> = BTreeMap::new();
        for line in readme.lines().filter(|l| l.starts_with("| `GUTS_")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let var = cells[1].trim_matches('`').to_string();
            let default = cells[2].trim_matches('`').to_string();
            table.insert(
                var,
                if default == "unset" {
                    String::new()
                } else {
                    default
                },
            );
        }
        let expected: BTreeMap<String, String> = SETTINGS
            .iter()
            .map(|s| (s.env_var(), s.default.to_string()))
            .collect();
        assert_eq!(table, expected, "README.md configuration table");

        let example_path = root.join("config/guts.example.toml");
        let example = std::fs::read_to_string(&example_path).unwrap();
        for s in SETTINGS {
            let set = example
                .lines()
                .any(|l| l.starts_with(&format!("{} = ", s.key)));
            let commented = example
                .lines()
                .any(|l| l.starts_with(&format!("# {} = ", s.key)));
            assert!(
                set ^ commented,
                "{} must appear exactly once, set or commented",
                s.key
            );
            assert_eq!(
                set,
                !s.default.is_empty(),
                "{}: set iff it has a default",
                s.key
            );
        }
        let loaded = Config::load(Some(&example_path), Vec::new()).unwrap();
        assert_eq!(
            loaded.config,
            Config::default(),
            "the example file sets the defaults"
        );
    }
}
