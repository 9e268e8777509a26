// Batch-invariant GEMM for linear layers: y[m, n] = sum_k x[m, k] * w[n, k] (w row-major
// [n, k], as checkpoints store linear weights).
//
// Batch invariance: every output element is one dot product computed in a fixed order that
// depends only on k: eight interleaved fused-multiply-add lanes (lane l takes k = l mod 8), a
// fixed pairwise reduction of the lanes, then the k mod 8 tail in order. So a token's outputs
// are bitwise the same whatever the number of rows computed with it, and the AVX2 path and the
// scalar path (std::fma in the same order) give the same bits; dispatch happens at run time.
// Thread safety: pure function over caller-owned buffers.
#pragma once

#include <cstddef>

namespace strata::kernels {

enum class GemmPath { kAuto, kScalar, kAvx2 };

void Gemm(const float* x, size_t m, size_t k, const float* w, size_t n, float* y,
          GemmPath path = GemmPath::kAuto);

// The path kAuto resolves to on this CPU.
GemmPath BestGemmPath();

// Threads Gemm(kAuto) works with on this shape: the default pool (at most one thread per
// column block) when the work pays for spreading it, else 1 (the caller's). For benchmarks
// that label their figures.
size_t GemmThreads(size_t m, size_t k, size_t n);

// One dot product with exactly the arithmetic of one GEMM element (8 FMA lanes, fixed lane
// reduction, then the tail), whichever path runs it.
float Dot(const float* x, const float* w, size_t k, GemmPath path = GemmPath::kAuto);

}  // namespace strata::kernels
