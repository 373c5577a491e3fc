//! Fills a data directory with many repositories, issues and comments for the scale
//! benchmark (`scripts/bench-scale.py`, issue 19), much faster than the REST API could.
//!
//! Why through the storage API: a million issues and comments over HTTP would take
//! hours of request handling; appended here they are the very same signed operations
//! the REST use cases append (`Service::open_issue` → `OpenIssue` with number 0,
//! `Service::comment` → `Comment`, `Service::edit_issue` → `EditThread`), signed with
//! the users' custodial keys, folded and stored by `Repositories::append_checked`, so
//! a node opening the directory afterwards cannot tell them apart. Many tasks append
//! at once (one repository each), so the store's group commit batches them.
//!
//! The directory is opened as the node opens it (`OpenedStorage::open` in guts-node):
//! the store, the sealer keyed with `cluster.secret` (read, or created as the node
//! creates it: 64 hex characters and a newline, mode 0600), the repositories bound to
//! accounts. The store refuses a second opener, so the node must be stopped.
//!
//! Bodies and titles are varied Markdown-ish text, deterministic from the seed (keys
//! and timestamps are not). About a quarter of the issues are closed afterwards, so a
//! `state=open` filter has something to filter. A JSON manifest (users and their
//! tokens, repositories, labels) is written for the HTTP part of the benchmark.
//!
//! Usage: `cargo run --release -p guts-storage --example populate -- DATA_DIR REPOS
//! ISSUES_PER_REPO COMMENTS_PER_ISSUE SEED [MANIFEST] [TASKS]`

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use guts_core::{Keypair, OpId, Payload, ThreadEdit};
use guts_storage::{
    Accounts, GitRepos, Repositories, Scope, Sealer, StorageMetrics, Store, UserRecord,
};
use prometheus_client::registry::Registry;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

/// Repositories per owning user.
const REPOS_PER_OWNER: usize = 10;
/// Users who only comment (besides the owners, who comment too).
const COMMENTERS: usize = 20;
/// Share of issues closed after their comments, in percent.
const CLOSED_PERCENT: u64 = 25;
/// The labels issues carry (0 to 3 each), as a typical project's.
const LABELS: [&str; 8] = [
    "bug",
    "enhancement",
    "documentation",
    "question",
    "performance",
    "security",
    "good first issue",
    "help wanted",
];

/// What the command line asks for.
#[derive(Debug)]
struct Args {
    data_dir: PathBuf,
    repos: usize,
    issues: usize,
    comments: usize,
    seed: u64,
    manifest: Option<PathBuf>,
    tasks: usize,
}

fn parse_args() -> Result<Args> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 || args.len() > 7 {
        return Err(
            "usage: populate DATA_DIR REPOS ISSUES_PER_REPO COMMENTS_PER_ISSUE SEED \
                    [MANIFEST] [TASKS]"
                .into(),
        );
    }
    Ok(Args {
        data_dir: PathBuf::from(&args[0]),
        repos: args[1].parse()?,
        issues: args[2].parse()?,
        comments: args[3].parse()?,
        seed: args[4].parse()?,
        manifest: args.get(5).map(PathBuf::from),
        tasks: args.get(6).map_or(Ok(64), |t| t.parse())?,
    })
}

/// splitmix64: small, fast, and the same on every platform, so a seed names a corpus.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words.get(self.below(words.len())).copied().unwrap_or("")
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

