#!/usr/bin/env python3
"""tern_fetch (through c-examples/http_client) against real servers: Python's
http.server and nginx. Bodies framed by Content-Length, chunked and the close; HEAD,
204 and 304 without bodies; redirects relative and absolute, and a loop stopped at N;
pool reuse shown by the servers counting connections (http.server) and requests per
connection (nginx's $connection_requests).

  usage: test_fetch_peers.py HTTP_CLIENT NGINX
"""

import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

passes = failures = 0


def check(cond, msg):
    global passes, failures
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    passes += bool(cond)
    failures += not cond


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(client, url, *args):
    r = subprocess.run([client, url, *args], capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace")
    status, _, rest = out.partition("\n")
    head, _, body = rest.partition("\n\n")
    return r.returncode, status, head, body, r.stderr.decode(errors="replace").strip()


connections = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        global connections
        connections += 1
        super().setup()

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.reply(200, b"posted:" + self.rfile.read(n))

    def do_GET(self):
        p = self.path
        if p == "/len":
            self.reply(200, b"hello")
        elif p == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"chu", b"nk", b"ed"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif p == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until-close")
            self.close_connection = True
        elif p == "/204":
            self.reply(204)
        elif p == "/304":
            self.reply(304, headers=[("ETag", '"x"')])
        elif p == "/rel":
            self.reply(302, headers=[("Location", "len")])
        elif p == "/abs":
            self.reply(301, headers=[("Location", f"http://127.0.0.1:{self.server.server_port}/chunked")])
        elif p == "/loop":
            self.reply(302, headers=[("Location", "/loop")])
        elif p == "/count":
            self.reply(200, str(connections).encode())
        else:
            self.reply(404, b"no")


def against_python(client):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}"
    try:
        common(client, base, "http.server")
        rc, st, _, body, err = fetch(client, base + "/close")
        check(rc == 0 and st == "200" and body == "until-close", f"http.server: body delimited by the close ({err})")
        rc, st, _, body, _ = fetch(client, base + "/304")
        check(rc == 0 and st == "304" and body == "", "http.server: 304, no body")
        rc, st, _, body, _ = fetch(client, base + "/rel", "-L", "3")
        check(st == "200" and body == "hello", "http.server: relative redirect followed")
        rc, st, _, body, _ = fetch(client, base + "/abs", "-L", "3")
        check(st == "200" and body == "chunked", "http.server: absolute redirect followed")
        rc, _, _, _, err = fetch(client, base + "/loop", "-L", "4")
        check(rc == 1 and "too many redirects" in err, f"http.server: a redirect loop stopped at N ({err})")
        rc, st, _, body, _ = fetch(client, base + "/len", "-X", "POST", "-d", "abc")
        check(st == "200" and body == "posted:abc", "http.server: a POST body")
        before = connections
        rc, st, _, body, _ = fetch(client, base + "/count", "-n", "20")
        check(rc == 0 and int(body) - before == 1, f"http.server: 20 requests over one pooled connection ({int(body) - before})")
    finally:
        srv.shutdown()


def common(client, base, who):
    rc, st, head, body, err = fetch(client, base + "/len")
    check(rc == 0 and st == "200" and body == "hello", f"{who}: Content-Length body ({err})")
    rc, st, _, body, _ = fetch(client, base + "/chunked")
    check(rc == 0 and st == "200" and body == "chunked", f"{who}: chunked body {body!r}")
    rc, st, head, body, _ = fetch(client, base + "/len", "-X", "HEAD")
    check(rc == 0 and st == "200" and body == "" and "5" in head, f"{who}: HEAD, no body")
    rc, st, _, body, _ = fetch(client, base + "/204")
    check(rc == 0 and st == "204" and body == "", f"{who}: 204, no body")


NGINX_CONF = """daemon off; master_process off; worker_processes 1;
error_log {d}/error.log; pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{ listen 127.0.0.1:{port}; root {d}/www; absolute_redirect off;
    location = /len {{ return 200 "hello"; }}
    location = /204 {{ return 204; }}
    location = /rel {{ return 302 /len; }}
    location = /loop {{ return 302 /loop; }}
    location = /count {{ return 200 "$connection_requests"; }}
    location = /chunked {{ proxy_pass http://127.0.0.1:{up}/chunked; proxy_http_version 1.1; proxy_buffering off; }}
  }}
}}
"""


def against_nginx(client, exe):
    d = tempfile.mkdtemp(prefix="tern-fetch-peers-")
    # nginx has no chunked source of its own: it relays http.server's chunked body.
    up = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=up.serve_forever, daemon=True).start()
    port = free_port()
    os.makedirs(f"{d}/www")
    with open(f"{d}/www/file.txt", "w") as f:
        f.write("static file\n")
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(NGINX_CONF.format(d=d, port=port, up=up.server_port))
    proc = subprocess.Popen([exe, "-p", d, "-c", f"{d}/nginx.conf", "-e", f"{d}/error.log"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.time() + 10
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        common(client, base, "nginx")
        rc, st, head, body, _ = fetch(client, base + "/file.txt")
        etag = next((l.split(": ", 1)[1] for l in head.split("\n") if l.lower().startswith("etag:")), "")
        check(st == "200" and body == "static file\n" and etag, "nginx: a static file with an ETag")
        rc, st, _, body, _ = fetch(client, base + "/file.txt", "-H", f"If-None-Match: {etag}")
        check(rc == 0 and st == "304" and body == "", "nginx: 304, no body")
        rc, st, _, body, _ = fetch(client, base + "/rel", "-L", "2")
        check(st == "200" and body == "hello", "nginx: relative redirect followed")
        rc, _, _, _, err = fetch(client, base + "/loop", "-L", "3")
        check(rc == 1 and "too many redirects" in err, f"nginx: a redirect loop stopped at N ({err})")
        rc, st, _, body, _ = fetch(client, base + "/count", "-n", "10")
        check(rc == 0 and body == "10", f"nginx: the 10th request over the same connection ({body!r})")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        up.shutdown()
        shutil.rmtree(d, ignore_errors=True)


def main(client, nginx):
    against_python(client)
    against_nginx(client, nginx)
    print(f"{passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
