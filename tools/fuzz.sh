#!/usr/bin/env bash
# Builds the wire protocol's libFuzzer target alone with clang (api/wire.cc + fuzz/wire_fuzz.cc,
# ASan + UBSan, beside the GCC build) and runs it for a bounded time, seeded from fuzz/corpus/.
#
#   tools/fuzz.sh BUILD_DIR [SECONDS]   build into BUILD_DIR and fuzz for SECONDS (default 60)
#   tools/fuzz.sh --make-corpus         regenerate fuzz/corpus/ with fuzz/make_corpus.cc
#
# New inputs go to BUILD_DIR/wire-corpus (kept between runs), crashes to BUILD_DIR/crash-*.
# Exit status: 0 clean, 77 when clang++ or libFuzzer is missing (ctest reports a skip), else the
# fuzzer's (a crash, a leak or a broken invariant). CLANGXX overrides the compiler.
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
cxx="${CLANGXX:-clang++}"
flags=(-std=c++20 -O1 -g -I "$src/include")

if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz.sh: $cxx not found (Debian: clang, libclang-rt-14-dev); skipping" >&2
  exit 77
fi

if [ "${1:-}" = "--make-corpus" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$cxx" "${flags[@]}" "$src/api/wire.cc" "$src/fuzz/make_corpus.cc" -o "$tmp/make_corpus"
  rm -rf "$src/fuzz/corpus"
  mkdir -p "$src/fuzz/corpus"
  "$tmp/make_corpus" "$src/fuzz/corpus"
  echo "fuzz.sh: wrote $(ls "$src/fuzz/corpus" | wc -l) seeds to fuzz/corpus" >&2
  exit 0
fi

if [ $# -lt 1 ]; then
  echo "usage: tools/fuzz.sh BUILD_DIR [SECONDS] | --make-corpus" >&2
  exit 2
fi
out="$1"
seconds="${2:-60}"
mkdir -p "$out/wire-corpus"
out="$(cd "$out" && pwd)"

# libFuzzer ships in libclang-rt-<version>-dev, apart from clang: probe for it.
probe="$out/fuzz-probe"
printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
  'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' > "$probe.cc"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe.cc" -o "$probe" >/dev/null 2>&1; then
  echo "fuzz.sh: $cxx cannot link -fsanitize=fuzzer (Debian: libclang-rt-14-dev); skipping" >&2
  exit 77
fi
rm -f "$probe" "$probe.cc"

"$cxx" "${flags[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  "$src/api/wire.cc" "$src/fuzz/wire_fuzz.cc" -o "$out/wire_fuzz"

# -max_len: frames of a few hundred items; -timeout: an input taking 10 s is reported as a hang.
set +e
"$out/wire_fuzz" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
  -use_value_profile=1 -print_final_stats=1 -artifact_prefix="$out/" \
  "$out/wire-corpus" "$src/fuzz/corpus" >"$out/wire_fuzz.log" 2>&1
status=$?
set -e
# Progress lines and the recommended dictionary stay in the log; findings and final stats show.
grep -v -E '^(#[0-9]|"|###### )' "$out/wire_fuzz.log" | tail -n 60 >&2 || true
runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/wire_fuzz.log")"
echo "fuzz.sh: exit $status, ${runs:-?} inputs in ${seconds} s, corpus $(ls "$out/wire-corpus" | wc -l) files" >&2
exit "$status"
