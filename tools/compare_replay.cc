// The replay loop of `strata compare` (tools/compare.h).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

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

// Read bandwidth of each tier into a GPU: HBM in place; DRAM and NVMe over the GPU's PCIe link.
engine::CostModel Costs(const CompareSetup& s) {
  const Hardware& h = s.hardware;
  engine::CostModel c;
  c[Tier::kDevice] = h.hbm_bytes_per_s;
  c[Tier::kHost] = std::min(h.pcie_bytes_per_s, h.dram_bytes_per_s);
  c[Tier::kNvme] = std::min(h.pcie_bytes_per_s, h.nvme_read_bytes_per_s);
  c.prefill_s_per_token = 1.0 / s.cost.prefill_tokens_per_s_per_gpu;
  return c;
}

}  // namespace

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
  return fmt::format("{} dram={} nvme={} hbm={} {}", policy.ToString(), Size(dram_bytes),
                     Size(nvme_bytes), Size(hbm_bytes), eviction);
}

double CompareResult::written_bytes_per_token() const {
  uint64_t w = 0;
  for (Tier t : kAllTiers) w += bytes_written[size_t(t)];
  return input_tokens ? double(w) / double(input_tokens) : 0;
}

Percentiles QueueTtft(const std::vector<uint64_t>& arrival_us, const std::vector<double>& service,
                      int servers) {
  Percentiles p;
  if (arrival_us.empty()) return p;
  // free_at: when each server is next idle (a min-heap).
  std::vector<double> free_at(size_t(std::max(servers, 1)), 0.0);
  std::vector<double> ttft(arrival_us.size());
  auto later = std::greater<double>();
  for (size_t i = 0; i < arrival_us.size(); ++i) {
    const double arrive = double(arrival_us[i]) / 1e6;
    std::pop_heap(free_at.begin(), free_at.end(), later);
    const double start = std::max(arrive, free_at.back());
    free_at.back() = start + service[i];
    std::push_heap(free_at.begin(), free_at.end(), later);
    ttft[i] = free_at.back() - arrive;
  }
  double sum = 0;
  for (double t : ttft) sum += t;
  p.mean = sum / double(ttft.size());
  auto at = [&](double q) {
    const size_t k = std::min(ttft.size() - 1, size_t(q * double(ttft.size() - 1) + 0.5));
    std::nth_element(ttft.begin(), ttft.begin() + ptrdiff_t(k), ttft.end());
    return ttft[k];
  };
  p.p50 = at(0.50), p.p90 = at(0.90), p.p99 = at(0.99);
  return p;
}

