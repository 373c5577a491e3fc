//! Packs in transit, on disk in the scratch directory: outgoing packs kept for a while
//! so a transfer that broke off resumes on the same bytes, and incoming downloads
//! appended chunk by chunk (in order: see `fetch.rs`). Memory holds chunks, never a pack.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use guts_core::{ObjectId, RepoId};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use crate::replica::{Replica, ReplicaError};

/// How long an outgoing pack is kept after it was last asked for.
const KEEP: Duration = Duration::from_secs(600);
/// Most outgoing packs kept at once; the least recently used goes first.
const MAX_OUTGOING: usize = 32;

/// One outgoing pack: its file and when it was last asked for, `None` until it has
/// been generated. Locked while generated, so concurrent requests generate it once.
type Slot = Arc<tokio::sync::Mutex<Option<(PathBuf, Instant)>>>;

/// The scratch directory's packs.
#[derive(Debug)]
pub struct PackCache {
    dir: PathBuf,
    /// Outgoing packs by request key: path and last use. A per-key async lock makes
    /// concurrent requests for one pack generate it once.
    outgoing: Mutex<HashMap<[u8; 32], Slot>>,
}

impl PackCache {
    /// Opens (and empties: nothing in it outlives a restart) the scratch directory.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir.join("out"))?;
        std::fs::create_dir_all(dir.join("in"))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            outgoing: Mutex::new(HashMap::new()),
        })
    }

    /// The pack of `wants` minus `haves`, generated on first request and kept for
    /// resumed transfers.
    pub(super) async fn outgoing<R: Replica>(
        &self,
        replica: &R,
        repo: RepoId,
        mut wants: Vec<ObjectId>,
        mut haves: Vec<ObjectId>,
    ) -> Result<PathBuf, ReplicaError> {
        wants.sort();
        wants.dedup();
        haves.sort();
        haves.dedup();
        let key = request_key(repo, &wants, &haves);
        let slot = {
            let mut map = self
                .outgoing
                .lock()
                .map_err(|_| ReplicaError::Internal("pack cache poisoned".to_owned()))?;
            map.entry(key).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some((path, used)) = slot.as_mut()
            && path.exists()
        {
            *used = Instant::now();
            return Ok(path.clone());
        }
        let path = self.dir.join("out").join(format!("{}.pack", hex(&key)));
        let _ = tokio::fs::remove_file(&path).await;
        replica.write_pack(repo, wants, haves, &path).await?;
        *slot = Some((path.clone(), Instant::now()));
        drop(slot);
        self.trim();
        Ok(path)
    }

    /// Drops outgoing packs not asked for within [`KEEP`].
    pub(super) fn expire(&self) {
        let Ok(mut map) = self.outgoing.lock() else {
            return;
        };
        map.retain(|_, slot| match slot.try_lock() {
            Ok(guard) => match guard.as_ref() {
                Some((path, used)) if used.elapsed() > KEEP => {
                    let _ = std::fs::remove_file(path);
                    false
                }
                Some(_) => true,
                None => false,
            },
            // Being generated or served right now.
            Err(_) => true,
        });
    }

    /// Keeps at most [`MAX_OUTGOING`] packs.
    fn trim(&self) {
        let Ok(mut map) = self.outgoing.lock() else {
            return;
        };
        while map.len() > MAX_OUTGOING {
            let oldest = map
                .iter()
                .filter_map(|(key, slot)| {
                    slot.try_lock()
                        .ok()
                        .and_then(|g| g.as_ref().map(|(_, used)| (*key, *used)))
                })
                .min_by_key(|(_, used)| *used)
                .map(|(key, _)| key);
            let Some(key) = oldest else { break };
            if let Some(slot) = map.remove(&key)
                && let Ok(guard) = slot.try_lock()
                && let Some((path, _)) = guard.as_ref()
            {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// A new incoming download.
    pub(super) fn download(&self) -> std::io::Result<Download> {
        let name = format!("{:016x}.pack", rand::random::<u64>());
        Ok(Download {
            path: self.dir.join("in").join(name),
            file: None,
            len: 0,
        })
    }
}

/// An incoming pack being written.
#[derive(Debug)]
pub(super) struct Download {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    len: u64,
}

impl Download {
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    pub(super) async fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(tokio::fs::File::create(&self.path).await?);
        }
        if let Some(file) = self.file.as_mut() {
            file.write_all(data).await?;
        }
        self.len += data.len() as u64;
        Ok(())
    }

    /// Starts over (the responder's pack changed).
    pub(super) async fn restart(&mut self) -> std::io::Result<()> {
        self.file = Some(tokio::fs::File::create(&self.path).await?);
        self.len = 0;
        Ok(())
    }

    /// The complete pack's path; the caller removes it after use.
    pub(super) async fn finish(mut self) -> std::io::Result<PathBuf> {
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
        } else {
            tokio::fs::File::create(&self.path).await?;
        }
        Ok(std::mem::take(&mut self.path))
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Up to `max` bytes of the file at `offset`, and the file's length. An offset past
/// the end is `InvalidInput`.
pub(super) async fn read_chunk(
    path: &Path,
    offset: u64,
    max: usize,
) -> std::io::Result<(Vec<u8>, u64)> {
    let mut file = tokio::fs::File::open(path).await?;
    let total = file.metadata().await?.len();
    if offset > total {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "offset past the end",
        ));
    }
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let want = usize::try_from(total - offset).unwrap_or(max).min(max);
    let mut data = vec![0; want];
    file.read_exact(&mut data).await?;
    Ok((data, total))
}

fn request_key(repo: RepoId, wants: &[ObjectId], haves: &[ObjectId]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("guts/p2p-pack-request/v1");
    hasher.update(repo.as_bytes());
    hasher.update(&(wants.len() as u64).to_be_bytes());
    for id in wants {
        hasher.update(id.as_bytes());
    }
    for id in haves {
        hasher.update(id.as_bytes());
    }
    *hasher.finalize().as_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
