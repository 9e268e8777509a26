#include "strata/keys.h"

#include <gtest/gtest.h>

#include <numeric>

namespace strata {
namespace {

std::vector<int32_t> Tokens(size_t n, int32_t start = 0) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), start);
  return t;
}

BlockKey Root(std::string_view secret, uint64_t fp = 1) {
  return RootKey(std::as_bytes(std::span(secret.data(), secret.size())), fp);
}

TEST(KeysTest, ChainCoversCompleteBlocksOnly) {
  const auto keys = ChainBlockKeys(Root("s"), Tokens(1000), 256);
  EXPECT_EQ(keys.size(), 3u);
  EXPECT_TRUE(ChainBlockKeys(Root("s"), Tokens(255), 256).empty());
}

TEST(KeysTest, PrefixKeysArePrefixOfLongerChain) {
  const auto a = ChainBlockKeys(Root("s"), Tokens(512), 256);
  const auto b = ChainBlockKeys(Root("s"), Tokens(1024), 256);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0], b[0]);
  EXPECT_EQ(a[1], b[1]);
  EXPECT_NE(b[2], b[3]);
}

TEST(KeysTest, ChangedTokenChangesThatBlockAndEveryLaterOne) {
  auto t = Tokens(1024);
  const auto a = ChainBlockKeys(Root("s"), t, 256);
  t[300] = 99999;
  const auto b = ChainBlockKeys(Root("s"), t, 256);
  EXPECT_EQ(a[0], b[0]);
  EXPECT_NE(a[1], b[1]);
  EXPECT_NE(a[2], b[2]);
  EXPECT_NE(a[3], b[3]);
}

TEST(KeysTest, NamespaceSecretAndFingerprintSeparateKeys) {
  const auto t = Tokens(256);
  const BlockKey a = ChainBlockKeys(Root("tenant-a"), t, 256)[0];
  EXPECT_NE(a, ChainBlockKeys(Root("tenant-b"), t, 256)[0]);
  EXPECT_NE(a, ChainBlockKeys(Root("tenant-a", 2), t, 256)[0]);
  EXPECT_EQ(a, ChainBlockKeys(Root("tenant-a"), t, 256)[0]);
}

TEST(KeysTest, HexAndNamespaceIds) {
  EXPECT_EQ((BlockKey{0x1, 0xabc}).ToHex(), "00000000000000010000000000000abc");
  // Ids are stored on disk, so they must not change between builds: XXH3-64 of the name with
  // the seed "STRATANS" (values from libxxhash directly). "default" is what strata run uses.
  EXPECT_EQ(NamespaceIdFromName("x"), 0x0acf1e3f8501f96full);
  EXPECT_EQ(NamespaceIdFromName("default"), 0x8569c78f99235fbbull);
  EXPECT_NE(NamespaceIdFromName("x"), NamespaceIdFromName("y"));
}

}  // namespace
}  // namespace strata
