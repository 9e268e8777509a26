// The DeepSeek-V4 forward pass on the CPU kernels, as the official inference/model.py defines
// it: embedding into hc_mult hyper-connection streams; per layer attention (low-rank Q with
// norm, KV latent with norm, RoPE, FP8 simulation, sliding window, compressor and indexer per
// compress ratio, sparse attention with sink, inverse RoPE, grouped low-rank output) and MoE
// (hash routing in the first n_hash_layers, biased sqrtsoftplus top-k otherwise, shared expert,
// clamped SwiGLU), each wrapped in the Sinkhorn hyper-connection; hc head, norm and vocabulary
// head; the MTP layer.
//
// One entry point serves prefill from position 0, prefill continuing from any position in
// chunks of any size, and decode (a chunk of one): a token's results are bitwise the same
// however the tokens are split into calls (batch invariance, proven by tests).
// Thread safety: a Model is immutable and may serve many requests at once; each RequestState
// belongs to one caller. Kernels use the default thread pool.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/model_config.h"
#include "engine/state.h"
#include "engine/weights.h"
#include "strata/status.h"

namespace strata::engine {

// Optional diagnostics of one call (conformance and tests).
struct ForwardTrace {
  bool want_hidden = false;
  bool want_topk = false;
  // Per main layer: the hc streams [hc_mult * dim] after the layer, at the call's last position.
  std::vector<std::vector<float>> hidden_last;
  // Per ratio-4 main layer: [tokens, index_topk] selected entries (0-based, in selection order:
  // descending score, ties lower index first; -1 = none).
  std::map<int, std::vector<int32_t>> topk;
};

// Wall time per kernel family, accumulated over calls (exclusive: a GEMM inside the
// compressor counts as GEMM).
using KernelProfile = std::map<std::string, double>;

struct ForwardOptions {
  bool all_logits = false;  // logits of every position of the call, not only the last
  // The token after the call's last token. When given, the MTP layer runs through the call's
  // last position and returns its logits; otherwise MTP stays one position behind.
  std::optional<int32_t> mtp_next;
  bool run_mtp = true;  // false: leave the MTP layer's state untouched
  // Return every layer's SWA rows (the cached KV latent of each position the call computed).
  bool capture_swa = false;
  ForwardTrace* trace = nullptr;
  KernelProfile* profile = nullptr;
};

// How cached entries are rounded. Serving uses the stored formats' precision (BF16 RoPE dims
// in main / SWA entries, as the 584-byte entry holds them), so state round-trips through the
// store bit-exactly. The official reference keeps those dims in float32; conformance runs use
// that precision to compare like with like.
struct Numerics {
  bool bf16_rope_cache = true;
};

// SWA rows of one layer for positions [first, first + rows / head_dim).
struct SwaRows {
  int64_t first = 0;
  std::vector<float> rows;
};

struct ForwardResult {
  std::vector<float> logits;      // [rows, vocab]: rows = tokens (all_logits) or 1
  std::vector<float> mtp_logits;  // [vocab] when MTP ran through the last position
  std::vector<SwaRows> swa;       // per layer (main, then MTP) with capture_swa
};

class Model {
 public:
  static Result<std::unique_ptr<Model>> Create(const ModelConfig& config,
                                               std::shared_ptr<const ModelWeights> weights,
                                               Numerics numerics = {});
  ~Model();
  const Numerics& numerics() const { return numerics_; }
  const ModelWeights& weights() const { return *weights_; }

  const ModelConfig& config() const { return config_; }
  RequestState NewState() const;

  // Runs `tokens` at positions state.pos, state.pos + 1, ... and advances the state.
  // Compressed entries (and indexer keys) already present in the state for blocks the call
  // completes are kept, not recomputed: a restore that recomputes the sliding window over
  // restored entries relies on this.
  Result<ForwardResult> Forward(RequestState& state, std::span<const int32_t> tokens,
                                const ForwardOptions& options = {}) const;

 private:
  struct Impl;
  Model(const ModelConfig& config, std::shared_ptr<const ModelWeights> weights);
  ModelConfig config_;
  Numerics numerics_;
  std::shared_ptr<const ModelWeights> weights_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::engine
