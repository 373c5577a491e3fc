//! What a repository advertises: its refs (with annotated tags peeled and HEAD's
//! target), as the v0 `info/refs` answer, the v2 capability advertisement, and v2
//! `ls-refs`.

use std::io::Write;

use guts_storage::GitRepo;

use super::{Protocol, ServeError, from_gix, to_gix};
use crate::Oid;
use crate::v0::{AdvertisedRef, Advertisement, Service, write_advertisement};
use crate::v2::{
    CapabilityAdvertisement, FetchFeatures, LsRef, LsRefsArgs, LsRefsFeatures, write_ls_refs,
};

/// Refs under this prefix are the node's own (conflict tips): served to readers, never
/// offered to a pusher, who could not update them anyway.
const RESERVED_PREFIX: &str = "refs/guts/";

/// A repository's refs as the protocol shows them.
#[derive(Debug, Clone, Default)]
pub struct RefList {
    /// `(name, id, peeled id for an annotated tag)`, sorted by name.
    pub refs: Vec<(String, Oid, Option<Oid>)>,
    /// The full ref name HEAD points to (it may not exist yet: an unborn branch).
    pub head: Option<String>,
}

impl RefList {
    pub fn read(repo: &GitRepo) -> Result<RefList, ServeError> {
        let mut refs = Vec::new();
        for (name, id) in repo.refs()? {
            let oid = Oid::from_bytes(id);
            let peeled = peel_tag(repo.gix(), &oid)?;
            refs.push((name, oid, peeled));
        }
        refs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let head = repo
            .gix()
            .head_name()
            .ok()
            .flatten()
            .map(|n| n.as_bstr().to_string());
        Ok(RefList { refs, head })
    }

    pub fn target(&self, name: &str) -> Option<Oid> {
        self.refs
            .binary_search_by(|r| r.0.as_bytes().cmp(name.as_bytes()))
            .ok()
            .and_then(|i| self.refs.get(i))
            .map(|r| r.1)
    }

    fn head_oid(&self) -> Option<Oid> {
        self.head.as_deref().and_then(|h| self.target(h))
    }
}

/// The object an annotated tag finally points to; `None` for anything else.
pub(crate) fn peel_tag(repo: &gix::Repository, oid: &Oid) -> Result<Option<Oid>, ServeError> {
    let mut id = to_gix(oid);
    let mut peeled = None;
    // Tags of tags exist; a cycle cannot (ids are hashes), but a depth cap keeps a
    // corrupt repository from looping.
    for _ in 0..64 {
        let header = repo.find_header(id).map_err(ServeError::git)?;
        if header.kind() != gix::object::Kind::Tag {
            return Ok(peeled);
        }
        id = tag_target(repo, id)?;
        peeled = from_gix(&id);
    }
    Err(ServeError::Git(format!(
        "tag {oid} nests more than 64 deep"
    )))
}

/// What the tag object `id` points to (one level).
pub(crate) fn tag_target(
    repo: &gix::Repository,
    id: gix::ObjectId,
) -> Result<gix::ObjectId, ServeError> {
    let tag = repo.find_object(id).map_err(ServeError::git)?;
    gix::objs::TagRefIter::from_bytes(&tag.data, gix::hash::Kind::Sha1)
        .target_id()
        .map_err(ServeError::git)
}

const UPLOAD_CAPABILITIES: &[&str] = &[
    "multi_ack",
    "thin-pack",
    "side-band",
    "side-band-64k",
    "ofs-delta",
    "shallow",
    "deepen-since",
    "deepen-not",
    "deepen-relative",
    "no-progress",
    "include-tag",
    "multi_ack_detailed",
    "no-done",
    "allow-reachable-sha1-in-want",
    "object-format=sha1",
    concat!("agent=guts/", env!("CARGO_PKG_VERSION")),
];

const RECEIVE_CAPABILITIES: &[&str] = &[
    "report-status",
    "delete-refs",
    "side-band-64k",
    "quiet",
    "atomic",
    "ofs-delta",
    "object-format=sha1",
    concat!("agent=guts/", env!("CARGO_PKG_VERSION")),
];

