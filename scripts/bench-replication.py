#!/usr/bin/env python3
"""Replication benchmark: three release nodes on 127.0.0.1.

1. Latency: N small pushes to node A, each timed from the moment `git push` returns
   (the push is acknowledged: durable on A) until node C's REST API shows the new tip
   of `main`; p50/p90/p99/max.
2. Catch-up: a set of repositories (../shared/tools/synth.py at the sizes given) is
   pushed to A; once B and C agree, a fresh, empty node D joins A and is timed until its
   state digest equals A's; throughput is the repositories' object bytes on A over that
   time.

With `--pushes 0` only the catch-up part runs, with A alone (no B and C pulling the
same data while D is timed). `--compare OLD_BIN` (or several `--bin` values) times the
catch-up once per binary on the same data, A restarted with that binary each time, in
the order given and repeated `--rounds` times: before/after figures from one run.

Usage (after `cargo build --release -p guts-node`):
    scripts/bench-replication.py [--pushes 100] [--commits 3000 --files 600]
    # about 2 GB in 140 repositories of three sizes, catch-up only, old against new:
    scripts/bench-replication.py --pushes 0 --catchup-repos 140 \
        --catchup-sizes 3000:600,10000:2000,20000:2000 --cache /tmp/synth-cache \
        --bin /path/to/old/guts-node --bin target/release/guts-node
"""

import argparse
import concurrent.futures
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
    def __init__(self, root, name, bootstrap=(), binary=None):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.api = free_port()
        self.p2p = free_port()
        env = {
            "PATH": os.environ["PATH"],
            "GUTS_DATA_DIR": os.path.join(self.dir, "data"),
            "GUTS_API_ADDR": f"127.0.0.1:{self.api}",
            "GUTS_METRICS_ADDR": f"127.0.0.1:{free_port()}",
            "GUTS_P2P_ADDR": f"/ip4/127.0.0.1/tcp/{self.p2p}",
            "GUTS_SSH_ADDR": f"127.0.0.1:{free_port()}",
            "GUTS_ADMIN_TOKEN": ADMIN,
            "GUTS_CLUSTER_SECRET": SECRET,
            "GUTS_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warn"),
            "GUTS_RATE_LIMIT_AUTHENTICATED_PER_HOUR": "100000000",
            "GUTS_RATE_LIMIT_ANONYMOUS_PER_HOUR": "100000000",
        }
        if bootstrap:
            env["GUTS_BOOTSTRAP_PEERS"] = ",".join(
                f"/ip4/127.0.0.1/tcp/{b.p2p}" for b in bootstrap
            )
        self.log = open(os.path.join(self.dir, "log"), "a")
        self.proc = subprocess.Popen(
            [binary or BIN], env=env, stdout=self.log, stderr=self.log
        )
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


def parse_sizes(text):
    sizes = []
    for part in text.split(","):
        commits, files = part.split(":")
        sizes.append((int(commits), int(files)))
    return sizes


def synth_repo(cache, commits, files):
    """A bare repository of synth.py's history at this size, generated once per cache
    directory and repacked as a git server would hold it."""
    path = os.path.join(cache, f"synth-{commits}-{files}.git")
    if os.path.exists(os.path.join(path, "done")):
        return path
    shutil.rmtree(path, ignore_errors=True)
    git("init", "-q", "--bare", path)
    synth = os.path.join(ROOT, "..", "shared", "tools", "synth.py")
    gen = subprocess.Popen(
        [sys.executable, synth, str(commits), str(files), "3"], stdout=subprocess.PIPE
    )
    subprocess.run(["git", "-C", path, "fast-import", "--quiet"], stdin=gen.stdout, check=True)
    if gen.wait() != 0:
        raise SystemExit("synth.py failed")
    git("-C", path, "repack", "-adbq")
    open(os.path.join(path, "done"), "w").close()
    return path


def objects_bytes(data_dir):
    total = 0
    for dirpath, _, files in os.walk(os.path.join(data_dir, "repos")):
        if "/objects" in dirpath:
            total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    return total


def latency(a, c, root, token, pushes):
    a.post("/api/v3/user/repos", {"name": "bench"}, admin=False, token=token)
    work = os.path.join(root, "work")
    git("init", "-q", "-b", "main", work)
    git("config", "user.email", "bench@example.com", cwd=work)
    git("config", "user.name", "bench", cwd=work)
    push_url = f"http://alice:{token}@127.0.0.1:{a.api}/alice/bench.git"
    latencies = []
    for i in range(pushes):
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


