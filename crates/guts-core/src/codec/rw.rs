//! The writer and the bounds-checked reader the canonical encoding is built from (see
//! the parent module for the format and the rules the reader keeps on hostile input).

use super::{DecodeError, EncodeError};
use crate::hlc::Hlc;
use crate::identity::PublicKey;

/// Appends fixed-width big-endian integers and length-prefixed byte strings.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    pub fn u16(&mut self, value: u16) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub fn u32(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    pub fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    /// The tag of an `Option`: 1 when present. The caller writes the value after it.
    pub fn option_tag(&mut self, present: bool) {
        self.bool(present);
    }

    /// Bytes of a width both sides know (ids, keys, signatures): no length prefix.
    pub fn fixed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn hlc(&mut self, at: Hlc) {
        self.u64(at.wall_ms);
        self.u32(at.counter);
    }

    /// A count of following items, refused above `max` as the reader would refuse it.
    pub fn count(
        &mut self,
        field: &'static str,
        count: usize,
        max: usize,
    ) -> Result<(), EncodeError> {
        let too_many = EncodeError::TooManyItems {
            field,
            max,
            found: count,
        };
        if count > max {
            return Err(too_many);
        }
        self.u32(u32::try_from(count).map_err(|_| too_many)?);
        Ok(())
    }

    /// A `u32` length then the bytes, refused above `max` as the reader would refuse it.
    pub fn bytes(
        &mut self,
        field: &'static str,
        bytes: &[u8],
        max: usize,
    ) -> Result<(), EncodeError> {
        let len = bounded_u32(field, bytes.len(), max)?;
        self.u32(len);
        self.fixed(bytes);
        Ok(())
    }

    pub fn str(&mut self, field: &'static str, text: &str, max: usize) -> Result<(), EncodeError> {
        self.bytes(field, text.as_bytes(), max)
    }

    /// A `u64` length then the bytes, with no cap: for local encodings that must not
    /// fail (folded state, hashed for comparison), never for anything a peer decodes.
    pub fn long_bytes(&mut self, bytes: &[u8]) {
        self.long_count(bytes.len());
        self.fixed(bytes);
    }

    /// A `u64` count, with no cap; see [`Writer::long_bytes`].
    pub fn long_count(&mut self, count: usize) {
        // `usize` is at most 64 bits on every platform Rust supports.
        self.u64(u64::try_from(count).unwrap_or(u64::MAX));
    }
}

/// `value` as a `u32` if it is at most `max` (and fits at all).
fn bounded_u32(field: &'static str, value: usize, max: usize) -> Result<u32, EncodeError> {
    let too_long = EncodeError::FieldTooLong {
        field,
        max,
        found: value,
    };
    if value > max {
        return Err(too_long);
    }
    u32::try_from(value).map_err(|_| too_long)
}

/// Reads what [`Writer`] wrote from untrusted bytes. Every method checks bounds and
/// returns a [`DecodeError`] rather than panicking.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.input.len().saturating_sub(self.pos)
    }

    /// Succeeds only when every byte has been consumed: a canonical encoding has no
    /// slack, and accepting trailing bytes would give one value many encodings.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes(extra)),
        }
    }

    /// The next `n` bytes, borrowed from the input.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end_of_input = DecodeError::UnexpectedEnd {
            needed: n,
            remaining: self.remaining(),
        };
        let end = self.pos.checked_add(n).ok_or(end_of_input.clone())?;
        let slice = self.input.get(self.pos..end).ok_or(end_of_input)?;
        self.pos = end;
        Ok(slice)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| DecodeError::UnexpectedEnd {
            needed: N,
            remaining: bytes.len(),
        })
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let [byte] = self.array::<1>()?;
        Ok(byte)
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::InvalidBool(other)),
        }
    }

    /// The tag of an `Option`: true when a value follows.
    pub fn option_tag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::InvalidOptionTag(other)),
        }
    }

    pub fn hlc(&mut self) -> Result<Hlc, DecodeError> {
        Ok(Hlc {
            wall_ms: self.u64()?,
            counter: self.u32()?,
        })
    }

    /// A count of items of `item_len` bytes each, refused above `max` or when the
    /// items could not fit in the remaining input, so that a caller may allocate
    /// `count` items afterwards without trusting the count.
    pub fn count(
        &mut self,
        field: &'static str,
        max: usize,
        item_len: usize,
    ) -> Result<usize, DecodeError> {
        let count = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if count > max {
            return Err(DecodeError::TooManyItems {
                field,
                max,
                found: count,
            });
        }
        let needed = count.saturating_mul(item_len);
        if needed > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                needed,
                remaining: self.remaining(),
            });
        }
        Ok(count)
    }

    /// A `u32`-length-prefixed byte string of at most `max` bytes, borrowed.
    pub fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if len > max {
            return Err(DecodeError::FieldTooLong {
                field,
                max,
                found: len,
            });
        }
        self.take(len)
    }

    pub fn string(&mut self, field: &'static str, max: usize) -> Result<String, DecodeError> {
        let bytes = self.bytes(field, max)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    /// A `u64` count (as [`Writer::long_count`] writes it) of items of at least
    /// `item_len` bytes each, refused when they could not fit in the remaining input,
    /// so that a caller may allocate `count` items afterwards without trusting it.
    pub fn long_count(
        &mut self,
        field: &'static str,
        item_len: usize,
    ) -> Result<usize, DecodeError> {
        let count = self.u64()?;
        self.fitting(field, count, item_len)
    }

    /// `count` (already read) as a `usize`, if `count` items of at least `item_len`
    /// bytes could fit in the remaining input.
    pub fn fitting(
        &self,
        field: &'static str,
        count: u64,
        item_len: usize,
    ) -> Result<usize, DecodeError> {
        let remaining = self.remaining();
        let count = usize::try_from(count).map_err(|_| DecodeError::TooManyItems {
            field,
            max: remaining,
            found: usize::MAX,
        })?;
        let needed = count.saturating_mul(item_len.max(1));
        if needed > remaining {
            return Err(DecodeError::UnexpectedEnd { needed, remaining });
        }
        Ok(count)
    }

    /// A `u64`-length-prefixed byte string (as [`Writer::long_bytes`] writes it),
    /// borrowed: the length is checked against the input before anything is taken.
    pub fn long_bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.long_count(field, 1)?;
        self.take(len)
    }

    /// A `u64`-length-prefixed UTF-8 string.
    pub fn long_string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let bytes = self.long_bytes(field)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    pub fn public_key(&mut self, field: &'static str) -> Result<PublicKey, DecodeError> {
        let bytes = self.array::<32>()?;
        PublicKey::from_bytes(&bytes).map_err(|_| DecodeError::InvalidPublicKey { field })
    }
}
