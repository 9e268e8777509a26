// Offload and rehydration: after a restore, the logits of every following step and the whole
// state are bitwise identical to a cold prefill of the same tokens followed by the same decode
// steps, for every policy, from the host tier, from the NVMe tier and after a reopen; edge
// cases fall back to longer recomputes or clean misses, never wrong state.
#include "engine/session.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "cachestore/nvme/record.h"
#include "tests/testing/rehydrate.h"
#include "tests/testing/store_fixture.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tiny_model.h"

namespace strata::engine {
namespace {

namespace fs = std::filesystem;

using testing::TinyModel;

std::vector<int32_t> Tokens(size_t n, uint32_t seed) { return testing::RandomTokens(n, seed); }

// `a` followed by `b`.
std::vector<int32_t> Concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

using testing::ExpectSameAsCold;
using testing::TierCase;

// Runs a turn that stores its state and waits until the store has it.
void StoreTurn(CachedEngine& e, std::span<const int32_t> tokens, int max_new) {
  auto r = e.RunTurn(tokens, {.max_new = max_new});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(e.WaitOffload().ok());
}

// The in-process store.
struct Fixture : testing::RehydrateHarness {
  testing::TempDir dir;
  StoreConfig config;
  std::unique_ptr<Store> store;
  explicit Fixture(TierCase tier) {
    config = testing::SmallConfig(dir.Sub("data"), DeviceKind::kPosix);
    config.nvme.capacity_bytes = 64 << 20;
    if (tier == TierCase::kHost) {
      config.nvme.data_dir.clear();
      config.host.capacity_bytes = 32 << 20;
    } else {
      config.host.capacity_bytes = 1 << 20;  // most objects are demoted to NVMe
    }
    Reopen();
  }
  Store* active() override { return store.get(); }
  void PushToNvme() override {
    ASSERT_TRUE(store->Flush().ok());
    for (uint64_t i = 0; i < 12; ++i) {
      const ObjectKey k{999, BlockKey{i, i}, Family::kCsa};
      ASSERT_TRUE(store->Put(k, 1, testing::SeededBytes(i, 200 << 10)).ok());
    }
  }
  void Reopen() override {
    if (store && !config.nvme.data_dir.empty()) {
      ASSERT_TRUE(store->Flush().ok());
    }
    store.reset();
    auto s = OpenStore(config);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store = std::move(*s);
  }
};

std::unique_ptr<CachedEngine> MakeEngine(Store* store, const std::string& policy,
                                         const std::string& model = "v4-tiny.json") {
  return testing::MakeTestEngine(store, policy, model);
}

class RehydrateTest : public ::testing::TestWithParam<testing::RehydrateParam> {};

TEST_P(RehydrateTest, NextTurnIsBitExactWithCold) {
  Fixture f(GetParam().tier);
  testing::CheckNextTurnBitExact(f, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Policies, RehydrateTest, ::testing::ValuesIn(testing::RehydrateCases()),
                         testing::RehydrateCaseName);

// A one-block hit, shorter than the recompute window (the recompute starts at position 0).
TEST(RehydrateEdgeTest, OneBlockHitShorterThanTheRecomputeWindow) {
  Fixture f(TierCase::kHost);
  auto e = MakeEngine(f.store.get(), "recompute");
  const auto t1 = Tokens(300, 3);
  ASSERT_NO_FATAL_FAILURE(StoreTurn(*e, t1, 1));
  const std::vector<int32_t> t2 = Concat(t1, Tokens(60, 4));
  RequestState st;
  auto r = e->RunTurn(t2, {.max_new = 3, .final_state = &st});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->prefix_hit_tokens, 256);
  EXPECT_EQ(r->plan.kind, RestorePlan::kRecompute);
  EXPECT_EQ(r->plan.state_from, 0);
  ExpectSameAsCold(*e, t2, 3, *r, st);
}

// Bytes stored without a checkpoint (recompute policy); a checkpoint-policy engine finds none
// and restores by recomputing instead.
TEST(RehydrateEdgeTest, MissingCheckpointFallsBackToRecompute) {
  Fixture f(TierCase::kHost);
  auto writer = MakeEngine(f.store.get(), "recompute");
  const auto t1 = Tokens(800, 5);
  ASSERT_NO_FATAL_FAILURE(StoreTurn(*writer, t1, 1));
  auto e = MakeEngine(f.store.get(), "checkpoint");
  const std::vector<int32_t> t2 = Concat(t1, {7});
  RequestState st;
  auto r = e->RunTurn(t2, {.max_new = 2, .final_state = &st});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->plan.kind, RestorePlan::kRecompute);
  for (const RestorePlan& c : r->candidates) EXPECT_NE(c.kind, RestorePlan::kCheckpoint);
  ExpectSameAsCold(*e, t2, 2, *r, st);
}

// The planner takes the cheapest plan the stored bytes allow: full SWA for the first blocks
// and a checkpoint further on are both stored; the longer checkpoint wins.
TEST(RehydrateEdgeTest, PlannerTakesTheCheapestStoredOption) {
  Fixture f(TierCase::kHost);
  auto e = MakeEngine(f.store.get(), "full");
  const auto t1 = Tokens(600, 6);
  ASSERT_NO_FATAL_FAILURE(StoreTurn(*e, t1, 1));
  const std::vector<int32_t> t2 = Concat(t1, Tokens(700, 7));
  const SwaPolicy cp{SwaPolicy::kCheckpoint, 0};
  auto r2 = e->RunTurn(t2, {.max_new = 1, .policy = &cp});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->plan.kind, RestorePlan::kFull);
  ASSERT_TRUE(e->WaitOffload().ok());
  const std::vector<int32_t> t3 = Concat(t2, {9, 10});
  RequestState st;
  auto r3 = e->RunTurn(t3, {.max_new = 2, .final_state = &st});
  ASSERT_TRUE(r3.ok());
  bool saw_full = false, saw_cp = false;
  for (const RestorePlan& c : r3->candidates) {
    EXPECT_LE(r3->plan.est_seconds, c.est_seconds);
    saw_full |= c.kind == RestorePlan::kFull;
    saw_cp |= c.kind == RestorePlan::kCheckpoint;
  }
  EXPECT_TRUE(saw_full && saw_cp);
  EXPECT_EQ(r3->plan.kind, RestorePlan::kCheckpoint);
  EXPECT_EQ(r3->plan.state_from, 1280);
  ExpectSameAsCold(*e, t3, 2, *r3, st);
}

