#include "engine/model_config.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace strata::engine {
namespace {

using nlohmann::json;

// The first of `names` present in `j`, as an int; NotFound naming them all if none is.
Result<int> IntField(const json& j, std::initializer_list<const char*> names, bool required,
                     int fallback, const std::string& ctx) {
  for (const char* n : names) {
    auto it = j.find(n);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_number_integer())
      return Status::InvalidArgument(ctx + ": field '" + n + "' must be an integer");
    return int(it->get<int64_t>());
  }
  if (!required) return fallback;
  std::string list;
  for (const char* n : names) list += std::string(list.empty() ? "" : " / ") + n;
  return Status::InvalidArgument(ctx + ": missing field " + list);
}

}  // namespace

Result<ModelShape> ParseModelShape(std::string_view json_text, std::string name) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::InvalidArgument(name + ": not a JSON object");
  ModelShape s;
  s.name = name;
  const std::string& c = name;
  STRATA_ASSIGN_OR_RETURN(s.vocab_size, IntField(j, {"vocab_size"}, true, 0, c));
  STRATA_ASSIGN_OR_RETURN(s.dim, IntField(j, {"dim", "hidden_size"}, true, 0, c));
  STRATA_ASSIGN_OR_RETURN(s.n_layers, IntField(j, {"n_layers", "num_hidden_layers"}, true, 0, c));
  STRATA_ASSIGN_OR_RETURN(s.n_mtp_layers,
                          IntField(j, {"n_mtp_layers", "num_nextn_predict_layers"}, false, 0, c));
  STRATA_ASSIGN_OR_RETURN(s.n_heads, IntField(j, {"n_heads", "num_attention_heads"}, true, 0, c));
  STRATA_ASSIGN_OR_RETURN(s.head_dim, IntField(j, {"head_dim"}, true, 0, c));
  STRATA_ASSIGN_OR_RETURN(s.rope_head_dim,
                          IntField(j, {"rope_head_dim", "qk_rope_head_dim"}, true, 0, c));
  STRATA_ASSIGN_OR_RETURN(s.window_size,
                          IntField(j, {"window_size", "sliding_window"}, true, 0, c));
  STRATA_ASSIGN_OR_RETURN(s.index_n_heads, IntField(j, {"index_n_heads"}, false, 0, c));
  STRATA_ASSIGN_OR_RETURN(s.index_head_dim, IntField(j, {"index_head_dim"}, false, 0, c));
  STRATA_ASSIGN_OR_RETURN(s.index_topk, IntField(j, {"index_topk"}, false, 0, c));
  auto cr = j.find("compress_ratios");
  if (cr == j.end() || !cr->is_array())
    return Status::InvalidArgument(c + ": missing array field compress_ratios");
  for (const auto& v : *cr) {
    if (!v.is_number_integer())
      return Status::InvalidArgument(c + ": compress_ratios must hold integers");
    s.compress_ratios.push_back(int(v.get<int64_t>()));
  }
  STRATA_RETURN_IF_ERROR(s.Validate());
  return s;
}

Result<ModelShape> LoadModelShape(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read model config " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseModelShape(ss.str(), std::filesystem::path(path).stem().string());
}

}  // namespace strata::engine
