//! Thread rows: every issue and pull request of a repository kept as a row of its own
//! (`THREAD_ROWS`: repository id ‖ number, big-endian → [`Thread::encode_row`]), with
//! the repository's labels and the version the rows were written at
//! (`THREAD_ROWS_AT`). Issue reads of a repository whose state is not in memory are
//! served from them (see [`Repositories::thread_view`]) instead of loading the state:
//! one range read of rows a few hundred bytes each, in number order, where a load
//! decodes every comment, review, check and hook too and evicts another repository.
//!
//! Rows are derived data, like the summary: written in the transaction that stores the
//! operations they reflect, by the delta between the state the write started from and
//! the state it made (the fold's maps share what did not change, so the delta costs
//! what changed, not the repository's size). A delta is applied only onto rows written
//! at exactly the state it starts from; otherwise (rows never written, as after an
//! upgrade, or written at another state) every row of the repository is rewritten. A
//! reader uses rows only when their version is at least the version the node holds
//! in memory for the repository; anything else is served from the state. So rows can
//! be stale or missing, never wrong.

use std::sync::{Arc, OnceLock};

use guts_core::{Collab, OpId, RepoId, RepoState, Thread};
use imbl::OrdMap;
use imbl::ordmap::DiffItem;
use redb::ReadableTable as _;

use super::{RepoView, Repositories};
use crate::error::StoreError;
use crate::schema::{THREAD_ROWS, THREAD_ROWS_AT};

/// Most repositories waiting for their rows to be rewritten (see
/// [`Repositories::find_threads`]); more are asked for again at their next read.
pub(super) const MAX_ROWS_WANTED: usize = 256;

/// Most issues and pull requests of a repository read from its rows. A view from rows
/// is built per request and costs O(threads); a loaded state costs that once and stays
/// while used, so a larger repository is loaded instead, as before rows. (Eight in
/// unit tests, which cross it.)
pub(super) const MAX_ROWS_THREADS: u64 = if cfg!(test) { 8 } else { 4096 };

/// Which threads a view from rows holds ([`Repositories::find_threads`]).
#[derive(Debug, Clone, Copy)]
pub enum RowSelect<'a> {
    /// Every thread.
    All,
    /// The thread of this number, if there is one: a point read.
    One(u64),
    /// The threads a list may show: open as `open` says (when given) and carrying every
    /// label of `labels` (lowercase keys), judged on the rows' bytes before decoding
    /// ([`Thread::row_may_match`]). A pre-selection: the caller filters again.
    Matching {
        open: Option<bool>,
        labels: &'a [String],
    },
}

/// The key of thread `number` of repository `id`.
fn row_key(id: RepoId, number: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(id.as_bytes());
    key[32..].copy_from_slice(&number.to_be_bytes());
    key
}

/// What one write does to a repository's rows (see the module documentation).
pub(super) struct RowsUpdate {
    /// The version of the state the delta starts from; `None`: rewrite every row.
    base: Option<u64>,
    /// Rewrite every row even if the stored ones are at this version already (they
    /// were found damaged).
    repair: bool,
    /// The state written, whose rows these become.
    view: Arc<RepoView>,
    /// Numbers whose rows go (applied first), then rows written.
    removed: Vec<u64>,
    written: Vec<(u64, Vec<u8>)>,
}

fn version(v: usize) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

impl RowsUpdate {
    /// From the threads `base` of the state at version `base_version` to `view`.
    pub(super) fn between(
        base: Option<(usize, &OrdMap<OpId, Thread>)>,
        view: &Arc<RepoView>,
    ) -> RowsUpdate {
        let mut update = RowsUpdate {
            base: None,
            repair: false,
            view: view.clone(),
            removed: Vec::new(),
            written: Vec::new(),
        };
        let Some((base_version, threads)) = base else {
            return update;
        };
        update.base = Some(version(base_version));
        for item in threads.diff(&view.state.collab.threads) {
            match item {
                DiffItem::Add(id, thread) => {
                    update.written.push((thread.number, thread.encode_row(id)));
                }
                DiffItem::Update { old, new } => {
                    if old.1.number != new.1.number {
                        update.removed.push(old.1.number);
                    }
                    update.written.push((new.1.number, new.1.encode_row(new.0)));
                }
                DiffItem::Remove(_, thread) => update.removed.push(thread.number),
            }
        }
        update
    }

