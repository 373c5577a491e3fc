//! One SSH connection: who the key is, which channels are open, and what each channel
//! is asked to run. Everything but a git command on a repository the caller may use is
//! refused with a message for the person at the other end.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use guts_git::serve::Protocol;
use guts_git::v0::Service;
use guts_ops::rate::Key as RateKey;
use guts_service::{Denied, GitNeed, ServiceError, SshCaller};
use russh::server::{Auth, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, Disconnect};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::command::{self, GitCommand};
use crate::exec::{self, Exec};
use crate::metrics::{AuthOutcome, ConnectionOutcome};
use crate::{EXIT_REFUSED, MAX_CHANNELS, Shared, Slot};

/// Longest `GIT_PROTOCOL` value kept (`version=2` and a few more keys).
const MAX_ENV_VALUE: usize = 256;

/// Runs one connection to its end: the SSH session, the login grace, and the node's
/// shutdown (idle sessions end at once; running git commands are let finish).
pub(crate) async fn serve_connection(
    shared: Arc<Shared>,
    config: Arc<russh::server::Config>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let _slot = slot;
    let _open = shared.ctx.metrics.open();
    let grace = shared.ctx.settings.login_grace;
    let authenticated = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicUsize::new(0));
    let handler = Connection {
        shared: shared.clone(),
        peer,
        caller: None,
        channels: HashMap::new(),
        authenticated: authenticated.clone(),
        running: running.clone(),
        tracker,
    };
    // The client's identification line comes first: one that never sends it is cut
    // at the grace time like one that never authenticates.
    let session =
        match tokio::time::timeout(grace, russh::server::run_stream(config, stream, handler)).await
        {
            Ok(Ok(session)) => session,
            Ok(Err(e)) => {
                tracing::debug!(client = %peer, error = %e, "SSH handshake failed");
                return;
            }
            Err(_) => {
                shared
                    .ctx
                    .metrics
                    .connection(ConnectionOutcome::AuthTimeout);
                return;
            }
        };
    let handle = session.handle();
    let mut session = std::pin::pin!(session);
    let grace_over = tokio::time::sleep(grace);
    let mut grace_over = std::pin::pin!(grace_over);
    let mut graced = false;
    let mut stopping = false;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tokio::select! {
            ended = &mut session => {
                if let Err(e) = ended {
                    tracing::debug!(client = %peer, error = %e, "SSH session ended with an error");
                }
                return;
            }
            () = &mut grace_over, if !graced => {
                graced = true;
                if !authenticated.load(Ordering::Acquire) {
                    shared.ctx.metrics.connection(ConnectionOutcome::AuthTimeout);
                    tracing::info!(client = %peer, "SSH connection not authenticated in time");
                    let _ = handle
                        .disconnect(
                            Disconnect::ByApplication,
                            "authentication took too long".into(),
                            String::new(),
                        )
                        .await;
                    return;
                }
            }
            () = shutdown.cancelled(), if !stopping => stopping = true,
            _ = tick.tick(), if stopping => {
                if running.load(Ordering::Acquire) == 0 {
                    let _ = handle
                        .disconnect(
                            Disconnect::ByApplication,
                            "the server is shutting down".into(),
                            String::new(),
                        )
                        .await;
                    return;
                }
            }
        }
    }
}

/// A session channel, until it is given a command.
struct Open {
    channel: Channel<Msg>,
    protocol: Protocol,
}

/// The russh handler of one connection.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    caller: Option<SshCaller>,
    channels: HashMap<ChannelId, Open>,
    authenticated: Arc<AtomicBool>,
    /// Git commands of this connection still running (shutdown waits for them).
    running: Arc<AtomicUsize>,
    tracker: TaskTracker,
}

impl Connection {
    fn lookup(&self, key: &russh::keys::PublicKey) -> Option<SshCaller> {
        let metrics = &self.shared.ctx.metrics;
        let blob = match key.to_bytes() {
            Ok(blob) => blob,
            Err(_) => {
                metrics.auth(AuthOutcome::Unknown);
                return None;
            }
        };
        match self.shared.ctx.service.ssh_caller(&blob) {
            Ok(Some(caller)) => Some(caller),
            Ok(None) => None,
            Err(e) => {
                metrics.auth(AuthOutcome::Error);
                tracing::error!(error = %e, "SSH key lookup failed");
                None
            }
        }
    }

