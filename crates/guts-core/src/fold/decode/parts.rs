//! Decoding the parts of a state that other modules encode: collaboration
//! ([`Collab::encode`]), commit statuses ([`Checks::encode`]), check runs
//! ([`CheckRuns::encode`]) and webhooks ([`Hooks::encode`]). Kept beside the state's
//! decoder, in the order and with the rules of the parent module, so those modules keep
//! only their fold rules and encoders.

use std::collections::BTreeMap;

use imbl::OrdMap;

use crate::check_runs::{CheckOutput, CheckRun, CheckRuns, CheckStatus, Conclusion};
use crate::checks::{CommitStatus, StatusState};
use crate::codec::{DecodeError, Reader, decode_merge_method, decode_role, decode_verdict};
use crate::collab::{
    Collab, Comment, InlineComment, LabelDef, Merged, Pull, Review, TextRef, Thread,
};
use crate::hooks::{ContentType, Hook, HookConfig, Hooks};
use crate::ids::{ObjectId, OpId};

use super::{HLC, KEY, LEN, OBJECT, OP};

/// An encoded [`TextRef`].
const TEXT: usize = OP + 4 + 4;
use super::{list, map, not_canonical, object, op_id, opt_text, option, set};

/// Commit statuses: a map of commits, each a map of lowercase contexts, each a list.
pub(super) type Statuses = BTreeMap<ObjectId, BTreeMap<String, Vec<CommitStatus>>>;

/// Threads, comments, labels and reviews; the number and numeric comment id indexes
/// are rebuilt from them. Requested reviewers and edited inline comments come later,
/// in sections of their own.
pub(super) fn decode_collab(r: &mut Reader<'_>) -> Result<Collab, DecodeError> {
    let threads: OrdMap<OpId, Thread> = map(r, "threads", OP + 100 + TEXT, |r| {
        Ok((op_id(r)?, decode_thread(r)?))
    })?;
    let comments: OrdMap<OpId, Comment> = map(r, "comments", 2 * OP + KEY + TEXT + 2 * HLC, |r| {
        let id = op_id(r)?;
        let comment = Comment {
            thread: op_id(r)?,
            author: r.public_key("author")?,
            body: text(r)?,
            created_at: r.hlc()?,
            updated_at: r.hlc()?,
        };
        Ok((id, comment))
    })?;
    let labels = decode_labels(r)?;
    let reviews = map(r, "reviews", 138 + TEXT, |r| {
        Ok((op_id(r)?, decode_review(r)?))
    })?;
    let mut numbers = OrdMap::new();
    for (id, thread) in &threads {
        // The fold hands out each number once.
        if numbers.insert(thread.number, *id).is_some() {
            return Err(not_canonical("thread numbers"));
        }
    }
    let comment_ids = comments.keys().map(|id| (id.numeric(), *id)).collect();
    Ok(Collab {
        threads,
        numbers,
        comments,
        labels,
        reviews,
        comment_ids,
    })
}

fn decode_labels(r: &mut Reader<'_>) -> Result<OrdMap<String, LabelDef>, DecodeError> {
    map(r, "labels", 4 * LEN, |r| {
        let key = r.long_string("label")?;
        let label = LabelDef {
            name: r.long_string("label")?,
            color: r.long_string("color")?,
            description: r.long_string("description")?,
        };
        Ok((key, label))
    })
}

impl Collab {
    /// Reads what [`Collab::encode_labels`] wrote, and nothing else.
    pub fn decode_labels(bytes: &[u8]) -> Result<OrdMap<String, LabelDef>, DecodeError> {
        let mut r = Reader::new(bytes);
        row_version(&mut r)?;
        let labels = decode_labels(&mut r)?;
        r.finish()?;
        Ok(labels)
    }
}

