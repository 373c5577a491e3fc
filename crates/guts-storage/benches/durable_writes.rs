//! Durable write benchmark for guts-storage.
//!
//! Measures, on the real filesystem, what an acknowledged (fsynced) write costs:
//! the raw disk (4 KiB write + fdatasync), a trivial store write (group commit only),
//! a small signed repository operation (`Repositories::append` of a `SetRole`), a
//! repository creation (`Repositories::create`: git init + fsync of the tree + commit)
//! and a user creation (`Accounts::create_user`). Each scenario runs in a fresh
//! temporary directory, with 1 and 16 tasks in a closed loop on a tokio multi-thread
//! runtime; latency is the wall time around each awaited operation.
//!
//! Run: `cargo bench -p guts-storage --bench durable_writes`. The temporary directories
//! go under `$GUTS_BENCH_DIR` if set, else the system temporary directory.

use std::future::Future;
use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use guts_core::{Keypair, Payload, RepoId, Role};
use guts_storage::{Accounts, GitRepos, Repositories, Sealer, StorageMetrics, Store, WriterHandle};
use prometheus_client::registry::Registry;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

/// Small durable operations per scenario (appends, user creations, store writes).
const SMALL_OPS: usize = 2_000;
/// Appends to the single repository (its fold, and so each append, grows with this).
const SINGLE_REPO_OPS: usize = 800;
/// Repository creations per scenario.
const CREATES: usize = 320;
/// Raw fsync samples.
const FSYNCS: usize = 200;
/// Repositories the per-repository append scenarios spread over.
const APPEND_REPOS: usize = 16;
/// Window (operations already in the repository) for the append growth table.
const GROWTH_WINDOW: usize = 100;

/// Latencies of one scenario and the commit batches it caused.
struct Sample {
    name: String,
    concurrency: usize,
    wall: Duration,
    /// Every operation's latency, in issue order per task (tasks concatenated).
    latencies: Vec<Duration>,
    /// (commits, writes) the store's writer made during the measured phase.
    batches: Option<(u64, f64)>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Sample {
    fn row(&self) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        let max = sorted.last().copied().unwrap_or_default();
        let (commits, batch) = match self.batches {
            Some((commits, writes)) if commits > 0 => (
                commits.to_string(),
                format!("{:.2}", writes / commits as f64),
            ),
            _ => ("-".to_string(), "-".to_string()),
        };
        format!(
            "{:<38} {:>4} {:>6} {:>8.2} {:>9.0} {:>8.3} {:>8.3} {:>8.3} {:>7} {:>6}",
            self.name,
            self.concurrency,
            n,
            self.wall.as_secs_f64(),
            n as f64 / self.wall.as_secs_f64(),
            ms(percentile(&sorted, 50.0)),
            ms(percentile(&sorted, 99.0)),
            ms(max),
            commits,
            batch,
        )
    }
}

fn header() -> String {
    format!(
        "{:<38} {:>4} {:>6} {:>8} {:>9} {:>8} {:>8} {:>8} {:>7} {:>6}",
        "scenario",
        "conc",
        "ops",
        "wall s",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "commits",
        "batch"
    )
}

/// A fresh data directory with an open store.
struct Env {
    dir: tempfile::TempDir,
    store: Store,
    writer: WriterHandle,
    /// Holds the storage metrics; read back through the text encoding.
    registry: Registry,
}

impl Env {
    fn open(base: &Path) -> Result<Env> {
        let dir = tempfile::Builder::new()
            .prefix("guts-bench-")
            .tempdir_in(base)?;
        let mut registry = Registry::default();
        let metrics = Arc::new(StorageMetrics::register(&mut registry));
        let (store, writer) = Store::open(dir.path(), metrics.clone())?;
        Ok(Env {
            dir,
            store,
            writer,
            registry,
        })
    }

    /// (commits, writes) so far, from the `storage_commit_batch_size` histogram's
    /// `_count` and `_sum` as exported (its accessors are test-only).
    fn batch_counters(&self) -> (u64, f64) {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            return (0, 0.0);
        }
        let value = |series: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (
            value("storage_commit_batch_size_count") as u64,
            value("storage_commit_batch_size_sum"),
        )
    }

    /// Flushes and stops the writer; the directory is removed when dropped.
    fn close(self) {
        let Env {
            dir, store, writer, ..
        } = self;
        drop(store);
        tokio::task::block_in_place(|| writer.join());
        drop(dir);
    }
}

