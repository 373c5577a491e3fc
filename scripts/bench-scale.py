#!/usr/bin/env python3
"""Scale benchmark (issue 19, "Scale with history"): one release node over a data
directory of many repositories holding many issues and comments, against the targets
on 2 cores: RSS <= 300 MB with the default budget, restart to ready <= 2 s, first read
in a cold repository <= 20 ms, reads p99 <= 10 ms, issue creation at least as fast as
before (compare scripts/bench-api.sh before and after).

Not part of the tests: it takes minutes to hours and gigabytes of disk.

1. Populates a data directory offline with the `populate` example of guts-storage
   (crates/guts-storage/examples/populate.rs): `--repos` repositories (10 a user),
   `--issues` issues each with `--comments` comments, realistic Markdown-ish bodies
   (200 B to 4 KB, deterministic from `--seed`), a quarter of the issues closed, 0-3
   labels an issue. These are the signed operations the REST API appends, through
   guts-storage's own append path (group-committed). At the defaults: 1,000 x 500 x
   (1 + 1) = 1,000,000 issues and comments. Its progress and time are printed.
2. Starts the node (time to /health/ready 200), then creates a share of the issues
   through HTTP (`--http-share`, 1% by default) with `--writers` concurrent clients,
   each its own keep-alive connection: issue creation throughput and latency.
3. Restarts the node `--restarts` times: start -> /health/ready 200, each timed.
4. Right after the last restart, the first `GET /repos/{o}/{r}/issues/{n}` of
   `--cold` repositories untouched since the start (one at a time): "cold read".
5. A mixed read load over random repositories: `--readers` clients, `--requests`
   requests in all, half `GET issues/{n}`, half the filtered list
   `issues?state=open&labels=L&sort=created&direction=desc&per_page=30`; p50/p99 of
   each (client time, loopback). It runs twice with different random picks: the
   first round starts on whatever the OS page cache holds after the restarts (this
   VM's memory reclaim keeps emptying it, so its tail is disk reads) and is reported
   as it is; the second is the steady state the read targets are checked against.
6. RSS (VmRSS, VmHWM from /proc/PID/status) after the load, size on disk.

Prints one Markdown table, each figure next to its target. Missing a target is
reported, not an error. The page cache is warm for restarts (the directory was just
written or read); `--drop-caches` tries to drop it before each restart (needs root).

Reuse a populated directory with `--data-dir DIR`: populated first when its
manifest `DIR.manifest.json` (users, tokens, repositories) is missing, never deleted;
the node's log goes to `DIR.node.log`. Without it, everything goes under a temporary directory (under
`--work-root`, default the system's) removed at the end unless `--keep`.

Usage (builds what is missing; `--binary` / `--populate` take other builds):
    scripts/bench-scale.py [--repos 1000] [--issues 500] [--comments 1] [--seed 1]
                           [--data-dir DIR] [--keep] [--requests 4000] [--readers 4]
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
ADMIN = "bench-scale-admin-token-0123456789"

TARGETS = {
    "rss": 300.0,       # MB, VmRSS at steady state with the default budget
    "restart": 2.0,     # s, start -> ready
    "cold": 20.0,       # ms, first read in a cold repository
    "read_p99": 10.0,   # ms, issue GET and filtered list
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def disk_usage(path):
    """(bytes allocated on disk, files) under `path`."""
    total, files = 0, 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            total += st.st_blocks * 512
            files += 1
    return total, files


def proc_status(pid):
    """{'VmRSS': kB, 'VmHWM': kB} of a live process."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


