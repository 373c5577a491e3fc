#!/usr/bin/env python3
"""Web interface benchmark: the server time of three pages of one repository on a
release node, against the targets p99 <= 50 ms (repository home), 100 ms (a 5,000-line
blob) and 150 ms (a commit with a 2,000-line diff) on 2 cores.

1. Starts one release node on 127.0.0.1 (its JSON log at info level), creates a user
   with a password (admin API), a repository (REST, with the user's token) and pushes
   with `git` a generated repository: a ~200-line Markdown README, a Rust file of
   exactly 5,000 lines, ~50 other files in a few directories, and a second commit
   that changes 2,000 lines of a 3,000-line file: edits 900 lines in 100 places and
   adds 1,100 in 10 blocks (about 2,010 additions and 910 deletions as git and the
   node count them: the diff pairs a few unchanged `}` lines too). Not 1,000 + 1,000:
   that diff counts 2,024 + 1,024 = 3,048 changed lines, over the node's (and
   GitHub's) 3,000-line limit per file, so the file would be listed without any
   patch (`--rewrite 1000 --add 1000` shows it). Everything is generated here,
   deterministically.
2. Signs in as a browser does (GET /login for the `guts_csrf` cookie and the form's
   `_csrf`, POST /login, keep `guts_session`) and checks that the pages show the
   content: the blob page has `id="L5000"`, the commit page's diff rows
   (`class="add"` + `class="del"`) or else its `diff-truncated` notice.
3. Times each page N times one at a time on one keep-alive connection (after a
   warm-up), then with 4 clients (threads, a connection each) for throughput.
   Client time is request sent -> whole body read; server time is the node's own
   `duration_ms` of each `"message":"request"` log line of the page's route.
4. Times the REST equivalents (the commit's diff as JSON, the file's contents, the
   raw file) so that git reading and diffing can be told apart from rendering.

It prints a table against the targets (judged on the server's p99 of the one-at-a-time
run) and exits non-zero when a page does not answer 200 or lacks its content. Missing
a target is reported, not an error (`--strict` makes it one).

Usage (after `cargo build --release -p guts-node --locked`; GUTS_NODE_BIN overrides
the binary, KEEP=1 keeps the node's directory, log and the pushed work tree):
    scripts/bench-web.py [-n 300] [--warmup 20] [--clients 4] [--load 400]
"""

import argparse
import http.client
import json
import os
import random
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
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GUTS_NODE_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release/guts-node")
ADMIN = "bench-admin-token-0123456789"
LOGIN = "alice"
PASSWORD = "correct horse battery staple"
REPO = "webbench"

BLOB_PATH = "src/interpreter.rs"  # exactly BLOB_LINES lines
BLOB_LINES = 5000
DIFF_PATH = "src/pipeline.rs"  # DIFF_BASE_LINES lines, then rewritten and grown
DIFF_BASE_LINES = 3000
ROUTES = {
    "home": "/{owner}/{repo}",
    "blob": "/{owner}/{repo}/blob/{*rest}",
    "commit": "/{owner}/{repo}/commit/{sha}",
}
TARGETS = {"home": 50.0, "blob": 100.0, "commit": 150.0}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# --------------------------------------------------------------------------- content
# A small deterministic generator of plausible Rust, Markdown and configuration files.

NOUNS = ["token", "span", "frame", "scope", "symbol", "buffer", "cursor", "entry", "node",
         "record", "segment", "block", "value", "slot", "header", "payload", "chunk",
         "window", "index", "range", "label", "queue", "batch", "stage", "event", "rule"]
VERBS = ["parse", "emit", "resolve", "lower", "check", "collect", "merge", "split", "flush",
         "encode", "decode", "visit", "rewrite", "expand", "fold", "scan", "load", "store",
         "apply", "reduce", "validate", "render", "schedule", "drain", "classify"]
ADJS = ["pending", "active", "stale", "shared", "local", "nested", "inline", "dirty",
        "frozen", "partial", "deferred", "cached", "raw", "final", "empty", "weak"]
TYPES = ["u32", "u64", "usize", "i64", "bool", "String", "Vec<u8>", "Option<usize>",
         "&str", "f64"]
PHRASES = ["unexpected end of input", "value out of range", "duplicate definition",
           "missing closing delimiter", "unknown identifier", "stack overflow in evaluation",
           "invalid escape sequence", "type mismatch in binary operation",
           "cannot borrow a frozen slot", "division by zero", "recursion limit reached",
           "malformed header", "checksum mismatch", "queue is full", "stage already drained"]


def camel(*words):
    return "".join(w[:1].upper() + w[1:] for w in words)


