//! Sealing custodial secrets with the cluster secret (DESIGN.md section 3): user keys are
//! stored encrypted, so a copied data directory or a peer of another cluster holds
//! nothing it can sign with.
//!
//! XChaCha20-Poly1305 with a random 24-byte nonce per seal (large enough that random
//! nonces never collide in practice), a key derived from the cluster secret with BLAKE3's
//! key-derivation mode, and the owner's login as associated data so a sealed key cannot
//! be moved to another account.

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

const CONTEXT: &str = "guts 2026 cluster secret -> custodial key sealing v1";
const NONCE_LEN: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed data is truncated")]
    Truncated,
    #[error("sealed data does not open with this cluster secret")]
    WrongSecret,
    #[error("sealing failed")]
    Seal,
}

/// The key derived from the cluster secret. Never printed.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    pub fn new(cluster_secret: &[u8]) -> Sealer {
        let derived = Zeroizing::new(blake3::derive_key(CONTEXT, cluster_secret));
        let key = Key::from(*derived);
        Sealer {
            cipher: XChaCha20Poly1305::new(&key),
        }
    }

    /// `nonce || ciphertext+tag`.
    pub fn seal(&self, plaintext: &[u8], bound_to: &str) -> Result<Vec<u8>, SealError> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: bound_to.as_bytes(),
                },
            )
            .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], bound_to: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Truncated);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce_bytes: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Truncated)?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce_bytes),
                Payload {
                    msg: body,
                    aad: bound_to.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::WrongSecret)
    }
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
}
