//! `git-upload-pack` over stateless HTTP: v0 negotiation (`multi_ack_detailed`,
//! `no-done`, shallow updates) and v2 `ls-refs` / `fetch` (acknowledgments,
//! shallow-info, packfile), each answered from one request body.
//!
//! Each request carries the whole negotiation state (the client resends its wants and
//! the haves found common), so nothing is kept between requests.
//!
//! The pieces of an answer (checking wants, finding common haves, the walk request,
//! the shallow update, acknowledgments, the pack) are shared with
//! [`stream`](super::stream), which answers the same messages one at a time on a
//! stateful connection.

use std::collections::HashSet;
use std::io::{Read, Write};

use gix::ObjectId;
use guts_storage::GitRepo;

use super::pack::{PackStats, Sideband, progress, write_pack};
use super::refs::{RefList, ls_refs, v2_capabilities};
use super::walk::{Graph, Plan, PlanCache, WalkRequest, ready};
use super::{Protocol, ServeError, read_capped, to_gix};
use crate::pktline::{self, Band};
use crate::v0::{UploadCapabilities, UploadRequest, parse_upload_request};
use crate::v2::{Command, FetchArgs, Request, parse_request};
use crate::{Deepen, Oid};

/// What a request did, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadOutcome {
    /// `None` when the request ended without a pack (a negotiation round, `ls-refs`).
    pub pack: Option<PackStats>,
}

/// Serves one upload-pack request read from `body` (at most `limit` bytes). Client
/// errors are answered with an `ERR` packet (or a band-3 message once a pack has
/// started) and returned.
pub fn upload_pack(
    repo: &GitRepo,
    plans: &PlanCache,
    protocol: Protocol,
    body: &mut dyn Read,
    out: &mut dyn Write,
    limit: u64,
) -> Result<UploadOutcome, ServeError> {
    let result = read_capped(body, limit).and_then(|body| match protocol {
        Protocol::V0 => upload_v0(repo, plans, &body, out),
        Protocol::V2 => upload_v2(repo, plans, &body, out),
    });
    if let Err(e) = &result {
        report(out, e);
    }
    result
}

/// Tells the client why, if it can still be told anything.
pub(super) fn report(out: &mut dyn Write, e: &ServeError) {
    let message = match e {
        ServeError::Write(_) => return,
        ServeError::Git(_) | ServeError::Storage(_) => "upload-pack: internal error".to_owned(),
        other => format!("upload-pack: {other}"),
    };
    let _ = pktline::write_err(out, &message);
    let _ = out.flush();
}

/// The haves this repository has as commits, in request order, without duplicates.
pub(super) fn common_haves(graph: &mut Graph<'_>, haves: &[Oid]) -> Result<Vec<Oid>, ServeError> {
    let mut seen = HashSet::new();
    let mut common = Vec::new();
    for have in haves {
        if seen.insert(*have) && graph.commit(&to_gix(have))?.is_some() {
            common.push(*have);
        }
    }
    Ok(common)
}

pub(super) fn check_wants(graph: &Graph<'_>, wants: &[Oid]) -> Result<(), ServeError> {
    for want in wants {
        if graph.kind(&to_gix(want))?.is_none() {
            return Err(ServeError::Refused(format!("not our ref {want}")));
        }
    }
    Ok(())
}

