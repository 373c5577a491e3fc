//! The receive-pack request of a push: the ref updates the client asks for, then
//! (unless it only deletes) the pack.
//!
//! ```text
//! shallow <oid>                          ...if the client is shallow
//! <old> <new> <ref>\0<capabilities>      the first command carries the capabilities
//! <old> <new> <ref>                      ...more commands
//! 0000
//! <push option>                          ...only if push-options was negotiated
//! 0000
//! PACK...                                the pack, to the end of the body
//! ```
//!
//! The body arrives in chunks and the pack can be large, so the command list is parsed
//! from a growing buffer by [`ReceiveParser`], which never reparses a packet and reports
//! the offset at which the pack begins; the server streams the rest to the indexer
//! without ever holding the pack in this crate.

use std::io::Write;

use crate::error::{ParseError, WriteError};
use crate::limits::MAX_LIST_LEN;
use crate::line::{self, LineBuf, Lines};
use crate::oid::Oid;
use crate::pktline::{self, Packet};

use super::parse_shared_capability;

/// The capabilities a pushing client asked for on its first command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveCapabilities {
    /// Answer with `unpack ok|<error>` and `ok <ref>` / `ng <ref> <reason>` lines.
    pub report_status: bool,
    /// The same with `option` lines for refs rewritten by a proc-receive hook.
    pub report_status_v2: bool,
    /// The client may send deletions (zero new id); it must not unless advertised.
    pub delete_refs: bool,
    /// Multiplex the report and progress in side-band-64k packets.
    pub side_band_64k: bool,
    /// No progress output.
    pub quiet: bool,
    /// All updates succeed or none does.
    pub atomic: bool,
    pub ofs_delta: bool,
    /// A push-option section follows the commands.
    pub push_options: bool,
    pub agent: Option<String>,
    pub session_id: Option<String>,
    /// Capabilities this type does not know, at most
    /// [`MAX_UNKNOWN_CAPABILITIES`](crate::limits::MAX_UNKNOWN_CAPABILITIES).
    pub unknown: Vec<String>,
}

impl ReceiveCapabilities {
    fn parse_word(&mut self, word: &[u8]) -> Result<(), ParseError> {
        let flag = match word {
            b"report-status" => &mut self.report_status,
            b"report-status-v2" => &mut self.report_status_v2,
            b"delete-refs" => &mut self.delete_refs,
            b"side-band-64k" => &mut self.side_band_64k,
            b"quiet" => &mut self.quiet,
            b"atomic" => &mut self.atomic,
            b"ofs-delta" => &mut self.ofs_delta,
            b"push-options" => &mut self.push_options,
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

    /// Appends the capabilities, space-separated, in the order git's send-pack uses.
    fn write_words(&self, line: &mut LineBuf) -> Result<(), WriteError> {
        let flags = [
            (self.report_status, "report-status"),
            (self.report_status_v2, "report-status-v2"),
            (self.side_band_64k, "side-band-64k"),
            (self.quiet, "quiet"),
            (self.atomic, "atomic"),
            (self.push_options, "push-options"),
            (self.delete_refs, "delete-refs"),
            (self.ofs_delta, "ofs-delta"),
        ];
        let mut first = true;
        let mut word = |line: &mut LineBuf, text: &[u8]| {
            if !first {
                line.push(b" ");
            }
            first = false;
            line.push(text);
        };
        for (_, name) in flags.iter().filter(|(on, _)| *on) {
            word(line, name.as_bytes());
        }
        if let Some(agent) = &self.agent {
            line::check_token("agent", agent)?;
            word(line, format!("agent={agent}").as_bytes());
        }
        if let Some(session_id) = &self.session_id {
            line::check_token("session-id", session_id)?;
            word(line, format!("session-id={session_id}").as_bytes());
        }
        for unknown in &self.unknown {
            line::check_token("capability", unknown)?;
            word(line, unknown.as_bytes());
        }
        Ok(())
    }
}

/// One ref update of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// What the client believes the ref holds; zero to create it. The server must
    /// compare-and-swap against this, so a concurrent push is not overwritten.
    pub old: Oid,
    /// Zero to delete the ref.
    pub new: Oid,
    /// As sent; only the line grammar is checked (see [`ReceiveRequest`]).
    pub name: String,
}

impl RefUpdate {
    pub fn is_create(&self) -> bool {
        self.old.is_zero() && !self.new.is_zero()
    }

