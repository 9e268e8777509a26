// `strata bench compare`: how fast the simulator replays a trace. Per round, every policy
// replays the whole trace once through a fresh SimStore (tools/compare.h), interleaved with the
// peer: the same trace through a bare hash set (the unlimited-cache hit ceiling,
// tools/trace.h Summarize), the least work any replay of the trace's blocks can do. Prints one
// JSON line per policy: requests/s and block operations/s, median and min-max over the rounds,
// and the time against the peer's.
// Thread safety: one run at a time.
#pragma once

#include <functional>
#include <string>

#include "strata/status.h"
#include "tools/compare_sweep.h"

namespace strata::bench {

struct CompareBenchOptions {
  tools::SweepOptions sweep;
  int rounds = 5;
};

Status RunCompareBench(const CompareBenchOptions& options,
                       const std::function<void(const std::string&)>& emit);

}  // namespace strata::bench
