//! End-to-end tests of the node foundation: the real binary, real sockets, real signals,
//! a real Prometheus server and an in-process OTLP collector.

use std::time::{Duration, Instant};

use crate::harness::*;

fn admin_put_head(len: usize) -> String {
    format!(
        "PUT /admin/log-level HTTP/1.1\r\nHost: x\r\nAuthorization: token {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {len}"
    )
}

const LEVEL_BODY: &[u8] = br#"{"level":"debug"}"#;

#[test]
fn defaults_work_with_no_configuration_at_all() {
    // Truly nothing: no GUTS_* variables, no file; data goes to ./guts-data under cwd and
    // the listeners take their default ports (so this is the one test that needs 8080
    // and 9090 free).
    let dir = tempfile::tempdir().unwrap();
    // Killed on drop, so a failing assertion does not leave it holding 8080.
    let mut child = KillOnDrop(
        std::process::Command::new(node_binary())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let http = client();
    let ready = eventually(Duration::from_secs(20), "default node ready", || {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("node exited early: {status} (are ports 8080/9090 taken?)");
        }
        let r = http.get("http://127.0.0.1:8080/health/ready").send().ok()?;
        (r.status() == 200).then_some(r)
    });
    assert_eq!(ready.status(), 200);
    for probe in ["/health/live", "/health/startup", "/health"] {
        let r = http
            .get(format!("http://127.0.0.1:8080{probe}"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{probe}");
    }
    let r = http.get("http://127.0.0.1:9090/metrics").send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("guts_http_requests_total"));
    assert!(dir.path().join("guts-data/node.key").exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.0.wait().unwrap().success());
}

/// A child process killed when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn probes_report_each_check_as_json() {
    let node = TestNode::start();
    let http = client();
    for (path, listener) in [
        ("/health", node.url("/health")),
        ("/health", node.metrics_url("/health")),
    ] {
        let r = http.get(listener).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let report: serde_json::Value = r.json().unwrap();
        assert_eq!(report["status"], "pass");
        let names: Vec<&str> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"data_dir") && names.contains(&"startup"),
            "{report}"
        );
        assert!(report["checks"][2]["latency_ms"].is_number(), "{report}");
    }
}

#[test]
fn readiness_fails_when_the_data_dir_is_not_writable() {
    let node = TestNode::start();
    // Replace the probe file's directory permissions: root ignores mode bits, so make
    // the probe path itself unwritable by turning it into a directory.
    let probe = node.data_dir.join(".health-probe");
    let _ = std::fs::remove_file(&probe);
    std::fs::create_dir(&probe).unwrap();
    let r = client().get(node.url("/health/ready")).send().unwrap();
    assert_eq!(r.status(), 503);
    let report: serde_json::Value = r.json().unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "data_dir")
        .unwrap()
        .clone();
    assert_eq!(check["status"], "fail", "{report}");
    // Liveness is unaffected: a full disk is no reason to restart the process.
    assert_eq!(
        client()
            .get(node.url("/health/live"))
            .send()
            .unwrap()
            .status(),
        200
    );
    std::fs::remove_dir(&probe).unwrap();
    assert_eq!(
        client()
            .get(node.url("/health/ready"))
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn invalid_configuration_exits_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let data = data.to_str().unwrap();
    let short_key = "a".repeat(63);
    let cases: &[(&str, &str)] = &[
        ("GUTS_API_ADDR", "not-an-address"),
        ("GUTS_API_ADDR", "127.0.0.1:0"),
        ("GUTS_METRICS_ADDR", "127.0.0.1:0"),
        ("GUTS_LOG_LEVEL", "loud"),
        ("GUTS_PRIVATE_KEY", &short_key),
        ("GUTS_REQUEST_TIMEOUT", "0"),
        ("GUTS_SHUTDOWN_TIMEOUT", "0"),
        ("GUTS_MAX_CONNECTIONS", "0"),
        ("GUTS_LOG_FORMAT", "xml"),
    ];
    for (var, value) in cases {
        for args in [&[][..], &["config", "check"][..]] {
            let (status, _, stderr) =
                run_to_exit(args, &[(var, value), ("GUTS_DATA_DIR", data)], dir.path());
            assert_eq!(status.code(), Some(2), "{var}={value} {args:?}: {stderr}");
            let lines: Vec<&str> = stderr.lines().collect();
            assert_eq!(lines.len(), 1, "one line: {stderr}");
            assert!(lines[0].contains(var), "{var}: {stderr}");
            if *var == "GUTS_PRIVATE_KEY" {
                assert!(!stderr.contains(value), "secret echoed: {stderr}");
            } else {
                assert!(stderr.contains(value), "value missing: {stderr}");
            }
        }
    }
    assert!(
        !std::path::Path::new(data).exists(),
        "a refused config must not touch the data dir"
    );

    // A bad file key and an unreadable file are refused too.
    let file = dir.path().join("guts.toml");
    std::fs::write(&file, "api_adr = \"127.0.0.1:1\"\n").unwrap();
    let (status, _, stderr) = run_to_exit(
        &["--config", file.to_str().unwrap(), "config", "check"],
        &[],
        dir.path(),
    );
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("api_adr"), "{stderr}");
    let (status, _, _) = run_to_exit(
        &["config", "check"],
        &[("GUTS_CONFIG", "/nonexistent.toml")],
        dir.path(),
    );
    assert_eq!(status.code(), Some(2));
}

