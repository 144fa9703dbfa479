#!/usr/bin/env bash
# TLS: tern (c-examples/https_server) against Debian's nginx with OpenSSL, the same
# certificate (ECDSA P-256, made here) and the same suite: TLS 1.3, X25519 +
# TLS_AES_128_GCM_SHA256 (pinned on both servers). Method of /work/shared/BENCH.md:
# server pinned to CPU 0, load pinned to CPU 1, tern and nginx interleaved in every
# round, ROUNDS rounds, medians and ratios tern/nginx.
#
# Cases:
#   full:    new TLS connections per second, each a full handshake (openssl s_time
#            -new, one client process): handshakes/s and server CPU µs per handshake.
#   resumed: the same resuming one session ticket (bench/tls_resume.py: openssl s_time
#            -reuse does not resume TLS 1.3); every connection must resume.
#   ka50:    keep-alive GET / ("hello\n") over TLS, wrk -t1 -c50 for DURATION s:
#            req/s and the server's CPU µs per request. Target: tern >= 1.2x nginx.
#   big:     GET of a 100 MiB file over TLS with curl, BIG_RUNS times per round: MB/s
#            (10^6 bytes/s). tern reads and encrypts through a bounded buffer (no
#            kTLS); nginx reads and encrypts too (no kTLS configured).
# Targets (issue 10): >= 1.0x nginx on each, >= 1.2x on keep-alive requests.
#
# nginx runs as ONE process (master_process off), access_log off, keepalive_requests
# 10^6, ssl_session_tickets on (its default), ssl_session_cache shared:SSL:1m.
#
#   bench/tls.sh
#   env: DURATION (seconds per run, default 5), ROUNDS (default 3), BIG_RUNS (default
#        3), BUILD_DIR (default build), TERN_PORT (18431), NGINX_PORT (18432)
#
# Raw results: bench/out/tls/ (runs.tsv, summary.txt, nginx.conf, logs).
# Needs nginx, openssl, python3, wrk, curl, taskset, 2 CPUs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
BIG_RUNS=${BIG_RUNS:-3}
BUILD_DIR=${BUILD_DIR:-build}
TERN_PORT=${TERN_PORT:-18431}
NGINX_PORT=${NGINX_PORT:-18432}
OUT=bench/out/tls
SERVERS=(tern nginx)
SUITE=TLS_AES_128_GCM_SHA256

no_args_but_help "$@"

need nginx "apt-get install nginx-light"
need openssl "apt-get install openssl"
need wrk "apt-get install wrk"
need curl "apt-get install curl"
need taskset "apt-get install util-linux"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on CPU 0, load on CPU 1)"
positive_ints DURATION ROUNDS BIG_RUNS TERN_PORT NGINX_PORT
CLK_TCK=$(getconf CLK_TCK)

rm -rf "$OUT"
mkdir -p "$OUT/www/static"
OUT=$(cd "$OUT" && pwd)
trap stop_all_servers EXIT
build_example https_server

# One certificate for both servers, made now (never committed).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$OUT/key.pem" \
    -out "$OUT/cert.pem" -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>>"$OUT/build.log"
head -c $((100 << 20)) /dev/urandom >"$OUT/www/static/big.bin"

cat >"$OUT/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1;
error_log $OUT/nginx-error.log; pid $OUT/nginx.pid;
events { worker_connections 4096; }
http {
$(nginx_temp_paths "$OUT")
    access_log off;
    keepalive_requests 1000000;
    sendfile on;
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        ssl_certificate $OUT/cert.pem;
        ssl_certificate_key $OUT/key.pem;
        ssl_protocols TLSv1.3;
        ssl_conf_command Ciphersuites $SUITE;
        ssl_session_cache shared:SSL:1m;
        location = / { default_type text/plain; return 200 "hello\n"; }
        location /static/ { alias $OUT/www/static/; }
    }
}
EOF

start_server() {
    case $1 in
    tern) TLS_CIPHERSUITES=$SUITE start_pinned tern 0 "$OUT/tern.log" "$TERN_BIN" "$OUT/cert.pem" "$OUT/key.pem" "$TERN_PORT" "$OUT/www/static" ;;
    nginx) start_pinned nginx 0 "$OUT/nginx.log" nginx -p "$OUT" -c "$OUT/nginx.conf" -e "$OUT/nginx-error.log" ;;
    esac
    wait_port "$(port_of "$1")" || die "$1 does not listen; see $OUT/$1.log"
}

port_of() { [ "$1" = tern ] && echo "$TERN_PORT" || echo "$NGINX_PORT"; }

