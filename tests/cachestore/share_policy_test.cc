// The share policy (placement/cluster_policy.h) as the placement core applies it: which objects
// it queues for the tier shared across nodes, when, pinned until the uploader is done, and what
// an upload reads (the bytes of the host copy).
#include <gtest/gtest.h>

#include <cstring>

#include "cachestore/host/host_arena.h"
#include "cachestore/placement/cluster_policy.h"
#include "cachestore/placement/placement_core.h"

namespace strata::cachestore {
namespace {

using std::chrono::milliseconds;
constexpr NamespaceId kNs = 3;
constexpr uint64_t kFp = 9;

TEST(SharePolicyTest, DefaultSharesCompressedAtTheSecondUseAndCheckpointsAtPut) {
  ClusterSharePolicy p;
  EXPECT_FALSE(ShareAtUse(p, Family::kCsa, 2));  // disabled: nothing
  p.enabled = true;
  for (Family f : {Family::kCsa, Family::kCsaIndex, Family::kHca}) {
    EXPECT_FALSE(ShareAtUse(p, f, 1));
    EXPECT_TRUE(ShareAtUse(p, f, 2));
    EXPECT_FALSE(ShareAtUse(p, f, 3));  // once
  }
  EXPECT_TRUE(ShareAtUse(p, Family::kCheckpoint, 1));
  EXPECT_FALSE(ShareAtUse(p, Family::kCheckpoint, 2));
  for (uint32_t u = 1; u < 5; ++u) EXPECT_FALSE(ShareAtUse(p, Family::kSwa, u));
  p.full_swa = true;
  EXPECT_TRUE(ShareAtUse(p, Family::kSwa, 2));
  p.min_uses = 0;
  EXPECT_FALSE(p.Validate().ok());
}

class CoreShareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = HostArena::Create(8 << 20);
    ASSERT_TRUE(a.ok());
    arena_ = std::move(a).value();
    PlacementOptions o;
    o.config.host.capacity_bytes = 8 << 20;
    o.host = &arena_->space();
    o.host_base = arena_->base();
    o.clock = &clock_;
    o.share.enabled = true;
    auto c = PlacementCore::Create(std::move(o));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    core_ = std::move(c).value();
  }
  std::vector<std::byte> Bytes(size_t n, uint8_t seed) {
    std::vector<std::byte> b(n);
    for (size_t i = 0; i < n; ++i) b[i] = std::byte(uint8_t(seed + i * 29));
    return b;
  }
  Status Put(uint64_t block, Family f, const std::vector<std::byte>& b,
             PlacementCore::Origin o = PlacementCore::Origin::kClient) {
    return core_->Put({kNs, BlockKey{block, block}, f}, kFp, b.size(), b, {}, o);
  }
  std::vector<ObjectView> Get(uint64_t block, Family f) {
    std::vector<BlockKey> k{BlockKey{block, block}};
    auto v = core_->Get(kNs, kFp, k, FamilyMask{f});
    EXPECT_TRUE(v.ok());
    return v.ok() ? *v : std::vector<ObjectView>{};
  }
  ManualClock clock_;
  std::unique_ptr<HostArena> arena_;
  std::unique_ptr<PlacementCore> core_;
};

TEST_F(CoreShareTest, QueuesPickedObjectsOncePinnedWithTheirHostBytes) {
  const auto csa = Bytes(5000, 1), ckpt = Bytes(7000, 2);
  ASSERT_TRUE(Put(1, Family::kCsa, csa).ok());
  ASSERT_TRUE(Put(1, Family::kCheckpoint, ckpt).ok());
  // The checkpoint at its put; the csa not yet (one use).
  auto items = core_->TakeShares(16, milliseconds(0));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].key.family, Family::kCheckpoint);
  ASSERT_EQ(items[0].size, ckpt.size());
  EXPECT_EQ(std::memcmp(items[0].data, ckpt.data(), ckpt.size()), 0);
  // A Get that serves the csa is its second use: queued now, and never again.
  auto v = Get(1, Family::kCsa);
  ASSERT_EQ(v.size(), 1u);
  ASSERT_TRUE(v[0].found());
  core_->Release(std::vector<uint64_t>{v[0].pin});
  auto more = core_->TakeShares(16, milliseconds(0));
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].key.family, Family::kCsa);
  EXPECT_EQ(std::memcmp(more[0].data, csa.data(), csa.size()), 0);
  for (int i = 0; i < 3; ++i) {
    auto w = Get(1, Family::kCsa);
    core_->Release(std::vector<uint64_t>{w[0].pin});
  }
  EXPECT_TRUE(core_->TakeShares(16, milliseconds(0)).empty());
  // Queued objects stay pinned (their bytes in place) until the uploader is done with them.
  EXPECT_FALSE(core_->WaitShares(std::chrono::steady_clock::now() + milliseconds(20)));
  std::vector<uint64_t> pins{items[0].pin, more[0].pin};
  core_->SharesDone(pins);
  EXPECT_TRUE(core_->WaitShares(std::chrono::steady_clock::now() + milliseconds(20)));
  EXPECT_EQ(core_->Stats()[Tier::kHost].families[int(Family::kCsa)].objects +
                core_->Stats()[Tier::kHost].families[int(Family::kCheckpoint)].objects,
            2u);
}

TEST_F(CoreShareTest, ObjectsReadFromTheSharedTierAreNotUploadedBack) {
  const auto ckpt = Bytes(3000, 5), csa = Bytes(3000, 6);
  ASSERT_TRUE(Put(2, Family::kCheckpoint, ckpt, PlacementCore::Origin::kFromSharedTier).ok());
  ASSERT_TRUE(Put(2, Family::kCsa, csa, PlacementCore::Origin::kFromSharedTier).ok());
  auto v = Get(2, Family::kCsa);
  core_->Release(std::vector<uint64_t>{v[0].pin});
  EXPECT_TRUE(core_->TakeShares(16, milliseconds(0)).empty());
}

TEST_F(CoreShareTest, AnObjectReplacedBeforeItsUploadIsNotUploaded) {
  ASSERT_TRUE(Put(4, Family::kCheckpoint, Bytes(4000, 7)).ok());
  // Replaced while queued: the old copy is doomed (kept while pinned), not uploaded; the new
  // one is queued in its own right.
  const auto newer = Bytes(4000, 8);
  ASSERT_TRUE(Put(4, Family::kCheckpoint, newer).ok());
  auto items = core_->TakeShares(16, milliseconds(0));
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].data, nullptr);  // only its pin to give back
  ASSERT_NE(items[1].data, nullptr);
  EXPECT_EQ(std::memcmp(items[1].data, newer.data(), newer.size()), 0);
  std::vector<uint64_t> pins{items[0].pin, items[1].pin};
  core_->SharesDone(pins);
  EXPECT_TRUE(core_->WaitShares(std::chrono::steady_clock::now() + milliseconds(20)));
}

}  // namespace
}  // namespace strata::cachestore
