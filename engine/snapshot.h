// Snapshot and restore of request state in the stored family formats (DESIGN.md, "Terms"),
// block by block. Layers are taken in order (main layers, then MTP); within a layer, entries in
// position order. Byte counts equal CacheLayout::FamilyBlockBytes.
//
//   csa        per ratio-4 layer: B/4 main entries (584 B for V4)
//   csa_index  per ratio-4 layer: B/4 FP4 indexer entries (68 B for V4)
//   hca        per ratio-128 layer: B/128 main entries
//   swa        per layer: B SWA entries, then the block-end tail. Main layers hold positions
//              [bB, bB + B); the MTP layer, which runs one position behind (it pairs position
//              i with token i + 1), holds positions [bB - 1, bB + B - 1) (a zero entry for -1).
//   checkpoint per layer: the SWA ring as it is at the block end (window entries, slot order),
//              then the tail.
//   tail       per ratio-4 layer: the main then the indexer compressor's overlap rows, kv then
//              score (4 x d fp32 each); then per MTP layer the pending hidden state
//              (hc_mult x dim fp32).
// The state at a block end is canonical: no pending compressor rows (block ends are multiples
// of 128), MTP one position behind, stale carry rows reset by the engine. Restoring a block
// end's families therefore gives back the cold state bit for bit.
// Thread safety: a StateCodec is immutable; its methods are safe to call concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/model_config.h"
#include "engine/state.h"
#include "strata/layout.h"
#include "strata/status.h"

namespace strata::engine {

// The SWA rows of the positions of one block, per layer, gathered while the block is computed.
struct BlockSwaRows {
  std::vector<std::vector<float>> layers;  // per layer: [B, head_dim], by position as above
};

class StateCodec {
 public:
  StateCodec(const ModelConfig& config, const CacheLayout& layout);

  const CacheLayout& layout() const { return layout_; }
  uint32_t block_size() const { return layout_.block_size(); }

  // Compressed families of block `b`: its entries must be in `state`.
  Result<std::vector<std::byte>> EncodeCsa(const RequestState& state, int64_t b) const;
  Result<std::vector<std::byte>> EncodeCsaIndex(const RequestState& state, int64_t b) const;
  Result<std::vector<std::byte>> EncodeHca(const RequestState& state, int64_t b) const;
  // `state` must be at the end of block b (state.pos == (b + 1) * B).
  Result<std::vector<std::byte>> EncodeSwa(const BlockSwaRows& rows,
                                           const RequestState& state) const;
  Result<std::vector<std::byte>> EncodeCheckpoint(const RequestState& state) const;

  // Appends block b's compressed entries; `state` must hold exactly blocks [0, b) of them.
  Status DecodeCompressed(RequestState& state, int64_t b, std::span<const std::byte> csa,
                          std::span<const std::byte> csa_index,
                          std::span<const std::byte> hca) const;
  // Sets rings, carry and MTP state from a checkpoint taken at position `end` and sets
  // state.pos (and the MTP position) to it. Entries must already be restored up to `end`.
  Status DecodeCheckpoint(RequestState& state, int64_t end,
                          std::span<const std::byte> checkpoint) const;
  // The same from the swa families of the blocks that end at `end`: `swa` holds the families
  // of the last blocks in order (enough of them to cover window + 1 positions).
  Status DecodeSwa(RequestState& state, int64_t end,
                   std::span<const std::span<const std::byte>> swa) const;
  // How many trailing blocks' swa families DecodeSwa needs.
  int SwaBlocksNeeded() const;

 private:
  Result<std::vector<std::byte>> EncodeEntries(const RequestState& state, int64_t b, int ratio,
                                               bool index, Family family) const;
  Status CheckBlockEnd(const RequestState& state, const char* what) const;
  Status DecodeTail(RequestState& state, std::span<const std::byte> tail) const;
  void EncodeTail(const RequestState& state, std::byte* out) const;
  ModelConfig config_;
  CacheLayout layout_;
  int main_bytes_ = 0, index_bytes_ = 0;
};

}  // namespace strata::engine
