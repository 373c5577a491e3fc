#!/usr/bin/env python3
"""Webhook delivery benchmark: one release node on 127.0.0.1 and a receiver inside
this script (an HTTP server on loopback, standard library only) for a repository hook
subscribed to `issues` (JSON, signed with a secret; every signature is checked).

1. Drain of a backlog: the receiver is put on hold (it reads each request and answers
   nothing), so the node's one delivery in flight stalls while N issues are opened
   through the REST API (each acknowledged 201; each one's `issues.opened` event is
   then durably in the node's outbox). The node is stopped (SIGTERM) with the backlog
   on disk and nothing delivered, the receiver switched to answering 200 at once, and
   the node started again on the same data: it drains its outbox. Reported: the time
   from the start of the node to the first delivery and to the N-th distinct one
   (`X-GitHub-Delivery`), and events/s from the first to the N-th delivery. The
   `guts_webhook_queue_depth` gauge is sampled during the drain (its largest value is
   printed as a check that the backlog was there).
2. Latency: with the receiver answering 200, M issues are opened one at a time (the
   next once the previous one's event has arrived); each is timed from the moment the
   API answered 201 (the operation is acknowledged) until the receiver has the whole
   request of its `opened` event (matched by the issue number in the payload);
   p50/p90/p99/max.

Usage (after `cargo build --release -p guts-node --locked`; GUTS_NODE_BIN overrides
the binary, KEEP=1 keeps the node's directory and log):
    scripts/bench-webhooks.py [--backlog 1000] [--latency 300]
"""

import argparse
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GUTS_NODE_BIN", os.path.join(ROOT, "target/release/guts-node"))
ADMIN = "bench-admin-token-0123456789"
HOOK_SECRET = "bench-hook-secret-0123456789"
# Seconds one delivery may take (the node's ceiling): the stalled delivery must not
# time out while the backlog is built.
DELIVERY_TIMEOUT = 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def wait(what, check, within=300, every=0.01):
    deadline = time.time() + within
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"timed out waiting for {what}")


# ---- The receiver ----


