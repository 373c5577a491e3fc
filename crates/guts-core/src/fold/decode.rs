//! The inverse of [`RepoState::encode`]: what loads a persisted checkpoint of a
//! repository's folded state instead of folding every operation again.
//!
//! A checkpoint is read from disk, so it is treated as hostile input: the decoder never
//! panics, and compares every declared count with the input that remains before
//! allocating for it, so memory use is bounded by the input. It accepts exactly what
//! `encode` writes and nothing else: map keys strictly ascending (as a map writes
//! them), every trailing section at most once, in the encoder's order, and only when
//! the encoder would have written it (a section that would be empty or default is not
//! canonical), with no trailing bytes. So `decode(encode(s)) == s`, and any bytes that
//! decode re-encode to themselves. Fields the encoding leaves out because they are
//! derived (thread numbers, numeric comment and check run ids) are rebuilt.

use std::collections::{BTreeMap, BTreeSet};

use crate::codec::{DecodeError, Reader, decode_protection, decode_role};
use crate::collab::Collab;
use crate::identity::PublicKey;
use crate::ids::{ObjectId, OpId};
use crate::op::{BranchProtection, RequiredChecks, Role};

use super::STATE_FORMAT_VERSION;
use super::rejection::decode_rejection;
use super::state::{Access, RefState, RepoMeta, RepoState};

mod parts;

/// The markers of the trailing sections, in the order `encode` writes them. The
/// organization access section, before them all, has no marker: it starts with its
/// count, which can never equal one of these.
const SECTIONS: [u64; 7] = [
    u64::MAX,     // repository settings
    u64::MAX - 1, // requested reviewers
    u64::MAX - 2, // edited or deleted inline review comments
    u64::MAX - 4, // required status checks
    u64::MAX - 3, // commit statuses
    u64::MAX - 6, // webhooks
    u64::MAX - 5, // check runs
];

/// Smallest encodings, in bytes, of the items counted below: what a count is checked
/// against before anything is allocated for it.
const KEY: usize = 32;
const OP: usize = 32;
const OBJECT: usize = 20;
const HLC: usize = 12;
const LEN: usize = 8;

impl RepoState {
    /// Reads what [`RepoState::encode`] wrote: `decode(encode(s)) == s` for every
    /// state. Anything else (another version, an unknown tag, a truncated or extended
    /// encoding, a spelling `encode` never produces) is an error; no input panics.
    pub fn decode(bytes: &[u8]) -> Result<RepoState, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != STATE_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let mut meta = option(&mut r, decode_meta)?;
        let deleted = r.bool()?;
        let collaborators = roles(&mut r, "collaborators")?;
        let mut protections = map(&mut r, "protections", LEN + 4, |r| {
            let branch = r.long_string("branch")?;
            let mut protection = decode_protection(r)?;
            protection.dismiss_stale_reviews = r.bool()?;
            Ok((branch, protection))
        })?;
        let refs = map(&mut r, "refs", LEN + OBJECT + OP + HLC, |r| {
            let name = r.long_string("ref name")?;
            let state = RefState {
                target: object(r)?,
                op: op_id(r)?,
                at: r.hlc()?,
            };
            Ok((name, state))
        })?;
        let conflicts = map(&mut r, "conflicts", LEN + OBJECT, |r| {
            Ok((r.long_string("conflict ref")?, object(r)?))
        })?;
        let rejected = map(&mut r, "rejected", OP + 1, |r| {
            Ok((op_id(r)?, decode_rejection(r)?))
        })?;
        let applied = r.u64()?;
        let mut collab = parts::decode_collab(&mut r)?;
        let mut state = RepoState {
            meta: None,
            deleted,
            access: Access {
                collaborators,
                org: BTreeMap::new(),
            },
            protections: BTreeMap::new(),
            refs,
            conflicts,
            rejected,
            applied,
            collab: Collab::default(),
            checks: Default::default(),
            hooks: Default::default(),
        };
        let mut next = 0;
        while r.remaining() > 0 {
            let word = r.u64()?;
            let Some(section) = SECTIONS.iter().position(|marker| *marker == word) else {
                // Only the organization section starts without a marker, and only first.
                if next > 0 || !state.access.org.is_empty() {
                    return Err(not_canonical("state section"));
                }
                state.access.org = org(&mut r, word)?;
                continue;
            };
            if section < next {
                return Err(not_canonical("state section order"));
            }
            next = section + 1;
            match section {
                0 => decode_settings(&mut r, meta.as_mut())?,
                1 => decode_requested(&mut r, &mut collab)?,
                2 => decode_review_edits(&mut r, &mut collab)?,
                3 => decode_required(&mut r, &mut protections)?,
                4 => state.checks.statuses = parts::decode_statuses(&mut r)?,
                5 => state.hooks = parts::decode_hooks(&mut r)?,
                _ => state.checks.runs = parts::decode_runs(&mut r)?,
            }
        }
        r.finish()?;
        state.meta = meta;
        state.protections = protections;
        state.collab = collab;
        Ok(state)
    }
}

