#!/usr/bin/env bash
# A TTL cache through `logkv serve`: does the index stay flat?
#
# Builds logkv (release), then runs twice, each time on a fresh data
# directory:
#   expiring   redis-benchmark writes --keys distinct keys with
#              `SET ttl:<12 random digits> v PX <ttl>`
#   persistent the same keys with a plain `SET` (the contrast: every key stays)
# While redis-benchmark runs, and for --tail seconds after it, the script
# samples every --every seconds the server's /metrics: logkv_index_entries
# (keys in the in-memory index, every keyspace), logkv_index_bytes,
# process_resident_memory_bytes, logkv_local_transactions_total (SETs
# applied) and logkv_compactions_total, plus DBSIZE (live keys).
#
# The server runs with what a cache would set: --retain-versions 1 (compaction
# drops what is deleted), --version-check-horizon 1000 (the default, 1M log
# positions, keeps deletes for a million entries before compaction may drop
# them), --compact-min-bytes 16 MiB (compaction starts on a smaller log than
# the default 128 MiB, so a run of a few minutes sees several) and
# --compact-dead-ratio 0.3 (--dead-ratio): in a swept cache the share of
# superseded bytes the store counts levels off near 0.4, below the default
# 0.5, because the sweep's deletes and the signed entries holding the values
# are not counted (docs/benchmarks.md). Ticks (--expiry-tick-ms, default
# 1000) sweep expired keys while writes go on.
#
# Prints the machine, then per run a table of the samples and a summary line;
# --out FILE writes the same as markdown. Needs redis-benchmark and redis-cli
# (Debian: apt-get install -y redis-tools) and curl.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/ttl-cache.sh [options]
  --keys N           distinct keys written per run (default 2000000)
  --ttl-ms MS        each expiring key's time to live (default 1000)
  --clients C        redis-benchmark -c (default 50)
  --durability D     always or periodic (default always)
  --dead-ratio R      the server's --compact-dead-ratio (default 0.3)
  --every S          seconds between samples (default 5)
  --tail S           seconds sampled after the writes end (default 20)
  --only R           expiring or persistent: one run only
  --quick            smoke run: 20000 keys, 1 s samples, 3 s tail
  --dir DIR          where the data directories go (default: the system temp
                     dir, or target/ when that is tmpfs)
  --out FILE         also write the machine and the tables as markdown
  --no-build         use target/release/logkv as it is
EOF
}

cd "$(dirname "$0")/.."
ROOT=$(pwd)

KEYS=2000000
TTL_MS=1000
CLIENTS=50
DURABILITY=always
DEAD_RATIO=0.3
EVERY=5
TAIL=20
RUNS="expiring persistent"
BASE_DIR=""
OUT=""
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --keys) KEYS=$2; shift ;;
        --ttl-ms) TTL_MS=$2; shift ;;
        --clients) CLIENTS=$2; shift ;;
        --durability)
            case "$2" in
                always | periodic) DURABILITY=$2 ;;
                *) echo "--durability: always or periodic" >&2; exit 2 ;;
            esac
            shift ;;
        --dead-ratio) DEAD_RATIO=$2; shift ;;
        --every) EVERY=$2; shift ;;
        --tail) TAIL=$2; shift ;;
        --only)
            case "$2" in
                expiring | persistent) RUNS=$2 ;;
                *) echo "--only: expiring or persistent" >&2; exit 2 ;;
            esac
            shift ;;
        --quick) KEYS=20000; EVERY=1; TAIL=3 ;;
        --dir) BASE_DIR=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for v in "$KEYS" "$TTL_MS" "$CLIENTS" "$EVERY" "$TAIL"; do
    case "$v" in '' | *[!0-9]* | 0) echo "counts must be positive integers (got '$v')" >&2; exit 2 ;; esac
done
for tool in redis-benchmark redis-cli curl; do
    command -v "$tool" >/dev/null || {
        echo "$tool not found (Debian: apt-get install -y redis-tools curl)" >&2
        exit 2
    }
done

log() { echo "[ttl-cache] $*" >&2; }

if [ "$BUILD" = 1 ]; then
    log "building logkv (release)"
    cargo build --release --quiet -p logkv
fi
LOGKV="$ROOT/target/release/logkv"
[ -x "$LOGKV" ] || { echo "$LOGKV missing (build it or drop --no-build)" >&2; exit 2; }

if [ -z "$BASE_DIR" ]; then
    BASE_DIR=${TMPDIR:-/tmp}
    if [ "$(df --output=fstype "$BASE_DIR" | tail -n 1 | tr -d ' ')" = tmpfs ]; then
        BASE_DIR="$ROOT/target"
    fi
fi
mkdir -p "$BASE_DIR"
WORK=$(mktemp -d "$BASE_DIR/logkv-ttl-cache.XXXXXX")

