#!/usr/bin/env python3
"""Bounded memory through c-examples/reverse_proxy: a 1 GiB download and a 1 GiB
chunked upload (small: 64 MiB) stream through the proxy, every byte checked on the
other side, while the proxy's resident memory grows by at most a few hundred KiB
(its peak, VmHWM, compared with its peak after 4 MiB warm-up transfers each way).
A client that goes away mid-download cancels the backend request (the backend sees
its connection closed).

  usage: test_proxy_stream.py REVERSE_PROXY [MIB]
"""

import hashlib
import http.client
import os
import socket
import subprocess
import sys
import threading
import time

passes = failures = 0


def check(cond, msg):
    global passes, failures
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    passes += bool(cond)
    failures += not cond


PIECE = bytes(range(256)) * 256  # 64 KiB
uploads = {}
closed_mid_download = threading.Event()


def read_head(conn):
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None, b""
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def serve(conn, size):
    try:
        while True:
            head, rest = read_head(conn)
            if head is None:
                return
            path = head.split(b" ")[1]
            if path == b"/warm":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            elif path in (b"/download", b"/abandon", b"/warmdl"):
                n = (4 << 20) if path == b"/warmdl" else size
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
                try:
                    for _ in range(n // len(PIECE)):
                        conn.sendall(PIECE)
                except OSError:
                    if path == b"/abandon":
                        closed_mid_download.set()
                    return
            elif path == b"/upload":
                # Chunked from the proxy (the client sent chunks): count and hash.
                h, n, buf = hashlib.sha256(), 0, rest
                while True:
                    while b"\r\n" not in buf:
                        buf += conn.recv(1 << 20)
                    line, _, buf = buf.partition(b"\r\n")
                    length = int(line.split(b";")[0], 16)
                    while len(buf) < length + 2:
                        buf += conn.recv(1 << 20)
                    if length == 0:
                        break
                    h.update(buf[:length])
                    n += length
                    buf = buf[length + 2:]
                body = f"{n} {h.hexdigest()}".encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    except OSError:
        pass
    finally:
        conn.close()


def backend(lsock, size):
    while True:
        try:
            c, _ = lsock.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(c, size), daemon=True).start()


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main(exe, mib):
    size = mib << 20
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    threading.Thread(target=backend, args=(lsock, size), daemon=True).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([exe, str(port), f"http://127.0.0.1:{lsock.getsockname()[1]}"], stdout=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    p.stdout.readline()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", "/warm")
        check(c.getresponse().read() == b"ok", "a warm-up request through the proxy")
        # Warm up the streaming paths too (code pages, allocator arenas): 4 MiB each way.
        c.request("GET", "/warmdl")
        check(len(c.getresponse().read()) == 4 << 20, "a 4 MiB warm-up download")
        c.request("PUT", "/upload", body=(PIECE for _ in range(64)), encode_chunked=True)
        check(c.getresponse().read().startswith(b"4194304 "), "a 4 MiB warm-up upload")
        rss0 = status_kib(p.pid, "VmHWM")

        t0 = time.time()
        c.request("GET", "/download")
        r = c.getresponse()
        h, n = hashlib.sha256(), 0
        while True:
            piece = r.read(1 << 20)
            if not piece:
                break
            h.update(piece)
            n += len(piece)
        want = hashlib.sha256(PIECE * (size // len(PIECE))).hexdigest() if mib <= 64 else None
        took = time.time() - t0
        check(n == size and (want is None or h.hexdigest() == want),
              f"{mib} MiB downloaded through the proxy ({n} bytes, {n / took / 1e6:.0f} MB/s)")

        def chunks():
            for _ in range(size // len(PIECE)):
                yield PIECE
        t0 = time.time()
        c.request("PUT", "/upload", body=chunks(), encode_chunked=True)
        body = c.getresponse().read().decode()
        took = time.time() - t0
        expect = hashlib.sha256()
        for piece in chunks():
            expect.update(piece)
        check(body == f"{size} {expect.hexdigest()}", f"{mib} MiB uploaded chunked through the proxy ({size / took / 1e6:.0f} MB/s)")

        peak = status_kib(p.pid, "VmHWM")
        check(peak - rss0 < 1024, f"the proxy's memory grew by {peak - rss0} KiB at its peak (bound 1024 KiB)")

        raw = socket.create_connection(("127.0.0.1", port))
        raw.sendall(b"GET /abandon HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.recv(65536)
        raw.close()
        check(closed_mid_download.wait(10), "a client gone mid-download: the backend request is cancelled")
        c.request("GET", "/warm")
        check(c.getresponse().read() == b"ok", "the proxy still serves")
    finally:
        p.terminate()
        p.wait(timeout=10)
        lsock.close()
    print(f"{passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1024)
