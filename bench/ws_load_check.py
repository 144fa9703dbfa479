#!/usr/bin/env python3
"""Checks bench/ws_load against scripted WebSocket servers, so its figures can be trusted.

    python3 bench/ws_load_check.py BUILD/bench/ws_load

Each case runs a small server on 127.0.0.1 (raw sockets, this file's own RFC 6455
framing) that behaves well or breaks one rule, runs ws_load against it, and checks
both sides: what ws_load reports (errors, losses, exit status) and what the server saw
of ws_load's frames (every one masked with a key that changes, FIN set, RSV clear, the
right opcode and length; a close handshake at the end). Prints "N passed, N failed".
Each case is bounded (ws_load gets 30 s at most).
"""
import base64
import hashlib
import os
import socket
import struct
import subprocess
import sys
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def server_frame(op, payload, fin=True, rsv=0, mask=False, force_126=False):
    """A frame as a server would send it, or with one rule broken on request."""
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    if n < 126 and not force_126:
        head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if mask:
        key = os.urandom(4)
        return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))
    return head + payload


class Conn:
    """One accepted connection: the handshake, then strict reading of client frames."""

    def __init__(self, sock, seen):
        self.s = sock
        self.seen = seen  # shared observations, under seen["lock"]
        self.sent_close = False

    def note(self, key, value=1):
        with self.seen["lock"]:
            self.seen[key] = self.seen.get(key, 0) + value

    def violation(self, what):
        with self.seen["lock"]:
            self.seen.setdefault("violations", []).append(what)

    def handshake(self, accept_ok=True):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.s.recv(4096)
            if not chunk:
                raise EOFError
            head += chunk
        key = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        if key is None or len(base64.b64decode(key)) != 16:
            self.violation("bad Sec-WebSocket-Key")
            key = b"x"
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if not accept_ok:
            accept = base64.b64encode(hashlib.sha1(b"wrong" + GUID).digest())
        self.s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")

    def read_frame(self):
        """(op, payload) of the next client frame, checking what RFC 6455 requires of it."""
        b0, b1 = recv_exact(self.s, 2)
        if not b1 & 0x80:
            self.violation("unmasked client frame")
        if b0 & 0x70:
            self.violation("RSV bits set")
        if not b0 & 0x80:
            self.violation("fragmented client frame")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", recv_exact(self.s, 2))[0]
        elif n == 127:
            n = struct.unpack("!Q", recv_exact(self.s, 8))[0]
        key = recv_exact(self.s, 4) if b1 & 0x80 else b"\0\0\0\0"
        with self.seen["lock"]:
            self.seen.setdefault("keys", set()).add(key)
        data = recv_exact(self.s, n)
        return b0 & 0x0F, bytes(c ^ key[i % 4] for i, c in enumerate(data))

    def closing(self, payload):
        """The client's close frame: answer it with the same code (unless this side began
        the close) and close TCP first."""
        self.note("close_frames")
        if payload[:2] == struct.pack("!H", 1000):
            self.note("close_1000")
        if not self.sent_close:
            self.s.sendall(server_frame(8, payload[:2]))
        self.s.close()


def echo_server(behaviour):
    """Per connection: echo binary messages, breaking a rule as `behaviour` says."""

    def run(conn):
        conn.handshake(accept_ok=behaviour != "bad_accept")
        count = 0
        while True:
            op, data = conn.read_frame()
            if op == 8:
                return conn.closing(data)
            if op == 10:
                conn.note("pongs_ok" if data == b"are you there" else "pongs_wrong")
                continue
            if op != 2 or len(data) != conn.seen["size"]:
                conn.violation(f"message op {op}, {len(data)} bytes")
            count += 1
            s = conn.s
            if behaviour == "masked":
                s.sendall(server_frame(2, data, mask=True))
            elif behaviour == "rsv":
                s.sendall(server_frame(2, data, rsv=0x40))
            elif behaviour == "nonminimal":
                s.sendall(server_frame(2, data, force_126=True))
            elif behaviour == "corrupt" and count == 3:
                s.sendall(server_frame(2, data[:20] + bytes([data[20] ^ 1]) + data[21:]))
            elif behaviour == "fragmented":
                s.sendall(server_frame(2, data[:10], fin=False) + server_frame(9, b"are you there") +
                          server_frame(0, data[10:30], fin=False) + server_frame(0, data[30:]))
            elif behaviour == "server_close" and count == 2:
                s.sendall(server_frame(2, data) + server_frame(8, struct.pack("!H", 1001)))
                conn.sent_close = True
            elif behaviour == "text":
                s.sendall(server_frame(1, data))
            else:
                s.sendall(server_frame(2, data))

    return run


