//! The upload-pack request of a v0 fetch: what a client sends after the ref
//! advertisement.
//!
//! ```text
//! want <oid> <capabilities>     first want carries the client's capabilities
//! want <oid>                    ...more wants
//! shallow <oid>                 commits the client has without their parents
//! deepen <n> | deepen-since <t> | deepen-not <rev>
//! filter <spec>
//! 0000
//! have <oid>                    ...what the client has, in rounds
//! 0000 | done                   a flush ends a round, done ends negotiation
//! ```
//!
//! Over HTTP every round is a new request that repeats the want section, so one body
//! is one of: the want section alone (a shallow fetch's first request, answered with the
//! shallow list), the want section and a round of haves ending in a flush (the server
//! answers ACKs/NAK), or ending in `done` (the server answers and sends the pack). A body
//! that is only a flush asks for nothing.

use std::io::Write;

use crate::deepen::{Deepen, DeepenLines, write_shallow_section};
use crate::error::{ParseError, WriteError};
use crate::limits::MAX_LIST_LEN;
use crate::line::{self, LineBuf, Lines};
use crate::oid::Oid;
use crate::pktline::{self, Packet};

use super::parse_shared_capability;

/// The capabilities a fetching client asked for on its want lines.
///
/// A server must refuse capabilities it did not advertise (gitprotocol-capabilities).
/// If it advertises only capabilities this type knows, that check is
/// `unknown.is_empty()`; otherwise it compares the flags with what it advertised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadCapabilities {
    /// ACK every common commit with `continue`; superseded by `multi_ack_detailed`.
    pub multi_ack: bool,
    /// ACKs say `common` or `ready`: what stateless HTTP negotiation needs.
    pub multi_ack_detailed: bool,
    /// The server may send the pack right after `ACK <oid> ready`, saving a round trip.
    pub no_done: bool,
    /// 1000-byte side-band packets. Never together with `side_band_64k`.
    pub side_band: bool,
    pub side_band_64k: bool,
    pub thin_pack: bool,
    pub ofs_delta: bool,
    pub no_progress: bool,
    pub include_tag: bool,
    /// `deepen <n>` counts from the client's current shallow boundary.
    pub deepen_relative: bool,
    pub deepen_since: bool,
    pub deepen_not: bool,
    /// Required for a `filter` line (git's server dies on a filter without it).
    pub filter: bool,
    pub agent: Option<String>,
    pub session_id: Option<String>,
    /// Capabilities this type does not know, at most
    /// [`MAX_UNKNOWN_CAPABILITIES`](crate::limits::MAX_UNKNOWN_CAPABILITIES).
    pub unknown: Vec<String>,
}

impl UploadCapabilities {
    fn parse_word(&mut self, word: &[u8]) -> Result<(), ParseError> {
        let flag = match word {
            b"multi_ack" => &mut self.multi_ack,
            b"multi_ack_detailed" => &mut self.multi_ack_detailed,
            b"no-done" => &mut self.no_done,
            b"side-band" => &mut self.side_band,
            b"side-band-64k" => &mut self.side_band_64k,
            b"thin-pack" => &mut self.thin_pack,
            b"ofs-delta" => &mut self.ofs_delta,
            b"no-progress" => &mut self.no_progress,
            b"include-tag" => &mut self.include_tag,
            b"deepen-relative" => &mut self.deepen_relative,
            b"deepen-since" => &mut self.deepen_since,
            b"deepen-not" => &mut self.deepen_not,
            b"filter" => &mut self.filter,
            _ => {
                return parse_shared_capability(
                    word,
                    &mut self.agent,
                    &mut self.session_id,
                    &mut self.unknown,
                );
            }
        };
        *flag = true;
        Ok(())
    }

