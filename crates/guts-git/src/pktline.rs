//! pkt-line framing (gitprotocol-common) and side-band multiplexing
//! (gitprotocol-pack, "side-band-64k"): the layer every other message in this crate is
//! built on.
//!
//! A pkt-line is four hex digits giving the line's total length, header included, then
//! that many bytes less four of payload. Lengths 0000, 0001 and 0002 are the flush,
//! delimiter and response-end packets (the last two exist in protocol v2 only, but a
//! framing layer cannot know the version, so it always decodes them and the message
//! parsers refuse them where their grammar has no place for them). 0003 is invalid, 0004
//! is an empty data packet (senders SHOULD NOT send it, receivers must accept it), and
//! nothing may be longer than 65520 bytes.
//!
//! Decoding is incremental and never copies: [`decode`] looks at the front of a buffer
//! and either returns one packet borrowed from it with the number of bytes it took, or
//! `None` when the buffer ends inside the packet, so a caller that receives its input in
//! chunks decodes whatever is complete and tries again when more arrives. It reads the
//! four header bytes and at most 65516 payload bytes, so a hostile length costs nothing.
//!
//! Writers take any [`std::io::Write`] (a `Vec<u8>` in practice: the HTTP layer sends
//! buffers) and refuse payloads that do not fit one packet instead of splitting them,
//! except [`write_sideband`], whose whole job is to split.

use std::io::Write;

use crate::error::{WriteError, quote};

/// Bytes of the length header.
pub const HEADER_LEN: usize = 4;
/// Largest packet, header included (git's `LARGE_PACKET_MAX`).
pub const MAX_PKT_LEN: usize = 65520;
/// Largest payload of one data packet (git's `LARGE_PACKET_DATA_MAX`).
pub const MAX_DATA_LEN: usize = MAX_PKT_LEN - HEADER_LEN;
/// Largest side-band payload per packet: one payload byte goes to the band number.
pub const MAX_SIDEBAND_DATA_LEN: usize = MAX_DATA_LEN - 1;

/// One decoded packet, borrowing its payload from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A data packet's payload, trailing newline (if any) included.
    Data(&'a [u8]),
    /// `0000`: end of a message (v0, v2) or of a section (v0).
    Flush,
    /// `0001` (v2): separates the sections of a message.
    Delim,
    /// `0002` (v2): end of a response on a stateless connection.
    ResponseEnd,
}

impl<'a> Packet<'a> {
    /// The payload of a data packet.
    pub fn data(&self) -> Option<&'a [u8]> {
        match self {
            Packet::Data(data) => Some(data),
            _ => None,
        }
    }

    /// The payload of a data packet without one trailing LF. gitprotocol-common:
    /// receivers "MUST treat pkt-lines with non-binary data the same whether or not they
    /// contain the trailing LF".
    pub fn line(&self) -> Option<&'a [u8]> {
        self.data().map(chomp)
    }

    /// A name for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Packet::Data(_) => "data",
            Packet::Flush => "flush",
            Packet::Delim => "delim",
            Packet::ResponseEnd => "response-end",
        }
    }
}

/// `data` without one trailing LF.
pub fn chomp(data: &[u8]) -> &[u8] {
    data.strip_suffix(b"\n").unwrap_or(data)
}

/// Why bytes are not a pkt-line (or a side-band packet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PktError {
    #[error("invalid pkt-line length header '{}'", quote(.0))]
    BadHeader([u8; HEADER_LEN]),
    /// 0003: shorter than its own header, and not one of the special packets.
    #[error("invalid pkt-line length {0}")]
    BadLength(usize),
    #[error("pkt-line length {0} is more than the limit of {max}", max = MAX_PKT_LEN)]
    TooLong(usize),
    #[error("side-band packet has no band byte")]
    EmptySideband,
    #[error("unknown side-band {0}")]
    UnknownBand(u8),
}

/// Decodes the packet at the front of `buf`: `Ok(Some((packet, consumed)))`, or
/// `Ok(None)` when `buf` ends before the packet does. Never reads past
/// `HEADER_LEN + MAX_DATA_LEN` bytes.
pub fn decode(buf: &[u8]) -> Result<Option<(Packet<'_>, usize)>, PktError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = parse_header(header)?;
    let packet = match len {
        0 => Packet::Flush,
        1 => Packet::Delim,
        2 => Packet::ResponseEnd,
        3 => return Err(PktError::BadLength(len)),
        _ if len > MAX_PKT_LEN => return Err(PktError::TooLong(len)),
        _ => match buf.get(HEADER_LEN..len) {
            Some(payload) => return Ok(Some((Packet::Data(payload), len))),
            None => return Ok(None),
        },
    };
    Ok(Some((packet, HEADER_LEN)))
}