def push_all(a, token, sources):
    """Pushes every (name, bare repository) to A, two at a time."""

    def push(item):
        name, path = item
        a.post("/api/v3/user/repos", {"name": name}, admin=False, token=token)
        url = f"http://alice:{token}@127.0.0.1:{a.api}/alice/{name}.git"
        git("push", "-q", "--all", url, cwd=path)
        git("push", "-q", "--tags", url, cwd=path)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(push, sources))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pushes", type=int, default=100, help="latency samples; 0 skips the part")
    ap.add_argument("--commits", type=int, default=3000, help="commits of the catch-up repository")
    ap.add_argument("--files", type=int, default=600, help="files of the catch-up repository")
    ap.add_argument(
        "--catchup-repos", type=int, default=1,
        help="repositories held by A when D joins (sizes taken in turn from --catchup-sizes)",
    )
    ap.add_argument(
        "--catchup-sizes",
        help="COMMITS:FILES[,COMMITS:FILES...] of synth.py (default --commits:--files)",
    )
    ap.add_argument(
        "--cache", help="keep generated synth repositories here across runs (default: temporary)"
    )
    ap.add_argument(
        "--bin", action="append", default=[],
        help="time the catch-up with this guts-node (repeatable; default $GUTS_NODE_BIN)",
    )
    ap.add_argument("--rounds", type=int, default=1, help="catch-up runs per binary")
    args = ap.parse_args()
    sizes = parse_sizes(args.catchup_sizes or f"{args.commits}:{args.files}")
    bins = args.bin or [BIN]
    root = tempfile.mkdtemp(prefix="guts-bench-repl-", dir=os.environ.get("BENCH_TMP"))
    cache = args.cache or os.path.join(root, "synth")
    os.makedirs(cache, exist_ok=True)
    nodes = []
    try:
        a = Node(root, "a", binary=bins[0])
        nodes.append(a)
        token = a.post("/admin/users", {"login": "alice"})["token"]
        if args.pushes > 0:
            b = Node(root, "b", [a], binary=bins[0])
            c = Node(root, "c", [a], binary=bins[0])
            nodes += [b, c]
            wait(
                "alice on C",
                lambda: c.get("/api/v3/user", admin=False, raw=True, token=token) == 200,
            )
            latency(a, c, root, token, args.pushes)

        # Catch-up of a fresh node.
        started = time.perf_counter()
        paths = {size: synth_repo(cache, *size) for size in sizes}
        sources = [
            (f"big{i}", paths[sizes[i % len(sizes)]]) for i in range(args.catchup_repos)
        ]
        generated = time.perf_counter() - started
        started = time.perf_counter()
        push_all(a, token, sources)
        pushed = time.perf_counter() - started
        wait("the nodes to agree", lambda: len({n.digest() for n in nodes}) == 1, within=3600)
        objects = objects_bytes(os.path.join(a.dir, "data"))
        target = a.digest()
        print(
            f"catch-up set: {len(sources)} repositories of {len(sizes)} sizes "
            f"({', '.join(f'{c}:{f}' for c, f in sizes)}), {objects / 1e6:.1f} MB of objects "
            f"on A (generated in {generated:.1f} s, pushed to A in {pushed:.1f} s)",
            flush=True,
        )
        for n in nodes[1:]:
            n.stop()
        nodes = [a]
        results = {}
        for round_ in range(args.rounds):
            for k, binary in enumerate(bins):
                if len(bins) > 1 or round_ > 0:
                    # A serves with the binary under test too; its scratch packs go.
                    a.stop()
                    nodes.remove(a)
                    a = Node(root, "a", binary=binary)
                    nodes.append(a)
                    wait("A's digest", lambda: a.digest() == target, within=600)
                name = f"d{round_}-{k}"
                # BENCH_PROFILE: a command (e.g. `perf record -a -g -o F`) run while D
                # catches up, stopped with SIGINT when D is level.
                profile = os.environ.get("BENCH_PROFILE")
                profiler = subprocess.Popen(profile, shell=True) if profile else None
                started = time.perf_counter()
                d = Node(root, name, [a], binary=binary)
                nodes.append(d)
                wait("D to catch up", lambda: d.digest() == target, within=3600)
                took = time.perf_counter() - started
                if profiler:
                    profiler.send_signal(2)
                    profiler.wait()
                d.stop()
                nodes.remove(d)
                caught = objects_bytes(os.path.join(d.dir, "data"))
                if os.environ.get("KEEP") is None:
                    shutil.rmtree(d.dir, ignore_errors=True)
                rate = objects / 1e6 / took
                results.setdefault(binary, []).append(rate)
                print(
                    f"catch-up of a fresh node [{binary}]: {target[1]} repositories, "
                    f"{objects / 1e6:.1f} MB of objects in {took:.2f} s (from start, "
                    f"readiness included) = {rate:.1f} MB/s ({caught / 1e6:.1f} MB on D)",
                    flush=True,
                )
        if len(bins) > 1 or args.rounds > 1:
            for binary, rates in results.items():
                print(
                    f"  {binary}: " + ", ".join(f"{r:.1f}" for r in rates)
                    + f" MB/s (median {statistics.median(rates):.1f})"
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