    /// Writes the rows in `txn`, which stores the operations that made the state.
    pub(super) fn write(&self, txn: &redb::WriteTransaction) -> Result<(), StoreError> {
        let id = self.view.id;
        let mut at = txn.open_table(THREAD_ROWS_AT)?;
        let stored = at
            .get(id.as_bytes().as_slice())?
            .and_then(|v| v.value().get(..8).map(<[u8; 8]>::try_from))
            .and_then(Result::ok)
            .map(u64::from_be_bytes);
        // A rewrite of rows already at this state or a later one would only undo it.
        if self.base.is_none()
            && !self.repair
            && stored.is_some_and(|s| s >= version(self.view.version))
        {
            return Ok(());
        }
        let mut rows = txn.open_table(THREAD_ROWS)?;
        match self.base {
            Some(base) if stored == Some(base) => {
                for number in &self.removed {
                    rows.remove(row_key(id, *number).as_slice())?;
                }
                for (number, row) in &self.written {
                    rows.insert(row_key(id, *number).as_slice(), row.as_slice())?;
                }
            }
            _ => write_all(&mut rows, id, &self.view.state)?,
        }
        let mut marker = version(self.view.version).to_be_bytes().to_vec();
        marker.extend_from_slice(&self.view.state.collab.encode_labels());
        at.insert(id.as_bytes().as_slice(), marker.as_slice())?;
        Ok(())
    }
}

/// Replaces every row of repository `id` with the threads of `state`.
fn write_all(
    rows: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    id: RepoId,
    state: &RepoState,
) -> Result<(), StoreError> {
    let (low, high) = (row_key(id, 0), row_key(id, u64::MAX));
    rows.retain_in(low.as_slice()..=high.as_slice(), |_, _| false)?;
    for (thread_id, thread) in state.collab.threads.iter() {
        rows.insert(
            row_key(id, thread.number).as_slice(),
            thread.encode_row(thread_id).as_slice(),
        )?;
    }
    Ok(())
}

impl Repositories {
    /// The repository `owner/name` for reading its issues and pull requests (as
    /// [`Repositories::find`] finds it): its state when in memory; else a view from
    /// its thread rows when they are current (a cache miss, timed like a load, that
    /// loads nothing); else its state, loaded, and its rows queued to be rewritten. A
    /// repository of more than [`MAX_ROWS_THREADS`] threads is always loaded, unless
    /// `select` names the one thread wanted ([`RowSelect::One`]: a point read whatever
    /// the repository's size). A view from rows holds the repository's header, labels
    /// and the threads `select` picks, nothing else (no comments, reviews, checks or
    /// hooks): for rendering issues.
    pub fn find_threads(
        &self,
        owner: &str,
        name: &str,
        select: RowSelect<'_>,
    ) -> Option<Arc<RepoView>> {
        let (id, entry) = self.entry_by_name(owner, name)?;
        if entry.peek().is_none()
            && (matches!(select, RowSelect::One(_))
                || entry.summary().counts.total() <= MAX_ROWS_THREADS)
        {
            let started = std::time::Instant::now();
            match self.view_from_rows(id, &entry.summary(), select) {
                Ok(Some(view)) => {
                    let _ = self.miss();
                    self.opened(started);
                    return Some(view);
                }
                Ok(None) => {
                    let view = self.view_of(id, &entry)?;
                    self.want_rows(id, false);
                    return Some(view);
                }
                Err(e) => {
                    tracing::warn!(repo = %id, error = %e, "thread rows unreadable; loading the state");
                    self.want_rows(id, true);
                }
            }
        }
        self.view_of(id, &entry)
    }

