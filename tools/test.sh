#!/usr/bin/env bash
# Installs the dependencies, builds strata and runs the whole test suite.
#   tools/test.sh [BUILD_DIR]        (default: build)
# Environment: STRATA_SANITIZE=address,undefined | thread builds with sanitizers;
# STRATA_TEST_FILTER=<ctest regex> runs a subset; STRATA_CMAKE_ARGS adds configure options;
# STRATA_TEST_LONG=1 also runs the tests labelled `long` (100 SIGKILL crash cycles per device),
# which are left out by default.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
tools/install-deps.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSTRATA_SANITIZE="${STRATA_SANITIZE:-}" ${STRATA_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j2
mkdir -p "$build/test-tmp"
export STRATA_TEST_TMPDIR="$PWD/$build/test-tmp"
long=(-LE long)
if [[ "${STRATA_TEST_LONG:-0}" == 1 ]]; then long=(); fi
ctest --test-dir "$build" --output-on-failure -j2 ${STRATA_TEST_FILTER:+-R "$STRATA_TEST_FILTER"} \
  "${long[@]}"
