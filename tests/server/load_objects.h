// The objects of the daemon's load and fault tests: key, size and content are functions of
// (namespace, index), so the load client processes (load_client.cc) and the test that checks
// what they left behind (reliability_test.cc) agree byte for byte.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "strata/keys.h"

namespace strata::testing {

inline constexpr uint64_t kLoadFingerprint = 0x10adc11e47ull;
inline constexpr uint32_t kLoadBlockTokens = 256;

inline BlockKey LoadKeyOf(uint64_t ns, int i) {
  return BlockKey{ns * 0x9E3779B97F4A7C15ull, uint64_t(i)};
}

// Sizes like V4 block families: from a few KiB to a few hundred KiB.
inline size_t LoadSizeOf(int i) { return size_t(4096) << (i % 7); }

inline std::vector<std::byte> LoadContentOf(uint64_t ns, int i) {
  std::vector<std::byte> out(LoadSizeOf(i));
  std::mt19937_64 rng(ns * 1000003 + uint64_t(i));
  for (size_t o = 0; o < out.size(); o += 8) {
    const uint64_t v = rng();
    std::memcpy(out.data() + o, &v, std::min<size_t>(8, out.size() - o));
  }
  return out;
}

}  // namespace strata::testing