    pub fn is_delete(&self) -> bool {
        self.new.is_zero()
    }
}

/// A push's command list, parsed.
///
/// Ref names are checked only for what the line grammar needs (UTF-8, no spaces or
/// control characters, at most 4096 bytes); `git check-ref-format` rules, duplicates,
/// and whether deletions were negotiated are the server's to check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveRequest {
    /// In the order sent. Empty when the client had nothing to push.
    pub commands: Vec<RefUpdate>,
    pub caps: ReceiveCapabilities,
    /// The client's shallow commits (sent only by a shallow clone).
    pub shallows: Vec<Oid>,
    /// Present only when `push-options` was negotiated; git's `-o` values, in order.
    pub push_options: Vec<String>,
}

impl ReceiveRequest {
    /// Whether a pack follows: gitprotocol-pack says the client sends one unless every
    /// command is a deletion (an empty pack when it has nothing new).
    pub fn expects_pack(&self) -> bool {
        self.commands.iter().any(|c| !c.is_delete())
    }

    /// Writes the request as git's send-pack would, without the pack.
    pub fn write<W: Write + ?Sized>(&self, out: &mut W) -> Result<(), WriteError> {
        let mut line = LineBuf::new();
        for shallow in &self.shallows {
            line.push(b"shallow ").oid(shallow).write_to(out)?;
        }
        for (i, command) in self.commands.iter().enumerate() {
            line::check_ref_name("ref name", &command.name)?;
            line.oid(&command.old)
                .push(b" ")
                .oid(&command.new)
                .push(b" ")
                .push_str(&command.name);
            if i == 0 {
                line.push(b"\0");
                self.caps.write_words(&mut line)?;
            }
            line.write_to(out)?;
        }
        pktline::write_flush(out)?;
        if self.caps.push_options && !self.commands.is_empty() {
            for option in &self.push_options {
                line::check_text("push option", option)?;
                line.push_str(option).write_to(out)?;
            }
            pktline::write_flush(out)?;
        }
        Ok(())
    }
}

/// What [`ReceiveParser::advance`] found.
#[derive(Debug)]
pub enum ReceiveStep {
    /// The command list is not complete yet: call `advance` again with the same buffer
    /// once more bytes have been appended. If the body has ended, the request was
    /// truncated.
    NeedMore(ReceiveParser),
    /// The command list is complete; the pack (if any) starts at `consumed`.
    Done {
        request: ReceiveRequest,
        consumed: usize,
    },
}

/// Parses a push's command list from a buffer that grows as the body arrives.
///
/// It remembers how far it got, so each packet is parsed once however the body is
/// chunked. Caps: at most [`MAX_LIST_LEN`] commands, shallows and push options each.
/// Push certificates (`push-cert`) are refused with [`ParseError::Unsupported`]: Guts
/// does not advertise them, and a signed push has its own provenance story (signed
/// operations), not GPG.
#[derive(Debug, Default)]
pub struct ReceiveParser {
    /// Bytes of the buffer already parsed: always at a packet boundary.
    pos: usize,
    /// In the push-option section (the command list's flush has been read).
    in_options: bool,
    request: ReceiveRequest,
}

