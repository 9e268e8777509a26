// The restore planner on hand-built Lookup results (no model, no store): which plans it offers,
// what each reads from which tier, and their order. Expected bytes are worked out by hand from
// the tiny model's shape (configs/models/v4-tiny.json, restated below).
#include "engine/restore_planner.h"

#include <gtest/gtest.h>

namespace strata::engine {
namespace {

// v4-tiny: 4 layers + 1 MTP, ratios [0, 4, 128, 4, 0], head_dim 128 (64 rotary), window 128.
ModelShape TinyShape() {
  ModelShape s;
  s.name = "tiny";
  s.vocab_size = 512;
  s.dim = 256;
  s.n_layers = 4;
  s.n_mtp_layers = 1;
  s.n_heads = 8;
  s.head_dim = 128;
  s.rope_head_dim = 64;
  s.window_size = 128;
  s.index_n_heads = 4;
  s.index_head_dim = 64;
  s.index_topk = 16;
  s.hc_mult = 4;
  s.compress_ratios = {0, 4, 128, 4, 0};
  return s;
}

CacheLayout Layout(const ModelShape& s, uint32_t block = 256) {
  LayoutOptions lo;
  lo.block_size = block;
  auto l = CacheLayout::Make(s, lo);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return *l;
}

// Per block of 256 tokens. Entry: 64 FP8 + 64 BF16 x 2 + 1 scale = 193 -> 200 B; indexer entry:
// 32 + 2 = 34 B. csa: 2 layers x 64 entries x 200; csa_index: 2 x 64 x 34; hca: 1 x 2 x 200.
// Tail: 2 CSA layers x (4 x 128 + 4 x 64) x 2 x 4 B + MTP hidden 4 x 256 x 4 B = 16384.
constexpr uint64_t kCsa = 25600, kIdx = 4352, kHca = 400;
constexpr uint64_t kCompressed = kCsa + kIdx + kHca;     // 30352
constexpr uint64_t kSwa = 5 * 256 * 200 + 16384;         // 272384
constexpr uint64_t kCheckpoint = 5 * 128 * 200 + 16384;  // 144384

BlockPresence Block(Tier compressed, FamilyMask extra = {}, Tier extra_tier = Tier::kHost) {
  BlockPresence p;
  p.families = FamilyMask{Family::kCsa, Family::kCsaIndex, Family::kHca};
  for (Family f : {Family::kCsa, Family::kCsaIndex, Family::kHca}) p.tier[size_t(f)] = compressed;
  for (Family f : {Family::kSwa, Family::kCheckpoint})
    if (extra.Has(f)) {
      p.families.Add(f);
      p.tier[size_t(f)] = extra_tier;
    }
  return p;
}

uint64_t At(const RestorePlan& p, Tier t) { return p.read_bytes[size_t(t)]; }

// Blocks 0-3 hit (block 3's compressed state on NVMe, the others in DRAM); block 1 holds a
// checkpoint on NVMe, block 2 one in DRAM, block 3 its SWA in DRAM; block 4 missed.
LookupResult Found() {
  LookupResult r;
  r.hit_blocks = 4;
  r.blocks = {Block(Tier::kHost), Block(Tier::kHost, {Family::kCheckpoint}, Tier::kNvme),
              Block(Tier::kHost, {Family::kCheckpoint}, Tier::kHost),
              Block(Tier::kNvme, {Family::kSwa}, Tier::kHost), BlockPresence{}};
  return r;
}

TEST(RestorePlannerTest, LayoutSizesAsWorkedOut) {
  const CacheLayout l = Layout(TinyShape());
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCsa), kCsa);
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCsaIndex), kIdx);
  EXPECT_EQ(l.FamilyBlockBytes(Family::kHca), kHca);
  EXPECT_EQ(l.FamilyBlockBytes(Family::kSwa), kSwa);
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCheckpoint), kCheckpoint);
  // The window pyramid: window + 1 (MTP) + 4 layers x (window - 1) = 128 + 1 + 508.
  EXPECT_EQ(RecomputeReach(TinyShape()), 637);
  ModelShape no_mtp = TinyShape();
  no_mtp.n_mtp_layers = 0;
  no_mtp.compress_ratios.pop_back();
  EXPECT_EQ(RecomputeReach(no_mtp), 128 + 3 * 127);
  EXPECT_EQ(SwaBlocksNeeded(l), 1);
}