const NOUNS: [&str; 28] = [
    "parser",
    "cache",
    "index",
    "session",
    "token",
    "request",
    "response",
    "buffer",
    "config",
    "migration",
    "scheduler",
    "worker",
    "queue",
    "branch",
    "commit",
    "webhook",
    "label",
    "render",
    "template",
    "client",
    "socket",
    "handler",
    "logger",
    "build",
    "release",
    "test suite",
    "dependency",
    "database",
];
const VERBS: [&str; 20] = [
    "crashes",
    "hangs",
    "leaks memory",
    "returns 500",
    "times out",
    "panics",
    "is slow",
    "drops data",
    "double counts",
    "ignores the setting",
    "logs too much",
    "deadlocks",
    "rejects valid input",
    "accepts invalid input",
    "blocks the event loop",
    "retries forever",
    "loses the cursor",
    "breaks on Windows",
    "fails on ARM",
    "regressed",
];
const CONTEXTS: [&str; 14] = [
    "after upgrading to 2.3",
    "under load",
    "with a large repository",
    "on a fresh install",
    "when the disk is full",
    "behind a proxy",
    "with unicode names",
    "on the second restart",
    "in the web interface",
    "over SSH",
    "with two nodes",
    "when the clock jumps",
    "in CI only",
    "since last week",
];
const FILLER: [&str; 24] = [
    "I can reproduce this reliably",
    "the logs show nothing unusual until the very end",
    "it started after the last deploy",
    "a colleague sees the same thing on another machine",
    "reverting the config change did not help",
    "the workaround is to restart the service, which is not great",
    "this might be related to the earlier report about timeouts",
    "the metrics dashboard shows a spike at the same moment",
    "memory grows steadily until the process is killed",
    "setting the log level to debug makes it disappear, oddly",
    "the documentation does not say what should happen here",
    "we rely on this behaviour in production",
    "a minimal example is below",
    "the stack trace points at the retry loop",
    "it only happens with more than a few hundred entries",
    "I bisected it to a commit from last month",
    "this blocks our upgrade",
    "happy to send a pull request if the approach sounds right",
    "the old version handled this gracefully",
    "the error message could be clearer too",
    "tests pass locally but fail in CI",
    "the same request succeeds on the second try",
    "it looks like an off-by-one in the pagination",
    "disabling the cache avoids it",
];
const CODE: [&str; 10] = [
    "let config = Config::from_env()?;",
    "for entry in index.iter().take(limit) {",
    "    cache.insert(entry.key(), entry.value().clone());",
    "}",
    "curl -s -H 'Authorization: token $TOKEN' $BASE/api/v3/repos/o/r/issues",
    "thread 'main' panicked at 'index out of bounds: the len is 0'",
    "ERROR request failed status=500 route=/repos/{owner}/{repo}/issues",
    "$ cargo test -p storage -- --nocapture",
    "warning: unused variable `retries`",
    "Caused by: connection reset by peer (os error 104)",
];

fn sentence(rng: &mut Rng) -> String {
    let mut s = rng.pick(&FILLER).to_string();
    if rng.percent(40) {
        let _ = write!(
            s,
            ", and the {} {} {}",
            rng.pick(&NOUNS),
            rng.pick(&VERBS),
            rng.pick(&CONTEXTS)
        );
    }
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + s.get(1..).unwrap_or("");
    }
    s.push('.');
    s
}

fn title(rng: &mut Rng) -> String {
    let mut t = format!(
        "{} {} {}",
        rng.pick(&NOUNS),
        rng.pick(&VERBS),
        rng.pick(&CONTEXTS)
    );
    if let Some(first) = t.get(..1) {
        t = first.to_uppercase() + t.get(1..).unwrap_or("");
    }
    t
}

/// A Markdown-ish body of roughly `target` bytes: paragraphs, sometimes a list, a
/// code block or a quote.
fn body(rng: &mut Rng, target: usize) -> String {
    let mut out = String::with_capacity(target + 256);
    while out.len() < target {
        match rng.below(10) {
            0 => {
                out.push_str("Steps to reproduce:\n\n");
                for i in 1..=2 + rng.below(4) {
                    let _ = writeln!(out, "{i}. {}", sentence(rng));
                }
            }
            1 => {
                out.push_str("```\n");
                for _ in 0..2 + rng.below(5) {
                    out.push_str(rng.pick(&CODE));
                    out.push('\n');
                }
                out.push_str("```\n");
            }
            2 => {
                let _ = writeln!(out, "> {}", sentence(rng));
            }
            3 => {
                for _ in 0..2 + rng.below(3) {
                    let _ = writeln!(out, "- {}", sentence(rng));
                }
            }
            _ => {
                for _ in 0..1 + rng.below(4) {
                    out.push_str(&sentence(rng));
                    out.push(' ');
                }
                out.push('\n');
            }
        }
        out.push('\n');
    }
    out
}

/// Body sizes: mostly a few hundred bytes, a tail up to about 4 KB.
fn body_size(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0..=5 => 200 + rng.below(400),
        6..=8 => 600 + rng.below(1400),
        _ => 2000 + rng.below(2000),
    }
}

