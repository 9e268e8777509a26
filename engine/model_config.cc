#include "engine/model_config.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "api/model_shape_json.h"
#include "strata/model_shape.h"

namespace strata::engine {
namespace {

using config_json::Field;
using nlohmann::json;

Result<ModelConfig> ParseUnchecked(std::string_view json_text, std::string name) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::InvalidArgument(name + ": not a JSON object");
  ModelConfig m;
  // The shape through the API's reader (strata/model_shape.h), then the engine's fields.
  STRATA_ASSIGN_OR_RETURN(m.shape, config_json::ShapeFromJson(j, name));
  const std::string& c = name;
#define STRATA_FIELD(dst, type, req, def, ...) \
  STRATA_ASSIGN_OR_RETURN(dst, Field<type>(j, {__VA_ARGS__}, req, def, c))
  STRATA_FIELD(m.max_seq_len, int, false, 0, "max_seq_len", "max_position_embeddings");
  STRATA_FIELD(m.moe_inter_dim, int, true, 0, "moe_inter_dim", "moe_intermediate_size");
  STRATA_FIELD(m.n_hash_layers, int, false, 0, "n_hash_layers", "num_hash_layers");
  STRATA_FIELD(m.n_routed_experts, int, true, 0, "n_routed_experts");
  STRATA_FIELD(m.n_shared_experts, int, false, 0, "n_shared_experts");
  STRATA_FIELD(m.n_activated_experts, int, true, 0, "n_activated_experts", "num_experts_per_tok");
  STRATA_FIELD(m.route_scale, double, false, 1.0, "route_scale", "routed_scaling_factor");
  STRATA_FIELD(m.swiglu_limit, double, false, 0.0, "swiglu_limit");
  STRATA_FIELD(m.q_lora_rank, int, true, 0, "q_lora_rank");
  STRATA_FIELD(m.o_groups, int, true, 0, "o_groups");
  STRATA_FIELD(m.o_lora_rank, int, true, 0, "o_lora_rank");
  STRATA_FIELD(m.norm_eps, double, false, 1e-6, "norm_eps", "rms_norm_eps");
  STRATA_FIELD(m.rope_theta, double, false, 10000.0, "rope_theta");
  STRATA_FIELD(m.compress_rope_theta, double, false, 160000.0, "compress_rope_theta");
  STRATA_FIELD(m.rope_factor, double, false, 1.0, "rope_factor");
  STRATA_FIELD(m.original_seq_len, int, false, 0, "original_seq_len");
  STRATA_FIELD(m.beta_fast, double, false, 32.0, "beta_fast");
  STRATA_FIELD(m.beta_slow, double, false, 1.0, "beta_slow");
  STRATA_FIELD(m.hc_sinkhorn_iters, int, false, 0, "hc_sinkhorn_iters");
  STRATA_FIELD(m.hc_eps, double, false, 1e-6, "hc_eps");
#undef STRATA_FIELD
  if (auto sf = j.find("score_func"); sf != j.end() && !sf->is_null()) {
    if (!sf->is_string()) return Status::InvalidArgument(c + ": score_func must be a string");
    const std::string v = sf->get<std::string>();
    if (v == "softmax")
      m.score_func = ScoreFunc::kSoftmax;
    else if (v == "sigmoid")
      m.score_func = ScoreFunc::kSigmoid;
    else if (v == "sqrtsoftplus")
      m.score_func = ScoreFunc::kSqrtSoftplus;
    else
      return Status::InvalidArgument(c + ": unknown score_func '" + v + "'");
  }
  STRATA_RETURN_IF_ERROR(m.Validate());
  return m;
}

std::string ReadFile(const std::string& path, Status* st) {
  std::ifstream in(path);
  if (!in) {
    *st = Status::NotFound("cannot read model config " + path);
    return {};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Status ModelConfig::Validate() const {
  STRATA_RETURN_IF_ERROR(ValidateConfigShape(shape));
  auto bad = [&](const std::string& what) {
    return Status::InvalidArgument("model " + shape.name + ": " + what);
  };
  if (q_lora_rank <= 0) return bad("q_lora_rank must be positive");
  if (o_groups <= 0 || shape.n_heads % o_groups)
    return bad("n_heads (" + std::to_string(shape.n_heads) + ") must be a multiple of o_groups (" +
               std::to_string(o_groups) + ")");
  if (o_lora_rank <= 0) return bad("o_lora_rank must be positive");
  if (n_routed_experts <= 0 || n_activated_experts <= 0 || n_activated_experts > n_routed_experts)
    return bad("need 0 < n_activated_experts <= n_routed_experts");
  if (n_shared_experts < 0) return bad("n_shared_experts must be >= 0");
  if (moe_inter_dim <= 0) return bad("moe_inter_dim must be positive");
  if (n_hash_layers < 0 || n_hash_layers > shape.n_layers)
    return bad("n_hash_layers must be in 0..n_layers");
  return Status::Ok();
}

Result<ModelConfig> ParseModelConfig(std::string_view json_text, std::string name) {
  try {
    return ParseUnchecked(json_text, std::move(name));
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("model config: ") + e.what());
  }
}

Result<ModelConfig> LoadModelConfig(const std::string& path) {
  Status st;
  std::string text = ReadFile(path, &st);
  if (!st.ok()) return st;
  return ParseModelConfig(text, std::filesystem::path(path).stem().string());
}

Result<ModelShape> ParseModelShape(std::string_view json_text, std::string name) {
  STRATA_ASSIGN_OR_RETURN(ModelConfig m, ParseModelConfig(json_text, std::move(name)));
  return m.shape;
}

Result<ModelShape> LoadModelShape(const std::string& path) {
  STRATA_ASSIGN_OR_RETURN(ModelConfig m, LoadModelConfig(path));
  return m.shape;
}

}  // namespace strata::engine
