#include "kernels/rope.h"

#include <algorithm>
#include <cmath>

namespace strata::kernels {
namespace {

// The dimension whose wavelength makes `rotations` turns over `seq_len` positions.
double CorrectionDim(double rotations, int dim, double theta, int seq_len) {
  return dim * std::log(seq_len / (rotations * 2 * M_PI)) / (2 * std::log(theta));
}

}  // namespace

std::vector<float> RopeInverseFrequencies(int rope_dim, double theta, const YarnParams& yarn) {
  const int half = rope_dim / 2;
  std::vector<float> freqs(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i)
    freqs[size_t(i)] = 1.0f / std::pow(float(theta), float(2 * i) / float(rope_dim));
  if (!yarn.enabled) return freqs;
  double low = std::floor(CorrectionDim(yarn.beta_fast, rope_dim, theta, yarn.original_seq_len));
  double high = std::ceil(CorrectionDim(yarn.beta_slow, rope_dim, theta, yarn.original_seq_len));
  low = std::max(low, 0.0);
  high = std::min(high, double(rope_dim - 1));
  if (low == high) high += 0.001;
  for (int i = 0; i < half; ++i) {
    const float ramp = std::clamp(float((i - low) / (high - low)), 0.0f, 1.0f);
    const float smooth = 1.0f - ramp;
    freqs[size_t(i)] =
        freqs[size_t(i)] / float(yarn.factor) * (1.0f - smooth) + freqs[size_t(i)] * smooth;
  }
  return freqs;
}

std::vector<float> RopeTable(int rope_dim, int max_positions, double theta,
                             const YarnParams& yarn) {
  const std::vector<float> freqs = RopeInverseFrequencies(rope_dim, theta, yarn);
  const size_t half = freqs.size();
  std::vector<float> out(size_t(max_positions) * half * 2);
  for (int p = 0; p < max_positions; ++p)
    for (size_t i = 0; i < half; ++i) {
      const float angle = float(p) * freqs[i];
      out[(size_t(p) * half + i) * 2] = std::cos(angle);
      out[(size_t(p) * half + i) * 2 + 1] = std::sin(angle);
    }
  return out;
}

}  // namespace strata::kernels
