#!/usr/bin/env python3
"""docs_guide: docs/guide.md says only what the code does.

1. Every tern_* / TERN_* name the guide mentions exists in include/tern.h.
2. The limits table lists every TERN_OPT_* of tern.h, with the default of
   src/options.rs (Options::default), in the unit the table states.
3. Every ```c block that starts with #include is a whole program: it is compiled with
   -Wall -Wextra -Werror and linked against libtern (not run: they are servers).

usage: check_guide.py SOURCE_DIR CC LIBTERN_SO WORK_DIR
"""
import os
import re
import subprocess
import sys

src, cc, lib, work = sys.argv[1:5]
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

print(f"checked {len(re.findall(r'(?:tern|TERN)_', guide))} names, {len(table)} options, {len(programs)} programs")
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
