#!/usr/bin/env bash
# Runs guts-core's fuzz targets on stable Rust (no nightly toolchain needed).
#
#   fuzz/run.sh TARGET SECONDS   fuzz one target (see fuzz/fuzz_targets/) for SECONDS
#   fuzz/run.sh all SECONDS      fuzz every target for SECONDS each, in turn
#
# Exits non-zero if any target crashes (or fails to build), naming it; libFuzzer keeps
# the crashing input in fuzz/artifacts/TARGET/. Works from any directory.
#
# Environment:
#   FUZZ_SANITIZER   address (default) or none. AddressSanitizer needs nightly-only
#                    rustc flags, which stable accepts under RUSTC_BOOTSTRAP=1 (set only
#                    for this build). `none` builds ~1/3 faster and runs ~2.5x more
#                    execs/s on op_decode, but would miss memory errors in the unsafe
#                    code of dependencies (ed25519, blake3).
#
# The committed seed corpus (fuzz/corpus/TARGET) is read but never written: libFuzzer
# writes new inputs into the first corpus directory it is given, which here is a
# temporary directory deleted on exit. To keep what a long run found, minimise it into
# the seeds by hand (`cargo fuzz cmin`), and keep the corpus small.
set -euo pipefail

usage() {
    echo "usage: $0 TARGET|all SECONDS" >&2
    exit 2
}
[[ $# -eq 2 ]] || usage
target=$1
seconds=$2
[[ $seconds =~ ^[1-9][0-9]*$ ]] || usage

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sanitizer=${FUZZ_SANITIZER:-address}
# Build output stays in fuzz/target (git-ignored), whatever CARGO_TARGET_DIR says.
target_dir="$fuzz_dir/target"

mapfile -t all_targets < <(cd "$fuzz_dir/fuzz_targets" && ls -- *.rs | sed 's/\.rs$//')
if [[ $target == all ]]; then
    targets=("${all_targets[@]}")
elif [[ -f "$fuzz_dir/fuzz_targets/$target.rs" ]]; then
    targets=("$target")
else
    echo "unknown fuzz target '$target'; known: ${all_targets[*]}" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found; installing it" >&2
    cargo install cargo-fuzz --locked
fi

case $sanitizer in
    address) sanitizer_env=(RUSTC_BOOTSTRAP=1) ;;
    none) sanitizer_env=() ;;
    *)
        echo "FUZZ_SANITIZER must be address or none, not '$sanitizer'" >&2
        exit 2
        ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/guts-fuzz.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

failed=()
for t in "${targets[@]}"; do
    echo "=== fuzz target $t: ${seconds}s (sanitizer: $sanitizer)" >&2
    mkdir -p "$work/$t" "$fuzz_dir/corpus/$t"
    start=$SECONDS
    # cd to the fuzz dir's parent so that cargo-fuzz's own lookups agree with
    # --fuzz-dir; the working corpus comes first so that new inputs land there.
    if (cd "$fuzz_dir/.." && env "${sanitizer_env[@]}" cargo fuzz run \
        --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" -s "$sanitizer" \
        "$t" "$work/$t" "$fuzz_dir/corpus/$t" \
        -- -max_total_time="$seconds" -print_final_stats=1); then
        echo "=== fuzz target $t: clean after $((SECONDS - start))s" >&2
    else
        rc=$?
        echo "=== fuzz target $t: FAILED (exit $rc) after $((SECONDS - start))s" >&2
        ls -t -- "$fuzz_dir/artifacts/$t" 2>/dev/null | head -5 | sed "s|^|    $fuzz_dir/artifacts/$t/|" >&2 || true
        failed+=("$t")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzzing FAILED for: ${failed[*]}" >&2
    exit 1
fi
echo "fuzzing clean: ${targets[*]}" >&2
