#!/bin/sh
# curl against tests/clients/http_test_server (a tern HTTP server):
#   1. keep-alive: two URLs in one curl run share one connection;
#   2. a chunked upload of 1 MiB of random bytes is echoed back identical;
#   3. Expect: 100-continue: tern answers "100 Continue" and the body arrives;
#   4. /defer (answered 50 ms later by a worker thread) with Connection: close gives
#      the whole body.
# usage: test_curl.sh SERVER CURL
set -eu

server=$1
curl=$2
tmp=$(mktemp -d)
pid=
cleanup() {
    exec 3>&- 2>/dev/null || true
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP

fail() {
    echo "test_curl: FAIL: $*" >&2
    exit 1
}

# The server runs until its stdin closes: give it a fifo we hold open on fd 3.
mkfifo "$tmp/in"
"$server" < "$tmp/in" > "$tmp/port" &
pid=$!
exec 3> "$tmp/in"
i=0
while [ ! -s "$tmp/port" ]; do
    i=$((i + 1))
    [ "$i" -le 100 ] || fail "the server printed no port within 10 s"
    kill -0 "$pid" 2>/dev/null || fail "the server exited"
    sleep 0.1
done
port=$(head -n 1 "$tmp/port")
base="http://127.0.0.1:$port"
c() { "$curl" --silent --show-error --max-time 20 "$@"; }

# 1. keep-alive reuse: the second transfer makes no new connection
c -v -o /dev/null -o /dev/null -w '%{num_connects}\n' "$base/hello" "$base/defer" \
    > "$tmp/n" 2> "$tmp/v1" || fail "curl keep-alive run failed: $(cat "$tmp/v1")"
[ "$(tr '\n' ' ' < "$tmp/n")" = "1 0 " ] || fail "num_connects per transfer: $(tr '\n' ' ' < "$tmp/n") (want 1 0)"
grep -q "Re-using existing connection" "$tmp/v1" || fail "curl -v does not report re-using the connection"
echo "1. keep-alive: second request re-used the connection: ok"

# 2. chunked upload, echoed back
head -c 1048576 /dev/urandom > "$tmp/up"
c -v -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/up" -o "$tmp/down" "$base/echo" \
    2> "$tmp/v2" || fail "chunked upload failed: $(tail -5 "$tmp/v2")"
grep -qi '^> Transfer-Encoding: chunked' "$tmp/v2" || fail "curl did not send chunked"
a=$(sha256sum < "$tmp/up")
b=$(sha256sum < "$tmp/down")
[ "$a" = "$b" ] || fail "echoed body differs ($(wc -c < "$tmp/down") bytes back)"
echo "2. chunked upload of 1 MiB echoed back identical: ok"

# 3. Expect: 100-continue (sent explicitly: curl versions differ on when they add it)
head -c 2097152 /dev/urandom > "$tmp/up3"
c -v -H 'Expect: 100-continue' --data-binary @"$tmp/up3" -o "$tmp/down3" "$base/echo" \
    2> "$tmp/v3" || fail "upload with Expect failed: $(tail -5 "$tmp/v3")"
grep -qi '^> Expect: 100-continue' "$tmp/v3" || fail "curl did not send Expect: 100-continue"
grep -q '^< HTTP/1.1 100 Continue' "$tmp/v3" || fail "no 100 Continue seen: $(grep '^<' "$tmp/v3")"
[ "$(sha256sum < "$tmp/up3")" = "$(sha256sum < "$tmp/down3")" ] || fail "body after 100-continue differs"
echo "3. Expect: 100-continue answered, 2 MiB body echoed: ok"

# 4. deferred answer with Connection: close
c -v -H 'Connection: close' -o "$tmp/d" "$base/defer" 2> "$tmp/v4" \
    || fail "/defer with Connection: close failed: $(tail -5 "$tmp/v4")"
[ "$(cat "$tmp/d")" = "deferred" ] || fail "/defer body: '$(cat "$tmp/d")'"
grep -qi '^< Connection: close' "$tmp/v4" || fail "no Connection: close in the response"
grep -qi '^< Content-Length: 9' "$tmp/v4" || fail "no Content-Length: 9 in the response"
echo "4. deferred answer with Connection: close arrived whole: ok"

# the server exits when its stdin closes
exec 3>&-
i=0
while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -le 100 ] || fail "the server did not exit within 10 s of stdin closing"
    sleep 0.1
done
wait "$pid" || fail "the server exited with status $?"
pid=
echo "test_curl: PASS"
