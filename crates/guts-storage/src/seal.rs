//! Sealing custodial secrets with the cluster secret (DESIGN.md section 3): user keys are
//! stored encrypted, so a copied data directory or a peer of another cluster holds
//! nothing it can sign with.
//!
//! XChaCha20-Poly1305 with a random 24-byte nonce per seal (large enough that random
//! nonces never collide in practice), a key derived from the cluster secret with BLAKE3's
//! key-derivation mode, and the owner's login as associated data so a sealed key cannot
//! be moved to another account.
//!
//! Pages of replicated account records ([`crate::accounts::sync`]) are sealed the same way
//! but with a key of their own (another derivation context) and the page format's name
//! as associated data: a sealed custodial key never opens as a page, nor a page as a
//! key. The accounts digest is keyed by a third derived key, so it tells a peer of
//! another cluster nothing.

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

const CONTEXT: &str = "guts 2026 cluster secret -> custodial key sealing v1";
const PAGE_CONTEXT: &str = "guts 2026 cluster secret -> account page sealing v1";
const DIGEST_CONTEXT: &str = "guts 2026 cluster secret -> account digest v1";
const ORG_KEY_CONTEXT: &str = "guts 2026 cluster secret -> organization signing key v1";
const SSH_HOST_CONTEXT: &str = "guts 2026 cluster secret -> ssh host key v1";
const NONCE_LEN: usize = 24;
/// Bytes a seal adds to its plaintext: the nonce and the Poly1305 tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed data is truncated")]
    Truncated,
    #[error("sealed data does not open with this cluster secret")]
    WrongSecret,
    #[error("sealing failed")]
    Seal,
}

/// The keys derived from the cluster secret. Never printed.
pub struct Sealer {
    /// Custodial user keys.
    cipher: XChaCha20Poly1305,
    /// Pages of replicated account records.
    pages: XChaCha20Poly1305,
    /// Keys the accounts digest.
    digest_key: Zeroizing<[u8; 32]>,
    /// Keys the derivation of organizations' signing keys.
    org_key: Zeroizing<[u8; 32]>,
    /// Seed of the cluster's SSH host key.
    ssh_host_seed: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    pub fn new(cluster_secret: &[u8]) -> Sealer {
        let cipher = |context: &str| {
            let derived = Zeroizing::new(blake3::derive_key(context, cluster_secret));
            XChaCha20Poly1305::new(&Key::from(*derived))
        };
        Sealer {
            cipher: cipher(CONTEXT),
            pages: cipher(PAGE_CONTEXT),
            digest_key: Zeroizing::new(blake3::derive_key(DIGEST_CONTEXT, cluster_secret)),
            org_key: Zeroizing::new(blake3::derive_key(ORG_KEY_CONTEXT, cluster_secret)),
            ssh_host_seed: Zeroizing::new(blake3::derive_key(SSH_HOST_CONTEXT, cluster_secret)),
        }
    }

    /// Seals a custodial key bound to its owner's lowercase login:
    /// `nonce || ciphertext+tag`.
    pub fn seal(&self, plaintext: &[u8], bound_to: &str) -> Result<Vec<u8>, SealError> {
        seal_with(&self.cipher, plaintext, bound_to.as_bytes())
    }

    pub fn open(&self, sealed: &[u8], bound_to: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        open_with(&self.cipher, sealed, bound_to.as_bytes())
    }

    /// Seals a page of replicated account records with the page key; `format` (the
    /// page format's name and version) is the associated data.
    pub fn seal_page(&self, plaintext: &[u8], format: &[u8]) -> Result<Vec<u8>, SealError> {
        seal_with(&self.pages, plaintext, format)
    }

    /// Opens a page sealed by [`Sealer::seal_page`] under the same cluster secret and
    /// `format`; anything else is [`SealError::WrongSecret`] or [`SealError::Truncated`].
    pub fn open_page(&self, sealed: &[u8], format: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        open_with(&self.pages, sealed, format)
    }

    /// The signing key of organization `org` (any case): derived from the cluster
    /// secret and the lowercase login, so every node of the cluster signs as the same
    /// organization without a key to store or replicate, and no node of another cluster
    /// can. The key owns the organization's repositories (see `accounts::holds_name`).
    pub fn org_keypair(&self, org: &str) -> guts_core::Keypair {
        let seed = Zeroizing::new(
            *blake3::keyed_hash(&self.org_key, org.to_ascii_lowercase().as_bytes()).as_bytes(),
        );
        guts_core::Keypair::from_seed(&seed)
    }

