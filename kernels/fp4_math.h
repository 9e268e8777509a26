// FP4 e2m1 scalar codec (values 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives), the format of
// V4's indexer keys and expert weights, with UE8M0 scales per 32 values. Round to nearest, ties
// to the even code; magnitudes beyond 6 saturate. HOST_DEVICE: shared by CPU and CUDA code.
#pragma once

#include <math.h>
#include <stdint.h>

#include "kernels/fp8_math.h"
#include "kernels/host_device.h"

namespace strata::kernels {

inline constexpr float kFp4E2m1Max = 6.0f;

STRATA_HD float Fp4E2m1ToFloat(uint8_t code) {
  const float mags[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  const float m = mags[code & 7];
  return (code & 8) ? -m : m;
}

STRATA_HD uint8_t FloatToFp4E2m1(float x) {
  const uint8_t sign = (x < 0.0f || copysignf(1.0f, x) < 0.0f) ? 8 : 0;
  const float a = fabsf(x);
  // Midpoints between neighbouring magnitudes; at a tie the even code (lower bit 0) wins.
  uint8_t c;
  if (a <= 0.25f)
    c = 0;
  else if (a < 0.75f)
    c = 1;
  else if (a <= 1.25f)
    c = 2;
  else if (a < 1.75f)
    c = 3;
  else if (a <= 2.5f)
    c = 4;
  else if (a < 3.5f)
    c = 5;
  else if (a <= 5.0f)
    c = 6;
  else
    c = 7;
  return uint8_t(sign | c);
}

// The block scale of the reference's fp4_act_quant: amax floored at 6 * 2^-126, times
// fp32(1/6), rounded up to a power of two.
STRATA_HD uint8_t Ue8m0ScaleForFp4(float amax) {
  const float floor = kFp4E2m1Max * 1.17549435e-38f;  // 6 * 2^-126
  const float a = amax > floor ? amax : floor;
  return Ue8m0CeilPow2(a * (1.0f / kFp4E2m1Max));
}

}  // namespace strata::kernels
