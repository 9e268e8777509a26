// FP8 e4m3 (OCP "fn": no infinities, max 448, NaN = 0x7f/0xff) and UE8M0 (a power-of-two
// scale stored as a biased exponent) scalar codecs. Round to nearest, ties to even; values
// beyond 448 saturate. HOST_DEVICE: the same code runs in the CPU and CUDA paths.
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/host_device.h"

namespace strata::kernels {

inline constexpr float kFp8E4m3Max = 448.0f;

STRATA_HD float Fp8E4m3ToFloat(uint8_t b) {
  const float sign = (b & 0x80) ? -1.0f : 1.0f;
  const int e = (b >> 3) & 0xf, m = b & 0x7;
  if (e == 15 && m == 7) return NAN;
  if (e == 0) return sign * ldexpf(float(m), -9);
  return sign * ldexpf(float(8 + m), e - 10);
}

STRATA_HD uint8_t FloatToFp8E4m3(float x) {
  if (x != x) return 0x7f;
  const uint8_t sign = (x < 0.0f || copysignf(1.0f, x) < 0.0f) ? 0x80 : 0;
  float a = fabsf(x);
  if (a >= kFp8E4m3Max) return uint8_t(sign | 0x7e);
  if (a < ldexpf(1.0f, -6)) {  // subnormal: multiples of 2^-9; q == 8 is the smallest normal
    const int q = int(rintf(ldexpf(a, 9)));
    return uint8_t(sign | q);
  }
  int e;
  const float frac = frexpf(a, &e);  // a = frac * 2^e, frac in [0.5, 1)
  int q = int(rintf((frac * 2.0f - 1.0f) * 8.0f));
  int exp = e - 1;
  if (q == 8) {
    q = 0;
    ++exp;
  }
  const int biased = exp + 7;
  uint8_t bits = uint8_t((biased << 3) | q);
  if (bits > 0x7e) bits = 0x7e;
  return uint8_t(sign | bits);
}

// UE8M0: value 2^(b - 127).
STRATA_HD float Ue8m0ToFloat(uint8_t b) { return ldexpf(1.0f, int(b) - 127); }

// The smallest power-of-two scale s with amax / s <= 448, as UE8M0.
STRATA_HD uint8_t Ue8m0ScaleFor(float amax) {
  if (!(amax > 0.0f)) return 127;  // scale 1
  int e;
  frexpf(amax / kFp8E4m3Max, &e);  // amax/448 = f * 2^e, f in [0.5,1): 2^e >= amax/448
  const float pow_below = ldexpf(1.0f, e - 1);
  if (pow_below >= amax / kFp8E4m3Max) e -= 1;  // exact power of two
  int b = e + 127;
  if (b < 0) b = 0;
  if (b > 254) b = 254;
  return uint8_t(b);
}

}  // namespace strata::kernels
