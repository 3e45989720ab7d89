#!/usr/bin/env bash
# logkv serve next to redis-server, both driven by redis-benchmark.
#
# Builds logkv (release), then for each durability pairing
#   logkv --durability always            vs  redis-server --appendfsync always
#   logkv --durability periodic (1000ms) vs  redis-server --appendfsync everysec
# starts each server on loopback with a fresh data directory, waits until it
# serves, runs `redis-benchmark -c 50 -d 100 -r 1000000`, -t set then -t get,
# at pipeline 1 and 16, and stops it (SIGTERM). logkv and redis alternate
# within every repetition, so a drift of the machine hits both; each cell is
# the median of --repeat runs.
#
# Pinning (--pin): a pinned run puts redis-benchmark on one CPU (taskset -c 0)
# and the server, all its threads, on another (taskset -c 1), so both servers
# get the same single CPU; an unpinned run sets no affinity. The pinned rows
# are the ones judged against the targets (the unpinned ones only when no
# pinned run was made, e.g. on a machine with fewer than 2 CPUs).
#
# CPU per request: the server process's utime + stime (/proc/PID/stat, in
# CLK_TCK ticks) before and after each redis-benchmark run, divided by its
# requests. Instructions per request: `perf stat -e instructions -p PID`
# around the run, where the machine has hardware counters (else n/a).
#
# Prints the machine and, per pin mode, a table of rps, CPU and instructions
# per request (and redis-benchmark's p50/p99) with the ratios logkv / redis
# next to the targets; --out FILE writes the same tables as markdown.
#
# Needs: a Rust toolchain, redis-server and redis-benchmark (Debian:
# apt-get install -y redis-server redis-tools); taskset (util-linux) to pin;
# perf (optional) for instructions.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/redis-benchmark.sh [options]
  --quick            smoke run: few requests, one repetition, pinned only
                     unless --pin says otherwise (seconds)
  --repeat K         median of K runs per cell (default 1)
  -n N               requests per run at pipeline 1 (default 200000)
  --n-pipelined N    requests per run at pipeline 16 (default 10 x N)
  --clients C        redis-benchmark -c (default 50)
  --pairing P        always, periodic or both (default both)
  --pin M            pinned, unpinned or both (default both). pinned:
                     redis-benchmark on CPU 0, each server on CPU 1 (the
                     first two CPUs this process may use); judged against
                     the targets. Fewer than 2 CPUs: unpinned only
  --no-perf          do not run perf stat (instructions per request: n/a)
  --dir DIR          where the servers' data directories go (default: the
                     system temp dir, or target/ when that is tmpfs)
  --out FILE         also write the machine and the tables as markdown
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
PIN_MODES="pinned unpinned"
PIN_GIVEN=0
PERF=1
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
        --pin)
            case "$2" in
                pinned | unpinned) PIN_MODES=$2 ;;
                both) PIN_MODES="pinned unpinned" ;;
                *) echo "--pin: pinned, unpinned or both" >&2; exit 2 ;;
            esac
            PIN_GIVEN=1
            shift ;;
        --no-perf) PERF=0 ;;
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
    # One pin mode, as fast as before; pinned, so CI runs the pinning code.
    [ "$PIN_GIVEN" = 1 ] || PIN_MODES=pinned
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

