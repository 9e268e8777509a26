// Several threads doing Put / Get / Lookup / Release / Flush / Delete at once on overlapping
// keys, through a host tier small enough to evict and demote constantly. Run clean under the
// thread sanitizer build (STRATA_SANITIZE=thread).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include "tests/testing/store_fixture.h"
#include "tests/testing/store_objects.h"

namespace strata {
namespace {

TEST(ConcurrencyTest, MixedOperationsNeverServeWrongBytes) {
  testing::TempDir tmp;
  StoreConfig c = testing::SmallConfig(tmp.Sub("data"), DeviceKind::kAuto);
  c.host.capacity_bytes = 1 << 20;  // ~20 objects: constant eviction
  c.nvme.capacity_bytes = 8 << 20;  // and segment reclaim
  auto store = testing::OpenTestStore(c);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Store& s = **store;
  constexpr int kThreads = 4, kOps = 1500, kKeys = 96;
  std::atomic<int> wrong{0}, errors{0}, found{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 rng(uint32_t(t + 1));
      for (int op = 0; op < kOps; ++op) {
        const uint64_t i = rng() % kKeys;
        const ObjectKey k = testing::ObjectKeyOf(i);
        const int what = int(rng() % 100);
        if (what < 40) {
          if (!s.Put(k, 7, testing::ObjectBytes(i)).ok()) ++errors;
        } else if (what < 85) {
          auto v = s.Get(k.ns, 7, std::span(&k.block, 1), FamilyMask{k.family});
          if (!v.ok()) {
            ++errors;
            continue;
          }
          if ((*v)[0].found()) {
            ++found;
            const auto want = testing::ObjectBytes(i);
            if ((*v)[0].size != want.size() ||
                std::memcmp((*v)[0].data, want.data(), want.size()) != 0)
              ++wrong;
          }
          s.Release(std::span(&(*v)[0].pin, 1));
        } else if (what < 95) {
          std::vector<BlockKey> chain;
          for (uint64_t j = i; j < std::min<uint64_t>(kKeys, i + 8); ++j)
            chain.push_back(testing::ObjectKeyOf(j).block);
          if (!s.Lookup(k.ns, 7, chain, FamilyMask{}).ok()) ++errors;
        } else if (what < 99) {
          if (!s.Flush().ok()) ++errors;
        } else {
          (void)s.Stats();
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(found.load(), 100);
  ASSERT_TRUE(s.Flush().ok());
  // Everything the store still holds reads back intact after the storm, and it still holds
  // something (the 8 MiB NVMe tier keeps far more than the last few puts).
  int held = 0;
  for (uint64_t i = 0; i < kKeys; ++i) {
    const ObjectKey k = testing::ObjectKeyOf(i);
    auto v = s.Get(k.ns, 7, std::span(&k.block, 1), FamilyMask{k.family});
    ASSERT_TRUE(v.ok());
    if ((*v)[0].found()) {
      ++held;
      const auto want = testing::ObjectBytes(i);
      ASSERT_EQ((*v)[0].size, want.size()) << i;
      EXPECT_EQ(std::memcmp((*v)[0].data, want.data(), want.size()), 0) << i;
    }
    s.Release(std::span(&(*v)[0].pin, 1));
  }
  EXPECT_GT(held, 10);
}

}  // namespace
}  // namespace strata