impl ReceiveParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses what `buf` holds beyond what earlier calls consumed. `buf` must start with
    /// the same bytes as on earlier calls (it may only grow).
    pub fn advance(mut self, buf: &[u8]) -> Result<ReceiveStep, ParseError> {
        let mut lines = Lines::new(buf.get(self.pos..).unwrap_or_default());
        loop {
            let Some(packet) = lines.next()? else {
                self.pos += lines.position();
                return Ok(ReceiveStep::NeedMore(self));
            };
            let done = if self.in_options {
                self.option(packet)?
            } else {
                self.command(packet)?
            };
            if done {
                return Ok(ReceiveStep::Done {
                    request: self.request,
                    consumed: self.pos + lines.position(),
                });
            }
        }
    }

    /// Takes one packet of the command list; `Ok(true)` when the request is complete.
    fn command(&mut self, packet: Packet<'_>) -> Result<bool, ParseError> {
        let data = match packet {
            Packet::Data(data) => pktline::chomp(data),
            Packet::Flush => {
                // Push options follow only if negotiated, and git's send-pack sends
                // them only with at least one command.
                self.in_options =
                    self.request.caps.push_options && !self.request.commands.is_empty();
                return Ok(!self.in_options);
            }
            other => {
                return Err(ParseError::UnexpectedPacket {
                    found: other.kind(),
                    expected: "a ref update or a flush",
                });
            }
        };
        if let Some(hex) = data.strip_prefix(b"shallow ") {
            let oid = line::oid("shallow", hex)?;
            line::push_capped(&mut self.request.shallows, oid, "shallows", MAX_LIST_LEN)?;
            return Ok(false);
        }
        let (command, caps) = match data.iter().position(|&b| b == 0) {
            Some(nul) => (data.get(..nul).unwrap_or_default(), data.get(nul + 1..)),
            None => (data, None),
        };
        if command == b"push-cert" {
            return Err(ParseError::Unsupported {
                feature: "push-cert",
            });
        }
        // Git reads capabilities after a NUL on any command line; clients send them on
        // the first only.
        for word in caps.map(line::words).into_iter().flatten() {
            self.request.caps.parse_word(word)?;
        }
        let update = parse_update(command)?;
        line::push_capped(
            &mut self.request.commands,
            update,
            "ref updates",
            MAX_LIST_LEN,
        )?;
        Ok(false)
    }

    /// Takes one packet of the push-option section; `Ok(true)` at its flush.
    fn option(&mut self, packet: Packet<'_>) -> Result<bool, ParseError> {
        match packet {
            Packet::Flush => Ok(true),
            Packet::Data(data) => {
                let option =
                    line::text("push option", pktline::chomp(data), pktline::MAX_DATA_LEN)?;
                line::push_capped(
                    &mut self.request.push_options,
                    option,
                    "push options",
                    MAX_LIST_LEN,
                )?;
                Ok(false)
            }
            other => Err(ParseError::UnexpectedPacket {
                found: other.kind(),
                expected: "a push option or a flush",
            }),
        }
    }
}

/// `<old> SP <new> SP <name>`.
fn parse_update(command: &[u8]) -> Result<RefUpdate, ParseError> {
    let malformed = || ParseError::unexpected(command, "<old-oid> <new-oid> <ref>");
    let (old, rest) = command
        .split_at_checked(Oid::HEX_LEN)
        .ok_or_else(malformed)?;
    let rest = rest.strip_prefix(b" ").ok_or_else(malformed)?;
    let (new, rest) = rest.split_at_checked(Oid::HEX_LEN).ok_or_else(malformed)?;
    let name = rest.strip_prefix(b" ").ok_or_else(malformed)?;
    Ok(RefUpdate {
        old: line::oid("old id", old)?,
        new: line::oid("new id", new)?,
        name: line::ref_name("ref name", name, false)?,
    })
}

