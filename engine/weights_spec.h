// The tensors a V4 checkpoint must hold, named as the official inference code names them, with
// their logical shapes, derived from the config alone (no model's numbers built in), and a
// check of a safetensors file against them: every missing, extra or mis-shaped tensor is named.
//
// Storage: floating weights may be F32, BF16 or F16 at their logical shape; a linear weight may
// also be FP8 e4m3 with a `<name minus .weight>.scale` tensor of 128x128 block scales
// ([ceil(out/128), ceil(in/128)], F32 or UE8M0), or FP4 e2m1 packed two per byte (I8/U8,
// [out, in/2]) with UE8M0 scales per 32 inputs ([out, in/32]).
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/model_config.h"
#include "engine/safetensors.h"

namespace strata::engine {

enum class TensorKind : uint8_t {
  kFloat,   // norms, biases, embeddings, hyper-connection parameters, sinks, ape
  kLinear,  // a linear layer's weight: float, FP8 + block scales, or FP4 + scales
  kInt32,   // hash-routing table
};

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  TensorKind kind = TensorKind::kFloat;
};

std::vector<TensorSpec> ExpectedTensors(const ModelConfig& config);

// The scale tensor of a quantised linear weight: "x.weight" -> "x.scale".
std::string ScaleName(const std::string& weight);

// Ok when `file` holds exactly the expected tensors (plus their scale tensors) at the right
// shapes and dtypes; otherwise InvalidArgument listing what is wrong, tensor by tensor.
Status CheckWeights(const SafetensorsFile& file, const ModelConfig& config);

}  // namespace strata::engine
