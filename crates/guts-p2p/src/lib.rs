//! Peer-to-peer replication for Guts (DESIGN.md section 4, "Replication").
//!
//! [`wire`] holds the messages of the sync protocol and their versioned,
//! length-prefixed, size-capped binary encoding; [`replica`] is what the sync protocol
//! needs from the node's storage, as a trait the node implements. libp2p stays inside
//! this crate: nothing else in the workspace knows it.
//!
//! Architecture invariant: the wire decoder never panics and never allocates more than
//! a small constant times the input it was given; every message a decoder accepts
//! re-encodes to exactly the bytes it came from.

pub mod replica;
pub mod wire;
