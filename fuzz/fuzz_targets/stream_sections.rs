//! guts-git's stream section reader (`section::SectionReader`, what git over SSH reads
//! every request with) on untrusted bytes, fed in chunks, with each section handed to
//! the parser the server would use.
//!
//! The first input byte chooses how the stream arrives (chunk size), whether sections
//! may end at `done` (v0 negotiation) or only at a flush (v2, want sections), and the
//! caps; the rest is the stream. Crashes on: a panic; a section that is not the next
//! bytes of the stream, is over the size cap, or comes after the count cap; reading in
//! small chunks and all at once giving different sections; a buffer that grows past
//! the cap by more than one read.
#![no_main]

use std::io::Read;

use guts_git::section::{Limits, SectionEnd, SectionReader};
use guts_git::{v0, v2};
use libfuzzer_sys::fuzz_target;

/// Hands out at most `step` bytes per read.
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

/// The sections read, and whether reading ended in an error.
fn sections(stream: &[u8], step: usize, end: SectionEnd, limits: Limits) -> (Vec<Vec<u8>>, bool) {
    let mut reader = SectionReader::new(Trickle { data: stream, step }, limits);
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut consumed = 0usize;
    loop {
        match reader.next_section(end) {
            Ok(Some(section)) => {
                assert!(
                    section.len() <= limits.section_bytes,
                    "section over the cap"
                );
                assert!(
                    stream[consumed..].starts_with(section),
                    "a section that is not the next bytes"
                );
                consumed += section.len();
                // What the server does with it; any answer but a panic is fine.
                match (end, out.len()) {
                    (SectionEnd::FlushOrDone, 0) => {
                        let _ = v0::parse_upload_request(section);
                    }
                    (SectionEnd::FlushOrDone, _) => {
                        let _ = v0::parse_have_round(section);
                    }
                    (SectionEnd::Flush, _) => {
                        let _ = v2::parse_request(section);
                    }
                }
                out.push(section.to_vec());
                assert!(out.len() as u64 <= limits.sections, "sections over the cap");
            }
            Ok(None) => {
                assert_eq!(consumed, stream.len(), "ended before the stream did");
                return (out, false);
            }
            Err(_) => return (out, true),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(control & 0x0f) + 1;
    let end = if control & 0x10 != 0 {
        SectionEnd::FlushOrDone
    } else {
        SectionEnd::Flush
    };
    let limits = if control & 0x20 != 0 {
        Limits {
            section_bytes: 64 + usize::from(control >> 6) * 64,
            sections: u64::from(control >> 6) + 1,
        }
    } else {
        Limits::default()
    };
    let trickled = sections(stream, step, end, limits);
    let whole = sections(stream, usize::MAX, end, limits);
    assert_eq!(trickled, whole, "chunked and whole reads disagree");
});