class Gen:
    """Rust items; every identifier carries a counter, so no two functions are alike."""

    def __init__(self, seed):
        self.r = random.Random(seed)
        self.n = 0

    def pick(self, xs):
        return self.r.choice(xs)

    def ident(self):
        self.n += 1
        return f"{self.pick(VERBS)}_{self.pick(NOUNS)}_{self.n}"

    def doc(self, indent=""):
        a, b, c = self.pick(VERBS), self.pick(NOUNS), self.pick(ADJS)
        lines = [f"{indent}/// {a.capitalize()}s every {c} {b} of the current {self.pick(NOUNS)}."]
        if self.r.random() < 0.5:
            lines += [f"{indent}///",
                      f"{indent}/// Returns an error when the {b} is {self.pick(ADJS)}; "
                      f"callers {self.pick(VERBS)} it first.",
                      f"{indent}/// See [`{camel(self.pick(NOUNS), self.pick(NOUNS))}`] for the layout."]
        return lines

    def stmt(self, ind):
        r, n = self.r.random(), self.r.randint(2, 4096)
        x, y = self.pick(NOUNS), self.pick(NOUNS)
        if r < 0.15:
            return [f'{ind}let {x}_{n} = self.{self.pick(VERBS)}_{y}({n})?;']
        if r < 0.28:
            return [f'{ind}if {x}.len() > {n} {{',
                    f'{ind}    return Err(Error::new(ErrorKind::{camel(self.pick(ADJS))}, "{self.pick(PHRASES)}"));',
                    f'{ind}}}']
        if r < 0.40:
            return [f'{ind}for ({y}_idx, {x}) in self.{y}s.iter().enumerate() {{',
                    f'{ind}    total += {x}.weight * {y}_idx as u64 + {n};',
                    f'{ind}    trace!("{self.pick(VERBS)} {x} #{{}} at {{}}", {y}_idx, {x}.offset);',
                    f'{ind}}}']
        if r < 0.52:
            variants = self.r.sample(ADJS, 3)
            return [f'{ind}match self.state {{',
                    *[f'{ind}    State::{camel(v)} => {{ self.{self.pick(NOUNS)}_count += {i + 1}; }}'
                      for i, v in enumerate(variants)],
                    f'{ind}    _ => unreachable!("state {{:?}} after {self.pick(VERBS)}", self.state),',
                    f'{ind}}}']
        if r < 0.62:
            return [f'{ind}let message = format!("{self.pick(PHRASES)}: {{}} ({{}} of {{}})", {x}, {n}, limit);',
                    f'{ind}self.diagnostics.push(Diagnostic::warning(span, message));']
        if r < 0.72:
            return [f'{ind}let {x}s: Vec<_> = input',
                    f'{ind}    .iter()',
                    f'{ind}    .filter(|{x}| {x}.is_{self.pick(ADJS)}())',
                    f'{ind}    .map(|{x}| {x}.{self.pick(VERBS)}({n}))',
                    f'{ind}    .collect();']
        if r < 0.82:
            return [f'{ind}// {self.pick(PHRASES).capitalize()} is only possible when the {x} was '
                    f'{self.pick(VERBS)}d twice;',
                    f'{ind}// the {y} keeps the first one, as the reference implementation does.',
                    f'{ind}self.{x}_limit = self.{x}_limit.saturating_sub({n});']
        if r < 0.9:
            return [f'{ind}total = total.wrapping_mul(0x{n:04x}).rotate_left({n % 31 + 1});']
        return [f'{ind}debug_assert!(self.{x}s.len() <= {n}, "{self.pick(PHRASES)}");']

    def function(self, ind="    "):
        name = self.ident()
        arg, ty = self.pick(NOUNS), self.pick(TYPES)
        ret = self.pick(["Result<u64>", "Result<()>", "Option<usize>", "u64"])
        lines = self.doc(ind) + [f"{ind}pub fn {name}(&mut self, {arg}: {ty}, limit: usize) -> {ret} {{",
                                 f"{ind}    let mut total: u64 = 0;"]
        for _ in range(self.r.randint(3, 8)):
            lines += self.stmt(ind + "    ")
        lines.append({"Result<u64>": f"{ind}    Ok(total)", "Result<()>": f"{ind}    Ok(())",
                      "Option<usize>": f"{ind}    usize::try_from(total).ok()", "u64": f"{ind}    total"}[ret])
        lines.append(f"{ind}}}")
        return lines

    def struct(self):
        self.n += 1
        name = camel(self.pick(ADJS), self.pick(NOUNS)) + str(self.n)
        fields = self.r.sample(NOUNS, self.r.randint(3, 7))
        lines = self.doc() + ["#[derive(Debug, Clone, Default)]", f"pub struct {name} {{"]
        for f in fields:
            lines += [f"    /// The {self.pick(ADJS)} {f}.", f"    pub {f}: {self.pick(TYPES).replace('&str', 'String')},"]
        lines += ["}", "", f"impl {name} {{"]
        for i in range(self.r.randint(1, 3)):
            if i:
                lines.append("")
            lines += self.function()
        lines.append("}")
        return lines

    def enum(self):
        self.n += 1
        name = camel(self.pick(NOUNS), "kind") + str(self.n)
        lines = self.doc() + ["#[derive(Debug, Clone, Copy, PartialEq, Eq)]", f"pub enum {name} {{"]
        for v in self.r.sample(ADJS, self.r.randint(3, 6)):
            lines.append(f"    {camel(v)},")
        return lines + ["}"]

    def consts(self):
        lines = []
        for _ in range(self.r.randint(2, 4)):
            self.n += 1
            lines.append(f'pub const {self.pick(NOUNS).upper()}_{self.pick(ADJS).upper()}_{self.n}: '
                         f'&str = "{self.pick(PHRASES)}";')
        return lines

    def item(self):
        r = self.r.random()
        if r < 0.55:
            return self.struct()
        if r < 0.75:
            return self.enum()
        if r < 0.9:
            return self.consts()
        self.n += 1
        return (["#[cfg(test)]", f"mod tests_{self.n} {{", "    use super::*;", ""]
                + ["    #[test]", f"    fn {self.ident()}_works() {{",
                   f"        let mut s = State::default();",
                   f'        assert_eq!(s.{self.pick(VERBS)}({self.r.randint(1, 99)}), Ok(()), "{self.pick(PHRASES)}");',
                   "    }", "}"])

    def items(self, count):
        """Exactly `count` lines: items while they fit, then a closing comment block."""
        lines = [f"//! {camel(self.pick(ADJS), self.pick(NOUNS))}: {self.pick(VERBS)}s and "
                 f"{self.pick(VERBS)}s {self.pick(NOUNS)}s.", "",
                 "use std::collections::{BTreeMap, HashMap};", "use std::fmt;", "",
                 "use crate::error::{Error, ErrorKind, Result};", ""]
        while True:
            item = self.item() + [""]
            if len(lines) + len(item) > count - 2:
                break
            lines += item
        while len(lines) < count:
            lines.append(f"// {self.pick(PHRASES).capitalize()}: {self.pick(VERBS)} the {self.pick(NOUNS)} "
                         f"before the {self.pick(ADJS)} {self.pick(NOUNS)}.")
        return lines[:count]

    def block(self, count):
        """Exactly `count` lines of new items (for insertions into a file)."""
        lines = []
        while True:
            item = self.item() + [""]
            if len(lines) + len(item) > count - 1:
                break
            lines += item
        while len(lines) < count:
            lines.append(f"// TODO({self.pick(NOUNS)}): {self.pick(VERBS)} {self.pick(ADJS)} "
                         f"{self.pick(NOUNS)}s in one pass ({self.r.randint(1, 999)}).")
        return lines


