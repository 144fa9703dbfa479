#!/bin/sh
# browser_demo: runs demo_test.mjs (headless Chromium through the demo page).
# Usage: run.sh DEMO_BINARY WORK_DIR CHROMIUM NODE NPM [strict|lenient]
# playwright-core comes from npm, at the version package-lock.json pins, into WORK_DIR
# (a folder of the build tree; installed once, then reused). Exit 77 (skipped, with the
# reason) when Chromium, node or the npm package cannot be had; strict (CI=true or
# TERN_REQUIRE_ALL_TESTS), that is a failure instead.
set -u
demo=$1 work=$2 chromium=$3 node=$4 npm=$5 mode=${6:-lenient}
here=$(cd "$(dirname "$0")" && pwd)
case ${CI:-} in true|TRUE|True|1|yes|YES) mode=strict ;; esac

cannot_run() {
    if [ "$mode" = strict ]; then
        echo "browser_demo: $1; strict (TERN_REQUIRE_ALL_TESTS or CI=true): failed"
        exit 1
    fi
    echo "browser_demo: $1; skipped"
    exit 77
}

case $chromium in *NOTFOUND*|"") cannot_run "Chromium not found (Debian: apt-get install chromium)" ;; esac
[ -x "$chromium" ] || cannot_run "Chromium ($chromium) is not executable"
case $node in *NOTFOUND*|"") cannot_run "node not found (Debian: apt-get install nodejs npm)" ;; esac
mkdir -p "$work"
if [ ! -f "$work/node_modules/playwright-core/package.json" ] ||
   ! cmp -s "$here/package-lock.json" "$work/package-lock.json"; then
    case $npm in *NOTFOUND*|"") cannot_run "npm not found, and playwright-core is not installed in $work" ;; esac
    cp "$here/package.json" "$here/package-lock.json" "$work/"
    echo "browser_demo: installing playwright-core (package-lock.json) into $work with npm ci"
    (cd "$work" && "$npm" ci --no-audit --no-fund --loglevel=error) ||
        cannot_run "npm ci failed (no registry?): playwright-core is not installed"
fi
exec "$node" "$here/demo_test.mjs" "$demo" "$work" "$chromium"
