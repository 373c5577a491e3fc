//! Hostile SSH clients: commands that are not git, paths that try to leave the
//! repositories, unknown repositories, and a flood of connections that never say a
//! word. Each is refused or cut, and git over HTTP never notices.

use std::io::Read as _;
use std::net::TcpStream;
use std::time::Instant;

use super::*;
use crate::gitutil::{Git, anon_url, create_repo};

/// Arbitrary commands, `..` and unknown repositories get a clear refusal, a shell gets
/// a greeting and no shell, and none of it reaches a shell or the file system.
#[test]
fn commands_other_than_git_on_a_repository_are_refused_with_a_reason() {
    let node = TestNode::start();
    let token = create_user(&node, "eve");
    let tmp = tempfile::tempdir().unwrap();
    let key = SshKey::new(tmp.path(), "eve", "ed25519", &node);
    add_user_key(&node, &token, &key);
    create_repo(&node, &token, "real", false);
    let marker = tmp.path().join("pwned");

    // `ssh -T git@host`: who you are, no shell.
    let (code, _, stderr) = key.ssh(&node, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "Hi eve! You've successfully authenticated, but Guts does not provide shell access."
        ),
        "{stderr}"
    );

    let touch = format!("touch {}", marker.display());
    for (command, says) in [
        (
            touch.as_str(),
            "Guts runs only git-upload-pack and git-receive-pack",
        ),
        (
            "ls -la /",
            "Guts runs only git-upload-pack and git-receive-pack",
        ),
        (
            "git-upload-archive 'eve/real'",
            "Guts runs only git-upload-pack",
        ),
        (
            "git-upload-pack '/eve/../../etc'",
            "the repository path must be OWNER/REPO",
        ),
        (
            "git-upload-pack '../../etc/passwd'",
            "the repository path must be OWNER/REPO",
        ),
        (
            "git-receive-pack 'eve/real'; rm -rf /",
            "unbalanced or unsupported quoting",
        ),
        (
            "git-upload-pack 'eve/nothing-here.git'",
            "Repository not found.",
        ),
        ("git-upload-pack 'nobody/real.git'", "Repository not found."),
    ] {
        let (code, stdout, stderr) = key.ssh(&node, &[command]);
        assert_eq!(code, 128, "{command}: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!("ERR {says}")),
            "{command}: {stdout}{stderr}"
        );
    }
    assert!(!marker.exists(), "a command ran on the server");

    // Git prints the refusal as a remote error.
    let git = Git::v(2);
    let ssh = key.command(&node);
    let run = git.run_env(
        tmp.path(),
        &["clone", "ssh://git@127.0.0.1/eve/../../etc.git"],
        &[("GIT_SSH_COMMAND", &ssh)],
    );
    assert!(!run.status.success(), "{run}");
    assert!(run.text().contains("remote error"), "{run}");

    // A subsystem (sftp) is refused outright.
    let mut words: Vec<String> = ssh.split_whitespace().map(str::to_owned).collect();
    let program = words.remove(0);
    let out = Command::new(program)
        .args(&words)
        .args(["-s", "git@127.0.0.1", "sftp"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
}

/// 500 connections that send nothing: the node refuses what is over its share for one
/// address at once, cuts the rest at the login grace, and meanwhile git over HTTP
/// answers as fast as ever.
#[test]
fn a_flood_of_silent_connections_leaves_http_alone() {
    let node = TestNode::start();
    let token = create_user(&node, "frank");
    let tmp = tempfile::tempdir().unwrap();
    create_repo(&node, &token, "busy", false);
    let git = Git::v(2);
    let work = git.init(tmp.path(), "work");
    git.commits(&work, "base", 3);
    git.ok(
        &work,
        &[
            "push",
            "--quiet",
            &crate::gitutil::auth_url(&node, "frank", &token, "frank/busy"),
            "main",
        ],
    );

    let mut silent = Vec::new();
    for _ in 0..500 {
        // A refused connection may fail to connect or be closed at once; either is fine.
        if let Ok(stream) = TcpStream::connect(node.ssh) {
            silent.push(stream);
        }
    }
    let url = anon_url(&node, "frank/busy");
    let fastest = (0..3)
        .map(|_| {
            let started = Instant::now();
            let refs = git.ls_remote(&url);
            assert!(refs.contains_key("refs/heads/main"), "{refs:?}");
            started.elapsed()
        })
        .min()
        .unwrap();
    assert!(
        fastest < Duration::from_secs(1),
        "git ls-remote over HTTP took {fastest:?}"
    );

    // Over the per-address share (GUTS_GIT_MAX_PER_IP, 64): refused at once, and the
    // server reads nothing from them.
    let refused = eventually(Duration::from_secs(10), "refusals to be counted", || {
        node.metric("guts_ssh_connections_total{outcome=\"refused\"}")
            .filter(|n| *n >= 400.0)
    });
    assert!(refused <= 500.0, "{refused}");
    let active = node.metric("guts_ssh_sessions_active").unwrap();
    assert!(active <= 64.0, "sessions held: {active}");

    // A silent connection that was let in still gets the server's greeting, then is
    // cut at the login grace (20 s) without ever authenticating.
    let mut held = silent
        .into_iter()
        .find_map(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut banner = [0u8; 7];
            s.read_exact(&mut banner).ok()?;
            (&banner == b"SSH-2.0").then_some(s)
        })
        .expect("no connection was let in");
    held.set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = held.read_to_end(&mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(35),
        "a silent connection was held for {:?}",
        started.elapsed()
    );
    eventually(Duration::from_secs(30), "timeouts to be counted", || {
        node.metric("guts_ssh_connections_total{outcome=\"auth_timeout\"}")
            .filter(|n| *n >= 1.0)
    });
}

