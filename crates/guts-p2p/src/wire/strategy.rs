//! Proptest generators for every wire message, with real signed operations.

use guts_core::{Hlc, Keypair, ObjectId, OpId, Operation, Payload, RepoId, SignedOp};
use proptest::collection::vec;
use proptest::prelude::*;

use super::{ErrorCode, Gossip, PackChunk, RepoDigest, RepoHeads, Request, Response};

/// A key from a small fixed cast, so generated operations reuse authors.
pub(super) fn keypair(seed: u8) -> Keypair {
    Keypair::from_seed(&[seed; 32])
}

pub(super) fn repo_id() -> impl Strategy<Value = RepoId> {
    any::<[u8; 32]>().prop_map(RepoId::from_bytes)
}

pub(super) fn op_id() -> impl Strategy<Value = OpId> {
    any::<[u8; 32]>().prop_map(OpId::from_bytes)
}

fn object_id() -> impl Strategy<Value = ObjectId> {
    any::<[u8; 20]>().prop_map(ObjectId::from_bytes)
}

/// An operation of `repo` signed by one of the cast, with a payload of a few shapes
/// (the payload codec itself is guts-core's to test).
pub(super) fn signed_op(repo: RepoId) -> impl Strategy<Value = SignedOp> {
    let payload = prop_oneof![
        Just(Payload::DeleteRepo),
        (op_id(), "\\PC{0,40}").prop_map(|(thread, body)| Payload::Comment { thread, body }),
        (
            "refs/heads/[a-z]{1,8}",
            proptest::option::of(object_id()),
            any::<bool>()
        )
            .prop_map(|(name, new, force)| Payload::UpdateRef {
                name,
                old: None,
                new,
                force
            }),
    ];
    (1u8..=3, vec(op_id(), 0..4), any::<u64>(), payload).prop_map(
        move |(seed, parents, wall_ms, payload)| {
            let key = keypair(seed);
            Operation {
                repo,
                parents,
                author: key.public(),
                timestamp: Hlc {
                    wall_ms,
                    counter: 0,
                },
                payload,
            }
            .sign(&key)
            .unwrap()
        },
    )
}

/// A trace context: absent, or printable ASCII as a `traceparent` is.
fn trace() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[0-9a-f-]{0,60}")
}

pub(super) fn gossip() -> impl Strategy<Value = Gossip> {
    prop_oneof![
        (repo_id(), vec(op_id(), 0..8), trace())
            .prop_map(|(repo, heads, trace)| { Gossip::Announce { repo, heads, trace } }),
        any::<[u8; 32]>().prop_map(|digest| Gossip::Accounts { digest }),
    ]
}

pub(super) fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        proptest::option::of(repo_id()).prop_map(|after| Request::Repos { after }),
        vec(repo_id(), 0..8).prop_map(|repos| Request::Heads { repos }),
        (repo_id(), vec(op_id(), 0..8), vec(op_id(), 0..4), trace()).prop_map(
            |(repo, want, have, trace)| Request::Ops {
                repo,
                want,
                have,
                trace
            }
        ),
        (
            repo_id(),
            vec(object_id(), 0..8),
            vec(object_id(), 0..8),
            any::<u64>()
        )
            .prop_map(|(repo, wants, haves, offset)| Request::Pack {
                repo,
                wants,
                haves,
                offset
            }),
        (any::<[u8; 32]>(), proptest::option::of("[a-z:/0-9]{0,40}"))
            .prop_map(|(digest, after)| Request::Accounts { digest, after }),
        any::<[u8; 32]>().prop_map(|proof| Request::Hello { proof }),
    ]
}

fn repo_digests() -> impl Strategy<Value = Vec<RepoDigest>> {
    proptest::collection::btree_map(repo_id(), any::<[u8; 32]>(), 0..8).prop_map(|repos| {
        repos
            .into_iter()
            .map(|(repo, digest)| RepoDigest { repo, digest })
            .collect()
    })
}

fn ops_response() -> impl Strategy<Value = Response> {
    repo_id().prop_flat_map(|repo| {
        (vec(signed_op(repo), 0..4), vec(op_id(), 0..4))
            .prop_map(move |(ops, missing)| Response::Ops { repo, ops, missing })
    })
}

/// A chunk that satisfies [`PackChunk::validate`]: a pack of `total` bytes (known or
/// not), of which this chunk is some slice, the last one or not.
pub(super) fn pack_chunk() -> impl Strategy<Value = PackChunk> {
    (
        repo_id(),
        vec(any::<u8>(), 0..64),
        0u64..1 << 40,
        0u64..1 << 20,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(repo, data, offset, slack, known, last)| {
            let end = offset + data.len() as u64;
            let total = if last {
                Some(end)
            } else if known {
                Some(end + slack)
            } else {
                None
            };
            PackChunk {
                repo,
                offset,
                total,
                data,
                last,
            }
        })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::BadRequest),
        Just(ErrorCode::NotFound),
        Just(ErrorCode::Forbidden),
        Just(ErrorCode::Busy),
        Just(ErrorCode::PackChanged),
        Just(ErrorCode::Internal),
    ]
}

pub(super) fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (repo_digests(), proptest::option::of(repo_id()))
            .prop_map(|(repos, next)| Response::Repos { repos, next }),
        vec(
            (repo_id(), vec(op_id(), 0..6)).prop_map(|(repo, heads)| RepoHeads::new(repo, heads)),
            0..6
        )
        .prop_map(|repos| Response::Heads { repos }),
        ops_response(),
        pack_chunk().prop_map(Response::PackChunk),
        (error_code(), "\\PC{0,40}").prop_map(|(code, message)| Response::Error { code, message }),
        (
            any::<[u8; 32]>(),
            vec(any::<u8>(), 0..64),
            proptest::option::of("[a-z:/0-9]{0,40}")
        )
            .prop_map(|(digest, sealed, next)| Response::Accounts {
                digest,
                sealed,
                next
            }),
        any::<[u8; 32]>().prop_map(|proof| Response::Hello { proof }),
    ]
}
