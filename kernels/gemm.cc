#include "kernels/gemm.h"

#include <cmath>

#include "kernels/cpu_features.h"

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

float DotScalar(const float* x, const float* w, size_t k) {
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const size_t k8 = k / 8 * 8;
  for (size_t i = 0; i < k8; i += 8)
    for (int l = 0; l < 8; ++l) lanes[l] = std::fma(x[i + l], w[i + l], lanes[l]);
  float s = ReduceLanes(lanes);
  for (size_t i = k8; i < k; ++i) s = std::fma(x[i], w[i], s);
  return s;
}

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

__attribute__((target("avx2,fma"))) void GemmAvx2(const float* x, size_t m, size_t k,
                                                  const float* w, size_t n, float* y) {
  // Four rows of x against one row of w at a time: w streams once per four rows. Each
  // element's arithmetic is still exactly DotAvx2's.
  size_t r = 0;
  for (; r + 4 <= m; r += 4) {
    const float* x0 = x + r * k;
    for (size_t j = 0; j < n; ++j) {
      const float* wj = w + j * k;
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      const size_t k8 = k / 8 * 8;
      for (size_t i = 0; i < k8; i += 8) {
        const __m256 wv = _mm256_loadu_ps(wj + i);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + i), wv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + k + i), wv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + 2 * k + i), wv, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + 3 * k + i), wv, a3);
      }
      alignas(32) float lanes[4][8];
      _mm256_store_ps(lanes[0], a0);
      _mm256_store_ps(lanes[1], a1);
      _mm256_store_ps(lanes[2], a2);
      _mm256_store_ps(lanes[3], a3);
      for (int q = 0; q < 4; ++q) {
        float s = ReduceLanes(lanes[q]);
        const float* xq = x0 + size_t(q) * k;
        for (size_t i = k8; i < k; ++i) s = std::fma(xq[i], wj[i], s);
        y[(r + size_t(q)) * n + j] = s;
      }
    }
  }
  for (; r < m; ++r)
    for (size_t j = 0; j < n; ++j) y[r * n + j] = DotAvx2(x + r * k, w + j * k, k);
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

}  // namespace strata::kernels
