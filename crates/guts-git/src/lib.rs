//! Git's wire protocol as spoken by `git clone`, `fetch` and `push` over smart HTTP:
//! parsers for what clients send and writers for what servers answer, as pure
//! functions of bytes.
//!
//! Architecture invariant: no storage, no HTTP, no async, no I/O beyond `&[u8]` (or, for
//! [`section`], any [`std::io::Read`]) in and [`std::io::Write`] out. The upload-pack
//! and receive-pack servers (which read refs and objects, and stream packs) are built
//! on top of this (module `serve`, feature `server`); this crate
//! decides only what bytes mean and which bytes to write, so every line of it can be
//! property-tested and fuzzed.
//!
//! Layers, bottom up:
//! - [`oid`]: the 20-byte SHA-1 ids the protocol names objects with;
//! - [`pktline`]: pkt-line framing, `ERR` packets and side-band multiplexing;
//! - [`section`]: one message at a time from a full-duplex stream (git over SSH), with
//!   caps on a message's size and a session's length;
//! - [`v0`]: protocol v0/v1 — the ref advertisement, the upload-pack request (wants,
//!   shallow/deepen, haves, done) and the receive-pack command list (push);
//! - [`v2`]: protocol v2 — the capability advertisement, command requests (`ls-refs`,
//!   `fetch`) and the `ls-refs` response.
//!
//! Input is hostile: parsers never panic, never index without a bounds check, and cap
//! every count and length (see [`limits`]), so a request costs at most a small constant
//! times its own size in memory, whatever it claims. Git's protocol documents
//! (gitprotocol-common, -pack, -v2, -http, -capabilities) are the specification; where
//! git's own server is stricter or laxer than the text, the doc comment says which one
//! this crate follows and why.

pub mod deepen;
pub mod error;
pub mod oid;
pub mod pktline;
pub mod section;
#[cfg(feature = "server")]
pub mod serve;
pub mod v0;
pub mod v2;

pub(crate) mod line;

#[cfg(test)]
pub(crate) mod arbitrary;

pub use deepen::Deepen;
pub use error::{ParseError, WriteError};
pub use oid::{Oid, OidError};
pub use pktline::{Band, Packet, PktError, PktReader};

/// Caps on what one request may contain. A request over any of them is refused with
/// [`ParseError::TooMany`] or [`ParseError::TooLong`] rather than truncated, so a client
/// is never served something other than what it asked for.
pub mod limits {
    /// Most items in any one list of a request: wants, haves, shallows, want-refs,
    /// `deepen-not` revisions, ref updates of a push, push options and server options.
    /// Far above what git sends (it negotiates in rounds of at most a few hundred haves;
    /// a mirror push of 100,000 refs would be extraordinary), and it bounds a parsed list
    /// to a few megabytes.
    pub const MAX_LIST_LEN: usize = 100_000;

    /// Longest ref name, ref prefix or revision accepted, in bytes. Git has no hard
    /// limit, but no real ref comes near it.
    pub const MAX_REF_NAME_LEN: usize = 4096;

    /// Number of `ref-prefix` arguments of one `ls-refs` at which all of them are
    /// dropped and every ref is listed, as git's server does (ls-refs.c,
    /// `TOO_MANY_PREFIXES`): prefixes only narrow a listing the client filters anyway.
    pub const MAX_REF_PREFIXES: usize = 65_536;

    /// Most capabilities a request may name that this crate does not know. They are
    /// kept (a server must refuse capabilities it did not advertise), but only this many.
    pub const MAX_UNKNOWN_CAPABILITIES: usize = 64;
}

/// The agent string Guts advertises (`agent=guts/<version>`).
pub const AGENT: &str = concat!("guts/", env!("CARGO_PKG_VERSION"));
