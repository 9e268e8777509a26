// ThinSwaToCheckpoint (thin_swa.h): the ring permutation, entry by entry as byte copies.
#include "cachestore/placement/thin_swa.h"

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

namespace strata::cachestore {

Status ThinSwaToCheckpoint(const CacheLayout& layout, std::span<const std::byte> swa,
                           std::span<std::byte> checkpoint) {
  const ModelShape& s = layout.shape();
  const uint64_t B = layout.block_size();
  const uint64_t W = uint64_t(s.window_size);
  const uint64_t E = layout.main_entry_bytes();
  const uint64_t swa_bytes = layout.FamilyBlockBytes(Family::kSwa);
  const uint64_t cp_bytes = layout.FamilyBlockBytes(Family::kCheckpoint);
  if (W == 0 || B % W != 0)
    return Status::InvalidArgument("thin swa: window " + std::to_string(W) +
                                   " does not divide the block size " + std::to_string(B) +
                                   "; the swa family cannot be thinned to a checkpoint");
  if (swa.size() != swa_bytes)
    return Status::InvalidArgument("thin swa: swa object of " + std::to_string(swa.size()) +
                                   " bytes, the layout says " + std::to_string(swa_bytes));
  if (checkpoint.size() != cp_bytes)
    return Status::InvalidArgument("thin swa: checkpoint buffer of " +
                                   std::to_string(checkpoint.size()) + " bytes, the layout says " +
                                   std::to_string(cp_bytes));
  const std::less<const std::byte*> before;
  if (before(checkpoint.data(), swa.data() + swa.size()) &&
      before(swa.data(), checkpoint.data() + checkpoint.size()))
    return Status::InvalidArgument("thin swa: the checkpoint buffer overlaps the swa object");

  const uint64_t layers = uint64_t(layout.swa_layers());
  const uint64_t tail = layout.checkpoint_carry_bytes();
  const std::byte* in = swa.data();
  std::byte* out = checkpoint.data();
  for (uint64_t l = 0; l < layers; ++l) {
    const std::byte* last = in + (l * B + (B - W)) * E;  // the layer's last W entries
    std::byte* ring = out + l * W * E;
    if (l < uint64_t(s.n_layers)) {
      std::memcpy(ring, last, W * E);
    } else {  // MTP: one position behind, so the ring is rotated by one entry
      std::memcpy(ring, last + E, (W - 1) * E);
      std::memcpy(ring + (W - 1) * E, last, E);
    }
  }
  std::memcpy(out + layers * W * E, in + layers * B * E, tail);
  return Status::Ok();
}

}  // namespace strata::cachestore
