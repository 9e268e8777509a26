#include "kernels/cpu_features.h"

namespace strata::kernels {

const CpuFeatures& DetectCpuFeatures() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__)
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    c.avx512f = __builtin_cpu_supports("avx512f");
#endif
    return c;
  }();
  return f;
}

std::string CpuFeatures::ToString() const {
  std::string s;
  if (avx2) s += "avx2 ";
  if (fma) s += "fma ";
  if (avx512f) s += "avx512f ";
  if (s.empty()) return "baseline";
  s.pop_back();
  return s;
}

}  // namespace strata::kernels
