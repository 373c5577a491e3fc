#!/usr/bin/env bash
# The project's one test command (README.md; .ci/run calls exactly this).
# Installs what the tests need when it is missing, then: formatting, lints, build, and
# every test (unit, property, end-to-end against the real binary).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# What the end-to-end tests drive from PyPI, in a venv under target/: a GitHub client
# library, schemathesis, and the Kubernetes schemas (kubernetes-validate) that the
# manifests in k8s/ are checked against offline.
venv=target/pyvenv
if ! "$venv/bin/python" -c 'import github, schemathesis, kubernetes_validate' >/dev/null 2>&1; then
  echo "== installing PyGithub, schemathesis and kubernetes-validate into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'PyGithub>=2.4,<3' 'schemathesis>=4,<5' \
    'kubernetes-validate>=1.29,<2'
fi
export GUTS_PYTHON="$PWD/$venv/bin/python"
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "== installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== build"
cargo build --workspace --all-targets --locked
echo "== fuzz smoke (every target, 10 s each)"
scripts/fuzz-smoke.sh
# Last, so that the test runner's summary closes the output.
echo "== tests"
cargo nextest run --workspace --locked --no-fail-fast
