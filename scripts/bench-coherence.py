#!/usr/bin/env python3
"""Cluster coherence benchmark: three release nodes of one cluster on 127.0.0.1, on
their default anti-entropy interval (5 s).

1. Token: a token is made on A (the admin API answers); timed until it authenticates
   on B and until it does on C (polling both every few ms), over N trials.
2. Revocation: each of those tokens is revoked on A; timed until B and C refuse it
   (their auth caches held it a moment before).
3. Heal: C is cut off with the fault switch (`PUT /admin/p2p/isolation`), takes a push,
   and is let back; timed from the heal until the three state digests agree, over M
   trials.

Usage (after `cargo build --release -p guts-node`):
    scripts/bench-coherence.py [--trials 100] [--partitions 20]
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
# The node harness, waiting and percentiles of the replication benchmark.
_spec = importlib.util.spec_from_file_location("bench_replication", os.path.join(HERE, "bench-replication.py"))
repl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(repl)


def request(node, method, path, body=None):
    req = urllib.request.Request(
        node.url(path),
        data=None if body is None else json.dumps(body).encode(),
        method=method,
    )
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {repl.ADMIN}")
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def status(node, token):
    return node.get("/api/v3/user", admin=False, raw=True, token=token)


def until(nodes, check, within=30):
    """Milliseconds until `check(node)` holds, for each node (polled round-robin)."""
    started = time.perf_counter()
    left = {i: n for i, n in enumerate(nodes)}
    took = [None] * len(nodes)
    while left:
        if time.perf_counter() - started > within:
            raise SystemExit("timed out")
        for i, node in list(left.items()):
            if check(node):
                took[i] = (time.perf_counter() - started) * 1000
                del left[i]
        time.sleep(0.002)
    return took


def report(what, values):
    print(
        f"{what} over {len(values)} trials: p50 {repl.pct(values, 50):.1f} ms, "
        f"p90 {repl.pct(values, 90):.1f} ms, p99 {repl.pct(values, 99):.1f} ms, "
        f"max {max(values):.1f} ms"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=20)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="guts-bench-coherence-")
    nodes = []
    try:
        a = repl.Node(root, "a")
        b = repl.Node(root, "b", [a])
        c = repl.Node(root, "c", [a])
        nodes += [a, b, c]
        alice = a.post("/admin/users", {"login": "alice"})["token"]
        repl.wait("alice on B and C", lambda: status(b, alice) == 200 and status(c, alice) == 200)

        made = {"B": [], "C": []}
        tokens = []
        for i in range(args.trials):
            new = a.post("/admin/users/alice/tokens", {"name": f"t{i}"})
            tokens.append(new)
            on_b, on_c = until([b, c], lambda n: status(n, new["token"]) == 200)
            made["B"].append(on_b)
            made["C"].append(on_c)
        report("token made on A -> accepted on B", made["B"])
        report("token made on A -> accepted on C", made["C"])
        report("token made on A -> accepted on both", [max(p) for p in zip(made["B"], made["C"])])

        revoked = {"B": [], "C": []}
        for new in tokens:
            request(a, "DELETE", f"/admin/users/alice/tokens/{new['id']}")
            on_b, on_c = until([b, c], lambda n: status(n, new["token"]) == 401)
            revoked["B"].append(on_b)
            revoked["C"].append(on_c)
        report("token revoked on A -> refused on B", revoked["B"])
        report("token revoked on A -> refused on C", revoked["C"])

        bob = a.post("/admin/users", {"login": "bob"})["token"]
        repl.wait("bob on C", lambda: status(c, bob) == 200)
        c.post("/api/v3/user/repos", {"name": "island"}, admin=False, token=bob)
        work = os.path.join(root, "work")
        repl.git("init", "-q", "-b", "main", work)
        repl.git("config", "user.email", "bench@example.com", cwd=work)
        repl.git("config", "user.name", "bench", cwd=work)
        url = f"http://bob:{bob}@127.0.0.1:{c.api}/bob/island.git"
        heal = []
        for i in range(args.partitions):
            request(c, "PUT", "/admin/p2p/isolation", {"isolated": True})
            with open(os.path.join(work, "f.txt"), "w") as f:
                f.write(f"island {i}\n")
            repl.git("add", "-A", cwd=work)
            repl.git("commit", "-q", "-m", f"island {i}", cwd=work)
            repl.git("push", "-q", url, "main", cwd=work)
            time.sleep(0.2)
            if a.digest() == c.digest():
                raise SystemExit("C was not cut off")
            request(c, "PUT", "/admin/p2p/isolation", {"isolated": False})
            started = time.perf_counter()
            repl.wait("equal digests", lambda: len({n.digest() for n in nodes}) == 1, within=60)
            heal.append((time.perf_counter() - started) * 1000)
        report("partition healed -> equal state digests on A, B, C", heal)
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