RENAMES = {"total": "acc", "limit": "budget", "self.state": "self.phase", "trace!": "tracing::trace!",
           "Diagnostic::warning": "Diagnostic::note", "unreachable!": "panic!", "input": "source",
           "saturating_sub": "wrapping_sub", "enumerate()": "enumerate().rev()", "Ok(())": "Ok(Default::default())"}
DOC_WORDS = {"every": "each", "current": "enclosing", "Returns an error": "Fails", "callers": "the caller must",
             "for the layout": "for its layout", "The ": "Its ", " is only possible": " can only happen",
             "reference implementation": "old implementation"}
TYPE_EDITS = {"usize": "u64", "String": "Box<str>", "f64": "f32", "bool": "Flag", "u32": "u16",
              "i64": "i128", "Vec<u8>": "Bytes"}


def mutate(line, k):
    """A realistic edit of one line (renamed variables, reworded docs, changed types or
    literals), or None for a line such an edit leaves alone (braces, blank lines,
    `use`, attributes, item headers, enum variants)."""
    s = line.strip()
    if (s in ("", "}", "{", "};", "})", "),", "///", "//!") or s.startswith(("#[", "use ", "impl ", "pub struct ",
                                                                           "pub enum ", "mod ", "pub const "))
            or re.fullmatch(r"[A-Z]\w*,", s)):
        return None
    out = line
    if s.startswith("//"):
        for a, b in DOC_WORDS.items():
            out = out.replace(a, b)
    elif s.startswith("pub ") and s.endswith(",") and ":" in s:  # a struct field
        for a, b in TYPE_EDITS.items():
            if out.endswith(f": {a},"):
                out = out[: -len(a) - 1] + b + ","
                break
    else:
        for a, b in RENAMES.items():
            out = out.replace(a, b)
        out = re.sub(r"\b(\d+)\b", lambda m: str(int(m.group(1)) * 3 + k % 7 + 1), out, count=1)
    return out if out != line else None


