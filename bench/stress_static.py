#!/usr/bin/env python3
"""Stress run of tern's static files: REQUESTS (100,000) well-formed requests against ONE
c-examples/static_server, from THREADS client threads:

  - small files (200 files of 100 B .. 16 KiB), checked byte for byte: GET, plus some
    Range (206), If-None-Match (304) and HEAD;
  - connections of three kinds: keep-alive (1..50 requests each), `Connection: close`
    (one request each), and aborted large downloads (GET of a 64 MiB file, read a random
    amount, then reset with SO_LINGER {1, 0}); about 1 connection in 40 is aborted.

Every well-formed request must succeed (a wrong status, header or byte, a reset or a
timeout is a failure). Before and after, the server's open descriptors (/proc/PID/fd)
and RSS (/proc/PID/status VmRSS) are compared: both measured after a warm-up, a 2 s
wait (the server's file cache keeps a file open for at most 1 s after it was resolved
and is swept on the next lookup) and one request. Descriptors must be equal; RSS may
grow by at most --rss-slack-kib (allocator noise). Exit 0 on success, 1 on failure.

  bench/stress_static.py [--server build/examples/static_server] [--requests 100000]
                         [--threads 8] [--rss-slack-kib 1024] [--seed N]
                         [--abort-share 0.025] [--close-share 0.275]
"""

import argparse
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

TIMEOUT = 10.0
BIG = "big.bin"
BIG_SIZE = 64 << 20


class Failure(Exception):
    pass


def make_tree(root, rnd):
    files = {}
    for i in range(200):
        data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(100, 16384)))
        name = f"f{i:03d}.bin" if i % 2 else f"f{i:03d}.txt"
        files[name] = data
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    with open(os.path.join(root, BIG), "wb") as f:
        f.truncate(BIG_SIZE)
    return files


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(binary, root):
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen([binary, root, str(port)], stdout=subprocess.DEVNULL)
        end = time.time() + 10
        while time.time() < end and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proc, port
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            sys.exit("stress_static: the server did not accept connections within 10 s")
    sys.exit("stress_static: the server could not start")


