// The configurations of a `strata compare` run: per model its layout, costs and the trace mapped
// to its block keys; the cross product of policies and capacities. Shared by the CLI and
// `strata bench compare`.
// Thread safety: read-only after Make.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tools/compare.h"

namespace strata::tools {

struct SweepOptions {
  std::string trace_path;  // empty: no trace (node capacity only)
  std::vector<std::string> models;
  std::string hardware_path;
  uint32_t block_size = 256;
  std::vector<std::string> policies, evictions;
  std::vector<uint64_t> hbm, dram, nvme;
  RestoreOverlap overlap = RestoreOverlap::kPerLayer;
  int kv_replicas = 1;
  // Multi-node replays: node counts, assignments, cluster tier sizes (0: none).
  std::vector<int> nodes = {1};
  std::vector<NodeAssign> assigns = {NodeAssign::kRoundRobin};
  std::vector<uint64_t> clusters = {0};
  cachestore::ClusterSharePolicy share;  // `enabled` ignored (set per configuration)
  int64_t affinity_tokens = 1024;
  // NVMe record codecs (each one a configuration of its own; kNone: raw), measured per model
  // on its layout's objects (tools/codec_estimate.h); restores decoding at once.
  std::vector<CodecKind> codecs = {CodecKind::kNone};
  uint32_t decode_threads = 8;
  TraceLoadOptions load;  // block size and fingerprint are set per model
};

// --window START:END (seconds of trace time) into `load`; an empty text leaves it unset.
Status ParseWindow(const std::string& text, TraceLoadOptions& load);

class Sweep {
 public:
  static Result<std::unique_ptr<Sweep>> Make(const SweepOptions& options);
  size_t models() const { return setups_.size(); }
  const CompareSetup& setup(size_t m) const { return setups_[m]; }
  const Trace& trace(size_t m) const { return traces_[m]; }
  const TraceSummary& summary(size_t m) const { return summaries_[m]; }
  const std::vector<ComparePolicy>& policies(size_t) const { return policies_; }
  // Policy-major: every capacity and eviction policy for the first policy, then the next; within
  // those, per assignment and cluster size, the node counts, then the codecs (innermost; a codec
  // only with an NVMe tier). One node is replayed once, under the first assignment (both assign
  // it the same way).
  std::vector<CompareConfig> configs(size_t m) const;

 private:
  SweepOptions options_;
  std::vector<CompareSetup> setups_;
  std::vector<Trace> traces_;
  std::vector<TraceSummary> summaries_;
  std::vector<ComparePolicy> policies_;
};

}  // namespace strata::tools
