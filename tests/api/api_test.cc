// The public API library on its own: this executable links strata_api and GoogleTest only (no
// store, no engine, no RocksDB, liburing or LZ4), so it builds only while the API needs nothing
// else. It exercises block keys, the cache layout, StoreConfig validation and model shapes read
// from the shipped config files.
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "strata/keys.h"
#include "strata/layout.h"
#include "strata/model_shape.h"
#include "strata/store.h"

namespace strata {
namespace {

std::vector<int32_t> Tokens(size_t n, int32_t start = 0) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), start);
  return t;
}

BlockKey Root(std::string_view secret, uint64_t fingerprint) {
  return RootKey(std::as_bytes(std::span(secret.data(), secret.size())), fingerprint);
}

TEST(ApiAloneTest, KeysChainBlocksAndSeparateNamespacesAndLayouts) {
  const BlockKey root = Root("secret", 7);
  const std::vector<BlockKey> keys = ChainBlockKeys(root, Tokens(700), 256);
  ASSERT_EQ(keys.size(), 2u);  // complete blocks only
  EXPECT_EQ(keys[0], ChainKey(root, Tokens(256)));
  EXPECT_EQ(keys[1], ChainKey(keys[0], Tokens(256, 256)));
  EXPECT_NE(keys[0], keys[1]);
  // Same tokens, another secret or layout fingerprint: other keys.
  EXPECT_NE(ChainBlockKeys(Root("other", 7), Tokens(700), 256)[0], keys[0]);
  EXPECT_NE(ChainBlockKeys(Root("secret", 8), Tokens(700), 256)[0], keys[0]);
  // A changed token changes its block's key and every later one, not earlier ones.
  std::vector<int32_t> t = Tokens(768);
  const std::vector<BlockKey> a = ChainBlockKeys(root, t, 256);
  t[300] = -1;
  const std::vector<BlockKey> b = ChainBlockKeys(root, t, 256);
  EXPECT_EQ(a[0], b[0]);
  EXPECT_NE(a[1], b[1]);
  EXPECT_NE(a[2], b[2]);
  EXPECT_EQ(BlockKey({0x0123456789abcdefull, 0xfedcba9876543210ull}).ToHex(),
            "0123456789abcdeffedcba9876543210");
  EXPECT_EQ(NamespaceIdFromName("tenant-a"), NamespaceIdFromName("tenant-a"));
  EXPECT_NE(NamespaceIdFromName("tenant-a"), NamespaceIdFromName("tenant-b"));
}

// V4-Pro's shape as V4-FACTS.md lists it (vocab_size, which the layout ignores, aside): 61
// layers + 1 MTP, 30 CSA and 31 HCA layers.
ModelShape ProShape() {
  ModelShape s;
  s.name = "pro";
  s.vocab_size = 129280;
  s.dim = 7168;
  s.n_layers = 61;
  s.n_mtp_layers = 1;
  s.n_heads = 128;
  s.head_dim = 512;
  s.rope_head_dim = 64;
  s.window_size = 128;
  s.index_n_heads = 64;
  s.index_head_dim = 128;
  s.index_topk = 1024;
  s.hc_mult = 4;
  s.compress_ratios = {128, 128};
  for (int i = 0; i < 29; ++i) s.compress_ratios.insert(s.compress_ratios.end(), {4, 128});
  s.compress_ratios.insert(s.compress_ratios.end(), {4, 0});
  return s;
}

TEST(ApiAloneTest, LayoutOfV4ProFromTheFacts) {
  const ModelShape s = ProShape();
  ASSERT_EQ(s.compress_ratios.size(), 62u);
  auto l = CacheLayout::Make(s, LayoutOptions{});
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->csa_layers(), 30);
  EXPECT_EQ(l->hca_layers(), 31);
  EXPECT_EQ(l->main_entry_bytes(), 584u);
  EXPECT_EQ(l->index_entry_bytes(), 68u);
  // Per 256-token block: 30 x 64 x 584, 30 x 64 x 68, 31 x 2 x 584; tail 30 x (4 x 512 +
  // 4 x 128) x 2 x 4 + 4 x 7168 x 4 = 729,088; swa 62 x 256 x 584 + tail; checkpoint
  // 62 x 128 x 584 + tail.
  EXPECT_EQ(l->FamilyBlockBytes(Family::kCsa), 1121280u);
  EXPECT_EQ(l->FamilyBlockBytes(Family::kCsaIndex), 130560u);
  EXPECT_EQ(l->FamilyBlockBytes(Family::kHca), 36208u);
  EXPECT_EQ(l->FamilyBlockBytes(Family::kSwa), 9998336u);
  EXPECT_EQ(l->FamilyBlockBytes(Family::kCheckpoint), 5363712u);
  // The fingerprint follows the block size and the shape.
  LayoutOptions lo;
  lo.block_size = 512;
  EXPECT_NE(CacheLayout::Make(s, lo)->fingerprint(), l->fingerprint());
  EXPECT_EQ(CacheLayout::Make(s, LayoutOptions{})->fingerprint(), l->fingerprint());
  // Bad shapes and block sizes are clear errors.
  ModelShape bad = s;
  bad.compress_ratios[3] = 16;
  EXPECT_NE(CacheLayout::Make(bad, {}).status().message().find("0, 4 or 128"), std::string::npos);
  lo.block_size = 200;
  EXPECT_EQ(CacheLayout::Make(s, lo).status().code(), StatusCode::kInvalidArgument);
}

