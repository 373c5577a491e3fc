//! Tests of the wire codec: round trips of every message, frames that must be refused
//! (truncated, trailing, wrong version or tag, oversized), the list caps, and arbitrary
//! or mutated bytes that must never panic.

use guts_core::codec::{MAX_OP_BYTES, MAX_TEXT_BYTES, Writer};
use guts_core::{DecodeError, EncodeError, Hlc, ObjectId, OpId, Operation, Payload, RepoId};
use proptest::prelude::*;

use super::message::{
    TAG_ANNOUNCE, TAG_REQ_HEADS, TAG_REQ_OPS, TAG_REQ_PACK, TAG_RESP_ERROR, TAG_RESP_OPS,
    TAG_RESP_PACK_CHUNK, TAG_RESP_REPOS,
};
use super::strategy::{gossip, keypair, pack_chunk, request, response, signed_op};
use super::*;

fn repo(byte: u8) -> RepoId {
    RepoId::from_bytes([byte; 32])
}

fn op(byte: u8) -> OpId {
    OpId::from_bytes([byte; 32])
}

/// A frame of `tag` around `body`, written by hand so tests can send what the encoder
/// refuses to write.
fn frame(tag: u16, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(WIRE_VERSION);
    w.u16(tag);
    w.u32(body.len() as u32);
    w.fixed(body);
    w.into_bytes()
}

/// A comment operation of `repo` with a body of `body_len` bytes, signed.
fn comment(repo: RepoId, body_len: usize) -> guts_core::SignedOp {
    let key = keypair(1);
    Operation {
        repo,
        parents: vec![op(9)],
        author: key.public(),
        timestamp: Hlc {
            wall_ms: 1,
            counter: 0,
        },
        payload: Payload::Comment {
            thread: op(9),
            body: "x".repeat(body_len),
        },
    }
    .sign(&key)
    .unwrap()
}

/// Asserts that `bytes` decode to exactly `message` and that `frame_len` agrees on the
/// frame's length at every prefix.
fn assert_frame<T: std::fmt::Debug + PartialEq>(
    bytes: &[u8],
    message: &T,
    decode: fn(&[u8]) -> Result<T, WireError>,
) {
    assert_eq!(&decode(bytes).unwrap(), message);
    assert_eq!(frame_len(bytes).unwrap(), bytes.len());
    for cut in [0, 1, HEADER_LEN - 1] {
        assert_eq!(frame_len(&bytes[..cut]).unwrap(), HEADER_LEN);
    }
    assert!(matches!(
        decode(&bytes[..bytes.len() - 1]),
        Err(WireError::Truncated { .. })
    ));
}

