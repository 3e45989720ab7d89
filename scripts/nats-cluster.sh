#!/usr/bin/env bash
# Starts and stops an N-node NATS JetStream cluster on loopback, for the
# tests and by hand, with everything (configs, stores, logs, pids) under
# one directory so a test can crash, restart and clean up single nodes.
#
#   start DIR [--nodes N] [--port BASE] [--sync always|default]
#   stop DIR | kill DIR I | restart DIR I | urls DIR
#
# Node i (1-based) listens for clients on BASE+i-1, serves monitoring on
# BASE+100+i-1 and routes on BASE+200+i-1. The server binary is
# $NATS_SERVER, else nats-server on PATH.
set -euo pipefail

usage() {
    cat >&2 <<'EOF'
usage: nats-cluster.sh start DIR [--nodes N] [--port BASE] [--sync always|default]
       nats-cluster.sh stop DIR       SIGTERM every node, SIGKILL after 10 s
       nats-cluster.sh kill DIR I     SIGKILL node I (1-based), a crash
       nats-cluster.sh restart DIR I  start node I again on its store
       nats-cluster.sh urls DIR       print the client URLs, comma-separated

start writes DIR/n$I.conf, DIR/n$I/js (store), DIR/n$I.log, DIR/n$I.pid and
DIR/urls, waits until every node is healthy and a JetStream meta leader is
elected, then prints nats://127.0.0.1:P1,... on stdout. Client ports are
BASE.., monitoring BASE+100.., routes BASE+200.. (BASE defaults to 4222).
The server binary is $NATS_SERVER, else nats-server on PATH.
EOF
    exit 2
}

die() {
    echo "nats-cluster.sh: $*" >&2
    exit 1
}

# Bounds on every wait: hang detectors, not measurements.
START_PATIENCE=30
STOP_PATIENCE=10

server_binary() {
    local bin=${NATS_SERVER:-}
    if [ -z "$bin" ]; then
        # Debian installs it in /usr/sbin, which a non-root PATH may lack.
        bin=$(command -v nats-server || true)
        [ -n "$bin" ] || { [ -x /usr/sbin/nats-server ] && bin=/usr/sbin/nats-server; }
    fi
    [ -n "$bin" ] && [ -x "$(command -v "$bin" || true)" ] ||
        die "no nats-server binary (${NATS_SERVER:-not on PATH}); run bash scripts/test.sh or apt-get install -y nats-server"
    echo "$bin"
}

# True if pid $1 is a live (not zombie) process: servers are orphaned when
# this script exits, and a container's init may never reap them.
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    [ -r "/proc/$1/stat" ] || return 0
    state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ "$state" != Z ] && [ -n "$state" ]
}

# GET http://127.0.0.1:$1$2 in pure bash (curl may not be installed); prints
# the status code on the first line, then the body. HTTP/1.0 so the body is
# never chunked and the server closes the connection after it.
http_get() {
    local fd line status=""
    exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&"$fd"
    IFS=' ' read -r -t 5 -u "$fd" _ status _ || true
    echo "$status"
    while IFS= read -r -t 5 -u "$fd" line || [ -n "$line" ]; do
        printf '%s\n' "${line%$'\r'}"
        line=""
    done
    exec {fd}<&-
}

healthy() {
    [ "$(http_get "$1" /healthz 2>/dev/null | head -n1)" = 200 ]
}

# The meta leader exists once /jsz names it in its meta_cluster block
# (the field is omitted while an election is under way).
has_meta_leader() {
    http_get "$1" /jsz 2>/dev/null | tr -d ' \n' | grep -q '"meta_cluster":{[^}]*"leader":"[^"]'
}

