#!/usr/bin/env python3
"""Benchmark a clone of a real-world-sized repository over the node's SSH server, over
its HTTP, and over OpenSSH's sshd with git-shell, on this machine, in one run (Python
3.11, stdlib only).

The repository is `../shared/tools/synth.py 10000 2000 3` (about 91,000 objects, a tag
every 1,000 commits), imported with `git fast-import` and repacked with bitmaps
(`git repack -adb`); it is cached under /tmp/bench-ssh-cache, keyed by the synth.py
parameters and the file's hash, so reruns skip that step.

Three ways to clone it:

  guts ssh   ssh://git@127.0.0.1:PORT/alice/r.git: the node's own SSH server
             (GUTS_SSH_ADDR), stock OpenSSH client with a key added to the user through
             `POST /api/v3/user/keys`;
  guts http  http://alice:TOKEN@127.0.0.1:PORT/alice/r.git: the node's smart HTTP;
  openssh    ssh://gutsbench@127.0.0.1:PORT/home/gutsbench/.../r.git: a private
             `/usr/sbin/sshd -D -e` (its own config, host key and authorized_keys in a
             temp dir) for a local user `gutsbench` whose login shell is git-shell,
             serving a bare copy of the source owned by that user. This is the
             reference. If /usr/sbin/sshd is missing the script installs Debian's
             openssh-server with apt-get (it must run as root, for that and for the
             user); the package's own sshd service is not started.

The node is a release build (`cargo build --release -p guts-node` unless --binary),
started on free ports with a temp data dir; the user and repository are made through
the admin and REST APIs and the source is pushed over HTTP. Every ssh run uses
`-F /dev/null`, one identity and a known_hosts made with ssh-keyscan (strict checking).
sshd accepts GIT_PROTOCOL (AcceptEnv), so protocol v2 goes over both SSH servers; the
protocol actually spoken is checked from a packet trace of `git ls-remote`.

Measured, for each protocol asked (`--protocol 2`, `0` or `2,0`), with the ways'
order rotated every round:

  - `git clone --bare --quiet URL DEST`: 1 warm-up (checked with `git fsck
    --connectivity-only`) and N timed runs; every clone's refs (for-each-ref) must equal
    the source's. Also the size of the pack each clone received (objects/pack/*.pack),
    and the peak RSS of each server's process tree sampled every 50 ms during the runs
    (the node: one process; sshd: the per-connection sshd, git-shell, upload-pack and
    pack-objects processes it forks);
  - `git ls-remote URL`: connection, authentication and ref advertisement;
  - an incremental fetch: 10 new commits pushed to the node (HTTP) and to sshd's copy
    (over SSH, through git-shell's git-receive-pack), then a timed `git fetch` into a
    bare clone made earlier, per way; 1 warm-up round and N timed ones, each one on top
    of the previous; the fetched main must be the pushed commit.

It prints every sample, then Markdown tables: way, median, min, max, ratio to the
OpenSSH + git-shell median, pack bytes, peak server RSS; and the node's VmRSS/VmHWM
before and after the clones. Any failed command stops the run with a non-zero exit;
wrong results (refs that differ, fsck errors, another protocol than asked, node log
lines at error level; warnings are listed) are listed at the end and make the exit non-zero. sshd and the
node are stopped at the end, even on failure; the gutsbench user and openssh-server
stay installed (the user's bench directory is removed).

The OpenSSH client negotiates the key exchange with each server: with stock sshd 9.x
that is sntrup761x25519-sha512 (post-quantum, dearer), with the node curve25519-sha256;
`--kex curve25519-sha256` makes both SSH ways use the same one.

usage: scripts/bench-ssh.py [--binary PATH] [-n N] [--protocol 2|0|2,0]
                            [--commits 10000] [--kex ALG] [--no-fetch] [--keep-temp]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import statistics
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
CACHE = Path("/tmp/bench-ssh-cache")
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
CMD_TIMEOUT = 1800  # seconds any single command may take before the run fails
SSHD = Path("/usr/sbin/sshd")
BENCH_USER = "gutsbench"
SYNTH_FILES, SYNTH_EDITS = 2000, 3
FETCH_COMMITS = 10

WAYS = ("guts ssh", "guts http", "openssh")
REFERENCE = "openssh"
WAY_LABEL = {
    "guts ssh": "Guts over SSH (node's SSH server)",
    "guts http": "Guts over HTTP",
    "openssh": "OpenSSH sshd + git-shell (reference)",
}


class BenchError(Exception):
    """A failed command or an unusable server: the run stops."""


def log(msg: str = "") -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------- commands


class Runner:
    """Runs git with an isolated environment (temp HOME, no prompts, no system config)."""

    def __init__(self, home: Path):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GIT_", "SSH_AUTH_SOCK", "SSH_AGENT"))}
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


def refs_of(runner: Runner, repo: Path, prefixes=("refs/heads/", "refs/tags/")) -> dict[str, str]:
    out = runner.git("-C", repo, "for-each-ref", "--format=%(objectname) %(refname)",
                     *prefixes).stdout.decode()
    return {r: o for o, r in (line.split(" ", 1) for line in out.splitlines())}


def ref_diff(a: dict[str, str], b: dict[str, str]) -> str:
    diffs = [f"{r}: {a.get(r)} vs {b.get(r)}" for r in sorted(set(a) | set(b))
             if a.get(r) != b.get(r)]
    return "; ".join(diffs[:10]) + (f" (+{len(diffs) - 10} more)" if len(diffs) > 10 else "")


def pack_bytes(repo: Path) -> int:
    return sum(p.stat().st_size for p in (repo / "objects" / "pack").glob("*.pack"))


def fmt_s(x: float) -> str:
    return f"{x:.3f}"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# --------------------------------------------------------------------------- RSS sampling


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, IndexError, ValueError):
        return 0


class TreeRss:
    """Samples the summed RSS of a process and all its descendants every `interval` s,
    keeping the peak, between start() and stop()."""

    def __init__(self, root_pid: int, interval=0.05):
        self.root = root_pid
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> int:
        kids = _children_map()
        total, todo = 0, [self.root]
        while todo:
            pid = todo.pop()
            total += _rss_kib(pid)
            todo.extend(kids.get(pid, ()))
        return total

    def _loop(self):
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.sample())
            self._stop.wait(self.interval)

    def start(self):
        self.peak_kib = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        if self._thread:
            self._thread.join()
        return self.peak_kib


# --------------------------------------------------------------------------- the node


class Node:
    def __init__(self, binary: Path, root: Path):
        self.binary = binary
        self.root = root
        self.proc: subprocess.Popen | None = None
        self.log_path = root / "node.log"
        self.port = 0
        self.metrics_port = 0
        self.ssh_port = 0
        self.token = ""
        self.exit_code: int | None = None

    def start(self) -> None:
        data = self.root / "data"
        last_error = None
        for _attempt in range(3):  # a probed port may be taken in between
            shutil.rmtree(data, ignore_errors=True)
            self.port, self.metrics_port, self.ssh_port = free_port(), free_port(), free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("GUTS_")}
            env.update(
                GUTS_DATA_DIR=str(data),
                GUTS_API_ADDR=f"127.0.0.1:{self.port}",
                GUTS_METRICS_ADDR=f"127.0.0.1:{self.metrics_port}",
                GUTS_SSH_ADDR=f"127.0.0.1:{self.ssh_port}",
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
                wait_for_port(self.ssh_port, self.proc, "the node's SSH server")
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

    def status_field(self, name: str) -> str:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return " ".join(line.split(":", 1)[1].split())
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


# --------------------------------------------------------------------------- OpenSSH sshd


def ensure_sshd() -> None:
    """Installs Debian's openssh-server when /usr/sbin/sshd is missing."""
    if SSHD.exists():
        return
    if os.geteuid() != 0:
        raise BenchError(f"{SSHD} is missing and this is not root: cannot apt-get install "
                         f"openssh-server")
    if not shutil.which("apt-get"):
        raise BenchError(f"{SSHD} is missing and there is no apt-get to install it")
    log(f"== {SSHD} missing: apt-get install openssh-server")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "openssh-server"]
    p = subprocess.run(cmd, env=env, capture_output=True, timeout=CMD_TIMEOUT)
    if p.returncode != 0:
        log("   install failed, running apt-get update first")
        u = subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True,
                           timeout=CMD_TIMEOUT)
        if u.returncode != 0:
            raise BenchError(f"apt-get update failed ({u.returncode}): "
                             f"{u.stderr.decode(errors='replace')[-2000:]}")
        p = subprocess.run(cmd, env=env, capture_output=True, timeout=CMD_TIMEOUT)
    if p.returncode != 0 or not SSHD.exists():
        raise BenchError(f"apt-get install openssh-server failed ({p.returncode}): "
                         f"{p.stderr.decode(errors='replace')[-2000:]}")
    # The package may start its own service where there is an init system; the bench
    # does not use it (it runs a private sshd on another port) and leaves it alone.


