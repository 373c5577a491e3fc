//! The webhook outbox, delivery queue and delivery log of this node.
//!
//! Three tables, one job each:
//! - [`HOOK_OUTBOX`]: `wall ms (8, big-endian) || op id (32) -> repo id`, written in the
//!   same transaction as an operation this node accepted from a front end, when its
//!   repository has an active hook. An acknowledged operation therefore always has its
//!   events to send, whatever happens to the node after the commit (kill -9 included).
//! - [`HOOK_JOBS`]: `job id -> JSON Job`: one delivery to make to one hook, with its
//!   rendered payload, the attempts made and when to try next. The delivering task
//!   turns an outbox entry into its jobs in one transaction (so a crash between the two
//!   neither loses nor doubles them).
//! - [`HOOK_DUE`]: the jobs by their next attempt's time, an index of [`HOOK_JOBS`].
//! - [`HOOK_STANDBY`]: operations received from peers (outbox-shaped), written with
//!   them, which this node delivers only if the accepting node seems gone.
//! - [`HOOK_DELIVERIES`]: `delivery id -> JSON Delivery`: one row per attempt, what
//!   `GET hooks/{id}/deliveries` lists; bounded in age and number.
//!
//! This is node-local bookkeeping, not replicated data: which hooks exist is folded
//! state; who delivered what is the delivering node's log.

use std::time::{SystemTime, UNIX_EPOCH};

use guts_core::{OpId, RepoId, SignedOp};
use redb::{ReadableTable as _, ReadableTableMetadata as _, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::db::Store;
use crate::error::StoreError;
use crate::schema::OPS;

/// `wall ms || op id -> repo id`: operations whose events are still to be worked out.
pub const HOOK_OUTBOX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("hook_outbox");
/// `wall ms || op id -> repo id || version`: operations this node received from a peer
/// for a repository with hooks, held for a while in case the node that accepted them
/// is gone before it delivered their events (see the deliverer's takeover).
pub const HOOK_STANDBY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("hook_standby");
/// `job id -> JSON Job`: deliveries still to make.
pub const HOOK_JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("hook_jobs");
/// `next attempt ms (8, big-endian) || job id (8, big-endian) -> ()`: the jobs by when
/// they are due, so finding the due ones reads only those (not every queued payload).
pub const HOOK_DUE: TableDefinition<&[u8], ()> = TableDefinition::new("hook_due");
/// `delivery id -> JSON Delivery`: the attempts made, newest last.
pub const HOOK_DELIVERIES: TableDefinition<u64, &[u8]> = TableDefinition::new("hook_deliveries");

/// One delivery to make: an event rendered for one hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// `X-GitHub-Delivery`: derived from the operation, the hook and the event, so the
    /// same event keeps it across retries, redeliveries and nodes.
    pub guid: String,
    #[serde(with = "text")]
    pub repo: RepoId,
    /// The hook, by the id of the operation that created it.
    #[serde(with = "text")]
    pub hook: OpId,
    pub event: String,
    pub action: Option<String>,
    /// The JSON payload, as sent.
    pub payload: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Unix ms before which no attempt is made.
    pub next_at_ms: u64,
    /// Whether this job is a redelivery asked for through the API.
    pub redelivery: bool,
    /// The W3C traceparent of the operation that caused the event, if traced.
    pub trace: Option<String>,
    /// Who asked, for a job rendered when sent (a ping, a test): their public key.
    #[serde(default)]
    pub sender: Option<String>,
    /// The organization whose hook this is (`None`: the repository's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

/// One attempt, as the delivery log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: u64,
    pub guid: String,
    #[serde(with = "text")]
    pub repo: RepoId,
    #[serde(with = "text")]
    pub hook: OpId,
    pub event: String,
    pub action: Option<String>,
    /// Whether this attempt repeated an earlier one of the same event.
    pub redelivery: bool,
    pub delivered_at_ms: u64,
    pub duration_ms: u64,
    /// The receiver's HTTP status, 0 when none came (connection refused, timeout).
    pub status_code: u16,
    /// GitHub's `status`: `OK`, or what went wrong.
    pub status: String,
    pub request_headers: Vec<(String, String)>,
    pub payload: String,
    pub response_headers: Vec<(String, String)>,
    /// The start of the response body, bounded by the deliverer.
    pub response_body: String,
    /// The organization whose hook this is (`None`: the repository's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

/// Ids as their hex text in the JSON rows.
mod text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub(super) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An operation whose events are still to be worked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its key in [`HOOK_OUTBOX`], to remove it once expanded.
    pub key: Vec<u8>,
    pub repo: RepoId,
    pub op: OpId,
    /// The number of operations of a view that holds this one.
    pub version: u64,
    /// The traceparent of the request that made the operation.
    pub trace: Option<String>,
}