TEST(RestorePlannerTest, EveryPlanWithBytesPerTierCheapestFirst) {
  const CacheLayout l = Layout(TinyShape());
  CostModel cost;  // DRAM 10 GB/s, NVMe 1 GB/s
  cost.prefill_s_per_token = 1e-3;
  const std::vector<RestorePlan> plans = PlanRestores(l, Found(), 1300, cost);
  ASSERT_EQ(plans.size(), 5u);
  // full: 4 blocks' compressed state (3 in DRAM, 1 on NVMe) + block 3's SWA (DRAM); 276 tokens
  // left to prefill. est 363440/1e10 + 30352/1e9 + 0.276.
  EXPECT_EQ(plans[0].kind, RestorePlan::kFull);
  EXPECT_EQ(plans[0].hit_tokens, 1024);
  EXPECT_EQ(plans[0].state_from, 1024);
  EXPECT_EQ(At(plans[0], Tier::kHost), 3 * kCompressed + kSwa);
  EXPECT_EQ(At(plans[0], Tier::kNvme), kCompressed);
  EXPECT_NEAR(plans[0].est_seconds, 363440e-10 + 30352e-9 + 0.276, 1e-12);
  // The checkpoint of block 2 (DRAM), 3 blocks of compressed state, 532 tokens to prefill.
  EXPECT_EQ(plans[1].kind, RestorePlan::kCheckpoint);
  EXPECT_EQ(plans[1].state_from, 768);
  EXPECT_EQ(plans[1].hit_tokens, 768);
  EXPECT_EQ(At(plans[1], Tier::kHost), 3 * kCompressed + kCheckpoint);
  EXPECT_EQ(At(plans[1], Tier::kNvme), 0u);
  EXPECT_EQ(plans[1].ToString(), "checkpoint@768");
  // The checkpoint of block 1 (NVMe).
  EXPECT_EQ(plans[2].kind, RestorePlan::kCheckpoint);
  EXPECT_EQ(plans[2].state_from, 512);
  EXPECT_EQ(At(plans[2], Tier::kHost), 2 * kCompressed);
  EXPECT_EQ(At(plans[2], Tier::kNvme), kCheckpoint);
  // Recompute: the whole hit's compressed state, 637 tokens recomputed before 1024.
  EXPECT_EQ(plans[3].kind, RestorePlan::kRecompute);
  EXPECT_EQ(plans[3].hit_tokens, 1024);
  EXPECT_EQ(plans[3].state_from, 1024 - 637);
  EXPECT_EQ(plans[3].recompute_tokens, 637);
  EXPECT_EQ(At(plans[3], Tier::kHost), 3 * kCompressed);
  EXPECT_EQ(At(plans[3], Tier::kNvme), kCompressed);
  EXPECT_NEAR(plans[3].est_seconds, 91056e-10 + 30352e-9 + (637 + 276) * 1e-3, 1e-12);
  EXPECT_EQ(plans[3].ToString(), "recompute(637 tokens)");
  EXPECT_EQ(plans[4].kind, RestorePlan::kCold);
  EXPECT_NEAR(plans[4].est_seconds, 1.3, 1e-12);
  EXPECT_EQ(plans[4].total_read_bytes(), 0u);
  for (const RestorePlan& p : plans) {
    EXPECT_EQ(At(p, Tier::kNone), 0u);
    EXPECT_EQ(At(p, Tier::kDevice), 0u);
    EXPECT_EQ(At(p, Tier::kCluster), 0u);
  }
}

TEST(RestorePlannerTest, BandwidthDecidesWhenPrefillIsCheap) {
  const CacheLayout l = Layout(TinyShape());
  CostModel cost;
  cost.prefill_s_per_token = 1e-9;
  const std::vector<RestorePlan> plans = PlanRestores(l, Found(), 1300, cost);
  ASSERT_EQ(plans.size(), 5u);
  // checkpoint@768 2.41e-5 s < recompute 4.04e-5 < full 6.70e-5 < checkpoint@512 1.51e-4; cold
  // stays last even though its estimate (1.3e-6 s) is the smallest.
  EXPECT_EQ(plans[0].ToString(), "checkpoint@768");
  EXPECT_EQ(plans[1].kind, RestorePlan::kRecompute);
  EXPECT_EQ(plans[2].kind, RestorePlan::kFull);
  EXPECT_EQ(plans[3].ToString(), "checkpoint@512");
  EXPECT_EQ(plans[4].kind, RestorePlan::kCold);
  // NVMe ten times slower: its bytes cost ten times more.
  cost[Tier::kNvme] = 1e8;
  const std::vector<RestorePlan> slow = PlanRestores(l, Found(), 1300, cost);
  EXPECT_EQ(slow[0].ToString(), "checkpoint@768");
  EXPECT_NEAR(slow[1].est_seconds, 91056e-10 + 30352e-8 + 913e-9, 1e-15);
}

