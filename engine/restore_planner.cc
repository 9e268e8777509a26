#include "engine/restore_planner.h"

#include <algorithm>
#include <stdexcept>

namespace strata::engine {
namespace {

constexpr Family kCompressed[] = {Family::kCsa, Family::kCsaIndex, Family::kHca};

}  // namespace

std::string SwaPolicy::ToString() const {
  switch (kind) {
    case kFull:
      return "full";
    case kRecompute:
      return "recompute";
    case kCheckpoint:
      return every ? "checkpoint:" + std::to_string(every) : "checkpoint";
  }
  return "?";
}

Result<SwaPolicy> SwaPolicy::Parse(const std::string& text, uint32_t block_size) {
  SwaPolicy p;
  if (text == "full") {
    p.kind = kFull;
  } else if (text == "recompute") {
    p.kind = kRecompute;
  } else if (text == "checkpoint") {
    p.kind = kCheckpoint;
  } else if (text.rfind("checkpoint:", 0) == 0) {
    p.kind = kCheckpoint;
    const std::string k = text.substr(11);
    try {
      size_t used = 0;
      p.every = std::stoll(k, &used);
      if (used != k.size()) throw std::invalid_argument(k);
    } catch (const std::exception&) {
      return Status::InvalidArgument("policy '" + text + "': K is not a number");
    }
    if (p.every <= 0 || p.every % block_size)
      return Status::InvalidArgument("policy '" + text +
                                     "': K must be a positive multiple of "
                                     "the block size (" +
                                     std::to_string(block_size) + ")");
  } else {
    return Status::InvalidArgument("unknown policy '" + text +
                                   "' (full, checkpoint, checkpoint:K or recompute)");
  }
  return p;
}

const char* RestorePlanKindName(RestorePlan::Kind kind) {
  switch (kind) {
    case RestorePlan::kCold:
      return "cold";
    case RestorePlan::kFull:
      return "full";
    case RestorePlan::kCheckpoint:
      return "checkpoint";
    case RestorePlan::kRecompute:
      return "recompute";
  }
  return "?";
}

uint64_t RestorePlan::total_read_bytes() const {
  uint64_t total = 0;
  for (uint64_t b : read_bytes) total += b;
  return total;
}

std::string RestorePlan::ToString() const {
  std::string s = RestorePlanKindName(kind);
  if (kind == kCheckpoint) s += "@" + std::to_string(state_from);
  if (kind == kRecompute) s += "(" + std::to_string(recompute_tokens) + " tokens)";
  return s;
}

int64_t RecomputeReach(const ModelShape& s) {
  const int64_t W = s.window_size;
  return s.n_mtp_layers > 0 ? W + 1 + (W - 1) * s.n_layers : W + (W - 1) * (s.n_layers - 1);
}

int SwaBlocksNeeded(const CacheLayout& layout) {
  const int B = int(layout.block_size()), w = layout.shape().window_size;
  return (w + B - 1) / B;
}

FamilyMask HitFamilies(const CacheLayout& layout) {
  FamilyMask m;
  for (Family f : kCompressed)
    if (layout.FamilyBlockBytes(f) > 0) m.Add(f);
  return m;
}

bool StoresCheckpoint(const SwaPolicy& policy, int64_t block_end, bool request_end) {
  if (policy.kind != SwaPolicy::kCheckpoint) return false;
  return request_end || (policy.every && block_end % policy.every == 0);
}

FamilyMask StoredFamilies(const SwaPolicy& policy, const CacheLayout& layout, int64_t block_end,
                          bool request_end) {
  FamilyMask m = HitFamilies(layout);
  if (policy.kind == SwaPolicy::kFull) m.Add(Family::kSwa);
  if (StoresCheckpoint(policy, block_end, request_end)) m.Add(Family::kCheckpoint);
  return m;
}

std::vector<PlanRead> PlanReads(const RestorePlan& plan, const CacheLayout& layout) {
  std::vector<PlanRead> reads;
  if (plan.kind == RestorePlan::kCold) return reads;
  const int64_t B = layout.block_size();
  const int64_t blocks =
      (plan.kind == RestorePlan::kRecompute ? plan.hit_tokens : plan.state_from) / B;
  reads.push_back({0, blocks, HitFamilies(layout)});
  if (plan.kind == RestorePlan::kFull) {
    const int need = SwaBlocksNeeded(layout);
    reads.push_back({blocks - need, need, FamilyMask{Family::kSwa}});
  } else if (plan.kind == RestorePlan::kCheckpoint) {
    reads.push_back({blocks - 1, 1, FamilyMask{Family::kCheckpoint}});
  }
  return reads;
}

std::vector<RestorePlan> PlanRestores(const CacheLayout& lay, const LookupResult& found, int64_t n,
                                      const CostModel& cost, const PlanOptions& options) {
  const ModelShape& s = lay.shape();
  const int64_t B = lay.block_size();
  const double spt = cost.prefill_s_per_token;
  const FamilyMask compressed = HitFamilies(lay);
  // Only complete blocks before the prompt's last token: that token is computed for its logits.
  const int64_t usable = n > 0 ? (n - 1) / B : 0;
  const int64_t h = std::min({int64_t(found.hit_blocks), usable, int64_t(found.blocks.size())});
  std::vector<RestorePlan> plans;
  RestorePlan cold;
  cold.est_seconds = double(n) * spt;
  auto add_bytes = [&](RestorePlan& p, int64_t block, Family f) {
    const Tier t = found.blocks[size_t(block)].tier[size_t(f)];
    p.read_bytes[size_t(t)] += lay.FamilyBlockBytes(f);
  };
  auto add_compressed = [&](RestorePlan& p, int64_t blocks) {
    for (int64_t b = 0; b < blocks; ++b)
      for (Family f : kCompressed)
        if (compressed.Has(f)) add_bytes(p, b, f);
  };
  auto finish = [&](RestorePlan& p) {
    double read_s = 0;
    for (Tier t : kAllTiers)
      if (p.read_bytes[size_t(t)]) read_s += double(p.read_bytes[size_t(t)]) / cost[t];
    p.est_seconds = read_s + double(p.recompute_tokens + n - p.hit_tokens) * spt;
    plans.push_back(p);
  };
  if (h >= 1) {
    {  // recompute the window pyramid over the restored entries
      RestorePlan p;
      p.kind = RestorePlan::kRecompute;
      p.hit_tokens = h * B;
      p.state_from = std::max<int64_t>(0, p.hit_tokens - RecomputeReach(s));
      p.recompute_tokens = p.hit_tokens - p.state_from;
      add_compressed(p, h);
      finish(p);
    }
    const int need = SwaBlocksNeeded(lay);
    for (int64_t e = h; e >= need; --e) {  // full: the longest prefix with SWA stored
      bool ok = true;
      for (int64_t b = e - need; b < e && ok; ++b)
        ok = found.blocks[size_t(b)].families.Has(Family::kSwa);
      if (!ok) continue;
      RestorePlan p;
      p.kind = RestorePlan::kFull;
      p.hit_tokens = p.state_from = e * B;
      add_compressed(p, e);
      for (int64_t b = e - need; b < e; ++b) add_bytes(p, b, Family::kSwa);
      finish(p);
      break;
    }
    for (int64_t b = h - 1; b >= 0; --b) {  // every stored checkpoint
      if (!found.blocks[size_t(b)].families.Has(Family::kCheckpoint)) continue;
      RestorePlan p;
      p.kind = RestorePlan::kCheckpoint;
      p.hit_tokens = p.state_from = (b + 1) * B;
      add_compressed(p, b + 1);
      add_bytes(p, b, Family::kCheckpoint);
      finish(p);
    }
  }
  std::stable_sort(plans.begin(), plans.end(), [](const RestorePlan& a, const RestorePlan& b) {
    return a.est_seconds < b.est_seconds;
  });
  if (options.only)
    std::erase_if(plans, [&](const RestorePlan& p) { return p.kind != *options.only; });
  plans.push_back(cold);
  return plans;
}

}  // namespace strata::engine