/// The length in a header: four hex digits, either case (git's own reader accepts
/// both, though it and this crate write lowercase).
fn parse_header(header: &[u8; HEADER_LEN]) -> Result<usize, PktError> {
    let mut len = 0usize;
    for &byte in header {
        let digit = char::from(byte)
            .to_digit(16)
            .ok_or(PktError::BadHeader(*header))?;
        len = len * 16 + digit as usize;
    }
    Ok(len)
}

/// Reads packets one by one from the front of a buffer, remembering its position.
///
/// To read a stream that arrives in chunks, keep the received bytes in one buffer, make
/// a reader over `&buf[consumed..]` when a chunk arrives, read until it returns `None`,
/// and add its [`position`](PktReader::position) to `consumed`: every complete packet is
/// decoded exactly once, and a packet split across chunks is decoded when its last byte
/// is there.
#[derive(Debug, Clone)]
pub struct PktReader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Set once the iterator has returned an error, so that it then stops.
    failed: bool,
}

impl<'a> PktReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// The next packet, or `None` when the buffer ends before one is complete (or is
    /// exhausted). After an error the position stays before the bad packet.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'a>>, PktError> {
        let rest = self.rest();
        match decode(rest)? {
            Some((packet, used)) => {
                self.pos += used;
                Ok(Some(packet))
            }
            None => Ok(None),
        }
    }

    /// Bytes consumed by the packets returned so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes after the last packet returned: a partial packet, or whatever follows
    /// the pkt-line part of a message (the pack in a push).
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub fn is_at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

impl<'a> Iterator for PktReader<'a> {
    type Item = Result<Packet<'a>, PktError>;

    /// Packets until the buffer runs out or holds a bad one; an error is returned once,
    /// then iteration stops (the position stays before the bad packet).
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_packet() {
            Ok(packet) => packet.map(Ok),
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }
}

/// Writes one data packet; payloads over [`MAX_DATA_LEN`] are refused, not split.
pub fn write_data<W: Write + ?Sized>(out: &mut W, data: &[u8]) -> Result<(), WriteError> {
    if data.len() > MAX_DATA_LEN {
        return Err(WriteError::TooLong {
            len: data.len(),
            max: MAX_DATA_LEN,
        });
    }
    write_header(out, data.len() + HEADER_LEN)?;
    out.write_all(data)?;
    Ok(())
}

/// Writes `text` and a LF as one data packet: the form of every non-binary line.
pub fn write_line<W: Write + ?Sized>(out: &mut W, text: &[u8]) -> Result<(), WriteError> {
    let len = text.len().saturating_add(1);
    if len > MAX_DATA_LEN {
        return Err(WriteError::TooLong {
            len,
            max: MAX_DATA_LEN,
        });
    }
    write_header(out, len + HEADER_LEN)?;
    out.write_all(text)?;
    out.write_all(b"\n")?;
    Ok(())
}

pub fn write_flush<W: Write + ?Sized>(out: &mut W) -> Result<(), WriteError> {
    out.write_all(b"0000")?;
    Ok(())
}

pub fn write_delim<W: Write + ?Sized>(out: &mut W) -> Result<(), WriteError> {
    out.write_all(b"0001")?;
    Ok(())
}

pub fn write_response_end<W: Write + ?Sized>(out: &mut W) -> Result<(), WriteError> {
    out.write_all(b"0002")?;
    Ok(())
}

fn write_header<W: Write + ?Sized>(out: &mut W, len: usize) -> Result<(), WriteError> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digit = |shift: usize| HEX.get((len >> shift) & 0xf).copied().unwrap_or(b'0');
    out.write_all(&[digit(12), digit(8), digit(4), digit(0)])?;
    Ok(())
}

/// Prefix of an error packet (gitprotocol-pack: `PKT-LINE("ERR" SP explanation-text)`).
pub const ERR_PREFIX: &[u8] = b"ERR ";

