//! v2 command requests.
//!
//! ```text
//! command=fetch                  the command (once), among capability lines
//! agent=git/2.43.0               capabilities: agent, object-format, server-option,
//! object-format=sha1             session-id
//! 0001                           delimiter, then the command's arguments
//! want <oid>
//! done
//! 0000                           end of the request
//! ```
//!
//! A request may end at the flush without a delimiter (no arguments), and a lone flush
//! is the "empty request" a client sends to say it is finished.

use std::io::Write;

use crate::deepen::{Deepen, DeepenLines, write_shallow_section};
use crate::error::{ParseError, WriteError, quote};
use crate::limits::{MAX_LIST_LEN, MAX_REF_PREFIXES};
use crate::line::{self, LineBuf, Lines};
use crate::oid::Oid;
use crate::pktline::{self, Packet};

use super::advertise::FetchFeatures;

/// What a client says about itself in a request's capability section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCapabilities {
    pub agent: Option<String>,
    pub session_id: Option<String>,
    /// `server-option=<text>` lines (git's `-o`), in order; at most
    /// [`MAX_LIST_LEN`].
    pub server_options: Vec<String>,
}

/// `ls-refs` arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LsRefsArgs {
    /// Show the target of symbolic refs (`symref-target:`).
    pub symrefs: bool,
    /// Show what annotated tags point to (`peeled:`).
    pub peel: bool,
    /// Show HEAD even when its branch does not exist yet (`unborn HEAD ...`).
    pub unborn: bool,
    /// List only refs starting with one of these; empty means all. As in git's server,
    /// [`MAX_REF_PREFIXES`] or more prefixes are all dropped (they only narrow a
    /// listing the client filters anyway), so this never holds that many.
    pub ref_prefixes: Vec<String>,
}

impl LsRefsArgs {
    fn accept(&mut self, line: &[u8], prefixes_seen: &mut usize) -> Result<(), ParseError> {
        match line {
            b"symrefs" => self.symrefs = true,
            b"peel" => self.peel = true,
            b"unborn" => self.unborn = true,
            _ => {
                let Some(prefix) = line.strip_prefix(b"ref-prefix ") else {
                    return Err(ParseError::UnknownArgument(quote(line)));
                };
                let prefix = line::ref_name("ref-prefix", prefix, true)?;
                *prefixes_seen = prefixes_seen.saturating_add(1);
                if *prefixes_seen < MAX_REF_PREFIXES {
                    self.ref_prefixes.push(prefix);
                } else {
                    self.ref_prefixes = Vec::new();
                }
            }
        }
        Ok(())
    }

    fn write<W: Write + ?Sized>(&self, out: &mut W) -> Result<(), WriteError> {
        for (on, arg) in [
            (self.peel, "peel"),
            (self.symrefs, "symrefs"),
            (self.unborn, "unborn"),
        ] {
            if on {
                pktline::write_line(out, arg.as_bytes())?;
            }
        }
        for prefix in &self.ref_prefixes {
            if !prefix.is_empty() {
                line::check_ref_name("ref-prefix", prefix)?;
            }
            LineBuf::new()
                .push(b"ref-prefix ")
                .push_str(prefix)
                .write_to(out)?;
        }
        Ok(())
    }
}

/// `fetch` arguments. Lists are capped at [`MAX_LIST_LEN`] items each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchArgs {
    pub wants: Vec<Oid>,
    /// `want-ref <ref>` (feature `ref-in-want`): the server resolves the names.
    pub want_refs: Vec<String>,
    pub haves: Vec<Oid>,
    /// Negotiation is over: send the pack now.
    pub done: bool,
    pub thin_pack: bool,
    pub no_progress: bool,
    pub include_tag: bool,
    pub ofs_delta: bool,
    /// `shallow <oid>` (feature `shallow`).
    pub shallows: Vec<Oid>,
    /// `deepen`, `deepen-since`, `deepen-not` (feature `shallow`), combined.
    pub deepen: Option<Deepen>,
    pub deepen_relative: bool,
    /// `filter <spec>` (feature `filter`), as sent.
    pub filter: Option<String>,
    /// Multiplex the whole response, not just the pack (feature `sideband-all`).
    pub sideband_all: bool,
    /// Never answer `ready`; wait for `done` (feature `wait-for-done`).
    pub wait_for_done: bool,
}

