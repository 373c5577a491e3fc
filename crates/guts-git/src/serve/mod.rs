//! The upload-pack and receive-pack servers: git's smart protocol over guts-storage,
//! for `git clone`, `fetch` and `push` over HTTP (stateless RPC: one request, one
//! response) and over a full-duplex stream (SSH: one session per command).
//!
//! Architecture invariant: no transport here (no HTTP, no SSH). The edge (guts-api for
//! HTTP, the SSH server) authenticates, decides access, hands in a blocking
//! [`std::io::Read`] (a request body, or the channel's input) and streams whatever is
//! written to the [`std::io::Write`] it passes in. Everything here is blocking I/O on
//! files and packs, so callers run it on the blocking pool; only the ref updates of a
//! push (which go through the operation log) are async.
//!
//! - [`refs`]: ref advertisements (v0 `info/refs`, v2 `ls-refs`);
//! - [`upload`]: `git-upload-pack` (v0 negotiation, v2 `fetch`), built on [`walk`]
//!   (which objects to send, shallow boundaries) and [`pack`] (streaming a pack with
//!   gix, reusing stored deltas);
//! - [`receive`]: `git-receive-pack`, built on [`ingest`] (quarantine, index, verify,
//!   connectivity) and `Repositories::update_refs` (signed ref operations);
//! - [`stream`]: both services over one stream (stateful v0 negotiation, the v2
//!   command loop), built on the above and [`crate::section`].

mod index;
pub mod ingest;
pub mod metrics;
pub mod pack;
pub mod packs;
pub mod receive;
pub mod refs;
pub mod replicate;
pub mod stream;
pub mod upload;
pub mod walk;

pub use metrics::{GitMetrics, Transport};
pub use receive::{PushOutcome, RefResults, receive_pack};
pub use refs::{Connection, advertise, advertise_on};
pub use stream::{receive_pack_stream, upload_pack_stream};
pub use upload::{UploadOutcome, upload_pack};
pub use walk::PlanCache;

use crate::error::{ParseError, WriteError};

/// Which protocol the client asked for: with its `Git-Protocol` header over HTTP, or
/// its `GIT_PROTOCOL` environment variable over SSH (the same text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V0,
    V2,
}

impl Protocol {
    /// From the `Git-Protocol` header or `GIT_PROTOCOL` value (`version=2`, possibly
    /// among other colon-separated keys); anything else is v0, as in git.
    pub fn from_header(value: Option<&str>) -> Protocol {
        let v2 = value.is_some_and(|v| v.split(':').any(|kv| kv.trim() == "version=2"));
        if v2 { Protocol::V2 } else { Protocol::V0 }
    }

    pub fn label(self) -> &'static str {
        match self {
            Protocol::V0 => "v0",
            Protocol::V2 => "v2",
        }
    }
}

/// Why serving a request failed. Client-caused errors are also reported to the client
/// in-band (an `ERR` line or an `unpack`/`ng` report) before this is returned.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reading the request: {0}")]
    Read(std::io::Error),
    /// Usually the client went away; nothing more can be told to it.
    #[error("writing the response: {0}")]
    Write(std::io::Error),
    #[error("request: {0}")]
    Parse(#[from] ParseError),
    /// Well-formed but unsatisfiable (an unknown object wanted, a bad pack).
    #[error("{0}")]
    Refused(String),
    #[error("request body over {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("object database: {0}")]
    Git(String),
    #[error("storage: {0}")]
    Storage(String),
}

impl ServeError {
    /// Whether the client caused it (logged at a lower level, counted apart).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            ServeError::Read(_)
                | ServeError::Write(_)
                | ServeError::Parse(_)
                | ServeError::Refused(_)
                | ServeError::TooLarge { .. }
        )
    }

    pub(crate) fn git(e: impl std::fmt::Display) -> ServeError {
        ServeError::Git(e.to_string())
    }
}

impl From<WriteError> for ServeError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Io(io) => ServeError::Write(io),
            other => ServeError::Git(other.to_string()),
        }
    }
}

impl From<guts_storage::StoreError> for ServeError {
    fn from(e: guts_storage::StoreError) -> Self {
        ServeError::Storage(e.to_string())
    }
}

/// Reads `reader` to its end, refusing more than `limit` bytes.
pub(crate) fn read_capped(
    reader: &mut dyn std::io::Read,
    limit: u64,
) -> Result<Vec<u8>, ServeError> {
    let mut body = Vec::new();
    let read = std::io::Read::read_to_end(&mut std::io::Read::take(reader, limit + 1), &mut body)
        .map_err(ServeError::Read)?;
    if read as u64 > limit {
        return Err(ServeError::TooLarge { limit });
    }
    Ok(body)
}

/// gix ids and ours are the same 20 bytes.
pub(crate) fn to_gix(oid: &crate::Oid) -> gix::ObjectId {
    gix::ObjectId::Sha1(*oid.as_bytes())
}

pub(crate) fn from_gix(id: &gix::oid) -> Option<crate::Oid> {
    let bytes: [u8; crate::Oid::LEN] = id.as_bytes().try_into().ok()?;
    Some(crate::Oid::from_bytes(bytes))
}