/// The fields of the meta every state encodes; the settings are as created until the
/// settings section says otherwise.
fn decode_meta(r: &mut Reader<'_>) -> Result<RepoMeta, DecodeError> {
    let owner = r.long_string("owner")?;
    let name = r.long_string("name")?;
    let description = r.long_string("description")?;
    let private = r.bool()?;
    let default_branch = r.long_string("default_branch")?;
    let created_by = r.public_key("created_by")?;
    let created_at = r.hlc()?;
    Ok(RepoMeta {
        owner,
        name,
        description,
        private,
        default_branch,
        created_by,
        created_at,
        named_at: created_at,
        former_names: Vec::new(),
        homepage: String::new(),
        has_issues: true,
        archived: false,
    })
}

/// The organization section, whose count `count` has been read: present only when
/// some member is.
fn org(r: &mut Reader<'_>, count: u64) -> Result<BTreeMap<PublicKey, Role>, DecodeError> {
    let count = r.fitting("organization members", count, KEY + 1)?;
    if count == 0 {
        return Err(not_canonical("organization members"));
    }
    entries(r, count, |r| Ok((r.public_key("member")?, decode_role(r)?)))
}

/// The settings of `RepoSettings`: written only for a repository that exists and
/// whose settings are not as created.
fn decode_settings(r: &mut Reader<'_>, meta: Option<&mut RepoMeta>) -> Result<(), DecodeError> {
    let meta = meta.ok_or(not_canonical("repository settings"))?;
    meta.named_at = r.hlc()?;
    let count = r.long_count("former names", LEN)?;
    meta.former_names = (0..count)
        .map(|_| r.long_string("former name"))
        .collect::<Result<_, _>>()?;
    meta.homepage = r.long_string("homepage")?;
    meta.has_issues = r.bool()?;
    meta.archived = r.bool()?;
    // What `RepoMeta::settings_are_default` reads: such settings are not written.
    if meta.named_at == meta.created_at
        && meta.former_names.is_empty()
        && meta.homepage.is_empty()
        && meta.has_issues
        && !meta.archived
    {
        return Err(not_canonical("repository settings"));
    }
    Ok(())
}

/// Requested reviewers: of pull requests that exist, never an empty set.
fn decode_requested(r: &mut Reader<'_>, collab: &mut Collab) -> Result<(), DecodeError> {
    let requested = nonempty_map(r, "requested reviewers", OP + LEN, |r| {
        let id = op_id(r)?;
        let keys = set(r, "requested reviewers", KEY, |r| r.public_key("reviewer"))?;
        Ok((id, keys))
    })?;
    for (id, keys) in requested {
        let pull = collab
            .threads
            .get_mut(&id)
            .and_then(|t| t.pull.as_mut())
            .ok_or(not_canonical("requested reviewers"))?;
        if keys.is_empty() {
            return Err(not_canonical("requested reviewers"));
        }
        pull.requested = keys;
    }
    Ok(())
}

/// Edited and deleted inline comments: of reviews that exist, never neither.
fn decode_review_edits(r: &mut Reader<'_>, collab: &mut Collab) -> Result<(), DecodeError> {
    let touched = nonempty_map(r, "edited reviews", OP + 2 * LEN, |r| {
        let id = op_id(r)?;
        let edited: BTreeMap<u32, crate::hlc::Hlc> =
            map(r, "edited review comments", 4 + HLC, |r| {
                Ok((r.u32()?, r.hlc()?))
            })?;
        let deleted = set(r, "deleted review comments", 4, |r| r.u32())?;
        Ok((id, (edited, deleted)))
    })?;
    for (id, (edited, deleted)) in touched {
        let review = collab
            .reviews
            .get_mut(&id)
            .ok_or(not_canonical("edited reviews"))?;
        if edited.is_empty() && deleted.is_empty() {
            return Err(not_canonical("edited reviews"));
        }
        review.edited = edited;
        review.deleted = deleted;
    }
    Ok(())
}

