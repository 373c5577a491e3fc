//! What a v2 server writes: the capability advertisement that opens a session and the
//! `ls-refs` response.
//!
//! ```text
//! version 2
//! agent=guts/0.1.0
//! ls-refs=unborn
//! fetch=shallow wait-for-done filter
//! server-option
//! object-format=sha1
//! 0000
//! ```
//!
//! A server advertises only what it implements: every feature is off unless the caller
//! turns it on, and the parser's [`FetchArgs::unadvertised`](super::FetchArgs::unadvertised)
//! checks requests against the same [`FetchFeatures`].

use std::io::Write;

use crate::error::WriteError;
use crate::line::{self, LineBuf};
use crate::oid::Oid;
use crate::pktline;

/// Features of `ls-refs` beyond the base command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LsRefsFeatures {
    /// Clients may ask for `unborn`: HEAD listed even when its branch does not exist
    /// yet, so a clone of an empty repository checks out the right branch name.
    pub unborn: bool,
}

/// Features of `fetch` beyond the base command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchFeatures {
    /// `shallow`, `deepen`, `deepen-since`, `deepen-not`, `deepen-relative`.
    pub shallow: bool,
    /// `filter` (partial clone).
    pub filter: bool,
    /// `want-ref`.
    pub ref_in_want: bool,
    /// `sideband-all`.
    pub sideband_all: bool,
    /// `wait-for-done`.
    pub wait_for_done: bool,
}

/// A v2 capability advertisement, built up from nothing:
///
/// ```
/// use guts_git::v2::{CapabilityAdvertisement, FetchFeatures, LsRefsFeatures};
///
/// let adv = CapabilityAdvertisement::new()
///     .agent(guts_git::AGENT)
///     .ls_refs(LsRefsFeatures { unborn: true })
///     .fetch(FetchFeatures { shallow: true, ..Default::default() })
///     .object_format_sha1();
/// let mut out = Vec::new();
/// adv.write(&mut out)?;
/// assert!(out.starts_with(b"000eversion 2\n"));
/// # Ok::<(), guts_git::WriteError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilityAdvertisement {
    /// `agent=<value>`; clients send their own agent only if the server sent one.
    pub agent: Option<String>,
    /// `ls-refs[=features]`, if the command is offered.
    pub ls_refs: Option<LsRefsFeatures>,
    /// `fetch[=features]`, if the command is offered.
    pub fetch: Option<FetchFeatures>,
    /// `server-option`: clients may send `server-option=` lines.
    pub server_option: bool,
    /// `object-format=sha1`. Without it clients assume SHA-1 anyway; git sends it, and
    /// its clients then name the format in every request.
    pub object_format_sha1: bool,
    /// `session-id=<id>`, for correlating a client's requests in logs.
    pub session_id: Option<String>,
}

impl CapabilityAdvertisement {
    /// Advertises nothing but `version 2`.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn agent(mut self, agent: impl Into<String>) -> Self {
        self.agent = Some(agent.into());
        self
    }

    pub fn ls_refs(mut self, features: LsRefsFeatures) -> Self {
        self.ls_refs = Some(features);
        self
    }

    pub fn fetch(mut self, features: FetchFeatures) -> Self {
        self.fetch = Some(features);
        self
    }

    pub fn server_option(mut self) -> Self {
        self.server_option = true;
        self
    }

    pub fn object_format_sha1(mut self) -> Self {
        self.object_format_sha1 = true;
        self
    }

    pub fn session_id(mut self, id: impl Into<String>) -> Self {
        self.session_id = Some(id.into());
        self
    }

    /// Writes `version 2`, one line per capability in git's order, and the flush.
    pub fn write<W: Write + ?Sized>(&self, out: &mut W) -> Result<(), WriteError> {
        pktline::write_line(out, b"version 2")?;
        let mut line = LineBuf::new();
        if let Some(agent) = &self.agent {
            line::check_token("agent", agent)?;
            line.push(b"agent=").push_str(agent).write_to(out)?;
        }
        if let Some(features) = &self.ls_refs {
            line.push(b"ls-refs");
            write_features(&mut line, &[(features.unborn, "unborn")]);
            line.write_to(out)?;
        }
        if let Some(features) = &self.fetch {
            line.push(b"fetch");
            write_features(
                &mut line,
                &[
                    (features.shallow, "shallow"),
                    (features.wait_for_done, "wait-for-done"),
                    (features.filter, "filter"),
                    (features.ref_in_want, "ref-in-want"),
                    (features.sideband_all, "sideband-all"),
                ],
            );
            line.write_to(out)?;
        }
        if self.server_option {
            pktline::write_line(out, b"server-option")?;
        }
        if self.object_format_sha1 {
            pktline::write_line(out, b"object-format=sha1")?;
        }
        if let Some(id) = &self.session_id {
            line::check_token("session-id", id)?;
            line.push(b"session-id=").push_str(id).write_to(out)?;
        }
        pktline::write_flush(out)
    }
}

/// Appends `=a b c` for the features that are on, or nothing if none is.
fn write_features(line: &mut LineBuf, features: &[(bool, &str)]) {
    let mut separator: &[u8] = b"=";
    for (_, name) in features.iter().filter(|(on, _)| *on) {
        line.push(separator).push_str(name);
        separator = b" ";
    }
}

/// One line of an `ls-refs` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LsRef<'a> {
    /// `HEAD` or a full ref name.
    pub name: &'a str,
    /// `None` for an unborn symref (only with the client's `unborn`): written as
    /// `unborn <name> symref-target:<target>`, so `symref_target` is then required.
    pub oid: Option<Oid>,
    /// With `symrefs`: what a symbolic ref points to.
    pub symref_target: Option<&'a str>,
    /// With `peel`: what an annotated tag points to.
    pub peeled: Option<Oid>,
}

