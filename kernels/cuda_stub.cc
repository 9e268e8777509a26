// Built instead of the .cu files when CUDA is off: the CUDA entry points report "unavailable".
#include "kernels/fp8.h"
#include "kernels/state_path.h"

namespace strata::kernels {

bool CudaAvailable() { return false; }
bool QuantizeFp8BlocksCuda(const Fp8BlockParams&) { return false; }
bool QuantizeFp8BlocksCudaFromHost(const Fp8BlockParams&) { return false; }
bool CompressBlocksCuda(const CompressBlocksArgs&) { return false; }
bool IndexerTopKCuda(const IndexerTopKArgs&) { return false; }
bool SparseAttentionCuda(const SparseAttentionArgs&) { return false; }
bool SwaRingWriteCuda(const SwaRingWriteArgs&) { return false; }
bool PackMainEntriesCuda(const float*, int, int, int, uint8_t*) { return false; }
bool UnpackMainEntriesCuda(const uint8_t*, int, int, int, float*) { return false; }
bool PackIndexEntriesCuda(const float*, int, int, uint8_t*) { return false; }
bool UnpackIndexEntriesCuda(const uint8_t*, int, int, float*) { return false; }
bool CompressBlocksCudaFromHost(const CompressBlocksArgs&) { return false; }
bool IndexerTopKCudaFromHost(const IndexerTopKArgs&, int) { return false; }
bool SparseAttentionCudaFromHost(const SparseAttentionArgs&, int) { return false; }
bool SwaRingWriteCudaFromHost(const SwaRingWriteArgs&) { return false; }
bool PackMainEntriesCudaFromHost(const float*, int, int, int, uint8_t*) { return false; }
bool PackIndexEntriesCudaFromHost(const float*, int, int, uint8_t*) { return false; }

}  // namespace strata::kernels
