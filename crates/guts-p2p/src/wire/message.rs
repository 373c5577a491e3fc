//! The messages of the sync protocol, and which tag and body each has.

use guts_core::codec::{Reader, Writer};
use guts_core::{ObjectId, OpId, RepoId, SignedOp};

use super::body::{
    read_chunk, read_cursor, read_error, read_ids, read_ops, read_opt_repo, read_repo,
    read_repo_digests, read_repo_heads, read_sealed, read_trace, write_chunk, write_cursor,
    write_error, write_ids, write_ops, write_opt_repo, write_repo, write_repo_digests,
    write_repo_heads, write_sealed, write_trace,
};
use super::{Family, MAX_HEADS, MAX_PACK_IDS, MAX_REPOS, MAX_WANT_OPS, WireError, heads_digest};

/// A digest of one repository's heads ([`heads_digest`]): equal digests mean equal
/// heads, so anti-entropy exchanges 32 bytes per repository rather than every head.
pub type HeadsDigest = [u8; 32];

/// Published on gossipsub, on the topic of the repository concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gossip {
    /// "These are my heads of `repo`": sent after a node appends operations. A peer
    /// that lacks any of them asks for them with [`Request::Ops`]. Heads rather than the
    /// new operations themselves, because gossip must stay small and a peer may already
    /// have them from someone else.
    Announce {
        repo: RepoId,
        heads: Vec<OpId>,
        /// The W3C `traceparent` of the request that made the change, when traces are
        /// exported: the pulls it causes join that trace.
        trace: Option<String>,
    },
    /// "My cluster's account records now digest to `digest`": sent on the topic every
    /// node joins after any change of this node's account records (a user, token,
    /// membership, suspension or revocation), so that the other nodes of the cluster
    /// fetch it at once instead of at the next anti-entropy round. The digest is keyed
    /// with the cluster secret: to another cluster's node it says nothing.
    Accounts { digest: [u8; 32] },
}

/// A request of the sync protocol; each has one [`Response`] kind, or
/// [`Response::Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// One page of the repositories the peer seeds, in ascending id order, starting
    /// after `after` (from the beginning when `None`). Anti-entropy compares the
    /// digests with its own; a fresh node learns from it which repositories exist.
    /// Answered by [`Response::Repos`].
    Repos { after: Option<RepoId> },
    /// The heads of these repositories (those whose digests differed). Answered by
    /// [`Response::Heads`].
    Heads { repos: Vec<RepoId> },
    /// The operations of `repo` that `want` names and their ancestors, except those
    /// the requester has: everything reachable from `have` (its heads; ids the
    /// responder does not know are ignored). One request catches a node up on any
    /// depth of history, [`super::MAX_OPS_BYTES`] at a time. Answered by
    /// [`Response::Ops`].
    Ops {
        repo: RepoId,
        want: Vec<OpId>,
        have: Vec<OpId>,
        /// The requester's `traceparent` (see [`Gossip::Announce`]).
        trace: Option<String>,
    },
    /// The git objects reachable from `wants` but not from `haves`, as a pack, from
    /// byte `offset` on. A transfer that broke off resumes by asking again at the
    /// offset it reached. Answered by [`Response::PackChunk`]s.
    Pack {
        repo: RepoId,
        wants: Vec<ObjectId>,
        haves: Vec<ObjectId>,
        offset: u64,
    },
    /// The cluster's account records (users, token hashes, organizations,
    /// memberships) from the page after `after`, unless the responder's digest of them
    /// equals `digest` (the requester's). Answered by [`Response::Accounts`].
    Accounts {
        digest: [u8; 32],
        after: Option<String>,
    },
    /// "I am of your cluster": a keyed hash, under the cluster key, of the two peer ids
    /// (which noise authenticated), so only a node holding the cluster secret can make
    /// it and it proves nothing for any other pair. Answered by [`Response::Hello`];
    /// private repositories are served only to peers proven this way.
    Hello { proof: [u8; 32] },
}

