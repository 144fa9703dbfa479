#!/usr/bin/env python3
"""The demo without a browser (the browser_demo test drives it in Chromium): what a
user and its page rely on, through http.client and raw sockets on 127.0.0.1.

  - it prints its URL and serves the page, its script and its style (no other host
    named in them: the page works with nothing else running);
  - GET /api/stats is JSON answered by the worker thread (a deferred answer);
  - uploads are streamed with bounded memory: 48 MiB sent in pieces leaves the demo's
    peak RSS (VmHWM) within 16 MiB of where it was, and the file on disk is the same;
    a name is cleaned ("../x y" is stored as "_x_y"), a second upload of a name gets
    "-2", no name is 400, a body over the 64 MiB limit gets 413; the list shows them;
  - the chat and the live panel over the WebSocket (with Python's websockets, when it is
    installed): a hello, our own chat line back, two stats ticks a second apart;
  - a second demo on the same port says the port is taken and how to pick another;
  - SIGINT stops it: exit status 0, "demo: stopped", no partial file left.

usage: test_demo.py DEMO_BINARY WORK_DIR [--require-websockets]
"""

import asyncio
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

TIMEOUT = 20.0
NAME = "test_demo"


def fail(msg):
    print(f"{NAME}: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def start(binary, uploads, port="0"):
    p = subprocess.Popen([binary, "--port", port, "--uploads", uploads], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + TIMEOUT
    out = ""
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        out += line
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if m:
            return p, int(m.group(1)), out
    p.kill()
    fail(f"no URL printed:\n{out}")


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type", ""), data


def check_page(port):
    for path, kind in (("/", "text/html"), ("/app.js", "javascript"), ("/style.css", "text/css")):
        status, ctype, body = request(port, "GET", path)
        if status != 200 or kind not in ctype:
            fail(f"GET {path}: {status} {ctype}")
        for url in re.findall(rb"https?://[^\s\"'<>)]+", body):
            fail(f"{path} names another host: {url!r} (the page must work offline)")
    status, ctype, body = request(port, "GET", "/api/stats")
    stats = json.loads(body)
    if status != 200 or "json" not in ctype or stats.get("type") != "stats" or stats["requests"] < 3:
        fail(f"/api/stats: {status} {body!r}")
    print(f"{NAME}: page, script, style and /api/stats ok")


def hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    fail("no VmHWM")


def upload_streamed(port, pid, uploads, size):
    """Sends `size` bytes in 256 KiB writes on a raw socket; returns (status, body, sha)."""
    before = hwm_kib(pid)
    digest = hashlib.sha256()
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.sendall(f"POST /api/upload?name=..%2Fbig%20file.bin HTTP/1.1\r\nHost: x\r\n"
              f"Content-Length: {size}\r\n\r\n".encode())
    piece = os.urandom(256 << 10)
    for sent in range(0, size, len(piece)):
        chunk = piece[: min(len(piece), size - sent)]
        digest.update(chunk)
        s.sendall(chunk)
    r = http.client.HTTPResponse(s)
    r.begin()
    body = r.read()
    s.close()
    grew = hwm_kib(pid) - before
    if grew > 16 * 1024:
        fail(f"a {size >> 20} MiB upload raised the peak RSS by {grew} KiB: memory is not bounded")
    return r.status, body, digest.hexdigest(), grew


def check_uploads(port, pid, uploads):
    size = 48 << 20
    status, body, sha, grew = upload_streamed(port, pid, uploads, size)
    if status != 201 or json.loads(body) != {"name": "_big_file.bin", "size": size}:
        fail(f"streamed upload: {status} {body!r}")
    with open(os.path.join(uploads, "_big_file.bin"), "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != sha:
            fail("the stored file differs from what was sent")
    print(f"{NAME}: 48 MiB upload stored as _big_file.bin, peak RSS +{grew} KiB")
    status, _, body = request(port, "POST", "/api/upload?name=..%2Fbig%20file.bin", body=b"second")
    if status != 201 or json.loads(body)["name"] != "_big_file-2.bin":
        fail(f"second upload of a name: {status} {body!r}")
    status, _, body = request(port, "POST", "/api/upload", body=b"x" * 1000)
    if status != 400:
        fail(f"upload without a name: {status} {body!r}")
    status, _, _ = request_oversize(port)
    if status != 413:
        fail(f"an upload over the limit: {status}")
    status, _, body = request(port, "GET", "/api/uploads")
    names = sorted(f["name"] for f in json.loads(body))
    if status != 200 or names != ["_big_file-2.bin", "_big_file.bin"]:
        fail(f"/api/uploads: {status} {names}")
    print(f"{NAME}: names cleaned and numbered, 400 without a name, 413 over the limit, list ok")


def request_oversize(port):
    """Announces 65 MiB: tern answers 413 before the body is sent."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.sendall(b"POST /api/upload?name=huge HTTP/1.1\r\nHost: x\r\nContent-Length: 68157440\r\n\r\n")
    r = http.client.HTTPResponse(s)
    r.begin()
    data = r.read()
    s.close()
    return r.status, "", data


async def websocket_session(port):
    import websockets
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if hello.get("type") != "hello":
            fail(f"first message: {hello}")
        await ws.send('line "one" <b>')
        chat, ticks = None, []
        while chat is None or len(ticks) < 2:
            m = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            if m["type"] == "chat":
                chat = m
            elif m["type"] == "tick":
                ticks.append(m)
        if chat != {"type": "chat", "from": hello["id"], "text": 'line "one" <b>'}:
            fail(f"chat came back as {chat}")
        if not ticks[1]["uptime_s"] > ticks[0]["uptime_s"] or ticks[0]["websockets"] < 1:
            fail(f"ticks: {ticks}")
    print(f"{NAME}: WebSocket hello, chat echo and two ticks ok")


def check_websocket(port, require):
    try:
        import websockets  # noqa: F401
    except ImportError:
        if require:
            fail("python websockets is not installed (pip install websockets)")
        print(f"{NAME}: python websockets not installed: WebSocket part skipped")
        return
    asyncio.run(websocket_session(port))


def check_port_taken(binary, port, uploads):
    p = subprocess.run([binary, "--port", str(port), "--uploads", uploads], capture_output=True, text=True,
                       timeout=TIMEOUT)
    said = p.stdout + p.stderr
    if p.returncode == 0 or "is taken" not in said or f"PORT={port + 1}" not in said:
        fail(f"a second demo on port {port}: exit {p.returncode}, said:\n{said}")
    print(f"{NAME}: a taken port is explained: {said.splitlines()[0]}")


def stop(p, uploads):
    p.send_signal(signal.SIGINT)
    try:
        out, _ = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("the demo did not stop on SIGINT")
    if p.returncode != 0 or "demo: stopped" not in out:
        fail(f"stop: exit {p.returncode}, said:\n{out}")
    left = [n for n in os.listdir(uploads) if n.startswith(".")]
    if left:
        fail(f"partial files left: {left}")
    print(f"{NAME}: stopped cleanly on SIGINT")


def main():
    global NAME
    if len(sys.argv) < 3:
        fail("usage: test_demo.py DEMO_BINARY WORK_DIR [--require-websockets]")
    binary, work = sys.argv[1], sys.argv[2]
    NAME = f"test_demo({os.path.basename(binary)})"
    os.makedirs(work, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        uploads = os.path.join(tmp, "uploads")
        p, port, _ = start(binary, uploads)
        try:
            check_page(port)
            check_uploads(port, p.pid, uploads)
            check_websocket(port, "--require-websockets" in sys.argv)
            check_port_taken(binary, port, os.path.join(tmp, "other"))
        except BaseException:
            p.kill()
            raise
        stop(p, uploads)
    print(f"{NAME}: ok")


if __name__ == "__main__":
    main()
