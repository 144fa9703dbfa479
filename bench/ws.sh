#!/usr/bin/env bash
# WebSocket throughput, latency and memory (issue 9): tern against libwebsockets 4.1
# (Debian libwebsockets-dev; bench/peers/lws_*.c) and Node's ws (bench/peers/node/, the
# version locked in package-lock.json). Method of /work/shared/BENCH.md: server pinned to
# CPU 0, the load generator (bench/ws_load.c) pinned to CPU 1, the servers interleaved in
# every round (tern, lws, node, tern, lws, node, ...), ROUNDS rounds, medians, ratios
# tern/peer. Server CPU time: utime+stime of the whole server process (/proc/PID/stat,
# all threads), read by ws_load at the start and the end of the measured window, divided
# by the messages handled: it does not depend on the client.
#
# Cases:
#   echo    ECHO_CONNS (100) connections to the echo server, each with WINDOW 64-byte
#           binary messages in flight (send, wait for the echo, send again), DURATION s,
#           for each WINDOW in ECHO_WINDOWS ("1 8"). Messages/s, server CPU µs per
#           message, p50/p99 round trip. Window 1 is issue 9's case; with window 8 the
#           client needs fewer syscalls per message, so it stays the lighter side even
#           against a fast server (see "client CPU" in the summary: near 100%, a
#           messages/s figure is the client's limit and CPU µs/message is the one to
#           compare).
#   bcast   BCAST_CONNS (1000) subscribers of the broadcast server (protocol below).
#           max rate: RATE 0, COUNT sized from a warm-up run so that the run lasts about
#           BCAST_SECONDS: deliveries/s (messages received, all subscribers) and server
#           CPU µs per delivery. fixed rate: RATE = BCAST_RATE (40) messages/s, i.e.
#           40,000 deliveries/s, below every server's saturation (on this machine about
#           a third of libwebsockets' and half of Node's full speed), for
#           BCAST_RATE_COUNT messages: p50/p99 delivery latency. At saturation a latency
#           only measures how long the queue is, hence the two runs; a server that
#           cannot publish at the fixed rate is flagged ("behind"). Both are fan-out
#           figures: the last subscriber is written after 999 others.
#   idle    IDLE_N (10,000) connections to a freshly started echo server, one 64-byte
#           echo each, then idle: (RSS with them - RSS before) / IDLE_N, SETTLE s after
#           the last one went quiet (as bench/idle.sh).
# Targets (issue 9): echo messages/s >= 1.5x libwebsockets'; broadcast >= 2,000,000
# deliveries/s; <= 1 KiB per idle WebSocket connection.
#
# Broadcast protocol (bench/tern_ws_bench.c, bench/peers/lws_broadcast.c,
# bench/peers/node/broadcast.js):
#   1. Clients connect to ws://127.0.0.1:PORT/ (any path); every WebSocket connection is
#      a subscriber from its upgrade on, and gets only messages published after it.
#   2. Once all are connected, one client sends the text message "start RATE COUNT" on
#      its connection (ignored while a run is going on).
#   3. The server publishes COUNT binary messages of 64 bytes to every subscriber, from a
#      worker thread through the library's cross-thread way (tern: tern_remote_ws_publish;
#      lws: a ring and lws_cancel_service) or, in Node, from the event loop (timers,
#      setImmediate). Bytes 0-7: CLOCK_MONOTONIC in ns when the message was made, just
#      before it is first offered to the library; bytes 8-15: its sequence number, 0 to
#      COUNT-1; both little-endian u64; the rest zero. RATE > 0: message i is made at
#      start + i/RATE. RATE 0: as fast as the server takes them; a full queue means wait
#      and offer again, never drop a message or close a subscriber for being behind.
#   4. After the last message, the text "done" to every subscriber.
#   The client checks each subscriber's sequence (no gap, no reordering), counts what
#   is missing at "done", and takes latency = time received - stamp (same clock).
#
#   bench/ws.sh                    (all three servers; tern's need issue 9's API)
#   PEERS_ONLY=1 bench/ws.sh       (libwebsockets and Node only)
#   env: DURATION (s per echo run, 10), ROUNDS (3), ECHO_CONNS (100), ECHO_WINDOWS
#        ("1 8"), BCAST_CONNS (1000), BCAST_SECONDS (DURATION), BCAST_RATE (40),
#        BCAST_RATE_COUNT (BCAST_RATE * DURATION), IDLE_N (10000), SETTLE (1),
#        BUILD_DIR (build), BASE_PORT (18431: six ports from it), PEERS_ONLY (0),
#        CHECK_LOAD (1: first run bench/ws_load_check.py, ws_load's own tests),
#        TERN_ECHO_BIN / TERN_BCAST_BIN (use these binaries instead of building
#        build/examples/ws_echo and bench/tern_ws_bench)
#
# Raw results: bench/out/ws/ (runs.tsv: one line per measured run; load/: ws_load's
# output per run; summary.txt; env.txt; server logs; build.log). Each run replaces the
# last. Needs cc, pkg-config, libwebsockets-dev, node and npm (ws is installed from the
# lock file into bench/peers/node/node_modules), python3, taskset, 2 CPUs; cmake and
# cargo for tern's part.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
ECHO_CONNS=${ECHO_CONNS:-100}
ECHO_WINDOWS=${ECHO_WINDOWS:-"1 8"}
BCAST_CONNS=${BCAST_CONNS:-1000}
BCAST_SECONDS=${BCAST_SECONDS:-$DURATION}
BCAST_RATE=${BCAST_RATE:-40}
BCAST_RATE_COUNT=${BCAST_RATE_COUNT:-$((BCAST_RATE * DURATION))}
IDLE_N=${IDLE_N:-10000}
SETTLE=${SETTLE:-1}
BUILD_DIR=${BUILD_DIR:-build}
BASE_PORT=${BASE_PORT:-18431}
PEERS_ONLY=${PEERS_ONLY:-0}
CHECK_LOAD=${CHECK_LOAD:-1}
TERN_ECHO_BIN=${TERN_ECHO_BIN:-}
TERN_BCAST_BIN=${TERN_BCAST_BIN:-}
OUT=bench/out/ws
NODE_DIR=bench/peers/node

