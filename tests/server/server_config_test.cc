// strata-server's config: defaults, shares of the tiers by weight, and errors that name the key.
#include "cachestore/server/server_config.h"

#include <gtest/gtest.h>

#include <string>

namespace strata::server {
namespace {

Result<ServerConfig> Parse(const std::string& json) { return ParseServerConfig(json, "test.json"); }

TEST(ServerConfigTest, DefaultsAndWeightedShares) {
  auto c = Parse(R"({
    "data_dir": "/tmp/x",
    "host": { "capacity": "100MiB" },
    "nvme": { "capacity": "64MiB", "segment_size": "1MiB" },
    "tenants": [ { "name": "a", "weight": 3 }, { "name": "b" },
                 { "name": "c", "host_quota": "20MiB", "nvme_quota": "8MiB" } ]
  })");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->socket_path, "/tmp/x/strata.sock");
  EXPECT_EQ(c->socket_mode, 0660u);
  ASSERT_EQ(c->tenants.size(), 3u);
  // 80 MiB left for a and b, 3:1.
  EXPECT_EQ(c->tenants[0].host_quota_bytes, 60ull << 20);
  EXPECT_EQ(c->tenants[1].host_quota_bytes, 20ull << 20);
  EXPECT_EQ(c->tenants[2].host_quota_bytes, 20ull << 20);
  EXPECT_EQ(c->tenants[0].nvme_quota_bytes, 42ull << 20);  // 56 MiB x 3/4, whole segments
  EXPECT_EQ(c->tenants[1].nvme_quota_bytes, 14ull << 20);
  EXPECT_EQ(c->tenants[0].key_secret, "a");
  EXPECT_EQ(c->tenants[0].swa_policy, wire::SwaPolicyWire::kFull);
  const StoreConfig s = c->TenantStore(c->tenants[1]);
  EXPECT_EQ(s.host.capacity_bytes, 20ull << 20);
  EXPECT_EQ(s.nvme.data_dir, "/tmp/x/tenants/b");
  EXPECT_EQ(s.nvme.capacity_bytes, 14ull << 20);
  const std::string text = DescribeServerConfig(*c);
  EXPECT_NE(text.find("tenant c"), std::string::npos);
}

TEST(ServerConfigTest, ErrorsNameTheBadKey) {
  auto expect_error = [](const std::string& json, const std::string& needle) {
    auto c = Parse(json);
    ASSERT_FALSE(c.ok()) << json;
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().ToString();
  };
  expect_error(R"({"tenants": [{"name": "a"}], "sockett": "x"})", "sockett");
  expect_error(R"({"tenants": [{"name": "a", "secrett": "x"}]})", "secrett");
  expect_error(R"({"tenants": []})", "tenants");
  expect_error(R"({"tenants": [{"name": "a", "swa_policy": "some"}]})", "swa_policy");
  expect_error(R"({"tenants": [{"name": "a"}, {"name": "a"}]})", "twice");
  expect_error(R"({"tenants": [{"name": "../x"}]})", "name");
  expect_error(R"({"tenants": [{"name": "a", "uids": [-1]}]})", "uids");
  expect_error(R"({"tenants": [{"name": "a", "weight": 0}]})", "weight");
  expect_error(R"({"socket_mode": "0999", "tenants": [{"name": "a"}]})", "socket_mode");
  expect_error(R"({"host": {"capacity": "1MiB"}, "tenants": [{"name": "a"}, {"name": "b"}]})",
               "host_quota");
  expect_error(R"({"nvme": {"data_dir": "/x"}, "tenants": [{"name": "a"}]})", "nvme.data_dir");
}

}  // namespace
}  // namespace strata::server
