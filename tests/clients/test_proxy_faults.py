#!/usr/bin/env python3
"""The leak test across processes: c-examples/reverse_proxy in front of a faulty
Python backend (answers well, closes idle connections, resets before and in the
middle of a response, stalls past TERN_PROXY_TIMEOUT_MS, answers garbage or a bad
Content-Length) and, as a second proxy, in front of a port that refuses. 10,000
requests from 20 client threads (http.client, keep-alive): each gets 200 with the
right body, 502 or 504 as its fault says, or, for a reset after the head went out, a
cut connection; none hangs; the proxies stay up and their descriptors return to
their baseline.

  usage: test_proxy_faults.py REVERSE_PROXY [REQUESTS]
"""

import http.client
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

FAULTS = ["ok"] * 10 + ["okclose"] * 3 + ["reset0", "resetmid", "stall", "garbage", "badlen", "refused"] * 1
TIMEOUT_MS = 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rst(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def serve_backend_conn(conn):
    conn.settimeout(0.5)  # idle connections are closed after half a second
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            while len(buf) < length:
                buf += conn.recv(65536)
            buf = buf[length:]
            path = head.split(b" ")[1].decode()[1:]
            if path in ("ok", "okclose"):
                body = f"body-of-{path}".encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                if path == "okclose":
                    return
            elif path == "reset0":
                return rst(conn)
            elif path == "resetmid":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
                time.sleep(0.01)
                return rst(conn)
            elif path == "garbage":
                conn.sendall(b"garbage garbage\r\n\r\n")
            elif path == "badlen":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n")
            elif path == "stall":
                conn.settimeout(10)
                while conn.recv(65536):
                    pass
                return
    except OSError:
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def backend(lsock):
    while True:
        try:
            c, _ = lsock.accept()
        except OSError:
            return
        threading.Thread(target=serve_backend_conn, args=(c,), daemon=True).start()


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def start_proxy(exe, backend_url):
    port = free_port()
    env = dict(os.environ, TERN_PROXY_TIMEOUT_MS=str(TIMEOUT_MS))
    p = subprocess.Popen([exe, str(port), backend_url], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    p.stdout.readline()  # the banner: listening
    return p, port


failures = []
post_races = []
counts = {}
lock = threading.Lock()


def client(ports, n, seed):
    rnd = random.Random(seed)
    conns = {}
    for _ in range(n):
        fault = rnd.choice(FAULTS)
        port = ports["refused" if fault == "refused" else "good"]
        c = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conns[port] = c
        method = "POST" if rnd.random() < 0.2 else "GET"
        outcome = None
        try:
            c.request(method, "/" + fault, body=b"posted" if method == "POST" else None)
            r = c.getresponse()
            body = r.read()
            outcome = (r.status, body)
        except socket.timeout:
            outcome = "hang"
        except (http.client.HTTPException, OSError):
            outcome = "cut"
        if outcome == "cut" or outcome == "hang":
            c.close()
            conns.pop(port)
        want = {"ok": (200, b"body-of-ok"), "okclose": (200, b"body-of-okclose"), "stall": 504}.get(fault, 502)
        status = outcome[0] if isinstance(outcome, tuple) else outcome
        if fault == "resetmid":
            # Cut after the head went out, or 502 when the reset came before it was read.
            good = status in ("cut", 502)
        else:
            good = outcome == want if isinstance(want, tuple) else status == want
        # A POST that a pooled connection lost (the backend closed it as the request
        # went out) is not retried: it is not idempotent. 502, and counted.
        race = not good and method == "POST" and status == 502
        with lock:
            counts[fault] = counts.get(fault, 0) + 1
            if race:
                post_races.append(fault)
            elif not good:
                failures.append(f"{method} /{fault}: {outcome!r}")
    for c in conns.values():
        c.close()


def main(exe, total):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    threading.Thread(target=backend, args=(lsock,), daemon=True).start()
    good, gport = start_proxy(exe, f"http://127.0.0.1:{lsock.getsockname()[1]}")
    refused, rport = start_proxy(exe, f"http://127.0.0.1:{free_port()}")
    base = (fds(good.pid), fds(refused.pid))
    t0 = time.time()
    threads = [threading.Thread(target=client, args=({"good": gport, "refused": rport}, total // 20, i)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    took = time.time() - t0
    print(f"{sum(counts.values())} requests in {took:.1f} s: {counts}", flush=True)
    ok = not failures and sum(counts.values()) == total // 20 * 20
    # About a fifth of the requests are POSTs; few of them may meet the race.
    print(("ok   " if len(post_races) <= total // 100 else "FAIL ") +
          f"{len(post_races)} POSTs lost by a pooled connection closed under them (502, not retried)")
    ok = ok and len(post_races) <= total // 100
    for f in failures[:20]:
        print("FAIL", f)
    # Descriptors back to baseline once the backend has closed the idle pooled ones.
    end = time.time() + 10
    now = base
    while time.time() < end:
        now = (fds(good.pid), fds(refused.pid))
        if now == base:
            break
        time.sleep(0.1)
    alive = good.poll() is None and refused.poll() is None
    print(("ok   " if now == base else "FAIL ") + f"proxy descriptors back to baseline: {base} -> {now}")
    print(("ok   " if alive else "FAIL ") + "both proxies still running")
    for p in (good, refused):
        p.terminate()
        p.wait(timeout=10)
    lsock.close()
    sys.exit(0 if ok and now == base and alive else 1)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10000)