Result<CompareResult> Replay(const Trace& trace, const TraceSummary& summary,
                             const CompareSetup& setup, const CompareConfig& cfg,
                             const ReplayProgress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const CacheLayout& lay = setup.layout;
  if (trace.block_size != lay.block_size())
    return Status::InvalidArgument(fmt::format("trace mapped to {}-token blocks, layout has {}",
                                               trace.block_size, lay.block_size()));
  const int64_t B = lay.block_size();
  const uint64_t fp = lay.fingerprint();
  const engine::SwaPolicy& storage = cfg.policy.stored;
  const engine::CostModel cost = Costs(setup);
  const FamilyMask hit_families = engine::HitFamilies(lay);

  cachestore::SimConfig sc;
  // The simulator has no device tier to configure: HBM given to the cache adds to the top tier
  // it has (DRAM), read at DRAM's speed. The README says so next to the results.
  sc.store.host.capacity_bytes = cfg.dram_bytes + cfg.hbm_bytes;
  sc.store.host.prefault = false;
  sc.store.host.eviction = cfg.eviction;
  if (cfg.nvme_bytes) {
    sc.store.nvme.data_dir = "sim";  // enables the tier; the simulator creates nothing
    sc.store.nvme.capacity_bytes = cfg.nvme_bytes;
  }
  sc.store.thin_swa_on_demotion = cfg.policy.automatic && cfg.nvme_bytes;
  if (sc.store.thin_swa_on_demotion) sc.layouts = {lay};
  const Hardware& hw = setup.hardware;
  sc.timing[size_t(Tier::kHost)] = {cost[Tier::kHost], hw.dram_bytes_per_s, 0};
  sc.timing[size_t(Tier::kNvme)] = {cost[Tier::kNvme], hw.nvme_write_bytes_per_s,
                                    hw.nvme_latency_s};
  STRATA_ASSIGN_OR_RETURN(auto sim, cachestore::SimStore::Open(sc));

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
  const size_t n = trace.requests.size();
  const size_t sample_every = std::max<size_t>(1, setup.sample_every);
  std::array<double, kNumTiers> resident_sum{};
  uint64_t samples = 0;
  std::vector<uint64_t> arrivals(n);
  std::vector<double> service(n), service_cold(n);
  const double layers = double(lay.swa_layers());
  std::vector<uint64_t> pins;

  for (size_t i = 0; i < n; ++i) {
    const TraceRequest& q = trace.requests[i];
    sim->SetTime(q.arrival_us);
    arrivals[i] = q.arrival_us;
    const int64_t usable = UsableBlocks(q.input_tokens, int64_t(q.keys.size()), uint32_t(B));
    const std::span<const BlockKey> keys(q.keys);
    LookupResult found;
    if (usable > 0) {
      STRATA_ASSIGN_OR_RETURN(found,
                              sim->Lookup(kNs, fp, keys.first(size_t(usable)), hit_families));
    }
    r.block_ops += found.blocks.size();
    const int64_t hit_blocks = std::min<int64_t>(int64_t(found.hit_blocks), usable);
    std::vector<RestorePlan> plans = engine::PlanRestores(lay, found, q.input_tokens, cost);
    if (!cfg.policy.automatic) {
      // The policy's own kind first (cheapest of it), then the rest as the planner ordered them.
      const RestorePlan::Kind own = OwnKind(cfg.policy.stored.kind);
      std::stable_partition(plans.begin(), plans.end(),
                            [&](const RestorePlan& p) { return p.kind == own; });
    }
    RestorePlan taken;
    std::array<uint64_t, kNumTiers> read{};
    for (const RestorePlan& p : plans) {
      if (p.kind == RestorePlan::kCold) break;
      bool complete = true;
      read = {};
      pins.clear();
      for (const engine::PlanRead& pr : engine::PlanReads(p, lay)) {
        STRATA_ASSIGN_OR_RETURN(
            auto objs, sim->Get(kNs, fp, keys.subspan(size_t(pr.first_block), size_t(pr.blocks)),
                                pr.families));
        r.block_ops += objs.size();
        for (const cachestore::SimObject& o : objs) {
          if (!o.found()) {
            complete = false;
            continue;
          }
          pins.push_back(o.pin);
          read[size_t(o.served_from)] += o.size;
          r.objects_read[size_t(o.served_from)]++;
        }
      }
      sim->Release(pins);
      for (Tier t : kAllTiers) r.bytes_read[size_t(t)] += read[size_t(t)];
      if (complete) {
        taken = p;
        break;
      }
      ++r.fallbacks;
    }
    if (taken.kind == RestorePlan::kCold) read = {};
    (void)sim->TakeIoSeconds();

    // Accounting.
    r.requests++;
    r.input_tokens += uint64_t(q.input_tokens);
    r.hit_tokens += uint64_t(hit_blocks * B);
    r.restored_tokens += uint64_t(taken.hit_tokens);
    r.recompute_tokens += uint64_t(taken.recompute_tokens);
    const int64_t computed = taken.recompute_tokens + q.input_tokens - taken.hit_tokens;
    r.computed_tokens += uint64_t(computed);
    r.saved_tokens += uint64_t(taken.hit_tokens - taken.recompute_tokens);
    r.plans[size_t(taken.kind)]++;

    // TTFT service time on one GPU.
    double restore = 0;
    for (Tier t : kAllTiers)
      if (read[size_t(t)] && cost[t] > 0) restore += double(read[size_t(t)]) / cost[t];
    if (read[size_t(Tier::kNvme)]) restore += hw.nvme_latency_s;
    const double compute = double(computed) * spt;
    service[i] = setup.overlap == RestoreOverlap::kSerial
                     ? restore + compute
                     : std::max(restore, compute) + std::min(restore, compute) / layers;
    service_cold[i] = double(q.input_tokens) * spt;

    // Offload the blocks after the restored prefix (the engine's stored_blocks).
    const int64_t nkeys = int64_t(q.keys.size());
    for (int64_t b = taken.hit_tokens / B; b < nkeys; ++b) {
      const bool last = b + 1 == nkeys;
      const FamilyMask fams = engine::StoredFamilies(storage, lay, (b + 1) * B, last);
      for (Family f : kAllFamilies) {
        if (!fams.Has(f) || lay.FamilyBlockBytes(f) == 0) continue;
        // Blocks the Lookup found keep their compressed state; only what is missing is put.
        if (b < hit_blocks && hit_families.Has(f)) continue;
        PutHints h;
        h.depth = uint32_t(b);
        h.has_parent = b > 0;
        if (b > 0) h.parent = q.keys[size_t(b - 1)];
        h.value_per_byte = last ? value_end[size_t(f)] : value_inner[size_t(f)];
        const uint64_t bytes = lay.FamilyBlockBytes(f);
        Status s = sim->Put(ObjectKey{kNs, q.keys[size_t(b)], f}, fp, bytes, h);
        ++r.block_ops;
        if (s.ok()) {
          ++r.puts;
          r.bytes_written[size_t(Tier::kHost)] += bytes;
        } else {
          ++r.put_failures;
        }
      }
    }
    (void)sim->TakeIoSeconds();

    if (i % sample_every == 0 || i + 1 == n) {
      const StoreStats st = sim->Stats();
      const Family probe = lay.FamilyBlockBytes(Family::kCsa) ? Family::kCsa : Family::kHca;
      for (Tier t : kAllTiers) {
        const uint64_t tokens = st[t].families[size_t(probe)].objects * uint64_t(B);
        r.peak_resident_tokens[size_t(t)] = std::max(r.peak_resident_tokens[size_t(t)], tokens);
        resident_sum[size_t(t)] += double(tokens);
      }
      ++samples;
    }
    if (progress && (i % 256 == 255 || i + 1 == n)) progress(i + 1);
  }
  for (Tier t : kAllTiers)
    r.mean_resident_tokens[size_t(t)] = samples ? resident_sum[size_t(t)] / double(samples) : 0;
  sim->VisitCounters([&](std::string_view name, uint64_t v) {
    if (name == "nvme_bytes_written") r.bytes_written[size_t(Tier::kNvme)] = v;
    if (name == "evictions_dropped") r.evictions = v;
    if (name == "demotions") r.demotions = v;
  });
  r.ttft_s = QueueTtft(arrivals, service, hw.gpus);
  r.ttft_cold_s = QueueTtft(arrivals, service_cold, hw.gpus);
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
