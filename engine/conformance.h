// Runs a conformance case produced by the official DeepSeek-V4 inference code
// (shared/conformance/<case>/: config.json, weights.safetensors, vectors.safetensors) through
// the engine exactly as the case's README describes (one prefill call, then one decode call per
// decode token, the MTP layer after each call) and compares every figure:
//   - logits: cosine distance per row (<= 1e-2 each, median <= 1e-3), argmax agreement where
//     the reference's top-2 margin is >= 0.02, max abs / max rel differences;
//   - MTP logits: the same rule;
//   - indexer selections per row, compared as sets, per layer and per phase (the prefill
//     call's rows and the decode calls' rows are separate figures): >= 95% of rows equal, less
//     the share of rows where the reference's own selection changes under a mere GEMM rounding
//     change (measured by the case's generator and stated in its README; see
//     SelectionStability);
//   - every cache buffer, each live entry (as the README lists them) on its own: cosine
//     distance <= 1e-2 per entry, the worst entry reported;
//   - the hidden state after every block at each call's last position (reported).
// Thread safety: pure functions over files and strings.
#pragma once

#include <map>
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
  size_t over = 0;     // rows / live entries whose cosine distance exceeds the per-row limit
  std::vector<std::string> over_rows;  // which ones
  // The row / live entry with the worst cosine distance; selections: the first rows that differ.
  std::string worst;
  // Selections: the share of rows that must agree (the 95% rule less `allowance`), and the
  // share of rows where the reference's own selection changes under a GEMM rounding change.
  double need = 0.0;
  double allowance = 0.0;
  std::vector<size_t> differ;  // selections: every row whose set differs (position / step)
  bool pass = true;
};

// How unstable the reference's own indexer selections are: the case's README ("Sanity
// checks", "Precision sensitivity") reports, for variant (b) (the reference with every
// F.linear computed in float64 and rounded once to float32, just a different GEMM rounding),
// per CSA layer the prefill rows and the decode steps whose selection changed. The share of
// changed rows is the allowance of that layer and phase.
struct SelectionStability {
  bool stated = false;  // false: the README states no figure; every allowance is 0
  std::string quote;    // the README's words the figures come from
  struct Layer {
    size_t prefill_changed = 0;
    size_t decode_changed = 0;
  };
  std::map<int, Layer> layers;
};

// Reads the figure from the text of a case's README; an error if it is there but malformed.
Result<SelectionStability> ParseSelectionStability(const std::string& readme);

struct ConformanceReport {
  std::string case_name;
  std::vector<ConformanceFigure> figures;
  SelectionStability stability;
  size_t prefill_rows = 0, decode_rows = 0;
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
