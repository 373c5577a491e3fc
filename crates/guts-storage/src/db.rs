//! The transactional store: one redb database per node, written through a single writer
//! thread that groups concurrent writes into one durable commit.
//!
//! Why a writer thread: redb allows one write transaction at a time and each durable
//! commit costs an fsync. Sixteen callers committing separately pay sixteen fsyncs in a
//! row; the writer instead takes everything queued while the previous fsync ran, applies
//! it in one transaction and commits once, so durable throughput grows with concurrency
//! instead of collapsing. A caller's future resolves only after the commit that holds
//! its write is on disk: acknowledged means durable.
//!
//! Reads do not go through the writer: redb read transactions are MVCC snapshots and
//! cheap, so callers open them directly.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use redb::{Database, ReadTransaction, ReadableDatabase as _, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::metrics::StorageMetrics;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "state.redb";

/// Most writes folded into one commit. Bounds the latency one slow batch adds.
const MAX_BATCH: usize = 256;
/// Writes waiting for the writer. A full queue makes callers wait (backpressure).
const QUEUE_DEPTH: usize = 4096;

/// A write: runs inside a shared transaction. It must either write and return `Ok`, or
/// return `Err` — in which case the whole batch is rolled back and every write in it is
/// re-run in a transaction of its own, so one failure never takes others with it.
/// Writes are therefore `Fn`: they may run twice and must not have side effects outside
/// the transaction.
type WriteFn =
    Box<dyn Fn(&WriteTransaction) -> Result<Box<dyn FnOnce() + Send>, StoreError> + Send>;

struct Job {
    write: WriteFn,
    /// Told the outcome of the commit (the write's result was already captured).
    done: oneshot::Sender<Result<(), StoreError>>,
}

enum Message {
    Write(Job),
    /// Commit what is queued, then stop: later writes fail with `StoreError::Closed`.
    Close,
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    queue: mpsc::Sender<Message>,
    metrics: Arc<StorageMetrics>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// A write queued by [`Store::submit`], not yet known to be durable.
#[must_use = "a submitted write is only known durable once awaited"]
pub struct PendingWrite<R> {
    done: oneshot::Receiver<Result<(), StoreError>>,
    result: oneshot::Receiver<R>,
    start: Instant,
    operation: &'static str,
    metrics: Arc<StorageMetrics>,
}

impl<R> std::fmt::Debug for PendingWrite<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingWrite")
            .field("operation", &self.operation)
            .finish()
    }
}

impl<R> PendingWrite<R> {
    /// Waits until the commit holding this write is durable; its result.
    pub async fn durable(self) -> Result<R, StoreError> {
        self.done.await.map_err(|_| StoreError::Closed)??;
        let value = self.result.await.map_err(|_| StoreError::Closed)?;
        self.metrics.observe(self.operation, self.start.elapsed());
        Ok(value)
    }
}

/// Closes and joins the writer thread; returned by [`Store::open`] so shutdown can
/// wait for the last commit ("flush storage").
#[derive(Debug)]
pub struct WriterHandle {
    queue: mpsc::Sender<Message>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WriterHandle {
    /// Commits every write queued so far, stops the writer and waits for it. Writes
    /// attempted afterwards fail with [`StoreError::Closed`]. Blocking: call it from a
    /// blocking context.
    pub fn join(mut self) {
        // try_send rather than blocking_send, which refuses to run inside a runtime.
        while let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(Message::Close) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("store writer thread panicked");
        }
    }
}

/// The page cache of [`Store::open`].
pub const DEFAULT_PAGE_CACHE_BYTES: usize = 32 * 1024 * 1024;

impl Store {
    /// Opens (creating if needed) the database under `data_dir` and starts the writer.
    /// redb recovers from an interrupted commit on open: the last durable commit is what
    /// is seen, never a half-applied one.
    pub fn open(
        data_dir: &Path,
        metrics: Arc<StorageMetrics>,
    ) -> Result<(Store, WriterHandle), StoreError> {
        Self::open_sized(data_dir, metrics, DEFAULT_PAGE_CACHE_BYTES)
    }

