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
  EXPECT_EQ(c->io_spin_us, 0u);  // sleeping at once unless asked to poll
  const std::string text = DescribeServerConfig(*c);
  EXPECT_NE(text.find("tenant c"), std::string::npos);
  EXPECT_NE(text.find("io_spin_us 0"), std::string::npos) << text;
}

// How clients write: staged by default; "in_place" verifies host copies unless
// verify_host_copies is false, which alone (its meaning before staging) also means in place.
TEST(ServerConfigTest, ClientWritesAndStagingBytes) {
  auto c = Parse(R"({
    "host": { "capacity": "64MiB" }, "nvme": null,
    "tenants": [ { "name": "a" }, { "name": "b", "staging_bytes": "8MiB" },
                 { "name": "c", "client_writes": "in_place" },
                 { "name": "d", "verify_host_copies": false },
                 { "name": "e", "client_writes": "staging", "verify_host_copies": false } ]
  })");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  using W = TenantConfig::ClientWrites;
  EXPECT_EQ(c->tenants[0].client_writes, W::kStaging);
  EXPECT_EQ(c->tenants[0].staging_bytes, 256ull << 20);
  EXPECT_EQ(c->tenants[1].staging_bytes, 8ull << 20);
  EXPECT_EQ(c->tenants[2].client_writes, W::kInPlace);
  EXPECT_TRUE(c->tenants[2].verify_host_copies);
  EXPECT_EQ(c->tenants[3].client_writes, W::kInPlace);
  EXPECT_FALSE(c->tenants[3].verify_host_copies);
  EXPECT_EQ(c->tenants[4].client_writes, W::kStaging);
  const std::string text = DescribeServerConfig(*c);
  EXPECT_NE(text.find("tenant a: auth any local peer, host"), std::string::npos) << text;
  EXPECT_NE(text.find("writes staged (268435456 bytes per connection"), std::string::npos);
  EXPECT_NE(text.find("writes in place (host copies verified)"), std::string::npos);
  EXPECT_NE(text.find("writes in place, host copies NOT verified"), std::string::npos);
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
  expect_error(R"({"tenants": [{"name": "a", "client_writes": "direct"}]})", "client_writes");
  expect_error(R"({"hello_timeout_ms": 0, "tenants": [{"name": "a"}]})", "hello_timeout_ms");
  expect_error(R"({"max_leases_per_connection": 0, "tenants": [{"name": "a"}]})",
               "max_leases_per_connection");
  expect_error(R"({"tenants": [{"name": "a", "staging_bytes": "64KiB"}]})", "staging_bytes");
  expect_error(R"({"io_spin_us": 200000, "tenants": [{"name": "a"}]})", "io_spin_us");
}

TEST(ServerConfigTest, ClusterSectionSharesAndPerTenantAclUsers) {
  auto none = Parse(R"({ "tenants": [ { "name": "a" } ] })");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->cluster.seeds.empty());
  EXPECT_FALSE(none->cluster.share.enabled);
  auto c = Parse(R"({
    "cluster": { "seeds": ["10.0.0.1:7000", "10.0.0.2:7000"], "deadline_ms": 50,
                 "io_threads": 3, "spin_us": 80, "share": { "min_uses": 3, "full_swa": true } },
    "tenants": [ { "name": "a", "cluster_user": "strata-a", "cluster_password": "pw" },
                 { "name": "b", "cluster_prefix": "bee" } ]
  })");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->cluster.seeds.size(), 2u);
  EXPECT_EQ(c->cluster.deadline_ms, 50u);
  EXPECT_EQ(c->cluster.connect_timeout_ms, 500u);
  EXPECT_EQ(c->cluster.io_threads, 3u);
  EXPECT_EQ(c->cluster.spin_us, 80u);
  EXPECT_EQ(none->cluster.spin_us, 0u);  // sleeping at once by default
  EXPECT_TRUE(c->cluster.share.enabled);
  EXPECT_EQ(c->cluster.share.min_uses, 3u);
  EXPECT_TRUE(c->cluster.share.checkpoints);
  EXPECT_TRUE(c->cluster.share.full_swa);
  EXPECT_EQ(c->tenants[0].cluster_user, "strata-a");
  EXPECT_EQ(c->tenants[0].cluster_prefix, "a");  // the tenant's name by default
  EXPECT_EQ(c->tenants[1].cluster_prefix, "bee");
  const std::string text = DescribeServerConfig(*c);
  EXPECT_NE(text.find("cluster tier: seeds [10.0.0.1:7000,10.0.0.2:7000]"), std::string::npos);
  EXPECT_NE(text.find("spin 80 us"), std::string::npos);
  EXPECT_EQ(text.find("pw"), std::string::npos);  // no password in the log
  // The shipped example parses.
  auto example = LoadServerConfig(STRATA_SOURCE_DIR "/configs/server/cluster.json");
  ASSERT_TRUE(example.ok()) << example.status().ToString();
  EXPECT_EQ(example->cluster.seeds.size(), 3u);
  EXPECT_EQ(example->tenants[0].cluster_user, "strata-agents");
  EXPECT_EQ(example->cluster.io_threads, 1u);
  for (
      const char* bad :
      {R"({ "cluster": { "seed": [] }, "tenants": [ { "name": "a" } ] })",
       R"({ "cluster": { "seeds": "x:1" }, "tenants": [ { "name": "a" } ] })",
       R"({ "cluster": { "seeds": ["x:1"], "share": { "min_uses": 0 } },
             "tenants": [ { "name": "a" } ] })",
       R"({ "cluster": { "seeds": ["x:1"], "io_threads": 0 }, "tenants": [ { "name": "a" } ] })",
       R"({ "cluster": { "seeds": ["x:1"], "io_threads": 17 }, "tenants": [ { "name": "a" } ] })",
       R"({ "cluster": { "seeds": ["x:1"], "spin_us": 100001 }, "tenants": [ { "name": "a" } ] })",
       R"({ "cluster": { "seeds": ["x:1"], "share": { "often": 1 } },
             "tenants": [ { "name": "a" } ] })",
       R"({ "cluster": { "seeds": ["x:1"] }, "tenants": [ { "name": "a", "cluster_prefix": "a:b" } ] })"}) {
    auto r = Parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

}  // namespace
}  // namespace strata::server