SERVER_PID=""
BENCH_PID=""
cleanup() {
    for pid in "$BENCH_PID" "$SERVER_PID"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nobody listens on (the kernel's, from binding port 0).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

metrics() { curl -sf "http://127.0.0.1:$HTTP_PORT/metrics"; }
metric() { awk -v name="$1" '$1 == name { printf "%d", $2; exit }' <<<"$2"; }

start_server() {
    local dir=$1
    PORT=$(free_port)
    HTTP_PORT=$(free_port)
    local durability=(--durability "$DURABILITY")
    [ "$DURABILITY" = periodic ] && durability+=(--flush-interval-ms 1000)
    "$LOGKV" serve --data-dir "$dir/data" --resp "127.0.0.1:$PORT" --http "127.0.0.1:$HTTP_PORT" \
        "${durability[@]}" --retain-versions 1 --version-check-horizon 1000 \
        --compact-min-bytes $((16 << 20)) --compact-dead-ratio "$DEAD_RATIO" >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 600); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz")" = 200 ]; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$dir/server.log" >&2; return 1; }
        sleep 0.1
    done
    echo "logkv serve did not become ready in 60 s" >&2
    return 1
}

stop_server() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || { echo "server exited with status $? on SIGTERM" >&2; return 1; }
    SERVER_PID=""
}

# One sample row: seconds, SETs applied, DBSIZE, index entries, index MiB,
# RSS MiB, compactions.
sample() {
    local t=$1 m
    m=$(metrics)
    local dbsize
    dbsize=$(redis-cli -h 127.0.0.1 -p "$PORT" dbsize)
    printf '| %s | %s | %s | %s | %.1f | %.1f | %s |\n' "$t" \
        "$(metric logkv_local_transactions_total "$m")" "$dbsize" \
        "$(metric logkv_index_entries "$m")" \
        "$(awk -v b="$(metric logkv_index_bytes "$m")" 'BEGIN { print b / 1048576 }')" \
        "$(awk -v b="$(metric process_resident_memory_bytes "$m")" 'BEGIN { print b / 1048576 }')" \
        "$(metric logkv_compactions_total "$m")"
}

run() {
    local kind=$1 dir="$WORK/$1"
    mkdir -p "$dir"
    start_server "$dir"
    local command=(SET "ttl:__rand_int__" v)
    [ "$kind" = expiring ] && command+=(PX "$TTL_MS")
    log "$kind: writing $KEYS keys (${command[*]}), $CLIENTS clients, --durability $DURABILITY"
    # Key numbers drawn from 10^9 (redis-benchmark reads -r as a C int): 2M keys
    # repeat about 2,000 of them.
    redis-benchmark -h 127.0.0.1 -p "$PORT" -c "$CLIENTS" -n "$KEYS" -r 1000000000 -q \
        "${command[@]}" >"$dir/bench.log" 2>&1 &
    BENCH_PID=$!
    local started=$SECONDS ended="" t rows=()
    echo
    echo "### $kind: \`${command[*]}\`, $KEYS keys, --durability $DURABILITY, --compact-dead-ratio $DEAD_RATIO"
    echo
    echo "| s | SETs applied | DBSIZE | index entries | index MiB | RSS MiB | compactions |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    while :; do
        sleep "$EVERY"
        t=$((SECONDS - started))
        rows+=("$(sample "$t")")
        echo "${rows[-1]}"
        if [ -z "$ended" ] && ! kill -0 "$BENCH_PID" 2>/dev/null; then
            wait "$BENCH_PID" || { cat "$dir/bench.log" >&2; return 1; }
            BENCH_PID=""
            ended=$t
        fi
        [ -z "$ended" ] || [ $((t - ended)) -lt "$TAIL" ] || break
    done
    local rate
    rate=$(tr '\r' '\n' <"$dir/bench.log" | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1)
    # Peak index entries over the second half of the writes, against the last.
    local half peak last
    half=$(printf '%s\n' "${rows[@]}" | awk -F'|' -v e="$ended" '$2 + 0 >= e / 2 && $2 + 0 <= e { print $5 + 0 }' | sort -n | tail -n 1)
    peak=$(printf '%s\n' "${rows[@]}" | awk -F'|' '{ print $5 + 0 }' | sort -n | tail -n 1)
    last=$(printf '%s\n' "${rows[-1]}" | awk -F'|' '{ print $5 + 0 }')
    echo
    echo "$kind: writes took ${ended}s (${rate:-?} SET/s); index entries: peak $peak," \
        "peak over the second half of the writes ${half:-?}, at the end $last"
    stop_server
}

[ -z "$OUT" ] || exec > >(tee "$OUT")
{
    echo "## TTL cache through logkv serve"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| CPUs (\`nproc\`) | $(nproc) |"
    echo "| CPU model | $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo) |"
    echo "| memory | $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |"
    echo "| kernel | $(uname -r) |"
    echo "| data dir | \`$BASE_DIR\` ($(df --output=fstype "$BASE_DIR" | tail -n 1 | tr -d ' ')) |"
    echo "| logkv | $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown) |"
    for kind in $RUNS; do
        run "$kind"
    done
}
