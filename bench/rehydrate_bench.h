// `strata bench rehydrate`: for each model and cached prefix, the time to first token of a
// prompt made of that prefix and an uncached tail (not a multiple of the block size): lookup +
// restore by each plan (full, checkpoint, recompute) and by the planner, from each tier (DRAM;
// NVMe after a store restart), + the forward of the tail up to the first new token's logits,
// against a cold prefill of the same prompt up to the same logits, in the same run, interleaved
// with the DRAM restores. Medians: cold of 3 runs, DRAM of 5, NVMe of 3, with min-max; the CPU
// caches are flushed before every timed run. The planner plans with costs measured at start
// (engine/cost_probe.h, a `costs` line). Also: bytes stored per token per policy for the V4-Pro
// and V4-Flash layouts; the LZ4 ratio of each family on engine state. JSON lines.
// Fails (after printing every line and a `checks` line) if any restore's next logits differ from
// the cold run's, or a restore did not take its labelled plan from its labelled tier (bytes
// read per tier: a DRAM row reads nothing from NVMe, an NVMe row everything).
// Thread safety: run from one thread.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "strata/status.h"

namespace strata::bench {

struct RehydrateCase {
  std::string config_path;
  std::vector<int> prefixes;  // cached tokens, multiples of the block size
};

struct RehydrateBenchOptions {
  std::vector<RehydrateCase> cases;
  std::string scratch_dir = "strata-bench-rehydrate";
  std::string configs_dir = "configs/models";
  uint64_t seed = 1;
  int tail_tokens = 100;  // uncached prompt tokens after the prefix, 1..block size - 1
  bool progress = false;
};

Status RunRehydrateBench(const RehydrateBenchOptions& options, std::ostream& out);

}  // namespace strata::bench
