#include "kernels/hadamard.h"

#include <cmath>

namespace strata::kernels {

void HadamardTransform(float* data, size_t n, size_t count) {
  const float norm = 1.0f / std::sqrt(float(n));
  for (size_t v = 0; v < count; ++v) {
    float* x = data + v * n;
    for (size_t h = 1; h < n; h *= 2)
      for (size_t i = 0; i < n; i += 2 * h)
        for (size_t j = i; j < i + h; ++j) {
          const float a = x[j], b = x[j + h];
          x[j] = a + b;
          x[j + h] = a - b;
        }
    for (size_t i = 0; i < n; ++i) x[i] *= norm;
  }
}

}  // namespace strata::kernels
