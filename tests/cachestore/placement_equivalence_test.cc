// Simulation mode runs the real placement code: one operation sequence, cut from the shipped
// Mooncake trace, goes through the real store (memory device) and through SimStore, and the two
// must produce the identical decision log (every admission, eviction, demotion, thinning,
// promotion and reclaim, with tier and object), for every eviction policy. The sequence forces
// evictions, demotions, SWA thinning, reclaim, pinned objects and a failed write, and the test
// checks that each of them happened, so it cannot pass on a sequence that decides nothing.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cachestore/sim/sim_store.h"
#include "tests/testing/store_fixture.h"

namespace strata::cachestore {
namespace {

struct TraceRequest {
  uint64_t timestamp_ms = 0;
  std::vector<uint64_t> hash_ids;
};

// The first `n` requests of the shipped trace (next to the checkout; STRATA_TRACES_DIR
// overrides), or an empty list when it is not there.
std::vector<TraceRequest> LoadTrace(size_t n) {
  const char* env = std::getenv("STRATA_TRACES_DIR");
  const std::string dir =
      env ? std::string(env) : std::string(STRATA_SOURCE_DIR) + "/../shared/traces";
  std::ifstream in(dir + "/mooncake_conversation_trace.jsonl");
  std::vector<TraceRequest> out;
  std::string line;
  while (out.size() < n && std::getline(in, line)) {
    TraceRequest r;
    auto ts = line.find("\"timestamp\":");
    auto ids = line.find("\"hash_ids\": [");
    if (ts == std::string::npos || ids == std::string::npos) continue;
    r.timestamp_ms = std::strtoull(line.c_str() + ts + 12, nullptr, 10);
    const char* p = line.c_str() + ids + 13;
    while (*p && *p != ']') {
      char* end = nullptr;
      r.hash_ids.push_back(std::strtoull(p, &end, 10));
      p = end;
      while (*p == ',' || *p == ' ') ++p;
    }
    out.push_back(std::move(r));
  }
  return out;
}

// A tiny V4-like layout (2 main layers + MTP), so objects are small and many fit a test store.
CacheLayout TestLayout() {
  ModelShape s;
  s.name = "equivalence-tiny";
  s.vocab_size = 64;
  s.dim = 16;
  s.n_layers = 2;
  s.n_mtp_layers = 1;
  s.n_heads = 2;
  s.head_dim = 128;
  s.rope_head_dim = 64;
  s.window_size = 128;
  s.index_n_heads = 2;
  s.index_head_dim = 32;
  s.index_topk = 4;
  s.hc_mult = 2;
  s.compress_ratios = {128, 4, 0};
  LayoutOptions o;
  o.block_size = 256;
  auto l = CacheLayout::Make(s, o);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return *l;
}

BlockKey KeyOf(uint64_t hash_id) { return BlockKey{hash_id * 0x9e3779b97f4a7c15ull + 1, hash_id}; }

// One side of the comparison: the real store or the simulator, behind the same few calls.
class Side {
 public:
  virtual ~Side() = default;
  virtual void SetTime(uint64_t micros) = 0;
  virtual size_t Lookup(std::span<const BlockKey> keys, FamilyMask required) = 0;
  // Returns the pins and the tiers objects were served from.
  virtual std::vector<uint64_t> Get(std::span<const BlockKey> keys, FamilyMask families,
                                    std::vector<Tier>& served) = 0;
  virtual void Release(std::span<const uint64_t> pins) = 0;
  virtual Status Put(const ObjectKey& key, uint64_t size, const PutHints& hints) = 0;
  virtual Status Flush() = 0;
  virtual void FailWrites(bool on) = 0;
};

constexpr NamespaceId kNs = 7;

class RealSide final : public Side {
 public:
  RealSide(const StoreConfig& c, const CacheLayout& layout, DecisionLog* log) {
    TieredStoreOptions o;
    auto dev = OpenFileDevice(DeviceKind::kMemory, testing::SegmentOptions(c));
    EXPECT_TRUE(dev.ok());
    auto f = std::make_unique<testing::FaultDevice>(std::move(dev).value());
    fault_ = f.get();
    o.device = std::move(f);
    o.clock = &clock_;
    o.decision_log = log;
    o.layouts = {layout};
    auto s = OpenTieredStore(c, std::move(o));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    fp_ = layout.fingerprint();
  }
  void SetTime(uint64_t micros) override { clock_.Set(micros); }
  size_t Lookup(std::span<const BlockKey> keys, FamilyMask required) override {
    auto r = store_->Lookup(kNs, fp_, keys, required);
    EXPECT_TRUE(r.ok());
    return r->hit_blocks;
  }
  std::vector<uint64_t> Get(std::span<const BlockKey> keys, FamilyMask families,
                            std::vector<Tier>& served) override {
    auto r = store_->Get(kNs, fp_, keys, families);
    EXPECT_TRUE(r.ok());
    std::vector<uint64_t> pins;
    for (const ObjectView& v : *r) {
      served.push_back(v.found() ? v.served_from : Tier::kNone);
      if (v.pin) pins.push_back(v.pin);
    }
    return pins;
  }
  void Release(std::span<const uint64_t> pins) override { store_->Release(pins); }
  Status Put(const ObjectKey& key, uint64_t size, const PutHints& hints) override {
    std::vector<std::byte> bytes(size, std::byte(key.block.lo & 0xff));
    return store_->Put(key, fp_, bytes, hints);
  }
  Status Flush() override { return store_->Flush(); }
  void FailWrites(bool on) override { fault_->write_errno = on ? EIO : 0; }

