# Shared by the bench/*.sh scripts (sourced, not run): error exits, tool checks, the
# release build of the tern example under test, ports, CPU ticks, medians, and the
# nginx settings every script needs to run it as an unprivileged single process.

# die MESSAGE: print "SCRIPT: MESSAGE" and exit 1.
die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

# need TOOL HINT: die unless TOOL is on PATH.
# The calling script's header comment (line 2 up to `set -euo`) as its --help text.
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# For a script that takes no arguments: --help prints its usage, anything else stops it.
no_args_but_help() {
    case ${1:-} in
    -h | --help)
        usage
        exit 0
        ;;
    "") ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
}

# Stops unless every variable named holds a positive integer.
positive_ints() {
    local v
    for v in "$@"; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
    done
}

need() {
    command -v "$1" >/dev/null || die "'$1' is missing: $2"
}

# build_example TARGET: configure BUILD_DIR, refuse a Debug build, build TARGET and set
# TERN_BIN to it. Logs to $OUT/build.log.
build_example() {
    echo "building $1 in $BUILD_DIR (log: $OUT/build.log)"
    cmake -S . -B "$BUILD_DIR" >"$OUT/build.log" 2>&1 || { tail -n 20 "$OUT/build.log" >&2; die "cmake failed"; }
    local profile
    profile=$(sed -n 's/^TERN_CARGO_PROFILE:STRING=//p' "$BUILD_DIR/CMakeCache.txt")
    [ "$profile" != dev ] || die "$BUILD_DIR is a Debug build (cargo profile dev); benchmark a release build (BUILD_DIR=build-rel)"
    cmake --build "$BUILD_DIR" -j2 --target "$1" >>"$OUT/build.log" 2>&1 ||
        { tail -n 20 "$OUT/build.log" >&2; die "building $1 failed"; }
    TERN_BIN=$BUILD_DIR/examples/$1
    [ -x "$TERN_BIN" ] || die "$TERN_BIN was not built"
}

# port_open PORT: something accepts on 127.0.0.1:PORT.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port PORT: up to 5 s for a listener on PORT.
wait_port() {
    local _
    for _ in $(seq 100); do
        port_open "$1" && return 0
        sleep 0.05
    done
    return 1
}

# cpu_ticks PID: utime + stime of the whole process, in clock ticks (fields 14 and 15
# of /proc/PID/stat, counted after the ")" that ends the command name).
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

# median CASE SERVER COLUMN: the median of a column of $OUT/runs.tsv (columns named by
# its header line; column 2 is the case, 3 the server), "nan" without rows.
median() {
    awk -F'\t' -v c="$1" -v s="$2" -v col="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) k = i; next }
        $2 == c && $3 == s { print $k }' "$OUT/runs.tsv" |
        sort -g | awk '{ a[NR] = $1 } END {
            if (NR == 0) print "nan"
            else if (NR % 2) print a[(NR + 1) / 2]
            else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# nginx_temp_paths DIR: the http{} lines that keep nginx's temporary files in DIR/tmp
# (created here), so it runs without root and without Debian's /var/lib/nginx.
nginx_temp_paths() {
    mkdir -p "$1/tmp"
    local what
    for what in client_body proxy fastcgi uwsgi scgi; do
        echo "    ${what}_temp_path $1/tmp;"
    done
}

# wrk_stats RAW: "requests req_per_s p99_us socket_errors non_2xx" from a `wrk --latency`
# output file.
wrk_stats() {
    awk '
        / requests in / { req = $1 }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" {
            v = $2; u = $2
            sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u)
            m = (u == "us") ? 1 : (u == "ms") ? 1e3 : (u == "s") ? 1e6 : (u == "m") ? 6e7 : -1
            p99 = (m < 0) ? -1 : v * m
        }
        /Socket errors:/ { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { non = $NF }
        END { printf "%d %.2f %.1f %d %d\n", req, rps, p99, err, non }' "$1"
}

