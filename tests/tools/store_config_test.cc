#include "tools/store_config.h"

#include <gtest/gtest.h>

namespace strata::tools {
namespace {

TEST(ParseBytesTest, UnitsAndErrors) {
  EXPECT_EQ(*ParseBytes("4096"), 4096u);
  EXPECT_EQ(*ParseBytes("64MiB"), 64ull << 20);
  EXPECT_EQ(*ParseBytes("2g"), 2ull << 30);
  EXPECT_EQ(*ParseBytes("512K"), 512ull << 10);
  EXPECT_FALSE(ParseBytes("").ok());
  EXPECT_FALSE(ParseBytes("MiB").ok());
  EXPECT_FALSE(ParseBytes("12 parsecs").ok());
  EXPECT_FALSE(ParseBytes("99999999999999999999").ok());
  EXPECT_FALSE(ParseBytes("99999999999T").ok());
}

TEST(StoreConfigTest, ParsesTheShippedDefault) {
  auto c = LoadStoreConfig(std::string(STRATA_SOURCE_DIR) + "/configs/store/default.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->host.capacity_bytes, 1ull << 30);
  EXPECT_EQ(c->nvme.segment_bytes, 256ull << 20);
  EXPECT_EQ(c->codec[int(Family::kCheckpoint)], CodecKind::kNone);
  auto lz = ParseStoreConfig(R"({"codec": {"checkpoint": "lz4+shuffle4"}})", "t");
  EXPECT_EQ(lz->codec[int(Family::kCheckpoint)], CodecKind::kLz4Shuffle4);
  EXPECT_NE(DescribeStoreConfig(*c).find("segments of 268435456"), std::string::npos);
}

TEST(StoreConfigTest, IoUringSetupOptions) {
  auto c = ParseStoreConfig(
      R"({"nvme": {"data_dir": "d", "device": "io_uring", "registered_files": true,
                   "sqpoll": true, "sqpoll_idle_ms": 20}})",
      "t.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->nvme.registered_files);
  EXPECT_TRUE(c->nvme.sqpoll);
  EXPECT_EQ(c->nvme.sqpoll_idle_ms, 20u);
  EXPECT_NE(DescribeStoreConfig(*c).find("registered files, SQPOLL idle 20 ms"), std::string::npos);
  auto posix = ParseStoreConfig(R"({"nvme": {"data_dir": "d", "device": "posix", "sqpoll": true}})",
                                "t.json");
  EXPECT_NE(posix.status().message().find("need the io_uring device"), std::string::npos);
}

TEST(StoreConfigTest, BadConfigsAreClearErrors) {
  auto bad = [](const char* json) { return ParseStoreConfig(json, "t.json").status(); };
  EXPECT_EQ(bad("[1]").code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad(R"({"codec": {"kv": "lz4"}})").message().find("unknown family"), std::string::npos);
  EXPECT_NE(bad(R"({"codec": {"csa": "brotli"}})").message().find("unknown codec"),
            std::string::npos);
  auto zstd = ParseStoreConfig(R"({"codec": {"csa": "zstd"}})", "t.json");
  ASSERT_TRUE(zstd.ok()) << zstd.status().ToString();
  EXPECT_EQ(zstd->codec[int(Family::kCsa)], CodecKind::kZstd);
  EXPECT_NE(bad(R"({"nvme": {"data_dir": "d", "segment_size": "1000"}})").message().find("segment"),
            std::string::npos);
  EXPECT_NE(bad(R"({"nvme": {"data_dir": "d", "queue_depth": "deep"}})").message().find("t.json"),
            std::string::npos);
  EXPECT_NE(bad(R"({"nvme": {"data_dir": "d", "device": "floppy"}})").message().find("floppy"),
            std::string::npos);
  EXPECT_TRUE(ParseStoreConfig(R"({"host": {"capacity": "8MiB"}})", "t").ok());
  EXPECT_FALSE(
      ParseStoreConfig(R"({"nvme": {"data_dir": "d", "verify_on_open": "yes"}})", "t").ok());
  EXPECT_TRUE(ParseStoreConfig(R"({"nvme": {"data_dir": "d", "verify_on_open": "payloads"}})", "t")
                  ->nvme.verify_payloads_on_open);
}

TEST(StoreConfigTest, PlacementPoliciesPerTier) {
  auto c = ParseStoreConfig(
      R"({"host": {"eviction": "s3fifo", "admission": "second-use", "namespace_quota": "64MiB"},
          "nvme": {"data_dir": "d", "admission": "second-use"}, "thin_swa_on_demotion": true})",
      "t");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->host.eviction, "s3fifo");
  EXPECT_EQ(c->host.admission, "second-use");
  EXPECT_EQ(c->host.namespace_quota_bytes, 64ull << 20);
  EXPECT_EQ(c->nvme.admission, "second-use");
  EXPECT_TRUE(c->thin_swa_on_demotion);
  auto d = LoadStoreConfig(std::string(STRATA_SOURCE_DIR) + "/configs/store/default.json");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->host.eviction, "lru");
  EXPECT_FALSE(d->thin_swa_on_demotion);
  auto bad = ParseStoreConfig(R"({"host": {"eviction": "random"}})", "t.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("lru, s3fifo, cost"), std::string::npos);
  EXPECT_FALSE(ParseStoreConfig(R"({"nvme": {"data_dir": "d", "admission": "never"}})", "t").ok());
}

}  // namespace
}  // namespace strata::tools