/// The jobs due now (by id, oldest first), and when the next one not yet due will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub jobs: Vec<(u64, Job)>,
    pub next_at_ms: Option<u64>,
}

/// The node's webhook tables. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HookQueue {
    store: Store,
}

/// Unix time in ms.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The outbox value for an operation of `repo` that a view of at least `version`
/// operations shows: the repository's id, that version, then the traceparent of the
/// request that made the operation (if traced), so delivery continues that trace.
/// The entry commits before the view is published: the deliverer waits for a view
/// that holds the operation rather than render the events from one that does not.
pub(crate) fn outbox_value(repo: &RepoId, version: usize) -> Vec<u8> {
    let mut value = repo.as_bytes().to_vec();
    value.extend_from_slice(&u64::try_from(version).unwrap_or(u64::MAX).to_be_bytes());
    if let Some(trace) = guts_ops::telemetry::current_traceparent() {
        value.extend_from_slice(trace.as_bytes());
    }
    value
}

/// Whether organization `owner` (lowercase; any login) has an active webhook: read in
/// the transaction that stores an operation of one of its repositories, so a hook
/// added a moment before is seen.
pub(crate) fn org_has_hooks(txn: &redb::WriteTransaction, owner: &str) -> Result<bool, StoreError> {
    let orgs = txn.open_table(crate::schema::ORGS)?;
    let Some(value) = orgs.get(owner)? else {
        return Ok(false);
    };
    let bytes = value.value();
    // Records without hooks do not spell the field: most appends stop here.
    if !bytes.windows(8).any(|w| w == b"\"hooks\":") {
        return Ok(false);
    }
    let record: crate::accounts::OrgRecord = decode(bytes)?;
    Ok(record.hooks.iter().any(|h| h.active))
}

/// Writes each of `keys` with `value` into `table` (the outbox, or the standby) when
/// the repository has an active hook (`hooked`) or its owner, an organization, has one:
/// what every transaction that stores operations does for webhooks.
pub(crate) fn hold_if_hooked(
    txn: &redb::WriteTransaction,
    table: TableDefinition<&[u8], &[u8]>,
    hooked: bool,
    owner: Option<&str>,
    keys: &[Vec<u8>],
    value: &[u8],
) -> Result<(), StoreError> {
    let org_hooked = match owner {
        Some(owner) if !hooked => org_has_hooks(txn, owner)?,
        _ => false,
    };
    if hooked || org_hooked {
        let mut held = txn.open_table(table)?;
        for key in keys {
            held.insert(key.as_slice(), value)?;
        }
    }
    Ok(())
}

/// The outbox key of operation `op` stamped `wall_ms`: oldest first in key order.
pub(crate) fn outbox_key(wall_ms: u64, op: &OpId) -> Vec<u8> {
    let mut key = Vec::with_capacity(40);
    key.extend_from_slice(&wall_ms.to_be_bytes());
    key.extend_from_slice(op.as_bytes());
    key
}

/// The [`HOOK_DUE`] key of job `id` due at `at_ms`.
fn due_key(at_ms: u64, id: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&at_ms.to_be_bytes());
    key[8..].copy_from_slice(&id.to_be_bytes());
    key
}

/// Stores `job` as job `id` and indexes it by when it is due.
fn put_job(txn: &redb::WriteTransaction, id: u64, job: &Job) -> Result<(), StoreError> {
    txn.open_table(HOOK_JOBS)?
        .insert(id, encode(job)?.as_slice())?;
    txn.open_table(HOOK_DUE)?
        .insert(due_key(job.next_at_ms, id).as_slice(), ())?;
    Ok(())
}

