//! `git-receive-pack`: the command list, the pack (through [`ingest`](super::ingest)),
//! the ref updates as signed operations, and the report (`report-status`, framed in
//! side-band-64k when asked). One implementation for both connections: a stateless
//! HTTP request ([`receive_pack`]) and a stream ([`super::stream::receive_pack_stream`]),
//! which differ only in the advertisement that opens a stream and in draining.
//!
//! Order of effects, each durable before the next: pack verified in quarantine →
//! pack moved into the repository → `UpdateRef` operations committed → git refs moved.
//! A failure before the operations are committed changes no ref; a crash after is
//! repaired on start, when git's refs are made to agree with the operation log.

use std::future::Future;
use std::io::{BufReader, Read, Write};
use std::sync::Arc;

use guts_core::{ObjectId, RepoId};
use guts_storage::{RefCommand, RefRefusal, RepoError, Repositories};

use super::ingest::{Ingested, ingest};
use super::pack::Sideband;
use super::refs::{Connection, advertise_on};
use super::{Protocol, ServeError};
use crate::pktline::{self, Band};
use crate::v0::{ReceiveParser, ReceiveRequest, ReceiveStep, Service};

/// Most bytes read past a refused pack so the client can read the report.
const DRAIN_LIMIT: u64 = 256 << 20;

/// Most bytes of a command list (everything before the pack).
const MAX_COMMANDS_BYTES: usize = 16 << 20;

/// What a push did, for metrics and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOutcome {
    pub updated: usize,
    pub refused: usize,
    pub pack_objects: u32,
    pub pack_bytes: u64,
    /// The pack was refused (`unpack <error>`).
    pub unpack_error: Option<String>,
}

/// A push's verdict for one command.
type Verdict = Result<(), String>;

/// What one ref update of a push came to, from [`receive_pack`]'s `update_refs`.
pub type RefResults = Result<Vec<Result<(), RefRefusal>>, RepoError>;

/// Serves one receive-pack request. Blocking I/O runs on the blocking pool; `body` and
/// `out` are blocking reader and writer (the HTTP edge bridges them).
///
/// `update_refs(commands, atomic)` applies the ref updates that passed git's checks as
/// signed operations ([`Repositories::update_refs`] with the pusher's key): the
/// use-case layer signs for the caller, so this crate never holds a key.
pub async fn receive_pack<U, F>(
    repos: Arc<Repositories>,
    plans: Arc<super::PlanCache>,
    repo_id: RepoId,
    update_refs: U,
    body: Box<dyn Read + Send>,
    out: Box<dyn Write + Send>,
    max_object_bytes: usize,
) -> Result<PushOutcome, ServeError>
where
    U: FnOnce(Vec<RefCommand>, bool) -> F + Send,
    F: Future<Output = RefResults> + Send,
{
    let push = Push {
        repos,
        plans,
        repo_id,
        max_object_bytes,
        connection: Connection::Stateless,
    };
    push.serve(update_refs, body, out).await
}

/// One push, over either connection ([`receive_pack`] for HTTP,
/// [`receive_pack_stream`](super::stream::receive_pack_stream) for a stream): the
/// same steps, except that a stream starts with the ref advertisement and is never
/// read to its end (see [`Push::read`]).
pub(super) struct Push {
    pub(super) repos: Arc<Repositories>,
    pub(super) plans: Arc<super::PlanCache>,
    pub(super) repo_id: RepoId,
    pub(super) max_object_bytes: usize,
    pub(super) connection: Connection,
}

impl std::fmt::Debug for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Push")
            .field("repo_id", &self.repo_id)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

/// What the blocking first half of a push found.
type Received = (
    ReceiveRequest,
    Result<Option<Ingested>, ServeError>,
    Box<dyn Write + Send>,
);

