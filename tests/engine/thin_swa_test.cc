// SWA thinning against the engine: the checkpoint the store derives from a block's swa family
// (cachestore/placement/thin_swa.h) is byte for byte the checkpoint the engine writes at that
// block end, for block sizes equal to and twice the window, with and without an MTP layer; and
// a request restored from compressed families + a thinned checkpoint continues bit-exactly
// like a cold run (logits of every step and the whole state).
#include "cachestore/placement/thin_swa.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <mutex>
#include <random>

#include "engine/session.h"
#include "tests/testing/store_fixture.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tiny_model.h"

namespace strata::engine {
namespace {

using testing::TinyModel;

std::vector<int32_t> Tokens(size_t n, uint32_t seed) { return testing::RandomTokens(n, seed); }

bool Same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

// The real store, plus a copy of every object Put into it, in order: which key the engine
// gave each block and what bytes it wrote, without re-deriving the engine's keys here.
class RecordingStore : public Store {
 public:
  explicit RecordingStore(Store* inner) : inner_(inner) {}
  struct Put_ {
    ObjectKey key;
    std::vector<std::byte> bytes;
  };
  std::vector<Put_> puts() const {
    std::lock_guard<std::mutex> l(mu_);
    return puts_;
  }
  // The objects of one namespace and family, in the order they were Put.
  std::vector<Put_> PutsOf(NamespaceId ns, Family f) const {
    std::vector<Put_> out;
    for (Put_& p : puts())
      if (p.key.ns == ns && p.key.family == f) out.push_back(std::move(p));
    return out;
  }

  using Store::Put;
  Result<LookupResult> Lookup(NamespaceId ns, uint64_t fp, std::span<const BlockKey> keys,
                              FamilyMask required) override {
    return inner_->Lookup(ns, fp, keys, required);
  }
  Status Put(const ObjectKey& key, uint64_t fp, std::span<const std::byte> bytes,
             const PutHints& hints) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      puts_.push_back({key, std::vector<std::byte>(bytes.begin(), bytes.end())});
    }
    return inner_->Put(key, fp, bytes, hints);
  }
  Result<std::vector<ObjectView>> Get(NamespaceId ns, uint64_t fp, std::span<const BlockKey> keys,
                                      FamilyMask families) override {
    return inner_->Get(ns, fp, keys, families);
  }
  void Release(std::span<const uint64_t> pins) override { inner_->Release(pins); }
  Status Delete(NamespaceId ns) override { return inner_->Delete(ns); }
  Status Flush() override { return inner_->Flush(); }
  StoreStats Stats() const override { return inner_->Stats(); }
  void VisitCounters(const CounterVisitor& v) const override { inner_->VisitCounters(v); }

 private:
  Store* inner_;
  mutable std::mutex mu_;
  std::vector<Put_> puts_;
};

// A host-only store (nothing evicted at these sizes) behind a recorder.
struct Fixture {
  testing::TempDir dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<RecordingStore> rec;
  Fixture() {
    StoreConfig c = testing::SmallConfig(dir.Sub("data"), DeviceKind::kPosix);
    c.nvme.data_dir.clear();
    c.host.capacity_bytes = 64 << 20;
    auto s = OpenStore(c);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store = std::move(*s);
    rec = std::make_unique<RecordingStore>(store.get());
  }
};

