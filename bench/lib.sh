# Shared by the bench/*.sh scripts (sourced, not run): error exits, tool checks, the
# release build of the tern example under test, ports, CPU ticks, medians, and the
# nginx settings every script needs to run it as an unprivileged single process.

# die MESSAGE: print "SCRIPT: MESSAGE" and exit 1.
die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

# need TOOL HINT: die unless TOOL is on PATH.
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
