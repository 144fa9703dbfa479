#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: repeatable on a noisy
# machine (the same binary and load give the same count, whatever else runs), so it
# decides whether a change to the core made a request cheaper or dearer. Compares the
# examples built from BASE (a git revision, built by bench/versus.sh's worktree under
# bench/out/versus/) with the working tree's.
#
# Each server runs under callgrind twice, once with SMALL and once with BIG requests of
# a fixed load (bench/http_load.py); (Ir(BIG) - Ir(SMALL)) / (BIG - SMALL) is the cost
# of one request, start-up and teardown cancelled out.
#
#   bench/instructions.sh BASE
#   env: SMALL (default 2000), BIG (default 12000), BUILD_DIR (default build),
#        PORT (default 18441)
# Cases: hello keep-alive, hello Connection: close, static 1 KiB keep-alive.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

[ -n "${1:-}" ] || { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 2; }
BASE=$1
SMALL=${SMALL:-2000}
BIG=${BIG:-12000}
BUILD_DIR=${BUILD_DIR:-build}
PORT=${PORT:-18441}
OUT=bench/out/instructions
need valgrind "apt-get install valgrind"
need python3 "apt-get install python3"
mkdir -p "$OUT"
base_rev=$(git rev-parse --verify --short "$BASE^{commit}") || die "'$BASE' is not a git revision"
build_example hello_server
NEW_HELLO=$TERN_BIN
build_example static_server
NEW_STATIC=$TERN_BIN
base_src=bench/out/versus/base-src
[ "$(git -C "$base_src" rev-parse --short HEAD 2>/dev/null)" = "$base_rev" ] ||
    die "no build of $base_rev: run bench/versus.sh $BASE first (it builds the base)"
BASE_HELLO=$base_src/build/examples/hello_server
BASE_STATIC=$base_src/build/examples/static_server
DOCROOT=$(mktemp -d)
trap 'rm -rf "$DOCROOT"' EXIT
head -c 1024 /dev/urandom >"$DOCROOT/1k.bin"

# ir BINARY ARGS... -- PATH COUNT MODE: total instructions of one server run.
ir() {
    local args=() path count mode out pid
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    shift
    path=$1 count=$2 mode=$3
    out=$OUT/callgrind.$$.out
    valgrind --tool=callgrind --callgrind-out-file="$out" "${args[@]}" >"$OUT/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do port_open "$PORT" && break; sleep 0.1; done
    port_open "$PORT" || die "${args[0]} under callgrind does not listen; see $OUT/server.log"
    python3 bench/http_load.py "$PORT" "$path" "$count" 10 "$mode"
    kill -INT "$pid"
    wait "$pid" || true
    awk '/^summary:/ { print $2 }' "$out"
    rm -f "$out"
}

per_request() {
    local a b
    a=$(ir "$@" "$SMALL" "${MODE}")
    b=$(ir "$@" "$BIG" "${MODE}")
    awk -v a="$a" -v b="$b" -v n=$((BIG - SMALL)) 'BEGIN { printf "%.0f", (b - a) / n }'
}

printf '%-22s %12s %12s %9s\n' case "base Ir/req" "new Ir/req" new/base
for c in hello-ka hello-close static-ka; do
    case $c in *-close) MODE=close ;; *) MODE=ka ;; esac
    case $c in
    hello-*)
        b=$(per_request "$BASE_HELLO" "$PORT" -- / )
        n=$(per_request "$NEW_HELLO" "$PORT" -- / )
        ;;
    static-*)
        b=$(per_request "$BASE_STATIC" "$DOCROOT" "$PORT" -- /1k.bin)
        n=$(per_request "$NEW_STATIC" "$DOCROOT" "$PORT" -- /1k.bin)
        ;;
    esac
    printf '%-22s %12s %12s %9s\n' "$c" "$b" "$n" "$(awk -v a="$n" -v b="$b" 'BEGIN { printf "%.3f", a / b }')"
done | tee "$OUT/summary.txt"
