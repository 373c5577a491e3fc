//! Pack maintenance: consolidating the packs that pushes leave behind.
//!
//! Every push adds one pack. Serving stays correct with any number of them, but gix
//! copies a stored delta only when its base is in the same pack and computes no new
//! deltas, so objects whose bases sit in other packs are sent whole, and each pack
//! costs a lookup. Once a repository holds [`PACK_THRESHOLD`] packs, it is repacked
//! with git's own delta search (`git repack -a -d -k`), when a `git` binary is
//! available: delta compression is git's craft, and reimplementing it is not worth
//! the risk. `-k` keeps unreachable objects, so a push whose pack is installed but
//! whose refs are not yet moved can never lose objects to a concurrent repack; packs
//! installed after the repack started are left alone by git.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::StoreError;
use crate::git::GitRepos;

/// Packs at which a repository is consolidated.
pub const PACK_THRESHOLD: usize = 16;

/// The `git` binary to repack with, if one runs here.
pub fn find_git() -> Option<PathBuf> {
    let ok = Command::new("git")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| PathBuf::from("git"))
}

impl GitRepos {
    /// Number of packs in the repository.
    pub fn pack_count(&self, id_hex: &str) -> usize {
        let dir = self.path(id_hex).join("objects").join("pack");
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// Consolidates the repository at `path` into one pack (blocking; minutes on a large
/// repository).
pub fn repack(git: &Path, path: &Path) -> Result<(), StoreError> {
    let output = Command::new(git)
        .arg("-C")
        .arg(path)
        .args(["-c", "gc.auto=0", "-c", "repack.writeBitmaps=false"])
        .args(["repack", "-a", "-d", "-k", "-q"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(StoreError::Git {
            path: path.to_path_buf(),
            reason: format!(
                "git repack failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })
    }
}
