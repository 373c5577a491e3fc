//! The dead-letter log: operations from peers that the fold refused for good, kept (not
//! applied) so an operator can see who sent what and why, and replay them if the rules
//! ever change.
//!
//! Stored in the `REJECTED` table as `op id -> JSON` (`repo`, `reason`, `reason_code`,
//! `received_ms`, `op` as hex of its signed encoding), bounded to
//! [`MAX_DEAD_LETTERS`] entries: a peer flooding forged operations must not fill the
//! disk, and the oldest letters are the least interesting.

use std::collections::BTreeMap;

use guts_core::{OpId, Rejection, RepoId, SignedOp};
use redb::{ReadableTable as _, ReadableTableMetadata as _, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::{RepoError, Repositories};
use crate::error::StoreError;
use crate::schema::{OPS, REJECTED};

/// Most entries the dead-letter log keeps.
pub(crate) const MAX_DEAD_LETTERS: usize = 10_000;
/// When the log overflows it is cut to this many, so the O(n) scan for the oldest runs
/// once per thousand letters, not once per letter.
const TRIM_TO: usize = MAX_DEAD_LETTERS * 9 / 10;
/// `reason_code` of an operation dropped because an ancestor was refused.
const REJECTED_ANCESTOR: &str = "rejected_ancestor";

/// One operation in the dead-letter log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: OpId,
    pub repo: RepoId,
    /// Why it was refused, for people (`Rejection`'s `Display`).
    pub reason: String,
    /// Why, for machines: `Rejection::reason()`, or `rejected_ancestor`.
    pub reason_code: String,
    /// When this node (last) refused it, wall-clock milliseconds.
    pub received_ms: u64,
    pub op: SignedOp,
}

/// What [`Repositories::replay_dead_letters`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Letters offered again.
    pub replayed: usize,
    /// Letters still in the log afterwards (refused again, or still waiting for
    /// parents or objects).
    pub still_rejected: usize,
    /// Letters removed because their operation is now held (applied now, or
    /// meanwhile).
    pub removed: usize,
}

/// The JSON value of a `REJECTED` entry.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    repo: String,
    reason: String,
    reason_code: String,
    received_ms: u64,
    /// Hex of the signed encoding, so the letter can be decoded (and verified) again.
    op: String,
}

/// An operation on its way to the log.
#[derive(Debug)]
pub(super) struct Dead {
    op: SignedOp,
    reason: String,
    code: &'static str,
}

impl Dead {
    pub(super) fn rejected(op: SignedOp, rejection: &Rejection) -> Dead {
        Dead {
            op,
            reason: rejection.to_string(),
            code: rejection.reason(),
        }
    }

    pub(super) fn orphaned(op: SignedOp, parent: OpId) -> Dead {
        Dead {
            op,
            reason: format!("descends from rejected operation {parent}"),
            code: REJECTED_ANCESTOR,
        }
    }

    /// The `reason` label it is counted under.
    pub(super) fn code(&self) -> &'static str {
        self.code
    }

    /// The table entry: key and JSON value.
    pub(super) fn record(
        &self,
        repo: RepoId,
        received_ms: u64,
    ) -> Result<(OpId, Vec<u8>), StoreError> {
        let record = Record {
            repo: repo.to_string(),
            reason: self.reason.clone(),
            reason_code: self.code.to_owned(),
            received_ms,
            op: hex::encode(self.op.as_bytes()),
        };
        let json = serde_json::to_vec(&record)
            .map_err(|e| StoreError::Corrupt(format!("dead letter: {e}")))?;
        Ok((self.op.id(), json))
    }
}

