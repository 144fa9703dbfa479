#!/usr/bin/env bash
# Static files: tern (c-examples/static_server) against nginx (sendfile on), both serving
# the same directory. Method of /work/shared/BENCH.md: server pinned to CPU 0, load
# pinned to CPU 1, tern and nginx interleaved in every round, ROUNDS rounds, medians
# and ratios tern/nginx.
#
# Cases:
#   small: GET /1k.bin (1 KiB), wrk -t1 -c50 keep-alive for DURATION s: req/s and the
#          server's CPU µs per request (utime+stime from /proc/PID/stat / requests).
#          Target (issue 4): tern ≥ 1.6x nginx's req/s.
#   big:   GET /big.bin (100 MiB, random bytes) with curl -o /dev/null, BIG_RUNS times
#          in a row per round: MB/s (curl's speed_download, 10^6 bytes/s).
#          Target: tern ≥ 0.95x nginx's MB/s.
#
# nginx runs as ONE process (master_process off), access_log off, sendfile on,
# tcp_nopush on, keepalive_requests 10^6, and open_file_cache OFF (nginx's default: each
# request opens and fstats the file). NGINX_OPEN_FILE_CACHE=1 turns it on
# (open_file_cache max=1000 inactive=20s, valid 1s like tern's cache) for a comparison
# with both servers caching open files.
#
#   bench/static.sh
#   env: DURATION (seconds per wrk run, default 10), ROUNDS (default 3), BIG_RUNS (curl
#        downloads of the 100 MiB file per server per round, default 3), BUILD_DIR
#        (default build), TERN_PORT (18421), NGINX_PORT (18422), NGINX_OPEN_FILE_CACHE (0)
#
# Raw results: bench/out/static/ (runs.tsv, wrk/, summary.txt, nginx.conf, logs).
# Needs nginx (Debian nginx-light), wrk, curl, taskset, 2 CPUs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
BIG_RUNS=${BIG_RUNS:-3}
BUILD_DIR=${BUILD_DIR:-build}
TERN_PORT=${TERN_PORT:-18421}
NGINX_PORT=${NGINX_PORT:-18422}
NGINX_OPEN_FILE_CACHE=${NGINX_OPEN_FILE_CACHE:-0}
OUT=bench/out/static
SERVERS=(tern nginx)

no_args_but_help "$@"

need nginx "apt-get install nginx-light"
need wrk "apt-get install wrk"
need curl "apt-get install curl"
need taskset "apt-get install util-linux"
need cmake "apt-get install cmake"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on CPU 0, load on CPU 1)"
positive_ints DURATION ROUNDS BIG_RUNS TERN_PORT NGINX_PORT
CLK_TCK=$(getconf CLK_TCK)

# --- build ---------------------------------------------------------------------------
rm -rf "$OUT"
mkdir -p "$OUT/wrk"
build_example static_server

TMP=$(mktemp -d)
TERN_PID=
NGINX_PID=
cleanup() {
    local p
    for p in "$TERN_PID" "$NGINX_PID"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for p in "$TERN_PID" "$NGINX_PID"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the files -------------------------------------------------------------------------
ROOT=$TMP/www
mkdir -p "$ROOT"
head -c 1024 /dev/urandom >"$ROOT/1k.bin"
head -c $((100 << 20)) /dev/urandom >"$ROOT/big.bin"
SUM_1K=$(sha256sum <"$ROOT/1k.bin")
SUM_BIG=$(sha256sum <"$ROOT/big.bin")

mkdir -p "$TMP/nginx/tmp"
if [ "$NGINX_OPEN_FILE_CACHE" = 1 ]; then
    OFC="open_file_cache max=1000 inactive=20s; open_file_cache_valid 1s;"
else
    OFC="open_file_cache off;"
fi
cat >"$TMP/nginx/nginx.conf" <<CONF
# written by bench/static.sh; one process does all the work (no master, no workers)
master_process off;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $PWD/$OUT/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
$(nginx_temp_paths "$TMP/nginx")
    types { application/octet-stream bin; }
    sendfile on;
    tcp_nopush on;
    $OFC
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $ROOT;
    }
}
CONF
cp "$TMP/nginx/nginx.conf" "$OUT/nginx.conf"

pid_of() { if [ "$1" = tern ]; then echo "$TERN_PID"; else echo "$NGINX_PID"; fi; }
port_of() { if [ "$1" = tern ]; then echo "$TERN_PORT"; else echo "$NGINX_PORT"; fi; }
alive() { kill -0 "$2" 2>/dev/null || die "$1 (pid $2) died; see $OUT/$1.log"; }

start_server() {
    local name=$1 port pid _
    port=$(port_of "$name")
    ! port_open "$port" || die "something already listens on 127.0.0.1:$port (set ${name^^}_PORT)"
    if [ "$name" = tern ]; then
        taskset -c 0 "$TERN_BIN" "$ROOT" "$TERN_PORT" >"$OUT/tern.log" 2>&1 &
        TERN_PID=$!
        pid=$TERN_PID
    else
        taskset -c 0 nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$PWD/$OUT/nginx-error.log" \
            >"$OUT/nginx.log" 2>&1 &
        NGINX_PID=$!
        pid=$NGINX_PID
    fi
    for _ in $(seq 100); do port_open "$port" && break; sleep 0.05; done
    alive "$name" "$pid"
    port_open "$port" || die "$name does not listen on $port"
}

