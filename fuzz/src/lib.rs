//! Helpers shared by the fuzz targets and `examples/gen_corpus.rs`.
//!
//! The op-id derivation and the signed message are restated here from the protocol
//! (guts-core `op.rs`) rather than called, for two reasons: guts-core keeps them
//! private, and an independent restatement is what lets the `op_decode` target check
//! that an accepted operation's id and signature are what the protocol says, not just
//! what guts-core happens to compute. If the protocol changes, `op_decode` fails on its
//! seed corpus at once (a re-signed operation is rejected), so the two cannot drift
//! apart silently.

use guts_core::{Keypair, OpId};

/// blake3 `derive_key` context of operation ids (guts-core `op::OP_ID_CONTEXT`).
pub const OP_ID_CONTEXT: &str = "guts/op-id/v1";
/// Prefix of the message an operation's author signs (guts-core `op::OP_SIGNATURE_DOMAIN`).
pub const OP_SIGNATURE_DOMAIN: &[u8] = b"guts/op/v1";
/// Length of an ed25519 signature, the tail of every encoded signed operation.
pub const SIGNATURE_LEN: usize = 64;

/// Seed of the key that signs the seed corpus and that `op_decode` re-signs mutated
/// operations with. Fixed, so the corpus is reproducible and the target can rebuild
/// the exact bytes of any operation this key authored.
pub const AUTHOR_SEED: [u8; 32] = [0x5a; 32];

pub fn author_key() -> Keypair {
    Keypair::from_seed(&AUTHOR_SEED)
}

/// The id of an operation whose unsigned encoding is `unsigned`.
pub fn op_id(unsigned: &[u8]) -> OpId {
    OpId::from_bytes(blake3::derive_key(OP_ID_CONTEXT, unsigned))
}

/// What the author of operation `id` signs.
pub fn signing_message(id: &OpId) -> Vec<u8> {
    let mut message = Vec::with_capacity(OP_SIGNATURE_DOMAIN.len() + OpId::LEN);
    message.extend_from_slice(OP_SIGNATURE_DOMAIN);
    message.extend_from_slice(id.as_bytes());
    message
}