// A swa record corrupted on disk is a miss: the restore falls back to the next plan and the
// result is still exact.
TEST(RehydrateEdgeTest, CorruptRecordOnNvmeFallsBack) {
  Fixture f(TierCase::kNvme);
  auto e = MakeEngine(f.store.get(), "full");
  const auto t1 = Tokens(700, 8);
  ASSERT_NO_FATAL_FAILURE(StoreTurn(*e, t1, 1));
  ASSERT_TRUE(f.store->Flush().ok());
  e.reset();
  f.store.reset();
  int corrupted = 0;
  for (const auto& entry : fs::directory_iterator(f.config.nvme.data_dir + "/segments")) {
    std::fstream file(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    const auto size = fs::file_size(entry.path());
    for (uint64_t off = 0; off + 4096 <= size; off += 4096) {
      char h[8];
      file.seekg(std::streamoff(off));
      file.read(h, 8);
      uint32_t magic;
      std::memcpy(&magic, h, 4);
      if (magic != cachestore::kRecordMagic || uint8_t(h[6]) != uint8_t(Family::kSwa)) continue;
      file.seekp(std::streamoff(off + 128 + 5000));
      char byte = 0x5a;
      file.write(&byte, 1);
      ++corrupted;
    }
  }
  ASSERT_GT(corrupted, 0);
  f.Reopen();
  e = MakeEngine(f.store.get(), "full");
  const std::vector<int32_t> t2 = Concat(t1, {3});
  RequestState st;
  auto r = e->RunTurn(t2, {.max_new = 3, .final_state = &st});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->candidates.front().kind, RestorePlan::kFull);
  EXPECT_GE(r->fallbacks, 1);
  EXPECT_NE(r->plan.kind, RestorePlan::kFull);
  ExpectSameAsCold(*e, t2, 3, *r, st);
}

// Another layout (block size) or another model never sees these bytes.
TEST(RehydrateEdgeTest, LayoutMismatchIsNeverServed) {
  Fixture f(TierCase::kHost);
  auto e = MakeEngine(f.store.get(), "full");
  const auto t1 = Tokens(700, 9);
  ASSERT_NO_FATAL_FAILURE(StoreTurn(*e, t1, 1));
  const std::vector<int32_t> t2 = Concat(t1, {1});
  // The engine that stored them hits, so the misses below are the layout's doing.
  auto same = e->RunTurn(t2, {.max_new = 1, .offload = false});
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->prefix_hit_tokens, 512);
  EngineOptions o;
  o.block_size = 512;
  o.cost.prefill_s_per_token = 5e-4;
  auto other_block = CachedEngine::Create(TinyModel("v4-tiny.json"), f.store.get(), o);
  ASSERT_TRUE(other_block.ok());
  auto r = (*other_block)->RunTurn(t2, {.max_new = 1, .offload = false});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->prefix_hit_tokens, 0);
  EXPECT_EQ(r->plan.kind, RestorePlan::kCold);
  auto other_model = MakeEngine(f.store.get(), "full", "v4-tiny-hca.json");
  auto r2 = other_model->RunTurn(t2, {.max_new = 1, .offload = false});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->prefix_hit_tokens, 0);
  // Same shape, other weights: other keys.
  auto config = LoadModelConfig(STRATA_SOURCE_DIR "/configs/models/v4-tiny.json");
  ASSERT_TRUE(config.ok());
  auto model = Model::Create(*config, ModelWeights::Random(*config, 22));
  ASSERT_TRUE(model.ok());
  EngineOptions eo;
  eo.cost.prefill_s_per_token = 5e-4;
  auto other_weights = CachedEngine::Create(std::move(*model), f.store.get(), eo);
  ASSERT_TRUE(other_weights.ok());
  auto r3 = (*other_weights)->RunTurn(t2, {.max_new = 1, .offload = false});
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->prefix_hit_tokens, 0);
}

TEST(RehydrateEdgeTest, PolicyParsing) {
  EXPECT_EQ(SwaPolicy::Parse("checkpoint:1024", 256)->every, 1024);
  EXPECT_FALSE(SwaPolicy::Parse("checkpoint:300", 256).ok());
  EXPECT_FALSE(SwaPolicy::Parse("checkpoint:x", 256).ok());
  EXPECT_FALSE(SwaPolicy::Parse("sometimes", 256).ok());
  EXPECT_EQ(SwaPolicy::Parse("full", 256)->kind, SwaPolicy::kFull);
}

}  // namespace
}  // namespace strata::engine
