//! guts-p2p's wire decoders on untrusted bytes: what every peer message goes through.
//!
//! The input is decoded as each message family (gossip, request, response); a frame
//! is a frame of one family at most, since the tag's high byte names the family.
//!
//! Crashes on: a panic in a decoder or in `frame_len`; a decoded message that does not
//! re-encode to exactly the input (the codec is canonical) or does not decode again to
//! itself; `frame_len` disagreeing with an accepted frame's length, or failing on a
//! header a decoder accepted; two families accepting one frame.
//!
//! Operations inside ops responses are verified by `SignedOp::decode`, so mutations of
//! the seeds' signed operations mostly stop at a signature error; the `op_decode` target
//! covers the operation codec itself.
#![no_main]

use guts_p2p::wire::{Gossip, HEADER_LEN, Request, Response, WireError, frame_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let needed = frame_len(data);
    // The length asked for only depends on the header.
    if data.len() >= HEADER_LEN {
        assert_eq!(frame_len(&data[..HEADER_LEN]), needed);
    } else {
        assert!(matches!(needed, Ok(HEADER_LEN) | Err(_)));
    }

    let accepted = [
        check(data, Gossip::decode, Gossip::encode),
        check(data, Request::decode, Request::encode),
        check(data, Response::decode, Response::encode),
    ];
    let families = accepted.iter().filter(|ok| **ok).count();
    assert!(families <= 1, "one frame accepted by {families} families");
    if families == 1 {
        assert_eq!(
            needed,
            Ok(data.len()),
            "frame_len disagrees with an accepted frame"
        );
    }

    // A stream reader hands a decoder exactly the bytes `frame_len` asked for.
    if let Ok(len) = needed {
        if let Some(frame) = data.get(..len) {
            check(frame, Gossip::decode, Gossip::encode);
            check(frame, Request::decode, Request::encode);
            check(frame, Response::decode, Response::encode);
        }
    }
});

/// Decodes `data` with `decode` and, if it is accepted, checks that it is canonical.
/// Returns whether it was accepted.
fn check<M: PartialEq + std::fmt::Debug>(
    data: &[u8],
    decode: fn(&[u8]) -> Result<M, WireError>,
    encode: fn(&M) -> Result<Vec<u8>, WireError>,
) -> bool {
    let Ok(message) = decode(data) else {
        return false;
    };
    let bytes = encode(&message)
        .unwrap_or_else(|err| panic!("decoder accepted a message the encoder refuses: {err}"));
    assert_eq!(bytes, data, "accepted bytes are not the canonical encoding");
    let again = decode(&bytes).expect("re-decoding an accepted frame failed");
    assert_eq!(again, message);
    true
}
