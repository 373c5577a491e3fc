//! Reading pkt-line messages from a full-duplex stream (git over SSH), one section at a
//! time.
//!
//! Over HTTP a request is a whole body, and the parsers take it as a slice. On a
//! stream the client's messages follow each other on one connection, and it may send
//! the next before it has read the answer to the previous one (fetch-pack pipelines its
//! rounds of haves). So a server reads exactly one message, a *section*: pkt-lines up to
//! and including the flush that ends it (or, in v0 negotiation, the `done` line, which
//! git sends without a flush after it). What arrived beyond it stays buffered for the
//! next call, and nothing is read from the stream once a section is complete, so a
//! server never waits for the client while it owes it an answer.
//!
//! The framing is checked as bytes arrive ([`crate::pktline::decode`] never reads past
//! one packet's header and payload, so a length prefix costs nothing until its bytes are
//! there); the section's lines are then handed as a slice to the same parsers HTTP uses,
//! with their per-list caps. Two caps of this reader bound what one session can make a
//! server do: a section's size ([`Limits::section_bytes`]) and the number of sections
//! ([`Limits::sections`]), so a client cannot keep a server negotiating forever.
//!
//! Generic over [`std::io::Read`] and otherwise pure: no storage, no network; the tests
//! and the fuzz target feed it slices in arbitrary chunks.

use std::io::Read;

use crate::pktline::{self, Packet, PktError};

/// Largest section: far above any real request (100,000 wants of 50 bytes each are
/// 5 MB), and it bounds the buffer a client can make a server hold.
pub const MAX_SECTION_BYTES: usize = 64 << 20;

/// Most sections of one session. Git negotiates in rounds that grow to thousands of
/// haves each, so even a client with millions of commits and nothing in common needs
/// a few hundred rounds; a v2 session is a handful of commands.
pub const MAX_SECTIONS: u64 = 4096;

/// Bytes asked of the stream per read: one pipe buffer or so, and the buffer grows by
/// at most this much past a section's cap before the cap is noticed.
const CHUNK: usize = 64 * 1024;

/// The caps of one [`SectionReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of one section, framing included.
    pub section_bytes: usize,
    /// Most sections over the reader's life.
    pub sections: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            section_bytes: MAX_SECTION_BYTES,
            sections: MAX_SECTIONS,
        }
    }
}

/// What ends the section being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionEnd {
    /// A flush-pkt (`0000`): v0 want sections, v2 requests (whose delim-pkt is inside).
    Flush,
    /// A flush-pkt or a `done` line: a v0 round of haves.
    FlushOrDone,
}

/// Why no section could be read.
#[derive(Debug, thiserror::Error)]
pub enum SectionError {
    #[error("reading the stream: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Pkt(#[from] PktError),
    #[error("a message of more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("more than {limit} messages in one session")]
    TooMany { limit: u64 },
    /// The stream ended inside a section (at a section boundary is `Ok(None)`).
    #[error("the stream ended inside a message")]
    Truncated,
}

/// Reads sections from a stream; see the module documentation.
#[derive(Debug)]
pub struct SectionReader<R> {
    input: R,
    /// Bytes read and not yet returned, from `start`; before it, the last section
    /// returned (kept until the next call so that it can be lent out).
    buf: Vec<u8>,
    start: usize,
    /// Offset (from `start`) of the first packet not yet looked at: a packet is decoded
    /// once however it is split across reads.
    scanned: usize,
    limits: Limits,
    sections: u64,
    /// What each read fills, allocated at the first read.
    chunk: Option<Vec<u8>>,
}

impl<R: Read> SectionReader<R> {
    pub fn new(input: R, limits: Limits) -> Self {
        SectionReader {
            input,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            limits,
            sections: 0,
            chunk: None,
        }
    }

    /// The next section, ending packet included; `Ok(None)` when the stream ends
    /// exactly between sections (a client that is done may just close).
    pub fn next_section(&mut self, end: SectionEnd) -> Result<Option<&[u8]>, SectionError> {
        self.buf.drain(..self.start);
        self.start = 0;
        self.scanned = 0;
        let len = loop {
            if let Some(len) = self.scan(end)? {
                break len;
            }
            if self.buf.len() >= self.limits.section_bytes {
                return Err(SectionError::TooLarge {
                    limit: self.limits.section_bytes,
                });
            }
            if self.fill()? == 0 {
                return match self.buf.is_empty() {
                    true => Ok(None),
                    false => Err(SectionError::Truncated),
                };
            }
        };
        if len > self.limits.section_bytes {
            return Err(SectionError::TooLarge {
                limit: self.limits.section_bytes,
            });
        }
        if self.sections >= self.limits.sections {
            return Err(SectionError::TooMany {
                limit: self.limits.sections,
            });
        }
        self.sections += 1;
        self.start = len;
        Ok(self.buf.get(..len))
    }

