// Model configs: reads an HF-style config.json into the ModelShape the cache layout needs.
// Accepts the official inference naming (ModelArgs: dim, n_layers, n_heads, ...) and the
// released checkpoints' naming (hidden_size, num_hidden_layers, num_attention_heads, ...).
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "strata/layout.h"
#include "strata/status.h"

namespace strata::engine {

// `name` labels errors and the shape (usually the file name).
Result<ModelShape> ParseModelShape(std::string_view json_text, std::string name);
Result<ModelShape> LoadModelShape(const std::string& path);

}  // namespace strata::engine