/// Writes one `ls-refs` line: `<oid> <name>[ symref-target:<t>][ peeled:<oid>]`.
pub fn write_ls_ref<W: Write + ?Sized>(out: &mut W, r: &LsRef<'_>) -> Result<(), WriteError> {
    line::check_ref_name("ref name", r.name)?;
    let mut line = LineBuf::new();
    match &r.oid {
        Some(oid) => line.oid(oid),
        None if r.symref_target.is_some() => line.push(b"unborn"),
        None => {
            return Err(WriteError::Invalid {
                field: "ls-refs line",
                value: crate::error::quote(r.name.as_bytes()),
                reason: "an unborn ref needs a symref target",
            });
        }
    };
    line.push(b" ").push_str(r.name);
    if let Some(target) = r.symref_target {
        line::check_ref_name("symref target", target)?;
        line.push(b" symref-target:").push_str(target);
    }
    if let Some(peeled) = &r.peeled {
        line.push(b" peeled:").oid(peeled);
    }
    line.write_to(out)
}

/// Writes a whole `ls-refs` response: each line, then the flush.
pub fn write_ls_refs<W: Write + ?Sized>(out: &mut W, refs: &[LsRef<'_>]) -> Result<(), WriteError> {
    for r in refs {
        write_ls_ref(out, r)?;
    }
    pktline::write_flush(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(hex: &str) -> Oid {
        hex.parse().unwrap()
    }

    /// Byte for byte what git 2.43's upload-pack advertises with default settings,
    /// except for the agent.
    #[test]
    fn writes_gits_default_advertisement() {
        let adv = CapabilityAdvertisement::new()
            .agent("git/2.43.0")
            .ls_refs(LsRefsFeatures { unborn: true })
            .fetch(FetchFeatures {
                shallow: true,
                wait_for_done: true,
                ..Default::default()
            })
            .server_option()
            .object_format_sha1();
        let mut out = Vec::new();
        adv.write(&mut out).unwrap();
        let expected: &[u8] = b"000eversion 2\n\
            0015agent=git/2.43.0\n\
            0013ls-refs=unborn\n\
            0020fetch=shallow wait-for-done\n\
            0012server-option\n\
            0017object-format=sha1\n\
            0000";
        assert_eq!(
            out.escape_ascii().to_string(),
            expected.escape_ascii().to_string()
        );
    }

    #[test]
    fn advertises_only_what_is_asked() {
        let mut out = Vec::new();
        CapabilityAdvertisement::new().write(&mut out).unwrap();
        assert_eq!(out, b"000eversion 2\n0000");

        let mut out = Vec::new();
        CapabilityAdvertisement::new()
            .ls_refs(LsRefsFeatures::default())
            .fetch(FetchFeatures {
                shallow: true,
                filter: true,
                ref_in_want: true,
                sideband_all: true,
                wait_for_done: true,
            })
            .write(&mut out)
            .unwrap();
        assert_eq!(
            out,
            b"000eversion 2\n000cls-refs\n0040fetch=shallow wait-for-done filter ref-in-want sideband-all\n0000"
        );
    }

    #[test]
    fn refuses_an_agent_with_a_space() {
        let result = CapabilityAdvertisement::new()
            .agent("guts 1")
            .write(&mut Vec::new());
        assert!(matches!(
            result,
            Err(WriteError::Invalid { field: "agent", .. })
        ));
    }

    /// The ref listing of gitprotocol-v2's `ls-refs` output grammar.
    #[test]
    fn writes_ls_refs_lines() {
        let main = oid("7217a7c7e582c46cec22a130adf4b9d7d950fba0");
        let tag = oid("2cb58b79488a98d2721cea644875a8dd0026b115");
        let mut out = Vec::new();
        write_ls_refs(
            &mut out,
            &[
                LsRef {
                    name: "HEAD",
                    oid: Some(main),
                    symref_target: Some("refs/heads/main"),
                    peeled: None,
                },
                LsRef {
                    name: "refs/heads/main",
                    oid: Some(main),
                    symref_target: None,
                    peeled: None,
                },
                LsRef {
                    name: "refs/tags/v1.0",
                    oid: Some(tag),
                    symref_target: None,
                    peeled: Some(main),
                },
            ],
        )
        .unwrap();
        let expected: &[u8] = b"00507217a7c7e582c46cec22a130adf4b9d7d950fba0 HEAD symref-target:refs/heads/main\n\
            003d7217a7c7e582c46cec22a130adf4b9d7d950fba0 refs/heads/main\n\
            006c2cb58b79488a98d2721cea644875a8dd0026b115 refs/tags/v1.0 peeled:7217a7c7e582c46cec22a130adf4b9d7d950fba0\n\
            0000";
        assert_eq!(
            out.escape_ascii().to_string(),
            expected.escape_ascii().to_string()
        );
    }

    #[test]
    fn writes_unborn_head() {
        let mut out = Vec::new();
        write_ls_ref(
            &mut out,
            &LsRef {
                name: "HEAD",
                oid: None,
                symref_target: Some("refs/heads/main"),
                peeled: None,
            },
        )
        .unwrap();
        assert_eq!(out, b"002eunborn HEAD symref-target:refs/heads/main\n");

        let result = write_ls_ref(
            &mut Vec::new(),
            &LsRef {
                name: "HEAD",
                oid: None,
                symref_target: None,
                peeled: None,
            },
        );
        assert!(matches!(result, Err(WriteError::Invalid { .. })));
    }
}