impl FetchArgs {
    /// The first argument the client used whose feature `advertised` does not include:
    /// git's server treats such a line as unknown, and so should ours.
    pub fn unadvertised(&self, advertised: &FetchFeatures) -> Option<&'static str> {
        let shallow = !self.shallows.is_empty() || self.deepen.is_some() || self.deepen_relative;
        [
            (shallow && !advertised.shallow, "shallow"),
            (self.filter.is_some() && !advertised.filter, "filter"),
            (
                !self.want_refs.is_empty() && !advertised.ref_in_want,
                "want-ref",
            ),
            (
                self.sideband_all && !advertised.sideband_all,
                "sideband-all",
            ),
            (
                self.wait_for_done && !advertised.wait_for_done,
                "wait-for-done",
            ),
        ]
        .into_iter()
        .find_map(|(used, name)| used.then_some(name))
    }

    fn accept(&mut self, line: &[u8], deepen: &mut DeepenLines) -> Result<(), ParseError> {
        let flag = match line {
            b"done" => &mut self.done,
            b"thin-pack" => &mut self.thin_pack,
            b"no-progress" => &mut self.no_progress,
            b"include-tag" => &mut self.include_tag,
            b"ofs-delta" => &mut self.ofs_delta,
            b"deepen-relative" => &mut self.deepen_relative,
            b"sideband-all" => &mut self.sideband_all,
            b"wait-for-done" => &mut self.wait_for_done,
            _ => return self.accept_valued(line, deepen),
        };
        *flag = true;
        Ok(())
    }

    fn accept_valued(&mut self, line: &[u8], deepen: &mut DeepenLines) -> Result<(), ParseError> {
        if let Some(hex) = line.strip_prefix(b"want ") {
            let oid = line::oid("want", hex)?;
            line::push_capped(&mut self.wants, oid, "wants", MAX_LIST_LEN)
        } else if let Some(hex) = line.strip_prefix(b"have ") {
            let oid = line::oid("have", hex)?;
            line::push_capped(&mut self.haves, oid, "haves", MAX_LIST_LEN)
        } else if let Some(hex) = line.strip_prefix(b"shallow ") {
            let oid = line::oid("shallow", hex)?;
            line::push_capped(&mut self.shallows, oid, "shallows", MAX_LIST_LEN)
        } else if let Some(name) = line.strip_prefix(b"want-ref ") {
            let name = line::ref_name("want-ref", name, false)?;
            line::push_capped(&mut self.want_refs, name, "want-refs", MAX_LIST_LEN)
        } else if let Some(spec) = line.strip_prefix(b"filter ") {
            let spec = line::text("filter", spec, pktline::MAX_DATA_LEN)?;
            match self.filter.replace(spec) {
                Some(_) => Err(ParseError::Duplicate { field: "filter" }),
                None => Ok(()),
            }
        } else if deepen.accept(line)? {
            Ok(())
        } else {
            Err(ParseError::UnknownArgument(quote(line)))
        }
    }

    fn write<W: Write + ?Sized>(&self, out: &mut W) -> Result<(), WriteError> {
        let mut line = LineBuf::new();
        for want in &self.wants {
            line.push(b"want ").oid(want).write_to(out)?;
        }
        for name in &self.want_refs {
            line::check_ref_name("want-ref", name)?;
            line.push(b"want-ref ").push_str(name).write_to(out)?;
        }
        for (on, arg) in [
            (self.thin_pack, "thin-pack"),
            (self.no_progress, "no-progress"),
            (self.include_tag, "include-tag"),
            (self.ofs_delta, "ofs-delta"),
            (self.deepen_relative, "deepen-relative"),
            (self.sideband_all, "sideband-all"),
            (self.wait_for_done, "wait-for-done"),
        ] {
            if on {
                pktline::write_line(out, arg.as_bytes())?;
            }
        }
        write_shallow_section(
            out,
            &mut line,
            &self.shallows,
            self.deepen.as_ref(),
            self.filter.as_deref(),
        )?;
        for have in &self.haves {
            line.push(b"have ").oid(have).write_to(out)?;
        }
        if self.done {
            pktline::write_line(out, b"done")?;
        }
        Ok(())
    }
}