class Client:
    """One keep-alive connection."""

    def __init__(self, port, token=None):
        self.port = port
        self.token = token
        self.conn = None

    def request(self, method, path, body=None, auth=None):
        headers = {"Accept": "application/vnd.github+json"}
        auth = auth or (f"token {self.token}" if self.token else None)
        if auth:
            headers["Authorization"] = auth
        if body is not None:
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for retry in (True, False):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if not retry:
                    raise
        raise OSError("unreachable")

    def timed(self, method, path, body=None):
        t = time.perf_counter()
        status, data = self.request(method, path, body)
        return status, data, (time.perf_counter() - t) * 1e3

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Node:
    def __init__(self, binary, data_dir, log_path):
        self.binary = binary
        self.api = free_port()
        self.env = {
            "PATH": os.environ["PATH"],
            "GUTS_DATA_DIR": data_dir,
            "GUTS_API_ADDR": f"127.0.0.1:{self.api}",
            "GUTS_METRICS_ADDR": f"127.0.0.1:{free_port()}",
            "GUTS_P2P_ADDR": f"/ip4/127.0.0.1/tcp/{free_port()}",
            "GUTS_SSH_ADDR": "",
            "GUTS_ADMIN_TOKEN": ADMIN,
            "GUTS_LOG_LEVEL": "warn",
            "GUTS_LOG_FORMAT": "json",
            "GUTS_MAX_CONNECTIONS": "100000",
            "GUTS_RATE_LIMIT_AUTHENTICATED_PER_HOUR": "100000000",
            "GUTS_RATE_LIMIT_ANONYMOUS_PER_HOUR": "100000000",
        }
        self.log_path = log_path
        self.proc = None

    def start(self, timeout):
        """Starts the node; seconds from spawn to the first /health/ready 200, or
        None when it was not ready within `timeout` (the node is left running)."""
        with open(self.log_path, "ab") as log:
            t0 = time.perf_counter()
            self.proc = subprocess.Popen([self.binary], env=self.env, stdout=log,
                                         stderr=log, stdin=subprocess.DEVNULL)
        probe = Client(self.api)
        while time.perf_counter() - t0 < timeout:
            try:
                if probe.request("GET", "/health/ready")[0] == 200:
                    ready = time.perf_counter() - t0
                    probe.close()
                    return ready
            except OSError:
                probe.close()
            if self.proc.poll() is not None:
                raise SystemExit(f"the node exited ({self.proc.returncode}); see {self.log_path}")
            time.sleep(0.01)
        probe.close()
        return None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def build(args):
    node = args.binary or os.path.join(TARGET, "release/guts-node")
    populate = args.populate or os.path.join(TARGET, "release/examples/populate")
    if not os.access(node, os.X_OK):
        subprocess.run(["cargo", "build", "--release", "-p", "guts-node"], cwd=ROOT, check=True)
    if not os.access(populate, os.X_OK):
        subprocess.run(["cargo", "build", "--release", "-p", "guts-storage", "--example",
                        "populate"], cwd=ROOT, check=True)
    return node, populate


