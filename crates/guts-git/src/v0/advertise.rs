//! The v0 ref advertisement: a server's opening message (for HTTP, the body of
//! `GET info/refs?service=...`), listing every ref with the server's capabilities
//! behind a NUL on the first line.
//!
//! ```text
//! # service=git-upload-pack          HTTP only, then a flush
//! 0000
//! <oid> HEAD\0<capabilities>         HEAD first, if it resolves
//! <oid> refs/heads/main              refs in byte order
//! <oid> refs/tags/v1
//! <peeled oid> refs/tags/v1^{}       an annotated tag's target, right after it
//! 0000
//! ```
//!
//! An empty repository has no ref to carry the capabilities, so they go on a
//! placeholder, `<zero-id> capabilities^{}\0<capabilities>`.

use std::io::Write;

use crate::error::WriteError;
use crate::line::{self, LineBuf};
use crate::oid::Oid;
use crate::pktline;

/// The two smart-HTTP services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Fetch and clone.
    UploadPack,
    /// Push.
    ReceivePack,
}

impl Service {
    /// The name in `?service=` and in the route (`git-upload-pack`).
    pub fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }

    /// The service a `?service=` value names; `None` for anything else (git's
    /// http-backend answers 403).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "git-upload-pack" => Some(Service::UploadPack),
            "git-receive-pack" => Some(Service::ReceivePack),
            _ => None,
        }
    }
}

/// One ref to advertise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertisedRef<'a> {
    /// A full name under `refs/`.
    pub name: &'a str,
    pub oid: Oid,
    /// For an annotated tag, the object it finally points to (written as a `^{}`
    /// line: gitprotocol-pack says a server "MUST peel the ref if it's an annotated
    /// tag").
    pub peeled: Option<Oid>,
}

/// Everything a v0 advertisement says.
#[derive(Debug, Clone, Copy)]
pub struct Advertisement<'a> {
    pub service: Service,
    /// Open with `# service=<name>` and a flush, as smart HTTP's `info/refs` must.
    pub http_preamble: bool,
    /// Write `version 1` first: the answer to a client that sent `version=1`.
    pub version_1: bool,
    /// The refs, in any order: they are written sorted by name, bytewise, as the
    /// protocol requires. Not `HEAD`: see `head`.
    pub refs: &'a [AdvertisedRef<'a>],
    /// The ref HEAD points to. If it is among `refs`, HEAD is advertised first with its
    /// id and `symref=HEAD:<target>` is added to the capabilities (so the client checks
    /// out that branch); if not (an unborn branch), HEAD is not advertised at all, as
    /// git does. Receive-pack does not advertise HEAD: pass `None`.
    pub head: Option<&'a str>,
    /// The server's capabilities, in order, e.g. `side-band-64k`, `agent=guts/0.1.0`.
    /// Each must be printable ASCII without spaces.
    pub capabilities: &'a [&'a str],
}

