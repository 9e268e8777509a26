#include "kernels/norm_hc.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace strata::kernels {
namespace {

TEST(RmsNormTest, UnitRmsTimesWeight) {
  std::vector<float> x = {3.0f, -4.0f, 0.0f, 5.0f}, w = {1.0f, 2.0f, 3.0f, 0.5f}, y(4);
  RmsNormRow(x.data(), w.data(), y.data(), 4, 0.0f);
  const float rms = std::sqrt((9.0f + 16.0f + 25.0f) / 4.0f);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(y[size_t(i)], x[size_t(i)] / rms * w[size_t(i)]);
}

TEST(HcSinkhornTest, MixingMatrixBecomesDoublyStochastic) {
  const int hc = 4;
  std::mt19937 rng(9);
  std::normal_distribution<float> nd;
  std::vector<float> m((2 + hc) * hc), base((2 + hc) * hc);
  for (float& v : m) v = 3 * nd(rng);
  for (float& v : base) v = 0.1f * nd(rng);
  const float scale[3] = {1.1f, 0.9f, 1.3f};
  float pre[hc], post[hc], comb[hc * hc];
  HcSplitSinkhorn(m.data(), scale, base.data(), hc, 20, 1e-6f, pre, post, comb);
  for (int i = 0; i < hc; ++i) {
    EXPECT_GT(pre[i], 0.0f);
    EXPECT_LT(pre[i], 1.0f + 1e-5f);
    EXPECT_GT(post[i], 0.0f);
    EXPECT_LT(post[i], 2.0f);
  }
  for (int j = 0; j < hc; ++j) {
    float row = 0, col = 0;
    for (int k = 0; k < hc; ++k) {
      row += comb[j * hc + k];
      col += comb[k * hc + j];
    }
    EXPECT_NEAR(col, 1.0f, 1e-5f) << "columns were normalised last";
    EXPECT_NEAR(row, 1.0f, 1e-2f) << "rows converge";
  }
  // One iteration only normalises columns once after the softmax.
  float comb1[hc * hc];
  HcSplitSinkhorn(m.data(), scale, base.data(), hc, 1, 1e-6f, pre, post, comb1);
  float col0 = 0;
  for (int j = 0; j < hc; ++j) col0 += comb1[j * hc];
  EXPECT_NEAR(col0, 1.0f, 1e-5f);
}

}  // namespace
}  // namespace strata::kernels
