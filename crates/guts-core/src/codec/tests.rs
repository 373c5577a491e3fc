//! Tests of the canonical codec, kept out of `codec.rs` so that it holds only the
//! encoding: the reader's bounds checks before allocating, and round trips.

use super::*;
use proptest::prelude::*;

#[test]
fn reader_refuses_lengths_beyond_the_input_before_allocating() {
    // Declares a 4 GiB string with 3 bytes behind it.
    let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    assert!(matches!(
        r.bytes("x", usize::MAX),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
    let mut r = Reader::new(&[0, 0, 0, 5, 1, 2, 3]);
    assert_eq!(
        r.bytes("x", 4),
        Err(DecodeError::FieldTooLong {
            field: "x",
            max: 4,
            found: 5
        })
    );
    let mut r = Reader::new(&[0, 0, 0, 64, 1, 2, 3]);
    assert!(matches!(
        r.count("parents", 64, 32),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
}

#[test]
fn reader_rejects_non_canonical_scalars() {
    assert_eq!(Reader::new(&[2]).bool(), Err(DecodeError::InvalidBool(2)));
    assert_eq!(
        Reader::new(&[7]).option_tag(),
        Err(DecodeError::InvalidOptionTag(7))
    );
    assert_eq!(
        Reader::new(&[1, 2]).finish(),
        Err(DecodeError::TrailingBytes(2))
    );
    assert_eq!(
        Reader::new(&[0, 0, 0, 2, 0xc3, 0x28]).string("s", 10),
        Err(DecodeError::InvalidUtf8 { field: "s" })
    );
    assert_eq!(
        decode_role(&mut Reader::new(&[9])),
        Err(DecodeError::UnknownRole(9))
    );
}

#[test]
fn writer_refuses_what_the_reader_would_refuse() {
    let mut w = Writer::new();
    assert_eq!(
        w.str("name", &"x".repeat(MAX_NAME_BYTES + 1), MAX_NAME_BYTES),
        Err(EncodeError::FieldTooLong {
            field: "name",
            max: MAX_NAME_BYTES,
            found: MAX_NAME_BYTES + 1
        })
    );
    assert!(w.as_slice().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn scalars_round_trip(a in any::<u8>(), b in any::<u16>(), c in any::<u32>(), d in any::<u64>(), s in ".{0,20}", flag in any::<bool>()) {
        let mut w = Writer::new();
        w.u8(a);
        w.u16(b);
        w.u32(c);
        w.u64(d);
        w.str("s", &s, 1024).unwrap();
        w.bool(flag);
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        prop_assert_eq!(r.u8().unwrap(), a);
        prop_assert_eq!(r.u16().unwrap(), b);
        prop_assert_eq!(r.u32().unwrap(), c);
        prop_assert_eq!(r.u64().unwrap(), d);
        prop_assert_eq!(r.string("s", 1024).unwrap(), s);
        prop_assert_eq!(r.bool().unwrap(), flag);
        r.finish().unwrap();
    }

    #[test]
    fn decoding_arbitrary_payload_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_operation(&mut Reader::new(&bytes));
    }
}

#[test]
fn check_run_fields_have_one_spelling() {
    use crate::check_runs::{
        CheckRunFields, CheckStatus, Conclusion, decode_fields, encode_fields,
    };
    let fields = CheckRunFields {
        name: Some("ci".into()),
        status: Some(CheckStatus::InProgress),
        conclusion: None,
        started_at: Some(1),
        ..CheckRunFields::default()
    };
    let mut w = Writer::new();
    encode_fields(&mut w, &fields).unwrap();
    let bytes = w.into_bytes();
    let expected: &[u8] = &[
        1, 0, 0, 0, 2, b'c', b'i', // name
        1, 2, // in_progress
        0, // no conclusion
        1, 0, 0, 0, 0, 0, 0, 0, 1, // started_at
        0, 0, 0, 0, // no completed_at, details_url, external_id, output
    ];
    assert_eq!(bytes, expected);
    let mut r = Reader::new(&bytes);
    assert_eq!(decode_fields(&mut r).unwrap(), fields);
    r.finish().unwrap();

    // An unknown conclusion tag is a typed error, not a guess.
    let mut bad = bytes.clone();
    bad[9] = 1;
    bad.insert(10, 9);
    assert_eq!(
        decode_fields(&mut Reader::new(&bad)),
        Err(DecodeError::UnknownTag {
            field: "conclusion",
            tag: 9
        })
    );
    assert_eq!(Conclusion::from_tag(5), Some(Conclusion::Success));
}
