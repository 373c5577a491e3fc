//! Git object ids as they appear on the wire: 20-byte SHA-1 names written as 40 hex
//! digits.
//!
//! This crate owns its own id type rather than using guts-core's `ObjectId` so that the
//! protocol layer stays independent of the domain (it is pure wire format, and is fuzzed
//! on its own); converting between the two is a byte copy at the server boundary.
//!
//! Only SHA-1 is spoken: the parsers refuse `object-format` values other than `sha1`,
//! so every id in a parsed request is one of these.

use std::fmt;
use std::str::FromStr;

/// Why text is not an object id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidError {
    #[error("object id is {found} characters, expected {expected}", expected = Oid::HEX_LEN)]
    WrongLength { found: usize },
    #[error("object id contains a character that is not a hex digit")]
    NotHex,
}

/// A SHA-1 object id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Oid([u8; Oid::LEN]);

impl Oid {
    /// Bytes in a SHA-1 id.
    pub const LEN: usize = 20;
    /// Hex digits in its text form.
    pub const HEX_LEN: usize = 40;
    /// The all-zero id: git's "no object", the old id of a ref being created and the new
    /// id of one being deleted, and the id of the `capabilities^{}` placeholder line.
    pub const ZERO: Oid = Oid([0; Oid::LEN]);

    pub const fn from_bytes(bytes: [u8; Oid::LEN]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; Oid::LEN] {
        &self.0
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// Parses exactly 40 hex digits. Either case is accepted: gitprotocol-pack says both
    /// ends "MUST treat obj-id as case-insensitive", though they must send lowercase.
    pub fn from_hex(hex: &[u8]) -> Result<Self, OidError> {
        if hex.len() != Self::HEX_LEN {
            return Err(OidError::WrongLength { found: hex.len() });
        }
        let mut bytes = [0u8; Self::LEN];
        hex::decode_to_slice(hex, &mut bytes).map_err(|_| OidError::NotHex)?;
        Ok(Self(bytes))
    }

    /// The lowercase hex form, as the protocol requires senders to write it.
    pub fn to_hex(&self) -> [u8; Oid::HEX_LEN] {
        let mut out = [0u8; Self::HEX_LEN];
        // Cannot fail: the output is exactly twice the input's length.
        let _ = hex::encode_to_slice(self.0, &mut out);
        out
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        // Hex digits are ASCII, so this never falls back.
        f.write_str(std::str::from_utf8(&hex).unwrap_or_default())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

impl FromStr for Oid {
    type Err = OidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_the_spec_examples_in_either_case() {
        let oid: Oid = "74730d410fcb6603ace96f1dc55ea6196122532d".parse().unwrap();
        assert_eq!(oid.to_string(), "74730d410fcb6603ace96f1dc55ea6196122532d");
        let upper: Oid = "74730D410FCB6603ACE96F1DC55EA6196122532D".parse().unwrap();
        assert_eq!(upper, oid);
    }

    #[test]
    fn zero_is_forty_zeros() {
        assert_eq!(Oid::ZERO.to_string(), "0".repeat(40));
        assert!(Oid::ZERO.is_zero());
        assert_eq!("0".repeat(40).parse::<Oid>(), Ok(Oid::ZERO));
    }

    #[test]
    fn rejects_wrong_lengths_and_non_hex() {
        assert_eq!(
            Oid::from_hex(b"abc"),
            Err(OidError::WrongLength { found: 3 })
        );
        assert_eq!(
            Oid::from_hex(&[b'g'; 40]),
            Err(OidError::NotHex),
            "g is not a hex digit"
        );
        assert_eq!(
            Oid::from_hex(b"74730d410fcb6603ace96f1dc55ea6196122532d\n"),
            Err(OidError::WrongLength { found: 41 })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn hex_round_trips(bytes in any::<[u8; 20]>()) {
            let oid = Oid::from_bytes(bytes);
            prop_assert_eq!(Oid::from_hex(&oid.to_hex()), Ok(oid));
            prop_assert_eq!(oid.to_string().parse::<Oid>(), Ok(oid));
        }

        #[test]
        fn arbitrary_text_never_panics(text in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Oid::from_hex(&text);
        }
    }
}
