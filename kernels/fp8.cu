// CUDA FP8 block quantisation: one warp per block of values; the scalar math is fp8_math.h.
#include <cuda_runtime.h>

#include "kernels/fp8.h"
#include "kernels/fp8_math.h"

namespace strata::kernels {
namespace {

__global__ void QuantizeFp8BlocksKernel(const float* in, uint8_t* out, uint8_t* scales,
                                        size_t nblocks, size_t block) {
  const size_t b = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (b >= nblocks) return;
  const float* x = in + b * block;
  float amax = 0.0f;
  for (size_t i = lane; i < block; i += 32) amax = fmaxf(amax, fabsf(x[i]));
  for (int off = 16; off > 0; off /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  const uint8_t s = Ue8m0ScaleFor(amax);
  if (lane == 0) scales[b] = s;
  const float inv = 1.0f / Ue8m0ToFloat(s);
  for (size_t i = lane; i < block; i += 32) out[b * block + i] = FloatToFp8E4m3(x[i] * inv);
}

}  // namespace

bool CudaAvailable() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

bool QuantizeFp8BlocksCuda(const Fp8BlockParams& p) {
  if (!CudaAvailable() || p.block == 0 || p.n % p.block) return false;
  const size_t nblocks = p.n / p.block;
  const int warps_per_cta = 8;
  const unsigned grid = unsigned((nblocks + warps_per_cta - 1) / warps_per_cta);
  QuantizeFp8BlocksKernel<<<grid, warps_per_cta * 32>>>(p.in, p.out, p.scales, nblocks, p.block);
  return cudaDeviceSynchronize() == cudaSuccess;
}

bool QuantizeFp8BlocksCudaFromHost(const Fp8BlockParams& p) {
  if (!CudaAvailable() || p.block == 0 || p.n % p.block) return false;
  float* in = nullptr;
  uint8_t *out = nullptr, *scales = nullptr;
  bool ok = cudaMalloc(&in, p.n * sizeof(float)) == cudaSuccess &&
            cudaMalloc(&out, p.n) == cudaSuccess &&
            cudaMalloc(&scales, p.n / p.block) == cudaSuccess &&
            cudaMemcpy(in, p.in, p.n * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess;
  if (ok) ok = QuantizeFp8BlocksCuda({in, out, scales, p.n, p.block});
  if (ok)
    ok = cudaMemcpy(p.out, out, p.n, cudaMemcpyDeviceToHost) == cudaSuccess &&
         cudaMemcpy(p.scales, scales, p.n / p.block, cudaMemcpyDeviceToHost) == cudaSuccess;
  cudaFree(in);
  cudaFree(out);
  cudaFree(scales);
  return ok;
}

}  // namespace strata::kernels