    /// Queues repository `id`'s rows to be rewritten by the next pass of the writer of
    /// checkpoints ([`Repositories::write_wanted_rows`]); `repair`: even if they are
    /// at its version (they were found damaged).
    fn want_rows(&self, id: RepoId, repair: bool) {
        if let Ok(mut wanted) = self.cache.rows_wanted.lock()
            && wanted.len() < MAX_ROWS_WANTED
        {
            match wanted.iter_mut().find(|(queued, _)| *queued == id) {
                Some((_, queued)) => *queued |= repair,
                None => wanted.push((id, repair)),
            }
            self.cache.wanted.notify_one();
        }
    }

    /// Rewrites the rows of the repositories queued by [`Repositories::find_threads`]
    /// whose state is still in memory, in one transaction. Returns how many.
    pub(super) async fn write_wanted_rows(&self) -> Result<usize, StoreError> {
        let ids = match self.cache.rows_wanted.lock() {
            Ok(mut wanted) => std::mem::take(&mut *wanted),
            Err(_) => return Ok(0),
        };
        let updates: Vec<RowsUpdate> = ids
            .into_iter()
            .filter_map(|(id, repair)| Some((self.loaded_view(id)?, repair)))
            .map(|(view, repair)| RowsUpdate {
                repair,
                ..RowsUpdate::between(None, &view)
            })
            .collect();
        if updates.is_empty() {
            return Ok(0);
        }
        let written = updates.len();
        self.store
            .write("thread_rows", move |txn| {
                for update in &updates {
                    update.write(txn)?;
                }
                Ok(())
            })
            .await?;
        Ok(written)
    }

    /// Whether repository `id`'s state is in memory.
    #[cfg(test)]
    fn peek_loaded(&self, id: RepoId) -> bool {
        self.loaded_view(id).is_some()
    }

    /// Repository `id`'s state if it is in memory.
    fn loaded_view(&self, id: RepoId) -> Option<Arc<RepoView>> {
        let entry = self.index.read().ok()?.by_id.get(&id)?.clone();
        entry.peek()
    }

    /// Repository `id`'s issues and pull requests as a view for reading them, from its
    /// thread rows when its state is not in memory and the rows are current; `None`
    /// when they are not (the caller loads the state). The view holds the header, the
    /// labels and the threads, nothing else: it renders issues and is never published,
    /// cached or written onto.
    pub(super) fn view_from_rows(
        &self,
        id: RepoId,
        summary: &Arc<super::summary::Summary>,
        select: RowSelect<'_>,
    ) -> Result<Option<Arc<RepoView>>, StoreError> {
        let read = self.store.read()?;
        let Some(marker) = read
            .open_table(THREAD_ROWS_AT)?
            .get(id.as_bytes().as_slice())?
        else {
            return Ok(None);
        };
        let marker = marker.value();
        let Some((at, labels)) = marker.split_first_chunk::<8>() else {
            return Err(StoreError::Corrupt(format!(
                "repository {id}: thread rows marker"
            )));
        };
        if u64::from_be_bytes(*at) < version(summary.version) {
            return Ok(None);
        }
        let labels = Collab::decode_labels(labels)
            .map_err(|e| StoreError::Corrupt(format!("repository {id}: labels row: {e}")))?;
        let table = read.open_table(THREAD_ROWS)?;
        // Rows come in number order; the maps are built in key order (see below).
        let mut decoded: Vec<(OpId, Thread)> = Vec::new();
        let mut add = |value: &[u8]| -> Result<(), StoreError> {
            let row = Thread::decode_row(value)
                .map_err(|e| StoreError::Corrupt(format!("repository {id}: thread row: {e}")))?;
            decoded.push(row);
            Ok(())
        };
        let damaged = |e| StoreError::Corrupt(format!("repository {id}: thread row: {e}"));
        let (low, high) = (row_key(id, 0), row_key(id, u64::MAX));
        match select {
            RowSelect::One(number) => {
                if let Some(value) = table.get(row_key(id, number).as_slice())? {
                    add(value.value())?;
                }
            }
            RowSelect::All => {
                for row in table.range(low.as_slice()..=high.as_slice())? {
                    add(row?.1.value())?;
                }
            }
            RowSelect::Matching { open, labels } => {
                for row in table.range(low.as_slice()..=high.as_slice())? {
                    let value = row?.1;
                    if Thread::row_may_match(value.value(), open, labels).map_err(damaged)? {
                        add(value.value())?;
                    }
                }
            }
        }
        // Numbers ascend already. Thread ids do not: inserted at random places, each
        // insert would shift half a node of threads (hundreds of bytes each), so they
        // are inserted in id order, always at the end.
        let numbers: OrdMap<u64, OpId> = decoded.iter().map(|(i, t)| (t.number, *i)).collect();
        let mut order: Vec<(OpId, usize)> = decoded
            .iter()
            .enumerate()
            .map(|(at, (thread_id, _))| (*thread_id, at))
            .collect();
        order.sort_unstable();
        let mut slots: Vec<Option<Thread>> = decoded.into_iter().map(|(_, t)| Some(t)).collect();
        let mut threads = OrdMap::new();
        for (thread_id, at) in order {
            if let Some(thread) = slots.get_mut(at).and_then(Option::take) {
                threads.insert(thread_id, thread);
            }
        }
        let header = &summary.header;
        let state = RepoState {
            meta: header.meta.clone(),
            deleted: header.deleted,
            access: header.access.clone(),
            refs: header.refs.clone(),
            conflicts: header.conflicts.clone(),
            collab: Collab {
                threads,
                numbers,
                labels,
                ..Collab::default()
            },
            ..RepoState::default()
        };
        Ok(Some(Arc::new(RepoView {
            id,
            state,
            updated_ms: summary.latest.wall_ms,
            version: summary.version,
            heads: summary.heads.clone(),
            summary: summary.clone(),
            digest: OnceLock::new(),
        })))
    }
}

