//! One git command on one SSH channel, after the use case allowed it: the channel's data
//! is pumped into a blocking reader for git's serving code and what it writes is
//! pumped back, until the command ends, the client goes away, or the deadline passes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use guts_git::serve::{self, Protocol, Transport};
use guts_git::v0::Service;
use guts_service::GitAccess;
use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use tokio::sync::mpsc;

use crate::Shared;
use crate::pipe::{Cut, DEPTH, Input, Output};

/// How long a command waits for a thread of the SSH budget before it is refused.
const THREAD_WAIT: Duration = Duration::from_secs(10);

/// Everything one command needs.
pub(crate) struct Exec {
    pub(crate) shared: Arc<Shared>,
    pub(crate) channel: Channel<Msg>,
    pub(crate) protocol: Protocol,
    pub(crate) service: Service,
    pub(crate) granted: GitAccess,
    pub(crate) user: String,
    pub(crate) key: String,
    pub(crate) client: SocketAddr,
}

/// How a command ended, for the exit status and the log.
enum Ended {
    Done(Result<(), String>),
    Deadline,
    Busy,
}

pub(crate) async fn run(job: Exec) {
    let started = Instant::now();
    let Exec {
        shared,
        channel,
        protocol,
        service,
        granted,
        user,
        key,
        client,
    } = job;
    let ctx = &shared.ctx;
    let repo = granted.access.view.id;
    let (mut from_client, to_client) = channel.split();
    let ended = match tokio::time::timeout(THREAD_WAIT, shared.commands.clone().acquire_owned())
        .await
    {
        Ok(Ok(thread)) => {
            let (in_tx, in_rx) = mpsc::channel::<Bytes>(DEPTH);
            let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(DEPTH);
            // A push streams its pack: held to the size cap and to the minimum
            // rate git over HTTP holds a pack to. A fetch's requests are small and
            // its client waits while the pack is sent: the idle timeout is enough.
            let (limit, pace) = match service {
                Service::UploadPack => (None, None),
                Service::ReceivePack => (
                    Some(ctx.settings.max_push_bytes),
                    Some((ctx.settings.min_rate, ctx.settings.rate_window)),
                ),
            };
            let cut = Cut::default();
            let input = Input::new(in_rx, limit, cut.clone());
            let output = Output::new(out_tx);
            let work = tokio::spawn(command(
                shared.clone(),
                service,
                protocol,
                granted,
                input,
                output,
                thread,
            ));
            // Client → git, until the client's EOF; then nothing more to do.
            let pump_in = async {
                // Time spent waiting on the client (not on git) and what it sent
                // meanwhile, per window.
                let (mut waited, mut received) = (Duration::ZERO, 0u64);
                loop {
                    let msg = match pace {
                        None => from_client.wait().await,
                        Some((min_rate, window)) => {
                            let started = Instant::now();
                            let next = tokio::time::timeout(
                                window.saturating_sub(waited),
                                from_client.wait(),
                            )
                            .await;
                            waited += started.elapsed();
                            if waited >= window {
                                if received < min_rate.saturating_mul(window.as_secs()) {
                                    cut.set(format!(
                                            "the push was slower than {min_rate} bytes per second over {} s",
                                            window.as_secs()
                                        ));
                                    break;
                                }
                                (waited, received) = (Duration::ZERO, 0);
                            }
                            match next {
                                Ok(msg) => msg,
                                Err(_) => continue,
                            }
                        }
                    };
                    let data = match msg {
                        Some(ChannelMsg::Data { data }) => data,
                        Some(ChannelMsg::Eof) | None => break,
                        Some(_) => continue,
                    };
                    received += data.len() as u64;
                    if in_tx.send(data).await.is_err() {
                        break;
                    }
                }
                drop(in_tx);
                std::future::pending::<()>().await;
            };
            // Git → client, until git is done writing.
            let pump_out = async {
                while let Some(chunk) = out_rx.recv().await {
                    if to_client.data_bytes(chunk).await.is_err() {
                        break;
                    }
                }
            };
            let deadline = tokio::time::sleep(ctx.settings.deadline);
            tokio::select! {
                () = pump_in => Ended::Done(Ok(())),
                () = pump_out => match work.await {
                    Ok(result) => Ended::Done(result),
                    Err(e) => Ended::Done(Err(format!("the git command failed: {e}"))),
                },
                () = deadline => Ended::Deadline,
            }
        }
        _ => Ended::Busy,
    };
    let status = match &ended {
        Ended::Done(Ok(())) => 0,
        Ended::Done(Err(_)) => 1,
        Ended::Deadline => {
            let _ = to_client
                .extended_data_bytes(
                    1,
                    Bytes::from_static(b"The git command took longer than the server allows.\n"),
                )
                .await;
            1
        }
        Ended::Busy => {
            let _ = to_client
                .extended_data_bytes(
                    1,
                    Bytes::from_static(
                        b"The server is busy with other git commands; retry shortly.\n",
                    ),
                )
                .await;
            crate::EXIT_REFUSED
        }
    };
    let _ = to_client.exit_status(status).await;
    let _ = to_client.eof().await;
    let _ = to_client.close().await;
    tracing::info!(
        client = %client,
        user = %user,
        key = %key,
        repo = %repo,
        service = service.name(),
        protocol = protocol.label(),
        status,
        error = match &ended {
            Ended::Done(Err(e)) => Some(e.as_str()),
            Ended::Deadline => Some("deadline"),
            Ended::Busy => Some("busy"),
            Ended::Done(Ok(())) => None,
        },
        ms = started.elapsed().as_millis() as u64,
        "SSH git command"
    );
}

