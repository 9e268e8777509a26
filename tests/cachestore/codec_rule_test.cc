// The codec rule (cachestore/nvme/codec_rule.h): the decision as a function of hand-made figures,
// and the NVMe tier applying it to a family's own bytes.
#include "cachestore/nvme/codec_rule.h"

#include <gtest/gtest.h>

#include "cachestore/nvme/fsck.h"
#include "tests/testing/store_fixture.h"
#include "tools/store_config.h"

namespace strata {
namespace {

using cachestore::CodecSample;
using cachestore::DecideCodec;

// 1,000,000 raw bytes stored in 800,000 (1.25x), encoded in 2 ms (500 MB/s), decoded in 1 ms
// (1 GB/s).
CodecSample Sample() {
  CodecSample s;
  s.raw_bytes = 1000000, s.stored_bytes = 800000, s.decoded_bytes = 1000000;
  s.encode_seconds = 0.002, s.decode_seconds = 0.001, s.objects = 8;
  return s;
}

TEST(CodecRuleTest, ChoosesTheCodecOnlyWhereTheDecodersKeepUpWithTheDrive) {
  StoreConfig::CodecRule r;
  r.candidate = CodecKind::kZstd;
  r.drive_read_bytes_per_s = 2e9;  // 2 GB/s drive, one decode thread of 1 GB/s: slower
  EXPECT_EQ(DecideCodec(r, Sample()).codec, CodecKind::kNone);
  EXPECT_NE(DecideCodec(r, Sample()).why.find("below the drive"), std::string::npos);
  r.decode_threads = 2;  // 2 x 1 GB/s = the drive: restores no slower
  EXPECT_EQ(DecideCodec(r, Sample()).codec, CodecKind::kZstd);
  r.decode_threads = 1;
  r.drive_read_bytes_per_s = 0.9e9;  // a slower drive: one thread keeps up
  EXPECT_EQ(DecideCodec(r, Sample()).codec, CodecKind::kZstd);
}

TEST(CodecRuleTest, DemandsTheRatioAndWhenAskedTheWriteSpeed) {
  StoreConfig::CodecRule r;
  r.drive_read_bytes_per_s = 0.5e9;
  r.min_ratio = 1.3;  // 1.25x is not enough
  EXPECT_EQ(DecideCodec(r, Sample()).codec, CodecKind::kNone);
  r.min_ratio = 1.2;
  EXPECT_EQ(DecideCodec(r, Sample()).codec, CodecKind::kZstd);
  r.drive_write_bytes_per_s = 0.6e9;  // encode at 500 MB/s x 1 thread: demotions slower
  EXPECT_EQ(DecideCodec(r, Sample()).codec, CodecKind::kNone);
  r.encode_threads = 2;  // 1 GB/s
  EXPECT_EQ(DecideCodec(r, Sample()).codec, CodecKind::kZstd);
  // A sample whose objects did not shrink: ratio 1, never chosen.
  CodecSample flat = Sample();
  flat.stored_bytes = flat.raw_bytes, flat.decoded_bytes = 0, flat.decode_seconds = 0;
  EXPECT_EQ(DecideCodec(r, flat).codec, CodecKind::kNone);
}

TEST(CodecRuleTest, ConfigParsesAutoAndTheRule) {
  auto c = tools::ParseStoreConfig(
      R"({"codec": {"csa": "auto", "swa": "zstd"},
          "codec_rule": {"drive_read_gbps": 3.5, "decode_threads": 4, "min_ratio": 1.1,
                         "sample_objects": 3}})",
      "t.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->codec_rule.families[int(Family::kCsa)]);
  EXPECT_FALSE(c->codec_rule.families[int(Family::kSwa)]);
  EXPECT_EQ(c->codec[int(Family::kSwa)], CodecKind::kZstd);
  EXPECT_EQ(c->codec_rule.drive_read_bytes_per_s, 3.5e9);
  EXPECT_EQ(c->codec_rule.decode_threads, 4u);
  EXPECT_EQ(c->codec_rule.min_ratio, 1.1);
  EXPECT_EQ(c->codec_rule.sample_objects, 3u);
  auto all = tools::ParseStoreConfig(R"({"codec": "auto"})", "t.json");
  ASSERT_TRUE(all.ok());
  for (Family f : kAllFamilies) EXPECT_TRUE(all->codec_rule.families[int(f)]);
  auto bad = [](const char* j) { return tools::ParseStoreConfig(j, "t.json").status(); };
  EXPECT_NE(bad(R"({"codec": "auto", "codec_rule": {"drive_read_gbps": 0}})")
                .message()
                .find("drive_read_gbps"),
            std::string::npos);
  EXPECT_NE(bad(R"({"codec_rule": {"drive_speed": 1}})").message().find("unknown codec_rule"),
            std::string::npos);
  EXPECT_NE(
      bad(R"({"codec": "auto", "codec_rule": {"min_ratio": 0.5}})").message().find("min_ratio"),
      std::string::npos);
}

// FP8-like bytes: a skewed byte distribution without repeats (zstd shrinks them ~1.2x).
std::vector<std::byte> Skewed(uint64_t seed, size_t size) {
  std::vector<std::byte> out(size);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (auto& b : out) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const unsigned r = unsigned(x >> 33);
    const unsigned mag = (r & 0xff) < 200 ? (r >> 8) % 24 + 40 : (r >> 8) % 128;
    b = std::byte(uint8_t((r >> 20 & 0x80) | mag));
  }
  return out;
}

