#!/usr/bin/env python3
"""docs_guide: docs/guide.md says only what the code does.

1. Every tern_* / TERN_* name the guide mentions exists in include/tern.h.
2. The limits table lists every TERN_OPT_* of tern.h, with the default of
   src/options.rs (Options::default), in the unit the table states.
3. Every ```c block that starts with #include is a whole program: it is compiled with
   -Wall -Wextra -Werror and linked against libtern.
4. Each recipe program runs and does what the guide says, on 127.0.0.1 with real
   clients (http.client, websockets, ssl): the JSON API answers from its workers and
   stops on SIGINT with status 0; the proxy in front of it forwards two requests on one
   connection; the static site serves its files and its prefix; the WebSocket program
   pushes ticks and echoes a chat line to everyone; the TLS one answers over https with
   a certificate the client verifies.

usage: check_guide.py SOURCE_DIR CC LIBTERN_SO WORK_DIR [strict|lenient]
(lenient: without python3's websockets or the openssl command, the WebSocket or TLS
recipe is built but not run, and that is said; strict, as in CI, it is a failure.)
"""
import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

src, cc, lib, work = sys.argv[1:5]
strict = (sys.argv[5:6] == ["strict"]) or os.environ.get("CI", "").lower() in ("true", "1", "yes")
guide = open(os.path.join(src, "docs/guide.md"), encoding="utf-8").read()
header = open(os.path.join(src, "include/tern.h"), encoding="utf-8").read()
options_rs = open(os.path.join(src, "src/options.rs"), encoding="utf-8").read()
failures = []

# --- 1. names ------------------------------------------------------------------------------
declared = set(re.findall(r"\b((?:tern|TERN)_[A-Za-z0-9_]+)", header))
for m in re.finditer(r"\b((?:tern|TERN)_[A-Za-z0-9_]*[A-Za-z0-9])(_?\*)?", guide):
    name, family = m.group(1), m.group(2)
    if family:  # "TERN_E*", "tern_remote_*": a family, of which tern.h must have members
        if not any(d.startswith(name) and d != name for d in declared):
            failures.append(f"the guide names the family {name}{family}, which tern.h does not have")
    elif name not in declared:
        failures.append(f"the guide names {name}, which tern.h does not declare")

# --- 2. the limits table -------------------------------------------------------------------
body = options_rs.split("fn default() -> Options", 1)[1].split("\n    }\n}", 1)[0]
defaults = {}
for field, expr in re.findall(r"^\s+(\w+): ([^,\n]+),", body, re.M):
    expr = expr.replace("_", "")
    defaults[field] = {"true": 1, "false": 0}.get(expr) if expr in ("true", "false") else eval(expr, {})

UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "ms": 1, "": 1}
table = {}
for opt, default in re.findall(r"^\| `(TERN_OPT_[A-Z_]+)` \| ([^|]+) \|", guide, re.M):
    m = re.match(r"([0-9,]+)\s*(KiB|MiB|GiB|ms)?", default.strip())
    if not m:
        failures.append(f"limits table: cannot read the default of {opt}: {default!r}")
        continue
    table[opt] = int(m.group(1).replace(",", "")) * UNITS[m.group(2) or ""]

for opt in sorted(set(re.findall(r"#define (TERN_OPT_[A-Z_]+)", header))):
    if opt not in table:
        failures.append(f"limits table: {opt} is missing")
        continue
    field = opt[len("TERN_OPT_"):].lower()
    if field not in defaults and field.endswith("_bytes"):
        field = field[: -len("_bytes")]
    if field not in defaults:
        failures.append(f"limits table: no field of Options::default for {opt}")
    elif defaults[field] != table[opt]:
        failures.append(f"limits table: {opt} default {table[opt]}, src/options.rs says {defaults[field]}")

# --- 3. the programs -----------------------------------------------------------------------
os.makedirs(work, exist_ok=True)
programs = [b for b in re.findall(r"```c\n(.*?)```", guide, re.S) if b.startswith("#include")]
if len(programs) < 5:
    failures.append(f"expected the recipes' whole programs, found {len(programs)}")