# check_server NAME: both files byte-exact through curl
check_server() {
    local name=$1 base
    base="http://127.0.0.1:$(port_of "$1")"
    [ "$(curl -sS --max-time 10 "$base/1k.bin" | sha256sum)" = "$SUM_1K" ] || die "$name: /1k.bin differs"
    [ "$(curl -sS --max-time 60 "$base/big.bin" | sha256sum)" = "$SUM_BIG" ] || die "$name: /big.bin differs"
    echo "$name serves both files byte-exact on $base"
}

printf 'round\tcase\tserver\trequests\tvalue\tcpu_us_per_req\terrors\n' >"$OUT/runs.tsv"

# run_small ROUND SERVER: wrk c=50 keep-alive on the 1 KiB file
run_small() {
    local round=$1 s=$2 pid raw t0 t1 requests rps errors cpu
    pid=$(pid_of "$s")
    raw=$OUT/wrk/r$round-small-$s.txt
    alive "$s" "$pid"
    t0=$(cpu_ticks "$pid")
    taskset -c 1 wrk -t1 -c50 -d"${DURATION}s" "http://127.0.0.1:$(port_of "$s")/1k.bin" >"$raw" 2>&1 ||
        die "wrk failed against $s, see $raw"
    t1=$(cpu_ticks "$pid")
    read -r requests rps errors < <(awk '
        / requests in / { req = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { err += $NF }
        END { printf "%d %.2f %d\n", req, rps, err }' "$raw")
    [ "$requests" -gt 0 ] || die "wrk completed no requests against $s; see $raw"
    cpu=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.3f", t * 1e6 / hz / n }')
    printf '%s\tsmall\t%s\t%s\t%s\t%s\t%s\n' "$round" "$s" "$requests" "$rps" "$cpu" "$errors" >>"$OUT/runs.tsv"
    printf '  round %s  1 KiB c=50 keep-alive  %-5s %9.0f req/s  %6.2f us CPU/req%s\n' "$round" "$s" \
        "$rps" "$cpu" "$([ "$errors" = 0 ] || echo "  (errors $errors)")"
}

# run_big ROUND SERVER: BIG_RUNS sequential downloads of the 100 MiB file
run_big() {
    local round=$1 s=$2 i speed size
    for i in $(seq "$BIG_RUNS"); do
        alive "$s" "$(pid_of "$s")"
        read -r speed size < <(taskset -c 1 curl -sS --max-time 120 -o /dev/null \
            -w '%{speed_download} %{size_download}\n' "http://127.0.0.1:$(port_of "$s")/big.bin") ||
            die "curl failed against $s"
        [ "$size" = $((100 << 20)) ] || die "$s: downloaded $size bytes of big.bin"
        printf '%s\tbig\t%s\t1\t%s\t\t0\n' "$round" "$s" \
            "$(awk -v b="$speed" 'BEGIN { printf "%.1f", b / 1e6 }')" >>"$OUT/runs.tsv"
        printf '  round %s  100 MiB download #%s   %-5s %9.1f MB/s\n' "$round" "$i" "$s" \
            "$(awk -v b="$speed" 'BEGIN { printf "%.1f", b / 1e6 }')"
    done
}

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
    echo "kernel: $(uname -r), nproc: $(nproc)"
    echo "nginx: $(nginx -v 2>&1); open_file_cache: $([ "$NGINX_OPEN_FILE_CACHE" = 1 ] && echo on || echo off)"
    echo "DURATION=$DURATION ROUNDS=$ROUNDS BIG_RUNS=$BIG_RUNS"
} >"$OUT/env.txt"

for s in "${SERVERS[@]}"; do
    start_server "$s"
    check_server "$s"
    taskset -c 1 wrk -t1 -c50 -d1s "http://127.0.0.1:$(port_of "$s")/1k.bin" >/dev/null 2>&1 ||
        die "wrk warm-up against $s failed"
done
echo "tern pid $TERN_PID, nginx pid $NGINX_PID; $ROUNDS rounds"

for r in $(seq "$ROUNDS"); do
    for s in "${SERVERS[@]}"; do run_small "$r" "$s"; done
    for s in "${SERVERS[@]}"; do run_big "$r" "$s"; done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "met" : "NOT met" }'; }
ts=$(median small tern value)
ns=$(median small nginx value)
tc=$(median small tern cpu_us_per_req)
nc=$(median small nginx cpu_us_per_req)
tb=$(median big tern value)
nb=$(median big nginx value)
rs=$(ratio "$ts" "$ns")
rb=$(ratio "$tb" "$nb")
{
    echo
    echo "medians of $ROUNDS round(s) (DURATION=${DURATION}s, $BIG_RUNS downloads per round; nginx open_file_cache $([ "$NGINX_OPEN_FILE_CACHE" = 1 ] && echo on || echo off)):"
    printf '  %-34s %12s %12s %8s\n' case tern nginx tern/nginx
    printf '  %-34s %12.0f %12.0f %8s   target >= 1.6: %s\n' "1 KiB c=50 keep-alive req/s" "$ts" "$ns" "$rs" "$(verdict "$rs" 1.6)"
    printf '  %-34s %12.2f %12.2f %8s\n' "1 KiB c=50 CPU us/req" "$tc" "$nc" "$(ratio "$tc" "$nc")"
    printf '  %-34s %12.1f %12.1f %8s   target >= 0.95: %s\n' "100 MiB download MB/s" "$tb" "$nb" "$rb" "$(verdict "$rb" 0.95)"
} | tee "$OUT/summary.txt"