/// The git side of a command: upload-pack on a blocking thread; receive-pack through
/// the signed ref updates of the caller's pusher.
async fn command(
    shared: Arc<Shared>,
    service: Service,
    protocol: Protocol,
    granted: GitAccess,
    mut input: Input,
    mut output: Output,
    thread: tokio::sync::OwnedSemaphorePermit,
) -> Result<(), String> {
    let ctx = &shared.ctx;
    let started = Instant::now();
    let repos = ctx.service.repositories().clone();
    let metrics = ctx.git_metrics.clone();
    let id = granted.access.view.id;
    match service {
        Service::UploadPack => {
            let plans = ctx.plans.clone();
            let git = repos.git().clone();
            let result = tokio::task::spawn_blocking(move || {
                let _thread = thread;
                let repo = git
                    .open_repo(&id.to_string())
                    .map_err(serve::ServeError::from)?;
                serve::upload_pack_stream(&repo, &plans, protocol, &mut input, &mut output)
            })
            .await
            .map_err(|e| e.to_string())?;
            metrics.observe(Transport::Ssh, "upload_pack", started.elapsed());
            match result {
                Ok(outcome) => {
                    metrics.fetch(Transport::Ssh, protocol, Ok(outcome.pack.as_ref()));
                    Ok(())
                }
                Err(e) => {
                    metrics.fetch(Transport::Ssh, protocol, Err(()));
                    Err(e.to_string())
                }
            }
        }
        Service::ReceivePack => {
            let _thread = thread;
            let Some(pusher) = granted.pusher else {
                return Err("no pusher for a push".to_owned());
            };
            let result = serve::receive_pack_stream(
                repos,
                ctx.plans.clone(),
                id,
                move |commands, atomic| async move { pusher.update_refs(commands, atomic).await },
                Box::new(input),
                Box::new(output),
                ctx.settings.max_object_bytes,
            )
            .await;
            metrics.observe(Transport::Ssh, "receive_pack", started.elapsed());
            match result {
                Ok(outcome) => {
                    metrics.push(Transport::Ssh, Some(&outcome));
                    tracing::info!(
                        repo = %id,
                        updated = outcome.updated,
                        refused = outcome.refused,
                        objects = outcome.pack_objects,
                        bytes = outcome.pack_bytes,
                        unpack_error = outcome.unpack_error.as_deref(),
                        "push"
                    );
                    Ok(())
                }
                Err(e) => {
                    metrics.push(Transport::Ssh, None);
                    Err(e.to_string())
                }
            }
        }
    }
}
