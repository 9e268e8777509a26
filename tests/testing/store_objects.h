// Deterministic test objects: object i has a key and bytes derived from i, so any process can
// check what it reads back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/v4_payload.h"
#include "strata/store.h"

namespace strata::testing {

inline ObjectKey ObjectKeyOf(uint64_t i) {
  return ObjectKey{42, BlockKey{0xabcdef, i}, Family(i % kNumFamilies)};
}

// Sizes vary from a byte to 64 KiB so records span one or many pages.
inline std::vector<std::byte> ObjectBytes(uint64_t i) {
  const size_t size = 1 + (i * 7919) % (64 << 10);
  std::vector<std::byte> b(size);
  bench::FillPseudoRandom(b.data(), size, i * 0x9E3779B97F4A7C15ull + 1);
  return b;
}

inline StoreConfig CrashStoreConfig(const std::string& dir, int device) {
  StoreConfig c;
  c.host.capacity_bytes = 8 << 20;
  c.nvme.data_dir = dir;
  c.nvme.segment_bytes = 4 << 20;
  c.nvme.capacity_bytes = 256 << 20;
  c.nvme.device = DeviceKind(device);
  c.nvme.queue_depth = 8;
  c.codec[int(Family::kCsa)] = CodecKind::kLz4;  // exercise a compressed family too
  return c;
}

}  // namespace strata::testing
