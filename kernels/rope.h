// Rotary position embedding tables, with YaRN frequency interpolation (as DeepSeek's inference
// code computes them: float32 inverse frequencies, a linear ramp between the correction dims of
// beta_fast and beta_slow rotations, angle = position * frequency).
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <vector>

namespace strata::kernels {

struct YarnParams {
  bool enabled = false;
  double factor = 1.0;       // context extension factor
  int original_seq_len = 0;  // the pre-extension context length
  double beta_fast = 32.0, beta_slow = 1.0;
};

// Inverse frequencies of the rope_dim / 2 rotary pairs.
std::vector<float> RopeInverseFrequencies(int rope_dim, double theta, const YarnParams& yarn);

// (cos, sin) per position and pair: out[(pos * rope_dim / 2 + i) * 2 + {0, 1}].
std::vector<float> RopeTable(int rope_dim, int max_positions, double theta, const YarnParams& yarn);

}  // namespace strata::kernels
