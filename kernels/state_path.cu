// CUDA state path: the same HOST_DEVICE math as state_path_cpu.cc, one thread per independent
// unit (entry channel, query-key score, query-head, entry), so every result is computed in the
// CPU's order.
#include <cuda_runtime.h>

#include <vector>

#include "kernels/entry_format.h"
#include "kernels/fp8.h"
#include "kernels/state_path.h"
#include "kernels/v4_math.h"

namespace strata::kernels {
namespace {

constexpr int kThreads = 256;

unsigned Grid(long long n) { return unsigned((n + kThreads - 1) / kThreads); }

bool Sync() { return cudaGetLastError() == cudaSuccess && cudaDeviceSynchronize() == cudaSuccess; }

// Pooling: one thread per (block, channel); then one thread per block finishes its entry.
__global__ void PoolKernel(CompressBlocksArgs a) {
  const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (t >= (long long)a.blocks * a.d) return;
  const int b = int(t / a.d), c = int(t % a.d);
  const size_t in = size_t(b) * size_t(a.rows) * size_t(a.d);
  GatedPoolChannel(a.kv + in, a.score + in, a.rows, a.d, a.out + size_t(b) * size_t(a.d), c);
}

__global__ void FinishKernel(CompressBlocksArgs a) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= a.blocks) return;
  FinishCompressedEntry(a.out + size_t(b) * size_t(a.d), a.d, a.rope_dim, a.norm, a.eps,
                        a.rope + size_t(b) * size_t(a.rope_dim), a.rotate, a.bf16_rope);
}

__global__ void IndexScoreKernel(IndexerTopKArgs a) {
  const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (t >= (long long)a.queries * a.max_visible) return;
  const int q = int(t / a.max_visible), k = int(t % a.max_visible);
  float* s = a.scratch + size_t(q) * size_t(a.max_visible);
  if (k >= a.visible[q]) return;
  s[k] = IndexScore(a.q + size_t(q) * size_t(a.heads) * size_t(a.dim),
                    a.w + size_t(q) * size_t(a.heads), a.keys + size_t(k) * size_t(a.dim), a.heads,
                    a.dim);
}

__global__ void TopKKernel(IndexerTopKArgs a) {
  const int q = blockIdx.x * blockDim.x + threadIdx.x;
  if (q >= a.queries) return;
  const int visible = a.visible[q];
  int32_t* out = a.out + size_t(q) * size_t(a.k);
  const int take = a.k < visible ? a.k : visible;
  if (take > 0) TopKSelect(a.scratch + size_t(q) * size_t(a.max_visible), visible, take, out);
  for (int j = take > 0 ? take : 0; j < a.k; ++j) out[j] = -1;
}

__global__ void SparseAttentionKernel(SparseAttentionArgs a) {
  const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (t >= (long long)a.queries * a.heads) return;
  const int q = int(t / a.heads), h = int(t % a.heads);
  const float* qh = a.q + (size_t(q) * size_t(a.heads) + size_t(h)) * size_t(a.dim);
  float* o = a.out + (size_t(q) * size_t(a.heads) + size_t(h)) * size_t(a.dim);
  const int32_t* idx = a.idx + size_t(q) * size_t(a.count);
  float mx = -INFINITY;
  for (int j = 0; j < a.count; ++j)
    if (idx[j] >= 0)
      mx = fmaxf(mx, a.scale * Dot8(qh, a.kv + size_t(idx[j]) * size_t(a.dim), a.dim));
  for (int d = 0; d < a.dim; ++d) o[d] = 0.0f;
  if (mx == -INFINITY) return;
  float denom = 0.0f;
  for (int j = 0; j < a.count; ++j) {
    if (idx[j] < 0) continue;
    const float* kv = a.kv + size_t(idx[j]) * size_t(a.dim);
    const float e = expf(a.scale * Dot8(qh, kv, a.dim) - mx);
    denom += e;
    for (int d = 0; d < a.dim; ++d) o[d] += e * kv[d];
  }
  denom += expf(a.sink[h] - mx);
  const float inv = 1.0f / denom;
  for (int d = 0; d < a.dim; ++d) o[d] *= inv;
}

__global__ void RingKernel(SwaRingWriteArgs a, int first) {
  const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  const long long rows = a.n - first;
  if (t >= rows * a.dim) return;
  const int i = first + int(t / a.dim), j = int(t % a.dim);
  a.ring[size_t((a.start + i) % a.window) * size_t(a.dim) + size_t(j)] =
      a.rows[size_t(i) * size_t(a.dim) + size_t(j)];
}

