#!/usr/bin/env python3
"""Fault injection: does the test suite catch each fault in tests/mutation/faults.toml?

For each fault: copy of the source tree (made once, in a scratch folder), the fault
applied, the library and tests rebuilt, the tests the fault names run; the fault is
then reverted. A fault is *caught* when at least one of those tests fails (a crash, an
assertion or a time-out all count), *survived* when all pass. Before any fault, the same
tests run on the unchanged copy: they must all pass, or the run stops (a red baseline
would make every fault look caught).

    tests/mutation/run.py                 every fault (about 1-2 minutes each)
    tests/mutation/run.py --only NAME...  those faults
    tests/mutation/run.py --list          the faults and what they break

Exit status 0 when every fault was caught, 1 when one survived, 2 on a setup error
(a fault whose `find` text no longer matches the code exactly once is a setup error:
the list must follow the code, never be skipped). The table goes to stdout and to
SCRATCH/report.md; each step's output to SCRATCH/logs/. Needs what the default test
run needs (cmake, cargo, cc, valgrind, curl, python3).

Environment: TERN_MUTATION_DIR (the scratch folder; default /tmp/tern-mutation, kept
between runs so later runs build incrementally), TERN_MUTATION_TIMEOUT (seconds per
ctest test, default 300).
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAULTS = os.path.join(ROOT, "tests", "mutation", "faults.toml")
SCRATCH = os.environ.get("TERN_MUTATION_DIR", "/tmp/tern-mutation")
TIMEOUT = int(os.environ.get("TERN_MUTATION_TIMEOUT", "300"))
SRC = os.path.join(SCRATCH, "src-copy")
BUILD = os.path.join(SCRATCH, "build")
LOGS = os.path.join(SCRATCH, "logs")


class SetupError(Exception):
    pass


def load_faults():
    with open(FAULTS, "rb") as f:
        faults = tomllib.load(f)["fault"]
    names = set()
    for fa in faults:
        for key in ("name", "guarantee", "file", "find", "replace", "ctest", "cargo"):
            if key not in fa:
                raise SetupError(f"fault {fa.get('name', '?')}: no '{key}'")
        if fa["name"] in names:
            raise SetupError(f"fault {fa['name']} is listed twice")
        names.add(fa["name"])
    return faults


def sync_copy():
    """Makes SRC the working tree's files (tracked and untracked, not ignored)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                         check=True, capture_output=True).stdout
    files = [p for p in out.decode().split("\0") if p]
    os.makedirs(SRC, exist_ok=True)
    for rel in files:
        src, dst = os.path.join(ROOT, rel), os.path.join(SRC, rel)
        if not os.path.isfile(src):
            continue  # deleted in the working tree
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        # copy2 keeps mtimes: files that did not change are not rebuilt
        if not os.path.exists(dst) or open(src, "rb").read() != open(dst, "rb").read():
            shutil.copy2(src, dst)


