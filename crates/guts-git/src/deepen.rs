//! What a client asks to be cut off its history, shared by v0 and v2 fetches so the
//! server computes shallow boundaries from one type whichever protocol it speaks.

use crate::error::{ParseError, WriteError};
use crate::limits::MAX_LIST_LEN;
use crate::line::{self, LineBuf};
use crate::pktline;

/// A shallow-fetch request. The protocol's `deepen-relative` is kept beside it, not in
/// it (a v0 capability, a v2 argument), since it changes how a depth is counted rather
/// than what is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deepen {
    /// `deepen <n>`: at most `n` commits from each wanted tip (or, with
    /// `deepen-relative`, `n` more than the client's current shallow boundary). Never 0:
    /// git's server refuses `deepen 0`, and its client never sends it.
    Depth(u32),
    /// `deepen-since <timestamp>` and/or `deepen-not <rev>` lines: history is cut at a
    /// commit time (seconds since the epoch) and/or where it reaches a revision the
    /// client names. Parsed requests hold at least one of the two; the protocol forbids
    /// combining either with a depth.
    Cut {
        since: Option<u64>,
        not: Vec<String>,
    },
}

impl Deepen {
    /// Writes the request's `deepen*` lines (without trailing LF in `deepen <n>`, as git
    /// writes it; readers accept either).
    pub(crate) fn write<W: std::io::Write + ?Sized>(&self, out: &mut W) -> Result<(), WriteError> {
        match self {
            Deepen::Depth(depth) => {
                pktline::write_data(out, format!("deepen {depth}").as_bytes())?;
            }
            Deepen::Cut { since, not } => {
                if let Some(since) = since {
                    pktline::write_line(out, format!("deepen-since {since}").as_bytes())?;
                }
                for rev in not {
                    line::check_ref_name("deepen-not revision", rev)?;
                    LineBuf::new()
                        .push(b"deepen-not ")
                        .push_str(rev)
                        .write_to(out)?;
                }
            }
        }
        Ok(())
    }
}

/// Collects `deepen`, `deepen-since` and `deepen-not` lines in any order, then checks
/// that they combine into one [`Deepen`].
#[derive(Debug, Default)]
pub(crate) struct DeepenLines {
    depth: Option<u32>,
    since: Option<u64>,
    not: Vec<String>,
}

/// Writes the lines both protocol versions send to limit history, in git's order:
/// `shallow` ids, the deepen request, then `filter`.
pub(crate) fn write_shallow_section<W: std::io::Write + ?Sized>(
    out: &mut W,
    line: &mut LineBuf,
    shallows: &[crate::oid::Oid],
    deepen: Option<&Deepen>,
    filter: Option<&str>,
) -> Result<(), WriteError> {
    for shallow in shallows {
        line.push(b"shallow ").oid(shallow).write_to(out)?;
    }
    if let Some(deepen) = deepen {
        deepen.write(out)?;
    }
    if let Some(filter) = filter {
        line::check_text("filter", filter)?;
        line.push(b"filter ").push_str(filter).write_to(out)?;
    }
    Ok(())
}

impl DeepenLines {
    /// Takes `line` if it is one of the three; `Ok(false)` leaves it to the caller.
    pub(crate) fn accept(&mut self, line: &[u8]) -> Result<bool, ParseError> {
        if let Some(arg) = line.strip_prefix(b"deepen ") {
            let depth: u32 = line::number("deepen", arg)?;
            if depth == 0 {
                return Err(ParseError::InvalidValue {
                    field: "deepen",
                    value: "0".to_owned(),
                });
            }
            if self.depth.replace(depth).is_some() {
                return Err(ParseError::Duplicate { field: "deepen" });
            }
        } else if let Some(arg) = line.strip_prefix(b"deepen-since ") {
            let since = line::number("deepen-since", arg)?;
            if self.since.replace(since).is_some() {
                return Err(ParseError::Duplicate {
                    field: "deepen-since",
                });
            }
        } else if let Some(arg) = line.strip_prefix(b"deepen-not ") {
            let rev = line::ref_name("deepen-not", arg, false)?;
            line::push_capped(&mut self.not, rev, "deepen-not lines", MAX_LIST_LEN)?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    pub(crate) fn finish(self) -> Result<Option<Deepen>, ParseError> {
        let cut = self.since.is_some() || !self.not.is_empty();
        match self.depth {
            Some(_) if cut => Err(ParseError::ConflictingDeepen),
            Some(depth) => Ok(Some(Deepen::Depth(depth))),
            None if cut => Ok(Some(Deepen::Cut {
                since: self.since,
                not: self.not,
            })),
            None => Ok(None),
        }
    }
}
