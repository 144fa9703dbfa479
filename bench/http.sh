#!/usr/bin/env bash
# HTTP throughput and cost: tern (c-examples/hello_server) against nginx, both answering
# every request with "hello\n" (Content-Type text/plain), and against the raw epoll floor
# (bench/floor.c: one recv and one send per request, parsing nothing). Method of
# /work/shared/BENCH.md: server pinned to CPU 0, wrk -t1 pinned to CPU 1, the servers
# interleaved in every round (tern, nginx, floor, tern, nginx, floor, ...), ROUNDS rounds,
# medians and ratios tern/nginx and tern/floor.
#
# Cases: keep-alive c=50, keep-alive c=500, `Connection: close` c=50 and c=500. Per run:
# req/s and p99 latency as wrk reports them (--latency), and the server's CPU time per
# request: utime+stime of the server process (/proc/PID/stat, all its threads) read
# before and after the run, divided by the requests wrk completed. CPU per request does
# not depend on how fast the client is.
#
# The floor answers every read with one response, so it only takes part in the
# keep-alive cases (wrk sends one request at a time per connection). BENCH.md's target:
# tern's CPU per keep-alive request at most 1.05x the floor's.
#
# Idle case (default; --no-idle skips it): keep-alive c=50 without, then with IDLE_N
# (10,000) idle keep-alive connections open (bench/idle_clients.py, each made one request
# and went quiet). BENCH.md: tern's req/s with them must stay within 5% of without.
#
# --syscalls: after the rest, attaches `strace -c -f` to each server during a short
# keep-alive c=50 run and prints syscalls per request (strace slows the server a lot; the
# count per request is what matters, not the rate).
#
# nginx runs as ONE process: `master_process off` (worker_processes is then ignored), so
# the process whose CPU time is read is the one accepting, reading and writing. It is
# the same event loop an nginx worker runs. access_log off, keepalive_requests 10^6.
#
#   bench/http.sh [--syscalls] [--no-idle]
#   env: DURATION (seconds per wrk run, default 10), ROUNDS (default 3),
#        IDLE_N (default 10000), SYSCALL_DURATION (default 3), BUILD_DIR (default build),
#        TERN_PORT (18411), NGINX_PORT (18412), FLOOR_PORT (18413),
#        CASES (default "ka50 ka500 close50 close500": the wrk cases to run)
#
# Raw results: bench/out/http/ (runs.tsv: one line per wrk run; wrk/: wrk's output;
# summary.txt: the table; server logs; syscalls-*.txt). Each run replaces the last.
# Needs nginx (Debian nginx-light), wrk, curl, taskset, cc, 2 CPUs; python3 for the idle
# case, strace for --syscalls. Runs as an ordinary user.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
IDLE_N=${IDLE_N:-10000}
SYSCALL_DURATION=${SYSCALL_DURATION:-3}
BUILD_DIR=${BUILD_DIR:-build}
TERN_PORT=${TERN_PORT:-18411}
NGINX_PORT=${NGINX_PORT:-18412}
FLOOR_PORT=${FLOOR_PORT:-18413}
OUT=bench/out/http
SERVERS=(tern nginx floor)
read -ra CASES <<<"${CASES:-ka50 ka500 close50 close500}"
IDLE_SERVERS=(tern nginx)

SYSCALLS=0
IDLE=1
for arg in "$@"; do
    case $arg in
    --syscalls) SYSCALLS=1 ;;
    --no-idle) IDLE=0 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "http.sh: unknown argument '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

need nginx "apt-get install nginx-light"
need wrk "apt-get install wrk"
need curl "apt-get install curl"
need taskset "apt-get install util-linux"
need cmake "apt-get install cmake"
need cc "apt-get install gcc"
need getconf "apt-get install libc-bin"
if [ "$IDLE" = 1 ]; then
    need python3 "apt-get install python3 (or run with --no-idle)"
    need ss "apt-get install iproute2 (or run with --no-idle)"
