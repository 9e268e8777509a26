// Model shapes from config files (include/strata/model_shape.h).
#include "strata/model_shape.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/model_shape_json.h"

namespace strata {

namespace config_json {

Result<ModelShape> ShapeFromJson(const nlohmann::json& j, const std::string& name) {
  ModelShape s;
  s.name = name;
#define STRATA_FIELD(dst, type, req, def, ...) \
  STRATA_ASSIGN_OR_RETURN(dst, Field<type>(j, {__VA_ARGS__}, req, def, name))
  STRATA_FIELD(s.vocab_size, int, true, 0, "vocab_size");
  STRATA_FIELD(s.dim, int, true, 0, "dim", "hidden_size");
  STRATA_FIELD(s.n_layers, int, true, 0, "n_layers", "num_hidden_layers");
  STRATA_FIELD(s.n_mtp_layers, int, false, 0, "n_mtp_layers", "num_nextn_predict_layers");
  STRATA_FIELD(s.n_heads, int, true, 0, "n_heads", "num_attention_heads");
  STRATA_FIELD(s.head_dim, int, true, 0, "head_dim");
  STRATA_FIELD(s.rope_head_dim, int, true, 0, "rope_head_dim", "qk_rope_head_dim");
  STRATA_FIELD(s.window_size, int, true, 0, "window_size", "sliding_window");
  STRATA_FIELD(s.index_n_heads, int, false, 0, "index_n_heads");
  STRATA_FIELD(s.index_head_dim, int, false, 0, "index_head_dim");
  STRATA_FIELD(s.index_topk, int, false, 0, "index_topk");
  STRATA_FIELD(s.hc_mult, int, false, 1, "hc_mult");
#undef STRATA_FIELD
  auto cr = j.find("compress_ratios");
  if (cr == j.end() || !cr->is_array())
    return Status::InvalidArgument(name + ": missing array field compress_ratios");
  for (const auto& v : *cr) {
    if (!v.is_number_integer())
      return Status::InvalidArgument(name + ": compress_ratios must hold integers");
    s.compress_ratios.push_back(int(v.get<int64_t>()));
  }
  return s;
}

}  // namespace config_json

Status ValidateConfigShape(const ModelShape& s) {
  STRATA_RETURN_IF_ERROR(s.Validate());
  auto bad = [&](const std::string& what) {
    return Status::InvalidArgument("model " + s.name + ": " + what);
  };
  if (s.vocab_size <= 0 || s.dim <= 0 || s.n_heads <= 0)
    return bad("vocab_size, dim and n_heads must be positive");
  if (s.rope_head_dim % 2) return bad("rope_head_dim must be even");
  if (s.hc_mult <= 0) return bad("hc_mult must be positive");
  bool any_csa = false;
  for (int r : s.compress_ratios) any_csa |= r == 4;
  if (any_csa && (s.index_n_heads <= 0 || s.index_topk <= 0))
    return bad("CSA layers need index_n_heads and index_topk");
  for (size_t i = size_t(s.n_layers); i < s.compress_ratios.size(); ++i)
    if (s.compress_ratios[i] != 0) return bad("the MTP layers must be SWA-only (ratio 0)");
  return Status::Ok();
}

Result<ModelShape> ParseModelShape(std::string_view json_text, std::string name) {
  try {
    nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      return Status::InvalidArgument(name + ": not a JSON object");
    STRATA_ASSIGN_OR_RETURN(ModelShape s, config_json::ShapeFromJson(j, name));
    STRATA_RETURN_IF_ERROR(ValidateConfigShape(s));
    return s;
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("model config: ") + e.what());
  }
}

Result<ModelShape> ReadModelShape(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read model config " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IoError("reading model config " + path);
  return ParseModelShape(ss.str(), std::filesystem::path(path).stem().string());
}

}  // namespace strata
