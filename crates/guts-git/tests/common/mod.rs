//! Running the real `git` from the test binaries of this crate: one environment
//! (no user or system configuration, fixed author and dates, no inherited repository
//! variables) and one runner that feeds stdin from a second thread, because git may
//! fill its stdout before it has read its stdin, and kills git after a deadline, so a
//! server that waits for a client that waits for it fails the test instead of hanging.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Author and committer time of every commit git makes here (fixtures add to it).
pub(crate) const T0: i64 = 1_700_000_000;

/// Longest any git command may take here; far above what each needs (about a second).
pub(crate) const GIT_DEADLINE: Duration = Duration::from_secs(120);

/// `git args` in `dir`, isolated from the caller's configuration and repository.
pub(crate) fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
        .env_remove("GIT_PROTOCOL")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "protocol.allow")
        .env("GIT_CONFIG_VALUE_0", "always")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .env("GIT_AUTHOR_DATE", format!("{T0} +0000"))
        .env("GIT_COMMITTER_DATE", format!("{T0} +0000"));
    cmd
}

/// Runs `cmd` with `stdin` under [`GIT_DEADLINE`], whatever its exit status.
pub(crate) fn run(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > GIT_DEADLINE {
            let _ = child.kill();
            panic!("git {cmd:?} hung (killed after {GIT_DEADLINE:?})");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    writer.join().unwrap();
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// `git args` with `stdin`: its stdout on success, its stderr on failure.
pub(crate) fn try_git(dir: &Path, args: &[&str], stdin: &[u8]) -> Result<Vec<u8>, String> {
    let out = run(git_command(dir, args), stdin);
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `git args` with `stdin`, which must succeed; its stdout.
pub(crate) fn git_bytes(dir: &Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    try_git(dir, args, stdin).unwrap_or_else(|e| panic!("{e}"))
}

/// `git args` with no input, which must succeed; its stdout as trimmed text.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(git_bytes(dir, args, b""))
        .unwrap()
        .trim()
        .to_owned()
}