def readme():
    r = random.Random(7)
    rows = "\n".join(
        f"| `{n}_{v}` | {r.choice(['integer', 'string', 'boolean', 'duration'])} | "
        f"`{r.randint(1, 500)}` | {v.capitalize()}s the {n} before each {r.choice(NOUNS)}. |"
        for n, v in zip(NOUNS[:20], VERBS[:20]))
    sections = []
    for i, (title, noun) in enumerate([("Parsing", "token"), ("Evaluation", "frame"),
                                       ("Storage", "record"), ("Scheduling", "batch")]):
        items = "\n".join(f"- **{camel(v)}**: {v}s {noun}s that are {a}; see [{v}](docs/{v}.md)."
                          for v, a in zip(VERBS[i * 4:i * 4 + 6], ADJS[i:i + 6]))
        sections.append(f"""### {title}

The {title.lower()} layer {VERBS[i]}s each {noun} exactly once and keeps the {ADJS[i]} ones
in a bounded queue, so memory stays proportional to the input's depth rather than its size.
It never blocks on I/O: everything it reads was loaded by the previous stage.

{items}

```rust
let mut {noun}s = {camel(noun)}Queue::with_capacity(1024);
for input in sources {{
    {noun}s.push(input.{VERBS[i]}()?);
}}
{noun}s.drain().try_for_each(|{noun}| engine.run({noun}))?;
```
""")
    text = f"""# Ferrite

[![build](https://example.com/ferrite/badge.svg)](https://example.com/ferrite/actions)
[![crates.io](https://img.shields.io/crates/v/ferrite.svg)](https://crates.io/crates/ferrite)
[![docs](https://docs.rs/ferrite/badge.svg)](https://docs.rs/ferrite)

Ferrite is a small, embeddable interpreter for a statically typed expression language,
written in Rust. It is designed for configuration files and rule engines that need more
than JSON but less than a general-purpose scripting language.

> **Status:** beta. The language is stable; the embedding API may still change before 1.0.

## Contents

1. [Features](#features)
2. [Installation](#installation)
3. [Quick start](#quick-start)
4. [Configuration](#configuration)
5. [Architecture](#architecture)
6. [Command line](#command-line)
7. [FAQ](#faq)
8. [Contributing](#contributing)
9. [License](#license)

## Features

- Static types with local inference: most programs need no annotations.
- Deterministic evaluation with a fuel limit, so untrusted rules cannot hang the host.
- A zero-copy lexer and an arena-allocated syntax tree.
- Helpful diagnostics with source spans, notes and suggestions.
- No `unsafe` outside the arena, and that one is fuzzed nightly.
- Optional `serde` integration for reading and writing values.
  - `serde-json` for JSON documents
  - `serde-toml` for TOML documents

## Installation

Add it to your `Cargo.toml`:

```toml
[dependencies]
ferrite = "0.9"
```

or, for the command-line tool:

```sh
cargo install ferrite-cli --locked
ferrite --version
```

## Quick start

```rust
use ferrite::{{Engine, Value}};

fn main() -> ferrite::Result<()> {{
    let engine = Engine::builder().fuel(10_000).build();
    let program = engine.compile("let x = 2 * 21 in x + 0")?;
    assert_eq!(program.run(&[])?, Value::Int(42));
    Ok(())
}}
```

Programs can read host values through bindings:

```rust
let rules = engine.compile(include_str!("rules.fe"))?;
let verdict = rules.run(&[("request", request.into())])?;
```

## Configuration

Every setting can be given in `ferrite.toml` or as an environment variable
(`FERRITE_` followed by the upper-case name).

| Setting | Type | Default | Meaning |
|---------|------|---------|---------|
{rows}

## Architecture

The interpreter is a pipeline of four stages; each one owns its data and hands the
next one an immutable view.

{"".join(sections)}
## Command line

```text
USAGE:
    ferrite [OPTIONS] <FILE>...

OPTIONS:
    -e, --eval <EXPR>     Evaluate an expression and print its value
    -f, --fuel <N>        Fuel limit per program [default: 100000]
        --check           Type-check only, do not run
        --json            Print values as JSON
    -h, --help            Print help
```

## FAQ

**Why not Lua?** Lua is dynamically typed and its sandboxing is manual; Ferrite's rules
are checked before they run and cannot touch the host unless it binds something.

**Is it fast?** It compiles to a compact bytecode; see the [benchmarks](docs/benchmarks.md).
Typical rules run in a few microseconds.

**Can I add functions?** Yes: implement `NativeFn` and register it with
`Engine::builder().function("name", f)`.

## Contributing

1. Fork the repository and create a branch.
2. Run `cargo test --all-features` and `cargo clippy -- -D warnings`.
3. Add a line to `CHANGELOG.md` under *Unreleased*.
4. Open a pull request; describe the change and how you tested it.

Please read the [code of conduct](CODE_OF_CONDUCT.md) first. Security issues go to
security@example.com, not to the issue tracker.

## License

Licensed under either of [Apache License, Version 2.0](LICENSE-APACHE) or
[MIT license](LICENSE-MIT) at your option.
"""
    return text


def repository_files():
    """{path: text} of the first commit, and the second commit's DIFF_PATH."""
    files = {"README.md": readme()}
    g = Gen(1)
    files[BLOB_PATH] = "\n".join(g.items(BLOB_LINES)) + "\n"
    base = Gen(2).items(DIFF_BASE_LINES)
    files[DIFF_PATH] = "\n".join(base) + "\n"
    g = Gen(3)
    for d, count in (("src/lexer", 8), ("src/runtime", 8), ("src/store", 6), ("tests", 6)):
        for i in range(count):
            files[f"{d}/{g.pick(VERBS)}_{g.pick(NOUNS)}_{i}.rs"] = "\n".join(g.items(g.r.randint(40, 300))) + "\n"
    for i in range(10):
        v, n = g.pick(VERBS), g.pick(NOUNS)
        files[f"docs/{v}-{n}-{i}.md"] = (f"# {camel(v)} {n}s\n\n" + "\n\n".join(
            f"## {camel(g.pick(ADJS))} {g.pick(NOUNS)}s\n\nThe {n} is {g.pick(VERBS)}d when "
            f"{g.pick(PHRASES)}; see `{g.ident()}`." for _ in range(g.r.randint(3, 12))) + "\n")
    for i in range(5):
        files[f"config/{g.pick(NOUNS)}-{i}.toml"] = "".join(
            f"[{g.pick(NOUNS)}_{j}]\n{g.pick(VERBS)} = {g.r.randint(1, 999)}\nmode = \"{g.pick(ADJS)}\"\n\n"
            for j in range(g.r.randint(3, 15)))
    for i in range(3):
        files[f"scripts/{g.pick(VERBS)}-{i}.sh"] = (
            "#!/bin/sh\nset -eu\n" + "".join(f"cargo run --release -- --{g.pick(VERBS)} {g.pick(NOUNS)}s\n"
                                             for _ in range(g.r.randint(3, 10))))
    files["Cargo.toml"] = ('[package]\nname = "ferrite"\nversion = "0.9.3"\nedition = "2021"\n'
                           'license = "MIT OR Apache-2.0"\n\n[dependencies]\nserde = { version = "1", optional = true }\n'
                           'tracing = "0.1"\n\n[features]\ndefault = []\nserde-json = ["serde"]\n')
    files[".gitignore"] = "/target\n*.swp\n"
    files["LICENSE-MIT"] = "MIT License\n\nCopyright (c) 2026 The Ferrite authors\n\n" + (
        "Permission is hereby granted, free of charge, to any person obtaining a copy\n" * 3)
    files["CHANGELOG.md"] = "# Changelog\n\n" + "".join(
        f"## 0.{i}.0\n\n- {g.pick(VERBS).capitalize()} {g.pick(ADJS)} {g.pick(NOUNS)}s.\n\n" for i in range(9, 0, -1))
    return files