no_args_but_help "$@"

if [ "$PEERS_ONLY" = 1 ]; then SERVERS=(lws node); else SERVERS=(tern lws node); fi
PEERS=(lws node)
read -ra WINDOWS <<<"$ECHO_WINDOWS"
[ "${#WINDOWS[@]}" -gt 0 ] || die "ECHO_WINDOWS is empty"
positive_ints DURATION ROUNDS ECHO_CONNS BCAST_CONNS BCAST_SECONDS BCAST_RATE BCAST_RATE_COUNT IDLE_N \
    SETTLE BASE_PORT
for w in "${WINDOWS[@]}"; do [[ $w =~ ^[1-9][0-9]*$ ]] || die "ECHO_WINDOWS holds '$w', not a positive integer"; done
[[ $PEERS_ONLY =~ ^[01]$ ]] || die "PEERS_ONLY must be 0 or 1"
[[ $CHECK_LOAD =~ ^[01]$ ]] || die "CHECK_LOAD must be 0 or 1"

need taskset "apt-get install util-linux"
need cc "apt-get install gcc"
need pkg-config "apt-get install pkg-config"
need node "apt-get install nodejs"
need npm "apt-get install npm"
need getconf "apt-get install libc-bin"
[ "$CHECK_LOAD" = 0 ] || need python3 "apt-get install python3 (or CHECK_LOAD=0)"
pkg-config --exists libwebsockets || die "libwebsockets is missing: apt-get install libwebsockets-dev"
if [ "$PEERS_ONLY" = 0 ] && { [ -z "$TERN_ECHO_BIN" ] || [ -z "$TERN_BCAST_BIN" ]; }; then
    need cmake "apt-get install cmake (or PEERS_ONLY=1)"
fi
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on CPU 0, ws_load on CPU 1); nproc says $(nproc)"
ulimit -n $((IDLE_N * 2 + 2048)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((IDLE_N + 1024)) ] ||
    die "open-file limit $(ulimit -n) is too low for $IDLE_N connections (hard limit $(ulimit -Hn)); lower IDLE_N"

# --- build ---------------------------------------------------------------------------
rm -rf "$OUT"
mkdir -p "$OUT/load"
: >"$OUT/build.log"
LOAD_BIN=$(build_c ws_load bench/ws_load.c)
read -ra LWS_FLAGS <<<"$(pkg-config --cflags --libs libwebsockets)"
LWS_ECHO_BIN=$(build_c lws_echo bench/peers/lws_echo.c "${LWS_FLAGS[@]}")
LWS_BCAST_BIN=$(build_c lws_broadcast bench/peers/lws_broadcast.c "${LWS_FLAGS[@]}" -pthread)