 private:
  ManualClock clock_;
  testing::FaultDevice* fault_ = nullptr;
  std::unique_ptr<Store> store_;
  uint64_t fp_ = 0;
};

class SimSide final : public Side {
 public:
  SimSide(const StoreConfig& c, const CacheLayout& layout, DecisionLog* log) {
    SimConfig sc;
    sc.store = c;
    sc.layouts = {layout};
    auto s = SimStore::Open(sc, log);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    sim_ = std::move(s).value();
    fp_ = layout.fingerprint();
  }
  void SetTime(uint64_t micros) override { sim_->SetTime(micros); }
  size_t Lookup(std::span<const BlockKey> keys, FamilyMask required) override {
    auto r = sim_->Lookup(kNs, fp_, keys, required);
    EXPECT_TRUE(r.ok());
    return r->hit_blocks;
  }
  std::vector<uint64_t> Get(std::span<const BlockKey> keys, FamilyMask families,
                            std::vector<Tier>& served) override {
    auto r = sim_->Get(kNs, fp_, keys, families);
    EXPECT_TRUE(r.ok());
    std::vector<uint64_t> pins;
    for (const SimObject& o : *r) {
      served.push_back(o.served_from);
      if (o.pin) pins.push_back(o.pin);
    }
    return pins;
  }
  void Release(std::span<const uint64_t> pins) override { sim_->Release(pins); }
  Status Put(const ObjectKey& key, uint64_t size, const PutHints& hints) override {
    return sim_->Put(key, fp_, size, hints);
  }
  Status Flush() override { return sim_->Flush(); }
  void FailWrites(bool on) override { sim_->InjectNvmeWriteErrors(on); }
  SimStore& sim() { return *sim_; }

