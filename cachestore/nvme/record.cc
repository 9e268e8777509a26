#include "cachestore/nvme/record.h"

#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#endif

#include <cstring>

namespace strata::cachestore {
namespace {

template <typename T>
void Store(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof v);  // x86-64 and aarch64 Linux: little-endian
}
template <typename T>
T Load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

// Payload hashes go through xxhash's run-time dispatch (Debian's libxxhash exports it, x86-64
// only): the AVX2 or AVX-512 variant where the CPU has it, about twice the SSE2 build's speed,
// with the same hash values. Elsewhere the portable XXH3.
uint64_t PayloadChecksum(std::span<const std::byte> payload) {
#if defined(__x86_64__)
  return XXH3_64bits_dispatch(payload.data(), payload.size());
#else
  return XXH3_64bits(payload.data(), payload.size());
#endif
}

void PayloadChecksumUpdate(XXH3_state_s* state, std::span<const std::byte> piece) {
#if defined(__x86_64__)
  XXH3_64bits_update_dispatch(state, piece.data(), piece.size());
#else
  XXH3_64bits_update(state, piece.data(), piece.size());
#endif
}

void EncodeRecordHeader(const RecordHeader& h, std::span<std::byte, kRecordHeaderSize> out) {
  std::byte* p = out.data();
  std::memset(p, 0, kRecordHeaderSize);
  Store<uint32_t>(p + 0, kRecordMagic);
  Store<uint16_t>(p + 4, kRecordFormatVersion);
  Store<uint8_t>(p + 6, uint8_t(h.key.family));
  Store<uint8_t>(p + 7, uint8_t(h.codec));
  Store<uint64_t>(p + 8, h.key.ns);
  Store<uint64_t>(p + 16, h.key.block.hi);
  Store<uint64_t>(p + 24, h.key.block.lo);
  Store<uint64_t>(p + 32, h.fingerprint);
  Store<uint64_t>(p + 40, h.sequence);
  Store<uint64_t>(p + 48, h.raw_size);
  Store<uint64_t>(p + 56, h.stored_size);
  Store<uint64_t>(p + 64, h.payload_checksum);
  Store<uint64_t>(p + 120, XXH3_64bits(p, 120));
}

Result<RecordHeader> DecodeRecordHeader(std::span<const std::byte, kRecordHeaderSize> in) {
  const std::byte* p = in.data();
  if (Load<uint32_t>(p) != kRecordMagic) return Status::NotFound("no record header");
  if (Load<uint64_t>(p + 120) != XXH3_64bits(p, 120))
    return Status::Corruption("record header checksum mismatch");
  const uint16_t version = Load<uint16_t>(p + 4);
  if (version != kRecordFormatVersion)
    return Status::Corruption("record format version " + std::to_string(version) +
                              " not supported (this build reads " +
                              std::to_string(kRecordFormatVersion) + ")");
  RecordHeader h;
  const uint8_t fam = Load<uint8_t>(p + 6), codec = Load<uint8_t>(p + 7);
  if (fam >= kNumFamilies) return Status::Corruption("record family " + std::to_string(fam));
  if (codec > uint8_t(kLastCodecKind))
    return Status::Corruption("record codec " + std::to_string(codec));
  h.key.family = Family(fam);
  h.codec = CodecKind(codec);
  h.key.ns = Load<uint64_t>(p + 8);
  h.key.block.hi = Load<uint64_t>(p + 16);
  h.key.block.lo = Load<uint64_t>(p + 24);
  h.fingerprint = Load<uint64_t>(p + 32);
  h.sequence = Load<uint64_t>(p + 40);
  h.raw_size = Load<uint64_t>(p + 48);
  h.stored_size = Load<uint64_t>(p + 56);
  h.payload_checksum = Load<uint64_t>(p + 64);
  if (h.codec == CodecKind::kNone && h.stored_size != h.raw_size)
    return Status::Corruption("raw record with stored size != raw size");
  return h;
}

}  // namespace strata::cachestore
