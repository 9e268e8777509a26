// Run-time CPU feature detection: kernels dispatch on these, never on build flags.
// Thread safety: pure, cached after the first call.
#pragma once

#include <string>

namespace strata::kernels {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  std::string ToString() const;
};

const CpuFeatures& DetectCpuFeatures();

}  // namespace strata::kernels