libdir = os.path.dirname(lib)
for i, text in enumerate(programs, 1):
    path = os.path.join(work, f"guide_{i}.c")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    cmd = [cc, "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-I", os.path.join(src, "include"),
           path, "-o", path[:-2], "-L", libdir, "-ltern", "-lpthread"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        failures.append(f"program {i} of the guide does not build:\n{r.stderr}")
    else:
        print(f"program {i} of the guide builds ({text.count(chr(10))} lines)")

# --- 4. run them ---------------------------------------------------------------------------
def missing_tool(why):
    if strict:
        failures.append(why + " (strict: a failure, not a skip)")
    else:
        print(f"NOT RUN: {why}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(exe, *args):
    """Starts a recipe; returns (process, port) once it accepts connections."""
    port = free_port()
    url_args = [a.replace("PORT", str(port)) for a in args]
    env = dict(os.environ, LD_LIBRARY_PATH=libdir)
    proc = subprocess.Popen([exe, *url_args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{os.path.basename(exe)} {' '.join(url_args)} did not start: {proc.stdout.read()!r}")


def get(port, path, conn=None, headers=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    return r.status, r.getheader("Content-Type"), r.read().decode()


def expect(what, got, want):
    if got != want:
        failures.append(f"{what}: got {got!r}, expected {want!r}")


def by_marker(marker):
    for i, text in enumerate(programs, 1):
        if marker in text:
            return os.path.join(work, f"guide_{i}")
    failures.append(f"no recipe program contains {marker!r}")
    return None


def run_json_and_proxy():
    exe, proxy_exe = by_marker("/api/square"), by_marker("on_backend")
    if not exe or not proxy_exe:
        return
    api, port = start(exe, "http://127.0.0.1:PORT")
    try:
        expect("JSON API /api/square?n=12", get(port, "/api/square?n=12"),
               (200, "application/json", '{"square":144}\n'))
        expect("JSON API, Connection: close (deferred)", get(port, "/api/square?n=3", headers={"Connection": "close"}),
               (200, "application/json", '{"square":9}\n'))
        expect("JSON API /nope", get(port, "/nope")[0], 404)
        expect("JSON API without n", get(port, "/api/square")[0], 400)
        proxy, pport = start(proxy_exe, "http://127.0.0.1:PORT", f"http://127.0.0.1:{port}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", pport, timeout=10)
            for n in (5, 7):  # two requests, one front connection, one backend connection
                expect(f"proxy /api/square?n={n}", get(pport, f"/api/square?n={n}", conn),
                       (200, "application/json", '{"square":%d}\n' % (n * n)))
            expect("proxy /nope", get(pport, "/nope")[0], 404)
        finally:
            proxy.kill()
            proxy.wait()
        api.send_signal(signal.SIGINT)
        expect("JSON API exit status after SIGINT", api.wait(timeout=15), 0)
    finally:
        if api.poll() is None:
            api.kill()
            api.wait()


def run_static():
    exe = by_marker("serve_prefix")
    if not exe:
        return
    with tempfile.TemporaryDirectory() as d:
        site, assets = os.path.join(d, "site"), os.path.join(d, "assets")
        os.makedirs(os.path.join(site, "docs"))
        os.makedirs(assets)
        with open(os.path.join(site, "index.html"), "w") as f:
            f.write("<h1>home</h1>\n")
        with open(os.path.join(site, "docs", "a.txt"), "w") as f:
            f.write("a\n")
        with open(os.path.join(assets, "app.css"), "w") as f:
            f.write("body{}\n")
        proc, port = start(exe, site, assets, "http://127.0.0.1:PORT")
        try:
            expect("static /", get(port, "/")[::2], (200, "<h1>home</h1>\n"))
            status, ctype, body = get(port, "/assets/app.css")
            expect("static /assets/app.css", (status, ctype.split(";")[0], body), (200, "text/css", "body{}\n"))
            expect("static /health", get(port, "/health")[::2], (200, "ok\n"))
            status, _, listing = get(port, "/docs/")
            expect("static /docs/ (listing on)", (status, "a.txt" in listing), (200, True))
            expect("static /../x", get(port, "/%2e%2e/x")[0], 400)
        finally:
            proc.kill()
            proc.wait()


def run_ws():
    exe = by_marker("ticker")
    if not exe:
        return
    try:
        from websockets.sync.client import connect
    except ImportError:
        missing_tool("the WebSocket recipe needs python3's websockets module (pip install websockets)")
        return
    proc, port = start(exe, "http://127.0.0.1:PORT")
    try:
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5) as a, connect(f"ws://127.0.0.1:{port}/ws") as b:
            first = a.recv(timeout=5)
            expect("WebSocket push: a tick", first.startswith('{"tick":'), True)
            a.send("hello from the guide")
            for who in (a, b):  # published to everyone on "chat", the sender too
                seen = [who.recv(timeout=5) for _ in range(4)]
                expect("WebSocket chat line reaches every subscriber", "hello from the guide" in seen, True)
    finally:
        proc.kill()
        proc.wait()


def run_tls():
    exe = by_marker("tern_tls_config_new_server")
    if not exe:
        return
    sys.path.insert(0, os.path.join(src, "tests", "clients"))
    import tls_certs  # noqa: E402 (the TLS tests' certificates, made with openssl)

    with tempfile.TemporaryDirectory() as d:
        try:
            ca = tls_certs.Ca(d, "ca")
            cert, key = ca.leaf("srv", ["127.0.0.1"])
        except (OSError, subprocess.CalledProcessError) as e:
            missing_tool(f"the TLS recipe needs the openssl command to make a certificate: {e}")
            return
        proc, port = start(exe, cert, key, "https://127.0.0.1:PORT")
        try:
            ctx = ssl.create_default_context(cafile=ca.cert)
            c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
            expect("TLS recipe over https, verified", get(port, "/", c)[::2], (200, "secure hello\n"))
        finally:
            proc.kill()
            proc.wait()


if not any("does not build" in f for f in failures):
    for run in (run_json_and_proxy, run_static, run_ws, run_tls):
        before = len(failures)
        try:
            run()
        except Exception as e:  # a recipe that hangs or dies is a failure, with its reason
            failures.append(f"{run.__name__}: {type(e).__name__}: {e}")
        print(f"{run.__name__}: {'ok' if len(failures) == before else 'FAILED'}")

print(f"checked {len(re.findall(r'(?:tern|TERN)_', guide))} names, {len(table)} options, {len(programs)} programs")
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