    /// Sections returned so far.
    pub fn sections(&self) -> u64 {
        self.sections
    }

    /// The bytes read past the last section returned, and the stream: what follows the
    /// pkt-line part of a message (the pack of a push) starts with the former.
    pub fn into_parts(mut self) -> (Vec<u8>, R) {
        self.buf.drain(..self.start);
        (self.buf, self.input)
    }

    /// The length of the section at the front of the buffer, once it is complete.
    fn scan(&mut self, end: SectionEnd) -> Result<Option<usize>, SectionError> {
        loop {
            let rest = self.buf.get(self.scanned..).unwrap_or_default();
            let Some((packet, used)) = pktline::decode(rest)? else {
                return Ok(None);
            };
            let ends = match packet {
                Packet::Flush => true,
                Packet::Data(data) => {
                    end == SectionEnd::FlushOrDone && pktline::chomp(data) == b"done"
                }
                Packet::Delim | Packet::ResponseEnd => false,
            };
            self.scanned += used;
            if ends {
                return Ok(Some(self.scanned));
            }
            if self.scanned > self.limits.section_bytes {
                return Err(SectionError::TooLarge {
                    limit: self.limits.section_bytes,
                });
            }
        }
    }

    /// Reads once (what the stream has, up to [`CHUNK`] bytes); 0 at its end. Through
    /// a chunk buffer made once: growing `buf` by a zeroed chunk per read would cost a
    /// client that sends one byte at a time 64 KiB of work per byte.
    fn fill(&mut self) -> Result<usize, SectionError> {
        let chunk = self.chunk.get_or_insert_with(|| vec![0; CHUNK]);
        let n = loop {
            match self.input.read(chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.buf
            .extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Hands out its bytes at most `step` at a time, as a socket might.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            let (head, tail) = self.data.split_at(n);
            buf[..n].copy_from_slice(head);
            self.data = tail;
            Ok(n)
        }
    }

    /// Fails the test if the server reads once more: the client is waiting for an
    /// answer and sends nothing until it has one.
    struct Waiting<'a>(&'a [u8]);

