// The stored byte formats of V4's cache entries (V4-FACTS.md, "Cache byte layouts"), packed
// and unpacked by HOST_DEVICE code shared by the CPU engine and the CUDA state path.
//
// Main / SWA entry (head_dim = nope + rope dims; V4: 584 bytes):
//   [nope] FP8 e4m3 codes | [rope] BF16 values, little-endian | [nope / 64] UE8M0 scales |
//   zero padding to a multiple of 8 bytes.
// Indexer entry (index_head_dim values; V4: 68 bytes):
//   [dim / 2] FP4 e2m1 codes, two per byte, element 2i in the low nibble | [dim / 32] UE8M0.
// Values already on these grids (as the engine's cached entries are) round-trip exactly.
#pragma once

#include <stdint.h>

#include "kernels/fp4_math.h"
#include "kernels/fp8_math.h"
#include "kernels/host_device.h"
#include "kernels/v4_math.h"

namespace strata::kernels {

STRATA_HD int MainEntrySize(int head_dim, int rope_dim) {
  const int nope = head_dim - rope_dim;
  const int raw = nope + 2 * rope_dim + nope / 64;
  return (raw + 7) / 8 * 8;
}

STRATA_HD int IndexEntrySize(int dim) { return dim / 2 + dim / 32; }

STRATA_HD void PackMainEntry(const float* e, int head_dim, int rope_dim, uint8_t* out) {
  const int nope = head_dim - rope_dim, size = MainEntrySize(head_dim, rope_dim);
  uint8_t* rope = out + nope;
  uint8_t* scales = rope + 2 * rope_dim;
  for (int b = 0; b < nope / 64; ++b) {
    const uint8_t s = Ue8m0ScaleFor(BlockAmax(e + b * 64, 64));
    scales[b] = s;
    const float inv = 1.0f / Ue8m0ToFloat(s);
    for (int i = 0; i < 64; ++i) out[b * 64 + i] = FloatToFp8E4m3(e[b * 64 + i] * inv);
  }
  for (int i = 0; i < rope_dim; ++i) {
    const uint16_t v = FloatToBf16(e[nope + i]);
    rope[2 * i] = uint8_t(v & 0xff);
    rope[2 * i + 1] = uint8_t(v >> 8);
  }
  for (int i = nope + 2 * rope_dim + nope / 64; i < size; ++i) out[i] = 0;
}

STRATA_HD void UnpackMainEntry(const uint8_t* in, int head_dim, int rope_dim, float* e) {
  const int nope = head_dim - rope_dim;
  const uint8_t* rope = in + nope;
  const uint8_t* scales = rope + 2 * rope_dim;
  for (int i = 0; i < nope; ++i) e[i] = Fp8E4m3ToFloat(in[i]) * Ue8m0ToFloat(scales[i / 64]);
  for (int i = 0; i < rope_dim; ++i)
    e[nope + i] = Bf16ToFloat(uint16_t(rope[2 * i] | (uint16_t(rope[2 * i + 1]) << 8)));
}

STRATA_HD void PackIndexEntry(const float* e, int dim, uint8_t* out) {
  uint8_t* scales = out + dim / 2;
  for (int b = 0; b < dim / 32; ++b) {
    const uint8_t s = Ue8m0ScaleForFp4(BlockAmax(e + b * 32, 32));
    scales[b] = s;
    const float inv = 1.0f / Ue8m0ToFloat(s);
    for (int i = 0; i < 32; i += 2) {
      const uint8_t lo = FloatToFp4E2m1(e[b * 32 + i] * inv);
      const uint8_t hi = FloatToFp4E2m1(e[b * 32 + i + 1] * inv);
      out[(b * 32 + i) / 2] = uint8_t(lo | (hi << 4));
    }
  }
}

STRATA_HD void UnpackIndexEntry(const uint8_t* in, int dim, float* e) {
  const uint8_t* scales = in + dim / 2;
  for (int i = 0; i < dim; ++i) {
    const uint8_t byte = in[i / 2];
    const uint8_t code = (i & 1) ? uint8_t(byte >> 4) : uint8_t(byte & 0xf);
    e[i] = Fp4E2m1ToFloat(code) * Ue8m0ToFloat(scales[i / 32]);
  }
}

}  // namespace strata::kernels
