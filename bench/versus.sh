#!/usr/bin/env bash
# tern against an earlier tern: the same examples (hello_server, static_server) built
# from BASE (a git revision) and from the working tree, run in one script so a change
# to the core is measured, not guessed. Method of /work/shared/BENCH.md: server pinned to
# CPU 0, wrk -t1 pinned to CPU 1, base and new interleaved in every round, ROUNDS rounds,
# medians and ratios new/base.
#
# Cases (wrk -c50 for DURATION s each):
#   hello-ka      GET / from hello_server, keep-alive
#   hello-close   the same with `Connection: close`
#   static-ka     GET /1k.bin (1 KiB) from static_server, keep-alive
#   static-close  the same with `Connection: close`
# Per run: req/s, and the server's CPU µs per request (utime+stime from /proc/PID/stat,
# divided by the requests wrk completed), which does not depend on the client.
#
#   bench/versus.sh BASE            e.g. bench/versus.sh e001b59
#   env: DURATION (default 10), ROUNDS (default 3), BUILD_DIR (default build),
#        PORT_BASE (default 18431: four consecutive ports are used)
#
# BASE is checked out in a git worktree under bench/out/versus/ and built there
# (release). Raw results: bench/out/versus/ (runs.tsv, wrk/, summary.txt).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

case ${1:-} in
-h | --help | "")
    usage
    [ -n "${1:-}" ] || exit 2
    exit 0
    ;;
esac
BASE=$1
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
BUILD_DIR=${BUILD_DIR:-build}
PORT_BASE=${PORT_BASE:-18431}
OUT=bench/out/versus
CASES=(hello-ka hello-close static-ka static-close)
SIDES=(base new)

need wrk "apt-get install wrk"
need taskset "apt-get install util-linux"
need cmake "apt-get install cmake"
need git "apt-get install git"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on CPU 0, wrk on CPU 1)"
positive_ints DURATION ROUNDS PORT_BASE
base_rev=$(git rev-parse --verify --short "$BASE^{commit}") || die "'$BASE' is not a git revision"
CLK_TCK=$(getconf CLK_TCK)

# --- builds ------------------------------------------------------------------------------
rm -rf "$OUT/wrk" "$OUT/runs.tsv"
mkdir -p "$OUT/wrk"
build_example hello_server
NEW_HELLO=$TERN_BIN
build_example static_server
NEW_STATIC=$TERN_BIN

base_src=$OUT/base-src
if [ "$(git -C "$base_src" rev-parse --short HEAD 2>/dev/null)" != "$base_rev" ]; then
    git worktree remove --force "$base_src" 2>/dev/null || rm -rf "$base_src"
    git worktree prune
    git worktree add --detach "$base_src" "$base_rev" >"$OUT/worktree.log" 2>&1 || { cat "$OUT/worktree.log" >&2; die "git worktree add failed"; }
fi
(
    cd "$base_src"
    OUT=../base-build-log BUILD_DIR=build
    mkdir -p "$OUT"
    build_example hello_server >/dev/null
    build_example static_server >/dev/null
) || die "building $base_rev failed; see $OUT/base-build-log/build.log"
BASE_HELLO=$base_src/build/examples/hello_server
BASE_STATIC=$base_src/build/examples/static_server

DOCROOT=$(mktemp -d)
head -c 1024 /dev/urandom >"$DOCROOT/1k.bin"

# --- servers -------------------------------------------------------------------------------
declare -A PID PORT
cleanup() {
    local p
    for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PID[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$DOCROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start KEY PORT COMMAND...: a server pinned to CPU 0.
start() {
    local key=$1 port=$2
    shift 2
    ! port_open "$port" || die "something already listens on 127.0.0.1:$port (set PORT_BASE)"
    taskset -c 0 "$@" >"$OUT/$key.log" 2>&1 &
    PID[$key]=$!
    PORT[$key]=$port
    wait_port "$port" || die "$key does not listen on $port; see $OUT/$key.log"
}
start base-hello $PORT_BASE "$BASE_HELLO" $PORT_BASE
start new-hello $((PORT_BASE + 1)) "$NEW_HELLO" $((PORT_BASE + 1))
start base-static $((PORT_BASE + 2)) "$BASE_STATIC" "$DOCROOT" $((PORT_BASE + 2))
start new-static $((PORT_BASE + 3)) "$NEW_STATIC" "$DOCROOT" $((PORT_BASE + 3))

printf 'round\tcase\tserver\trequests\treq_per_s\tcpu_us_per_req\n' >"$OUT/runs.tsv"

# run ROUND CASE SIDE: one wrk run against SIDE's server for CASE.
run() {
    local round=$1 case=$2 side=$3 key url raw t0 t1 requests rps _
    key=$side-${case%%-*}
    url="http://127.0.0.1:${PORT[$key]}/"
    case $case in static-*) url+=1k.bin ;; esac
    local args=(-t1 -c50 -d"${DURATION}s" --latency)
    case $case in *-close) args+=(-H 'Connection: close') ;; esac
    raw=$OUT/wrk/r$round-$case-$side.txt
    kill -0 "${PID[$key]}" 2>/dev/null || die "$key died; see $OUT/$key.log"
    t0=$(cpu_ticks "${PID[$key]}")
    taskset -c 1 wrk "${args[@]}" "$url" >"$raw" 2>&1 || die "wrk failed against $key; see $raw"
    t1=$(cpu_ticks "${PID[$key]}")
    read -r requests rps _ < <(wrk_stats "$raw")
    [ "$requests" -gt 0 ] || die "wrk completed no requests against $key; see $raw"
    local cpu
    cpu=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.3f", t * 1e6 / hz / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$case" "$side" "$requests" "$rps" "$cpu" >>"$OUT/runs.tsv"
    printf '  round %s  %-13s %-4s %9.0f req/s  %6.2f us CPU/req\n' "$round" "$case" "$side" "$rps" "$cpu"
}

for key in "${!PORT[@]}"; do
    taskset -c 1 wrk -t1 -c50 -d1s "http://127.0.0.1:${PORT[$key]}/" >/dev/null 2>&1 || die "warm-up against $key failed"
done
echo "base $base_rev against the working tree; $((${#CASES[@]} * 2 * ROUNDS)) wrk runs of ${DURATION}s"
for r in $(seq "$ROUNDS"); do
    for c in "${CASES[@]}"; do
        # Alternate which side goes first, so neither always runs on a warmer machine.
        if [ $((r % 2)) = 1 ]; then order=(base new); else order=(new base); fi
        for s in "${order[@]}"; do
            run "$r" "$c" "$s"
        done
    done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "nan" || b == "nan") print "-"; else printf "%.3f", a / b }'; }
{
    echo
    echo "medians of $ROUNDS round(s), wrk -t1 -c50 ${DURATION}s; base $base_rev, new = working tree"
    printf '%-13s %10s %10s %8s   %10s %10s %8s\n' case "base req/s" "new req/s" new/base "base us" "new us" new/base
    for c in "${CASES[@]}"; do
        br=$(median "$c" base req_per_s)
        nr=$(median "$c" new req_per_s)
        bc=$(median "$c" base cpu_us_per_req)
        nc=$(median "$c" new cpu_us_per_req)
        printf '%-13s %10.0f %10.0f %8s   %10.3f %10.3f %8s\n' "$c" "$br" "$nr" "$(ratio "$nr" "$br")" "$bc" "$nc" "$(ratio "$bc" "$nc")"
    done
    echo "(CPU ratios are base/new, so for every column above 1.00 means the new build is better)"
    echo "raw results: $OUT/"
} | tee "$OUT/summary.txt"