CacheLayout ShippedLayout(const std::string& model) {
  auto shape = ReadModelShape(std::string(STRATA_SOURCE_DIR) + "/configs/models/" + model);
  EXPECT_TRUE(shape.ok()) << shape.status().ToString();
  auto l = CacheLayout::Make(*shape, LayoutOptions{});  // 256-token blocks
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return *l;
}

// Expected sizes worked out from V4-FACTS.md ("Model shapes", "Cache byte layouts"): entry 584 B,
// indexer entry 68 B; per 256-token block a CSA layer holds 64 entries, an HCA layer 2, the
// swa family 256 entries of every layer (MTP included), the checkpoint the last 128; both add
// the block-end tail of strata/layout.h: per CSA layer (4 x 512 + 4 x 128) x kv+score x 4 B,
// plus the MTP layer's hidden state, hc_mult 4 x dim x 4 B.
TEST(ApiAloneTest, V4ProShapeFromItsConfig) {
  const CacheLayout l = ShippedLayout("v4-pro.json");
  EXPECT_EQ(l.shape().name, "v4-pro");
  EXPECT_EQ(l.shape().n_layers, 61);
  EXPECT_EQ(l.shape().n_mtp_layers, 1);
  EXPECT_EQ(l.csa_layers(), 30);
  EXPECT_EQ(l.hca_layers(), 31);
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCsa), 1121280u);         // 30 x 64 x 584
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCsaIndex), 130560u);     // 30 x 64 x 68
  EXPECT_EQ(l.FamilyBlockBytes(Family::kHca), 36208u);           // 31 x 2 x 584
  EXPECT_EQ(l.checkpoint_carry_bytes(), 729088u);                // 30 x 2560 x 8 + 4 x 7168 x 4
  EXPECT_EQ(l.FamilyBlockBytes(Family::kSwa), 9998336u);         // 62 x 256 x 584 + tail
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCheckpoint), 5363712u);  // 62 x 128 x 584 + tail
  // The same layout as the shape built by hand from the facts table.
  auto by_hand = CacheLayout::Make(ProShape(), LayoutOptions{});
  ASSERT_TRUE(by_hand.ok());
  for (Family f : kAllFamilies) EXPECT_EQ(l.FamilyBlockBytes(f), by_hand->FamilyBlockBytes(f));
}

TEST(ApiAloneTest, V4FlashShapeFromItsConfig) {
  const CacheLayout l = ShippedLayout("v4-flash.json");
  EXPECT_EQ(l.shape().n_layers, 43);
  EXPECT_EQ(l.csa_layers(), 21);
  EXPECT_EQ(l.hca_layers(), 20);
  EXPECT_EQ(l.swa_layers(), 44);
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCsa), 784896u);          // 21 x 64 x 584
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCsaIndex), 91392u);      // 21 x 64 x 68
  EXPECT_EQ(l.FamilyBlockBytes(Family::kHca), 23360u);           // 20 x 2 x 584
  EXPECT_EQ(l.checkpoint_carry_bytes(), 495616u);                // 21 x 2560 x 8 + 4 x 4096 x 4
  EXPECT_EQ(l.FamilyBlockBytes(Family::kSwa), 7073792u);         // 44 x 256 x 584 + tail
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCheckpoint), 3784704u);  // 44 x 128 x 584 + tail
}

TEST(ApiAloneTest, V4TinyShapeFromItsConfig) {
  // configs/models/v4-tiny.json: 4 layers + 1 MTP, ratios [0, 4, 128, 4, 0], head_dim 128 with
  // 64 rotary, indexer head dim 64, dim 256. Entry: 64 FP8 + 64 x 2 BF16 + 1 scale = 193 ->
  // 200 B; indexer entry 32 + 2 = 34 B.
  const CacheLayout l = ShippedLayout("v4-tiny.json");
  EXPECT_EQ(l.main_entry_bytes(), 200u);
  EXPECT_EQ(l.index_entry_bytes(), 34u);
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCsa), 25600u);      // 2 x 64 x 200
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCsaIndex), 4352u);  // 2 x 64 x 34
  EXPECT_EQ(l.FamilyBlockBytes(Family::kHca), 400u);        // 1 x 2 x 200
  // Tail: 2 x (4 x 128 + 4 x 64) x 2 x 4 + 4 x 256 x 4 = 16384.
  EXPECT_EQ(l.FamilyBlockBytes(Family::kSwa), 5u * 256 * 200 + 16384);
  EXPECT_EQ(l.FamilyBlockBytes(Family::kCheckpoint), 5u * 128 * 200 + 16384);
}

