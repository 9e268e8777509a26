// `strata bench engine`: prefill and decode tokens/s of the CPU engine, the time per token of
// each kernel family, and the batch-invariant GEMM against OpenBLAS on the model's own shapes
// in the same run (cblas_sgemv for one token, cblas_sgemm for more; same thread count on both
// sides, interleaved rounds), printed as JSON lines.
// Thread safety: run from one thread (kernels use the default pool).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "strata/status.h"

namespace strata::bench {

struct EngineBenchModel {
  std::string config_path;
  int prefill_tokens = 0;
  int decode_tokens = 0;
};

struct EngineBenchOptions {
  std::vector<EngineBenchModel> models;
  uint64_t seed = 1;
  bool progress = false;  // progress lines on stderr
};

Status RunEngineBench(const EngineBenchOptions& options, std::ostream& out);

}  // namespace strata::bench
