//! Field codecs of message bodies, on guts-core's bounds-checked `Writer` and `Reader`.
//!
//! Each `write_*` refuses what the matching `read_*` refuses, and the pairs are kept
//! side by side so that they cannot drift apart.

use guts_core::codec::{MAX_OP_BYTES, Reader, Writer};
use guts_core::{ObjectId, OpId, RepoId, SignedOp};

use super::message::{ErrorCode, HeadsDigest, PackChunk, RepoDigest, RepoHeads};
use super::{
    MAX_ACCOUNTS_BYTES, MAX_CHUNK_BYTES, MAX_CURSOR_BYTES, MAX_ERROR_MESSAGE_BYTES, MAX_HEADS,
    MAX_OPS_BYTES, MAX_REPOS, MAX_TRACE_BYTES, MAX_WANT_OPS, WireError,
};

/// Wire size of a length prefix or count.
const U32_LEN: usize = 4;

/// A count, then each item.
fn write_list<T>(
    w: &mut Writer,
    field: &'static str,
    items: &[T],
    max: usize,
    mut item: impl FnMut(&mut Writer, &T) -> Result<(), WireError>,
) -> Result<(), WireError> {
    w.count(field, items.len(), max)?;
    items.iter().try_for_each(|value| item(w, value))
}

/// A count of at most `max` items of at least `min_len` bytes each, then the items.
///
/// The count is checked against the remaining input before anything is allocated, and
/// room for `count` items is reserved up front only when an item takes no more memory
/// than its smallest encoding, so the reservation never exceeds the input's size.
fn read_list<'a, T>(
    r: &mut Reader<'a>,
    field: &'static str,
    max: usize,
    min_len: usize,
    mut item: impl FnMut(&mut Reader<'a>) -> Result<T, WireError>,
) -> Result<Vec<T>, WireError> {
    let count = r.count(field, max, min_len)?;
    let reserve = if size_of::<T>() <= min_len { count } else { 0 };
    let mut items = Vec::with_capacity(reserve);
    for _ in 0..count {
        items.push(item(r)?);
    }
    Ok(items)
}

/// A fixed-width id, written as its bytes with no length prefix.
pub(super) trait WireId: Sized {
    const LEN: usize;

    fn write(&self, w: &mut Writer);

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError>;
}

macro_rules! wire_id {
    ($($id:ty),*) => {$(
        impl WireId for $id {
            const LEN: usize = <$id>::LEN;

            fn write(&self, w: &mut Writer) {
                w.fixed(self.as_bytes());
            }

            fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
                Ok(<$id>::from_bytes(r.array()?))
            }
        }
    )*};
}

wire_id!(RepoId, OpId, ObjectId);

pub(super) fn write_repo(w: &mut Writer, repo: &RepoId) {
    repo.write(w);
}

pub(super) fn read_repo(r: &mut Reader<'_>) -> Result<RepoId, WireError> {
    RepoId::read(r)
}

pub(super) fn write_opt_repo(w: &mut Writer, repo: Option<&RepoId>) -> Result<(), WireError> {
    w.option_tag(repo.is_some());
    if let Some(repo) = repo {
        write_repo(w, repo);
    }
    Ok(())
}

pub(super) fn read_opt_repo(r: &mut Reader<'_>) -> Result<Option<RepoId>, WireError> {
    if r.option_tag()? {
        read_repo(r).map(Some)
    } else {
        Ok(None)
    }
}

/// A list of at most `max` ids.
pub(super) fn write_ids<T: WireId>(
    w: &mut Writer,
    field: &'static str,
    ids: &[T],
    max: usize,
) -> Result<(), WireError> {
    write_list(w, field, ids, max, |w, id| {
        id.write(w);
        Ok(())
    })
}

pub(super) fn read_ids<T: WireId>(
    r: &mut Reader<'_>,
    field: &'static str,
    max: usize,
) -> Result<Vec<T>, WireError> {
    read_list(r, field, max, T::LEN, T::read)
}

