#!/usr/bin/env bash
# The project's one test command (README.md; .ci/run calls exactly this).
# Installs what the tests need when it is missing, then: formatting, lints, build, and
# every test (unit, property, end-to-end against the real binary).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# The browser the web interface's end-to-end tests drive (tests/web/), and its driver.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# The stock OpenSSH client drives git over SSH (ssh, ssh-keygen, ssh-keyscan).
command -v ssh-keyscan >/dev/null 2>&1 || need_apt+=(openssh-client)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# What the end-to-end tests drive from PyPI, in a venv under target/: a GitHub client
# library, schemathesis, the Kubernetes schemas (kubernetes-validate) that the
# manifests in k8s/ are checked against offline, and an OpenAPI 3.0 schema validator
# with the `uri` format checker (rfc3986-validator) for the GitHub conformance test,
# and selenium, which drives the system's chromium for the web tests (tests/web/).
# (`python -m pip`, not bin/pip: a venv copied from another checkout keeps that
# checkout's path in bin/pip.)
venv=target/pyvenv
if ! "$venv/bin/python" -c 'import github, schemathesis, kubernetes_validate, openapi_schema_validator, rfc3986_validator, selenium' >/dev/null 2>&1; then
  echo "== installing PyGithub, schemathesis, kubernetes-validate, openapi-schema-validator and selenium into $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check 'PyGithub>=2.4,<3' 'schemathesis>=4,<5' \
    'kubernetes-validate>=1.29,<2' 'openapi-schema-validator>=0.9,<0.10' 'rfc3986-validator>=0.1.1,<0.2' \
    'selenium>=4.20,<5'
fi
# GitHub's own OpenAPI description of api.github.com (npm @octokit/openapi, pinned: a
# new version can move the reference, so bumping it is a commit of its own), which the
# conformance test (tests/e2e/conformance.rs) checks every answer of the node against.
# And octokit (@octokit/rest), GitHub's own JavaScript client, which
# tests/clients/octokit_flow.mjs drives. Both in one install: a later `--no-save`
# install would prune the other.
octokit_openapi=23.0.2
octokit_rest=22.0.1
# And GitHub's published webhook payload schemas, which tests/e2e/webhooks.rs checks
# every delivery against.
octokit_webhooks=12.1.0
npm_dir=target/npm
if ! grep -qs "\"version\": \"$octokit_openapi\"" "$npm_dir/node_modules/@octokit/openapi/package.json" ||
  ! grep -qs "\"version\": \"$octokit_rest\"" "$npm_dir/node_modules/@octokit/rest/package.json" ||
  ! grep -qs "\"version\": \"$octokit_webhooks\"" "$npm_dir/node_modules/@octokit/openapi-webhooks/package.json"; then
  echo "== installing @octokit/openapi@$octokit_openapi, @octokit/rest@$octokit_rest and @octokit/openapi-webhooks@$octokit_webhooks into $npm_dir"
  npm install --prefix "$npm_dir" --no-save --no-audit --no-fund --loglevel=error \
    "@octokit/openapi@$octokit_openapi" "@octokit/rest@$octokit_rest" \
    "@octokit/openapi-webhooks@$octokit_webhooks"
fi
export GUTS_GITHUB_OPENAPI="$PWD/$npm_dir/node_modules/@octokit/openapi/generated/api.github.com.json"
export GUTS_OCTOKIT_REST="$PWD/$npm_dir/node_modules/@octokit/rest"
export GUTS_GITHUB_WEBHOOKS_OPENAPI="$PWD/$npm_dir/node_modules/@octokit/openapi-webhooks/generated/api.github.com.json"
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