def broadcast_server(behaviour):
    """Waits for "start RATE COUNT" on any connection, then sends COUNT stamped messages
    (breaking order or dropping one as `behaviour` says) and "done" to every connection."""

    def run(conn):
        with conn.seen["lock"]:  # before the 101: ws_load starts once it has every 101
            conn.seen.setdefault("conns", []).append(conn)
            everyone = conn.seen["conns"]
        conn.handshake()
        while True:
            op, data = conn.read_frame()
            if op == 8:
                return conn.closing(data)
            if op == 1 and data.startswith(b"start "):
                _, rate, count = data.split()
                conn.note("starts")
                seqs = list(range(int(count)))
                if behaviour == "drop":
                    seqs.remove(5)
                elif behaviour == "swap":
                    seqs[3], seqs[4] = seqs[4], seqs[3]
                for c in list(everyone):
                    out = b""
                    for q in seqs:
                        stamp = time_ns_monotonic()
                        out += server_frame(2, struct.pack("<QQ", stamp, q) + bytes(48))
                    c.s.sendall(out + server_frame(1, b"done"))

    return run


def time_ns_monotonic():
    import time
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def serve(handler, seen):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)

    def accept_loop():
        while True:
            try:
                s, _ = ls.accept()
            except OSError:
                return
            t = threading.Thread(target=guarded, args=(handler, Conn(s, seen)), daemon=True)
            t.start()

    threading.Thread(target=accept_loop, daemon=True).start()
    return ls


def guarded(handler, conn):
    try:
        handler(conn)
    except (EOFError, OSError):
        pass
    finally:
        try:
            conn.s.close()
        except OSError:
            pass


def run_load(ws_load, args, stdin_data=None):
    p = subprocess.run([ws_load] + args + ["-q"], input=stdin_data, capture_output=True, timeout=30)
    result = {}
    for line in p.stdout.decode().splitlines():
        if line.startswith("result "):
            for kv in line.split()[1:]:
                k, _, v = kv.partition("=")
                result[k] = v
    return p.returncode, result, p.stderr.decode()


CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def echo_case(ws_load, behaviour, conns=3, size=64, window=1):
    seen = {"lock": threading.Lock(), "size": size}
    ls = serve(echo_server(behaviour), seen)
    port = ls.getsockname()[1]
    rc, res, err = run_load(ws_load, ["echo", str(port), "-c", str(conns), "-d", "1", "-s", str(size),
                                      "-w", str(window)])
    ls.close()
    return rc, res, err, seen


def expect(cond, what, failures):
    if not cond:
        failures.append(what)


def frames_were_clean(seen, failures):
    expect(not seen.get("violations"), f"client frames broke rules: {seen.get('violations', [])[:3]}", failures)
    expect(len(seen.get("keys", ())) > 10, "masking keys do not change from frame to frame", failures)


@case
def good_echo(ws_load):
    f = []
    rc, res, err, seen = echo_case(ws_load, "good")
    expect(rc == 0 and res.get("errors") == "0", f"rc {rc}, {res}, {err}", f)
    expect(int(res.get("messages", 0)) > 100, "hardly any messages", f)
    expect(res.get("lost") == "0", "messages lost", f)
    frames_were_clean(seen, f)
    expect(seen.get("close_1000") == 3 and res.get("clean_closes") == "3",
           f"close handshake: server saw {seen.get('close_1000')} close 1000, ws_load {res.get('clean_closes')}", f)
    return f


@case
def good_echo_window_and_16bit_lengths(ws_load):
    f = []
    rc, res, err, seen = echo_case(ws_load, "good", size=1000, window=8)
    expect(rc == 0 and res.get("errors") == "0" and res.get("lost") == "0", f"rc {rc}, {res}, {err}", f)
    frames_were_clean(seen, f)
    return f