    /// Who the caller is, for greetings and refusals: a login, or a deploy key's
    /// repository.
    fn who(&self) -> String {
        match &self.caller {
            Some(caller) if caller.deploy.is_some() => "deploy key".to_owned(),
            Some(caller) => caller.authed.user.login.clone(),
            None => "anonymous".to_owned(),
        }
    }

    /// Answers a command on `channel` with `message` and ends the channel: an `ERR`
    /// packet (git prints `fatal: remote error: …`), then the exit status.
    fn refuse(&mut self, channel: ChannelId, session: &mut Session, message: &str) {
        self.channels.remove(&channel);
        let mut line = format!("ERR {message}\n").into_bytes();
        let len = format!("{:04x}", line.len() + 4);
        line.splice(0..0, len.into_bytes());
        let _ = session.channel_success(channel);
        let _ = session.data(channel, line);
        end(channel, session, EXIT_REFUSED);
    }

    /// Says `message` on the channel's stderr and ends it (for humans at a terminal).
    fn say_and_end(&mut self, channel: ChannelId, session: &mut Session, message: &str) {
        self.channels.remove(&channel);
        let _ = session.channel_success(channel);
        let _ = session.extended_data(channel, 1, format!("{message}\n").into_bytes());
        end(channel, session, 1);
    }

    /// The message git's user reads for a refusal of the use-case layer.
    fn refusal(&self, e: &ServiceError, command: &GitCommand) -> String {
        let name = command.repo.strip_suffix(".git").unwrap_or(&command.repo);
        let deploy_read_only = self
            .caller
            .as_ref()
            .and_then(|c| c.deploy)
            .is_some_and(|d| d.read_only);
        match e {
            ServiceError::NotFound => "Repository not found.".to_owned(),
            ServiceError::Forbidden(Denied::Role(_)) if deploy_read_only => {
                "The key you are authenticating with is a read-only deploy key.".to_owned()
            }
            ServiceError::Forbidden(Denied::Archived) => {
                "This repository was archived so it is read-only.".to_owned()
            }
            ServiceError::Forbidden(Denied::NotCustodial) => {
                "This account signs its own operations; this node holds no key to push with."
                    .to_owned()
            }
            ServiceError::Forbidden(_) | ServiceError::BadCredentials => format!(
                "Permission to {}/{name} denied to {}.",
                command.owner,
                self.who()
            ),
            other => {
                tracing::error!(error = %other, "SSH git access failed");
                "Internal error.".to_owned()
            }
        }
    }
}