std::unique_ptr<CachedEngine> MakeEngine(Store* store, std::shared_ptr<const Model> model,
                                         uint32_t block, const std::string& policy,
                                         NamespaceId ns = 1) {
  EngineOptions o;
  o.ns = ns;
  o.block_size = block;
  auto p = SwaPolicy::Parse(policy, block);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  o.policy = *p;
  o.cost.prefill_s_per_token = 5e-4;
  o.background_offload = false;  // puts in order, on the request's thread
  auto e = CachedEngine::Create(std::move(model), store, o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return std::move(*e);
}

std::vector<std::byte> Thin(const CacheLayout& lay, std::span<const std::byte> swa) {
  std::vector<std::byte> cp(lay.FamilyBlockBytes(Family::kCheckpoint));
  const Status s = cachestore::ThinSwaToCheckpoint(lay, swa, cp);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return cp;
}

struct Case {
  const char* model;
  uint32_t block;
  bool without_mtp = false;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << " block " << c.block << (c.without_mtp ? " without MTP" : "");
}

std::string CaseName(const ::testing::TestParamInfo<Case>& i) {
  std::string n = i.param.model;
  n = n.substr(0, n.find('.'));
  for (char& c : n)
    if (c == '-') c = '_';
  return n + "_block" + std::to_string(i.param.block) + (i.param.without_mtp ? "_no_mtp" : "");
}

class ThinSwaEngineTest : public ::testing::TestWithParam<Case> {};

// One cold request, stored twice: with full SWA (namespace 1) and with a checkpoint at every
// block end (namespace 2). Thinning each block's swa object gives that block's checkpoint.
TEST_P(ThinSwaEngineTest, ThinnedSwaIsTheEnginesCheckpoint) {
  const Case& c = GetParam();
  Fixture f;
  auto model = TinyModel(c.model, c.without_mtp);
  ASSERT_EQ(model->config().shape.n_mtp_layers, c.without_mtp ? 0 : 1);
  auto full = MakeEngine(f.rec.get(), model, c.block, "full", 1);
  auto cps = MakeEngine(f.rec.get(), model, c.block, "checkpoint:" + std::to_string(c.block), 2);
  const auto tokens = Tokens(3 * c.block + 37, 11);
  for (CachedEngine* e : {full.get(), cps.get()}) {
    auto r = e->RunTurn(tokens, {.max_new = 2});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->plan.kind, RestorePlan::kCold);
    ASSERT_TRUE(e->WaitOffload().ok());
  }
  const CacheLayout& lay = full->layout();
  const auto swa = f.rec->PutsOf(1, Family::kSwa);
  const auto cp = f.rec->PutsOf(2, Family::kCheckpoint);
  ASSERT_EQ(swa.size(), 3u);
  ASSERT_EQ(cp.size(), 3u);
  for (size_t b = 0; b < 3; ++b) {
    ASSERT_EQ(swa[b].key.block, cp[b].key.block) << "block " << b;
    ASSERT_EQ(cp[b].bytes.size(), lay.FamilyBlockBytes(Family::kCheckpoint));
    const auto thinned = Thin(lay, swa[b].bytes);
    EXPECT_EQ(std::memcmp(thinned.data(), cp[b].bytes.data(), thinned.size()), 0) << "block " << b;
    // Not vacuous: the windows hold data, and blocks differ.
    if (b > 0) {
      EXPECT_NE(cp[b].bytes, cp[b - 1].bytes);
    }
  }
}

// The next turn restores from compressed entries + a checkpoint the store thinned from the
// last block's swa object (the engine stored no checkpoint itself): bit-exact with cold.
TEST_P(ThinSwaEngineTest, RestoreFromThinnedCheckpointIsBitExact) {
  const Case& c = GetParam();
  Fixture f;
  auto model = TinyModel(c.model, c.without_mtp);
  auto e = MakeEngine(f.rec.get(), model, c.block, "full");
  const auto turn1 = Tokens(3 * c.block + 37, 12);
  auto r1 = e->RunTurn(turn1, {.max_new = 3});
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  ASSERT_TRUE(e->WaitOffload().ok());
  ASSERT_TRUE(f.rec->PutsOf(1, Family::kCheckpoint).empty());
  const auto swa = f.rec->PutsOf(1, Family::kSwa);
  ASSERT_EQ(swa.size(), 3u);
  const CacheLayout& lay = e->layout();
  const auto cp = Thin(lay, swa.back().bytes);
  ASSERT_TRUE(
      f.store->Put(ObjectKey{1, swa.back().key.block, Family::kCheckpoint}, lay.fingerprint(), cp)
          .ok());

  std::vector<int32_t> turn2 = turn1;
  turn2.insert(turn2.end(), r1->output.begin(), r1->output.end());
  const auto extra = Tokens(20, 13);
  turn2.insert(turn2.end(), extra.begin(), extra.end());
  const RestorePlan::Kind kind = RestorePlan::kCheckpoint;
  RequestState st;
  TurnOptions o;
  o.max_new = 4;
  o.force = &kind;
  o.offload = false;
  o.final_state = &st;
  auto r2 = e->RunTurn(turn2, o);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  ASSERT_EQ(r2->plan.kind, RestorePlan::kCheckpoint) << r2->plan.ToString();
  EXPECT_EQ(r2->plan.state_from, 3 * int64_t(c.block));
  EXPECT_EQ(r2->fallbacks, 0);
  EXPECT_EQ(r2->prefilled_tokens, int64_t(turn2.size()) - 3 * int64_t(c.block));

  RequestState cold_state;
  auto cold = e->RunCold(turn2, 4, &cold_state);
  ASSERT_TRUE(cold.ok()) << cold.status().ToString();
  EXPECT_EQ(r2->output, cold->output);
  ASSERT_EQ(r2->logits.size(), cold->logits.size());
  for (size_t i = 0; i < r2->logits.size(); ++i)
    EXPECT_TRUE(Same(r2->logits[i], cold->logits[i])) << "step " << i;
  EXPECT_TRUE(BitIdentical(st, cold_state));
  ASSERT_EQ(st.layers.size(), cold_state.layers.size());
  for (size_t l = 0; l < st.layers.size(); ++l)
    EXPECT_TRUE(Same(st.layers[l].swa, cold_state.layers[l].swa)) << "layer " << l << " swa";
  EXPECT_TRUE(Same(st.mtp_hidden, cold_state.mtp_hidden));
}