# ws from the lock file, unless node_modules already holds what the lock says
if [ ! -f "$NODE_DIR/node_modules/.package-lock.json" ] ||
    [ "$NODE_DIR/package-lock.json" -nt "$NODE_DIR/node_modules/.package-lock.json" ]; then
    echo "npm ci in $NODE_DIR (log: $OUT/build.log)"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund) >>"$OUT/build.log" 2>&1 ||
        { tail -n 20 "$OUT/build.log" >&2; die "npm ci failed"; }
fi

if [ "$PEERS_ONLY" = 0 ]; then
    if [ -z "$TERN_ECHO_BIN" ]; then
        [ -f c-examples/ws_echo.c ] ||
            die "c-examples/ws_echo.c does not exist yet (issue 9); PEERS_ONLY=1 runs the peers alone"
        build_example ws_echo
        TERN_ECHO_BIN=$TERN_BIN
    fi
    if [ -z "$TERN_BCAST_BIN" ]; then
        [ -f "$BUILD_DIR/lib/libtern.so" ] || build_example ws_echo
        libdir=$(cd "$BUILD_DIR/lib" && pwd)
        TERN_BCAST_BIN=$(build_c tern_ws_bench bench/tern_ws_bench.c -Iinclude -L"$libdir" -ltern \
            -Wl,-rpath,"$libdir" -pthread) ||
            die "bench/tern_ws_bench.c does not build: is issue 9's WebSocket API in include/tern.h? (PEERS_ONLY=1 runs the peers alone)"
    fi
    for b in "$TERN_ECHO_BIN" "$TERN_BCAST_BIN"; do [ -x "$b" ] || die "$b is not an executable"; done
fi

# ws_load's own checks: framing, masking, validation, loss and order counting, against
# scripted servers (bench/ws_load_check.py, about 10 s)
if [ "$CHECK_LOAD" = 1 ]; then
    echo "checking ws_load (bench/ws_load_check.py; log: $OUT/ws_load_check.txt)"
    python3 bench/ws_load_check.py "$LOAD_BIN" >"$OUT/ws_load_check.txt" 2>&1 ||
        { grep -v '^ok' "$OUT/ws_load_check.txt" >&2; die "ws_load failed its own checks"; }
fi

# --- servers ---------------------------------------------------------------------------
trap 'hold_cleanup; stop_all_servers' EXIT
trap 'exit 130' INT TERM

# port_of SERVER KIND (echo | bcast)
port_of() {
    local i
    case $1 in tern) i=0 ;; lws) i=2 ;; node) i=4 ;; esac
    [ "$2" = echo ] || i=$((i + 1))
    echo $((BASE_PORT + i))
}

# start_server SERVER KIND: pinned to CPU 0, listening; sets PID, PORT and LOG.
start_server() {
    local server=$1 kind=$2 cmd
    PORT=$(port_of "$server" "$kind")
    ! port_open "$PORT" || die "something already listens on 127.0.0.1:$PORT (set BASE_PORT)"
    case $server/$kind in
    tern/echo) cmd=("$TERN_ECHO_BIN" "$PORT") ;;
    tern/bcast) cmd=("$TERN_BCAST_BIN" "$PORT") ;;
    lws/echo) cmd=("$LWS_ECHO_BIN" "$PORT") ;;
    lws/bcast) cmd=("$LWS_BCAST_BIN" "$PORT") ;;
    node/echo) cmd=(node "$NODE_DIR/echo.js" "$PORT") ;;
    node/bcast) cmd=(node "$NODE_DIR/broadcast.js" "$PORT") ;;
    esac
    LOG=$OUT/$server-$kind.log
    start_pinned "$server" 0 "$LOG" "${cmd[@]}"
    wait_port "$PORT" || { server_alive "$server" "$LOG"; die "$server does not listen on $PORT"; }
    server_alive "$server" "$LOG"
    PID=${SERVER_PID[$server]}
}

# --- runs --------------------------------------------------------------------------------
COLUMNS=(round case server value cpu_us p50_us p99_us client_cpu errors lost close_timeouts published_per_s)
(
    IFS=$'\t'
    echo "${COLUMNS[*]}"
) >"$OUT/runs.tsv"

# kv KEY FILE: the value of KEY in the "result" line of FILE ("nan" if absent).
kv() {
    awk -v k="$1" '$1 == "result" { for (i = 2; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) v = substr($i, n + 1) } }
        END { print (v == "" ? "nan" : v) }' "$2"
}