/// Writes the advertisement, final flush included.
pub fn write_advertisement<W: Write + ?Sized>(
    out: &mut W,
    adv: &Advertisement<'_>,
) -> Result<(), WriteError> {
    let mut line = LineBuf::new();
    if adv.http_preamble {
        line.push(b"# service=")
            .push_str(adv.service.name())
            .write_to(out)?;
        pktline::write_flush(out)?;
    }
    if adv.version_1 {
        pktline::write_line(out, b"version 1")?;
    }

    let mut refs: Vec<&AdvertisedRef<'_>> = adv.refs.iter().collect();
    for r in &refs {
        line::check_ref_name("ref name", r.name)?;
        if !r.name.starts_with("refs/") {
            return Err(WriteError::Invalid {
                field: "ref name",
                value: crate::error::quote(r.name.as_bytes()),
                reason: "is not under refs/",
            });
        }
    }
    refs.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));

    let head = match adv.head {
        Some(target) => {
            line::check_ref_name("HEAD target", target)?;
            refs.iter()
                .find(|r| r.name == target)
                .map(|r| (target, r.oid))
        }
        None => None,
    };

    let mut caps = Vec::new();
    for cap in adv.capabilities {
        line::check_token("capability", cap)?;
        if !caps.is_empty() {
            caps.push(b' ');
        }
        caps.extend_from_slice(cap.as_bytes());
    }
    if let Some((target, _)) = head {
        if !caps.is_empty() {
            caps.push(b' ');
        }
        caps.extend_from_slice(b"symref=HEAD:");
        caps.extend_from_slice(target.as_bytes());
    }
    let mut caps = Some(caps);
    // Puts the capabilities behind a NUL on the first line written, and only there.
    let mut first_line = |line: &mut LineBuf| {
        if let Some(caps) = caps.take() {
            line.push(b"\0").push(&caps);
        }
    };

    if let Some((_, oid)) = head {
        line.oid(&oid).push(b" HEAD");
        first_line(&mut line);
        line.write_to(out)?;
    }
    for r in &refs {
        line.oid(&r.oid).push(b" ").push_str(r.name);
        first_line(&mut line);
        line.write_to(out)?;
        if let Some(peeled) = &r.peeled {
            line.oid(peeled)
                .push(b" ")
                .push_str(r.name)
                .push(b"^{}")
                .write_to(out)?;
        }
    }
    if refs.is_empty() {
        line.oid(&Oid::ZERO).push(b" capabilities^{}");
        first_line(&mut line);
        line.write_to(out)?;
    }
    pktline::write_flush(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktline::PktReader;

    fn oid(hex: &str) -> Oid {
        hex.parse().unwrap()
    }

    fn lines(buf: &[u8]) -> Vec<String> {
        PktReader::new(buf)
            .map(|p| match p.unwrap().data() {
                Some(data) => data.escape_ascii().to_string(),
                None => "0000".to_owned(),
            })
            .collect()
    }

    /// gitprotocol-http's smart server reply, byte for byte (with the capability list
    /// it shows).
    #[test]
    fn writes_the_spec_http_example() {
        let refs = [
            AdvertisedRef {
                name: "refs/tags/v1.0",
                oid: oid("2cb58b79488a98d2721cea644875a8dd0026b115"),
                peeled: Some(oid("a3c2e2402b99163d1d59756e5f207ae21cccba4c")),
            },
            AdvertisedRef {
                name: "refs/heads/master",
                oid: oid("d049f6c27a2244e12041955e262a404c7faba355"),
                peeled: None,
            },
            AdvertisedRef {
                name: "refs/heads/maint",
                oid: oid("95dcfa3633004da0049d3d0fa03f80589cbcaf31"),
                peeled: None,
            },
        ];
        let mut out = Vec::new();
        write_advertisement(
            &mut out,
            &Advertisement {
                service: Service::UploadPack,
                http_preamble: true,
                version_1: false,
                refs: &refs,
                head: None,
                capabilities: &["multi_ack"],
            },
        )
        .unwrap();
        let expected: &[u8] = b"001e# service=git-upload-pack\n\
            0000\
            004895dcfa3633004da0049d3d0fa03f80589cbcaf31 refs/heads/maint\0multi_ack\n\
            003fd049f6c27a2244e12041955e262a404c7faba355 refs/heads/master\n\
            003c2cb58b79488a98d2721cea644875a8dd0026b115 refs/tags/v1.0\n\
            003fa3c2e2402b99163d1d59756e5f207ae21cccba4c refs/tags/v1.0^{}\n\
            0000";
        assert_eq!(
            out.escape_ascii().to_string(),
            expected.escape_ascii().to_string()
        );
    }

    #[test]
    fn head_comes_first_with_its_symref() {
        let refs = [AdvertisedRef {
            name: "refs/heads/main",
            oid: oid("7217a7c7e582c46cec22a130adf4b9d7d950fba0"),
            peeled: None,
        }];
        let mut out = Vec::new();
        write_advertisement(
            &mut out,
            &Advertisement {
                service: Service::UploadPack,
                http_preamble: false,
                version_1: true,
                refs: &refs,
                head: Some("refs/heads/main"),
                capabilities: &["side-band-64k", "ofs-delta", "agent=guts/0.1.0"],
            },
        )
        .unwrap();
        assert_eq!(
            lines(&out),
            [
                "version 1\\n",
                "7217a7c7e582c46cec22a130adf4b9d7d950fba0 HEAD\\x00side-band-64k ofs-delta agent=guts/0.1.0 symref=HEAD:refs/heads/main\\n",
                "7217a7c7e582c46cec22a130adf4b9d7d950fba0 refs/heads/main\\n",
                "0000",
            ]
        );
    }

    #[test]
    fn unborn_head_is_not_advertised() {
        let refs = [AdvertisedRef {
            name: "refs/heads/other",
            oid: oid("7217a7c7e582c46cec22a130adf4b9d7d950fba0"),
            peeled: None,
        }];
        let mut out = Vec::new();
        write_advertisement(
            &mut out,
            &Advertisement {
                service: Service::UploadPack,
                http_preamble: false,
                version_1: false,
                refs: &refs,
                head: Some("refs/heads/main"),
                capabilities: &["ofs-delta"],
            },
        )
        .unwrap();
        assert_eq!(
            lines(&out),
            [
                "7217a7c7e582c46cec22a130adf4b9d7d950fba0 refs/heads/other\\x00ofs-delta\\n",
                "0000",
            ]
        );
    }

    #[test]
    fn empty_repository_gets_the_capabilities_placeholder() {
        let mut out = Vec::new();
        write_advertisement(
            &mut out,
            &Advertisement {
                service: Service::ReceivePack,
                http_preamble: true,
                version_1: false,
                refs: &[],
                head: Some("refs/heads/main"),
                capabilities: &["report-status", "delete-refs"],
            },
        )
        .unwrap();
        assert_eq!(
            lines(&out),
            [
                "# service=git-receive-pack\\n",
                "0000",
                "0000000000000000000000000000000000000000 capabilities^{}\\x00report-status delete-refs\\n",
                "0000",
            ]
        );
    }

    #[test]
    fn refuses_text_that_would_break_a_line() {
        let bad_ref = [AdvertisedRef {
            name: "refs/heads/a b",
            oid: Oid::ZERO,
            peeled: None,
        }];
        let not_under_refs = [AdvertisedRef {
            name: "HEAD",
            oid: Oid::ZERO,
            peeled: None,
        }];
        for (refs, caps) in [
            (&bad_ref[..], &["ofs-delta"][..]),
            (&not_under_refs[..], &["ofs-delta"][..]),
            (&[][..], &["agent=a b"][..]),
            (&[][..], &["a\nb"][..]),
            (&[][..], &[""][..]),
        ] {
            let result = write_advertisement(
                &mut Vec::new(),
                &Advertisement {
                    service: Service::UploadPack,
                    http_preamble: false,
                    version_1: false,
                    refs,
                    head: None,
                    capabilities: caps,
                },
            );
            assert!(
                matches!(result, Err(WriteError::Invalid { .. })),
                "{result:?}"
            );
        }
    }

    #[test]
    fn service_names() {
        for service in [Service::UploadPack, Service::ReceivePack] {
            assert_eq!(Service::from_name(service.name()), Some(service));
        }
        assert_eq!(Service::from_name("git-upload-archive"), None);
    }
}