    /// Appends ` <capability>` for each capability, in the order git's fetch-pack uses.
    fn write_words(&self, line: &mut LineBuf) -> Result<(), WriteError> {
        let flags = [
            (self.multi_ack_detailed, "multi_ack_detailed"),
            (self.multi_ack, "multi_ack"),
            (self.no_done, "no-done"),
            (self.side_band_64k, "side-band-64k"),
            (self.side_band, "side-band"),
            (self.deepen_relative, "deepen-relative"),
            (self.thin_pack, "thin-pack"),
            (self.no_progress, "no-progress"),
            (self.include_tag, "include-tag"),
            (self.ofs_delta, "ofs-delta"),
            (self.deepen_since, "deepen-since"),
            (self.deepen_not, "deepen-not"),
        ];
        for (_, name) in flags.iter().filter(|(on, _)| *on) {
            line.push(b" ").push_str(name);
        }
        if let Some(agent) = &self.agent {
            line::check_token("agent", agent)?;
            line.push(b" agent=").push_str(agent);
        }
        if let Some(session_id) = &self.session_id {
            line::check_token("session-id", session_id)?;
            line.push(b" session-id=").push_str(session_id);
        }
        if self.filter {
            line.push(b" filter");
        }
        for word in &self.unknown {
            line::check_token("capability", word)?;
            line.push(b" ").push_str(word);
        }
        Ok(())
    }
}

/// One upload-pack request body, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadRequest {
    /// In the order sent; duplicates kept (git ignores them). Empty only for a body that
    /// is a lone flush: the client needs nothing, and the server answers nothing.
    pub wants: Vec<Oid>,
    /// Merged from every want line (git reads capabilities wherever they appear,
    /// though clients send them on the first only).
    pub caps: UploadCapabilities,
    pub shallows: Vec<Oid>,
    pub deepen: Option<Deepen>,
    /// The `filter` spec as sent (e.g. `blob:none`); parsing it is the server's job.
    pub filter: Option<String>,
    /// Every have of the body, all rounds together, in order.
    pub haves: Vec<Oid>,
    /// The client sent `done`: negotiation is over and the pack is wanted now. Without
    /// it the body ended in a flush: one negotiation round, or (with no haves at all) a
    /// shallow fetch's first request.
    pub done: bool,
}

/// Parses one complete upload-pack request body.
///
/// Caps: at most [`MAX_LIST_LEN`] wants, haves, shallows and `deepen-not` lines each.
/// Stricter than git in a few ways that no git client trips over: numbers are decimal
/// digits only, `deepen` and `deepen-since` may appear once each, `filter` once and only
/// with the `filter` capability, and nothing may follow `done`.
pub fn parse_upload_request(body: &[u8]) -> Result<UploadRequest, ParseError> {
    let mut lines = Lines::new(body);
    let mut request = UploadRequest::default();
    let mut deepen = DeepenLines::default();

    loop {
        let line = match lines.expect("a flush after the want list")? {
            Packet::Flush => break,
            Packet::Data(data) => pktline::chomp(data),
            other => {
                return Err(ParseError::UnexpectedPacket {
                    found: other.kind(),
                    expected: "a want-list line",
                });
            }
        };
        if let Some(rest) = line.strip_prefix(b"want ") {
            let (hex, caps) = rest.split_at_checked(Oid::HEX_LEN).unwrap_or((rest, b""));
            let oid = line::oid("want", hex)?;
            if !caps.is_empty() && !caps.starts_with(b" ") {
                return Err(ParseError::unexpected(line, "want <oid> [capabilities]"));
            }
            for word in line::words(caps) {
                request.caps.parse_word(word)?;
            }
            line::push_capped(&mut request.wants, oid, "wants", MAX_LIST_LEN)?;
        } else if let Some(hex) = line.strip_prefix(b"shallow ") {
            let oid = line::oid("shallow", hex)?;
            line::push_capped(&mut request.shallows, oid, "shallows", MAX_LIST_LEN)?;
        } else if let Some(spec) = line.strip_prefix(b"filter ") {
            let spec = line::text("filter", spec, pktline::MAX_DATA_LEN)?;
            if request.filter.replace(spec).is_some() {
                return Err(ParseError::Duplicate { field: "filter" });
            }
        } else if !deepen.accept(line)? {
            return Err(ParseError::unexpected(
                line,
                "want, shallow, deepen, deepen-since, deepen-not or filter",
            ));
        }
    }

    if request.caps.side_band && request.caps.side_band_64k {
        return Err(ParseError::ConflictingSideband);
    }
    if request.filter.is_some() && !request.caps.filter {
        return Err(ParseError::FilterNotNegotiated);
    }
    request.deepen = deepen.finish()?;
    if request.wants.is_empty() {
        // Git's upload-pack stops reading here too: without wants there is nothing to
        // negotiate.
        lines.finish()?;
        return Ok(request);
    }

    // The haves section. The body may end only where a round ends (after the want
    // list's flush or a later one) or right after `done`.
    request.done = read_haves(&mut lines, &mut request.haves, false)?;
    Ok(request)
}