impl Thread {
    /// Reads what [`Thread::encode_row`] wrote, and nothing else: a thread and its id.
    /// Stored bytes are input, so this never panics and bounds what it allocates by
    /// the input, as the state's decoder does.
    pub fn decode_row(bytes: &[u8]) -> Result<(OpId, Thread), DecodeError> {
        let mut r = Reader::new(bytes);
        row_version(&mut r)?;
        let id = op_id(&mut r)?;
        let mut thread = decode_thread(&mut r)?;
        if let Some(pull) = thread.pull.as_mut() {
            pull.requested = set(&mut r, "requested reviewers", KEY, |r| {
                r.public_key("reviewer")
            })?;
        }
        r.finish()?;
        Ok((id, thread))
    }
}

impl Thread {
    /// Whether the thread a row holds ([`Thread::encode_row`]) is open as `open` says
    /// (when given) and carries every label of `labels` (lowercase keys), read from the
    /// row's bytes without decoding it: what a list filters on first, so that it decodes
    /// only the rows it may show. Allocates nothing; an error for bytes that do not
    /// start as a row.
    pub fn row_may_match(
        bytes: &[u8],
        open: Option<bool>,
        labels: &[String],
    ) -> Result<bool, DecodeError> {
        let mut r = Reader::new(bytes);
        row_version(&mut r)?;
        r.take(OP)?; // id
        r.u64()?; // number
        r.take(KEY)?; // author
        r.long_bytes("title")?;
        r.take(TEXT)?; // body
        r.take(2 * HLC)?; // created, updated
        let is_open = r.bool()?;
        if open.is_some_and(|wanted| wanted != is_open) {
            return Ok(false);
        }
        if r.option_tag()? {
            r.take(HLC + KEY)?; // closed at, by
        }
        r.bool()?; // locked
        let count = r.long_count("thread labels", LEN)?;
        let held = r.clone();
        for wanted in labels {
            let mut scan = held.clone();
            let mut found = false;
            for _ in 0..count {
                found |= scan.long_bytes("label")? == wanted.as_bytes();
            }
            if !found {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn row_version(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    match r.u8()? {
        crate::collab::ROW_FORMAT_VERSION => Ok(()),
        other => Err(DecodeError::UnsupportedVersion(other)),
    }
}

/// A [`TextRef`]: operation, part and length.
fn text(r: &mut Reader<'_>) -> Result<TextRef, DecodeError> {
    Ok(TextRef {
        op: op_id(r)?,
        part: r.u32()?,
        len: r.u32()?,
    })
}

fn decode_thread(r: &mut Reader<'_>) -> Result<Thread, DecodeError> {
    Ok(Thread {
        number: r.u64()?,
        author: r.public_key("author")?,
        title: r.long_string("title")?,
        body: text(r)?,
        created_at: r.hlc()?,
        updated_at: r.hlc()?,
        open: r.bool()?,
        closed: option(r, |r| Ok((r.hlc()?, r.public_key("closed by")?)))?,
        locked: r.bool()?,
        labels: set(r, "thread labels", LEN, |r| r.long_string("label"))?,
        assignees: set(r, "assignees", KEY, |r| r.public_key("assignee"))?,
        comments: list(r, "thread comments", OP, op_id)?,
        pull: option(r, |r| decode_pull(r).map(Box::new))?,
    })
}

fn decode_pull(r: &mut Reader<'_>) -> Result<Pull, DecodeError> {
    Ok(Pull {
        head: r.long_string("head")?,
        base: r.long_string("base")?,
        head_sha: object(r)?,
        base_sha: object(r)?,
        draft: r.bool()?,
        reviews: list(r, "pull reviews", OP, op_id)?,
        merged: option(r, |r| {
            Ok(Merged {
                by: r.public_key("merged by")?,
                at: r.hlc()?,
                method: decode_merge_method(r)?,
                head: object(r)?,
                commit: object(r)?,
            })
        })?,
        // Written in a section of their own.
        requested: Default::default(),
    })
}

fn decode_review(r: &mut Reader<'_>) -> Result<Review, DecodeError> {
    Ok(Review {
        pull: op_id(r)?,
        author: r.public_key("author")?,
        verdict: decode_verdict(r)?,
        body: text(r)?,
        commit: object(r)?,
        at: r.hlc()?,
        comments: list(r, "review comments", LEN + 4 + TEXT, |r| {
            Ok(InlineComment {
                path: r.long_string("path")?,
                line: r.u32()?,
                body: text(r)?,
            })
        })?,
        // Written in a section of their own.
        edited: BTreeMap::new(),
        deleted: Default::default(),
        role: option(r, decode_role)?,
    })
}

/// A status state, a check status or a conclusion from its tag.
fn tag<T>(
    r: &mut Reader<'_>,
    field: &'static str,
    from_tag: fn(u8) -> Option<T>,
) -> Result<T, DecodeError> {
    let tag = r.u8()?;
    from_tag(tag).ok_or(DecodeError::UnknownTag { field, tag })
}

/// The statuses section: written only when some commit has a status.
pub(super) fn decode_statuses(r: &mut Reader<'_>) -> Result<Statuses, DecodeError> {
    let status_len = 1 + LEN + 2 + KEY + HLC + OP;
    let statuses: Statuses = map(r, "status commits", OBJECT + LEN, |r| {
        let commit = object(r)?;
        let contexts = map(r, "status contexts", 2 * LEN, |r| {
            let key = r.long_string("context")?;
            let list = list(r, "statuses", status_len, |r| {
                Ok(CommitStatus {
                    state: tag(r, "status state", StatusState::from_tag)?,
                    context: r.long_string("context")?,
                    description: opt_text(r, "description")?,
                    target_url: opt_text(r, "target_url")?,
                    creator: r.public_key("creator")?,
                    at: r.hlc()?,
                    op: op_id(r)?,
                })
            })?;
            Ok((key, list))
        })?;
        Ok((commit, contexts))
    })?;
    if statuses.is_empty() {
        return Err(not_canonical("statuses"));
    }
    Ok(statuses)
}

/// The webhooks section: written only when a hook exists.
pub(super) fn decode_hooks(r: &mut Reader<'_>) -> Result<Hooks, DecodeError> {
    let hook_len = OP + 3 * LEN + 3 + KEY + 2 * HLC;
    let hooks: BTreeMap<OpId, Hook> = map(r, "hooks", hook_len, |r| {
        let id = op_id(r)?;
        let config = HookConfig {
            url: r.long_string("url")?,
            content_type: tag(r, "content type", ContentType::from_tag)?,
            secret: r.long_bytes("secret")?.to_vec(),
            insecure_ssl: r.bool()?,
            events: list(r, "events", LEN, |r| r.long_string("event"))?,
            active: r.bool()?,
        };
        let hook = Hook {
            config,
            creator: r.public_key("creator")?,
            created: r.hlc()?,
            updated: r.hlc()?,
        };
        Ok((id, hook))
    })?;
    if hooks.is_empty() {
        return Err(not_canonical("hooks"));
    }
    Ok(Hooks { hooks })
}

/// The check runs section: written only when a run exists. A run's `op` is its key.
pub(super) fn decode_runs(r: &mut Reader<'_>) -> Result<CheckRuns, DecodeError> {
    let run_len = OP + OBJECT + LEN + 1 + 5 + KEY + 2 * HLC;
    let runs: BTreeMap<OpId, CheckRun> = map(r, "check runs", run_len, |r| {
        let op = op_id(r)?;
        let run = CheckRun {
            head: object(r)?,
            name: r.long_string("name")?,
            status: tag(r, "check status", CheckStatus::from_tag)?,
            conclusion: option(r, |r| tag(r, "conclusion", Conclusion::from_tag))?,
            started_at: option(r, Reader::u64)?,
            completed_at: option(r, Reader::u64)?,
            details_url: opt_text(r, "details_url")?,
            external_id: opt_text(r, "external_id")?,
            output: option(r, |r| {
                Ok(CheckOutput {
                    title: r.long_string("title")?,
                    summary: r.long_string("summary")?,
                    text: opt_text(r, "text")?,
                })
            })?,
            creator: r.public_key("creator")?,
            created: r.hlc()?,
            updated: r.hlc()?,
            op,
        };
        Ok((op, run))
    })?;
    if runs.is_empty() {
        return Err(not_canonical("check runs"));
    }
    CheckRuns::from_runs(runs)
}
