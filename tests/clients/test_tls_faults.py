#!/usr/bin/env python3
"""Faults against tern's TLS server (tests/clients/tls_test_server.c): handshakes reset
at random points, garbage instead of a ClientHello, a client stalling mid-handshake
(the handshake timeout closes it), peers vanishing mid-download of 100 MiB (wrapped
buffers and a static file). After all of it the server still serves, and its
descriptors, live buffers and connections are back to where they started, with
every wrapped buffer's free callback run exactly once.

  usage: test_tls_faults.py TLS_TEST_SERVER      (TERN_TEST_SCALE=small: fewer rounds)
"""

import os
import random
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tls_certs  # noqa: E402

passes = failures = 0
SMALL = os.environ.get("TERN_TEST_SCALE") == "small"


def check(cond, msg):
    global passes, failures
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    passes += bool(cond)
    failures += not cond


def reset(s):
    """Closes with RST (SO_LINGER 0): the peer vanishes."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def client_hello(ctx):
    """A real ClientHello, made in memory."""
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(i, o, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return o.read()


def stats(ctx, port, path="/stats"):
    with socket.create_connection(("127.0.0.1", port), 10) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nRange: bytes=0-0\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    body = data.split(b"\r\n\r\n", 1)[1].decode(errors="replace")
    return dict(kv.split("=") for kv in body.split() if "=" in kv)


def handshake_then_reset(ctx, port, rng):
    """Drives a real handshake through memory BIOs and resets at a random step."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(5)
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(i, o, server_hostname="localhost")
    steps = rng.randint(0, 3)
    try:
        for _ in range(steps):
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            out = o.read()
            if out:
                cut = rng.randint(1, len(out))
                s.sendall(out[:cut])
                if cut < len(out):
                    break
            data = s.recv(rng.randint(1, 8192))
            if not data:
                break
            i.write(data)
    except (OSError, ssl.SSLError):
        pass
    reset(s)


def resets(ctx, port, n):
    rng = random.Random(10)
    hello = client_hello(ctx)
    for k in range(n):
        mode = k % 3
        if mode == 2:
            handshake_then_reset(ctx, port, rng)
            continue
        s = socket.create_connection(("127.0.0.1", port), 5)
        s.sendall(hello[:rng.randint(1, len(hello))] if mode == 0 else hello)
        if mode == 1:
            s.settimeout(2)
            try:
                s.recv(rng.randint(1, 4000))
            except OSError:
                pass
        reset(s)
    check(True, f"{n} handshakes reset at random points (prefixes of a ClientHello, after ServerHello, mid-flight)")


def garbage(port):
    rng = random.Random(3)
    ok = True
    for n in (1, 5, 300, 5000):
        with socket.create_connection(("127.0.0.1", port), 5) as s:
            s.settimeout(3)
            s.sendall(bytes(rng.getrandbits(8) for _ in range(n)))
            try:
                rest = b""
                while chunk := s.recv(4096):
                    rest += chunk
                ok &= len(rest) < 64
            except ConnectionResetError:
                pass
            except socket.timeout:
                ok = False
    check(ok, "garbage instead of a ClientHello: at most an alert, then the connection is closed")


def stall(ctx, port):
    hello = client_hello(ctx)
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(hello[: len(hello) // 2])
        s.settimeout(10)
        t0 = time.time()
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        took = time.time() - t0
    check(0.3 < took < 5, f"a client stalling mid-handshake is closed by the handshake timeout ({took:.2f} s, timeout 0.5 s)")


def vanish(ctx, port, path, rounds, rng):
    """Starts downloads of 100 MiB and resets each after a random part of it."""
    got_all = True
    for _ in range(rounds):
        raw = socket.create_connection(("127.0.0.1", port), 10)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        want = rng.randint(1, 20) << 20
        n = 0
        while n < want:
            chunk = s.recv(1 << 16)
            if not chunk:
                got_all = False
                break
            n += len(chunk)
        reset(s)
    check(got_all, f"{rounds} downloads of {path} over TLS reset mid-way (after 1-20 MiB)")


def main(server_exe):
    d = tempfile.mkdtemp(prefix="tern-tls-faults-")
    try:
        ca = tls_certs.Ca(d, "testca")
        pair = ca.leaf("localhost", ["localhost", "127.0.0.1"])
        os.makedirs(os.path.join(d, "static"))
        with open(os.path.join(d, "static", "big.bin"), "wb") as f:
            f.truncate(100 << 20)
        srv = subprocess.Popen([server_exe, *pair], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               env={**os.environ, "TLS_DIR": d, "TLS_HANDSHAKE_MS": "500"})
        port = int(srv.stdout.readline())
        ctx = ssl.create_default_context(cafile=ca.cert)
        try:
            # The static file cache keeps the file open once served: warm it first.
            stats(ctx, port, "/static/big.bin")
            base = stats(ctx, port)
            resets(ctx, port, 100 if SMALL else 1000)
            garbage(port)
            stall(ctx, port)
            rng = random.Random(7)
            vanish(ctx, port, "/big?mib=100", 2 if SMALL else 4, rng)
            vanish(ctx, port, "/static/big.bin", 2 if SMALL else 4, rng)
            check(srv.poll() is None, "the server lives")
            end = time.time() + 20
            while True:
                now = stats(ctx, port)
                back = all(now[k] == base[k] for k in ("conns", "fds", "live")) and now["wrapped"] == now["freed"]
                if back or time.time() > end:
                    break
                time.sleep(0.2)
            check(now["conns"] == base["conns"], f"connections back to the baseline ({base['conns']} -> {now['conns']})")
            check(now["fds"] == base["fds"], f"descriptors back to the baseline ({base['fds']} -> {now['fds']})")
            check(now["live"] == base["live"], f"tern_bytes alive back to the baseline ({base['live']} -> {now['live']})")
            check(int(now["wrapped"]) > 0 and now["wrapped"] == now["freed"],
                  f"every wrapped buffer freed exactly once ({now['wrapped']} wrapped, {now['freed']} freed)")
        finally:
            srv.stdin.close()
            rc = srv.wait(timeout=30)
            check(rc == 0, f"the server exits cleanly (status {rc})")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"{passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main(sys.argv[1])