__global__ void PackMainKernel(const float* in, int n, int hd, int rd, uint8_t* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    PackMainEntry(in + size_t(i) * size_t(hd), hd, rd,
                  out + size_t(i) * size_t(MainEntrySize(hd, rd)));
}
__global__ void UnpackMainKernel(const uint8_t* in, int n, int hd, int rd, float* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    UnpackMainEntry(in + size_t(i) * size_t(MainEntrySize(hd, rd)), hd, rd,
                    out + size_t(i) * size_t(hd));
}
__global__ void PackIndexKernel(const float* in, int n, int dim, uint8_t* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    PackIndexEntry(in + size_t(i) * size_t(dim), dim,
                   out + size_t(i) * size_t(IndexEntrySize(dim)));
}
__global__ void UnpackIndexKernel(const uint8_t* in, int n, int dim, float* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    UnpackIndexEntry(in + size_t(i) * size_t(IndexEntrySize(dim)), dim,
                     out + size_t(i) * size_t(dim));
}

// Device copies of host buffers for the *FromHost wrappers.
class Device {
 public:
  ~Device() {
    for (void* p : ptrs_) cudaFree(p);
  }
  template <typename T>
  T* In(const T* host, size_t n) {
    T* d = Alloc<T>(n);
    if (d && n && cudaMemcpy(d, host, n * sizeof(T), cudaMemcpyHostToDevice) != cudaSuccess)
      ok_ = false;
    return d;
  }
  template <typename T>
  T* Alloc(size_t n) {
    void* p = nullptr;
    if (cudaMalloc(&p, n ? n * sizeof(T) : 1) != cudaSuccess) {
      ok_ = false;
      return nullptr;
    }
    ptrs_.push_back(p);
    return static_cast<T*>(p);
  }
  template <typename T>
  bool Out(T* host, const T* dev, size_t n) {
    return ok_ && cudaMemcpy(host, dev, n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess;
  }
  bool ok() const { return ok_; }

 private:
  std::vector<void*> ptrs_;
  bool ok_ = true;
};

}  // namespace

bool CompressBlocksCuda(const CompressBlocksArgs& a) {
  if (!CudaAvailable() || a.blocks <= 0) return false;
  PoolKernel<<<Grid((long long)a.blocks * a.d), kThreads>>>(a);
  FinishKernel<<<Grid(a.blocks), kThreads>>>(a);
  return Sync();
}

bool IndexerTopKCuda(const IndexerTopKArgs& a) {
  if (!CudaAvailable() || a.queries <= 0 || !a.scratch) return false;
  if (a.max_visible > 0)
    IndexScoreKernel<<<Grid((long long)a.queries * a.max_visible), kThreads>>>(a);
  TopKKernel<<<Grid(a.queries), kThreads>>>(a);
  return Sync();
}

bool SparseAttentionCuda(const SparseAttentionArgs& a) {
  if (!CudaAvailable() || a.queries <= 0) return false;
  SparseAttentionKernel<<<Grid((long long)a.queries * a.heads), kThreads>>>(a);
  return Sync();
}

bool SwaRingWriteCuda(const SwaRingWriteArgs& a) {
  if (!CudaAvailable() || a.n <= 0 || a.window <= 0) return false;
  const int first = a.n > a.window ? a.n - a.window : 0;
  RingKernel<<<Grid((long long)(a.n - first) * a.dim), kThreads>>>(a, first);
  return Sync();
}

bool PackMainEntriesCuda(const float* in, int n, int hd, int rd, uint8_t* out) {
  if (!CudaAvailable() || n <= 0) return false;
  PackMainKernel<<<Grid(n), kThreads>>>(in, n, hd, rd, out);
  return Sync();
}
bool UnpackMainEntriesCuda(const uint8_t* in, int n, int hd, int rd, float* out) {
  if (!CudaAvailable() || n <= 0) return false;
  UnpackMainKernel<<<Grid(n), kThreads>>>(in, n, hd, rd, out);
  return Sync();
}
bool PackIndexEntriesCuda(const float* in, int n, int dim, uint8_t* out) {
  if (!CudaAvailable() || n <= 0) return false;
  PackIndexKernel<<<Grid(n), kThreads>>>(in, n, dim, out);
  return Sync();
}
bool UnpackIndexEntriesCuda(const uint8_t* in, int n, int dim, float* out) {
  if (!CudaAvailable() || n <= 0) return false;
  UnpackIndexKernel<<<Grid(n), kThreads>>>(in, n, dim, out);
  return Sync();
}

