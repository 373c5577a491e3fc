//! The end-to-end test harness: runs the real `guts-node` binary in a temp dir on
//! free loopback ports, captures its logs, and talks to it over real sockets.
//!
//! Nothing here reaches into the node's internals: a test sees what an operator sees
//! (exit codes, logs, HTTP answers, metrics).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub(crate) use nix::sys::signal::Signal;

/// The node binary cargo built for this test run.
pub(crate) fn node_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_guts-node"))
}

/// A loopback port that was free a moment ago. (The node refuses port 0 by design, so
/// tests pick ports; a collision shows up as a bind error naming the variable.)
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `guts-node` with `args` and `env` (on top of a cleared environment) to
/// completion, for subcommands and start-up failures.
pub(crate) fn run_to_exit(
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
pub(crate) struct TestNode {
    child: Option<Child>,
    pub(crate) api: SocketAddr,
    pub(crate) metrics: SocketAddr,
    /// The libp2p listen port (`GUTS_P2P_ADDR` on 127.0.0.1).
    pub(crate) p2p: u16,
    /// Git over SSH (`GUTS_SSH_ADDR` on 127.0.0.1).
    pub(crate) ssh: SocketAddr,
    pub(crate) data_dir: PathBuf,
    log_path: PathBuf,
    exit: Option<ExitStatus>,
    _dir: Option<tempfile::TempDir>,
}

/// How to start a node.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeOptions {
    /// Extra `GUTS_*` variables.
    pub(crate) env: Vec<(String, String)>,
    /// Reuse this data dir (restarts); a fresh temp dir otherwise.
    pub(crate) data_dir: Option<PathBuf>,
    /// Listen for peers on this port (a restart keeps its address); a free one
    /// otherwise.
    pub(crate) p2p_port: Option<u16>,
}

impl NodeOptions {
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub(crate) fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    pub(crate) fn p2p_port(mut self, port: u16) -> Self {
        self.p2p_port = Some(port);
        self
    }
}

pub(crate) const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

impl TestNode {
    /// A node with defaults, JSON logs at debug level and an admin token.
    pub(crate) fn start() -> TestNode {
        Self::start_with(NodeOptions::default())
    }

