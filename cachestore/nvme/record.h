// The NVMe record format. Every record starts on a 4 KiB boundary inside a segment file:
//
//   offset  size  field
//   0       4     magic "STRR" (bytes 53 54 52 52)
//   4       2     format version (kRecordFormatVersion), little-endian like every field
//   6       1     family (strata::Family)
//   7       1     codec (strata::CodecKind) applied to the payload: 0 none, 1 lz4,
//                 2 lz4 after a 2-byte shuffle, 3 lz4 after a 4-byte shuffle, 4 zstd level 1
//                 (readers before codec 4 existed refuse such a record as corrupt)
//   8       8     namespace id
//   16      8     block key, high 64 bits
//   24      8     block key, low 64 bits
//   32      8     layout fingerprint
//   40      8     sequence number (store-wide, increasing; the higher one wins on replay)
//   48      8     raw size (bytes after decoding)
//   56      8     stored size (payload bytes that follow the header)
//   64      8     XXH3-64 of the stored payload
//   72      48    reserved, zero
//   120     8     XXH3-64 of header bytes 0..119
//   128     ...   payload (stored size bytes), then zero padding to the next 4 KiB boundary
//
// A header that fails its magic, version or checksum is not a record. A payload whose checksum
// fails is corrupt: a miss, counted, never served.
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "strata/status.h"
#include "strata/store.h"

struct XXH3_state_s;  // xxhash.h

namespace strata::cachestore {

inline constexpr uint32_t kRecordMagic = 0x52525453;  // "STRR" little-endian
inline constexpr uint16_t kRecordFormatVersion = 1;
inline constexpr size_t kRecordHeaderSize = 128;
inline constexpr size_t kRecordAlign = 4096;

struct RecordHeader {
  ObjectKey key;
  CodecKind codec = CodecKind::kNone;
  uint64_t fingerprint = 0;
  uint64_t sequence = 0;
  uint64_t raw_size = 0;
  uint64_t stored_size = 0;
  uint64_t payload_checksum = 0;
};

inline uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Bytes a record occupies in a segment, padding included.
inline uint64_t RecordSpan(uint64_t stored_size) {
  return AlignUp(kRecordHeaderSize + stored_size, kRecordAlign);
}

uint64_t PayloadChecksum(std::span<const std::byte> payload);
// The same hash fed in pieces: `state` is an XXH3 state after XXH3_64bits_reset; its
// XXH3_64bits_digest then equals PayloadChecksum of all the pieces in order.
void PayloadChecksumUpdate(XXH3_state_s* state, std::span<const std::byte> piece);

void EncodeRecordHeader(const RecordHeader& h, std::span<std::byte, kRecordHeaderSize> out);

// NotFound if the bytes are not a record header at all (wrong magic, e.g. never written);
// Corruption if the magic matches but the version, checksum or fields are bad.
Result<RecordHeader> DecodeRecordHeader(std::span<const std::byte, kRecordHeaderSize> in);

}  // namespace strata::cachestore
