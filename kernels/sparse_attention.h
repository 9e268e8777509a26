// Sparse attention with a per-head sink, over gathered latent entries (one latent serves as K
// and V), and the deterministic top-k the indexer uses to gather them.
//
// Attention, per query and head h, over the selected entries j (index -1 = none):
//   s_j = scale * q_h . kv[idx_j],  M = max_j s_j,
//   o_h = sum_j e^(s_j - M) kv[idx_j] / (sum_j e^(s_j - M) + e^(sink_h - M))
// The sink is a logit in the denominator with no value. Reductions run in index-list order
// with fixed inner orders, so a query's output does not depend on the other queries computed
// with it.
//
// Top-k: indices of the k largest scores, ordered by descending score, ties broken by the lower
// index (so selections are deterministic); -1 fills the list when fewer than k are valid.
// Thread safety: pure functions over caller-owned buffers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata::kernels {

struct SparseAttentionParams {
  const float* q = nullptr;      // [heads, dim]
  const float* kv = nullptr;     // [entries, dim]
  const int32_t* idx = nullptr;  // [count], entries to attend; -1 = none
  const float* sink = nullptr;   // [heads] sink logits
  float* out = nullptr;          // [heads, dim]
  int heads = 0, dim = 0, count = 0;
  float scale = 1.0f;
};

void SparseAttentionCpu(const SparseAttentionParams& p);

// The same formula over entries given by row pointers (nullptr = none), in the given order, for
// callers whose entries live in several buffers (a ring, the current chunk, compressed pools).
// Dot products use kernels::Dot; the result depends only on q, the rows and their order.
void SparseAttentionRows(const float* q, const float* const* rows, int count, const float* sink,
                         int heads, int dim, float scale, float* out);

// scores[0, n): writes k indices to out (descending score, lower index first on ties, -1 fill).
// Scores that are NaN are never selected.
void TopKLowerIndexWins(const float* scores, int n, int k, int32_t* out);

}  // namespace strata::kernels
