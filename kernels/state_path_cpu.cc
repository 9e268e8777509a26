#include <cmath>
#include <vector>

#include "kernels/entry_format.h"
#include "kernels/sparse_attention.h"
#include "kernels/state_path.h"
#include "kernels/v4_math.h"

namespace strata::kernels {

void CompressBlocksCpu(const CompressBlocksArgs& a) {
  for (int b = 0; b < a.blocks; ++b) {
    const size_t in = size_t(b) * size_t(a.rows) * size_t(a.d);
    float* e = a.out + size_t(b) * size_t(a.d);
    for (int c = 0; c < a.d; ++c) GatedPoolChannel(a.kv + in, a.score + in, a.rows, a.d, e, c);
    FinishCompressedEntry(e, a.d, a.rope_dim, a.norm, a.eps,
                          a.rope + size_t(b) * size_t(a.rope_dim), a.rotate, a.bf16_rope);
  }
}

void IndexerTopKCpu(const IndexerTopKArgs& a) {
  std::vector<float> scores;
  for (int q = 0; q < a.queries; ++q) {
    const int visible = a.visible[q];
    int32_t* out = a.out + size_t(q) * size_t(a.k);
    for (int j = 0; j < a.k; ++j) out[j] = -1;
    if (visible <= 0) continue;
    scores.resize(size_t(visible));
    const float* qq = a.q + size_t(q) * size_t(a.heads) * size_t(a.dim);
    const float* w = a.w + size_t(q) * size_t(a.heads);
    for (int t = 0; t < visible; ++t)
      scores[size_t(t)] = IndexScore(qq, w, a.keys + size_t(t) * size_t(a.dim), a.heads, a.dim);
    TopKLowerIndexWins(scores.data(), visible, a.k < visible ? a.k : visible, out);
  }
}

void SparseAttentionBatchCpu(const SparseAttentionArgs& a) {
  for (int q = 0; q < a.queries; ++q) {
    const size_t off = size_t(q) * size_t(a.heads) * size_t(a.dim);
    SparseAttentionCpu({a.q + off, a.kv, a.idx + size_t(q) * size_t(a.count), a.sink, a.out + off,
                        a.heads, a.dim, a.count, a.scale});
  }
}

void SwaRingWriteCpu(const SwaRingWriteArgs& a) {
  for (int i = a.n > a.window ? a.n - a.window : 0; i < a.n; ++i) {
    float* dst = a.ring + size_t((a.start + i) % a.window) * size_t(a.dim);
    const float* src = a.rows + size_t(i) * size_t(a.dim);
    for (int j = 0; j < a.dim; ++j) dst[j] = src[j];
  }
}

void PackMainEntriesCpu(const float* in, int n, int head_dim, int rope_dim, uint8_t* out) {
  const size_t sz = size_t(MainEntrySize(head_dim, rope_dim));
  for (int i = 0; i < n; ++i)
    PackMainEntry(in + size_t(i) * size_t(head_dim), head_dim, rope_dim, out + size_t(i) * sz);
}

void UnpackMainEntriesCpu(const uint8_t* in, int n, int head_dim, int rope_dim, float* out) {
  const size_t sz = size_t(MainEntrySize(head_dim, rope_dim));
  for (int i = 0; i < n; ++i)
    UnpackMainEntry(in + size_t(i) * sz, head_dim, rope_dim, out + size_t(i) * size_t(head_dim));
}

void PackIndexEntriesCpu(const float* in, int n, int dim, uint8_t* out) {
  const size_t sz = size_t(IndexEntrySize(dim));
  for (int i = 0; i < n; ++i)
    PackIndexEntry(in + size_t(i) * size_t(dim), dim, out + size_t(i) * sz);
}

void UnpackIndexEntriesCpu(const uint8_t* in, int n, int dim, float* out) {
  const size_t sz = size_t(IndexEntrySize(dim));
  for (int i = 0; i < n; ++i)
    UnpackIndexEntry(in + size_t(i) * sz, dim, out + size_t(i) * size_t(dim));
}

}  // namespace strata::kernels
