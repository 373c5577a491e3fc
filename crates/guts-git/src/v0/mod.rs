//! Protocol v0 (and v1, which only adds a `version 1` line to the advertisement): the
//! ref advertisement a server opens with, the upload-pack request of a fetch and the
//! receive-pack command list of a push (gitprotocol-pack, gitprotocol-http).
//!
//! Git uses v2 for fetches by default since 2.26, but pushes are always v0, and v0
//! fetches remain for old clients and `protocol.version=0`.
//!
//! Over smart HTTP each exchange is one request body: a fetch's body holds the whole
//! want list and this round's haves (the client replays what it must: "stateless RPC"),
//! so [`parse_upload_request`] reads one complete body; a push's body is the command
//! list followed by the pack, so [`ReceiveParser`] reads the command list from a buffer
//! that grows as the body arrives and says where the pack begins.

mod advertise;
mod receive;
mod upload;

pub use advertise::{AdvertisedRef, Advertisement, Service, write_advertisement};
pub use receive::{
    ReceiveCapabilities, ReceiveParser, ReceiveRequest, ReceiveStep, RefUpdate,
    parse_receive_request,
};
pub use upload::{
    HaveRound, UploadCapabilities, UploadRequest, parse_have_round, parse_upload_request,
};

use crate::error::{ParseError, quote};
use crate::limits::MAX_UNKNOWN_CAPABILITIES;
use crate::line;

/// The value of a `key=value` capability word whose key is `key`.
fn value_of<'a>(word: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    word.strip_prefix(key)?.strip_prefix(b"=")
}

/// The value of a capability that carries text (`agent=`, `session-id=`).
fn cap_value(field: &'static str, value: &[u8]) -> Result<String, ParseError> {
    line::token(field, value)
}

/// Checks an `object-format=` value: only SHA-1 ids are spoken.
fn check_object_format(value: &[u8]) -> Result<(), ParseError> {
    if value == b"sha1" {
        Ok(())
    } else {
        Err(ParseError::UnsupportedObjectFormat(quote(value)))
    }
}

/// The capability words both services share, after their own flags were tried:
/// `agent=` and `session-id=` (kept), `object-format=` (must be sha1), and anything else
/// (kept in `unknown` for the server to refuse).
fn parse_shared_capability(
    word: &[u8],
    agent: &mut Option<String>,
    session_id: &mut Option<String>,
    unknown: &mut Vec<String>,
) -> Result<(), ParseError> {
    if let Some(value) = value_of(word, b"agent") {
        *agent = Some(cap_value("agent", value)?);
    } else if let Some(value) = value_of(word, b"session-id") {
        *session_id = Some(cap_value("session-id", value)?);
    } else if let Some(value) = value_of(word, b"object-format") {
        check_object_format(value)?;
    } else {
        push_unknown(unknown, word)?;
    }
    Ok(())
}

/// Keeps a capability this crate does not know, up to [`MAX_UNKNOWN_CAPABILITIES`].
fn push_unknown(unknown: &mut Vec<String>, word: &[u8]) -> Result<(), ParseError> {
    let word = line::token("capability", word)?;
    line::push_capped(
        unknown,
        word,
        "unknown capabilities",
        MAX_UNKNOWN_CAPABILITIES,
    )
}
