// Opens tiered stores for tests over the memory, posix or io_uring device, optionally wrapped
// in a FaultDevice.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "bench/v4_payload.h"
#include "cachestore/store/tiered_store.h"
#include "tests/testing/fault_device.h"
#include "tests/testing/temp_dir.h"

namespace strata::testing {

inline StoreConfig SmallConfig(const std::string& dir, DeviceKind device) {
  StoreConfig c;
  c.host.capacity_bytes = 4 << 20;
  c.nvme.data_dir = dir;
  c.nvme.segment_bytes = 1 << 20;
  c.nvme.capacity_bytes = 16 << 20;
  c.nvme.device = device;
  c.nvme.queue_depth = 8;
  c.nvme.max_io_bytes = 64 << 10;  // several I/Os per record
  return c;
}

// The segment files a store opened with `c` uses.
inline cachestore::FileDeviceOptions SegmentOptions(const StoreConfig& c) {
  cachestore::FileDeviceOptions fo;
  fo.dir = (std::filesystem::path(c.nvme.data_dir) / "segments").string();
  fo.segment_bytes = c.nvme.segment_bytes;
  fo.segment_count = uint32_t(c.nvme.capacity_bytes / c.nvme.segment_bytes);
  fo.queue_depth = c.nvme.queue_depth;
  return fo;
}

// Opens `c`; with `fault`, the device is wrapped and *fault points at the wrapper.
inline Result<std::unique_ptr<Store>> OpenTestStore(const StoreConfig& c,
                                                    FaultDevice** fault = nullptr,
                                                    bool verify_payloads = false) {
  cachestore::TieredStoreOptions o;
  o.verify_payloads_on_open = verify_payloads;
  if (!c.nvme.data_dir.empty() && (fault || c.nvme.device == DeviceKind::kMemory)) {
    auto dev = cachestore::OpenFileDevice(c.nvme.device, SegmentOptions(c));
    if (!dev.ok()) return dev.status();
    if (fault) {
      auto f = std::make_unique<FaultDevice>(std::move(dev).value());
      *fault = f.get();
      o.device = std::move(f);
    } else {
      o.device = std::move(dev).value();
    }
  }
  return cachestore::OpenTieredStore(c, std::move(o));
}

// Bytes derived from `seed`, for objects whose content a test checks later.
inline std::vector<std::byte> SeededBytes(uint64_t seed, size_t size) {
  std::vector<std::byte> b(size);
  bench::FillPseudoRandom(b.data(), size, seed);
  return b;
}

// The value of a named counter of `s` (fails the test if there is no such counter).
inline uint64_t CounterOf(const Store& s, std::string_view name) {
  uint64_t out = ~0ull;
  s.VisitCounters([&](std::string_view n, uint64_t v) {
    if (n == name) out = v;
  });
  EXPECT_NE(out, ~0ull) << "no counter " << name;
  return out;
}

inline bool SkipDevice(DeviceKind k) {
  return k == DeviceKind::kIoUring && !cachestore::IoUringAvailable();
}

}  // namespace strata::testing
