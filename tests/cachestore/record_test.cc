#include "cachestore/nvme/record.h"

#include <gtest/gtest.h>

#include <array>

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