constexpr uint64_t kFp = 0x77;
constexpr NamespaceId kNs = 3;
constexpr size_t kObjects = 10, kSampled = 4, kSize = 200000;

// Puts kObjects skewed csa objects, flushes, and returns the store's counters of interest; the
// objects are then read back after a reopen and compared byte for byte.
struct RuleRun {
  uint64_t codec = 99, decided = 0, ratio_milli = 0, written = 0;
  cachestore::FamilyTotals on_disk;
};

RuleRun RunRule(double drive_read_bytes_per_s, const std::string& dir) {
  StoreConfig c = testing::SmallConfig(dir, DeviceKind::kPosix);
  c.codec_rule.families[int(Family::kCsa)] = true;
  c.codec_rule.drive_read_bytes_per_s = drive_read_bytes_per_s;
  c.codec_rule.sample_objects = kSampled;
  RuleRun out;
  {
    auto s = testing::OpenTestStore(c);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return out;
    for (size_t i = 0; i < kObjects; ++i) {
      // Each object goes down to NVMe at once: the rule sees them in put order.
      EXPECT_TRUE((*s)->Put({kNs, BlockKey{1, i}, Family::kCsa}, kFp, Skewed(i, kSize)).ok());
      EXPECT_TRUE((*s)->Flush().ok());
    }
    out.codec = testing::CounterOf(**s, "nvme_codec_csa");
    out.decided = testing::CounterOf(**s, "nvme_codec_csa_decided");
    out.ratio_milli = testing::CounterOf(**s, "nvme_codec_csa_ratio_milli");
    out.written = testing::CounterOf(**s, "nvme_bytes_written");
  }
  auto fsck = cachestore::Fsck(dir, {});
  EXPECT_TRUE(fsck.ok() && fsck->clean());
  if (fsck.ok()) out.on_disk = fsck->stats.families[int(Family::kCsa)];
  auto s = testing::OpenTestStore(c);
  EXPECT_TRUE(s.ok());
  if (!s.ok()) return out;
  for (size_t i = 0; i < kObjects; ++i) {
    const BlockKey k{1, i};
    auto v = (*s)->Get(kNs, kFp, std::span(&k, 1), FamilyMask{Family::kCsa});
    EXPECT_TRUE(v.ok() && (*v)[0].found()) << i;
    if (!v.ok() || !(*v)[0].found()) continue;
    EXPECT_EQ(std::vector<std::byte>((*v)[0].data, (*v)[0].data + (*v)[0].size), Skewed(i, kSize))
        << i;
    (*s)->Release(std::span(&(*v)[0].pin, 1));
  }
  return out;
}

TEST(CodecRuleTest, SlowDriveGetsZstdAfterTheSampleAndEveryObjectReadsBack) {
  testing::TempDir dir;
  const RuleRun r = RunRule(1e6, dir.Sub("data"));  // a 1 MB/s drive: any decoder keeps up
  EXPECT_EQ(r.codec, 4u);                           // zstd (record.h: codec id 4)
  EXPECT_EQ(r.decided, 1u);
  EXPECT_GT(r.ratio_milli, 1100u);
  // The sampled objects went raw, the later ones compressed.
  EXPECT_EQ(r.on_disk.records, kObjects);
  EXPECT_EQ(r.on_disk.raw_bytes, kObjects * kSize);
  EXPECT_LT(r.on_disk.stored_bytes, kSampled * kSize + (kObjects - kSampled) * kSize * 9 / 10);
  EXPECT_GE(r.on_disk.stored_bytes, kSampled * kSize);
}

TEST(CodecRuleTest, FastDriveKeepsRecordsRaw) {
  testing::TempDir dir;
  const RuleRun r = RunRule(1e15, dir.Sub("data"));  // no core decodes at 1 PB/s
  EXPECT_EQ(r.codec, 0u);
  EXPECT_EQ(r.decided, 1u);
  EXPECT_GT(r.ratio_milli, 1100u);  // it would have saved space; restores come first
  EXPECT_EQ(r.on_disk.records, kObjects);
  EXPECT_EQ(r.on_disk.stored_bytes, kObjects * kSize);
}

}  // namespace
}  // namespace strata
