#!/usr/bin/env bash
# Installs strata's build and test dependencies from Debian packages. Idempotent and quiet;
# run as root (or with sudo available) on Debian 12.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config
  liburing-dev librocksdb-dev liblz4-dev libboost-dev libboost-system-dev libcxxopts-dev
  nlohmann-json3-dev libxxhash-dev libzstd-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libopenblas-dev fio
  python3-matplotlib python3-numpy python3-xxhash python3-pytest prometheus clang libclang-rt-14-dev
  libhiredis-dev redis-server redis-tools
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