bool CompressBlocksCudaFromHost(const CompressBlocksArgs& a) {
  if (!CudaAvailable()) return false;
  Device dev;
  const size_t in = size_t(a.blocks) * size_t(a.rows) * size_t(a.d);
  CompressBlocksArgs d = a;
  d.kv = dev.In(a.kv, in);
  d.score = dev.In(a.score, in);
  d.norm = dev.In(a.norm, size_t(a.d));
  d.rope = dev.In(a.rope, size_t(a.blocks) * size_t(a.rope_dim));
  d.out = dev.Alloc<float>(size_t(a.blocks) * size_t(a.d));
  return dev.ok() && CompressBlocksCuda(d) && dev.Out(a.out, d.out, size_t(a.blocks) * size_t(a.d));
}

bool IndexerTopKCudaFromHost(const IndexerTopKArgs& a, int num_keys) {
  if (!CudaAvailable()) return false;
  Device dev;
  IndexerTopKArgs d = a;
  d.q = dev.In(a.q, size_t(a.queries) * size_t(a.heads) * size_t(a.dim));
  d.w = dev.In(a.w, size_t(a.queries) * size_t(a.heads));
  d.keys = dev.In(a.keys, size_t(num_keys) * size_t(a.dim));
  d.visible = dev.In(a.visible, size_t(a.queries));
  d.out = dev.Alloc<int32_t>(size_t(a.queries) * size_t(a.k));
  d.scratch = dev.Alloc<float>(size_t(a.queries) * size_t(a.max_visible > 0 ? a.max_visible : 1));
  return dev.ok() && IndexerTopKCuda(d) && dev.Out(a.out, d.out, size_t(a.queries) * size_t(a.k));
}

bool SparseAttentionCudaFromHost(const SparseAttentionArgs& a, int num_entries) {
  if (!CudaAvailable()) return false;
  Device dev;
  SparseAttentionArgs d = a;
  const size_t qn = size_t(a.queries) * size_t(a.heads) * size_t(a.dim);
  d.q = dev.In(a.q, qn);
  d.kv = dev.In(a.kv, size_t(num_entries) * size_t(a.dim));
  d.idx = dev.In(a.idx, size_t(a.queries) * size_t(a.count));
  d.sink = dev.In(a.sink, size_t(a.heads));
  d.out = dev.Alloc<float>(qn);
  return dev.ok() && SparseAttentionCuda(d) && dev.Out(a.out, d.out, qn);
}

bool SwaRingWriteCudaFromHost(const SwaRingWriteArgs& a) {
  if (!CudaAvailable()) return false;
  Device dev;
  SwaRingWriteArgs d = a;
  const size_t ring = size_t(a.window) * size_t(a.dim);
  d.rows = dev.In(a.rows, size_t(a.n) * size_t(a.dim));
  d.ring = dev.In(a.ring, ring);
  return dev.ok() && SwaRingWriteCuda(d) && dev.Out(a.ring, d.ring, ring);
}

bool PackMainEntriesCudaFromHost(const float* in, int n, int hd, int rd, uint8_t* out) {
  if (!CudaAvailable()) return false;
  Device dev;
  const float* din = dev.In(in, size_t(n) * size_t(hd));
  const size_t bytes = size_t(n) * size_t(MainEntrySize(hd, rd));
  uint8_t* dout = dev.Alloc<uint8_t>(bytes);
  return dev.ok() && PackMainEntriesCuda(din, n, hd, rd, dout) && dev.Out(out, dout, bytes);
}

bool PackIndexEntriesCudaFromHost(const float* in, int n, int dim, uint8_t* out) {
  if (!CudaAvailable()) return false;
  Device dev;
  const float* din = dev.In(in, size_t(n) * size_t(dim));
  const size_t bytes = size_t(n) * size_t(IndexEntrySize(dim));
  uint8_t* dout = dev.Alloc<uint8_t>(bytes);
  return dev.ok() && PackIndexEntriesCuda(din, n, dim, dout) && dev.Out(out, dout, bytes);
}

}  // namespace strata::kernels
