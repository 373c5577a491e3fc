//! Packs between peers: the objects a peer lacks, written as a plain pack (no
//! side-band: the p2p layer chunks it), and a pack received from a peer, verified and
//! installed exactly as a pushed one is.

use std::io::{BufReader, Write};
use std::path::Path;

use guts_storage::{GitRepo, GitRepos};

use super::ServeError;
use super::pack::{PackStats, write_pack};
use super::walk::{Graph, WalkRequest, plan};
use crate::Oid;

/// Writes a pack of every object reachable from `wants` and not from `haves` to
/// `out`. Haves this repository lacks are ignored (the peer may know commits this node
/// does not); a want it lacks is an error.
pub fn pack_for_peer(
    repo: &GitRepo,
    wants: &[[u8; 20]],
    haves: &[[u8; 20]],
    out: &mut dyn Write,
) -> Result<PackStats, ServeError> {
    let gix = repo.gix();
    for want in wants {
        if !repo.has_object(want) {
            return Err(ServeError::Refused(format!(
                "object {} is not here",
                Oid::from_bytes(*want)
            )));
        }
    }
    let common: Vec<Oid> = haves
        .iter()
        .filter(|h| repo.has_object(h))
        .map(|h| Oid::from_bytes(*h))
        .collect();
    let request = WalkRequest {
        wants: wants.iter().map(|w| Oid::from_bytes(*w)).collect(),
        common,
        ..WalkRequest::default()
    };
    let mut graph = Graph::new(gix);
    let plan = plan(&mut graph, &request)?;
    let stats = write_pack(gix, plan.objects, out)?;
    out.flush().map_err(ServeError::Write)?;
    Ok(stats)
}

/// Verifies the pack at `path` (every object's checksum, thin-pack completion, and
/// connectivity with the repository) in a quarantine and installs it. Returns the
/// number of objects installed.
pub fn ingest_file(
    git: &GitRepos,
    repo: &GitRepo,
    path: &Path,
    max_object_bytes: usize,
) -> Result<u32, ServeError> {
    let file = std::fs::File::open(path).map_err(ServeError::Read)?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let quarantine = git.quarantine()?;
    match super::ingest::ingest(repo, quarantine, &mut reader, max_object_bytes)? {
        Some(ingested) => {
            repo.install_pack(&ingested.pack, &ingested.index)?;
            Ok(ingested.objects)
        }
        None => Ok(0),
    }
}