 private:
  std::unique_ptr<SimStore> sim_;
  uint64_t fp_ = 0;
};

// Drives `side` with the requests; returns every Get's served tiers (they must agree too).
std::vector<Tier> Drive(Side& side, const std::vector<TraceRequest>& trace,
                        const CacheLayout& layout) {
  const FamilyMask compressed{Family::kCsa, Family::kCsaIndex, Family::kHca};
  std::vector<Tier> served;
  std::map<size_t, std::vector<uint64_t>> held;  // pins released a few requests later
  for (size_t r = 0; r < trace.size(); ++r) {
    const TraceRequest& req = trace[r];
    side.SetTime(req.timestamp_ms * 1000 + r);
    std::vector<BlockKey> keys;
    for (uint64_t id : req.hash_ids) keys.push_back(KeyOf(id));
    const size_t hit = side.Lookup(keys, compressed);
    // Restore: compressed families of the hit, and the SWA or checkpoint of its last block.
    std::vector<uint64_t> pins = side.Get(std::span(keys).first(hit), compressed, served);
    if (hit > 0) {
      auto more = side.Get(std::span(keys).subspan(hit - 1, 1),
                           FamilyMask{Family::kSwa, Family::kCheckpoint}, served);
      pins.insert(pins.end(), more.begin(), more.end());
    }
    if (r % 7 == 3) {
      held[r + 3] = std::move(pins);  // pinned across the next requests
    } else {
      side.Release(pins);
    }
    if (auto it = held.find(r); it != held.end()) {
      side.Release(it->second);
      held.erase(it);
    }
    // Now and then an old conversation comes back, long after DRAM forgot it.
    if (r % 10 == 9 && r >= 30) {
      std::vector<BlockKey> old;
      for (uint64_t id : trace[r - 30].hash_ids) old.push_back(KeyOf(id));
      const size_t old_hit = side.Lookup(old, compressed);
      auto old_pins = side.Get(std::span(old).first(old_hit), compressed, served);
      side.Release(old_pins);
    }
    // A write fails for the whole of one request.
    side.FailWrites(r == trace.size() / 2);
    for (size_t b = hit; b < keys.size(); ++b) {
      PutHints h;
      h.depth = uint32_t(b);
      h.has_parent = b > 0;
      if (b > 0) h.parent = keys[b - 1];
      h.value_per_byte = 1e-9 * double(b + 1);
      for (Family f : kAllFamilies) {
        const uint64_t size = layout.FamilyBlockBytes(f);
        if (size == 0) continue;
        if (f == Family::kCheckpoint && b + 1 != keys.size()) continue;  // at the request end
        Status s = side.Put(ObjectKey{kNs, keys[b], f}, size, h);
        EXPECT_TRUE(s.ok()) << s.ToString();
      }
    }
    side.FailWrites(false);
    if (r % 50 == 49) {
      EXPECT_TRUE(side.Flush().ok());
    }
  }
  for (auto& [at, pins] : held) side.Release(pins);
  return served;
}

// Requests from the trace, or (without it) a synthetic conversation mix: sessions that extend
// their previous turn, sharing a system prompt.
std::vector<TraceRequest> Requests(size_t n) {
  auto trace = LoadTrace(n);
  if (!trace.empty()) return trace;
  std::vector<TraceRequest> out;
  std::vector<std::vector<uint64_t>> sessions(12);
  uint64_t next = 1000;
  for (size_t r = 0; r < n; ++r) {
    auto& s = sessions[(r * 5) % sessions.size()];
    if (s.empty()) s.push_back(0);
    for (size_t k = 0; k < 1 + r % 3; ++k) s.push_back(next++);
    out.push_back(TraceRequest{r * 100, s});
  }
  return out;
}

class PlacementEquivalenceTest : public ::testing::TestWithParam<const char*> {};

TEST_P(PlacementEquivalenceTest, RealStoreAndSimulatorDecideAlike) {
  const CacheLayout layout = TestLayout();
  testing::TempDir dir;
  StoreConfig c;
  c.host.capacity_bytes = 3 << 20;
  c.host.prefault = false;
  c.host.eviction = GetParam();
  c.nvme.data_dir = dir.path();
  c.nvme.segment_bytes = 1 << 20;
  c.nvme.capacity_bytes = 8 << 20;
  c.nvme.device = DeviceKind::kMemory;
  c.nvme.queue_depth = 8;
  c.thin_swa_on_demotion = true;

  const auto requests = Requests(300);
  DecisionLog real_log, sim_log;
  std::vector<Tier> real_served, sim_served;
  {
    RealSide real(c, layout, &real_log);
    real_served = Drive(real, requests, layout);
  }
  {
    SimSide sim(c, layout, &sim_log);
    sim_served = Drive(sim, requests, layout);
    // The stats kept up to date with every change agree with a count of every object.
    const StoreStats kept = sim.sim().Stats(), counted = sim.sim().RecountStats();
    for (Tier t : {Tier::kHost, Tier::kNvme})
      for (int f = 0; f < kNumFamilies; ++f) {
        EXPECT_EQ(kept[t].families[f].objects, counted[t].families[f].objects);
        EXPECT_EQ(kept[t].families[f].bytes, counted[t].families[f].bytes);
      }
    EXPECT_GT(counted[Tier::kNvme].families[int(Family::kCheckpoint)].objects, 0u);
  }

  ASSERT_FALSE(real_log.entries.empty());
  const size_t n = std::min(real_log.entries.size(), sim_log.entries.size());
  for (size_t i = 0; i < n; ++i)
    ASSERT_EQ(real_log.entries[i], sim_log.entries[i])
        << "decision " << i << ": real store " << real_log.entries[i].ToString() << ", simulator "
        << sim_log.entries[i].ToString();
  EXPECT_EQ(real_log.entries.size(), sim_log.entries.size());
  EXPECT_EQ(real_served, sim_served);

  std::map<DecisionKind, size_t> kinds;
  for (const Decision& d : real_log.entries) ++kinds[d.kind];
  for (DecisionKind k :
       {DecisionKind::kAdmit, DecisionKind::kEvict, DecisionKind::kDropCopy, DecisionKind::kDemote,
        DecisionKind::kThin, DecisionKind::kPromote, DecisionKind::kReclaim,
        DecisionKind::kReclaimDrop, DecisionKind::kWriteFailed, DecisionKind::kWriteBack})
    EXPECT_GT(kinds[k], 0u) << "the sequence never made a '" << DecisionKindName(k)
                            << "' decision; make it harder";
  size_t from_nvme = 0;
  for (Tier t : real_served) from_nvme += t == Tier::kNvme;
  EXPECT_GT(from_nvme, 0u);
  std::string summary;
  for (auto [k, count] : kinds)
    summary += std::string(DecisionKindName(k)) + "=" + std::to_string(count) + " ";
  RecordProperty("decisions", summary);
  std::printf("decisions: %s\n", summary.c_str());
}

INSTANTIATE_TEST_SUITE_P(Policies, PlacementEquivalenceTest,
                         ::testing::Values("lru", "s3fifo", "cost"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace strata::cachestore
