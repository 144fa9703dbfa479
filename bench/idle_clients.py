#!/usr/bin/env python3
"""Opens N connections to 127.0.0.1:PORT, makes one exchange on each (so the server has
read and written on it), then keeps them all open and idle until stdin closes.

Prints "ready N" once every connection is idle. Modes:
  echo  sends b"ping\\n" and waits for it back (tern's tcp_echo example)
  http  sends one keep-alive GET / and reads one response head and body
"""
import resource
import socket
import sys


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def exchange_echo(s):
    s.sendall(b"ping\n")
    got = b""
    while len(got) < 5:
        chunk = s.recv(64)
        if not chunk:
            raise RuntimeError("server closed during the echo")
        got += chunk


def exchange_http(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("server closed during the request")
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("server closed during the body")
        body += chunk


def main():
    port, count, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    exchange = exchange_http if mode == "http" else exchange_echo
    raise_nofile(count + 64)
    conns = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        exchange(s)
        conns.append(s)
    print(f"ready {len(conns)}", flush=True)
    sys.stdin.read()
    for s in conns:
        s.close()


if __name__ == "__main__":
    main()
