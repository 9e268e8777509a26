#include "strata/layout.h"

#include <gtest/gtest.h>

#include "engine/model_config.h"

namespace strata {
namespace {

CacheLayout LayoutOf(const std::string& model, uint32_t block = 256) {
  auto shape = engine::LoadModelShape(std::string(STRATA_SOURCE_DIR) + "/configs/models/" + model);
  EXPECT_TRUE(shape.ok()) << shape.status().ToString();
  LayoutOptions lo;
  lo.block_size = block;
  auto l = CacheLayout::Make(*shape, lo);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return *l;
}

TEST(LayoutTest, V4ProNumbersFromV4Facts) {
  const CacheLayout l = LayoutOf("v4-pro.json");
  EXPECT_EQ(l.csa_layers(), 30);
  EXPECT_EQ(l.hca_layers(), 31);
  EXPECT_EQ(l.swa_layers(), 62);
  EXPECT_EQ(l.main_entry_bytes(), 584u);
  EXPECT_EQ(l.index_entry_bytes(), 68u);
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCsa), 30u * 64 * 584);
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCsaIndex), 30u * 64 * 68);
  EXPECT_EQ(l.FamilyBlockBytes(Family::kHca), 31u * 2 * 584);
  // Tail: 30 CSA layers x (main 4 x 512 + indexer 4 x 128) x kv+score x fp32, plus the MTP
  // layer's pending hidden state, 4 streams x 7168 x fp32.
  const uint64_t tail = 30u * (4 * 512 + 4 * 128) * 2 * 4 + 4u * 7168 * 4;
  EXPECT_EQ(l.checkpoint_carry_bytes(), tail);
  EXPECT_EQ(l.FamilyBlockBytes(Family::kSwa), 62u * 256 * 584 + tail);
  // Entries: 36.2 KB per token (62 layers x 584 B).
  EXPECT_DOUBLE_EQ(double(l.FamilyBlockBytes(Family::kSwa) - l.checkpoint_carry_bytes()) / 256,
                   36208.0);
  EXPECT_EQ(l.checkpoint_window_bytes(), 62u * 128 * 584);
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCheckpoint), 62u * 128 * 584 + tail);
  // Compressed state ~5.0 KB/token (V4-FACTS): CSA 146 + indexer 17 per CSA layer, HCA 4.56.
  const double compressed = l.BytesPerToken(Family::kCsa) + l.BytesPerToken(Family::kCsaIndex) +
                            l.BytesPerToken(Family::kHca);
  EXPECT_NEAR(compressed, 30 * (146 + 17) + 31 * 4.5625, 1e-9);
  EXPECT_NEAR(compressed / 1000.0, 5.0, 0.05);
}

TEST(LayoutTest, V4FlashNumbersFromV4Facts) {
  const CacheLayout l = LayoutOf("v4-flash.json");
  EXPECT_EQ(l.csa_layers(), 21);
  EXPECT_EQ(l.hca_layers(), 20);
  EXPECT_EQ(l.swa_layers(), 44);
  const double swa_entries =
      double(l.FamilyBlockBytes(Family::kSwa) - l.checkpoint_carry_bytes()) / 256;
  EXPECT_DOUBLE_EQ(swa_entries, 44.0 * 584);  // 25.7 KB
  const double compressed = l.BytesPerToken(Family::kCsa) + l.BytesPerToken(Family::kCsaIndex) +
                            l.BytesPerToken(Family::kHca);
  EXPECT_NEAR(compressed / 1000.0, 3.5, 0.05);
  // "SWA is approximately 8 times larger than the compressed entries."
  EXPECT_NEAR(swa_entries / compressed, 7.4, 0.2);
}

TEST(LayoutTest, TinyConformanceConfig) {
  const CacheLayout l = LayoutOf("v4-tiny.json");
  EXPECT_EQ(l.csa_layers(), 2);
  EXPECT_EQ(l.hca_layers(), 1);
  EXPECT_EQ(l.swa_layers(), 5);
  EXPECT_EQ(l.main_entry_bytes(), 200u);  // 64 FP8 + 64 BF16 + 1 scale, padded to 8
  EXPECT_EQ(l.index_entry_bytes(), 34u);  // 64 FP4 = 32 B + 2 scales
}

TEST(LayoutTest, FingerprintSeparatesLayouts) {
  const CacheLayout a = LayoutOf("v4-pro.json", 256), b = LayoutOf("v4-pro.json", 512),
                    c = LayoutOf("v4-flash.json", 256);
  EXPECT_NE(a.fingerprint(), b.fingerprint());
  EXPECT_NE(a.fingerprint(), c.fingerprint());
  EXPECT_EQ(a.fingerprint(), LayoutOf("v4-pro.json", 256).fingerprint());
  ModelShape s = a.shape();
  LayoutOptions lo;
  lo.numerics_version = 2;
  EXPECT_NE(CacheLayout::Make(s, lo)->fingerprint(), a.fingerprint());
}

TEST(LayoutTest, RejectsBadConfigs) {
  ModelShape s = LayoutOf("v4-tiny.json").shape();
  LayoutOptions lo;
  lo.block_size = 200;
  EXPECT_EQ(CacheLayout::Make(s, lo).status().code(), StatusCode::kInvalidArgument);
  ModelShape bad = s;
  bad.compress_ratios.pop_back();
  EXPECT_NE(CacheLayout::Make(bad, {}).status().message().find("compress_ratios"),
            std::string::npos);
  bad = s;
  bad.compress_ratios[1] = 8;
  EXPECT_FALSE(CacheLayout::Make(bad, {}).ok());
  bad = s;
  bad.rope_head_dim = bad.head_dim;
  EXPECT_FALSE(CacheLayout::Make(bad, {}).ok());
  EXPECT_FALSE(engine::ParseModelShape("{\"dim\": 4}", "x").ok());
  EXPECT_FALSE(engine::ParseModelShape("not json", "x").ok());
}

}  // namespace
}  // namespace strata