    /// The ed25519 seed of the SSH host key: derived from the cluster secret, so every
    /// node of a cluster presents the same host key from its first start (clients
    /// behind a Kubernetes Service never see it change from pod to pod, nor across
    /// restarts), with nothing to store, replicate or race over. Like the sealed keys,
    /// it changes only if the cluster secret does.
    pub fn ssh_host_seed(&self) -> Zeroizing<[u8; 32]> {
        self.ssh_host_seed.clone()
    }

    /// A BLAKE3 hasher keyed from the cluster secret, for digests that travel in the
    /// clear: equal inputs give equal digests only under the same secret.
    pub(crate) fn keyed_hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.digest_key)
    }
}

/// `nonce || ciphertext+tag` with a fresh random nonce.
fn seal_with(cipher: &XChaCha20Poly1305, msg: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
    let nonce_bytes: [u8; NONCE_LEN] = rand::random();
    let sealed = cipher
        .encrypt(&XNonce::from(nonce_bytes), Payload { msg, aad })
        .map_err(|_| SealError::Seal)?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open_with(
    cipher: &XChaCha20Poly1305,
    sealed: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.len() < NONCE_LEN {
        return Err(SealError::Truncated);
    }
    let (nonce, msg) = sealed.split_at(NONCE_LEN);
    let nonce_bytes: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Truncated)?;
    cipher
        .decrypt(&XNonce::from(nonce_bytes), Payload { msg, aad })
        .map(Zeroizing::new)
        .map_err(|_| SealError::WrongSecret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_secrets_and_owners() {
        let sealer = Sealer::new(b"cluster secret one");
        let sealed = sealer.seal(b"seed bytes", "alice").unwrap();
        assert_eq!(
            sealer.open(&sealed, "alice").unwrap().as_slice(),
            b"seed bytes"
        );
        assert_eq!(sealer.open(&sealed, "bob"), Err(SealError::WrongSecret));
        let other = Sealer::new(b"cluster secret two");
        assert_eq!(other.open(&sealed, "alice"), Err(SealError::WrongSecret));
        assert_eq!(
            sealer.open(&sealed[..10], "alice"),
            Err(SealError::Truncated)
        );
        // Fresh nonce every time.
        assert_ne!(
            sealer.seal(b"x", "a").unwrap(),
            sealer.seal(b"x", "a").unwrap()
        );
        let mut flipped = sealed.clone();
        flipped[30] ^= 1;
        assert!(sealer.open(&flipped, "alice").is_err());
    }

    #[test]
    fn keys_and_pages_never_open_as_each_other() {
        let sealer = Sealer::new(b"cluster secret one");
        // Even with the same associated data, the keys differ.
        let key = sealer.seal(b"seed", "x").unwrap();
        assert_eq!(sealer.open_page(&key, b"x"), Err(SealError::WrongSecret));
        let page = sealer.seal_page(b"[]", b"guts/accounts-page/v1").unwrap();
        assert_eq!(
            sealer
                .open_page(&page, b"guts/accounts-page/v1")
                .unwrap()
                .as_slice(),
            b"[]"
        );
        assert_eq!(
            sealer.open(&page, "guts/accounts-page/v1"),
            Err(SealError::WrongSecret)
        );
        assert_eq!(
            sealer.open_page(&page, b"guts/accounts-page/v2"),
            Err(SealError::WrongSecret)
        );
        let other = Sealer::new(b"cluster secret two");
        assert_eq!(
            other.open_page(&page, b"guts/accounts-page/v1"),
            Err(SealError::WrongSecret)
        );
        let digest = |s: &Sealer| *s.keyed_hasher().update(b"same").finalize().as_bytes();
        assert_ne!(digest(&sealer), digest(&other));
        assert_eq!(digest(&sealer), digest(&Sealer::new(b"cluster secret one")));
    }

    #[test]
    fn the_ssh_host_seed_is_the_clusters_and_no_other_key() {
        let one = Sealer::new(b"cluster secret one");
        let seed = *one.ssh_host_seed();
        assert_eq!(seed, *Sealer::new(b"cluster secret one").ssh_host_seed());
        assert_ne!(seed, *Sealer::new(b"cluster secret two").ssh_host_seed());
        assert_ne!(seed, *one.org_key);
        assert_ne!(seed, *one.digest_key);
    }
}
