#include "kernels/hadamard.h"

#include "kernels/v4_math.h"

namespace strata::kernels {

void HadamardTransform(float* data, size_t n, size_t count) {
  for (size_t v = 0; v < count; ++v) HadamardInPlace(data + v * n, int(n));
}

}  // namespace strata::kernels
