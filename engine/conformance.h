// Runs a conformance case produced by the official DeepSeek-V4 inference code
// (shared/conformance/<case>/: config.json, weights.safetensors, vectors.safetensors) through
// the engine exactly as the case's README describes (one prefill call, then one decode call per
// decode token, the MTP layer after each call) and compares every figure:
//   - logits: cosine distance per row (<= 1e-2 each, median <= 1e-3), argmax agreement where
//     the reference's top-2 margin is >= 0.02, max abs / max rel differences;
//   - MTP logits: the same rule;
//   - indexer selections per row, compared as sets (>= 95% of rows equal);
//   - every cache buffer's live entries (as the README lists them), taken together: cosine
//     distance <= 1e-2 (the worst single entry is reported too);
//   - the hidden state after every block at each call's last position (reported).
// Thread safety: pure function over files.
#pragma once

#include <string>
#include <vector>

#include "strata/status.h"

namespace strata::engine {

struct ConformanceFigure {
  std::string name;      // e.g. "logits", "after_prefill.layers.1.attn.kv_cache"
  double cos_max = 0.0;  // worst cosine distance (per row / per entry)
  double cos_median = 0.0;
  double cos_all = 0.0;  // cosine distance of everything compared, flattened
  double max_abs = 0.0;  // max |ours - reference|
  double max_rel = 0.0;  // max_abs / max |reference|
  size_t rows = 0;
  size_t agree = 0;    // rows that agree (argmax, selection sets); 0 when not applicable
  size_t checked = 0;  // rows where agreement is checked
  bool pass = true;
};

struct ConformanceReport {
  std::string case_name;
  std::vector<ConformanceFigure> figures;
  bool pass = true;
  double seconds = 0.0;
};

struct ConformanceOptions {
  // The reference caches float32 RoPE dims; serving numerics round them to BF16 (Numerics).
  bool bf16_rope_cache = false;
};

Result<ConformanceReport> RunConformance(const std::string& case_dir,
                                         const ConformanceOptions& options = {});

// One line per figure, for terminals.
std::string FormatReport(const ConformanceReport& r);
std::string ReportJson(const ConformanceReport& r);

}  // namespace strata::engine