    /// [`Store::open`] with `page_cache` bytes of redb's page cache (redb's own
    /// default, 1 GiB, would make the node's memory grow with the database).
    pub fn open_sized(
        data_dir: &Path,
        metrics: Arc<StorageMetrics>,
        page_cache: usize,
    ) -> Result<(Store, WriterHandle), StoreError> {
        let path = data_dir.join(DB_FILE);
        let db = Database::builder()
            .set_cache_size(page_cache)
            .create(&path)
            .map_err(|e| StoreError::Open {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let db = Arc::new(db);
        crate::schema::create_tables(&db)?;
        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        let writer_queue = queue.clone();
        let writer_db = db.clone();
        let writer_metrics = metrics.clone();
        let thread = std::thread::Builder::new()
            .name("guts-store-writer".to_string())
            .spawn(move || writer_loop(&writer_db, rx, &writer_metrics))
            .map_err(|e| StoreError::Open {
                path: path.clone(),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        Ok((
            Store {
                db,
                queue,
                metrics,
                path,
            },
            WriterHandle {
                queue: writer_queue,
                thread: Some(thread),
            },
        ))
    }

    pub fn metrics(&self) -> &Arc<StorageMetrics> {
        &self.metrics
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db.begin_read()?)
    }

    /// Runs `write` in the next group commit and returns its result once that commit is
    /// durable. See [`WriteFn`] for the contract on `write`.
    pub async fn write<R, F>(&self, operation: &'static str, write: F) -> Result<R, StoreError>
    where
        F: Fn(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.submit(operation, write).await?.durable().await
    }

    /// Queues `write` for the next group commit and returns once it is queued; the
    /// returned [`PendingWrite`] resolves when the commit is durable.
    ///
    /// Writes commit in the order they were submitted (one queue, one writer, batches
    /// in order), so a caller that submits under a lock and waits for durability after
    /// releasing it keeps its writes ordered while letting the next ones join the same
    /// commit: how appends to one repository share an fsync.
    pub async fn submit<R, F>(
        &self,
        operation: &'static str,
        write: F,
    ) -> Result<PendingWrite<R>, StoreError>
    where
        F: Fn(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let start = Instant::now();
        let (result_tx, result_rx) = oneshot::channel::<R>();
        let result_tx = Arc::new(std::sync::Mutex::new(Some(result_tx)));
        let job_write: WriteFn = Box::new(move |txn| {
            let value = write(txn)?;
            let slot = result_tx.clone();
            // Delivered only after the commit succeeded, by the writer.
            Ok(Box::new(move || {
                if let Ok(mut guard) = slot.lock()
                    && let Some(tx) = guard.take()
                {
                    let _ = tx.send(value);
                }
            }))
        });
        let (done_tx, done_rx) = oneshot::channel();
        self.queue
            .send(Message::Write(Job {
                write: job_write,
                done: done_tx,
            }))
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(PendingWrite {
            done: done_rx,
            result: result_rx,
            start,
            operation,
            metrics: self.metrics.clone(),
        })
    }

    /// Runs `write` in a transaction of its own on the calling thread, bypassing the
    /// writer's group commit, and returns once it is durable. For start-up migrations
    /// only: it blocks (redb's write lock, which the writer may hold, then an fsync).
    pub(crate) fn write_blocking<R>(
        &self,
        write: impl FnOnce(&WriteTransaction) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let txn = self.db.begin_write()?;
        match write(&txn) {
            Ok(value) => {
                txn.commit()?;
                Ok(value)
            }
            Err(e) => {
                let _ = txn.abort();
                Err(e)
            }
        }
    }

    /// Whether a durable write goes through right now; the readiness check.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.write("probe", |txn| {
            let mut table = txn.open_table(crate::schema::META)?;
            table.insert("probe", b"ok".as_slice())?;
            Ok(())
        })
        .await
    }
}

fn writer_loop(db: &Database, mut rx: mpsc::Receiver<Message>, metrics: &StorageMetrics) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut closing = false;
    while !closing {
        match rx.blocking_recv() {
            Some(Message::Write(job)) => batch.push(job),
            Some(Message::Close) | None => closing = true,
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Message::Write(job)) => batch.push(job),
                Ok(Message::Close) => closing = true,
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        metrics.batch_size.observe(batch.len() as f64);
        if let Err(e) = commit_batch(db, &batch) {
            if batch.len() == 1 {
                if let Some(job) = batch.pop() {
                    let _ = job.done.send(Err(e));
                }
            } else {
                // Isolate the failure: every write gets its own transaction.
                for job in batch.drain(..) {
                    let outcome = commit_batch(db, std::slice::from_ref(&job));
                    let _ = job.done.send(outcome);
                }
            }
        } else {
            for job in batch.drain(..) {
                let _ = job.done.send(Ok(()));
            }
        }
        batch.clear();
    }
}

