//! git's smart protocol over one full-duplex stream, as git over SSH runs it: one
//! stream per command (`git-upload-pack '<path>'`, `git-receive-pack '<path>'`), the
//! server speaking first.
//!
//! The HTTP entry points answer one request body each; here one call serves a whole
//! session, and the differences are git's own (upload-pack.c and receive-pack.c run
//! without `--stateless-rpc`):
//! - the advertisement has no `# service=` preamble and no `no-done`
//!   ([`advertise_on`] with [`Connection::Stateful`]);
//! - v0 negotiation is stateful: the want section comes once, the shallow update is
//!   answered right after it, and each round of haves (ended by a flush) is answered on
//!   its own, the server remembering the common commits across rounds (the client does
//!   not repeat them), until `done`;
//! - v2 is a loop of the same stateless commands HTTP answers, until a bare flush or
//!   the end of the stream.
//!
//! The client pipelines: it may send round N+1 before reading the answer to round N.
//! So input is read one message at a time ([`SectionReader`], which never reads past a
//! complete message) and every answer is flushed before the next message is read: the
//! server never waits for the client while it holds output the client is waiting for.
//! Caps: each message at most [`crate::section::MAX_SECTION_BYTES`], a session at most
//! [`crate::section::MAX_SECTIONS`] messages and [`MAX_SESSION_HAVES`] haves, each list in a
//! message as the parsers cap it.
//!
//! Architecture invariant, as for the rest of `serve`: no transport. The SSH edge
//! authenticates, resolves the path and hands in a blocking [`Read`] and [`Write`].

use std::future::Future;
use std::io::{Read, Write};
use std::sync::Arc;

use gix::ObjectId;
use gix::hashtable::HashSet;
use guts_core::RepoId;
use guts_storage::{GitRepo, RefCommand, Repositories};

use super::pack::PackStats;
use super::receive::{Push, PushOutcome, RefResults};
use super::refs::{Connection, RefList, advertise_on};
use super::upload::{
    UploadOutcome, answer_v2, check_wants, common_haves, report, send_v0_pack, timed_plan,
    walk_request, write_ack, write_shallow_update,
};
use super::walk::{Graph, PlanCache, ready, shallow_update};
use super::{Protocol, ServeError, to_gix};
use crate::Oid;
use crate::pktline;
use crate::section::{Limits, SectionEnd, SectionError, SectionReader};
use crate::v0::{Service, UploadCapabilities, parse_have_round, parse_upload_request};
use crate::v2::parse_request;

/// Most haves one v0 session may send, over all its rounds: each costs a lookup (and
/// may extend the "ready" walk). A client with a million commits and nothing in common
/// sends each once; four times that is no client's.
pub const MAX_SESSION_HAVES: usize = 4_000_000;

/// Serves `git-upload-pack` on a full-duplex stream (SSH): advertisement first, then v0
/// stateful negotiation or the v2 command loop, until the client ends. Client errors
/// are answered in band (ERR packet) and returned.
///
/// The outcome is the session's: in v2 a client may fetch more than once on one
/// stream, and then `pack` sums every pack sent.
pub fn upload_pack_stream(
    repo: &GitRepo,
    plans: &PlanCache,
    protocol: Protocol,
    input: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<UploadOutcome, ServeError> {
    let mut reader = SectionReader::new(input, Limits::default());
    let result = match protocol {
        Protocol::V0 => upload_v0(repo, plans, &mut reader, out),
        Protocol::V2 => upload_v2(repo, plans, &mut reader, out),
    };
    if let Err(e) = &result {
        report(out, e);
    }
    result
}

/// Serves `git-receive-pack` on a full-duplex stream: writes the v0 ref advertisement
/// (blocking part on the blocking pool, like receive_pack does), then reads the command
/// list and pack from `input` and writes the report to `out`, exactly as
/// [`receive_pack`](super::receive_pack) does for HTTP. A client with nothing to push
/// sends only a flush-pkt: answer nothing and return Ok.
///
/// Nothing is read past what the push needs: a delete-only push sends no pack and
/// waits for the report with the stream open, and the end of the pack is where the
/// report follows, whether or not the client has closed its side.
pub async fn receive_pack_stream<U, F>(
    repos: Arc<Repositories>,
    plans: Arc<PlanCache>,
    repo_id: RepoId,
    update_refs: U,
    input: Box<dyn Read + Send>,
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
        connection: Connection::Stateful,
    };
    push.serve(update_refs, input, out).await
}

