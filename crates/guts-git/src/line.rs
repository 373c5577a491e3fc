//! Helpers shared by the request parsers and writers: reading lines with the caps of
//! [`crate::limits`] applied, and checking text before it is written into a line.

use std::io::Write;

use crate::error::{ParseError, WriteError, quote};
use crate::limits::MAX_REF_NAME_LEN;
use crate::oid::Oid;
use crate::pktline::{self, Packet, PktReader};

/// A [`PktReader`] for requests: pkt-line errors become [`ParseError`]s, and an `ERR`
/// packet from the client becomes [`ParseError::Remote`] wherever it appears, as git's
/// readers treat it (`PACKET_READ_DIE_ON_ERR_PACKET`).
#[derive(Debug, Clone)]
pub(crate) struct Lines<'a> {
    reader: PktReader<'a>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self {
            reader: PktReader::new(buf),
        }
    }

    /// The next packet, or `None` when the input ends before one is complete.
    pub(crate) fn next(&mut self) -> Result<Option<Packet<'a>>, ParseError> {
        let packet = self.reader.next_packet()?;
        if let Some(message) = packet.and_then(|p| p.data()).and_then(pktline::err_message) {
            return Err(ParseError::Remote(quote(message)));
        }
        Ok(packet)
    }

    /// The next packet; the input ending first is [`ParseError::Truncated`].
    pub(crate) fn expect(&mut self, expected: &'static str) -> Result<Packet<'a>, ParseError> {
        self.next()?.ok_or(ParseError::Truncated { expected })
    }

    pub(crate) fn position(&self) -> usize {
        self.reader.position()
    }

    pub(crate) fn is_at_end(&self) -> bool {
        self.reader.is_at_end()
    }

    /// Succeeds only when every byte has been consumed.
    pub(crate) fn finish(&self) -> Result<(), ParseError> {
        match self.reader.rest().len() {
            0 => Ok(()),
            extra => Err(ParseError::TrailingBytes(extra)),
        }
    }
}

pub(crate) fn oid(field: &'static str, hex: &[u8]) -> Result<Oid, ParseError> {
    Oid::from_hex(hex).map_err(ParseError::oid(field))
}

/// Appends `item` unless `list` already holds `max` items: the caps on counts that keep
/// a hostile request from growing a list without bound.
pub(crate) fn push_capped<T>(
    list: &mut Vec<T>,
    item: T,
    field: &'static str,
    max: usize,
) -> Result<(), ParseError> {
    if list.len() >= max {
        return Err(ParseError::TooMany { field, max });
    }
    list.push(item);
    Ok(())
}

/// Text without control characters, as UTF-8, of at most `max` bytes.
pub(crate) fn text(field: &'static str, bytes: &[u8], max: usize) -> Result<String, ParseError> {
    if bytes.len() > max {
        return Err(ParseError::TooLong {
            field,
            max,
            found: bytes.len(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::InvalidUtf8 { field })?;
    if text.chars().any(char::is_control) {
        return Err(ParseError::InvalidValue {
            field,
            value: quote(bytes),
        });
    }
    Ok(text.to_owned())
}

/// A capability word or value (`agent=`, `session-id=`): printable ASCII without
/// spaces, as gitprotocol-capabilities defines agent strings (git's clients sanitise
/// theirs to that), so that what is parsed can always be written back.
pub(crate) fn token(field: &'static str, bytes: &[u8]) -> Result<String, ParseError> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(ParseError::InvalidValue {
            field,
            value: quote(bytes),
        });
    }
    text(field, bytes, crate::pktline::MAX_DATA_LEN)
}

/// A ref name (or ref prefix, or revision) from a request: at most
/// [`MAX_REF_NAME_LEN`] bytes of UTF-8 without spaces or control characters. This is
/// only what the line grammar needs; the full `git check-ref-format` rules are the
/// server's to apply (guts-core's `validate_ref_name`), since a ref prefix or a
/// `deepen-not` revision is not a full ref name.
pub(crate) fn ref_name(
    field: &'static str,
    bytes: &[u8],
    allow_empty: bool,
) -> Result<String, ParseError> {
    if (bytes.is_empty() && !allow_empty) || bytes.contains(&b' ') {
        return Err(ParseError::InvalidValue {
            field,
            value: quote(bytes),
        });
    }
    text(field, bytes, MAX_REF_NAME_LEN)
}

/// A decimal number: ASCII digits only (no sign, no spaces, no `0x`), unlike the
/// `strtol` git uses, so that one value has one spelling.
pub(crate) fn number<T: std::str::FromStr>(
    field: &'static str,
    bytes: &[u8],
) -> Result<T, ParseError> {
    let invalid = || ParseError::InvalidValue {
        field,
        value: quote(bytes),
    };
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(invalid)
}

/// The space-separated words of a capability list. Empty words are skipped: git's
/// send-pack puts a space between the NUL and the first capability.
pub(crate) fn words(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|&b| b == b' ').filter(|w| !w.is_empty())
}

/// Refuses a ref name that would break the line it is written into.
pub(crate) fn check_ref_name(field: &'static str, name: &str) -> Result<(), WriteError> {
    let reason = if name.is_empty() {
        Some("is empty")
    } else if name.len() > MAX_REF_NAME_LEN {
        Some("is longer than 4096 bytes")
    } else if name.chars().any(|c| c == ' ' || c.is_control()) {
        Some("contains a space or control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(invalid(field, name, reason)),
        None => Ok(()),
    }
}

/// Refuses a capability (or capability value) that is not printable ASCII without
/// spaces: a space would split it into two capabilities, and a NUL or LF would end the
/// list.
pub(crate) fn check_token(field: &'static str, token: &str) -> Result<(), WriteError> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            field,
            token,
            "must be printable ascii without spaces",
        ));
    }
    Ok(())
}

/// Refuses free text (a filter spec, a push option) containing control characters.
pub(crate) fn check_text(field: &'static str, text: &str) -> Result<(), WriteError> {
    if text.chars().any(char::is_control) {
        return Err(invalid(field, text, "contains a control character"));
    }
    Ok(())
}

fn invalid(field: &'static str, value: &str, reason: &'static str) -> WriteError {
    WriteError::Invalid {
        field,
        value: quote(value.as_bytes()),
        reason,
    }
}

/// A line assembled in memory and written as one pkt-line with its LF.
#[derive(Debug, Default)]
pub(crate) struct LineBuf {
    buf: Vec<u8>,
}

impl LineBuf {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(crate) fn push_str(&mut self, text: &str) -> &mut Self {
        self.push(text.as_bytes())
    }

    pub(crate) fn oid(&mut self, oid: &Oid) -> &mut Self {
        self.push(&oid.to_hex())
    }

    /// Writes the line, LF appended, as one data packet, and empties the buffer.
    pub(crate) fn write_to<W: Write + ?Sized>(&mut self, out: &mut W) -> Result<(), WriteError> {
        pktline::write_line(out, &self.buf)?;
        self.buf.clear();
        Ok(())
    }
}
