// The state path of V4 attention: the operations that produce, select and read cached state.
// Each has a CPU implementation (the engine's) and a CUDA one that runs the same HOST_DEVICE
// scalar math (v4_math.h, entry_format.h), so CPU tests cover the math and GPU tests compare
// CUDA against CPU (bitwise where no transcendental is involved: top-k, packing, ring writes;
// within float tolerance where expf is: pooling, attention).
//
//   CompressBlocks   gated softmax pooling of assembled blocks, then RMSNorm, RoPE and the
//                    FP8 (main) or Hadamard + FP4 (indexer) simulation
//   IndexerTopK      indexer scores (ReLU, head weights) and top-k, lower index winning ties
//   SparseAttention  attention over gathered entries with the per-head sink
//   SwaRingWrite     the sliding-window ring: position p goes to slot p % window
//   Pack/Unpack      entries into and out of the stored byte formats (584-byte main / SWA,
//                    68-byte FP4 indexer entries for V4)
//
// CUDA functions take device pointers and return false when no device is usable (or the build
// has no CUDA); the *FromHost variants copy host buffers in and out (tests, tools).
// Thread safety: pure functions over caller-owned buffers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata::kernels {

struct CompressBlocksArgs {
  const float* kv = nullptr;     // [blocks, rows, d]: each block's pooling rows, assembled
  const float* score = nullptr;  // [blocks, rows, d]: their gate scores (+ ape); -inf = absent
  const float* norm = nullptr;   // [d]
  const float* rope = nullptr;   // [blocks, rope_dim]: (cos, sin) pairs of each block's start
  float* out = nullptr;          // [blocks, d]
  int blocks = 0, rows = 0, d = 0, rope_dim = 0;
  float eps = 1e-6f;
  bool rotate = false;    // indexer keys
  bool bf16_rope = true;  // round main entries' RoPE dims to BF16
};

struct IndexerTopKArgs {
  const float* q = nullptr;          // [queries, heads, dim], rotated and FP4-simulated
  const float* w = nullptr;          // [queries, heads], already scaled
  const float* keys = nullptr;       // [keys, dim]
  const int32_t* visible = nullptr;  // [queries]: keys [0, visible) may be chosen
  int32_t* out = nullptr;            // [queries, k]; -1 = none
  int queries = 0, heads = 0, dim = 0, k = 0;
  float* scratch = nullptr;  // [queries, max visible] scores (CPU: may be null)
  int max_visible = 0;
};

struct SparseAttentionArgs {
  const float* q = nullptr;      // [queries, heads, dim]
  const float* kv = nullptr;     // [entries, dim]
  const int32_t* idx = nullptr;  // [queries, count]; -1 = none
  const float* sink = nullptr;   // [heads]
  float* out = nullptr;          // [queries, heads, dim]
  int queries = 0, heads = 0, dim = 0, count = 0;
  float scale = 1.0f;
};

struct SwaRingWriteArgs {
  const float* rows = nullptr;  // [n, dim] at positions start .. start + n - 1
  float* ring = nullptr;        // [window, dim]
  int64_t start = 0;
  int n = 0, dim = 0, window = 0;
};

void CompressBlocksCpu(const CompressBlocksArgs& a);
void IndexerTopKCpu(const IndexerTopKArgs& a);
void SparseAttentionBatchCpu(const SparseAttentionArgs& a);
void SwaRingWriteCpu(const SwaRingWriteArgs& a);
void PackMainEntriesCpu(const float* in, int n, int head_dim, int rope_dim, uint8_t* out);
void UnpackMainEntriesCpu(const uint8_t* in, int n, int head_dim, int rope_dim, float* out);
void PackIndexEntriesCpu(const float* in, int n, int dim, uint8_t* out);
void UnpackIndexEntriesCpu(const uint8_t* in, int n, int dim, float* out);

bool CompressBlocksCuda(const CompressBlocksArgs& a);
bool IndexerTopKCuda(const IndexerTopKArgs& a);
bool SparseAttentionCuda(const SparseAttentionArgs& a);
bool SwaRingWriteCuda(const SwaRingWriteArgs& a);
bool PackMainEntriesCuda(const float* in, int n, int head_dim, int rope_dim, uint8_t* out);
bool UnpackMainEntriesCuda(const uint8_t* in, int n, int head_dim, int rope_dim, float* out);
bool PackIndexEntriesCuda(const float* in, int n, int dim, uint8_t* out);
bool UnpackIndexEntriesCuda(const uint8_t* in, int n, int dim, float* out);

// Host-buffer wrappers (copy in, run on the device, copy out).
bool CompressBlocksCudaFromHost(const CompressBlocksArgs& a);
bool IndexerTopKCudaFromHost(const IndexerTopKArgs& a, int num_keys);
bool SparseAttentionCudaFromHost(const SparseAttentionArgs& a, int num_entries);
bool SwaRingWriteCudaFromHost(const SwaRingWriteArgs& a);
bool PackMainEntriesCudaFromHost(const float* in, int n, int head_dim, int rope_dim, uint8_t* out);
bool PackIndexEntriesCudaFromHost(const float* in, int n, int dim, uint8_t* out);

}  // namespace strata::kernels
