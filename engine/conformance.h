// Runs a conformance case produced by the official DeepSeek-V4 inference code
// (shared/conformance/<case>/: config.json, weights.safetensors, vectors.safetensors) through
// the engine exactly as the case's README describes (one prefill call, then one decode call per
// decode token, the MTP layer after each call) and compares every figure:
//   - logits: cosine distance per row (<= 1e-2 each, median <= 1e-3), argmax agreement where
//     the reference's top-2 margin is >= 0.02, max abs / max rel differences;
//   - MTP logits: the same rule;
//   - indexer selections per row, compared as sets, per layer and per phase (the prefill
//     call's rows and the decode calls' rows are separate figures): >= 95% of rows equal, less
//     the share of rows where the reference's own selection changes when its arithmetic is
//     rounded differently: the largest share over the precision variants the case's generator
//     measured and its README states (see SelectionStability);
//   - every cache buffer, each live entry (as the README lists them) on its own: cosine
//     distance <= 1e-2 per entry, unless a flipped selection explains it: an entry derived from
//     positions P of layer L (the MTP layer comes after every main layer) is excused when the
//     engine's selection differs from the reference's at a row of P (same phase: prefill row p
//     or the decode step that produced p) in an indexer layer below L. The worst entry that is
//     not excused is reported and held to the limit;
//   - the hidden state after every block at each call's last position (reported).
// Thread safety: pure functions over files and strings.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "strata/status.h"

namespace strata::engine {

// A selection row where the engine and the reference chose different sets.
struct SelectionFlip {
  std::string selection;  // the selection figure, e.g. "indexer_topk.prefill.layers.1"
  int layer = 0;          // its indexer layer
  size_t row = 0;         // prompt position (prefill) or decode step (decode)
};

// A live cache entry whose cosine distance exceeds the limit, and the flipped selections (if
// any) that explain it.
struct CacheEntryOver {
  std::string entry;  // e.g. "SWA slot 0 (position 640)"
  double cos = 0.0;
  int64_t first = 0, end = 0;        // positions the entry is derived from: [first, end)
  std::vector<SelectionFlip> flips;  // empty: not excused
};

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
  // Caches: every live entry over the limit with what excuses it, how many are excused, and
  // the worst entry that is not excused (the one the limit holds for).
  std::vector<CacheEntryOver> over_entries;
  size_t excused = 0;
  double cos_max_unexcused = 0.0;
  std::string worst_unexcused;
  // Selections: the share of rows that must agree (the 95% rule less `allowance`), the
  // allowance (share of rows where the reference's own selection changes under a different
  // rounding) and where it comes from.
  double need = 0.0;
  double allowance = 0.0;
  std::string allowance_source;  // e.g. "variant (a): 288 of 703 rows"
  std::vector<size_t> differ;    // selections: every row whose set differs (position / step)
  bool pass = true;
};

// How unstable the reference's own indexer selections are: the case's README ("Sanity
// checks", "Precision sensitivity") reports, for each precision variant its generator ran
// ((a) float64 arithmetic wherever model.py allows, (b) float64 GEMMs rounded once to
// float32), per CSA layer the prefill rows and the decode steps whose selection changed. Both
// are legitimate roundings of the same float32 model, so a correct independent implementation
// may land anywhere in that range: the allowance of a layer and phase is the largest share
// over the variants.
struct SelectionStability {
  bool stated = false;  // false: the README states no figure; every allowance is 0
  std::string quote;    // the README's words the figures come from
  struct Layer {
    size_t prefill_changed = 0;
    size_t decode_changed = 0;
    std::string prefill_variant, decode_variant;  // which variant gave it ("a", "b", "a=b")
  };
  std::map<std::string, std::map<int, Layer>> variants;  // as stated, per variant ("a", "b")
  std::map<int, Layer> layers;  // per layer and phase, the largest over the variants
};

// Reads the figures from the text of a case's README; an error if they are there but
// malformed (or the paragraph is there without any variant's figures).
Result<SelectionStability> ParseSelectionStability(const std::string& readme);

struct ConformanceReport {
  std::string case_name;
  std::vector<ConformanceFigure> figures;
  SelectionStability stability;
  size_t prefill_rows = 0, decode_rows = 0;
  // Over all cache figures: entries over the limit, how many a flipped selection excuses, and
  // the worst entry that is not excused.
  size_t cache_over = 0, cache_excused = 0;
  double cache_worst_unexcused = 0.0;
  std::string cache_worst_unexcused_entry;
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