/// Fails unless repository `id`'s rows are current and hold exactly its state's
/// threads, numbers, labels and header.
#[cfg(test)]
pub(crate) fn assert_rows_match(repos: &Repositories, id: RepoId) {
    let full = repos.get(id).unwrap();
    let summary = full.summary.clone();
    let rows = repos
        .view_from_rows(id, &summary, RowSelect::All)
        .unwrap()
        .expect("thread rows are current");
    for (number, thread_id) in full.state.collab.numbers.iter() {
        let one = repos
            .view_from_rows(id, &summary, RowSelect::One(*number))
            .unwrap()
            .expect("thread rows are current");
        assert_eq!(
            one.state.collab.threads.get(thread_id),
            full.state.collab.threads.get(thread_id)
        );
        assert_eq!(one.state.collab.threads.len(), 1);
    }
    assert_eq!(rows.state.collab.threads, full.state.collab.threads);
    assert_eq!(rows.state.collab.numbers, full.state.collab.numbers);
    assert_eq!(rows.state.collab.labels, full.state.collab.labels);
    assert_eq!(rows.state.header(), full.state.header());
}

#[cfg(test)]
mod tests {
    use guts_core::{Assignment, Keypair, LabelDef, Payload, ThreadEdit};

    use super::*;
    use crate::repos::{CheckpointPass, RefCommand};
    use crate::testing::{commit, open_repos};

    fn issue(title: &str, labels: &[&str]) -> Payload {
        Payload::OpenIssue {
            number: 0,
            title: title.into(),
            body: format!("{title} body"),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            assignees: vec![],
        }
    }

    /// `alice/rows` with issue 1 and a comment on it, and `alice/other`, in a new store
    /// at `dir`.
    async fn one_issue_with_a_comment(
        dir: &std::path::Path,
    ) -> (Repositories, crate::WriterHandle, Keypair, RepoId, OpId) {
        let alice = Keypair::generate();
        let (repos, writer, _) = open_repos(dir);
        let id = repos
            .create(&alice, "alice", "rows", "", false, "main")
            .await
            .unwrap()
            .id;
        assert_rows_match(&repos, id);
        repos
            .create(&alice, "alice", "other", "", false, "main")
            .await
            .unwrap();
        let (_, one) = repos
            .append_checked(id, &alice, issue("one", &["bug"]), |_| Ok(()))
            .await
            .unwrap();
        let comment = Payload::Comment {
            thread: one,
            body: "c".into(),
        };
        repos.append(id, &alice, comment).await.unwrap();
        (repos, writer, alice, id, one)
    }

