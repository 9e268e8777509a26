// The restore planner's cost probes, run at start by `strata run` and `strata bench rehydrate`
// so both plan with the same measured costs (engine/session.h, CostModel):
//
//   host  DRAM copy bandwidth: memcpy of 64 MiB (the host tier's restore is decode = copies).
//   nvme  read bandwidth of the NVMe tier as the tier reads: a device of the configured kind
//         on the data directory, O_DIRECT reads of max_io_bytes with queue_depth of them in
//         flight (the store's own Get path). A queue-depth-1 probe under-states a disk that
//         needs parallel requests, and the planner then over-prices every NVMe read.
//
// The prefill speed is measured by CachedEngine::Create (it needs the model).
// Thread safety: the functions are independent; run them from one thread at a time per
// directory.
#pragma once

#include <cstdint>
#include <string>

#include "cachestore/nvme/device.h"
#include "engine/session.h"
#include "strata/store.h"

namespace strata::engine {

struct DiskReadProbe {
  double bytes_per_s = 0;     // median of `passes` passes over the probe file
  uint64_t bytes = 0;         // read per pass
  uint32_t io_bytes = 0;      // per read
  uint32_t queue_depth = 0;   // the device's configured depth
  uint32_t max_inflight = 0;  // reads observed in flight at once (submitted, not completed)
  int passes = 0;
  DeviceKind device = DeviceKind::kAuto;  // the backend that ran the reads
};

// Memcpy bandwidth in bytes/s: the median of 3 copies of `bytes` after a warm-up copy.
double MeasureHostCopy(size_t bytes = 64ull << 20);

// Fills the first `bytes` of `dev` (writes, then Sync) and reads them back `passes` times in
// reads of `io_bytes`, handed to the device as one batch per pass so it keeps its
// queue_depth() in flight. `bytes` and `io_bytes` are multiples of 4 KiB; `io_bytes` divides
// the segment size.
Result<DiskReadProbe> MeasureDeviceRead(cachestore::Device& dev, uint64_t bytes, uint32_t io_bytes,
                                        int passes = 3);

// The NVMe tier's read bandwidth: a one-segment device of config.device in
// `config.data_dir`/.cost-probe (removed afterwards) with config.queue_depth, reads of
// config.max_io_bytes; 4 x queue_depth reads per pass, at least 32 MiB, at most 256 MiB.
Result<DiskReadProbe> MeasureNvmeRead(const NvmeTierConfig& config);

// Host and NVMe bandwidths for a store of `config` (prefill_s_per_token left 0 for
// CachedEngine::Create to measure). No NVMe tier: the NVMe bandwidth keeps its
// default; the device and cluster bandwidths keep theirs.
struct MeasuredCosts {
  CostModel cost;
  DiskReadProbe nvme;  // bytes_per_s == 0 without an NVMe tier
};
Result<MeasuredCosts> MeasureStoreCosts(const StoreConfig& config);

}  // namespace strata::engine
