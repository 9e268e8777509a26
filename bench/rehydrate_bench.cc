#include "bench/rehydrate_bench.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "cachestore/nvme/codec.h"
#include "engine/cost_probe.h"
#include "engine/session.h"

namespace strata::bench {
namespace {

namespace fs = std::filesystem;
using engine::RestorePlan;

void Emit(std::ostream& out, nlohmann::json j) {
  j["bench"] = "rehydrate";
  out << j.dump() << std::endl;
}

// Bytes stored per token by each policy, from the layout, against V4-FACTS.md.
void BytesPerToken(std::ostream& out, const std::string& dir) {
  struct Facts {
    const char* file;
    double compressed_kb, swa_kb;  // V4-FACTS.md: compressed state, full SWA per token
  };
  for (const Facts& f : {Facts{"v4-pro.json", 5.0, 36.2}, Facts{"v4-flash.json", 3.5, 25.7}}) {
    auto shape = engine::LoadModelShape(dir + "/" + f.file);
    if (!shape.ok()) continue;
    auto lay = CacheLayout::Make(*shape, {});
    if (!lay.ok()) continue;
    const double B = lay->block_size();
    const double compressed = lay->BytesPerToken(Family::kCsa) +
                              lay->BytesPerToken(Family::kCsaIndex) +
                              lay->BytesPerToken(Family::kHca);
    const double swa_entries =
        double(lay->FamilyBlockBytes(Family::kSwa) - lay->checkpoint_carry_bytes()) / B;
    const double cp = double(lay->FamilyBlockBytes(Family::kCheckpoint));
    Emit(out, {{"figure", "bytes_per_token"},
               {"model", shape->name},
               {"recompute", compressed},
               {"full", compressed + double(lay->FamilyBlockBytes(Family::kSwa)) / B},
               {"checkpoint:4096", compressed + cp / 4096.0},
               {"checkpoint_bytes", cp},
               {"compressed_kb", compressed / 1000.0},
               {"v4_facts_compressed_kb", f.compressed_kb},
               {"swa_entries_kb", swa_entries / 1000.0},
               {"v4_facts_swa_kb", f.swa_kb},
               {"matches_v4_facts", std::fabs(compressed / 1000.0 / f.compressed_kb - 1) < 0.03 &&
                                        std::fabs(swa_entries / 1000.0 / f.swa_kb - 1) < 0.03}});
  }
}

// The LZ4 ratio of each family on state the engine computed (one block).
Status Lz4Ratios(std::ostream& out, const engine::Model& model, const CacheLayout& layout,
                 const std::vector<int32_t>& tokens) {
  const ModelShape& s = model.config().shape;
  const int64_t B = layout.block_size();
  engine::StateCodec codec(model.config(), layout);
  engine::RequestState st = model.NewState();
  engine::ForwardOptions fo;
  fo.capture_swa = true;
  STRATA_ASSIGN_OR_RETURN(engine::ForwardResult r,
                          model.Forward(st, std::span(tokens.data(), size_t(B)), fo));
  engine::BlockSwaRows rows;
  for (size_t l = 0; l < st.layers.size(); ++l) {
    std::vector<float> block(size_t(B) * size_t(s.head_dim), 0.0f);
    const bool mtp = int(l) >= s.n_layers;
    const auto& sr = r.swa[l];
    for (size_t i = 0; i < sr.rows.size() / size_t(s.head_dim); ++i) {
      const int64_t idx = sr.first + int64_t(i) + (mtp ? 1 : 0);
      if (idx < B)
        std::memcpy(block.data() + size_t(idx) * size_t(s.head_dim),
                    sr.rows.data() + i * size_t(s.head_dim), size_t(s.head_dim) * 4);
    }
    rows.layers.push_back(std::move(block));
  }
  std::vector<std::pair<Family, std::vector<std::byte>>> fams;
  STRATA_ASSIGN_OR_RETURN(auto csa, codec.EncodeCsa(st, 0));
  STRATA_ASSIGN_OR_RETURN(auto idx, codec.EncodeCsaIndex(st, 0));
  STRATA_ASSIGN_OR_RETURN(auto hca, codec.EncodeHca(st, 0));
  STRATA_ASSIGN_OR_RETURN(auto swa, codec.EncodeSwa(rows, st));
  STRATA_ASSIGN_OR_RETURN(auto cp, codec.EncodeCheckpoint(st));
  fams = {{Family::kCsa, csa},
          {Family::kCsaIndex, idx},
          {Family::kHca, hca},
          {Family::kSwa, swa},
          {Family::kCheckpoint, cp}};
  for (auto& [f, raw] : fams) {
    if (raw.empty()) continue;
    nlohmann::json j = {{"figure", "lz4_ratio"},
                        {"model", s.name},
                        {"family", std::string(FamilyName(f))},
                        {"bytes", raw.size()}};
    std::vector<std::byte> buf(cachestore::MaxEncodedSize(raw.size()));
    for (CodecKind c :
         {CodecKind::kLz4, CodecKind::kLz4Shuffle2, CodecKind::kLz4Shuffle4, CodecKind::kZstd}) {
      const cachestore::Encoded e = cachestore::EncodeRecord(c, raw, buf);
      j[std::string(CodecKindName(c))] =
          e.codec == CodecKind::kNone ? 1.0 : double(raw.size()) / double(e.size);
    }
    Emit(out, j);
  }
  return Status::Ok();
}

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Evicts the CPU caches before every timed run, so a DRAM restore cannot reuse lines the
// previous repetition left in the LLC (and a cold run cannot reuse warm weights): writes, then
// reads, a buffer of 4 x the LLC, at least 64 MiB.
class CacheFlusher {
 public:
  CacheFlusher() {
    const long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    llc_ = llc > 0 ? size_t(llc) : 0;
    buf_.assign(std::max<size_t>(64ull << 20, 4 * llc_), 0);
  }
  void Flush() {
    std::memset(buf_.data(), int(++round_), buf_.size());
    uint64_t sum = 0;
    for (size_t i = 0; i < buf_.size(); i += 64) sum += buf_[i];
    sink_ = sink_ + sum;
  }
  std::string Describe() const {
    return "before every timed run: wrote and read " + std::to_string(buf_.size() >> 20) +
           " MiB (" +
           (llc_ ? "4 x the " + std::to_string(llc_ >> 20) + " MiB LLC" : "LLC unknown") +
           ", at least 64 MiB)";
  }

