#include <cmath>

#include "kernels/fp8.h"
#include "kernels/fp8_math.h"

namespace strata::kernels {

void QuantizeFp8BlocksCpu(const Fp8BlockParams& p) {
  for (size_t b = 0; b < p.n / p.block; ++b) {
    const float* x = p.in + b * p.block;
    float amax = 0.0f;
    for (size_t i = 0; i < p.block; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    const uint8_t s = Ue8m0ScaleFor(amax);
    p.scales[b] = s;
    const float inv = 1.0f / Ue8m0ToFloat(s);  // exact: a power of two
    for (size_t i = 0; i < p.block; ++i) p.out[b * p.block + i] = FloatToFp8E4m3(x[i] * inv);
  }
}

void DequantizeFp8BlocksCpu(const uint8_t* in, const uint8_t* scales, float* out, size_t n,
                            size_t block) {
  for (size_t i = 0; i < n; ++i) out[i] = Fp8E4m3ToFloat(in[i]) * Ue8m0ToFloat(scales[i / block]);
}

}  // namespace strata::kernels
