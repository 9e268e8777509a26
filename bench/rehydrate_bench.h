// `strata bench rehydrate`: for each model and prefix length, the time to restore the
// decode-ready state of the prefix by each plan (full, checkpoint, recompute) from each tier
// (DRAM, NVMe after a store restart) against a cold prefill of the same prefix in the same run
// (the ratio), the bytes read and the tokens recomputed; the planner's own choice against the
// best single option; bytes stored per token per policy for the V4-Pro and V4-Flash layouts;
// the LZ4 ratio of each family on engine state. JSON lines.
// Thread safety: run from one thread.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "strata/status.h"

namespace strata::bench {

struct RehydrateCase {
  std::string config_path;
  std::vector<int> prefixes;  // tokens, multiples of the block size
};

struct RehydrateBenchOptions {
  std::vector<RehydrateCase> cases;
  std::string scratch_dir = "strata-bench-rehydrate";
  std::string configs_dir = "configs/models";
  uint64_t seed = 1;
  bool progress = false;
};

Status RunRehydrateBench(const RehydrateBenchOptions& options, std::ostream& out);

}  // namespace strata::bench