/// Exit status, EOF and close: how a command's end reads to `ssh`.
fn end(channel: ChannelId, session: &mut Session, status: u32) {
    let _ = session.exit_status_request(channel, status);
    let _ = session.eof(channel);
    let _ = session.close(channel);
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Spares the client a signature for a key that would be refused anyway.
        Ok(match self.lookup(offer.public_key) {
            Some(_) => Auth::Accept,
            None => {
                self.shared.ctx.metrics.auth(AuthOutcome::Unknown);
                Auth::reject()
            }
        })
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let metrics = &self.shared.ctx.metrics;
        match self.lookup(key.public_key) {
            Some(caller) => {
                metrics.auth(AuthOutcome::Accepted);
                tracing::info!(
                    client = %self.peer,
                    user = %caller.authed.user.login,
                    key = %caller.fingerprint,
                    deploy = caller.deploy.is_some(),
                    "SSH authenticated"
                );
                self.caller = Some(caller);
                self.authenticated.store(true, Ordering::Release);
                Ok(Auth::Accept)
            }
            None => {
                metrics.auth(AuthOutcome::Unknown);
                tracing::info!(client = %self.peer, "SSH key refused");
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The open channels plus the commands still running on this connection.
        let busy = self.channels.len() + self.running.load(Ordering::Acquire);
        if self.caller.is_none() || busy >= MAX_CHANNELS {
            // Dropping the handle refuses the channel.
            return Ok(());
        }
        let id = channel.id();
        self.channels.insert(
            id,
            Open {
                channel,
                protocol: Protocol::V0,
            },
        );
        reply.accept().await;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.get_mut(&channel) {
            Some(open) if name == "GIT_PROTOCOL" && value.len() <= MAX_ENV_VALUE => {
                open.protocol = Protocol::from_header(Some(value));
                session.channel_success(channel)
            }
            _ => session.channel_failure(channel),
        }
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(caller) = self.caller.clone() else {
            return session.channel_failure(channel);
        };
        let command = match command::parse(data) {
            Ok(command) => command,
            Err(e) => {
                tracing::info!(client = %self.peer, key = %caller.fingerprint, error = %e, "SSH command refused");
                self.refuse(channel, session, &e.to_string());
                return Ok(());
            }
        };
        let bucket = RateKey::Token {
            login: caller.authed.user.login.clone(),
            id: caller.authed.token.id,
        };
        if let Err(status) = self.shared.ctx.git_rate.check(&bucket, Instant::now()) {
            tracing::info!(client = %self.peer, user = %caller.authed.user.login, key = %caller.fingerprint, limit = status.limit, "git rate limit exceeded");
            let message = format!(
                "Git rate limit exceeded for user {}: {} requests per hour. Retry in {} s.",
                caller.authed.user.login, status.limit, status.retry_after
            );
            self.refuse(channel, session, &message);
            return Ok(());
        }
        let need = match command.service {
            Service::UploadPack => GitNeed::Read,
            Service::ReceivePack => GitNeed::Write,
        };
        let granted = self.shared.ctx.service.git_access(
            Some(&caller.authed),
            caller.deploy,
            &command.owner,
            &command.repo,
            need,
        );
        let granted = match granted {
            Ok(granted) => granted,
            Err(e) => {
                let message = self.refusal(&e, &command);
                tracing::info!(
                    client = %self.peer,
                    user = %caller.authed.user.login,
                    key = %caller.fingerprint,
                    repo = %format!("{}/{}", command.owner, command.repo),
                    service = command.service.name(),
                    why = %e,
                    "SSH git command refused"
                );
                self.refuse(channel, session, &message);
                return Ok(());
            }
        };
        let Some(open) = self.channels.remove(&channel) else {
            return session.channel_failure(channel);
        };
        session.channel_success(channel)?;
        let job = Exec {
            shared: self.shared.clone(),
            channel: open.channel,
            protocol: open.protocol,
            service: command.service,
            granted,
            user: caller.authed.user.login.clone(),
            key: caller.fingerprint.clone(),
            client: self.peer,
        };
        let running = self.running.clone();
        running.fetch_add(1, Ordering::AcqRel);
        self.tracker.spawn(async move {
            exec::run(job).await;
            running.fetch_sub(1, Ordering::AcqRel);
        });
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // `ssh -T git@host`: say who the key is, as GitHub does (a deploy key by its
        // repository), and end.
        let who = match self.caller.as_ref().and_then(|c| c.deploy) {
            Some(deploy) => self
                .shared
                .ctx
                .service
                .repositories()
                .served(deploy.repo)
                .map_or_else(|| self.who(), |n| format!("{}/{}", n.owner, n.name)),
            None => self.who(),
        };
        let greeting = format!(
            "Hi {who}! You've successfully authenticated, but Guts does not provide shell access."
        );
        self.say_and_end(channel, session, &greeting);
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(client = %self.peer, subsystem = %name.chars().take(64).collect::<String>(), "SSH subsystem refused");
        self.channels.remove(&channel);
        session.channel_failure(channel)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Data before a command has nowhere to go: the channel is closed (and its
        // queue dropped, so that unread data never stalls the connection).
        if self.channels.remove(&channel).is_some() {
            let _ = session.close(channel);
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }
}
