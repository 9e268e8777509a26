#include "tools/compare_report.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace strata::tools {
namespace {

using nlohmann::json;

constexpr double kGB = 1e9;

json TierArray(const std::array<uint64_t, kNumTiers>& a) {
  json j = json::object();
  for (Tier t : kAllTiers) j[std::string(TierName(t))] = a[size_t(t)];
  return j;
}

json Pct(const Percentiles& p) {
  return {{"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}, {"mean", p.mean}};
}

}  // namespace

std::string SummaryJson(const Trace& t, const TraceSummary& s, const std::string& model) {
  json j = {{"kind", "trace"},
            {"trace", t.name},
            {"model", model},
            {"block_size", t.block_size},
            {"requests", s.requests},
            {"distinct_blocks", s.distinct_blocks},
            {"footprint_tokens", s.footprint_tokens},
            {"input_tokens", s.input_tokens},
            {"output_tokens", s.output_tokens},
            {"ceiling_hit_tokens", s.ceiling_hit_tokens},
            {"ceiling_hit_rate", s.ceiling_hit_rate},
            {"span_s", s.span_s}};
  return j.dump();
}

std::string ResultJson(const CompareResult& r) {
  const CompareConfig& c = r.config;
  json resident = json::object();
  for (Tier t : kAllTiers)
    resident[std::string(TierName(t))] = {{"peak", r.peak_resident_tokens[size_t(t)]},
                                          {"mean", r.mean_resident_tokens[size_t(t)]}};
  json j = {{"kind", "result"},
            {"model", r.model},
            {"policy", c.policy.ToString()},
            {"policy_kind", c.policy.KindName()},
            {"checkpoint_every", c.policy.stored.every},
            {"hbm_bytes", c.hbm_bytes},
            {"dram_bytes", c.dram_bytes},
            {"nvme_bytes", c.nvme_bytes},
            {"eviction", c.eviction},
            {"nodes", c.nodes},
            {"assign", std::string(NodeAssignName(c.assign))},
            {"cluster_bytes", c.cluster_bytes},
            {"requests", r.requests},
            {"input_tokens", r.input_tokens},
            {"hit_tokens", r.hit_tokens},
            {"hit_rate", r.hit_rate()},
            {"ceiling_hit_rate", r.ceiling_hit_rate},
            {"restored_tokens", r.restored_tokens},
            {"recompute_tokens", r.recompute_tokens},
            {"computed_tokens", r.computed_tokens},
            {"saved_tokens", r.saved_tokens},
            {"saved_rate", r.saved_rate()},
            {"amplification", r.amplification()},
            {"plans",
             {{"cold", r.plans[0]},
              {"full", r.plans[1]},
              {"checkpoint", r.plans[2]},
              {"recompute", r.plans[3]}}},
            {"fallbacks", r.fallbacks},
            {"objects_read", TierArray(r.objects_read)},
            {"bytes_read", TierArray(r.bytes_read)},
            {"bytes_written", TierArray(r.bytes_written)},
            {"written_bytes_per_token", r.written_bytes_per_token()},
            {"resident_tokens", resident},
            {"puts", r.puts},
            {"put_failures", r.put_failures},
            {"evictions", r.evictions},
            {"demotions", r.demotions},
            {"cluster_hit_tokens", r.cluster_hit_tokens},
            {"cluster_hit_rate", r.cluster_hit_rate()},
            {"cluster_uploads", r.cluster_uploads},
            {"cluster_fills", r.cluster_fills},
            {"cluster_evictions", r.cluster_evictions},
            {"cluster_share",
             {{"min_uses", r.share.min_uses},
              {"checkpoints", r.share.checkpoints},
              {"full_swa", r.share.full_swa}}},
            {"ttft_s", Pct(r.ttft_s)},
            {"ttft_cold_s", Pct(r.ttft_cold_s)},
            {"replay_s", r.wall_s}};
  return j.dump();
}

std::string TableHeader(TableColumns columns) {
  if (columns == TableColumns::kCluster)
    return fmt::format(
        "{:<15} {:>7} {:>7} {:>6} {:<6} {:>5} {:<11} {:>7} {:>6} {:>6} {:>6} {:>5} {:>9} {:>9} "
        "{:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7}\n",
        "policy", "dram", "nvme", "hbm", "evict", "nodes", "assign", "cluster", "hit%", "cl hit",
        "saved%", "ampl", "rd host", "rd nvme", "rd clus", "wr host", "wr nvme", "wr clus",
        "ttft50", "ttft90", "ttft99");
  return fmt::format(
      "{:<15} {:>7} {:>7} {:>6} {:<6} {:>6} {:>6} {:>5} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} "
      "{:>8} {:>9} {:>7} {:>7} {:>7}\n",
      "policy", "dram", "nvme", "hbm", "evict", "hit%", "saved%", "ampl", "rd host", "rd nvme",
      "wr host", "wr nvme", "B/tok", "Mtok hst", "Mtok nvm", "evicted", "ttft50", "ttft90",
      "ttft99");
}

std::string TableRow(const CompareResult& r, TableColumns columns) {
  const CompareConfig& c = r.config;
  auto gb = [](uint64_t b) { return fmt::format("{:.0f}G", double(b) / kGB); };
  auto cap = [](uint64_t b) {
    if (b == 0) return std::string("0");
    if (b % (1ull << 40) == 0) return fmt::format("{}T", b >> 40);
    return fmt::format("{}G", b >> 30);
  };
  if (columns == TableColumns::kCluster)
    return fmt::format(
        "{:<15} {:>7} {:>7} {:>6} {:<6} {:>5} {:<11} {:>7} {:>6.2f} {:>6.2f} {:>6.2f} {:>5.2f} "
        "{:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7.3f} {:>7.3f} {:>7.3f}\n",
        c.policy.ToString(), cap(c.dram_bytes), cap(c.nvme_bytes), cap(c.hbm_bytes), c.eviction,
        c.nodes, c.nodes > 1 ? std::string(NodeAssignName(c.assign)) : std::string("-"),
        cap(c.cluster_bytes), 100 * r.hit_rate(), 100 * r.cluster_hit_rate(), 100 * r.saved_rate(),
        r.amplification(), gb(r.bytes_read[size_t(Tier::kHost)]),
        gb(r.bytes_read[size_t(Tier::kNvme)]), gb(r.bytes_read[size_t(Tier::kCluster)]),
        gb(r.bytes_written[size_t(Tier::kHost)]), gb(r.bytes_written[size_t(Tier::kNvme)]),
        gb(r.bytes_written[size_t(Tier::kCluster)]), r.ttft_s.p50, r.ttft_s.p90, r.ttft_s.p99);
  return fmt::format(
      "{:<15} {:>7} {:>7} {:>6} {:<6} {:>6.2f} {:>6.2f} {:>5.2f} {:>9} {:>9} {:>9} {:>9} {:>8.0f} "
      "{:>8.1f} {:>8.1f} {:>9} {:>7.3f} {:>7.3f} {:>7.3f}\n",
      c.policy.ToString(), cap(c.dram_bytes), cap(c.nvme_bytes), cap(c.hbm_bytes), c.eviction,
      100 * r.hit_rate(), 100 * r.saved_rate(), r.amplification(),
      gb(r.bytes_read[size_t(Tier::kHost)]), gb(r.bytes_read[size_t(Tier::kNvme)]),
      gb(r.bytes_written[size_t(Tier::kHost)]), gb(r.bytes_written[size_t(Tier::kNvme)]),
      r.written_bytes_per_token(), r.peak_resident_tokens[size_t(Tier::kHost)] / 1e6,
      r.peak_resident_tokens[size_t(Tier::kNvme)] / 1e6, r.evictions, r.ttft_s.p50, r.ttft_s.p90,
      r.ttft_s.p99);
}

std::string NodeCapacityJson(const CompareSetup& s, const std::vector<NodeCapacity>& caps) {
  json pol = json::array();
  for (const NodeCapacity& c : caps)
    pol.push_back(
        {{"policy", c.policy}, {"bytes_per_token", c.bytes_per_token}, {"tokens", c.tokens}});
  json j = {{"kind", "node_capacity"},
            {"hardware", s.hardware.name},
            {"model", s.model},
            {"hbm_total_bytes", double(s.hardware.gpus) * s.hardware.hbm_bytes_per_gpu},
            {"weight_bytes", s.cost.weight_bytes},
            {"reserve_fraction", s.hardware.hbm_reserve_fraction},
            {"kv_replicas", s.kv_replicas},
            {"hbm_left_bytes", s.hardware.HbmLeftBytes(s.cost)},
            {"policies", pol}};
  return j.dump();
}

std::string NodeCapacityTable(const CompareSetup& s, const std::vector<NodeCapacity>& caps) {
  const Hardware& h = s.hardware;
  std::string out = fmt::format(
      "node capacity: {}: {} x {:.0f} GB HBM, {:.0f}% reserved, {} weights {:.1f} GB -> {:.1f} GB "
      "left for cached context{}\n",
      h.name, h.gpus, h.hbm_bytes_per_gpu / kGB, 100 * h.hbm_reserve_fraction, s.model,
      s.cost.weight_bytes / kGB, h.HbmLeftBytes(s.cost) / kGB,
      s.kv_replicas > 1 ? fmt::format(", held {} times", s.kv_replicas) : "");
  if (h.HbmLeftBytes(s.cost) <= 0) return out + "  (the weights do not leave room)\n";
  for (const NodeCapacity& c : caps)
    out += fmt::format("  {:<16} {:>9.0f} B/token  {:>8.2f}M tokens\n", c.policy, c.bytes_per_token,
                       c.tokens / 1e6);
  return out;
}

}  // namespace strata::tools