/// Removes job `id` and its index entry; answers it, if it was there.
fn take_job(txn: &redb::WriteTransaction, id: u64) -> Result<Option<Job>, StoreError> {
    let Some(job) = txn
        .open_table(HOOK_JOBS)?
        .remove(id)?
        .map(|v| decode::<Job>(v.value()))
        .transpose()?
    else {
        return Ok(None);
    };
    txn.open_table(HOOK_DUE)?
        .remove(due_key(job.next_at_ms, id).as_slice())?;
    Ok(Some(job))
}

fn decode<T: for<'a> Deserialize<'a>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("hook table: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("hook table: {e}")))
}

/// A new id for a job or delivery: time-ordered and below 2^53, so JavaScript
/// clients read it exactly (GitHub's ids are JSON numbers).
fn next_id(last: Option<u64>) -> u64 {
    let candidate = now_ms().saturating_mul(1000);
    match last {
        Some(last) if last >= candidate => last + 1,
        _ => candidate,
    }
}

impl HookQueue {
    pub fn new(store: Store) -> HookQueue {
        HookQueue { store }
    }

    /// Up to `limit` outbox entries, oldest first.
    pub fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.entries(HOOK_OUTBOX, u64::MAX, limit)
    }

    /// Up to `limit` standby entries of operations stamped at or before `until_ms`,
    /// oldest first.
    pub fn standby(&self, until_ms: u64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.entries(HOOK_STANDBY, until_ms, limit)
    }

    /// Moves the standby entries `take` to the outbox (this node delivers them) and
    /// drops `drop`, in one transaction.
    pub async fn settle_standby(
        &self,
        take: Vec<Vec<u8>>,
        drop: Vec<Vec<u8>>,
    ) -> Result<(), StoreError> {
        self.store
            .write("hook_standby", move |txn| {
                let mut standby = txn.open_table(HOOK_STANDBY)?;
                let mut outbox = txn.open_table(HOOK_OUTBOX)?;
                for key in &take {
                    if let Some(value) = standby.remove(key.as_slice())? {
                        outbox.insert(key.as_slice(), value.value())?;
                    }
                }
                for key in &drop {
                    standby.remove(key.as_slice())?;
                }
                Ok(())
            })
            .await
    }

    fn entries(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        until_ms: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let txn = self.store.read()?;
        let table = txn.open_table(table)?;
        let mut entries = Vec::new();
        for row in table.iter()?.take(limit) {
            let (key, value) = row?;
            let key = key.value().to_vec();
            let stamped = key
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            if stamped > until_ms {
                break;
            }
            let op = key
                .get(8..40)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(OpId::from_bytes);
            let value = value.value();
            let repo = value
                .get(..32)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(RepoId::from_bytes);
            let version = value
                .get(32..40)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            let trace = value
                .get(40..)
                .filter(|t| !t.is_empty())
                .and_then(|t| std::str::from_utf8(t).ok())
                .map(str::to_string);
            if let (Some(op), Some(repo)) = (op, repo) {
                entries.push(OutboxEntry {
                    key,
                    repo,
                    op,
                    version,
                    trace,
                });
            }
        }
        Ok(entries)
    }

    /// The stored operation `id`, if any.
    pub fn op(&self, id: &OpId) -> Result<Option<SignedOp>, StoreError> {
        let txn = self.store.read()?;
        let table = txn.open_table(OPS)?;
        let Some(bytes) = table.get(id.as_bytes().as_slice())? else {
            return Ok(None);
        };
        SignedOp::decode(bytes.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("stored operation: {e}")))
    }

    /// Replaces each outbox entry by its jobs, in one transaction, durably. An entry
    /// already gone (expanded by an earlier pass that lost its answer) adds nothing.
    pub async fn expand(&self, entries: Vec<(Vec<u8>, Vec<Job>)>) -> Result<(), StoreError> {
        self.store
            .write("hook_expand", move |txn| {
                for (key, jobs) in &entries {
                    if txn
                        .open_table(HOOK_OUTBOX)?
                        .remove(key.as_slice())?
                        .is_none()
                    {
                        continue;
                    }
                    for job in jobs {
                        let last = txn.open_table(HOOK_JOBS)?.last()?.map(|(k, _)| k.value());
                        put_job(txn, next_id(last), job)?;
                    }
                }
                Ok(())
            })
            .await
    }

    /// Drops job `id` (its hook or repository is gone).
    pub async fn drop_job(&self, id: u64) -> Result<(), StoreError> {
        self.store
            .write("hook_drop", move |txn| {
                take_job(txn, id)?;
                Ok(())
            })
            .await
    }

    /// Queues one job (a ping, a test delivery or a redelivery).
    pub async fn enqueue(&self, job: Job) -> Result<(), StoreError> {
        self.store
            .write("hook_enqueue", move |txn| {
                let last = txn.open_table(HOOK_JOBS)?.last()?.map(|(k, _)| k.value());
                put_job(txn, next_id(last), &job)
            })
            .await
    }

    /// Up to `limit` jobs due at `now_ms`, oldest first, and the earliest time a job
    /// not yet due will be.
    pub fn due(&self, now_ms: u64, limit: usize) -> Result<Due, StoreError> {
        let txn = self.store.read()?;
        let index = txn.open_table(HOOK_DUE)?;
        let jobs = txn.open_table(HOOK_JOBS)?;
        let mut due = Vec::new();
        let mut next = None;
        for row in index.iter()? {
            let (key, _) = row?;
            let key = key.value();
            let at = key.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok());
            let id = key.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok());
            let (Some(at), Some(id)) = (at, id) else {
                continue;
            };
            let (at, id) = (u64::from_be_bytes(at), u64::from_be_bytes(id));
            if at > now_ms {
                next = Some(at);
                break;
            }
            if due.len() >= limit {
                break;
            }
            if let Some(value) = jobs.get(id)? {
                due.push((id, decode::<Job>(value.value())?));
            }
        }
        Ok(Due {
            jobs: due,
            next_at_ms: next,
        })
    }

    /// Jobs and outbox entries waiting: the queue depth (standby entries are not
    /// this node's to send, unless it takes them over).
    pub fn depth(&self) -> Result<u64, StoreError> {
        let txn = self.store.read()?;
        Ok(txn.open_table(HOOK_JOBS)?.len()? + txn.open_table(HOOK_OUTBOX)?.len()?)
    }

    /// Records attempt `delivery` of job `job`: the job is then rescheduled as `next`,
    /// or done when `next` is `None`. Old deliveries beyond `keep` rows, or older than
    /// `keep_ms`, are dropped in the same transaction. Answers the delivery's id.
    pub async fn record(
        &self,
        job: u64,
        next: Option<Job>,
        delivery: Delivery,
        keep: u64,
        keep_ms: u64,
    ) -> Result<u64, StoreError> {
        self.store
            .write("hook_record", move |txn| {
                take_job(txn, job)?;
                if let Some(next) = &next {
                    put_job(txn, job, next)?;
                }
                let mut log = txn.open_table(HOOK_DELIVERIES)?;
                let id = next_id(log.last()?.map(|(k, _)| k.value()));
                let mut delivery = delivery.clone();
                delivery.id = id;
                log.insert(id, encode(&delivery)?.as_slice())?;
                let horizon = now_ms().saturating_sub(keep_ms).saturating_mul(1000);
                loop {
                    let Some(first) = log.first()?.map(|(k, _)| k.value()) else {
                        break;
                    };
                    if first < horizon || log.len()? > keep {
                        log.remove(first)?;
                    } else {
                        break;
                    }
                }
                Ok(id)
            })
            .await
    }

    /// The attempts logged for `hook` (of `repo`, for a repository's hook), newest
    /// first, up to `limit` after skipping `skip`.
    pub fn deliveries(
        &self,
        repo: Option<&RepoId>,
        hook: &OpId,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let txn = self.store.read()?;
        let table = txn.open_table(HOOK_DELIVERIES)?;
        let mut found = Vec::new();
        for row in table.iter()?.rev() {
            let (_, value) = row?;
            let delivery: Delivery = decode(value.value())?;
            if repo.is_none_or(|r| delivery.repo == *r) && delivery.hook == *hook {
                found.push(delivery);
                if found.len() >= skip.saturating_add(limit) {
                    break;
                }
            }
        }
        Ok(found.into_iter().skip(skip).collect())
    }

    /// Attempt `id`, if it is `hook`'s.
    pub fn delivery(
        &self,
        repo: Option<&RepoId>,
        hook: &OpId,
        id: u64,
    ) -> Result<Option<Delivery>, StoreError> {
        let txn = self.store.read()?;
        let table = txn.open_table(HOOK_DELIVERIES)?;
        let Some(value) = table.get(id)? else {
            return Ok(None);
        };
        let delivery: Delivery = decode(value.value())?;
        let ours = repo.is_none_or(|r| delivery.repo == *r) && delivery.hook == *hook;
        Ok(ours.then_some(delivery))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(n: u8, next_at_ms: u64) -> Job {
        Job {
            guid: format!("guid-{n}"),
            repo: RepoId::from_bytes([1; 32]),
            hook: OpId::from_bytes([2; 32]),
            event: "push".into(),
            action: None,
            payload: "{}".into(),
            attempts: 0,
            next_at_ms,
            redelivery: false,
            trace: None,
            sender: None,
            org: None,
        }
    }

    fn delivery(job: &Job, status_code: u16) -> Delivery {
        Delivery {
            id: 0,
            guid: job.guid.clone(),
            repo: job.repo,
            hook: job.hook,
            event: job.event.clone(),
            action: None,
            redelivery: false,
            delivered_at_ms: now_ms(),
            duration_ms: 1,
            status_code,
            status: "OK".into(),
            request_headers: Vec::new(),
            payload: job.payload.clone(),
            response_headers: Vec::new(),
            response_body: String::new(),
            org: None,
        }
    }

    #[tokio::test]
    async fn an_outbox_entry_becomes_jobs_once_and_attempts_are_logged_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = std::sync::Arc::new(crate::StorageMetrics::register(&mut registry));
        let (store, writer) = Store::open(dir.path(), metrics).unwrap();
        let queue = HookQueue::new(store.clone());
        let op = OpId::from_bytes([3; 32]);
        let key = outbox_key(5, &op);
        store
            .write("test", {
                let key = key.clone();
                move |txn| {
                    txn.open_table(HOOK_OUTBOX)?
                        .insert(key.as_slice(), [1u8; 40].as_slice())?;
                    Ok(())
                }
            })
            .await
            .unwrap();
        let outbox = queue.outbox(10).unwrap();
        assert_eq!(
            outbox,
            vec![OutboxEntry {
                key: key.clone(),
                repo: RepoId::from_bytes([1; 32]),
                op,
                version: u64::from_be_bytes([1; 8]),
                trace: None
            }]
        );
        queue
            .expand(vec![(key.clone(), vec![job(1, 0), job(2, u64::MAX)])])
            .await
            .unwrap();
        // A second expansion of the same entry adds nothing.
        queue.expand(vec![(key, vec![job(3, 0)])]).await.unwrap();
        assert!(queue.outbox(10).unwrap().is_empty());
        let Due {
            jobs: due,
            next_at_ms: next,
        } = queue.due(now_ms(), 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(next, Some(u64::MAX));
        assert_eq!(queue.depth().unwrap(), 2);

        let (id, first) = due[0].clone();
        let mut retry = first.clone();
        retry.attempts = 1;
        retry.next_at_ms = u64::MAX - 1;
        queue
            .record(id, Some(retry), delivery(&first, 500), 3, u64::MAX / 2000)
            .await
            .unwrap();
        assert!(queue.due(now_ms(), 10).unwrap().jobs.is_empty());
        for _ in 0..4 {
            queue
                .record(id, None, delivery(&first, 200), 3, u64::MAX / 2000)
                .await
                .unwrap();
        }
        assert_eq!(queue.depth().unwrap(), 1);
        let log = queue
            .deliveries(Some(&first.repo), &first.hook, 0, 100)
            .unwrap();
        assert_eq!(log.len(), 3, "the log keeps its bound");
        assert!(log.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        let one = queue
            .delivery(Some(&first.repo), &first.hook, log[0].id)
            .unwrap();
        assert_eq!(one.as_ref().map(|d| d.status_code), Some(200));
        let other_hook = OpId::from_bytes([9; 32]);
        assert!(
            queue
                .delivery(Some(&first.repo), &other_hook, log[0].id)
                .unwrap()
                .is_none()
        );
        drop(queue);
        drop(store);
        writer.join();
    }
}
