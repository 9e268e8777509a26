// Two strata-server processes ("node A" and "node B", separate data directories) share a real
// Redis Cluster: an agent session run through node A and continued through node B restores its
// prefix from the cluster tier, bit-exact against a cold run. A cluster that does not answer is
// a miss within the deadline, never a hang.
#include <gtest/gtest.h>

#include <csignal>

#include "strata/client.h"
#include "tests/testing/redis_cluster.h"
#include "tests/testing/rehydrate.h"
#include "tests/testing/server_process.h"
#include "tests/testing/store_fixture.h"

namespace strata::engine {
namespace {

using testing::RedisClusterProcess;

// A node: host DRAM and NVMe of its own, the shared tier on `seeds`. The share policy is
// configured to share everything at its put (min_uses 1, full SWA too), as a deployment that
// wants every node to reuse every prefix would.
std::string NodeConfig(const std::string& seeds) {
  return R"({
  "socket": "@SOCKET@", "data_dir": "@DIR@/data", "io_threads": 4, "blocking_threads": 2,
  "metrics_port": 0,
  "host": { "capacity": "32MiB", "prefault": false },
  "nvme": { "capacity": "16MiB", "segment_size": "1MiB", "device": "posix" },
  "cluster": { "seeds": [)" +
         seeds + R"(], "deadline_ms": 2000,
               "share": { "min_uses": 1, "checkpoints": true, "full_swa": true } },
  "tenants": [ { "name": "default" } ]
})";
}

uint64_t Counter(const Store& s, std::string_view name) { return testing::CounterOf(s, name); }

class ClusterNodeTest : public ::testing::TestWithParam<const char*> {
 protected:
  static void SetUpTestSuite() {
    if (const std::string why = RedisClusterProcess::Missing(); !why.empty()) {
      skip_ = why;
      return;
    }
    cluster_ = new RedisClusterProcess();
    if (const Status s = cluster_->Start(); !s.ok()) skip_ = "no Redis Cluster: " + s.ToString();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
  }
  static std::string Seeds() {
    std::string s;
    for (size_t i = 0; i < cluster_->size(); ++i)
      s += (i ? ", \"" : "\"") + cluster_->endpoint(i) + "\"";
    return s;
  }
  static std::unique_ptr<Client> Connect(const testing::ServerProcess& server, uint64_t fp) {
    ClientOptions o;
    o.socket_path = server.socket_path();
    o.fingerprint = fp;
    o.block_tokens = 256;
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString() << "\n" << server.Log();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  static inline RedisClusterProcess* cluster_ = nullptr;
  static inline std::string skip_;
};

TEST_P(ClusterNodeTest, ASessionFromNodeAContinuesOnNodeBBitExact) {
  const std::string policy = GetParam();
  testing::ServerProcess a(NodeConfig(Seeds())), b(NodeConfig(Seeds()));
  ASSERT_TRUE(a.Start().ok()) << a.Log();
  ASSERT_TRUE(b.Start().ok()) << b.Log();
  auto layout = CachedEngine::LayoutFor(*testing::TinyModel("v4-tiny.json"), 256);
  ASSERT_TRUE(layout.ok());
  auto ca = Connect(a, layout->fingerprint()), cb = Connect(b, layout->fingerprint());
  ASSERT_TRUE(ca && cb);

  // Turn 1 on node A, cold; its state is uploaded behind it (Flush waits for the uploads).
  auto ea = testing::MakeTestEngine(ca.get(), policy);
  // Tokens of this case only: the suite's cluster keeps what earlier cases uploaded.
  const uint32_t seed = uint32_t(std::hash<std::string>{}(policy));
  const std::vector<int32_t> turn1 = testing::RandomTokens(1100, seed);
  auto r1 = ea->RunTurn(turn1, {.max_new = 3});
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(r1->plan.kind, RestorePlan::kCold);
  ASSERT_TRUE(ea->WaitOffload().ok());
  ASSERT_TRUE(ca->Flush().ok());
  EXPECT_GT(Counter(*ca, "shared_uploads"), 0u);
  EXPECT_EQ(Counter(*ca, "shared_upload_errors"), 0u);

  // Turn 2 on node B, which never saw turn 1: the prefix comes from the cluster.
  auto eb = testing::MakeTestEngine(cb.get(), policy);
  std::vector<int32_t> turn2 = turn1;
  turn2.insert(turn2.end(), r1->output.begin(), r1->output.end());
  const auto extra = testing::RandomTokens(20, seed + 1);
  turn2.insert(turn2.end(), extra.begin(), extra.end());
  RequestState st;
  TurnOptions o;
  o.max_new = 4;
  o.final_state = &st;
  auto r2 = eb->RunTurn(turn2, o);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->prefix_hit_tokens, 1024);
  EXPECT_NE(r2->plan.kind, RestorePlan::kCold) << r2->plan.ToString();
  // The checkpoint node A uploaded comes with the Lookup: node B restores from it rather than
  // recomputing the SWA window.
  if (policy.starts_with("checkpoint")) {
    EXPECT_EQ(r2->plan.kind, RestorePlan::kCheckpoint) << r2->plan.ToString();
  }
  EXPECT_EQ(r2->fallbacks, 0);
  EXPECT_GT(Counter(*cb, "shared_fetched"), 0u);
  EXPECT_EQ(Counter(*cb, "cluster_corrupt"), 0u);
  testing::ExpectSameAsCold(*eb, turn2, 4, *r2, st);
}

INSTANTIATE_TEST_SUITE_P(Policies, ClusterNodeTest,
                         ::testing::Values("full", "checkpoint:512", "recompute"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == ':') c = '_';
                           return n;
                         });

