#include "kernels/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "engine/model_config.h"
#include "engine/safetensors.h"

namespace strata::kernels {
namespace {

std::string CaseDir(const char* c) {
  return std::string(STRATA_SOURCE_DIR) + "/../shared/conformance/" + c + "/";
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

// The reference tables of the official code: SWA-only layers plain RoPE (rope_theta), compressed
// layers compress_rope_theta with YaRN.
TEST(RopeTest, MatchesTheReferenceTables) {
  if (!std::filesystem::exists(CaseDir("v4-tiny-a1"))) GTEST_SKIP() << "no conformance folder";
  for (const char* c : {"v4-tiny-a1", "v4-tiny-a3"}) {
    auto cfg = engine::LoadModelConfig(CaseDir(c) + "config.json");
    auto vec = engine::SafetensorsFile::Open(CaseDir(c) + "vectors.safetensors");
    ASSERT_TRUE(cfg.ok() && vec.ok());
    auto swa_ref = engine::ToFloats(*(*vec)->Get("rope.freqs_cis.swa"));
    auto comp_ref = engine::ToFloats(*(*vec)->Get("rope.freqs_cis.compressed"));
    const int positions = int((*vec)->Get("rope.freqs_cis.swa")->shape[0]);
    const int rd = cfg->shape.rope_head_dim;
    const auto swa = RopeTable(rd, positions, cfg->rope_theta, YarnParams{});
    YarnParams y{true, cfg->rope_factor, cfg->original_seq_len, cfg->beta_fast, cfg->beta_slow};
    const auto comp = RopeTable(rd, positions, cfg->compress_rope_theta, y);
    YarnParams no_yarn;
    const auto comp_plain = RopeTable(rd, positions, cfg->compress_rope_theta, no_yarn);
    const double e_swa = MaxAbsDiff(swa, *swa_ref), e_comp = MaxAbsDiff(comp, *comp_ref),
                 e_plain = MaxAbsDiff(comp_plain, *comp_ref);
    std::cout << c << ": max |diff| swa " << e_swa << ", compressed with YaRN " << e_comp
              << ", without " << e_plain << "\n";
    EXPECT_LT(e_swa, 1e-6);
    EXPECT_LT(e_comp, 1e-6) << "compressed layers apply YaRN whatever max_seq_len is";
    EXPECT_GT(e_plain, 0.1) << "and without it the table is far off";
  }
}

TEST(RopeTest, YarnOnlyStretchesLowFrequencies) {
  const auto plain = RopeInverseFrequencies(64, 160000.0, {});
  const auto yarn = RopeInverseFrequencies(64, 160000.0, {true, 16.0, 65536, 32.0, 1.0});
  EXPECT_FLOAT_EQ(yarn[0], plain[0]) << "fastest pair untouched";
  EXPECT_NEAR(yarn[31], plain[31] / 16.0f, plain[31] * 1e-5f) << "slowest pair divided by factor";
  for (size_t i = 1; i < yarn.size(); ++i) EXPECT_LT(yarn[i], yarn[i - 1]);
}

}  // namespace
}  // namespace strata::kernels
