// The replay loop of `strata compare` (tools/compare.h).
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <queue>
#include <tuple>
#include <unordered_map>

#include "cachestore/sim/sim_cluster.h"
#include "cachestore/sim/sim_store.h"
#include "engine/restore_planner.h"
#include "tools/compare.h"

namespace strata::tools {
namespace {

using engine::RestorePlan;

constexpr NamespaceId kNs = 1;

std::string Size(uint64_t b) {
  if (b == 0) return "0";
  if (b % (1ull << 40) == 0) return fmt::format("{}TiB", b >> 40);
  if (b % (1ull << 30) == 0) return fmt::format("{}GiB", b >> 30);
  return fmt::format("{:.1f}GiB", double(b) / double(1ull << 30));
}

// The kind of plan that restores what a policy of kind `k` stores.
RestorePlan::Kind OwnKind(engine::SwaPolicy::Kind k) {
  switch (k) {
    case engine::SwaPolicy::kFull:
      return RestorePlan::kFull;
    case engine::SwaPolicy::kCheckpoint:
      return RestorePlan::kCheckpoint;
    case engine::SwaPolicy::kRecompute:
      return RestorePlan::kRecompute;
  }
  return RestorePlan::kRecompute;
}

// Read bandwidth of each tier into a GPU: HBM in place; DRAM and NVMe over the GPU's PCIe link;
// the cluster over the node's network, which its GPUs share (each GPU's restore gets its share),
// then PCIe.
// With a codec, NVMe's rate is in raw bytes: min(PCIe, drive x ratio, decoders), the slowest
// family's ratio (tools/codec_estimate.h).
engine::CostModel Costs(const CompareSetup& s, CodecKind codec) {
  const Hardware& h = s.hardware;
  engine::CostModel c;
  c[Tier::kDevice] = h.hbm_bytes_per_s;
  c[Tier::kHost] = std::min(h.pcie_bytes_per_s, h.dram_bytes_per_s);
  c[Tier::kNvme] = std::min(h.pcie_bytes_per_s, h.nvme_read_bytes_per_s);
  if (const CodecEstimate* e = s.CodecFor(codec))
    c[Tier::kNvme] =
        e->RestoreBytesPerS(h.nvme_read_bytes_per_s, h.pcie_bytes_per_s, s.decode_threads);
  if (h.has_cluster())
    c[Tier::kCluster] =
        std::min(h.pcie_bytes_per_s, h.cluster_read_bytes_per_s / double(std::max(1, h.gpus)));
  c.prefill_s_per_token = 1.0 / s.cost.prefill_tokens_per_s_per_gpu;
  return c;
}

cachestore::SimConfig NodeSimConfig(const CompareSetup& setup, const CompareConfig& cfg,
                                    const engine::CostModel& cost) {
  cachestore::SimConfig sc;
  // The simulator has no device tier to configure: HBM given to the cache adds to the top tier
  // it has (DRAM), read at DRAM's speed. The README says so next to the results.
  sc.store.host.capacity_bytes = cfg.dram_bytes + cfg.hbm_bytes;
  sc.store.host.prefault = false;
  sc.store.host.eviction = cfg.eviction;
  if (cfg.nvme_bytes) {
    sc.store.nvme.data_dir = "sim";  // enables the tier; the simulator creates nothing
    sc.store.nvme.capacity_bytes = cfg.nvme_bytes;
    if (setup.nvme_segment_bytes) sc.store.nvme.segment_bytes = setup.nvme_segment_bytes;
  }
  sc.store.thin_swa_on_demotion = cfg.policy.automatic && cfg.nvme_bytes;
  if (sc.store.thin_swa_on_demotion) sc.layouts = {setup.layout};
  const Hardware& hw = setup.hardware;
  if (const CodecEstimate* e = setup.CodecFor(cfg.codec)) {
    sc.nvme_codec = e->codec;
    sc.nvme_ratio = e->ratio;
  }
  sc.timing[size_t(Tier::kHost)] = {cost[Tier::kHost], hw.dram_bytes_per_s, 0};
  sc.timing[size_t(Tier::kNvme)] = {cost[Tier::kNvme], hw.nvme_write_bytes_per_s,
                                    hw.nvme_latency_s};
  return sc;
}

// What a node counts of an object for the share policy (only with a cluster tier).
struct Uses {
  uint32_t uses = 0;
  bool from_cluster = false;  // read from the cluster: shared already, not uploaded again
};

struct Node {
  explicit Node(int gpus) : queue(gpus), cold(gpus) {}
  std::unique_ptr<ReplayStore> owned;  // the simulator; null when the caller's store is used
  ReplayStore* sim = nullptr;
  GpuQueue queue, cold;  // with this cache; with none
  std::unordered_map<ObjectKey, Uses, ObjectKeyHash> uses;
};

// An upload written behind: in the cluster from `visible_us` on.
struct Upload {
  uint64_t visible_us = 0;
  uint64_t seq = 0;  // schedule order, for ties
  ObjectKey key;
  uint64_t bytes = 0;
  bool operator>(const Upload& o) const {
    return std::tie(visible_us, seq) > std::tie(o.visible_us, o.seq);
  }
};

// An object a plan read from the cluster, put into the node's DRAM after the plan's reads.
struct Fill {
  int64_t block = 0;
  Family family = Family::kCsa;
  uint64_t bytes = 0;
};

// Continues the node's Lookup (`found`, over `keys`) in the cluster tier from the first block the
// node missed: a block counts when each `required` family is on the node (the first missed block
// keeps what the node has of it) or in the cluster. Returns the blocks examined in the cluster.
size_t ContinueInCluster(const cachestore::SimCluster& cluster, uint64_t fp,
                         std::span<const BlockKey> keys, FamilyMask required,
                         const CacheLayout& lay, LookupResult& found) {
  const size_t start = found.hit_blocks;
  const BlockPresence first = start < found.blocks.size() ? found.blocks[start] : BlockPresence{};
  found.blocks.resize(start);
  size_t examined = 0;
  for (size_t b = start; b < keys.size(); ++b) {
    BlockPresence p = b == start ? first : BlockPresence{};
    for (Family f : kAllFamilies) {
      if (p.families.Has(f) || lay.FamilyBlockBytes(f) == 0) continue;
      if (cluster.Contains({kNs, fp, keys[b], f})) {
        p.families.Add(f);
        p.tier[size_t(f)] = Tier::kCluster;
      }
    }
    ++examined;
    found.blocks.push_back(p);
    if (!p.families.Contains(required)) break;
    for (Family f : kAllFamilies)
      if (p.families.Has(f)) found.hit_bytes[size_t(p.tier[size_t(f)])] += lay.FamilyBlockBytes(f);
    ++found.hit_blocks;
  }
  return examined;
}

// As TieredStore::FetchLaterSharedCheckpoint: when the last hit block has neither full SWA nor a
// checkpoint on the node, the latest checkpoint the cluster holds among the last 64 hit blocks
// after the node's own latest one counts as present (in the cluster tier). Returns the blocks
// examined in the cluster.
size_t LaterClusterCheckpoint(const cachestore::SimCluster& cluster, uint64_t fp,
                              std::span<const BlockKey> keys, const CacheLayout& lay,
                              LookupResult& found) {
  const size_t hit = std::min(found.hit_blocks, keys.size());
  if (hit == 0 || found.blocks.size() < hit || lay.FamilyBlockBytes(Family::kCheckpoint) == 0)
    return 0;
  const size_t from = cachestore::LaterCheckpointSearchFrom(std::span(found.blocks).first(hit));
  for (size_t i = hit; i-- > from;) {
    if (!cluster.Contains({kNs, fp, keys[i], Family::kCheckpoint})) continue;
    found.blocks[i].families.Add(Family::kCheckpoint);
    found.blocks[i].tier[size_t(Family::kCheckpoint)] = Tier::kCluster;
    found.hit_bytes[size_t(Tier::kCluster)] += lay.FamilyBlockBytes(Family::kCheckpoint);
    break;
  }
  return hit - from;
}

// The `i`-th family (in Family order) of `mask`.
Family NthFamily(FamilyMask mask, size_t i) {
  for (Family f : kAllFamilies)
    if (mask.Has(f) && i-- == 0) return f;
  return Family::kCsa;
}

class SimReplayStore final : public ReplayStore {
 public:
  explicit SimReplayStore(std::unique_ptr<cachestore::SimStore> sim) : sim_(std::move(sim)) {}
  void SetTime(uint64_t micros) override { sim_->SetTime(micros); }
  Result<LookupResult> Lookup(NamespaceId ns, uint64_t fp, std::span<const BlockKey> keys,
                              FamilyMask required) override {
    return sim_->Lookup(ns, fp, keys, required);
  }
  Status Put(const ObjectKey& key, uint64_t fp, uint64_t bytes, const PutHints& hints) override {
    return sim_->Put(key, fp, bytes, hints);
  }
  Result<std::vector<cachestore::SimObject>> Get(NamespaceId ns, uint64_t fp,
                                                 std::span<const BlockKey> keys,
                                                 FamilyMask families) override {
    return sim_->Get(ns, fp, keys, families);
  }
  void Release(std::span<const uint64_t> pins) override { sim_->Release(pins); }
  StoreStats Stats() const override { return sim_->Stats(); }
  void VisitCounters(const CounterVisitor& visit) const override { sim_->VisitCounters(visit); }

