//! The SSH host key: one ed25519 key per cluster, from the seed guts-storage derives
//! from the cluster secret (`Sealer::ssh_host_seed`). Every node of a cluster builds
//! the same key, so a client behind a Kubernetes Service sees one host key whichever
//! pod answers, and across restarts.

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{HashAlg, PrivateKey};
use zeroize::Zeroizing;

/// The cluster's host key.
#[derive(Clone)]
pub struct HostKey {
    key: PrivateKey,
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostKey({})", self.fingerprint())
    }
}

impl HostKey {
    pub fn from_seed(seed: &Zeroizing<[u8; 32]>) -> HostKey {
        HostKey {
            key: PrivateKey::from(Ed25519Keypair::from_seed(seed)),
        }
    }

    /// `SHA256:…`, as `ssh` prints it when it first meets the host.
    pub fn fingerprint(&self) -> String {
        self.key
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }

    /// `ssh-ed25519 AAAA…`: the key as a `known_hosts` line wants it after the host.
    pub fn public_openssh(&self) -> String {
        self.key
            .public_key()
            .to_openssh()
            .unwrap_or_else(|_| String::from("(unencodable)"))
    }

    pub(crate) fn private(&self) -> &PrivateKey {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_one_key() {
        let a = HostKey::from_seed(&Zeroizing::new([7; 32]));
        let b = HostKey::from_seed(&Zeroizing::new([7; 32]));
        let c = HostKey::from_seed(&Zeroizing::new([8; 32]));
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert!(a.fingerprint().starts_with("SHA256:"));
        assert!(a.public_openssh().starts_with("ssh-ed25519 AAAA"));
    }
}