/// One round of haves on a full-duplex stream (git over SSH), where the want section
/// is not repeated: `have` lines up to a flush (the server answers with ACKs and a NAK
/// and the client goes on) or up to `done` (the server answers and sends the pack).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HaveRound {
    /// In order; at most [`MAX_LIST_LEN`].
    pub haves: Vec<Oid>,
    pub done: bool,
}

/// Parses one round of haves, as [`crate::section::SectionReader`] returns it
/// (ending at its flush or `done`, with nothing after).
pub fn parse_have_round(section: &[u8]) -> Result<HaveRound, ParseError> {
    let mut lines = Lines::new(section);
    let mut round = HaveRound::default();
    round.done = read_haves(&mut lines, &mut round.haves, true)?;
    Ok(round)
}

/// Reads `have` lines into `haves` up to `done` (`Ok(true)`, which must end the input)
/// or the end of the input (`Ok(false)`), which must be where a round ends: with
/// `one_round`, at the first flush (which must end the input too); otherwise after any
/// flush or at the very start (the want list's flush ended the previous "round").
fn read_haves(
    lines: &mut Lines<'_>,
    haves: &mut Vec<Oid>,
    one_round: bool,
) -> Result<bool, ParseError> {
    let mut at_round_end = !one_round;
    while let Some(packet) = lines.next()? {
        match packet {
            Packet::Flush if one_round => {
                lines.finish()?;
                return Ok(false);
            }
            Packet::Flush => at_round_end = true,
            Packet::Data(data) => {
                let line = pktline::chomp(data);
                if line == b"done" {
                    lines.finish()?;
                    return Ok(true);
                }
                let Some(hex) = line.strip_prefix(b"have ") else {
                    return Err(ParseError::unexpected(line, "have, done or a flush"));
                };
                let oid = line::oid("have", hex)?;
                line::push_capped(haves, oid, "haves", MAX_LIST_LEN)?;
                at_round_end = false;
            }
            other => {
                return Err(ParseError::UnexpectedPacket {
                    found: other.kind(),
                    expected: "have, done or a flush",
                });
            }
        }
    }
    if !at_round_end || !lines.is_at_end() {
        return Err(ParseError::Truncated {
            expected: "a flush or done after the haves",
        });
    }
    Ok(false)
}

