#!/usr/bin/env python3
"""tern's TLS client (c-examples/http_client) against openssl s_server and nginx: a
good chain (leaf + intermediate) is accepted; an expired certificate, one for
another host and one from an unknown CA are each refused, with the reason.

  usage: test_tls_peers.py HTTP_CLIENT NGINX
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tls_certs  # noqa: E402

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


def wait_listening(port, proc):
    end = time.time() + 10
    while time.time() < end and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def s_server(d, cert, key, port, chain):
    # s_server sends the first certificate of -cert only: the intermediates go in
    # -cert_chain.
    return subprocess.Popen([tls_certs.OPENSSL, "s_server", "-quiet", "-accept", f"127.0.0.1:{port}", "-cert", cert,
                             "-key", key, "-cert_chain", chain, "-www"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def nginx(d, cert, key, port, exe):
    conf = os.path.join(d, f"nginx-{port}.conf")
    temp = os.path.join(d, "nginx-tmp")
    os.makedirs(temp, exist_ok=True)
    temps = "".join(f"{k}_temp_path {temp}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    with open(conf, "w") as f:
        f.write(f"""daemon off; master_process off; worker_processes 1;
error_log {d}/nginx-error.log; pid {d}/nginx-{port}.pid;
events {{ worker_connections 64; }}
http {{ access_log off; {temps}
  server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};
    location / {{ return 200 "hello from nginx\\n"; }} }} }}
""")
    return subprocess.Popen([exe, "-p", d, "-c", conf, "-e", f"{d}/nginx-error.log"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fetch(client, url, ca):
    r = subprocess.run([client, url, ca], capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace").strip()


def main(client, nginx_exe):
    d = tempfile.mkdtemp(prefix="tern-tls-peers-")
    try:
        root = tls_certs.Ca(d, "root")
        inter = tls_certs.Ca(d, "intermediate", parent=root)
        stranger = tls_certs.Ca(d, "stranger")
        cases = [
            ("a good chain", inter.leaf("good", ["localhost"]), None),
            ("an expired certificate", root.leaf("expired", ["localhost"], expired=True), "expired"),
            ("a certificate for another host", root.leaf("elsewhere", ["elsewhere.test"]), "not valid for name"),
            ("an unknown CA", stranger.leaf("unknown", ["localhost"]), "UnknownIssuer"),
        ]
        peers = [("openssl s_server", lambda c, k, p: s_server(d, c, k, p, inter.cert), "/"),
                 ("nginx", lambda c, k, p: nginx(d, c, k, p, nginx_exe), "/")]
        for peer, start, path in peers:
            for what, (cert, key), why in cases:
                port = free_port()
                proc = start(cert, key, port)
                try:
                    check(wait_listening(port, proc), f"{peer} listens ({what})")
                    rc, out, err = fetch(client, f"https://localhost:{port}{path}", root.cert)
                    if why is None:
                        check(rc == 0 and out.startswith("200\n"), f"tern accepts {peer} with {what}: {out[:40]!r} {err}")
                    else:
                        check(rc == 1 and "TLS handshake failed" in err and why in err,
                              f"tern refuses {peer} with {what}, saying why: {err}")
                finally:
                    proc.terminate()
                    proc.wait(timeout=10)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"{passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