TEST(ApiAloneTest, ModelShapeErrorsNameTheProblem) {
  const std::string base = R"("vocab_size": 64, "dim": 32, "n_heads": 4, "head_dim": 128,
      "rope_head_dim": 64, "window_size": 128, "index_n_heads": 2, "index_head_dim": 64,
      "index_topk": 4)";
  auto parse = [&](const std::string& extra) {
    return ParseModelShape("{" + base + extra + "}", "t");
  };
  auto ok = parse(R"(, "n_layers": 1, "compress_ratios": [4])");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->name, "t");
  EXPECT_EQ(ok->hc_mult, 1);  // optional, default 1
  // The released checkpoints' names.
  auto hf = ParseModelShape(R"({"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 1,
      "num_nextn_predict_layers": 1, "num_attention_heads": 4, "head_dim": 128,
      "qk_rope_head_dim": 64, "sliding_window": 128, "compress_ratios": [0, 0]})",
                            "hf");
  ASSERT_TRUE(hf.ok()) << hf.status().ToString();
  EXPECT_EQ(hf->dim, 32);
  EXPECT_EQ(hf->n_mtp_layers, 1);
  EXPECT_EQ(hf->window_size, 128);
  auto message = [](const Result<ModelShape>& r) {
    return r.ok() ? std::string("ok") : r.status().message();
  };
  EXPECT_NE(message(parse(R"(, "compress_ratios": [4])")).find("n_layers"), std::string::npos);
  EXPECT_NE(message(parse(R"(, "n_layers": "one", "compress_ratios": [4])")).find("n_layers"),
            std::string::npos);
  EXPECT_NE(message(parse(R"(, "n_layers": 1)")).find("compress_ratios"), std::string::npos);
  EXPECT_NE(message(parse(R"(, "n_layers": 1, "compress_ratios": [4, 0])")).find("2 entries"),
            std::string::npos);
  EXPECT_NE(message(parse(R"(, "n_layers": 1, "n_mtp_layers": 1, "compress_ratios": [4, 4])"))
                .find("MTP"),
            std::string::npos);
  EXPECT_NE(message(ParseModelShape("[1, 2]", "t")).find("not a JSON object"), std::string::npos);
  EXPECT_FALSE(ParseModelShape("not json", "t").ok());
  auto missing = ReadModelShape(std::string(STRATA_SOURCE_DIR) + "/configs/models/absent.json");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(ApiAloneTest, StoreConfigValidationAndNames) {
  StoreConfig c;
  EXPECT_TRUE(c.Validate().ok()) << c.Validate().ToString();
  c.host.capacity_bytes = 100;
  EXPECT_NE(c.Validate().message().find("host.capacity_bytes"), std::string::npos);
  c = StoreConfig{};
  c.host.eviction = "mru";
  EXPECT_NE(c.Validate().message().find("lru, s3fifo, cost"), std::string::npos);
  c = StoreConfig{};
  c.nvme.admission = "sometimes";
  EXPECT_EQ(c.Validate().code(), StatusCode::kInvalidArgument);
  c = StoreConfig{};
  c.nvme.data_dir = "somewhere";  // only checked, never opened
  c.nvme.segment_bytes = 4096 * 300 + 1;
  EXPECT_NE(c.Validate().message().find("segment_bytes"), std::string::npos);
  c.nvme.segment_bytes = 1 << 20;
  c.nvme.capacity_bytes = 1 << 20;
  EXPECT_NE(c.Validate().message().find("at least 2 segments"), std::string::npos);
  c.nvme.capacity_bytes = 4 << 20;
  EXPECT_TRUE(c.Validate().ok());
  c.nvme.queue_depth = 0;
  EXPECT_NE(c.Validate().message().find("queue_depth"), std::string::npos);

  EXPECT_EQ(TierName(Tier::kDevice), "device");
  EXPECT_EQ(TierName(Tier::kHost), "host");
  EXPECT_EQ(TierName(Tier::kNvme), "nvme");
  EXPECT_EQ(TierName(Tier::kCluster), "cluster");
  EXPECT_EQ(DeviceKindName(DeviceKind::kIoUring), "io_uring");
  EXPECT_EQ(CodecKindName(CodecKind::kLz4Shuffle2), "lz4+shuffle2");
}

}  // namespace
}  // namespace strata
