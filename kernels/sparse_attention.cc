#include "kernels/sparse_attention.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/gemm.h"

namespace strata::kernels {

void SparseAttentionCpu(const SparseAttentionParams& p) {
  std::vector<const float*> rows(size_t(p.count));
  for (int j = 0; j < p.count; ++j)
    rows[size_t(j)] = p.idx[j] >= 0 ? p.kv + size_t(p.idx[j]) * size_t(p.dim) : nullptr;
  SparseAttentionRows(p.q, rows.data(), p.count, p.sink, p.heads, p.dim, p.scale, p.out);
}

void SparseAttentionRows(const float* q, const float* const* rows, int count, const float* sink,
                         int heads, int dim, float scale, float* out) {
  std::vector<float> s(size_t(count) + 1);
  for (int h = 0; h < heads; ++h) {
    const float* qh = q + size_t(h) * size_t(dim);
    float* o = out + size_t(h) * size_t(dim);
    float mx = -INFINITY;
    for (int j = 0; j < count; ++j) {
      if (!rows[j]) continue;
      s[size_t(j)] = scale * Dot(qh, rows[j], size_t(dim));
      mx = std::max(mx, s[size_t(j)]);
    }
    std::fill(o, o + dim, 0.0f);
    if (mx == -INFINITY) continue;
    float denom = 0.0f;
    for (int j = 0; j < count; ++j) {
      if (!rows[j]) continue;
      const float e = std::exp(s[size_t(j)] - mx);
      denom += e;
      const float* kv = rows[j];
      for (int d = 0; d < dim; ++d) o[d] += e * kv[d];
    }
    denom += std::exp(sink[h] - mx);
    const float inv = 1.0f / denom;
    for (int d = 0; d < dim; ++d) o[d] *= inv;
  }
}

void TopKLowerIndexWins(const float* scores, int n, int k, int32_t* out) {
  std::vector<int32_t> order;
  order.reserve(size_t(n));
  for (int i = 0; i < n; ++i)
    if (!std::isnan(scores[i])) order.push_back(i);
  const size_t take = std::min(order.size(), size_t(std::max(k, 0)));
  // Descending by score; equal scores keep ascending index order.
  std::partial_sort(order.begin(), order.begin() + long(take), order.end(),
                    [&](int32_t a, int32_t b) {
                      return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
                    });
  for (int i = 0; i < k; ++i) out[i] = size_t(i) < take ? order[size_t(i)] : -1;
}

}  // namespace strata::kernels
