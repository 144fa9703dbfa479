#!/bin/sh
# ensure_cmake.sh BUILD_DIR [cmake|ctest]: prints the path of a CMake (or of its ctest)
# that is 3.20 or newer, for the top-level Makefile.
#
# The one on PATH is used when it is recent enough. Otherwise CMake is installed from
# PyPI with `python3 -m pip install --target BUILD_DIR/tools/cmake`: a folder of the
# build tree, not the system (`rm -rf BUILD_DIR/tools` removes it again), so a machine
# with only Rust, a C compiler, python3 and make can build tern. Messages go to stderr;
# stdout carries only the path.
set -eu

build=${1:-build}
tool=${2:-cmake}
min=3.20
private="$build/tools/cmake"

# version_ok BINARY: its version is $min or newer.
version_ok() {
    v=$("$1" --version 2>/dev/null | awk 'NR == 1 { print $3 }')
    [ -n "$v" ] && [ "$(printf '%s\n' "$min" "$v" | sort -V | head -n 1)" = "$min" ]
}

# The cmake binary the pip package ships (cmake.CMAKE_BIN_DIR of the wheel).
private_bin() {
    [ -d "$private" ] || return 1
    PYTHONPATH="$private" python3 -c 'import cmake, sys; sys.stdout.write(cmake.CMAKE_BIN_DIR)' 2>/dev/null
}

# print_tool BIN_DIR_OR_CMAKE: the requested tool next to that cmake.
print_tool() {
    if [ "$tool" = cmake ]; then
        printf '%s\n' "$1"
    else
        printf '%s\n' "$(dirname "$1")/$tool"
    fi
}

if found=$(command -v cmake 2>/dev/null) && version_ok "$found"; then
    # A ctest beside it is the one that belongs to it; otherwise the one on PATH.
    if [ "$tool" != cmake ] && [ ! -x "$(dirname "$found")/$tool" ]; then
        command -v "$tool"
        exit 0
    fi
    print_tool "$found"
    exit 0
fi

if dir=$(private_bin) && version_ok "$dir/cmake"; then
    print_tool "$dir/cmake"
    exit 0
fi

if found=$(command -v cmake 2>/dev/null); then
    why="the cmake on PATH ($found) is older than $min"
else
    why="cmake is not on PATH"
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "tern: $why, and python3 -m pip is not available to install it." >&2
    echo "tern: install CMake $min or newer (Debian: apt-get install cmake), or pip for python3." >&2
    exit 1
fi
echo "tern: $why; installing CMake >= $min from PyPI into $private" >&2
echo "tern: (with pip --target: a folder of this build tree, not the system; rm -rf $build/tools removes it)" >&2
mkdir -p "$private"
PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    python3 -m pip install --quiet --target "$private" "cmake>=$min" >&2
if ! dir=$(private_bin) || ! version_ok "$dir/cmake"; then
    echo "tern: pip installed CMake into $private, but no usable cmake binary came with it" >&2
    exit 1
fi
echo "tern: using $dir/cmake ($("$dir/cmake" --version | awk 'NR == 1 { print $3 }'))" >&2
print_tool "$dir/cmake"
