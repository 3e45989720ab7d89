#!/usr/bin/env bash
# logkv serve next to redis-server, both driven by redis-benchmark.
#
# Builds logkv (release), then for each durability pairing
#   logkv --durability always            vs  redis-server --appendfsync always
#   logkv --durability periodic (1000ms) vs  redis-server --appendfsync everysec
# starts each server on loopback with a fresh data directory, waits until it
# serves, runs `redis-benchmark -c 50 -d 100 -r 1000000 -t set,get` at
# pipeline 1 and 16, and stops it (SIGTERM). logkv and redis alternate
# within every repetition, so a drift of the machine hits both; each cell is
# the median of --repeat runs. Prints the machine and a table of rps (and
# redis-benchmark's p50/p99) with the ratio logkv / redis next to the
# targets; --out FILE writes the same table as markdown.
#
# Needs: a Rust toolchain, redis-server and redis-benchmark (Debian:
# apt-get install -y redis-server redis-tools). Nothing else.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/redis-benchmark.sh [options]
  --quick            smoke run: few requests, one repetition (seconds)
  --repeat K         median of K runs per cell (default 1)
  -n N               requests per run at pipeline 1 (default 200000)
  --n-pipelined N    requests per run at pipeline 16 (default 10 x N)
  --clients C        redis-benchmark -c (default 50)
  --pairing P        always, periodic or both (default both)
  --dir DIR          where the servers' data directories go (default: the
                     system temp dir, or target/ when that is tmpfs)
  --out FILE         also write the machine and the table as markdown
  --no-build         use target/release/logkv as it is
EOF
}

cd "$(dirname "$0")/.."
ROOT=$(pwd)

REQUESTS=200000
REQUESTS_P16=""
REPEAT=1
CLIENTS=50
PAIRINGS="always periodic"
BASE_DIR=""
OUT=""
BUILD=1
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --repeat) REPEAT=$2; shift ;;
        -n) REQUESTS=$2; shift ;;
        --n-pipelined) REQUESTS_P16=$2; shift ;;
        --clients) CLIENTS=$2; shift ;;
        --pairing)
            case "$2" in
                always | periodic) PAIRINGS=$2 ;;
                both) PAIRINGS="always periodic" ;;
                *) echo "--pairing: always, periodic or both" >&2; exit 2 ;;
            esac
            shift ;;
        --dir) BASE_DIR=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    REQUESTS=2000
    REQUESTS_P16=20000
    REPEAT=1
fi
[ -n "$REQUESTS_P16" ] || REQUESTS_P16=$((REQUESTS * 10))
for v in "$REQUESTS" "$REQUESTS_P16" "$REPEAT" "$CLIENTS"; do
    case "$v" in '' | *[!0-9]* | 0) echo "counts must be positive integers (got '$v')" >&2; exit 2 ;; esac
done

for tool in redis-server redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || {
        echo "$tool not found (Debian: apt-get install -y redis-server redis-tools)" >&2
        exit 2
    }
done

log() { echo "[bench] $*" >&2; }

if [ "$BUILD" = 1 ]; then
    log "building logkv (release)"
    cargo build --release --quiet -p logkv
fi
LOGKV="$ROOT/target/release/logkv"
[ -x "$LOGKV" ] || { echo "$LOGKV missing (build it or drop --no-build)" >&2; exit 2; }

# Data directories: sync figures on tmpfs mean nothing, so avoid it.
if [ -z "$BASE_DIR" ]; then
    BASE_DIR=${TMPDIR:-/tmp}
    if [ "$(df --output=fstype "$BASE_DIR" | tail -n 1 | tr -d ' ')" = tmpfs ]; then
        BASE_DIR="$ROOT/target"
    fi
fi
mkdir -p "$BASE_DIR"
WORK=$(mktemp -d "$BASE_DIR/logkv-redis-bench.XXXXXX")

SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nothing on loopback accepts on (bash's /dev/tcp: connection
# refused), below the kernel's ephemeral range so that no client socket
# (redis-benchmark opens many) holds it.
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$EPHEMERAL_LOW" -gt 11024 ] || EPHEMERAL_LOW=61000
free_port() {
    local port
    while :; do
        port=$((10000 + RANDOM % (EPHEMERAL_LOW - 11000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# HTTP status of GET http://127.0.0.1:$1$2, or nothing.
http_status() {
    local line
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    IFS= read -r -t 5 line <&3 || line=""
    exec 3<&- 3>&-
    echo "$line" | awk '{print $2}'
}

# Waits until $1 (a command) succeeds, the server ($SERVER_PID) still runs.
wait_until() {
    local what=$1
    shift
    local i
    for i in $(seq 1 600); do
        if "$@" 2>/dev/null; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "$what exited before it served" >&2; return 1; }
        sleep 0.1
    done
    echo "$what did not become ready in 60 s" >&2
    return 1
}

logkv_ready() { [ "$(http_status "$HTTP_PORT" /readyz)" = 200 ]; }
redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping)" = PONG ]; }

# start_server logkv|redis always|periodic DIR: sets SERVER_PID and PORT.
# A port taken between the check and the bind is retried with new ports.
start_server() {
    local attempt
    for attempt in 1 2 3 4 5; do
        if start_server_once "$@"; then return 0; fi
        if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then return 1; fi
        SERVER_PID=""
        grep -qi "address already in use" "$3/server.log" || { tail -n 20 "$3/server.log" >&2; return 1; }
        log "port taken, retrying ($attempt)"
        rm -rf "$3/data"
    done
    return 1
}

start_server_once() {
    local kind=$1 pairing=$2 dir=$3
    PORT=$(free_port)
    case "$kind" in
        logkv)
            HTTP_PORT=$(free_port)
            while [ "$HTTP_PORT" = "$PORT" ]; do HTTP_PORT=$(free_port); done
            local durability=(--durability always)
            [ "$pairing" = periodic ] && durability=(--durability periodic --flush-interval-ms 1000)
            "$LOGKV" serve --data-dir "$dir/data" --resp "127.0.0.1:$PORT" --http "127.0.0.1:$HTTP_PORT" \
                "${durability[@]}" >"$dir/server.log" 2>&1 &
            SERVER_PID=$!
            wait_until "logkv serve" logkv_ready
            ;;
        redis)
            local fsync=always
            [ "$pairing" = periodic ] && fsync=everysec
            mkdir -p "$dir/data"
            redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir/data" --save "" \
                --appendonly yes --appendfsync "$fsync" --daemonize no \
                --logfile "$dir/server.log" &
            SERVER_PID=$!
            wait_until "redis-server" redis_ready
            ;;
    esac
}

# Stops the server gracefully and checks it exited 0.
stop_server() {
    local status=0
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || status=$?
    SERVER_PID=""
    if [ "$status" != 0 ]; then
        echo "server exited with status $status on SIGTERM" >&2
        return 1
    fi
}

# Results: RESULT[pairing,server,test,pipeline] = space-separated "rps p50 p99" per run.
declare -A RESULT

# run_cell SERVER PAIRING PIPELINE N: one redis-benchmark run (SET then GET).
run_cell() {
    local server=$1 pairing=$2 pipeline=$3 n=$4 csv
    csv=$(redis-benchmark -h 127.0.0.1 -p "$PORT" -c "$CLIENTS" -d 100 -r 1000000 -t set,get \
        -n "$n" -P "$pipeline" --csv 2>"$WORK/bench.err") || {
        cat "$WORK/bench.err" >&2
        return 1
    }
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    local test rps p50 p99 got=0
    while IFS=, read -r test rps _ _ p50 _ p99 _; do
        test=${test//\"/}
        case "$test" in SET | GET) ;; *) continue ;; esac
        rps=${rps//\"/}
        p50=${p50//\"/}
        p99=${p99//\"/}
        [ -n "$p50" ] || p50=nan
        [ -n "$p99" ] || p99=nan
        RESULT[$pairing,$server,$test,$pipeline]+="$rps/$p50/$p99 "
        log "  $server $pairing -P $pipeline $test: $rps rps (p50 $p50 ms, p99 $p99 ms)"
        got=$((got + 1))
    done <<<"$csv"
    if [ "$got" != 2 ]; then
        echo "redis-benchmark gave no SET/GET figures:" >&2
        echo "$csv" >&2
        cat "$WORK/bench.err" >&2
        return 1
    fi
}

# Median of the numbers on stdin.
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# field K of every run of a cell, median.
cell() {
    local runs=${RESULT[$1]:-} k=$2
    for r in $runs; do echo "$r" | cut -d/ -f"$k"; done | median
}

# rps of every run of a cell: "min–max", or nothing for a single run.
cell_range() {
    local runs=${RESULT[$1]:-}
    for r in $runs; do echo "$r" | cut -d/ -f1; done | sort -g |
        awk '{ v[NR] = $1 } END { if (NR > 1) printf "%d–%d", v[1] + 0.5, v[NR] + 0.5 }'
}

# ---- machine ----
DATA_FS=$(df --output=fstype "$WORK" | tail -n 1 | tr -d ' ')
DATA_DEV=$(df --output=source "$WORK" | tail -n 1 | tr -d ' ')
DATA_MOUNT=$(df --output=target "$WORK" | tail -n 1 | tr -d ' ')
DATA_OPTS=$(awk -v m="$DATA_MOUNT" '$2 == m { o = $4 } END { print o }' /proc/mounts)
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[ -n "$CPU_MODEL" ] || CPU_MODEL=$(uname -m)
CORES=$(nproc)
KERNEL=$(uname -r)
MEM=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
REDIS_VERSION=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
BENCH_VERSION=$(redis-benchmark --version 2>/dev/null | awk '{print $2}' || true)
LOGKV_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain -- crates Cargo.lock 2>/dev/null)" ]; then
    LOGKV_COMMIT="$LOGKV_COMMIT (+ uncommitted changes)"
fi

MACHINE=(
    "CPU model|$CPU_MODEL"
    "cores (\`nproc\`)|$CORES"
    "memory|$MEM"
    "kernel|$KERNEL"
    "data dir|\`$DATA_MOUNT\` on $DATA_DEV: $DATA_FS ($DATA_OPTS)"
    "redis-server / redis-benchmark|$REDIS_VERSION / ${BENCH_VERSION:-?}"
    "logkv|$LOGKV_COMMIT"
    "load|redis-benchmark -c $CLIENTS -d 100 -r 1000000 -t set,get; -n $REQUESTS at -P 1, -n $REQUESTS_P16 at -P 16; median of $REPEAT run(s) per cell"
)

machine_table() {
    echo "| | |"
    echo "|---|---|"
    local line
    for line in "${MACHINE[@]}"; do echo "| ${line%%|*} | ${line#*|} |"; done
}

echo "== machine =="
for line in "${MACHINE[@]}"; do echo "${line%%|*}: ${line#*|}" | tr -d '`'; done
echo

# ---- runs ----
for pairing in $PAIRINGS; do
    for r in $(seq 1 "$REPEAT"); do
        for server in logkv redis; do
            dir="$WORK/$server-$pairing-$r"
            mkdir -p "$dir"
            log "$pairing, run $r/$REPEAT: $server"
            start_server "$server" "$pairing" "$dir"
            run_cell "$server" "$pairing" 1 "$REQUESTS"
            run_cell "$server" "$pairing" 16 "$REQUESTS_P16"
            stop_server
            rm -rf "$dir"
        done
    done
done

# ---- table ----
promise() {
    case "$1,$2" in
        logkv,always) echo "logkv always: acked after fdatasync (group commit)" ;;
        redis,always) echo "redis appendfsync always: AOF fsync'd before reply" ;;
        logkv,periodic) echo "logkv periodic 1000 ms: acked from its in-process buffer, fdatasync every 1 s" ;;
        redis,periodic) echo "redis appendfsync everysec: AOF written to the OS before reply, fsync every 1 s" ;;
    esac
}