class Conn:
    """A raw HTTP/1.1 connection with a receive buffer."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def fill(self):
        chunk = self.s.recv(262144)
        if not chunk:
            raise Failure("EOF in the middle of a response")
        self.buf += chunk

    def response(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            hdrs[k.strip().lower()] = v.strip()
        n = 0 if head_only or status == 304 else int(hdrs.get(b"content-length", b"0"))
        while len(self.buf) < n:
            self.fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body

    def eof(self):
        """After Connection: close: nothing more, then EOF."""
        while True:
            chunk = self.s.recv(65536)
            if not chunk:
                return
            raise Failure(f"bytes after the last response: {chunk[:60]!r}")

    def reset(self):
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.s.close()

    def close(self):
        self.s.close()


def one_request(conn, rnd, files, etags, close):
    """Sends one well-formed request on conn, checks the answer."""
    name = rnd.choice(list(files))
    data = files[name]
    kind = rnd.random()
    extra = b"Connection: close\r\n" if close else b""
    method = b"GET"
    if kind < 0.1:
        a = rnd.randrange(len(data))
        b = rnd.randrange(a, len(data))
        extra += b"Range: bytes=%d-%d\r\n" % (a, b)
        want = (206, data[a:b + 1])
    elif kind < 0.2 and name in etags:
        extra += b"If-None-Match: " + etags[name] + b"\r\n"
        want = (304, b"")
    elif kind < 0.25:
        method = b"HEAD"
        want = (200, b"")
    else:
        want = (200, data)
    conn.s.sendall(method + b" /" + name.encode() + b" HTTP/1.1\r\nHost: s\r\n" + extra + b"\r\n")
    status, hdrs, body = conn.response(head_only=method == b"HEAD")
    if (status, body) != want:
        raise Failure(f"{method.decode()} /{name} ({extra!r}): status {status}, "
                      f"{len(body)} bytes (want {want[0]}, {len(want[1])} bytes)")
    if method == b"HEAD" and hdrs.get(b"content-length") != str(len(data)).encode():
        raise Failure(f"HEAD /{name}: Content-Length {hdrs.get(b'content-length')}")
    if status == 200 and b"etag" in hdrs:
        etags[name] = hdrs[b"etag"]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = 0
        self.aborted = 0
        self.conns = 0
        self.errors = []

    def add(self, ok, failed, aborted, conns, errors):
        with self.lock:
            self.ok += ok
            self.failed += failed
            self.aborted += aborted
            self.conns += conns
            self.errors.extend(errors[: max(0, 10 - len(self.errors))])


def worker(port, files, quota, seed, stats, abort_share, close_share):
    rnd = random.Random(seed)
    etags = {}
    ok = failed = aborted = conns = 0
    errors = []
    while ok + failed < quota:
        r = rnd.random()
        conns += 1
        if r < abort_share:
            # aborted large download: read a random amount (0 .. 4 MiB), then RST
            try:
                c = Conn(port)
                c.s.sendall(b"GET /" + BIG.encode() + b" HTTP/1.1\r\nHost: s\r\n\r\n")
                want = rnd.randrange(4 << 20)
                got = 0
                while got < want:
                    chunk = c.s.recv(min(262144, want - got))
                    if not chunk:
                        raise Failure("EOF during a large download")
                    got += len(chunk)
                c.reset()
                aborted += 1
            except (OSError, Failure) as e:
                failed += 1  # the request was well-formed: its start must work
                errors.append(f"large download: {e}")
            continue
        close = r < abort_share + close_share
        n = 1 if close else rnd.randint(1, 50)
        n = min(n, quota - ok - failed)
        try:
            c = Conn(port)
        except OSError as e:
            failed += 1
            errors.append(f"connect: {e}")
            continue
        try:
            for i in range(n):
                one_request(c, rnd, files, etags, close)
                ok += 1
            if close:
                c.eof()
        except (OSError, Failure, ValueError, IndexError) as e:
            failed += 1
            errors.append(str(e) or type(e).__name__)
        c.close()
        if len(errors) > 20:
            break
    stats.add(ok, failed, aborted, conns, errors)


def measure(pid):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return fds, rss


def settle(port, files):
    """Wait out the file cache (1 s), then one request sweeps it."""
    time.sleep(2.0)
    c = Conn(port)
    one_request(c, random.Random(0), {"f000.txt": files["f000.txt"]}, {}, True)
    c.eof()
    c.close()
    time.sleep(0.2)


def run(proc, port, files, args, n, label):
    stats = Stats()
    threads = [threading.Thread(target=worker,
                                args=(port, files, n // args.threads + (i < n % args.threads),
                                      args.seed * 1000 + i + (label == "warm-up") * 500, stats,
                                      args.abort_share, args.close_share))
               for i in range(args.threads)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.time() - t0
    print(f"{label}: {stats.ok} requests ok, {stats.failed} failed, {stats.aborted} aborted "
          f"downloads, {stats.conns} connections in {dt:.1f} s ({stats.ok / dt:.0f} req/s)")
    for e in stats.errors:
        print(f"  failure: {e}")
    if proc.poll() is not None:
        print(f"stress_static: FAIL: the server exited with {proc.returncode}")
        sys.exit(1)
    return stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", default="build/examples/static_server")
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--rss-slack-kib", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--abort-share", type=float, default=0.025,
                    help="share of connections that are aborted large downloads")
    ap.add_argument("--close-share", type=float, default=0.275,
                    help="share of connections with one request and Connection: close")
    args = ap.parse_args()
    if not os.access(args.server, os.X_OK):
        sys.exit(f"stress_static: {args.server} is not built (cmake --build build)")
    print(f"seed {args.seed}, {args.requests} requests, {args.threads} threads")
    tmp = tempfile.mkdtemp(prefix="tern_stress_static.")
    proc = None
    try:
        files = make_tree(tmp, random.Random(args.seed))
        proc, port = start_server(args.server, tmp)
        # warm-up: the allocator and the cache reach their steady state
        warm = run(proc, port, files, args, min(5000, args.requests), "warm-up")
        settle(port, files)
        fds0, rss0 = measure(proc.pid)
        main_run = run(proc, port, files, args, args.requests, "run")
        settle(port, files)
        fds1, rss1 = measure(proc.pid)
        print(f"server descriptors: {fds0} before, {fds1} after; "
              f"RSS: {rss0} KiB before, {rss1} KiB after ({rss1 - rss0:+d} KiB, "
              f"{(rss1 - rss0) * 1024 / max(1, main_run.conns):+.0f} B per connection)")
        bad = []
        if warm.failed or main_run.failed:
            bad.append(f"{warm.failed + main_run.failed} well-formed requests failed")
        if main_run.ok != args.requests:
            bad.append(f"{main_run.ok} of {args.requests} requests done")
        if fds1 != fds0:
            bad.append(f"descriptors {fds0} -> {fds1}")
        if rss1 - rss0 > args.rss_slack_kib:
            bad.append(f"RSS grew by {rss1 - rss0} KiB (slack {args.rss_slack_kib} KiB)")
        if bad:
            print("stress_static: FAIL: " + "; ".join(bad))
            sys.exit(1)
        print("stress_static: PASS")
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
