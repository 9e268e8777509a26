// `strata bench store`: the store's figures, each against a peer measured in the same run on the
// same machine, printed as JSON lines:
//   {"figure": ..., "value": ..., "unit": ..., "baseline": ..., "baseline_value": ..., "ratio":
//   ...}
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "strata/layout.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::bench {

struct StoreBenchOptions {
  std::string dir = "./strata-bench";     // scratch directory (segment files, index)
  CacheLayout layout;                     // record sizes: V4-Pro at B=256 by default (tools/)
  std::string model_path;                 // the config `layout` came from (for the crash child)
  uint64_t nvme_bytes = 2ull << 30;       // bytes written / read in the NVMe figures
  uint64_t recovery_bytes = 10ull << 30;  // records written before the crash-recovery figure
  uint64_t lookup_index_blocks = 1'000'000;
  uint32_t queue_depth = 32;
  DeviceKind device = DeviceKind::kIoUring;
  std::array<CodecKind, kNumFamilies> codec = StoreConfig{}.codec;
  std::string only;  // run only figures whose name starts with this
};

// One JSON line per figure to `emit`; progress to stderr.
Status RunStoreBench(const StoreBenchOptions& options,
                     const std::function<void(const std::string& json_line)>& emit);

// The child process of the recovery figure: writes `nblocks` blocks, flushes, SIGKILLs itself.
Status RunCrashChild(const StoreBenchOptions& options, const std::string& dir, uint64_t capacity,
                     uint64_t nblocks);

std::string FigureJson(std::string_view figure, double value, std::string_view unit,
                       std::string_view baseline, double baseline_value,
                       bool higher_is_better = true);

}  // namespace strata::bench