target() { # test pipeline pairing -> minimum ratio, or nothing
    [ "$2" = 1 ] || return 0
    case "$1,$3" in
        SET,always) echo 1.5 ;;
        *) echo 1.0 ;;
    esac
}

ROWS=()
for pairing in $PAIRINGS; do
    for pipeline in 1 16; do
        for test in SET GET; do
            l_rps=$(cell "$pairing,logkv,$test,$pipeline" 1)
            r_rps=$(cell "$pairing,redis,$test,$pipeline" 1)
            l_p50=$(cell "$pairing,logkv,$test,$pipeline" 2)
            l_p99=$(cell "$pairing,logkv,$test,$pipeline" 3)
            r_p50=$(cell "$pairing,redis,$test,$pipeline" 2)
            r_p99=$(cell "$pairing,redis,$test,$pipeline" 3)
            ratio=$(awk -v a="$l_rps" -v b="$r_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }')
            t=$(target "$test" "$pipeline" "$pairing")
            if [ -z "$t" ]; then
                tgt="— (no target)"
                verdict="—"
            else
                tgt="≥ ${t}×"
                verdict=$(awk -v r="$ratio" -v t="$t" 'BEGIN {
                    if (r >= t) printf "met (+%.0f%%)", (r / t - 1) * 100;
                    else printf "missed by %.0f%%", (1 - r / t) * 100 }')
            fi
            l_range=$(cell_range "$pairing,logkv,$test,$pipeline")
            r_range=$(cell_range "$pairing,redis,$test,$pipeline")
            ROWS+=("$test|$pipeline|$(promise logkv "$pairing")|$(promise redis "$pairing")|$l_rps|$r_rps|$ratio|$tgt|$verdict|$l_p50 / $l_p99|$r_p50 / $r_p99|$l_range|$r_range")
        done
    done
done

fmt_int() { awk -v v="$1" 'BEGIN { if (v == "nan") print v; else printf "%d", v + 0.5 }'; }

# "median (min–max)" when there were several runs.
fmt_rps() { if [ -n "$2" ]; then echo "$(fmt_int "$1") ($2)"; else fmt_int "$1"; fi; }

markdown() {
    echo "| test | -P | logkv promise | redis promise | logkv rps (median, range) | redis rps (median, range) | ratio of medians | target | verdict | logkv p50 / p99 ms | redis p50 / p99 ms |"
    echo "|---|---:|---|---|---:|---:|---:|---|---|---:|---:|"
    local row
    for row in "${ROWS[@]}"; do
        IFS='|' read -r test p lp rp lr rr ratio tgt verdict ll rl lx rx <<<"$row"
        echo "| $test | $p | $lp | $rp | $(fmt_rps "$lr" "$lx") | $(fmt_rps "$rr" "$rx") | ${ratio}× | $tgt | $verdict | $ll | $rl |"
    done
}

echo "== logkv serve vs redis-server (redis-benchmark) =="
for row in "${ROWS[@]}"; do
    IFS='|' read -r test p lp rp lr rr ratio tgt verdict ll rl lx rx <<<"$row"
    printf '%-3s -P %-2s  logkv %9s rps  redis %9s rps  ratio %5s×  target %-14s %s\n' \
        "$test" "$p" "$(fmt_int "$lr")" "$(fmt_int "$rr")" "$ratio" "$tgt" "$verdict"
    [ -z "$lx" ] || printf '            runs: logkv %s, redis %s rps\n' "$lx" "$rx"
    printf '            %s  (p50/p99 %s ms)\n' "$lp" "$ll"
    printf '        vs  %s  (p50/p99 %s ms)\n' "$rp" "$rl"
done

if [ -n "$OUT" ]; then
    {
        echo "## Machine"
        echo
        machine_table
        echo
        echo "## Results"
        echo
        markdown
    } >"$OUT"
    log "wrote $OUT"
fi