// The store itself thins: the engine stores full SWA in a store with thinning on, other
// objects push everything out of DRAM, and the swa objects reach NVMe as checkpoints (no swa
// left anywhere). The next turn restores from those checkpoints, bit-exactly.
TEST_P(ThinSwaEngineTest, StoreThinsOnDemotionAndRestoreIsBitExact) {
  const Case& c = GetParam();
  auto model = TinyModel(c.model, c.without_mtp);
  Fixture probe;
  const CacheLayout lay = MakeEngine(probe.rec.get(), model, c.block, "full")->layout();

  testing::TempDir dir;
  StoreConfig sc = testing::SmallConfig(dir.Sub("data"), DeviceKind::kMemory);
  sc.host.capacity_bytes = 4 << 20;
  sc.nvme.capacity_bytes = 64 << 20;
  sc.thin_swa_on_demotion = true;
  cachestore::TieredStoreOptions o;
  auto dev = cachestore::OpenFileDevice(DeviceKind::kMemory, testing::SegmentOptions(sc));
  ASSERT_TRUE(dev.ok());
  o.device = std::move(dev).value();
  o.layouts = {lay};
  auto opened = cachestore::OpenTieredStore(sc, std::move(o));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Store> store = std::move(opened).value();

  auto e = MakeEngine(store.get(), model, c.block, "full");
  const auto turn1 = Tokens(3 * c.block + 37, 14);
  auto r1 = e->RunTurn(turn1, {.max_new = 3});
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  ASSERT_TRUE(e->WaitOffload().ok());
  ASSERT_EQ(store->Stats()[Tier::kHost].families[int(Family::kSwa)].objects, 3u);

  const std::vector<std::byte> filler(512 << 10, std::byte{0x5a});
  for (uint64_t i = 0; i < 12; ++i)
    ASSERT_TRUE(store->Put(ObjectKey{99, BlockKey{i, i}, Family::kCsa}, 1, filler).ok());
  const StoreStats st = store->Stats();
  EXPECT_EQ(st[Tier::kHost].families[int(Family::kSwa)].objects, 0u);
  EXPECT_EQ(st[Tier::kNvme].families[int(Family::kSwa)].objects, 0u);
  EXPECT_EQ(st[Tier::kNvme].families[int(Family::kCheckpoint)].objects, 3u);
  uint64_t thinned = 0;
  store->VisitCounters([&](std::string_view name, uint64_t v) {
    if (name == "swa_thinned") thinned = v;
  });
  EXPECT_EQ(thinned, 3u);

  std::vector<int32_t> turn2 = turn1;
  turn2.insert(turn2.end(), r1->output.begin(), r1->output.end());
  const auto extra = Tokens(20, 15);
  turn2.insert(turn2.end(), extra.begin(), extra.end());
  RequestState st2;
  TurnOptions to;
  to.max_new = 4;
  to.offload = false;
  to.final_state = &st2;
  auto r2 = e->RunTurn(turn2, to);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  ASSERT_EQ(r2->plan.kind, RestorePlan::kCheckpoint) << r2->plan.ToString();
  EXPECT_EQ(r2->plan.state_from, 3 * int64_t(c.block));
  EXPECT_EQ(r2->fallbacks, 0);

  RequestState cold_state;
  auto cold = e->RunCold(turn2, 4, &cold_state);
  ASSERT_TRUE(cold.ok()) << cold.status().ToString();
  EXPECT_EQ(r2->output, cold->output);
  ASSERT_EQ(r2->logits.size(), cold->logits.size());
  for (size_t i = 0; i < r2->logits.size(); ++i)
    EXPECT_TRUE(Same(r2->logits[i], cold->logits[i])) << "step " << i;
  EXPECT_TRUE(BitIdentical(st2, cold_state));
}

INSTANTIATE_TEST_SUITE_P(Models, ThinSwaEngineTest,
                         ::testing::Values(Case{"v4-tiny.json", 128}, Case{"v4-tiny.json", 256},
                                           Case{"v4-tiny-hca.json", 256},
                                           Case{"v4-tiny.json", 256, true}),
                         CaseName);

}  // namespace
}  // namespace strata::engine
