#!/usr/bin/env python3
"""Webhook delivery benchmark: one release node on 127.0.0.1 and a receiver inside
this script (an HTTP server on loopback, standard library only) for a repository hook
subscribed to `issues` (JSON, signed with a secret; every signature is checked).

1. Backlog: the receiver is put on hold (it reads each request and answers nothing),
   so each of the node's delivery slots stalls on a held request while N issues are
   opened through the REST API on 4 connections (each
   acknowledged 201, so each one's `issues.opened` event is durably in the node's
   outbox). The node is stopped (SIGTERM) with that backlog on disk and nothing
   delivered, the receiver switched to answering 200 at once, and the node started
   again on the same data: it drains the backlog. Reported: node start -> first
   delivery and -> N-th distinct one (`X-GitHub-Delivery`), and events/s from the
   first to the N-th. `guts_webhook_queue_depth` is sampled during the drain; its
   largest value shows the backlog was there. (A closed port would not do: every
   event would be attempted once and scheduled for a retry, and the drain would then
   follow the backoff schedule, not the node's speed.)
2. Live: N more issues opened on 4 connections with the receiver answering; time from
   the first request to the last event received, and 201 -> event per issue (which
   here includes the wait in the queue).
3. Latency: M issues opened one at a time (the next once the previous one's event
   arrived, or after 5 s); each timed from the API's 201 (the operation is
   acknowledged) until the receiver has the whole request of its `opened` event
   (matched by the issue number in the payload); p50/p90/p99/max.

Every phase also counts lost events: acknowledged issues whose event has not arrived
once `--quiet` seconds passed without any arrival (the queue depth then is printed:
0 means nothing is waiting for a retry either). The receiver checks every signature
(`X-Hub-Signature-256`, HMAC-SHA256 under the hook's secret).

Usage (after `cargo build --release -p guts-node --locked`; GUTS_NODE_BIN overrides
the binary, KEEP=1 keeps the node's directory and log):
    scripts/bench-webhooks.py [--backlog 1000] [--latency 300] [--quiet 15]
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
            self.first = {}  # delivery id -> perf_counter of its first arrival
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
    # the sender's delayed ACK hold the body ~40 ms, and that delivery slot with it.
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


def open_issues(node, user, repo, count, title, threads=4):
    """Opens `count` issues on `threads` keep-alive connections.

    Answers {number: perf_counter when the API answered 201}."""
    acked, errors = {}, []

    def work(part):
        try:
            for i in part:
                issue = expect("opening an issue", node.request(
                    "POST", f"/api/v3/repos/{repo}/issues", {"title": f"{title} {i}"}, auth=user), 201)
                acked[issue["number"]] = time.perf_counter()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=work, args=(range(t, count, threads),)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise SystemExit(f"opening issues failed: {errors[0]}")
    if len(acked) != count:
        raise SystemExit(f"{len(acked)} distinct issues acknowledged, not {count}")
    return acked


def settle(receiver, numbers, quiet):
    """Waits until every issue in `numbers` has its event, or none arrived for `quiet`
    seconds; answers {number: arrival} of those that arrived."""
    with receiver.changed:
        while True:
            seen = len(receiver.by_issue)
            if receiver.changed.wait_for(lambda: all(n in receiver.by_issue for n in numbers), timeout=quiet):
                break
            if len(receiver.by_issue) == seen:
                break
        return {n: receiver.by_issue[n] for n in numbers if n in receiver.by_issue}


def lost_note(node, acked, arrived, quiet):
    missing = sorted(set(acked) - set(arrived))
    if not missing:
        return "0", "every acknowledged issue's event arrived"
    shown = ", ".join(map(str, missing[:8])) + (", ..." if len(missing) > 8 else "")
    return (f"{len(missing)} of {len(acked)}",
            f"no event after {quiet} s without arrivals, queue depth then {node.queue_depth()}: "
            f"issues {shown}")


def summary(values):
    return (f"p90 {pct(values, 90):.1f} ms, p99 {pct(values, 99):.1f} ms, "
            f"max {max(values):.1f} ms, mean {statistics.mean(values):.1f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backlog", type=int, default=1000, help="events queued, then drained")
    ap.add_argument("--latency", type=int, default=300, help="issues timed one at a time")
    ap.add_argument("--quiet", type=int, default=15,
                    help="seconds without a new event after which the missing ones count as lost")
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

        # 1. Backlog: built behind a stalled delivery, the node stopped, drained on restart.
        receiver.hold()
        began = time.perf_counter()
        acked = open_issues(node, user, repo, args.backlog, "backlog")
        built = time.perf_counter() - began
        if built > DELIVERY_TIMEOUT * 0.8:
            print("warning: the backlog took close to the delivery timeout to build", file=sys.stderr)
        node.stop()
        receiver.reset()
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
        arrived = settle(receiver, acked, args.quiet)
        sampling.set()
        sampler.join()
        with receiver.lock:
            counts = (receiver.requests, len(receiver.first), receiver.bad_signatures)
        times = sorted(arrived.values())
        rows.append((f"backlog: {args.backlog} issues opened (4 connections), receiver stalled",
                     f"{built:.2f} s", f"{args.backlog / built:.0f} ops/s acknowledged"))
        if times:
            first, last, k = times[0], times[-1], len(times)
            rows += [
                ("backlog: node start -> first delivery", f"{(first - started) * 1000:.0f} ms",
                 "from spawning the process (readiness included)"),
                (f"backlog: node start -> last ({k}th) distinct delivery", f"{last - started:.2f} s", ""),
                (f"backlog: drain, first -> {k}th distinct delivery", f"{last - first:.2f} s",
                 f"{(k - 1) / max(last - first, 1e-9):.0f} events/s"),
            ]
        rows += [
            ("backlog: largest guts_webhook_queue_depth sampled", str(max(depths, default="n/a")),
             f"{len(depths)} samples every 50 ms from readiness"),
            ("backlog: requests / distinct ids / bad signatures", " / ".join(map(str, counts)),
             "the stalled attempt (ping or first issue) is sent again"),
            ("backlog: events lost", *lost_note(node, acked, arrived, args.quiet)),
        ]

        # 2. Live: the same number of issues opened on 4 connections, receiver answering.
        receiver.reset()
        began = time.perf_counter()
        acked = open_issues(node, user, repo, args.backlog, "live")
        built = time.perf_counter() - began
        arrived = settle(receiver, acked, args.quiet)
        rows.append((f"live: {args.backlog} issues opened (4 connections), receiver answering",
                     f"{built:.2f} s", f"{args.backlog / built:.0f} ops/s acknowledged"))
        if arrived:
            last = max(arrived.values())
            rows += [
                ("live: first request -> last event received", f"{last - began:.2f} s",
                 f"{len(arrived) / (last - began):.0f} events/s delivered"),
                ("live: 201 -> event at the receiver", f"p50 {pct([(arrived[n] - acked[n]) * 1000 for n in arrived], 50):.1f} ms",
                 summary([(arrived[n] - acked[n]) * 1000 for n in arrived])),
            ]
        rows.append(("live: events lost", *lost_note(node, acked, arrived, args.quiet)))

        # 3. Latency: one issue at a time, acknowledged -> received.
        receiver.reset()
        acked = {}
        for i in range(args.latency):
            issue = expect("opening an issue", node.request(
                "POST", f"/api/v3/repos/{repo}/issues", {"title": f"latency {i}"}, auth=user), 201)
            n = issue["number"]
            acked[n] = time.perf_counter()
            with receiver.changed:
                # Normally ~1 ms; one that is not there in 5 s is looked at again below.
                receiver.changed.wait_for(lambda: n in receiver.by_issue, timeout=5)
        arrived = settle(receiver, acked, args.quiet)
        latencies = [(arrived[n] - acked[n]) * 1000 for n in arrived]
        with receiver.lock:
            counts = (receiver.requests, len(receiver.first), receiver.bad_signatures)
        if latencies:
            rows.append((f"latency: 201 -> event at the receiver, {len(latencies)} issues one at a time",
                         f"p50 {pct(latencies, 50):.1f} ms", summary(latencies)))
        rows += [
            ("latency: requests / distinct ids / bad signatures", " / ".join(map(str, counts)), ""),
            ("latency: events lost", *lost_note(node, acked, arrived, args.quiet)),
        ]
    finally:
        node.stop()
        receiver.answer()
        receiver.shutdown()
        if os.environ.get("KEEP") is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}", file=sys.stderr)

    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>{vwidth}}  notes")
    for what, value, notes in rows:
        print(f"{what:<{width}}  {value:>{vwidth}}  {notes}")
    print(f"command: {' '.join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])}")


if __name__ == "__main__":
    main()