    pub(crate) fn start_with(options: NodeOptions) -> TestNode {
        let (mut dir, data_dir) = match &options.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let dir = tempfile::tempdir().unwrap();
                let data = dir.path().join("data");
                (Some(dir), data)
            }
        };
        std::fs::create_dir_all(&data_dir).unwrap();
        // Ports come from `free_port`, which another test may take between our probe
        // and the node's bind; the node then refuses to start, naming the variable.
        // That is the node being right, so try again with fresh ports.
        for attempt in 1..=5 {
            let mut node = Self::spawn(&options, &data_dir, dir.take());
            match node.try_wait_ready(Duration::from_secs(30)) {
                Ok(()) => return node,
                Err(logs) if logs.contains("Address already in use") && attempt < 5 => {
                    dir = node._dir.take();
                }
                Err(logs) => panic!("node did not become ready:\n{logs}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Starts a node without waiting for readiness (for tests of readiness itself);
    /// returns once it answers `/health/live`.
    pub(crate) fn start_unready(options: NodeOptions) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let mut node = Self::spawn(&options, &data, Some(dir));
        eventually(Duration::from_secs(30), "the node to be live", || {
            assert!(node.try_exit().is_none(), "node exited:\n{}", node.logs());
            let r = client().get(node.url("/health/live")).send().ok()?;
            (r.status() == 200).then_some(())
        });
        node
    }

    fn spawn(options: &NodeOptions, data_dir: &Path, dir: Option<tempfile::TempDir>) -> TestNode {
        let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let p2p = options.p2p_port.unwrap_or_else(free_port);
        // A restart may keep its SSH address (`GUTS_SSH_ADDR` among the options).
        let ssh: SocketAddr = options
            .env
            .iter()
            .find(|(k, _)| k == "GUTS_SSH_ADDR")
            .map_or_else(|| format!("127.0.0.1:{}", free_port()), |(_, v)| v.clone())
            .parse()
            .unwrap();
        let log_path = data_dir.with_extension(format!("{}.log", api.port()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(node_binary());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GUTS_DATA_DIR", data_dir)
            .env("GUTS_API_ADDR", api.to_string())
            .env("GUTS_METRICS_ADDR", metrics.to_string())
            .env("GUTS_LOG_FORMAT", "json")
            .env("GUTS_LOG_LEVEL", "debug")
            .env("GUTS_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("GUTS_P2P_ADDR", format!("/ip4/127.0.0.1/tcp/{p2p}"))
            .env("GUTS_SSH_ADDR", ssh.to_string())
            // No repository state is kept beyond the one in use unless a test asks
            // for a budget: every flow of these tests that moves between repositories
            // loads them from the store and evicts them again, so the cache is
            // exercised everywhere.
            .env("GUTS_CACHE_MB", "0");
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().unwrap();
        TestNode {
            child: Some(child),
            api,
            metrics,
            p2p,
            ssh,
            data_dir: data_dir.to_path_buf(),
            log_path,
            exit: None,
            _dir: dir,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.api, path)
    }

    /// The multiaddr peers dial to reach this node.
    pub(crate) fn p2p_addr(&self) -> String {
        format!("/ip4/127.0.0.1/tcp/{}", self.p2p)
    }

    pub(crate) fn metrics_url(&self, path: &str) -> String {
        format!("http://{}{}", self.metrics, path)
    }

    pub(crate) fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// Everything the node wrote to stdout and stderr so far.
    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The JSON log lines, parsed (non-JSON lines are skipped).
    pub(crate) fn log_lines(&self) -> Vec<serde_json::Value> {
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Polls `/health/ready` until 200; panics with the logs if the process dies or the
    /// deadline passes.
    /// Polls `/health/ready` until 200; `Err(logs)` if the process exits first or the
    /// deadline passes.
    pub(crate) fn try_wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_exit() {
                return Err(format!(
                    "exited during start-up with {status}:\n{}",
                    self.logs()
                ));
            }
            if let Ok(r) = client().get(self.url("/health/ready")).send()
                && r.status() == 200
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready in {within:?}:\n{}", self.logs()));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub(crate) fn signal(&self, signal: Signal) {
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
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
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
    pub(crate) fn stop(&mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("node did not stop:\n{}", self.logs()))
    }

    /// The value of the `peer_id` field of the "node ready" log line.
    pub(crate) fn peer_id(&self) -> String {
        self.log_lines()
            .iter()
            .find(|l| l["message"] == "node ready")
            .and_then(|l| l["peer_id"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("no 'node ready' line:\n{}", self.logs()))
    }

    /// A metric sample's value from `/metrics` (exact series text before the value).
    pub(crate) fn metric(&self, series: &str) -> Option<f64> {
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
pub(crate) fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A raw HTTP/1.1 exchange over one socket, for what a client library hides: partial
/// bodies, slow senders, exact bytes.
#[derive(Debug)]
pub(crate) struct RawRequest {
    stream: TcpStream,
}

impl RawRequest {
    /// Connects and sends `head` (request line and headers, without the blank line)
    /// followed by the first `body_prefix` bytes of the body.
    pub(crate) fn begin(addr: SocketAddr, head: &str, body_prefix: &[u8]) -> RawRequest {
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

    /// A second handle on the socket, for a thread that keeps sending while another
    /// waits for the answer.
    pub(crate) fn writer(&self) -> TcpStream {
        self.stream.try_clone().unwrap()
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
        self.stream.flush().unwrap();
    }

    /// Reads the response until the server closes or a full Content-Length body arrived.
    pub(crate) fn response(mut self) -> RawResponse {
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
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
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

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `within`.
pub(crate) fn eventually<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
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

/// Creates an account through the admin API; returns its first token.
#[track_caller]
pub(crate) fn create_user(node: &TestNode, login: &str) -> String {
    let r = client()
        .post(node.url("/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "login": login }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["login"], login);
    body["token"].as_str().unwrap().to_string()
}

/// Creates organization `login` through the admin API, `admin` its first admin.
#[track_caller]
pub(crate) fn create_org(node: &TestNode, login: &str, admin: &str) {
    let r = client()
        .post(node.url("/admin/orgs"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "login": login, "admin": admin }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
}

/// `method` on `/api/v3{path}` as the holder of `token`, with a JSON body: the status
/// and the body (as JSON, or as a string when it is not JSON).
pub(crate) fn api(
    node: &TestNode,
    method: reqwest::Method,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = client()
        .request(method, node.url(&format!("/api/v3{path}")))
        .header("Authorization", format!("token {token}"))
        .json(&body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// An in-process OTLP collector for the nodes of a test (`GUTS_OTLP_ENDPOINT` =
/// [`SpanSink::endpoint`]), drained as spans arrive: it holds a bounded queue, and
/// nodes exporting at debug level would fill it and stall their flush.
pub(crate) struct SpanSink {
    pub(crate) endpoint: String,
    spans: std::sync::mpsc::Receiver<Vec<(String, String)>>,
    _runtime: tokio::runtime::Runtime,
}

impl SpanSink {
    pub(crate) fn start() -> SpanSink {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mut collector = runtime
            .block_on(fake_opentelemetry_collector::FakeCollectorServer::start())
            .unwrap();
        let endpoint = collector.endpoint();
        let (tx, spans) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            loop {
                let batch = collector
                    .exported_spans(1, Duration::from_millis(200))
                    .await;
                let named: Vec<(String, String)> =
                    batch.into_iter().map(|s| (s.name, s.trace_id)).collect();
                if tx.send(named).is_err() {
                    return;
                }
            }
        });
        SpanSink {
            endpoint,
            spans,
            _runtime: runtime,
        }
    }

    /// The names of the spans of trace `trace_id` gathered until every one of
    /// `wanted` is among them, or 15 s passed (spans arrive in batches).
    pub(crate) fn names_in_trace(&self, trace_id: &str, wanted: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && !wanted.iter().all(|w| names.iter().any(|n| n == w)) {
            if let Ok(batch) = self.spans.recv_timeout(Duration::from_millis(500)) {
                names.extend(
                    batch
                        .into_iter()
                        .filter(|(_, trace)| trace == trace_id)
                        .map(|(name, _)| name),
                );
            }
        }
        names
    }
}

/// How many peers `node` has connected (its admin API's `/admin/peers`).
pub(crate) fn peer_count(node: &TestNode) -> usize {
    let r = client()
        .get(node.url("/admin/peers"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap();
    let body: serde_json::Value = r.json().unwrap();
    body["peers"].as_array().map_or(0, Vec::len)
}