# "0-2,5" -> "0 1 2 5"
expand_cpus() {
    local part c parts out=()
    IFS=, read -r -a parts <<<"$1"
    for part in "${parts[@]}"; do
        case "$part" in
            *-*) for ((c = ${part%-*}; c <= ${part#*-}; c++)); do out+=("$c"); done ;;
            ?*) out+=("$part") ;;
        esac
    done
    echo "${out[*]}"
}

# ---- pinning: redis-benchmark on BENCH_CPU, the server on SERVER_CPU ----
ALLOWED_CPUS=$(expand_cpus "$(awk '/^Cpus_allowed_list/ { print $2 }' /proc/self/status)")
read -r BENCH_CPU SERVER_CPU _ <<<"$ALLOWED_CPUS "
PIN_DESC=""
if [[ " $PIN_MODES " == *" pinned "* ]]; then
    why=""
    if [ -z "$SERVER_CPU" ]; then
        why="this machine (or this process's affinity) has fewer than 2 CPUs"
    elif ! command -v taskset >/dev/null; then
        why="taskset not found (Debian: util-linux)"
    fi
    if [ -n "$why" ]; then
        log "cannot pin: $why; running unpinned only"
        PIN_MODES=unpinned
        PIN_DESC="not possible: $why; unpinned only"
    else
        siblings=$(expand_cpus "$(cat "/sys/devices/system/cpu/cpu$SERVER_CPU/topology/thread_siblings_list" 2>/dev/null || true)")
        cores="separate cores"
        [[ " $siblings " != *" $BENCH_CPU "* ]] || cores="SMT siblings of one core"
        PIN_DESC="redis-benchmark on CPU $BENCH_CPU (\`taskset -c $BENCH_CPU\`), each server and all its threads on CPU $SERVER_CPU (\`taskset -c $SERVER_CPU\`): $cores"
    fi
fi
# The mode judged against the targets: pinned when it ran.
JUDGED=unpinned
[[ " $PIN_MODES " != *" pinned "* ]] || JUDGED=pinned

# ---- CPU and instructions per request ----
CLK_TCK=$(getconf CLK_TCK)
# Hardware counters: detected once; INSTR_NOTE says why they are missing.
HW_COUNTERS=0
INSTR_NOTE=""
if [ "$PERF" = 0 ]; then
    INSTR_NOTE="n/a (--no-perf)"
elif ! command -v perf >/dev/null; then
    INSTR_NOTE="n/a (no hardware counters: perf not found)"
else
    probe=$(perf stat -e instructions -x, -- true 2>&1 >/dev/null || true)
    value=$(awk -F, '$3 ~ /^instructions/ { print $1; exit }' <<<"$probe")
    case "$value" in
        '' | *[!0-9]*) INSTR_NOTE="n/a (no hardware counters: \`perf stat -e instructions\` gives '${value:-$(head -n 1 <<<"$probe")}')" ;;
        *) HW_COUNTERS=1 ;;
    esac
fi

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
PERF_PID=""
cleanup() {
    if [ -n "$PERF_PID" ] && kill -0 "$PERF_PID" 2>/dev/null; then
        kill -KILL "$PERF_PID" 2>/dev/null || true
        wait "$PERF_PID" 2>/dev/null || true
    fi
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
    for _ in $(seq 1 600); do
        if "$@" 2>/dev/null; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "$what exited before it served" >&2; return 1; }
        sleep 0.1
    done
    echo "$what did not become ready in 60 s" >&2
    return 1
}

logkv_ready() { [ "$(http_status "$HTTP_PORT" /readyz)" = 200 ]; }
redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping)" = PONG ]; }

# Checks that SERVER_PID is the server itself (taskset execs it), not a
# wrapper, and in a pinned run that it may only run on SERVER_CPU.
check_server_pid() {
    local want=$1 pin=$2 exe affinity
    exe=$(readlink -f "/proc/$SERVER_PID/exe" 2>/dev/null || true)
    if [ "$exe" != "$(readlink -f "$want")" ]; then
        echo "pid $SERVER_PID is '$exe', not $want: CPU figures would be the wrong process's" >&2
        return 1
    fi
    affinity=$(awk '/^Cpus_allowed_list/ { print $2 }' "/proc/$SERVER_PID/status")
    if [ "$pin" = pinned ] && [ "$affinity" != "$SERVER_CPU" ]; then
        echo "pid $SERVER_PID may run on CPUs $affinity, not only $SERVER_CPU" >&2
        return 1
    fi
}

# start_server logkv|redis always|periodic pinned|unpinned DIR: sets
# SERVER_PID and PORT.
# A port taken between the check and the bind is retried with new ports.
start_server() {
    local attempt
    for attempt in 1 2 3 4 5; do
        if start_server_once "$@"; then return 0; fi
        if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then return 1; fi
        SERVER_PID=""
        grep -qi "address already in use" "$4/server.log" || { tail -n 20 "$4/server.log" >&2; return 1; }
        log "port taken, retrying ($attempt)"
        rm -rf "$4/data"
    done
    return 1
}

start_server_once() {
    local kind=$1 pairing=$2 pin=$3 dir=$4
    local pin_cmd=()
    [ "$pin" = unpinned ] || pin_cmd=(taskset -c "$SERVER_CPU")
    PORT=$(free_port)
    case "$kind" in
        logkv)
            HTTP_PORT=$(free_port)
            while [ "$HTTP_PORT" = "$PORT" ]; do HTTP_PORT=$(free_port); done
            local durability=(--durability always)
            [ "$pairing" = periodic ] && durability=(--durability periodic --flush-interval-ms 1000)
            "${pin_cmd[@]}" "$LOGKV" serve --data-dir "$dir/data" --resp "127.0.0.1:$PORT" --http "127.0.0.1:$HTTP_PORT" \
                "${durability[@]}" >"$dir/server.log" 2>&1 &
            SERVER_PID=$!
            wait_until "logkv serve" logkv_ready
            check_server_pid "$LOGKV" "$pin"
            ;;
        redis)
            local fsync=always
            [ "$pairing" = periodic ] && fsync=everysec
            mkdir -p "$dir/data"
            "${pin_cmd[@]}" redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir/data" --save "" \
                --appendonly yes --appendfsync "$fsync" --daemonize no \
                --logfile "$dir/server.log" &
            SERVER_PID=$!
            wait_until "redis-server" redis_ready
            check_server_pid "$(command -v redis-server)" "$pin"
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