def second_version(base_text, rewrite=1000, add=1000):
    """DIFF_PATH after the second commit: `rewrite` lines edited in 100 places (runs of
    up to 10 code lines) and `add` new lines inserted in 10 blocks."""
    lines = base_text.rstrip("\n").split("\n")
    out = list(lines)
    # Edits: the editable lines split into 100 runs, the first rewrite/100 of each
    # edited (with the structural lines between them unchanged).
    editable = [i for i, l in enumerate(lines) if mutate(l, 0) is not None]
    groups = 100
    if len(editable) < rewrite:
        raise SystemExit(f"generator: only {len(editable)} editable lines, {rewrite} wanted")
    k = 0
    for g_ in range(groups):
        chunk = editable[len(editable) * g_ // groups:len(editable) * (g_ + 1) // groups]
        take = rewrite // groups + (1 if g_ < rewrite % groups else 0)
        for i in chunk[:take]:
            out[i] = mutate(lines[i], k)
            k += 1
    if k != rewrite or sum(a != b for a, b in zip(lines, out)) != rewrite:
        raise SystemExit(f"generator: {k} lines edited, not {rewrite}")
    # Insertions at item boundaries (blank lines), spread over the file.
    g = Gen(4)
    blanks = [i for i, l in enumerate(out) if l == ""]
    spots = [blanks[len(blanks) * (j + 1) // 11] for j in range(10)]
    per = [add // 10 + (1 if j < add % 10 else 0) for j in range(10)]
    for spot, count in sorted(zip(spots, per), reverse=True):
        out[spot + 1:spot + 1] = g.block(count)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the node


class Node:
    def __init__(self, root):
        self.dir = os.path.join(root, "node")
        os.makedirs(self.dir)
        self.api = free_port()
        self.env = {
            "PATH": os.environ["PATH"],
            "GUTS_DATA_DIR": os.path.join(self.dir, "data"),
            "GUTS_API_ADDR": f"127.0.0.1:{self.api}",
            "GUTS_METRICS_ADDR": f"127.0.0.1:{free_port()}",
            "GUTS_P2P_ADDR": f"/ip4/127.0.0.1/tcp/{free_port()}",
            "GUTS_ADMIN_TOKEN": ADMIN,
            "GUTS_LOG_LEVEL": "info",
            "GUTS_LOG_FORMAT": "json",
            "GUTS_RATE_LIMIT_AUTHENTICATED_PER_HOUR": "100000000",
            "GUTS_RATE_LIMIT_ANONYMOUS_PER_HOUR": "100000000",
        }
        self.log_path = os.path.join(self.dir, "log")
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([BIN], env=self.env, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if Client(self.api).get("/health/ready")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit(f"the node did not become ready; see {self.log_path}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_size(self):
        return os.path.getsize(self.log_path)

    def server_times(self, since, route, expected=None, within=10.0):
        """duration_ms of the `request` log lines of `route` written after offset
        `since`; waits (up to `within` s) until `expected` of them are there."""
        deadline = time.time() + within
        while True:
            found = self.routes(since).get(route, [])
            if expected is None or len(found) >= expected or time.time() > deadline:
                return found
            time.sleep(0.1)

    def routes(self, since):
        """{route: [duration_ms]} of the `request` log lines written after `since`."""
        found = {}
        with open(self.log_path, "rb") as f:
            f.seek(since)
            for raw in f:
                if b'"request"' not in raw:
                    continue
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                fields = line.get("fields") or {}
                if line.get("message", fields.get("message")) != "request":
                    continue
                duration = line.get("duration_ms", fields.get("duration_ms"))
                route = next((s["route"] for s in [line.get("span") or {}] + list(line.get("spans") or [])
                              if "route" in s), None)
                if duration is not None and route is not None:
                    found.setdefault(route, []).append(float(duration))
        return found


class Client:
    """One keep-alive connection with a cookie jar."""

    def __init__(self, port):
        self.port = port
        self.conn = None
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for retry in (True, False):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if not retry:
                    raise
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                value = rest.split(";", 1)[0]
                if value:
                    self.cookies[name.strip()] = value
                else:
                    self.cookies.pop(name.strip(), None)
        return r.status, data, r

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def json(self, method, path, body, auth):
        status, data, _ = self.request(method, path, json.dumps(body).encode(), {
            "Authorization": auth, "Content-Type": "application/json", "Accept": "application/json"})
        return status, (json.loads(data) if data else None)

    def sign_in(self, login, password):
        status, page, _ = self.get("/login")
        if status != 200 or "guts_csrf" not in self.cookies:
            raise SystemExit(f"GET /login: HTTP {status}, cookies {sorted(self.cookies)}")
        m = re.search(rb'name="_csrf" value="([^"]+)"', page) or re.search(rb'value="([^"]+)"[^>]*name="_csrf"', page)
        if not m:
            raise SystemExit("GET /login: no _csrf field in the form")
        form = urllib.parse.urlencode({"_csrf": m.group(1).decode(), "login": login, "password": password})
        status, _, r = self.request("POST", "/login", form.encode(), {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": f"http://127.0.0.1:{self.port}"})
        if status not in (302, 303) or "guts_session" not in self.cookies:
            raise SystemExit(f"POST /login: HTTP {status}, cookies {sorted(self.cookies)}")


# --------------------------------------------------------------------------- git


def git_env(home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"), GIT_TERMINAL_PROMPT="0",
               GIT_CONFIG_NOSYSTEM="1", LC_ALL="C",
               GIT_AUTHOR_NAME="Ada Lovelace", GIT_AUTHOR_EMAIL="ada@example.com",
               GIT_COMMITTER_NAME="Ada Lovelace", GIT_COMMITTER_EMAIL="ada@example.com")
    return env


def git(env, cwd, *args, date=None):
    e = dict(env)
    if date:
        e.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    p = subprocess.run(["git", *args], cwd=cwd, env=e, capture_output=True, timeout=600)
    if p.returncode:
        raise SystemExit(f"git {' '.join(args)} failed: {p.stderr.decode(errors='replace')}")
    return p.stdout.decode().strip()


def make_and_push(root, port, token, owner, repo, rewrite, add):
    home = os.path.join(root, "home")
    work = os.path.join(root, "work")
    os.makedirs(home)
    env = git_env(home)
    files = repository_files()
    for path, text in files.items():
        full = os.path.join(work, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
    git(env, root, "init", "--quiet", "-b", "main", work)
    git(env, work, "add", "-A")
    git(env, work, "commit", "--quiet", "-m", "Initial import", date="1767225600 +0000")
    with open(os.path.join(work, DIFF_PATH), "w") as f:
        f.write(second_version(files[DIFF_PATH], rewrite, add))
    git(env, work, "commit", "--quiet", "-a", "-m",
        "Pipeline: rename the accumulators, revise the limits, add the batch stages\n\n"
        "Rewrites the stage bodies on the new names and adds ten groups of stages.",
        date="1767312000 +0000")
    sha = git(env, work, "rev-parse", "HEAD")
    numstat = git(env, work, "show", "--numstat", "--format=", "HEAD")
    url = f"http://{owner}:{token}@127.0.0.1:{port}/{owner}/{repo}.git"
    git(env, work, "push", "--quiet", url, "main:main")
    return work, sha, len(files), numstat


# --------------------------------------------------------------------------- measuring


def timed_get(client, path):
    t0 = time.perf_counter()
    status, body, _ = client.get(path)
    return (time.perf_counter() - t0) * 1000, status, body


def sequential(node, cookies, path, n, warmup):
    """n GETs one at a time on one connection after `warmup` untimed ones: client
    times, statuses, the last body's size and the log offset where the timed ones begin."""
    c = Client(node.api)
    c.cookies = dict(cookies)
    for _ in range(warmup):
        timed_get(c, path)
    mark = node.log_size()
    times, statuses, size = [], set(), 0
    for _ in range(n):
        ms, status, body = timed_get(c, path)
        times.append(ms)
        statuses.add(status)
        size = len(body)
    return times, statuses, size, mark


def concurrent(node, cookies, path, total, clients, warmup=3):
    """`total` GETs on `clients` threads, a connection each, after a few untimed ones
    per client: client times, statuses, wall time, the log offset of the timed ones."""
    times, statuses, errors = [], set(), []
    lock = threading.Lock()
    warmed = threading.Barrier(clients + 1)
    go = threading.Barrier(clients + 1)

    def work(count):
        try:
            c = Client(node.api)
            c.cookies = dict(cookies)
            for _ in range(warmup):
                timed_get(c, path)
            warmed.wait()
            go.wait()
            mine = []
            for _ in range(count):
                ms, status, _ = timed_get(c, path)
                mine.append(ms)
                with lock:
                    statuses.add(status)
            with lock:
                times.extend(mine)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            warmed.abort()
            go.abort()

    per = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    workers = [threading.Thread(target=work, args=(k,)) for k in per]
    for w in workers:
        w.start()
    try:
        warmed.wait()
        mark = node.log_size()
        go.wait()
    except threading.BrokenBarrierError:
        mark = 0
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"concurrent requests failed: {errors[0]!r}")
    return times, statuses, wall, mark


def stats(values):
    if not values:
        return {k: float("nan") for k in ("p50", "p90", "p99", "max", "mean")}
    return {"p50": pct(values, 50), "p90": pct(values, 90), "p99": pct(values, 99),
            "max": max(values), "mean": statistics.mean(values)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=300, help="requests per page, one at a time")
    ap.add_argument("--warmup", type=int, default=20, help="untimed requests before each page")
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients for the load run")
    ap.add_argument("--load", type=int, default=400, help="requests per page in the load run, all clients together")
    ap.add_argument("--rest", type=int, default=100, help="requests of each REST equivalent (0: skip)")
    ap.add_argument("--rewrite", type=int, default=900, help="lines the second commit edits")
    ap.add_argument("--add", type=int, default=1100, help="lines the second commit adds")
    ap.add_argument("--strict", action="store_true", help="exit non-zero when a target is missed")
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    root = tempfile.mkdtemp(prefix="guts-bench-web-")
    node = Node(root)
    failures = []
    rows, rest_rows, checks = [], [], []
    try:
        node.start()
        admin = Client(node.api)
        status, user = admin.json("POST", "/admin/users", {"login": LOGIN, "password": PASSWORD}, f"Bearer {ADMIN}")
        if status != 201:
            raise SystemExit(f"creating {LOGIN}: HTTP {status} {user}")
        token = user["token"]
        status, created = admin.json("POST", "/api/v3/user/repos", {"name": REPO}, f"token {token}")
        if status != 201:
            raise SystemExit(f"creating the repository: HTTP {status} {created}")
        t0 = time.perf_counter()
        work, sha, nfiles, numstat = make_and_push(root, node.api, token, LOGIN, REPO, args.rewrite, args.add)
        print(f"pushed {nfiles} files in 2 commits ({time.perf_counter() - t0:.1f} s); "
              f"second commit {sha[:12]}: git numstat {numstat.replace(chr(9), ' ')}", flush=True)

        browser = Client(node.api)
        browser.sign_in(LOGIN, PASSWORD)
        cookies = {"guts_session": browser.cookies["guts_session"]}
        base = f"/{LOGIN}/{REPO}"
        pages = {
            "home": base,
            "blob": f"{base}/blob/main/{BLOB_PATH}",
            "commit": f"{base}/commit/{sha}",
        }

        # Content checks (once, signed in).
        for name, path in pages.items():
            status, body, _ = browser.get(path)
            text = body.decode(errors="replace")
            if status != 200:
                failures.append(f"{name}: {path} answered HTTP {status}")
                continue
            if 'id="current-user"' not in text:
                failures.append(f"{name}: the page does not show the signed-in user")
            if name == "home":
                ok = "README.md" in text and "Ferrite" in text and DIFF_PATH.split("/")[0] in text
                checks.append(("home", f"README and file list shown: {ok}"))
                if not ok:
                    failures.append("home: README or file list missing")
            elif name == "blob":
                has_last = 'id="L5000"' in text
                over = 'id="L5001"' in text
                spans = text.count("<span")
                checks.append(("blob", f'id="L5000" present: {has_last}, id="L5001" absent: {not over}, '
                                       f"<span> elements (highlighting) on the page: {spans}"))
                if not has_last or over:
                    failures.append("blob: the page does not show exactly 5,000 lines")
            else:
                adds = len(re.findall(r'<tr class="add"', text))
                dels = len(re.findall(r'<tr class="del"', text))
                ctx = len(re.findall(r'<tr class="ctx"', text))
                hunks = len(re.findall(r'<tr class="hunk"', text))
                truncated = "diff-truncated" in text
                no_patch = "No textual diff to show" in text or "Diff not shown" in text
                m = re.search(r"(\d+) changed files with (\d+) additions and (\d+) deletions", text)
                checks.append(("commit", f"rows: {adds} add + {dels} del = {adds + dels} changed, {ctx} context, "
                                         f"{hunks} hunk headers; summary: {m.group(0) if m else '?'}; "
                                         f"diff-truncated notice: {truncated}; file without rows: {no_patch}"))
                if adds + dels < 2000 and not truncated:
                    failures.append(f"commit: {adds + dels} changed rows (< 2,000) and no truncation notice"
                                    + (" (the file is listed without its patch)" if no_patch else ""))

        # One at a time.
        for name, path in pages.items():
            times, statuses, size, mark = sequential(node, cookies, path, args.n, args.warmup)
            server = node.server_times(mark, ROUTES[name], args.n)
            if statuses != {200}:
                failures.append(f"{name}: statuses {sorted(statuses)} in the timed run")
            rows.append({"page": name, "path": path, "size": size, "client": stats(times),
                         "server": stats(server), "server_n": len(server)})
            print(f"{name}: {args.n} requests one at a time, client p50 {pct(times, 50):.1f} ms, "
                  f"p99 {pct(times, 99):.1f} ms; {len(server)} server log lines", flush=True)
            if len(server) != args.n:
                failures.append(f"{name}: {len(server)} request log lines for {args.n} requests")

        # Under load.
        for row in rows:
            times, statuses, wall, mark = concurrent(node, cookies, row["path"], args.load, args.clients)
            server = node.server_times(mark, ROUTES[row["page"]], args.load)
            if statuses != {200}:
                failures.append(f"{row['page']}: statuses {sorted(statuses)} under load")
            row["load"] = {"rate": len(times) / wall, "client": stats(times), "server": stats(server)}
            print(f"{row['page']}: {args.load} requests on {args.clients} clients, "
                  f"{len(times) / wall:.1f} pages/s; {len(server)} server log lines", flush=True)
            if len(server) != args.load:
                failures.append(f"{row['page']}: {len(server)} request log lines for {args.load} requests under load")

        # REST equivalents: git reading and diffing without the page around them.
        if args.rest:
            quoted = urllib.parse.quote(BLOB_PATH)
            rest = [
                ("commit diff as JSON", f"/api/v3/repos/{LOGIN}/{REPO}/commits/{sha}", True),
                ("file contents as JSON", f"/api/v3/repos/{LOGIN}/{REPO}/contents/{quoted}?ref=main", True),
                ("raw file (web session)", f"{base}/raw/main/{quoted}", True),
                ("sign-in form (no git)", "/login", False),
            ]
            for what, path, signed_in in rest:
                c = Client(node.api)
                if signed_in:
                    c.cookies = dict(cookies)
                headers = {"Authorization": f"token {token}", "Accept": "application/vnd.github+json"} \
                    if path.startswith("/api/") else None
                for _ in range(5):
                    c.get(path, headers)
                mark = node.log_size()
                times, statuses, size = [], set(), 0
                for _ in range(args.rest):
                    t0 = time.perf_counter()
                    status, body, _ = c.get(path, headers)
                    times.append((time.perf_counter() - t0) * 1000)
                    statuses.add(status)
                    size = len(body)
                time.sleep(0.3)
                logged = node.routes(mark)
                route = max(logged, key=lambda r: len(logged[r]), default="?")
                server = logged.get(route, [])
                rest_rows.append((what, path, sorted(statuses), size, stats(times), stats(server), route))
                if what.startswith("commit"):
                    info = json.loads(body)
                    patched = sum(1 for f in info.get("files", []) if f.get("patch"))
                    checks.append(("REST commit", f"{len(info.get('files', []))} file(s), "
                                                  f"+{info.get('stats', {}).get('additions')} "
                                                  f"-{info.get('stats', {}).get('deletions')}, "
                                                  f"{patched} with a patch"))
    finally:
        node.stop()
        if os.environ.get("KEEP") is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}", file=sys.stderr)

    # ---- report
    print()
    print(f"Web pages, signed in, release node, {os.cpu_count()} cores (load average at the start "
          f"{load_before:.2f}, at the end {os.getloadavg()[0]:.2f}); one at a time: {args.n} requests "
          f"per page after {args.warmup} warm-up, one keep-alive connection; ms")
    head = (f"{'page':<8} {'bytes':>9} | {'client p50':>10} {'p90':>6} {'p99':>6} {'max':>6} | "
            f"{'server p50':>10} {'p99':>6} | {'target p99':>10} {'verdict':<22}")
    print(head)
    print("-" * len(head))
    missed = []
    for row in rows:
        c, s = row["client"], row["server"]
        target = TARGETS[row["page"]]
        if s["p99"] <= target:
            verdict = f"met ({s['p99'] / target:.0%} of it)"
        else:
            verdict = f"MISSED by {s['p99'] - target:.1f} ms"
            missed.append(row["page"])
        print(f"{row['page']:<8} {row['size']:>9} | {c['p50']:>10.1f} {c['p90']:>6.1f} {c['p99']:>6.1f} "
              f"{c['max']:>6.1f} | {s['p50']:>10.1f} {s['p99']:>6.1f} | {target:>10.0f} {verdict:<22}")
    print()
    print(f"Under load: {args.clients} clients, {args.load} requests per page; ms")
    head = f"{'page':<8} {'pages/s':>8} | {'client p50':>10} {'p99':>6} {'max':>6} | {'server p50':>10} {'p99':>6}"
    print(head)
    print("-" * len(head))
    for row in rows:
        ld = row["load"]
        print(f"{row['page']:<8} {ld['rate']:>8.1f} | {ld['client']['p50']:>10.1f} {ld['client']['p99']:>6.1f} "
              f"{ld['client']['max']:>6.1f} | {ld['server']['p50']:>10.1f} {ld['server']['p99']:>6.1f}")
    if rest_rows:
        print()
        print(f"For comparison, one at a time ({args.rest} requests each); ms")
        head = f"{'request':<26} {'status':>6} {'bytes':>9} | {'client p50':>10} {'p99':>6} | {'server p50':>10} {'p99':>6}"
        print(head)
        print("-" * len(head))
        for what, _path, statuses, size, c, s, _route in rest_rows:
            print(f"{what:<26} {','.join(map(str, statuses)):>6} {size:>9} | {c['p50']:>10.1f} {c['p99']:>6.1f} | "
                  f"{s['p50']:>10.1f} {s['p99']:>6.1f}")
    print()
    print("Content:")
    for name, note in checks:
        print(f"  {name}: {note}")
    for row in rows:
        print(f"  {row['page']}: {row['path']}")
    print(f"command: {' '.join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])}")
    if failures:
        print("FAILED:", *failures, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    if missed and args.strict:
        sys.exit(2)


if __name__ == "__main__":
    main()
