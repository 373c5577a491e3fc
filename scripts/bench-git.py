#!/usr/bin/env python3
"""Benchmark the node's git smart HTTP against stock git (Python 3.11, stdlib only).

For each repository (a synth.py repository and this project's own history) it starts a
fresh node and `../shared/tools/git_http_cgi.py` (git http-backend) and measures, N times
each, against both:

  - the initial push of the whole repository into an empty one (node vs. CGI);
  - a full `git clone --bare`: the first one of each just-pushed repository (cold: the
    node caches full-clone object selections), then repeated ones (warm);
  - a no-op `git fetch` in an up-to-date clone;
  - a one-commit push to a fresh branch from a working clone;
  - the server-side time of a full-clone upload-pack request (v2 and v0): the request
    body a real `git clone` sent (captured with GIT_TRACE_PACKET) POSTed to the node,
    fed to `git upload-pack --stateless-rpc` directly and POSTed to the CGI server;
    response and pack bytes of each (warm: after the clones above).

It prints every sample, then one table per repository with the medians, the ratios
node/git against the targets (clone <= 1.0x, push <= 1.2x, pack bytes <= 1.1x) and the
node's peak RSS (VmHWM). Any failed git command stops the run with a non-zero exit;
wrong results (refs that differ, bad packs, node errors in its log) are listed at the
end and also make the exit non-zero.

usage: scripts/bench-git.py [--binary PATH] [-n N] [--repos synth,self]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

WORKSPACE = Path(__file__).resolve().parent.parent
TOOLS = WORKSPACE.parent / "shared" / "tools"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
CMD_TIMEOUT = 1800  # seconds any single command may take before the run fails

TARGETS = {"clone": 1.0, "push": 1.2, "pack": 1.1}


class BenchError(Exception):
    """A failed command or an unusable server: the run stops."""


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------- commands


class Runner:
    """Runs git with an isolated environment (temp HOME, no prompts, no system config)."""

    def __init__(self, home: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            GIT_TERMINAL_PROMPT="0",
            GIT_CONFIG_NOSYSTEM="1",
            LC_ALL="C",
        )
        self.env = env
        self.warnings: list[str] = []

    def run(self, args, *, cwd=None, input=None, env=None, check=True, quiet_ok=False):
        """Run a command; fail loudly (with its stderr) if it exits non-zero."""
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        try:
            p = subprocess.run(
                [str(a) for a in args], cwd=cwd, input=input, env=full_env,
                capture_output=True, timeout=CMD_TIMEOUT,
            )
        except subprocess.TimeoutExpired as e:
            raise BenchError(f"timed out after {CMD_TIMEOUT}s: {' '.join(map(str, args))}") from e
        if check and p.returncode != 0:
            raise BenchError(
                f"command failed (exit {p.returncode}): {' '.join(map(str, args))}\n"
                f"--- stdout:\n{p.stdout.decode(errors='replace')[-4000:]}\n"
                f"--- stderr:\n{p.stderr.decode(errors='replace')[-4000:]}"
            )
        err = p.stderr.decode(errors="replace").strip()
        if err and not quiet_ok:
            # A quiet git command that still says something deserves a look.
            self.warnings.append(f"{' '.join(map(str, args))}: {err}")
        return p

    def git(self, *args, **kw):
        return self.run(["git", *args], **kw)

    def timed(self, args, **kw) -> float:
        t0 = time.perf_counter()
        self.run(args, **kw)
        return time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout=30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} did not listen on {port} within {timeout}s")


def stop_process(proc: subprocess.Popen | None, timeout=25.0) -> int | None:
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -9


# --------------------------------------------------------------------------- the node


class Node:
    def __init__(self, binary: Path, root: Path):
        self.binary = binary
        self.root = root
        self.proc: subprocess.Popen | None = None
        self.log_path = root / "node.log"
        self.port = 0
        self.metrics_port = 0
        self.token = ""
        self.exit_code: int | None = None

    def start(self) -> None:
        data = self.root / "data"
        last_error = None
        for _attempt in range(3):  # a probed port may be taken in between
            shutil.rmtree(data, ignore_errors=True)
            self.port, self.metrics_port = free_port(), free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("GUTS_")}
            env.update(
                GUTS_DATA_DIR=str(data),
                GUTS_API_ADDR=f"127.0.0.1:{self.port}",
                GUTS_METRICS_ADDR=f"127.0.0.1:{self.metrics_port}",
                GUTS_ADMIN_TOKEN=ADMIN_TOKEN,
                GUTS_LOG_LEVEL="warn",
            )
            logf = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [str(self.binary), "run"], env=env, stdout=logf, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            logf.close()
            try:
                self._wait_ready()
                return
            except BenchError as e:
                last_error = e
                stop_process(self.proc)
        raise BenchError(f"node did not become ready: {last_error}\n--- node log:\n{self.log()}")

    def _wait_ready(self, timeout=60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"node exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise BenchError("node not ready within 60 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, method: str, path: str, auth: str, body: dict) -> dict:
        req = urllib.request.Request(
            self.url + path, method=method, data=json.dumps(body).encode(),
            headers={"Authorization": auth, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise BenchError(f"{method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')}")

    def setup_repo(self, login: str, name: str) -> None:
        user = self.api("POST", "/admin/users", f"Bearer {ADMIN_TOKEN}", {"login": login})
        self.token = user["token"]
        self.create_repo(name)

    def create_repo(self, name: str) -> None:
        self.api("POST", "/api/v3/user/repos", f"token {self.token}", {"name": name})

    def status_field(self, name: str) -> str:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
        return "?"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"node died (exit {self.proc.returncode})\n--- node log:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.exit_code = stop_process(self.proc)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class CgiServer:
    def __init__(self, root: Path, runner: Runner):
        self.root = root
        self.runner = runner
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> None:
        for attempt in range(3):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [sys.executable, str(TOOLS / "git_http_cgi.py"), str(self.port), str(self.root)],
                env=self.runner.env, stdin=subprocess.DEVNULL,
            )
            try:
                wait_for_port(self.port, self.proc, "git_http_cgi.py")
                return
            except BenchError:
                stop_process(self.proc, 5)
                if attempt == 2:
                    raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc, 5)


# --------------------------------------------------------------------------- protocol


def pkt(data: bytes) -> bytes:
    return b"%04x" % (len(data) + 4) + data


TRACE_RE = re.compile(r"packet:\s+(\S+)> (.*)$")


def request_from_trace(trace: str, version: int) -> bytes:
    """The upload-pack request body a clone sent, rebuilt from its GIT_TRACE_PACKET.

    The trace shows each pkt-line written without its trailing newline (git's request
    lines all end in one) and flush/delim packets as 0000/0001."""
    lines = [m.groups() for m in map(TRACE_RE.search, trace.splitlines()) if m]
    body = bytearray()
    if version == 2:
        start = next((i for i, (_, l) in enumerate(lines) if l == "command=fetch"), None)
        end_marker = "0000"
    else:
        start = next((i for i, (w, l) in enumerate(lines)
                      if w == "fetch-pack" and l.startswith("want ")), None)
        end_marker = "done"
    if start is None:
        raise BenchError(f"no v{version} fetch request in the packet trace")
    who = lines[start][0]
    for w, line in lines[start:]:
        if w != who:
            continue
        if line in ("0000", "0001"):
            body += line.encode()
        else:
            body += pkt(line.encode() + b"\n")
        if line == end_marker:
            return bytes(body)
    raise BenchError(f"unterminated v{version} fetch request in the packet trace")


@dataclass
class PackInfo:
    response_bytes: int
    pack_bytes: int
    objects: int
    progress: str = ""


def parse_upload_pack_response(data: bytes) -> PackInfo:
    """Demultiplex a (v0 or v2) upload-pack response; check the pack's header and trailer."""
    pos, sideband = 0, False
    pack = bytearray()
    progress = bytearray()
    while pos < len(data):
        if pos + 4 > len(data):
            raise BenchError(f"truncated pkt-line header at byte {pos} of {len(data)}")
        n = int(data[pos:pos + 4], 16)
        if n in (0, 1, 2):
            pos += 4
            continue
        payload = data[pos + 4:pos + n]
        if len(payload) != n - 4:
            raise BenchError(f"truncated pkt-line at byte {pos} of {len(data)}")
        pos += n
        if not sideband:
            if payload.startswith(b"ERR "):
                raise BenchError(f"upload-pack error: {payload!r}")
            # v2: "packfile"; v0: the last NAK or plain "ACK <oid>" comes before the pack.
            line = payload.rstrip(b"\n")
            if line in (b"packfile", b"NAK") or (
                    line.startswith(b"ACK ") and len(line.split()) == 2):
                sideband = True
            continue
        band = payload[0]
        if band == 1:
            pack += payload[1:]
        elif band == 2:
            progress += payload[1:]
        elif band == 3:
            raise BenchError(f"upload-pack error (band 3): {payload[1:]!r}")
        else:
            raise BenchError(f"bad side-band {band} in upload-pack response")
    if len(pack) < 32 or pack[:4] != b"PACK":
        raise BenchError(f"response holds no pack ({len(pack)} pack bytes, "
                         f"first bytes {bytes(data[:80])!r})")
    version, objects = struct.unpack(">II", pack[4:12])
    if version not in (2, 3):
        raise BenchError(f"pack version {version}")
    if hashlib.sha1(pack[:-20]).digest() != pack[-20:]:
        raise BenchError("pack checksum does not match its trailer")
    return PackInfo(len(data), len(pack), objects, progress.decode(errors="replace"))