/// Repository ids must be strictly ascending: a page is a range of the id order, which
/// is what makes its `next` cursor mean anything.
fn check_ascending(repos: &[RepoDigest]) -> Result<(), WireError> {
    let ascending = repos
        .iter()
        .zip(repos.iter().skip(1))
        .all(|(a, b)| a.repo < b.repo);
    if ascending {
        Ok(())
    } else {
        Err(WireError::NotAscending {
            field: "repositories",
        })
    }
}

pub(super) fn write_repo_digests(w: &mut Writer, repos: &[RepoDigest]) -> Result<(), WireError> {
    check_ascending(repos)?;
    write_list(w, "repositories", repos, MAX_REPOS, |w, entry| {
        write_repo(w, &entry.repo);
        w.fixed(&entry.digest);
        Ok(())
    })
}

pub(super) fn read_repo_digests(r: &mut Reader<'_>) -> Result<Vec<RepoDigest>, WireError> {
    let repos = read_list(
        r,
        "repositories",
        MAX_REPOS,
        RepoId::LEN + size_of::<HeadsDigest>(),
        |r| {
            Ok(RepoDigest {
                repo: read_repo(r)?,
                digest: r.array()?,
            })
        },
    )?;
    check_ascending(&repos)?;
    Ok(repos)
}

pub(super) fn write_repo_heads(w: &mut Writer, repos: &[RepoHeads]) -> Result<(), WireError> {
    write_list(w, "repositories", repos, MAX_REPOS, |w, entry| {
        write_repo(w, &entry.repo);
        w.fixed(&entry.digest);
        write_ids(w, "heads", &entry.heads, MAX_HEADS)
    })
}

pub(super) fn read_repo_heads(r: &mut Reader<'_>) -> Result<Vec<RepoHeads>, WireError> {
    let min_len = RepoId::LEN + size_of::<HeadsDigest>() + U32_LEN;
    read_list(r, "repositories", MAX_REPOS, min_len, |r| {
        Ok(RepoHeads {
            repo: read_repo(r)?,
            digest: r.array()?,
            heads: read_ids(r, "heads", MAX_HEADS)?,
        })
    })
}

/// Fails unless operation `index` belongs to `repo`.
fn check_repo(index: usize, op: &SignedOp, repo: &RepoId) -> Result<(), WireError> {
    let found = op.op().repo;
    if found == *repo {
        Ok(())
    } else {
        Err(WireError::ForeignOp {
            index,
            expected: *repo,
            found,
        })
    }
}

/// Adds an operation's encoded size to the running total, failing over the cap.
fn add_op_bytes(total: &mut usize, len: usize) -> Result<(), WireError> {
    *total = total.saturating_add(len);
    if *total > MAX_OPS_BYTES {
        return Err(WireError::OpsTooLarge {
            max: MAX_OPS_BYTES,
            found: *total,
        });
    }
    Ok(())
}

/// Operations as their length-prefixed canonical encodings, all of `repo`, at most
/// [`MAX_WANT_OPS`] of them and [`MAX_OPS_BYTES`] in all.
pub(super) fn write_ops(w: &mut Writer, repo: &RepoId, ops: &[SignedOp]) -> Result<(), WireError> {
    let mut total = 0;
    for (index, op) in ops.iter().enumerate() {
        check_repo(index, op, repo)?;
        add_op_bytes(&mut total, op.as_bytes().len())?;
    }
    write_list(w, "ops", ops, MAX_WANT_OPS, |w, op| {
        Ok(w.bytes("op", op.as_bytes(), MAX_OP_BYTES)?)
    })
}

