#!/usr/bin/env python3
"""Python clients against tests/clients/http_test_server (a tern HTTP server).

1. http.client on one keep-alive connection: several GETs, a POST to /echo, /defer
   (answered 50 ms later by a worker thread), all on the same socket.
2. A raw socket pipelining 3 requests in one sendall (/defer first, so the later
   answers are ready before it), reading the 3 responses in order, then EOF.

usage: test_python_clients.py SERVER
"""

import http.client
import signal
import socket
import subprocess
import sys
import time

TIMEOUT = 10.0


def fail(msg):
    print(f"test_python_clients: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def keep_alive(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    sock = None
    plan = [
        ("GET", "/hello", None, b"hello\n"),
        ("GET", "/hello", None, b"hello\n"),
        ("POST", "/echo", b"some body \x00\x01\xff" * 100, None),
        ("GET", "/defer", None, b"deferred\n"),
        ("GET", "/hello", None, b"hello\n"),
        ("POST", "/echo", b"", b""),
        ("GET", "/defer", None, b"deferred\n"),
    ]
    for method, path, body, want in plan:
        headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        got = r.read()
        if want is None:
            want = body
        if r.status != 200 or got != want:
            fail(f"{method} {path}: status {r.status}, body {got[:60]!r} (want {want[:60]!r})")
        if r.will_close:
            fail(f"{method} {path}: the server wants to close a keep-alive connection")
        if sock is None:
            sock = conn.sock
        elif conn.sock is not sock:
            fail(f"{method} {path}: http.client had to reconnect (keep-alive broken)")
    conn.close()
    print(f"1. http.client: {len(plan)} requests on one keep-alive connection: ok")


def read_response(f):
    """One response from a buffered socket file: (status, headers dict, body)."""
    line = f.readline()
    if not line:
        fail("EOF where a status line was expected")
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        fail(f"bad status line {line!r}")
    status = int(parts[1])
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b""):
                    pass
                break
            body += f.read(size)
            f.read(2)
    else:
        n = int(headers.get("content-length", "0"))
        body = f.read(n)
        if len(body) != n:
            fail(f"EOF after {len(body)} of {n} body bytes")
    return status, headers, body


def pipelined(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    reqs = (
        b"GET /defer HTTP/1.1\r\nHost: t\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\npiped!\n"
        b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    t0 = time.monotonic()
    s.sendall(reqs)
    f = s.makefile("rb")
    want = [b"deferred\n", b"piped!\n", b"hello\n"]
    for i, w in enumerate(want):
        status, headers, body = read_response(f)
        if status != 200 or body != w:
            fail(f"pipelined response {i + 1}: status {status}, body {body!r}, want {w!r} (out of order?)")
        if i == 0 and time.monotonic() - t0 < 0.045:
            fail("the deferred answer came before the worker's 50 ms")
        if (headers.get("connection", "").lower() == "close") != (i == 2):
            fail(f"pipelined response {i + 1}: Connection header {headers.get('connection')!r}")
    rest = f.read()
    if rest != b"":
        fail(f"bytes after the last response: {rest[:80]!r}")
    f.close()
    s.close()
    print("2. raw socket: 3 pipelined requests answered in order, then EOF: ok")


def on_alarm(signum, frame):
    fail("deadline of 60 s exceeded")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(60)  # the whole test, server start included
    srv = subprocess.Popen([sys.argv[1]], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        line = srv.stdout.readline()
        if not line.strip().isdigit():
            fail(f"the server printed {line!r} instead of its port")
        port = int(line)
        keep_alive(port)
        pipelined(port)
        srv.stdin.close()  # the server exits when its stdin closes
        try:
            rc = srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fail("the server did not exit within 10 s of stdin closing")
        if rc != 0:
            fail(f"the server exited with status {rc}")
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    print("test_python_clients: PASS")


if __name__ == "__main__":
    main()
