// Block-scaled FP8 quantisation: each block of `block` values shares one UE8M0 scale (V4's
// entries use 64-wide blocks). Declarations only, no CUDA types.
// Thread safety: pure functions over caller-owned buffers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata::kernels {

struct Fp8BlockParams {
  const float* in = nullptr;  // n values
  uint8_t* out = nullptr;     // n FP8 e4m3 bytes
  uint8_t* scales = nullptr;  // n / block UE8M0 scales
  size_t n = 0;               // a multiple of block
  size_t block = 64;
};

void QuantizeFp8BlocksCpu(const Fp8BlockParams& p);
void DequantizeFp8BlocksCpu(const uint8_t* in, const uint8_t* scales, float* out, size_t n,
                            size_t block);

// CUDA: device pointers; returns false when no CUDA device is usable (or not built with CUDA).
bool CudaAvailable();
bool QuantizeFp8BlocksCuda(const Fp8BlockParams& p);
// Same on host pointers: copies in, runs the kernel, copies out (for tests and tools).
bool QuantizeFp8BlocksCudaFromHost(const Fp8BlockParams& p);

}  // namespace strata::kernels