// A paused cluster (every node SIGSTOPped) makes the shared tier a miss at its deadline: the
// node keeps serving from its own tiers and no call hangs.
TEST_F(ClusterNodeTest, APausedClusterIsAMissWithinTheDeadlineNotAHang) {
  std::string cfg = NodeConfig(Seeds());
  cfg.replace(cfg.find("\"deadline_ms\": 2000"), 19, "\"deadline_ms\": 200");
  testing::ServerProcess node(cfg);
  ASSERT_TRUE(node.Start().ok()) << node.Log();
  auto c = Connect(node, 77);
  ASSERT_TRUE(c);
  for (size_t i = 0; i < cluster_->size(); ++i) cluster_->Pause(i);
  std::vector<BlockKey> chain;
  for (uint64_t i = 0; i < 4; ++i) chain.push_back(BlockKey{0x77, i});
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c->Lookup(9, 77, chain, FamilyMask{Family::kCsa});
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (size_t i = 0; i < cluster_->size(); ++i) cluster_->Resume(i);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->hit_blocks, 0u);
  EXPECT_LT(s, 2.0);  // one batch deadline (0.2 s) and scheduling slack, far below a hang
  // The node's own tiers still serve.
  const std::vector<std::byte> bytes(70000, std::byte{7});
  ASSERT_TRUE(c->Put({9, chain[0], Family::kCsa}, 77, bytes).ok());
  auto hit = c->Lookup(9, 77, std::span(chain).first(1), FamilyMask{Family::kCsa});
  ASSERT_TRUE(hit.ok());
  EXPECT_EQ(hit->hit_blocks, 1u);
  ASSERT_TRUE(cluster_->WaitHealthy().ok());
}

// Tenants on the shared tier through the daemon: each tenant's store connects as its own Redis
// ACL user, limited to its key prefix. Tenant b, with tenant a's keys and namespace, finds
// nothing of a's on another node; a tenant whose ACL user does not own its prefix has every
// upload refused by Redis (NOPERM), counted, and reads nothing.
TEST_F(ClusterNodeTest, TenantsStayApartOnTheSharedTierThroughTheDaemon) {
  ASSERT_TRUE(cluster_->CommandOnAll({"ACL", "SETUSER", "ua", "on", ">pa", "~ta:*", "+@all"}).ok());
  ASSERT_TRUE(cluster_->CommandOnAll({"ACL", "SETUSER", "ub", "on", ">pb", "~tb:*", "+@all"}).ok());
  std::string cfg = NodeConfig(Seeds());
  cfg.replace(cfg.find(R"("tenants": [ { "name": "default" } ])"), 36, R"("tenants": [
    { "name": "a", "secret": "sa", "cluster_user": "ua", "cluster_password": "pa", "cluster_prefix": "ta" },
    { "name": "b", "secret": "sb", "cluster_user": "ub", "cluster_password": "pb", "cluster_prefix": "tb" },
    { "name": "rogue", "secret": "sr", "cluster_user": "ua", "cluster_password": "pa", "cluster_prefix": "tb" } ])");
  testing::ServerProcess n1(cfg), n2(cfg);
  ASSERT_TRUE(n1.Start().ok()) << n1.Log();
  ASSERT_TRUE(n2.Start().ok()) << n2.Log();
  auto connect = [](const testing::ServerProcess& n, const std::string& tenant) {
    ClientOptions o;
    o.socket_path = n.socket_path();
    o.tenant = tenant;
    o.secret = tenant == "rogue" ? "sr" : "s" + tenant;
    o.fingerprint = 99;
    o.block_tokens = 256;
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString() << "\n" << n.Log();
    return c.ok() ? std::move(c).value() : nullptr;
  };
  auto a1 = connect(n1, "a"), rogue1 = connect(n1, "rogue");
  auto a2 = connect(n2, "a"), b2 = connect(n2, "b"), rogue2 = connect(n2, "rogue");
  ASSERT_TRUE(a1 && rogue1 && a2 && b2 && rogue2);
  std::vector<BlockKey> chain;
  for (uint64_t i = 0; i < 3; ++i) chain.push_back(BlockKey{0xac1, i});
  const std::vector<std::byte> bytes(80000, std::byte{0x5a});
  for (const BlockKey& k : chain) {
    ASSERT_TRUE(a1->Put({4, k, Family::kCsa}, 99, bytes).ok());
    ASSERT_TRUE(rogue1->Put({4, k, Family::kCsa}, 99, bytes).ok());
  }
  ASSERT_TRUE(a1->Flush().ok());
  ASSERT_TRUE(rogue1->Flush().ok());
  EXPECT_EQ(Counter(*a1, "shared_uploads"), 3u);
  EXPECT_EQ(Counter(*rogue1, "shared_uploads"), 0u);
  EXPECT_EQ(Counter(*rogue1, "shared_upload_errors"), 3u);
  const FamilyMask csa{Family::kCsa};
  auto a_hit = a2->Lookup(4, 99, chain, csa);
  ASSERT_TRUE(a_hit.ok());
  EXPECT_EQ(a_hit->hit_blocks, 3u);  // tenant a on another node: from the cluster
  auto b_hit = b2->Lookup(4, 99, chain, csa);
  ASSERT_TRUE(b_hit.ok());
  EXPECT_EQ(b_hit->hit_blocks, 0u);  // same keys, another tenant: nothing
  auto r_hit = rogue2->Lookup(4, 99, chain, csa);
  ASSERT_TRUE(r_hit.ok());
  EXPECT_EQ(r_hit->hit_blocks, 0u);
}

}  // namespace
}  // namespace strata::engine
