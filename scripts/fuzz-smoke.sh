#!/usr/bin/env bash
# CI smoke for the fuzz targets: every target in fuzz/fuzz_targets for 10 s, from the
# committed seed corpus. Catches a target that no longer builds, a seed that now
# crashes, and shallow parser bugs; real fuzzing is `fuzz/run.sh TARGET SECONDS` with
# a longer budget. Installs cargo-fuzz if missing. Exits non-zero on any crash, naming
# the target; the input is kept in fuzz/artifacts/TARGET/.
set -euo pipefail
exec "$(dirname "$0")/../fuzz/run.sh" all "${FUZZ_SMOKE_SECONDS:-10}"