fn deepen_not(
    refs: &RefList,
    deepen: Option<&Deepen>,
    graph: &mut Graph<'_>,
) -> Result<Vec<ObjectId>, ServeError> {
    let Some(Deepen::Cut { not, .. }) = deepen else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for rev in not {
        let oid = [
            rev.clone(),
            format!("refs/heads/{rev}"),
            format!("refs/tags/{rev}"),
        ]
        .iter()
        .find_map(|name| refs.target(name))
        .ok_or_else(|| ServeError::Refused(format!("deepen-not: unknown revision {rev}")))?;
        let mut id = to_gix(&oid);
        while graph.kind(&id)? == Some(gix::object::Kind::Tag) {
            id = super::refs::tag_target(graph.repo(), id)?;
        }
        out.push(id);
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn walk_request(
    graph: &mut Graph<'_>,
    refs: &RefList,
    wants: &[Oid],
    common: &[Oid],
    shallows: &[Oid],
    deepen: Option<&Deepen>,
    deepen_relative: bool,
    include_tag: bool,
) -> Result<WalkRequest, ServeError> {
    let mut include_tags = Vec::new();
    if include_tag {
        for (_, oid, peeled) in &refs.refs {
            let Some(peeled) = peeled else { continue };
            // The tag objects between the ref and its target (usually just one).
            let mut chain = vec![*oid];
            let mut id = to_gix(oid);
            for _ in 0..64 {
                id = super::refs::tag_target(graph.repo(), id)?;
                if graph.kind(&id)? != Some(gix::object::Kind::Tag) {
                    break;
                }
                chain.extend(super::from_gix(&id));
            }
            include_tags.push((chain, *peeled));
        }
    }
    Ok(WalkRequest {
        wants: wants.to_vec(),
        common: common.to_vec(),
        client_shallows: shallows.to_vec(),
        deepen: deepen.cloned(),
        deepen_relative,
        deepen_not: deepen_not(refs, deepen, graph)?,
        include_tags,
    })
}

fn upload_v0(
    repo: &GitRepo,
    plans: &PlanCache,
    body: &[u8],
    out: &mut dyn Write,
) -> Result<UploadOutcome, ServeError> {
    let req: UploadRequest = parse_upload_request(body)?;
    if req.wants.is_empty() {
        // Nothing wanted: git's upload-pack ends without a word.
        return Ok(UploadOutcome::default());
    }
    let gix_repo = repo.gix();
    let mut graph = Graph::new(gix_repo);
    check_wants(&graph, &req.wants)?;
    let refs = RefList::read(repo)?;
    let common = common_haves(&mut graph, &req.haves)?;
    let caps = &req.caps;
    let walk = walk_request(
        &mut graph,
        &refs,
        &req.wants,
        &common,
        &req.shallows,
        req.deepen.as_ref(),
        caps.deepen_relative,
        caps.include_tag,
    )?;
    let early: Option<Plan> = match req.deepen {
        // The shallow update opens every answer to a deepen request.
        Some(_) => {
            let plan = timed_plan(repo, plans, &mut graph, &walk)?;
            write_shallow_update(out, &plan.shallow, &plan.unshallow)?;
            Some(plan)
        }
        None => None,
    };
    let last = common.last().copied();
    if !req.done && req.haves.is_empty() {
        // The request ended with its want section (a deepen request's first round):
        // git's server answers only the shallow update. Anything more would be read
        // as the start of the next answer, since remote-curl joins the answers of
        // one negotiation into one stream.
        out.flush().map_err(ServeError::Write)?;
        return Ok(UploadOutcome::default());
    }
    if !req.done {
        let detailed = caps.multi_ack_detailed;
        if caps.multi_ack || detailed {
            for c in &common {
                let suffix: &[u8] = if detailed { b" common" } else { b" continue" };
                write_ack(out, c, suffix)?;
            }
        }
        let is_ready = detailed
            && !common.is_empty()
            && ready(&mut graph, &req.wants, &common.iter().map(to_gix).collect())?;
        if let (true, Some(last)) = (is_ready, last) {
            write_ack(out, &last, b" ready")?;
        }
        pktline::write_line(out, b"NAK")?;
        match (is_ready && caps.no_done, last) {
            (true, Some(last)) => write_ack(out, &last, b"")?,
            _ => {
                out.flush().map_err(ServeError::Write)?;
                return Ok(UploadOutcome::default());
            }
        }
    } else {
        match last {
            Some(last) => write_ack(out, &last, b"")?,
            None => pktline::write_line(out, b"NAK")?,
        }
    }
    let plan = match early {
        Some(plan) => plan,
        None => timed_plan(repo, plans, &mut graph, &walk)?,
    };
    send_v0_pack(gix_repo, plan, caps, out)
}

/// The v0 shallow update: `shallow` and `unshallow` lines, then a flush.
pub(super) fn write_shallow_update(
    out: &mut dyn Write,
    shallow: &[Oid],
    unshallow: &[Oid],
) -> Result<(), ServeError> {
    for id in shallow {
        write_oid_line(out, b"shallow ", id)?;
    }
    for id in unshallow {
        write_oid_line(out, b"unshallow ", id)?;
    }
    pktline::write_flush(out)?;
    Ok(())
}

/// A v0 fetch's pack, framed as its capabilities ask.
pub(super) fn send_v0_pack(
    repo: &gix::Repository,
    plan: Plan,
    caps: &UploadCapabilities,
    out: &mut dyn Write,
) -> Result<UploadOutcome, ServeError> {
    let sideband = caps.side_band_64k || caps.side_band;
    let stats = send_pack(
        repo,
        plan,
        out,
        sideband.then_some(!caps.side_band_64k),
        !caps.no_progress,
    )?;
    Ok(UploadOutcome { pack: Some(stats) })
}

fn upload_v2(
    repo: &GitRepo,
    plans: &PlanCache,
    body: &[u8],
    out: &mut dyn Write,
) -> Result<UploadOutcome, ServeError> {
    let Some((request, _)) = parse_request(body)? else {
        return Err(ServeError::Refused("incomplete request".to_owned()));
    };
    answer_v2(repo, plans, request, out)
}

/// Answers one v2 request: the whole of a stateless exchange, one turn of a stream's.
pub(super) fn answer_v2(
    repo: &GitRepo,
    plans: &PlanCache,
    request: Request,
    out: &mut dyn Write,
) -> Result<UploadOutcome, ServeError> {
    let command = match request {
        Request::End => return Ok(UploadOutcome::default()),
        Request::Command(command) => command.command,
    };
    match command {
        Command::LsRefs(args) => {
            ls_refs(repo, &args, out)?;
            out.flush().map_err(ServeError::Write)?;
            Ok(UploadOutcome::default())
        }
        Command::Fetch(args) => fetch_v2(repo, plans, &args, out),
    }
}

fn fetch_v2(
    repo: &GitRepo,
    plans: &PlanCache,
    args: &FetchArgs,
    out: &mut dyn Write,
) -> Result<UploadOutcome, ServeError> {
    if let Some(feature) = args.unadvertised(&v2_capabilities().fetch.unwrap_or_default()) {
        return Err(ServeError::Refused(format!(
            "unexpected {feature}: not advertised"
        )));
    }
    if !args.want_refs.is_empty() {
        return Err(ServeError::Refused(
            "unexpected want-ref: not advertised".to_owned(),
        ));
    }
    let gix_repo = repo.gix();
    let mut graph = Graph::new(gix_repo);
    check_wants(&graph, &args.wants)?;
    let refs = RefList::read(repo)?;
    let common = common_haves(&mut graph, &args.haves)?;
    if !args.done {
        let is_ready = !common.is_empty()
            && ready(
                &mut graph,
                &args.wants,
                &common.iter().map(to_gix).collect(),
            )?;
        pktline::write_line(out, b"acknowledgments")?;
        if common.is_empty() {
            pktline::write_line(out, b"NAK")?;
        }
        for c in &common {
            write_ack(out, c, b"")?;
        }
        if !is_ready {
            pktline::write_flush(out)?;
            out.flush().map_err(ServeError::Write)?;
            return Ok(UploadOutcome::default());
        }
        pktline::write_line(out, b"ready")?;
        pktline::write_delim(out)?;
    }
    let walk = walk_request(
        &mut graph,
        &refs,
        &args.wants,
        &common,
        &args.shallows,
        args.deepen.as_ref(),
        args.deepen_relative,
        args.include_tag,
    )?;
    let plan = timed_plan(repo, plans, &mut graph, &walk)?;
    if args.deepen.is_some() || !args.shallows.is_empty() {
        pktline::write_line(out, b"shallow-info")?;
        for id in &plan.shallow {
            write_oid_line(out, b"shallow ", id)?;
        }
        for id in &plan.unshallow {
            write_oid_line(out, b"unshallow ", id)?;
        }
        pktline::write_delim(out)?;
    }
    pktline::write_line(out, b"packfile")?;
    let stats = send_pack(gix_repo, plan, out, Some(false), !args.no_progress)?;
    Ok(UploadOutcome { pack: Some(stats) })
}

pub(super) fn timed_plan(
    repo: &GitRepo,
    plans: &PlanCache,
    graph: &mut Graph<'_>,
    walk: &WalkRequest,
) -> Result<Plan, ServeError> {
    let started = std::time::Instant::now();
    let key = repo.path().to_string_lossy();
    let plan = plans.plan(&key, graph, walk)?;
    tracing::debug!(
        commits = plan.commits,
        objects = plan.objects.len(),
        ms = started.elapsed().as_millis() as u64,
        "objects selected"
    );
    Ok(plan)
}

/// Streams the pack: framed on band 1 when `sideband` is `Some(small)`, with progress
/// on band 2 when asked, then a flush; raw otherwise.
pub(super) fn send_pack(
    repo: &gix::Repository,
    plan: Plan,
    out: &mut dyn Write,
    sideband: Option<bool>,
    show_progress: bool,
) -> Result<PackStats, ServeError> {
    let objects = plan.objects.len();
    let started = std::time::Instant::now();
    let stats = match sideband {
        Some(small) => {
            if show_progress {
                progress(out, &format!("Enumerating objects: {objects}, done.\n"))?;
            }
            let stats = {
                let mut framed = Sideband::new(out, Band::Data, small);
                let result = write_pack(repo, plan.objects, &mut framed);
                let flushed = framed.flush().map_err(ServeError::Write);
                let stats = result?;
                flushed?;
                stats
            };
            if show_progress {
                progress(
                    out,
                    &format!(
                        "Total {} (reused {}, recompressed {}), {} bytes\n",
                        stats.objects, stats.copied, stats.recompressed, stats.bytes
                    ),
                )?;
            }
            pktline::write_flush(out)?;
            stats
        }
        None => write_pack(repo, plan.objects, out)?,
    };
    out.flush().map_err(ServeError::Write)?;
    tracing::debug!(
        objects,
        bytes = stats.bytes,
        reused = stats.copied,
        recompressed = stats.recompressed,
        ms = started.elapsed().as_millis() as u64,
        "pack sent"
    );
    Ok(stats)
}

pub(super) fn write_oid_line(
    out: &mut dyn Write,
    prefix: &[u8],
    id: &Oid,
) -> Result<(), ServeError> {
    let mut line = Vec::with_capacity(prefix.len() + 41);
    line.extend_from_slice(prefix);
    line.extend_from_slice(&id.to_hex());
    pktline::write_line(out, &line)?;
    Ok(())
}

pub(super) fn write_ack(out: &mut dyn Write, id: &Oid, suffix: &[u8]) -> Result<(), ServeError> {
    let mut line = Vec::with_capacity(4 + 40 + suffix.len());
    line.extend_from_slice(b"ACK ");
    line.extend_from_slice(&id.to_hex());
    line.extend_from_slice(suffix);
    pktline::write_line(out, &line)?;
    Ok(())
}
