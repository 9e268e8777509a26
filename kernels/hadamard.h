// Fast Walsh-Hadamard transform, normalised by 1/sqrt(n) (an orthonormal rotation), as V4's
// indexer applies to its queries and keys before FP4 quantisation. n must be a power of two.
// The butterfly order is fixed, so results do not depend on how many vectors are transformed
// together (batch-invariant).
// Thread safety: pure functions over caller-owned buffers.
#pragma once

#include <cstddef>

namespace strata::kernels {

// In place, on `count` contiguous vectors of `n` floats.
void HadamardTransform(float* data, size_t n, size_t count = 1);

}  // namespace strata::kernels
