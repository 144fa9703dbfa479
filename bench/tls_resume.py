#!/usr/bin/env python3
"""Resumed TLS 1.3 handshakes for bench/tls.sh: one full handshake and request to get
a session ticket, then new connections resuming that session for SECONDS, one at a
time. Prints "N connections in S real seconds (R resumed)" like openssl s_time (whose
-reuse does not resume TLS 1.3: it takes the session before the ticket arrives).

  usage: tls_resume.py PORT SECONDS SUITE
"""
import socket
import ssl
import sys
import time

port, seconds, suite = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
ctx.set_ciphers("ALL")
with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw) as s:
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(4096)
    session = s.session
n = reused = 0
t0 = time.monotonic()
while time.monotonic() - t0 < seconds:
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, session=session) as s:
        reused += s.session_reused
        n += 1
took = time.monotonic() - t0
print(f"{n} connections in {took:.2f} real seconds ({reused} resumed)")