# Results: RESULT[pin,pairing,server,test,pipeline] = space-separated
# "rps/p50/p99/cpu_us/ticks/instructions" per run (per request: cpu_us,
# instructions; ticks: the CPU ticks the figure rests on).
declare -A RESULT

# utime + stime of process $1, in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the parenthesised command name).
cpu_ticks() {
    local stat rest f
    read -r stat <"/proc/$1/stat"
    rest=${stat##*) }
    read -r -a f <<<"$rest"
    echo $((f[11] + f[12]))
}

# run_cell SERVER PAIRING PIN PIPELINE N TEST: one redis-benchmark run of
# TEST (set or get), with the server's CPU time (and instructions) around it.
run_cell() {
    local server=$1 pairing=$2 pin=$3 pipeline=$4 n=$5 t=$6 csv
    local bench_cmd=()
    [ "$pin" = unpinned ] || bench_cmd=(taskset -c "$BENCH_CPU")
    if [ "$HW_COUNTERS" = 1 ]; then
        perf stat -e instructions -x, -o "$WORK/perf.out" -p "$SERVER_PID" 2>"$WORK/perf.err" &
        PERF_PID=$!
        sleep 0.3 # attached by then
    fi
    local ticks0 ticks1
    ticks0=$(cpu_ticks "$SERVER_PID")
    csv=$("${bench_cmd[@]}" redis-benchmark -h 127.0.0.1 -p "$PORT" -c "$CLIENTS" -d 100 -r 1000000 -t "$t" \
        -n "$n" -P "$pipeline" --csv 2>"$WORK/bench.err") || {
        cat "$WORK/bench.err" >&2
        return 1
    }
    ticks1=$(cpu_ticks "$SERVER_PID")
    local instr=nan
    if [ -n "$PERF_PID" ]; then
        kill -INT "$PERF_PID" 2>/dev/null || true
        wait "$PERF_PID" 2>/dev/null || true
        PERF_PID=""
        instr=$(awk -F, -v n="$n" '$3 ~ /^instructions/ {
            if ($1 ~ /^[0-9]+$/) printf "%.0f", $1 / n; else print "nan"; found = 1; exit }
            END { if (!found) print "nan" }' "$WORK/perf.out" 2>/dev/null || echo nan)
        [ "$instr" != nan ] || log "  perf stat gave no instruction count: $(cat "$WORK/perf.out" "$WORK/perf.err" 2>/dev/null | grep -v '^#' | tr '\n' ' ')"
    fi
    local ticks=$((ticks1 - ticks0))
    local cpu_us
    cpu_us=$(awk -v t="$ticks" -v hz="$CLK_TCK" -v n="$n" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }')
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
        RESULT[$pin,$pairing,$server,$test,$pipeline]+="$rps/$p50/$p99/$cpu_us/$ticks/$instr "
        log "  $server $pairing $pin -P $pipeline $test: $rps rps (p50 $p50 ms, p99 $p99 ms), CPU $cpu_us µs/request ($ticks ticks)$([ "$HW_COUNTERS" = 0 ] || echo ", $instr instructions/request")"
        got=$((got + 1))
    done <<<"$csv"
    if [ "$got" != 1 ]; then
        echo "redis-benchmark gave no ${t^^} figures:" >&2
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

# smallest field K over the runs of a cell.
cell_min() {
    local runs=${RESULT[$1]:-} k=$2
    for r in $runs; do echo "$r" | cut -d/ -f"$k"; done | sort -g | head -n 1
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
    "load|redis-benchmark -c $CLIENTS -d 100 -r 1000000, -t set then -t get; -n $REQUESTS at -P 1, -n $REQUESTS_P16 at -P 16; median of $REPEAT run(s) per cell"
    "pin modes|${PIN_MODES// /, }; judged against the targets: $JUDGED"
    "CPU pinning|${PIN_DESC:-not used (--pin unpinned)}"
    "CPU per request|server's utime + stime from /proc/PID/stat around each redis-benchmark run (CLK_TCK $CLK_TCK), over its requests"
    "instructions per request|$(if [ "$HW_COUNTERS" = 1 ]; then echo "\`perf stat -e instructions -p PID\` around each run, over its requests"; else echo "$INSTR_NOTE"; fi)"
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
for pin in $PIN_MODES; do
    for pairing in $PAIRINGS; do
        for r in $(seq 1 "$REPEAT"); do
            for server in logkv redis; do
                dir="$WORK/$server-$pairing-$pin-$r"
                mkdir -p "$dir"
                log "$pairing, $pin, run $r/$REPEAT: $server"
                start_server "$server" "$pairing" "$pin" "$dir"
                run_cell "$server" "$pairing" "$pin" 1 "$REQUESTS" set
                run_cell "$server" "$pairing" "$pin" 1 "$REQUESTS" get
                run_cell "$server" "$pairing" "$pin" 16 "$REQUESTS_P16" set
                run_cell "$server" "$pairing" "$pin" 16 "$REQUESTS_P16" get
                stop_server
                rm -rf "$dir"
            done
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

# test pipeline pairing -> minimum rps ratio logkv / redis (the same in both
# pairings: always vs appendfsync always, periodic vs everysec)
rps_target() {
    case "$1,$2" in
        *,1) echo 1.0 ;;
        SET,16) echo 0.7 ;;
        GET,16) echo 0.9 ;;
    esac
}

# pipeline -> maximum CPU-per-request ratio logkv / redis
cpu_target() { if [ "$1" = 1 ]; then echo 1.0; else echo 1.5; fi; }

# verdict RATIO TARGET ge|le
verdict() {
    awk -v r="$1" -v t="$2" -v d="$3" 'BEGIN {
        if (r == "nan") { print "n/a"; exit }
        if (d == "ge") { if (r >= t) printf "met (+%.0f%%)", (r / t - 1) * 100; else printf "missed by %.0f%%", (1 - r / t) * 100 }
        else { if (r <= t) printf "met (%.0f%% under)", (1 - r / t) * 100; else printf "missed by %.0f%%", (r / t - 1) * 100 } }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "nan" && b != "nan" && b > 0) printf "%.2f", a / b; else print "nan" }'; }

# CPU µs per request of a cell, "~" in front when a run rests on fewer than
# 100 clock ticks (one tick is then more than 1%).
cpu_cell() {
    local us min
    us=$(cell "$1" 4)
    min=$(cell_min "$1" 5)
    awk -v v="$us" -v m="$min" 'BEGIN { if (v == "nan") print v; else printf "%s%.2f", (m < 100 ? "~" : ""), v }'
}

# ROWS[pin] = newline-separated rows
declare -A ROWS
COARSE=0
for pin in $PIN_MODES; do
    ROWS[$pin]=""
    for pairing in $PAIRINGS; do
        for pipeline in 1 16; do
            for test in SET GET; do
                key_l="$pin,$pairing,logkv,$test,$pipeline"
                key_r="$pin,$pairing,redis,$test,$pipeline"
                l_rps=$(cell "$key_l" 1)
                r_rps=$(cell "$key_r" 1)
                l_p50=$(cell "$key_l" 2)
                l_p99=$(cell "$key_l" 3)
                r_p50=$(cell "$key_r" 2)
                r_p99=$(cell "$key_r" 3)
                l_cpu=$(cpu_cell "$key_l")
                r_cpu=$(cpu_cell "$key_r")
                [[ "$l_cpu$r_cpu" != *"~"* ]] || COARSE=1
                l_ins=$(cell "$key_l" 6)
                r_ins=$(cell "$key_r" 6)
                rps_ratio=$(ratio "$l_rps" "$r_rps")
                cpu_ratio=$(ratio "${l_cpu#\~}" "${r_cpu#\~}")
                t=$(rps_target "$test" "$pipeline" "$pairing")
                c=$(cpu_target "$pipeline")
                if [ "$pin" = "$JUDGED" ]; then
                    rps_verdict=$(verdict "$rps_ratio" "$t" ge)
                    cpu_verdict=$(verdict "$cpu_ratio" "$c" le)
                else
                    rps_verdict="not judged"
                    cpu_verdict="not judged"
                fi
                l_range=$(cell_range "$key_l")
                r_range=$(cell_range "$key_r")
                ROWS[$pin]+="$test|$pipeline|$(promise logkv "$pairing")|$(promise redis "$pairing")|$l_rps|$r_rps|$rps_ratio|≥ ${t}×|$rps_verdict|$l_p50 / $l_p99|$r_p50 / $r_p99|$l_range|$r_range|$l_cpu|$r_cpu|$cpu_ratio|≤ ${c}×|$cpu_verdict|$l_ins|$r_ins"$'\n'
            done
        done
    done
done

fmt_int() { awk -v v="$1" 'BEGIN { if (v == "nan") print v; else printf "%d", v + 0.5 }'; }

# "median (min–max)" when there were several runs.
fmt_rps() { if [ -n "$2" ]; then echo "$(fmt_int "$1") ($2)"; else fmt_int "$1"; fi; }

fmt_na() { if [ "$1" = nan ]; then echo n/a; else echo "$1"; fi; }
fmt_ratio() { if [ "$1" = nan ]; then echo n/a; else echo "${1}×"; fi; }

# rows of pin mode $1, one per line
rows() { printf '%s' "${ROWS[$1]}"; }

# section_title PIN [Capitalised]
section_title() {
    local what judged
    if [ "$1" = pinned ]; then
        what="pinned (redis-benchmark on CPU $BENCH_CPU, server on CPU $SERVER_CPU)"
    else
        what="unpinned (no CPU affinity)"
    fi
    judged="for reference, not judged"
    [ "$1" != "$JUDGED" ] || judged="judged against the targets"
    [ -z "${2:-}" ] || what=${what^}
    echo "$what: $judged"
}

notes() {
    [ "$HW_COUNTERS" = 1 ] || echo "Instructions per request: $INSTR_NOTE."
    [ "$COARSE" = 0 ] || echo "CPU figures marked ~ rest on fewer than 100 clock ticks (1 tick = $((1000000 / CLK_TCK)) µs of CPU) in a run: use more requests."
}

markdown() { # pin mode
    echo "| test | -P | logkv promise | redis promise | logkv rps (median, range) | redis rps (median, range) | rps ratio | rps target | rps verdict | logkv CPU µs/req | redis CPU µs/req | CPU ratio | CPU target | CPU verdict | logkv instr/req | redis instr/req | logkv p50 / p99 ms | redis p50 / p99 ms |"
    echo "|---|---:|---|---|---:|---:|---:|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|"
    local test p lp rp lr rr ratio tgt verdict ll rl lx rx lc rc cr ct cv li ri
    while IFS='|' read -r test p lp rp lr rr ratio tgt verdict ll rl lx rx lc rc cr ct cv li ri; do
        echo "| $test | $p | $lp | $rp | $(fmt_rps "$lr" "$lx") | $(fmt_rps "$rr" "$rx") | $(fmt_ratio "$ratio") | $tgt | $verdict | $(fmt_na "$lc") | $(fmt_na "$rc") | $(fmt_ratio "$cr") | $ct | $cv | $(fmt_na "$li") | $(fmt_na "$ri") | $ll | $rl |"
    done < <(rows "$1")
}

for pin in $PIN_MODES; do
    echo "== logkv serve vs redis-server (redis-benchmark), $(section_title "$pin") =="
    while IFS='|' read -r test p lp rp lr rr ratio tgt verdict ll rl lx rx lc rc cr ct cv li ri; do
        printf '%-3s -P %-2s  logkv %9s rps  redis %9s rps  ratio %6s  target %-7s %s\n' \
            "$test" "$p" "$(fmt_int "$lr")" "$(fmt_int "$rr")" "$(fmt_ratio "$ratio")" "$tgt" "$verdict"
        [ -z "$lx" ] || printf '            runs: logkv %s, redis %s rps\n' "$lx" "$rx"
        printf '            CPU/request  logkv %7s µs  redis %7s µs  ratio %6s  target %-7s %s\n' \
            "$(fmt_na "$lc")" "$(fmt_na "$rc")" "$(fmt_ratio "$cr")" "$ct" "$cv"
        if [ "$HW_COUNTERS" = 1 ]; then
            printf '            instructions/request  logkv %s  redis %s\n' "$(fmt_na "$li")" "$(fmt_na "$ri")"
        fi
        printf '            %s  (p50/p99 %s ms)\n' "$lp" "$ll"
        printf '        vs  %s  (p50/p99 %s ms)\n' "$rp" "$rl"
    done < <(rows "$pin")
    echo
done
notes

if [ -n "$OUT" ]; then
    {
        echo "## Machine"
        echo
        machine_table
        echo
        echo "## Results"
        for pin in $PIN_MODES; do
            echo
            echo "### $(section_title "$pin" cap)"
            echo
            markdown "$pin"
        done
        if [ -n "$(notes)" ]; then
            echo
            notes
        fi
    } >"$OUT"
    log "wrote $OUT"
fi