# s_time_case SERVER MODE ROUND: handshakes/s and CPU µs per handshake.
s_time_case() {
    local server=$1 mode=$2 round=$3 port pid t0 t1 raw n secs
    port=$(port_of "$server")
    pid=${SERVER_PID[$server]}
    raw="$OUT/s_time-$server-$mode-$round.txt"
    t0=$(cpu_ticks "$pid")
    if [ "$mode" = new ]; then
        taskset -c 1 openssl s_time -connect "127.0.0.1:$port" -new -tls1_3 -ciphersuites "$SUITE" \
            -time "$DURATION" >"$raw" 2>&1 || true
    else
        taskset -c 1 python3 bench/tls_resume.py "$port" "$DURATION" "$SUITE" >"$raw" 2>&1 || true
        grep -q "($(awk '{ print $1 }' "$raw") resumed)" "$raw" || die "$server did not resume every session; see $raw"
    fi
    t1=$(cpu_ticks "$pid")
    # "NNN connections in T.TTs; R connections/user sec, ..." and "NNN connections in S real seconds"
    read -r n secs < <(awk '/connections in [0-9.]+ real seconds/ { print $1, $4 }' "$raw" | tail -n 1)
    [ -n "${n:-}" ] || die "openssl s_time against $server printed no result; see $raw"
    local case=$([ "$mode" = new ] && echo full || echo resumed)
    awk -v r="$round" -v c="$case" -v s="$server" -v n="$n" -v t="$secs" -v dt=$((t1 - t0)) -v hz="$CLK_TCK" \
        'BEGIN { printf "%s\t%s\t%s\t%.1f\t%.2f\n", r, c, s, n / t, dt / hz * 1e6 / n }' >>"$OUT/runs.tsv"
}

ka_case() {
    local server=$1 round=$2 port pid t0 t1 raw stats
    port=$(port_of "$server")
    pid=${SERVER_PID[$server]}
    raw="$OUT/wrk-$server-$round.txt"
    t0=$(cpu_ticks "$pid")
    taskset -c 1 wrk -t1 -c50 -d"${DURATION}s" --latency "https://127.0.0.1:$port/" >"$raw" 2>&1
    t1=$(cpu_ticks "$pid")
    read -r req rps _ err non <<<"$(wrk_stats "$raw")"
    [ "$err" = 0 ] && [ "$non" = 0 ] || echo "warning: $server ka50 round $round: $err socket errors, $non non-2xx" >&2
    awk -v r="$round" -v s="$server" -v rps="$rps" -v req="$req" -v dt=$((t1 - t0)) -v hz="$CLK_TCK" \
        'BEGIN { printf "%s\tka50\t%s\t%.1f\t%.2f\n", r, s, rps, dt / hz * 1e6 / req }' >>"$OUT/runs.tsv"
}

big_case() {
    local server=$1 round=$2 port i speed
    port=$(port_of "$server")
    for i in $(seq "$BIG_RUNS"); do
        speed=$(taskset -c 1 curl -sk --tls13-ciphers "$SUITE" -o /dev/null -w '%{speed_download}' \
            "https://127.0.0.1:$port/static/big.bin")
        printf '%s\tbig\t%s\t%.1f\t0\n' "$round" "$server" "$(awk -v s="$speed" 'BEGIN { print s / 1e6 }')" >>"$OUT/runs.tsv"
    done
}

printf 'round\tcase\tserver\tvalue\tcpu_us\n' >"$OUT/runs.tsv"
for round in $(seq "$ROUNDS"); do
    for server in "${SERVERS[@]}"; do
        start_server "$server"
        s_time_case "$server" new "$round"
        s_time_case "$server" reuse "$round"
        ka_case "$server" "$round"
        big_case "$server" "$round"
        server_alive "$server" "$OUT/$server.log"
        stop_server "$server"
        echo "round $round: $server done"
    done
done

{
    echo "TLS 1.3 $SUITE, ECDSA P-256; medians of $ROUNDS rounds (DURATION=${DURATION}s); ratio = tern / nginx"
    printf '%-9s %14s %14s %7s %12s %12s %7s\n' case "tern" "nginx" ratio "tern µs" "nginx µs" "µs ratio"
    for c in full resumed ka50 big; do
        tv=$(median "$c" tern value) nv=$(median "$c" nginx value)
        tc=$(median "$c" tern cpu_us) nc=$(median "$c" nginx cpu_us)
        unit=$([ "$c" = big ] && echo "MB/s" || echo "/s")
        printf '%-9s %14s %14s %7s %12s %12s %7s\n' "$c" "$(num "$tv" '%.1f')$unit" "$(num "$nv" '%.1f')$unit" \
            "$(ratio "$tv" "$nv")" "$(num "$tc" '%.2f')" "$(num "$nc" '%.2f')" "$(ratio "$tc" "$nc")"
    done
    echo "(full, resumed: handshakes per second and server CPU µs per handshake; ka50: requests per second"
    echo " and server CPU µs per request; big: MB/s of a 100 MiB file, CPU not measured)"
} | tee "$OUT/summary.txt"
