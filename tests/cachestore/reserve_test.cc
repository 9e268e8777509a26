// Put in place (TieredStore::Reserve / Commit / Abort) and host-copy checksums: the daemon's
// data plane, where clients write into the shared arena and may change bytes after Commit.
#include <gtest/gtest.h>

#include <cstring>

#include "tests/testing/store_fixture.h"

namespace strata {
namespace {

using cachestore::TieredStore;
using cachestore::TieredStoreOptions;

constexpr uint64_t kFp = 0x4242;
constexpr NamespaceId kNs = 9;

BlockKey K(uint64_t i) { return BlockKey{0x51, i}; }

class ReserveTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> Open(bool checksums, bool nvme = true) {
    StoreConfig c = testing::SmallConfig(nvme ? dir_.Sub("data") : "", DeviceKind::kPosix);
    TieredStoreOptions o;
    o.host_checksums = checksums;
    auto s = cachestore::OpenTieredStore(c, std::move(o));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  static TieredStore& T(Store& s) { return static_cast<TieredStore&>(s); }

  // Reserves, writes `bytes` into the arena, commits.
  static Result<bool> PutInPlace(Store& s, uint64_t i, const std::vector<std::byte>& bytes,
                                 Family f = Family::kCsa) {
    auto r = T(s).Reserve({kNs, K(i), f}, kFp, bytes.size(), PutHints{});
    if (!r.ok()) return r.status();
    std::memcpy(T(s).arena_base() + r->payload_offset, bytes.data(), bytes.size());
    return T(s).Commit(*r);
  }

  static std::optional<std::vector<std::byte>> Read(Store& s, uint64_t i, Family f = Family::kCsa) {
    BlockKey k = K(i);
    auto v = s.Get(kNs, kFp, std::span(&k, 1), FamilyMask{f});
    EXPECT_TRUE(v.ok());
    if (!v.ok() || !(*v)[0].found()) return std::nullopt;
    std::vector<std::byte> out((*v)[0].data, (*v)[0].data + (*v)[0].size);
    s.Release(std::span(&(*v)[0].pin, 1));
    return out;
  }