/// A response of the sync protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A page of repositories, strictly ascending by id. `next` is where to continue
    /// (`Request::Repos { after: next }`); `None` on the last page.
    Repos {
        repos: Vec<RepoDigest>,
        next: Option<RepoId>,
    },
    /// Heads of the requested repositories the peer seeds; the others are left out.
    Heads { repos: Vec<RepoHeads> },
    /// The wanted operations the peer has and their ancestors the requester lacks,
    /// parents before children, up to [`super::MAX_OPS_BYTES`] of them (the rest are
    /// left out, to be asked for again with the new heads as `have`), and the wanted
    /// ids it does not have.
    /// Each operation is decoded with [`SignedOp::decode`], so a forged one fails the
    /// whole message, and must belong to `repo`.
    Ops {
        repo: RepoId,
        ops: Vec<SignedOp>,
        missing: Vec<OpId>,
    },
    /// One chunk of the pack a [`Request::Pack`] asked for.
    PackChunk(PackChunk),
    /// A page of account records sealed with the cluster key (opaque to a peer of
    /// another cluster), empty when the digests matched; `next` continues the paging.
    Accounts {
        digest: [u8; 32],
        sealed: Vec<u8>,
        next: Option<String>,
    },
    /// The responder's proof of the same (see [`Request::Hello`]); all zeros when the
    /// request's proof did not check out.
    Hello { proof: [u8; 32] },
    /// The request was not served.
    Error { code: ErrorCode, message: String },
}

/// A repository and the digest of its heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoDigest {
    pub repo: RepoId,
    pub digest: HeadsDigest,
}

/// A repository's heads, with their digest so the requester can tell whether they
/// changed since it listed them without rehashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoHeads {
    pub repo: RepoId,
    pub digest: HeadsDigest,
    pub heads: Vec<OpId>,
}

impl RepoHeads {
    /// `heads` of `repo` with their digest.
    pub fn new(repo: RepoId, heads: Vec<OpId>) -> Self {
        Self {
            repo,
            digest: heads_digest(&heads),
            heads,
        }
    }
}

/// A piece of a pack, at `offset` in it.
///
/// Resuming by offset relies on the responder producing the same pack bytes for the
/// same request each time (it keeps the pack it generated, or generates
/// deterministically); when it cannot, it answers [`ErrorCode::PackChanged`] and the
/// requester starts again from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackChunk {
    pub repo: RepoId,
    /// Where `data` starts in the pack.
    pub offset: u64,
    /// The pack's length, once the responder knows it (a pack streamed while it is
    /// generated does not know it until the end).
    pub total: Option<u64>,
    /// At most [`super::MAX_CHUNK_BYTES`].
    pub data: Vec<u8>,
    /// This chunk ends the pack; then `total` is known and equals `offset + data.len()`.
    pub last: bool,
}

impl PackChunk {
    /// Checks that the chunk fits its own bounds (see [`WireError::BadChunk`]); both
    /// the encoder and the decoder call it.
    pub(super) fn validate(&self) -> Result<(), WireError> {
        let bad = || WireError::BadChunk {
            offset: self.offset,
            len: self.data.len(),
            total: self.total,
            last: self.last,
        };
        let len = u64::try_from(self.data.len()).map_err(|_| bad())?;
        let end = self.offset.checked_add(len).ok_or_else(bad)?;
        let fits = match self.total {
            Some(total) => end <= total && (!self.last || end == total),
            None => !self.last,
        };
        if fits { Ok(()) } else { Err(bad()) }
    }
}

/// Why a request was not served. A closed set: a code a peer does not know fails to
/// decode ([`WireError::UnknownErrorCode`]), since a new code comes with a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    /// The request was well-formed but makes no sense (e.g. an offset past the pack).
    BadRequest = 1,
    /// The peer does not seed the repository.
    NotFound = 2,
    /// The peer may not serve it (a private repository).
    Forbidden = 3,
    /// The peer is overloaded: ask later or ask someone else.
    Busy = 4,
    /// The pack for this request is not the one a resumed transfer started on.
    PackChanged = 5,
    /// Anything else went wrong on the peer's side.
    Internal = 6,
}

