// A model's parameters as float32 tensors in memory, keyed by the official parameter names
// (ExpectedTensors). Loaded from a safetensors checkpoint (F32 / BF16 / F16 as is; FP8 e4m3
// linear weights dequantised with their 128x128 block scales; FP4 e2m1 weights, packed two per
// byte with the low nibble first, dequantised with their UE8M0 scales per 32 inputs), or filled
// deterministically from a seed for experiments without weights.
// Thread safety: immutable after construction; safe to share.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/model_config.h"
#include "strata/status.h"

namespace strata::engine {

// A float tensor's storage: anonymous memory, with transparent huge pages for large tensors
// (first touches of fresh pages dominate loading time otherwise). Not zero-filled by us.
class FloatStorage {
 public:
  FloatStorage() = default;
  explicit FloatStorage(size_t n);
  ~FloatStorage();
  FloatStorage(FloatStorage&& o) noexcept : p_(o.p_), n_(o.n_), bytes_(o.bytes_) {
    o.p_ = nullptr, o.n_ = o.bytes_ = 0;
  }
  FloatStorage& operator=(FloatStorage&& o) noexcept;
  FloatStorage(const FloatStorage&) = delete;
  FloatStorage& operator=(const FloatStorage&) = delete;
  float* data() { return p_; }
  const float* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  float* p_ = nullptr;
  size_t n_ = 0, bytes_ = 0;
};

class ModelWeights {
 public:
  // Checks the file against the config first (CheckWeights): every problem is named.
  static Result<std::unique_ptr<ModelWeights>> Load(const ModelConfig& config,
                                                    const std::string& path);
  // Norm weights 1 + 0.1 u, sinks 0.5 u, ape 0.2 u, routing bias and hyper-connection bases
  // 0.1 u, hyper-connection scales 1 + 0.1 u, everything else 0.02 u, with u uniform of unit
  // variance; hash tables pick distinct experts per token. Deterministic in (config, seed).
  static std::unique_ptr<ModelWeights> Random(const ModelConfig& config, uint64_t seed);

  // The tensor must exist (the model asks only for names ExpectedTensors lists).
  const float* F(const std::string& name) const;
  const int32_t* I(const std::string& name) const;
  bool Has(const std::string& name) const { return f_.count(name) > 0 || i_.count(name) > 0; }
  uint64_t bytes() const { return bytes_; }
  // Identifies the weights' values (a hash of every tensor, or of the seed for random
  // weights): cached state is keyed by it, so state of other weights is never served.
  uint64_t id() const { return id_; }

 private:
  std::unordered_map<std::string, FloatStorage> f_;
  std::unordered_map<std::string, std::vector<int32_t>> i_;
  uint64_t bytes_ = 0;
  uint64_t id_ = 0;
};

}  // namespace strata::engine
