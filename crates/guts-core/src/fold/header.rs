//! The part of a repository's state that is kept for every repository whether its
//! whole state is in memory or not ([`RepoHeader`]): what names, visibility, listing
//! and git's refs need. Storage persists it with every change of the repository, so a
//! node opens without folding anything, and loads the rest on first use.
//!
//! Its encoding is local (never sent to a peer) and carries a version byte; a header
//! that does not decode is rebuilt from the operation log.

use std::collections::BTreeMap;

use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::{ObjectId, OpId};

use super::state::{Access, RefState, RepoMeta, RepoState};

/// Version byte leading [`RepoHeader::encode`].
const HEADER_FORMAT_VERSION: u8 = 1;

/// A repository's metadata, deletion flag, roles and refs: [`RepoState`] without its
/// issues, pull requests, checks, hooks, protections and rejections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepoHeader {
    pub meta: Option<RepoMeta>,
    pub deleted: bool,
    pub access: Access,
    pub refs: BTreeMap<String, RefState>,
    pub conflicts: BTreeMap<String, ObjectId>,
}

impl RepoState {
    /// This state's [`RepoHeader`]. O(roles + refs).
    pub fn header(&self) -> RepoHeader {
        RepoHeader {
            meta: self.meta.clone(),
            deleted: self.deleted,
            access: self.access.clone(),
            refs: self.refs.clone(),
            conflicts: self.conflicts.clone(),
        }
    }
}

impl RepoHeader {
    /// The local encoding, which [`RepoHeader::decode`] reverses exactly.
    pub fn encode(&self, w: &mut Writer) {
        w.u8(HEADER_FORMAT_VERSION);
        w.option_tag(self.meta.is_some());
        if let Some(meta) = &self.meta {
            w.long_bytes(meta.owner.as_bytes());
            w.long_bytes(meta.name.as_bytes());
            w.long_bytes(meta.description.as_bytes());
            w.bool(meta.private);
            w.long_bytes(meta.default_branch.as_bytes());
            w.fixed(meta.created_by.as_bytes());
            w.hlc(meta.created_at);
            w.hlc(meta.named_at);
            w.long_count(meta.former_names.len());
            for name in &meta.former_names {
                w.long_bytes(name.as_bytes());
            }
            w.long_bytes(meta.homepage.as_bytes());
            w.bool(meta.has_issues);
            w.bool(meta.archived);
        }
        w.bool(self.deleted);
        for roles in [&self.access.collaborators, &self.access.org] {
            w.long_count(roles.len());
            for (user, role) in roles {
                w.fixed(user.as_bytes());
                w.u8(crate::codec::role_tag(*role));
            }
        }
        w.long_count(self.refs.len());
        for (name, state) in &self.refs {
            w.long_bytes(name.as_bytes());
            w.fixed(state.target.as_bytes());
            w.fixed(state.op.as_bytes());
            w.hlc(state.at);
        }
        w.long_count(self.conflicts.len());
        for (name, target) in &self.conflicts {
            w.long_bytes(name.as_bytes());
            w.fixed(target.as_bytes());
        }
    }

