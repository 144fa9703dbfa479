#!/usr/bin/env python3
"""curl and Python clients against c-examples/static_server (tern_http_serve_dir).

A temp dir holds ROOT (the served directory) and, next to it, secret.txt, which no
request may read. Every check of the table runs twice: once with curl (when CURL is
given) and once with Python's http.client:
  200 with the Content-Type of the extension; index.html for / and /sub/; 301 for a
  directory without its slash; 403 for a directory without index; 404; 405 for POST
  with Allow; HEAD (headers, no body); Range (206, byte-exact, Content-Range), an
  unsatisfiable range (416, Content-Range: bytes */SIZE), If-Range; ETag and
  Last-Modified round trips (304 with the validators the server gave); NAME.gz
  negotiation (Content-Encoding: gzip and Vary with Accept-Encoding: gzip, the plain
  file without; curl --compressed decodes to the plain file).
Then traversal attempts sent raw on a socket (curl and http.client normalize or refuse
some of them): none may return the secret or /etc/passwd, none may answer 200/206.

usage: test_static_clients.py STATIC_SERVER [--curl CURL] [--require-curl]
Without --curl the curl half is skipped (said on stdout); with --require-curl (CMake
passes it when TERN_REQUIRE_ALL_TESTS is ON) that is a failure instead.
"""

import argparse
import gzip
import http.client
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TIMEOUT = 10.0
SECRET = b"TOP-SECRET-7f3a9c outside the root\n"