@case
def fragmented_echo_with_ping(ws_load):
    f = []
    rc, res, err, seen = echo_case(ws_load, "fragmented")
    expect(rc == 0 and res.get("errors") == "0", f"valid fragments refused: rc {rc}, {err}", f)
    expect(seen.get("pongs_ok", 0) > 0 and not seen.get("pongs_wrong"), "ping not answered with its payload", f)
    frames_were_clean(seen, f)
    return f


def broken_echo(behaviour, message):
    def check(ws_load):
        f = []
        rc, res, err, seen = echo_case(ws_load, behaviour)
        expect(rc == 1 and int(res.get("errors", 0)) >= 1, f"{behaviour}: not reported (rc {rc}, {res})", f)
        expect(message in err, f"{behaviour}: stderr lacks '{message}': {err[:200]}", f)
        return f

    check.__name__ = f"refuses_{behaviour}"
    return check


for b, m in [("masked", "masked frame"), ("rsv", "RSV bits"), ("nonminimal", "not minimally encoded"),
             ("corrupt", "differs at byte 20"), ("bad_accept", "Sec-WebSocket-Accept"), ("text", "got op 1")]:
    case(broken_echo(b, m))


@case
def server_close_counts_as_early(ws_load):
    f = []
    rc, res, err, seen = echo_case(ws_load, "server_close")
    expect(rc == 1 and int(res.get("closed_early", 0)) == 3, f"closed_early not counted: {res}", f)
    expect(seen.get("close_frames") == 3, "ws_load did not answer the server's close frames", f)
    return f


def broadcast_case(ws_load, behaviour, conns=4, count=50):
    seen = {"lock": threading.Lock()}
    ls = serve(broadcast_server(behaviour), seen)
    port = ls.getsockname()[1]
    rc, res, err = run_load(ws_load, ["broadcast", str(port), "-c", str(conns), "-n", str(count), "-S", "5"])
    ls.close()
    return rc, res, err, seen


@case
def good_broadcast(ws_load):
    f = []
    rc, res, err, seen = broadcast_case(ws_load, "good")
    expect(rc == 0 and res.get("deliveries") == "200" and res.get("lost") == "0" and res.get("done") == "4/4",
           f"rc {rc}, {res}, {err}", f)
    expect(seen.get("starts") == 1, f"{seen.get('starts')} start messages, not 1", f)
    expect(not seen.get("violations"), f"client frames broke rules: {seen.get('violations')}", f)
    return f


@case
def broadcast_loss_counted(ws_load):
    f = []
    rc, res, err, seen = broadcast_case(ws_load, "drop")
    expect(rc == 1 and res.get("lost") == "4" and res.get("deliveries") == "196", f"drop: {res}", f)
    return f


@case
def broadcast_reorder_refused(ws_load):
    f = []
    rc, res, err, seen = broadcast_case(ws_load, "swap")
    expect(rc == 1 and int(res.get("errors", 0)) == 4 and "sequence 3 after 5" in err, f"swap: {res} {err[:200]}", f)
    return f


@case
def idle_holds_until_stdin_closes(ws_load):
    f = []
    seen = {"lock": threading.Lock(), "size": 64}
    ls = serve(echo_server("good"), seen)
    port = ls.getsockname()[1]
    p = subprocess.Popen([ws_load, "idle", str(port), "-c", "20", "-q"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    try:
        first = p.stdout.readline().decode().strip()
        expect(first == "ready 20", f"first line '{first}'", f)
        expect(p.poll() is None, "exited before stdin closed", f)
        p.stdin.close()
        rest = p.stdout.read().decode()
        rc = p.wait(timeout=10)
        expect(rc == 0 and "held=20" in rest and "clean_closes=20" in rest, f"rc {rc}: {rest}", f)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        ls.close()
    return f


def main():
    ws_load = sys.argv[1] if len(sys.argv) > 1 else "build/bench/ws_load"
    passed = failed = 0
    for c in CASES:
        f = c(ws_load)
        if f:
            failed += 1
            print(f"FAIL {c.__name__}: " + "; ".join(f))
        else:
            passed += 1
            print(f"ok   {c.__name__}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
