// Synthetic state payloads shaped like real V4 cache entries, for benchmarks, demos and tests:
// main/SWA entries are FP8 e4m3 of normally distributed values with UE8M0 scales per 64 dims,
// then BF16 RoPE dims, then the pad; indexer entries are FP4 e2m1 with UE8M0 scales per 32;
// compressor carry is fp32. Deterministic in the seed.
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "strata/family.h"
#include "strata/layout.h"

namespace strata::bench {

std::vector<std::byte> MakeFamilyPayload(const CacheLayout& layout, Family family, uint64_t seed);

// Fills `out` with bytes derived from `seed` (splitmix64): cheap, verifiable content.
void FillPseudoRandom(std::byte* out, size_t n, uint64_t seed);

}  // namespace strata::bench