# sum0 A B: A + B, where "nan" counts as 0.
sum0() {
    awk -v a="$1" -v b="$2" 'BEGIN { print ((a "") == "nan" ? 0 : a) + ((b "") == "nan" ? 0 : b) }'
}

# record ROUND CASE SERVER VALUE RAW: one line in runs.tsv from ws_load's result in RAW.
record() {
    local raw=$5 errors lost
    errors=$(sum0 "$(kv errors "$raw")" "$(kv closed_early "$raw")")
    lost=$(sum0 "$(kv lost "$raw")" "$(kv reordered "$raw")")
    local cpu
    cpu=$(kv server_cpu_us_per_msg "$raw")
    [ "$cpu" != nan ] || cpu=$(kv server_cpu_us_per_delivery "$raw")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$cpu" \
        "$(kv p50_us "$raw")" "$(kv p99_us "$raw")" "$(kv client_cpu_pct "$raw")" "$errors" "$lost" \
        "$(kv close_timeouts "$raw")" "$(kv published_per_s "$raw")" >>"$OUT/runs.tsv"
}

# problems RAW: " (errors N, lost M, ...)" when ws_load saw any, else nothing.
problems() {
    awk '$1 == "result" { for (i = 2; i <= NF; i++) { split($i, kv, "=")
            if (kv[1] ~ /^(errors|closed_early|lost|reordered|close_timeouts)$/ && kv[2] > 0) s = s sep kv[1] " " kv[2]; if (s != "") sep = ", " } }
        END { if (s != "") printf "  (%s)", s }' "$1"
}

# load ROUND CASE SERVER ARGS...: one measured ws_load run against PID, from CPU 1.
load() {
    local round=$1 case=$2 server=$3
    shift 3
    local raw=$OUT/load/r$round-$case-$server.txt
    server_alive "$server" "$LOG"
    taskset -c 1 "$LOAD_BIN" "$@" -q -P "$PID" >"$raw" 2>&1 || true
    server_alive "$server" "$LOG"
    grep -q '^result ' "$raw" || die "ws_load gave no result against $server ($case); see $raw"
    RAW=$raw
}

run_echo() {
    local round=$1 server=$2 w
    start_server "$server" echo
    taskset -c 1 "$LOAD_BIN" echo "$PORT" -c "$ECHO_CONNS" -d 1 -q >"$OUT/load/warmup-echo-$server.txt" 2>&1 ||
        die "echo warm-up against $server failed; see $OUT/load/warmup-echo-$server.txt"
    for w in "${WINDOWS[@]}"; do
        load "$round" "echo$w" "$server" echo "$PORT" -c "$ECHO_CONNS" -d "$DURATION" -w "$w"
        record "$round" "echo$w" "$server" "$(kv msg_per_s "$RAW")" "$RAW"
        printf '  round %s  %-28s %-5s %10s msg/s  %6s us CPU/msg  p99 %6s ms  ws_load CPU %3s%%%s\n' "$round" \
            "echo c=$ECHO_CONNS w=$w" "$server" "$(kfmt "$(kv msg_per_s "$RAW")")" \
            "$(num "$(kv server_cpu_us_per_msg "$RAW")" %.2f)" "$(ms "$(kv p99_us "$RAW")")" \
            "$(kv client_cpu_pct "$RAW")" "$(problems "$RAW")"
    done
    stop_server "$server"
}

run_bcast() {
    local round=$1 server=$2 warm=$OUT/load/warmup-bcast-$2.txt count rate
    start_server "$server" bcast
    taskset -c 1 "$LOAD_BIN" broadcast "$PORT" -c "$BCAST_CONNS" -r 0 -n 100 -q >"$warm" 2>&1 ||
        die "broadcast warm-up against $server failed; see $warm"
    # COUNT for about BCAST_SECONDS at the rate the warm-up showed
    rate=$(kv deliveries_per_s "$warm")
    count=$(awk -v r="$rate" -v s="$BCAST_SECONDS" -v c="$BCAST_CONNS" 'BEGIN {
        n = int(r * s / c); if (n < 100) n = 100; if (n > 1000000) n = 1000000; print n }')
    load "$round" bmax "$server" broadcast "$PORT" -c "$BCAST_CONNS" -r 0 -n "$count"
    record "$round" bmax "$server" "$(kv deliveries_per_s "$RAW")" "$RAW"
    printf '  round %s  %-28s %-5s %10s deliveries/s  %6s us CPU/delivery  ws_load CPU %3s%%%s\n' "$round" \
        "broadcast max rate" "$server" "$(kfmt "$(kv deliveries_per_s "$RAW")")" \
        "$(num "$(kv server_cpu_us_per_delivery "$RAW")" %.2f)" "$(kv client_cpu_pct "$RAW")" "$(problems "$RAW")"
    load "$round" bfixed "$server" broadcast "$PORT" -c "$BCAST_CONNS" -r "$BCAST_RATE" -n "$BCAST_RATE_COUNT"
    record "$round" bfixed "$server" "$(kv deliveries_per_s "$RAW")" "$RAW"
    printf '  round %s  %-28s %-5s %10s deliveries/s  p50 %6s ms  p99 %6s ms  published %s/s%s\n' "$round" \
        "broadcast $BCAST_RATE msg/s" "$server" "$(kfmt "$(kv deliveries_per_s "$RAW")")" \
        "$(ms "$(kv p50_us "$RAW")")" "$(ms "$(kv p99_us "$RAW")")" "$(num "$(kv published_per_s "$RAW")" %.1f)" \
        "$(problems "$RAW")"
    stop_server "$server"
}

