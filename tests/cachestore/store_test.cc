// The tiered store through the public API, on every device backend.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <fstream>

#include "bench/v4_payload.h"
#include "cachestore/nvme/fsck.h"
#include "tests/testing/store_fixture.h"

namespace strata {
namespace {

using testing::OpenTestStore;
using testing::SmallConfig;

constexpr uint64_t kFp = 0x1234;
constexpr NamespaceId kNs = 5;

std::vector<std::byte> Bytes(uint64_t seed, size_t size) {
  return testing::SeededBytes(seed, size);
}

BlockKey K(uint64_t i) { return BlockKey{0x77, i}; }

struct Got {
  std::optional<std::vector<std::byte>> bytes;
  Tier tier = Tier::kNone;
};

Got GetOne(Store& s, BlockKey k, Family f, uint64_t fp = kFp, NamespaceId ns = kNs) {
  auto views = s.Get(ns, fp, std::span(&k, 1), FamilyMask{f});
  EXPECT_TRUE(views.ok()) << views.status().ToString();
  Got g;
  if (!views.ok()) return g;
  const ObjectView& v = (*views)[0];
  if (v.found()) {
    g.bytes.emplace(v.data, v.data + v.size);
    g.tier = v.served_from;
  }
  s.Release(std::span(&v.pin, 1));
  return g;
}

uint64_t Counter(const Store& s, std::string_view name) { return testing::CounterOf(s, name); }

class StoreTest : public ::testing::TestWithParam<DeviceKind> {
 protected:
  void SetUp() override {
    if (testing::SkipDevice(GetParam())) GTEST_SKIP() << "io_uring not available";
    cfg_ = SmallConfig(dir_.Sub("data"), GetParam());
  }
  std::unique_ptr<Store> Open(const StoreConfig& c) {
    auto s = OpenTestStore(c);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::unique_ptr<Store> Open() { return Open(cfg_); }
  bool Persistent() const { return GetParam() != DeviceKind::kMemory; }

  testing::TempDir dir_;
  StoreConfig cfg_;
};

TEST_P(StoreTest, PutGetLookupFromHost) {
  auto s = Open();
  for (uint64_t b = 0; b < 3; ++b)
    for (Family f : {Family::kCsa, Family::kHca})
      ASSERT_TRUE(s->Put({kNs, K(b), f}, kFp, Bytes(b * 10 + int(f), 5000 + b)).ok());
  ASSERT_TRUE(s->Put({kNs, K(3), Family::kCsa}, kFp, Bytes(99, 10)).ok());  // no hca
  std::vector<BlockKey> chain = {K(0), K(1), K(2), K(3), K(4)};
  auto r = s->Lookup(kNs, kFp, chain, FamilyMask{Family::kCsa, Family::kHca});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->hit_blocks, 3u);
  ASSERT_EQ(r->blocks.size(), 4u);  // three hits and the first miss
  EXPECT_TRUE(r->blocks[3].families.Has(Family::kCsa));
  EXPECT_FALSE(r->blocks[3].families.Has(Family::kHca));
  EXPECT_EQ(r->blocks[0].tier[int(Family::kHca)], Tier::kHost);
  EXPECT_EQ(s->Lookup(kNs, kFp, chain, FamilyMask{Family::kCsa})->hit_blocks, 4u);
  Got g = GetOne(*s, K(1), Family::kHca);
  ASSERT_TRUE(g.bytes);
  EXPECT_EQ(*g.bytes, Bytes(10 + int(Family::kHca), 5001));
  EXPECT_EQ(g.tier, Tier::kHost);
  // Families are returned in Family order, key-major; absent ones are misses.
  std::vector<BlockKey> two = {K(0), K(3)};
  auto views = s->Get(kNs, kFp, two, FamilyMask{Family::kCsa, Family::kHca});
  ASSERT_TRUE(views.ok());
  ASSERT_EQ(views->size(), 4u);
  EXPECT_TRUE((*views)[0].found());
  EXPECT_EQ((*views)[1].key.family, Family::kHca);
  EXPECT_FALSE((*views)[3].found());
  PinGuard release(*s, std::move(*views));
}

TEST_P(StoreTest, OtherFingerprintOrNamespaceIsNeverServed) {
  auto s = Open();
  ASSERT_TRUE(s->Put({kNs, K(0), Family::kCsa}, kFp, Bytes(1, 100)).ok());
  std::vector<BlockKey> chain = {K(0)};
  EXPECT_EQ(s->Lookup(kNs, kFp + 1, chain, FamilyMask{Family::kCsa})->hit_blocks, 0u);
  EXPECT_FALSE(GetOne(*s, K(0), Family::kCsa, kFp + 1).bytes);
  EXPECT_FALSE(GetOne(*s, K(0), Family::kCsa, kFp, kNs + 1).bytes);
  EXPECT_TRUE(GetOne(*s, K(0), Family::kCsa).bytes);
}

TEST_P(StoreTest, EvictionDemotesToNvmeAndReadsBackBitExact) {
  auto s = Open();
  const int n = 40;  // 40 x 300 KB = 12 MB through a 4 MiB host tier
  for (int i = 0; i < n; ++i)
    ASSERT_TRUE(s->Put({kNs, K(i), Family::kSwa}, kFp, Bytes(i, 300000)).ok());
  EXPECT_GT(Counter(*s, "demotions"), 0u);
  int from_nvme = 0;
  for (int i = 0; i < n; ++i) {
    Got g = GetOne(*s, K(i), Family::kSwa);
    ASSERT_TRUE(g.bytes) << i;
    EXPECT_EQ(*g.bytes, Bytes(i, 300000)) << i;
    from_nvme += g.tier == Tier::kNvme;
  }
  EXPECT_GT(from_nvme, 20);
}

// The daemon's staged tenants seal the arena (only read-only mappings for clients); the store's
// own mapping still takes objects read back from NVMe, through io_uring's registered buffers
// too, and a read-only mapping of the descriptor sees them.
TEST_P(StoreTest, SealedArenaDemotesAndReadsBack) {
  cachestore::TieredStoreOptions o;
  o.seal_arena = true;
  auto opened = cachestore::OpenTieredStore(cfg_, std::move(o));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& s = *opened;
  auto* ts = static_cast<cachestore::TieredStore*>(s.get());
  ASSERT_TRUE(ts->arena_sealed());
  const int n = 40;
  for (int i = 0; i < n; ++i)
    ASSERT_TRUE(s->Put({kNs, K(i), Family::kSwa}, kFp, Bytes(i, 300000)).ok());
  void* ro = mmap(nullptr, ts->arena_bytes(), PROT_READ, MAP_SHARED, ts->arena_fd(), 0);
  ASSERT_NE(ro, MAP_FAILED);
  int from_nvme = 0;
  for (int i = 0; i < n; ++i) {
    const BlockKey k = K(i);
    auto views = s->Get(kNs, kFp, std::span(&k, 1), FamilyMask{Family::kSwa});
    ASSERT_TRUE(views.ok()) << views.status().ToString();
    const ObjectView& v = (*views)[0];
    ASSERT_TRUE(v.found()) << i;
    const auto* other = static_cast<const std::byte*>(ro) + (v.data - ts->arena_base());
    EXPECT_EQ(std::vector<std::byte>(other, other + v.size), Bytes(i, 300000)) << i;
    from_nvme += v.served_from == Tier::kNvme;
    s->Release(std::span(&v.pin, 1));
  }
  munmap(ro, ts->arena_bytes());
  EXPECT_GT(from_nvme, 20);
}

TEST_P(StoreTest, PinnedViewsStayValidWhileOthersAreEvicted) {
  auto s = Open();
  ASSERT_TRUE(s->Put({kNs, K(0), Family::kCsa}, kFp, Bytes(0, 500000)).ok());
  BlockKey k0 = K(0);
  auto views = s->Get(kNs, kFp, std::span(&k0, 1), FamilyMask{Family::kCsa});
  ASSERT_TRUE(views.ok() && (*views)[0].found());
  const ObjectView v = (*views)[0];
  for (int i = 1; i < 30; ++i)
    ASSERT_TRUE(s->Put({kNs, K(i), Family::kCsa}, kFp, Bytes(i, 500000)).ok());
  // Replacing the pinned object does not touch the pinned bytes either.
  ASSERT_TRUE(s->Put({kNs, K(0), Family::kCsa}, kFp, Bytes(1000, 500000)).ok());
  const auto want = Bytes(0, 500000);
  EXPECT_EQ(std::memcmp(v.data, want.data(), want.size()), 0);
  s->Release(std::span(&v.pin, 1));
  EXPECT_EQ(*GetOne(*s, K(0), Family::kCsa).bytes, Bytes(1000, 500000));
}

TEST_P(StoreTest, HostFullOfPinsIsResourceExhausted) {
  auto s = Open();
  std::vector<uint64_t> pins;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(s->Put({kNs, K(i), Family::kCsa}, kFp, Bytes(i, 900000)).ok());
    BlockKey k = K(i);
    auto v = s->Get(kNs, kFp, std::span(&k, 1), FamilyMask{Family::kCsa});
    pins.push_back((*v)[0].pin);
  }
  Status st = s->Put({kNs, K(9), Family::kCsa}, kFp, Bytes(9, 900000));
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
  s->Release(pins);
  EXPECT_TRUE(s->Put({kNs, K(9), Family::kCsa}, kFp, Bytes(9, 900000)).ok());
  EXPECT_EQ(s->Put({kNs, K(10), Family::kCsa}, kFp, Bytes(9, 2 << 20)).code(),
            StatusCode::kInvalidArgument)
      << "larger than a segment";
}

TEST_P(StoreTest, ReplaceDeleteAndFlushSurviveReopen) {
  {
    auto s = Open();
    ASSERT_TRUE(s->Put({kNs, K(0), Family::kCsa}, kFp, Bytes(1, 7000)).ok());
    ASSERT_TRUE(s->Flush().ok());
    ASSERT_TRUE(s->Put({kNs, K(0), Family::kCsa}, kFp, Bytes(2, 9000)).ok());  // replace
    ASSERT_TRUE(s->Put({kNs + 1, K(0), Family::kCsa}, kFp, Bytes(3, 100)).ok());
    ASSERT_TRUE(s->Put({kNs + 2, K(0), Family::kHca}, kFp, Bytes(4, 100)).ok());
    ASSERT_TRUE(s->Flush().ok());
    ASSERT_TRUE(s->Delete(kNs + 2).ok());
    EXPECT_FALSE(GetOne(*s, K(0), Family::kHca, kFp, kNs + 2).bytes);
    ASSERT_TRUE(s->Flush().ok());
  }
  auto s = Open();
  if (!Persistent()) {
    // The memory device lost everything: recovery drops every index entry.
    EXPECT_EQ(Counter(*s, "recovered_records"), 0u);
    EXPECT_EQ(Counter(*s, "recovery_dropped"), 2u);
    EXPECT_FALSE(GetOne(*s, K(0), Family::kCsa).bytes);
    return;
  }
  EXPECT_EQ(Counter(*s, "recovered_records"), 2u);
  Got g = GetOne(*s, K(0), Family::kCsa);
  ASSERT_TRUE(g.bytes);
  EXPECT_EQ(*g.bytes, Bytes(2, 9000));
  EXPECT_EQ(g.tier, Tier::kNvme);
  EXPECT_EQ(*GetOne(*s, K(0), Family::kCsa, kFp, kNs + 1).bytes, Bytes(3, 100));
  EXPECT_FALSE(GetOne(*s, K(0), Family::kHca, kFp, kNs + 2).bytes);
  // Served from host now that it was loaded.
  EXPECT_EQ(GetOne(*s, K(0), Family::kCsa).tier, Tier::kHost);
}

TEST_P(StoreTest, CompressedFamiliesRoundTripThroughNvme) {
  cfg_.codec = {CodecKind::kLz4, CodecKind::kLz4Shuffle2, CodecKind::kLz4Shuffle4, CodecKind::kLz4,
                CodecKind::kLz4Shuffle4};
  std::vector<std::byte> compressible(200000);
  for (size_t i = 0; i < compressible.size(); ++i) compressible[i] = std::byte(uint8_t(i / 64));
  {
    auto s = Open();
    for (Family f : kAllFamilies) {
      ASSERT_TRUE(s->Put({kNs, K(0), f}, kFp, compressible).ok());
      ASSERT_TRUE(s->Put({kNs, K(1), f}, kFp, Bytes(int(f), 50000)).ok());  // incompressible
    }
    ASSERT_TRUE(s->Flush().ok());
    EXPECT_LT(Counter(*s, "nvme_bytes_written"), 5 * (200000 + 50000 + 2 * 4096));
  }
  if (!Persistent()) return;
  auto s = Open();
  for (Family f : kAllFamilies) {
    EXPECT_EQ(*GetOne(*s, K(0), f).bytes, compressible) << FamilyName(f);
    EXPECT_EQ(*GetOne(*s, K(1), f).bytes, Bytes(int(f), 50000)) << FamilyName(f);
  }
}

TEST_P(StoreTest, FullNvmeTierReclaimsSegmentsAndKeepsWhatIsHot) {
  auto s = Open();
  ASSERT_TRUE(s->Put({kNs, K(1000), Family::kCsa}, kFp, Bytes(1000, 100000)).ok());
  for (int i = 0; i < 150; ++i) {  // 150 x 300 KB = 45 MB through a 16 MiB NVMe tier
    ASSERT_TRUE(s->Put({kNs, K(i), Family::kCsa}, kFp, Bytes(i, 300000)).ok()) << i;
    Got hot = GetOne(*s, K(1000), Family::kCsa);
    ASSERT_TRUE(hot.bytes) << "hot object lost at " << i;
    ASSERT_EQ(*hot.bytes, Bytes(1000, 100000));
    if (i % 10 == 9) {
      ASSERT_TRUE(s->Flush().ok());
    }
  }
  EXPECT_GT(Counter(*s, "segments_reclaimed"), 0u);
  int present = 0;
  for (int i = 0; i < 150; ++i) {
    Got g = GetOne(*s, K(i), Family::kCsa);
    if (!g.bytes) continue;
    ++present;
    EXPECT_EQ(*g.bytes, Bytes(i, 300000)) << i;
  }
  EXPECT_GT(present, 30);
  EXPECT_LT(present, 150);
  const StoreStats st = s->Stats();
  EXPECT_LE(st[Tier::kNvme].used, st[Tier::kNvme].capacity);
}

// A write that reclaims a segment may drop the NVMe records of hot objects it has no room to
// move, leaving their DRAM copies to be written again (counted: records_unpersisted_by_reclaim).
// Flush writes those too before it returns, so what it acknowledges is durable: a second Flush
// finds nothing left to write.
TEST_P(StoreTest, FlushRewritesWhatAReclaimUnpersisted) {
  if (!Persistent()) GTEST_SKIP() << "counts records on a real device";
  StoreConfig c = cfg_;
  c.host.capacity_bytes = 32 << 20;  // everything stays in DRAM
  c.nvme.capacity_bytes = 8 << 20;   // 8 segments of 1 MiB
  auto s = Open(c);
  ASSERT_TRUE(s);
  int next = 0;
  uint64_t unpersisted = 0;
  for (int round = 0; round < 12 && unpersisted == 0; ++round) {
    for (int j = 0; j < 10; ++j, ++next)
      ASSERT_TRUE(s->Put({kNs, K(next), Family::kCsa}, kFp, Bytes(next, 200000)).ok());
    for (int i = 0; i < next; ++i) ASSERT_TRUE(GetOne(*s, K(i), Family::kCsa).bytes) << i;
    const Status f = s->Flush();
    if (!f.ok()) {
      ASSERT_EQ(f.code(), StatusCode::kNoSpace) << f.ToString();
      break;  // the tier is too small for what is hot: Flush says so, it does not pretend
    }
    unpersisted = Counter(*s, "records_unpersisted_by_reclaim");
    if (unpersisted == 0) continue;
    const uint64_t written = Counter(*s, "nvme_records_written");
    ASSERT_TRUE(s->Flush().ok());
    EXPECT_EQ(Counter(*s, "nvme_records_written"), written);  // nothing left to write
  }
  EXPECT_GT(unpersisted, 0u) << "no reclaim left a hot record to be written again";
}

TEST_P(StoreTest, ReclaimMovesRecordsThatAreReadAndDropsTheRest) {
  auto s = Open();
  // H and two fillers share the first segment; replacing the fillers leaves H alone there, so
  // that segment is the least live and the first one reclaimed.
  ASSERT_TRUE(s->Put({kNs, K(1000), Family::kCsa}, kFp, Bytes(1000, 100000)).ok());
  ASSERT_TRUE(s->Put({kNs, K(1001), Family::kCsa}, kFp, Bytes(1001, 300000)).ok());
  ASSERT_TRUE(s->Put({kNs, K(1002), Family::kCsa}, kFp, Bytes(1002, 300000)).ok());
  ASSERT_TRUE(s->Flush().ok());
  ASSERT_TRUE(GetOne(*s, K(1000), Family::kCsa).bytes);  // H is read: hot
  ASSERT_TRUE(s->Put({kNs, K(1001), Family::kCsa}, kFp, Bytes(1003, 300000)).ok());
  ASSERT_TRUE(s->Put({kNs, K(1002), Family::kCsa}, kFp, Bytes(1004, 300000)).ok());
  for (int i = 0; i < 150; ++i) {  // 45 MB through a 16 MiB NVMe tier and a 4 MiB host tier
    ASSERT_TRUE(s->Put({kNs, K(i), Family::kCsa}, kFp, Bytes(i, 300000)).ok()) << i;
    if (i % 10 == 9) {
      ASSERT_TRUE(s->Flush().ok());
    }
  }
  EXPECT_GT(Counter(*s, "segments_reclaimed"), 10u);
  EXPECT_GE(Counter(*s, "records_relocated"), 1u);
  EXPECT_GT(Counter(*s, "records_dropped_by_reclaim"), 0u);
  EXPECT_FALSE(GetOne(*s, K(0), Family::kCsa).bytes) << "cold records are dropped";
  Got hot = GetOne(*s, K(1000), Family::kCsa);
  ASSERT_TRUE(hot.bytes) << "the hot record was lost";
  EXPECT_EQ(*hot.bytes, Bytes(1000, 100000));
  EXPECT_EQ(hot.tier, Tier::kNvme) << "long evicted from DRAM: served from its moved record";
  s.reset();
  if (!Persistent()) return;
  auto again = Open();  // the moved record is indexed at its new place
  EXPECT_EQ(*GetOne(*again, K(1000), Family::kCsa).bytes, Bytes(1000, 100000));
}

TEST_P(StoreTest, ReopenWithOtherGeometryIsAClearError) {
  { auto s = Open(); }
  StoreConfig other = cfg_;
  other.nvme.segment_bytes = 2 << 20;
  auto s = OpenTestStore(other);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("segments"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values(DeviceKind::kMemory, DeviceKind::kPosix,
                                           DeviceKind::kIoUring),
                         [](const auto& info) { return std::string(DeviceKindName(info.param)); });

TEST(HostOnlyStoreTest, EvictionDropsWithoutNvme) {
  StoreConfig c;
  c.host.capacity_bytes = 2 << 20;
  auto s = OpenStore(c);
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE((*s)->Put({kNs, K(i), Family::kCsa}, kFp, Bytes(i, 200000)).ok());
  EXPECT_GT(Counter(**s, "evictions_dropped"), 0u);
  EXPECT_FALSE(GetOne(**s, K(0), Family::kCsa).bytes) << "oldest dropped";
  EXPECT_EQ(*GetOne(**s, K(19), Family::kCsa).bytes, Bytes(19, 200000));
  EXPECT_EQ((*s)->Flush().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace strata
