#!/bin/sh
# Runs Autobahn's fuzzing client against ws_echo on a free port of 127.0.0.1.
#   usage: server.sh WS_ECHO AUTOBAHN_DIR CASES
# Exit status: the runner's (0: no case FAILED).
set -eu
ws_echo=$1
dir=$2
cases=$3
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ws_echo" "$port" >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null && break
    sleep 0.1
done
"$dir/run.sh" "ws://127.0.0.1:$port/" "$cases"