/// One transaction for all of `jobs`; on success, delivers each job's result.
fn commit_batch(db: &Database, jobs: &[Job]) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    let mut deliveries = Vec::with_capacity(jobs.len());
    for job in jobs {
        match (job.write)(&txn) {
            Ok(deliver) => deliveries.push(deliver),
            Err(e) => {
                let _ = txn.abort();
                return Err(e);
            }
        }
    }
    txn.commit()?;
    for deliver in deliveries {
        deliver();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::META;

    fn open() -> (tempfile::TempDir, Store, WriterHandle) {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(StorageMetrics::register(&mut registry));
        let (store, writer) = Store::open(dir.path(), metrics).unwrap();
        (dir, store, writer)
    }

    #[tokio::test]
    async fn concurrent_writes_are_grouped_and_all_durable() {
        let (dir, store, writer) = open();
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .write("test", move |txn| {
                        let mut t = txn.open_table(META)?;
                        t.insert(format!("k{i}").as_str(), i.to_be_bytes().as_slice())?;
                        Ok(i)
                    })
                    .await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap().unwrap(), i as u32);
        }
        drop(store);
        writer.join();
        // Reopen: everything acknowledged is there.
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(StorageMetrics::register(&mut registry));
        let (store, _w) = Store::open(dir.path(), metrics).unwrap();
        let read = store.read().unwrap();
        let t = read.open_table(META).unwrap();
        for i in 0..200u32 {
            let v = t.get(format!("k{i}").as_str()).unwrap().unwrap();
            assert_eq!(v.value(), i.to_be_bytes().as_slice());
        }
    }

    #[tokio::test]
    async fn join_flushes_then_later_writes_are_refused() {
        let (_dir, store, writer) = open();
        store
            .write("test", |txn| {
                txn.open_table(META)?.insert("before", b"1".as_slice())?;
                Ok(())
            })
            .await
            .unwrap();
        writer.join();
        let after = store
            .write("test", |txn| {
                txn.open_table(META)?.insert("after", b"1".as_slice())?;
                Ok(())
            })
            .await;
        assert!(matches!(after, Err(StoreError::Closed)), "{after:?}");
        let read = store.read().unwrap();
        let t = read.open_table(META).unwrap();
        assert!(t.get("before").unwrap().is_some());
        assert!(t.get("after").unwrap().is_none());
    }

    #[tokio::test]
    async fn a_failing_write_does_not_take_its_batch_down() {
        let (_dir, store, _writer) = open();
        let mut tasks = Vec::new();
        for i in 0..50u32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .write("test", move |txn| {
                        let mut t = txn.open_table(META)?;
                        t.insert(format!("x{i}").as_str(), b"v".as_slice())?;
                        if i % 7 == 0 {
                            return Err(StoreError::Corrupt(format!("write {i} refuses")));
                        }
                        Ok(())
                    })
                    .await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let outcome = t.await.unwrap();
            assert_eq!(outcome.is_err(), i % 7 == 0, "write {i}: {outcome:?}");
        }
        let read = store.read().unwrap();
        let t = read.open_table(META).unwrap();
        for i in 0..50u32 {
            let present = t.get(format!("x{i}").as_str()).unwrap().is_some();
            assert_eq!(present, i % 7 != 0, "write {i} rolled back iff it failed");
        }
    }
}
