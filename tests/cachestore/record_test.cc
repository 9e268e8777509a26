#include "cachestore/nvme/record.h"

#include <gtest/gtest.h>

#include <array>
#include <utility>
#include <vector>

namespace strata::cachestore {
namespace {

RecordHeader Sample() {
  RecordHeader h;
  h.key = ObjectKey{77, BlockKey{0x1122334455667788ull, 0x99aabbccddeeff00ull}, Family::kHca};
  h.codec = CodecKind::kLz4Shuffle2;
  h.fingerprint = 0xfeedface;
  h.sequence = 12345;
  h.raw_size = 36208;
  h.stored_size = 30000;
  h.payload_checksum = PayloadChecksum(std::as_bytes(std::span("payload")));
  return h;
}

TEST(RecordTest, HeaderRoundTripsAndIsLaidOutAsDocumented) {
  std::array<std::byte, kRecordHeaderSize> buf;
  EncodeRecordHeader(Sample(), buf);
  EXPECT_EQ(buf[0], std::byte{'S'});
  EXPECT_EQ(buf[3], std::byte{'R'});
  EXPECT_EQ(buf[6], std::byte{uint8_t(Family::kHca)});
  EXPECT_EQ(buf[7], std::byte{uint8_t(CodecKind::kLz4Shuffle2)});
  EXPECT_EQ(buf[8], std::byte{77});  // namespace, little-endian
  auto h = DecodeRecordHeader(buf);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->key, Sample().key);
  EXPECT_EQ(h->sequence, 12345u);
  EXPECT_EQ(h->raw_size, 36208u);
  EXPECT_EQ(h->stored_size, 30000u);
  EXPECT_EQ(h->payload_checksum, Sample().payload_checksum);
}

// The payload checksum is XXH3-64 of the payload bytes, whichever variant (SSE2, AVX2, AVX-512)
// the CPU runs: records written on one machine verify on another. The expected values come from
// python3-xxhash (an implementation of its own) over bytes ((i + 3) * 31 + 7) & 0xff, read from
// an unaligned start.
TEST(RecordTest, PayloadChecksumIsXxh3OnEveryCpu) {
  const std::pair<size_t, uint64_t> cases[] = {
      {0, 0x2d06800538d394c2ull},     {1, 0x45f80274c9c7a7caull},   {17, 0xc102e4e7e7deb1b1ull},
      {240, 0x9bed0b62ca03ea5bull},   {241, 0xc62bf28561fc9a8eull}, {4096, 0xb181259fdfacb9b1ull},
      {130573, 0xae3d4dec71abce16ull}};
  for (const auto& [n, want] : cases) {
    std::vector<std::byte> buf(n + 3);
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = std::byte(uint8_t(i * 31 + 7));
    EXPECT_EQ(PayloadChecksum(std::span(buf).subspan(3)), want) << n << " bytes";
  }
}

TEST(RecordTest, AnyFlippedHeaderByteIsDetected) {
  std::array<std::byte, kRecordHeaderSize> buf;
  EncodeRecordHeader(Sample(), buf);
  for (size_t i = 0; i < kRecordHeaderSize; ++i) {
    auto bad = buf;
    bad[i] ^= std::byte{0x10};
    EXPECT_FALSE(DecodeRecordHeader(bad).ok()) << "byte " << i;
  }
}

TEST(RecordTest, ZeroedSpaceIsNoRecord) {
  std::array<std::byte, kRecordHeaderSize> buf{};
  EXPECT_TRUE(DecodeRecordHeader(buf).status().IsNotFound());
}

TEST(RecordTest, SpanIsAlignedAndIncludesHeader) {
  EXPECT_EQ(RecordSpan(0), 4096u);
  EXPECT_EQ(RecordSpan(4096 - 128), 4096u);
  EXPECT_EQ(RecordSpan(4096 - 127), 8192u);
}

}  // namespace
}  // namespace strata::cachestore
