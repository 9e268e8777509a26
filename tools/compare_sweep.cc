#include "tools/compare_sweep.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include "engine/model_config.h"

namespace strata::tools {
namespace {

// A bound on --nodes: each node is a SimStore of its own (a few MB of bookkeeping each).
constexpr int kMaxNodes = 1024;

}  // namespace

Result<std::unique_ptr<Sweep>> Sweep::Make(const SweepOptions& o) {
  auto sw = std::unique_ptr<Sweep>(new Sweep());
  sw->options_ = o;
  if (!o.trace_path.empty() && o.trace_path.ends_with(".jsonl"))
    STRATA_RETURN_IF_ERROR(CheckTraceBlockSize(o.block_size).WithContext("--block-size"));
  if (o.models.empty()) return Status::InvalidArgument("--model: give at least one model config");
  if (o.policies.empty()) return Status::InvalidArgument("--policies: give at least one policy");
  if (o.evictions.empty()) return Status::InvalidArgument("--eviction: give at least one policy");
  for (const std::string& e : o.evictions)
    if (e != "lru" && e != "s3fifo" && e != "cost")
      return Status::InvalidArgument("--eviction: unknown policy '" + e +
                                     "' (choices: lru, s3fifo, cost)");
  if (o.kv_replicas < 1) return Status::InvalidArgument("--kv-replicas: at least 1");
  for (uint64_t d : o.dram)
    if (d == 0) return Status::InvalidArgument("--dram: the DRAM tier needs a positive size");
  if (o.nodes.empty()) return Status::InvalidArgument("--nodes: give at least one node count");
  for (int k : o.nodes)
    if (k < 1 || k > kMaxNodes)
      return Status::InvalidArgument("--nodes: a node count from 1 to " +
                                     std::to_string(kMaxNodes) + ", got " + std::to_string(k));
  if (o.assigns.empty()) return Status::InvalidArgument("--assign: give at least one assignment");
  if (o.clusters.empty()) return Status::InvalidArgument("--cluster: give at least one size");
  STRATA_RETURN_IF_ERROR(o.share.Validate().WithContext("--cluster-min-uses"));
  if (o.affinity_tokens < 1) return Status::InvalidArgument("--affinity-tokens: at least 1");
  if (o.codecs.empty()) return Status::InvalidArgument("--codec: give at least one codec");
  if (o.decode_threads < 1) return Status::InvalidArgument("--decode-threads: at least 1");
  const bool any_codec = std::any_of(o.codecs.begin(), o.codecs.end(),
                                     [](CodecKind k) { return k != CodecKind::kNone; });
  const bool any_nvme = std::any_of(o.nvme.begin(), o.nvme.end(), [](uint64_t b) { return b > 0; });
  if (any_codec && !any_nvme)
    return Status::InvalidArgument(
        "--codec: a record codec applies to the NVMe tier; give --nvme a size above 0");
  STRATA_ASSIGN_OR_RETURN(Hardware hw, LoadHardware(o.hardware_path));
  for (uint64_t c : o.clusters)
    if (c > 0 && !hw.has_cluster())
      return Status::InvalidArgument(
          "--cluster: the hardware file " + o.hardware_path +
          " has no cluster_read_bytes_per_s, cluster_write_bytes_per_s and cluster_latency_s "
          "(the node's network to the cluster tier; add them, each with its source)");
  for (const std::string& text : o.policies) {
    auto p = ComparePolicy::Parse(text, o.block_size);
    if (!p.ok()) return p.status().WithContext("--policies");
    sw->policies_.push_back(*p);
  }
  for (const std::string& path : o.models) {
    CompareSetup s;
    STRATA_ASSIGN_OR_RETURN(ModelShape shape, engine::LoadModelShape(path));
    LayoutOptions lo;
    lo.block_size = o.block_size;
    STRATA_ASSIGN_OR_RETURN(s.layout, CacheLayout::Make(shape, lo));
    s.model = std::filesystem::path(path).stem().string();
    s.hardware = hw;
    STRATA_ASSIGN_OR_RETURN(s.cost, hw.For(s.model));
    s.overlap = o.overlap;
    s.kv_replicas = o.kv_replicas;
    s.share = o.share;
    s.affinity_tokens = o.affinity_tokens;
    s.decode_threads = o.decode_threads;
    for (CodecKind k : o.codecs)
      if (k != CodecKind::kNone && !s.CodecFor(k)) {
        STRATA_ASSIGN_OR_RETURN(CodecEstimate e, MeasureCodec(k, s.layout));
        s.codecs.push_back(e);
      }
    if (!o.trace_path.empty()) {
      TraceLoadOptions lo2 = o.load;
      lo2.block_size = o.block_size;
      lo2.layout_fingerprint = s.layout.fingerprint();
      lo2.vocab = shape.vocab_size;
      STRATA_ASSIGN_OR_RETURN(Trace t, LoadTrace(o.trace_path, lo2));
      sw->summaries_.push_back(Summarize(t));
      sw->traces_.push_back(std::move(t));
    }
    sw->setups_.push_back(std::move(s));
  }
  return sw;
}

std::vector<CompareConfig> Sweep::configs(size_t) const {
  std::vector<CompareConfig> out;
  for (const ComparePolicy& p : policies_)
    for (uint64_t nvme : options_.nvme)
      for (uint64_t dram : options_.dram)
        for (uint64_t hbm : options_.hbm)
          for (const std::string& e : options_.evictions)
            for (NodeAssign a : options_.assigns)
              for (uint64_t cluster : options_.clusters)
                for (int nodes : options_.nodes)
                  for (CodecKind codec : options_.codecs) {
                    if (nodes == 1 && a != options_.assigns.front()) continue;
                    if (codec != CodecKind::kNone && nvme == 0) continue;
                    CompareConfig c;
                    c.policy = p;
                    c.hbm_bytes = hbm, c.dram_bytes = dram, c.nvme_bytes = nvme, c.eviction = e;
                    c.nodes = nodes, c.assign = a, c.cluster_bytes = cluster;
                    c.codec = codec;
                    out.push_back(c);
                  }
  return out;
}

Status ParseWindow(const std::string& text, TraceLoadOptions& load) {
  if (text.empty()) return Status::Ok();
  double a = 0, b = 0;
  char colon = 0;
  if (std::sscanf(text.c_str(), "%lf%c%lf", &a, &colon, &b) != 3 || colon != ':' || a < 0 || b <= a)
    return Status::InvalidArgument("--window: START:END in seconds, END > START");
  load.window_begin_ms = uint64_t(a * 1000), load.window_end_ms = uint64_t(b * 1000);
  return Status::Ok();
}

}  // namespace strata::tools
