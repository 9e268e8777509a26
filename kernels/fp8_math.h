// FP8 e4m3 (OCP "fn": no infinities, max 448, NaN = 0x7f/0xff) and UE8M0 (a power-of-two
// scale stored as a biased exponent) scalar codecs. Round to nearest, ties to even; values
// beyond 448 saturate. HOST_DEVICE: the same code runs in the CPU and CUDA paths.
#pragma once

#include <math.h>
#include <string.h>

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
  if (a >= kFp8E4m3Max) return uint8_t(sign | 0x7e);  // clamp, as the reference does
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

// 2^ceil(log2(t)) for a positive normal t, as a UE8M0 byte, computed on the exponent bits (as
// the reference kernels do): the exponent, plus one when any mantissa bit is set.
STRATA_HD uint8_t Ue8m0CeilPow2(float t) {
  uint32_t bits;
  memcpy(&bits, &t, 4);
  int e = int((bits >> 23) & 0xff) - 127;
  if (bits & 0x7fffff) e += 1;
  int b = e + 127;
  return uint8_t(b < 0 ? 0 : (b > 254 ? 254 : b));
}

// The block scale of the reference's act_quant: amax floored at 1e-4, times fp32(1/448), rounded
// up to a power of two. Then x / scale fits e4m3 (clamped at 448 for the last-bit cases).
STRATA_HD uint8_t Ue8m0ScaleFor(float amax) {
  const float a = amax > 1e-4f ? amax : 1e-4f;
  return Ue8m0CeilPow2(a * (1.0f / kFp8E4m3Max));
}

}  // namespace strata::kernels