/// Git over SSH spends from the same git rate limit as git over HTTP: past it, a
/// command is refused with the limit and when to retry.
#[test]
fn the_git_rate_limit_holds_over_ssh() {
    let node = TestNode::start_with(
        NodeOptions::default().env("GUTS_RATE_LIMIT_GIT_AUTHENTICATED_PER_HOUR", "3"),
    );
    let token = create_user(&node, "gina");
    let tmp = tempfile::tempdir().unwrap();
    let key = SshKey::new(tmp.path(), "gina", "ed25519", &node);
    add_user_key(&node, &token, &key);
    create_repo(&node, &token, "limited", false);
    let git = Git::v(2);
    let ssh = key.command(&node);
    let url = ssh_url(&node, "gina/limited");
    for _ in 0..3 {
        git.ok_env(
            tmp.path(),
            &["ls-remote", &url],
            &[("GIT_SSH_COMMAND", &ssh)],
        );
    }
    let refused = git.run_env(
        tmp.path(),
        &["ls-remote", &url],
        &[("GIT_SSH_COMMAND", &ssh)],
    );
    assert!(!refused.status.success(), "{refused}");
    assert!(
        refused
            .text()
            .contains("Git rate limit exceeded for user gina: 3 requests per hour."),
        "{refused}"
    );
}

/// A push that trickles is cut at the minimum transfer rate, as over HTTP, and told
/// why; it does not hold its thread until the deadline.
#[test]
fn a_trickling_push_is_cut_at_the_minimum_rate() {
    use std::io::Write as _;
    let node = TestNode::start_with(
        NodeOptions::default()
            .env("GUTS_GIT_MIN_TRANSFER_RATE", "1000")
            .env("GUTS_GIT_MIN_RATE_WINDOW", "2"),
    );
    let token = create_user(&node, "hank");
    let tmp = tempfile::tempdir().unwrap();
    let key = SshKey::new(tmp.path(), "hank", "ed25519", &node);
    add_user_key(&node, &token, &key);
    create_repo(&node, &token, "slow", false);
    let command = key.command(&node);
    let mut words: Vec<&str> = command.split_whitespace().collect();
    let program = words.remove(0);
    let mut child = Command::new(program)
        .args(&words)
        .args(["-T", "git@127.0.0.1", "git-receive-pack 'hank/slow.git'"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Half a command line, then a byte now and then: far below 1000 bytes per second.
    let line = format!(
        "{} {} refs/heads/main\0report-status\n",
        "0".repeat(40),
        "1".repeat(40)
    );
    let framed = format!("{:04x}{line}", line.len() + 4);
    stdin.write_all(&framed.as_bytes()[..20]).unwrap();
    let started = Instant::now();
    let trickle = std::thread::spawn(move || {
        for byte in framed.as_bytes()[20..].iter().take(20) {
            std::thread::sleep(Duration::from_millis(500));
            if stdin.write_all(&[*byte]).is_err() {
                break;
            }
        }
    });
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let _ = child.wait();
    let _ = trickle.join();
    assert!(out.contains("slower than 1000 bytes per second"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
