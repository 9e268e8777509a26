#include "kernels/gemm.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu_features.h"
#include "kernels/thread_pool.h"
#include "kernels/v4_math.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace strata::kernels {
namespace {

// Lanes 0..7 -> one sum, in the fixed order (0+4, 1+5, 2+6, 3+7), (0+2, 1+3), (0+1).
inline float ReduceLanes(const float* l) {
  const float a0 = l[0] + l[4], a1 = l[1] + l[5], a2 = l[2] + l[6], a3 = l[3] + l[7];
  const float b0 = a0 + a2, b1 = a1 + a3;
  return b0 + b1;
}

// The scalar path is the shared HOST_DEVICE dot (same order as the AVX2 lanes).
float DotScalar(const float* x, const float* w, size_t k) { return Dot8(x, w, int(k)); }

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float DotAvx2(const float* x, const float* w, size_t k) {
  __m256 acc = _mm256_setzero_ps();
  const size_t k8 = k / 8 * 8;
  for (size_t i = 0; i < k8; i += 8)
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(w + i), acc);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  float s = ReduceLanes(lanes);
  for (size_t i = k8; i < k; ++i) s = std::fma(x[i], w[i], s);
  return s;
}

// Four rows of x against two rows of w at a time (8 accumulators): x and w each stream once
// per tile. Each element's arithmetic is still exactly DotAvx2's: one accumulator per output,
// FMAs over k in order, then ReduceLanes and the tail.
// Columns [j_begin, j_end) of y (row stride ldy).
__attribute__((target("avx2,fma"))) void GemmAvx2Tile(const float* x, size_t m, size_t k,
                                                      const float* w, size_t j_begin, size_t j_end,
                                                      float* y, size_t ldy) {
  const size_t k8 = k / 8 * 8;
  const size_t n = ldy;
  size_t r = 0;
  for (; r + 4 <= m; r += 4) {
    const float* x0 = x + r * k;
    const float* x1 = x0 + k;
    const float* x2 = x1 + k;
    const float* x3 = x2 + k;
    size_t j = j_begin;
    for (; j + 2 <= j_end; j += 2) {
      const float* w0 = w + j * k;
      const float* w1 = w0 + k;
      __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
             a30 = a00, a31 = a00;
      for (size_t i = 0; i < k8; i += 8) {
        const __m256 v0 = _mm256_loadu_ps(w0 + i), v1 = _mm256_loadu_ps(w1 + i);
        __m256 u = _mm256_loadu_ps(x0 + i);
        a00 = _mm256_fmadd_ps(u, v0, a00);
        a01 = _mm256_fmadd_ps(u, v1, a01);
        u = _mm256_loadu_ps(x1 + i);
        a10 = _mm256_fmadd_ps(u, v0, a10);
        a11 = _mm256_fmadd_ps(u, v1, a11);
        u = _mm256_loadu_ps(x2 + i);
        a20 = _mm256_fmadd_ps(u, v0, a20);
        a21 = _mm256_fmadd_ps(u, v1, a21);
        u = _mm256_loadu_ps(x3 + i);
        a30 = _mm256_fmadd_ps(u, v0, a30);
        a31 = _mm256_fmadd_ps(u, v1, a31);
      }
      alignas(32) float lanes[8][8];
      _mm256_store_ps(lanes[0], a00);
      _mm256_store_ps(lanes[1], a01);
      _mm256_store_ps(lanes[2], a10);
      _mm256_store_ps(lanes[3], a11);
      _mm256_store_ps(lanes[4], a20);
      _mm256_store_ps(lanes[5], a21);
      _mm256_store_ps(lanes[6], a30);
      _mm256_store_ps(lanes[7], a31);
      const float* xs[4] = {x0, x1, x2, x3};
      for (int q = 0; q < 4; ++q)
        for (int c = 0; c < 2; ++c) {
          float s = ReduceLanes(lanes[2 * q + c]);
          const float* wc = c ? w1 : w0;
          for (size_t i = k8; i < k; ++i) s = std::fma(xs[q][i], wc[i], s);
          y[(r + size_t(q)) * n + j + size_t(c)] = s;
        }
    }
    for (; j < j_end; ++j)
      for (size_t q = 0; q < 4; ++q) y[(r + q) * n + j] = DotAvx2(x + (r + q) * k, w + j * k, k);
  }
  for (; r < m; ++r)
    for (size_t j = j_begin; j < j_end; ++j) y[r * n + j] = DotAvx2(x + r * k, w + j * k, k);
}

// Column blocks small enough to stay in L2 while every row tile passes over them. Only the
// loop order changes; each element's arithmetic does not.
size_t ColumnBlock(size_t k) {
  constexpr size_t kL2Bytes = 512 << 10;
  return std::max<size_t>(2, kL2Bytes / (k * sizeof(float)) / 2 * 2);
}

// Column blocks are independent: spread them over the cores when the work pays for it.
bool SpreadColumnBlocks(size_t m, size_t k, size_t n) {
  const size_t blocks = (n + ColumnBlock(k) - 1) / ColumnBlock(k);
  return blocks > 1 && double(m) * double(n) * double(k) >= double(1 << 22);
}

__attribute__((target("avx2,fma"))) void GemmAvx2(const float* x, size_t m, size_t k,
                                                  const float* w, size_t n, float* y) {
  const size_t nc = ColumnBlock(k);
  const size_t blocks = (n + nc - 1) / nc;
  auto run = [&](size_t b) { GemmAvx2Tile(x, m, k, w, b * nc, std::min(n, (b + 1) * nc), y, n); };
  if (SpreadColumnBlocks(m, k, n)) {
    ThreadPool::Default().ParallelFor(blocks, run);
  } else {
    for (size_t b = 0; b < blocks; ++b) run(b);
  }
}
#endif

}  // namespace

GemmPath BestGemmPath() {
  const CpuFeatures& f = DetectCpuFeatures();
  return f.avx2 && f.fma ? GemmPath::kAvx2 : GemmPath::kScalar;
}

void Gemm(const float* x, size_t m, size_t k, const float* w, size_t n, float* y, GemmPath path) {
  if (path == GemmPath::kAuto) path = BestGemmPath();
#if defined(__x86_64__)
  if (path == GemmPath::kAvx2 && BestGemmPath() == GemmPath::kAvx2) {
    GemmAvx2(x, m, k, w, n, y);
    return;
  }
#endif
  for (size_t r = 0; r < m; ++r)
    for (size_t j = 0; j < n; ++j) y[r * n + j] = DotScalar(x + r * k, w + j * k, k);
}

size_t GemmThreads(size_t m, size_t k, size_t n) {
#if defined(__x86_64__)
  if (BestGemmPath() == GemmPath::kAvx2 && SpreadColumnBlocks(m, k, n))
    return std::min(ThreadPool::Default().size(), (n + ColumnBlock(k) - 1) / ColumnBlock(k));
#endif
  return 1;
}

float Dot(const float* x, const float* w, size_t k, GemmPath path) {
  if (path == GemmPath::kAuto) path = BestGemmPath();
#if defined(__x86_64__)
  if (path == GemmPath::kAvx2 && BestGemmPath() == GemmPath::kAvx2) return DotAvx2(x, w, k);
#endif
  return DotScalar(x, w, k);
}

}  // namespace strata::kernels