/// Writes an `ERR` packet, which ends the exchange: git prints the message as "remote
/// error: ..." and stops. A message too long for one packet is cut (at a character
/// boundary), since an error must always be deliverable.
pub fn write_err<W: Write + ?Sized>(out: &mut W, message: &str) -> Result<(), WriteError> {
    let room = MAX_DATA_LEN - ERR_PREFIX.len() - 1;
    let mut end = message.len().min(room);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let message = message.get(..end).unwrap_or_default();
    write_header(out, HEADER_LEN + ERR_PREFIX.len() + message.len() + 1)?;
    out.write_all(ERR_PREFIX)?;
    out.write_all(message.as_bytes())?;
    out.write_all(b"\n")?;
    Ok(())
}

/// The message of an `ERR` packet's payload, if it is one.
pub fn err_message(data: &[u8]) -> Option<&[u8]> {
    data.strip_prefix(ERR_PREFIX).map(chomp)
}

/// A side-band channel: the first payload byte of every packet of a multiplexed
/// response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Band {
    /// 1: pack data (or, with v2 `sideband-all`, the response's own lines).
    Data = 1,
    /// 2: progress text the client shows on stderr, dropped with `no-progress`.
    Progress = 2,
    /// 3: a fatal error message, sent just before the stream is abandoned.
    Error = 3,
}

impl Band {
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Band::Data),
            2 => Some(Band::Progress),
            3 => Some(Band::Error),
            _ => None,
        }
    }

    pub fn byte(self) -> u8 {
        self as u8
    }
}

/// Writes `payload` on `band` in side-band-64k packets of at most
/// [`MAX_SIDEBAND_DATA_LEN`] payload bytes each. An empty payload writes one packet
/// holding only the band byte: v2's `sideband-all` keepalive is exactly that on band 2.
///
/// (The older `side-band`, with 1000-byte packets, is not written: a client that knows
/// side-band-64k, which every git since 1.6 does, never asks for it when offered both.)
pub fn write_sideband<W: Write + ?Sized>(
    out: &mut W,
    band: Band,
    payload: &[u8],
) -> Result<(), WriteError> {
    let mut chunks = payload.chunks(MAX_SIDEBAND_DATA_LEN).peekable();
    if chunks.peek().is_none() {
        write_header(out, HEADER_LEN + 1)?;
        out.write_all(&[band.byte()])?;
        return Ok(());
    }
    for chunk in chunks {
        write_header(out, HEADER_LEN + 1 + chunk.len())?;
        out.write_all(&[band.byte()])?;
        out.write_all(chunk)?;
    }
    Ok(())
}

