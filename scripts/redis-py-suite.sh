#!/usr/bin/env bash
# Runs redis-py's own command tests (tests/test_commands.py from the PyPI
# source distribution of `redis`) against `logkv serve` and against
# redis-server, in the same run, and prints both pass counts.
#
#   scripts/redis-py-suite.sh [REDIS_PY_VERSION]   (default 5.0.8)
#
# Needs python3 with venv, redis-server on PATH (scripts/test.sh installs
# it) and the logkv binary ($LOGKV, else target/release/logkv, else
# target/debug/logkv; build one first). Everything it makes lives in a
# temporary directory removed at exit. It is not part of CI: against logkv
# the suite takes minutes, and the counts are a measure to record
# (docs/resp.md), not a pass/fail judgment. With REPORTS=DIR, each
# server's pytest output (a line per failing test and why) is kept in
# DIR/<server>.txt, to classify the failures. With PROTOCOL=3 the suite's
# clients speak RESP3 (HELLO 3) rather than RESP2.
set -euo pipefail

version="${1:-5.0.8}"
root="$(cd "$(dirname "$0")/.." && pwd)"
logkv="${LOGKV:-}"
if [[ -z "$logkv" ]]; then
    for candidate in "$root/target/release/logkv" "$root/target/debug/logkv"; do
        if [[ -x "$candidate" ]]; then
            logkv="$candidate"
            break
        fi
    done
fi
[[ -x "$logkv" ]] || { echo "no logkv binary: run cargo build -p logkv (or set LOGKV)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 2; }

work="$(mktemp -d)"
pids=()
cleanup() {
    if [[ -n "${REPORTS:-}" ]]; then
        mkdir -p "$REPORTS"
        cp "$work"/redis-server.txt "$work"/logkv.txt "$REPORTS"/ 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_ping() {
    local port="$1"
    for _ in $(seq 1 300); do
        if python3 - "$port" <<'EOF' 2>/dev/null; then return 0; fi
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
EOF
        sleep 0.1
    done
    echo "nothing answers PING on port $port" >&2
    exit 1
}

echo "redis-py $version: preparing a virtual environment" >&2
python3 -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
pip install --quiet --disable-pip-version-check pytest packaging
pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: "redis==$version" -d "$work/dl"
tar -xzf "$work/dl/redis-$version.tar.gz" -C "$work"
suite="$work/redis-$version"

redis_port="$(free_port)"
mkdir -p "$work/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/redis" \
    >"$work/redis.log" 2>&1 &
pids+=("$!")

logkv_port="$(free_port)"
http_port="$(free_port)"
"$logkv" --data-dir "$work/logkv" serve --resp "127.0.0.1:$logkv_port" --http "127.0.0.1:$http_port" \
    --durability none --idle-timeout-secs 0 >"$work/logkv.log" 2>&1 &
pids+=("$!")

wait_for_ping "$redis_port"
wait_for_ping "$logkv_port"

# The summary line pytest ends with: "N failed, M passed, ... in Ts".
run_suite() {
    local port="$1" name="$2"
    # (COLUMNS: pytest cuts each failure's line to the terminal's width.)
    (cd "$suite" && COLUMNS=400 python -m pytest tests/test_commands.py --redis-url="redis://127.0.0.1:$port/0" \
        ${PROTOCOL:+--protocol="$PROTOCOL"} -q -rfE -p no:cacheprovider -W ignore >"$work/$name.txt" 2>&1) || true
    local summary
    summary="$(tail -n 1 "$work/$name.txt")"
    local passed
    passed="$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || echo 0)"
    printf '%-14s %5s passed   (%s)\n' "$name" "$passed" "$summary"
}

echo "running tests/test_commands.py against each server" >&2
run_suite "$redis_port" redis-server
run_suite "$logkv_port" logkv