    /// Reads what [`RepoHeader::encode`] wrote; anything else is an error, never a
    /// panic or an allocation the input does not pay for.
    pub fn decode(r: &mut Reader<'_>) -> Result<RepoHeader, DecodeError> {
        let version = r.u8()?;
        if version != HEADER_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let meta = if r.option_tag()? {
            let owner = r.long_string("owner")?;
            let name = r.long_string("name")?;
            let description = r.long_string("description")?;
            let private = r.bool()?;
            let default_branch = r.long_string("default_branch")?;
            let created_by = r.public_key("created_by")?;
            let created_at = r.hlc()?;
            let named_at = r.hlc()?;
            let n = r.long_count("former_names", 8)?;
            let mut former_names = Vec::with_capacity(n);
            for _ in 0..n {
                former_names.push(r.long_string("former_name")?);
            }
            let homepage = r.long_string("homepage")?;
            let has_issues = r.bool()?;
            let archived = r.bool()?;
            Some(RepoMeta {
                owner,
                name,
                description,
                private,
                default_branch,
                created_by,
                created_at,
                named_at,
                former_names,
                homepage,
                has_issues,
                archived,
            })
        } else {
            None
        };
        let deleted = r.bool()?;
        let mut access = Access::default();
        for roles in [&mut access.collaborators, &mut access.org] {
            for _ in 0..r.long_count("roles", 33)? {
                let user = r.public_key("role holder")?;
                roles.insert(user, crate::codec::decode_role(r)?);
            }
        }
        let mut refs = BTreeMap::new();
        for _ in 0..r.long_count("refs", 8 + 20 + 32 + 12)? {
            let name = r.long_string("ref")?;
            let target = ObjectId::from_bytes(r.array()?);
            let op = OpId::from_bytes(r.array()?);
            let at = r.hlc()?;
            refs.insert(name, RefState { target, op, at });
        }
        let mut conflicts = BTreeMap::new();
        for _ in 0..r.long_count("conflicts", 8 + 20)? {
            let name = r.long_string("conflict ref")?;
            conflicts.insert(name, ObjectId::from_bytes(r.array()?));
        }
        Ok(RepoHeader {
            meta,
            deleted,
            access,
            refs,
            conflicts,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::arbitrary::{hlc, object_id, public_key, role};
    use crate::ids::OpId;

    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ./é-]{0,24}"
    }

    fn meta() -> impl Strategy<Value = RepoMeta> {
        (
            (text(), text(), text(), any::<bool>(), text(), public_key()),
            (hlc(), hlc(), proptest::collection::vec(text(), 0..4)),
            (text(), any::<bool>(), any::<bool>()),
        )
            .prop_map(
                |(
                    (owner, name, description, private, default_branch, created_by),
                    (created_at, named_at, former_names),
                    (homepage, has_issues, archived),
                )| RepoMeta {
                    owner,
                    name,
                    description,
                    private,
                    default_branch,
                    created_by,
                    created_at,
                    named_at,
                    former_names,
                    homepage,
                    has_issues,
                    archived,
                },
            )
    }

    fn header() -> impl Strategy<Value = RepoHeader> {
        let roles = || proptest::collection::btree_map(public_key(), role(), 0..4);
        let refs = proptest::collection::btree_map(
            text(),
            (object_id(), any::<[u8; 32]>(), hlc()).prop_map(|(target, op, at)| RefState {
                target,
                op: OpId::from_bytes(op),
                at,
            }),
            0..4,
        );
        (
            proptest::option::of(meta()),
            any::<bool>(),
            roles(),
            roles(),
            refs,
            proptest::collection::btree_map(text(), object_id(), 0..3),
        )
            .prop_map(
                |(meta, deleted, collaborators, org, refs, conflicts)| RepoHeader {
                    meta,
                    deleted,
                    access: Access { collaborators, org },
                    refs,
                    conflicts,
                },
            )
    }

    proptest! {
        #[test]
        fn headers_round_trip(header in header()) {
            let mut w = Writer::new();
            header.encode(&mut w);
            let bytes = w.into_bytes();
            let mut r = Reader::new(&bytes);
            let decoded = RepoHeader::decode(&mut r);
            prop_assert_eq!(decoded.as_ref().ok(), Some(&header));
            prop_assert!(r.finish().is_ok());
            // Every strict prefix is refused, never misread.
            for cut in [0, bytes.len() / 2, bytes.len().saturating_sub(1)] {
                if cut < bytes.len() {
                    let mut r = Reader::new(&bytes[..cut]);
                    prop_assert!(RepoHeader::decode(&mut r).is_err() || r.finish().is_err());
                }
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = RepoHeader::decode(&mut Reader::new(&bytes));
        }
    }
}
