#!/usr/bin/env bash
# Reverse proxy: tern (c-examples/reverse_proxy, tern_fetch and its pool) against nginx
# as a reverse proxy (proxy_pass to an upstream with keepalive 32, HTTP/1.1 to it), in
# front of the same backend (c-examples/static_server serving a small file and a 1 GiB
# one with sendfile). Method of /work/shared/BENCH.md: the proxy pinned to CPU 0, the
# load generator and the backend to CPU 1, the two proxies interleaved in every round
# (tern, nginx, tern, nginx, ...), ROUNDS rounds, medians and ratios tern/nginx.
#
# Cases: keep-alive c=50 with wrk -t1 on the small file: req/s and the proxy's CPU time
# per request (utime+stime from /proc/PID/stat before and after, divided by the requests
# wrk completed); then a 1 GiB download through each proxy with curl: MB/s.
# Targets (issue 12): tern >= 1.2x nginx's req/s, >= 0.9x its MB/s.
#
# nginx runs as one process (master_process off), access_log off, proxy buffers in
# memory only (proxy_max_temp_file_size 0: it never spools the 1 GiB to disk).
#
#   bench/proxy.sh
#   env: DURATION (seconds per wrk run, default 10), ROUNDS (default 3), BUILD_DIR
#        (default build), TERN_PORT (18421), NGINX_PORT (18422), BACKEND_PORT (18423)
#
# Raw results: bench/out/proxy/ (runs.tsv, wrk/, summary.txt, logs). Needs nginx, wrk,
# curl, taskset, cmake, cc, 2 CPUs. Runs as an ordinary user.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
BUILD_DIR=${BUILD_DIR:-build}
TERN_PORT=${TERN_PORT:-18421}
NGINX_PORT=${NGINX_PORT:-18422}
BACKEND_PORT=${BACKEND_PORT:-18423}
OUT=bench/out/proxy
SERVERS=(tern nginx)

case ${1:-} in
-h | --help)
    usage
    exit 0
    ;;
esac

need nginx "apt-get install nginx-light"
need wrk "apt-get install wrk"
need curl "apt-get install curl"
need taskset "apt-get install util-linux"
need cmake "apt-get install cmake"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs"

rm -rf "$OUT"
mkdir -p "$OUT/wrk" "$OUT/www"
build_example reverse_proxy
PROXY_BIN=$TERN_BIN
build_example static_server
STATIC_BIN=$TERN_BIN
printf 'hello\n' >"$OUT/www/hello.txt"
truncate -s 1G "$OUT/www/big.bin"

NGINX=$(command -v nginx)
cat >"$OUT/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1;
error_log $PWD/$OUT/nginx-error.log; pid $PWD/$OUT/nginx.pid;
events { worker_connections 4096; }
http {
$(nginx_temp_paths "$PWD/$OUT")
    access_log off;
    keepalive_requests 1000000;
    upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 32; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_max_temp_file_size 0;
        }
    }
}
CONF

trap stop_all_servers EXIT
start_pinned backend 1 "$OUT/backend.log" "$STATIC_BIN" "$OUT/www" "$BACKEND_PORT"
wait_port "$BACKEND_PORT" || die "the backend did not start; see $OUT/backend.log"

start_proxy() {
    case $1 in
    tern) start_pinned tern 0 "$OUT/tern.log" "$PROXY_BIN" "$TERN_PORT" "http://127.0.0.1:$BACKEND_PORT" ;;
    nginx) start_pinned nginx 0 "$OUT/nginx.log" "$NGINX" -p "$PWD/$OUT" -c "$PWD/$OUT/nginx.conf" -e "$PWD/$OUT/nginx-error.log" ;;
    esac
}
port_of() { [ "$1" = tern ] && echo "$TERN_PORT" || echo "$NGINX_PORT"; }

printf 'round\tcase\tserver\treq_per_s\tcpu_us_per_req\tmb_per_s\n' >"$OUT/runs.tsv"
tick=$(getconf CLK_TCK)
for round in $(seq "$ROUNDS"); do
    for s in "${SERVERS[@]}"; do
        start_proxy "$s"
        port=$(port_of "$s")
        wait_port "$port" || die "$s did not start"
        curl -sf "http://127.0.0.1:$port/hello.txt" >/dev/null || die "$s does not proxy /hello.txt"
        pid=${SERVER_PID[$s]}
        t0=$(cpu_ticks "$pid")
        raw=$OUT/wrk/ka50-$s-$round.txt
        taskset -c 1 wrk -t1 -c50 -d"${DURATION}s" --latency "http://127.0.0.1:$port/hello.txt" >"$raw"
        t1=$(cpu_ticks "$pid")
        read -r req rps _ err non <<<"$(wrk_stats "$raw")"
        [ "$err" = 0 ] && [ "$non" = 0 ] || echo "warning: $s round $round: $err socket errors, $non non-2xx" >&2
        cpu=$(awk -v a="$t0" -v b="$t1" -v n="$req" -v t="$tick" 'BEGIN { printf "%.2f", (b - a) / t * 1e6 / n }')
        printf '%s\tka50\t%s\t%s\t%s\t-\n' "$round" "$s" "$rps" "$cpu" >>"$OUT/runs.tsv"
        bps=$(taskset -c 1 curl -sf -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$port/big.bin")
        mbs=$(awk -v b="$bps" 'BEGIN { printf "%.1f", b / 1e6 }')
        printf '%s\tdownload\t%s\t-\t-\t%s\n' "$round" "$s" "$mbs" >>"$OUT/runs.tsv"
        echo "round $round $s: $(kfmt "$rps") req/s, $cpu us/req, $mbs MB/s"
        server_alive "$s" "$OUT/$s.log"
        stop_server "$s"
    done
done

{
    echo "reverse proxy, medians of $ROUNDS rounds (proxy on CPU 0; wrk, curl and the backend on CPU 1)"
    printf '%-28s %12s %12s %8s\n' case tern nginx ratio
    for col in req_per_s cpu_us_per_req; do
        t=$(median ka50 tern $col)
        n=$(median ka50 nginx $col)
        printf '%-28s %12s %12s %8s\n' "keep-alive c=50 $col" "$t" "$n" "$(ratio "$t" "$n")"
    done
    t=$(median download tern mb_per_s)
    n=$(median download nginx mb_per_s)
    printf '%-28s %12s %12s %8s\n' "1 GiB download MB/s" "$t" "$n" "$(ratio "$t" "$n")"
} | tee "$OUT/summary.txt"
