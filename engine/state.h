// Per-request state of the V4 forward pass: everything a later call reads. Values are held
// as float32, but every cached entry holds exactly what its stored byte format can represent
// (main / SWA entries: FP8-simulated non-RoPE dims and BF16-rounded RoPE dims; indexer keys:
// FP4-simulated), so packing into the store and unpacking again is lossless.
//
// Per layer (main layers, then MTP layers):
//   swa          [window, head_dim]  ring: slot p % window holds position p
//   entries      [count, head_dim]   compressed entries (ratio 4 or 128), entry j = block
//                                    [ratio*j, ratio*j + ratio)
//   index_keys   [count, index_head_dim]  the indexer's keys (ratio-4 layers)
//   comp / index_comp  compressor carry, laid out as the reference's kv_state / score_state:
//       ratio 4 (overlap): [8, 2*d]: rows 0..3 the last complete block (columns [0, d) are read
//       again), rows 4..7 the pending tokens (slot 4 + p % 4);
//       ratio 128: [128, d]: slot p % 128 holds pending token p. Scores include `ape`; -inf =
//       never written. Rows not live (pending rows of a completed block) are reset to the
//       initial values (kv 0, score -inf), so the carry at a block end is fully determined by
//       its live rows.
// Thread safety: a state belongs to one request; not synchronised.
#pragma once

#include <cstdint>
#include <vector>

namespace strata::engine {

struct CompressorCarry {
  int ratio = 0;
  int rows = 0, cols = 0;  // coff * ratio, coff * head_dim (coff = 2 for ratio 4, else 1)
  std::vector<float> kv, score;
  bool operator==(const CompressorCarry&) const = default;
};

struct LayerState {
  int ratio = 0;
  // Window positions below this are not in the ring (a restore that recomputes the window
  // starts part-way); attention skips them. 0 in every state a forward pass leaves.
  int64_t swa_valid_from = 0;
  std::vector<float> swa;
  std::vector<float> entries;
  std::vector<float> index_keys;
  CompressorCarry comp, index_comp;
  bool operator==(const LayerState&) const = default;
};

struct RequestState {
  int64_t pos = 0;                 // positions consumed by the main layers
  std::vector<LayerState> layers;  // n_layers main layers, then n_mtp_layers MTP layers
  // The MTP layer pairs position i's last hidden state with token i + 1, so it runs one
  // position behind when the next token is not known yet: mtp_pos positions are done and
  // mtp_hidden holds the main model's last hidden state of position mtp_pos (when
  // mtp_pos < pos).
  int64_t mtp_pos = 0;
  std::vector<float> mtp_hidden;  // [hc_mult * dim]
  bool operator==(const RequestState&) const = default;
};

// Byte-for-byte equality of two states (float fields compared as bits: -0 and NaN payloads
// count), which is what bit-exact rehydration promises.
bool BitIdentical(const RequestState& a, const RequestState& b);

}  // namespace strata::engine
