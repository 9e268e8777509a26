#include "cachestore/nvme/codec.h"

#include <gtest/gtest.h>

#include <cstring>

#include "bench/v4_payload.h"
#include "strata/layout.h"

namespace strata::cachestore {
namespace {

std::vector<std::byte> RoundTrip(CodecKind codec, const std::vector<std::byte>& raw,
                                 CodecKind* used = nullptr) {
  std::vector<std::byte> enc(MaxEncodedSize(raw.size())), dec(raw.size());
  Encoded e = EncodeRecord(codec, raw, enc);
  if (used) *used = e.codec;
  EXPECT_LE(e.size, raw.size());
  EXPECT_TRUE(DecodeRecord(e.codec, {enc.data(), e.size}, dec).ok());
  return dec;
}

TEST(CodecTest, EveryCodecRoundTripsEveryShape) {
  std::vector<std::vector<std::byte>> payloads;
  payloads.emplace_back(1, std::byte{7});
  payloads.emplace_back(4097, std::byte{0});  // zeros, odd length (shuffle tail)
  std::vector<std::byte> rnd(100003);
  bench::FillPseudoRandom(rnd.data(), rnd.size(), 5);
  payloads.push_back(rnd);
  std::vector<std::byte> floats(4 * 10000);
  for (size_t i = 0; i < 10000; ++i) {
    float f = float(i % 100) * 0.25f;
    std::memcpy(floats.data() + 4 * i, &f, 4);
  }
  payloads.push_back(floats);
  for (CodecKind c : {CodecKind::kNone, CodecKind::kLz4, CodecKind::kLz4Shuffle2,
                      CodecKind::kLz4Shuffle4, CodecKind::kZstd})
    for (const auto& p : payloads)
      EXPECT_EQ(RoundTrip(c, p), p) << CodecKindName(c) << " " << p.size();
}

TEST(CodecTest, IncompressibleIsStoredRawAndCompressibleShrinks) {
  std::vector<std::byte> rnd(65536);
  bench::FillPseudoRandom(rnd.data(), rnd.size(), 9);
  CodecKind used;
  RoundTrip(CodecKind::kLz4, rnd, &used);
  EXPECT_EQ(used, CodecKind::kNone);
  std::vector<std::byte> zeros(65536, std::byte{0});
  std::vector<std::byte> enc(MaxEncodedSize(zeros.size()));
  Encoded e = EncodeRecord(CodecKind::kLz4Shuffle4, zeros, enc);
  EXPECT_EQ(e.codec, CodecKind::kLz4Shuffle4);
  EXPECT_LT(e.size, zeros.size() / 50);
}

TEST(CodecTest, ShuffleGroupsLanesAndInverts) {
  std::vector<std::byte> in = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4},
                               std::byte{5}, std::byte{6}, std::byte{7}};
  std::vector<std::byte> out(7), back(7);
  Shuffle(in, out, 2);
  EXPECT_EQ(out, (std::vector<std::byte>{std::byte{1}, std::byte{3}, std::byte{5}, std::byte{2},
                                         std::byte{4}, std::byte{6}, std::byte{7}}));
  Unshuffle(out, back, 2);
  EXPECT_EQ(back, in);
}

TEST(CodecTest, CorruptPayloadIsCorruptionNotGarbage) {
  std::vector<std::byte> zeros(65536, std::byte{0});
  std::vector<std::byte> enc(MaxEncodedSize(zeros.size())), dec(zeros.size());
  Encoded e = EncodeRecord(CodecKind::kLz4, zeros, enc);
  ASSERT_EQ(e.codec, CodecKind::kLz4);
  EXPECT_TRUE(DecodeRecord(CodecKind::kLz4, {enc.data(), e.size - 3}, dec).IsCorruption());
  EXPECT_TRUE(DecodeRecord(CodecKind::kNone, {enc.data(), 10}, dec).IsCorruption());
  std::vector<std::byte> small(100);
  EXPECT_TRUE(DecodeRecord(CodecKind::kLz4, {enc.data(), e.size}, small).IsCorruption());
}

// zstd finds what LZ4 cannot in FP8-like bytes: a skewed byte distribution without repeats.
TEST(CodecTest, ZstdShrinksSkewedBytesThatLz4CannotAndDetectsCorruption) {
  std::vector<std::byte> skewed(1 << 20);
  uint64_t x = 12345;
  for (auto& b : skewed) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    // Mostly small magnitudes (like e4m3 codes of Gaussian values), random signs and low bits.
    const unsigned r = unsigned(x >> 33);
    const unsigned mag = (r & 0xff) < 200 ? (r >> 8) % 24 + 40 : (r >> 8) % 128;
    b = std::byte(uint8_t((r >> 20 & 0x80) | mag));
  }
  std::vector<std::byte> enc(MaxEncodedSize(skewed.size())), dec(skewed.size());
  const Encoded lz = EncodeRecord(CodecKind::kLz4, skewed, enc);
  EXPECT_GT(lz.size, skewed.size() * 97 / 100);  // LZ4: next to nothing (or stored raw)
  const Encoded z = EncodeRecord(CodecKind::kZstd, skewed, enc);
  ASSERT_EQ(z.codec, CodecKind::kZstd);
  EXPECT_LT(z.size, skewed.size() * 90 / 100);
  ASSERT_TRUE(DecodeRecord(CodecKind::kZstd, {enc.data(), z.size}, dec).ok());
  EXPECT_EQ(dec, skewed);
  // Truncated, flipped or decoding to another size: Corruption, never bytes.
  EXPECT_TRUE(DecodeRecord(CodecKind::kZstd, {enc.data(), z.size - 5}, dec).IsCorruption());
  std::vector<std::byte> smaller(skewed.size() - 1);
  EXPECT_TRUE(DecodeRecord(CodecKind::kZstd, {enc.data(), z.size}, smaller).IsCorruption());
  // Random bytes do not shrink: stored raw.
  std::vector<std::byte> rnd(65536);
  bench::FillPseudoRandom(rnd.data(), rnd.size(), 3);
  EXPECT_EQ(EncodeRecord(CodecKind::kZstd, rnd, enc).codec, CodecKind::kNone);
}

}  // namespace
}  // namespace strata::cachestore
