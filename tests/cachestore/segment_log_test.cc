#include "cachestore/nvme/segment_log.h"

#include <gtest/gtest.h>

namespace strata::cachestore {
namespace {

constexpr uint64_t kSeg = 64 * 4096;

TEST(SegmentLogTest, AppendsThenOpensTheNextSegment) {
  SegmentLog log(kSeg, 3);
  EXPECT_EQ(*log.Allocate(4096), 0u);
  EXPECT_EQ(*log.Allocate(8192), 4096u);
  EXPECT_EQ(*log.Allocate(kSeg - 8192 - 4096), 12288u);
  EXPECT_EQ(*log.Allocate(4096), kSeg);  // first segment full: the second opens
  EXPECT_EQ(log.free_segments(), 1u);
  EXPECT_FALSE(log.Allocate(kSeg + 4096).has_value());
}

TEST(SegmentLogTest, FullLogNeedsReclaimOfLeastLiveSegment) {
  SegmentLog log(kSeg, 2);
  auto a = log.Allocate(kSeg / 2);
  auto b = log.Allocate(kSeg / 2);
  auto c = log.Allocate(kSeg);
  ASSERT_TRUE(a && b && c);
  EXPECT_FALSE(log.Allocate(4096).has_value());
  log.Release(*a, kSeg / 2);  // segment 0 now half live, segment 1 full
  EXPECT_EQ(*log.PickVictim(), 0u);
  log.AddReader(*b);
  EXPECT_EQ(*log.PickVictim(), 1u) << "a segment being read is not reclaimed";
  log.RemoveReader(*b);
  log.Release(*b, kSeg / 2);
  log.FreeSegment(0);
  EXPECT_EQ(*log.Allocate(4096), 0u);
  EXPECT_EQ(log.live_bytes(), kSeg + 4096);
}

TEST(SegmentLogTest, OneSegmentIsHeldInReserveForMovedRecords) {
  SegmentLog log(kSeg, 4);
  ASSERT_TRUE(log.Allocate(kSeg));
  ASSERT_TRUE(log.Allocate(kSeg));
  ASSERT_TRUE(log.Allocate(kSeg));
  EXPECT_EQ(log.free_segments(), 1u);
  EXPECT_FALSE(log.Allocate(4096).has_value()) << "the last free segment is the reserve";
  EXPECT_EQ(*log.Allocate(4096, /*use_reserve=*/true), 3 * kSeg);
  EXPECT_EQ(*log.Allocate(4096), 3 * kSeg + 4096) << "the active segment takes anything";
}

TEST(SegmentLogTest, RecoverySealsSegmentsWithLiveRecords) {
  SegmentLog log(kSeg, 3);
  log.AddLive(kSeg + 4096, 8192);
  log.FinishRecovery();
  EXPECT_EQ(log.free_segments(), 2u);
  EXPECT_EQ(log.live_bytes(), 8192u);
  EXPECT_EQ(*log.Allocate(4096), 0u);  // a free segment, never after the recovered record
}

}  // namespace
}  // namespace strata::cachestore
