// Record codec: LZ4 per record, optionally after a byte-shuffle that groups the k-th byte of
// every 2- or 4-byte lane (BF16 / fp32 state compresses far better that way), or zstd level 1
// (V4's FP8 entries: LZ4 finds nothing in them, zstd's entropy coder takes their skewed byte
// distribution). A record that does not shrink is stored raw. LZ4 and zstd stay inside this
// adapter.
// Thread safety: stateless functions (thread-local scratch); safe from any thread.
#pragma once

#include <cstddef>
#include <span>

#include "strata/status.h"
#include "strata/store.h"

namespace strata::cachestore {

// Upper bound of EncodeRecord's output for `raw_size` input bytes, for any codec.
size_t MaxEncodedSize(size_t raw_size);

struct Encoded {
  CodecKind codec;  // what was applied: kNone when the codec did not shrink the payload
  size_t size;      // bytes written to `out`
};

// Encodes `raw` into `out` (out.size() >= MaxEncodedSize(raw.size())).
Encoded EncodeRecord(CodecKind codec, std::span<const std::byte> raw, std::span<std::byte> out);

// Decodes `stored` into `raw` (exactly the record's raw size). Corruption if the payload does
// not decode to exactly raw.size() bytes.
Status DecodeRecord(CodecKind codec, std::span<const std::byte> stored, std::span<std::byte> raw);

// Byte-shuffle with `lane` bytes per element; a tail shorter than a lane is copied as is.
void Shuffle(std::span<const std::byte> in, std::span<std::byte> out, size_t lane);
void Unshuffle(std::span<const std::byte> in, std::span<std::byte> out, size_t lane);

}  // namespace strata::cachestore