    /// Evicts `alice/rows` by reading `alice/other` under a budget of nothing (the
    /// state used last always stays).
    fn evict(repos: &Repositories) {
        repos.set_cache_budget(0);
        assert!(repos.find("alice", "other").is_some());
        repos.set_cache_budget(0);
    }

    /// Whether a read of the repository's issues was served from its rows (a view
    /// from rows holds no comments).
    fn served_from_rows(repos: &Repositories) -> bool {
        let view = repos.find_threads("alice", "rows", RowSelect::All).unwrap();
        view.state.collab.comments.is_empty()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rows_follow_every_kind_of_write_and_serve_reads_of_evicted_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let bob = Keypair::generate();
        let id = {
            let (repos, writer, alice, id, one) = one_issue_with_a_comment(dir.path()).await;
            let (_, two) = repos
                .append_checked(id, &alice, issue("two", &[]), |_| Ok(()))
                .await
                .unwrap();
            assert_rows_match(&repos, id);
            let writes = [
                Payload::Comment {
                    thread: one,
                    body: "a comment".into(),
                },
                Payload::LabelThread {
                    thread: two,
                    add: vec!["bug".into(), "ui".into()],
                    remove: vec![],
                },
                Payload::AssignThread {
                    thread: one,
                    as_: Assignment::Assignee,
                    add: vec![alice.public()],
                    remove: vec![],
                },
                Payload::EditThread {
                    thread: two,
                    edit: ThreadEdit {
                        title: Some("two, renamed".into()),
                        open: Some(false),
                        ..ThreadEdit::default()
                    },
                },
                // A label renamed changes no thread row, only the labels.
                Payload::SetLabel {
                    name: "bug".into(),
                    label: Some(LabelDef {
                        name: "Defect".into(),
                        color: "ff0000".into(),
                        description: "broken".into(),
                    }),
                },
                Payload::SetRole {
                    user: bob.public(),
                    role: Some(guts_core::Role::Write),
                },
            ];
            for payload in writes {
                repos.append(id, &alice, payload).await.unwrap();
                assert_rows_match(&repos, id);
            }
            // A push, through its own write path.
            let git = repos.git().open_repo(&id.to_string()).unwrap();
            let tip = commit(git.gix(), &[], "first");
            let pushed = repos
                .update_refs(
                    id,
                    &alice,
                    vec![RefCommand {
                        name: "refs/heads/main".into(),
                        old: None,
                        new: Some(tip),
                    }],
                    false,
                )
                .await
                .unwrap();
            assert!(pushed.iter().all(Result::is_ok), "{pushed:?}");
            assert_rows_match(&repos, id);

            // Evicted, the repository's issues are read from its rows, alike.
            evict(&repos);
            assert!(served_from_rows(&repos));
            let sparse = repos.find_threads("alice", "rows", RowSelect::All).unwrap();
            let one = repos
                .find_threads("alice", "rows", RowSelect::One(2))
                .unwrap();
            assert_eq!(one.state.collab.threads.len(), 1);
            assert_eq!(one.state.collab.numbers.get(&2), Some(&two));
            let none = repos
                .find_threads("alice", "rows", RowSelect::One(99))
                .unwrap();
            assert!(none.state.collab.threads.is_empty());
            // A list's pre-selection keeps exactly what its filter keeps (read from
            // rows: the state, loaded for comparison, is evicted again).
            let full = repos.get(id).unwrap();
            evict(&repos);
            let label_sets: [&[String]; 3] =
                [&[], &["defect".into()], &["ui".into(), "defect".into()]];
            for open in [None, Some(true), Some(false)] {
                for labels in label_sets {
                    let picked = repos
                        .find_threads("alice", "rows", RowSelect::Matching { open, labels })
                        .unwrap();
                    let expected: Vec<&OpId> = full
                        .state
                        .collab
                        .threads
                        .iter()
                        .filter(|(_, t)| {
                            open.is_none_or(|o| t.open == o)
                                && labels.iter().all(|l| t.labels.contains(l))
                        })
                        .map(|(thread_id, _)| thread_id)
                        .collect();
                    let got: Vec<&OpId> = picked.state.collab.threads.keys().collect();
                    assert_eq!(got, expected, "{open:?} {labels:?}");
                }
            }
            assert!(
                full.state
                    .collab
                    .threads
                    .values()
                    .any(|t| t.labels.contains("defect"))
            );
            assert_eq!(sparse.state.collab.threads.len(), 2);
            assert_eq!(
                sparse.state.role(&bob.public()),
                Some(guts_core::Role::Write)
            );
            assert_eq!(sparse.state.collab.labels["defect"].name, "Defect");
            repos
                .write_checkpoints(CheckpointPass::Final)
                .await
                .unwrap();
            drop(repos);
            writer.join();
            id
        };
        // Written with the operations, they are current after a restart.
        let (repos, _writer, _) = open_repos(dir.path());
        assert!(served_from_rows(&repos));
        assert_rows_match(&repos, id);
    }