# build_c NAME SOURCE [CC ARGS...]: compiles one bench program (a C file of bench/,
# optimized, warnings on) to $BUILD_DIR/bench/NAME and prints that path. Logs to
# $OUT/build.log; dies with its tail on failure.
build_c() {
    local name=$1 src=$2
    shift 2
    local bin=$BUILD_DIR/bench/$name
    mkdir -p "$BUILD_DIR/bench"
    echo "cc $src -> $bin" >>"$OUT/build.log"
    cc -std=gnu11 -O2 -g -Wall -Wextra -o "$bin" "$src" "$@" >>"$OUT/build.log" 2>&1 ||
        { tail -n 20 "$OUT/build.log" >&2; die "compiling $src failed"; }
    echo "$bin"
}

# Background servers by name: start_pinned NAME CPU LOG CMD... runs CMD pinned to CPU
# with its output in LOG and records its pid in SERVER_PID[NAME]; stop_server NAME sends
# SIGTERM, waits up to 5 s, then SIGKILL; stop_all_servers (for an EXIT trap) stops
# every one still recorded.
declare -gA SERVER_PID=()

start_pinned() {
    local name=$1 cpu=$2 log=$3
    shift 3
    taskset -c "$cpu" "$@" >"$log" 2>&1 &
    SERVER_PID[$name]=$!
}

stop_server() {
    local pid=${SERVER_PID[$1]:-} _
    [ -n "$pid" ] || return 0
    unset "SERVER_PID[$1]"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stop_all_servers() {
    local name
    for name in "${!SERVER_PID[@]}"; do stop_server "$name"; done
}

# server_alive NAME LOG: dies (naming LOG) if the server recorded as NAME has exited.
server_alive() {
    local pid=${SERVER_PID[$1]:-}
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || die "$1 died; see $2"
}

# rss_kb PID: resident set size in KiB.
rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# Clients that open N connections, make one exchange on each, print "ready N" and hold
# them idle until their standard input closes (bench/idle_clients.py, ws_load idle).
# hold_start N OUT ERR CMD...: starts CMD with a pipe as stdin, its stdout in OUT, and
# waits (2 min at most) for "ready N"; returns 1 if another first line came, or none.
# hold_stop: closes the pipe and waits for the clients to exit (what they print after
# "ready" is in OUT). hold_cleanup: the same, for an EXIT trap, silently.
HOLD_PID=
HOLD_FD=
HOLD_DIR=

hold_start() {
    local n=$1 out=$2 err=$3 line= _
    shift 3
    HOLD_DIR=$(mktemp -d)
    mkfifo "$HOLD_DIR/in"
    "$@" <"$HOLD_DIR/in" >"$out" 2>"$err" &
    HOLD_PID=$!
    exec {HOLD_FD}>"$HOLD_DIR/in"
    for _ in $(seq 1200); do
        line=$(head -n 1 "$out" 2>/dev/null || true)
        [ -z "$line" ] || break
        kill -0 "$HOLD_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ "$line" = "ready $n" ]
}

hold_stop() {
    [ -z "$HOLD_FD" ] || exec {HOLD_FD}>&-
    HOLD_FD=
    [ -z "$HOLD_PID" ] || wait "$HOLD_PID" || true
    HOLD_PID=
    [ -z "$HOLD_DIR" ] || rm -rf "$HOLD_DIR"
    HOLD_DIR=
}

hold_cleanup() {
    [ -z "$HOLD_PID" ] || kill "$HOLD_PID" 2>/dev/null || true
    hold_stop 2>/dev/null || true
}

# Number formats for summaries; every one prints "-" for "nan" (no data).
# kfmt V: 138612 -> 138.6k;  num V FORMAT: printf;  ms V: microseconds as ms;
# ratio A B: A/B to 2 decimals.
kfmt() { awk -v v="$1" 'BEGIN { if (v == "nan") print "-"; else if (v >= 1e6) printf "%.2fM", v / 1e6; else if (v >= 1000) printf "%.1fk", v / 1000; else printf "%.0f", v }'; }
num() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "nan") print "-"; else printf f, v }'; }
ms() { awk -v v="$1" 'BEGIN { if (v == "nan" || v < 0) print "-"; else printf "%.2f", v / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "-"; else printf "%.2f", a / b }'; }
