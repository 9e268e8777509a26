#include "tools/compare_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

namespace strata::tools {
namespace {

using nlohmann::json;

constexpr double kGB = 1e9;

json TierArray(const std::array<uint64_t, kNumTiers>& a) {
  json j = json::object();
  for (Tier t : kAllTiers) j[std::string(TierName(t))] = a[size_t(t)];
  return j;
}

// A capacity as the tables print it: 0, whole TiB as "4T", else GiB as "256G".
std::string Cap(uint64_t b) {
  if (b == 0) return "0";
  if (b % (1ull << 40) == 0) return fmt::format("{}T", b >> 40);
  return fmt::format("{}G", b >> 30);
}

// The NVMe tier's restore rate into a GPU, raw and with `e`'s codec (raw bytes/s).
std::pair<double, double> NvmeRestoreRates(const CompareSetup& s, const CodecEstimate& e) {
  const Hardware& h = s.hardware;
  return {std::min(h.pcie_bytes_per_s, h.nvme_read_bytes_per_s),
          e.RestoreBytesPerS(h.nvme_read_bytes_per_s, h.pcie_bytes_per_s, s.decode_threads)};
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
            {"codec", std::string(CodecKindName(c.codec))},
            {"nvme_tokens_per_tb", r.nvme_tokens_per_tb},
            {"nvme_tokens_per_tb_used", r.nvme_tokens_per_tb_used},
            {"nvme_raw_bytes", r.nvme_raw_bytes},
            {"nvme_stored_bytes", r.nvme_stored_bytes},
            {"nvme_restore_bytes_per_s", r.nvme_restore_bytes_per_s},
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
  if (columns == TableColumns::kCluster)
    return fmt::format(
        "{:<15} {:>7} {:>7} {:>6} {:<6} {:>5} {:<11} {:>7} {:>6.2f} {:>6.2f} {:>6.2f} {:>5.2f} "
        "{:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7.3f} {:>7.3f} {:>7.3f}\n",
        c.policy.ToString(), Cap(c.dram_bytes), Cap(c.nvme_bytes), Cap(c.hbm_bytes), c.eviction,
        c.nodes, c.nodes > 1 ? std::string(NodeAssignName(c.assign)) : std::string("-"),
        Cap(c.cluster_bytes), 100 * r.hit_rate(), 100 * r.cluster_hit_rate(), 100 * r.saved_rate(),
        r.amplification(), gb(r.bytes_read[size_t(Tier::kHost)]),
        gb(r.bytes_read[size_t(Tier::kNvme)]), gb(r.bytes_read[size_t(Tier::kCluster)]),
        gb(r.bytes_written[size_t(Tier::kHost)]), gb(r.bytes_written[size_t(Tier::kNvme)]),
        gb(r.bytes_written[size_t(Tier::kCluster)]), r.ttft_s.p50, r.ttft_s.p90, r.ttft_s.p99);
  return fmt::format(
      "{:<15} {:>7} {:>7} {:>6} {:<6} {:>6.2f} {:>6.2f} {:>5.2f} {:>9} {:>9} {:>9} {:>9} {:>8.0f} "
      "{:>8.1f} {:>8.1f} {:>9} {:>7.3f} {:>7.3f} {:>7.3f}\n",
      c.policy.ToString(), Cap(c.dram_bytes), Cap(c.nvme_bytes), Cap(c.hbm_bytes), c.eviction,
      100 * r.hit_rate(), 100 * r.saved_rate(), r.amplification(),
      gb(r.bytes_read[size_t(Tier::kHost)]), gb(r.bytes_read[size_t(Tier::kNvme)]),
      gb(r.bytes_written[size_t(Tier::kHost)]), gb(r.bytes_written[size_t(Tier::kNvme)]),
      r.written_bytes_per_token(), r.peak_resident_tokens[size_t(Tier::kHost)] / 1e6,
      r.peak_resident_tokens[size_t(Tier::kNvme)] / 1e6, r.evictions, r.ttft_s.p50, r.ttft_s.p90,
      r.ttft_s.p99);
}

std::string CodecJson(const CompareSetup& s, const CodecEstimate& e) {
  json fams = json::object();
  for (Family f : kAllFamilies) {
    const cachestore::CodecSample& x = e.samples[size_t(f)];
    if (!x.objects) continue;
    fams[std::string(FamilyName(f))] = {{"ratio", e.ratio[size_t(f)]},
                                        {"encode_bytes_per_s", x.encode_bytes_per_s()},
                                        {"decode_bytes_per_s", x.decode_bytes_per_s()}};
  }
  const auto [raw, with] = NvmeRestoreRates(s, e);
  json j = {{"kind", "codec"},
            {"model", s.model},
            {"codec", std::string(CodecKindName(e.codec))},
            {"families", fams},
            {"decode_threads", s.decode_threads},
            {"nvme_read_bytes_per_s", s.hardware.nvme_read_bytes_per_s},
            {"restore_bytes_per_s_raw", raw},
            {"restore_bytes_per_s_codec", with}};
  return j.dump();
}

std::string CodecTable(const CompareSetup& s, const CodecEstimate& e) {
  const auto [raw, with] = NvmeRestoreRates(s, e);
  std::string out =
      fmt::format("codec {} on {}'s NVMe records (V4-shaped objects, measured on this machine):\n",
                  CodecKindName(e.codec), s.model);
  out += DescribeCodec(e, s.layout);
  out += fmt::format(
      "  restore from NVMe: {:.2f} GB/s raw, {:.2f} GB/s with it ({} decode threads at {:.0f} "
      "MB/s, drive {:.2f} GB/s){}\n",
      raw / kGB, with / kGB, s.decode_threads, e.decode_bytes_per_s / 1e6,
      s.hardware.nvme_read_bytes_per_s / kGB,
      with < raw ? ": slower than the drive, the store's codec rule would keep it raw" : "");
  return out;
}

std::string NvmeTableHeader() {
  return fmt::format("{:<15} {:>7} {:>7} {:<6} {:<6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>12} {:>6}\n",
                     "policy", "dram", "nvme", "evict", "codec", "Mtok/TBc", "Mtok/TBu", "raw",
                     "stored", "ratio", "restore GB/s", "hit%");
}

std::string NvmeTableRow(const CompareResult& r) {
  const CompareConfig& c = r.config;
  const double ratio =
      r.nvme_stored_bytes ? double(r.nvme_raw_bytes) / double(r.nvme_stored_bytes) : 0.0;
  return fmt::format(
      "{:<15} {:>7} {:>7} {:<6} {:<6} {:>9.1f} {:>9.1f} {:>8.0f}G {:>8.0f}G {:>8.3f} {:>12.2f} "
      "{:>6.2f}\n",
      c.policy.ToString(), Cap(c.dram_bytes), Cap(c.nvme_bytes), c.eviction, CodecKindName(c.codec),
      r.nvme_tokens_per_tb / 1e6, r.nvme_tokens_per_tb_used / 1e6, double(r.nvme_raw_bytes) / kGB,
      double(r.nvme_stored_bytes) / kGB, ratio, r.nvme_restore_bytes_per_s / kGB,
      100 * r.hit_rate());
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
