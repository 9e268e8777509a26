#include "engine/weights_spec.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace strata::engine {
namespace {

std::string Case(const std::string& name, const std::string& file) {
  return std::string(STRATA_SOURCE_DIR) + "/../shared/conformance/" + name + "/" + file;
}

TEST(WeightsSpecTest, EveryConformanceCheckpointMatchesItsConfig) {
  if (!std::filesystem::exists(Case("v4-tiny-a1", "config.json")))
    GTEST_SKIP() << "no shared conformance folder";
  for (const char* c : {"v4-tiny-a1", "v4-tiny-a2", "v4-tiny-a3"}) {
    auto cfg = LoadModelConfig(Case(c, "config.json"));
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    auto file = SafetensorsFile::Open(Case(c, "weights.safetensors"));
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    // The official state dict without the MTP block's aliases of embed / head.
    EXPECT_EQ(ExpectedTensors(*cfg).size(), (*file)->size()) << c;
    Status s = CheckWeights(**file, *cfg);
    EXPECT_TRUE(s.ok()) << c << ": " << s.ToString();
  }
}

TEST(WeightsSpecTest, WrongConfigNamesTheTensorsThatDisagree) {
  if (!std::filesystem::exists(Case("v4-tiny-a3", "config.json")))
    GTEST_SKIP() << "no shared conformance folder";
  auto a1 = LoadModelConfig(Case("v4-tiny-a1", "config.json"));
  auto a3_weights = SafetensorsFile::Open(Case("v4-tiny-a3", "weights.safetensors"));
  ASSERT_TRUE(a1.ok() && a3_weights.ok());
  Status s = CheckWeights(**a3_weights, *a1);  // a3's indexer head is 128 wide, a1's 64
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("layers.1.attn.indexer.wq_b.weight"), std::string::npos)
      << s.message();
  ModelConfig more = *a1;
  more.n_routed_experts = 9;
  s = CheckWeights(**a3_weights, more);
  EXPECT_NE(s.message().find("missing layers.0.ffn.experts.8.w1.weight"), std::string::npos)
      << s.message();
  ModelConfig fewer = *a1;
  fewer.shape.n_mtp_layers = 0;
  fewer.shape.compress_ratios.pop_back();
  s = CheckWeights(**a3_weights, fewer);
  EXPECT_NE(s.message().find("unexpected tensor mtp.0."), std::string::npos) << s.message();
}

TEST(ModelConfigTest, ShippedConfigsParseAndBadOnesAreClearErrors) {
  for (const char* m : {"v4-pro", "v4-flash", "v4-tiny"}) {
    auto c = LoadModelConfig(std::string(STRATA_SOURCE_DIR) + "/configs/models/" + m + ".json");
    ASSERT_TRUE(c.ok()) << m << ": " << c.status().ToString();
    EXPECT_EQ(c->score_func, ScoreFunc::kSqrtSoftplus);
  }
  auto pro = LoadModelConfig(std::string(STRATA_SOURCE_DIR) + "/configs/models/v4-pro.json");
  EXPECT_EQ(pro->n_routed_experts, 384);
  EXPECT_DOUBLE_EQ(pro->route_scale, 2.5);
  EXPECT_EQ(pro->o_groups, 16);
  const std::string base = R"("vocab_size": 64, "dim": 32, "n_layers": 1, "n_heads": 4,
      "head_dim": 128, "rope_head_dim": 64, "window_size": 128, "moe_inter_dim": 16,
      "n_routed_experts": 4, "n_activated_experts": 2, "q_lora_rank": 16, "o_lora_rank": 8,
      "index_n_heads": 2, "index_head_dim": 64, "index_topk": 4)";
  auto parse = [&](const std::string& extra) {
    return ParseModelConfig("{" + base + ", " + extra + "}", "t").status();
  };
  EXPECT_TRUE(parse(R"("o_groups": 2, "compress_ratios": [4])").ok());
  EXPECT_NE(parse(R"("o_groups": 3, "compress_ratios": [4])").message().find("o_groups"),
            std::string::npos);
  EXPECT_NE(parse(R"("o_groups": 2, "compress_ratios": [4, 0])").message().find("compress_ratios"),
            std::string::npos);
  EXPECT_NE(parse(R"("o_groups": 2, "compress_ratios": [16])").message().find("0, 4 or 128"),
            std::string::npos);
  EXPECT_NE(parse(R"("o_groups": 2, "compress_ratios": [4], "score_func": "relu")")
                .message()
                .find("score_func"),
            std::string::npos);
  EXPECT_NE(parse(R"("o_groups": "two", "compress_ratios": [4])").message().find("o_groups"),
            std::string::npos);
}

}  // namespace
}  // namespace strata::engine