/// A frame decoded as another family is refused by its tag, not misread.
fn assert_wrong_channel<T: std::fmt::Debug>(
    bytes: &[u8],
    decode: fn(&[u8]) -> Result<T, WireError>,
    family: &'static str,
) {
    match decode(bytes) {
        Err(WireError::UnknownTag { family: f, .. }) => assert_eq!(f, family),
        other => panic!("{family} decoder accepted a foreign frame: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn gossip_round_trips(message in gossip()) {
        let bytes = message.encode().unwrap();
        assert_frame(&bytes, &message, Gossip::decode);
        assert_wrong_channel(&bytes, Request::decode, "request");
    }

    #[test]
    fn requests_round_trip(message in request()) {
        let bytes = message.encode().unwrap();
        assert_frame(&bytes, &message, Request::decode);
        assert_wrong_channel(&bytes, Response::decode, "response");
    }

    #[test]
    fn responses_round_trip(message in response()) {
        let bytes = message.encode().unwrap();
        assert_frame(&bytes, &message, Response::decode);
        assert_wrong_channel(&bytes, Gossip::decode, "gossip");
    }

    /// Arbitrary bytes, with a valid header half the time so bodies get parsed: no
    /// decoder panics, and whatever is accepted re-encodes to the same bytes.
    #[test]
    fn arbitrary_bytes_never_panic(
        tag in prop_oneof![any::<u16>(), 0x0101u16..0x0102, 0x0201u16..0x0205, 0x0301u16..0x0305],
        body in proptest::collection::vec(any::<u8>(), 0..256),
        raw in any::<bool>(),
    ) {
        let bytes = if raw { body.clone() } else { frame(tag, &body) };
        let _ = frame_len(&bytes);
        if let Ok(m) = Gossip::decode(&bytes) { prop_assert_eq!(m.encode().unwrap(), bytes.clone()); }
        if let Ok(m) = Request::decode(&bytes) { prop_assert_eq!(m.encode().unwrap(), bytes.clone()); }
        if let Ok(m) = Response::decode(&bytes) { prop_assert_eq!(m.encode().unwrap(), bytes.clone()); }
    }

    /// Valid frames with one byte changed: still no panic, still canonical.
    #[test]
    fn mutated_frames_never_panic(
        message in response(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = message.encode().unwrap();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(m) = Response::decode(&bytes) {
            prop_assert_eq!(m.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn heads_digest_ignores_order_and_duplicates(
        heads in proptest::collection::vec(super::strategy::op_id(), 0..8),
    ) {
        let mut shuffled = heads.clone();
        shuffled.reverse();
        shuffled.extend(heads.iter().take(2));
        prop_assert_eq!(heads_digest(&heads), heads_digest(&shuffled));
    }
}

#[test]
fn frame_layout_is_version_tag_length_body() {
    let bytes = Request::Repos { after: None }.encode().unwrap();
    assert_eq!(bytes, [WIRE_VERSION, 0x02, 0x01, 0, 0, 0, 1, 0]);
}

#[test]
fn empty_and_short_input_is_truncated() {
    for len in 0..HEADER_LEN {
        let input = vec![WIRE_VERSION; len];
        assert_eq!(
            Request::decode(&input),
            Err(WireError::Truncated {
                needed: HEADER_LEN,
                available: len
            })
        );
    }
}

#[test]
fn truncated_body_is_refused() {
    let bytes = Request::Heads {
        repos: vec![repo(1), repo(2)],
    }
    .encode()
    .unwrap();
    assert_eq!(
        Request::decode(&bytes[..bytes.len() - 5]),
        Err(WireError::Truncated {
            needed: bytes.len(),
            available: bytes.len() - 5
        })
    );
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = Gossip::Announce {
        repo: repo(1),
        heads: vec![op(2)],
        trace: None,
    }
    .encode()
    .unwrap();
    bytes.extend_from_slice(b"xy");
    assert_eq!(Gossip::decode(&bytes), Err(WireError::TrailingBytes(2)));
}

#[test]
fn slack_inside_the_declared_body_is_refused() {
    // `Repos { after: None }` is one byte; declare and send two.
    let bytes = frame(super::message::TAG_REQ_REPOS, &[0, 0]);
    assert_eq!(
        Request::decode(&bytes),
        Err(WireError::Body(DecodeError::TrailingBytes(1)))
    );
}

#[test]
fn wrong_version_is_refused_from_its_first_byte() {
    let mut bytes = Request::Repos { after: None }.encode().unwrap();
    bytes[0] = 2;
    assert_eq!(
        Request::decode(&bytes),
        Err(WireError::UnsupportedVersion(2))
    );
    assert_eq!(frame_len(&[2]), Err(WireError::UnsupportedVersion(2)));
    assert_eq!(frame_len(&[0, 1, 2]), Err(WireError::UnsupportedVersion(0)));
}

#[test]
fn unknown_tags_are_refused() {
    for (tag, family) in [
        (0x0103, "gossip"),
        (0x0000, "gossip"),
        (TAG_REQ_OPS, "gossip"),
    ] {
        assert_eq!(
            Gossip::decode(&frame(tag, &[])),
            Err(WireError::UnknownTag { family, tag })
        );
    }
    assert_eq!(
        Request::decode(&frame(TAG_ANNOUNCE, &[])),
        Err(WireError::UnknownTag {
            family: "request",
            tag: TAG_ANNOUNCE
        })
    );
    assert_eq!(
        Response::decode(&frame(0x03fe, &[])),
        Err(WireError::UnknownTag {
            family: "response",
            tag: 0x03fe
        })
    );
}

#[test]
fn oversized_length_is_refused_from_the_header_alone() {
    let mut header = Writer::new();
    header.u8(WIRE_VERSION);
    header.u16(TAG_RESP_OPS);
    header.u32(u32::MAX);
    let header = header.into_bytes();
    let too_large = WireError::FrameTooLarge {
        max: MAX_FRAME_BYTES,
        found: HEADER_LEN + u32::MAX as usize,
    };
    assert_eq!(frame_len(&header), Err(too_large.clone()));
    assert_eq!(Response::decode(&header), Err(too_large));

    // The largest body the cap allows is accepted by the header check.
    let mut header = Writer::new();
    header.u8(WIRE_VERSION);
    header.u16(TAG_RESP_OPS);
    header.u32(MAX_BODY_BYTES as u32);
    assert_eq!(frame_len(header.as_slice()), Ok(MAX_FRAME_BYTES));
    header.u8(0);
    let mut one_more = header.into_bytes();
    one_more[6] += 1;
    assert!(matches!(
        frame_len(&one_more),
        Err(WireError::FrameTooLarge { .. })
    ));
}

#[test]
fn encoder_refuses_a_frame_over_the_cap() {
    // Within every list cap, but 300 × 1024 heads is over 8 MiB.
    let heads: Vec<OpId> = (0..MAX_HEADS).map(|i| op(i as u8)).collect();
    let repos = (0..300u16)
        .map(|i| RepoHeads::new(repo(i as u8), heads.clone()))
        .collect();
    assert!(matches!(
        Response::Heads { repos }.encode(),
        Err(WireError::FrameTooLarge {
            max: MAX_FRAME_BYTES,
            ..
        })
    ));
}

/// Encoding `items + 1` items fails with `TooManyItems`, and so does decoding a frame
/// that declares them.
fn assert_list_cap(field: &'static str, max: usize, encode: Result<Vec<u8>, WireError>) {
    assert_eq!(
        encode,
        Err(WireError::Encode(EncodeError::TooManyItems {
            field,
            max,
            found: max + 1
        }))
    );
}

fn declared_too_many(field: &'static str, max: usize) -> Result<(), WireError> {
    Err(WireError::Body(DecodeError::TooManyItems {
        field,
        max,
        found: max + 1,
    }))
}

/// A body: `prefix`, then a count of `count`, and nothing after it.
fn body_with_count(prefix: &[u8], count: usize) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(prefix);
    w.u32(count as u32);
    w.into_bytes()
}

#[test]
fn heads_cap() {
    let heads = vec![op(1); MAX_HEADS + 1];
    assert_list_cap(
        "heads",
        MAX_HEADS,
        Gossip::Announce {
            repo: repo(1),
            heads: heads.clone(),
            trace: None,
        }
        .encode(),
    );
    assert!(
        Gossip::Announce {
            repo: repo(1),
            heads: heads[..MAX_HEADS].to_vec(),
            trace: None,
        }
        .encode()
        .is_ok()
    );
    let bytes = frame(TAG_ANNOUNCE, &body_with_count(&[0; 32], MAX_HEADS + 1));
    assert_eq!(
        Gossip::decode(&bytes).map(drop),
        declared_too_many("heads", MAX_HEADS)
    );
}

#[test]
fn repos_cap() {
    let repos = vec![repo(1); MAX_REPOS + 1];
    assert_list_cap("repositories", MAX_REPOS, Request::Heads { repos }.encode());
    let bytes = frame(TAG_REQ_HEADS, &body_with_count(&[], MAX_REPOS + 1));
    assert_eq!(
        Request::decode(&bytes).map(drop),
        declared_too_many("repositories", MAX_REPOS)
    );
}

#[test]
fn want_ops_cap_covers_wants_and_missing() {
    let ids = vec![op(1); MAX_WANT_OPS + 1];
    assert_list_cap(
        "wanted ops",
        MAX_WANT_OPS,
        Request::Ops {
            repo: repo(1),
            want: ids.clone(),
            have: vec![],
            trace: None,
        }
        .encode(),
    );
    assert_list_cap(
        "missing ops",
        MAX_WANT_OPS,
        Response::Ops {
            repo: repo(1),
            ops: vec![],
            missing: ids,
        }
        .encode(),
    );
    let bytes = frame(TAG_RESP_OPS, &body_with_count(&[1; 32], MAX_WANT_OPS + 1));
    assert_eq!(
        Response::decode(&bytes).map(drop),
        declared_too_many("ops", MAX_WANT_OPS)
    );
}

#[test]
fn pack_ids_cap_covers_wants_and_haves() {
    let ids = vec![ObjectId::ZERO; MAX_PACK_IDS + 1];
    let request = |wants: Vec<ObjectId>, haves: Vec<ObjectId>| Request::Pack {
        repo: repo(1),
        wants,
        haves,
        offset: 0,
    };
    assert_list_cap("wants", MAX_PACK_IDS, request(ids.clone(), vec![]).encode());
    assert_list_cap("haves", MAX_PACK_IDS, request(vec![], ids).encode());
    let bytes = frame(TAG_REQ_PACK, &body_with_count(&[1; 32], MAX_PACK_IDS + 1));
    assert_eq!(
        Request::decode(&bytes).map(drop),
        declared_too_many("wants", MAX_PACK_IDS)
    );
}

#[test]
fn a_count_beyond_the_input_is_refused_before_allocating() {
    // Within the cap, but 4096 ids cannot fit in the 0 bytes that follow.
    let bytes = frame(TAG_REQ_OPS, &body_with_count(&[1; 32], MAX_WANT_OPS));
    assert_eq!(
        Request::decode(&bytes),
        Err(WireError::Body(DecodeError::UnexpectedEnd {
            needed: MAX_WANT_OPS * 32,
            remaining: 0
        }))
    );
}

fn chunk(offset: u64, total: Option<u64>, len: usize, last: bool) -> Response {
    Response::PackChunk(PackChunk {
        repo: repo(1),
        offset,
        total,
        data: vec![7; len],
        last,
    })
}

#[test]
fn chunk_size_cap() {
    let at_cap = chunk(0, None, MAX_CHUNK_BYTES, false);
    let bytes = at_cap.encode().unwrap();
    assert_eq!(Response::decode(&bytes).unwrap(), at_cap);

    let over = chunk(0, None, MAX_CHUNK_BYTES + 1, false);
    let refused = WireError::Encode(EncodeError::FieldTooLong {
        field: "pack chunk",
        max: MAX_CHUNK_BYTES,
        found: MAX_CHUNK_BYTES + 1,
    });
    assert_eq!(over.encode(), Err(refused));

    // Declared over the cap on the wire: repo, offset, no total, then the length.
    let mut body = vec![1; 32];
    body.extend_from_slice(&[0; 8]);
    body.push(0);
    let bytes = frame(
        TAG_RESP_PACK_CHUNK,
        &body_with_count(&body, MAX_CHUNK_BYTES + 1),
    );
    assert_eq!(
        Response::decode(&bytes),
        Err(WireError::Body(DecodeError::FieldTooLong {
            field: "pack chunk",
            max: MAX_CHUNK_BYTES,
            found: MAX_CHUNK_BYTES + 1
        }))
    );
}

#[test]
fn chunks_must_fit_their_pack() {
    let fine = [
        chunk(0, Some(10), 10, true),
        chunk(0, Some(10), 4, false),
        chunk(6, Some(10), 4, false),
        chunk(6, None, 4, false),
        chunk(10, Some(10), 0, true),
    ];
    for message in fine {
        let bytes = message.encode().unwrap();
        assert_eq!(Response::decode(&bytes).unwrap(), message);
    }
    let bad = [
        chunk(8, Some(10), 4, false),    // past the total
        chunk(0, Some(10), 4, true),     // last, but the pack goes on
        chunk(0, None, 4, true),         // last without a total
        chunk(u64::MAX, None, 1, false), // past u64::MAX
    ];
    for message in bad {
        assert!(matches!(message.encode(), Err(WireError::BadChunk { .. })));
        // The same bytes written by hand are refused by the decoder too.
        let Response::PackChunk(c) = &message else {
            unreachable!()
        };
        let mut w = Writer::new();
        w.fixed(c.repo.as_bytes());
        w.u64(c.offset);
        w.option_tag(c.total.is_some());
        if let Some(total) = c.total {
            w.u64(total);
        }
        w.bytes("data", &c.data, usize::MAX).unwrap();
        w.bool(c.last);
        let bytes = frame(TAG_RESP_PACK_CHUNK, w.as_slice());
        assert!(matches!(
            Response::decode(&bytes),
            Err(WireError::BadChunk { .. })
        ));
    }
}

#[test]
fn error_message_cap_and_unknown_codes() {
    let long = Response::Error {
        code: ErrorCode::Busy,
        message: "x".repeat(MAX_ERROR_MESSAGE_BYTES + 1),
    };
    assert!(matches!(
        long.encode(),
        Err(WireError::Encode(EncodeError::FieldTooLong { .. }))
    ));
    let at_cap = Response::Error {
        code: ErrorCode::Busy,
        message: "é".repeat(MAX_ERROR_MESSAGE_BYTES / 2),
    };
    assert_eq!(Response::decode(&at_cap.encode().unwrap()).unwrap(), at_cap);

    for code in [0u16, 7, 0xffff] {
        let mut body = code.to_be_bytes().to_vec();
        body.extend_from_slice(&[0; 4]);
        assert_eq!(
            Response::decode(&frame(TAG_RESP_ERROR, &body)),
            Err(WireError::UnknownErrorCode(code))
        );
    }
}

#[test]
fn invalid_bools_and_option_tags_are_refused() {
    assert_eq!(
        Request::decode(&frame(super::message::TAG_REQ_REPOS, &[2])),
        Err(WireError::Body(DecodeError::InvalidOptionTag(2)))
    );
    let mut bytes = chunk(0, Some(1), 1, true).encode().unwrap();
    *bytes.last_mut().unwrap() = 2;
    assert_eq!(
        Response::decode(&bytes),
        Err(WireError::Body(DecodeError::InvalidBool(2)))
    );
}

#[test]
fn repos_pages_must_be_strictly_ascending() {
    let digest = |repo| RepoDigest {
        repo,
        digest: [0; 32],
    };
    for repos in [
        vec![digest(repo(2)), digest(repo(1))],
        vec![digest(repo(1)), digest(repo(1))],
    ] {
        let message = Response::Repos { repos, next: None };
        let refused = WireError::NotAscending {
            field: "repositories",
        };
        assert_eq!(message.encode(), Err(refused.clone()));
        let Response::Repos { repos, .. } = &message else {
            unreachable!()
        };
        let mut w = Writer::new();
        w.u32(repos.len() as u32);
        for entry in repos {
            w.fixed(entry.repo.as_bytes());
            w.fixed(&entry.digest);
        }
        w.u8(0);
        assert_eq!(
            Response::decode(&frame(TAG_RESP_REPOS, w.as_slice())),
            Err(refused)
        );
    }
}

/// The body of an ops response for `repo` carrying `ops` as raw byte strings.
fn ops_body(repo: RepoId, ops: &[&[u8]]) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(repo.as_bytes());
    w.u32(ops.len() as u32);
    for op in ops {
        w.bytes("op", op, usize::MAX).unwrap();
    }
    w.u32(0);
    w.into_bytes()
}

#[test]
fn forged_operations_are_refused() {
    let good = comment(repo(1), 10);
    let mut forged = good.as_bytes().to_vec();
    *forged.last_mut().unwrap() ^= 1; // the signature's last byte
    let bytes = frame(
        TAG_RESP_OPS,
        &ops_body(repo(1), &[good.as_bytes(), &forged]),
    );
    assert_eq!(
        Response::decode(&bytes),
        Err(WireError::InvalidOp {
            index: 1,
            source: DecodeError::BadSignature
        })
    );

    // A changed payload byte changes the id, so the signature fails too.
    let mut tampered = good.as_bytes().to_vec();
    let at = tampered.len() - 65;
    tampered[at] ^= 1;
    let bytes = frame(TAG_RESP_OPS, &ops_body(repo(1), &[&tampered]));
    assert!(matches!(
        Response::decode(&bytes),
        Err(WireError::InvalidOp { index: 0, .. })
    ));
}

#[test]
fn operations_of_another_repository_are_refused() {
    let theirs = comment(repo(2), 10);
    let refused = WireError::ForeignOp {
        index: 0,
        expected: repo(1),
        found: repo(2),
    };
    let message = Response::Ops {
        repo: repo(1),
        ops: vec![theirs.clone()],
        missing: vec![],
    };
    assert_eq!(message.encode(), Err(refused.clone()));
    let bytes = frame(TAG_RESP_OPS, &ops_body(repo(1), &[theirs.as_bytes()]));
    assert_eq!(Response::decode(&bytes), Err(refused));
}

#[test]
fn ops_byte_budget() {
    // 17 operations of a quarter MiB each: 4.25 MiB, over the 4 MiB budget.
    let ops: Vec<_> = (0..17).map(|_| comment(repo(1), MAX_TEXT_BYTES)).collect();
    let sizes: usize = ops.iter().map(|op| op.as_bytes().len()).sum();
    assert!(sizes > MAX_OPS_BYTES);
    let message = |ops: Vec<guts_core::SignedOp>| Response::Ops {
        repo: repo(1),
        ops,
        missing: vec![op(3)],
    };
    let within = message(ops[..15].to_vec());
    assert_eq!(Response::decode(&within.encode().unwrap()).unwrap(), within);
    assert!(matches!(
        message(ops.clone()).encode(),
        Err(WireError::OpsTooLarge {
            max: MAX_OPS_BYTES,
            ..
        })
    ));
    let raw: Vec<&[u8]> = ops.iter().map(|op| op.as_bytes()).collect();
    assert!(matches!(
        Response::decode(&frame(TAG_RESP_OPS, &ops_body(repo(1), &raw))),
        Err(WireError::OpsTooLarge {
            max: MAX_OPS_BYTES,
            ..
        })
    ));
}

#[test]
fn an_operation_over_the_op_cap_is_refused_before_parsing() {
    let mut body = vec![1; 32];
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&((MAX_OP_BYTES + 1) as u32).to_be_bytes());
    assert_eq!(
        Response::decode(&frame(TAG_RESP_OPS, &body)),
        Err(WireError::Body(DecodeError::FieldTooLong {
            field: "op",
            max: MAX_OP_BYTES,
            found: MAX_OP_BYTES + 1
        }))
    );
}

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn heads_digest_is_pinned() {
    // Part of the protocol: a change here breaks anti-entropy between versions.
    assert_eq!(
        hex(heads_digest(&[])),
        "bc746c7be1308e79c42bc2ff5b2e0d19ddd1f7b9c3bb8d42e1a2c2ffd41fcdca"
    );
    assert_eq!(
        hex(heads_digest(&[op(1), op(2)])),
        "5b316c9da146afe2ba35f48d116044ab51f117cb619612e818b26b4768ba2402"
    );
    assert_ne!(heads_digest(&[op(1)]), heads_digest(&[op(2)]));
    assert_eq!(
        heads_digest(&[op(1), op(2)]),
        heads_digest(&[op(2), op(1), op(2)])
    );
    assert_eq!(
        RepoHeads::new(repo(1), vec![op(1)]).digest,
        heads_digest(&[op(1)])
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Every valid chunk round-trips (the strategy covers known, unknown and final
    /// totals).
    #[test]
    fn chunks_round_trip(c in pack_chunk()) {
        let message = Response::PackChunk(c);
        prop_assert_eq!(Response::decode(&message.encode().unwrap()).unwrap(), message);
    }

    /// Ops responses keep the operations byte for byte, signatures included.
    #[test]
    fn ops_keep_their_bytes(op in signed_op(RepoId::from_bytes([4; 32]))) {
        let message = Response::Ops { repo: op.op().repo, ops: vec![op.clone()], missing: vec![] };
        let Response::Ops { ops, .. } = Response::decode(&message.encode().unwrap()).unwrap() else {
            unreachable!()
        };
        prop_assert_eq!(ops[0].as_bytes(), op.as_bytes());
        prop_assert_eq!(ops[0].id(), op.id());
    }
}

#[test]
fn a_trace_context_must_be_printable_ascii() {
    let with = |trace: &str| Gossip::Announce {
        repo: repo(1),
        heads: vec![],
        trace: Some(trace.to_owned()),
    };
    assert_eq!(with("bad trace").encode(), Err(WireError::BadTrace));
    assert_eq!(with("é").encode(), Err(WireError::BadTrace));
    // The decoder refuses what the encoder refuses: patch a valid frame's trace byte.
    let mut bytes = with("00-ab").encode().unwrap();
    let last = bytes.len() - 1;
    bytes[last] = b' ';
    assert_eq!(Gossip::decode(&bytes), Err(WireError::BadTrace));
    assert!(Gossip::decode(&with("00-ab").encode().unwrap()).is_ok());
}
