// Eviction policies, by behaviour: the order victims come in, scan resistance, value and aging,
// and the interface contract every policy keeps (victims are tracked, skips come back last,
// unknown ids and repeated tracks are harmless), checked against a reference set on random
// operation sequences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "cachestore/placement/cost_policy.h"
#include "cachestore/placement/eviction_policy.h"
#include "cachestore/placement/s3fifo_policy.h"

namespace strata::cachestore {
namespace {

constexpr uint64_t kBlock = 4096;

ObjectFacts Facts(uint64_t bytes, double value_per_byte = 0, uint32_t depth = 0) {
  ObjectFacts f;
  f.bytes = bytes;
  f.value_per_byte = value_per_byte;
  f.depth = depth;
  return f;
}

std::unique_ptr<EvictionPolicy> Make(std::string_view name) {
  auto p = MakeEvictionPolicy(name);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(p).value();
}

// Evicts `n` victims the way the core does (Victim, then Untrack) and returns them in order.
std::vector<uint64_t> EvictN(EvictionPolicy& p, size_t n) {
  std::vector<uint64_t> out;
  for (size_t i = 0; i < n; ++i) {
    auto v = p.Victim();
    if (!v) break;
    out.push_back(*v);
    p.Untrack(*v);
  }
  return out;
}

// A byte-capacity cache driving a policy as the placement core does: a hit touches the object;
// a miss evicts victims until the object fits, then tracks it.
class SimCache {
 public:
  SimCache(EvictionPolicy& policy, uint64_t capacity) : policy_(policy), capacity_(capacity) {}

  // True on a hit.
  bool Access(uint64_t id, const ObjectFacts& facts) {
    if (held_.count(id)) {
      policy_.Touch(id);
      return true;
    }
    while (used_ + facts.bytes > capacity_) {
      auto v = policy_.Victim();
      if (!v || !held_.count(*v)) {
        ADD_FAILURE() << policy_.name() << ": victim " << (v ? std::to_string(*v) : "none")
                      << " is not held";
        return false;
      }
      policy_.Untrack(*v);
      used_ -= held_[*v];
      held_.erase(*v);
      evicted_.push_back(*v);
    }
    policy_.Track(id, facts);
    held_[id] = facts.bytes;
    used_ += facts.bytes;
    return false;
  }
  bool Holds(uint64_t id) const { return held_.count(id) > 0; }
  const std::vector<uint64_t>& evicted() const { return evicted_; }