def ensure_bench_user() -> pwd.struct_passwd:
    """The local user whose login shell is git-shell, listed in /etc/shells and with an
    account sshd accepts (a '!' password marks it locked, which sshd refuses without
    PAM)."""
    git_shell = shutil.which("git-shell")
    if not git_shell:
        raise BenchError("git-shell is not on PATH")
    git_shell = os.path.abspath(git_shell)
    shells = Path("/etc/shells")
    listed = shells.read_text().split() if shells.exists() else []
    if git_shell not in listed:
        with open(shells, "a") as f:
            f.write(f"{git_shell}\n")
    try:
        pw = pwd.getpwnam(BENCH_USER)
        if pw.pw_shell != git_shell:
            subprocess.run(["usermod", "-s", git_shell, BENCH_USER], check=True)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", git_shell, BENCH_USER], check=True)
    subprocess.run(["usermod", "-p", "*", BENCH_USER], check=True)  # not locked
    pw = pwd.getpwnam(BENCH_USER)
    Path(pw.pw_dir).mkdir(parents=True, exist_ok=True)
    os.chown(pw.pw_dir, pw.pw_uid, pw.pw_gid)
    return pw


class Sshd:
    """A private `sshd -D -e` on a free 127.0.0.1 port with its own config, host key and
    authorized_keys (all in `root`, which must be readable by the bench user)."""

    OPTIONAL = ("PerSourcePenalties no",)  # OpenSSH >= 9.8 only

    def __init__(self, root: Path, authorized_key: str):
        self.root = root
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path = root / "sshd.log"
        root.mkdir()
        os.chmod(root, 0o755)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-sshd",
                        "-f", str(root / "host_ed25519")], check=True)
        self.authorized = root / "authorized_keys"
        self.authorized.write_text(authorized_key.strip() + "\n")
        os.chmod(self.authorized, 0o644)
        self.config = root / "sshd_config"
        # The privilege separation directory Debian's sshd expects.
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)

    def write_config(self, optional: tuple[str, ...]) -> None:
        lines = [
            "ListenAddress 127.0.0.1",
            f"HostKey {self.root / 'host_ed25519'}",
            f"PidFile {self.root / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin no",
            f"AllowUsers {BENCH_USER}",
            "AcceptEnv GIT_PROTOCOL",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "MaxStartups 100:30:200",
            "LogLevel ERROR",
            *optional,
        ]
        self.config.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        optional = list(self.OPTIONAL)
        while True:
            self.write_config(tuple(optional))
            t = subprocess.run([str(SSHD), "-t", "-f", str(self.config)], capture_output=True)
            if t.returncode == 0:
                break
            err = t.stderr.decode(errors="replace")
            bad = [o for o in optional if o.split()[0] in err]
            if not bad:
                raise BenchError(f"sshd -t rejects the config: {err}")
            optional = [o for o in optional if o not in bad]
        for attempt in range(3):
            self.port = free_port()
            logf = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.config), "-p", str(self.port)],
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            logf.close()
            try:
                wait_for_port(self.port, self.proc, "sshd")
                return
            except BenchError:
                stop_process(self.proc, 5)
                if attempt == 2:
                    raise BenchError(f"sshd did not start:\n{self.log()}")

    def stop(self) -> None:
        stop_process(self.proc, 5)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


