//! Command line: `run` (the default), `keygen`, `config check`. Each returns the
//! process exit code; only `main` turns it into an exit.

use std::path::PathBuf;
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
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an account with a custodial key and print its first token.
    Create {
        login: String,
        /// Make the account a site administrator (token scopes repo and admin).
        #[arg(long)]
        admin: bool,
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

pub fn keygen() -> ExitCode {
    let key = Keypair::generate();
    println!("private_key: {}", key.seed_hex().as_str());
    println!("peer_id: {}", key.public().peer_id());
    ExitCode::SUCCESS
}

pub fn config_check(cli: &Cli) -> ExitCode {
    match load(cli) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("guts-node: warning: {warning}");
            }
            print!("{}", loaded.config.to_redacted_toml());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// `user create`: opens the store directly, so it refuses (the database is locked)
/// while a node runs on the same data directory; use the admin API then.
pub fn user_create(cli: &Cli, login: &str, admin: bool) -> ExitCode {
    let loaded = match load(cli) {
        Ok(loaded) => loaded,
        Err(code) => return code,
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
        let user = storage.accounts.create_user(login, admin).await?;
        let scopes = if admin {
            vec![Scope::Repo, Scope::Admin]
        } else {
            vec![Scope::Repo]
        };
        let token = storage
            .accounts
            .create_token(&user.login, "initial", scopes)
            .await?;
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
