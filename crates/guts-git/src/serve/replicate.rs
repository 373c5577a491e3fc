//! Packs between peers: the objects a peer lacks, written as a plain pack (no
//! side-band: the p2p layer chunks it), and a pack received from a peer, verified and
//! installed exactly as a pushed one is.

use std::io::{BufReader, Write};
use std::path::Path;

use guts_storage::{GitRepo, GitRepos};

use super::ServeError;
use super::pack::{PackStats, write_pack, write_stored};
use super::packs::PackSet;
use super::walk::{Graph, WalkRequest, plan};
use crate::Oid;

/// Writes a pack for a peer to `out`: every object reachable from `wants` and not
/// from `haves`. Haves this repository lacks are ignored (the peer may know commits
/// this node does not); a want it lacks is an error.
///
/// When the peer has none of this repository's commits (a node catching up, a
/// repository new to it), the pack is every object stored here, copied entry by
/// entry from the stored packs with their deltas: no commit or tree is inflated to
/// find what is reachable, which was half the CPU of a catch-up on both ends
/// together. What this may send beyond the reachable objects (those a force push
/// left behind) are objects of the same repository, which any reader could fetch by
/// id anyway, and each arrived connected (every pack installed here passed the
/// connectivity check, and repacks keep unreachable objects), so the peer's own check
/// passes. A repository stored as one pack and nothing else sends that pack as it is.
/// With common commits, the walk sends only what the peer lacks.
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
    let stats = if common.is_empty() && !wants.is_empty() {
        let db = PackSet::open(gix)?;
        match db.sole_pack()? {
            Some((pack, objects)) => {
                out.write_all(pack).map_err(ServeError::Write)?;
                PackStats {
                    objects,
                    bytes: pack.len() as u64,
                    copied: objects,
                    recompressed: 0,
                }
            }
            None => write_stored(db, out)?,
        }
    } else {
        let request = WalkRequest {
            wants: wants.iter().map(|w| Oid::from_bytes(*w)).collect(),
            common,
            ..WalkRequest::default()
        };
        let mut graph = Graph::new(gix);
        let plan = plan(&mut graph, &request)?;
        write_pack(gix, plan.objects, out)?
    };
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
