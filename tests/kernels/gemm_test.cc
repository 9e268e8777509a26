#include "kernels/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace strata::kernels {
namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

TEST(GemmTest, CloseToADoublePrecisionReference) {
  const size_t m = 5, k = 203, n = 17;
  const auto x = Random(m * k, 1), w = Random(n * k, 2);
  std::vector<float> y(m * n);
  Gemm(x.data(), m, k, w.data(), n, y.data());
  for (size_t r = 0; r < m; ++r)
    for (size_t j = 0; j < n; ++j) {
      double ref = 0;
      for (size_t i = 0; i < k; ++i) ref += double(x[r * k + i]) * w[j * k + i];
      EXPECT_NEAR(y[r * n + j], ref, 1e-4 * std::sqrt(double(k)));
    }
}

// A token's outputs are bitwise the same however many tokens are computed with it, and on
// either code path.
TEST(GemmTest, BatchInvariantAndPathInvariant) {
  const size_t k = 1029, n = 33, m = 37;
  const auto x = Random(m * k, 3), w = Random(n * k, 4);
  std::vector<float> all(m * n);
  Gemm(x.data(), m, k, w.data(), n, all.data());
  for (size_t rows : {size_t(1), size_t(3), size_t(4), size_t(9)}) {
    for (size_t start = 0; start + rows <= m; start += rows) {
      std::vector<float> part(rows * n);
      Gemm(x.data() + start * k, rows, k, w.data(), n, part.data());
      ASSERT_EQ(std::memcmp(part.data(), all.data() + start * n, part.size() * 4), 0)
          << rows << " rows from " << start;
    }
  }
  std::vector<float> scalar(m * n);
  Gemm(x.data(), m, k, w.data(), n, scalar.data(), GemmPath::kScalar);
  EXPECT_EQ(std::memcmp(scalar.data(), all.data(), all.size() * 4), 0)
      << "the scalar path computes the same bits as the vector path";
}

// Large enough to be spread over the thread pool; each row alone runs on one thread.
TEST(GemmTest, ThreadedResultEqualsOneRowAtATime) {
  const size_t m = 64, k = 1024, n = 300;
  const auto x = Random(m * k, 5), w = Random(n * k, 6);
  std::vector<float> all(m * n);
  Gemm(x.data(), m, k, w.data(), n, all.data());
  for (size_t r = 0; r < m; ++r) {
    std::vector<float> row(n);
    Gemm(x.data() + r * k, 1, k, w.data(), n, row.data());
    ASSERT_EQ(std::memcmp(row.data(), all.data() + r * n, n * 4), 0) << "row " << r;
  }
}

}  // namespace
}  // namespace strata::kernels
