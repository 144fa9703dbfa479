#!/usr/bin/env python3
"""A fixed, small HTTP load for instruction counting (bench/instructions.sh): COUNT GET
requests for PATH on 127.0.0.1:PORT over CONNS connections taking turns, keep-alive
or one connection per request ("close"), each response read whole before the next
request. Not a benchmark: it exists so the server does the same work every run.

usage: http_load.py PORT PATH COUNT CONNS ka|close
"""
import socket
import sys


def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("server closed early")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("server closed in a body")
        body += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected answer {head[:40]!r}")


def main():
    port, path, count, conns, mode = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
    if mode == "close":
        req += b"Connection: close\r\n\r\n"
        for _ in range(count):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(req)
                read_response(s)
                while s.recv(65536):
                    pass
        return
    req += b"\r\n"
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    for s in socks:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(count):
        s = socks[i % conns]
        s.sendall(req)
        read_response(s)
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
