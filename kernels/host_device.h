// HOST_DEVICE: scalar helpers compiled for both the CPU and CUDA, so CPU tests cover the math
// the GPU kernels run.
#pragma once

#if defined(__CUDACC__)
#define STRATA_HD __host__ __device__ __forceinline__
#else
#define STRATA_HD inline
#endif