impl ErrorCode {
    pub(super) fn from_u16(code: u16) -> Result<Self, WireError> {
        Ok(match code {
            1 => Self::BadRequest,
            2 => Self::NotFound,
            3 => Self::Forbidden,
            4 => Self::Busy,
            5 => Self::PackChanged,
            6 => Self::Internal,
            other => return Err(WireError::UnknownErrorCode(other)),
        })
    }
}

// Tags: the high byte names the family, so a frame sent on the wrong channel is an
// unknown tag rather than a message misread.
pub(super) const TAG_ANNOUNCE: u16 = 0x0101;
pub(super) const TAG_ACCOUNTS_CHANGED: u16 = 0x0102;
pub(super) const TAG_REQ_REPOS: u16 = 0x0201;
pub(super) const TAG_REQ_HEADS: u16 = 0x0202;
pub(super) const TAG_REQ_OPS: u16 = 0x0203;
pub(super) const TAG_REQ_PACK: u16 = 0x0204;
pub(super) const TAG_REQ_ACCOUNTS: u16 = 0x0205;
pub(super) const TAG_REQ_HELLO: u16 = 0x0206;
pub(super) const TAG_RESP_REPOS: u16 = 0x0301;
pub(super) const TAG_RESP_HEADS: u16 = 0x0302;
pub(super) const TAG_RESP_OPS: u16 = 0x0303;
pub(super) const TAG_RESP_PACK_CHUNK: u16 = 0x0304;
pub(super) const TAG_RESP_ACCOUNTS: u16 = 0x0305;
pub(super) const TAG_RESP_HELLO: u16 = 0x0306;
pub(super) const TAG_RESP_ERROR: u16 = 0x03ff;

impl Family for Gossip {
    const NAME: &'static str = "gossip";

    fn tag(&self) -> u16 {
        match self {
            Gossip::Announce { .. } => TAG_ANNOUNCE,
            Gossip::Accounts { .. } => TAG_ACCOUNTS_CHANGED,
        }
    }

    fn encode_body(&self, w: &mut Writer) -> Result<(), WireError> {
        match self {
            Gossip::Announce { repo, heads, trace } => {
                write_repo(w, repo);
                write_ids(w, "heads", heads, MAX_HEADS)?;
                write_trace(w, trace.as_deref())
            }
            Gossip::Accounts { digest } => {
                w.fixed(digest);
                Ok(())
            }
        }
    }

    fn decode_body(tag: u16, r: &mut Reader<'_>) -> Result<Option<Self>, WireError> {
        Ok(Some(match tag {
            TAG_ANNOUNCE => Gossip::Announce {
                repo: read_repo(r)?,
                heads: read_ids(r, "heads", MAX_HEADS)?,
                trace: read_trace(r)?,
            },
            TAG_ACCOUNTS_CHANGED => Gossip::Accounts { digest: r.array()? },
            _ => return Ok(None),
        }))
    }
}

impl Family for Request {
    const NAME: &'static str = "request";

    fn tag(&self) -> u16 {
        match self {
            Request::Repos { .. } => TAG_REQ_REPOS,
            Request::Heads { .. } => TAG_REQ_HEADS,
            Request::Ops { .. } => TAG_REQ_OPS,
            Request::Pack { .. } => TAG_REQ_PACK,
            Request::Accounts { .. } => TAG_REQ_ACCOUNTS,
            Request::Hello { .. } => TAG_REQ_HELLO,
        }
    }

    fn encode_body(&self, w: &mut Writer) -> Result<(), WireError> {
        match self {
            Request::Repos { after } => write_opt_repo(w, after.as_ref()),
            Request::Heads { repos } => write_ids(w, "repositories", repos, MAX_REPOS),
            Request::Ops {
                repo,
                want,
                have,
                trace,
            } => {
                write_repo(w, repo);
                write_ids(w, "wanted ops", want, MAX_WANT_OPS)?;
                write_ids(w, "have ops", have, MAX_HEADS)?;
                write_trace(w, trace.as_deref())
            }
            Request::Pack {
                repo,
                wants,
                haves,
                offset,
            } => {
                write_repo(w, repo);
                write_ids(w, "wants", wants, MAX_PACK_IDS)?;
                write_ids(w, "haves", haves, MAX_PACK_IDS)?;
                w.u64(*offset);
                Ok(())
            }
            Request::Accounts { digest, after } => {
                w.fixed(digest);
                write_cursor(w, after.as_deref())
            }
            Request::Hello { proof } => {
                w.fixed(proof);
                Ok(())
            }
        }
    }

