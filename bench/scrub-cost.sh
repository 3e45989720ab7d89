#!/usr/bin/env bash
# What background scrubbing costs writers: `logkv serve --durability always`
# on a pre-filled data directory, driven by `redis-benchmark -t set`, with
# the scrubber off (--scrub-bytes-per-sec 0) and on at its default rate,
# alternating within every repetition so a drift of the machine hits both.
# The scrubber runs pass after pass (--scrub-interval-secs 0) and the
# directory holds more sealed data than a pass reads during a run, so it is
# busy the whole time. Target: on costs at most 10% of the off throughput
# (the median of --repeat runs each).
#
# Needs: a release build (`cargo build --release -p logkv`), redis-benchmark
# and curl.
set -euo pipefail

repeat=3
requests=100000
fill_mib=1024
dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --repeat) repeat="$2"; shift 2 ;;
        -n) requests="$2"; shift 2 ;;
        --fill-mib) fill_mib="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        *) echo "usage: bench/scrub-cost.sh [--repeat K] [-n REQUESTS] [--fill-mib MIB] [--dir DIR]" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
bin="${LOGKV_BIN:-$root/target/release/logkv}"
[ -x "$bin" ] || { echo "$bin not found: cargo build --release -p logkv" >&2; exit 1; }
work=$(mktemp -d "${dir:-${TMPDIR:-/tmp}}/logkv-scrub-cost.XXXXXX")
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start ARGS...: logkv serve on $work/data; sets pid, resp, http.
start() {
    resp=$(port); http=$(port)
    "$bin" serve --data-dir "$work/data" --resp "127.0.0.1:$resp" --http "127.0.0.1:$http" \
        --admin-token bench --log-filter warn "$@" >"$work/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do
        redis-cli -p "$resp" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "logkv serve did not start:" >&2; cat "$work/serve.log" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" || true; pid=""; }
metric() { curl -s "http://127.0.0.1:$http/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }

# Fill: 1 KiB values over distinct keys, unsynced, then a checkpoint so
# restarts replay nothing.
start --durability none --scrub-bytes-per-sec 0
keys=$((fill_mib * 1024))
redis-benchmark -p "$resp" -t set -d 1024 -n "$keys" -r 100000000 -c 16 -P 64 -q >/dev/null
curl -s -H 'authorization: Bearer bench' -H 'content-type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"admin_checkpoint","params":[]}' "http://127.0.0.1:$http/" >/dev/null
stop
echo "data directory: $(du -sh "$work/data" | cut -f1) ($fill_mib MiB of 1 KiB values)"

# run ARGS...: one redis-benchmark of `always` writes; prints "rps scrubbed_bytes".
run() {
    start --durability always "$@"
    local rps
    rps=$(redis-benchmark -p "$resp" -t set -d 100 -n "$requests" -r 1000000 -c 50 -P 1 --csv |
        awk -F'"' '/^"SET"/ { print $4 }')
    local scrubbed
    scrubbed=$(metric logkv_scrub_bytes_total)
    stop
    echo "$rps ${scrubbed:-0}"
}

off=(); on=()
for i in $(seq "$repeat"); do
    read -r rps _ < <(run --scrub-bytes-per-sec 0)
    off+=("$rps")
    read -r rps scrubbed < <(run --scrub-interval-secs 0)
    on+=("$rps")
    echo "repetition $i: off ${off[-1]} set/s, on ${on[-1]} set/s (scrubbed $scrubbed bytes)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
m_off=$(median "${off[@]}"); m_on=$(median "${on[@]}")
cost=$(awk -v a="$m_off" -v b="$m_on" 'BEGIN { printf "%.1f", (a - b) * 100 / a }')
verdict=$(awk -v c="$cost" 'BEGIN { print (c <= 10 ? "met" : "MISSED") }')
echo "median: off $m_off set/s, on $m_on set/s: scrubbing costs $cost% (target <= 10%: $verdict)"