/// Required status checks: of protections that exist.
fn decode_required(
    r: &mut Reader<'_>,
    protections: &mut BTreeMap<String, BranchProtection>,
) -> Result<(), DecodeError> {
    let required = nonempty_map(r, "required checks", LEN + 1 + LEN, |r| {
        let branch = r.long_string("branch")?;
        let strict = r.bool()?;
        let count = r.long_count("contexts", LEN)?;
        let contexts = (0..count)
            .map(|_| r.long_string("context"))
            .collect::<Result<_, _>>()?;
        Ok((branch, RequiredChecks { strict, contexts }))
    })?;
    for (branch, checks) in required {
        protections
            .get_mut(&branch)
            .ok_or(not_canonical("required checks"))?
            .required_checks = Some(checks);
    }
    Ok(())
}

fn roles(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<BTreeMap<PublicKey, Role>, DecodeError> {
    map(r, field, KEY + 1, |r| {
        Ok((r.public_key("member")?, decode_role(r)?))
    })
}

pub(super) fn not_canonical(field: &'static str) -> DecodeError {
    DecodeError::NotCanonical { field }
}

pub(super) fn op_id(r: &mut Reader<'_>) -> Result<OpId, DecodeError> {
    r.array().map(OpId::from_bytes)
}

pub(super) fn object(r: &mut Reader<'_>) -> Result<ObjectId, DecodeError> {
    r.array().map(ObjectId::from_bytes)
}

/// An `Option` as `Writer::option_tag` and the value spell it: the operations' own.
pub(super) use crate::codec::decode_option as option;

/// An optional long string (statuses', check runs').
pub(super) fn opt_text(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<Option<String>, DecodeError> {
    option(r, |r| r.long_string(field))
}

/// `count` entries, keys strictly ascending as a map writes them (a repeated or
/// unsorted key would give one state several encodings), in ascending order.
pub(super) fn entries<K: Ord, V, M: FromIterator<(K, V)>>(
    r: &mut Reader<'_>,
    count: usize,
    mut entry: impl FnMut(&mut Reader<'_>) -> Result<(K, V), DecodeError>,
) -> Result<M, DecodeError> {
    let mut all: Vec<(K, V)> = Vec::with_capacity(count);
    for _ in 0..count {
        let (key, value) = entry(r)?;
        if all.last().is_some_and(|(last, _)| *last >= key) {
            return Err(not_canonical("map keys"));
        }
        all.push((key, value));
    }
    Ok(all.into_iter().collect())
}

/// A map written as a `u64` count then its entries of at least `item_len` bytes.
pub(super) fn map<K: Ord, V, M: FromIterator<(K, V)>>(
    r: &mut Reader<'_>,
    field: &'static str,
    item_len: usize,
    entry: impl FnMut(&mut Reader<'_>) -> Result<(K, V), DecodeError>,
) -> Result<M, DecodeError> {
    let count = r.long_count(field, item_len)?;
    entries(r, count, entry)
}

/// A trailing section's map: written only when it has an entry.
pub(super) fn nonempty_map<K: Ord, V>(
    r: &mut Reader<'_>,
    field: &'static str,
    item_len: usize,
    entry: impl FnMut(&mut Reader<'_>) -> Result<(K, V), DecodeError>,
) -> Result<Vec<(K, V)>, DecodeError> {
    let count = r.long_count(field, item_len)?;
    if count == 0 {
        return Err(not_canonical(field));
    }
    entries(r, count, entry)
}

/// A set written as a `u64` count then its items, strictly ascending.
pub(super) fn set<T: Ord>(
    r: &mut Reader<'_>,
    field: &'static str,
    item_len: usize,
    mut item: impl FnMut(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<BTreeSet<T>, DecodeError> {
    let pairs: Vec<(T, ())> = map(r, field, item_len, |r| Ok((item(r)?, ())))?;
    Ok(pairs.into_iter().map(|(item, ())| item).collect())
}

/// A list written as a `u64` count then its items, in order.
pub(super) fn list<T>(
    r: &mut Reader<'_>,
    field: &'static str,
    item_len: usize,
    item: impl FnMut(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let count = r.long_count(field, item_len)?;
    let mut item = item;
    let mut all = Vec::with_capacity(count);
    for _ in 0..count {
        all.push(item(r)?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests;
