//! Ed25519 identities: key pairs, public keys, and their text encodings.
//!
//! One key type serves nodes and users alike. A node's libp2p peer id is derived from
//! the same public key (see [`PublicKey::peer_id`]), so operators see one identity
//! everywhere; the derivation is a pure function and lives here rather than in the p2p
//! crate, which only has to agree with it (a test checks that it does).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use zeroize::Zeroizing;

/// Length of an ed25519 seed or public key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of a hex-encoded seed or public key.
pub const KEY_HEX_LEN: usize = KEY_LEN * 2;

/// Why a key could not be parsed from text or bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    /// The hex text did not have exactly [`KEY_HEX_LEN`] characters.
    #[error("must be {expected} hex characters, found {found}")]
    WrongHexLength { expected: usize, found: usize },
    /// A character outside `[0-9a-fA-F]`.
    #[error("invalid hex character at position {position}")]
    InvalidHex { position: usize },
    /// The raw bytes did not have exactly [`KEY_LEN`] bytes.
    #[error("must be {expected} bytes, found {found}")]
    WrongByteLength { expected: usize, found: usize },
    /// 32 bytes that are not a valid compressed Edwards point.
    #[error("not a valid ed25519 public key")]
    InvalidPoint,
}

/// Decodes exactly `KEY_HEX_LEN` hex characters into 32 bytes, with a typed error that
/// names what is wrong (length first, then the first bad character).
fn decode_key_hex(text: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyParseError> {
    let text = text.trim();
    let found = text.chars().count();
    if found != KEY_HEX_LEN {
        return Err(KeyParseError::WrongHexLength {
            expected: KEY_HEX_LEN,
            found,
        });
    }
    if let Some(position) = text.chars().position(|c| !c.is_ascii_hexdigit()) {
        return Err(KeyParseError::InvalidHex { position });
    }
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    hex::decode_to_slice(text, out.as_mut_slice())
        .map_err(|_| KeyParseError::InvalidHex { position: 0 })?;
    Ok(out)
}

/// An ed25519 key pair. The secret half never appears in `Debug` output and is zeroed
/// on drop (ed25519-dalek's `zeroize` feature).
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    /// A fresh key pair from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; KEY_LEN]);
        rand::fill(seed.as_mut_slice());
        Self::from_seed(&seed)
    }

    /// The key pair for a 32-byte seed (the "private key" of RFC 8032).
    pub fn from_seed(seed: &[u8; KEY_LEN]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// Parses a 64-character hex seed, the format of `GUTS_PRIVATE_KEY` and `node.key`.
    pub fn from_hex(text: &str) -> Result<Self, KeyParseError> {
        let seed = decode_key_hex(text)?;
        Ok(Self::from_seed(&seed))
    }

    /// The seed as 64 lowercase hex characters. Wrapped so it is zeroed when dropped.
    pub fn seed_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.signing.to_bytes()))
    }

    /// The raw 32-byte seed, for handing to other libraries that derive from it (libp2p).
    pub fn seed_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &self.public())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Keys each thread remembers decompressed (about 200 bytes each).
const DECOMPRESSED_MEMO: usize = 128;