/// `cluster.secret` as the node reads it (trimmed text), created as the node creates
/// it when absent (see guts-node's `keyfile::cluster_secret`).
fn cluster_secret(data_dir: &Path) -> Result<Vec<u8>> {
    let path = data_dir.join("cluster.secret");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().as_bytes().to_vec()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let random: [u8; 32] = rand::random();
            let text = hex::encode(random);
            let tmp = data_dir.join("cluster.secret.tmp");
            let _ = std::fs::remove_file(&tmp);
            {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)?;
                file.write_all(text.as_bytes())?;
                file.write_all(b"\n")?;
                file.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(data_dir)?.sync_all()?;
            Ok(text.into_bytes())
        }
        Err(e) => Err(e.into()),
    }
}

/// Counters the progress reporter prints.
#[derive(Debug, Default)]
struct Progress {
    issues: AtomicU64,
    comments: AtomicU64,
    ops: AtomicU64,
    repos: AtomicU64,
}

impl Progress {
    fn line(&self, start: Instant) -> String {
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        let issues = self.issues.load(Ordering::Relaxed);
        let comments = self.comments.load(Ordering::Relaxed);
        let ops = self.ops.load(Ordering::Relaxed);
        format!(
            "{secs:>8.1}s repos {:>6} issues {issues:>9} comments {comments:>9} \
             items/s {:>8.0} ops/s {:>8.0}",
            self.repos.load(Ordering::Relaxed),
            (issues + comments) as f64 / secs,
            ops as f64 / secs,
        )
    }
}

/// Everything a worker needs, shared.
#[derive(Debug)]
struct Plan {
    repos: Arc<Repositories>,
    owners: Vec<(UserRecord, Keypair)>,
    commenters: Vec<Keypair>,
    issues: usize,
    comments: usize,
    seed: u64,
    next_repo: AtomicUsize,
    total_repos: usize,
    progress: Progress,
}

