#!/usr/bin/env bash
# Memory per idle connection: tern (c-examples/hello_server) against nginx (1 worker,
# master_process off), each holding N connections that made one exchange and then went
# quiet. Server pinned to CPU 0, clients to CPU 1, tern and nginx interleaved, 3 rounds,
# medians. Figures: (RSS with N idle connections - RSS before) / N.
#
#   bench/idle.sh [N]        (default 10000; needs `nginx` from Debian's nginx-light)
#   SETTLE=12 bench/idle.sh  (measure 12 s after the connections went quiet, not 1 s)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh
N=${1:-10000}
# Seconds between the last connection going quiet and the measurement.
SETTLE=${SETTLE:-1}
ROUNDS=3
TERN_PORT=18401
NGINX_PORT=18402
OUT=bench/out/idle
mkdir -p "$OUT"
ulimit -n $((N * 2 + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cmake -S . -B build >/dev/null && cmake --build build -j2 --target hello_server >/dev/null
command -v nginx >/dev/null || { echo "nginx missing: apt-get install nginx-light" >&2; exit 1; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

write_nginx_conf() {
    local dir=$1
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $((N * 2 + 1024));
events { worker_connections $((N + 512)); }
http {
    access_log off;
$(nginx_temp_paths "$dir")
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { return 200 "hello\n"; }
    }
}
CONF
}

# measure NAME PORT MODE -- server command...: prints bytes per idle connection.
measure() {
    local name=$1 port=$2 mode=$3
    shift 4
    taskset -c 0 "$@" >"$OUT/$name.log" 2>&1 &
    local pid=$!
    wait_port "$port" || die "$name does not listen on $port"
    sleep 0.3
    local before after
    before=$(rss_kb "$pid")
    coproc CLIENTS { exec taskset -c 1 python3 bench/idle_clients.py "$port" "$N" "$mode"; }
    local line
    read -r line <&"${CLIENTS[0]}"
    [ "$line" = "ready $N" ] || { echo "$name: clients said '$line'" >&2; exit 1; }
    sleep "$SETTLE"
    after=$(rss_kb "$pid")
    eval "exec ${CLIENTS[1]}>&-"
    wait "$CLIENTS_PID" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo $(((after - before) * 1024 / N))
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

ngdir=$(mktemp -d)
trap 'rm -rf "$ngdir"' EXIT
write_nginx_conf "$ngdir"

: >"$OUT/tern.txt"
: >"$OUT/nginx.txt"
for r in $(seq "$ROUNDS"); do
    t=$(measure tern "$TERN_PORT" http -- ./build/examples/hello_server "$TERN_PORT")
    g=$(measure nginx "$NGINX_PORT" http -- nginx -c "$ngdir/nginx.conf" -p "$ngdir")
    echo "round $r: tern $t B/conn, nginx $g B/conn"
    echo "$t" >>"$OUT/tern.txt"
    echo "$g" >>"$OUT/nginx.txt"
done
tm=$(median <"$OUT/tern.txt")
gm=$(median <"$OUT/nginx.txt")
echo "median over $ROUNDS rounds, $N idle connections each:"
echo "  tern  $tm bytes per idle connection"
echo "  nginx $gm bytes per idle connection"
awk -v t="$tm" -v g="$gm" 'BEGIN { if (g > 0) printf "  ratio tern/nginx %.2f\n", t / g }'
