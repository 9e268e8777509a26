// The cache layout: how many bytes each state family takes per block for a given model, and the
// layout fingerprint that keeps bytes of one layout from ever being served to another.
//
// Entry formats (V4-FACTS.md, "Cache byte layouts"):
//   main / SWA entry: (head_dim - rope_head_dim) FP8 e4m3 bytes, rope_head_dim BF16 values,
//     one UE8M0 scale per 64 FP8 dims, zero padding to a multiple of 8 bytes
//     (V4: 448 + 128 + 7 + 1 = 584 B).
//   indexer entry: index_head_dim FP4 e2m1 values packed two per byte, one UE8M0 scale per 32
//     values (V4: 64 + 4 = 68 B).
//   block-end tail, the state at a block end that no entry holds: for each ratio-4 compressor
//     (main and indexer), the overlap half of the last 4 tokens, kv and score, fp32:
//     4 x head_dim x 2 x 4 B (the ratio-128 carry is empty at a 128-aligned position,
//     V4-FACTS.md "Compressor carry state"); and per MTP layer the main model's last hidden
//     state (hc_mult x dim fp32), which the MTP layer pairs with the next block's first token.
//   Families: `swa` = every layer's B SWA entries + the tail; `checkpoint` = every layer's last
//     window SWA entries + the tail.
// Thread safety: immutable after Make(); safe to share.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "strata/family.h"
#include "strata/status.h"

namespace strata {

// The model fields that decide the layout (a subset of the engine's model config).
struct ModelShape {
  std::string name;
  int vocab_size = 0;
  int dim = 0;
  int n_layers = 0;  // main layers, without MTP
  int n_mtp_layers = 0;
  int n_heads = 0;
  int head_dim = 0;       // latent width of a main / SWA entry
  int rope_head_dim = 0;  // of which the trailing dims are rotary (BF16 in the entry)
  int window_size = 0;    // SWA window, tokens
  int index_n_heads = 0;
  int index_head_dim = 0;
  int index_topk = 0;
  int hc_mult = 1;  // hyper-connection streams (the MTP layer's pending hidden state)
  std::vector<int> compress_ratios;  // n_layers + n_mtp_layers entries, each 0, 4 or 128

  Status Validate() const;
};

struct LayoutOptions {
  uint32_t block_size = 256;      // tokens per block; a multiple of 128
  uint32_t numerics_version = 1;  // bump when the engine's numerics change the stored bytes
};

class CacheLayout {
 public:
  static Result<CacheLayout> Make(const ModelShape& shape, const LayoutOptions& options);

  const ModelShape& shape() const { return shape_; }
  uint32_t block_size() const { return options_.block_size; }
  uint64_t fingerprint() const { return fingerprint_; }

  int csa_layers() const { return csa_layers_; }  // ratio-4 layers
  int hca_layers() const { return hca_layers_; }  // ratio-128 layers
  int swa_layers() const { return swa_layers_; }  // every layer incl. MTP
  uint32_t main_entry_bytes() const { return main_entry_bytes_; }
  uint32_t index_entry_bytes() const { return index_entry_bytes_; }

  // Bytes of one family for one block of block_size() tokens.
  uint64_t FamilyBlockBytes(Family f) const { return block_bytes_[static_cast<int>(f)]; }
  // FamilyBlockBytes / block_size.
  double BytesPerToken(Family f) const {
    return double(FamilyBlockBytes(f)) / double(options_.block_size);
  }
  // The checkpoint's two parts: SWA windows of every layer, and the block-end tail (compressor
  // carry and MTP pending hidden state), which the swa family carries too.
  uint64_t checkpoint_window_bytes() const { return checkpoint_window_bytes_; }
  uint64_t checkpoint_carry_bytes() const { return checkpoint_carry_bytes_; }

 private:
  ModelShape shape_;
  LayoutOptions options_;
  uint64_t fingerprint_ = 0;
  int csa_layers_ = 0, hca_layers_ = 0, swa_layers_ = 0;
  uint32_t main_entry_bytes_ = 0, index_entry_bytes_ = 0;
  uint64_t checkpoint_window_bytes_ = 0, checkpoint_carry_bytes_ = 0;
  std::array<uint64_t, kNumFamilies> block_bytes_{};
};

// Entry sizes from the formats above.
uint32_t MainEntryBytes(int head_dim, int rope_head_dim);
uint32_t IndexEntryBytes(int index_head_dim);

}  // namespace strata
