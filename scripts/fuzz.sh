#!/usr/bin/env bash
# Builds the coverage-guided fuzzer (libFuzzer via libfuzzer-sys, on the
# stable toolchain: see docs/fuzzing.md) and runs every target for a
# bounded time, starting from its committed corpus and regressions.
#
#   scripts/fuzz.sh                   every target, FUZZ_SECONDS (25) each
#   scripts/fuzz.sh resp envelope     only these targets
#   FUZZ_SECONDS=600 scripts/fuzz.sh segments
#
# A crash stops the script with the input that caused it in
# fuzz/artifacts/; new inputs the fuzzer finds go to a scratch directory,
# not into the committed corpus. Needs a C++ compiler (libFuzzer is built
# from source by libfuzzer-sys), installed with apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-25}"

if ! command -v c++ >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y g++
fi

# Coverage instrumentation as cargo-fuzz sets it, without the sanitizer
# flags that need nightly. An explicit --target keeps these flags off build
# scripts and proc macros, which would not link with them.
host="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
cargo build --release --locked --manifest-path fuzz/Cargo.toml --target "$host"
fuzzer="fuzz/target/$host/release/logkv-fuzz"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    # The replay test checks that these directories are exactly the targets.
    targets=()
    for dir in fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p fuzz/artifacts
for target in "${targets[@]}"; do
    echo "fuzzing $target for ${seconds}s"
    mkdir -p "$scratch/$target"
    corpora=("fuzz/corpus/$target")
    [ -d "fuzz/regressions/$target" ] && corpora+=("fuzz/regressions/$target")
    if ! LOGKV_FUZZ_TARGET="$target" "$fuzzer" "$scratch/$target" "${corpora[@]}" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="fuzz/artifacts/$target-" -print_final_stats=1 2>"$scratch/$target.log"; then
        tail -n 60 "$scratch/$target.log"
        echo "fuzz target $target failed: the input is in fuzz/artifacts/ (replay it with" \
            "LOGKV_FUZZ_TARGET=$target $fuzzer FILE)" >&2
        exit 1
    fi
    grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$scratch/$target.log" || true
done
echo "fuzzed ${targets[*]}: no failures"