# --------------------------------------------------------------------------- results


@dataclass
class Results:
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    extra: dict[str, dict[str, str]] = field(default_factory=dict)

    def add(self, metric: str, way: str, value: float) -> None:
        self.samples.setdefault(metric, {}).setdefault(way, []).append(value)

    def note(self, metric: str, way: str, key: str, value: str) -> None:
        self.extra.setdefault(metric, {})[f"{way}/{key}"] = value

    def get(self, metric: str, way: str, key: str) -> str:
        return self.extra.get(metric, {}).get(f"{way}/{key}", "")


def markdown_table(res: Results, metric: str, extra_cols: list[tuple[str, str]]) -> str:
    head = ["way", "median s", "min s", "max s", f"ratio to {REFERENCE}"]
    head += [title for title, _ in extra_cols]
    ref = statistics.median(res.samples[metric][REFERENCE])
    rows = []
    for way in WAYS:
        xs = res.samples[metric][way]
        med = statistics.median(xs)
        row = [WAY_LABEL[way], fmt_s(med), fmt_s(min(xs)), fmt_s(max(xs)),
               f"{med / ref:.2f}x" if ref else "inf"]
        row += [res.get(metric, way, key) or "-" for _, key in extra_cols]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]

    def line(r):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(r, widths))) + " |"

    sep = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":")
                         for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), sep] + [line(r) for r in rows])


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
        self.sshd: Sshd | None = None
        self.user_dir: Path | None = None
        self.res = Results()

    def problem(self, msg: str) -> None:
        self.problems.append(msg)
        log(f"!! PROBLEM: {msg}")

    # ---- the source repository (cached)

    def source(self) -> Path:
        synth = TOOLS / "synth.py"
        digest = hashlib.sha256(synth.read_bytes()).hexdigest()[:12]
        key = f"synth-{self.args.commits}-{SYNTH_FILES}-{SYNTH_EDITS}-{digest}.git"
        dest = CACHE / key
        if (dest / "bench-complete").exists():
            log(f"== source repository cached: {dest}")
            return dest
        CACHE.mkdir(parents=True, exist_ok=True)
        log(f"== building the synth.py repository ({self.args.commits} commits, "
            f"{SYNTH_FILES} files, {SYNTH_EDITS} edits per commit) into {dest}")
        t0 = time.perf_counter()
        part = CACHE / f"{key}.part-{os.getpid()}"
        shutil.rmtree(part, ignore_errors=True)
        g = self.runner.git
        g("init", "--quiet", "--bare", part)
        proc = subprocess.Popen(
            [sys.executable, str(synth), str(self.args.commits), str(SYNTH_FILES),
             str(SYNTH_EDITS)], stdout=subprocess.PIPE, env=self.runner.env)
        imp = subprocess.run(["git", "-C", str(part), "fast-import", "--quiet"],
                             stdin=proc.stdout, env=self.runner.env, capture_output=True,
                             timeout=CMD_TIMEOUT)
        proc.stdout.close()
        if proc.wait() != 0 or imp.returncode != 0:
            shutil.rmtree(part, ignore_errors=True)
            raise BenchError(f"synth.py | git fast-import failed ({proc.returncode}, "
                             f"{imp.returncode}): {imp.stderr.decode(errors='replace')}")
        g("-C", part, "repack", "-adbq")
        g("-C", part, "prune-packed")
        (part / "bench-complete").write_text("ok\n")
        shutil.rmtree(dest, ignore_errors=True)
        part.rename(dest)
        log(f"   built in {time.perf_counter() - t0:.1f} s")
        return dest

    # ---- ssh plumbing

    def keygen(self, name: str) -> tuple[Path, str]:
        path = self.tmp / "keys" / name
        path.parent.mkdir(exist_ok=True)
        self.runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path])
        return path, (path.parent / f"{name}.pub").read_text().strip()

    def keyscan(self, port: int) -> str:
        deadline = time.monotonic() + 20
        while True:
            p = self.runner.run(["ssh-keyscan", "-T", "10", "-t", "ed25519", "-p", port,
                                 "127.0.0.1"], check=False, quiet_ok=True)
            text = p.stdout.decode()
            if "ssh-ed25519 AAAA" in text:
                return text
            if time.monotonic() > deadline:
                raise BenchError(f"ssh-keyscan found no host key on port {port}: "
                                 f"{p.stderr.decode(errors='replace')}")
            time.sleep(0.2)

    def ssh_command(self, key: Path, port: int, known_hosts: Path, level="ERROR") -> str:
        return (f"ssh -F /dev/null -i {key} -p {port} -o IdentitiesOnly=yes "
                f"-o IdentityAgent=none -o BatchMode=yes -o StrictHostKeyChecking=yes "
                f"-o UserKnownHostsFile={known_hosts} -o LogLevel={level} "
                f"-o ConnectTimeout=10"
                + (f" -o KexAlgorithms={self.args.kex}" if self.args.kex else ""))

    def cipher_of(self, key: Path, port: int, known_hosts: Path, user: str) -> str:
        """The kex and cipher OpenSSH negotiates (from `ssh -v`), for the report."""
        cmd = self.ssh_command(key, port, known_hosts, level="DEBUG1").split()
        p = self.runner.run([*cmd, "-T", f"{user}@127.0.0.1", "git-upload-pack",
                             "/nonexistent.git"], check=False, quiet_ok=True, input=b"")
        err = p.stderr.decode(errors="replace")
        kex = re.search(r"kex: algorithm: (\S+)", err)
        cipher = re.search(r"kex: server->client cipher: (\S+) MAC: (\S+)", err)
        out = f"kex {kex.group(1) if kex else '?'}, cipher {cipher.group(1) if cipher else '?'}"
        if cipher and cipher.group(2) != "<implicit>":
            out += f", MAC {cipher.group(2)}"
        return out

    # ---- the run

    def run(self) -> None:
        args = self.args
        g = self.runner.git
        n = args.iterations
        src = self.source()
        src_refs = refs_of(self.runner, src)
        counts = dict(line.split(": ") for line in
                      g("-C", src, "count-objects", "-v").stdout.decode().splitlines())
        log(f"   {counts['in-pack']} objects, {fmt_bytes(int(counts['size-pack']) * 1024)} "
            f"packed, {len(src_refs)} refs")
        self.source_info = (f"synth.py {args.commits} {SYNTH_FILES} {SYNTH_EDITS}: "
                            f"{counts['in-pack']} objects, "
                            f"{fmt_bytes(int(counts['size-pack']) * 1024)} packed, "
                            f"{len(src_refs)} refs")

        # ---- OpenSSH + git-shell
        ensure_sshd()
        sshd_version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}",
                                       "openssh-server"], capture_output=True
                                      ).stdout.decode().strip() or "?"
        pw = ensure_bench_user()
        self.user_dir = Path(pw.pw_dir) / f"bench-ssh-{os.getpid()}"
        shutil.rmtree(self.user_dir, ignore_errors=True)
        self.user_dir.mkdir()
        served = self.user_dir / "r.git"
        g("clone", "--quiet", "--bare", "--no-local", src, served)
        g("-C", served, "repack", "-adbq")
        for k, v in [("gc.auto", "0"), ("receive.autogc", "false"),
                     ("uploadpack.allowFilter", "true")]:
            g("-C", served, "config", k, v)
        if refs_of(self.runner, served) != src_refs:
            raise BenchError("the bare copy for sshd has other refs than the source")
        subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", str(self.user_dir)],
                       check=True)

        key, public = self.keygen("client")
        self.sshd = Sshd(self.tmp / "sshd", public)
        self.sshd.start()
        log(f"== sshd (openssh-server {sshd_version}) pid {self.sshd.proc.pid} on "
            f"127.0.0.1:{self.sshd.port}, user {BENCH_USER} (shell {pw.pw_shell}), "
            f"repository {served}")

        # ---- the node
        (self.tmp / "node").mkdir()
        self.node = Node(self.binary, self.tmp / "node")
        self.node.start()
        node = self.node
        user = node.api("POST", "/admin/users", f"Bearer {ADMIN_TOKEN}", {"login": "alice"})
        node.token = user["token"]
        node.api("POST", "/api/v3/user/repos", f"token {node.token}", {"name": "r"})
        node.api("POST", "/api/v3/user/keys", f"token {node.token}",
                 {"title": "bench", "key": public})
        log(f"== node pid {node.proc.pid}: HTTP {node.url}, SSH 127.0.0.1:{node.ssh_port}")

        known = self.tmp / "known_hosts"
        known.write_text(self.keyscan(node.ssh_port) + self.keyscan(self.sshd.port))
        node_ssh = self.ssh_command(key, node.ssh_port, known)
        sshd_ssh = self.ssh_command(key, self.sshd.port, known)
        urls = {
            "guts ssh": f"ssh://git@127.0.0.1:{node.ssh_port}/alice/r.git",
            "guts http": f"http://alice:{node.token}@127.0.0.1:{node.port}/alice/r.git",
            "openssh": f"ssh://{BENCH_USER}@127.0.0.1:{self.sshd.port}{served}",
        }
        envs = {
            "guts ssh": {"GIT_SSH_COMMAND": node_ssh},
            "guts http": {},
            "openssh": {"GIT_SSH_COMMAND": sshd_ssh},
        }
        servers = {"guts ssh": node.proc.pid, "guts http": node.proc.pid,
                   "openssh": self.sshd.proc.pid}

        log("== pushing the source to the node over HTTP")
        t0 = time.perf_counter()
        g("-C", src, "push", "--quiet", urls["guts http"],
          "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
        log(f"   pushed in {time.perf_counter() - t0:.1f} s")

        # The key may take a moment to reach the SSH server's view of the accounts.
        deadline = time.monotonic() + 30
        while True:
            p = self.runner.git("ls-remote", urls["guts ssh"], env=envs["guts ssh"],
                                check=False, quiet_ok=True)
            if p.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"git ls-remote over the node's SSH keeps failing: "
                                 f"{p.stderr.decode(errors='replace')}")
            time.sleep(0.5)
        for way in WAYS:
            remote = self.ls_remote(urls[way], envs[way])
            if remote != src_refs:
                raise BenchError(f"{way}: the server's refs differ from the source: "
                                 f"{ref_diff(src_refs, remote)}")
        self.ciphers = {"guts ssh": self.cipher_of(key, node.ssh_port, known, "git"),
                        "openssh": self.cipher_of(key, self.sshd.port, known, BENCH_USER)}
        for way, c in self.ciphers.items():
            log(f"   {way}: {c}")

        self.node_mem = {"after push": (node.status_field("VmRSS"), node.status_field("VmHWM"))}
        work = self.tmp / "work"
        work.mkdir()

        def rounds(count):
            for i in range(count):  # rotate who goes first
                k = i % len(WAYS)
                yield i, WAYS[k:] + WAYS[:k]

        fetch_clones: dict[tuple[int, str], Path] = {}
        for version in args.protocols:
            pv = ["-c", f"protocol.version={version}"]
            # ---- which protocol each way really speaks
            for way in WAYS:
                trace = work / f"trace-{way.replace(' ', '-')}-v{version}.txt"
                g(*pv, "ls-remote", urls[way],
                  env={**envs[way], "GIT_TRACE_PACKET": str(trace)})
                spoke2 = re.search(r"packet:\s+\S+< version 2$", trace.read_text(),
                                   re.M) is not None
                if spoke2 != (version == 2):
                    self.problem(f"{way}: asked for protocol v{version}, the server spoke "
                                 f"{'v2' if spoke2 else 'v0/v1'}")
                trace.unlink()

            # ---- ls-remote
            metric = f"ls-remote v{version}"
            log(f"-- {metric}: 1 warm-up + {n} runs per way")
            for i, order in rounds(n + 1):
                for way in order:
                    t = self.runner.timed(["git", *pv, "ls-remote", urls[way]], env=envs[way])
                    if i:
                        self.res.add(metric, way, t)
            self.print_samples(metric)

            # ---- full clone
            metric = f"clone v{version}"
            log(f"-- {metric}: git clone --bare --quiet, 1 warm-up (+ fsck) + {n} runs "
                f"per way")
            samplers = {w: TreeRss(pid) for w, pid in servers.items()}
            for i, order in rounds(n + 1):
                for way in order:
                    dest = work / f"clone-{way.replace(' ', '-')}-v{version}-{i}.git"
                    samplers[way].start()
                    try:
                        t = self.runner.timed(["git", *pv, "clone", "--bare", "--quiet",
                                               urls[way], dest], env=envs[way])
                    finally:
                        peak = samplers[way].stop()
                    got = refs_of(self.runner, dest)
                    if got != src_refs:
                        self.problem(f"{way} {metric} #{i}: refs differ from the source: "
                                     f"{ref_diff(src_refs, got)}")
                    nbytes = pack_bytes(dest)
                    if i == 0:
                        fs = self.runner.git("-C", dest, "fsck", "--connectivity-only",
                                             "--no-progress", check=False, quiet_ok=True)
                        if fs.returncode != 0:
                            self.problem(f"{way} {metric}: git fsck --connectivity-only "
                                         f"failed: {fs.stderr.decode(errors='replace')[-1000:]}")
                        else:
                            self.res.note(metric, way, "fsck", "ok")
                        # kept for the incremental fetch
                        fetch_clones[(version, way)] = dest
                        log(f"   warm-up {way:9}: {fmt_s(t)} s, pack {fmt_bytes(nbytes)}, "
                            f"fsck {'ok' if fs.returncode == 0 else 'FAILED'}")
                    else:
                        self.res.add(metric, way, t)
                        self.res.add(f"{metric} pack bytes", way, nbytes)
                        self.res.add(f"{metric} server peak", way, peak)
                        shutil.rmtree(dest)
                node.alive()
            for way in WAYS:
                self.res.note(metric, way, "pack", fmt_bytes(statistics.median(
                    self.res.samples[f"{metric} pack bytes"][way])))
                self.res.note(metric, way, "peak", fmt_bytes(1024 * max(
                    self.res.samples[f"{metric} server peak"][way])))
            self.print_samples(metric)
        self.node_mem["after clones"] = (node.status_field("VmRSS"), node.status_field("VmHWM"))

        # ---- incremental fetch: FETCH_COMMITS new commits on main each round
        if not args.no_fetch:
            self.incremental_fetch(src, urls, envs, fetch_clones, rounds, work)

        node.alive()
        self.node_mem["at end"] = (node.status_field("VmRSS"), node.status_field("VmHWM"))
        self.node_cpu = node.cpu_seconds()

    def incremental_fetch(self, src, urls, envs, fetch_clones, rounds, work) -> None:
        g = self.runner.git
        n = self.args.iterations
        wt = work / "wt"
        g("clone", "--quiet", src, wt)
        files = g("-C", wt, "ls-files").stdout.decode().splitlines()
        counter = 0
        for version in self.args.protocols:
            pv = ["-c", f"protocol.version={version}"]
            metric = f"fetch v{version}"
            log(f"-- {metric}: {FETCH_COMMITS} new commits pushed, then git fetch; "
                f"1 warm-up + {n} runs per way")
            for i, order in rounds(n + 1):
                for _ in range(FETCH_COMMITS):
                    path = files[(counter * 7919) % len(files)]
                    with open(wt / path, "a") as f:
                        f.write(f"bench fetch {counter}\n")
                    g("-C", wt, "commit", "--quiet", "-am", f"bench fetch {counter}")
                    counter += 1
                head = g("-C", wt, "rev-parse", "HEAD").stdout.decode().strip()
                # to the node (one repository for both of its ways) and to sshd's copy
                g("-C", wt, "push", "--quiet", urls["guts http"], "HEAD:refs/heads/main")
                g("-C", wt, "push", "--quiet", urls["openssh"], "HEAD:refs/heads/main",
                  env=envs["openssh"])
                for way in order:
                    dest = fetch_clones[(version, way)]
                    t = self.runner.timed(["git", *pv, "-C", dest, "fetch", "--quiet",
                                           urls[way], "+refs/heads/*:refs/heads/*",
                                           "+refs/tags/*:refs/tags/*"], env=envs[way])
                    got = g("-C", dest, "rev-parse", "refs/heads/main").stdout.decode().strip()
                    if got != head:
                        self.problem(f"{way} {metric} #{i}: main is {got} after the fetch, "
                                     f"pushed {head}")
                    if i:
                        self.res.add(metric, way, t)
                self.node.alive()
            self.print_samples(metric)
        for (version, way), dest in fetch_clones.items():
            fs = g("-C", dest, "fsck", "--connectivity-only", "--no-progress", check=False,
                   quiet_ok=True)
            if fs.returncode != 0:
                self.problem(f"{way} v{version}: fsck after the fetches failed: "
                             f"{fs.stderr.decode(errors='replace')[-1000:]}")

    def ls_remote(self, url: str, env: dict) -> dict[str, str]:
        out = self.runner.git("ls-remote", url, env=env).stdout.decode()
        refs = {}
        for line in out.splitlines():
            oid, ref = line.split("\t", 1)
            if ref.startswith(("refs/heads/", "refs/tags/")) and not ref.endswith("^{}"):
                refs[ref] = oid
        return refs

    def print_samples(self, metric: str) -> None:
        for way in WAYS:
            xs = self.res.samples[metric][way]
            log(f"   {way:9}: " + "  ".join(fmt_s(x) for x in xs)
                + f"   median {fmt_s(statistics.median(xs))} s")

    # ---- report

    def report(self) -> None:
        a = self.args
        log(f"\n## Clone of a real-world-sized repository: Guts SSH vs Guts HTTP vs "
            f"OpenSSH + git-shell\n")
        log(f"source: {self.source_info}; {a.iterations} timed runs per way after 1 warm-up, "
            f"order rotated each round; loopback, {os.cpu_count()} CPUs")
        log(f"ssh: Guts {self.ciphers['guts ssh']}; OpenSSH {self.ciphers['openssh']}")
        for version in a.protocols:
            log(f"\n### git clone --bare, protocol v{version}\n")
            log(markdown_table(self.res, f"clone v{version}",
                               [("pack received", "pack"), ("server peak RSS", "peak"),
                                ("fsck", "fsck")]))
        for version in a.protocols:
            log(f"\n### git ls-remote, protocol v{version}\n")
            log(markdown_table(self.res, f"ls-remote v{version}", []))
        if not a.no_fetch:
            for version in a.protocols:
                log(f"\n### incremental fetch ({FETCH_COMMITS} new commits), protocol "
                    f"v{version}\n")
                log(markdown_table(self.res, f"fetch v{version}", []))
        log("\nserver peak RSS: the summed RSS of the server's process tree, sampled every "
            "50 ms during the timed clones (guts: the node process, shared by its SSH and "
            "HTTP; openssh: sshd and the sshd, git-shell, git-upload-pack and "
            "pack-objects processes it forks per connection).")
        log("node memory (VmRSS / VmHWM): " + "; ".join(
            f"{k} {rss} / {hwm}" for k, (rss, hwm) in self.node_mem.items())
            + f"; node CPU over the run {self.node_cpu:.1f} s")

    def cleanup(self) -> None:
        if self.sshd is not None:
            self.sshd.stop()
        if self.node is not None:
            self.node.stop()
        if self.user_dir is not None:
            shutil.rmtree(self.user_dir, ignore_errors=True)


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
    ap.add_argument("-n", "--iterations", type=int, default=5,
                    help="timed runs per way and measure, after 1 warm-up (default 5)")
    ap.add_argument("--protocol", default="2",
                    help="git protocol version(s): 2, 0 or 2,0 (default 2)")
    ap.add_argument("--commits", type=int, default=10000,
                    help="commits of the synth.py repository (default 10000)")
    ap.add_argument("--no-fetch", action="store_true", help="skip the incremental fetch")
    ap.add_argument("--kex", help="KexAlgorithms for both SSH ways (e.g. curve25519-sha256; "
                    "default: what the client and each server agree on)")
    ap.add_argument("--keep-temp", action="store_true", help="keep the temp dir (debugging)")
    args = ap.parse_args()
    try:
        args.protocols = [int(v) for v in args.protocol.split(",") if v.strip()]
    except ValueError:
        ap.error("--protocol takes 2, 0 or 2,0")
    if not args.protocols or any(v not in (0, 2) for v in args.protocols):
        ap.error("--protocol takes 2, 0 or 2,0")
    if args.iterations < 1:
        ap.error("--iterations must be at least 1")
    if os.geteuid() != 0:
        ap.error("run as root: the OpenSSH reference needs a local user (and maybe apt-get)")

    # SIGTERM/SIGHUP unwind like Ctrl-C, so that the finally below cleans up.
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    tmp = Path(tempfile.mkdtemp(prefix="guts-bench-ssh-"))
    os.chmod(tmp, 0o755)  # sshd reads authorized_keys in here as the bench user
    bench = None
    try:
        binary = build(args)
        bench = Bench(args, binary, tmp)
        git_version = bench.runner.git("version").stdout.decode().strip()
        ssh_version = subprocess.run(["ssh", "-V"], capture_output=True
                                     ).stderr.decode().strip()
        head = subprocess.run(["git", "-C", str(WORKSPACE), "rev-parse", "--short", "HEAD"],
                              capture_output=True).stdout.decode().strip()
        dirty = subprocess.run(["git", "-C", str(WORKSPACE), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True).stdout.decode()
        if dirty.strip():
            head += f" + uncommitted changes in {len(dirty.splitlines())} file(s)"
        log(f"== {git_version}; {ssh_version}; node {binary} (workspace HEAD {head}); "
            f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
        bench.run()
        log(f"\n== load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
            f"(other processes on the machine skew the timings)")
        bench.report()
        lines = bench.node.log().strip().splitlines()
        errors = [l for l in lines if '"level":"ERROR"' in l]
        if errors:
            bench.problem(f"node logged {len(errors)} error line(s); first ones:\n"
                          "      " + "\n      ".join(errors[:10]))
        if len(lines) > len(errors):
            log(f"\n== node logged {len(lines) - len(errors)} warning line(s); first ones:")
            for l in [l for l in lines if l not in errors][:10]:
                log(f"   {l[:400]}")
        if bench.runner.warnings:
            log("\n== git printed on stderr (commands run with --quiet):")
            for w in bench.runner.warnings[:20]:
                log(f"   {w[:500]}")
        if bench.problems:
            log(f"\n== {len(bench.problems)} problem(s):")
            for p in bench.problems:
                log(f"   - {p}")
            return 1
        log("\n== no problems seen")
        return 0
    except BenchError as e:
        log(f"\nFAILED: {e}")
        if bench and bench.node and "--- node log" not in str(e):
            log(f"--- node log:\n{bench.node.log()[-6000:]}")
        if bench and bench.sshd:
            log(f"--- sshd log:\n{bench.sshd.log()[-3000:]}")
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
