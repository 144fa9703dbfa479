#!/bin/sh
# Runs Autobahn's fuzzing client over wss:// against tern's TLS server
# (tests/clients/tls_test_server: WebSocket echo at /ws), with a certificate made here.
#   usage: server_wss.sh TLS_TEST_SERVER AUTOBAHN_DIR CASES
# Exit status: the runner's (0: no case FAILED).
set -eu
server=$1
dir=$2
cases=$3
tmp=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$tmp/key.pem" \
    -out "$tmp/cert.pem" -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
mkfifo "$tmp/in"
"$server" "$tmp/cert.pem" "$tmp/key.pem" <"$tmp/in" >"$tmp/port" &
pid=$!
exec 3>"$tmp/in"
trap 'exec 3>&-; wait $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
    [ -s "$tmp/port" ] && break
    sleep 0.1
done
port=$(head -n 1 "$tmp/port")
"$dir/run.sh" "wss://127.0.0.1:$port/ws" "$cases"