    fn decode_body(tag: u16, r: &mut Reader<'_>) -> Result<Option<Self>, WireError> {
        Ok(Some(match tag {
            TAG_REQ_REPOS => Request::Repos {
                after: read_opt_repo(r)?,
            },
            TAG_REQ_HEADS => Request::Heads {
                repos: read_ids(r, "repositories", MAX_REPOS)?,
            },
            TAG_REQ_OPS => Request::Ops {
                repo: read_repo(r)?,
                want: read_ids(r, "wanted ops", MAX_WANT_OPS)?,
                have: read_ids(r, "have ops", MAX_HEADS)?,
                trace: read_trace(r)?,
            },
            TAG_REQ_PACK => Request::Pack {
                repo: read_repo(r)?,
                wants: read_ids(r, "wants", MAX_PACK_IDS)?,
                haves: read_ids(r, "haves", MAX_PACK_IDS)?,
                offset: r.u64()?,
            },
            TAG_REQ_ACCOUNTS => Request::Accounts {
                digest: r.array()?,
                after: read_cursor(r)?,
            },
            TAG_REQ_HELLO => Request::Hello { proof: r.array()? },
            _ => return Ok(None),
        }))
    }
}

impl Family for Response {
    const NAME: &'static str = "response";

    fn tag(&self) -> u16 {
        match self {
            Response::Repos { .. } => TAG_RESP_REPOS,
            Response::Heads { .. } => TAG_RESP_HEADS,
            Response::Ops { .. } => TAG_RESP_OPS,
            Response::PackChunk(_) => TAG_RESP_PACK_CHUNK,
            Response::Accounts { .. } => TAG_RESP_ACCOUNTS,
            Response::Hello { .. } => TAG_RESP_HELLO,
            Response::Error { .. } => TAG_RESP_ERROR,
        }
    }

    fn encode_body(&self, w: &mut Writer) -> Result<(), WireError> {
        match self {
            Response::Repos { repos, next } => {
                write_repo_digests(w, repos)?;
                write_opt_repo(w, next.as_ref())
            }
            Response::Heads { repos } => write_repo_heads(w, repos),
            Response::Ops { repo, ops, missing } => {
                write_repo(w, repo);
                write_ops(w, repo, ops)?;
                write_ids(w, "missing ops", missing, MAX_WANT_OPS)
            }
            Response::PackChunk(chunk) => write_chunk(w, chunk),
            Response::Accounts {
                digest,
                sealed,
                next,
            } => {
                w.fixed(digest);
                write_sealed(w, sealed)?;
                write_cursor(w, next.as_deref())
            }
            Response::Hello { proof } => {
                w.fixed(proof);
                Ok(())
            }
            Response::Error { code, message } => write_error(w, *code, message),
        }
    }

    fn decode_body(tag: u16, r: &mut Reader<'_>) -> Result<Option<Self>, WireError> {
        Ok(Some(match tag {
            TAG_RESP_REPOS => Response::Repos {
                repos: read_repo_digests(r)?,
                next: read_opt_repo(r)?,
            },
            TAG_RESP_HEADS => Response::Heads {
                repos: read_repo_heads(r)?,
            },
            TAG_RESP_OPS => {
                let repo = read_repo(r)?;
                Response::Ops {
                    repo,
                    ops: read_ops(r, &repo)?,
                    missing: read_ids(r, "missing ops", MAX_WANT_OPS)?,
                }
            }
            TAG_RESP_PACK_CHUNK => Response::PackChunk(read_chunk(r)?),
            TAG_RESP_ACCOUNTS => Response::Accounts {
                digest: r.array()?,
                sealed: read_sealed(r)?,
                next: read_cursor(r)?,
            },
            TAG_RESP_HELLO => Response::Hello { proof: r.array()? },
            TAG_RESP_ERROR => {
                let (code, message) = read_error(r)?;
                Response::Error { code, message }
            }
            _ => return Ok(None),
        }))
    }
}
