#include "kernels/sparse_attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace strata::kernels {
namespace {

TEST(SparseAttentionTest, MatchesTheFormulaWithSink) {
  const int heads = 3, dim = 16, entries = 10;
  std::mt19937 rng(2);
  std::normal_distribution<float> nd;
  std::vector<float> q(heads * dim), kv(entries * dim), out(heads * dim);
  for (float& v : q) v = nd(rng);
  for (float& v : kv) v = nd(rng);
  const float sink[heads] = {0.5f, -1.0f, 3.0f};
  const int32_t idx[6] = {7, 2, -1, 9, 0, 4};
  SparseAttentionParams p{q.data(), kv.data(), idx, sink, out.data(), heads, dim, 6, 0.25f};
  SparseAttentionCpu(p);
  for (int h = 0; h < heads; ++h) {
    // Double-precision reference of the documented formula.
    std::vector<double> s;
    double mx = -INFINITY;
    for (int32_t j : idx) {
      if (j < 0) continue;
      double dot = 0;
      for (int d = 0; d < dim; ++d) dot += double(q[size_t(h * dim + d)]) * kv[size_t(j * dim + d)];
      s.push_back(0.25 * dot);
      mx = std::max(mx, s.back());
    }
    double denom = std::exp(double(sink[h]) - mx);
    for (double v : s) denom += std::exp(v - mx);
    for (int d = 0; d < dim; ++d) {
      double o = 0;
      size_t t = 0;
      for (int32_t j : idx) {
        if (j < 0) continue;
        o += std::exp(s[t++] - mx) * kv[size_t(j * dim + d)];
      }
      EXPECT_NEAR(out[size_t(h * dim + d)], o / denom, 1e-5) << h << " " << d;
    }
  }
  // No valid entry: all weight on the sink, output zero.
  const int32_t none[2] = {-1, -1};
  p.idx = none;
  p.count = 2;
  SparseAttentionCpu(p);
  for (float v : out) EXPECT_EQ(v, 0.0f);
}

TEST(TopKTest, LowerIndexWinsTiesAndFillsWithMinusOne) {
  const float s[8] = {1.0f, 3.0f, 3.0f, NAN, 0.0f, 3.0f, 2.0f, 0.0f};
  int32_t out[5];
  TopKLowerIndexWins(s, 8, 5, out);
  EXPECT_EQ(std::vector<int32_t>(out, out + 5), (std::vector<int32_t>{1, 2, 5, 6, 0}));
  int32_t out2[3];
  TopKLowerIndexWins(s, 8, 3, out2);
  EXPECT_EQ(std::vector<int32_t>(out2, out2 + 3), (std::vector<int32_t>{1, 2, 5}));
  int32_t few[10];
  TopKLowerIndexWins(s, 8, 10, few);
  EXPECT_EQ(few[5], 4);  // of the two zeros, the lower index first
  EXPECT_EQ(few[6], 7);
  EXPECT_EQ(few[7], -1) << "NaN is never selected: 7 valid scores";
  EXPECT_EQ(few[9], -1);
  const float zeros[4] = {0, 0, 0, 0};
  int32_t z[2];
  TopKLowerIndexWins(zeros, 4, 2, z);
  EXPECT_EQ(z[0], 0);
  EXPECT_EQ(z[1], 1);
}

}  // namespace
}  // namespace strata::kernels