impl UploadRequest {
    /// Writes the request as git's fetch-pack would (capabilities on the first want; the
    /// haves as one round ending in `done` or a flush). Without wants there is no line
    /// to carry the capabilities and no haves section: the body ends at its first flush.
    /// Refuses what the parser would refuse: both side-bands, or a filter without the
    /// `filter` capability.
    pub fn write<W: Write + ?Sized>(&self, out: &mut W) -> Result<(), WriteError> {
        if self.caps.side_band && self.caps.side_band_64k {
            return Err(WriteError::Invalid {
                field: "capabilities",
                value: "side-band side-band-64k".to_owned(),
                reason: "are mutually exclusive",
            });
        }
        if let (Some(filter), false) = (&self.filter, self.caps.filter) {
            return Err(WriteError::Invalid {
                field: "filter",
                value: crate::error::quote(filter.as_bytes()),
                reason: "needs the filter capability",
            });
        }
        let mut line = LineBuf::new();
        for (i, want) in self.wants.iter().enumerate() {
            line.push(b"want ").oid(want);
            if i == 0 {
                self.caps.write_words(&mut line)?;
            }
            line.write_to(out)?;
        }
        write_shallow_section(
            out,
            &mut line,
            &self.shallows,
            self.deepen.as_ref(),
            self.filter.as_deref(),
        )?;
        pktline::write_flush(out)?;
        if self.wants.is_empty() {
            return Ok(());
        }
        for have in &self.haves {
            line.push(b"have ").oid(have).write_to(out)?;
        }
        if self.done {
            pktline::write_line(out, b"done")
        } else if self.haves.is_empty() {
            Ok(())
        } else {
            pktline::write_flush(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::arbitrary::{self, pkts};

    fn oid(hex: &str) -> Oid {
        hex.parse().unwrap()
    }

    /// Rounds of haves as a stream delivers them: each ends at its flush or `done`,
    /// and nothing may follow.
    #[test]
    fn parses_rounds_of_haves() {
        let a = "74730d410fcb6603ace96f1dc55ea6196122532d";
        let b = "7d1665144a3a975c05f1f43902ddaf084e784dbe";
        let round = format!("0032have {a}\n0032have {b}\n0000");
        let parsed = parse_have_round(round.as_bytes()).unwrap();
        assert_eq!(parsed.haves, vec![oid(a), oid(b)]);
        assert!(!parsed.done);
        let last = format!("0032have {a}\n0009done\n");
        let parsed = parse_have_round(last.as_bytes()).unwrap();
        assert_eq!((parsed.haves.len(), parsed.done), (1, true));
        assert_eq!(parse_have_round(b"0009done\n").unwrap().haves, vec![]);
        assert!(!parse_have_round(b"0000").unwrap().done);

        for bad in [
            &b""[..],
            b"0032have 74730d410fcb6603ace96f1dc55ea6196122532d\n",
            b"00000000",
            b"0009done\n0000",
            b"0009want\n0000",
            b"00010000",
        ] {
            assert!(parse_have_round(bad).is_err(), "{}", bad.escape_ascii());
        }
    }

    /// The simple clone of gitprotocol-pack, "Packfile Negotiation", byte for byte.
    #[test]
    fn parses_the_spec_clone_example() {
        let body = b"0054want 74730d410fcb6603ace96f1dc55ea6196122532d multi_ack side-band-64k ofs-delta\n\
            0032want 7d1665144a3a975c05f1f43902ddaf084e784dbe\n\
            0032want 5a3f6be755bbb7deae50065988cbfa1ffa9ab68a\n\
            0032want 7e47fe2bd8d01d481f44d7af0531bd93d3b21c01\n\
            0032want 74730d410fcb6603ace96f1dc55ea6196122532d\n\
            0000\
            0009done\n";
        let request = parse_upload_request(body).unwrap();
        assert_eq!(request.wants.len(), 5);
        assert_eq!(
            request.wants[1],
            oid("7d1665144a3a975c05f1f43902ddaf084e784dbe")
        );
        assert!(request.caps.multi_ack && request.caps.side_band_64k && request.caps.ofs_delta);
        assert!(!request.caps.multi_ack_detailed);
        assert!(request.haves.is_empty());
        assert!(request.done);
    }

    /// The incremental fetch of the same section: wants, flush, a round of haves, flush.
    #[test]
    fn parses_the_spec_negotiation_round() {
        let body = b"0054want 74730d410fcb6603ace96f1dc55ea6196122532d multi_ack side-band-64k ofs-delta\n\
            0032want 7d1665144a3a975c05f1f43902ddaf084e784dbe\n\
            0032want 5a3f6be755bbb7deae50065988cbfa1ffa9ab68a\n\
            0000\
            0032have 7e47fe2bd8d01d481f44d7af0531bd93d3b21c01\n\
            0032have 74730d410fcb6603ace96f1dc55ea6196122532d\n\
            0000";
        let request = parse_upload_request(body).unwrap();
        assert_eq!(request.wants.len(), 3);
        assert_eq!(
            request.haves,
            [
                oid("7e47fe2bd8d01d481f44d7af0531bd93d3b21c01"),
                oid("74730d410fcb6603ace96f1dc55ea6196122532d")
            ]
        );
        assert!(!request.done);
    }

    /// A modern git's stateless request: all of fetch-pack's capabilities, a shallow
    /// fetch's lines (deepen without LF, as fetch-pack writes it), haves, done.
    #[test]
    fn parses_a_shallow_stateless_request() {
        let mut body = Vec::new();
        for line in [
            &b"want 74730d410fcb6603ace96f1dc55ea6196122532d multi_ack_detailed no-done side-band-64k thin-pack include-tag ofs-delta deepen-since deepen-not agent=git/2.43.0 filter\n"[..],
            b"shallow 7d1665144a3a975c05f1f43902ddaf084e784dbe\n",
            b"deepen 1",
            b"filter blob:none\n",
        ] {
            pktline::write_data(&mut body, line).unwrap();
        }
        body.extend_from_slice(
            b"00000032have 7e47fe2bd8d01d481f44d7af0531bd93d3b21c01\n0009done\n",
        );
        let request = parse_upload_request(&body).unwrap();
        assert_eq!(request.deepen, Some(Deepen::Depth(1)));
        assert_eq!(request.filter.as_deref(), Some("blob:none"));
        assert_eq!(request.caps.agent.as_deref(), Some("git/2.43.0"));
        assert!(request.caps.multi_ack_detailed && request.caps.no_done && request.caps.filter);
        assert_eq!(request.shallows.len(), 1);
        assert_eq!(request.haves.len(), 1);
        assert!(request.done);
    }

    #[test]
    fn a_want_section_alone_is_a_request() {
        let body = b"0032want 74730d410fcb6603ace96f1dc55ea6196122532d\n000ddeepen 2\n0000";
        let request = parse_upload_request(body).unwrap();
        assert_eq!(request.deepen, Some(Deepen::Depth(2)));
        assert!(request.haves.is_empty() && !request.done);
    }

    #[test]
    fn a_lone_flush_asks_for_nothing() {
        assert_eq!(
            parse_upload_request(b"0000").unwrap(),
            UploadRequest::default()
        );
        assert_eq!(
            parse_upload_request(b"00000009done\n"),
            Err(ParseError::TrailingBytes(9))
        );
    }

    #[test]
    fn multiple_rounds_of_haves_are_joined() {
        let body = b"0032want 74730d410fcb6603ace96f1dc55ea6196122532d\n0000\
            0032have 7e47fe2bd8d01d481f44d7af0531bd93d3b21c01\n0000\
            0032have 74730d410fcb6603ace96f1dc55ea6196122532d\n0009done\n";
        let request = parse_upload_request(body).unwrap();
        assert_eq!(request.haves.len(), 2);
        assert!(request.done);
    }

    const WANT: &str = "want 74730d410fcb6603ace96f1dc55ea6196122532d\n";
    const HAVE: &str = "have 7e47fe2bd8d01d481f44d7af0531bd93d3b21c01\n";

    #[test]
    fn rejects_malformed_requests() {
        let cases: &[(Vec<u8>, arbitrary::ErrorCheck)] = &[
            (Vec::new(), |e| matches!(e, ParseError::Truncated { .. })),
            (pkts(&[WANT]), |e| matches!(e, ParseError::Truncated { .. })),
            (pkts(&[WANT, "0000", HAVE]), |e| {
                matches!(e, ParseError::Truncated { .. })
            }),
            (
                b"0032want 74730d410fcb6603ace96f1dc55ea6196122532d\n0000003".to_vec(),
                |e| matches!(e, ParseError::Truncated { .. }),
            ),
            (pkts(&[WANT, "0000", "done\n", "0000"]), |e| {
                matches!(e, ParseError::TrailingBytes(4))
            }),
            (
                pkts(&["want 74730d410fcb6603ace96f1dc55ea6196122532\n", "0000"]),
                |e| matches!(e, ParseError::InvalidOid { field: "want", .. }),
            ),
            (
                pkts(&["want 74730d410fcb6603ace96f1dc55ea6196122532dXY", "0000"]),
                |e| matches!(e, ParseError::UnexpectedLine { .. }),
            ),
            (pkts(&[WANT, "deepen 0\n", "0000"]), |e| {
                matches!(
                    e,
                    ParseError::InvalidValue {
                        field: "deepen",
                        ..
                    }
                )
            }),
            (pkts(&[WANT, "deepen +1\n", "0000"]), |e| {
                matches!(
                    e,
                    ParseError::InvalidValue {
                        field: "deepen",
                        ..
                    }
                )
            }),
            (pkts(&[WANT, "deepen 1", "deepen 2", "0000"]), |e| {
                matches!(e, ParseError::Duplicate { field: "deepen" })
            }),
            (
                pkts(&[WANT, "deepen 1\n", "deepen-since 12345\n", "0000"]),
                |e| matches!(e, ParseError::ConflictingDeepen),
            ),
            (
                pkts(&[WANT, "deepen 1\n", "deepen-not refs/heads/main\n", "0000"]),
                |e| matches!(e, ParseError::ConflictingDeepen),
            ),
            (pkts(&[WANT, "filter blob:none\n", "0000"]), |e| {
                matches!(e, ParseError::FilterNotNegotiated)
            }),
            (
                pkts(&[
                    "want 74730d410fcb6603ace96f1dc55ea6196122532d side-band side-band-64k\n",
                    "0000",
                ]),
                |e| matches!(e, ParseError::ConflictingSideband),
            ),
            (
                pkts(&[
                    "want 74730d410fcb6603ace96f1dc55ea6196122532d object-format=sha256\n",
                    "0000",
                ]),
                |e| matches!(e, ParseError::UnsupportedObjectFormat(_)),
            ),
            (pkts(&[WANT, "0001"]), |e| {
                matches!(e, ParseError::UnexpectedPacket { found: "delim", .. })
            }),
            (
                pkts(&[WANT, "ERR go away"]),
                |e| matches!(e, ParseError::Remote(m) if m == "go away"),
            ),
            (pkts(&[WANT, "0000", "whatever"]), |e| {
                matches!(e, ParseError::UnexpectedLine { .. })
            }),
            (
                pkts(&[
                    WANT,
                    "have 7e47fe2bd8d01d481f44d7af0531bd93d3b21c01\n",
                    "0000",
                ]),
                |e| matches!(e, ParseError::UnexpectedLine { .. }),
            ),
        ];
        for (body, check) in cases {
            let err = parse_upload_request(body).unwrap_err();
            assert!(check(&err), "{}: {err:?}", body.escape_ascii());
        }
    }

    #[test]
    fn unknown_capabilities_are_kept_but_capped() {
        let request = parse_upload_request(&pkts(&[
            "want 74730d410fcb6603ace96f1dc55ea6196122532d allow-everything\n",
            "0000",
        ]))
        .unwrap();
        assert_eq!(request.caps.unknown, ["allow-everything"]);

        let mut line = b"want 74730d410fcb6603ace96f1dc55ea6196122532d".to_vec();
        for i in 0..=crate::limits::MAX_UNKNOWN_CAPABILITIES {
            line.extend_from_slice(format!(" x{i}").as_bytes());
        }
        let mut body = Vec::new();
        pktline::write_data(&mut body, &line).unwrap();
        pktline::write_flush(&mut body).unwrap();
        assert!(matches!(
            parse_upload_request(&body),
            Err(ParseError::TooMany {
                field: "unknown capabilities",
                ..
            })
        ));
    }

    #[test]
    fn too_many_haves_are_refused() {
        let mut body = Vec::new();
        pktline::write_line(&mut body, b"want 74730d410fcb6603ace96f1dc55ea6196122532d").unwrap();
        pktline::write_flush(&mut body).unwrap();
        for _ in 0..=MAX_LIST_LEN {
            pktline::write_line(&mut body, b"have 74730d410fcb6603ace96f1dc55ea6196122532d")
                .unwrap();
        }
        assert_eq!(
            parse_upload_request(&body),
            Err(ParseError::TooMany {
                field: "haves",
                max: MAX_LIST_LEN
            })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn written_requests_parse_back(request in arbitrary::upload_request()) {
            let mut body = Vec::new();
            request.write(&mut body).unwrap();
            prop_assert_eq!(parse_upload_request(&body).unwrap(), request);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_upload_request(&bytes);
        }

        #[test]
        fn accepted_requests_write_back(lines in arbitrary::request_lines()) {
            if let Ok(request) = parse_upload_request(&lines) {
                let mut body = Vec::new();
                request.write(&mut body).unwrap();
                prop_assert_eq!(parse_upload_request(&body).unwrap(), request);
            }
        }
    }
}