/// One repository: created by its owner, then its issues, each followed by its
/// comments (by other users, sometimes the owner) and, for some, its closing.
async fn fill_repo(plan: &Plan, r: usize) -> Result<(String, String)> {
    let (owner, owner_key) = plan
        .owners
        .get(r / REPOS_PER_OWNER)
        .ok_or("owner index out of range")?;
    let name = format!("project-{r:05}");
    let view = plan
        .repos
        .create(
            owner_key,
            &owner.login,
            &name,
            "A repository generated by the scale benchmark",
            false,
            "main",
        )
        .await?;
    plan.progress.ops.fetch_add(1, Ordering::Relaxed);
    let id = view.id;
    let mut rng = Rng::new(plan.seed, r as u64);
    for _ in 0..plan.issues {
        let mut labels: Vec<String> = Vec::new();
        for _ in 0..rng.below(4) {
            let label = rng.pick(&LABELS).to_string();
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
        let size = body_size(&mut rng);
        let payload = Payload::OpenIssue {
            number: 0,
            title: title(&mut rng),
            body: body(&mut rng, size),
            labels,
            assignees: Vec::new(),
        };
        let (_, thread): (_, OpId) = plan
            .repos
            .append_checked(id, owner_key, payload, |_| Ok(()))
            .await?;
        plan.progress.issues.fetch_add(1, Ordering::Relaxed);
        plan.progress.ops.fetch_add(1, Ordering::Relaxed);
        for _ in 0..plan.comments {
            let author = if rng.percent(20) {
                owner_key
            } else {
                plan.commenters
                    .get(rng.below(plan.commenters.len()))
                    .unwrap_or(owner_key)
            };
            let size = body_size(&mut rng);
            let payload = Payload::Comment {
                thread,
                body: body(&mut rng, size),
            };
            plan.repos.append(id, author, payload).await?;
            plan.progress.comments.fetch_add(1, Ordering::Relaxed);
            plan.progress.ops.fetch_add(1, Ordering::Relaxed);
        }
        if rng.percent(CLOSED_PERCENT) {
            let edit = ThreadEdit {
                open: Some(false),
                ..ThreadEdit::default()
            };
            plan.repos
                .append(id, owner_key, Payload::EditThread { thread, edit })
                .await?;
            plan.progress.ops.fetch_add(1, Ordering::Relaxed);
        }
    }
    plan.progress.repos.fetch_add(1, Ordering::Relaxed);
    Ok((owner.login.clone(), name))
}

async fn worker(plan: Arc<Plan>) -> Result<Vec<(usize, String, String)>> {
    let mut done = Vec::new();
    loop {
        let r = plan.next_repo.fetch_add(1, Ordering::Relaxed);
        if r >= plan.total_repos {
            return Ok(done);
        }
        let (owner, name) = fill_repo(&plan, r).await?;
        done.push((r, owner, name));
    }
}

async fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)?;
    let secret = cluster_secret(&args.data_dir)?;
    let mut registry = Registry::default();
    let metrics = Arc::new(StorageMetrics::register(&mut registry));
    let opened = Instant::now();
    let (store, writer) = Store::open(&args.data_dir, metrics)?;
    let sealer = Arc::new(Sealer::new(&secret));
    let repos = Arc::new(Repositories::open(
        store.clone(),
        GitRepos::open(&args.data_dir)?,
        sealer.clone(),
    )?);
    // Writes go to every repository at once: keep them all folded (a node's budget
    // would evict and reload them between appends).
    repos.set_cache_budget(u64::MAX);
    let accounts = Accounts::new(store.clone(), sealer);
    println!(
        "opened {} in {:.2}s ({} repositories already there)",
        args.data_dir.display(),
        opened.elapsed().as_secs_f64(),
        repos.list().len()
    );

    // Users: one owner per REPOS_PER_OWNER repositories, and a few commenters. The
    // logins carry the seed so that a second run into one directory does not collide.
    let owners_needed = args.repos.div_ceil(REPOS_PER_OWNER).max(1);
    let mut owners = Vec::with_capacity(owners_needed);
    let mut tokens = Vec::new();
    for i in 0..owners_needed + COMMENTERS {
        let login = if i < owners_needed {
            format!("owner{i}-s{}", args.seed)
        } else {
            format!("commenter{}-s{}", i - owners_needed, args.seed)
        };
        let user = accounts.create_user(&login, false).await?;
        let key = accounts.signing_key(&user)?;
        let token = accounts
            .create_token(&login, "bench-scale", vec![Scope::Repo])
            .await?;
        tokens.push((login, token.token.expose().clone(), i < owners_needed));
        owners.push((user, key));
    }
    let commenters: Vec<Keypair> = owners
        .split_off(owners_needed)
        .into_iter()
        .map(|(_, k)| k)
        .chain(owners.iter().map(|(_, k)| k.clone()))
        .collect();
    println!(
        "{} users with tokens in {:.2}s",
        tokens.len(),
        opened.elapsed().as_secs_f64()
    );

    let plan = Arc::new(Plan {
        repos: repos.clone(),
        owners,
        commenters,
        issues: args.issues,
        comments: args.comments,
        seed: args.seed,
        next_repo: AtomicUsize::new(0),
        total_repos: args.repos,
        progress: Progress::default(),
    });
    let start = Instant::now();
    let reporter = {
        let plan = plan.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            loop {
                tick.tick().await;
                println!("{}", plan.progress.line(start));
            }
        })
    };
    let mut workers = Vec::new();
    for _ in 0..args.tasks.max(1) {
        workers.push(tokio::spawn(worker(plan.clone())));
    }
    let mut made = Vec::with_capacity(args.repos);
    for w in workers {
        made.extend(w.await??);
    }
    reporter.abort();
    made.sort();
    let elapsed = start.elapsed().as_secs_f64();
    println!("{}", plan.progress.line(start));
    let items = plan.progress.issues.load(Ordering::Relaxed)
        + plan.progress.comments.load(Ordering::Relaxed);
    println!(
        "done: {} repositories, {items} issues and comments, {} operations in {elapsed:.1}s \
         ({:.0} items/s)",
        made.len(),
        plan.progress.ops.load(Ordering::Relaxed),
        items as f64 / elapsed.max(1e-9)
    );

    if let Some(path) = &args.manifest {
        let manifest = serde_json::json!({
            "seed": args.seed,
            "issues_per_repo": args.issues,
            "comments_per_issue": args.comments,
            "labels": LABELS,
            "users": tokens
                .iter()
                .map(|(login, token, owner)| serde_json::json!({
                    "login": login, "token": token, "owner": owner,
                }))
                .collect::<Vec<_>>(),
            "repos": made
                .iter()
                .map(|(_, owner, name)| serde_json::json!({"owner": owner, "name": name}))
                .collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&manifest)?)?;
        println!("manifest: {}", path.display());
    }

    drop(plan);
    drop(repos);
    drop(accounts);
    drop(store);
    let flushing = Instant::now();
    tokio::task::block_in_place(|| writer.join());
    println!("store flushed in {:.2}s", flushing.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args = parse_args().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(run(args))
        .map_err(|e| -> Box<dyn std::error::Error> { e.to_string().into() })
}
