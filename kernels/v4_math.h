// Scalar math of the V4 forward pass that CPU and CUDA code share (HOST_DEVICE): the FP8 / FP4
// quantise-dequantise simulation the model applies to its cached latents and indexer vectors,
// interleaved RoPE, the compressor's gated softmax pooling, the routing score and the clamped
// SwiGLU. Every loop runs in a fixed order, so a token's result never depends on which other
// tokens are computed with it (batch invariance).
// Thread safety: pure functions over caller-owned buffers.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/fp4_math.h"
#include "kernels/fp8_math.h"
#include "kernels/host_device.h"

namespace strata::kernels {

// BF16 (the storage type of the RoPE dims of cached entries): round to nearest even.
STRATA_HD uint16_t FloatToBf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
STRATA_HD float Bf16ToFloat(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float x;
  memcpy(&x, &u, 4);
  return x;
}
STRATA_HD float RoundToBf16(float x) { return Bf16ToFloat(FloatToBf16(x)); }

// act_quant(x, block, "ue8m0") in place: each block of `block` values is replaced by its FP8
// e4m3 grid value times the block's power-of-two scale.
STRATA_HD void Fp8SimulateBlocks(float* x, int n, int block) {
  for (int b = 0; b + block <= n; b += block) {
    float amax = 0.0f;
    for (int i = 0; i < block; ++i) amax = fmaxf(amax, fabsf(x[b + i]));
    const float s = Ue8m0ToFloat(Ue8m0ScaleFor(amax));
    const float inv = 1.0f / s;  // exact: a power of two
    for (int i = 0; i < block; ++i) x[b + i] = Fp8E4m3ToFloat(FloatToFp8E4m3(x[b + i] * inv)) * s;
  }
}

// fp4_act_quant(x, block) in place: e2m1 grid value times the block's power-of-two scale.
STRATA_HD void Fp4SimulateBlocks(float* x, int n, int block) {
  for (int b = 0; b + block <= n; b += block) {
    float amax = 0.0f;
    for (int i = 0; i < block; ++i) amax = fmaxf(amax, fabsf(x[b + i]));
    const float s = Ue8m0ToFloat(Ue8m0ScaleForFp4(amax));
    const float inv = 1.0f / s;
    for (int i = 0; i < block; ++i) x[b + i] = Fp4E2m1ToFloat(FloatToFp4E2m1(x[b + i] * inv)) * s;
  }
}

// Rotates adjacent pairs (x[2i], x[2i+1]) by the angle whose (cos, sin) is cs[2i], cs[2i+1];
// `inverse` rotates by the negative angle. x holds rope_dim values.
STRATA_HD void RopeInterleaved(float* x, int rope_dim, const float* cs, bool inverse) {
  for (int i = 0; i < rope_dim / 2; ++i) {
    const float c = cs[2 * i], s = inverse ? -cs[2 * i + 1] : cs[2 * i + 1];
    const float a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = a * c - b * s;
    x[2 * i + 1] = a * s + b * c;
  }
}

// The compressor's pooling for one compressed entry: per channel c, a softmax over `rows`
// scores (score[r * stride + c], -inf = absent) weighting kv[r * stride + c].
STRATA_HD void GatedPoolChannel(const float* kv, const float* score, int rows, int stride,
                                float* out, int c) {
  float mx = -INFINITY;
  for (int r = 0; r < rows; ++r) mx = fmaxf(mx, score[r * stride + c]);
  float denom = 0.0f;
  for (int r = 0; r < rows; ++r) denom += expf(score[r * stride + c] - mx);
  float acc = 0.0f;
  for (int r = 0; r < rows; ++r) {
    const float w = expf(score[r * stride + c] - mx) / denom;
    if (w != 0.0f) acc += kv[r * stride + c] * w;
  }
  out[c] = acc;
}

// sqrt(softplus(x)) with torch's softplus (linear above 20).
STRATA_HD float SqrtSoftplus(float x) { return sqrtf(x > 20.0f ? x : log1pf(expf(x))); }

// silu(min(gate, limit)) * clamp(up, -limit, limit); limit <= 0 means no clamp.
STRATA_HD float ClampedSwiglu(float gate, float up, float limit) {
  if (limit > 0.0f) {
    gate = fminf(gate, limit);
    up = fminf(fmaxf(up, -limit), limit);
  }
  return gate / (1.0f + expf(-gate)) * up;
}

}  // namespace strata::kernels