def populate(args, populate_bin, data_dir, manifest):
    cmd = [populate_bin, data_dir, str(args.repos), str(args.issues), str(args.comments),
           str(args.seed), manifest, str(args.tasks)]
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def http_writes(node, manifest, args):
    """Creates the HTTP share of issues with `args.writers` clients; answers (count,
    seconds, latencies ms)."""
    owners = {u["login"]: u["token"] for u in manifest["users"] if u["owner"]}
    repos = manifest["repos"]
    total = int(round(args.http_share * len(repos) * manifest["issues_per_repo"]))
    if total == 0:
        return 0, 0.0, []
    rng = random.Random(args.seed)
    jobs = [rng.choice(repos) for _ in range(total)]
    labels = manifest["labels"]
    lock = threading.Lock()
    latencies, errors = [], []

    def run(part):
        clients = {}
        r = random.Random(args.seed * 1000 + part)
        for repo in jobs[part::args.writers]:
            token = owners[repo["owner"]]
            c = clients.setdefault(token, Client(node.api, token))
            body = {
                "title": f"Created over HTTP by the scale bench #{r.randrange(10**6)}",
                "body": "Steps to reproduce:\n\n1. start the node\n2. create many issues\n\n"
                        + "The list gets slower as the repository grows. " * r.randint(2, 30),
                "labels": r.sample(labels, r.randint(0, 2)),
            }
            status, data, ms = c.timed("POST", f"/api/v3/repos/{repo['owner']}/{repo['name']}/issues",
                                       body)
            with lock:
                if status == 201:
                    latencies.append(ms)
                else:
                    errors.append((status, data[:200]))
        for c in clients.values():
            c.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(args.writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        print(f"!! {len(errors)} issue creations failed, first: {errors[0]}", file=sys.stderr)
    return len(latencies), seconds, latencies


def cold_reads(node, manifest, args, token):
    """First GET of an issue in `args.cold` repositories, one at a time, right after
    ready; the connection is opened (and used once, on /health/ready) before."""
    rng = random.Random(args.seed + 7)
    repos = rng.sample(manifest["repos"], min(args.cold, len(manifest["repos"])))
    c = Client(node.api, token)
    c.request("GET", "/health/ready")
    out = []
    for repo in repos:
        n = rng.randint(1, manifest["issues_per_repo"])
        status, _, ms = c.timed("GET", f"/api/v3/repos/{repo['owner']}/{repo['name']}/issues/{n}")
        if status != 200:
            print(f"!! cold read {repo} #{n}: {status}", file=sys.stderr)
        out.append(ms)
    c.close()
    return out


def read_load(node, manifest, args, token, round_=0):
    """Mixed reads over random repositories; answers {kind: [ms]} and wall seconds.
    Each `round_` picks other repositories and issues."""
    repos = manifest["repos"]
    labels = manifest["labels"]
    issues = manifest["issues_per_repo"]
    lock = threading.Lock()
    found = {"get": [], "list": []}
    bad = []
    per = args.requests // args.readers
    listed = [0] * args.readers  # issues the filtered lists returned, a sanity check

    def run(part):
        r = random.Random(args.seed * 7919 + 104729 * round_ + part)
        c = Client(node.api, token)
        mine = {"get": [], "list": []}
        for i in range(per):
            repo = r.choice(repos)
            base = f"/api/v3/repos/{repo['owner']}/{repo['name']}/issues"
            if i % 2 == 0:
                kind, path = "get", f"{base}/{r.randint(1, issues)}"
            else:
                label = r.choice(labels).replace(" ", "%20")
                kind, path = "list", (f"{base}?state=open&labels={label}&sort=created"
                                      "&direction=desc&per_page=30")
            status, data, ms = c.timed("GET", path)
            if status != 200:
                bad.append((status, path, data[:200]))
            elif kind == "list":
                listed[part] += len(json.loads(data))
            mine[kind].append(ms)
        c.close()
        with lock:
            for k, v in mine.items():
                found[k].extend(v)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(args.readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if bad:
        print(f"!! {len(bad)} reads failed, first: {bad[0]}", file=sys.stderr)
    lists = max(1, len(found["list"]))
    print(f"filtered lists returned {sum(listed) / lists:.1f} issues on average", flush=True)
    return found, time.perf_counter() - t0


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def verdict(value, target, lower_is_better=True):
    if value is None or value != value:
        return "n/a"
    ok = value <= target if lower_is_better else value >= target
    return "met" if ok else "**missed**"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repos", type=int, default=1000)
    p.add_argument("--issues", type=int, default=500, help="issues per repository")
    p.add_argument("--comments", type=int, default=1, help="comments per issue")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tasks", type=int, default=64, help="concurrent appenders when populating")
    p.add_argument("--binary", help="guts-node binary (default target/release/guts-node)")
    p.add_argument("--populate", help="populate example (default target/release/examples/populate)")
    p.add_argument("--data-dir", help="a data directory to reuse: populated if it has no "
                   "manifest (DIR.manifest.json beside it), never deleted")
    p.add_argument("--work-root", help="where the temporary directory goes")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--http-share", type=float, default=0.01,
                   help="issues created over HTTP, as a share of the populated ones")
    p.add_argument("--writers", type=int, default=4, help="concurrent HTTP writers")
    p.add_argument("--restarts", type=int, default=3)
    p.add_argument("--cold", type=int, default=20, help="cold repositories probed")
    p.add_argument("--readers", type=int, default=4, help="concurrent readers")
    p.add_argument("--requests", type=int, default=4000, help="reads in the mixed load")
    p.add_argument("--ready-timeout", type=float, default=1800.0,
                   help="seconds to wait for /health/ready before giving up")
    p.add_argument("--drop-caches", action="store_true",
                   help="drop the page cache before each restart (root only)")
    args = p.parse_args()

    node_bin, populate_bin = build(args)
    if args.data_dir:
        data_dir = os.path.abspath(args.data_dir)
        work = None
        manifest_path = data_dir.rstrip("/") + ".manifest.json"
        log_path = data_dir.rstrip("/") + ".node.log"
    else:
        work = tempfile.mkdtemp(prefix="guts-bench-scale-", dir=args.work_root)
        data_dir = os.path.join(work, "data")
        manifest_path = os.path.join(work, "manifest.json")
        log_path = os.path.join(work, "node.log")
    print(f"data directory: {data_dir}\nnode log: {log_path}", flush=True)
    node = Node(node_bin, data_dir, log_path)
    rows = []
    try:
        populated = None
        if not os.path.exists(manifest_path):
            populated = populate(args, populate_bin, data_dir, manifest_path)
            print(f"populated in {populated:.1f} s", flush=True)
        with open(manifest_path) as f:
            manifest = json.load(f)
        readers_token = next(u["token"] for u in manifest["users"] if not u["owner"])
        n_repos = len(manifest["repos"])
        n_items = n_repos * manifest["issues_per_repo"] * (1 + manifest["comments_per_issue"])

        print("starting the node (first start)", flush=True)
        first = node.start(args.ready_timeout)
        if first is None:
            rss = proc_status(node.proc.pid)
            print(f"!! not ready within {args.ready_timeout} s; RSS {rss}", flush=True)
            raise SystemExit(1)
        print(f"ready in {first:.2f} s; RSS {proc_status(node.proc.pid)}", flush=True)
        created, seconds, wlat = http_writes(node, manifest, args)
        rate = created / seconds if seconds else float("nan")
        print(f"HTTP: {created} issues in {seconds:.1f} s = {rate:.0f}/s "
              f"(p50 {pct(wlat, 50):.1f} ms, p99 {pct(wlat, 99):.1f} ms)", flush=True)
        node.stop()

        restarts = []
        for i in range(args.restarts):
            dropped = drop_caches() if args.drop_caches else False
            ready = node.start(args.ready_timeout)
            print(f"restart {i + 1}: ready in {ready if ready is None else round(ready, 2)} s"
                  f"{' (page cache dropped)' if dropped else ''}; RSS {proc_status(node.proc.pid)}",
                  flush=True)
            restarts.append(ready)
            if ready is None:
                raise SystemExit(1)
            if i + 1 < args.restarts:
                node.stop()

        cold = cold_reads(node, manifest, args, readers_token)
        print(f"cold reads: p50 {pct(cold, 50):.1f} ms, max {max(cold):.1f} ms", flush=True)
        after_ready = proc_status(node.proc.pid)
        found_first, first_wall = read_load(node, manifest, args, readers_token, 0)
        print(f"read load, first round: {sum(len(v) for v in found_first.values())} requests"
              f" in {first_wall:.1f} s", flush=True)
        reads, wall = read_load(node, manifest, args, readers_token, 1)
        total_reads = sum(len(v) for v in reads.values())
        print(f"read load, steady: {total_reads} requests in {wall:.1f} s"
              f" = {total_reads / wall:.0f}/s", flush=True)
        time.sleep(1)
        steady = proc_status(node.proc.pid)
        load = os.getloadavg()
        node.stop()
        size, files = disk_usage(data_dir)
        redb = os.path.join(data_dir, "state.redb")
        redb_size = os.path.getsize(redb) if os.path.exists(redb) else 0

        mb = lambda kb: kb / 1024  # noqa: E731
        rows = [
            ("Data", f"{n_repos} repos, {n_items:,} issues+comments populated (+{created} over HTTP)", "", ""),
            ("Populate (storage API)", f"{populated:.1f} s = {n_items / populated:,.0f} items/s"
             if populated else "reused", "", ""),
            ("Size on disk (allocated)", f"{size / 2**20:,.0f} MiB ({files} files; state.redb {redb_size / 2**20:,.0f} MiB long)", "", ""),
            ("RSS after ready (VmRSS)", f"{mb(after_ready.get('VmRSS', 0)):.0f} MB", "", ""),
            ("RSS steady after load (VmRSS)", f"{mb(steady.get('VmRSS', 0)):.0f} MB",
             f"<= {TARGETS['rss']:.0f} MB", verdict(mb(steady.get("VmRSS", 0)), TARGETS["rss"])),
            ("Peak RSS (VmHWM)", f"{mb(steady.get('VmHWM', 0)):.0f} MB", "", ""),
            ("First start to ready", f"{first:.2f} s", "", ""),
            ("Restart to ready (each)", ", ".join(f"{r:.2f} s" for r in restarts),
             f"<= {TARGETS['restart']:.0f} s", verdict(max(restarts), TARGETS["restart"])),
            (f"Cold read, {len(cold)} repos (p50 / max)", f"{pct(cold, 50):.1f} / {max(cold):.1f} ms",
             f"<= {TARGETS['cold']:.0f} ms", verdict(max(cold), TARGETS["cold"])),
            ("First round after restart: issue GET / filtered list (p50 / p99)",
             f"{pct(found_first['get'], 50):.1f} / {pct(found_first['get'], 99):.1f} ms, "
             f"{pct(found_first['list'], 50):.1f} / {pct(found_first['list'], 99):.1f} ms", "as found", ""),
            (f"Issue GET, steady, {len(reads['get'])} (p50 / p99)",
             f"{pct(reads['get'], 50):.1f} / {pct(reads['get'], 99):.1f} ms",
             f"p99 <= {TARGETS['read_p99']:.0f} ms", verdict(pct(reads["get"], 99), TARGETS["read_p99"])),
            (f"Filtered list, steady, {len(reads['list'])} (p50 / p99)",
             f"{pct(reads['list'], 50):.1f} / {pct(reads['list'], 99):.1f} ms",
             f"p99 <= {TARGETS['read_p99']:.0f} ms", verdict(pct(reads["list"], 99), TARGETS["read_p99"])),
            (f"Read throughput, steady, {args.readers} clients", f"{total_reads / wall:,.0f} req/s", "", ""),
            (f"Issue creation over HTTP, {args.writers} clients",
             f"{rate:,.0f} issues/s (p50 {pct(wlat, 50):.1f} ms, p99 {pct(wlat, 99):.1f} ms)",
             "≥ today (bench-api.sh)", ""),
            ("Load average (1/5/15 min) at the end", " / ".join(f"{x:.2f}" for x in load), "", ""),
        ]
        print()
        print("| Measure | Value | Target | |")
        print("|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    finally:
        node.stop()
        if work and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif work:
            print(f"kept {work}")


if __name__ == "__main__":
    main()