run_idle() {
    local round=$1 server=$2 raw=$OUT/load/r$1-idle-$2.txt before after bytes
    start_server "$server" echo
    sleep 1 # let the server (Node above all) finish starting up before the baseline
    before=$(rss_kb "$PID")
    hold_start "$IDLE_N" "$raw" "$OUT/load/r$round-idle-$server.err" \
        taskset -c 1 "$LOAD_BIN" idle "$PORT" -c "$IDLE_N" -q ||
        die "$server: ws_load idle said '$(head -n 1 "$raw")', not 'ready $IDLE_N'; see $OUT/load/r$round-idle-$server.err"
    sleep "$SETTLE"
    server_alive "$server" "$LOG"
    after=$(rss_kb "$PID")
    hold_stop
    bytes=$(((after - before) * 1024 / IDLE_N))
    record "$round" idle "$server" "$bytes" "$raw"
    printf '  round %s  %-28s %-5s %10s bytes per idle connection (RSS %s -> %s KiB)%s\n' "$round" \
        "idle x$IDLE_N" "$server" "$bytes" "$before" "$after" "$(problems "$raw")"
    stop_server "$server"
}

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
    echo "kernel: $(uname -r), nproc: $(nproc), CLK_TCK: $(getconf CLK_TCK)"
    echo "libwebsockets: $(pkg-config --modversion libwebsockets)"
    echo "node: $(node --version), ws: $(node -p "require('./$NODE_DIR/node_modules/ws/package.json').version")"
    echo "cc: $(cc --version | head -n 1)"
    echo "servers: ${SERVERS[*]}; DURATION=$DURATION ROUNDS=$ROUNDS ECHO_CONNS=$ECHO_CONNS ECHO_WINDOWS='$ECHO_WINDOWS'"
    echo "BCAST_CONNS=$BCAST_CONNS BCAST_SECONDS=$BCAST_SECONDS BCAST_RATE=$BCAST_RATE BCAST_RATE_COUNT=$BCAST_RATE_COUNT"
    echo "IDLE_N=$IDLE_N SETTLE=$SETTLE"
    [ "$PEERS_ONLY" = 1 ] || echo "tern: $TERN_ECHO_BIN, $TERN_BCAST_BIN"
} >"$OUT/env.txt"

