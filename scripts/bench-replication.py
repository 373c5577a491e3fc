#!/usr/bin/env python3
"""Replication benchmark: three release nodes on 127.0.0.1.

1. Latency: N small pushes to node A, each timed from the moment `git push` returns
   (the push is acknowledged: durable on A) until node C's REST API shows the new tip
   of `main`; p50/p90/p99/max.
2. Catch-up: a larger repository (../shared/tools/synth.py) is pushed to A; once B and C
   agree, a fourth, empty node D joins and is timed until its state digest equals A's;
   throughput is the repository's object bytes on A over that time.

Usage (after `cargo build --release -p guts-node`):
    scripts/bench-replication.py [--pushes 100] [--commits 3000 --files 600]
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GUTS_NODE_BIN", os.path.join(ROOT, "target/release/guts-node"))
ADMIN = "bench-admin-token-0123456789"
SECRET = "bench-cluster-secret-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, root, name, bootstrap=()):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.api = free_port()
        self.p2p = free_port()
        env = {
            "PATH": os.environ["PATH"],
            "GUTS_DATA_DIR": os.path.join(self.dir, "data"),
            "GUTS_API_ADDR": f"127.0.0.1:{self.api}",
            "GUTS_METRICS_ADDR": f"127.0.0.1:{free_port()}",
            "GUTS_P2P_ADDR": f"/ip4/127.0.0.1/tcp/{self.p2p}",
            "GUTS_ADMIN_TOKEN": ADMIN,
            "GUTS_CLUSTER_SECRET": SECRET,
            "GUTS_LOG_LEVEL": "warn",
            "GUTS_RATE_LIMIT_AUTHENTICATED_PER_HOUR": "100000000",
            "GUTS_RATE_LIMIT_ANONYMOUS_PER_HOUR": "100000000",
        }
        if bootstrap:
            env["GUTS_BOOTSTRAP_PEERS"] = ",".join(
                f"/ip4/127.0.0.1/tcp/{b.p2p}" for b in bootstrap
            )
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen([BIN], env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.get("/health/ready", admin=False, raw=True) == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"node {name} did not become ready; see {self.dir}/log")

    def url(self, path):
        return f"http://127.0.0.1:{self.api}{path}"

    def get(self, path, admin=True, raw=False, token=None):
        req = urllib.request.Request(self.url(path))
        if admin:
            req.add_header("Authorization", f"Bearer {ADMIN}")
        if token:
            req.add_header("Authorization", f"token {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = r.read()
                return r.status if raw else json.loads(body)
        except urllib.error.HTTPError as e:
            if raw:
                return e.code
            raise

    def post(self, path, body, admin=True, token=None):
        req = urllib.request.Request(
            self.url(path), data=json.dumps(body).encode(), method="POST"
        )
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", f"Bearer {ADMIN}" if admin else f"token {token}")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def digest(self):
        r = self.get("/admin/replication")
        return r["state_digest"], len(r["repositories"])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def git(*args, cwd=None, capture=False):
    out = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return out.stdout.strip() if capture else None


def tip_on(node, repo):
    try:
        return node.get(f"/api/v3/repos/{repo}/branches/main", admin=False)["commit"]["sha"]
    except (urllib.error.HTTPError, OSError, KeyError):
        return None


def wait(what, check, within=300):
    deadline = time.time() + within
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise SystemExit(f"timed out waiting for {what}")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pushes", type=int, default=100)
    ap.add_argument("--commits", type=int, default=3000)
    ap.add_argument("--files", type=int, default=600)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="guts-bench-repl-")
    nodes = []
    try:
        a = Node(root, "a")
        b = Node(root, "b", [a])
        c = Node(root, "c", [a])
        nodes += [a, b, c]
        token = a.post("/admin/users", {"login": "alice"})["token"]
        wait("alice on C", lambda: c.get("/api/v3/user", admin=False, raw=True, token=token) == 200)
        a.post("/api/v3/user/repos", {"name": "bench"}, admin=False, token=token)
        work = os.path.join(root, "work")
        git("init", "-q", "-b", "main", work)
        git("config", "user.email", "bench@example.com", cwd=work)
        git("config", "user.name", "bench", cwd=work)
        push_url = f"http://alice:{token}@127.0.0.1:{a.api}/alice/bench.git"
        latencies = []
        for i in range(args.pushes):
            with open(os.path.join(work, "f.txt"), "w") as f:
                f.write(f"change {i}\n")
            git("add", "-A", cwd=work)
            git("commit", "-q", "-m", f"change {i}", cwd=work)
            sha = git("rev-parse", "HEAD", cwd=work, capture=True)
            git("push", "-q", push_url, "main", cwd=work)
            acked = time.perf_counter()
            wait("the push on C", lambda: tip_on(c, "alice/bench") == sha, within=60)
            latencies.append((time.perf_counter() - acked) * 1000)
        print(
            f"push acknowledged on A -> visible on C over {len(latencies)} pushes: "
            f"p50 {pct(latencies, 50):.1f} ms, p90 {pct(latencies, 90):.1f} ms, "
            f"p99 {pct(latencies, 99):.1f} ms, max {max(latencies):.1f} ms, "
            f"mean {statistics.mean(latencies):.1f} ms"
        )

        # Catch-up of a fresh node.
        synth = os.path.join(ROOT, "..", "shared", "tools", "synth.py")
        big = os.path.join(root, "big.git")
        git("init", "-q", "--bare", big)
        stream = subprocess.run(
            [sys.executable, synth, str(args.commits), str(args.files), "3"],
            check=True, capture_output=True,
        ).stdout
        subprocess.run(["git", "-C", big, "fast-import", "--quiet"], input=stream, check=True)
        a.post("/api/v3/user/repos", {"name": "big"}, admin=False, token=token)
        started = time.perf_counter()
        git("push", "-q", "--all", f"http://alice:{token}@127.0.0.1:{a.api}/alice/big.git", cwd=big)
        pushed = time.perf_counter() - started
        wait("B and C to agree", lambda: len({n.digest() for n in nodes}) == 1, within=600)
        objects = 0
        for dirpath, _, files in os.walk(os.path.join(a.dir, "data", "repos")):
            if "/objects" in dirpath:
                objects += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
        target = a.digest()
        started = time.perf_counter()
        d = Node(root, "d", [a])
        nodes.append(d)
        wait("D to catch up", lambda: d.digest() == target, within=900)
        took = time.perf_counter() - started
        print(
            f"catch-up of a fresh node: {target[1]} repositories, {objects / 1e6:.1f} MB of "
            f"objects in {took:.2f} s (from start, readiness included) = "
            f"{objects / 1e6 / took:.1f} MB/s (the initial push to A took {pushed:.2f} s)"
        )
    finally:
        for n in nodes:
            try:
                n.stop()
            except Exception:
                n.proc.kill()
        if os.environ.get("KEEP") is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