    impl Read for Waiting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            assert!(!self.0.is_empty(), "read past what the client sent");
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn reader(data: &[u8], step: usize) -> SectionReader<Trickle<'_>> {
        SectionReader::new(Trickle { data, step }, Limits::default())
    }

    #[test]
    fn reads_pipelined_sections_one_at_a_time() {
        let stream = b"0009want\n00000009have\n0000000ahave2\n0009done\n0000";
        for step in [1, 3, 7, 1000] {
            let mut r = reader(stream, step);
            let s = r.next_section(SectionEnd::Flush).unwrap();
            assert_eq!(s, Some(&b"0009want\n0000"[..]));
            let s = r.next_section(SectionEnd::FlushOrDone).unwrap();
            assert_eq!(s, Some(&b"0009have\n0000"[..]));
            let s = r.next_section(SectionEnd::FlushOrDone).unwrap();
            assert_eq!(s, Some(&b"000ahave2\n0009done\n"[..]));
            let s = r.next_section(SectionEnd::Flush).unwrap();
            assert_eq!(s, Some(&b"0000"[..]));
            assert!(r.next_section(SectionEnd::Flush).unwrap().is_none());
            assert_eq!(r.sections(), 4);
        }
    }

    #[test]
    fn a_complete_section_is_returned_without_reading_on() {
        // The client sent a delete-only push's commands, or a round of haves, and now
        // waits: one more read would block forever.
        let mut r = SectionReader::new(Waiting(b"0009have\n0000"), Limits::default());
        assert!(r.next_section(SectionEnd::Flush).unwrap().is_some());
    }

    #[test]
    fn v2_requests_keep_their_delimiter() {
        let mut r = reader(b"0012command=fetch\n00010009done\n00000000", 5);
        let s = r.next_section(SectionEnd::Flush).unwrap();
        assert_eq!(s, Some(&b"0012command=fetch\n00010009done\n0000"[..]));
        assert_eq!(
            r.next_section(SectionEnd::Flush).unwrap(),
            Some(&b"0000"[..])
        );
    }

    #[test]
    fn eof_inside_a_section_is_truncation() {
        for stream in [&b"0009have\n"[..], b"00", b"0009ha"] {
            let mut r = reader(stream, 2);
            assert!(matches!(
                r.next_section(SectionEnd::Flush),
                Err(SectionError::Truncated)
            ));
        }
    }

    #[test]
    fn bad_framing_is_an_error() {
        let mut r = reader(b"0003", 4);
        assert!(matches!(
            r.next_section(SectionEnd::Flush),
            Err(SectionError::Pkt(PktError::BadLength(3)))
        ));
        let mut r = reader(b"zzzz", 4);
        assert!(matches!(
            r.next_section(SectionEnd::Flush),
            Err(SectionError::Pkt(PktError::BadHeader(_)))
        ));
    }

    #[test]
    fn an_oversized_section_is_refused_before_it_is_buffered() {
        // An endless section of valid packets: refused once the cap is passed, with the
        // buffer never more than a chunk over it.
        struct Endless;
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let packet = b"0009have\n";
                let n = buf.len() / packet.len() * packet.len();
                for chunk in buf[..n].chunks_mut(packet.len()) {
                    chunk.copy_from_slice(packet);
                }
                Ok(n)
            }
        }
        let limits = Limits {
            section_bytes: 1 << 20,
            sections: 10,
        };
        let mut r = SectionReader::new(Endless, limits);
        assert!(matches!(
            r.next_section(SectionEnd::FlushOrDone),
            Err(SectionError::TooLarge { limit }) if limit == 1 << 20
        ));
        assert!(r.buf.len() <= (1 << 20) + CHUNK);
    }

    #[test]
    fn a_length_prefix_alone_allocates_nothing() {
        // A header claiming 65520 bytes with three behind it: truncated, and the
        // buffer holds what was sent, not what was claimed.
        let mut r = reader(b"fff0abc", 100);
        assert!(matches!(
            r.next_section(SectionEnd::Flush),
            Err(SectionError::Truncated)
        ));
        assert_eq!(r.buf.len(), 7);
    }

    #[test]
    fn never_ending_rounds_stop_at_the_section_cap() {
        let rounds = b"0009have\n0000".repeat(100);
        let limits = Limits {
            section_bytes: MAX_SECTION_BYTES,
            sections: 10,
        };
        let mut r = SectionReader::new(
            Trickle {
                data: &rounds,
                step: 64,
            },
            limits,
        );
        for _ in 0..10 {
            assert!(r.next_section(SectionEnd::FlushOrDone).unwrap().is_some());
        }
        assert!(matches!(
            r.next_section(SectionEnd::FlushOrDone),
            Err(SectionError::TooMany { limit: 10 })
        ));
    }

    #[test]
    fn into_parts_keeps_what_follows() {
        let mut r = reader(b"0000PACKxyz", 1000);
        assert_eq!(
            r.next_section(SectionEnd::Flush).unwrap(),
            Some(&b"0000"[..])
        );
        let (rest, mut input) = r.into_parts();
        let mut tail = Vec::new();
        input.read_to_end(&mut tail).unwrap();
        assert_eq!([rest, tail].concat(), b"PACKxyz");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary bytes in arbitrary chunks: no panic; every section is a prefix of
        /// what is left, within the caps, ends where its terminator is; and the caps hold.
        #[test]
        fn arbitrary_streams_respect_the_caps(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            seeds in proptest::collection::vec(
                prop_oneof![
                    Just(b"0000".to_vec()),
                    Just(b"0009done\n".to_vec()),
                    Just(b"0001".to_vec()),
                    Just(b"0009have\n".to_vec()),
                ],
                0..16,
            ),
            step in 1usize..40,
            section_bytes in 4usize..64,
            sections in 0u64..8,
            done in any::<bool>(),
        ) {
            let mut stream = seeds.concat();
            stream.extend_from_slice(&bytes);
            let limits = Limits { section_bytes, sections };
            let mut r = SectionReader::new(Trickle { data: &stream, step }, limits);
            let end = if done { SectionEnd::FlushOrDone } else { SectionEnd::Flush };
            let mut consumed = 0usize;
            let mut count = 0u64;
            loop {
                match r.next_section(end) {
                    Ok(Some(section)) => {
                        count += 1;
                        prop_assert!(count <= sections);
                        prop_assert!(section.len() <= section_bytes);
                        prop_assert!(stream[consumed..].starts_with(section));
                        // Only the last packet ends the section.
                        let packets: Vec<_> = crate::PktReader::new(section)
                            .collect::<Result<_, _>>()
                            .unwrap();
                        let ends = |p: &Packet<'_>| match p {
                            Packet::Flush => true,
                            Packet::Data(d) => done && pktline::chomp(d) == b"done",
                            _ => false,
                        };
                        let (last, before) = packets.split_last().unwrap();
                        prop_assert!(ends(last));
                        prop_assert!(!before.iter().any(ends));
                        consumed += section.len();
                    }
                    Ok(None) => {
                        prop_assert_eq!(consumed, stream.len());
                        break;
                    }
                    Err(_) => break,
                }
                prop_assert!(r.buf.len() <= section_bytes + CHUNK);
            }
        }
    }
}