fi
[ "$SYSCALLS" = 0 ] || need strace "apt-get install strace"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on CPU 0, wrk on CPU 1); nproc says $(nproc)"
for c in "${CASES[@]}"; do
    case $c in ka50 | ka500 | close50 | close500) ;; *) die "CASES holds '$c'; known: ka50 ka500 close50 close500" ;; esac
done
[ "${#CASES[@]}" -gt 0 ] || die "CASES is empty"
positive_ints DURATION ROUNDS IDLE_N SYSCALL_DURATION TERN_PORT NGINX_PORT FLOOR_PORT

CLK_TCK=$(getconf CLK_TCK)
NOFILE=$((IDLE_N * 2 + 2048))
ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$IDLE" = 1 ] && [ "$(ulimit -n)" -lt $((IDLE_N + 1024)) ]; then
    die "open-file limit $(ulimit -n) is too low for $IDLE_N idle connections (hard limit $(ulimit -Hn)); lower IDLE_N or use --no-idle"
fi

# --- build ---------------------------------------------------------------------------
rm -rf "$OUT"
mkdir -p "$OUT/wrk"
build_example hello_server
FLOOR_BIN=$(build_c floor bench/floor.c)
TMP=$(mktemp -d)

# --- processes, and their cleanup ------------------------------------------------------
STRACE_PID=

cleanup() {
    if [ -n "$STRACE_PID" ]; then
        kill "$STRACE_PID" 2>/dev/null || true
        wait "$STRACE_PID" 2>/dev/null || true
    fi
    hold_cleanup
    stop_all_servers
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

write_nginx_conf() {
    local dir=$1 conns
    conns=1024
    [ "$IDLE" = 0 ] || conns=$((IDLE_N + 1024))
    cat >"$dir/nginx.conf" <<CONF
# written by bench/http.sh; one process does all the work (no master, no workers)
master_process off;
daemon off;
pid $dir/nginx.pid;
error_log $PWD/$OUT/nginx-error.log warn;
worker_rlimit_nofile $((conns * 2));
events { worker_connections $conns; }
http {
    access_log off;
$(nginx_temp_paths "$dir")
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { return 200 "hello\n"; }
    }
}
CONF
}

alive() {
    server_alive "$1" "$OUT/$1.log$([ "$1" != nginx ] || echo " and $OUT/nginx-error.log")"
}

# start_server NAME: starts it pinned to CPU 0 (its pid: SERVER_PID[NAME]).
start_server() {
    local name=$1 port
    port=$(port_of "$name")
    ! port_open "$port" || die "something already listens on 127.0.0.1:$port (set ${name^^}_PORT)"
    case $name in
    tern) start_pinned tern 0 "$OUT/tern.log" "$TERN_BIN" "$TERN_PORT" ;;
    nginx) start_pinned nginx 0 "$OUT/nginx.log" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" \
        -e "$PWD/$OUT/nginx-error.log" ;;
    floor) start_pinned floor 0 "$OUT/floor.log" "$FLOOR_BIN" "$FLOOR_PORT" ;;
    esac
    wait_port "$port" || { alive "$name"; die "$name does not listen on $port"; }
    alive "$name"
}

# check_server NAME PORT: one request with curl; must be 200 "hello\n", text/plain.
check_server() {
    local name=$1 port=$2 code ctype
    read -r code ctype < <(curl -sS --max-time 5 -o "$TMP/body" -w '%{http_code} %{content_type}\n' \
        "http://127.0.0.1:$port/") || die "$name: curl http://127.0.0.1:$port/ failed"
    [ "$code" = 200 ] || die "$name answered HTTP $code, not 200"
    [ "$(cat "$TMP/body")" = hello ] && [ "$(wc -c <"$TMP/body")" -eq 6 ] ||
        die "$name answered '$(head -c 100 "$TMP/body")', not 'hello\\n'"
    case $ctype in text/plain*) ;; *) die "$name answered Content-Type '$ctype', not text/plain" ;; esac
    echo "$name answers on 127.0.0.1:$port: 200, text/plain, hello"
}

