#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/fp4_math.h"
#include "kernels/hadamard.h"

namespace strata::kernels {
namespace {

TEST(Fp4Test, EveryCodeRoundTripsAndEncodingIsNearest) {
  for (uint8_t c = 0; c < 16; ++c) {
    if (c == 8) continue;  // -0
    EXPECT_EQ(FloatToFp4E2m1(Fp4E2m1ToFloat(c)), c) << int(c);
  }
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-7.0f, 7.0f);
  for (int i = 0; i < 10000; ++i) {
    const float x = u(rng);
    const float q = Fp4E2m1ToFloat(FloatToFp4E2m1(x));
    for (uint8_t c = 0; c < 16; ++c)
      EXPECT_LE(std::fabs(q - x), std::fabs(Fp4E2m1ToFloat(c) - x) + 1e-7f) << x;
  }
  EXPECT_EQ(FloatToFp4E2m1(0.25f), 0) << "tie to even";
  EXPECT_EQ(FloatToFp4E2m1(0.75f), 2) << "tie to even";
  EXPECT_EQ(FloatToFp4E2m1(2.5f), 4) << "tie to even";
  EXPECT_EQ(FloatToFp4E2m1(100.0f), 7) << "saturates";
  EXPECT_EQ(Ue8m0ToFloat(Ue8m0ScaleForFp4(6.0f)), 1.0f);
  EXPECT_EQ(Ue8m0ToFloat(Ue8m0ScaleForFp4(6.1f)), 2.0f);
}

TEST(HadamardTest, OrthonormalSelfInverseAndBatchInvariant) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  std::vector<float> x(128 * 3);
  for (float& v : x) v = nd(rng);
  std::vector<float> y = x;
  HadamardTransform(y.data(), 128, 3);
  double nx = 0, ny = 0;
  for (size_t i = 0; i < 128; ++i) {
    nx += x[i] * x[i];
    ny += y[i] * y[i];
  }
  EXPECT_NEAR(nx, ny, nx * 1e-5) << "norm preserved";
  // One vector alone gives bitwise the same result as within a batch.
  std::vector<float> one(x.begin() + 128, x.begin() + 256);
  HadamardTransform(one.data(), 128);
  for (size_t i = 0; i < 128; ++i) ASSERT_EQ(one[i], y[128 + i]);
  HadamardTransform(y.data(), 128, 3);  // H is its own inverse
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], 1e-5f);
  std::vector<float> e(8, 0.0f);
  e[0] = 1.0f;
  HadamardTransform(e.data(), 8);
  for (float v : e) EXPECT_FLOAT_EQ(v, 1.0f / std::sqrt(8.0f));
}

}  // namespace
}  // namespace strata::kernels