def run_logged(name, cmd, cwd, timeout=None):
    path = os.path.join(LOGS, name + ".log")
    with open(path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        try:
            rc = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            log.write(f"\n[timed out after {timeout} s]\n")
            rc = -1
    return rc, path


def configure():
    os.makedirs(BUILD, exist_ok=True)
    rc, log = run_logged("configure", ["cmake", "-S", SRC, "-B", BUILD], SCRATCH)
    if rc != 0:
        raise SetupError(f"cmake configure failed (see {log})")


def build(tag):
    return run_logged(f"{tag}.build", ["cmake", "--build", BUILD, "-j2"], SCRATCH)


def cargo_profile():
    """The profile and target directory CMake's build uses, so cargo reuses its work."""
    cache = open(os.path.join(BUILD, "CMakeCache.txt")).read().splitlines()
    vals = {}
    for line in cache:
        if ":" in line and "=" in line:
            k, v = line.split("=", 1)
            vals[k.split(":")[0]] = v
    return vals.get("TERN_CARGO_PROFILE", "release"), vals.get("TERN_CARGO_TARGET_DIR", os.path.join(BUILD, "cargo"))


def failing_ctests(log):
    return [line.split(" - ", 1)[1].split(" (")[0].strip()
            for line in open(log) if line.startswith("\t") and " - " in line]


def run_tests(tag, name, ctest, cargo_targets, lib_filters):
    """Runs the tests named; returns the names of those that failed."""
    failed = []
    rc, log = run_logged(f"{tag}.ctest", ["ctest", "--test-dir", BUILD, "-R", ctest, "--timeout",
                                          str(TIMEOUT), "--output-on-failure"], SCRATCH)
    if "No tests were found" in open(log).read():
        raise SetupError(f"{name}: ctest -R '{ctest}' matches no test")
    if rc != 0:
        failed += failing_ctests(log) or [f"ctest (rc {rc})"]
    profile, target = cargo_profile()
    cargo = ["cargo", "test", "--manifest-path", os.path.join(SRC, "Cargo.toml"), "--target-dir", target,
             "--profile", profile, "--jobs", "2"]
    for t in cargo_targets:
        rc, _ = run_logged(f"{tag}.cargo-{t}", cargo + ["--test", t], SRC, timeout=TIMEOUT * 2)
        if rc != 0:
            failed.append(f"cargo test --test {t}")
    for i, filt in enumerate(lib_filters):
        rc, _ = run_logged(f"{tag}.cargo-lib{i}", cargo + ["--lib", filt], SRC, timeout=TIMEOUT * 2)
        if rc != 0:
            failed.append(f"cargo test --lib {filt}")
    return failed


def fault_tests(tag, f):
    return run_tests(tag, f["name"], f["ctest"], f["cargo"], [f["lib"]] if f.get("lib") else [])


def apply(fault, on):
    path = os.path.join(SRC, fault["file"])
    text = open(path).read()
    old, new = (fault["find"], fault["replace"]) if on else (fault["replace"], fault["find"])
    n = text.count(old)
    if n != 1:
        where = "the code" if on else "the faulted copy"
        raise SetupError(f"{fault['name']}: its text occurs {n} times in {fault['file']} ({where}); "
                         "update tests/mutation/faults.toml")
    with open(path, "w") as f:
        f.write(text.replace(old, new))


def union_regex(regexes):
    """One ctest regex for all: CMake's regex takes ^ and $ only at the ends of the whole
    expression, so anchored ones are joined inside one anchored group."""
    distinct = sorted(set(regexes))
    if all(r.startswith("^") and r.endswith("$") for r in distinct):
        return "^(" + "|".join(r[1:-1] for r in distinct) + ")$"
    return "|".join(distinct)


def baseline(faults):
    """The union of every selected fault's tests must pass on the unchanged copy."""
    print("baseline: building the unchanged copy", flush=True)
    rc, log = build("baseline")
    if rc != 0:
        raise SetupError(f"the unchanged copy does not build (see {log})")
    regex = union_regex([f["ctest"] for f in faults])
    cargo = sorted({t for f in faults for t in f["cargo"]})
    libs = sorted({f["lib"] for f in faults if f.get("lib")})
    failed = run_tests("baseline", "baseline", regex, cargo, libs)
    if failed:
        raise SetupError("the baseline is red, fix it first: " + ", ".join(failed) + f" (logs in {LOGS})")
    print("baseline: every named test passes", flush=True)


def main():
    ap = argparse.ArgumentParser(description="Apply each fault, run its tests, report survivors.")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these faults")
    ap.add_argument("--list", action="store_true", help="list the faults and exit")
    ap.add_argument("--no-baseline", action="store_true", help="skip the baseline run (faster, less safe)")
    args = ap.parse_args()
    try:
        faults = load_faults()
    except (SetupError, tomllib.TOMLDecodeError) as e:
        print(f"run.py: {e}", file=sys.stderr)
        return 2
    if args.list:
        for f in faults:
            print(f"{f['name']:32} {f['file']:28} {f['guarantee']}")
        return 0
    if args.only:
        unknown = set(args.only) - {f["name"] for f in faults}
        if unknown:
            print(f"run.py: no fault named {', '.join(sorted(unknown))} (see --list)", file=sys.stderr)
            return 2
        faults = [f for f in faults if f["name"] in args.only]

    os.makedirs(LOGS, exist_ok=True)
    rows = []
    try:
        sync_copy()
        configure()
        if not args.no_baseline:
            baseline(faults)
        for f in faults:
            t0 = time.time()
            print(f"{f['name']}: applying to {f['file']}", flush=True)
            apply(f, True)
            try:
                rc, log = build(f["name"])
                if rc != 0:
                    raise SetupError(f"{f['name']}: the faulted copy does not build (see {log}); fix the fault")
                failed = fault_tests(f["name"], f)
            finally:
                apply(f, False)
            verdict = "caught" if failed else "SURVIVED"
            rows.append((f, verdict, failed, time.time() - t0))
            print(f"{f['name']}: {verdict} ({', '.join(failed) or 'every test passed'}) in {time.time() - t0:.0f} s",
                  flush=True)
    except SetupError as e:
        print(f"run.py: {e}", file=sys.stderr)
        return 2
    finally:
        build("restore")  # leave the scratch build matching the unchanged copy

    lines = ["| fault | guarantee | caught by |", "|---|---|---|"]
    for f, verdict, failed, _ in rows:
        lines.append(f"| {f['name']} | {f['guarantee']} | "
                     f"{', '.join(failed) if failed else '**survived: no test failed**'} |")
    survivors = [f["name"] for f, v, _, _ in rows if v != "caught"]
    lines.append("")
    lines.append(f"{len(rows) - len(survivors)} of {len(rows)} faults caught" +
                 (f"; survived: {', '.join(survivors)}" if survivors else ""))
    report = "\n".join(lines) + "\n"
    with open(os.path.join(SCRATCH, "report.md"), "w") as out:
        out.write(report)
    print()
    print(report, end="")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
