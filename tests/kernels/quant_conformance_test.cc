// The reference's caches hold FP8- and FP4-simulated values. Re-quantising them with our codecs
// must give back exactly the same floats: a check of grids, scales and rounding against the
// official implementation's data.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/safetensors.h"
#include "kernels/fp4_math.h"
#include "kernels/fp8.h"

namespace strata::kernels {
namespace {

std::string Vectors(const char* c) {
  return std::string(STRATA_SOURCE_DIR) + "/../shared/conformance/" + c + "/vectors.safetensors";
}

TEST(QuantConformanceTest, CachedLatentsAreFixedPointsOfOurFp8) {
  if (!std::filesystem::exists(Vectors("v4-tiny-a1"))) GTEST_SKIP() << "no conformance folder";
  auto f = engine::SafetensorsFile::Open(Vectors("v4-tiny-a1"));
  ASSERT_TRUE(f.ok());
  // Layer 0 (SWA only), after prefill: 128 live ring rows of 128 dims, the first 64 FP8-simulated.
  auto kv = engine::ToFloats(*(*f)->Get("after_prefill.layers.0.attn.kv_cache"));
  ASSERT_TRUE(kv.ok());
  size_t checked = 0;
  for (size_t row = 0; row < 128; ++row) {
    const float* x = kv->data() + row * 128;
    uint8_t q[64], s;
    float back[64];
    QuantizeFp8BlocksCpu({x, q, &s, 64, 64});
    DequantizeFp8BlocksCpu(q, &s, back, 64, 64);
    for (int i = 0; i < 64; ++i) ASSERT_EQ(back[i], x[i]) << "row " << row << " dim " << i;
    ++checked;
  }
  EXPECT_EQ(checked, 128u);
}

TEST(QuantConformanceTest, CachedIndexerKeysAreFixedPointsOfOurFp4) {
  if (!std::filesystem::exists(Vectors("v4-tiny-a1"))) GTEST_SKIP() << "no conformance folder";
  auto f = engine::SafetensorsFile::Open(Vectors("v4-tiny-a1"));
  auto keys = engine::ToFloats(*(*f)->Get("after_prefill.layers.1.attn.indexer.kv_cache"));
  ASSERT_TRUE(keys.ok());
  for (size_t row = 0; row < 256; ++row)  // the live rows
    for (size_t b = 0; b < 2; ++b) {      // 64 dims, blocks of 32
      const float* x = keys->data() + row * 64 + b * 32;
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
      const float s = Ue8m0ToFloat(Ue8m0ScaleForFp4(amax));
      for (int i = 0; i < 32; ++i)
        ASSERT_EQ(Fp4E2m1ToFloat(FloatToFp4E2m1(x[i] / s)) * s, x[i])
            << row << " " << b << " " << i;
    }
}

}  // namespace
}  // namespace strata::kernels