TEST(RestorePlannerTest, OnlyTheLastTokensBlockIsLeftOut) {
  const CacheLayout l = Layout(TinyShape());
  CostModel cost;
  cost.prefill_s_per_token = 1e-3;
  // 1024 tokens: the last token is in block 3, so blocks 0-2 are usable: no full plan (SWA is
  // only stored for block 3), recompute up to 768.
  const std::vector<RestorePlan> plans = PlanRestores(l, Found(), 1024, cost);
  ASSERT_EQ(plans.size(), 4u);
  for (const RestorePlan& p : plans) EXPECT_NE(p.kind, RestorePlan::kFull);
  EXPECT_EQ(plans[0].ToString(), "checkpoint@768");
  EXPECT_EQ(plans[1].ToString(), "checkpoint@512");
  EXPECT_EQ(plans[2].kind, RestorePlan::kRecompute);
  EXPECT_EQ(plans[2].hit_tokens, 768);
  EXPECT_EQ(plans[2].state_from, 768 - 637);
  EXPECT_EQ(At(plans[2], Tier::kHost), 3 * kCompressed);
  EXPECT_EQ(plans[3].kind, RestorePlan::kCold);
  // 1025 tokens: block 3 becomes usable.
  EXPECT_EQ(PlanRestores(l, Found(), 1025, cost)[0].kind, RestorePlan::kFull);
}

TEST(RestorePlannerTest, NoHitOnlyCold) {
  const CacheLayout l = Layout(TinyShape());
  CostModel cost;
  cost.prefill_s_per_token = 1e-3;
  LookupResult none;
  none.blocks = {BlockPresence{}};
  const std::vector<RestorePlan> plans = PlanRestores(l, none, 900, cost);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].kind, RestorePlan::kCold);
  EXPECT_NEAR(plans[0].est_seconds, 0.9, 1e-12);
  ASSERT_EQ(PlanRestores(l, LookupResult{}, 1, cost).size(), 1u);
}

TEST(RestorePlannerTest, OnlyOneKind) {
  const CacheLayout l = Layout(TinyShape());
  CostModel cost;
  cost.prefill_s_per_token = 1e-3;
  PlanOptions only;
  only.only = RestorePlan::kCheckpoint;
  std::vector<RestorePlan> plans = PlanRestores(l, Found(), 1300, cost, only);
  ASSERT_EQ(plans.size(), 3u);
  EXPECT_EQ(plans[0].ToString(), "checkpoint@768");
  EXPECT_EQ(plans[1].ToString(), "checkpoint@512");
  EXPECT_EQ(plans[2].kind, RestorePlan::kCold);
  only.only = RestorePlan::kCold;
  plans = PlanRestores(l, Found(), 1300, cost, only);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].kind, RestorePlan::kCold);
}

TEST(RestorePlannerTest, DeviceAndClusterTiersUseTheirBandwidth) {
  const CacheLayout l = Layout(TinyShape());
  CostModel cost;
  cost.prefill_s_per_token = 1.0;  // huge: the plan with no recompute and most tokens wins
  cost[Tier::kDevice] = 1e12;
  cost[Tier::kCluster] = 1e6;
  LookupResult r;
  r.hit_blocks = 2;
  r.blocks = {Block(Tier::kDevice), Block(Tier::kCluster, {Family::kSwa}, Tier::kCluster)};
  const std::vector<RestorePlan> plans = PlanRestores(l, r, 600, cost);
  ASSERT_EQ(plans.size(), 3u);
  EXPECT_EQ(plans[0].kind, RestorePlan::kFull);
  EXPECT_EQ(At(plans[0], Tier::kDevice), kCompressed);
  EXPECT_EQ(At(plans[0], Tier::kCluster), kCompressed + kSwa);
  EXPECT_EQ(At(plans[0], Tier::kHost), 0u);
  EXPECT_NEAR(plans[0].est_seconds, 30352e-12 + 302736e-6 + 88.0, 1e-9);
  EXPECT_EQ(plans[1].kind, RestorePlan::kRecompute);
  EXPECT_EQ(plans[1].recompute_tokens, 512);  // the reach (637) is cut at position 0
  EXPECT_EQ(plans[1].state_from, 0);
}

