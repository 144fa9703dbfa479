# tern: the Quick start's two commands, wrapped around the CMake build (the way neovim's
# Makefile wraps its own):
#
#   make demo     build and start the demo on http://127.0.0.1:8000 (PORT=9000 for another)
#   make test     build and run every test: the same command .ci/run runs
#
# CMake 3.20 or newer is taken from PATH, or installed from PyPI into $(BUILD)/tools/cmake
# (tools/ensure_cmake.sh; a folder of the build tree, never the system). Everything else
# is plain CMake, so `cmake -S . -B build && cmake --build build` works as before.
#
# Variables: BUILD (build directory, default build), PORT (demo port, default 8000),
# JOBS (parallel build jobs, default 2), CMAKE_ARGS (extra configure arguments),
# CTEST_ARGS (extra ctest arguments, e.g. CTEST_ARGS='-L c').

BUILD ?= build
PORT ?= 8000
JOBS ?= 2
CMAKE_ARGS ?=
CTEST_ARGS ?=

ENSURE = sh tools/ensure_cmake.sh "$(BUILD)"

.PHONY: all configure build demo demo-cpp test clean

all: build

configure:
	@cmake=$$($(ENSURE) cmake) && "$$cmake" -S . -B "$(BUILD)" -DTERN_CARGO_JOBS=$(JOBS) $(CMAKE_ARGS)

build: configure
	@cmake=$$($(ENSURE) cmake) && "$$cmake" --build "$(BUILD)" -j$(JOBS)

# The demo keeps its uploads in the build tree, never in the source tree.
demo: configure
	@cmake=$$($(ENSURE) cmake) && "$$cmake" --build "$(BUILD)" -j$(JOBS) --target demo
	"$(BUILD)/examples/demo" --port $(PORT) --uploads "$(BUILD)/demo_uploads"

demo-cpp: configure
	@cmake=$$($(ENSURE) cmake) && "$$cmake" --build "$(BUILD)" -j$(JOBS) --target demo_cpp
	"$(BUILD)/examples/demo_cpp" --port $(PORT) --uploads "$(BUILD)/demo_uploads"

# Every test; then, again at the end where it is seen, what this machine left out
# (the configure step writes that list; CI=true makes a missing tool an error instead).
test: build
	@ctest=$$($(ENSURE) ctest) && status=0 && \
	  "$$ctest" --test-dir "$(BUILD)" --output-on-failure $(CTEST_ARGS) || status=$$?; \
	  if [ -s "$(BUILD)/tests_left_out.txt" ]; then \
	    echo "make test: left out or cut short on this machine, for want of a tool:"; \
	    sed 's/^/  - /' "$(BUILD)/tests_left_out.txt"; \
	    echo "make test: install those tools to run them (.ci/run installs them all)."; \
	  else \
	    echo "make test: every test was registered (no tool missing)."; \
	  fi; \
	  exit $$status

clean:
	rm -rf "$(BUILD)"
