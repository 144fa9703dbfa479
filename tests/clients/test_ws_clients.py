#!/usr/bin/env python3
"""WebSocket interop: Python `websockets` against tern's server (ws_test_server), a
`websockets` server against tern's client (ws_client), and raw frames that break the
protocol, each of which must get its close code and cost only its own connection.

usage: test_ws_clients.py WS_TEST_SERVER WS_CLIENT

Every wait is bounded; a failure says what was expected.
"""
import asyncio
import os
import socket
import struct
import subprocess
import sys
import time

import websockets
from websockets.exceptions import ConnectionClosed

MAX_MESSAGE = 1 << 20
TIMEOUT = 10


def fail(msg):
    print(f"test_ws_clients: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Server:
    """ws_test_server with DEFLATE mode; its stdout lines (closes, errors) are kept."""

    def __init__(self, exe, deflate):
        self.p = subprocess.Popen([exe, str(deflate), str(MAX_MESSAGE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.p.stdout.readline())
        self.url = f"ws://127.0.0.1:{self.port}/t"

    def stop(self):
        self.p.stdin.close()
        out = self.p.stdout.read()
        self.p.wait(TIMEOUT)
        check(self.p.returncode == 0, f"ws_test_server exited with {self.p.returncode}")
        return out.splitlines()


async def echo_round_trips(url, compression):
    async with websockets.connect(url, compression=compression, max_size=None) as ws:
        ext = ws.response.headers.get("Sec-WebSocket-Extensions")
        if compression is None:
            check(ext is None, f"no deflate offered, yet the server answered {ext!r}")
        else:
            check(ext is not None and "permessage-deflate" in ext, f"deflate offered and on, answered {ext!r}")
        for msg in ["hello", "é€𝄞 unicode", b"\x00\x01\x02binary", "x" * 100_000, os.urandom(MAX_MESSAGE)]:
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), TIMEOUT)
            check(got == msg, f"echo of a {len(msg)}-byte {type(msg).__name__} differs")
        # A fragmented message comes back whole.
        parts = ["frag", "mented ", "text"]
        await ws.send(iter(parts))
        got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        check(got == "".join(parts), f"fragmented message echoed as {got!r}")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, TIMEOUT)
    check(ws.close_code == 1000, f"close code {ws.close_code}")


async def close_codes(url):
    # The client closes with a code: the server answers with the same.
    async with websockets.connect(url) as ws:
        await ws.close(4001, "done here")
    check(ws.close_code == 4001, f"server answered a 4001 close with {ws.close_code}")
    # The server closes with a code (tern_ws_close): the client sees it.
    async with websockets.connect(url) as ws:
        await ws.send("close 4002")
        try:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
            fail("a message came instead of the close")
        except ConnectionClosed as e:
            check(e.rcvd is not None and e.rcvd.code == 4002, f"server's close: {e.rcvd}")


async def subprotocol(url):
    async with websockets.connect(url, subprotocols=["other", "echo"]) as ws:
        check(ws.subprotocol == "echo", f"subprotocol {ws.subprotocol!r}")
    async with websockets.connect(url) as ws:
        check(ws.subprotocol is None, f"subprotocol {ws.subprotocol!r} without an offer")