#[test]
fn config_check_prints_effective_toml_redacted_and_warns_on_unknown_vars() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("guts.toml");
    std::fs::write(&file, "request_timeout = 5\nlog_level = \"warn\"\n").unwrap();
    let key = "c".repeat(64);
    let (status, stdout, stderr) = run_to_exit(
        &["config", "check"],
        &[
            ("GUTS_CONFIG", file.to_str().unwrap()),
            ("GUTS_LOG_LEVEL", "error"),
            ("GUTS_PRIVATE_KEY", &key),
            ("GUTS_ADMIN_TOKEN", "admin-token-that-is-long"),
            ("GUTS_TYPO_VARIABLE", "1"),
        ],
        dir.path(),
    );
    assert!(status.success(), "{stderr}");
    let effective: toml::Table = stdout.parse().unwrap();
    assert_eq!(effective["request_timeout"].as_integer(), Some(5));
    assert_eq!(effective["log_level"].as_str(), Some("error"));
    assert_eq!(effective["private_key"].as_str(), Some("<redacted>"));
    assert!(!stdout.contains(&key) && !stdout.contains("admin-token-that-is-long"));
    assert!(stderr.contains("GUTS_TYPO_VARIABLE"), "{stderr}");
}

#[test]
fn keygen_prints_a_usable_key_and_its_peer_id() {
    let dir = tempfile::tempdir().unwrap();
    let (status, stdout, _) = run_to_exit(&["keygen"], &[], dir.path());
    assert!(status.success());
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap()
            .to_string()
    };
    let (key, peer_id) = (field("private_key"), field("peer_id"));
    assert_eq!(key.len(), 64);
    assert!(peer_id.starts_with("12D3KooW"), "{peer_id}");

    let node = TestNode::start_with(NodeOptions::default().env("GUTS_PRIVATE_KEY", &key));
    assert_eq!(node.peer_id(), peer_id);
    assert!(!node.data_dir.join("node.key").exists());
}

