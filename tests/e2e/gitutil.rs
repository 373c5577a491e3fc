//! Helpers for driving the stock `git` binary against a node: a hermetic environment
//! (no system or user configuration, no prompts, English messages, no proxies), runs
//! with a deadline that fail with git's own output, accounts and repositories through
//! the REST API, ref maps to compare repositories, and deterministic content.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

/// Both wire protocols every scenario runs under.
pub(crate) const PROTOCOLS: [u8; 2] = [2, 0];

/// How long one git command may take before the test fails with what it printed.
const GIT_DEADLINE: Duration = Duration::from_secs(100);

/// An empty `HOME` shared by every git run of this process, so no user configuration,
/// credential helper or `.netrc` leaks in.
fn git_home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().unwrap().keep())
}

/// The stock git binary, run under one wire protocol version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Git {
    pub(crate) proto: u8,
}

/// What a finished git run printed.
#[derive(Debug)]
pub(crate) struct GitRun {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) what: String,
}

impl GitRun {
    /// stdout and stderr together, for matching messages wherever git put them.
    pub(crate) fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for GitRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.status, self.stdout, self.stderr
        )
    }
}

impl Git {
    pub(crate) fn v(proto: u8) -> Git {
        Git { proto }
    }

    /// A `git` command in `dir` with a hermetic environment and the test identity.
    pub(crate) fn cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("GIT_") || k.to_ascii_lowercase().ends_with("_proxy") {
                cmd.env_remove(&key);
            }
        }
        let home = git_home();
        cmd.current_dir(dir)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "")
            .env_remove("SSH_ASKPASS")
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .env("LANGUAGE", "C")
            .arg("-c")
            .arg(format!("protocol.version={}", self.proto))
            .args([
                "-c",
                "user.name=Guts Test",
                "-c",
                "user.email=test@guts.invalid",
                "-c",
                "init.defaultBranch=main",
                "-c",
                "advice.detachedHead=false",
                "-c",
                "gc.auto=0",
                "-c",
                "maintenance.auto=false",
                "-c",
                "credential.helper=",
                "-c",
                "commit.gpgSign=false",
                "-c",
                "tag.gpgSign=false",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs git to completion (any exit status), failing the test if it hangs.
    pub(crate) fn run(&self, dir: &Path, args: &[&str]) -> GitRun {
        self.run_env(dir, args, &[])
    }

    pub(crate) fn run_env(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> GitRun {
        let mut cmd = self.cmd(dir, args);
        cmd.envs(env.iter().copied());
        let what = format!(
            "git {} (protocol v{}, in {})",
            args.join(" "),
            self.proto,
            dir.display()
        );
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run git (is it installed?): {e}"));
        finish(child, &what, GIT_DEADLINE)
    }

    /// Runs git and asserts it succeeded, with everything it printed in the panic.
    #[track_caller]
    pub(crate) fn ok(&self, dir: &Path, args: &[&str]) -> GitRun {
        let run = self.run(dir, args);
        assert!(run.status.success(), "expected success: {run}");
        run
    }

    #[track_caller]
    pub(crate) fn ok_env(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> GitRun {
        let run = self.run_env(dir, args, env);
        assert!(run.status.success(), "expected success: {run}");
        run
    }

    /// Runs git and asserts it failed; returns the run for matching its messages.
    #[track_caller]
    pub(crate) fn fails(&self, dir: &Path, args: &[&str]) -> GitRun {
        let run = self.run(dir, args);
        assert!(!run.status.success(), "expected failure: {run}");
        run
    }

    /// The trimmed stdout of a successful run.
    #[track_caller]
    pub(crate) fn out(&self, dir: &Path, args: &[&str]) -> String {
        self.ok(dir, args).stdout.trim().to_string()
    }

    /// `git rev-parse --verify <rev>`.
    #[track_caller]
    pub(crate) fn rev(&self, dir: &Path, rev: &str) -> String {
        self.out(
            dir,
            &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
        )
    }

    /// The local branches and tags of a repository: refname → object id.
    #[track_caller]
    pub(crate) fn local_refs(&self, dir: &Path) -> BTreeMap<String, String> {
        parse_refs(&self.out(
            dir,
            &[
                "for-each-ref",
                "--format=%(objectname) %(refname)",
                "refs/heads",
                "refs/tags",
            ],
        ))
    }

    /// `git ls-remote <url>` as refname → object id (HEAD and peeled `^{}` lines
    /// included).
    #[track_caller]
    pub(crate) fn ls_remote(&self, url: &str) -> BTreeMap<String, String> {
        parse_refs(&self.out(git_home(), &["ls-remote", url]))
    }

    /// The branches and tags a remote advertises (no HEAD, no peeled lines), to compare
    /// with `local_refs`.
    #[track_caller]
    pub(crate) fn remote_refs(&self, url: &str) -> BTreeMap<String, String> {
        self.ls_remote(url)
            .into_iter()
            .filter(|(name, _)| {
                (name.starts_with("refs/heads/") || name.starts_with("refs/tags/"))
                    && !name.ends_with("^{}")
            })
            .collect()
    }

    /// `git clone --bare <url>` into `parent/name`; returns the path.
    #[track_caller]
    pub(crate) fn clone_bare(&self, url: &str, parent: &Path, name: &str) -> PathBuf {
        self.ok(parent, &["clone", "--bare", "--quiet", url, name]);
        parent.join(name)
    }

    /// `git clone <url>` (with a work tree) into `parent/name`; returns the path.
    #[track_caller]
    pub(crate) fn clone(&self, url: &str, parent: &Path, name: &str) -> PathBuf {
        self.ok(parent, &["clone", "--quiet", url, name]);
        parent.join(name)
    }

    /// `git fsck --full` must pass with nothing broken or missing.
    #[track_caller]
    pub(crate) fn fsck(&self, dir: &Path) {
        let run = self.ok(dir, &["fsck", "--full", "--no-dangling", "--no-progress"]);
        let text = run.text().to_ascii_lowercase();
        for bad in ["missing", "broken", "error", "bad "] {
            assert!(!text.contains(bad), "fsck reported '{bad}': {run}");
        }
    }

    /// Clones `url` bare and asserts it holds exactly `expected` (branches and tags) and
    /// passes fsck; returns the clone.
    #[track_caller]
    pub(crate) fn assert_clone_identical(
        &self,
        url: &str,
        expected: &BTreeMap<String, String>,
        parent: &Path,
        name: &str,
    ) -> PathBuf {
        let clone = self.clone_bare(url, parent, name);
        assert_eq!(
            &self.local_refs(&clone),
            expected,
            "clone of {url} (protocol v{}) differs from what was pushed",
            self.proto
        );
        self.fsck(&clone);
        clone
    }

    /// `git init` of a work tree at `parent/name`.
    #[track_caller]
    pub(crate) fn init(&self, parent: &Path, name: &str) -> PathBuf {
        self.ok(parent, &["init", "--quiet", name]);
        parent.join(name)
    }

    /// Writes `files` (path → contents) into a work tree and commits everything.
    #[track_caller]
    pub(crate) fn commit(&self, dir: &Path, files: &[(&str, &[u8])], message: &str) -> String {
        for (path, contents) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        self.ok(dir, &["add", "-A"]);
        self.ok(dir, &["commit", "--quiet", "--allow-empty", "-m", message]);
        self.rev(dir, "HEAD")
    }

    /// `count` small commits on the current branch, each touching one file.
    #[track_caller]
    pub(crate) fn commits(&self, dir: &Path, tag: &str, count: usize) -> String {
        let mut head = String::new();
        for i in 0..count {
            let body = format!("{tag} {i}\n{}", text_lines(i as u64, 20));
            head = self.commit(
                dir,
                &[(&format!("{tag}/file{}.txt", i % 3), body.as_bytes())],
                &format!("{tag} commit {i}"),
            );
        }
        head
    }
}

/// Waits for `child` with a deadline, collecting its output; panics with the output so
/// far if it does not finish.
pub(crate) fn finish(mut child: Child, what: &str, within: Duration) -> GitRun {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let status = child.wait().unwrap();
            let stdout = String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned();
            let stderr = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
            panic!(
                "{what} did not finish within {within:?} ({status}); stdout:\n{stdout}\nstderr:\n{stderr}"
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    GitRun {
        status,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned(),
        what: what.to_string(),
    }
}

/// Parses `<oid> <refname>` or `<oid>\t<refname>` lines.
pub(crate) fn parse_refs(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (oid, name) = l
                .split_once(['\t', ' '])
                .unwrap_or_else(|| panic!("not a ref line: {l:?}"));
            (name.trim().to_string(), oid.trim().to_string())
        })
        .collect()
}

/// Fails with a clear message if git's output lacks every one of `needles`.
#[track_caller]
pub(crate) fn assert_mentions(run: &GitRun, needles: &[&str]) {
    let text = run.text();
    assert!(
        needles.iter().any(|n| text.contains(n)),
        "expected git to mention one of {needles:?}: {run}"
    );
}

// ---- Accounts and repositories through the REST API ----

/// Creates `owner/name` as the token's user.
#[track_caller]
pub(crate) fn create_repo(node: &TestNode, token: &str, name: &str, private: bool) {
    let r = client()
        .post(node.url("/api/v3/user/repos"))
        .header("Authorization", format!("token {token}"))
        .json(&json!({ "name": name, "private": private }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
}

/// Adds `user` as a collaborator with `permission` (GitHub's shape).
#[track_caller]
pub(crate) fn add_collaborator(
    node: &TestNode,
    owner_token: &str,
    repo: &str,
    user: &str,
    permission: &str,
) {
    let r = client()
        .put(node.url(&format!("/api/v3/repos/{repo}/collaborators/{user}")))
        .header("Authorization", format!("token {owner_token}"))
        .json(&json!({ "permission": permission }))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    assert!(
        status == 201 || status == 204,
        "adding collaborator {user} to {repo}: {status} {}",
        r.text().unwrap_or_default()
    );
}

/// Protects `branch` against force-pushes and deletion (GitHub's shape).
#[track_caller]
pub(crate) fn protect_branch(node: &TestNode, owner_token: &str, repo: &str, branch: &str) {
    let r = client()
        .put(node.url(&format!(
            "/api/v3/repos/{repo}/branches/{branch}/protection"
        )))
        .header("Authorization", format!("token {owner_token}"))
        .json(&json!({
            "required_status_checks": null,
            "enforce_admins": false,
            "required_pull_request_reviews": null,
            "restrictions": null,
            "allow_force_pushes": false,
            "allow_deletions": false,
        }))
        .send()
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "protecting {repo}:{branch}: {}",
        r.text().unwrap_or_default()
    );
}

/// The anonymous git URL of `owner/repo` (with the `.git` suffix).
pub(crate) fn anon_url(node: &TestNode, repo: &str) -> String {
    node.url(&format!("/{repo}.git"))
}

/// The git URL of `owner/repo` with `token` as the Basic password.
pub(crate) fn auth_url(node: &TestNode, login: &str, token: &str, repo: &str) -> String {
    format!("http://{login}:{token}@{}/{repo}.git", node.api)
}

/// The sum of every sample of a metric family (any labels) on the node's `/metrics`.
pub(crate) fn metric_sum(node: &TestNode, family: &str) -> f64 {
    let text = client()
        .get(node.metrics_url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ---- Deterministic content ----

/// splitmix64: a tiny deterministic PRNG for content that does not compress.
#[derive(Debug, Clone)]
pub(crate) struct Prng(u64);

impl Prng {
    pub(crate) fn new(seed: u64) -> Prng {
        Prng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `len` bytes of incompressible data.
    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// `count` lines of deterministic, mostly distinct text.
pub(crate) fn text_lines(seed: u64, count: usize) -> String {
    let mut rng = Prng::new(seed);
    let mut out = String::new();
    for i in 0..count {
        out.push_str(&format!(
            "{i:08} {:016x} {:016x} the quick brown fox\n",
            rng.next_u64(),
            rng.next_u64()
        ));
    }
    out
}

/// Writes `files` files of `size` incompressible bytes each under `dir/sub`, seeded by
/// `seed`.
pub(crate) fn write_random_files(dir: &Path, sub: &str, files: usize, size: usize, seed: u64) {
    let target = dir.join(sub);
    std::fs::create_dir_all(&target).unwrap();
    let mut rng = Prng::new(seed);
    for i in 0..files {
        let mut f = std::fs::File::create(target.join(format!("blob{i:02}.bin"))).unwrap();
        f.write_all(&rng.bytes(size)).unwrap();
    }
}

// ---- Source material ----

/// The workspace root (the repository the tests run from).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `shared/tools/synth.py`: beside the project (`../shared/tools`, where the brief puts
/// it), or where `GUTS_SHARED_TOOLS` says. `None` when this checkout has no such
/// neighbour (a clone elsewhere); the caller then generates the history itself.
pub(crate) fn synth_py() -> Option<PathBuf> {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools");
    std::env::var_os("GUTS_SHARED_TOOLS")
        .map(PathBuf::from)
        .into_iter()
        .chain([beside, PathBuf::from("/work/shared/tools")])
        .map(|dir| dir.join("synth.py"))
        .find(|path| path.is_file())
}

/// A `git fast-import` stream of the same shape as synth.py's (one branch, `files`
/// text files of 40 lines in 50 directories, each commit editing `edits` lines of as
/// many files, a tag every 1,000 commits), deterministic, for checkouts without
/// `../shared`. Not synth.py's byte stream: its own small generator.
pub(crate) fn generated_history(commits: u32, files: u32, edits: u32) -> Vec<u8> {
    let mut rng = Prng::new(42);
    let mut contents: Vec<Vec<String>> = (0..files)
        .map(|i| (0..40).map(|j| format!("line {j} of file {i}\n")).collect())
        .collect();
    let mut out = Vec::new();
    for c in 1..=commits {
        let message = format!("commit {c}\n");
        out.extend_from_slice(
            format!(
                "commit refs/heads/main\nmark :{c}\ncommitter Synth <s@example.com> {} +0000\ndata {}\n{message}",
                1_700_000_000 + u64::from(c) * 60,
                message.len()
            )
            .as_bytes(),
        );
        if c > 1 {
            out.extend_from_slice(format!("from :{}\n", c - 1).as_bytes());
        }
        let touched: Vec<usize> = if c == 1 {
            (0..files as usize).collect()
        } else {
            (0..edits)
                .map(|_| (rng.next_u64() % u64::from(files)) as usize)
                .collect()
        };
        for f in touched {
            let lines = &mut contents[f];
            if c > 1 {
                let at = (rng.next_u64() % 40) as usize;
                lines[at] = format!("edit {c} {}\n", rng.next_u64());
            }
            let data: String = lines.concat();
            out.extend_from_slice(
                format!(
                    "M 100644 inline src/d{}/f{f}.txt\ndata {}\n{data}\n",
                    f % 50,
                    data.len()
                )
                .as_bytes(),
            );
        }
        if c % 1000 == 0 {
            out.extend_from_slice(
                format!("reset refs/tags/v{}\nfrom :{c}\n\n", c / 1000).as_bytes(),
            );
        }
    }
    out
}

/// A bare repository at `parent/name` filled by `synth.py commits files edits |
/// git fast-import` (or, without `../shared`, by [`generated_history`]).
pub(crate) fn synth_repo(
    parent: &Path,
    name: &str,
    commits: u32,
    files: u32,
    edits: u32,
) -> PathBuf {
    let git = Git::v(2);
    git.ok(parent, &["init", "--bare", "--quiet", name]);
    let repo = parent.join(name);
    let Some(script) = synth_py() else {
        eprintln!("../shared/tools/synth.py not beside this checkout: generating the history");
        let mut import = git.cmd(&repo, &["fast-import", "--quiet"]);
        import.stdin(Stdio::piped());
        let mut child = import.spawn().unwrap();
        let stream = generated_history(commits, files, edits);
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(&stream).unwrap();
        }
        let run = finish(child, "git fast-import", GIT_DEADLINE);
        assert!(run.status.success(), "fast-import failed: {run}");
        return repo;
    };
    let mut synth = Command::new("python3")
        .arg(script)
        .args([commits.to_string(), files.to_string(), edits.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 (is it installed?): {e}"));
    let mut import = git.cmd(&repo, &["fast-import", "--quiet"]);
    import.stdin(Stdio::from(synth.stdout.take().unwrap()));
    let run = finish(import.spawn().unwrap(), "git fast-import", GIT_DEADLINE);
    assert!(synth.wait().unwrap().success(), "synth.py failed");
    assert!(run.status.success(), "fast-import failed: {run}");
    repo
}