/// Parses a push's command list from a complete prefix of the body: `Ok(None)` if `buf`
/// ends before the command list does, else the request and the offset of the pack.
/// For a body arriving in chunks, use [`ReceiveParser`] to avoid reparsing.
pub fn parse_receive_request(buf: &[u8]) -> Result<Option<(ReceiveRequest, usize)>, ParseError> {
    match ReceiveParser::new().advance(buf)? {
        ReceiveStep::NeedMore(_) => Ok(None),
        ReceiveStep::Done { request, consumed } => Ok(Some((request, consumed))),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::arbitrary;

    fn oid(hex: &str) -> Oid {
        hex.parse().unwrap()
    }

    fn done(buf: &[u8]) -> (ReceiveRequest, usize) {
        parse_receive_request(buf).unwrap().unwrap()
    }

    /// The client half of gitprotocol-pack's "Report Status" example, then a pack.
    #[test]
    fn parses_the_spec_push_example() {
        let body = b"00677d1665144a3a975c05f1f43902ddaf084e784dbe 74730d410fcb6603ace96f1dc55ea6196122532d refs/heads/debug\n\
            006874730d410fcb6603ace96f1dc55ea6196122532d 5a3f6be755bbb7deae50065988cbfa1ffa9ab68a refs/heads/master\n\
            0000PACK\x00\x00\x00\x02\x00\x00\x00\x00";
        let (request, consumed) = done(body);
        assert_eq!(&body[consumed..consumed + 4], b"PACK");
        assert_eq!(
            request.commands,
            [
                RefUpdate {
                    old: oid("7d1665144a3a975c05f1f43902ddaf084e784dbe"),
                    new: oid("74730d410fcb6603ace96f1dc55ea6196122532d"),
                    name: "refs/heads/debug".to_owned(),
                },
                RefUpdate {
                    old: oid("74730d410fcb6603ace96f1dc55ea6196122532d"),
                    new: oid("5a3f6be755bbb7deae50065988cbfa1ffa9ab68a"),
                    name: "refs/heads/master".to_owned(),
                },
            ]
        );
        assert_eq!(request.caps, ReceiveCapabilities::default());
        assert!(request.expects_pack());
    }

    /// What git 2.x send-pack writes: no LF, a space after the NUL, capabilities,
    /// then push options.
    #[test]
    fn parses_a_modern_push_with_options() {
        let mut body = Vec::new();
        pktline::write_data(
            &mut body,
            b"0000000000000000000000000000000000000000 74730d410fcb6603ace96f1dc55ea6196122532d refs/heads/new\0 report-status-v2 side-band-64k quiet atomic push-options object-format=sha1 agent=git/2.43.0",
        )
        .unwrap();
        pktline::write_data(
            &mut body,
            b"5a3f6be755bbb7deae50065988cbfa1ffa9ab68a 0000000000000000000000000000000000000000 refs/heads/old",
        )
        .unwrap();
        body.extend_from_slice(b"0000");
        pktline::write_data(&mut body, b"ci.skip").unwrap();
        pktline::write_data(&mut body, b"reviewer=alice").unwrap();
        body.extend_from_slice(b"0000PACK");
        let (request, consumed) = done(&body);
        assert_eq!(&body[consumed..], b"PACK");
        let caps = &request.caps;
        assert!(caps.report_status_v2 && caps.side_band_64k && caps.quiet && caps.atomic);
        assert!(caps.push_options && !caps.report_status && !caps.delete_refs);
        assert_eq!(caps.agent.as_deref(), Some("git/2.43.0"));
        assert!(request.commands[0].is_create());
        assert!(request.commands[1].is_delete());
        assert_eq!(request.push_options, ["ci.skip", "reviewer=alice"]);
    }

    #[test]
    fn shallow_lines_and_delete_only_pushes() {
        let mut body = Vec::new();
        pktline::write_line(
            &mut body,
            b"shallow 7e47fe2bd8d01d481f44d7af0531bd93d3b21c01",
        )
        .unwrap();
        pktline::write_data(
            &mut body,
            b"74730d410fcb6603ace96f1dc55ea6196122532d 0000000000000000000000000000000000000000 refs/tags/v1\0report-status delete-refs",
        )
        .unwrap();
        body.extend_from_slice(b"0000");
        let (request, consumed) = done(&body);
        assert_eq!(consumed, body.len());
        assert_eq!(request.shallows.len(), 1);
        assert!(!request.expects_pack());
        assert!(request.caps.delete_refs);
    }

    #[test]
    fn an_empty_command_list_is_a_flush() {
        assert_eq!(done(b"0000"), (ReceiveRequest::default(), 4));
    }

    #[test]
    fn waits_for_push_options_when_negotiated() {
        let mut body = Vec::new();
        pktline::write_data(
            &mut body,
            b"0000000000000000000000000000000000000000 74730d410fcb6603ace96f1dc55ea6196122532d refs/heads/a\0push-options",
        )
        .unwrap();
        body.extend_from_slice(b"0000");
        assert_eq!(parse_receive_request(&body).unwrap(), None);
        body.extend_from_slice(b"0000PACK");
        let (request, consumed) = done(&body);
        assert!(request.push_options.is_empty());
        assert_eq!(&body[consumed..], b"PACK");
    }

    #[test]
    fn refuses_push_certificates() {
        let mut body = Vec::new();
        pktline::write_data(&mut body, b"push-cert\0 report-status push-cert\n").unwrap();
        pktline::write_line(&mut body, b"certificate version 0.1").unwrap();
        assert_eq!(
            parse_receive_request(&body),
            Err(ParseError::Unsupported {
                feature: "push-cert"
            })
        );
    }

    #[test]
    fn rejects_malformed_commands() {
        let z = "0000000000000000000000000000000000000000";
        let a = "74730d410fcb6603ace96f1dc55ea6196122532d";
        let cases: &[(String, arbitrary::ErrorCheck)] = &[
            (format!("{z} {a}"), |e| {
                matches!(e, ParseError::UnexpectedLine { .. })
            }),
            (format!("{z} {a} "), |e| {
                matches!(
                    e,
                    ParseError::InvalidValue {
                        field: "ref name",
                        ..
                    }
                )
            }),
            (format!("{z} {a} refs/heads/a b"), |e| {
                matches!(
                    e,
                    ParseError::InvalidValue {
                        field: "ref name",
                        ..
                    }
                )
            }),
            (format!("{z}  {a} refs/heads/a"), |e| {
                matches!(e, ParseError::UnexpectedLine { .. })
            }),
            (format!("{z} {a}x refs/heads/a"), |e| {
                matches!(e, ParseError::UnexpectedLine { .. })
            }),
            (format!("{z} {} refs/heads/a", "g".repeat(40)), |e| {
                matches!(
                    e,
                    ParseError::InvalidOid {
                        field: "new id",
                        ..
                    }
                )
            }),
            (format!("{z} {a} refs/heads/{}", "a".repeat(4096)), |e| {
                matches!(
                    e,
                    ParseError::TooLong {
                        field: "ref name",
                        ..
                    }
                )
            }),
            (format!("{z} {a} refs/heads/a\0object-format=sha256"), |e| {
                matches!(e, ParseError::UnsupportedObjectFormat(_))
            }),
            (format!("{z} {a} refs/heads/\u{7f}"), |e| {
                matches!(
                    e,
                    ParseError::InvalidValue {
                        field: "ref name",
                        ..
                    }
                )
            }),
            ("shallow 1234".to_owned(), |e| {
                matches!(
                    e,
                    ParseError::InvalidOid {
                        field: "shallow",
                        ..
                    }
                )
            }),
        ];
        for (line, check) in cases {
            let mut body = Vec::new();
            pktline::write_line(&mut body, line.as_bytes()).unwrap();
            body.extend_from_slice(b"0000");
            let err = parse_receive_request(&body).unwrap_err();
            assert!(check(&err), "{line:?}: {err:?}");
        }
        assert!(matches!(
            parse_receive_request(b"0001"),
            Err(ParseError::UnexpectedPacket { found: "delim", .. })
        ));
        let bad_utf8 = [format!("{z} {a} refs/heads/").as_bytes(), b"\xff"].concat();
        let mut body = Vec::new();
        pktline::write_line(&mut body, &bad_utf8).unwrap();
        assert!(matches!(
            parse_receive_request(&body),
            Err(ParseError::InvalidUtf8 { field: "ref name" })
        ));
    }

    #[test]
    fn parser_never_reparses_and_finds_the_pack_whatever_the_chunking() {
        let request = ReceiveRequest {
            commands: vec![RefUpdate {
                old: Oid::ZERO,
                new: oid("74730d410fcb6603ace96f1dc55ea6196122532d"),
                name: "refs/heads/main".to_owned(),
            }],
            caps: ReceiveCapabilities {
                report_status: true,
                push_options: true,
                ..Default::default()
            },
            shallows: Vec::new(),
            push_options: vec!["a".to_owned()],
        };
        let mut body = Vec::new();
        request.write(&mut body).unwrap();
        let pack_at = body.len();
        body.extend_from_slice(b"PACK\0\0\0\x02");
        for chunk_len in [1, 3, 7, 64] {
            let mut buf = Vec::new();
            let mut parser = ReceiveParser::new();
            let mut result = None;
            for chunk in body.chunks(chunk_len) {
                buf.extend_from_slice(chunk);
                match parser.advance(&buf).unwrap() {
                    ReceiveStep::NeedMore(next) => parser = next,
                    ReceiveStep::Done { request, consumed } => {
                        result = Some((request, consumed));
                        break;
                    }
                }
            }
            let (parsed, consumed) = result.unwrap();
            assert_eq!(parsed, request);
            assert_eq!(consumed, pack_at);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn written_requests_parse_back(request in arbitrary::receive_request(), pack in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut body = Vec::new();
            request.write(&mut body).unwrap();
            let end = body.len();
            body.extend_from_slice(&pack);
            let (parsed, consumed) = parse_receive_request(&body).unwrap().unwrap();
            prop_assert_eq!(parsed, request);
            prop_assert_eq!(consumed, end);
        }

        #[test]
        fn every_strict_prefix_needs_more(request in arbitrary::receive_request()) {
            let mut body = Vec::new();
            request.write(&mut body).unwrap();
            for end in 0..body.len() {
                prop_assert_eq!(parse_receive_request(&body[..end]), Ok(None));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_receive_request(&bytes);
        }

        #[test]
        fn accepted_requests_write_back(lines in arbitrary::request_lines()) {
            if let Ok(Some((request, consumed))) = parse_receive_request(&lines) {
                prop_assert!(consumed <= lines.len());
                let mut body = Vec::new();
                request.write(&mut body).unwrap();
                prop_assert_eq!(parse_receive_request(&body).unwrap(), Some((request, body.len())));
            }
        }
    }
}
