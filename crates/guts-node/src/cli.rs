//! Command line: `run` (the default), `keygen`, `config check`, `user create`,
//! `backup`, `restore`. Each returns the process exit code; only `main` turns it into
//! an exit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use guts_core::Keypair;
use guts_ops::TelemetrySettings;

use crate::config::{Config, Loaded};
use crate::node::{Identity, Node, OpenedStorage};
use guts_storage::{Scope, StorageMetrics};

/// Exit code for a configuration that was refused.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code after a second SIGTERM/SIGINT cut the shutdown short.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Guts: a peer-to-peer code collaboration node.
#[derive(Debug, Parser)]
#[command(name = "guts-node", version)]
pub struct Cli {
    /// TOML configuration file; `GUTS_*` environment variables override it.
    #[arg(long, env = "GUTS_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node (the default).
    Run,
    /// Print a new node private key (64 hex chars) and its peer id.
    Keygen,
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Account tools that work on the data directory while the node is stopped.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Back up the running node (through its admin API, `GUTS_API_ADDR` with
    /// `GUTS_ADMIN_TOKEN`) into DIR on the node's filesystem, and wait until the copy is
    /// complete. Writes go on meanwhile; the backup holds every write acknowledged
    /// before it started.
    Backup {
        /// Target directory: empty or absent, outside the data directory; a relative
        /// path is taken from the current directory.
        dir: PathBuf,
    },
    /// Lay a backup out as a data directory (the node stopped), then open it as the node
    /// would, to check it.
    Restore {
        /// A directory written by `guts-node backup` (it holds `backup.json`).
        backup: PathBuf,
        /// Where to restore (default: `GUTS_DATA_DIR`); must be empty or absent.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an account with a custodial key and print its first token.
    Create {
        login: String,
        /// Make the account a site administrator (token scopes repo and admin).
        #[arg(long)]
        admin: bool,
        /// Read a password for the web interface from the first line of standard
        /// input (8 to 1024 characters).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate the configuration and print the effective values as TOML, secrets
    /// redacted. Exits 0 if valid, 2 if not.
    Check,
}

fn load(cli: &Cli) -> Result<Loaded, ExitCode> {
    Config::load(cli.config.as_deref(), std::env::vars()).map_err(|e| {
        eprintln!("guts-node: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// A new node key and a new cluster secret, with what they make visible to others:
/// the node's peer id, and the SSH host key every node sharing the secret presents
/// (to pin in `known_hosts` before the cluster first starts).
pub fn keygen() -> ExitCode {
    let key = Keypair::generate();
    println!("private_key: {}", key.seed_hex().as_str());
    println!("peer_id: {}", key.public().peer_id());
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let host = host_key(secret.as_bytes());
    println!("cluster_secret: {secret}");
    println!("ssh_host_key: {}", host.public_openssh());
    println!("ssh_host_key_fingerprint: {}", host.fingerprint());
    ExitCode::SUCCESS
}

/// The SSH host key of the nodes that share `cluster_secret`.
fn host_key(cluster_secret: &[u8]) -> guts_ssh::HostKey {
    guts_ssh::HostKey::from_seed(&guts_storage::Sealer::new(cluster_secret).ssh_host_seed())
}

pub fn config_check(cli: &Cli) -> ExitCode {
    match load(cli) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("guts-node: warning: {warning}");
            }
            print!("{}", loaded.config.to_redacted_toml());
            // As TOML comments, so that the output still loads as a config file.
            match configured_host_key(&loaded.config) {
                Some(host) => {
                    println!(
                        "# SSH host key (for known_hosts): {}",
                        host.public_openssh()
                    );
                    println!("# SSH host key fingerprint: {}", host.fingerprint());
                }
                None => println!(
                    "# SSH host key: derived from the cluster secret generated on first start"
                ),
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// The host key of `config`: from `GUTS_CLUSTER_SECRET`, else from the data directory's
/// generated secret if there is one (never creating it: a check writes nothing).
fn configured_host_key(config: &Config) -> Option<guts_ssh::HostKey> {
    if let Some(secret) = &config.cluster_secret {
        return Some(host_key(secret.expose().as_bytes()));
    }
    let file = config.data_dir.join(crate::keyfile::CLUSTER_SECRET_FILE);
    if !file.exists() {
        return None;
    }
    let secret = crate::keyfile::cluster_secret(None, &config.data_dir).ok()?;
    Some(host_key(secret.expose()))
}

/// `user create`: opens the store directly, so it refuses (the database is locked)
/// while a node runs on the same data directory; use the admin API then.
pub fn user_create(cli: &Cli, login: &str, admin: bool, password_stdin: bool) -> ExitCode {
    let loaded = match load(cli) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let password = if password_stdin {
        let mut line = String::new();
        if let Err(e) = std::io::stdin().read_line(&mut line) {
            eprintln!("guts-node: cannot read the password from standard input: {e}");
            return ExitCode::FAILURE;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if let Err(e) = guts_service::check_password(&line) {
            eprintln!("guts-node: password: {e}");
            return ExitCode::from(2);
        }
        Some(line)
    } else {
        None
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("guts-node: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<String> = runtime.block_on(async {
        std::fs::create_dir_all(&loaded.config.data_dir)?;
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(StorageMetrics::register(&mut registry));
        let storage = OpenedStorage::open(&loaded.config, metrics)?;
        let scopes = if admin {
            vec![Scope::Repo, Scope::Admin]
        } else {
            vec![Scope::Repo]
        };
        let service = guts_service::Service::new(storage.accounts.clone(), storage.repos.clone());
        let (user, token) = service.create_account(login, admin, scopes).await?;
        if let Some(password) = &password {
            service.set_password(&user.login, password).await?;
        }
        drop(service);
        let text = token.token.expose().clone();
        drop(storage.accounts);
        drop(storage.repos);
        drop(storage.store);
        storage.writer.join();
        Ok(text)
    });
    match result {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("guts-node: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn run(cli: &Cli) -> ExitCode {
    let loaded = match load(cli) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("guts-worker")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("guts-node: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_node(loaded)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "node failed");
            eprintln!("guts-node: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_node(loaded: Loaded) -> anyhow::Result<ExitCode> {
    let Loaded { config, warnings } = loaded;
    let mut signals = crate::signals::Signals::install()?;
    let identity = Identity::load(&config)?;
    let telemetry = Arc::new(guts_ops::telemetry::init(&TelemetrySettings {
        level: config.log_level,
        format: config.log_format,
        otlp_endpoint: config.otlp_endpoint.clone(),
        service_name: "guts-node".to_string(),
        instance_id: identity.peer_id(),
    })?);
    for warning in &warnings {
        tracing::warn!("{warning}");
    }

    let node = Node::bind(&config, identity, Some(telemetry.clone())).await?;
    let failed = tokio::select! {
        signal = signals.next() => {
            tracing::info!(signal, "signal received");
            false
        }
        () = node.failed() => true,
    };

    let timeout = config.shutdown_timeout();
    let result = tokio::select! {
        result = node.shutdown(timeout) => result,
        signal = signals.next() => {
            tracing::warn!(signal, "second signal: exiting without draining");
            return Ok(ExitCode::from(EXIT_INTERRUPTED));
        }
    };
    telemetry.shutdown(std::time::Duration::from_secs(2)).await;
    match result {
        Ok(()) if !failed => Ok(ExitCode::SUCCESS),
        Ok(()) => Ok(ExitCode::FAILURE),
        Err(e) => {
            tracing::error!(error = %e, "unclean shutdown");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// How long `backup` keeps polling a node that stopped answering.
const BACKUP_UNREACHABLE: std::time::Duration = std::time::Duration::from_secs(60);

/// The address to reach the node's API from the same host: a wildcard listen address
/// (`0.0.0.0`, as in Kubernetes) is reached on loopback.
fn local_api(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    std::net::SocketAddr::new(ip, addr.port())
}

/// `backup DIR`: starts an online backup through the admin API and waits for it.
pub fn backup(cli: &Cli, dir: &Path) -> ExitCode {
    let loaded = match load(cli) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let Some(token) = loaded.config.admin_token.clone() else {
        eprintln!("guts-node: GUTS_ADMIN_TOKEN is not set: backups go through the admin API");
        return ExitCode::from(EXIT_CONFIG);
    };
    let dir = match std::path::absolute(dir) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("guts-node: {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let base = format!("http://{}", local_api(loaded.config.api_addr));
    match run_backup(&base, token.expose(), &dir) {
        Ok(status) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&status).unwrap_or_default()
            );
            if status["state"] == "done" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("guts-node: backup: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_backup(base: &str, token: &str, dir: &Path) -> anyhow::Result<serde_json::Value> {
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let url = format!("{base}/admin/backup");
    let response = client
        .post(&url)
        .bearer_auth(token)
        .json(&serde_json::json!({ "path": dir }))
        .send()
        .map_err(|e| anyhow::anyhow!("cannot reach the node at {base} (GUTS_API_ADDR): {e}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().unwrap_or_default();
    if status != reqwest::StatusCode::ACCEPTED {
        let detail = body["errors"][0]["message"]
            .as_str()
            .or(body["message"].as_str())
            .unwrap_or("no detail");
        anyhow::bail!("the node refused the backup ({status}): {detail}");
    }
    eprintln!(
        "guts-node: snapshot taken at {}; copying {} repositories into {}",
        body["snapshot_at"].as_str().unwrap_or("?"),
        body["repositories"],
        dir.display()
    );
    let mut last_answer = std::time::Instant::now();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        match client.get(&url).bearer_auth(token).send() {
            Ok(r) if r.status().is_success() => {
                last_answer = std::time::Instant::now();
                let body: serde_json::Value = r.json()?;
                if body["state"] != "running" {
                    return Ok(body);
                }
            }
            Ok(r) => anyhow::bail!("the node answered {} while the backup ran", r.status()),
            Err(e) if last_answer.elapsed() > BACKUP_UNREACHABLE => {
                anyhow::bail!("the node stopped answering while the backup ran: {e}")
            }
            Err(_) => {}
        }
    }
}

/// `restore BACKUP [--data-dir DIR]`: lays the backup out, then opens it as the node
/// would (every operation re-verified and folded, git refs written from the log) and
/// checks that the cluster secret opens the users' keys.
pub fn restore(cli: &Cli, backup: &Path, data_dir: Option<&Path>) -> ExitCode {
    let loaded = match load(cli) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let mut config = loaded.config;
    if let Some(dir) = data_dir {
        config.data_dir = dir.to_path_buf();
    }
    let manifest = match guts_storage::backup::read_manifest(backup) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("guts-node: restore: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Without the secret the restored node would generate a new one and could not open
    // any custodial key: refuse before writing anything.
    let has_secret = manifest
        .key_files
        .iter()
        .any(|f| f == crate::keyfile::CLUSTER_SECRET_FILE);
    if !has_secret && config.cluster_secret.is_none() {
        eprintln!(
            "guts-node: restore: the backup has no {} (its node took the secret from GUTS_CLUSTER_SECRET): set GUTS_CLUSTER_SECRET to that cluster's secret",
            crate::keyfile::CLUSTER_SECRET_FILE
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    if let Err(e) = guts_storage::backup::restore(backup, &config.data_dir) {
        eprintln!("guts-node: restore: {e}");
        return ExitCode::FAILURE;
    }
    match verify_restored(&config) {
        Ok((repositories, users)) => {
            println!(
                "restored {repositories} repositories and {users} users (snapshot of {} ms since the epoch) into {}",
                manifest.snapshot_at_ms,
                config.data_dir.display()
            );
            if !manifest
                .key_files
                .iter()
                .any(|f| f == crate::keyfile::KEY_FILE)
            {
                println!(
                    "the backup has no node key: the node will use GUTS_PRIVATE_KEY or generate a new identity"
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "guts-node: restore: the restored data directory {} does not open: {e:#}",
                config.data_dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

fn verify_restored(config: &Config) -> anyhow::Result<(usize, u64)> {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(StorageMetrics::register(&mut registry));
    let storage = OpenedStorage::open(config, metrics)?;
    let repositories = storage.repos.list().len();
    let users = storage.accounts.users()?;
    if let Some(user) = users.iter().find(|u| u.sealed_key.is_some()) {
        storage.accounts.signing_key(user).map_err(|e| {
            anyhow::anyhow!(
                "the cluster secret does not open user {}'s key ({e}): set GUTS_CLUSTER_SECRET to the backed-up cluster's secret",
                user.login
            )
        })?;
    }
    drop(storage.accounts);
    drop(storage.repos);
    drop(storage.store);
    storage.writer.join();
    Ok((repositories, users.len() as u64))
}