 private:
  EvictionPolicy& policy_;
  const uint64_t capacity_;
  uint64_t used_ = 0;
  std::unordered_map<uint64_t, uint64_t> held_;
  std::vector<uint64_t> evicted_;
};

// --- factory ---------------------------------------------------------------------------------

TEST(PolicyFactoryTest, MakesEveryNamedPolicyAndRejectsOthers) {
  for (std::string_view name : {"lru", "s3fifo", "cost"}) {
    auto p = MakeEvictionPolicy(name);
    ASSERT_TRUE(p.ok()) << name;
    EXPECT_EQ((*p)->name(), name);
  }
  auto bad = MakeEvictionPolicy("arc");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("lru, s3fifo, cost"), std::string::npos)
      << bad.status().message();
}

// --- LRU -------------------------------------------------------------------------------------

TEST(LruPolicyTest, EvictsLeastRecentlyUsedFirstAndSkipCountsAsUse) {
  LruPolicy p;
  for (uint64_t id : {1, 2, 3, 4}) p.Track(id, Facts(kBlock));
  p.Touch(1);
  p.Touch(3);
  EXPECT_EQ(p.Victim(), 2u);
  p.Skip(2);  // now the most recent
  EXPECT_EQ(EvictN(p, 4), (std::vector<uint64_t>{4, 1, 3, 2}));
}

// --- S3-FIFO ---------------------------------------------------------------------------------

// The paper's headline property: a working set used twice survives a one-pass scan of three
// times the cache, where LRU loses all of it.
TEST(S3FifoPolicyTest, WorkingSetUsedTwiceSurvivesAScanLargerThanTheCache) {
  constexpr uint64_t kCapacity = 100 * kBlock, kWorkingSet = 40, kScan = 300;
  auto run = [&](EvictionPolicy& p) {
    SimCache cache(p, kCapacity);
    for (uint64_t id = 0; id < kWorkingSet; ++id) cache.Access(id, Facts(kBlock));
    for (uint64_t id = 0; id < kWorkingSet; ++id) EXPECT_TRUE(cache.Access(id, Facts(kBlock)));
    for (uint64_t id = 1000; id < 1000 + kScan; ++id) EXPECT_FALSE(cache.Access(id, Facts(kBlock)));
    uint64_t hits = 0;
    for (uint64_t id = 0; id < kWorkingSet; ++id) hits += cache.Access(id, Facts(kBlock));
    return hits;
  };
  S3FifoPolicy s3;
  LruPolicy lru;
  EXPECT_EQ(run(s3), kWorkingSet);
  EXPECT_EQ(run(lru), 0u);
}

TEST(S3FifoPolicyTest, OneHitWondersLeaveFromTheSmallQueueFirst) {
  S3FifoPolicy p;
  for (uint64_t id : {1, 2, 3, 4, 5}) p.Track(id, Facts(kBlock));
  for (uint64_t id : {1, 2, 3, 4, 5}) p.Touch(id);
  for (uint64_t id : {11, 12, 13, 14, 15}) p.Track(id, Facts(kBlock));
  // The used objects are older, but they move on to the main queue; the unused ones go.
  EXPECT_EQ(EvictN(p, 5), (std::vector<uint64_t>{11, 12, 13, 14, 15}));
  EXPECT_EQ(EvictN(p, 5), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(p.size(), 0u);
}

TEST(S3FifoPolicyTest, GhostHitGoesToMainButADeletedObjectStartsOver) {
  S3FifoPolicy p;
  for (uint64_t id = 1; id <= 10; ++id) p.Track(id, Facts(kBlock));
  ASSERT_EQ(p.Victim(), 1u);
  p.Untrack(1);  // evicted from the small queue: its id is remembered
  p.Untrack(2);  // deleted, not evicted: forgotten
  p.Track(1, Facts(kBlock));
  p.Track(2, Facts(kBlock));
  // 1 is in the main queue and outlives every object of the small queue, 2 included.
  EXPECT_EQ(EvictN(p, 10), (std::vector<uint64_t>{3, 4, 5, 6, 7, 8, 9, 10, 2, 1}));
}

TEST(S3FifoPolicyTest, MainQueueGivesUsedObjectsAnotherRound) {
  S3FifoPolicy p;
  for (uint64_t id = 1; id <= 4; ++id) p.Track(id, Facts(kBlock));
  for (uint64_t id = 1; id <= 4; ++id) p.Touch(id);
  p.Track(5, Facts(kBlock));
  EXPECT_EQ(EvictN(p, 1), (std::vector<uint64_t>{5}));  // 1..4 moved on to the main queue
  p.Touch(2);  // used in the main queue: goes round once more
  EXPECT_EQ(EvictN(p, 4), (std::vector<uint64_t>{1, 3, 4, 2}));
}

TEST(S3FifoPolicyTest, UsesInTheSmallQueueOnlyEarnTheMoveToMain) {
  // As in the paper's 2-bit counters: an object's access bits are cleared when it moves on to
  // the main queue, so extra uses while in the small queue buy no extra round in the main one.
  S3FifoPolicy p;
  for (uint64_t id = 1; id <= 4; ++id) p.Track(id, Facts(kBlock));
  for (uint64_t id = 1; id <= 4; ++id) p.Touch(id);
  p.Touch(2);
  p.Touch(2);
  EXPECT_EQ(EvictN(p, 4), (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST(S3FifoPolicyTest, LargeScanObjectsDoNotPushOutSmallHotOnes) {
  // Byte-aware: the small queue's share is counted in bytes, so a few huge one-time objects
  // leave from it before any of the many small hot objects in the main queue.
  S3FifoPolicy p;
  SimCache cache(p, 64 * kBlock);
  for (uint64_t id = 0; id < 32; ++id) cache.Access(id, Facts(kBlock));
  for (uint64_t id = 0; id < 32; ++id) cache.Access(id, Facts(kBlock));
  for (uint64_t id = 100; id < 120; ++id) cache.Access(id, Facts(16 * kBlock));
  for (uint64_t id = 0; id < 32; ++id) EXPECT_TRUE(cache.Holds(id)) << id;
}

// --- cost (GDSF) -----------------------------------------------------------------------------

TEST(CostPolicyTest, KeepsHighValuePerByteOverLowOfTheSameSize) {
  CostPolicy p;
  p.Track(1, Facts(kBlock, 1e-6));
  p.Track(2, Facts(kBlock, 1e-8));
  p.Track(3, Facts(kBlock, 1e-7));
  EXPECT_EQ(EvictN(p, 3), (std::vector<uint64_t>{2, 3, 1}));
}

TEST(CostPolicyTest, LargeLowValueObjectsGoFirst) {
  CostPolicy p;
  // Unknown value: size-aware GDSF, the largest first.
  p.Track(1, Facts(256 * kBlock));
  p.Track(2, Facts(kBlock));
  p.Track(3, Facts(16 * kBlock));
  EXPECT_EQ(EvictN(p, 3), (std::vector<uint64_t>{1, 3, 2}));
  // Known value: the large object saving little per byte before the small valuable one.
  p.Track(4, Facts(kBlock, 2e-7));
  p.Track(5, Facts(256 * kBlock, 1e-8));
  EXPECT_EQ(EvictN(p, 2), (std::vector<uint64_t>{5, 4}));
}

TEST(CostPolicyTest, UsesRaisePriority) {
  CostPolicy p;
  p.Track(1, Facts(kBlock, 1e-6));
  p.Track(2, Facts(kBlock, 1e-6));
  p.Track(3, Facts(kBlock, 2.5e-6));
  p.Touch(1);
  p.Touch(1);  // 3 uses of 1e-6 beat 1 use of 2.5e-6
  EXPECT_EQ(EvictN(p, 3), (std::vector<uint64_t>{2, 3, 1}));
}

TEST(CostPolicyTest, AgingLetsAnOldValuableObjectGoEventually) {
  CostPolicy p;
  SimCache cache(p, 10 * kBlock);
  constexpr uint64_t kValuable = 999;
  cache.Access(kValuable, Facts(kBlock, 3e-6));  // used once, worth 3 units
  // A stream of fresh objects, each used twice, worth 1 unit per use.
  for (uint64_t id = 0; id < 100; ++id) {
    cache.Access(id, Facts(kBlock, 1e-6));
    cache.Access(id, Facts(kBlock, 1e-6));
  }
  const auto& ev = cache.evicted();
  auto at = std::find(ev.begin(), ev.end(), kValuable);
  ASSERT_NE(at, ev.end()) << "never aged out";
  EXPECT_GT(at - ev.begin(), 0) << "kept over cheaper objects at first";
  EXPECT_GT(p.age(), 0.0);
}

TEST(CostPolicyTest, EqualPriorityEvictsTheDeeperBlockThenTheLowerId) {
  CostPolicy p;
  p.Track(7, Facts(kBlock, 1e-6, 0));
  p.Track(5, Facts(kBlock, 1e-6, 2));
  p.Track(6, Facts(kBlock, 1e-6, 1));
  p.Track(4, Facts(kBlock, 1e-6, 0));
  EXPECT_EQ(EvictN(p, 4), (std::vector<uint64_t>{5, 6, 4, 7}));
}

TEST(CostPolicyTest, TrackingAgainUpdatesFacts) {
  CostPolicy p;
  p.Track(1, Facts(kBlock, 1e-6));
  p.Track(2, Facts(kBlock, 2e-6));
  EXPECT_EQ(p.Victim(), 1u);
  p.Track(1, Facts(kBlock, 3e-6));
  EXPECT_EQ(p.size(), 2u);
  EXPECT_EQ(p.Victim(), 2u);
  ObjectFacts hit = Facts(kBlock, 1e-6);
  hit.hits = 4;  // five uses' worth: 5e-6 beats 3e-6
  p.Track(2, hit);
  EXPECT_EQ(EvictN(p, 2), (std::vector<uint64_t>{1, 2}));
}

TEST(CostPolicyTest, UnknownOrBrokenValueFallsBackToSize) {
  EXPECT_DOUBLE_EQ(CostPolicy::UseValue(Facts(1024, 0)), 1.0 / 1024);
  EXPECT_DOUBLE_EQ(CostPolicy::UseValue(Facts(1024, -1)), 1.0 / 1024);
  EXPECT_DOUBLE_EQ(CostPolicy::UseValue(Facts(1024, std::nan(""))), 1.0 / 1024);
  EXPECT_DOUBLE_EQ(CostPolicy::UseValue(Facts(0, 0)), 1.0);
  EXPECT_DOUBLE_EQ(CostPolicy::UseValue(Facts(1024, 2e-6)), 2e-6);
}

// --- every policy ----------------------------------------------------------------------------

class EveryPolicyTest : public testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<EvictionPolicy> p_ = Make(GetParam());
};

TEST_P(EveryPolicyTest, EmptyPolicyHasNoVictimAndIgnoresUnknownIds) {
  EXPECT_EQ(p_->Victim(), std::nullopt);
  p_->Touch(1);
  p_->Skip(1);
  p_->Untrack(1);
  EXPECT_EQ(p_->size(), 0u);
  EXPECT_EQ(p_->Victim(), std::nullopt);
}

TEST_P(EveryPolicyTest, UntrackOfAnUnknownIdChangesNothing) {
  p_->Track(1, Facts(kBlock));
  p_->Track(2, Facts(kBlock));
  p_->Untrack(99);
  EXPECT_EQ(p_->size(), 2u);
  auto victims = EvictN(*p_, 3);
  std::sort(victims.begin(), victims.end());
  EXPECT_EQ(victims, (std::vector<uint64_t>{1, 2}));
}

TEST_P(EveryPolicyTest, TrackingATrackedIdKeepsOneEntry) {
  p_->Track(1, Facts(kBlock, 1e-6));
  p_->Track(1, Facts(4 * kBlock, 2e-6));
  EXPECT_EQ(p_->size(), 1u);
  EXPECT_EQ(p_->Victim(), 1u);
  p_->Untrack(1);
  EXPECT_EQ(p_->size(), 0u);
  EXPECT_EQ(p_->Victim(), std::nullopt);
}

// Skipping every victim in turn offers each object once before any comes back.
TEST_P(EveryPolicyTest, SkippedObjectsComeBackOnlyAfterTheOthers) {
  for (uint64_t id = 0; id < 20; ++id) p_->Track(id, Facts(kBlock * (1 + id % 3), 1e-7 * (id % 5)));
  for (uint64_t id = 0; id < 20; id += 3) p_->Touch(id);
  std::set<uint64_t> offered;
  for (size_t i = 0; i < 20; ++i) {
    auto v = p_->Victim();
    ASSERT_TRUE(v.has_value());
    ASSERT_LT(*v, 20u);
    EXPECT_TRUE(offered.insert(*v).second) << *v << " offered twice";
    p_->Skip(*v);
  }
  EXPECT_EQ(p_->size(), 20u);
}

// A skipped object is set aside only until the next eviction; then it rejoins the order as if
// reinserted there, ahead of objects tracked after that eviction.
TEST_P(EveryPolicyTest, SkippedObjectRejoinsAtTheNextEviction) {
  for (uint64_t id = 1; id <= 5; ++id) p_->Track(id, Facts(kBlock, 1e-6));
  ASSERT_EQ(p_->Victim(), 1u);
  p_->Skip(1);
  ASSERT_EQ(p_->Victim(), 2u);
  p_->Untrack(2);
  p_->Track(6, Facts(kBlock, 1e-6));
  EXPECT_EQ(EvictN(*p_, 6), (std::vector<uint64_t>{3, 4, 5, 1, 6}));
}

// A core that skips pinned objects finds an evictable one within size() offers, every time.
TEST_P(EveryPolicyTest, PinnedObjectsDoNotHideEvictableOnes) {
  std::mt19937_64 rng(7);
  for (uint64_t id = 0; id < 30; ++id) p_->Track(id, Facts(kBlock, 1e-7 * double(rng() % 9)));
  for (int i = 0; i < 60; ++i) p_->Touch(rng() % 30);
  auto pinned = [](uint64_t id) { return id % 2 == 0; };
  for (int evictions = 0; evictions < 15; ++evictions) {
    bool evicted = false;
    for (size_t tries = p_->size(); tries > 0 && !evicted; --tries) {
      auto v = p_->Victim();
      ASSERT_TRUE(v.has_value());
      if (pinned(*v)) {
        p_->Skip(*v);
      } else {
        p_->Untrack(*v);
        evicted = true;
      }
    }
    ASSERT_TRUE(evicted) << "eviction " << evictions;
  }
  EXPECT_EQ(p_->size(), 15u);
  auto v = p_->Victim();
  ASSERT_TRUE(v.has_value());
  EXPECT_TRUE(pinned(*v));
}

// Random operations (ids from a small range so they collide) against a reference set: a victim
// is always tracked, size() always matches, and the same operations give the same victims.
std::vector<uint64_t> RandomRun(EvictionPolicy& p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::map<uint64_t, uint64_t> ref;  // id -> bytes
  std::vector<uint64_t> log;
  for (int op = 0; op < 20000; ++op) {
    const uint64_t id = rng() % 64;
    switch (rng() % 8) {
      case 0:
      case 1: {
        ObjectFacts f =
            Facts(1 + rng() % (1 << 20), (rng() % 4 == 0) ? 0 : 1e-9 * double(rng() % 1000),
                  uint32_t(rng() % 8));
        f.hits = uint32_t(rng() % 3);
        p.Track(id, f);
        ref[id] = f.bytes;
        break;
      }
      case 2:
      case 3:
        p.Touch(id);
        break;
      case 4:
        p.Untrack(id);  // delete, possibly of an unknown id
        ref.erase(id);
        break;
      default: {  // ask for a victim; evict it or skip it (a skipped one may be deleted next)
        auto v = p.Victim();
        if (ref.empty()) {
          EXPECT_EQ(v, std::nullopt) << p.name() << " op " << op;
          break;
        }
        if (!v.has_value() || !ref.count(*v)) {
          ADD_FAILURE() << p.name() << " op " << op << ": victim is not tracked";
          return log;
        }
        log.push_back(*v);
        if (rng() % 3 == 0) {
          p.Skip(*v);
        } else {
          p.Untrack(*v);
          ref.erase(*v);
        }
      }
    }
    if (p.size() != ref.size()) {
      ADD_FAILURE() << p.name() << " op " << op << ": size " << p.size() << " != " << ref.size();
      return log;
    }
  }
  return log;
}

TEST_P(EveryPolicyTest, RandomOperationsKeepVictimsTrackedAndRunsDecideTheSame) {
  for (uint64_t seed : {1, 2, 3}) {
    auto a = Make(GetParam());
    auto b = Make(GetParam());
    const auto log_a = RandomRun(*a, seed);
    const auto log_b = RandomRun(*b, seed);
    EXPECT_GT(log_a.size(), 1000u) << "seed " << seed;
    EXPECT_EQ(log_a, log_b) << "seed " << seed << ": two runs decided differently";
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, EveryPolicyTest, testing::Values("lru", "s3fifo", "cost"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace strata::cachestore