#[test]
fn restart_keeps_the_peer_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = TestNode::start_with(NodeOptions::default().data_dir(&data));
    let id = first.peer_id();
    assert!(first.stop().success());
    let key_file = data.join("node.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let mut second = TestNode::start_with(NodeOptions::default().data_dir(&data));
    assert_eq!(second.peer_id(), id);
    let info: serde_json::Value = client()
        .get(second.url("/admin/info"))
        .header("Authorization", format!("token {ADMIN_TOKEN}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info["peer_id"], id.as_str());
    assert!(second.stop().success());
}

#[test]
fn sigterm_drains_an_in_flight_request_and_exits_0() {
    let mut node = TestNode::start_with(NodeOptions::default().env("GUTS_SHUTDOWN_TIMEOUT", "10"));
    // A request whose body is still arriving: in flight from the server's view.
    let mut slow = RawRequest::begin(
        node.api,
        &admin_put_head(LEVEL_BODY.len()),
        &LEVEL_BODY[..5],
    );
    std::thread::sleep(Duration::from_millis(200));
    let signalled = Instant::now();
    node.signal(Signal::SIGTERM);

    // Readiness turns 503 at once (observed on the metrics listener, which stays up
    // until the drain is over) ...
    let ready = eventually(Duration::from_secs(5), "readiness 503", || {
        let r = client()
            .get(node.metrics_url("/health/ready"))
            .send()
            .ok()?;
        (r.status() == 503).then_some(r)
    });
    let report: serde_json::Value = ready.json().unwrap();
    assert!(report.to_string().contains("draining"), "{report}");
    // ... and the API listener no longer accepts new connections.
    eventually(Duration::from_secs(5), "API listener closed", || {
        std::net::TcpStream::connect(node.api)
            .is_err()
            .then_some(())
    });
    assert!(
        node.wait_exit(Duration::from_millis(300)).is_none(),
        "exited before the request finished"
    );

    // The in-flight request completes normally.
    slow.send(&LEVEL_BODY[5..]);
    let response = slow.response();
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.json()["level"], "debug");

    let status = node.wait_exit(Duration::from_secs(10)).expect("node exits");
    assert!(status.success(), "exit status {status}:\n{}", node.logs());
    assert!(signalled.elapsed() < Duration::from_secs(10));
    assert!(node.logs().contains("shutdown complete"));
}

#[test]
fn a_second_signal_exits_at_once_and_a_stuck_drain_times_out() {
    let mut node = TestNode::start_with(NodeOptions::default().env("GUTS_SHUTDOWN_TIMEOUT", "30"));
    let _slow = RawRequest::begin(
        node.api,
        &admin_put_head(LEVEL_BODY.len()),
        &LEVEL_BODY[..3],
    );
    std::thread::sleep(Duration::from_millis(200));
    node.signal(Signal::SIGTERM);
    assert!(node.wait_exit(Duration::from_millis(500)).is_none());
    node.signal(Signal::SIGINT);
    let status = node
        .wait_exit(Duration::from_secs(3))
        .expect("second signal ends the process");
    assert_eq!(status.code(), Some(130));

    // With a short timeout and a client that never finishes, the node gives up and
    // says so with a non-zero exit instead of hanging.
    let mut node = TestNode::start_with(
        NodeOptions::default()
            .env("GUTS_SHUTDOWN_TIMEOUT", "1")
            .env("GUTS_REQUEST_TIMEOUT", "60"),
    );
    let _stuck = RawRequest::begin(
        node.api,
        &admin_put_head(LEVEL_BODY.len()),
        &LEVEL_BODY[..3],
    );
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    node.signal(Signal::SIGTERM);
    let status = node
        .wait_exit(Duration::from_secs(5))
        .expect("bounded shutdown");
    assert_eq!(status.code(), Some(1));
    assert!(t.elapsed() < Duration::from_secs(4));
}

#[test]
fn edge_errors_are_github_json() {
    let node = TestNode::start_with(NodeOptions::default().env("GUTS_MAX_REQUEST_SIZE_MB", "1"));
    let http = client();
    let github_error = |r: reqwest::blocking::Response, status: u16| -> serde_json::Value {
        assert_eq!(r.status(), status);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let body: serde_json::Value = r.json().unwrap();
        assert!(body["message"].is_string(), "{body}");
        assert!(body["documentation_url"].is_string(), "{body}");
        body
    };

    // Unknown REST route (the web interface serves everything outside `/api` and
    // `/admin`), counted under a bounded label rather than its raw path.
    let body = github_error(
        http.get(node.url("/api/v3/no/such/route")).send().unwrap(),
        404,
    );
    assert_eq!(body["message"], "Not Found");
    let series = r#"guts_http_requests_total{method="GET",route="/api/{*rest}",status="404"}"#;
    assert_eq!(node.metric(series), Some(1.0));
    let metrics = client()
        .get(node.metrics_url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!metrics.contains("/no/such/route"));

    // Oversized body, declared up front: refused from the headers alone. (Only the
    // headers are sent: the node answers at once and closes, and a client still
    // writing the body would see a broken pipe instead of the answer.)
    let limit = 1024 * 1024;
    let raw = RawRequest::begin(
        node.api,
        &format!(
            "PUT /admin/log-level HTTP/1.1\r\nHost: x\r\nAuthorization: token {ADMIN_TOKEN}\r\nContent-Length: {}",
            2 * limit
        ),
        b"",
    );
    let response = raw.response();
    assert_eq!(response.status, 413);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert!(response.json()["message"].is_string());

    // Oversized body, chunked (no Content-Length): caught while reading. Exactly one
    // byte more than the limit is sent, so the node has read everything it was sent
    // when it answers.
    let mut framed = format!("{:x}\r\n", limit + 1).into_bytes();
    framed.extend(std::iter::repeat_n(b' ', limit + 1));
    let raw = RawRequest::begin(
        node.api,
        &format!(
            "PUT /admin/log-level HTTP/1.1\r\nHost: x\r\nAuthorization: token {ADMIN_TOKEN}\r\nTransfer-Encoding: chunked"
        ),
        &framed,
    );
    let response = raw.response();
    assert_eq!(response.status, 413);
    assert!(response.json()["message"].is_string());

    // Wrong method, bad JSON, bad value, bad credentials, missing credentials.
    github_error(
        http.delete(node.url("/admin/log-level")).send().unwrap(),
        405,
    );
    let admin = |r: reqwest::blocking::RequestBuilder| {
        r.header("Authorization", format!("token {ADMIN_TOKEN}"))
    };
    let body = github_error(
        admin(http.put(node.url("/admin/log-level")))
            .body("{")
            .send()
            .unwrap(),
        400,
    );
    assert_eq!(body["message"], "Problems parsing JSON");
    let body = github_error(
        admin(http.put(node.url("/admin/log-level")))
            .body(r#"{"level":"loud"}"#)
            .send()
            .unwrap(),
        422,
    );
    assert_eq!(body["errors"][0]["field"], "level");
    github_error(http.get(node.url("/admin/info")).send().unwrap(), 401);
    github_error(
        http.get(node.url("/admin/info"))
            .bearer_auth("wrong-token-wrong-token")
            .send()
            .unwrap(),
        401,
    );
}

#[test]
fn request_ids_round_trip_and_are_generated() {
    let node = TestNode::start();
    let http = client();
    let r = http
        .get(node.url("/api/nothing"))
        .header("x-request-id", "req-42.abc")
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-42.abc");
    let r = http.get(node.url("/api/nothing")).send().unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(generated.len(), 36, "{generated}");
    // A hostile id is replaced, not echoed.
    let r = http
        .get(node.url("/api/nothing"))
        .header("x-request-id", "a b\tc")
        .send()
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "a b\tc");

    // The request log line carries route template, status, duration, both ids.
    let line = eventually(Duration::from_secs(5), "request log line", || {
        node.log_lines()
            .into_iter()
            .find(|l| l["message"] == "request" && l["span"]["request_id"] == "req-42.abc")
    });
    assert_eq!(line["span"]["route"], "/api/{*rest}");
    assert_eq!(line["span"]["method"], "GET");
    assert_eq!(line["status"], 404);
    assert!(line["duration_ms"].is_number());
    assert_eq!(
        line["span"]["trace_id"].as_str().unwrap().len(),
        32,
        "{line}"
    );
}

#[test]
fn request_timeout_and_saturation_answer_408_and_503() {
    let node = TestNode::start_with(
        NodeOptions::default()
            .env("GUTS_REQUEST_TIMEOUT", "1")
            .env("GUTS_MAX_CONNECTIONS", "1"),
    );
    // One request holds the only slot ...
    let slow = RawRequest::begin(
        node.api,
        &admin_put_head(LEVEL_BODY.len()),
        &LEVEL_BODY[..2],
    );
    std::thread::sleep(Duration::from_millis(200));
    // ... so another is turned away with 503 and Retry-After,
    let r = client()
        .get(node.url("/admin/info"))
        .header("Authorization", format!("token {ADMIN_TOKEN}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    // while probes still answer (they are outside the limit),
    assert_eq!(
        client()
            .get(node.url("/health/live"))
            .send()
            .unwrap()
            .status(),
        200
    );
    // and the slow one ends with 408 once GUTS_REQUEST_TIMEOUT passes.
    let response = slow.response();
    assert_eq!(response.status, 408);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert!(response.json()["message"].is_string());
    let r = client()
        .get(node.url("/admin/info"))
        .header("Authorization", format!("token {ADMIN_TOKEN}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn secrets_never_reach_the_logs() {
    let private_key = "d".repeat(64);
    let user_token = "ghp_usertokenthatmustnotleak0123456789";
    let mut node = TestNode::start_with(
        NodeOptions::default()
            .env("GUTS_LOG_LEVEL", "trace")
            .env("GUTS_PRIVATE_KEY", &private_key),
    );
    let http = client();
    for path in ["/admin/info", "/admin/log-level", "/nothing", "/health"] {
        http.get(node.url(path))
            .header("Authorization", format!("token {user_token}"))
            .send()
            .unwrap();
        http.get(node.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap();
        http.get(node.url(path))
            .basic_auth("someone", Some(user_token))
            .send()
            .unwrap();
    }
    http.put(node.url("/admin/log-level"))
        .bearer_auth(ADMIN_TOKEN)
        .body(format!(r#"{{"level":"{user_token}"}}"#))
        .send()
        .unwrap();
    assert!(node.stop().success());
    let logs = node.logs();
    assert!(
        logs.lines().count() > 10,
        "expected trace-level logs:\n{logs}"
    );
    for secret in [user_token, ADMIN_TOKEN, private_key.as_str()] {
        assert!(!logs.contains(secret), "secret {secret} leaked into logs");
    }
    // base64 of the Basic credentials must not appear either.
    let basic = base64_encode(format!("someone:{user_token}").as_bytes());
    assert!(!logs.contains(&basic));
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn spans_are_exported_over_otlp_and_join_an_incoming_trace() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut collector = rt
        .block_on(fake_opentelemetry_collector::FakeCollectorServer::start())
        .unwrap();
    let mut node = TestNode::start_with(
        NodeOptions::default().env("GUTS_OTLP_ENDPOINT", &collector.endpoint()),
    );
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let r = client()
        .get(node.url("/admin/info"))
        .bearer_auth(ADMIN_TOKEN)
        .header("traceparent", format!("00-{trace_id}-{parent_span}-01"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(node.stop().success(), "{}", node.logs());

    let spans = rt.block_on(collector.exported_spans(1, Duration::from_secs(10)));
    let request = spans
        .iter()
        .find(|s| s.trace_id == trace_id)
        .unwrap_or_else(|| panic!("no span joined the incoming trace: {spans:#?}"));
    assert_eq!(request.name, "request");
    assert_eq!(request.parent_span_id, parent_span);
    // The fake collector renders attribute values in their Debug form.
    let route = request.attributes.get("route").cloned().unwrap_or_default();
    assert!(route.contains("\"/admin/info\""), "{route}");
    // The log line of that request carries the same trace id.
    assert!(
        node.log_lines()
            .iter()
            .any(|l| l["message"] == "request" && l["span"]["trace_id"] == trace_id)
    );
}

#[test]
fn prometheus_scrapes_the_metrics_port() {
    let prometheus = which("prometheus").expect(
        "the prometheus binary is required (Debian package `prometheus`; scripts/test.sh installs it)",
    );
    let node = TestNode::start();
    let http = client();
    for _ in 0..3 {
        http.get(node.url("/api/nothing")).send().unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: guts\n    static_configs:\n      - targets: ['{}']\n",
            node.metrics
        ),
    )
    .unwrap();
    let web = format!("127.0.0.1:{}", free_port());
    let mut prom = std::process::Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct KillOnDrop<'a>(&'a mut std::process::Child);
    impl Drop for KillOnDrop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = KillOnDrop(&mut prom);

    let query = |q: &str| -> Option<f64> {
        let r: serde_json::Value = http
            .get(format!("http://{web}/api/v1/query"))
            .query(&[("query", q)])
            .send()
            .ok()?
            .json()
            .ok()?;
        r["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    let up = eventually(Duration::from_secs(60), "prometheus target up", || {
        query("up{job=\"guts\"}").filter(|v| *v == 1.0)
    });
    assert_eq!(up, 1.0);
    let series =
        "sum(guts_http_requests_total{job=\"guts\",route=\"/api/{*rest}\",status=\"404\"})";
    let before = eventually(
        Duration::from_secs(30),
        "guts_http_requests_total scraped",
        || query(series),
    );
    assert!(before >= 3.0, "{before}");
    for _ in 0..5 {
        http.get(node.url("/api/nothing")).send().unwrap();
    }
    let after = eventually(Duration::from_secs(30), "counter to move", || {
        query(series).filter(|v| *v >= before + 5.0)
    });
    assert!(after >= before + 5.0);
    // The histogram families are there too.
    assert!(query("sum(guts_http_request_duration_seconds_count{job=\"guts\"})").is_some());
    assert!(query("sum(guts_http_response_size_bytes_count{job=\"guts\"})").is_some());
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
}