/// A command with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    LsRefs(LsRefsArgs),
    Fetch(FetchArgs),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::LsRefs(_) => "ls-refs",
            Command::Fetch(_) => "fetch",
        }
    }
}

/// One request for a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRequest {
    pub command: Command,
    pub caps: ClientCapabilities,
}

/// One message from a v2 client.
// One value per request, moved once: boxing the large variant would cost an
// allocation and a less direct match for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Command(CommandRequest),
    /// A lone flush: the client has no more requests.
    End,
}

/// Parses the request at the front of `buf`: `Ok(None)` if `buf` ends before it does,
/// else the request and the bytes it took (over HTTP, the whole body; on a stream,
/// the next request starts there).
///
/// Unknown commands (`object-info`, `bundle-uri`: Guts advertises neither), capability
/// lines and arguments are errors, as in git's server; `object-format` must be `sha1`.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, ParseError> {
    let mut lines = Lines::new(buf);
    let mut command: Option<&'static str> = None;
    let mut caps = ClientCapabilities::default();
    let mut seen_any = false;
    let has_args = loop {
        let Some(packet) = lines.next()? else {
            return Ok(None);
        };
        match packet {
            Packet::Data(data) => {
                seen_any = true;
                let line = pktline::chomp(data);
                if let Some(name) = line.strip_prefix(b"command=") {
                    let name = match name {
                        b"ls-refs" => "ls-refs",
                        b"fetch" => "fetch",
                        _ => return Err(ParseError::UnknownCommand(quote(name))),
                    };
                    if command.replace(name).is_some() {
                        return Err(ParseError::Duplicate { field: "command" });
                    }
                } else {
                    capability(&mut caps, line)?;
                }
            }
            Packet::Flush if !seen_any => return Ok(Some((Request::End, lines.position()))),
            Packet::Flush => break false,
            Packet::Delim => break true,
            Packet::ResponseEnd => {
                return Err(ParseError::UnexpectedPacket {
                    found: "response-end",
                    expected: "a capability, a delim or a flush",
                });
            }
        }
    };
    let Some(name) = command else {
        return Err(ParseError::NoCommand);
    };

    let mut ls_refs = LsRefsArgs::default();
    let mut prefixes_seen = 0usize;
    let mut fetch = FetchArgs::default();
    let mut deepen = DeepenLines::default();
    if has_args {
        loop {
            let Some(packet) = lines.next()? else {
                return Ok(None);
            };
            let line = match packet {
                Packet::Data(data) => pktline::chomp(data),
                Packet::Flush => break,
                other => {
                    return Err(ParseError::UnexpectedPacket {
                        found: other.kind(),
                        expected: "an argument or a flush",
                    });
                }
            };
            if name == "fetch" {
                fetch.accept(line, &mut deepen)?;
            } else {
                ls_refs.accept(line, &mut prefixes_seen)?;
            }
        }
    }
    let command = if name == "fetch" {
        fetch.deepen = deepen.finish()?;
        Command::Fetch(fetch)
    } else {
        Command::LsRefs(ls_refs)
    };
    Ok(Some((
        Request::Command(CommandRequest { command, caps }),
        lines.position(),
    )))
}

fn capability(caps: &mut ClientCapabilities, line: &[u8]) -> Result<(), ParseError> {
    let value_of = |key: &[u8]| line.strip_prefix(key);
    if let Some(agent) = value_of(b"agent=") {
        caps.agent = Some(line::token("agent", agent)?);
    } else if let Some(id) = value_of(b"session-id=") {
        caps.session_id = Some(line::token("session-id", id)?);
    } else if let Some(format) = value_of(b"object-format=") {
        if format != b"sha1" {
            return Err(ParseError::UnsupportedObjectFormat(quote(format)));
        }
    } else if let Some(option) = value_of(b"server-option=") {
        let option = line::text("server-option", option, pktline::MAX_DATA_LEN)?;
        line::push_capped(
            &mut caps.server_options,
            option,
            "server options",
            MAX_LIST_LEN,
        )?;
    } else {
        return Err(ParseError::UnknownCapability(quote(line)));
    }
    Ok(())
}

