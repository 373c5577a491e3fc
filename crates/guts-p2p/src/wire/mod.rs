//! The sync protocol's messages and their wire encoding.
//!
//! Three families, one enum each, because they travel on different channels and a
//! decoder for one channel must refuse the messages of another:
//!
//! - [`Gossip`]: published on gossipsub, one topic per repository: "these are my heads".
//! - [`Request`] / [`Response`]: the request-response sync protocol. Anti-entropy lists
//!   a peer's repositories with their heads digests ([`Request::Repos`]), asks for the
//!   heads of those that differ ([`Request::Heads`]), then for missing operations by id
//!   ([`Request::Ops`]), then for the git objects they need as a pack, in chunks
//!   ([`Request::Pack`]). A fresh node catches up from nothing by the same path,
//!   starting from an empty set of repositories.
//!
//! # Frame
//!
//! Every message is one frame (integers big-endian, as in guts-core's codec):
//!
//! | field   | bytes                                                        |
//! |---------|--------------------------------------------------------------|
//! | version | `u8` = [`WIRE_VERSION`]                                      |
//! | tag     | `u16`: which message (the high byte names the family)        |
//! | length  | `u32`: body length, at most [`MAX_FRAME_BYTES`] − [`HEADER_LEN`] |
//! | body    | the message's fields in declaration order                    |
//!
//! There is no magic number: the libp2p protocol name (and the gossipsub topic) already
//! says what the stream carries, and the version byte is what lets the format change.
//! The length prefix lets a stream reader ask [`frame_len`] how much to read and refuse
//! an oversized frame from its header alone, before buffering the body.
//!
//! Lists are a `u32` count then the items; byte strings a `u32` length then the bytes;
//! `Option` a `u8` tag (0 none, 1 some) then the value; `bool` a `u8` 0 or 1. Operations
//! are carried as their canonical signed encoding, length-prefixed, and decoded with
//! [`SignedOp::decode`](guts_core::SignedOp::decode), which verifies the signature.
//!
//! # Canonical and hostile-input safe
//!
//! A decoder accepts exactly what the encoder produces: unknown versions, unknown tags,
//! a length that disagrees with the input, trailing bytes, a list or field over its cap,
//! a byte that is not a valid boolean: each is a typed [`WireError`], never a panic.
//! Every declared length or count is compared with its cap and with the input that
//! remains before anything is allocated for it. Encoders refuse (with a `WireError`)
//! every value a decoder would refuse, so a node never sends what its peers drop.

mod body;
mod message;

#[cfg(test)]
mod strategy;
#[cfg(test)]
mod tests;

use guts_core::codec::{Reader, Writer};
use guts_core::{DecodeError, EncodeError, OpId, RepoId};

pub use message::{
    ErrorCode, Gossip, HeadsDigest, PackChunk, RepoDigest, RepoHeads, Request, Response,
};