/// The next message; `None` when the client closed the stream between messages.
fn next_section<'r>(
    reader: &'r mut SectionReader<&mut dyn Read>,
    end: SectionEnd,
) -> Result<Option<&'r [u8]>, ServeError> {
    reader.next_section(end).map_err(|e| match e {
        SectionError::Io(io) => ServeError::Read(io),
        SectionError::Pkt(pkt) => ServeError::Parse(pkt.into()),
        SectionError::TooLarge { limit } => ServeError::TooLarge {
            limit: limit as u64,
        },
        other @ (SectionError::TooMany { .. } | SectionError::Truncated) => {
            ServeError::Refused(other.to_string())
        }
    })
}

fn flush(out: &mut dyn Write) -> Result<(), ServeError> {
    out.flush().map_err(ServeError::Write)
}

fn upload_v0(
    repo: &GitRepo,
    plans: &PlanCache,
    reader: &mut SectionReader<&mut dyn Read>,
    out: &mut dyn Write,
) -> Result<UploadOutcome, ServeError> {
    advertise_on(
        repo,
        Service::UploadPack,
        Protocol::V0,
        Connection::Stateful,
        out,
    )?;
    flush(out)?;
    // The want section. Closing the stream instead, or sending a bare flush, is how a
    // client that wants nothing ends (`git ls-remote`, an up-to-date fetch).
    let Some(section) = next_section(reader, SectionEnd::Flush)? else {
        return Ok(UploadOutcome::default());
    };
    let request = parse_upload_request(section)?;
    if request.wants.is_empty() {
        return Ok(UploadOutcome::default());
    }
    let gix_repo = repo.gix();
    let mut graph = Graph::new(gix_repo);
    check_wants(&graph, &request.wants)?;
    let refs = RefList::read(repo)?;
    let caps = &request.caps;
    let mut walk = walk_request(
        &mut graph,
        &refs,
        &request.wants,
        &[],
        &request.shallows,
        request.deepen.as_ref(),
        caps.deepen_relative,
        caps.include_tag,
    )?;
    if request.deepen.is_some() {
        // Answered now, before any have: git's fetch-pack reads it before it starts
        // negotiating. The pack, selected after negotiation, has the same boundary.
        let (shallow, unshallow) = shallow_update(&mut graph, &walk)?;
        write_shallow_update(out, &shallow, &unshallow)?;
        flush(out)?;
    }
    let mut negotiation = Negotiation::new(caps);
    loop {
        let Some(section) = next_section(reader, SectionEnd::FlushOrDone)? else {
            // The client left during negotiation (it found it needs nothing after all,
            // or gave up): nothing to send.
            return Ok(UploadOutcome::default());
        };
        let round = parse_have_round(section)?;
        let pack_now =
            negotiation.round(&mut graph, &request.wants, &round.haves, round.done, out)?;
        if pack_now {
            break;
        }
        flush(out)?;
    }
    walk.common = negotiation.common;
    let plan = timed_plan(repo, plans, &mut graph, &walk)?;
    send_v0_pack(gix_repo, plan, caps, out)
}

/// How a v0 client wants its haves acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MultiAck {
    /// `ACK <id>` for the first common commit only.
    Off,
    /// `ACK <id> continue` for each.
    Continue,
    /// `ACK <id> common` for each, `ACK <id> ready` once the pack can be cut.
    Detailed,
}

/// The state of a stateful v0 negotiation: git's `get_common_commits`, answering one
/// round at a time and remembering what was found common.
#[derive(Debug)]
struct Negotiation {
    multi_ack: MultiAck,
    no_done: bool,
    /// The common commits, in the order found (the last is what `ACK` names).
    common: Vec<Oid>,
    known: HashSet<ObjectId>,
    /// Every want reaches a common commit (recomputed only when `common` grows, until
    /// it holds).
    ready: bool,
    haves: usize,
}

impl Negotiation {
    fn new(caps: &UploadCapabilities) -> Self {
        let multi_ack = match (caps.multi_ack_detailed, caps.multi_ack) {
            (true, _) => MultiAck::Detailed,
            (false, true) => MultiAck::Continue,
            (false, false) => MultiAck::Off,
        };
        Negotiation {
            multi_ack,
            no_done: caps.no_done,
            common: Vec::new(),
            known: HashSet::default(),
            ready: false,
            haves: 0,
        }
    }

