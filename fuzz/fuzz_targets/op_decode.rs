//! `SignedOp::decode` on untrusted bytes, the entry point of every operation a peer
//! sends.
//!
//! Crashes on: a panic in the decoder or the codec `Reader`; bytes that decode but are
//! not the canonical encoding of what they decode to; an id or signature other than the
//! protocol's.
//!
//! Random mutations almost never carry a valid signature, so on its own the decoder
//! would stop at `BadSignature` and the interesting property (one operation, one byte
//! string) would only ever be checked on the seeds. So when an input is structurally
//! valid but badly signed, the target swaps in the fixed corpus author, signs it as
//! that author would, and checks the accepted-path invariants on that instead; and
//! for any operation by that author it rebuilds the bytes with `Operation::sign` (the
//! encoder, deterministic ed25519) and demands the input back exactly.
#![no_main]

use guts_core::codec::Reader;
use guts_core::{DecodeError, Keypair, SignedOp};
use guts_fuzz::{SIGNATURE_LEN, author_key, op_id, signing_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    exercise_reader(data);
    let key = author_key();
    match SignedOp::decode(data) {
        Ok(op) => check_accepted(data, &op, &key),
        // Everything but the signature was valid, so the re-signed bytes must decode.
        Err(DecodeError::BadSignature) => {
            let resigned = resign(data, &key);
            match SignedOp::decode(&resigned) {
                Ok(op) => check_accepted(&resigned, &op, &key),
                Err(err) => panic!("operation re-signed by its author rejected: {err}"),
            }
        }
        Err(_) => {}
    }
});

/// The invariants of an accepted encoding `data` of `op`.
fn check_accepted(data: &[u8], op: &SignedOp, key: &Keypair) {
    assert_eq!(op.encode(), data, "encode() is not the accepted bytes");
    assert_eq!(op.as_bytes(), data);

    let again = SignedOp::decode(&op.encode()).expect("re-decoding an accepted op failed");
    assert_eq!(again.id(), op.id(), "decoding twice gave two ids");
    assert_eq!(&again, op);

    let (unsigned, signature) = data
        .split_at_checked(data.len() - SIGNATURE_LEN)
        .expect("accepted op shorter than a signature");
    assert_eq!(op.id(), op_id(unsigned), "id is not the protocol's op id");
    assert_eq!(op.signature().to_bytes(), signature);
    assert!(
        op.op()
            .author
            .verify(&signing_message(&op.id()), op.signature()),
        "decode accepted a signature that does not verify"
    );

    let inner = op.op();
    assert!(
        inner.parents.windows(2).all(|w| w[0] < w[1]),
        "parents not strictly ascending"
    );
    let _ = inner.payload.kind();

    // Canonical form, checked through the encoder: the same operation signed again by
    // the same key must give back the input byte for byte.
    if inner.author == key.public() {
        let rebuilt = inner
            .clone()
            .sign(key)
            .unwrap_or_else(|err| panic!("decoder accepted an op the encoder refuses: {err}"));
        assert_eq!(rebuilt.id(), op.id());
        assert_eq!(
            rebuilt.as_bytes(),
            data,
            "accepted bytes are not the canonical encoding"
        );
    }
}

/// `data` with its author replaced by `key` and a signature by `key`. Only called on
/// structurally valid input, whose layout up to the author is fixed: version, repo,
/// parent count and parents.
fn resign(data: &[u8], key: &Keypair) -> Vec<u8> {
    let mut unsigned = data[..data.len() - SIGNATURE_LEN].to_vec();
    let mut r = Reader::new(&unsigned);
    let parents = r
        .u8()
        .and_then(|_| r.array::<32>())
        .and_then(|_| r.u32())
        .expect("structurally valid op without a header");
    let at = 1 + 32 + 4 + 32 * parents as usize;
    unsigned[at..at + 32].copy_from_slice(key.public().as_bytes());
    let signature = key.sign(&signing_message(&op_id(&unsigned)));
    unsigned.extend_from_slice(&signature.to_bytes());
    unsigned
}

/// Drives the codec `Reader` with the input as both program and data: each step reads
/// a selector byte and then the primitive it picks. Checks the bookkeeping every
/// primitive promises (position only moves forward and stays in bounds, fixed-size
/// reads advance by their size, length-prefixed reads respect their caps).
fn exercise_reader(data: &[u8]) {
    let len = data.len();
    let mut r = Reader::new(data);
    for _ in 0..256 {
        let Ok(selector) = r.u8() else { break };
        let before = r.position();
        // A cap for length-prefixed reads, taken from the selector's high bits.
        let max = usize::from(selector >> 4) * 7;
        let fixed = match selector % 14 {
            0 => r.u8().map(|_| Some(1)),
            1 => r.u16().map(|_| Some(2)),
            2 => r.u32().map(|_| Some(4)),
            3 => r.u64().map(|_| Some(8)),
            4 => r.bool().map(|_| Some(1)),
            5 => r.option_tag().map(|_| Some(1)),
            6 => r.hlc().map(|_| Some(12)),
            7 => r.array::<20>().map(|_| Some(20)),
            8 => r.public_key("key").map(|key| {
                assert_eq!(&data[before..before + 32], key.as_bytes());
                Some(32)
            }),
            9 => r.bytes("bytes", max).map(|bytes| {
                assert!(bytes.len() <= max);
                Some(4 + bytes.len())
            }),
            10 => r.string("string", max).map(|s| {
                assert!(s.len() <= max);
                Some(4 + s.len())
            }),
            11 => r.count("count", max, 32).map(|count| {
                assert!(count <= max);
                assert!(count * 32 <= r.remaining(), "count promised unread items");
                Some(4)
            }),
            12 => r.take(max).map(|bytes| {
                assert_eq!(bytes.len(), max);
                Some(max)
            }),
            _ => {
                let finished = r.finish();
                assert_eq!(finished.is_ok(), r.remaining() == 0);
                finished.map(|()| None)
            }
        };
        let after = r.position();
        assert!(
            after >= before && after <= len,
            "reader position out of bounds"
        );
        assert_eq!(after + r.remaining(), len);
        if let Ok(Some(advanced)) = fixed {
            assert_eq!(
                after - before,
                advanced,
                "read advanced by the wrong amount"
            );
        }
    }
}
