// The cluster tier's key and value format (cachestore/cluster/cluster_tier.h), byte by byte,
// without a cluster: what any node will read back and verify.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "cachestore/cluster/cluster_tier.h"
#include "cachestore/cluster/redis_cluster.h"
#include "cachestore/nvme/record.h"

namespace strata::cachestore::cluster {
namespace {

const ObjectKey kKey{0x0102030405060708ull, BlockKey{0x1122334455667788ull, 0x99aabbccddeeff00ull},
                     Family::kCsa};
constexpr uint64_t kFp = 0xfeedfacecafebeefull;

std::vector<std::byte> Payload(size_t n) {
  std::vector<std::byte> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = std::byte(uint8_t(i * 131 + 7));
  return p;
}

template <typename T>
T At(const std::string& v, size_t off) {
  T x;
  std::memcpy(&x, v.data() + off, sizeof x);
  return x;
}

TEST(ClusterValueTest, KeyCarriesPrefixHashTagOnTheBlockAndFamily) {
  EXPECT_EQ(ClusterTier::KeyFor("tenantA", kKey, kFp),
            "tenantA:{0102030405060708.feedfacecafebeef.1122334455667788.99aabbccddeeff00}:csa");
  // Every family of a block hashes to one slot (one shard, one round trip); another block,
  // namespace or fingerprint is another tag.
  const uint16_t slot = RedisCluster::KeySlot(ClusterTier::KeyFor("t", kKey, kFp));
  for (Family f : kAllFamilies) {
    ObjectKey k = kKey;
    k.family = f;
    EXPECT_EQ(RedisCluster::KeySlot(ClusterTier::KeyFor("t", k, kFp)), slot) << FamilyName(f);
    EXPECT_EQ(RedisCluster::KeySlot(ClusterTier::KeyFor("other", k, kFp)), slot);
  }
  ObjectKey other = kKey;
  other.block.lo ^= 1;
  EXPECT_NE(ClusterTier::KeyFor("t", other, kFp), ClusterTier::KeyFor("t", kKey, kFp));
}

TEST(ClusterValueTest, ValueIsTheRecordHeaderThenThePayload) {
  const auto payload = Payload(1000);
  const std::string v = ClusterTier::EncodeValue({kKey, kFp, payload});
  ASSERT_EQ(v.size(), kRecordHeaderSize + 1000);
  EXPECT_EQ(v.substr(0, 4), "STRR");
  EXPECT_EQ(At<uint16_t>(v, 4), kRecordFormatVersion);
  EXPECT_EQ(At<uint8_t>(v, 6), uint8_t(Family::kCsa));
  EXPECT_EQ(At<uint8_t>(v, 7), uint8_t(CodecKind::kNone));
  EXPECT_EQ(At<uint64_t>(v, 8), 0x0102030405060708ull);
  EXPECT_EQ(At<uint64_t>(v, 16), 0x1122334455667788ull);
  EXPECT_EQ(At<uint64_t>(v, 24), 0x99aabbccddeeff00ull);
  EXPECT_EQ(At<uint64_t>(v, 32), kFp);
  EXPECT_EQ(At<uint64_t>(v, 48), 1000u);  // raw size
  EXPECT_EQ(At<uint64_t>(v, 56), 1000u);  // stored size
  EXPECT_EQ(std::memcmp(v.data() + kRecordHeaderSize, payload.data(), payload.size()), 0);
  auto back = ClusterTier::VerifyValue(v, kKey, kFp);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), payload.size());
  EXPECT_EQ(std::memcmp(back->data(), payload.data(), payload.size()), 0);
}

TEST(ClusterValueTest, EveryMismatchIsCorruptionNeverAPayload) {
  const auto payload = Payload(4096);
  const std::string v = ClusterTier::EncodeValue({kKey, kFp, payload});
  // Any flipped byte, header or payload.
  for (size_t i : {size_t(0), size_t(6), size_t(40), size_t(64), size_t(127), size_t(128),
                   size_t(2000), v.size() - 1}) {
    std::string bad = v;
    bad[i] = char(bad[i] ^ 0x20);
    EXPECT_TRUE(ClusterTier::VerifyValue(bad, kKey, kFp).status().IsCorruption()) << i;
  }
  // Truncated, extended, garbage, empty.
  EXPECT_TRUE(
      ClusterTier::VerifyValue(v.substr(0, v.size() - 1), kKey, kFp).status().IsCorruption());
  EXPECT_TRUE(ClusterTier::VerifyValue(v + "x", kKey, kFp).status().IsCorruption());
  EXPECT_TRUE(ClusterTier::VerifyValue(std::string(5000, 'g'), kKey, kFp).status().IsCorruption());
  EXPECT_TRUE(ClusterTier::VerifyValue("", kKey, kFp).status().IsCorruption());
  // A valid record of another object: another family, block, namespace or fingerprint.
  ObjectKey k = kKey;
  k.family = Family::kHca;
  EXPECT_TRUE(ClusterTier::VerifyValue(v, k, kFp).status().IsCorruption());
  k = kKey;
  k.block.hi ^= 1;
  EXPECT_TRUE(ClusterTier::VerifyValue(v, k, kFp).status().IsCorruption());
  k = kKey;
  k.ns ^= 1;
  EXPECT_TRUE(ClusterTier::VerifyValue(v, k, kFp).status().IsCorruption());
  EXPECT_TRUE(ClusterTier::VerifyValue(v, kKey, kFp ^ 1).status().IsCorruption());
}

TEST(ClusterValueTest, OptionsRejectPrefixesThatBreakTheKeyFormat) {
  ClusterTierOptions o;
  o.redis.seeds.push_back({"127.0.0.1", 7000});
  for (std::string p : {"", "a:b", "a{b", "a}b"}) {
    o.prefix = p;
    EXPECT_FALSE(o.Validate().ok()) << p;
  }
  o.prefix = "tenant-a_1";
  EXPECT_TRUE(o.Validate().ok()) << o.Validate().ToString();
}

}  // namespace
}  // namespace strata::cachestore::cluster