/// Splits a side-band data packet's payload into its band and the bytes it carries.
pub fn split_sideband(data: &[u8]) -> Result<(Band, &[u8]), PktError> {
    let (&byte, rest) = data.split_first().ok_or(PktError::EmptySideband)?;
    let band = Band::from_byte(byte).ok_or(PktError::UnknownBand(byte))?;
    Ok((band, rest))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decode_all(buf: &[u8]) -> Vec<Packet<'_>> {
        PktReader::new(buf).map(|p| p.unwrap()).collect()
    }

    #[test]
    fn decodes_the_examples_of_gitprotocol_common() {
        assert_eq!(decode(b"0006a\n").unwrap(), Some((Packet::Data(b"a\n"), 6)));
        assert_eq!(decode(b"0005a").unwrap(), Some((Packet::Data(b"a"), 5)));
        assert_eq!(
            decode(b"000bfoobar\n").unwrap(),
            Some((Packet::Data(b"foobar\n"), 11))
        );
        assert_eq!(decode(b"0004").unwrap(), Some((Packet::Data(b""), 4)));
    }

    #[test]
    fn decodes_the_special_packets() {
        assert_eq!(decode(b"0000").unwrap(), Some((Packet::Flush, 4)));
        assert_eq!(decode(b"0001").unwrap(), Some((Packet::Delim, 4)));
        assert_eq!(decode(b"0002").unwrap(), Some((Packet::ResponseEnd, 4)));
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(decode(b"0003"), Err(PktError::BadLength(3)));
        assert_eq!(decode(b"fff1"), Err(PktError::TooLong(0xfff1)));
        assert_eq!(decode(b"00g4"), Err(PktError::BadHeader(*b"00g4")));
        assert_eq!(decode(b"+004"), Err(PktError::BadHeader(*b"+004")));
        assert_eq!(decode(b" 004"), Err(PktError::BadHeader(*b" 004")));
    }

    #[test]
    fn accepts_uppercase_hex_and_the_largest_packet() {
        assert_eq!(
            decode(b"000Aabcdef").unwrap(),
            Some((Packet::Data(b"abcdef"), 10))
        );
        let mut max = b"fff0".to_vec();
        max.resize(MAX_PKT_LEN, b'x');
        let (packet, used) = decode(&max).unwrap().unwrap();
        assert_eq!(used, MAX_PKT_LEN);
        assert_eq!(packet.data().map(<[u8]>::len), Some(MAX_DATA_LEN));
    }

    #[test]
    fn asks_for_more_on_partial_input() {
        assert_eq!(decode(b"").unwrap(), None);
        assert_eq!(decode(b"00").unwrap(), None);
        assert_eq!(decode(b"0008don").unwrap(), None);
        assert_eq!(
            decode(b"0008done").unwrap(),
            Some((Packet::Data(b"done"), 8))
        );
    }

    #[test]
    fn reader_stops_at_a_partial_packet_and_reports_the_rest() {
        let mut reader = PktReader::new(b"0008NAK\n0000003");
        assert_eq!(reader.next_packet().unwrap(), Some(Packet::Data(b"NAK\n")));
        assert_eq!(reader.next_packet().unwrap(), Some(Packet::Flush));
        assert_eq!(reader.next_packet().unwrap(), None);
        assert_eq!(reader.position(), 12);
        assert_eq!(reader.rest(), b"003");
    }

    #[test]
    fn reader_resumes_across_chunks() {
        let stream = b"0032want 74730d410fcb6603ace96f1dc55ea6196122532d\n00000009done\n";
        let mut buf = Vec::new();
        let mut consumed = 0;
        let mut packets = Vec::new();
        for chunk in stream.chunks(7) {
            buf.extend_from_slice(chunk);
            let mut reader = PktReader::new(&buf[consumed..]);
            while let Some(packet) = reader.next_packet().unwrap() {
                packets.push(format!("{packet:?}"));
            }
            consumed += reader.position();
        }
        assert_eq!(consumed, stream.len());
        assert_eq!(packets.len(), 3);
    }

    #[test]
    fn iterator_yields_an_error_once_then_stops() {
        let mut reader = PktReader::new(b"0005a0003zzzz");
        assert_eq!(reader.next(), Some(Ok(Packet::Data(b"a"))));
        assert_eq!(reader.next(), Some(Err(PktError::BadLength(3))));
        assert_eq!(reader.next(), None);
    }

    #[test]
    fn writes_the_examples_of_gitprotocol_common() {
        let mut out = Vec::new();
        write_line(&mut out, b"a").unwrap();
        write_data(&mut out, b"a").unwrap();
        write_line(&mut out, b"foobar").unwrap();
        write_data(&mut out, b"").unwrap();
        write_flush(&mut out).unwrap();
        write_delim(&mut out).unwrap();
        write_response_end(&mut out).unwrap();
        assert_eq!(out, b"0006a\n0005a000bfoobar\n0004000000010002");
    }

    #[test]
    fn refuses_oversized_payloads() {
        let mut out = Vec::new();
        write_data(&mut out, &vec![0; MAX_DATA_LEN]).unwrap();
        assert_eq!(out.len(), MAX_PKT_LEN);
        assert!(&out.starts_with(b"fff0"));
        assert!(matches!(
            write_data(&mut Vec::new(), &vec![0; MAX_DATA_LEN + 1]),
            Err(WriteError::TooLong {
                len: 65517,
                max: 65516
            })
        ));
        assert!(matches!(
            write_line(&mut Vec::new(), &vec![b'a'; MAX_DATA_LEN]),
            Err(WriteError::TooLong { .. })
        ));
    }

    #[test]
    fn err_packets_round_trip_and_long_messages_are_cut() {
        let mut out = Vec::new();
        write_err(&mut out, "upload-pack: not our ref 74730d41").unwrap();
        assert_eq!(out, b"002aERR upload-pack: not our ref 74730d41\n");
        let (packet, _) = decode(&out).unwrap().unwrap();
        assert_eq!(
            err_message(packet.data().unwrap()),
            Some(&b"upload-pack: not our ref 74730d41"[..])
        );

        let mut out = Vec::new();
        write_err(&mut out, &"é".repeat(MAX_DATA_LEN)).unwrap();
        let (packet, used) = decode(&out).unwrap().unwrap();
        assert_eq!(used, out.len());
        let message = err_message(packet.data().unwrap()).unwrap();
        assert!(std::str::from_utf8(message).is_ok());
    }

    #[test]
    fn sideband_splits_at_65515_bytes() {
        let payload = vec![7u8; MAX_SIDEBAND_DATA_LEN * 2 + 10];
        let mut out = Vec::new();
        write_sideband(&mut out, Band::Data, &payload).unwrap();
        let packets = decode_all(&out);
        let sizes: Vec<usize> = packets.iter().map(|p| p.data().unwrap().len()).collect();
        assert_eq!(sizes, [MAX_DATA_LEN, MAX_DATA_LEN, 11]);
        assert!(out.starts_with(b"fff0\x01"));
    }

    #[test]
    fn sideband_keepalive_and_progress() {
        let mut out = Vec::new();
        write_sideband(&mut out, Band::Progress, b"").unwrap();
        write_sideband(&mut out, Band::Progress, b"Counting objects: 3, done.\n").unwrap();
        write_sideband(&mut out, Band::Error, b"fatal: out of memory\n").unwrap();
        assert!(out.starts_with(b"0005\x02"));
        let packets = decode_all(&out);
        let split: Vec<_> = packets
            .iter()
            .map(|p| split_sideband(p.data().unwrap()).unwrap())
            .collect();
        assert_eq!(split[0], (Band::Progress, &b""[..]));
        assert_eq!(
            split[1],
            (Band::Progress, &b"Counting objects: 3, done.\n"[..])
        );
        assert_eq!(split[2], (Band::Error, &b"fatal: out of memory\n"[..]));
        assert_eq!(split_sideband(b""), Err(PktError::EmptySideband));
        assert_eq!(split_sideband(b"\x04x"), Err(PktError::UnknownBand(4)));
    }

    #[test]
    fn line_strips_one_newline_only() {
        assert_eq!(Packet::Data(b"done\n").line(), Some(&b"done"[..]));
        assert_eq!(Packet::Data(b"done").line(), Some(&b"done"[..]));
        assert_eq!(Packet::Data(b"done\n\n").line(), Some(&b"done\n"[..]));
        assert_eq!(Packet::Flush.line(), None);
    }

    fn packet_strategy() -> impl Strategy<Value = (u8, Vec<u8>)> {
        prop_oneof![
            Just((0u8, Vec::new())),
            Just((1u8, Vec::new())),
            Just((2u8, Vec::new())),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(|d| (3u8, d)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn written_packets_decode_back(packets in proptest::collection::vec(packet_strategy(), 0..20)) {
            let mut out = Vec::new();
            for (kind, data) in &packets {
                match kind {
                    0 => write_flush(&mut out).unwrap(),
                    1 => write_delim(&mut out).unwrap(),
                    2 => write_response_end(&mut out).unwrap(),
                    _ => write_data(&mut out, data).unwrap(),
                }
            }
            let decoded = decode_all(&out);
            prop_assert_eq!(decoded.len(), packets.len());
            for (packet, (kind, data)) in decoded.iter().zip(&packets) {
                let expected = match kind {
                    0 => Packet::Flush,
                    1 => Packet::Delim,
                    2 => Packet::ResponseEnd,
                    _ => Packet::Data(data),
                };
                prop_assert_eq!(*packet, expected);
            }
        }

        #[test]
        fn sideband_payloads_reassemble(len in 0usize..200_000, byte in any::<u8>(), band in 1u8..=3) {
            let band = Band::from_byte(band).unwrap();
            let payload: Vec<u8> = (0..len).map(|i| byte.wrapping_add(i as u8)).collect();
            let mut out = Vec::new();
            write_sideband(&mut out, band, &payload).unwrap();
            let mut joined = Vec::new();
            for packet in decode_all(&out) {
                let data = packet.data().unwrap();
                prop_assert!(data.len() <= MAX_DATA_LEN);
                let (got, bytes) = split_sideband(data).unwrap();
                prop_assert_eq!(got, band);
                joined.extend_from_slice(bytes);
            }
            prop_assert_eq!(joined, payload);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut reader = PktReader::new(&bytes);
            let mut steps = 0;
            for item in reader.by_ref() {
                steps += 1;
                prop_assert!(steps <= bytes.len() / 4 + 1);
                if let Ok(Packet::Data(data)) = item {
                    let _ = split_sideband(data);
                }
            }
            prop_assert!(reader.position() <= bytes.len());
        }

        #[test]
        fn every_header_is_classified(header in any::<[u8; 4]>(), tail in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut buf = header.to_vec();
            buf.extend_from_slice(&tail);
            if let Ok(Some((_, used))) = decode(&buf) {
                prop_assert!(used <= buf.len());
                prop_assert!(used >= HEADER_LEN);
            }
        }
    }
}
