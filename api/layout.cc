// CacheLayout (include/strata/layout.h): per-family block sizes and the layout fingerprint.
#define XXH_STATIC_LINKING_ONLY
#include "strata/layout.h"

#include <xxhash.h>

#include <string>

namespace strata {
namespace {

uint64_t RoundUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Carry of a ratio-4 compressor at a 128-aligned position: the overlap half of the last 4
// tokens, kv and score, fp32.
uint64_t Ratio4CarryBytes(int head_dim) { return 4ull * uint64_t(head_dim) * 2 * 4; }

}  // namespace

Status ModelShape::Validate() const {
  auto bad = [&](const std::string& what) {
    return Status::InvalidArgument("model " + (name.empty() ? std::string("<unnamed>") : name) +
                                   ": " + what);
  };
  if (n_layers <= 0) return bad("n_layers must be > 0");
  if (n_mtp_layers < 0) return bad("n_mtp_layers must be >= 0");
  if (compress_ratios.size() != size_t(n_layers + n_mtp_layers))
    return bad(
        "compress_ratios has " + std::to_string(compress_ratios.size()) +
        " entries, expected n_layers + n_mtp_layers = " + std::to_string(n_layers + n_mtp_layers));
  for (size_t i = 0; i < compress_ratios.size(); ++i) {
    int r = compress_ratios[i];
    if (r != 0 && r != 4 && r != 128)
      return bad("compress_ratios[" + std::to_string(i) + "] = " + std::to_string(r) +
                 ", must be 0, 4 or 128");
  }
  if (head_dim <= 0 || rope_head_dim <= 0 || rope_head_dim >= head_dim)
    return bad("need 0 < rope_head_dim < head_dim");
  if ((head_dim - rope_head_dim) % 64 != 0)
    return bad("head_dim - rope_head_dim must be a multiple of 64 (FP8 scale blocks)");
  if (window_size <= 0) return bad("window_size must be > 0");
  bool any_csa = false;
  for (int r : compress_ratios) any_csa |= (r == 4);
  if (any_csa && (index_head_dim <= 0 || index_head_dim % 32 != 0))
    return bad("index_head_dim must be a positive multiple of 32 (FP4 scale blocks)");
  return Status::Ok();
}

uint32_t MainEntryBytes(int head_dim, int rope_head_dim) {
  const uint64_t nope = uint64_t(head_dim - rope_head_dim);
  return uint32_t(RoundUp(nope + 2ull * rope_head_dim + nope / 64, 8));
}

uint32_t IndexEntryBytes(int index_head_dim) {
  return uint32_t(index_head_dim / 2 + index_head_dim / 32);
}

Result<CacheLayout> CacheLayout::Make(const ModelShape& shape, const LayoutOptions& options) {
  STRATA_RETURN_IF_ERROR(shape.Validate());
  if (options.block_size == 0 || options.block_size % 128 != 0)
    return Status::InvalidArgument("block size " + std::to_string(options.block_size) +
                                   " is not a positive multiple of 128");
  CacheLayout l;
  l.shape_ = shape;
  l.options_ = options;
  for (int r : shape.compress_ratios) {
    l.csa_layers_ += (r == 4);
    l.hca_layers_ += (r == 128);
  }
  l.swa_layers_ = int(shape.compress_ratios.size());
  l.main_entry_bytes_ = MainEntryBytes(shape.head_dim, shape.rope_head_dim);
  l.index_entry_bytes_ = l.csa_layers_ ? IndexEntryBytes(shape.index_head_dim) : 0;

  const uint64_t B = options.block_size;
  auto& bb = l.block_bytes_;
  bb[int(Family::kCsa)] = uint64_t(l.csa_layers_) * (B / 4) * l.main_entry_bytes_;
  bb[int(Family::kCsaIndex)] = uint64_t(l.csa_layers_) * (B / 4) * l.index_entry_bytes_;
  bb[int(Family::kHca)] = uint64_t(l.hca_layers_) * (B / 128) * l.main_entry_bytes_;
  l.checkpoint_window_bytes_ =
      uint64_t(l.swa_layers_) * uint64_t(shape.window_size) * l.main_entry_bytes_;
  l.checkpoint_carry_bytes_ =
      uint64_t(l.csa_layers_) *
          (Ratio4CarryBytes(shape.head_dim) + Ratio4CarryBytes(shape.index_head_dim)) +
      uint64_t(shape.n_mtp_layers) * uint64_t(shape.hc_mult) * uint64_t(shape.dim) * 4;
  bb[int(Family::kSwa)] =
      uint64_t(l.swa_layers_) * B * l.main_entry_bytes_ + l.checkpoint_carry_bytes_;
  bb[int(Family::kCheckpoint)] = l.checkpoint_window_bytes_ + l.checkpoint_carry_bytes_;

  // Fingerprint: every field that changes the stored bytes, in a fixed order.
  XXH3_state_t st;
  XXH3_64bits_reset(&st);
  auto add = [&](uint64_t v) { XXH3_64bits_update(&st, &v, sizeof v); };
  add(0x53545241544c4159ull);  // "STRATLAY": fingerprint scheme version 1
  for (int v : {shape.vocab_size, shape.dim, shape.n_layers, shape.n_mtp_layers, shape.n_heads,
                shape.head_dim, shape.rope_head_dim, shape.window_size, shape.index_n_heads,
                shape.index_head_dim, shape.index_topk, shape.hc_mult})
    add(uint64_t(int64_t(v)));
  add(shape.compress_ratios.size());
  for (int r : shape.compress_ratios) add(uint64_t(r));
  add(l.main_entry_bytes_);
  add(l.index_entry_bytes_);
  add(options.block_size);
  add(options.numerics_version);
  l.fingerprint_ = XXH3_64bits_digest(&st);
  return l;
}

}  // namespace strata