class Receiver(ThreadingHTTPServer):
    """Records the first arrival of each delivery id; answers 200, or holds requests."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.release = threading.Event()  # set: answer; clear: hold every request
        self.release.set()
        self.reset()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def reset(self):
        with self.lock:
            self.requests = 0
            self.bad_signatures = 0
            self.first = {}  # delivery id -> (perf_counter at arrival, payload)
            self.by_issue = {}  # issue number -> perf_counter of its first `opened`

    def hold(self):
        self.release.clear()

    def answer(self):
        self.release.set()

    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"


class Handler(BaseHTTPRequestHandler):
    server: Receiver
    protocol_version = "HTTP/1.1"
    # The answer's head and body are separate writes: without TCP_NODELAY, Nagle and
    # the sender's delayed ACK hold the body ~40 ms, and the node's next batch with it.
    disable_nagle_algorithm = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        arrived = time.perf_counter()
        srv = self.server
        if not srv.release.is_set():
            srv.release.wait()
            # The node gave up on this attempt or was stopped meanwhile: the answer
            # would go nowhere, and this arrival must not count.
            self.close_connection = True
            return
        expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        good = hmac.compare_digest(expected, self.headers.get("X-Hub-Signature-256", ""))
        guid = self.headers.get("X-GitHub-Delivery", "")
        event = self.headers.get("X-GitHub-Event", "")
        with srv.changed:
            srv.requests += 1
            srv.bad_signatures += not good
            if guid not in srv.first:
                payload = json.loads(body) if event == "issues" else {}
                srv.first[guid] = arrived
                if payload.get("action") == "opened":
                    srv.by_issue.setdefault(payload["issue"]["number"], arrived)
            srv.changed.notify_all()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


# ---- The node ----


class Node:
    """A release node whose directory, ports and settings survive a restart."""

    def __init__(self, root):
        self.dir = os.path.join(root, "node")
        os.makedirs(self.dir)
        self.api = free_port()
        self.metrics = free_port()
        self.env = {
            "PATH": os.environ["PATH"],
            "GUTS_DATA_DIR": os.path.join(self.dir, "data"),
            "GUTS_API_ADDR": f"127.0.0.1:{self.api}",
            "GUTS_METRICS_ADDR": f"127.0.0.1:{self.metrics}",
            "GUTS_P2P_ADDR": f"/ip4/127.0.0.1/tcp/{free_port()}",
            "GUTS_ADMIN_TOKEN": ADMIN,
            "GUTS_LOG_LEVEL": "warn",
            "GUTS_RATE_LIMIT_AUTHENTICATED_PER_HOUR": "100000000",
            "GUTS_RATE_LIMIT_ANONYMOUS_PER_HOUR": "100000000",
            "GUTS_WEBHOOK_ALLOWED_NETS": "127.0.0.0/8",
            "GUTS_WEBHOOK_TIMEOUT": str(DELIVERY_TIMEOUT),
            "GUTS_WEBHOOK_RETRY_BASE_MS": "100",
        }
        self.log = open(os.path.join(self.dir, "log"), "a")
        self.proc = None
        self.local = threading.local()

    def start(self):
        """Starts the process; returns its perf_counter start time once it is ready."""
        started = time.perf_counter()
        self.proc = subprocess.Popen([BIN], env=self.env, stdout=self.log, stderr=self.log)
        self.local = threading.local()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.request("GET", "/health/ready", auth=None)[0] == 200:
                    return started
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit(f"the node did not become ready; see {self.dir}/log")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def request(self, method, path, body=None, auth=f"Bearer {ADMIN}", port=None):
        """(status, parsed body) over a keep-alive connection of this thread."""
        port = port or self.api
        conns = self.local.__dict__.setdefault("conns", {})
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = auth
        data = None if body is None else json.dumps(body).encode()
        for retry in (True, False):
            conn = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conns[port] = conn
            try:
                conn.request(method, path, body=data, headers=headers)
                r = conn.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                conns.pop(port, None)
                if not retry:
                    raise
        ctype = r.getheader("Content-Type", "")
        return r.status, json.loads(raw) if raw and "json" in ctype else raw

    def queue_depth(self):
        """The `guts_webhook_queue_depth` gauge, or None."""
        try:
            status, text = self.request("GET", "/metrics", auth=None, port=self.metrics)
        except OSError:
            return None
        if status != 200:
            return None
        for line in text.decode().splitlines():
            if line.startswith("guts_webhook_queue_depth "):
                return int(float(line.split()[1]))
        return None


def expect(what, answer, status):
    if answer[0] != status:
        raise SystemExit(f"{what}: HTTP {answer[0]} {answer[1]!r}")
    return answer[1]


def open_issues(node, token, repo, count, threads=4):
    """Opens `count` issues on `threads` connections; the numbers acknowledged (201)."""
    numbers, errors = [], []

    def work(part):
        try:
            for i in part:
                issue = expect(
                    "opening an issue",
                    node.request("POST", f"/api/v3/repos/{repo}/issues",
                                 {"title": f"backlog {i}"}, auth=f"token {token}"),
                    201,
                )
                numbers.append(issue["number"])
        except BaseException as e:  # noqa: BLE001 - reported by the caller
            errors.append(e)

    workers = [threading.Thread(target=work, args=(range(t, count, threads),)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise SystemExit(f"opening issues failed: {errors[0]}")
    return numbers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backlog", type=int, default=1000, help="events queued, then drained")
    ap.add_argument("--latency", type=int, default=300, help="issues timed one at a time")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="guts-bench-webhooks-")
    receiver = Receiver()
    node = Node(root)
    rows = []
    try:
        node.start()
        token = expect("creating alice", node.request("POST", "/admin/users", {"login": "alice"}), 201)["token"]
        user = f"token {token}"
        expect("creating the repository",
               node.request("POST", "/api/v3/user/repos", {"name": "bench"}, auth=user), 201)
        repo = "alice/bench"
        expect("creating the hook", node.request("POST", f"/api/v3/repos/{repo}/hooks", {
            "name": "web",
            "config": {"url": receiver.url(), "content_type": "json", "secret": HOOK_SECRET},
            "events": ["issues"],
            "active": True,
        }, auth=user), 201)

        # 1. Backlog: build it behind a stalled delivery, stop the node, drain on restart.
        receiver.hold()
        began = time.perf_counter()
        numbers = open_issues(node, token, repo, args.backlog)
        built = time.perf_counter() - began
        if time.perf_counter() - began > DELIVERY_TIMEOUT * 0.8:
            print("warning: the backlog took close to the delivery timeout to build", file=sys.stderr)
        node.stop()
        receiver.reset()
        if len(set(numbers)) != args.backlog:
            raise SystemExit(f"{len(set(numbers))} distinct issues acknowledged, not {args.backlog}")
        receiver.answer()
        depths = []
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                depth = node.queue_depth()
                if depth is not None:
                    depths.append(depth)
                time.sleep(0.05)

        started = node.start()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        with receiver.changed:
            ok = receiver.changed.wait_for(lambda: len(receiver.by_issue) >= args.backlog, timeout=600)
            arrivals = sorted(receiver.by_issue.values())
            issues = set(receiver.by_issue)
            drain_counts = (receiver.requests, len(receiver.first), receiver.bad_signatures)
        sampling.set()
        sampler.join()
        if not ok:
            raise SystemExit(f"only {len(issues)} of {args.backlog} issues' events arrived in 600 s")
        if issues != set(numbers):
            raise SystemExit("the events received are not those of the issues opened")
        first, last = arrivals[0], arrivals[args.backlog - 1]
        rows += [
            (f"backlog: {args.backlog} issues opened (4 connections), receiver stalled", f"{built:.2f} s",
             f"{args.backlog / built:.0f} ops/s acknowledged"),
            ("backlog: node start -> first delivery", f"{(first - started) * 1000:.0f} ms",
             "start includes process start and readiness"),
            (f"backlog: node start -> {args.backlog}th distinct delivery", f"{last - started:.2f} s", ""),
            (f"backlog: drain, first -> {args.backlog}th distinct delivery", f"{last - first:.2f} s",
             f"{(args.backlog - 1) / (last - first):.0f} events/s"),
            ("backlog: largest guts_webhook_queue_depth sampled", str(max(depths, default="n/a")),
             f"{len(depths)} samples every 50 ms"),
            ("receiver: requests / distinct / bad signatures (drain)", " / ".join(map(str, drain_counts)),
             "a ping or the stalled attempt may add one"),
        ]

        # 2. Latency: one issue at a time, acknowledged -> received.
        receiver.reset()
        latencies = []
        for i in range(args.latency):
            issue = expect("opening an issue", node.request(
                "POST", f"/api/v3/repos/{repo}/issues", {"title": f"latency {i}"}, auth=user), 201)
            acked = time.perf_counter()
            n = issue["number"]
            with receiver.changed:
                if not receiver.changed.wait_for(lambda: n in receiver.by_issue, timeout=60):
                    raise SystemExit(f"issue {n}'s event did not arrive within 60 s")
                latencies.append((receiver.by_issue[n] - acked) * 1000)
        rows.append((
            f"latency: 201 from the API -> event at the receiver, {len(latencies)} issues",
            f"p50 {pct(latencies, 50):.1f} ms",
            f"p90 {pct(latencies, 90):.1f} ms, p99 {pct(latencies, 99):.1f} ms, "
            f"max {max(latencies):.1f} ms, mean {statistics.mean(latencies):.1f} ms",
        ))
        with receiver.lock:
            rows.append(("receiver: requests / distinct / bad signatures (latency run)",
                         f"{receiver.requests} / {len(receiver.first)} / {receiver.bad_signatures}", ""))
    finally:
        node.stop()
        receiver.answer()
        receiver.shutdown()
        if os.environ.get("KEEP") is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}", file=sys.stderr)

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>14}  notes")
    for what, value, notes in rows:
        print(f"{what:<{width}}  {value:>14}  {notes}")
    print(f"command: {' '.join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])}")


if __name__ == "__main__":
    main()
