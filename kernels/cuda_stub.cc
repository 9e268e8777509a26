// Built instead of the .cu files when CUDA is off: the CUDA entry points report "unavailable".
#include "kernels/fp8.h"

namespace strata::kernels {

bool CudaAvailable() { return false; }
bool QuantizeFp8BlocksCuda(const Fp8BlockParams&) { return false; }
bool QuantizeFp8BlocksCudaFromHost(const Fp8BlockParams&) { return false; }

}  // namespace strata::kernels
