#!/bin/sh
# header_fresh: the committed include/tern.h is the header the build just generated.
#
# build.rs rewrites include/tern.h in the source tree whenever the Rust sources change
# it, so after a build a stale committed header shows up as a git diff.
# Usage: header_fresh.sh <source dir> <git executable> [strict|lenient]
# Exit 0: fresh; 1: stale or not committed; 77: cannot tell (no git checkout), skipped.
# Strict (the third argument, or CI=true in the environment), "cannot tell" fails too:
# in CI a header nobody checked must not pass.
set -u
src=$1
git=${2:-git}
mode=${3:-lenient}
case ${CI:-} in
    true|TRUE|True|1|yes|YES) mode=strict ;;
esac
header=include/tern.h

# Cannot tell: skipped, or (strict) failed.
cannot_tell() {
    if [ "$mode" = strict ]; then
        echo "header_fresh: $1; strict (TERN_REQUIRE_ALL_TESTS or CI=true): failed"
        exit 1
    fi
    echo "header_fresh: $1; skipped"
    exit 77
}

if [ ! -f "$src/$header" ]; then
    echo "header_fresh: $src/$header does not exist; the build should have generated it"
    exit 1
fi
case $git in
    *NOTFOUND*|"") cannot_tell "git not found" ;;
esac
if ! "$git" -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    cannot_tell "$src is not a git checkout"
fi
if ! "$git" -C "$src" rev-parse --verify --quiet HEAD >/dev/null; then
    cannot_tell "the repository has no commit yet"
fi
if ! "$git" -C "$src" ls-files --error-unmatch -- "$header" >/dev/null 2>&1; then
    echo "header_fresh: $header is not committed; commit the generated header"
    exit 1
fi
if ! "$git" -C "$src" diff --exit-code --stat -- "$header"; then
    echo
    "$git" -C "$src" --no-pager diff -- "$header" | head -n 200
    echo "header_fresh: the committed $header differs from the generated one;"
    echo "              commit the regenerated header (it is written by build.rs)."
    exit 1
fi
echo "header_fresh: $header matches the generated header"
