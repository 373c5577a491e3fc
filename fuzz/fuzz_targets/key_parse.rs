//! The text forms of keys and ids: `Keypair::from_hex` (the `GUTS_PRIVATE_KEY` and
//! `node.key` format), `PublicKey`, `OpId`, `RepoId` and `ObjectId` `FromStr` (API paths,
//! query strings, config).
//!
//! Crashes on: a panic; a value whose text form does not parse back to itself; and any
//! disagreement with the documented grammar, restated here: ids are exactly `2 * LEN`
//! ASCII hex digits of either case, keys the same at 64 digits after trimming
//! surrounding whitespace, and a public key additionally a valid curve point.
#![no_main]

use std::str::FromStr;

use guts_core::{Keypair, ObjectId, OpId, PublicKey, RepoId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    keys(text);
    id::<OpId>(text, OpId::LEN);
    id::<RepoId>(text, RepoId::LEN);
    id::<ObjectId>(text, ObjectId::LEN);
});

fn is_hex(text: &str, digits: usize) -> bool {
    text.len() == digits && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn keys(text: &str) {
    let trimmed = text.trim();
    let keypair = Keypair::from_hex(text);
    assert_eq!(
        keypair.is_ok(),
        is_hex(trimmed, 64),
        "Keypair::from_hex disagrees with the grammar: {keypair:?}"
    );
    if let Ok(keypair) = keypair {
        let seed = keypair.seed_hex();
        assert_eq!(
            *seed,
            trimmed.to_ascii_lowercase(),
            "seed_hex is not the input"
        );
        let again = Keypair::from_hex(&seed).expect("seed_hex does not parse back");
        assert_eq!(*again.seed_hex(), *seed);
        assert_eq!(again.public(), keypair.public());
        let public = keypair.public();
        assert_eq!(public.to_string().parse::<PublicKey>(), Ok(public));
    }

    match text.parse::<PublicKey>() {
        Ok(public) => {
            assert!(is_hex(trimmed, 64), "PublicKey accepted {text:?}");
            let shown = public.to_string();
            assert_eq!(shown, trimmed.to_ascii_lowercase());
            assert_eq!(shown.parse::<PublicKey>(), Ok(public));
            assert_eq!(PublicKey::from_bytes(public.as_bytes()), Ok(public));
            let _ = public.peer_id();
        }
        Err(err) => {
            // Well-formed hex may still fail, but only as a bad curve point.
            if is_hex(trimmed, 64) {
                assert_eq!(err, guts_core::KeyParseError::InvalidPoint);
            }
            let _ = err.to_string();
        }
    }
}

fn id<T>(text: &str, len: usize)
where
    T: FromStr<Err = guts_core::IdParseError> + std::fmt::Display + PartialEq + std::fmt::Debug,
{
    let parsed = text.parse::<T>();
    assert_eq!(
        parsed.is_ok(),
        is_hex(text, 2 * len),
        "id parser disagrees with the grammar: {parsed:?}"
    );
    match parsed {
        Ok(value) => {
            let shown = value.to_string();
            assert_eq!(shown, text.to_ascii_lowercase());
            assert_eq!(shown.parse::<T>().as_ref(), Ok(&value));
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
}