# Settings of a node, read back from its conf so kill/restart need no flags.
conf_of() { echo "$dir/n$1.conf"; }
client_port() { sed -n 's/^listen: 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$(conf_of "$1")"; }
monitor_port() { sed -n 's/^http: 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$(conf_of "$1")"; }
nodes_in_dir() { ls "$dir"/n*.conf 2>/dev/null | sed 's/.*\/n\([0-9]*\)\.conf$/\1/' | sort -n; }

pid_of() {
    local file="$dir/n$1.pid"
    [ -f "$file" ] && cat "$file"
}

launch() {
    local i=$1 bin
    bin=$(server_binary)
    # setsid + nohup: the server outlives this script and a signal sent to
    # the caller's process group (a test runner's Ctrl-C) reaches it only
    # through `stop`. Without job control the background job is no group
    # leader, so setsid execs in place and $! is the server's own pid.
    setsid nohup "$bin" -c "$(conf_of "$i")" >>"$dir/n$i.log" 2>&1 </dev/null &
    echo $! >"$dir/n$i.pid"
}

log_tails() {
    local i
    for i in "$@"; do
        echo "--- tail of $dir/n$i.log" >&2
        tail -n 20 "$dir/n$i.log" >&2 2>/dev/null || true
    done
}

# Waits until each node given is healthy (and, when $meta, knows a meta
# leader); on timeout prints why with the logs' tails and returns 1.
wait_ready() {
    local meta=$1 deadline=$((SECONDS + START_PATIENCE)) i pid pending
    shift
    while :; do
        pending=""
        for i in "$@"; do
            pid=$(pid_of "$i") || pid=""
            if [ -z "$pid" ] || ! alive "$pid"; then
                echo "nats-cluster.sh: node $i exited during startup" >&2
                log_tails "$i"
                return 1
            fi
            if ! healthy "$(monitor_port "$i")"; then
                pending+=" n$i (healthz)"
            elif $meta && ! has_meta_leader "$(monitor_port "$i")"; then
                pending+=" n$i (no meta leader)"
            fi
        done
        [ -n "$pending" ] || return 0
        if [ $SECONDS -ge "$deadline" ]; then
            echo "nats-cluster.sh: not ready after ${START_PATIENCE}s:$pending" >&2
            log_tails "$@"
            return 1
        fi
        sleep 0.2
    done
}

# SIGTERM (or $2) to node $1, waits for it to go, SIGKILL as a last resort.
stop_node() {
    local i=$1 sig=${2:-TERM} pid deadline
    pid=$(pid_of "$i") || return 0
    if alive "$pid"; then
        kill -s "$sig" "$pid" 2>/dev/null || true
        deadline=$((SECONDS + STOP_PATIENCE))
        while alive "$pid" && [ $SECONDS -lt "$deadline" ]; do sleep 0.1; done
        if alive "$pid"; then
            echo "nats-cluster.sh: node $i (pid $pid) ignored SIG$sig for ${STOP_PATIENCE}s; SIGKILL" >&2
            kill -s KILL "$pid" 2>/dev/null || true
            while alive "$pid"; do sleep 0.1; done
        fi
    fi
    rm -f "$dir/n$i.pid"
}

stop_all() {
    local i
    for i in $(nodes_in_dir); do stop_node "$i"; done
}

cmd_start() {
    local nodes=3 base=4222 sync=default bin version i routes="" urls=""
    while [ $# -gt 0 ]; do
        case $1 in
            --nodes) nodes=${2:?--nodes needs a value}; shift 2 ;;
            --port) base=${2:?--port needs a value}; shift 2 ;;
            --sync) sync=${2:?--sync needs a value}; shift 2 ;;
            *) usage ;;
        esac
    done
    [[ $nodes =~ ^[1-9][0-9]*$ ]] || die "--nodes must be a positive integer, got $nodes"
    [[ $base =~ ^[0-9]+$ ]] && [ "$base" -ge 1 ] && [ $((base + 200 + nodes - 1)) -le 65535 ] ||
        die "--port $base leaves no room for $nodes nodes (ports BASE..BASE+200+N-1)"
    case $sync in always | default) ;; *) die "--sync must be always or default, got $sync" ;; esac
    [ "$nodes" -le 100 ] || die "at most 100 nodes (the port ranges are 100 apart)"

    bin=$(server_binary)
    # "nats-server: v2.9.10" -> 2.9.10
    version=$("$bin" --version 2>&1 | sed -n 's/.*v\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n1)
    [ -n "$version" ] || die "cannot read the version of $bin from: $("$bin" --version 2>&1 || true)"
    if [ "$sync" = always ]; then
        # sync_interval came with 2.10; 2.9 rejects the unknown field.
        local major=${version%%.*} minor
        minor=${version#*.}
        minor=${minor%%.*}
        [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 10 ]; } ||
            die "--sync always needs nats-server >= 2.10 (sync_interval: always); $bin is $version"
    fi

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    for i in $(nodes_in_dir); do
        if pid=$(pid_of "$i") && alive "$pid"; then
            die "node $i of $dir is running (pid $pid); run: nats-cluster.sh stop $dir"
        fi
    done

    for ((i = 1; i <= nodes; i++)); do
        routes+="    nats-route://127.0.0.1:$((base + 200 + i - 1))"$'\n'
        urls+="${urls:+,}nats://127.0.0.1:$((base + i - 1))"
    done
    for ((i = 1; i <= nodes; i++)); do
        mkdir -p "$dir/n$i/js"
        {
            echo "# written by scripts/nats-cluster.sh ($version)"
            echo "server_name: n$i"
            echo "listen: 127.0.0.1:$((base + i - 1))"
            echo "http: 127.0.0.1:$((base + 100 + i - 1))"
            # The default 1 MiB counts headers: too small for a 1 MiB value
            # plus its envelope. max_pending (64 MB by default) stays above.
            echo "max_payload: 8MB"
            echo "jetstream {"
            echo "  store_dir: \"$dir/n$i/js\""
            # Limits far above what tests write, so none ever hits them.
            echo "  max_memory_store: 1GB"
            echo "  max_file_store: 16GB"
            [ "$sync" = always ] && echo "  sync_interval: always"
            echo "}"
            if [ "$nodes" -gt 1 ]; then
                echo "cluster {"
                echo "  name: logkv"
                echo "  listen: 127.0.0.1:$((base + 200 + i - 1))"
                # Every node lists every route, itself included: the server
                # recognises and drops the route to itself.
                echo "  routes: ["
                printf '%s' "$routes"
                echo "  ]"
                echo "}"
            fi
        } >"$dir/n$i.conf"
        : >"$dir/n$i.log"
    done
    echo "$urls" >"$dir/urls"

    for ((i = 1; i <= nodes; i++)); do launch "$i"; done
    local all meta=false
    all=$(seq 1 "$nodes")
    [ "$nodes" -gt 1 ] && meta=true
    # shellcheck disable=SC2086
    if ! wait_ready $meta $all; then
        # Leave nothing running behind a failed start.
        stop_all
        die "start failed ($bin $version, ports $base.., dir $dir)"
    fi
    echo "$urls"
}

node_arg() {
    [[ ${1:-} =~ ^[1-9][0-9]*$ ]] || usage
    [ -f "$(conf_of "$1")" ] || die "no node $1 in $dir (no $(conf_of "$1"))"
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
shift 2
case $cmd in
    start) cmd_start "$@" ;;
    stop)
        [ $# -eq 0 ] || usage
        [ -d "$dir" ] || die "no directory $dir"
        stop_all
        ;;
    kill)
        [ $# -eq 1 ] || usage
        node_arg "$1"
        stop_node "$1" KILL
        ;;
    restart)
        [ $# -eq 1 ] || usage
        node_arg "$1"
        if pid=$(pid_of "$1") && alive "$pid"; then die "node $1 is running (pid $pid)"; fi
        launch "$1"
        # Healthy once caught up with the meta group (in a cluster).
        if ! wait_ready false "$1"; then
            stop_node "$1"
            die "node $1 did not become healthy"
        fi
        ;;
    urls)
        [ $# -eq 0 ] || usage
        [ -f "$dir/urls" ] || die "no $dir/urls; start the cluster first"
        cat "$dir/urls"
        ;;
    *) usage ;;
esac
