//! The errors of parsing requests ([`ParseError`]) and of writing ([`WriteError`]).
//! Framing and id errors live with their modules ([`PktError`], [`OidError`]); a parse
//! error wraps them.
//!
//! One parse error type serves v0 and v2 alike because their failures are the same
//! kinds of thing (a bad line, a missing flush, a cap exceeded) and the server does the
//! same with each: send the message back in an `ERR` packet and end the request. The
//! messages are therefore written for a git user to read, and any client bytes quoted in
//! them are ASCII-escaped and cut at 64 bytes so an error can never be used to echo
//! a large or binary payload back.

use crate::oid::OidError;
use crate::pktline::PktError;

/// Why a request could not be parsed. Every malformed input maps to one of these;
/// none panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(transparent)]
    Pkt(#[from] PktError),
    /// The input ended before the request did. For a parser that reports "need more
    /// bytes" instead, this is what the caller turns that into at end of input.
    #[error("request ended early: expected {expected}")]
    Truncated { expected: &'static str },
    #[error("unexpected {found} packet, expected {expected}")]
    UnexpectedPacket {
        found: &'static str,
        expected: &'static str,
    },
    /// A line the grammar does not allow here (git's server says "unexpected line").
    #[error("unexpected line '{line}', expected {expected}")]
    UnexpectedLine {
        line: String,
        expected: &'static str,
    },
    #[error("invalid object id in {field}: {source}")]
    InvalidOid {
        field: &'static str,
        #[source]
        source: OidError,
    },
    #[error("invalid {field} '{value}'")]
    InvalidValue { field: &'static str, value: String },
    #[error("{field} is not valid utf-8")]
    InvalidUtf8 { field: &'static str },
    #[error("more than {max} {field} in one request")]
    TooMany { field: &'static str, max: usize },
    #[error("{field} is {found} bytes, more than the limit of {max}")]
    TooLong {
        field: &'static str,
        max: usize,
        found: usize,
    },
    #[error("{field} given more than once")]
    Duplicate { field: &'static str },
    /// git: "deepen and deepen-since (or deepen-not) cannot be used together".
    #[error("deepen cannot be combined with deepen-since or deepen-not")]
    ConflictingDeepen,
    /// gitprotocol-capabilities: "The server MUST diagnose it as an error if client
    /// requests both".
    #[error("side-band and side-band-64k requested together")]
    ConflictingSideband,
    #[error("filter requested without the filter capability")]
    FilterNotNegotiated,
    /// Every id this crate parses is SHA-1; a client asking for another hash would send
    /// ids that do not fit.
    #[error("unsupported object format '{0}'")]
    UnsupportedObjectFormat(String),
    /// A protocol feature Guts recognises but does not implement (push certificates).
    #[error("{feature} is not supported")]
    Unsupported { feature: &'static str },
    #[error("unknown command '{0}'")]
    UnknownCommand(String),
    #[error("unknown capability '{0}'")]
    UnknownCapability(String),
    #[error("unknown argument '{0}'")]
    UnknownArgument(String),
    #[error("no command requested")]
    NoCommand,
    /// The client sent an `ERR` packet: it has given up on the exchange.
    #[error("remote error: {0}")]
    Remote(String),
    #[error("{0} trailing bytes after the request")]
    TrailingBytes(usize),
}

impl ParseError {
    pub(crate) fn oid(field: &'static str) -> impl FnOnce(OidError) -> ParseError {
        move |source| ParseError::InvalidOid { field, source }
    }

    pub(crate) fn unexpected(line: &[u8], expected: &'static str) -> ParseError {
        ParseError::UnexpectedLine {
            line: quote(line),
            expected,
        }
    }
}

/// Why a writer refused its input. With a `Vec<u8>` as the output only the first two
/// can happen, and only for inputs a caller could have checked.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("pkt-line payload is {len} bytes, more than the limit of {max}")]
    TooLong { len: usize, max: usize },
    /// Text that would change the meaning of the line it is written into (a space in a
    /// ref name, a newline in a capability).
    #[error("invalid {field} '{value}': {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("writing pkt-lines: {0}")]
    Io(#[from] std::io::Error),
}

/// Longest excerpt of client input quoted in an error message, in input bytes.
const QUOTE_MAX: usize = 64;

/// Client bytes made safe to show: ASCII-escaped (so no control characters or invalid
/// UTF-8 reach a log line or terminal) and cut at [`QUOTE_MAX`] bytes.
pub(crate) fn quote(bytes: &[u8]) -> String {
    let shown = bytes.get(..QUOTE_MAX).unwrap_or(bytes);
    let mut out = shown.escape_ascii().to_string();
    if shown.len() < bytes.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_and_truncates() {
        assert_eq!(quote(b"want x\n"), "want x\\n");
        assert_eq!(quote(b"\x00\xff"), "\\x00\\xff");
        let long = [b'a'; 100];
        assert_eq!(quote(&long), format!("{}...", "a".repeat(QUOTE_MAX)));
    }
}