def post_upload_pack(url: str, body: bytes, version: int, auth: str | None = None):
    """POST an upload-pack request; return (seconds until the last byte, response)."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    path = "/" + url.split("//", 1)[1].split("/", 1)[1]
    headers = {
        "Content-Type": "application/x-git-upload-pack-request",
        "Accept": "application/x-git-upload-pack-result",
        "User-Agent": "git/bench",
        "Content-Length": str(len(body)),
    }
    if version == 2:
        headers["Git-Protocol"] = "version=2"
    if auth:
        headers["Authorization"] = auth
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        chunks = []
        while True:
            c = resp.read(1 << 20)
            if not c:
                break
            chunks.append(c)
        elapsed = time.perf_counter() - t0
    finally:
        conn.close()
    data = b"".join(chunks)
    if resp.status != 200:
        raise BenchError(f"POST {url}: HTTP {resp.status}: {data[:500]!r}")
    return elapsed, data


def direct_upload_pack(runner: Runner, repo: Path, body: bytes, version: int):
    """`git upload-pack --stateless-rpc` fed the body; (seconds until it exits, response).

    (Its peak RSS is not reported: a child of this process inherits the script's own
    high-water mark through fork and exec, so ru_maxrss would measure Python.)"""
    env = dict(runner.env)
    if version == 2:
        env["GIT_PROTOCOL"] = "version=2"
    t0 = time.perf_counter()
    p = subprocess.Popen(["git", "upload-pack", "--stateless-rpc", str(repo)], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def feed():
        p.stdin.write(body)
        p.stdin.close()

    errbuf: list[bytes] = []
    t_in = threading.Thread(target=feed)
    t_err = threading.Thread(target=lambda: errbuf.append(p.stderr.read()))
    t_in.start()
    t_err.start()
    out = p.stdout.read()
    t_in.join()
    t_err.join()
    p.wait()
    elapsed = time.perf_counter() - t0
    p.stdout.close()
    p.stderr.close()
    if p.returncode != 0:
        raise BenchError(f"git upload-pack --stateless-rpc failed ({p.returncode}): "
                         f"{b''.join(errbuf).decode(errors='replace')}")
    return elapsed, out


# --------------------------------------------------------------------------- helpers


def refs_of(runner: Runner, repo: Path, prefixes=("refs/heads/", "refs/tags/")) -> dict[str, str]:
    out = runner.git("-C", repo, "for-each-ref", "--format=%(objectname) %(refname)",
                     *prefixes).stdout.decode()
    return {r: o for o, r in (line.split(" ", 1) for line in out.splitlines())}


def fmt_s(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)


@dataclass
class Results:
    name: str
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)

    def add(self, metric: str, side: str, value: float) -> None:
        self.samples.setdefault(metric, {}).setdefault(side, []).append(value)

    def median(self, metric: str, side: str) -> float:
        return statistics.median(self.samples[metric][side])


# --------------------------------------------------------------------------- benchmark


class Bench:
    def __init__(self, args, binary: Path, tmp: Path):
        self.args = args
        self.binary = binary
        self.tmp = tmp
        home = tmp / "home"
        home.mkdir()
        self.runner = Runner(home)
        g = self.runner.git
        for k, v in [("user.name", "Bench"), ("user.email", "bench@example.com"),
                     ("init.defaultBranch", "main"), ("gc.auto", "0"),
                     ("maintenance.auto", "false"), ("advice.detachedHead", "false"),
                     ("fetch.writeCommitGraph", "false")]:
            g("config", "--global", k, v)
        self.problems: list[str] = []
        self.node: Node | None = None
        self.cgi: CgiServer | None = None

    def problem(self, msg: str) -> None:
        self.problems.append(msg)
        log(f"!! PROBLEM: {msg}")

    # ---- repositories

    def make_synth(self, dest: Path) -> None:
        g = self.runner.git
        g("init", "--quiet", "--bare", dest)
        synth = subprocess.Popen(
            [sys.executable, str(TOOLS / "synth.py"), str(self.args.commits), "2000", "3"],
            stdout=subprocess.PIPE, env=self.runner.env)
        imp = subprocess.run(["git", "-C", str(dest), "fast-import", "--quiet"],
                             stdin=synth.stdout, env=self.runner.env, capture_output=True,
                             timeout=CMD_TIMEOUT)
        synth.stdout.close()
        if synth.wait() != 0 or imp.returncode != 0:
            raise BenchError(f"synth.py | git fast-import failed ({synth.returncode}, "
                             f"{imp.returncode}): {imp.stderr.decode(errors='replace')}")
        g("-C", dest, "repack", "-adbq")

    def make_self(self, dest: Path) -> None:
        g = self.runner.git
        g("clone", "--quiet", "--bare", "--no-local", WORKSPACE, dest)
        g("-C", dest, "repack", "-adbq")

    # ---- one repository

    def run_repo(self, name: str) -> Results:
        root = self.tmp / name
        root.mkdir()
        g = self.runner.git
        res = Results(name)
        src = root / "src.git"
        t0 = time.perf_counter()
        if name == "synth":
            log(f"== [{name}] building synth.py repository ({self.args.commits} commits)")
            self.make_synth(src)
        else:
            log(f"== [{name}] cloning this project's history from {WORKSPACE}")
            self.make_self(src)
        log(f"   built in {time.perf_counter() - t0:.1f} s")
        src_refs = refs_of(self.runner, src)
        src_head = g("-C", src, "symbolic-ref", "HEAD").stdout.decode().strip()
        counts = dict(line.split(": ") for line in
                      g("-C", src, "count-objects", "-v").stdout.decode().splitlines())
        res.info["objects"] = counts["in-pack"]
        res.info["pack"] = fmt_bytes(int(counts["size-pack"]) * 1024)
        res.info["refs"] = str(len(src_refs))
        res.info["head"] = src_head
        log(f"   {counts['in-pack']} objects, {res.info['pack']} packed, "
            f"{len(src_refs)} refs, HEAD -> {src_head}")

        # The git side: the source served as is (clones, fetches, upload-pack), a copy
        # with receive-pack enabled for the small pushes, an empty one for the initial push.
        serve = root / "serve"
        serve.mkdir()
        shutil.copytree(src, serve / "r.git", symlinks=True)
        shutil.copytree(src, serve / "push.git", symlinks=True)
        g("-C", serve / "push.git", "config", "http.receivepack", "true")
        g("init", "--quiet", "--bare", serve / "empty.git")
        g("-C", serve / "empty.git", "config", "http.receivepack", "true")
        self.cgi = CgiServer(serve, self.runner)
        self.cgi.start()

        self.node = Node(self.binary, root / "node")
        (root / "node").mkdir()
        self.node.start()
        self.node.setup_repo("alice", "r")
        node = self.node
        cgi = self.cgi
        log(f"   node pid {node.proc.pid} on {node.url}, git http-backend on {cgi.url}")

        node_read = f"{node.url}/alice/r.git"
        node_auth = f"http://alice:{node.token}@127.0.0.1:{node.port}/alice/r.git"
        git_read = f"{cgi.url}/r.git"
        git_push = f"{cgi.url}/push.git"
        refspecs = ["refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"]
        n = self.args.iterations
        work = root / "work"
        work.mkdir()

        # ---- initial push: each sample into a new, empty repository (r is the first)
        log(f"-- [{name}] initial push of the whole repository into an empty one, "
            f"{n} times each")
        for i in range(n):
            repo = "r" if i == 0 else f"init{i}"
            if i:
                node.create_repo(repo)
                g("init", "--quiet", "--bare", serve / f"empty{i}.git")
                g("-C", serve / f"empty{i}.git", "config", "http.receivepack", "true")
            targets = [
                ("node", f"http://alice:{node.token}@127.0.0.1:{node.port}/alice/{repo}.git",
                 f"{node.url}/alice/{repo}.git"),
                ("git", f"{cgi.url}/empty{i or ''}.git", f"{cgi.url}/empty{i or ''}.git"),
            ]
            if i % 2:
                targets.reverse()
            for side, url, read_url in targets:
                t = self.runner.timed(["git", "-C", src, "push", "--quiet", url, *refspecs])
                res.add("initial push", side, t)
                remote = self.ls_remote(read_url)
                if remote != src_refs:
                    self.problem(f"[{name}] {side}: refs after the initial push differ from "
                                 f"the source: {self.ref_diff(src_refs, remote)}")
            node.alive()
        self.print_samples(res, "initial push")

        order = [("node", node_read), ("git", git_read)]

        def rounds():
            for i in range(n):  # alternate who goes first
                yield i, (order if i % 2 == 0 else order[::-1])

        # ---- first clone of a just-pushed repository: nothing cached by the node yet
        # (it keeps full-clone object selections). Each node sample clones another of the
        # repositories the initial pushes made; git has no such cache and clones r.git.
        # The first pair also captures the v2 request bodies a real clone sends.
        log(f"-- [{name}] first clone of a just-pushed repository (cold), {n} times each")
        bodies: dict[tuple[str, int], bytes] = {}
        for i, sides in rounds():
            for side, url in sides:
                if side == "node":
                    url = f"{node.url}/alice/{'r' if i == 0 else f'init{i}'}.git"
                dest = work / f"cold-{side}-{i}.git"
                trace = work / f"trace-{side}-v2.txt"
                env = {"GIT_TRACE_PACKET": str(trace)} if i == 0 else None
                t = self.runner.timed(["git", "clone", "--quiet", "--bare", url, dest], env=env)
                res.add("cold clone", side, t)
                self.check_clone(name, side, "cold clone", dest, src_refs, src_head)
                if i == 0:
                    bodies[(side, 2)] = request_from_trace(trace.read_text(), 2)
                shutil.rmtree(dest)
            node.alive()
        self.print_samples(res, "cold clone")

        # ---- a protocol v0 clone of each (untimed), for its request body
        log(f"-- [{name}] protocol v0 clones capturing the fetch request")
        for side, url in order:
            dest = work / f"v0-{side}.git"
            trace = work / f"trace-{side}-v0.txt"
            g("-c", "protocol.version=0", "clone", "--quiet", "--bare", url, dest,
              env={"GIT_TRACE_PACKET": str(trace)})
            self.check_clone(name, side, "v0 clone", dest, src_refs, src_head)
            bodies[(side, 0)] = request_from_trace(trace.read_text(), 0)
            shutil.rmtree(dest)
        for version in (2, 0):
            if bodies[("node", version)] != bodies[("git", version)]:
                log(f"   note: the v{version} clone request differs between servers "
                    f"(node {len(bodies[('node', version)])} B, git "
                    f"{len(bodies[('git', version)])} B); each server gets its own")
                for side in ("node", "git"):
                    log(f"     {side}: {bodies[(side, version)][:300]!r}")
            else:
                log(f"   v{version} request: {len(bodies[('node', version)])} bytes, "
                    f"identical for both servers")

        # ---- full clone
        log(f"-- [{name}] full clone (git clone --bare), node's selection cached, "
            f"{n} times each")
        for i, sides in rounds():
            for side, url in sides:
                dest = work / f"clone-{side}-{i}.git"
                t = self.runner.timed(["git", "clone", "--quiet", "--bare", url, dest])
                res.add("clone", side, t)
                self.check_clone(name, side, "clone", dest, src_refs, src_head)
                shutil.rmtree(dest)
            node.alive()
        self.print_samples(res, "clone")

        # ---- no-op fetch
        log(f"-- [{name}] no-op fetch in an up-to-date clone, {n} times each")
        fetch_clones = {}
        for side, url in order:
            dest = work / f"fetch-{side}"
            g("clone", "--quiet", "--no-checkout", url, dest)
            fetch_clones[side] = dest
        for i, sides in rounds():
            for side, _url in sides:
                dest = fetch_clones[side]
                before = refs_of(self.runner, dest, ("refs/",))
                t = self.runner.timed(["git", "-C", dest, "fetch", "--quiet", "origin"])
                res.add("no-op fetch", side, t)
                after = refs_of(self.runner, dest, ("refs/",))
                if before != after:
                    self.problem(f"[{name}] {side}: no-op fetch changed refs: "
                                 f"{self.ref_diff(before, after)}")
            node.alive()
        self.print_samples(res, "no-op fetch")

        # ---- server-side upload-pack for a full clone
        for version in (2, 0):
            metric = f"upload-pack v{version}"
            log(f"-- [{name}] server-side full-clone upload-pack, protocol v{version}, "
                f"{n} times each")
            infos: dict[str, PackInfo] = {}
            for i in range(n):
                body_n, body_g = bodies[("node", version)], bodies[("git", version)]
                steps = [
                    ("node", lambda: post_upload_pack(f"{node_read}/git-upload-pack",
                                                      body_n, version)),
                    ("git direct", lambda: direct_upload_pack(self.runner, src, body_g,
                                                              version)),
                    ("git http", lambda: post_upload_pack(f"{git_read}/git-upload-pack",
                                                          body_g, version)),
                ]
                if i % 2:
                    steps.reverse()
                for side, fn in steps:
                    t, data = fn()
                    try:
                        info = parse_upload_pack_response(data)
                    except BenchError as e:
                        raise BenchError(f"[{name}] {side} {metric}: {e}") from e
                    if side in infos and (infos[side].pack_bytes, infos[side].objects) != (
                            info.pack_bytes, info.objects):
                        log(f"   note: {side} pack changed between requests: "
                            f"{infos[side].pack_bytes} -> {info.pack_bytes} bytes")
                    infos[side] = info
                    res.add(metric, side, t)
                node.alive()
            for side, info in infos.items():
                res.add(f"{metric} response bytes", side, info.response_bytes)
                res.add(f"{metric} pack bytes", side, info.pack_bytes)
                res.add(f"{metric} objects", side, info.objects)
            self.print_samples(res, metric)
            for side, info in infos.items():
                log(f"   {side:10}: response {info.response_bytes} B, pack {info.pack_bytes} B,"
                    f" {info.objects} objects")
            if infos["node"].objects != infos["git direct"].objects:
                self.problem(f"[{name}] {metric}: node's pack holds {infos['node'].objects} "
                             f"objects, git's {infos['git direct'].objects}")

        # ---- small push
        log(f"-- [{name}] one-commit push to a fresh branch, {n} times each")
        clones = {}
        for side, url in (("node", node_auth), ("git", git_push)):
            dest = work / f"push-{side}"
            g("clone", "--quiet", url, dest)
            files = g("-C", dest, "ls-files").stdout.decode().splitlines()
            if not files:
                raise BenchError(f"[{name}] {side}: the working clone has no files")
            clones[side] = (dest, files[len(files) // 2])
        pushed: dict[str, dict[str, str]] = {"node": {}, "git": {}}
        for i, sides in rounds():
            for side, _url in sides:
                dest, path = clones[side]
                with open(dest / path, "a") as f:
                    f.write(f"bench {side} {i} {time.time_ns()}\n")
                g("-C", dest, "commit", "--quiet", "-am", f"bench {side} {i}")
                head = g("-C", dest, "rev-parse", "HEAD").stdout.decode().strip()
                branch = f"refs/heads/bench-{side}-{i}"
                t = self.runner.timed(["git", "-C", dest, "push", "--quiet", "origin",
                                       f"HEAD:{branch}"])
                res.add("small push", side, t)
                pushed[side][branch] = head
            node.alive()
        self.print_samples(res, "small push")
        for side, url in (("node", node_read), ("git", git_push)):
            remote = self.ls_remote(url)
            for branch, head in pushed[side].items():
                if remote.get(branch) != head:
                    self.problem(f"[{name}] {side}: pushed {branch} = {head}, the server has "
                                 f"{remote.get(branch)}")
        # A last full clone from the node: everything, pushed commits included, comes back.
        dest = work / "final-node.git"
        g("clone", "--quiet", "--bare", node_read, dest)
        expected = dict(src_refs, **pushed["node"])
        got = refs_of(self.runner, dest)
        if got != expected:
            self.problem(f"[{name}] node: a clone after the pushes has other refs than "
                         f"expected: {self.ref_diff(expected, got)}")
        shutil.rmtree(dest)

        # ---- the node's footprint
        node.alive()
        res.info["node VmHWM"] = node.status_field("VmHWM")
        res.info["node VmRSS at end"] = node.status_field("VmRSS")
        res.info["node CPU seconds"] = f"{node.cpu_seconds():.1f}"
        node.stop()
        if node.exit_code not in (0, None):
            self.problem(f"[{name}] node exited with {node.exit_code} on SIGTERM")
        nlog = node.log().strip()
        if nlog:
            lines = nlog.splitlines()
            self.problem(f"[{name}] node logged {len(lines)} line(s) at warn or above; "
                         f"first ones:\n      " + "\n      ".join(lines[:10]))
        cgi.stop()
        self.node = self.cgi = None
        shutil.rmtree(root, ignore_errors=True)
        return res

    def ls_remote(self, url: str) -> dict[str, str]:
        out = self.runner.git("ls-remote", url).stdout.decode()
        refs = {}
        for line in out.splitlines():
            oid, ref = line.split("\t", 1)
            if ref.startswith(("refs/heads/", "refs/tags/")) and not ref.endswith("^{}"):
                refs[ref] = oid
        return refs

    @staticmethod
    def ref_diff(a: dict[str, str], b: dict[str, str]) -> str:
        diffs = [f"{r}: {a.get(r)} vs {b.get(r)}" for r in sorted(set(a) | set(b))
                 if a.get(r) != b.get(r)]
        return "; ".join(diffs[:10]) + (f" (+{len(diffs) - 10} more)" if len(diffs) > 10 else "")

    def check_clone(self, name, side, what, dest, src_refs, src_head) -> None:
        got = refs_of(self.runner, dest)
        if got != src_refs:
            self.problem(f"[{name}] {side} {what}: refs differ from the source: "
                         f"{self.ref_diff(src_refs, got)}")
        head = self.runner.git("-C", dest, "symbolic-ref", "HEAD").stdout.decode().strip()
        if head != src_head:
            self.problem(f"[{name}] {side} {what}: HEAD -> {head}, the source has {src_head}")

    def print_samples(self, res: Results, metric: str) -> None:
        for side, xs in res.samples[metric].items():
            log(f"   {side:10}: " + "  ".join(fmt_s(x) for x in xs)
                + f"   median {fmt_s(statistics.median(xs))}")

    # ---- report

    def table(self, res: Results) -> str:
        rows = []

        def row(label, node, git, kind, target=None, fmt=fmt_s):
            ratio = node / git if git else float("inf")
            verdict = ""
            if target is not None:
                verdict = f"<= {target:.1f}x " + ("ok" if ratio <= target else "MISSED")
            rows.append((label, fmt(node), fmt(git), kind, f"{ratio:.2f}x", verdict))

        m = res.median
        row("initial push (whole repo)", m("initial push", "node"), m("initial push", "git"),
            "git http-backend", TARGETS["push"])
        row("full clone, first (cold)", m("cold clone", "node"), m("cold clone", "git"),
            "git http-backend", TARGETS["clone"])
        row("full clone, repeated", m("clone", "node"), m("clone", "git"), "git http-backend",
            TARGETS["clone"])
        row("no-op fetch", m("no-op fetch", "node"), m("no-op fetch", "git"), "git http-backend")
        row("one-commit push", m("small push", "node"), m("small push", "git"),
            "git http-backend", TARGETS["push"])
        for v in (2, 0):
            k = f"upload-pack v{v}"
            row(f"upload-pack v{v} (full clone, warm)", m(k, "node"), m(k, "git direct"),
                "upload-pack --stateless-rpc")
            row(f"upload-pack v{v} over HTTP", m(k, "node"), m(k, "git http"), "git http-backend")
            row(f"  pack bytes v{v}", m(f"{k} pack bytes", "node"),
                m(f"{k} pack bytes", "git direct"), "git upload-pack", TARGETS["pack"],
                fmt=lambda x: f"{x:.0f} B")
            row(f"  response bytes v{v}", m(f"{k} response bytes", "node"),
                m(f"{k} response bytes", "git direct"), "git upload-pack",
                fmt=lambda x: f"{x:.0f} B")
        head = ("metric", "node", "git", "git side", "node/git", "target")
        widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
        line = lambda r: "  ".join(str(c).ljust(w) if i in (0, 3, 5) else str(c).rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        out = [f"== {res.name}: {res.info['objects']} objects, {res.info['pack']} packed, "
               f"{res.info['refs']} refs; medians of {self.args.iterations}",
               line(head), line(tuple("-" * w for w in widths))]
        out += [line(r) for r in rows]
        out.append(f"node peak RSS (VmHWM): {res.info['node VmHWM']}; RSS at end "
                   f"{res.info['node VmRSS at end']}; node CPU over the run "
                   f"{res.info['node CPU seconds']} s")
        return "\n".join(out)

    def cleanup(self) -> None:
        if self.node is not None:
            self.node.stop()
        if self.cgi is not None:
            self.cgi.stop()


def build(args) -> Path:
    if args.binary:
        binary = Path(args.binary).resolve()
        if not os.access(binary, os.X_OK):
            raise BenchError(f"--binary {binary} is not an executable file")
        return binary
    log("== cargo build --release -p guts-node"
        + (f" (CARGO_TARGET_DIR={os.environ['CARGO_TARGET_DIR']})"
           if os.environ.get("CARGO_TARGET_DIR") else ""))
    p = subprocess.run(["cargo", "build", "--release", "-p", "guts-node"], cwd=WORKSPACE)
    if p.returncode != 0:
        raise BenchError(f"cargo build failed with exit {p.returncode}")
    meta = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"],
                          cwd=WORKSPACE, capture_output=True, check=True)
    target = Path(json.loads(meta.stdout)["target_directory"])
    binary = target / "release" / "guts-node"
    if not binary.exists():
        raise BenchError(f"built, but {binary} is missing")
    return binary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", help="guts-node binary to use instead of building one")
    ap.add_argument("-n", "--iterations", type=int, default=5, help="samples per measure")
    ap.add_argument("--repos", default="synth,self",
                    help="comma-separated subset of: synth, self (default both)")
    ap.add_argument("--commits", type=int, default=10000, help="commits of the synth repo")
    ap.add_argument("--keep-temp", action="store_true", help="keep the temp dir (debugging)")
    args = ap.parse_args()
    repos = [r.strip() for r in args.repos.split(",") if r.strip()]
    if not repos or any(r not in ("synth", "self") for r in repos):
        ap.error("--repos takes synth and/or self")
    if args.iterations < 1:
        ap.error("--iterations must be at least 1")

    # SIGTERM/SIGHUP unwind like Ctrl-C, so that the finally below cleans up.
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    tmp = Path(tempfile.mkdtemp(prefix="guts-bench-git-"))
    bench = None
    try:
        binary = build(args)
        bench = Bench(args, binary, tmp)
        git_version = bench.runner.git("version").stdout.decode().strip()
        head = subprocess.run(["git", "-C", str(WORKSPACE), "rev-parse", "--short", "HEAD"],
                              capture_output=True).stdout.decode().strip()
        dirty = subprocess.run(["git", "-C", str(WORKSPACE), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True).stdout.decode()
        if dirty.strip():
            head += f" + uncommitted changes in {len(dirty.splitlines())} file(s)"
        log(f"== {git_version}; node {binary} (workspace HEAD {head}); "
            f"{os.cpu_count()} CPUs; {args.iterations} samples per measure; "
            f"load average {os.getloadavg()[0]:.2f}")
        results = [bench.run_repo(r) for r in repos]
        log(f"\n== load average at the end {os.getloadavg()[0]:.2f} (other processes on the "
            f"machine skew the timings)")
        for res in results:
            log(bench.table(res))
            log("")
        if bench.runner.warnings:
            log("== git printed on stderr (commands run with --quiet):")
            for w in bench.runner.warnings[:20]:
                log(f"   {w}")
        if bench.problems:
            log(f"== {len(bench.problems)} problem(s):")
            for p in bench.problems:
                log(f"   - {p}")
            return 1
        log("== no problems seen")
        return 0
    except BenchError as e:
        log(f"\nFAILED: {e}")
        if bench and bench.node:
            log(f"--- node log:\n{bench.node.log()[-6000:]}")
        return 1
    except KeyboardInterrupt as e:
        log(f"\ninterrupted ({e})")
        return 130
    finally:
        if bench:
            bench.cleanup()
        if args.keep_temp:
            log(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
