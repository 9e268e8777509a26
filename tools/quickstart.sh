#!/usr/bin/env bash
# Installs the dependencies, builds strata and runs its main job on the embedded default:
# an in-process store with a host tier and an NVMe tier under ./strata-data.
#   tools/quickstart.sh [strata run options]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2
exec build/tools/strata run "$@"