TEST(RestorePlannerTest, ReadsMatchThePlannedBytes) {
  const CacheLayout l = Layout(TinyShape());
  CostModel cost;
  cost.prefill_s_per_token = 1e-3;
  for (const RestorePlan& p : PlanRestores(l, Found(), 1300, cost)) {
    uint64_t bytes = 0;
    for (const PlanRead& rd : PlanReads(p, l))
      for (Family f : kAllFamilies)
        if (rd.families.Has(f)) bytes += uint64_t(rd.blocks) * l.FamilyBlockBytes(f);
    EXPECT_EQ(bytes, p.total_read_bytes()) << p.ToString();
  }
  RestorePlan full;
  full.kind = RestorePlan::kFull;
  full.hit_tokens = full.state_from = 1024;
  const std::vector<PlanRead> reads = PlanReads(full, l);
  ASSERT_EQ(reads.size(), 2u);
  EXPECT_EQ(reads[0].first_block, 0);
  EXPECT_EQ(reads[0].blocks, 4);
  EXPECT_EQ(reads[0].families, (FamilyMask{Family::kCsa, Family::kCsaIndex, Family::kHca}));
  EXPECT_EQ(reads[1].first_block, 3);
  EXPECT_EQ(reads[1].blocks, 1);
  EXPECT_EQ(reads[1].families, FamilyMask{Family::kSwa});
  EXPECT_TRUE(PlanReads(RestorePlan{}, l).empty());
}

TEST(RestorePlannerTest, FamiliesPerPolicy) {
  const CacheLayout l = Layout(TinyShape());
  const FamilyMask compressed{Family::kCsa, Family::kCsaIndex, Family::kHca};
  EXPECT_EQ(HitFamilies(l), compressed);
  // No ratio-128 layer: no hca family to require.
  ModelShape no_hca = TinyShape();
  no_hca.compress_ratios = {0, 4, 0, 4, 0};
  EXPECT_EQ(HitFamilies(Layout(no_hca)), (FamilyMask{Family::kCsa, Family::kCsaIndex}));

  const SwaPolicy full = *SwaPolicy::Parse("full", 256);
  const SwaPolicy every512 = *SwaPolicy::Parse("checkpoint:512", 256);
  const SwaPolicy ends = *SwaPolicy::Parse("checkpoint", 256);
  const SwaPolicy recompute = *SwaPolicy::Parse("recompute", 256);
  FamilyMask with_swa = compressed, with_cp = compressed;
  with_swa.Add(Family::kSwa);
  with_cp.Add(Family::kCheckpoint);
  EXPECT_EQ(StoredFamilies(full, l, 256, false), with_swa);
  EXPECT_EQ(StoredFamilies(full, l, 256, true), with_swa);
  EXPECT_EQ(StoredFamilies(every512, l, 256, false), compressed);
  EXPECT_EQ(StoredFamilies(every512, l, 512, false), with_cp);
  EXPECT_EQ(StoredFamilies(every512, l, 768, true), with_cp);
  EXPECT_EQ(StoredFamilies(ends, l, 512, false), compressed);
  EXPECT_EQ(StoredFamilies(ends, l, 512, true), with_cp);
  EXPECT_EQ(StoredFamilies(recompute, l, 512, true), compressed);
  EXPECT_FALSE(StoresCheckpoint(full, 512, true));
}

TEST(RestorePlannerTest, PolicyNames) {
  EXPECT_EQ(SwaPolicy::Parse("checkpoint:512", 256)->ToString(), "checkpoint:512");
  EXPECT_EQ(SwaPolicy::Parse("checkpoint:300", 256).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SwaPolicy::Parse("checkpoint:x", 256).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SwaPolicy::Parse("fast", 256).status().code(), StatusCode::kInvalidArgument);
  EXPECT_STREQ(RestorePlanKindName(RestorePlan::kRecompute), "recompute");
}

}  // namespace
}  // namespace strata::engine
