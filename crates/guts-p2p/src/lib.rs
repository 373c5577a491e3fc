//! Peer-to-peer replication for Guts (DESIGN.md section 4, "Replication").
//!
//! Today this crate holds only [`wire`]: the messages of the sync protocol and their
//! versioned, length-prefixed, size-capped binary encoding. The libp2p swarm (gossipsub
//! announcements, the request-response sync protocol, discovery, anti-entropy) comes
//! later and stays inside this crate: nothing else in the workspace knows libp2p.
//!
//! Architecture invariant: the wire decoder never panics and never allocates more than
//! a small constant times the input it was given; every message a decoder accepts
//! re-encodes to exactly the bytes it came from.

pub mod wire;