secs=$(((${#WINDOWS[@]} * DURATION + 4 + BCAST_SECONDS + BCAST_RATE_COUNT / BCAST_RATE + 8 + IDLE_N / 2000 + 6) *
    ${#SERVERS[@]} * ROUNDS))
echo "servers: ${SERVERS[*]}; $ROUNDS round(s), about $((secs / 60 + 1)) min"
for r in $(seq "$ROUNDS"); do
    for s in "${SERVERS[@]}"; do run_echo "$r" "$s"; done
    for s in "${SERVERS[@]}"; do run_bcast "$r" "$s"; done
    for s in "${SERVERS[@]}"; do run_idle "$r" "$s"; done
done

# --- summary ---------------------------------------------------------------------------
# row LABEL CASE COLUMN FORMAT: medians of tern, lws, node and the ratios tern/peer.
row() {
    local label=$1 case=$2 col=$3 fmt=$4 t l n
    t=$(median "$case" tern "$col")
    l=$(median "$case" lws "$col")
    n=$(median "$case" node "$col")
    printf '%-52s %9s %9s %9s  %8s %9s\n' "$label" "$(fmtv "$t" "$fmt")" "$(fmtv "$l" "$fmt")" \
        "$(fmtv "$n" "$fmt")" "$(ratio "$t" "$l")" "$(ratio "$t" "$n")"
}

fmtv() {
    case $2 in
    k) kfmt "$1" ;;
    ms) ms "$1" ;;
    *) num "$1" "$2" ;;
    esac
}

# verdict NAME VALUE OK: a target line.
verdict() {
    printf '  %-58s %s\n' "$1: $2" "$([ "$3" = 1 ] && echo met || echo NOT met)"
}

{
    echo
    echo "medians of $ROUNDS round(s); server on CPU 0, ws_load on CPU 1; ratios are tern/peer"
    printf '%-52s %9s %9s %9s  %8s %9s\n' "" tern lws node tern/lws tern/node
    for w in "${WINDOWS[@]}"; do
        row "echo c=$ECHO_CONNS w=$w: messages/s" "echo$w" value k
        row "echo c=$ECHO_CONNS w=$w: server CPU us/message" "echo$w" cpu_us %.2f
        row "echo c=$ECHO_CONNS w=$w: p99 round trip ms" "echo$w" p99_us ms
        row "echo c=$ECHO_CONNS w=$w: ws_load CPU %" "echo$w" client_cpu %.0f
    done
    row "broadcast x$BCAST_CONNS, max rate: deliveries/s" bmax value k
    row "broadcast x$BCAST_CONNS, max rate: server CPU us/delivery" bmax cpu_us %.2f
    row "broadcast x$BCAST_CONNS, max rate: ws_load CPU %" bmax client_cpu %.0f
    row "broadcast x$BCAST_CONNS at $BCAST_RATE msg/s: p50 latency ms" bfixed p50_us ms
    row "broadcast x$BCAST_CONNS at $BCAST_RATE msg/s: p99 latency ms" bfixed p99_us ms
    row "idle WebSocket connection (x$IDLE_N): bytes" idle value %.0f

    bad=$(awk -F'\t' 'NR > 1 && ($9 > 0 || $10 > 0 || $11 > 0)' "$OUT/runs.tsv" | wc -l)
    [ "$bad" = 0 ] || echo "note: $bad run(s) had errors, losses or close timeouts; see $OUT/runs.tsv and $OUT/load/"
    awk -F'\t' -v r="$BCAST_RATE" 'NR > 1 && $2 == "bfixed" && $12 != "nan" && $12 < 0.98 * r {
        printf "note: %s published only %.1f of %s msg/s in round %s (behind: its latency is a queue)\n", $3, $12, r, $1 }' \
        "$OUT/runs.tsv"
    for c in $(printf 'echo%s ' "${WINDOWS[@]}") bmax; do
        for s in "${SERVERS[@]}"; do
            u=$(median "$c" "$s" client_cpu)
            awk -v u="$u" 'BEGIN { exit !(u != "nan" && u >= 90) }' || continue
            echo "note: ws_load ran at $u% CPU in $c against $s: that rate is (near) the client's limit; compare CPU per message"
        done
    done

    echo
    if [ "$PEERS_ONLY" = 1 ]; then
        echo "targets (issue 9): tern not measured (PEERS_ONLY=1)"
    else
        echo "targets (issue 9):"
        t=$(median echo1 tern value)
        l=$(median echo1 lws value)
        verdict "echo w=1 messages/s >= 1.5x libwebsockets'" "$(ratio "$t" "$l")x" \
            "$(awk -v t="$t" -v l="$l" 'BEGIN { print (t != "nan" && l != "nan" && t >= 1.5 * l) ? 1 : 0 }')"
        tc=$(median echo1 tern cpu_us)
        lc=$(median echo1 lws cpu_us)
        echo "    (by CPU per message: libwebsockets/tern = $(ratio "$lc" "$tc")x)"
        t=$(median bmax tern value)
        verdict "broadcast >= 2,000,000 deliveries/s" "$(kfmt "$t")" \
            "$(awk -v t="$t" 'BEGIN { print (t != "nan" && t >= 2e6) ? 1 : 0 }')"
        t=$(median idle tern value)
        verdict "<= 1024 bytes per idle WebSocket connection" "$t B" \
            "$(awk -v t="$t" 'BEGIN { print (t != "nan" && t <= 1024) ? 1 : 0 }')"
    fi
    echo
    echo "raw results: $OUT/ (runs.tsv, load/, env.txt)"
} | tee "$OUT/summary.txt"