/// Runs `total` operations split over `concurrency` tasks, each in a closed loop.
/// `op(task, i)` does its preparation synchronously and returns the future to time.
async fn closed_loop<F, Fut>(
    name: &str,
    env: Option<&Env>,
    concurrency: usize,
    total: usize,
    op: F,
) -> Result<Sample>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let per_task = total / concurrency;
    let before = env.map(Env::batch_counters);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_task);
            for i in 0..per_task {
                let fut = op(task, i);
                let t = Instant::now();
                fut.await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, BoxError>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(per_task * concurrency);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let wall = start.elapsed();
    let batches = match (env, before) {
        (Some(env), Some((c0, w0))) => {
            let (c1, w1) = env.batch_counters();
            Some((c1 - c0, w1 - w0))
        }
        _ => None,
    };
    Ok(Sample {
        name: name.to_string(),
        concurrency,
        wall,
        latencies,
        batches,
    })
}

/// 4 KiB + fdatasync, `FSYNCS` times: rewriting one block, or appending to the file.
fn raw_fsync(base: &Path, append: bool) -> Result<Sample> {
    let dir = tempfile::Builder::new()
        .prefix("guts-bench-fsync-")
        .tempdir_in(base)?;
    let mut file = std::fs::File::create(dir.path().join("probe"))?;
    let block = [0x5au8; 4096];
    // One warm-up so the rewrite case starts with an allocated block.
    file.write_all(&block)?;
    file.sync_all()?;
    let mut latencies = Vec::with_capacity(FSYNCS);
    let start = Instant::now();
    for _ in 0..FSYNCS {
        let t = Instant::now();
        if !append {
            file.seek(SeekFrom::Start(0))?;
        }
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.push(t.elapsed());
    }
    Ok(Sample {
        name: if append {
            "raw: append 4 KiB + fdatasync".to_string()
        } else {
            "raw: rewrite 4 KiB + fdatasync".to_string()
        },
        concurrency: 1,
        wall: start.elapsed(),
        latencies,
        batches: None,
    })
}

async fn store_probe(base: &Path, concurrency: usize) -> Result<Sample> {
    let env = Env::open(base)?;
    let store = env.store.clone();
    let sample = closed_loop(
        "store.probe (empty durable write)",
        Some(&env),
        concurrency,
        SMALL_OPS,
        move |_, _| {
            let store = store.clone();
            async move { Ok(store.probe().await?) }
        },
    )
    .await?;
    env.close();
    Ok(sample)
}

/// Repositories over `env`, with `count` repositories created by one owner each.
async fn repos_with(
    env: &Env,
    count: usize,
) -> Result<(Arc<Repositories>, Vec<(RepoId, Keypair)>)> {
    // Throwaway keys sign here, with no accounts behind them.
    let repos = Arc::new(Repositories::open_with(
        env.store.clone(),
        GitRepos::open(env.dir.path())?,
        guts_storage::NameBinding::Unchecked,
    )?);
    let mut made = Vec::with_capacity(count);
    for r in 0..count {
        let key = Keypair::generate();
        let view = repos
            .create(&key, &format!("owner{r}"), "bench", "", false, "main")
            .await?;
        made.push((view.id, key));
    }
    Ok((repos, made))
}

/// `SetRole` appends: with `single`, every task on one repository; otherwise
/// `APPEND_REPOS` repositories, task t on repository t (one task cycles through all).
async fn append(base: &Path, concurrency: usize, single: bool) -> Result<Sample> {
    let env = Env::open(base)?;
    let (repos, made) = repos_with(&env, if single { 1 } else { APPEND_REPOS }).await?;
    let made = Arc::new(made);
    let name = if single {
        "append SetRole, 1 repo".to_string()
    } else {
        format!(
            "append SetRole, {APPEND_REPOS} repos ({} ops each)",
            SMALL_OPS / APPEND_REPOS
        )
    };
    let total = if single { SINGLE_REPO_OPS } else { SMALL_OPS };
    let r = repos.clone();
    let sample = closed_loop(&name, Some(&env), concurrency, total, move |task, i| {
        let (id, key) = if single {
            made[0].clone()
        } else if concurrency == 1 {
            made[i % made.len()].clone()
        } else {
            made[task % made.len()].clone()
        };
        let user = Keypair::generate().public();
        let repos = r.clone();
        async move {
            repos
                .append(
                    id,
                    &key,
                    Payload::SetRole {
                        user,
                        role: Some(Role::Read),
                    },
                )
                .await?;
            Ok(())
        }
    })
    .await?;
    drop(repos);
    env.close();
    Ok(sample)
}

