//! Peer-to-peer replication for Guts (DESIGN.md section 4, "Replication").
//!
//! [`wire`] holds the messages of the sync protocol and their versioned,
//! length-prefixed, size-capped binary encoding; [`replica`] is what the sync protocol
//! needs from the node's storage, as a trait the node implements; [`directory`] is what
//! the admin API may ask of the sync layer, as a trait without the network; `net` (feature `net`,
//! on by default) is the libp2p network layer: one task owns the swarm, a cloneable
//! handle talks to it. libp2p stays inside this crate: nothing else in the workspace
//! knows it (peer ids and addresses are re-exported from `net` for the crates above).
//!
//! Architecture invariant: the wire decoder never panics and never allocates more than
//! a small constant times the input it was given; every message a decoder accepts
//! re-encodes to exactly the bytes it came from.

pub mod directory;
#[cfg(feature = "net")]
pub mod net;
pub mod replica;
#[cfg(feature = "net")]
pub mod sync;
pub mod wire;
