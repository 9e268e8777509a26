// Eviction and admission that know what they are evicting, checked on the placement core
// through SimStore (the same core the real store runs; placement_equivalence_test.cc shows the
// two decide alike): SWA before compressed state, a block's compressed state as a whole, leaves
// before inner blocks of a chain, admission per tier.
#include <gtest/gtest.h>

#include "cachestore/sim/sim_store.h"

namespace strata::cachestore {
namespace {

constexpr NamespaceId kNs = 1;
constexpr uint64_t kFp = 42;
constexpr uint64_t kKiB = 1024;

BlockKey K(uint64_t i) { return BlockKey{i, i * 7 + 1}; }

std::unique_ptr<SimStore> Open(uint64_t host_bytes, DecisionLog* log = nullptr, bool nvme = false,
                               const std::string& nvme_admission = "all",
                               const std::string& host_admission = "all") {
  SimConfig c;
  c.store.host.capacity_bytes = host_bytes;
  c.store.host.admission = host_admission;
  if (nvme) {
    c.store.nvme.data_dir = "sim";
    c.store.nvme.segment_bytes = 1 << 20;
    c.store.nvme.capacity_bytes = 16 << 20;
    c.store.nvme.admission = nvme_admission;
  }
  auto s = SimStore::Open(c, log);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

// Sizes that fill whole extents: a record's 128-byte header room is part of the extent.
constexpr uint64_t Obj(uint64_t kib) { return kib * kKiB - 128; }

bool Has(SimStore& s, uint64_t block, Family f) {
  auto r = s.Lookup(kNs, kFp, std::vector<BlockKey>{K(block)}, FamilyMask{f});
  return r.ok() && r->hit_blocks == 1;
}

size_t Hit(SimStore& s, std::vector<uint64_t> chain) {
  std::vector<BlockKey> keys;
  for (uint64_t b : chain) keys.push_back(K(b));
  auto r = s.Lookup(kNs, kFp, keys, FamilyMask{Family::kCsa});
  return r.ok() ? r->hit_blocks : 0;
}

void PutBlock(SimStore& s, uint64_t block, std::initializer_list<Family> fams,
              const PutHints& h = {}) {
  for (Family f : fams) ASSERT_TRUE(s.Put(ObjectKey{kNs, K(block), f}, kFp, Obj(16), h).ok());
}

TEST(PlacementTest, SwaGoesBeforeTheBlocksCompressedState) {
  DecisionLog log;
  auto s = Open(64 * kKiB, &log);  // four 16 KiB objects
  PutBlock(*s, 1, {Family::kCsa, Family::kHca, Family::kSwa});
  PutBlock(*s, 2, {Family::kCsa});
  // Block 1's csa is the least recently used object, but its SWA goes first.
  PutBlock(*s, 3, {Family::kCsa});
  EXPECT_FALSE(Has(*s, 1, Family::kSwa));
  EXPECT_TRUE(Has(*s, 1, Family::kCsa));
  EXPECT_TRUE(Has(*s, 1, Family::kHca));
  EXPECT_TRUE(Has(*s, 2, Family::kCsa));
  ASSERT_FALSE(log.entries.empty());
  int evicted = 0;
  for (const Decision& d : log.entries)
    if (d.kind == DecisionKind::kEvict) {
      ++evicted;
      EXPECT_EQ(d.key.family, Family::kSwa);
    }
  EXPECT_EQ(evicted, 1);
}

TEST(PlacementTest, ABlocksCompressedStateGoesAsAWhole) {
  auto s = Open(64 * kKiB);
  PutBlock(*s, 1, {Family::kCsa, Family::kCsaIndex, Family::kHca});
  PutBlock(*s, 2, {Family::kCsa});
  // Room for one more object: block 1 is the victim, and none of its compressed families stays
  // behind without the others.
  PutBlock(*s, 3, {Family::kCsa});
  EXPECT_FALSE(Has(*s, 1, Family::kCsa));
  EXPECT_FALSE(Has(*s, 1, Family::kCsaIndex));
  EXPECT_FALSE(Has(*s, 1, Family::kHca));
  EXPECT_TRUE(Has(*s, 2, Family::kCsa));
  EXPECT_TRUE(Has(*s, 3, Family::kCsa));
  StoreStats st = s->Stats();
  EXPECT_EQ(st[Tier::kHost].used, 32 * kKiB);
}

TEST(PlacementTest, LeavesGoBeforeInnerBlocksSoChainsKeepNoHoles) {
  auto s = Open(64 * kKiB);
  // A chain 1 <- 2 <- 3, oldest first, then a lone block 4.
  for (uint64_t b : {1, 2, 3}) {
    PutHints h;
    h.depth = uint32_t(b - 1);
    h.has_parent = b > 1;
    h.parent = K(b - 1);
    PutBlock(*s, b, {Family::kCsa}, h);
  }
  PutBlock(*s, 4, {Family::kCsa});
  PutBlock(*s, 5, {Family::kCsa});  // needs one object's room
  // LRU alone would take block 1 and cut the chain at its root; the leaf 3 goes instead.
  EXPECT_EQ(Hit(*s, {1, 2, 3}), 2u);
  EXPECT_TRUE(Has(*s, 4, Family::kCsa));
  EXPECT_TRUE(Has(*s, 5, Family::kCsa));
}

TEST(PlacementTest, WithoutChainHintsLruCutsTheChain) {
  // The same sequence without parents: the control for the test above.
  auto s = Open(64 * kKiB);
  for (uint64_t b : {1, 2, 3, 4, 5}) PutBlock(*s, b, {Family::kCsa});
  EXPECT_EQ(Hit(*s, {1, 2, 3}), 0u);
}

TEST(PlacementTest, LookupReportsHitBytesPerTier) {
  auto s = Open(64 * kKiB, nullptr, /*nvme=*/true);
  PutBlock(*s, 1, {Family::kCsa, Family::kHca});
  PutBlock(*s, 2, {Family::kCsa});
  PutBlock(*s, 3, {Family::kCsa, Family::kSwa});  // the oldest object, block 1's csa, demoted
  auto r =
      s->Lookup(kNs, kFp, std::vector<BlockKey>{K(1), K(2), K(3), K(4)}, FamilyMask{Family::kCsa});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->hit_blocks, 3u);
  EXPECT_EQ(r->hit_bytes[int(Tier::kNvme)], 1 * Obj(16));
  EXPECT_EQ(r->hit_bytes[int(Tier::kHost)], 4 * Obj(16));
  EXPECT_EQ(r->hit_bytes[int(Tier::kNone)], 0u);
}

TEST(PlacementTest, NvmeSecondUseAdmitsOnlyObjectsHitBefore) {
  DecisionLog log;
  auto s = Open(64 * kKiB, &log, /*nvme=*/true, "second-use");
  PutBlock(*s, 1, {Family::kCsa});
  PutBlock(*s, 2, {Family::kCsa});
  auto g = s->Get(kNs, kFp, std::vector<BlockKey>{K(2)}, FamilyMask{Family::kCsa});
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE((*g)[0].found());
  std::vector<uint64_t> pins{(*g)[0].pin};
  s->Release(pins);
  for (uint64_t b = 3; b <= 6; ++b) PutBlock(*s, b, {Family::kCsa});
  // Block 1 was never read: dropped, not written. Block 2 was: on NVMe.
  auto r1 = s->Lookup(kNs, kFp, std::vector<BlockKey>{K(1)}, FamilyMask{Family::kCsa});
  auto r2 = s->Lookup(kNs, kFp, std::vector<BlockKey>{K(2)}, FamilyMask{Family::kCsa});
  EXPECT_EQ(r1->hit_blocks, 0u);
  ASSERT_EQ(r2->hit_blocks, 1u);
  EXPECT_EQ(r2->blocks[0].tier[int(Family::kCsa)], Tier::kNvme);
  bool rejected = false;
  for (const Decision& d : log.entries)
    rejected |= d.kind == DecisionKind::kReject && d.tier == Tier::kNvme && d.key.block == K(1);
  EXPECT_TRUE(rejected);
  // Flush ignores admission: it is a request for durability.
  PutBlock(*s, 7, {Family::kCsa});
  ASSERT_TRUE(s->Flush().ok());
  auto r7 = s->Lookup(kNs, kFp, std::vector<BlockKey>{K(7)}, FamilyMask{Family::kCsa});
  EXPECT_EQ(r7->blocks[0].tier[int(Family::kCsa)], Tier::kHost);
  EXPECT_GT(s->Stats()[Tier::kNvme].families[int(Family::kCsa)].objects, 1u);
}

TEST(PlacementTest, HostSecondUseAdmitsAnObjectPutTwice) {
  auto s = Open(64 * kKiB, nullptr, false, "all", "second-use");
  PutBlock(*s, 1, {Family::kCsa});
  EXPECT_FALSE(Has(*s, 1, Family::kCsa));
  PutBlock(*s, 1, {Family::kCsa});
  EXPECT_TRUE(Has(*s, 1, Family::kCsa));
  uint64_t rejected = 0;
  s->VisitCounters([&](std::string_view n, uint64_t v) {
    if (n == "puts_rejected") rejected = v;
  });
  EXPECT_EQ(rejected, 1u);
}

TEST(PlacementTest, ATenantOverItsQuotaEvictsItsOwnObjects) {
  SimConfig c;
  c.store.host.capacity_bytes = 256 * kKiB;
  c.store.host.namespace_quota_bytes = 64 * kKiB;  // four 16 KiB objects per tenant
  auto opened = SimStore::Open(c);
  ASSERT_TRUE(opened.ok());
  SimStore& s = **opened;
  auto put = [&](NamespaceId ns, uint64_t b) {
    return s.Put(ObjectKey{ns, K(b), Family::kCsa}, kFp, Obj(16));
  };
  for (uint64_t b = 1; b <= 4; ++b) ASSERT_TRUE(put(2, b).ok());
  for (uint64_t b = 1; b <= 6; ++b) ASSERT_TRUE(put(1, b).ok());
  // Tenant 1 went over its quota twice and lost its own oldest objects; tenant 2 lost nothing,
  // though its objects are older and the tier had room to spare.
  auto has = [&](NamespaceId ns, uint64_t b) {
    auto r = s.Lookup(ns, kFp, std::vector<BlockKey>{K(b)}, FamilyMask{Family::kCsa});
    return r->hit_blocks == 1;
  };
  for (uint64_t b = 1; b <= 4; ++b) EXPECT_TRUE(has(2, b)) << b;
  EXPECT_FALSE(has(1, 1));
  EXPECT_FALSE(has(1, 2));
  for (uint64_t b = 3; b <= 6; ++b) EXPECT_TRUE(has(1, b)) << b;
  EXPECT_EQ(s.Stats()[Tier::kHost].used, 128 * kKiB);
  // An object larger than the quota is refused with a clear error.
  Status big = s.Put(ObjectKey{1, K(9), Family::kSwa}, kFp, Obj(128));
  EXPECT_EQ(big.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(big.message().find("quota"), std::string::npos) << big.ToString();
}

TEST(PlacementTest, UnknownPolicyNamesAreClearErrors) {
  SimConfig c;
  c.store.host.eviction = "clock";
  auto s = SimStore::Open(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("lru, s3fifo, cost"), std::string::npos)
      << s.status().ToString();
}

TEST(PlacementTest, SimulatorTimesTierTraffic) {
  SimConfig c;
  c.store.host.capacity_bytes = 64 * kKiB;
  c.store.nvme.data_dir = "sim";
  c.store.nvme.segment_bytes = 1 << 20;
  c.store.nvme.capacity_bytes = 4 << 20;
  c.timing[int(Tier::kNvme)] = TierTiming{1e9, 5e8, 1e-4};
  auto s = SimStore::Open(c);
  ASSERT_TRUE(s.ok());
  for (uint64_t b = 1; b <= 8; ++b) PutBlock(**s, b, {Family::kCsa});
  const auto io = (*s)->TakeIoSeconds();
  // Four 16 KiB records demoted (each a 16 KiB record span): 4 x (1e-4 + 16384 / 5e8).
  EXPECT_NEAR(io[int(Tier::kNvme)], 4 * (1e-4 + 16384 / 5e8), 1e-9);
  EXPECT_EQ((*s)->TakeIoSeconds()[int(Tier::kNvme)], 0.0);
}

}  // namespace
}  // namespace strata::cachestore
