// `strata bench store`: the store's figures, each against a limit or peer measured in the same
// run on the same machine, interleaved with the store's rounds, printed as JSON lines:
//   {"figure", "value", "unit", "baseline", "baseline_value", "ratio",
//    "value_min", "value_max", "baseline_min", "baseline_max", "rounds"}
// value / baseline_value are medians over the rounds, *_min / *_max their spread. For the NVMe
// and recovery figures the baseline is fio (a separate process, O_DIRECT, io_uring, the store's
// I/O size and queue depth) on files of its own in the same file system; both sides write
// incompressible bytes never repeated (fresh random bytes per record for the store, random
// buffers stamped per sector by fio). fio is a ceiling: a ratio above 1.0 against it means the
// comparison is wrong, and the benchmark warns on stderr.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/layout.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::bench {

struct StoreBenchOptions {
  std::string dir = "./strata-bench";     // scratch directory (segment files, index, fio files)
  CacheLayout layout;                     // record sizes: V4-Pro at B=256 by default (tools/)
  std::string model_path;                 // the config `layout` came from (for the crash child)
  uint64_t nvme_bytes = 2ull << 30;       // bytes written / read in the NVMe figures
  uint64_t recovery_bytes = 10ull << 30;  // records written before the crash-recovery figure
  uint64_t lookup_index_blocks = 1'000'000;
  uint32_t queue_depth = 32;
  uint32_t rounds = 5;  // measured rounds per figure (store and baseline alternate)
  DeviceKind device = DeviceKind::kIoUring;
  std::array<CodecKind, kNumFamilies> codec = StoreConfig{}.codec;
  // Families marked "auto" and the rule's parameters: the NVMe figures' stores apply it, and the
  // codec section prints the rule's decision per family on the bytes it measured (codec.<f>.rule).
  StoreConfig::CodecRule codec_rule;
  std::string only;  // run only figures whose name starts with this
  // nvme.drives: one directory per drive (empty: two directories under `dir`, on one disk).
  std::vector<std::string> drive_dirs;
};

// One JSON line per figure to `emit`; progress to stderr.
Status RunStoreBench(const StoreBenchOptions& options,
                     const std::function<void(const std::string& json_line)>& emit);

// The child process of the recovery figure: writes `nblocks` blocks (keys 0..nblocks-1, fresh
// random payloads), flushes, SIGKILLs itself.
Status RunCrashChild(const StoreBenchOptions& options, const std::string& dir, uint64_t capacity,
                     uint64_t nblocks);

// The samples of one side of a figure, one per round.
struct Samples {
  std::vector<double> v;
  void Add(double x) { v.push_back(x); }
  double Median() const;
  double Min() const;
  double Max() const;
};

// --only PREFIX: whether the figure or group `name` runs. It does when its name starts with the
// prefix, or when it is a group of the figure named (--only cluster.restore.vs_cold runs the group
// cluster.restore), but not for a sibling that merely shares letters (cluster.put.csa is not run
// by --only cluster.put.csa_index).
bool WantFigure(std::string_view only, std::string_view name);

// `higher_is_better`: ratio = value / baseline (rates); otherwise baseline / value (times), so a
// ratio below 1.0 always means "slower than the baseline".
std::string FigureJson(std::string_view figure, const Samples& value, std::string_view unit,
                       std::string_view baseline, const Samples& baseline_value,
                       bool higher_is_better = true);

}  // namespace strata::bench