  testing::TempDir dir_;
};

TEST_F(ReserveTest, CommitMakesTheWrittenBytesAnObject) {
  auto s = Open(true);
  const auto bytes = testing::SeededBytes(1, 70000);
  const uint64_t used_before = s->Stats()[Tier::kHost].used;
  auto r = T(*s).Reserve({kNs, K(1), Family::kCsa}, kFp, bytes.size(), PutHints{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // A reservation is not an object yet.
  EXPECT_FALSE(Read(*s, 1).has_value());
  EXPECT_EQ(s->Lookup(kNs, kFp, std::vector<BlockKey>{K(1)}, FamilyMask{Family::kCsa})->hit_blocks,
            0u);
  ASSERT_LE(r->payload_offset + bytes.size(), T(*s).arena_bytes());
  std::memcpy(T(*s).arena_base() + r->payload_offset, bytes.data(), bytes.size());
  auto c = T(*s).Commit(*r);
  ASSERT_TRUE(c.ok() && *c);
  EXPECT_EQ(Read(*s, 1), bytes);
  EXPECT_GT(s->Stats()[Tier::kHost].used, used_before);
  EXPECT_EQ(testing::CounterOf(*s, "reservations_committed"), 1u);
  // Durable through Flush and a reopen, byte for byte.
  ASSERT_TRUE(s->Flush().ok());
  s.reset();
  s = Open(true);
  EXPECT_EQ(Read(*s, 1), bytes);
}

TEST_F(ReserveTest, AbortGivesTheSpaceBack) {
  auto s = Open(true, false);
  const uint64_t used_before = s->Stats()[Tier::kHost].used;
  auto r = T(*s).Reserve({kNs, K(2), Family::kHca}, kFp, 100000, PutHints{});
  ASSERT_TRUE(r.ok());
  EXPECT_GT(T(*s).arena_bytes(), r->payload_offset);
  T(*s).Abort(*r);
  EXPECT_EQ(s->Stats()[Tier::kHost].used, used_before);
  EXPECT_FALSE(Read(*s, 2, Family::kHca).has_value());
  // The host tier can be filled again in full: nothing leaked.
  for (uint64_t i = 0; i < 100; ++i) {
    auto again = T(*s).Reserve({kNs, K(100 + i), Family::kHca}, kFp, 100000, PutHints{});
    ASSERT_TRUE(again.ok()) << i << ": " << again.status().ToString();
    T(*s).Abort(*again);
  }
  EXPECT_EQ(testing::CounterOf(*s, "reservations_aborted"), 101u);
}

TEST_F(ReserveTest, BytesChangedAfterCommitAreNeverServed) {
  auto s = Open(true);
  const auto a = testing::SeededBytes(3, 5000), b = testing::SeededBytes(4, 5000);
  ASSERT_TRUE(*PutInPlace(*s, 3, a));
  ASSERT_TRUE(*PutInPlace(*s, 4, b));
  // A client scribbles over object 3 in the shared arena after Commit.
  BlockKey k3 = K(3);
  auto v = s->Get(kNs, kFp, std::span(&k3, 1), FamilyMask{Family::kCsa});
  ASSERT_TRUE(v.ok() && (*v)[0].found());
  std::byte* p = const_cast<std::byte*>((*v)[0].data);
  s->Release(std::span(&(*v)[0].pin, 1));
  p[100] ^= std::byte{0xff};
  EXPECT_FALSE(Read(*s, 3).has_value());  // a counted miss, not wrong bytes
  EXPECT_EQ(testing::CounterOf(*s, "host_copies_corrupt"), 1u);
  EXPECT_EQ(Read(*s, 4), b);  // others unaffected
  // Nothing of it reaches NVMe: after a flush and a reopen it is gone, object 4 is there.
  ASSERT_TRUE(s->Flush().ok());
  s.reset();
  s = Open(true);
  EXPECT_FALSE(Read(*s, 3).has_value());
  EXPECT_EQ(Read(*s, 4), b);
}

TEST_F(ReserveTest, ChangedCopyIsNotFlushedOrDemoted) {
  auto s = Open(true);
  const auto a = testing::SeededBytes(5, 5000);
  ASSERT_TRUE(*PutInPlace(*s, 5, a));
  BlockKey k = K(5);
  auto v = s->Get(kNs, kFp, std::span(&k, 1), FamilyMask{Family::kCsa});
  ASSERT_TRUE(v.ok() && (*v)[0].found());
  std::byte* p = const_cast<std::byte*>((*v)[0].data);
  s->Release(std::span(&(*v)[0].pin, 1));
  p[0] ^= std::byte{1};
  // Flush verifies before writing: the changed copy is skipped (Flush itself succeeds).
  ASSERT_TRUE(s->Flush().ok());
  EXPECT_EQ(testing::CounterOf(*s, "host_copies_corrupt"), 1u);
  EXPECT_EQ(testing::CounterOf(*s, "nvme_records_written"), 0u);
  EXPECT_FALSE(Read(*s, 5).has_value());
  // Demotion: fill the 4 MiB host tier so object 6 (changed after commit) must leave DRAM.
  const auto c = testing::SeededBytes(6, 5000);
  ASSERT_TRUE(*PutInPlace(*s, 6, c));
  k = K(6);
  v = s->Get(kNs, kFp, std::span(&k, 1), FamilyMask{Family::kCsa});
  ASSERT_TRUE(v.ok() && (*v)[0].found());
  p = const_cast<std::byte*>((*v)[0].data);
  s->Release(std::span(&(*v)[0].pin, 1));
  p[1] ^= std::byte{1};
  for (uint64_t i = 0; i < 80; ++i)
    ASSERT_TRUE(*PutInPlace(*s, 1000 + i, testing::SeededBytes(1000 + i, 100000)));
  EXPECT_FALSE(Read(*s, 6).has_value());
  EXPECT_EQ(testing::CounterOf(*s, "host_copies_corrupt"), 2u);
  // The objects demoted beside it read back intact.
  EXPECT_EQ(Read(*s, 1000), testing::SeededBytes(1000, 100000));
}

TEST_F(ReserveTest, AdmissionMayDeclineACommit) {
  StoreConfig c = testing::SmallConfig("", DeviceKind::kPosix);
  c.host.admission = "second-use";
  TieredStoreOptions o;
  o.host_checksums = true;
  auto s = cachestore::OpenTieredStore(c, std::move(o));
  ASSERT_TRUE(s.ok());
  const uint64_t used_before = (*s)->Stats()[Tier::kHost].used;
  const auto a = testing::SeededBytes(7, 3000);
  auto first = PutInPlace(**s, 7, a);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(*first);  // first sight: declined, space freed
  EXPECT_EQ((*s)->Stats()[Tier::kHost].used, used_before);
  auto second = PutInPlace(**s, 7, a);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(*second);
  EXPECT_EQ(Read(**s, 7), a);
}

}  // namespace
}  // namespace strata
