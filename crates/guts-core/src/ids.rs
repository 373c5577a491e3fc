//! Fixed-size identifiers: operation ids, repository ids and git object ids.
//!
//! All three are plain byte arrays with one text form (lowercase hex) and one parse
//! error type, so every crate prints and parses them the same way. `RepoId::derive` is
//! here because a repository's id is a pure function of its creating operation, which
//! lets any node check a `CreateRepo` without trusting whoever relayed it.

use std::fmt;
use std::str::FromStr;

use crate::hlc::Hlc;
use crate::identity::PublicKey;

/// blake3 `derive_key` context for repository ids. Part of the protocol: changing it
/// changes every repository id.
const REPO_ID_CONTEXT: &str = "guts/repo-id/v1";

/// Why an id could not be parsed from hex text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    /// The text did not have exactly twice the id's byte length in characters.
    #[error("must be {expected} hex characters, found {found}")]
    WrongLength { expected: usize, found: usize },
    /// A character outside `[0-9a-fA-F]`.
    #[error("invalid hex character at position {position}")]
    InvalidHex { position: usize },
}

/// Declares a byte-array id with the shared constructors, accessors and text forms.
macro_rules! byte_id {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length of the id in bytes.
            pub const LEN: usize = $len;

            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex::<$len>(s).map(Self)
            }
        }
    };
}

byte_id!(
    /// The id of an operation: blake3 of its canonical unsigned encoding (see
    /// [`crate::op`]). Ordering by bytes is the final tie-breaker of the fold.
    OpId,
    32
);

byte_id!(
    /// The id of a repository, derived from its `CreateRepo` operation by
    /// [`RepoId::derive`], so it is the same on every node and cannot be squatted by
    /// announcing an id first.
    RepoId,
    32
);

byte_id!(
    /// A git SHA-1 object id. Guts never computes these (storage does); core only
    /// compares and carries them.
    ObjectId,
    20
);

impl ObjectId {
    /// All zeros: git's spelling of "no object" on the wire. Core itself uses
    /// `Option<ObjectId>` for absence; this exists for the edges that speak git.
    pub const ZERO: ObjectId = ObjectId([0; 20]);

    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }
}

impl OpId {
    /// A positive integer below 2^48 taken from the id: GitHub's integer ids for things
    /// that are operations here (comments, reviews). Below 2^53 so JavaScript clients
    /// hold it exactly; the id is a hash, so 48 bits collide only by astronomical luck.
    pub fn numeric(&self) -> u64 {
        let mut bytes = [0u8; 8];
        if let (Some(dst), Some(src)) = (bytes.get_mut(2..), self.0.get(..6)) {
            dst.copy_from_slice(src);
        }
        u64::from_be_bytes(bytes).max(1)
    }
}

impl RepoId {
    /// The id a `CreateRepo` by `author` claiming `owner/name` at `at` must carry.
    ///
    /// The timestamp is included so that a repository deleted and created again under
    /// the same name is a new repository with a fresh operation history, rather than
    /// one whose old operations would apply to it.
    pub fn derive(author: &PublicKey, owner: &str, name: &str, at: Hlc) -> RepoId {
        // Length-prefixed so that ("ab", "c") and ("a", "bc") differ. u64 prefixes
        // because this is a hash input, not a wire format: no cap applies here, and
        // `usize` widens into `u64` losslessly on every platform Rust supports.
        let mut hasher = blake3::Hasher::new_derive_key(REPO_ID_CONTEXT);
        hasher.update(author.as_bytes());
        for part in [owner, name] {
            hasher.update(&(part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.update(&at.wall_ms.to_be_bytes());
        hasher.update(&at.counter.to_be_bytes());
        RepoId(*hasher.finalize().as_bytes())
    }
}

/// Decodes exactly `N * 2` hex characters, naming the length or the first bad
/// character when it cannot.
fn parse_hex<const N: usize>(text: &str) -> Result<[u8; N], IdParseError> {
    let found = text.chars().count();
    if found != N * 2 {
        return Err(IdParseError::WrongLength {
            expected: N * 2,
            found,
        });
    }
    if let Some(position) = text.chars().position(|c| !c.is_ascii_hexdigit()) {
        return Err(IdParseError::InvalidHex { position });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| IdParseError::InvalidHex { position: 0 })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use proptest::prelude::*;

    #[test]
    fn text_forms() {
        let id = ObjectId::from_bytes([0xab; 20]);
        assert_eq!(id.to_string(), "ab".repeat(20));
        assert_eq!(format!("{id:?}"), format!("ObjectId({})", "ab".repeat(20)));
        assert_eq!("AB".repeat(20).parse::<ObjectId>().unwrap(), id);
        assert!(ObjectId::ZERO.is_zero());
        assert_eq!(
            "ab".parse::<OpId>().unwrap_err(),
            IdParseError::WrongLength {
                expected: 64,
                found: 2
            }
        );
        let mut bad = "0".repeat(40);
        bad.replace_range(7..8, "x");
        assert_eq!(
            bad.parse::<ObjectId>().unwrap_err(),
            IdParseError::InvalidHex { position: 7 }
        );
        assert!(matches!(
            "é".repeat(64).parse::<RepoId>(),
            Err(IdParseError::InvalidHex { .. } | IdParseError::WrongLength { .. })
        ));
    }

    #[test]
    fn repo_id_depends_on_every_input() {
        let a = Keypair::from_seed(&[1; 32]).public();
        let b = Keypair::from_seed(&[2; 32]).public();
        let at = Hlc {
            wall_ms: 5,
            counter: 0,
        };
        let base = RepoId::derive(&a, "alice", "repo", at);
        assert_eq!(base, RepoId::derive(&a, "alice", "repo", at));
        assert_ne!(base, RepoId::derive(&b, "alice", "repo", at));
        assert_ne!(base, RepoId::derive(&a, "alic", "erepo", at));
        assert_ne!(base, RepoId::derive(&a, "alice", "repo2", at));
        assert_ne!(
            base,
            RepoId::derive(
                &a,
                "alice",
                "repo",
                Hlc {
                    wall_ms: 5,
                    counter: 1
                }
            )
        );
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in any::<[u8; 32]>(), oid in any::<[u8; 20]>()) {
            let id = OpId::from_bytes(bytes);
            prop_assert_eq!(id.to_string().parse::<OpId>().unwrap(), id);
            let oid = ObjectId::from_bytes(oid);
            prop_assert_eq!(oid.to_string().parse::<ObjectId>().unwrap(), oid);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in ".{0,70}") {
            let _ = text.parse::<OpId>();
            let _ = text.parse::<ObjectId>();
        }
    }
}
