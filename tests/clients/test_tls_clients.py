#!/usr/bin/env python3
"""Real TLS clients against tern's server (tests/clients/tls_test_server.c): curl
--cacert, Python's ssl + http.client, websockets over wss://, and openssl s_client:
TLS 1.2 and 1.3, SNI picking the certificate, ALPN, resumption, no client
certificate asked for, static files (ranges, 304) over TLS.

  usage: test_tls_clients.py TLS_TEST_SERVER CURL
"""

import asyncio
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tls_certs  # noqa: E402

failures = 0
passes = 0


def check(cond, msg):
    global failures, passes
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if cond:
        passes += 1
    else:
        failures += 1


class Server:
    def __init__(self, exe, pairs, env=None):
        args = [exe]
        for cert, key in pairs:
            args += [cert, key]
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, **(env or {})})
        self.port = int(self.p.stdout.readline())

    def stop(self):
        self.p.stdin.close()
        rc = self.p.wait(timeout=20)
        check(rc == 0, f"server exits cleanly (status {rc})")


def curl(exe, ca, url, *extra):
    r = subprocess.run([exe, "-sS", "--max-time", "20", "--cacert", ca, *extra, url], capture_output=True, timeout=30)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def context(ca, version=None):
    ctx = ssl.create_default_context(cafile=ca)
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def s_client(port, *args, stdin=b""):
    # -ign_eof: the end of stdin does not end the session; the server's close does.
    extra = ["-ign_eof"] if stdin else []
    r = subprocess.run([tls_certs.OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", *extra, *args], input=stdin,
                       capture_output=True, timeout=30)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def test_curl(exe, ca, port, data):
    rc, out, err = curl(exe, ca, f"https://localhost:{port}/")
    check(rc == 0 and out == b"hello\n", f"curl --cacert https://localhost/: {out!r} {err.strip()}")
    rc, out, _ = curl(exe, ca, f"https://localhost:{port}/static/data.bin", "-r", "1000-1999")
    check(rc == 0 and out == data[1000:2000], "curl: a byte range of a static file over TLS")
    rc, out, _ = curl(exe, ca, f"https://localhost:{port}/static/data.bin")
    check(rc == 0 and out == data, "curl: a whole static file over TLS (read and encrypted, not sendfile)")
    rc2, out2, _ = curl(exe, ca, f"https://other.test:{port}/", "--resolve", f"other.test:{port}:127.0.0.1")
    check(rc2 == 0 and out2 == b"hello\n", "curl: SNI other.test gets the certificate for other.test")
    other_ca = os.path.join(os.path.dirname(ca), "stranger.ca.pem")
    rc, _, err = curl(exe, other_ca, f"https://localhost:{port}/")
    check(rc != 0 and "certificate" in err.lower(), f"curl with another CA refuses tern's certificate: {err.strip()}")


def test_http_client(ca, port, data):
    conn = http.client.HTTPSConnection("localhost", port, context=context(ca), timeout=10)
    for i in range(3):
        conn.request("GET", "/")
        r = conn.getresponse()
        check(r.status == 200 and r.read() == b"hello\n", f"http.client keep-alive request {i + 1} over one TLS connection")
    conn.request("GET", "/static/data.bin", headers={"Range": "bytes=-100"})
    r = conn.getresponse()
    check(r.status == 206 and r.read() == data[-100:], "http.client: a suffix range, 206")
    conn.request("GET", "/static/data.bin")
    r = conn.getresponse()
    etag = r.getheader("ETag")
    body = r.read()
    check(r.status == 200 and body == data and etag, "http.client: the file with an ETag")
    conn.request("GET", "/static/data.bin", headers={"If-None-Match": etag})
    r = conn.getresponse()
    check(r.status == 304 and r.read() == b"", "http.client: If-None-Match gets 304 over TLS")
    conn.close()


def test_versions_and_resumption(ca, port):
    for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        ctx = context(ca, version)
        with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
            check(s.version() == name, f"Python ssl negotiates {name}")
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            first = s.recv(4096)
            session = s.session
        check(b"hello" in first, f"{name}: a request answered")
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            s.recv(4096)
            check(s.session_reused, f"{name}: the session is resumed (tickets)")


def test_s_client(ca, port):
    for flag, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        out = s_client(port, flag, "-CAfile", ca, "-servername", "localhost", "-alpn", "http/1.1",
                       stdin=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        check(f"Protocol  : {name}" in out or f", {name}," in out, f"openssl s_client {flag}: {name}")
        check("Verify return code: 0 (ok)" in out, f"openssl s_client {flag}: the chain verifies")
        check("ALPN protocol: http/1.1" in out, f"openssl s_client {flag}: ALPN http/1.1")
        check("hello" in out, f"openssl s_client {flag}: the answer comes through")
    out = s_client(port, "-tls1_3", "-CAfile", ca, "-servername", "other.test")
    check("CN = other.test" in out or "CN=other.test" in out, "openssl s_client -servername other.test: that certificate")
    out = s_client(port, "-tls1_3", "-CAfile", ca, "-servername", "localhost", "-alpn", "h2")
    check("no application protocol" in out.lower() or "alert" in out.lower(), "ALPN h2 alone is refused (tern speaks http/1.1)")
    out = s_client(port, "-tls1_2", "-CAfile", ca, "-servername", "localhost", "-reconnect")
    check(out.count("Reused, TLSv1.2") >= 4, "openssl s_client -reconnect: TLS 1.2 sessions resumed")
    d = os.path.dirname(ca)
    out = s_client(port, "-tls1_3", "-CAfile", ca, "-servername", "localhost", "-msg",
                   "-cert", os.path.join(d, "client.pem"), "-key", os.path.join(d, "client.key"),
                   stdin=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    check("CertificateRequest" not in out, "no client certificate is asked for")
    check("hello" in out, "a client that has a certificate is served without sending it")
    out = s_client(port, "-tls1_3", "-CAfile", os.path.join(d, "stranger.ca.pem"), "-servername", "localhost", "-verify_return_error")
    check("Verify return code: 0 (ok)" not in out, "s_client with another CA does not verify tern's certificate")


async def test_wss(ca, port):
    url = f"wss://localhost:{port}/ws"
    async with websockets.connect(url, ssl=context(ca), max_size=None) as ws:
        await ws.send("hello over wss")
        check(await ws.recv() == "hello over wss", "websockets wss://: text echoed")
        big = os.urandom(3 << 20)
        await ws.send(big)
        check(await ws.recv() == big, "websockets wss://: 3 MiB binary echoed")
        await ws.close()
        check(ws.close_code == 1000, "websockets wss://: closing handshake")


def main(server_exe, curl_exe):
    d = tempfile.mkdtemp(prefix="tern-tls-")
    try:
        ca = tls_certs.Ca(d, "testca")
        tls_certs.Ca(d, "stranger")
        main_pair = ca.leaf("localhost", ["localhost", "127.0.0.1"])
        other_pair = ca.leaf("other", ["other.test"])
        ca.leaf("client", ["client.test"])
        os.makedirs(os.path.join(d, "static"))
        data = os.urandom(3 << 20)
        with open(os.path.join(d, "static", "data.bin"), "wb") as f:
            f.write(data)
        srv = Server(server_exe, [main_pair, other_pair], {"TLS_DIR": d})
        try:
            test_curl(curl_exe, ca.cert, srv.port, data)
            test_http_client(ca.cert, srv.port, data)
            test_versions_and_resumption(ca.cert, srv.port)
            test_s_client(ca.cert, srv.port)
            asyncio.run(test_wss(ca.cert, srv.port))
        finally:
            srv.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"{passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
