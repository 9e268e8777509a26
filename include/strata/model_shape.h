// Model shapes from model config files: reads the fields of an HF-style config.json
// (configs/models/*.json) that the cache layout needs into a ModelShape, without the engine, so
// a tool that sizes state (a trace simulator, `strata compare`) needs neither weights nor the
// model code. The engine's config reader (engine/model_config.h) builds its shape through the
// same code. Accepts the official inference naming (dim, n_layers, n_heads, ...) and the
// released checkpoints' naming (hidden_size, num_hidden_layers, num_attention_heads, ...). An
// invalid config is a clear error naming the field.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "strata/layout.h"
#include "strata/status.h"

namespace strata {

// `name` labels errors and becomes the shape's name.
Result<ModelShape> ParseModelShape(std::string_view json_text, std::string name);
// The file's stem (e.g. "v4-pro") names the shape.
Result<ModelShape> ReadModelShape(const std::string& path);

// What a model config's shape must satisfy: ModelShape::Validate, plus positive vocab_size, dim,
// n_heads and hc_mult, an even rope_head_dim, indexer heads and top-k when there are CSA layers,
// and SWA-only (ratio 0) MTP layers.
Status ValidateConfigShape(const ModelShape& shape);

}  // namespace strata
