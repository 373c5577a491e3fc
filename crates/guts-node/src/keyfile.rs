//! Secrets generated on first start and kept in the data directory: the node key
//! (`node.key`) and, for a single node, the cluster secret (`cluster.secret`). Each is
//! 64 hex characters and a newline, mode 0600, written atomically (temp file, fsync,
//! rename, fsync of the directory) so a crash during the first start never leaves a
//! truncated secret behind.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use guts_core::{KeyParseError, Keypair};
use guts_ops::Secret;

pub const KEY_FILE: &str = "node.key";
pub const CLUSTER_SECRET_FILE: &str = "cluster.secret";

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read node key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("node key {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: KeyParseError,
    },
    #[error("cannot write node key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("GUTS_PRIVATE_KEY is invalid: {0}")]
    Configured(KeyParseError),
}

/// Where the node's key came from, for the start-up log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Configured,
    Loaded,
    Generated,
}

/// The configured key if there is one; else the key file, created on first start.
pub fn load_or_create(
    configured: Option<&Secret<String>>,
    data_dir: &Path,
) -> Result<(Keypair, KeySource), KeyFileError> {
    if let Some(hex) = configured {
        let key = Keypair::from_hex(hex.expose()).map_err(KeyFileError::Configured)?;
        return Ok((key, KeySource::Configured));
    }
    let path = data_dir.join(KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            warn_if_readable_by_others(&path);
            let key = Keypair::from_hex(&text).map_err(|source| KeyFileError::Corrupt {
                path: path.clone(),
                source,
            })?;
            Ok((key, KeySource::Loaded))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate();
            write_atomically(&path, key.seed_hex().as_bytes())
                .map_err(|source| KeyFileError::Write { path, source })?;
            Ok((key, KeySource::Generated))
        }
        Err(source) => Err(KeyFileError::Read { path, source }),
    }
}

/// The configured cluster secret's bytes if there is one; else `cluster.secret`,
/// created with 32 random bytes on first start. A node that generates its own secret
/// is a cluster of one: another node cannot open its users' keys.
pub fn cluster_secret(
    configured: Option<&Secret<String>>,
    data_dir: &Path,
) -> Result<Secret<Vec<u8>>, KeyFileError> {
    if let Some(secret) = configured {
        return Ok(Secret::new(secret.expose().as_bytes().to_vec()));
    }
    let path = data_dir.join(CLUSTER_SECRET_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            warn_if_readable_by_others(&path);
            let text = text.trim();
            if text.len() < 32 {
                return Err(KeyFileError::Corrupt {
                    path,
                    source: KeyParseError::WrongHexLength {
                        expected: 64,
                        found: text.len(),
                    },
                });
            }
            Ok(Secret::new(text.as_bytes().to_vec()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let random: [u8; 32] = rand::random();
            let text = hex::encode(random);
            write_atomically(&path, text.as_bytes())
                .map_err(|source| KeyFileError::Write { path, source })?;
            Ok(Secret::new(text.into_bytes()))
        }
        Err(source) => Err(KeyFileError::Read { path, source }),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "node key is readable by other users; chmod 600 it");
        }
    }
}

fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("secret");
    let tmp = dir.join(format!("{name}.tmp"));
    let _ = fs::remove_file(&tmp);
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = load_or_create(None, dir.path()).unwrap();
        assert_eq!(source, KeySource::Generated);
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, source) = load_or_create(None, dir.path()).unwrap();
        assert_eq!(source, KeySource::Loaded);
        assert_eq!(first.public(), second.public());
        assert!(!dir.path().join("node.key.tmp").exists());
    }

    #[test]
    fn cluster_secret_is_generated_once_or_taken_from_config() {
        let dir = tempfile::tempdir().unwrap();
        let first = cluster_secret(None, dir.path()).unwrap();
        assert_eq!(first.expose().len(), 64);
        let mode = fs::metadata(dir.path().join(CLUSTER_SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(cluster_secret(None, dir.path()).unwrap(), first);
        let configured = Secret::new("x".repeat(40));
        assert_eq!(
            cluster_secret(Some(&configured), dir.path())
                .unwrap()
                .expose(),
            &"x".repeat(40).into_bytes()
        );
    }

    /// Backups copy the secrets by name: they must be these files.
    #[test]
    fn backups_know_the_secret_file_names() {
        assert_eq!(
            guts_storage::backup::KEY_FILES,
            [KEY_FILE, CLUSTER_SECRET_FILE]
        );
    }

    #[test]
    fn configured_key_wins_and_corrupt_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let hex = Secret::new("11".repeat(32));
        let (key, source) = load_or_create(Some(&hex), dir.path()).unwrap();
        assert_eq!(source, KeySource::Configured);
        assert_eq!(key.seed_hex().as_str(), hex.expose());
        assert!(!dir.path().join(KEY_FILE).exists());

        fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        let err = load_or_create(None, dir.path()).unwrap_err().to_string();
        assert!(err.contains("node.key") && err.contains("corrupt"), "{err}");
    }
}