/// The first byte of every frame. A peer speaking another version is refused with
/// [`WireError::UnsupportedVersion`]; the libp2p protocol name carries the version too,
/// so peers normally negotiate before a frame is sent.
pub const WIRE_VERSION: u8 = 1;
/// Bytes before the body: version, tag and body length.
pub const HEADER_LEN: usize = 1 + 2 + 4;
/// Largest frame, header included. Above the largest operation
/// ([`guts_core::codec::MAX_OP_BYTES`], 1 MiB) and a full [`MAX_OPS_BYTES`] response,
/// small enough that a peer can hold one frame per stream in memory.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
/// Largest body: what the length prefix may declare.
pub const MAX_BODY_BYTES: usize = MAX_FRAME_BYTES - HEADER_LEN;
/// Largest pack chunk. Small enough to interleave with other streams on one
/// connection; a lost connection costs at most this much to resume.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;
/// Most heads one repository may list (in an announcement or a heads response). A DAG
/// with more concurrent heads than this is pathological; its next operation merges them
/// (an operation names at most 64 parents, so this allows a backlog of merges).
pub const MAX_HEADS: usize = 1024;
/// Most repositories per request or response page. Anti-entropy pages through more.
pub const MAX_REPOS: usize = 4096;
/// Most operation ids one [`Request::Ops`] may want; also caps the operations and the
/// missing ids of its response, which can only concern what was wanted.
pub const MAX_WANT_OPS: usize = 4096;
/// Most bytes of encoded operations in one [`Response::Ops`]. A responder sends what
/// fits and leaves the rest out (neither sent nor listed as missing): the requester
/// asks again for what did not come. At least one maximum-size operation always fits.
pub const MAX_OPS_BYTES: usize = 4 * 1024 * 1024;
/// Most object ids in a pack request's wants, and again in its haves.
pub const MAX_PACK_IDS: usize = 16 * 1024;
/// Largest sealed page of account records ([`Response::Accounts`]).
pub const MAX_ACCOUNTS_BYTES: usize = 4 * 1024 * 1024;
/// Longest trace context (a W3C `traceparent` is 55 bytes).
pub const MAX_TRACE_BYTES: usize = 256;
/// Longest account-page cursor (a record key).
pub const MAX_CURSOR_BYTES: usize = 512;
/// Longest human-readable message of an error response.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 1024;

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("unsupported wire version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown {family} message tag {tag:#06x}")]
    UnknownTag { family: &'static str, tag: u16 },
    #[error("frame is {found} bytes, more than the limit of {max}")]
    FrameTooLarge { max: usize, found: usize },
    /// The input ends before the header or the body its header declares.
    #[error("truncated frame: needs {needed} bytes, {available} available")]
    Truncated { needed: usize, available: usize },
    /// The input goes on after the body its header declares.
    #[error("{0} trailing bytes after the frame")]
    TrailingBytes(usize),
    /// The body does not parse: a field over its cap, a bad boolean or option tag,
    /// bytes left over inside the body, and so on.
    #[error("malformed body: {0}")]
    Body(#[from] DecodeError),
    /// An encoder cap was exceeded (a list or field longer than a decoder accepts).
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// An operation in an ops response does not decode or does not verify.
    #[error("operation {index} is invalid: {source}")]
    InvalidOp {
        index: usize,
        #[source]
        source: DecodeError,
    },
    /// An operation in an ops response belongs to a repository other than the one the
    /// response is about: a peer mixing up repositories is misbehaving.
    #[error("operation {index} belongs to repository {found}, not {expected}")]
    ForeignOp {
        index: usize,
        expected: RepoId,
        found: RepoId,
    },
    #[error("operations total {found} bytes, more than the limit of {max}")]
    OpsTooLarge { max: usize, found: usize },
    /// A pack chunk that does not fit its own bounds: it ends past the pack's total
    /// (or past `u64::MAX`), or it is marked last but does not end at the total.
    #[error(
        "pack chunk at offset {offset} of {len} bytes does not fit a pack of {total:?} bytes (last: {last})"
    )]
    BadChunk {
        offset: u64,
        len: usize,
        total: Option<u64>,
        last: bool,
    },
    #[error("{field} are not strictly ascending")]
    NotAscending { field: &'static str },
    #[error("unknown error code {0}")]
    UnknownErrorCode(u16),
    /// A trace context with bytes other than printable ASCII.
    #[error("trace context is not printable ASCII")]
    BadTrace,
}

/// How many bytes the frame starting at `prefix` needs in all, from as much of it as
/// has arrived: [`HEADER_LEN`] while the header is incomplete, then the whole frame's
/// length. A stream reader reads until it holds that many bytes, asking again after the
/// header, then hands exactly that many to a `decode`.
///
/// Fails as soon as the header shows a frame no decoder would accept (another version,
/// or a body over the cap), so an oversized frame is refused before it is buffered. The
/// tag is not checked here: that depends on which family the stream carries.
pub fn frame_len(prefix: &[u8]) -> Result<usize, WireError> {
    match read_header(prefix)? {
        None => Ok(HEADER_LEN),
        Some(header) => Ok(HEADER_LEN + header.body_len),
    }
}