impl Request {
    /// Writes the request as git's client would: command, capabilities, delimiter,
    /// arguments, flush.
    pub fn write<W: Write + ?Sized>(&self, out: &mut W) -> Result<(), WriteError> {
        let Request::Command(request) = self else {
            return pktline::write_flush(out);
        };
        let mut line = LineBuf::new();
        line.push(b"command=")
            .push_str(request.command.name())
            .write_to(out)?;
        let caps = &request.caps;
        if let Some(agent) = &caps.agent {
            line::check_token("agent", agent)?;
            line.push(b"agent=").push_str(agent).write_to(out)?;
        }
        if let Some(id) = &caps.session_id {
            line::check_token("session-id", id)?;
            line.push(b"session-id=").push_str(id).write_to(out)?;
        }
        for option in &caps.server_options {
            line::check_text("server-option", option)?;
            line.push(b"server-option=")
                .push_str(option)
                .write_to(out)?;
        }
        pktline::write_delim(out)?;
        match &request.command {
            Command::LsRefs(args) => args.write(out)?,
            Command::Fetch(args) => args.write(out)?,
        }
        pktline::write_flush(out)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::arbitrary;

    fn parse(buf: &[u8]) -> (Request, usize) {
        parse_request(buf).unwrap().unwrap()
    }

    fn command(buf: &[u8]) -> CommandRequest {
        match parse(buf) {
            (Request::Command(command), used) => {
                assert_eq!(used, buf.len());
                command
            }
            other => panic!("not a command: {other:?}"),
        }
    }

    fn pkts(lines: &[&str]) -> Vec<u8> {
        crate::arbitrary::pkts(lines)
    }

    /// What git 2.43 sends for `git ls-remote` / the start of a clone.
    #[test]
    fn parses_a_git_ls_refs_request() {
        let body = b"0014command=ls-refs\n0015agent=git/2.43.0\n0017object-format=sha1\n\
            00010009peel\n000csymrefs\n000bunborn\n0014ref-prefix HEAD\n\
            001bref-prefix refs/heads/\n001aref-prefix refs/tags/\n0000";
        let request = command(body);
        assert_eq!(request.caps.agent.as_deref(), Some("git/2.43.0"));
        let Command::LsRefs(args) = request.command else {
            panic!("not ls-refs");
        };
        assert!(args.peel && args.symrefs && args.unborn);
        assert_eq!(args.ref_prefixes, ["HEAD", "refs/heads/", "refs/tags/"]);
    }

    /// A clone's fetch (gitprotocol-v2 "fetch"), as git 2.43 sends it.
    #[test]
    fn parses_a_git_clone_fetch() {
        let body = pkts(&[
            "command=fetch",
            "agent=git/2.43.0",
            "object-format=sha1",
            "0001",
            "thin-pack",
            "ofs-delta",
            "deepen 1",
            "filter blob:none",
            "want 74730d410fcb6603ace96f1dc55ea6196122532d\n",
            "want 7d1665144a3a975c05f1f43902ddaf084e784dbe\n",
            "have 7e47fe2bd8d01d481f44d7af0531bd93d3b21c01\n",
            "done\n",
            "0000",
        ]);
        let request = command(&body);
        let Command::Fetch(args) = request.command else {
            panic!("not fetch");
        };
        assert!(args.thin_pack && args.ofs_delta && args.done);
        assert_eq!(args.deepen, Some(Deepen::Depth(1)));
        assert_eq!(args.filter.as_deref(), Some("blob:none"));
        assert_eq!(args.wants.len(), 2);
        assert_eq!(args.haves.len(), 1);
        assert_eq!(
            args.unadvertised(&FetchFeatures::default()),
            Some("shallow")
        );
        let features = FetchFeatures {
            shallow: true,
            filter: true,
            ..Default::default()
        };
        assert_eq!(args.unadvertised(&features), None);
    }

    #[test]
    fn a_lone_flush_ends_the_session_and_args_are_optional() {
        assert_eq!(parse(b"0000"), (Request::End, 4));
        let request = command(b"0014command=ls-refs\n0000");
        assert_eq!(request.command, Command::LsRefs(LsRefsArgs::default()));
        // A stream: the next request starts where this one ended.
        let (_, used) = parse(b"0011command=fetch0000rest");
        assert_eq!(used, 21);
    }

    #[test]
    fn needs_more_until_the_flush() {
        let body = pkts(&[
            "command=fetch",
            "0001",
            "want 74730d410fcb6603ace96f1dc55ea6196122532d",
            "0000",
        ]);
        for end in 0..body.len() {
            assert_eq!(parse_request(&body[..end]), Ok(None), "prefix of {end}");
        }
        assert!(parse_request(&body).unwrap().is_some());
    }

    #[test]
    fn too_many_ref_prefixes_list_everything() {
        let mut lines = vec!["command=ls-refs", "0001"];
        lines.extend(std::iter::repeat_n(
            "ref-prefix refs/heads/",
            MAX_REF_PREFIXES,
        ));
        lines.push("0000");
        let Command::LsRefs(args) = command(&pkts(&lines)).command else {
            panic!("not ls-refs");
        };
        assert!(args.ref_prefixes.is_empty());
    }

    #[test]
    fn rejects_what_git_rejects() {
        let cases: &[(&[&str], arbitrary::ErrorCheck)] = &[
            (
                &["command=object-info", "0000"],
                |e| matches!(e, ParseError::UnknownCommand(c) if c == "object-info"),
            ),
            (&["command=fetch", "command=fetch", "0000"], |e| {
                matches!(e, ParseError::Duplicate { field: "command" })
            }),
            (&["agent=git/2.43.0", "0000"], |e| {
                matches!(e, ParseError::NoCommand)
            }),
            (&["agent=git/2.43.0", "0001", "0000"], |e| {
                matches!(e, ParseError::NoCommand)
            }),
            (
                &["command=fetch", "frobnicate=yes", "0000"],
                |e| matches!(e, ParseError::UnknownCapability(c) if c == "frobnicate=yes"),
            ),
            (&["command=fetch", "object-format=sha256", "0000"], |e| {
                matches!(e, ParseError::UnsupportedObjectFormat(_))
            }),
            (
                &["command=fetch", "0001", "packfile-uris https", "0000"],
                |e| matches!(e, ParseError::UnknownArgument(_)),
            ),
            (
                &[
                    "command=ls-refs",
                    "0001",
                    "want 74730d410fcb6603ace96f1dc55ea6196122532d",
                    "0000",
                ],
                |e| matches!(e, ParseError::UnknownArgument(_)),
            ),
            (&["command=fetch", "0001", "want 74730d41", "0000"], |e| {
                matches!(e, ParseError::InvalidOid { field: "want", .. })
            }),
            (
                &[
                    "command=fetch",
                    "0001",
                    "filter blob:none",
                    "filter tree:0",
                    "0000",
                ],
                |e| matches!(e, ParseError::Duplicate { field: "filter" }),
            ),
            (
                &[
                    "command=fetch",
                    "0001",
                    "deepen 3",
                    "deepen-not refs/heads/main",
                    "0000",
                ],
                |e| matches!(e, ParseError::ConflictingDeepen),
            ),
            (&["command=fetch", "0001", "0001"], |e| {
                matches!(e, ParseError::UnexpectedPacket { found: "delim", .. })
            }),
            (&["command=fetch", "0002"], |e| {
                matches!(
                    e,
                    ParseError::UnexpectedPacket {
                        found: "response-end",
                        ..
                    }
                )
            }),
            (&["ERR nope"], |e| matches!(e, ParseError::Remote(_))),
        ];
        for (lines, check) in cases {
            let err = parse_request(&pkts(lines)).unwrap_err();
            assert!(check(&err), "{lines:?}: {err:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn written_requests_parse_back(request in arbitrary::v2_request()) {
            let mut body = Vec::new();
            request.write(&mut body).unwrap();
            let (parsed, used) = parse_request(&body).unwrap().unwrap();
            prop_assert_eq!(parsed, request);
            prop_assert_eq!(used, body.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_request(&bytes);
        }

        #[test]
        fn accepted_requests_write_back(lines in arbitrary::request_lines()) {
            if let Ok(Some((request, used))) = parse_request(&lines) {
                prop_assert!(used <= lines.len());
                let mut body = Vec::new();
                request.write(&mut body).unwrap();
                prop_assert_eq!(parse_request(&body).unwrap(), Some((request, body.len())));
            }
        }
    }
}
