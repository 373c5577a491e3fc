//! Times the ingest of a pack (what a peer's catch-up pack and a push both go through:
//! index, verify, check connectivity, install) into a fresh, empty repository, so a
//! change to the ingest path is measured without the network and the other node
//! sharing the cores. Reports wall time and CPU time (all threads) per round.
//!
//! usage: cargo run --release -p guts-git --example ingest_timing -- PACK [ROUNDS]

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use guts_storage::GitRepos;

const ID: &str = "abababababababababababababababababababababababababababababababab";

/// CPU seconds this process has used so far (user + system, every thread).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some((_, after)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime, fields 14 and 15 of stat(5); 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let Some(pack) = args.next() else {
        return Err("usage: ingest_timing PACK [ROUNDS]".into());
    };
    let rounds: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(3);
    let bytes = std::fs::metadata(&pack)?.len() as f64;
    for round in 0..rounds {
        let dir = tempfile::tempdir()?;
        let repo_dir = dir.path().join("repos").join(format!("{ID}.git"));
        let status = std::process::Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&repo_dir)
            .status()?;
        if !status.success() {
            return Err("git init failed".into());
        }
        let repos = GitRepos::open(dir.path())?;
        let repo = repos.open_repo(ID)?;
        let (wall, cpu) = (Instant::now(), cpu_seconds());
        let objects =
            guts_git::serve::replicate::ingest_file(&repos, &repo, Path::new(&pack), 100 << 20)?;
        let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        println!(
            "round {round}: {objects} objects, {:.1} MB in {wall:.3} s wall ({:.1} MB/s), \
             {cpu:.2} s CPU ({:.1} MB per CPU second)",
            bytes / 1e6,
            bytes / 1e6 / wall,
            bytes / 1e6 / cpu.max(0.001),
        );
    }
    Ok(())
}
