// Model configs: reads an HF-style config.json into the engine's ModelConfig (and the
// ModelShape the cache layout needs, read by the API's reader, strata/model_shape.h, which a
// tool without the engine uses alone). Accepts the official inference naming (ModelArgs: dim,
// n_layers, n_heads, ...) and the released checkpoints' naming (hidden_size,
// num_hidden_layers, num_attention_heads, ...). An invalid or inconsistent config is a clear
// error naming the field. No constant of any particular model is built in.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "strata/layout.h"
#include "strata/status.h"

namespace strata::engine {

enum class ScoreFunc : uint8_t { kSoftmax, kSigmoid, kSqrtSoftplus };

struct ModelConfig {
  ModelShape shape;  // vocab, dim, layers, heads, head dims, window, indexer, compress_ratios
  int max_seq_len = 0;
  int moe_inter_dim = 0;
  int n_hash_layers = 0;
  int n_routed_experts = 0;
  int n_shared_experts = 0;
  int n_activated_experts = 0;
  ScoreFunc score_func = ScoreFunc::kSqrtSoftplus;
  double route_scale = 1.0;
  double swiglu_limit = 0.0;  // 0: no limit
  int q_lora_rank = 0;
  int o_groups = 0;
  int o_lora_rank = 0;
  double norm_eps = 1e-6;
  double rope_theta = 10000.0;
  double compress_rope_theta = 160000.0;
  double rope_factor = 1.0;
  int original_seq_len = 0;
  double beta_fast = 32.0, beta_slow = 1.0;
  int hc_sinkhorn_iters = 0;
  double hc_eps = 1e-6;

  Status Validate() const;
};

// `name` labels errors and the shape (usually the file name).
Result<ModelConfig> ParseModelConfig(std::string_view json_text, std::string name);
Result<ModelConfig> LoadModelConfig(const std::string& path);
// The shape of a config that is valid as a whole model config (strata::ReadModelShape checks
// only what the shape needs).
Result<ModelShape> ParseModelShape(std::string_view json_text, std::string name);
Result<ModelShape> LoadModelShape(const std::string& path);

}  // namespace strata::engine
