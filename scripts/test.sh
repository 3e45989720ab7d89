#!/usr/bin/env bash
# Runs every test of the workspace, regenerates the golden vectors with the
# real 0G SDK and ethers (npm) and checks them against the fixtures the Rust
# tests read, then makes seconds-long smoke runs of the benchmarks (the
# storage engine's, and logkv serve next to redis-server) so they cannot
# rot. Needs a Rust toolchain, Node.js and the npm registry, and installs
# redis-server and redis-tools (Debian's apt) when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# bench/redis-benchmark.sh runs redis-server and redis-benchmark.
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools
    # The package starts a system redis-server on port 6379; the benchmark
    # starts its own on free ports, so stop and disable the service.
    if [ -d /run/systemd/system ]; then
        $sudo systemctl disable --now redis-server || true
    else
        $sudo service redis-server stop || true
        $sudo update-rc.d redis-server disable || true
    fi
fi

cargo test --workspace --all-targets
bash scripts/golden/check.sh
cargo run --release --quiet -p logkv-bench -- --quick
bash bench/redis-benchmark.sh --quick