pid_of() {
    echo "${SERVER_PID[$1]}"
}

port_of() {
    case $1 in
    tern) echo "$TERN_PORT" ;;
    nginx) echo "$NGINX_PORT" ;;
    floor) echo "$FLOOR_PORT" ;;
    esac
}

# case_servers CASE: the servers that take part in it (the floor only in keep-alive).
case_servers() {
    case $1 in
    ka*) echo "${SERVERS[*]}" ;;
    *) echo "${IDLE_SERVERS[*]}" ;;
    esac
}

case_conns() {
    case $1 in
    ka50 | close50 | idle*) echo 50 ;;
    ka500 | close500) echo 500 ;;
    esac
}

case_label() {
    case $1 in
    ka50) echo "keep-alive c=50" ;;
    ka500) echo "keep-alive c=500" ;;
    close50) echo "Connection: close c=50" ;;
    close500) echo "Connection: close c=500" ;;
    idle0) echo "keep-alive c=50, no idle conns" ;;
    idle) echo "keep-alive c=50, $IDLE_N idle conns" ;;
    esac
}

printf 'round\tcase\tserver\tconns\trequests\treq_per_s\tp99_us\tcpu_ticks\tcpu_us_per_req\tsocket_errors\tnon_2xx\n' \
    >"$OUT/runs.tsv"

# run_wrk ROUND CASE SERVER: one wrk run, one line in runs.tsv, one line on stdout.
run_wrk() {
    local round=$1 case=$2 server=$3 pid port conns raw t0 t1
    local requests rps p99 errors non2xx cpu
    pid=$(pid_of "$server")
    port=$(port_of "$server")
    conns=$(case_conns "$case")
    raw=$OUT/wrk/r$round-$case-$server.txt
    local args=(-t1 -c"$conns" -d"${DURATION}s" --latency)
    case $case in close*) args+=(-H 'Connection: close') ;; esac
    alive "$server"
    t0=$(cpu_ticks "$pid")
    taskset -c 1 wrk "${args[@]}" "http://127.0.0.1:$port/" >"$raw" 2>&1 ||
        die "wrk failed against $server, see $raw"
    t1=$(cpu_ticks "$pid")
    alive "$server"
    read -r requests rps p99 errors non2xx < <(wrk_stats "$raw")
    [ "$requests" -gt 0 ] || die "wrk completed no requests against $server; see $raw"
    cpu=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.3f", t * 1e6 / hz / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$case" "$server" "$conns" \
        "$requests" "$rps" "$p99" $((t1 - t0)) "$cpu" "$errors" "$non2xx" >>"$OUT/runs.tsv"
    printf '  round %s  %-34s %-5s %9.0f req/s  p99 %8.0f us  %6.2f us CPU/req%s\n' "$round" \
        "$(case_label "$case")" "$server" "$rps" "$p99" "$cpu" \
        "$([ "$errors$non2xx" = 00 ] || echo "  (socket errors $errors, non-2xx $non2xx)")"
}

# open_idle SERVER: IDLE_N idle keep-alive connections from CPU 1, held until close_idle.
open_idle() {
    local server=$1
    hold_start "$IDLE_N" "$TMP/idle_out" "$OUT/idle_clients.log" \
        taskset -c 1 python3 bench/idle_clients.py "$(port_of "$server")" "$IDLE_N" http ||
        die "$server: idle clients said '$(head -n 1 "$TMP/idle_out")', not 'ready $IDLE_N'; see $OUT/idle_clients.log"
    sleep 1
}

close_idle() {
    hold_stop
    sleep 1
}

# established connections on the server's side of PORT
established() {
    ss -Htn state established "( sport = :$1 )" | wc -l
}

