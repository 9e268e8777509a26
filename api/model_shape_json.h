// Internal to the API library and the engine's config reader: the JSON side of
// strata/model_shape.h, so that engine/model_config.cc reads its shape and its other fields with
// the same code. Not part of the public API (it exposes nlohmann::json).
// Thread safety: pure functions.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

#include "strata/layout.h"
#include "strata/status.h"

namespace strata::config_json {

// The first of `names` present (and not null) in `j`; `fallback` when none is and the field is
// optional. `ctx` (the config's name) prefixes errors.
template <typename T>
Result<T> Field(const nlohmann::json& j, std::initializer_list<const char*> names, bool required,
                T fallback, const std::string& ctx) {
  for (const char* n : names) {
    auto it = j.find(n);
    if (it == j.end() || it->is_null()) continue;
    if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer())
        return Status::InvalidArgument(ctx + ": field '" + n + "' must be an integer");
      return T(it->template get<int64_t>());
    } else {
      if (!it->is_number())
        return Status::InvalidArgument(ctx + ": field '" + n + "' must be a number");
      return T(it->template get<double>());
    }
  }
  if (!required) return fallback;
  std::string list;
  for (const char* n : names) list += std::string(list.empty() ? "" : " / ") + n;
  return Status::InvalidArgument(ctx + ": missing field " + list);
}

// The shape fields of a parsed config object, named `name`; not validated (ValidateConfigShape).
Result<ModelShape> ShapeFromJson(const nlohmann::json& j, const std::string& name);

}  // namespace strata::config_json