/// The v2 capabilities of upload-pack.
pub(crate) fn v2_capabilities() -> CapabilityAdvertisement {
    CapabilityAdvertisement::new()
        .agent(crate::AGENT)
        .ls_refs(LsRefsFeatures { unborn: true })
        .fetch(FetchFeatures {
            shallow: true,
            ..FetchFeatures::default()
        })
        .server_option()
        .object_format_sha1()
}

/// How the client and the server talk, as far as the advertisement cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Smart HTTP: one request, one response; the advertisement is `info/refs`.
    Stateless,
    /// One full-duplex stream for the whole exchange (git over SSH).
    Stateful,
}

/// The answer to `GET info/refs?service=<service>`: a v0 ref advertisement (with the
/// `# service=` preamble), or for upload-pack with a v2 client, the v2 capability
/// advertisement (which git's http-backend sends without the preamble).
pub fn advertise(
    repo: &GitRepo,
    service: Service,
    protocol: Protocol,
    out: &mut dyn Write,
) -> Result<(), ServeError> {
    advertise_on(repo, service, protocol, Connection::Stateless, out)
}

/// The advertisement that opens an exchange. The two connections differ as git's own
/// servers do: only HTTP's has the `# service=` preamble and its flush, and only HTTP
/// offers `no-done` (git's upload-pack advertises it in stateless mode alone: on a
/// stream the client reads the round's NAK and sends `done` without a round trip of
/// its own). Receive-pack speaks v0 whatever the client asked for, as git's does.
pub fn advertise_on(
    repo: &GitRepo,
    service: Service,
    protocol: Protocol,
    connection: Connection,
    out: &mut dyn Write,
) -> Result<(), ServeError> {
    if service == Service::UploadPack && protocol == Protocol::V2 {
        v2_capabilities().write(out)?;
        return Ok(());
    }
    let list = RefList::read(repo)?;
    let shown: Vec<AdvertisedRef<'_>> = list
        .refs
        .iter()
        .filter(|r| service == Service::UploadPack || !r.0.starts_with(RESERVED_PREFIX))
        .map(|(name, oid, peeled)| AdvertisedRef {
            name,
            oid: *oid,
            peeled: *peeled,
        })
        .collect();
    let stateless = connection == Connection::Stateless;
    let (head, capabilities): (_, Vec<&str>) = match service {
        Service::UploadPack => (
            list.head.as_deref(),
            UPLOAD_CAPABILITIES
                .iter()
                .copied()
                .filter(|c| stateless || *c != "no-done")
                .collect(),
        ),
        Service::ReceivePack => (None, RECEIVE_CAPABILITIES.to_vec()),
    };
    write_advertisement(
        out,
        &Advertisement {
            service,
            http_preamble: stateless,
            version_1: false,
            refs: &shown,
            head,
            capabilities: &capabilities,
        },
    )?;
    Ok(())
}

/// v2 `ls-refs`: HEAD first (with its target under `symrefs`; as `unborn` when asked
/// and its branch does not exist yet), then every ref matching a prefix.
pub(crate) fn ls_refs(
    repo: &GitRepo,
    args: &LsRefsArgs,
    out: &mut dyn Write,
) -> Result<(), ServeError> {
    let list = RefList::read(repo)?;
    let wanted = |name: &str| {
        args.ref_prefixes.is_empty() || args.ref_prefixes.iter().any(|p| name.starts_with(p))
    };
    let mut lines: Vec<LsRef<'_>> = Vec::new();
    if wanted("HEAD")
        && let Some(head) = list.head.as_deref()
    {
        let oid = list.head_oid();
        if oid.is_some() || args.unborn {
            lines.push(LsRef {
                name: "HEAD",
                oid,
                symref_target: (args.symrefs || oid.is_none()).then_some(head),
                peeled: None,
            });
        }
    }
    for (name, oid, peeled) in &list.refs {
        if wanted(name) {
            lines.push(LsRef {
                name,
                oid: Some(*oid),
                symref_target: None,
                peeled: if args.peel { *peeled } else { None },
            });
        }
    }
    write_ls_refs(out, &lines)?;
    Ok(())
}