 private:
  std::vector<uint8_t> buf_;
  size_t llc_ = 0;
  uint32_t round_ = 0;
  volatile uint64_t sink_ = 0;
};

struct Sample {
  double ttft_s = 0, lookup_s = 0, restore_s = 0, tail_prefill_s = 0;
  engine::TurnResult r;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

bool SameLogits(const engine::TurnResult& a, const engine::TurnResult& b) {
  return a.logits.size() == 1 && b.logits.size() == 1 && a.logits[0].size() == b.logits[0].size() &&
         std::memcmp(a.logits[0].data(), b.logits[0].data(), a.logits[0].size() * 4) == 0;
}

}  // namespace

Status RunRehydrateBench(const RehydrateBenchOptions& opt, std::ostream& out) {
  const uint32_t block = engine::EngineOptions{}.block_size;
  if (opt.tail_tokens < 1 || uint32_t(opt.tail_tokens) >= block)
    return Status::InvalidArgument("rehydrate bench: the tail must be 1.." +
                                   std::to_string(block - 1) + " tokens");
  BytesPerToken(out, opt.configs_dir);
  StoreConfig sc;
  sc.host.capacity_bytes = 512ull << 20;
  sc.nvme.capacity_bytes = 512ull << 20;
  sc.nvme.segment_bytes = 32ull << 20;
  // The planner's costs, measured at start as `strata run` does (never the built-in defaults):
  // memcpy for DRAM, reads at the store config's queue depth for NVMe, on the scratch disk.
  fs::create_directories(opt.scratch_dir);
  sc.nvme.data_dir = opt.scratch_dir;
  STRATA_ASSIGN_OR_RETURN(engine::MeasuredCosts measured, engine::MeasureStoreCosts(sc));
  CacheFlusher flusher;
  std::vector<std::string> failures;
  const int kColdRuns = 3, kDramRuns = 5, kNvmeRuns = 3;
  for (const RehydrateCase& c : opt.cases) {
    STRATA_ASSIGN_OR_RETURN(engine::ModelConfig config, engine::LoadModelConfig(c.config_path));
    const std::string name = config.shape.name;
    if (opt.progress) std::cerr << "rehydrate bench: " << name << ": weights...\n";
    STRATA_ASSIGN_OR_RETURN(
        auto model_u,
        engine::Model::Create(config, engine::ModelWeights::Random(config, opt.seed)));
    std::shared_ptr<const engine::Model> model = std::move(model_u);
    bool ratios_done = false;
    engine::EngineOptions eo;
    eo.policy.kind = engine::SwaPolicy::kFull;
    eo.cost = measured.cost;  // prefill_s_per_token: measured by the first Create below
    for (int n : c.prefixes) {
      if (n <= 0 || n % int(eo.block_size))
        return Status::InvalidArgument("rehydrate bench: prefix " + std::to_string(n) +
                                       " is not a positive multiple of the block size");
      // The prompt: a cached prefix of n tokens (whole blocks) and an uncached tail, which is
      // prefilled after the restore up to the logits of the first new token.
      std::mt19937 rng(static_cast<uint32_t>(n));
      std::vector<int32_t> prompt(size_t(n + opt.tail_tokens));
      for (auto& t : prompt) t = int32_t(rng() % uint32_t(config.shape.vocab_size));
      const std::string dir = opt.scratch_dir + "/" + name + "-" + std::to_string(n);
      fs::remove_all(dir);
      fs::create_directories(dir);
      sc.nvme.data_dir = dir;
      STRATA_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenStore(sc));
      STRATA_ASSIGN_OR_RETURN(auto eng, engine::CachedEngine::Create(model, store.get(), eo));
      if (eo.cost.prefill_s_per_token <= 0) {
        eo.cost = eng->cost();  // later engines (restarts) plan with the same measured costs
        Emit(out, {{"figure", "costs"},
                   {"model", name},
                   {"source", "measured at start (engine/cost_probe.h), as strata run"},
                   {"host_bytes_per_s", eo.cost[Tier::kHost]},
                   {"host_probe", "memcpy of 64 MiB, median of 3"},
                   {"nvme_bytes_per_s", eo.cost[Tier::kNvme]},
                   {"nvme_device", std::string(DeviceKindName(measured.nvme.device))},
                   {"nvme_queue_depth", measured.nvme.queue_depth},
                   {"nvme_max_inflight", measured.nvme.max_inflight},
                   {"nvme_io_bytes", measured.nvme.io_bytes},
                   {"nvme_probe_bytes", measured.nvme.bytes},
                   {"nvme_probe_passes", measured.nvme.passes},
                   {"prefill_s_per_token", eo.cost.prefill_s_per_token},
                   {"prefill_probe", "256 tokens from position 0"}});
      }
      if (!ratios_done) {
        STRATA_RETURN_IF_ERROR(Lz4Ratios(out, *model, eng->layout(), prompt));
        ratios_done = true;
      }
      if (opt.progress)
        std::cerr << "rehydrate bench: " << name << " " << n << "+" << opt.tail_tokens
                  << ": storing (full + checkpoint)...\n";
      STRATA_ASSIGN_OR_RETURN(engine::TurnResult pop, eng->RunTurn(prompt, {.max_new = 1}));
      STRATA_RETURN_IF_ERROR(eng->WaitOffload());
      const RestorePlan::Kind full = RestorePlan::kFull;
      STRATA_ASSIGN_OR_RETURN(
          engine::TurnResult cpr,
          eng->RunTurn(prompt, {.max_new = 1, .force = &full, .checkpoint_restored = true}));
      STRATA_RETURN_IF_ERROR(eng->WaitOffload());
      STRATA_RETURN_IF_ERROR(store->Flush());
      (void)pop;
      (void)cpr;

      const RestorePlan::Kind kinds[3] = {RestorePlan::kFull, RestorePlan::kCheckpoint,
                                          RestorePlan::kRecompute};
      auto timed_turn = [&](int k) -> Result<Sample> {
        engine::TurnOptions to;
        to.max_new = 1;  // up to the logits of the first new token
        to.offload = false;
        if (k < 3) to.force = &kinds[k];
        flusher.Flush();
        Sample smp;
        const auto t = Clock::now();
        STRATA_ASSIGN_OR_RETURN(smp.r, eng->RunTurn(prompt, to));
        smp.ttft_s = Since(t);
        smp.lookup_s = smp.r.lookup_s, smp.restore_s = smp.r.restore_s;
        smp.tail_prefill_s = smp.r.prefill_s;
        return smp;
      };
      auto restart = [&]() -> Status {  // nothing left in DRAM: every read comes from NVMe
        eng.reset();
        store.reset();
        STRATA_ASSIGN_OR_RETURN(store, OpenStore(sc));
        STRATA_ASSIGN_OR_RETURN(eng, engine::CachedEngine::Create(model, store.get(), eo));
        return Status::Ok();
      };
      // Cold runs interleaved with the DRAM restores (cold, full, checkpoint, recompute,
      // planner, cold, ...); then the NVMe restores, each after a store restart.
      std::vector<engine::TurnResult> colds;
      std::vector<double> cold_times;
      std::vector<Sample> samples[2][4];  // [tier][plan]
      for (int round = 0; round < kDramRuns; ++round) {
        if (round < kColdRuns) {
          if (opt.progress)
            std::cerr << "rehydrate bench: " << name << " " << n << ": cold prefill " << round + 1
                      << "/" << kColdRuns << "...\n";
          flusher.Flush();
          const auto t = Clock::now();
          STRATA_ASSIGN_OR_RETURN(engine::TurnResult cold, eng->RunCold(prompt, 1));
          cold_times.push_back(Since(t));
          colds.push_back(std::move(cold));
        }
        for (int k = 0; k < 4; ++k) {
          STRATA_ASSIGN_OR_RETURN(Sample smp, timed_turn(k));
          samples[0][k].push_back(std::move(smp));
        }
      }
      if (opt.progress)
        std::cerr << "rehydrate bench: " << name << " " << n << ": NVMe restores...\n";
      for (int round = 0; round < kNvmeRuns; ++round)
        for (int k = 0; k < 4; ++k) {
          STRATA_RETURN_IF_ERROR(restart());
          STRATA_ASSIGN_OR_RETURN(Sample smp, timed_turn(k));
          samples[1][k].push_back(std::move(smp));
        }
      const engine::TurnResult& cold = colds[0];
      for (size_t i = 1; i < colds.size(); ++i)
        if (!SameLogits(colds[i], cold))
          failures.push_back(name + " " + std::to_string(n) + ": cold runs differ");
      const double cold_s = Median(cold_times);
      const double cold_min = *std::min_element(cold_times.begin(), cold_times.end());
      const double cold_max = *std::max_element(cold_times.begin(), cold_times.end());

      for (int tier = 0; tier < 2; ++tier) {
        const char* tier_name = tier == 0 ? "dram" : "nvme";
        double best = 1e30;
        std::string best_plan;
        for (int k = 0; k < 4; ++k) {
          const std::vector<Sample>& v = samples[tier][size_t(k)];
          const std::string plan = k < 3 ? engine::RestorePlanKindName(kinds[k]) : "planner";
          const std::string where = name + " " + std::to_string(n) + " " + tier_name + " " + plan;
          // Every repetition: bit-exact next logits, the labelled plan and tier, no fallback.
          bool exact = true, tier_ok = true;
          for (const Sample& smp : v) {
            const engine::TurnResult& r = smp.r;
            exact = exact && SameLogits(r, cold);
            const bool plan_ok = r.fallbacks == 0 && r.plan.kind != RestorePlan::kCold &&
                                 (k == 3 || r.plan.kind == kinds[k]);
            const bool bytes_ok = tier == 0 ? r.read_bytes[size_t(Tier::kNvme)] == 0 &&
                                                  r.read_bytes[size_t(Tier::kHost)] > 0
                                            : r.read_bytes[size_t(Tier::kHost)] == 0 &&
                                                  r.read_bytes[size_t(Tier::kNvme)] > 0;
            tier_ok = tier_ok && plan_ok && bytes_ok;
          }
          if (!exact) failures.push_back(where + ": next logits differ from the cold run's");
          if (!tier_ok)
            failures.push_back(
                where + ": did not restore by this plan from this tier (read " +
                std::to_string(v[0].r.read_bytes[size_t(Tier::kHost)]) + " B from DRAM, " +
                std::to_string(v[0].r.read_bytes[size_t(Tier::kNvme)]) + " B from NVMe)");
          std::vector<double> ttft, lookup, restore, tail;
          for (const Sample& smp : v) {
            ttft.push_back(smp.ttft_s);
            lookup.push_back(smp.lookup_s);
            restore.push_back(smp.restore_s);
            tail.push_back(smp.tail_prefill_s);
          }
          const double med = Median(ttft);
          const double lo = *std::min_element(ttft.begin(), ttft.end());
          const double hi = *std::max_element(ttft.begin(), ttft.end());
          const engine::TurnResult& r = v[0].r;
          nlohmann::json j = {{"figure", "restore"},
                              {"model", name},
                              {"prefix", n},
                              {"prompt_tokens", r.prompt_tokens},
                              {"cached_tokens", r.plan.hit_tokens},
                              {"tail_tokens", r.prefilled_tokens},
                              {"tier", tier_name},
                              {"plan", plan},
                              {"plan_taken", r.plan.ToString()},
                              {"runs", v.size()},
                              {"ttft_s", med},
                              {"ttft_min_s", lo},
                              {"ttft_max_s", hi},
                              {"lookup_s", Median(lookup)},
                              {"restore_s", Median(restore)},
                              {"tail_prefill_s", Median(tail)},
                              {"cold_prefill_s", cold_s},
                              {"cold_min_s", cold_min},
                              {"cold_max_s", cold_max},
                              {"cold_runs", cold_times.size()},
                              {"ratio", cold_s / med},
                              {"ratio_min", cold_s / hi},
                              {"ratio_max", cold_s / lo},
                              {"read_host_bytes", r.read_bytes[size_t(Tier::kHost)]},
                              {"read_nvme_bytes", r.read_bytes[size_t(Tier::kNvme)]},
                              {"recompute_tokens", r.plan.recompute_tokens},
                              {"bit_exact_next_logits", exact},
                              {"tier_ok", tier_ok},
                              {"cache_flush", flusher.Describe()}};
          if (k < 3 && med < best) best = med, best_plan = plan;
          if (k == 3) {
            j["planner_est_s"] = r.plan.est_seconds;
            j["best_single_option_s"] = best;
            j["best_single_option"] = best_plan;
          }
          Emit(out, j);
        }
      }
      eng.reset();
      store.reset();
      fs::remove_all(dir);
    }
  }
  Emit(out, {{"figure", "checks"}, {"ok", failures.empty()}, {"failures", failures}});
  if (!failures.empty()) {
    std::string all;
    for (const std::string& f : failures) all += (all.empty() ? "" : "; ") + f;
    return Status::Internal("rehydrate bench: " + std::to_string(failures.size()) +
                            " check(s) failed: " + all);
  }
  return Status::Ok();
}

}  // namespace strata::bench
