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
/// `job id -> JSON Job`: deliveries still to make.
pub const HOOK_JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("hook_jobs");
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

/// The outbox value for an operation of `repo`: its id, then the traceparent of the
/// request that made the operation (if traced), so delivery continues that trace.
pub(crate) fn outbox_value(repo: &RepoId) -> Vec<u8> {
    let mut value = repo.as_bytes().to_vec();
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

/// The outbox key of operation `op` stamped `wall_ms`: oldest first in key order.
pub(crate) fn outbox_key(wall_ms: u64, op: &OpId) -> Vec<u8> {
    let mut key = Vec::with_capacity(40);
    key.extend_from_slice(&wall_ms.to_be_bytes());
    key.extend_from_slice(op.as_bytes());
    key
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
        let txn = self.store.read()?;
        let table = txn.open_table(HOOK_OUTBOX)?;
        let mut entries = Vec::new();
        for row in table.iter()?.take(limit) {
            let (key, value) = row?;
            let key = key.value().to_vec();
            let op = key
                .get(8..40)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(OpId::from_bytes);
            let value = value.value();
            let repo = value
                .get(..32)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(RepoId::from_bytes);
            let trace = value
                .get(32..)
                .filter(|t| !t.is_empty())
                .and_then(|t| std::str::from_utf8(t).ok())
                .map(str::to_string);
            if let (Some(op), Some(repo)) = (op, repo) {
                entries.push(OutboxEntry {
                    key,
                    repo,
                    op,
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

    /// Replaces outbox entry `key` by `jobs`, atomically and durably.
    pub async fn expand(&self, key: Vec<u8>, jobs: Vec<Job>) -> Result<(), StoreError> {
        let encoded = jobs.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        self.store
            .write("hook_expand", move |txn| {
                let mut outbox = txn.open_table(HOOK_OUTBOX)?;
                if outbox.remove(key.as_slice())?.is_none() {
                    // Already expanded (by an earlier pass that lost its answer).
                    return Ok(());
                }
                let mut table = txn.open_table(HOOK_JOBS)?;
                let mut last = table.last()?.map(|(k, _)| k.value());
                for job in &encoded {
                    let id = next_id(last);
                    table.insert(id, job.as_slice())?;
                    last = Some(id);
                }
                Ok(())
            })
            .await
    }

    /// Drops job `id` (its hook or repository is gone).
    pub async fn drop_job(&self, id: u64) -> Result<(), StoreError> {
        self.store
            .write("hook_drop", move |txn| {
                txn.open_table(HOOK_JOBS)?.remove(id)?;
                Ok(())
            })
            .await
    }

    /// Queues one job (a ping, a test delivery or a redelivery).
    pub async fn enqueue(&self, job: Job) -> Result<(), StoreError> {
        let encoded = encode(&job)?;
        self.store
            .write("hook_enqueue", move |txn| {
                let mut table = txn.open_table(HOOK_JOBS)?;
                let id = next_id(table.last()?.map(|(k, _)| k.value()));
                table.insert(id, encoded.as_slice())?;
                Ok(())
            })
            .await
    }

    /// Up to `limit` jobs due at `now_ms`, oldest first, and the earliest time a job
    /// not yet due will be.
    pub fn due(&self, now_ms: u64, limit: usize) -> Result<Due, StoreError> {
        let txn = self.store.read()?;
        let table = txn.open_table(HOOK_JOBS)?;
        let mut due = Vec::new();
        let mut next: Option<u64> = None;
        for row in table.iter()? {
            let (id, value) = row?;
            let job: Job = decode(value.value())?;
            if job.next_at_ms <= now_ms {
                if due.len() < limit {
                    due.push((id.value(), job));
                }
            } else {
                next = Some(next.map_or(job.next_at_ms, |n| n.min(job.next_at_ms)));
            }
        }
        Ok(Due {
            jobs: due,
            next_at_ms: next,
        })
    }

    /// Jobs and outbox entries waiting: the queue depth.
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
        let next = next.as_ref().map(encode).transpose()?;
        self.store
            .write("hook_record", move |txn| {
                let mut jobs = txn.open_table(HOOK_JOBS)?;
                match &next {
                    Some(next) => {
                        jobs.insert(job, next.as_slice())?;
                    }
                    None => {
                        jobs.remove(job)?;
                    }
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
                        .insert(key.as_slice(), [1u8; 32].as_slice())?;
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
                trace: None
            }]
        );
        queue
            .expand(key.clone(), vec![job(1, 0), job(2, u64::MAX)])
            .await
            .unwrap();
        // A second expansion of the same entry adds nothing.
        queue.expand(key, vec![job(3, 0)]).await.unwrap();
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