thread_local! {
    /// Valid keys recently decompressed on this thread. Decompressing a point costs a
    /// field exponentiation (about as much as folding an operation), and the
    /// operations and state a repository is loaded from name the same few authors
    /// thousands of times. A pure function's memo: only valid points are kept.
    static DECOMPRESSED: std::cell::RefCell<std::collections::HashMap<[u8; KEY_LEN], VerifyingKey>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The point `bytes` encode, decompressed (through the memo), or `None` if they
/// encode none.
fn decompressed(bytes: &[u8; KEY_LEN]) -> Option<VerifyingKey> {
    if let Some(known) = DECOMPRESSED.with(|memo| memo.borrow().get(bytes).copied()) {
        return Some(known);
    }
    let key = VerifyingKey::from_bytes(bytes).ok()?;
    DECOMPRESSED.with(|memo| {
        let mut memo = memo.borrow_mut();
        if memo.len() >= DECOMPRESSED_MEMO {
            memo.clear();
        }
        memo.insert(*bytes, key);
    });
    Some(key)
}

/// An ed25519 public key; text form is 64 lowercase hex characters.
///
/// Kept compressed (32 bytes; checked to be a point when made) rather than as the
/// decompressed point (192 bytes): folded state names an author, assignee or merger in
/// every thread, comment and review, and verifying a signature, which needs the point,
/// is rare beside reading them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyParseError> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| KeyParseError::WrongByteLength {
                expected: KEY_LEN,
                found: bytes.len(),
            })?;
        decompressed(&arr)
            .map(|_| PublicKey(arr))
            .ok_or(KeyParseError::InvalidPoint)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Checks `signature` over `message`. Strict verification: rejects small-order keys
    /// and malleable signatures, so one message has one valid signature per key.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        // Made from a valid point, so this decompresses.
        decompressed(&self.0).is_some_and(|key| {
            key.verify_strict(message, signature).is_ok() && key.verify(message, signature).is_ok()
        })
    }

    /// The libp2p peer id of this key in its usual base58 text form (`12D3KooW…`).
    ///
    /// libp2p encodes an ed25519 public key as the protobuf message
    /// `PublicKey { Type: Ed25519 (1), Data: <32 bytes> }`, and because that encoding is
    /// at most 42 bytes the peer id is its *identity* multihash (code 0x00), not a
    /// SHA-256 of it. Both encodings are fixed-size here, so the bytes are written out.
    pub fn peer_id(&self) -> String {
        const PROTOBUF_PREFIX: [u8; 4] = [0x08, 0x01, 0x12, KEY_LEN as u8];
        const MULTIHASH_IDENTITY: u8 = 0x00;
        let mut bytes = Vec::with_capacity(2 + PROTOBUF_PREFIX.len() + KEY_LEN);
        bytes.push(MULTIHASH_IDENTITY);
        bytes.push((PROTOBUF_PREFIX.len() + KEY_LEN) as u8);
        bytes.extend_from_slice(&PROTOBUF_PREFIX);
        bytes.extend_from_slice(self.as_bytes());
        bs58::encode(bytes).into_string()
    }
}

/// Ordered by the key's bytes, so keys can index the `BTreeMap`s of folded state (an
/// ACL), whose iteration order must not depend on anything but the keys themselves.
impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode_key_hex(s)?;
        Self::from_bytes(bytes.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hex_errors_are_typed() {
        assert_eq!(
            Keypair::from_hex(&"a".repeat(63)).unwrap_err(),
            KeyParseError::WrongHexLength {
                expected: 64,
                found: 63
            }
        );
        let mut bad = "0".repeat(64);
        bad.replace_range(10..11, "g");
        assert_eq!(
            Keypair::from_hex(&bad).unwrap_err(),
            KeyParseError::InvalidHex { position: 10 }
        );
        // Multi-byte characters must not panic on slicing and are counted as characters.
        assert!(matches!(
            Keypair::from_hex(&"é".repeat(32)),
            Err(KeyParseError::WrongHexLength { .. })
        ));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = Keypair::generate();
        let shown = format!("{key:?}");
        assert!(!shown.contains(key.seed_hex().as_str()));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn peer_id_matches_libp2p() {
        for _ in 0..16 {
            let key = Keypair::generate();
            let theirs = libp2p_identity::Keypair::ed25519_from_bytes(*key.seed_bytes())
                .unwrap()
                .public()
                .to_peer_id()
                .to_base58();
            assert_eq!(key.public().peer_id(), theirs);
        }
    }

    #[test]
    fn signatures_verify_and_reject_tampering() {
        let key = Keypair::generate();
        let sig = key.sign(b"hello");
        assert!(key.public().verify(b"hello", &sig));
        assert!(!key.public().verify(b"hellp", &sig));
        assert!(!Keypair::generate().public().verify(b"hello", &sig));
    }

    proptest! {
        #[test]
        fn seed_hex_round_trips(seed in any::<[u8; 32]>()) {
            let key = Keypair::from_seed(&seed);
            let again = Keypair::from_hex(&key.seed_hex()).unwrap();
            prop_assert_eq!(again.public(), key.public());
            let public: PublicKey = key.public().to_string().parse().unwrap();
            prop_assert_eq!(public, key.public());
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in ".{0,80}") {
            let _ = Keypair::from_hex(&text);
            let _ = text.parse::<PublicKey>();
        }
    }
}
