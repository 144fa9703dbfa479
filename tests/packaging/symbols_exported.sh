#!/bin/sh
# symbols_exported: libtern.so exports tern_* symbols and nothing else, and its soname
# carries the major version.
# Usage: symbols_exported.sh <libtern.so> <expected soname> <nm> <readelf>
set -u
lib=$1
soname=$2
nm=${3:-nm}
readelf=${4:-readelf}

if [ ! -f "$lib" ]; then
    echo "symbols_exported: $lib does not exist"
    exit 1
fi

syms=$("$nm" -D --defined-only "$lib") || { echo "symbols_exported: $nm failed"; exit 1; }
# nm prints "<address> <type> <name>"; a versioned name reads name@@VERSION.
names=$(printf '%s\n' "$syms" | awk 'NF { n = $NF; sub(/@.*/, "", n); print n }')
count=$(printf '%s\n' "$names" | grep -c .)
bad=$(printf '%s\n' "$names" | grep -v -E '^tern_[A-Za-z0-9_]+$' | grep .)

status=0
if [ -n "$bad" ]; then
    echo "symbols_exported: libtern.so exports symbols outside the tern_ namespace:"
    printf '%s\n' "$bad" | sed 's/^/    /' | head -n 50
    status=1
fi
if ! printf '%s\n' "$names" | grep -qx tern_version; then
    echo "symbols_exported: tern_version is not exported"
    status=1
fi

dyn=$("$readelf" -d "$lib") || { echo "symbols_exported: $readelf failed"; exit 1; }
got=$(printf '%s\n' "$dyn" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$got" != "$soname" ]; then
    echo "symbols_exported: SONAME is '${got:-<none>}', expected '$soname'"
    status=1
fi

if [ $status -eq 0 ]; then
    echo "symbols_exported: $count tern_* symbols exported, SONAME $got"
fi
exit $status