    /// Answers one round (its haves, then its flush or `done`); `true` when the pack
    /// is to follow right away.
    fn round(
        &mut self,
        graph: &mut Graph<'_>,
        wants: &[Oid],
        haves: &[Oid],
        done: bool,
        out: &mut dyn Write,
    ) -> Result<bool, ServeError> {
        self.haves = self.haves.saturating_add(haves.len());
        if self.haves > MAX_SESSION_HAVES {
            return Err(ServeError::Refused(format!(
                "more than {MAX_SESSION_HAVES} haves in one session"
            )));
        }
        let mut grew = false;
        for c in common_haves(graph, haves)? {
            if !self.known.insert(to_gix(&c)) {
                continue;
            }
            grew = true;
            self.common.push(c);
            match self.multi_ack {
                MultiAck::Detailed => write_ack(out, &c, b" common")?,
                MultiAck::Continue => write_ack(out, &c, b" continue")?,
                MultiAck::Off if self.common.len() == 1 => write_ack(out, &c, b"")?,
                MultiAck::Off => {}
            }
        }
        let last = self.common.last().copied();
        if done {
            match last {
                Some(last) if self.multi_ack != MultiAck::Off => write_ack(out, &last, b"")?,
                Some(_) => {}
                None => pktline::write_line(out, b"NAK")?,
            }
            return Ok(true);
        }
        // More common commits never make a ready negotiation unready (the cut-off only
        // moves back), so the walk runs only until it first succeeds.
        if grew && !self.ready && self.multi_ack == MultiAck::Detailed {
            self.ready = ready(graph, wants, &self.known)?;
        }
        let sent_ready = match last {
            Some(last) if self.ready => {
                write_ack(out, &last, b" ready")?;
                true
            }
            _ => false,
        };
        if last.is_none() || self.multi_ack != MultiAck::Off {
            pktline::write_line(out, b"NAK")?;
        }
        match last {
            Some(last) if sent_ready && self.no_done => {
                write_ack(out, &last, b"")?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

fn upload_v2(
    repo: &GitRepo,
    plans: &PlanCache,
    reader: &mut SectionReader<&mut dyn Read>,
    out: &mut dyn Write,
) -> Result<UploadOutcome, ServeError> {
    advertise_on(
        repo,
        Service::UploadPack,
        Protocol::V2,
        Connection::Stateful,
        out,
    )?;
    flush(out)?;
    let mut session = UploadOutcome::default();
    while let Some(section) = next_section(reader, SectionEnd::Flush)? {
        // A section ends at the first flush, which is where a request ends.
        let Some((request, _)) = parse_request(section)? else {
            return Err(ServeError::Refused("incomplete request".to_owned()));
        };
        if request == crate::v2::Request::End {
            break;
        }
        let outcome = answer_v2(repo, plans, request, out)?;
        flush(out)?;
        session.pack = match (session.pack, outcome.pack) {
            (Some(a), Some(b)) => Some(add(a, b)),
            (a, b) => a.or(b),
        };
    }
    Ok(session)
}

fn add(a: PackStats, b: PackStats) -> PackStats {
    PackStats {
        objects: a.objects.saturating_add(b.objects),
        bytes: a.bytes.saturating_add(b.bytes),
        copied: a.copied.saturating_add(b.copied),
        recompressed: a.recompressed.saturating_add(b.recompressed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_pack_stats_add_up() {
        let a = PackStats {
            objects: 1,
            bytes: 10,
            copied: 1,
            recompressed: 0,
        };
        let b = PackStats {
            objects: 2,
            bytes: 5,
            copied: 0,
            recompressed: 2,
        };
        let sum = add(a, b);
        assert_eq!(
            (sum.objects, sum.bytes, sum.copied, sum.recompressed),
            (3, 15, 1, 2)
        );
    }

    #[test]
    fn section_errors_are_client_errors() {
        for bytes in [&b"0009have"[..], b"0003", b"zzzz", b"00"] {
            let mut slice = bytes;
            let input: &mut dyn Read = &mut slice;
            let mut reader = SectionReader::new(input, Limits::default());
            let e = next_section(&mut reader, SectionEnd::Flush).unwrap_err();
            assert!(e.is_client_error(), "{e}");
        }
    }
}