def raw_upgrade(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.sendall(b"GET /raw HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        check(chunk, "server closed during the handshake")
        head += chunk
    check(head.startswith(b"HTTP/1.1 101 "), f"handshake answer {head[:40]!r}")
    check(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head, "wrong Sec-WebSocket-Accept (RFC 6455's example key)")
    return s, head.partition(b"\r\n\r\n")[2]


def frame(op, payload, fin=True, rsv=0, mask=True):
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_close(s, rest):
    """Reads frames until the server's close frame and then EOF: its code."""
    data = rest
    deadline = time.time() + TIMEOUT
    while True:
        while len(data) >= 2:
            op, n = data[0] & 0x0F, data[1] & 0x7F
            off = 2
            if n == 126:
                n, off = struct.unpack("!H", data[2:4])[0], 4
            elif n == 127:
                n, off = struct.unpack("!Q", data[2:10])[0], 10
            if len(data) < off + n:
                break
            payload, data = data[off:off + n], data[off + n:]
            if op == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                # then the server closes TCP (it closes first)
                s.settimeout(max(0.1, deadline - time.time()))
                try:
                    while s.recv(4096):
                        pass
                except (ConnectionResetError, socket.timeout):
                    pass
                return code
        check(time.time() < deadline, "no close frame from the server")
        s.settimeout(max(0.1, deadline - time.time()))
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            fail("the server reset instead of closing")
        check(chunk, f"EOF without a close frame (had {data[:20]!r})")
        data += chunk


BAD_INPUT = [
    ("reserved bits set", 1002, lambda: frame(1, b"hi", rsv=2)),
    ("RSV1 without permessage-deflate", 1002, lambda: frame(1, b"hi", rsv=4)),
    ("unknown opcode", 1002, lambda: frame(3, b"")),
    ("fragmented ping", 1002, lambda: frame(9, b"p", fin=False)),
    ("ping over 125 bytes", 1002, lambda: frame(9, b"p" * 126)),
    ("continuation with nothing to continue", 1002, lambda: frame(0, b"x")),
    ("new message inside a fragmented one", 1002, lambda: frame(1, b"a", fin=False) + frame(1, b"b")),
    ("unmasked frame from a client", 1002, lambda: frame(1, b"hi", mask=False)),
    ("close with a 1-byte payload", 1002, lambda: frame(8, b"\x03")),
    ("close with code 1005", 1002, lambda: frame(8, struct.pack("!H", 1005))),
    ("close with code 999", 1002, lambda: frame(8, struct.pack("!H", 999))),
    ("close reason not UTF-8", 1007, lambda: frame(8, struct.pack("!H", 1000) + b"\xff")),
    ("text not UTF-8", 1007, lambda: frame(1, b"ok \xc3\x28")),
    ("a message over TERN_OPT_MAX_WS_MESSAGE", 1009, lambda: frame(2, b"z" * (MAX_MESSAGE + 1))),
]


async def bad_input(server):
    """Each bad input on its own connection; a healthy client beside them echoes after
    every one: none may cost it."""
    loop = asyncio.get_running_loop()
    async with websockets.connect(server.url) as healthy:
        async def still_echoes(after):
            await healthy.send(f"after {after}")
            got = await asyncio.wait_for(healthy.recv(), TIMEOUT)
            check(got == f"after {after}", f"the healthy client got {got!r} after {after}")

        for what, want, make in BAD_INPUT:
            s, rest = await loop.run_in_executor(None, raw_upgrade, server.port)
            await loop.run_in_executor(None, s.sendall, make())
            code = await loop.run_in_executor(None, read_close, s, rest)
            s.close()
            check(code == want, f"{what}: closed with {code}, want {want}")
            await still_echoes(what)
            print(f"  {what}: {code}")
        # Invalid UTF-8 is found at the first bad byte, before the frame is complete.
        s, rest = await loop.run_in_executor(None, raw_upgrade, server.port)
        head = frame(1, b"\xff" + b"a" * 1000)
        await loop.run_in_executor(None, s.sendall, head[:20])  # header, key and a few bytes
        code = await loop.run_in_executor(None, read_close, s, rest)
        s.close()
        check(code == 1007, f"invalid UTF-8 inside a frame not yet complete: closed with {code}")
        await still_echoes("a bad byte mid-frame")
        print("  invalid UTF-8 caught mid-frame: 1007")


async def client_against_websockets(client_exe, compression):
    """tern's client (ws_client) talking to a websockets server."""
    seen = {}

    async def handler(ws):
        seen["ext"] = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
        async for msg in ws:
            await ws.send(msg.upper())

    async with websockets.serve(handler, "127.0.0.1", 0, compression=compression, max_size=None) as srv:
        port = srv.sockets[0].getsockname()[1]
        lines = ["first line", "é unicode", "x" * 60_000]
        proc = await asyncio.create_subprocess_exec(client_exe, f"ws://127.0.0.1:{port}/up", limit=1 << 20,
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        proc.stdin.write("\n".join(lines).encode() + b"\n")
        await proc.stdin.drain()
        got = []
        for _ in lines:
            got.append((await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode().rstrip("\n"))
        # Every echo is in: the end of stdin makes the client close (1000) and exit.
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), TIMEOUT)
    check(proc.returncode == 0, f"ws_client exited with {proc.returncode}")
    check(got == [f"text: {l.upper()}" for l in lines], f"ws_client printed {[g[:40] for g in got]}")
    return seen.get("ext")


async def main(server_exe, client_exe):
    for deflate in (0, 1, 2):
        srv = Server(server_exe, deflate)
        await echo_round_trips(srv.url, None)
        if deflate:
            await echo_round_trips(srv.url, "deflate")
        await close_codes(srv.url)
        await subprotocol(srv.url)
        if deflate == 0:
            await bad_input(srv)
        lines = srv.stop()
        check("close 4001" in lines, f"the server did not report the 4001 close: {lines[:10]}")
        print(f"server with TERN_OPT_WS_DEFLATE={deflate}: ok")
    ext = await client_against_websockets(client_exe, None)
    check(ext is None, f"extension {ext!r} agreed with a server that refuses compression")
    await client_against_websockets(client_exe, "deflate")
    print("tern's client against websockets: ok (with and without deflate)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(sys.argv[1], sys.argv[2]))
    print("test_ws_clients: PASS")