    /// A repository too large to rebuild from rows per request is loaded and kept,
    /// so a client reading a large repository's issues again and again costs one load.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_repository_past_the_rows_limit_is_loaded_instead() {
        let dir = tempfile::tempdir().unwrap();
        let (repos, _writer, alice, id, _) = one_issue_with_a_comment(dir.path()).await;
        for i in 1..MAX_ROWS_THREADS {
            repos
                .append(id, &alice, issue(&format!("i{i}"), &[]))
                .await
                .unwrap();
        }
        evict(&repos);
        assert!(served_from_rows(&repos), "at the limit");
        repos
            .append(id, &alice, issue("one more", &[]))
            .await
            .unwrap();
        assert_rows_match(&repos, id);
        evict(&repos);
        assert!(!served_from_rows(&repos), "past the limit");
        // Loaded and kept: the next read is a hit.
        assert!(
            repos
                .find_threads("alice", "rows", RowSelect::All)
                .is_some()
        );
        assert!(repos.peek_loaded(id));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn missing_or_damaged_rows_are_never_used_and_are_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let (repos, _writer, alice, id, _) = one_issue_with_a_comment(dir.path()).await;
        evict(&repos);
        assert!(served_from_rows(&repos));

        // As after an upgrade from a version without rows: the state is loaded.
        repos
            .store
            .write("test", move |txn| {
                txn.open_table(THREAD_ROWS_AT)?
                    .remove(id.as_bytes().as_slice())?;
                Ok(())
            })
            .await
            .unwrap();
        repos.set_cache_budget(1 << 30);
        assert!(!served_from_rows(&repos));
        // The writer of checkpoints rewrites them from the loaded state.
        repos
            .write_checkpoints(CheckpointPass::Periodic { max_bytes: 0 })
            .await
            .unwrap();
        assert_rows_match(&repos, id);
        evict(&repos);
        assert!(served_from_rows(&repos));

        // A damaged row is an error the reader survives: the state serves instead.
        repos
            .store
            .write("test", move |txn| {
                txn.open_table(THREAD_ROWS)?
                    .insert(row_key(id, 1).as_slice(), [1u8, 2, 3].as_slice())?;
                Ok(())
            })
            .await
            .unwrap();
        repos.set_cache_budget(1 << 30);
        let view = repos.find_threads("alice", "rows", RowSelect::All).unwrap();
        assert_eq!(view.state.collab.comments.len(), 1);
        assert!(
            repos
                .view_from_rows(id, &view.summary, RowSelect::All)
                .is_err()
        );
        // The next pass of the writer of checkpoints repairs them; writes go on from there.
        repos
            .write_checkpoints(CheckpointPass::Periodic { max_bytes: 0 })
            .await
            .unwrap();
        repos.append(id, &alice, issue("two", &[])).await.unwrap();
        assert_rows_match(&repos, id);
    }
}