/// Reads what [`write_ops`] wrote. Checks run cheapest first: the byte budget before an
/// operation is parsed, its signature (inside `SignedOp::decode`) before its repository
/// is looked at.
pub(super) fn read_ops(r: &mut Reader<'_>, repo: &RepoId) -> Result<Vec<SignedOp>, WireError> {
    let mut total = 0;
    let mut index = 0;
    read_list(r, "ops", MAX_WANT_OPS, U32_LEN, |r| {
        let bytes = r.bytes("op", MAX_OP_BYTES)?;
        add_op_bytes(&mut total, bytes.len())?;
        let op =
            SignedOp::decode(bytes).map_err(|source| WireError::InvalidOp { index, source })?;
        check_repo(index, &op, repo)?;
        index += 1;
        Ok(op)
    })
}

pub(super) fn write_chunk(w: &mut Writer, chunk: &PackChunk) -> Result<(), WireError> {
    chunk.validate()?;
    write_repo(w, &chunk.repo);
    w.u64(chunk.offset);
    w.option_tag(chunk.total.is_some());
    if let Some(total) = chunk.total {
        w.u64(total);
    }
    w.bytes("pack chunk", &chunk.data, MAX_CHUNK_BYTES)?;
    w.bool(chunk.last);
    Ok(())
}

pub(super) fn read_chunk(r: &mut Reader<'_>) -> Result<PackChunk, WireError> {
    let repo = read_repo(r)?;
    let offset = r.u64()?;
    let total = if r.option_tag()? {
        Some(r.u64()?)
    } else {
        None
    };
    let data = r.bytes("pack chunk", MAX_CHUNK_BYTES)?.to_vec();
    let chunk = PackChunk {
        repo,
        offset,
        total,
        data,
        last: r.bool()?,
    };
    chunk.validate()?;
    Ok(chunk)
}

pub(super) fn write_error(w: &mut Writer, code: ErrorCode, message: &str) -> Result<(), WireError> {
    w.u16(code as u16);
    w.str("error message", message, MAX_ERROR_MESSAGE_BYTES)?;
    Ok(())
}

pub(super) fn read_error(r: &mut Reader<'_>) -> Result<(ErrorCode, String), WireError> {
    let code = ErrorCode::from_u16(r.u16()?)?;
    let message = r.string("error message", MAX_ERROR_MESSAGE_BYTES)?;
    Ok((code, message))
}

/// An optional account-page cursor.
pub(super) fn write_cursor(w: &mut Writer, cursor: Option<&str>) -> Result<(), WireError> {
    w.option_tag(cursor.is_some());
    if let Some(cursor) = cursor {
        w.str("cursor", cursor, MAX_CURSOR_BYTES)?;
    }
    Ok(())
}

pub(super) fn read_cursor(r: &mut Reader<'_>) -> Result<Option<String>, WireError> {
    if r.option_tag()? {
        Ok(Some(r.string("cursor", MAX_CURSOR_BYTES)?))
    } else {
        Ok(None)
    }
}

/// A sealed page of account records.
pub(super) fn write_sealed(w: &mut Writer, sealed: &[u8]) -> Result<(), WireError> {
    w.bytes("sealed accounts", sealed, MAX_ACCOUNTS_BYTES)?;
    Ok(())
}

pub(super) fn read_sealed(r: &mut Reader<'_>) -> Result<Vec<u8>, WireError> {
    Ok(r.bytes("sealed accounts", MAX_ACCOUNTS_BYTES)?.to_vec())
}

/// An optional W3C `traceparent`: printable ASCII, at most [`MAX_TRACE_BYTES`].
pub(super) fn write_trace(w: &mut Writer, trace: Option<&str>) -> Result<(), WireError> {
    w.option_tag(trace.is_some());
    if let Some(trace) = trace {
        if !trace.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(WireError::BadTrace);
        }
        w.str("trace", trace, MAX_TRACE_BYTES)?;
    }
    Ok(())
}

pub(super) fn read_trace(r: &mut Reader<'_>) -> Result<Option<String>, WireError> {
    if !r.option_tag()? {
        return Ok(None);
    }
    let trace = r.string("trace", MAX_TRACE_BYTES)?;
    if !trace.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(WireError::BadTrace);
    }
    Ok(Some(trace))
}