 private:
  std::unique_ptr<cachestore::SimStore> sim_;
};

}  // namespace

Result<std::unique_ptr<ReplayStore>> OpenSimReplayStore(const cachestore::SimConfig& config,
                                                        cachestore::DecisionLog* log) {
  STRATA_ASSIGN_OR_RETURN(auto sim, cachestore::SimStore::Open(config, log));
  return std::unique_ptr<ReplayStore>(new SimReplayStore(std::move(sim)));
}

cachestore::SimConfig ReplayNodeConfig(const CompareSetup& setup, const CompareConfig& config) {
  return NodeSimConfig(setup, config, Costs(setup, config.codec));
}

std::string_view NodeAssignName(NodeAssign a) {
  return a == NodeAssign::kAffinity ? "affinity" : "round-robin";
}

Result<NodeAssign> ParseNodeAssign(const std::string& text) {
  if (text == "round-robin") return NodeAssign::kRoundRobin;
  if (text == "affinity") return NodeAssign::kAffinity;
  return Status::InvalidArgument("unknown assignment '" + text +
                                 "' (choices: affinity, round-robin)");
}

std::string ComparePolicy::ToString() const { return automatic ? "auto" : stored.ToString(); }

std::string ComparePolicy::KindName() const {
  return automatic ? "auto" : engine::RestorePlanKindName(OwnKind(stored.kind));
}

Result<ComparePolicy> ComparePolicy::Parse(const std::string& text, uint32_t block_size) {
  ComparePolicy p;
  if (text == "auto") return p;
  p.automatic = false;
  STRATA_ASSIGN_OR_RETURN(p.stored, engine::SwaPolicy::Parse(text, block_size));
  return p;
}

std::string CompareConfig::Label() const {
  std::string s = fmt::format("{} dram={} nvme={} hbm={} {}", policy.ToString(), Size(dram_bytes),
                              Size(nvme_bytes), Size(hbm_bytes), eviction);
  if (codec != CodecKind::kNone) s += fmt::format(" codec={}", CodecKindName(codec));
  if (multi_node())
    s += fmt::format(" nodes={} {} cluster={}", nodes, NodeAssignName(assign), Size(cluster_bytes));
  return s;
}

const CodecEstimate* CompareSetup::CodecFor(CodecKind k) const {
  if (k == CodecKind::kNone) return nullptr;
  for (const CodecEstimate& e : codecs)
    if (e.codec == k) return &e;
  return nullptr;
}

double CompareResult::written_bytes_per_token() const {
  uint64_t w = 0;
  for (Tier t : kAllTiers) w += bytes_written[size_t(t)];
  return input_tokens ? double(w) / double(input_tokens) : 0;
}

int NodeFor(const TraceRequest& q, size_t index, const CompareSetup& s, const CompareConfig& c) {
  if (c.nodes <= 1) return 0;
  if (c.assign == NodeAssign::kAffinity && !q.keys.empty()) {
    const int64_t B = s.layout.block_size();
    const int64_t covering = std::max<int64_t>(1, (s.affinity_tokens + B - 1) / B);
    const BlockKey& k = q.keys[size_t(std::min<int64_t>(covering, int64_t(q.keys.size())) - 1)];
    // Block keys are hashes of the prefix already; fold both halves so any node count spreads.
    uint64_t h = k.lo ^ (k.hi * 0x9E3779B97F4A7C15ull);
    h ^= h >> 29;
    return int(h % uint64_t(c.nodes));
  }
  return int(index % size_t(c.nodes));
}

GpuQueue::GpuQueue(int servers) : free_at_(size_t(std::max(servers, 1)), 0.0) {}

double GpuQueue::Admit(double arrive, double service) {
  auto later = std::greater<double>();
  std::pop_heap(free_at_.begin(), free_at_.end(), later);
  const double done = std::max(arrive, free_at_.back()) + service;
  free_at_.back() = done;
  std::push_heap(free_at_.begin(), free_at_.end(), later);
  return done - arrive;
}

Percentiles PercentilesOf(std::vector<double>& v) {
  Percentiles p;
  if (v.empty()) return p;
  double sum = 0;
  for (double t : v) sum += t;
  p.mean = sum / double(v.size());
  auto at = [&](double q) {
    const size_t k = std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5));
    std::nth_element(v.begin(), v.begin() + ptrdiff_t(k), v.end());
    return v[k];
  };
  p.p50 = at(0.50), p.p90 = at(0.90), p.p99 = at(0.99);
  return p;
}