/// Writes letters (replacing older letters of the same operations) and trims the log
/// to its bound, oldest first.
pub(super) fn put(txn: &WriteTransaction, letters: &[(OpId, Vec<u8>)]) -> Result<(), StoreError> {
    if letters.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(REJECTED)?;
    for (id, json) in letters {
        table.insert(id.as_bytes().as_slice(), json.as_slice())?;
    }
    let len = usize::try_from(table.len()?).unwrap_or(usize::MAX);
    if len <= MAX_DEAD_LETTERS {
        return Ok(());
    }
    let mut ages: Vec<(u64, Vec<u8>)> = Vec::with_capacity(len);
    for entry in table.iter()? {
        let (key, value) = entry?;
        // An unreadable letter counts as the oldest.
        let received = serde_json::from_slice::<Record>(value.value()).map_or(0, |r| r.received_ms);
        ages.push((received, key.value().to_vec()));
    }
    ages.sort_unstable();
    for (_, key) in ages.iter().take(len - TRIM_TO) {
        table.remove(key.as_slice())?;
    }
    Ok(())
}

fn decode(key: &[u8], value: &[u8]) -> Result<DeadLetter, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("dead letter: {what}"));
    let id = OpId::from_bytes(key.try_into().map_err(|_| corrupt("key"))?);
    let record: Record = serde_json::from_slice(value).map_err(|e| corrupt(&e.to_string()))?;
    let repo: RepoId = record.repo.parse().map_err(|_| corrupt("repository id"))?;
    let bytes = hex::decode(&record.op).map_err(|_| corrupt("operation hex"))?;
    let op = SignedOp::decode(&bytes).map_err(|e| corrupt(&e.to_string()))?;
    if op.id() != id {
        return Err(corrupt("operation does not match its key"));
    }
    Ok(DeadLetter {
        id,
        repo,
        reason: record.reason,
        reason_code: record.reason_code,
        received_ms: record.received_ms,
        op,
    })
}

impl Repositories {
    /// Up to `limit` dead letters, newest first (ties by operation id). Reads the
    /// whole log (at most [`MAX_DEAD_LETTERS`] entries).
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let read = self.store.read()?;
        let table = read.open_table(REJECTED)?;
        let mut letters = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            letters.push(decode(key.value(), value.value())?);
        }
        letters.sort_by(|a, b| {
            b.received_ms
                .cmp(&a.received_ms)
                .then_with(|| a.id.cmp(&b.id))
        });
        letters.truncate(limit);
        Ok(letters)
    }

    /// Offers every dead letter again through [`Repositories::insert_remote`] (one
    /// batch per repository, so descendants travel with their ancestors) and removes
    /// those whose operation is now held: what an operator runs after the rules
    /// changed, or after the objects or parents a letter waited for arrived. Letters
    /// refused again stay (with a new `received_ms`).
    pub async fn replay_dead_letters(&self) -> Result<ReplayReport, RepoError> {
        let letters = self.dead_letters(usize::MAX)?;
        let mut report = ReplayReport {
            replayed: letters.len(),
            ..ReplayReport::default()
        };
        let mut by_repo: BTreeMap<RepoId, Vec<SignedOp>> = BTreeMap::new();
        for letter in letters {
            by_repo.entry(letter.repo).or_default().push(letter.op);
        }
        for (repo, ops) in by_repo {
            let ids: Vec<OpId> = ops.iter().map(SignedOp::id).collect();
            match self.insert_remote(repo, ops).await {
                Ok(_) | Err(RepoError::Invalid(_) | RepoError::NotFound) => {}
                Err(e) => return Err(e),
            }
            report.removed += self
                .store
                .write("replay_dead_letters", move |txn| {
                    let ops = txn.open_table(OPS)?;
                    let mut table = txn.open_table(REJECTED)?;
                    let mut removed = 0;
                    for id in &ids {
                        let key = id.as_bytes().as_slice();
                        if ops.get(key)?.is_some() {
                            table.remove(key)?;
                            removed += 1;
                        }
                    }
                    Ok(removed)
                })
                .await?;
        }
        report.still_rejected = report.replayed.saturating_sub(report.removed);
        Ok(report)
    }
}