impl Push {
    pub(super) async fn serve<U, F>(
        self,
        update_refs: U,
        body: Box<dyn Read + Send>,
        out: Box<dyn Write + Send>,
    ) -> Result<PushOutcome, ServeError>
    where
        U: FnOnce(Vec<RefCommand>, bool) -> F + Send,
        F: Future<Output = RefResults> + Send,
    {
        let Push {
            repos,
            plans,
            repo_id,
            max_object_bytes,
            connection,
        } = self;
        let git = repos.git().clone();
        let dir = repo_id.to_string();
        let received = tokio::task::spawn_blocking(move || {
            Self::read(&git, &dir, connection, body, out, max_object_bytes)
        })
        .await
        .map_err(|e| ServeError::Git(format!("receive task failed: {e}")))??;
        let Some((request, ingested, out)) = received else {
            return Ok(PushOutcome::default());
        };
        finish(&repos, plans, repo_id, update_refs, request, ingested, out).await
    }

    /// The blocking first half: on a stream, the advertisement; then the command list
    /// and the pack. `None` when the client had nothing to push (its command list is a
    /// bare flush): git's receive-pack answers nothing then, and neither does this.
    ///
    /// A refused pack is drained over HTTP (a bounded amount) so that the client, still
    /// sending, gets to read the report instead of a reset connection. A stream is not
    /// drained: its client may keep it open while it waits for the report, and git's
    /// send-pack reads the report (side-band) while its pack is still being written.
    fn read(
        git: &guts_storage::GitRepos,
        dir: &str,
        connection: Connection,
        mut body: Box<dyn Read + Send>,
        mut out: Box<dyn Write + Send>,
        max_object_bytes: usize,
    ) -> Result<Option<Received>, ServeError> {
        let repo = git.open_repo(dir)?;
        if connection == Connection::Stateful {
            advertise_on(
                &repo,
                Service::ReceivePack,
                Protocol::V0,
                connection,
                &mut out,
            )?;
            out.flush().map_err(ServeError::Write)?;
        }
        let request = match read_commands(&mut body) {
            Ok(request) => request,
            Err(e) => {
                let _ = pktline::write_err(&mut out, &format!("receive-pack: {e}"));
                let _ = out.flush();
                return Err(e);
            }
        };
        if request.0.commands.is_empty() {
            return Ok(None);
        }
        let ingested = if request.0.expects_pack() {
            let mut pack = BufReader::with_capacity(256 * 1024, request.1.chain(body.by_ref()));
            let ingested = match git.quarantine() {
                Ok(quarantine) => {
                    ingest(&repo, quarantine, &mut pack, max_object_bytes).and_then(|ingested| {
                        if let Some(ingested) = &ingested {
                            repo.install_pack(&ingested.pack, &ingested.index)?;
                        }
                        Ok(ingested)
                    })
                }
                Err(e) => Err(e.into()),
            };
            drop(pack);
            if ingested.is_err() && connection == Connection::Stateless {
                let _ = std::io::copy(&mut body.take(DRAIN_LIMIT), &mut std::io::sink());
            }
            ingested
        } else {
            Ok(None)
        };
        Ok(Some((request.0, ingested, out)))
    }
}