def fail(msg):
    print(f"test_static_clients: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def make_tree(tmp):
    root = os.path.join(tmp, "root")
    os.makedirs(os.path.join(root, "sub"))
    os.makedirs(os.path.join(root, "noindex"))
    rnd = random.Random(4)
    files = {
        "index.html": b"<html><body>root index</body></html>\n",
        "sub/index.html": b"<html><body>sub index</body></html>\n",
        "a.txt": b"plain text\n" * 50,
        "style.css": b"body { color: red; }\n",
        "app.js": b"console.log('plain');\n" * 40,
        "data.json": b'{"a": 1}\n',
        "pic.png": b"\x89PNG\r\n\x1a\n" + bytes(rnd.randrange(256) for _ in range(300)),
        "data.bin": bytes(rnd.randrange(256) for _ in range(10000)),
        "noext": b"no extension\n",
        "noindex/file.txt": b"in a dir without index\n",
    }
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    # a precompressed variant with its own content, so which one was sent is visible
    gz = gzip.compress(files["app.js"], mtime=0)
    with open(os.path.join(root, "app.js.gz"), "wb") as f:
        f.write(gz)
    with open(os.path.join(tmp, "secret.txt"), "wb") as f:
        f.write(SECRET)
    os.symlink("../secret.txt", os.path.join(root, "link.txt"))
    os.symlink("..", os.path.join(root, "updir"))
    os.symlink(os.path.join(tmp, "secret.txt"), os.path.join(root, "abslink.txt"))
    return root, files, gz


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(binary, root):
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen([binary, root, str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        end = time.time() + 10
        while time.time() < end:
            if proc.poll() is not None:
                break  # port taken in between: try another
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proc, port
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            fail("static_server did not accept connections within 10 s")
    fail("static_server could not start (5 attempts)")


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value (last one wins)
        self.body = body

    def h(self, name):
        return self.headers.get(name.lower())


def via_http_client(port, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    conn.close()
    return Resp(r.status, hdrs, data)


def via_curl(curl, tmp):
    def fetch(port, method, path, headers=None, body=None, extra=()):
        hfile = os.path.join(tmp, "curl.h")
        bfile = os.path.join(tmp, "curl.b")
        for f in (hfile, bfile):
            if os.path.exists(f):
                os.unlink(f)
        cmd = [curl, "--silent", "--show-error", "--max-time", str(int(TIMEOUT)),
               "-D", hfile, "-o", bfile, "-w", "%{size_download}"]
        if method == "HEAD":
            cmd.append("--head")
        elif method != "GET":
            cmd += ["-X", method]
        if body is not None:
            cmd += ["--data-binary", body.decode()]
        for k, v in (headers or {}).items():
            cmd += ["-H", f"{k}: {v}"]
        cmd += list(extra)
        cmd.append(f"http://127.0.0.1:{port}{path}")
        p = subprocess.run(cmd, capture_output=True)
        if p.returncode != 0:
            fail(f"curl {' '.join(cmd[1:])}: exit {p.returncode}: {p.stderr.decode()}")
        with open(hfile, "rb") as f:
            lines = f.read().decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        data = b""
        if method == "HEAD":
            # --head writes the header to -o too; what counts is the body bytes read
            data = b"x" * int(p.stdout.decode() or "0")
        elif os.path.exists(bfile):
            with open(bfile, "rb") as f:
                data = f.read()
        return Resp(status, hdrs, data)

    return fetch


def expect(cond, client, what, r):
    if not cond:
        fail(f"[{client}] {what}: status {r.status}, headers {r.headers}, body {r.body[:80]!r}")


def check_all(client, fetch, port, files, gz):
    n = 0

    def ok(cond, what, r):
        nonlocal n
        expect(cond, client, what, r)
        n += 1

    types = {
        "/a.txt": "text/plain", "/style.css": "text/css", "/app.js": "javascript",
        "/data.json": "application/json", "/pic.png": "image/png",
        "/data.bin": "application/octet-stream", "/noext": "application/octet-stream",
        "/": "text/html", "/sub/": "text/html",
    }
    for path, t in types.items():
        r = fetch(port, "GET", path)
        name = "index.html" if path == "/" else "sub/index.html" if path == "/sub/" else path[1:]
        ok(r.status == 200 and t in (r.h("content-type") or "") and r.body == files[name]
           and r.h("content-length") == str(len(files[name])), f"GET {path} ({t})", r)
    r = fetch(port, "GET", "/data.bin")
    ok(r.h("accept-ranges") == "bytes" and r.h("etag") and r.h("last-modified"),
       "validators and Accept-Ranges", r)
    etag, lm = r.h("etag"), r.h("last-modified")

    # 301, 403, 404, 405
    r = fetch(port, "GET", "/sub")
    ok(r.status == 301 and (r.h("location") or "").endswith("/sub/"), "301 for /sub", r)
    r = fetch(port, "GET", "/noindex/")
    ok(r.status == 403, "403 for a directory without index.html", r)
    r = fetch(port, "GET", "/nope.txt")
    ok(r.status == 404, "404", r)
    r = fetch(port, "POST", "/a.txt", body=b"x")
    allow = (r.h("allow") or "").upper()
    ok(r.status == 405 and "GET" in allow and "HEAD" in allow, "405 for POST with Allow", r)

    # HEAD
    r = fetch(port, "HEAD", "/data.bin")
    ok(r.status == 200 and r.body == b"" and r.h("content-length") == "10000"
       and r.h("etag") == etag and r.h("content-type") == "application/octet-stream",
       "HEAD: headers, no body", r)

    # ranges
    size = len(files["data.bin"])
    extra = ("-r", "100-199") if client == "curl" else ()
    hdr = {} if client == "curl" else {"Range": "bytes=100-199"}
    r = fetch(port, "GET", "/data.bin", headers=hdr, extra=extra) if client == "curl" \
        else fetch(port, "GET", "/data.bin", headers=hdr)
    ok(r.status == 206 and r.body == files["data.bin"][100:200]
       and r.h("content-range") == f"bytes 100-199/{size}" and r.h("content-length") == "100",
       "Range 100-199: 206 byte-exact", r)
    r = fetch(port, "GET", "/data.bin", headers={"Range": "bytes=-300"})
    ok(r.status == 206 and r.body == files["data.bin"][-300:]
       and r.h("content-range") == f"bytes {size - 300}-{size - 1}/{size}", "suffix range", r)
    r = fetch(port, "GET", "/data.bin", headers={"Range": "bytes=9990-"})
    ok(r.status == 206 and r.body == files["data.bin"][9990:], "open range", r)
    r = fetch(port, "GET", "/data.bin", headers={"Range": f"bytes={size}-{size + 10}"})
    ok(r.status == 416 and r.h("content-range") == f"bytes */{size}", "416 unsatisfiable", r)
    r = fetch(port, "GET", "/data.bin", headers={"Range": "bytes=0-9", "If-Range": etag})
    ok(r.status == 206 and r.body == files["data.bin"][:10], "If-Range with the ETag: 206", r)
    r = fetch(port, "GET", "/data.bin", headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    ok(r.status == 200 and r.body == files["data.bin"], "If-Range with another ETag: 200", r)

    # conditional
    r = fetch(port, "GET", "/data.bin", headers={"If-None-Match": etag})
    ok(r.status == 304 and r.body == b"" and r.h("etag") == etag, "If-None-Match: 304", r)
    r = fetch(port, "GET", "/data.bin", headers={"If-None-Match": '"other"'})
    ok(r.status == 200 and r.body == files["data.bin"], "If-None-Match other: 200", r)
    r = fetch(port, "GET", "/data.bin", headers={"If-Modified-Since": lm})
    ok(r.status == 304 and r.body == b"", "If-Modified-Since Last-Modified: 304", r)
    r = fetch(port, "GET", "/data.bin",
              headers={"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"})
    ok(r.status == 200 and r.body == files["data.bin"], "If-Modified-Since 2000: 200", r)

    # .gz negotiation
    r = fetch(port, "GET", "/app.js", headers={"Accept-Encoding": "gzip"})
    ok(r.status == 200 and r.h("content-encoding") == "gzip" and r.body == gz
       and "accept-encoding" in (r.h("vary") or "").lower()
       and "javascript" in (r.h("content-type") or ""), "Accept-Encoding: gzip gets app.js.gz", r)
    r = fetch(port, "GET", "/app.js")
    ok(r.status == 200 and r.h("content-encoding") is None and r.body == files["app.js"],
       "no Accept-Encoding: the plain file", r)
    if client == "curl":
        r = fetch(port, "GET", "/app.js", extra=("--compressed",))
        ok(r.status == 200 and r.h("content-encoding") == "gzip" and r.body == files["app.js"],
           "curl --compressed decodes to the plain file", r)
    return n


TRAVERSALS = [
    "/../secret.txt", "/../../../../../../etc/passwd", "/%2e%2e/secret.txt",
    "/%2E%2e%2fsecret.txt", "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
    "/%252e%252e/secret.txt", "/%252e%252e%252fsecret.txt", "/a/../../secret.txt",
    "/sub/../../secret.txt", "/\\..\\secret.txt", "/..\\secret.txt", "/%5c..%5csecret.txt",
    "/..%5csecret.txt", "/%00", "/a.txt%00.html", "/%00/../secret.txt",
    "/%c0%ae%c0%ae/secret.txt", "/%c0%af..%c0%afsecret.txt", "/%e0%80%ae%e0%80%ae/secret.txt",
    "//etc/passwd", "/%2fetc%2fpasswd", "/./../secret.txt", "/..;/secret.txt",
    "/.%2e/secret.txt", "/%2e./secret.txt", "/sub/..%2f..%2fsecret.txt", "/....//secret.txt",
    "/.../secret.txt", "../secret.txt", "http://127.0.0.1/../secret.txt",
    "/link.txt", "/abslink.txt", "/updir/secret.txt", "/updir/", "/updir",
    "/sub/%2e%2e/%2e%2e/secret.txt", "/%u002e%u002e/secret.txt",
]


def raw_get(port, target):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.sendall(b"GET " + target.encode("latin-1") + b" HTTP/1.1\r\nHost: t\r\n"
              b"Connection: close\r\n\r\n")
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def head_then_get(port):
    """HEAD and GET pipelined on one connection: a HEAD answer with a body would
    corrupt the second response."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.sendall(b"HEAD /a.txt HTTP/1.1\r\nHost: t\r\n\r\n"
              b"GET /style.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") or b"Content-Length: 550" not in head:
        fail(f"pipelined HEAD: {head!r}")
    if not rest.startswith(b"HTTP/1.1 200") or not rest.endswith(b"body { color: red; }\n"):
        fail(f"the GET after a HEAD: {rest[:200]!r}")
    print("raw: HEAD then GET pipelined, HEAD had no body: ok")


def traversals(port):
    seen = {}
    for t in TRAVERSALS:
        data = raw_get(port, t)
        if SECRET.strip() in data or b"root:x:0:0" in data:
            fail(f"traversal {t!r} returned the secret: {data[:200]!r}")
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else 0
        if status in (200, 206):
            fail(f"traversal {t!r} answered {status}: {data[:200]!r}")
        seen[t] = status
    summary = ", ".join(f"{s}x{list(seen.values()).count(s)}" for s in sorted(set(seen.values())))
    print(f"traversal: {len(TRAVERSALS)} attempts refused ({summary}): ok")
    # the server still works after them
    r = raw_get(port, "/a.txt")
    if not r.startswith(b"HTTP/1.1 200"):
        fail(f"/a.txt after the traversal attempts: {r[:80]!r}")


def main():
    ap = argparse.ArgumentParser(description="curl and http.client against static_server")
    ap.add_argument("binary", help="c-examples/static_server")
    ap.add_argument("--curl", default="", help="the curl to run (none: the curl half is skipped)")
    ap.add_argument("--require-curl", action="store_true", help="fail instead of skipping the curl half")
    args = ap.parse_args()
    binary = args.binary
    curl = args.curl or None
    if curl is None and args.require_curl:
        fail("no curl given, and --require-curl (TERN_REQUIRE_ALL_TESTS) forbids skipping its half")
    tmp = tempfile.mkdtemp(prefix="tern_static_clients.")
    proc = None
    try:
        root, files, gz = make_tree(tmp)
        proc, port = start_server(binary, root)
        n = check_all("http.client", via_http_client, port, files, gz)
        print(f"http.client: {n} checks: ok")
        if curl:
            n = check_all("curl", via_curl(curl, tmp), port, files, gz)
            print(f"curl: {n} checks: ok")
        else:
            print("curl: not given, skipped")
        head_then_get(port)
        traversals(port)
        if proc.poll() is not None:
            fail(f"static_server exited with {proc.returncode}")
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("test_static_clients: PASS")


if __name__ == "__main__":
    main()
