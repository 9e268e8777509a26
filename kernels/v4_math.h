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

// max |x[i]| over n values, in order.
STRATA_HD float BlockAmax(const float* x, int n) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = fmaxf(amax, fabsf(x[i]));
  return amax;
}

// act_quant(x, block, "ue8m0") in place: each block of `block` values is replaced by its FP8
// e4m3 grid value times the block's power-of-two scale.
STRATA_HD void Fp8SimulateBlocks(float* x, int n, int block) {
  for (int b = 0; b + block <= n; b += block) {
    const float s = Ue8m0ToFloat(Ue8m0ScaleFor(BlockAmax(x + b, block)));
    const float inv = 1.0f / s;  // exact: a power of two
    for (int i = 0; i < block; ++i) x[b + i] = Fp8E4m3ToFloat(FloatToFp8E4m3(x[b + i] * inv)) * s;
  }
}

// fp4_act_quant(x, block) in place: e2m1 grid value times the block's power-of-two scale.
STRATA_HD void Fp4SimulateBlocks(float* x, int n, int block) {
  for (int b = 0; b + block <= n; b += block) {
    const float s = Ue8m0ToFloat(Ue8m0ScaleForFp4(BlockAmax(x + b, block)));
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

// One dot product in the GEMM's fixed order: 8 FMA lanes over k, lanes reduced as
// (0+4, 1+5, 2+6, 3+7), (0+2, 1+3), (0+1), then the tail. kernels::Dot gives the same bits.
STRATA_HD float Dot8(const float* x, const float* w, int k) {
  float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const int k8 = k / 8 * 8;
  for (int i = 0; i < k8; i += 8)
    for (int j = 0; j < 8; ++j) l[j] = fmaf(x[i + j], w[i + j], l[j]);
  const float a0 = l[0] + l[4], a1 = l[1] + l[5], a2 = l[2] + l[6], a3 = l[3] + l[7];
  float s = (a0 + a2) + (a1 + a3);
  for (int i = k8; i < k; ++i) s = fmaf(x[i], w[i], s);
  return s;
}

// Walsh-Hadamard rotation of n values (n a power of two), normalised by 1/sqrt(n), with a fixed
// butterfly order.
STRATA_HD void HadamardInPlace(float* x, int n) {
  const float norm = 1.0f / sqrtf(float(n));
  for (int h = 1; h < n; h *= 2)
    for (int i = 0; i < n; i += 2 * h)
      for (int j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
  for (int i = 0; i < n; ++i) x[i] *= norm;
}

// The compressor's last steps on a pooled entry of d values: RMSNorm with `norm_w`, RoPE of
// the trailing rope_dim values at the block's first position (cs: its (cos, sin) pairs), then
// either the indexer's Hadamard rotation + FP4 simulation (`rotate`) or the FP8 simulation of
// the non-RoPE dims (+ BF16 rounding of the RoPE dims when `bf16_rope`).
STRATA_HD void FinishCompressedEntry(float* e, int d, int rope_dim, const float* norm_w, float eps,
                                     const float* cs, bool rotate, bool bf16_rope) {
  float ss = 0.0f;
  for (int i = 0; i < d; ++i) ss += e[i] * e[i];
  const float r = 1.0f / sqrtf(ss / float(d) + eps);
  for (int i = 0; i < d; ++i) e[i] = e[i] * r * norm_w[i];
  RopeInterleaved(e + (d - rope_dim), rope_dim, cs, false);
  if (rotate) {
    HadamardInPlace(e, d);
    Fp4SimulateBlocks(e, d, 32);
  } else {
    Fp8SimulateBlocks(e, d - rope_dim, 64);
    if (bf16_rope)
      for (int i = d - rope_dim; i < d; ++i) e[i] = RoundToBf16(e[i]);
  }
}

// The indexer's score of one key for one query from the per-head dots q_h . k: the sum over
// heads of w_h * relu(dot_h), in head order.
STRATA_HD float IndexScoreFromDots(const float* dots, const float* w, int heads) {
  float acc = 0.0f;
  for (int h = 0; h < heads; ++h) acc += (dots[h] > 0.0f ? dots[h] : 0.0f) * w[h];
  return acc;
}

// The same with the dots computed here (Dot8; kernels::Dot gives the same bits on the CPU).
STRATA_HD float IndexScore(const float* q, const float* w, const float* key, int heads, int dim) {
  float acc = 0.0f;
  for (int h = 0; h < heads; ++h) {
    const float dot = Dot8(q + h * dim, key, dim);
    acc += (dot > 0.0f ? dot : 0.0f) * w[h];
  }
  return acc;
}

// Top-k of scores[0, n) in descending order, ties to the lower index, NaN never chosen; slots
// past the available entries get -1. O(n k): for small k and device code.
STRATA_HD void TopKSelect(const float* scores, int n, int k, int32_t* out) {
  // Each round takes the best entry ranked strictly after the previous pick in the order
  // (score descending, index ascending).
  int prev = -1;
  for (int j = 0; j < k; ++j) {
    int best = -1;
    for (int i = 0; i < n; ++i) {
      const float v = scores[i];
      if (v != v) continue;  // NaN
      if (prev >= 0 && !(v < scores[prev] || (v == scores[prev] && i > prev))) continue;
      if (best < 0 || v > scores[best]) best = i;
    }
    out[j] = best;
    if (best >= 0) prev = best;
  }
}

}  // namespace strata::kernels