/// The second half of a push: the ref updates, the clone selection's refresh, the
/// report.
async fn finish<U, F>(
    repos: &Repositories,
    plans: Arc<super::PlanCache>,
    repo_id: RepoId,
    update_refs: U,
    request: ReceiveRequest,
    ingested: Result<Option<Ingested>, ServeError>,
    mut out: Box<dyn Write + Send>,
) -> Result<PushOutcome, ServeError>
where
    U: FnOnce(Vec<RefCommand>, bool) -> F + Send,
    F: Future<Output = RefResults> + Send,
{
    let mut outcome = PushOutcome::default();
    let verdicts: Vec<Verdict> = match ingested {
        Err(e) if !matches!(e, ServeError::Refused(_)) && !matches!(e, ServeError::Read(_)) => {
            let message = "unpack failed: internal error".to_owned();
            tracing::error!(error = %e, "receiving a pack failed");
            outcome.unpack_error = Some(message);
            vec![Err("unpacker error".to_owned()); request.commands.len()]
        }
        Err(e) => {
            outcome.unpack_error = Some(e.to_string());
            vec![Err("unpacker error".to_owned()); request.commands.len()]
        }
        Ok(ingested) => {
            if let Some(Ingested { objects, bytes, .. }) = &ingested {
                outcome.pack_objects = *objects;
                outcome.pack_bytes = *bytes;
            }
            apply(repos, repo_id, update_refs, &request).await?
        }
    };
    outcome.updated = verdicts.iter().filter(|v| v.is_ok()).count();
    outcome.refused = verdicts.len() - outcome.updated;
    if outcome.updated > 0 {
        // Before answering, so that a clone right after the push finds its objects
        // selected (see `PlanCache::refresh_clone` for the cost).
        let first_push = request.commands.iter().all(|c| c.old.is_zero());
        let (git, dir, plans) = (repos.git().clone(), repo_id.to_string(), plans.clone());
        let refreshed = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let repo = git.open_repo(&dir)?;
            let key = repo.path().to_string_lossy().into_owned();
            let stored = plans.refresh_clone(&key, &repo, first_push)?;
            tracing::debug!(
                stored,
                ms = started.elapsed().as_millis() as u64,
                "clone selection refreshed"
            );
            Ok::<_, ServeError>(stored)
        })
        .await;
        if let Ok(Err(e)) | Err(e) = refreshed.map_err(|e| ServeError::Git(e.to_string())) {
            tracing::warn!(error = %e, "refreshing the clone selection failed");
        }
    }
    let unpack = outcome.unpack_error.clone();
    tokio::task::spawn_blocking(move || {
        write_report(&mut out, &request, unpack.as_deref(), &verdicts)
    })
    .await
    .map_err(|e| ServeError::Git(format!("report task failed: {e}")))??;
    Ok(outcome)
}