/// The digest of a repository's heads that anti-entropy compares: BLAKE3
/// (`derive_key("guts/heads-digest/v1", …)`) of the heads sorted and deduplicated, so
/// two nodes with the same heads agree whatever order they hold them in. Part of the
/// protocol: both sides must compute it the same way.
pub fn heads_digest(heads: &[OpId]) -> HeadsDigest {
    let mut sorted = heads.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut hasher = blake3::Hasher::new_derive_key("guts/heads-digest/v1");
    for head in &sorted {
        hasher.update(head.as_bytes());
    }
    *hasher.finalize().as_bytes()
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    tag: u16,
    body_len: usize,
}

/// The header at the start of `input`, `None` if it has not all arrived. Checks the
/// version and the body cap.
fn read_header(input: &[u8]) -> Result<Option<Header>, WireError> {
    if input.len() < HEADER_LEN {
        // Refuse a wrong version as soon as its byte is there.
        return match input.first() {
            Some(&version) if version != WIRE_VERSION => {
                Err(WireError::UnsupportedVersion(version))
            }
            _ => Ok(None),
        };
    }
    let mut r = Reader::new(input);
    let version = r.u8()?;
    if version != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion(version));
    }
    let tag = r.u16()?;
    let body_len = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
    if body_len > MAX_BODY_BYTES {
        return Err(WireError::FrameTooLarge {
            max: MAX_FRAME_BYTES,
            found: HEADER_LEN.saturating_add(body_len),
        });
    }
    Ok(Some(Header { tag, body_len }))
}

/// One family of messages: how each message maps to a tag and a body.
trait Family: Sized {
    /// Named in errors.
    const NAME: &'static str;

    fn tag(&self) -> u16;

    fn encode_body(&self, w: &mut Writer) -> Result<(), WireError>;

    /// Decodes the body of a message tagged `tag`, or `None` if this family has no
    /// such tag. Need not consume all of `r`: the caller checks that.
    fn decode_body(tag: u16, r: &mut Reader<'_>) -> Result<Option<Self>, WireError>;
}

fn encode_frame<F: Family>(message: &F) -> Result<Vec<u8>, WireError> {
    let mut body = Writer::new();
    message.encode_body(&mut body)?;
    let body = body.into_bytes();
    let too_large = WireError::FrameTooLarge {
        max: MAX_FRAME_BYTES,
        found: HEADER_LEN.saturating_add(body.len()),
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large);
    }
    let body_len = u32::try_from(body.len()).map_err(|_| too_large)?;
    let mut w = Writer::new();
    w.u8(WIRE_VERSION);
    w.u16(message.tag());
    w.u32(body_len);
    w.fixed(&body);
    Ok(w.into_bytes())
}

fn decode_frame<F: Family>(input: &[u8]) -> Result<F, WireError> {
    let header = read_header(input)?.ok_or(WireError::Truncated {
        needed: HEADER_LEN,
        available: input.len(),
    })?;
    let needed = HEADER_LEN + header.body_len;
    let body = match input.len().cmp(&needed) {
        std::cmp::Ordering::Less => {
            return Err(WireError::Truncated {
                needed,
                available: input.len(),
            });
        }
        std::cmp::Ordering::Greater => {
            return Err(WireError::TrailingBytes(input.len() - needed));
        }
        std::cmp::Ordering::Equal => input.get(HEADER_LEN..).unwrap_or_default(),
    };
    let mut r = Reader::new(body);
    let message = F::decode_body(header.tag, &mut r)?.ok_or(WireError::UnknownTag {
        family: F::NAME,
        tag: header.tag,
    })?;
    r.finish()?;
    Ok(message)
}

/// `encode` and `decode` for each family, spelled out so that callers need no trait.
macro_rules! codec_methods {
    ($($family:ty),*) => {$(
        impl $family {
            /// The frame for this message. Fails on any value a decoder would refuse.
            pub fn encode(&self) -> Result<Vec<u8>, WireError> {
                encode_frame(self)
            }

            /// Decodes exactly one frame of this family from untrusted bytes: no more,
            /// no less. Never panics.
            pub fn decode(input: &[u8]) -> Result<Self, WireError> {
                decode_frame(input)
            }
        }
    )*};
}

codec_methods!(Gossip, Request, Response);