Percentiles QueueTtft(const std::vector<uint64_t>& arrival_us, const std::vector<double>& service,
                      int servers) {
  GpuQueue queue(servers);
  std::vector<double> ttft(arrival_us.size());
  for (size_t i = 0; i < arrival_us.size(); ++i)
    ttft[i] = queue.Admit(double(arrival_us[i]) / 1e6, service[i]);
  return PercentilesOf(ttft);
}

Result<CompareResult> Replay(const Trace& trace, const TraceSummary& summary,
                             const CompareSetup& setup, const CompareConfig& cfg,
                             const ReplayProgress& progress, const ReplayHooks& hooks) {
  const auto t0 = std::chrono::steady_clock::now();
  const CacheLayout& lay = setup.layout;
  if (trace.block_size != lay.block_size())
    return Status::InvalidArgument(fmt::format("trace mapped to {}-token blocks, layout has {}",
                                               trace.block_size, lay.block_size()));
  if (cfg.nodes < 1) return Status::InvalidArgument("nodes: at least 1");
  const Hardware& hw = setup.hardware;
  const bool clustered = cfg.cluster_bytes > 0;
  if (clustered && !hw.has_cluster())
    return Status::InvalidArgument(
        "a cluster tier needs the node's network to it: hardware '" + hw.name +
        "' has no cluster_read_bytes_per_s, cluster_write_bytes_per_s, cluster_latency_s");
  cachestore::ClusterSharePolicy share = setup.share;
  share.enabled = clustered;
  STRATA_RETURN_IF_ERROR(share.Validate());
  const int64_t B = lay.block_size();
  const uint64_t fp = lay.fingerprint();
  const engine::SwaPolicy& storage = cfg.policy.stored;
  const engine::CostModel cost = Costs(setup, cfg.codec);
  const CodecEstimate* codec = setup.CodecFor(cfg.codec);
  if (cfg.codec != CodecKind::kNone && !codec)
    return Status::InvalidArgument(
        fmt::format("codec {} was not measured for this setup", CodecKindName(cfg.codec)));
  const FamilyMask hit_families = engine::HitFamilies(lay);
  const uint64_t scale = std::max<uint32_t>(1, setup.scale_down);

  std::vector<Node> nodes;
  nodes.reserve(size_t(cfg.nodes));
  const cachestore::SimConfig sc = NodeSimConfig(setup, cfg, cost);
  if (hooks.store && (cfg.nodes != 1 || clustered))
    return Status::InvalidArgument("a replay through another store is one node without a cluster");
  for (int k = 0; k < cfg.nodes; ++k) {
    nodes.emplace_back(hw.gpus);
    Node& node = nodes.back();
    if (hooks.store) {
      STRATA_ASSIGN_OR_RETURN(node.sim, hooks.store(sc));
    } else {
      STRATA_ASSIGN_OR_RETURN(node.owned, OpenSimReplayStore(sc));
      node.sim = node.owned.get();
    }
  }
  std::optional<cachestore::SimCluster> cluster;
  if (clustered) cluster.emplace(cfg.cluster_bytes);

  // Prefill seconds a hit on one byte of each family saves. A block's compressed state saves its
  // B tokens on every hit that passes through the block. Its swa or checkpoint saves the
  // recompute pyramid, but only for a hit that ends at this block, and only while the block's
  // compressed state is there too: at a request's last block, where the next turn resumes, it
  // gets the pyramid's value; elsewhere no more per byte than the compressed state it needs
  // (valued higher, a cost-aware policy would keep SWA and evict the state that makes it useful).
  const double spt = cost.prefill_s_per_token;
  uint64_t compressed_bytes = 0;
  for (Family f : kAllFamilies)
    if (hit_families.Has(f)) compressed_bytes += lay.FamilyBlockBytes(f);
  const double reach = double(engine::RecomputeReach(lay.shape()));
  const double compressed_value = double(B) * spt / double(compressed_bytes);
  std::array<double, kNumFamilies> value_end{}, value_inner{};
  for (Family f : kAllFamilies) {
    const double bytes = double(lay.FamilyBlockBytes(f));
    if (bytes == 0) continue;
    value_end[size_t(f)] = hit_families.Has(f) ? compressed_value : reach * spt / bytes;
    value_inner[size_t(f)] = std::min(value_end[size_t(f)], compressed_value);
  }

  CompareResult r;
  r.config = cfg;
  r.model = setup.model;
  r.ceiling_hit_rate = summary.ceiling_hit_rate;
  r.share = share;
  const size_t n = trace.requests.size();
  const size_t sample_every = std::max<size_t>(1, setup.sample_every);
  std::array<double, kNumTiers> resident_sum{};
  double nvme_restore_s = 0;  // modelled, of the taken plans' NVMe reads
  uint64_t nvme_restore_bytes = 0;
  uint64_t samples = 0;
  std::vector<double> ttft(n), ttft_cold(n);
  const double layers = double(lay.swa_layers());
  std::vector<uint64_t> pins;
  std::vector<Fill> fills;

  // The cluster's write-behind: uploads the share policy asked for during a request, then the
  // queue of those not visible yet.
  std::vector<Upload> scheduled;
  std::priority_queue<Upload, std::vector<Upload>, std::greater<>> pending;
  uint64_t upload_seq = 0;
  auto apply_uploads = [&](uint64_t until_us) {
    while (!pending.empty() && pending.top().visible_us <= until_us) {
      const Upload& u = pending.top();
      if (cluster->Put({u.key.ns, fp, u.key.block, u.key.family}, u.bytes)) {
        ++r.cluster_uploads;
        r.bytes_written[size_t(Tier::kCluster)] += u.bytes;
      }
      pending.pop();
    }
  };
  // A use of an object on `node` (its put, or a Get that served it): the share policy decides.
  auto use = [&](Node& node, const ObjectKey& key, uint64_t bytes, bool put) {
    Uses& u = node.uses[key];
    if (put)
      u = Uses{1, false};
    else
      u.uses = std::max<uint32_t>(u.uses, 1) + 1;
    if (!u.from_cluster && cachestore::ShareAtUse(share, key.family, u.uses))
      scheduled.push_back(Upload{0, 0, key, bytes});
  };

  for (size_t i = 0; i < n; ++i) {
    const TraceRequest& q = trace.requests[i];
    Node& node = nodes[size_t(NodeFor(q, i, setup, cfg))];
    ReplayStore* sim = node.sim;
    sim->SetTime(q.arrival_us);
    if (hooks.before) hooks.before(i, q);
    if (clustered) apply_uploads(q.arrival_us);
    const int64_t usable = UsableBlocks(q.input_tokens, int64_t(q.keys.size()), uint32_t(B));
    const std::span<const BlockKey> keys(q.keys);
    LookupResult found;
    if (usable > 0) {
      STRATA_ASSIGN_OR_RETURN(found,
                              sim->Lookup(kNs, fp, keys.first(size_t(usable)), hit_families));
    }
    r.block_ops += found.blocks.size();
    const int64_t local_hit = std::min<int64_t>(int64_t(found.hit_blocks), usable);
    if (clustered && local_hit < usable)
      r.block_ops +=
          ContinueInCluster(*cluster, fp, keys.first(size_t(usable)), hit_families, lay, found);
    if (clustered && share.checkpoints)
      r.block_ops += LaterClusterCheckpoint(*cluster, fp, keys.first(size_t(usable)), lay, found);
    const int64_t hit_blocks = std::min<int64_t>(int64_t(found.hit_blocks), usable);
    std::vector<RestorePlan> plans = engine::PlanRestores(lay, found, q.input_tokens, cost);
    if (!cfg.policy.automatic) {
      // The policy's own kind first (cheapest of it), then the rest as the planner ordered them.
      const RestorePlan::Kind own = OwnKind(cfg.policy.stored.kind);
      std::stable_partition(plans.begin(), plans.end(),
                            [&](const RestorePlan& p) { return p.kind == own; });
    }
    auto hints = [&](int64_t b, Family f, bool last) {
      PutHints h;
      h.depth = uint32_t(b);
      h.has_parent = b > 0;
      if (b > 0) h.parent = q.keys[size_t(b - 1)];
      h.value_per_byte = last ? value_end[size_t(f)] : value_inner[size_t(f)];
      return h;
    };
    RestorePlan taken;
    std::array<uint64_t, kNumTiers> read{};
    double nvme_stored = 0;  // bytes the drive reads for read[kNvme] (less with a codec)
    for (const RestorePlan& p : plans) {
      if (p.kind == RestorePlan::kCold) break;
      bool complete = true;
      read = {};
      nvme_stored = 0;
      pins.clear();
      fills.clear();
      for (const engine::PlanRead& pr : engine::PlanReads(p, lay)) {
        STRATA_ASSIGN_OR_RETURN(
            auto objs, sim->Get(kNs, fp, keys.subspan(size_t(pr.first_block), size_t(pr.blocks)),
                                pr.families));
        r.block_ops += objs.size();
        const size_t per_block = size_t(std::popcount(pr.families.bits()));
        for (size_t j = 0; j < objs.size(); ++j) {
          const cachestore::SimObject& o = objs[j];
          if (o.found()) {
            pins.push_back(o.pin);
            read[size_t(o.served_from)] += o.size;
            if (o.served_from == Tier::kNvme)
              nvme_stored +=
                  codec ? double(o.size) / codec->ratio[size_t(o.key.family)] : double(o.size);
            r.objects_read[size_t(o.served_from)]++;
            if (clustered) use(node, o.key, o.size, /*put=*/false);
            continue;
          }
          if (clustered) {
            // A miss on the node continues into the cluster (read into the node's DRAM).
            const int64_t b = pr.first_block + int64_t(j / per_block);
            const Family f = NthFamily(pr.families, j % per_block);
            if (auto bytes = cluster->Get({kNs, fp, keys[size_t(b)], f})) {
              read[size_t(Tier::kCluster)] += *bytes;
              r.objects_read[size_t(Tier::kCluster)]++;
              fills.push_back({b, f, *bytes});
              continue;
            }
          }
          complete = false;
        }
      }
      sim->Release(pins);
      for (Tier t : kAllTiers) r.bytes_read[size_t(t)] += read[size_t(t)];
      for (const Fill& fl : fills) {
        const ObjectKey key{kNs, keys[size_t(fl.block)], fl.family};
        ++r.block_ops;
        if (!sim->Put(key, fp, fl.bytes, hints(fl.block, fl.family, false)).ok()) continue;
        ++r.cluster_fills;
        r.bytes_written[size_t(Tier::kHost)] += fl.bytes;
        node.uses[key] = Uses{1, true};
      }
      if (complete) {
        taken = p;
        break;
      }
      ++r.fallbacks;
    }
    if (taken.kind == RestorePlan::kCold) read = {};

    // Accounting.
    r.requests++;
    r.input_tokens += uint64_t(q.input_tokens);
    r.hit_tokens += uint64_t(hit_blocks * B);
    r.cluster_hit_tokens += uint64_t((hit_blocks - local_hit) * B);
    r.restored_tokens += uint64_t(taken.hit_tokens);
    r.recompute_tokens += uint64_t(taken.recompute_tokens);
    const int64_t computed = taken.recompute_tokens + q.input_tokens - taken.hit_tokens;
    r.computed_tokens += uint64_t(computed);
    r.saved_tokens += uint64_t(taken.hit_tokens - taken.recompute_tokens);
    r.plans[size_t(taken.kind)]++;

    // TTFT: service time on one of the node's GPUs, queued there.
    double restore = 0;
    for (Tier t : kAllTiers)
      if (t != Tier::kNvme && read[size_t(t)] && cost[t] > 0)
        restore += double(read[size_t(t)]) / cost[t];
    if (const uint64_t raw = read[size_t(Tier::kNvme)]) {
      // The drive reads the stored bytes, the link carries raw ones, decoders turn one into
      // the other: the slowest of the three, pipelined. Without a codec the stored bytes are the
      // raw ones: raw / min(link, drive).
      double nvme_s =
          std::max(double(raw) / hw.pcie_bytes_per_s, nvme_stored / hw.nvme_read_bytes_per_s);
      if (codec && codec->decode_bytes_per_s > 0)
        nvme_s = std::max(nvme_s,
                          double(raw) / (codec->decode_bytes_per_s * double(setup.decode_threads)));
      nvme_s += hw.nvme_latency_s;
      restore += nvme_s;
      nvme_restore_s += nvme_s;
      nvme_restore_bytes += raw;
    }
    if (read[size_t(Tier::kCluster)]) restore += hw.cluster_latency_s;
    // A real store's restore is what its Gets took (also those of plans that fell back).
    if (const std::optional<double> measured = sim->TakeReadSeconds()) restore = *measured;
    r.restore_s += restore;
    const double compute = double(computed) * spt;
    const double service = setup.overlap == RestoreOverlap::kSerial
                               ? restore + compute
                               : std::max(restore, compute) + std::min(restore, compute) / layers;
    const double arrive_s = double(q.arrival_us) / 1e6;
    ttft[i] = node.queue.Admit(arrive_s, service);
    ttft_cold[i] = node.cold.Admit(arrive_s, double(q.input_tokens) * spt);

    // Offload the blocks after the restored prefix (the engine's stored_blocks).
    const int64_t nkeys = int64_t(q.keys.size());
    for (int64_t b = taken.hit_tokens / B; b < nkeys; ++b) {
      const bool last = b + 1 == nkeys;
      const FamilyMask fams = engine::StoredFamilies(storage, lay, (b + 1) * B, last);
      for (Family f : kAllFamilies) {
        if (!fams.Has(f) || lay.FamilyBlockBytes(f) == 0) continue;
        // Blocks the Lookup found keep their compressed state; only what is missing is put.
        if (b < hit_blocks && hit_families.Has(f)) continue;
        const uint64_t bytes = std::max<uint64_t>(1, lay.FamilyBlockBytes(f) / scale);
        const ObjectKey key{kNs, q.keys[size_t(b)], f};
        Status s = sim->Put(key, fp, bytes, hints(b, f, last));
        ++r.block_ops;
        if (s.ok()) {
          ++r.puts;
          r.bytes_written[size_t(Tier::kHost)] += bytes;
          if (clustered) use(node, key, bytes, /*put=*/true);
        } else {
          ++r.put_failures;
        }
      }
    }

    // This request's uploads, written behind: in the cluster once its prefill has ended on its
    // node and the bytes have crossed the node's network.
    if (!scheduled.empty()) {
      uint64_t bytes = 0;
      for (const Upload& u : scheduled) bytes += u.bytes;
      const double visible_s =
          arrive_s + ttft[i] + hw.cluster_latency_s + double(bytes) / hw.cluster_write_bytes_per_s;
      const uint64_t visible_us = uint64_t(std::ceil(visible_s * 1e6));
      for (Upload u : scheduled) {
        u.visible_us = visible_us;
        u.seq = upload_seq++;
        pending.push(u);
      }
      scheduled.clear();
    }

    if (i % sample_every == 0 || i + 1 == n) {
      const Family probe = lay.FamilyBlockBytes(Family::kCsa) ? Family::kCsa : Family::kHca;
      std::array<uint64_t, kNumTiers> tokens{};
      for (const Node& nd : nodes) {
        const StoreStats st = nd.sim->Stats();
        for (Tier t : kAllTiers)
          tokens[size_t(t)] += st[t].families[size_t(probe)].objects * uint64_t(B);
      }
      if (cluster) tokens[size_t(Tier::kCluster)] = cluster->objects(probe) * uint64_t(B);
      for (Tier t : kAllTiers) {
        r.peak_resident_tokens[size_t(t)] =
            std::max(r.peak_resident_tokens[size_t(t)], tokens[size_t(t)]);
        resident_sum[size_t(t)] += double(tokens[size_t(t)]);
      }
      ++samples;
    }
    if (hooks.after) hooks.after(i, q, r);
    if (progress && (i % 256 == 255 || i + 1 == n)) progress(i + 1);
  }
  // Uploads still in flight at the trace's end are written all the same.
  if (clustered) apply_uploads(std::numeric_limits<uint64_t>::max());
  for (Tier t : kAllTiers)
    r.mean_resident_tokens[size_t(t)] = samples ? resident_sum[size_t(t)] / double(samples) : 0;
  if (cfg.nvme_bytes) {
    const Family probe = lay.FamilyBlockBytes(Family::kCsa) ? Family::kCsa : Family::kHca;
    double tokens = 0;
    for (const Node& nd : nodes) {
      const StoreStats st = nd.sim->Stats();
      const TierStats& nv = st[Tier::kNvme];
      tokens += double(nv.families[size_t(probe)].objects) * double(B);
      for (const FamilyStats& f : nv.families) r.nvme_raw_bytes += f.bytes;
      r.nvme_stored_bytes += nv.used;
    }
    // Scaled-down objects: the capacity held `scale` times the state an unscaled tier would.
    r.nvme_tokens_per_tb =
        tokens / (double(cfg.nvme_bytes) * double(cfg.nodes) * double(scale) / 1e12);
    if (r.nvme_stored_bytes)
      r.nvme_tokens_per_tb_used = tokens / (double(r.nvme_stored_bytes) * double(scale) / 1e12);
  }
  r.nvme_restore_bytes_per_s = nvme_restore_s > 0 ? double(nvme_restore_bytes) / nvme_restore_s : 0;
  for (const Node& nd : nodes)
    nd.sim->VisitCounters([&](std::string_view name, uint64_t v) {
      if (name == "nvme_bytes_written") r.bytes_written[size_t(Tier::kNvme)] += v;
      if (name == "evictions_dropped") r.evictions += v;
      if (name == "demotions") r.demotions += v;
    });
  if (cluster)
    cluster->VisitCounters([&](std::string_view name, uint64_t v) {
      if (name == "evictions") r.cluster_evictions = v;
    });
  r.ttft_s = PercentilesOf(ttft);
  r.ttft_cold_s = PercentilesOf(ttft_cold);
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::vector<NodeCapacity> NodeCapacities(const CompareSetup& s,
                                         const std::vector<ComparePolicy>& policies) {
  const CacheLayout& l = s.layout;
  const double compressed = l.BytesPerToken(Family::kCsa) + l.BytesPerToken(Family::kCsaIndex) +
                            l.BytesPerToken(Family::kHca);
  const double left = s.hardware.HbmLeftBytes(s.cost);
  std::vector<NodeCapacity> out;
  for (const ComparePolicy& p : policies) {
    NodeCapacity c;
    c.policy = p.ToString();
    c.bytes_per_token = compressed;
    if (p.stored.kind == engine::SwaPolicy::kFull)
      c.bytes_per_token += l.BytesPerToken(Family::kSwa);
    if (p.stored.kind == engine::SwaPolicy::kCheckpoint && p.stored.every > 0)
      c.bytes_per_token += double(l.FamilyBlockBytes(Family::kCheckpoint)) / double(p.stored.every);
    c.tokens = left > 0 ? left / (c.bytes_per_token * double(std::max(1, s.kv_replicas))) : 0;
    out.push_back(c);
  }
  return out;
}

}  // namespace strata::tools