# --- the run ---------------------------------------------------------------------------
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
    echo "kernel: $(uname -r), nproc: $(nproc), CLK_TCK: $CLK_TCK"
    echo "nginx: $(nginx -v 2>&1)"
    echo "wrk: $(wrk --version 2>&1 | head -n 1 || true)"
    echo "cc: $(cc --version | head -n 1)"
    echo "DURATION=$DURATION ROUNDS=$ROUNDS CASES='${CASES[*]}' IDLE=$IDLE IDLE_N=$IDLE_N SYSCALLS=$SYSCALLS"
} >"$OUT/env.txt"

mkdir -p "$TMP/nginx"
write_nginx_conf "$TMP/nginx"
cp "$TMP/nginx/nginx.conf" "$OUT/nginx.conf"
for s in "${SERVERS[@]}"; do
    start_server "$s"
    check_server "$s" "$(port_of "$s")"
    # warm-up, not recorded
    taskset -c 1 wrk -t1 -c50 -d1s "http://127.0.0.1:$(port_of "$s")/" >/dev/null 2>&1 ||
        die "wrk warm-up against $s failed"
done

runs=0
for c in "${CASES[@]}"; do
    read -ra in_case <<<"$(case_servers "$c")"
    runs=$((runs + ${#in_case[@]} * ROUNDS))
done
[ "$IDLE" = 0 ] || runs=$((runs + 2 * ${#IDLE_SERVERS[@]} * ROUNDS))
echo "tern pid $(pid_of tern), nginx pid $(pid_of nginx), floor pid $(pid_of floor);" \
    "$runs wrk runs of ${DURATION}s (about $((runs * (DURATION + 1) / 60 + 1)) min)"

for r in $(seq "$ROUNDS"); do
    for c in "${CASES[@]}"; do
        for s in $(case_servers "$c"); do
            run_wrk "$r" "$c" "$s"
        done
    done
    if [ "$IDLE" = 1 ]; then
        for s in "${IDLE_SERVERS[@]}"; do
            run_wrk "$r" idle0 "$s"
            open_idle "$s"
            run_wrk "$r" idle "$s"
            n=$(established "$(port_of "$s")")
            [ "$n" -ge "$IDLE_N" ] ||
                echo "  WARNING: $s held only $n established connections after the run (want >= $IDLE_N)"
            close_idle
        done
    fi
done

# --- syscalls per keep-alive request ------------------------------------------------------
declare -A SYSCALL_LINE
if [ "$SYSCALLS" = 1 ]; then
    for s in "${SERVERS[@]}"; do
        pid=$(pid_of "$s")
        taskset -c 0 strace -c -S calls -f -p "$pid" -o "$OUT/syscalls-$s.txt" 2>"$OUT/strace-$s.log" &
        STRACE_PID=$!
        for _ in $(seq 100); do
            grep -q attached "$OUT/strace-$s.log" && break
            kill -0 "$STRACE_PID" 2>/dev/null || die "strace could not attach to $s; see $OUT/strace-$s.log"
            sleep 0.05
        done
        sleep 0.2
        taskset -c 1 wrk -t1 -c50 -d"${SYSCALL_DURATION}s" "http://127.0.0.1:$(port_of "$s")/" \
            >"$OUT/wrk/syscalls-$s.txt" 2>&1 || die "wrk under strace failed against $s"
        sleep 0.2
        kill -INT "$STRACE_PID"
        wait "$STRACE_PID" || true
        STRACE_PID=
        req=$(awk '/ requests in / { print $1 }' "$OUT/wrk/syscalls-$s.txt")
        [ "${req:-0}" -gt 0 ] || die "wrk under strace completed no requests against $s"
        SYSCALL_LINE[$s]=$(awk -v n="$req" '
            $NF == "total" { total = $4; next }
            $1 ~ /^[0-9.]+$/ && NF >= 5 { calls[$NF] = $4; order[++k] = $NF }
            END {
                line = sprintf("%5.2f", total / n); sep = "  ("
                for (i = 1; i <= k && i <= 6; i++) {
                    if (calls[order[i]] / n < 0.005) continue
                    line = line sep sprintf("%s %.2f", order[i], calls[order[i]] / n); sep = ", "
                }
                if (sep == ", ") line = line ")"
                printf "%s  [%d requests]", line, n
            }' "$OUT/syscalls-$s.txt")
    done
fi

# --- summary ---------------------------------------------------------------------------
{
    echo
    echo "medians of $ROUNDS round(s), wrk -t1 ${DURATION}s; server on CPU 0, wrk on CPU 1"
    echo "(floor: bench/floor.c, one recv + one send per request; keep-alive cases only)"
    printf '%-24s %8s %8s %8s %5s  %7s %7s %7s %5s %5s  %7s %7s %7s\n' "" tern nginx floor "" \
        tern nginx floor "" "" tern nginx floor
    printf '%-24s %8s %8s %8s %5s  %7s %7s %7s %5s %5s  %7s %7s %7s\n' case req/s req/s req/s t/n \
        "CPU us" "CPU us" "CPU us" t/n t/f "p99 ms" "p99 ms" "p99 ms"
    for c in "${CASES[@]}"; do
        declare -A rps=() cpu=() p99=()
        for sv in "${SERVERS[@]}"; do
            rps[$sv]=$(median "$c" "$sv" req_per_s)
            cpu[$sv]=$(median "$c" "$sv" cpu_us_per_req)
            p99[$sv]=$(median "$c" "$sv" p99_us)
        done
        printf '%-24s %8s %8s %8s %5s  %7s %7s %7s %5s %5s  %7s %7s %7s\n' "$(case_label "$c")" \
            "$(kfmt "${rps[tern]}")" "$(kfmt "${rps[nginx]}")" "$(kfmt "${rps[floor]}")" \
            "$(ratio "${rps[tern]}" "${rps[nginx]}")" \
            "$(num "${cpu[tern]}" %.2f)" "$(num "${cpu[nginx]}" %.2f)" "$(num "${cpu[floor]}" %.2f)" \
            "$(ratio "${cpu[tern]}" "${cpu[nginx]}")" "$(ratio "${cpu[tern]}" "${cpu[floor]}")" \
            "$(ms "${p99[tern]}")" "$(ms "${p99[nginx]}")" "$(ms "${p99[floor]}")"
    done
    echo "CPU us = server CPU µs per request; t/n = tern/nginx, t/f = tern/floor" \
        "(BENCH.md: keep-alive CPU t/f <= 1.05 and below every peer)"
    errs=$(awk -F'\t' 'NR > 1 && ($10 > 0 || $11 > 0)' "$OUT/runs.tsv" | wc -l)
    [ "$errs" = 0 ] || echo "note: $errs run(s) had socket errors or non-2xx answers; see $OUT/runs.tsv"
    if [ "$IDLE" = 1 ]; then
        echo
        echo "keep-alive c=50 with $IDLE_N idle keep-alive connections open (BENCH.md: tern within 5%)"
        printf '%-8s %12s %12s %9s  %15s %15s\n' server "req/s none" "req/s idle" idle/none \
            "CPU us/req none" "CPU us/req idle"
        for s in "${IDLE_SERVERS[@]}"; do
            a=$(median idle0 "$s" req_per_s)
            b=$(median idle "$s" req_per_s)
            printf '%-8s %12s %12s %9s  %15s %15s\n' "$s" "$(kfmt "$a")" "$(kfmt "$b")" "$(ratio "$b" "$a")" \
                "$(num "$(median idle0 "$s" cpu_us_per_req)" %.2f)" "$(num "$(median idle "$s" cpu_us_per_req)" %.2f)"
        done
    fi
    if [ "$SYSCALLS" = 1 ]; then
        echo
        echo "syscalls per keep-alive request (strace -c -f, wrk c=50 ${SYSCALL_DURATION}s; BENCH.md: tern at most 2)"
        for s in "${SERVERS[@]}"; do
            printf '%-8s %s\n' "$s" "${SYSCALL_LINE[$s]}"
        done
    fi
    echo
    echo "raw results: $OUT/ (runs.tsv, wrk/, env.txt)"
} | tee "$OUT/summary.txt"