async fn create_repos(base: &Path, concurrency: usize) -> Result<(Sample, usize)> {
    let env = Env::open(base)?;
    // Throwaway keys sign here, with no accounts behind them.
    let repos = Arc::new(Repositories::open_with(
        env.store.clone(),
        GitRepos::open(env.dir.path())?,
        guts_storage::NameBinding::Unchecked,
    )?);
    let keys: Arc<Vec<Keypair>> = Arc::new((0..concurrency).map(|_| Keypair::generate()).collect());
    let r = repos.clone();
    let sample = closed_loop(
        "repos.create",
        Some(&env),
        concurrency,
        CREATES,
        move |task, i| {
            let repos = r.clone();
            let keys = keys.clone();
            async move {
                repos
                    .create(
                        &keys[task],
                        &format!("owner{task}"),
                        &format!("repo{i}"),
                        "benchmark repository",
                        false,
                        "main",
                    )
                    .await?;
                Ok(())
            }
        },
    )
    .await?;
    // Files one creation fsyncs (sync_tree): count them in one created repository.
    let files = repos
        .list()
        .first()
        .map(|v| count_files(&repos.git().path(&v.id.to_string())))
        .unwrap_or(0);
    drop(repos);
    env.close();
    Ok((sample, files))
}

fn count_files(dir: &PathBuf) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => 1 + count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

async fn create_users(base: &Path, concurrency: usize) -> Result<Sample> {
    let env = Env::open(base)?;
    let accounts = Accounts::new(env.store.clone(), Arc::new(Sealer::new(b"bench secret")));
    let per_task = SMALL_OPS / concurrency;
    let sample = closed_loop(
        "accounts.create_user",
        Some(&env),
        concurrency,
        SMALL_OPS,
        move |task, i| {
            let accounts = accounts.clone();
            let login = format!("user{}", task * per_task + i);
            async move {
                accounts.create_user(&login, false).await?;
                Ok(())
            }
        },
    )
    .await?;
    env.close();
    Ok(sample)
}

/// Filesystem type and device of the mount holding `path`, from /proc/self/mounts.
fn filesystem_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return "unknown".to_string();
    };
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next()?;
            let mount = fields.next()?;
            let kind = fields.next()?;
            path.starts_with(mount).then(|| {
                (
                    mount.len(),
                    format!("{kind} on {device} (mounted at {mount})"),
                )
            })
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".to_string(), |(_, s)| s)
}

fn growth_table(sample: &Sample) {
    println!();
    println!("append latency vs operations already in the repository (1 writer, 1 repository):");
    println!(
        "{:>13} {:>8} {:>8} {:>8}",
        "ops in repo", "p50 ms", "p99 ms", "max ms"
    );
    for (w, chunk) in sample.latencies.chunks(GROWTH_WINDOW).enumerate() {
        let mut sorted = chunk.to_vec();
        sorted.sort_unstable();
        println!(
            "{:>6}-{:<6} {:>8.3} {:>8.3} {:>8.3}",
            w * GROWTH_WINDOW + 1,
            w * GROWTH_WINDOW + chunk.len(),
            ms(percentile(&sorted, 50.0)),
            ms(percentile(&sorted, 99.0)),
            ms(sorted.last().copied().unwrap_or_default()),
        );
    }
}

fn main() -> Result<()> {
    let base = std::env::var_os("GUTS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("guts-storage durable writes");
    println!("directory:  {}", base.display());
    println!("filesystem: {}", filesystem_of(&base));
    println!("runtime:    tokio multi-thread, {cpus} worker threads (CPUs)");
    println!("batch = mean writes per durable redb commit (guts_storage_commit_batch_size)");
    println!();
    println!("{}", header());

    // Optional filters (cargo passes `--bench`): fsync, probe, append, single, create,
    // users. Without any, everything runs.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |group: &str| only.is_empty() || only.iter().any(|o| o == group);

    let started = Instant::now();
    if run("fsync") {
        for append_mode in [false, true] {
            println!("{}", raw_fsync(&base, append_mode)?.row());
        }
    }
    let mut growth = None;
    let mut files_per_repo = None;
    runtime.block_on(async {
        if run("probe") {
            for c in [1, 16] {
                println!("{}", store_probe(&base, c).await?.row());
            }
        }
        if run("append") {
            for c in [1, 16] {
                println!("{}", append(&base, c, false).await?.row());
            }
        }
        if run("single") {
            let single = append(&base, 1, true).await?;
            println!("{}", single.row());
            growth = Some(single);
            println!("{}", append(&base, 16, true).await?.row());
        }
        if run("create") {
            for c in [1, 16] {
                let (sample, files) = create_repos(&base, c).await?;
                files_per_repo = Some(files);
                println!("{}", sample.row());
            }
        }
        if run("users") {
            for c in [1, 16] {
                println!("{}", create_users(&base, c).await?.row());
            }
        }
        Ok::<_, BoxError>(())
    })?;
    if let Some(single) = &growth {
        growth_table(single);
    }
    if let Some(files) = files_per_repo {
        println!();
        println!(
            "entries in one created bare repository (files and directories, each fsynced): {files}"
        );
    }
    println!(
        "total benchmark time: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