/// Reads until the command list is complete. Returns it and the bytes read past it
/// (the start of the pack).
fn read_commands(
    body: &mut dyn Read,
) -> Result<(ReceiveRequest, std::io::Cursor<Vec<u8>>), ServeError> {
    let mut buf = Vec::new();
    let mut parser = ReceiveParser::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match parser.advance(&buf)? {
            ReceiveStep::Done { request, consumed } => {
                let rest = buf.get(consumed..).unwrap_or_default().to_vec();
                return Ok((request, std::io::Cursor::new(rest)));
            }
            ReceiveStep::NeedMore(next) => parser = next,
        }
        if buf.len() > MAX_COMMANDS_BYTES {
            return Err(ServeError::TooLarge {
                limit: MAX_COMMANDS_BYTES as u64,
            });
        }
        let n = body.read(&mut chunk).map_err(ServeError::Read)?;
        if n == 0 {
            return Err(ServeError::Refused(
                "the command list ended early".to_owned(),
            ));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Checks each command (ref name, objects present, branch tips are commits), then
/// applies the rest as signed operations.
async fn apply<U, F>(
    repos: &Repositories,
    repo_id: RepoId,
    update_refs: U,
    request: &ReceiveRequest,
) -> Result<Vec<Verdict>, ServeError>
where
    U: FnOnce(Vec<RefCommand>, bool) -> F + Send,
    F: Future<Output = RefResults> + Send,
{
    let git = repos.git().clone();
    let dir = repo_id.to_string();
    let commands = request.commands.clone();
    let checks: Vec<Verdict> =
        tokio::task::spawn_blocking(move || -> Result<Vec<Verdict>, ServeError> {
            let repo = git.open_repo(&dir)?;
            Ok(commands
                .iter()
                .map(|c| {
                    if let Err(e) = guts_core::validate_ref_name(&c.name) {
                        return Err(format!("funny refname: {e}"));
                    }
                    if !c.name.starts_with("refs/") {
                        return Err("refusing to update a ref outside refs/".to_owned());
                    }
                    if c.is_delete() {
                        // Clients do not echo `delete-refs`: it is the server's promise.
                        return Ok(());
                    }
                    let kind = repo
                        .gix()
                        .try_find_header(gix::ObjectId::Sha1(*c.new.as_bytes()))
                        .ok()
                        .flatten()
                        .map(|h| h.kind());
                    match kind {
                        None => Err("missing necessary objects".to_owned()),
                        Some(k)
                            if c.name.starts_with("refs/heads/")
                                && k != gix::object::Kind::Commit =>
                        {
                            Err(format!("branch tip is a {k}, not a commit"))
                        }
                        Some(_) => Ok(()),
                    }
                })
                .collect())
        })
        .await
        .map_err(|e| ServeError::Git(format!("check task failed: {e}")))??;

    let atomic = request.caps.atomic;
    if atomic && checks.iter().any(Result::is_err) {
        return Ok(checks
            .into_iter()
            .map(|c| c.and(Err("atomic push failed".to_owned())))
            .collect());
    }
    let to_apply: Vec<(usize, RefCommand)> = request
        .commands
        .iter()
        .enumerate()
        .filter(|(i, _)| checks.get(*i).is_some_and(Result::is_ok))
        .map(|(i, c)| {
            let id = |o: &crate::Oid| (!o.is_zero()).then(|| ObjectId::from_bytes(*o.as_bytes()));
            (
                i,
                RefCommand {
                    name: c.name.clone(),
                    old: id(&c.old),
                    new: id(&c.new),
                },
            )
        })
        .collect();
    let mut verdicts = checks;
    if to_apply.is_empty() {
        return Ok(verdicts);
    }
    let (positions, commands): (Vec<usize>, Vec<RefCommand>) = to_apply.into_iter().unzip();
    let results = update_refs(commands, atomic).await.map_err(|e| match e {
        guts_storage::RepoError::NotFound => ServeError::Refused("repository not found".to_owned()),
        other => ServeError::Storage(other.to_string()),
    })?;
    for (position, result) in positions.into_iter().zip(results) {
        if let Some(slot) = verdicts.get_mut(position) {
            *slot = result.map_err(|r: RefRefusal| r.to_string());
        }
    }
    Ok(verdicts)
}

/// `unpack ok|<error>`, then `ok <ref>` / `ng <ref> <reason>` per command, then a
/// flush; with side-band-64k, all of it inside band-1 packets, and a final flush.
fn write_report(
    out: &mut dyn Write,
    request: &ReceiveRequest,
    unpack: Option<&str>,
    verdicts: &[Verdict],
) -> Result<(), ServeError> {
    if !request.caps.report_status && !request.caps.report_status_v2 {
        if request.caps.side_band_64k {
            pktline::write_flush(out)?;
        }
        out.flush().map_err(ServeError::Write)?;
        return Ok(());
    }
    let mut report = Vec::new();
    let status = match unpack {
        None => "unpack ok".to_owned(),
        Some(e) => format!("unpack {}", sanitize(e)),
    };
    pktline::write_line(&mut report, status.as_bytes())?;
    for (command, verdict) in request.commands.iter().zip(verdicts) {
        let line = match verdict {
            Ok(()) => format!("ok {}", command.name),
            Err(reason) => format!("ng {} {}", command.name, sanitize(reason)),
        };
        pktline::write_line(&mut report, line.as_bytes())?;
    }
    pktline::write_flush(&mut report)?;
    if request.caps.side_band_64k {
        {
            let mut framed = Sideband::new(out, Band::Data, false);
            framed.write_all(&report).map_err(ServeError::Write)?;
            framed.flush().map_err(ServeError::Write)?;
        }
        pktline::write_flush(out)?;
    } else {
        out.write_all(&report).map_err(ServeError::Write)?;
    }
    out.flush().map_err(ServeError::Write)?;
    Ok(())
}

/// One line of printable text (a reason must not break the report's framing).
fn sanitize(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line.chars().take(900).collect()
}
