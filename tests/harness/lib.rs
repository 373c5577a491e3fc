//! Test harness for end-to-end tests: runs the real `guts-node` binary in a temp dir on
//! free loopback ports, captures its logs, and talks to it over real sockets.
//!
//! Nothing here reaches into the node's internals: a test sees what an operator sees
//! (exit codes, logs, HTTP answers, metrics).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;

/// The node binary, built once per test process with the same profile as the tests.
///
/// Cargo does not build another package's binary for an integration test, so the
/// harness asks cargo for it; when it is already fresh this is a no-op.
pub fn node_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/<test-binary>
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let target_dir = profile_dir.parent().unwrap();
        let profile = profile_dir.file_name().unwrap().to_str().unwrap();
        let profile = if profile == "debug" { "dev" } else { profile };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "guts-node",
                "--bin",
                "guts-node",
                "--profile",
                profile,
            ])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target_dir)
            .status()
            .expect("run cargo build for guts-node");
        assert!(status.success(), "building guts-node failed");
        let bin = profile_dir.join("guts-node");
        assert!(bin.exists(), "{} missing after build", bin.display());
        bin
    })
}

/// A loopback port that was free a moment ago. (The node refuses port 0 by design, so
/// tests pick ports; a collision shows up as a bind error naming the variable.)
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `guts-node` with `args` and `env` (on top of a cleared environment) to
/// completion, for subcommands and start-up failures.
pub fn run_to_exit(
    args: &[&str],
    env: &[(&str, &str)],
    cwd: &Path,
) -> (ExitStatus, String, String) {
    let out = Command::new(node_binary())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running node process. Killed on drop.
#[derive(Debug)]
pub struct TestNode {
    child: Option<Child>,
    pub api: SocketAddr,
    pub metrics: SocketAddr,
    pub data_dir: PathBuf,
    log_path: PathBuf,
    exit: Option<ExitStatus>,
    _dir: Option<tempfile::TempDir>,
}

/// How to start a node.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Extra `GUTS_*` variables.
    pub env: Vec<(String, String)>,
    /// Reuse this data dir (restarts); a fresh temp dir otherwise.
    pub data_dir: Option<PathBuf>,
    /// Wait for `/health/ready` before returning (default true).
    pub no_wait: bool,
}

impl NodeOptions {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }
}

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

impl TestNode {
    /// A node with defaults, JSON logs at debug level and an admin token.
    pub fn start() -> TestNode {
        Self::start_with(NodeOptions::default())
    }

    pub fn start_with(options: NodeOptions) -> TestNode {
        let (dir, data_dir) = match &options.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let dir = tempfile::tempdir().unwrap();
                let data = dir.path().join("data");
                (Some(dir), data)
            }
        };
        std::fs::create_dir_all(&data_dir).unwrap();
        let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log_path = data_dir.with_extension(format!("{}.log", api.port()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(node_binary());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GUTS_DATA_DIR", &data_dir)
            .env("GUTS_API_ADDR", api.to_string())
            .env("GUTS_METRICS_ADDR", metrics.to_string())
            .env("GUTS_LOG_FORMAT", "json")
            .env("GUTS_LOG_LEVEL", "debug")
            .env("GUTS_ADMIN_TOKEN", ADMIN_TOKEN);
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().unwrap();
        let mut node = TestNode {
            child: Some(child),
            api,
            metrics,
            data_dir,
            log_path,
            exit: None,
            _dir: dir,
        };
        if !options.no_wait {
            node.wait_ready(Duration::from_secs(30));
        }
        node
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.api, path)
    }

    pub fn metrics_url(&self, path: &str) -> String {
        format!("http://{}{}", self.metrics, path)
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// Everything the node wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The JSON log lines, parsed (non-JSON lines are skipped).
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Polls `/health/ready` until 200; panics with the logs if the process dies or the
    /// deadline passes.
    pub fn wait_ready(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_exit() {
                panic!(
                    "node exited during start-up with {status}:\n{}",
                    self.logs()
                );
            }
            if let Ok(r) = client().get(self.url("/health/ready")).send()
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node not ready in {within:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn signal(&self, signal: Signal) {
        nix::sys::signal::kill(self.pid(), signal).unwrap();
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none()
            && let Some(child) = self.child.as_mut()
        {
            self.exit = child.try_wait().unwrap();
        }
        self.exit
    }

    /// Waits for the process to exit; `None` if it is still running after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then wait for a clean exit; returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("node did not stop:\n{}", self.logs()))
    }

    /// The value of the `peer_id` field of the "node ready" log line.
    pub fn peer_id(&self) -> String {
        self.log_lines()
            .iter()
            .find(|l| l["message"] == "node ready")
            .and_then(|l| l["peer_id"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("no 'node ready' line:\n{}", self.logs()))
    }

    /// A metric sample's value from `/metrics` (exact series text before the value).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let text = client()
            .get(self.metrics_url("/metrics"))
            .send()
            .ok()?
            .text()
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take()
            && self.exit.is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A blocking HTTP client with no proxy and no connection reuse surprises.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A raw HTTP/1.1 exchange over one socket, for what a client library hides: partial
/// bodies, slow senders, exact bytes.
#[derive(Debug)]
pub struct RawRequest {
    stream: TcpStream,
}

impl RawRequest {
    /// Connects and sends `head` (request line and headers, without the blank line)
    /// followed by the first `body_prefix` bytes of the body.
    pub fn begin(addr: SocketAddr, head: &str, body_prefix: &[u8]) -> RawRequest {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(b"\r\n\r\n").unwrap();
        stream.write_all(body_prefix).unwrap();
        stream.flush().unwrap();
        RawRequest { stream }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
        self.stream.flush().unwrap();
    }

    /// Reads the response until the server closes or a full Content-Length body arrived.
    pub fn response(mut self) -> RawResponse {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if buf.is_empty() => panic!("no response: {e}"),
                Err(_) => break,
            }
            if let Some(parsed) = RawResponse::parse(&buf)
                && parsed.complete
            {
                return parsed;
            }
        }
        RawResponse::parse(&buf)
            .unwrap_or_else(|| panic!("unparseable response: {:?}", String::from_utf8_lossy(&buf)))
    }
}

#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    complete: bool,
}

impl RawResponse {
    fn parse(buf: &[u8]) -> Option<RawResponse> {
        let text = std::str::from_utf8(buf).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.lines();
        let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        Some(RawResponse {
            status,
            complete: length.is_some_and(|n| body.len() >= n),
            headers,
            body: body.as_bytes().to_vec(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `within`.
pub fn eventually<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
