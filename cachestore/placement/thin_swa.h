// SWA thinning: a block's `swa` family object turned into that block's `checkpoint` family
// object, from the swa bytes alone. Demotion with thin_swa_on_demotion writes the checkpoint to
// NVMe instead of the full SWA (DESIGN.md, "Store"): a window's worth of entries per layer
// instead of a block's, and a restore from it is the engine's checkpoint restore.
//
// Formats (include/strata/layout.h, engine/snapshot.h), E = main entry bytes, B = block size,
// W = SWA window, block b ends at position end = (b + 1) * B:
//   swa         per layer (main, then MTP): B entries by position; main layers hold positions
//               [bB, bB + B), the MTP layer (one position behind) [bB - 1, bB + B - 1); then
//               the block-end tail (checkpoint_carry_bytes()).
//   checkpoint  per layer: the SWA ring at `end`, W entries in slot order (slot p % W holds
//               position p); then the same tail.
//
// Why it is exact: entries are packed one by one (each carries its own scales), so an entry's
// bytes depend on that position's row only, and the ring at a block end holds exactly the rows
// of the window's last positions. W divides B (checked), so end % W == 0 and the ring is a fixed
// permutation of the swa object's last W entries of each layer:
//   main layer  ring slot s = position end - W + s       = swa row B - W + s
//   MTP layer   ring slot s = position end - W + s       = swa row B - W + s + 1  (s < W - 1)
//               ring slot W - 1 = position end - W - 1   = swa row B - W
// (for b == 0 and B == W that last one is position -1: a zero entry in both formats). The tail
// is the same block-end state in both and is copied. The result is byte-identical to what
// StateCodec::EncodeCheckpoint writes at that block end (tests/engine/thin_swa_test.cc).
//
// Thread safety: a pure function of its arguments; safe to call concurrently as long as the
// output spans do not overlap each other or any input.
#pragma once

#include <cstddef>
#include <span>

#include "strata/layout.h"
#include "strata/status.h"

namespace strata::cachestore {

// Writes the checkpoint family object of the block whose swa family object is `swa`.
// InvalidArgument when swa.size() != FamilyBlockBytes(kSwa), checkpoint.size() !=
// FamilyBlockBytes(kCheckpoint), the spans overlap, or the window does not divide the block
// size (then a block end is not a fixed ring rotation and the swa bytes alone cannot say it).
Status ThinSwaToCheckpoint(const CacheLayout& layout, std::span<const std::byte> swa,
                           std::span<std::byte> checkpoint);

}  // namespace strata::cachestore
