// The cluster tier against a real Redis Cluster (tests/testing/redis_cluster.h): records that
// round-trip byte for byte, a value overwritten in Redis is a counted corrupt miss, tenants kept
// apart by Redis ACLs, and two in-process stores ("node A", "node B") sharing one cluster: what
// node A's share policy uploads is a hit on node B.
#include "cachestore/cluster/cluster_tier.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <thread>

#include "cachestore/nvme/record.h"
#include "cachestore/server/metrics.h"
#include "cachestore/store/tiered_store.h"
#include "tests/testing/redis_cluster.h"
#include "tests/testing/store_fixture.h"
#include "tests/testing/temp_dir.h"

namespace strata::cachestore::cluster {
namespace {

using strata::testing::RedisClusterProcess;
constexpr uint64_t kFp = 0xabcdef;
constexpr NamespaceId kNs = 5;

std::vector<std::byte> Bytes(size_t n, uint64_t seed) {
  std::vector<std::byte> b(n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b[i] = std::byte(uint8_t(x));
  }
  return b;
}

bool Same(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

class ClusterTierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (const std::string why = RedisClusterProcess::Missing(); !why.empty()) {
      skip_ = why;
      return;
    }
    cluster_ = new RedisClusterProcess();
    const Status s = cluster_->Start();
    if (!s.ok()) skip_ = "no Redis Cluster: " + s.ToString();
    // Tenant A may touch only its own keys, on every node (ACLs are per node).
    if (skip_.empty()) {
      const Status acl = cluster_->CommandOnAll(
          {"ACL", "SETUSER", "tenantA", "on", ">pwA", "~tenantA:*", "+@all"});
      if (!acl.ok()) skip_ = "ACL SETUSER: " + acl.ToString();
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
  }
  static ClusterTierOptions Options(const std::string& prefix, const std::string& user = "",
                                    const std::string& password = "") {
    ClusterTierOptions o;
    o.redis.seeds = cluster_->Seeds();
    o.redis.user = user;
    o.redis.password = password;
    o.prefix = prefix;
    o.deadline = std::chrono::milliseconds(2000);
    return o;
  }
  static std::unique_ptr<ClusterTier> Open(const ClusterTierOptions& o) {
    auto t = ClusterTier::Open(o);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(t).value() : nullptr;
  }
  // Puts every object in one batch, then gets them all in one batch: byte for byte.
  static void PutAllAndReadBack(ClusterTier& tier, const std::vector<ObjectKey>& keys,
                                const std::vector<std::vector<std::byte>>& payloads) {
    std::vector<SharedTier::PutItem> puts;
    for (size_t i = 0; i < keys.size(); ++i) puts.push_back({keys[i], kFp, payloads[i]});
    for (const Status& s : tier.Put(puts)) ASSERT_TRUE(s.ok()) << s.ToString();
    auto got = tier.Get(keys, kFp);
    ASSERT_EQ(got.size(), keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      ASSERT_TRUE(got[i].ok()) << i << ": " << got[i].status().ToString();
      EXPECT_TRUE(Same(got[i]->payload(), payloads[i])) << i;
    }
  }
  static inline RedisClusterProcess* cluster_ = nullptr;
  static inline std::string skip_;
};

TEST_F(ClusterTierTest, RecordsRoundTripByteForByteAndGarbageIsACountedMiss) {
  auto tier = Open(Options("rt"));
  ASSERT_TRUE(tier);
  std::vector<ObjectKey> keys;
  std::vector<std::vector<std::byte>> payloads;
  for (uint64_t b = 0; b < 6; ++b)
    for (Family f : {Family::kCsa, Family::kHca, Family::kCheckpoint}) {
      keys.push_back({kNs, BlockKey{b, b + 100}, f});
      payloads.push_back(Bytes(f == Family::kCsa ? (1 << 20) + 3 : 36208, b * 8 + uint64_t(f)));
    }
  ASSERT_NO_FATAL_FAILURE(PutAllAndReadBack(*tier, keys, payloads));
  // Another fingerprint or an absent block: a plain miss.
  auto other = tier->Get(std::vector<ObjectKey>{keys[0]}, kFp + 1);
  EXPECT_TRUE(other[0].status().IsNotFound());
  // Garbage written straight into Redis, and a valid record of another object copied under
  // this key: counted corrupt misses, never bytes.
  const std::string k0 = ClusterTier::KeyFor("rt", keys[0], kFp);
  const std::string k1 = ClusterTier::KeyFor("rt", keys[1], kFp);
  const int m0 = cluster_->MasterOfSlot(RedisCluster::KeySlot(k0));
  ASSERT_GE(m0, 0);
  auto set = cluster_->Command(size_t(m0), {"SET", k0, std::string(4096, 'x')});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  const std::string moved = ClusterTier::EncodeValue({keys[2], kFp, payloads[2]});
  ASSERT_TRUE(cluster_->Command(size_t(m0), {"SET", k1, moved}).ok());
  const uint64_t corrupt_before = tier->stats().corrupt;
  auto bad = tier->Get(std::vector<ObjectKey>{keys[0], keys[1], keys[3]}, kFp);
  EXPECT_TRUE(bad[0].status().IsCorruption()) << bad[0].status().ToString();
  EXPECT_TRUE(bad[1].status().IsCorruption()) << bad[1].status().ToString();
  ASSERT_TRUE(bad[2].ok());
  EXPECT_TRUE(Same(bad[2]->payload(), payloads[3]));
  EXPECT_EQ(tier->stats().corrupt, corrupt_before + 2);
}

// Batches split over several adapters (I/O threads) come back whole and in order.
TEST_F(ClusterTierTest, SeveralIoThreadsKeepEveryBatchInOrder) {
  auto o = Options("io3");
  o.io_threads = 0;
  EXPECT_FALSE(o.Validate().ok());
  o.io_threads = kMaxIoThreads + 1;
  EXPECT_FALSE(o.Validate().ok());
  o.io_threads = 3;
  auto tier = Open(o);
  ASSERT_TRUE(tier);
  std::vector<ObjectKey> keys;
  std::vector<std::vector<std::byte>> payloads;
  for (uint64_t b = 0; b < 11; ++b)  // 22 objects: parts of 8, 7 and 7
    for (Family f : {Family::kCsaIndex, Family::kHca}) {
      keys.push_back({kNs, BlockKey{b, b + 300}, f});
      payloads.push_back(Bytes(f == Family::kHca ? 36208 : 130560 + b, b * 8 + uint64_t(f)));
    }
  ASSERT_NO_FATAL_FAILURE(PutAllAndReadBack(*tier, keys, payloads));
  // A reversed batch with an absent key in the middle, and single keys (each on the next
  // adapter in turn).
  std::vector<ObjectKey> reversed(keys.rbegin(), keys.rend());
  reversed.insert(reversed.begin() + 5, ObjectKey{kNs, BlockKey{999, 999}, Family::kHca});
  auto back = tier->Get(reversed, kFp);
  ASSERT_EQ(back.size(), reversed.size());
  EXPECT_TRUE(back[5].status().IsNotFound());
  for (size_t i = 0; i < reversed.size(); ++i) {
    if (i == 5) continue;
    const size_t k = keys.size() - 1 - (i < 5 ? i : i - 1);
    ASSERT_TRUE(back[i].ok()) << i;
    EXPECT_TRUE(Same(back[i]->payload(), payloads[k])) << i;
  }
  for (size_t i = 0; i < 4; ++i) {
    auto one = tier->Get(std::vector<ObjectKey>{keys[i]}, kFp);
    ASSERT_TRUE(one[0].ok());
    EXPECT_TRUE(Same(one[0]->payload(), payloads[i]));
  }
  const auto exists = tier->Exists(reversed, kFp);
  for (size_t i = 0; i < reversed.size(); ++i) EXPECT_EQ(exists[i], i != 5) << i;
  // Every command went through one of the adapters, and their counters add up.
  EXPECT_EQ(tier->redis_stats().commands, keys.size() * 2 + reversed.size() * 2 + 4);
}

TEST_F(ClusterTierTest, AnAclUserTouchesOnlyItsTenantsKeys) {
  // Directly against Redis: tenant A's user is refused tenant B's keys.
  RedisClusterOptions ro;
  ro.seeds = cluster_->Seeds();
  ro.user = "tenantA";
  ro.password = "pwA";
  auto redis = RedisCluster::Connect(ro);
  ASSERT_TRUE(redis.ok()) << redis.status().ToString();
  std::vector<RedisCommand> cmds = {{{"SET", "tenantB:{x}:csa", "v"}},
                                    {{"GET", "tenantB:{x}:csa"}},
                                    {{"SET", "tenantA:{x}:csa", "v"}}};
  auto r = (*redis)->Execute(cmds, std::chrono::steady_clock::now() + std::chrono::seconds(2));
  ASSERT_TRUE(r[0].ok() && r[1].ok() && r[2].ok());
  EXPECT_EQ(r[0]->type, RedisReply::Type::kError);
  EXPECT_TRUE(r[0]->str.starts_with("NOPERM")) << r[0]->str;
  EXPECT_EQ(r[1]->type, RedisReply::Type::kError);
  EXPECT_EQ(r[2]->type, RedisReply::Type::kStatus);
  // Through the tier: with tenant B's prefix, puts fail and gets miss; with its own, they work.
  const auto payload = Bytes(70000, 3);
  const ObjectKey key{kNs, BlockKey{1, 2}, Family::kCsa};
  {
    auto own = Open(Options("tenantB"));  // the default user writes tenant B's object
    ASSERT_TRUE(own);
    ASSERT_TRUE(own->Put(std::vector<SharedTier::PutItem>{{key, kFp, payload}})[0].ok());
  }
  auto a_as_b = Open(Options("tenantB", "tenantA", "pwA"));
  ASSERT_TRUE(a_as_b);
  EXPECT_FALSE(a_as_b->Put(std::vector<SharedTier::PutItem>{{key, kFp, payload}})[0].ok());
  EXPECT_TRUE(a_as_b->Get(std::vector<ObjectKey>{key}, kFp)[0].status().IsNotFound());
  auto a = Open(Options("tenantA", "tenantA", "pwA"));
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->Put(std::vector<SharedTier::PutItem>{{key, kFp, payload}})[0].ok());
  auto back = a->Get(std::vector<ObjectKey>{key}, kFp);
  ASSERT_TRUE(back[0].ok());
  EXPECT_TRUE(Same(back[0]->payload(), payload));
  // A wrong password is a clear failure at open.
  auto wrong = ClusterTier::Open(Options("tenantA", "tenantA", "nope"));
  EXPECT_FALSE(wrong.ok());
}

// Two stores, each with its own host tier and NVMe directory, share the cluster.
struct Node {
  testing::TempDir dir;
  std::unique_ptr<Store> store;
  TieredStore* tiered = nullptr;
};

std::unique_ptr<Node> OpenNode(const ClusterTierOptions& o) {
  auto n = std::make_unique<Node>();
  StoreConfig c;
  c.host.capacity_bytes = 32 << 20;
  c.nvme.data_dir = n->dir.path() + "/nvme";
  c.nvme.segment_bytes = 4 << 20;
  c.nvme.capacity_bytes = 32 << 20;
  TieredStoreOptions to;
  auto tier = ClusterTier::Open(o);
  EXPECT_TRUE(tier.ok()) << tier.status().ToString();
  if (!tier.ok()) return nullptr;
  to.shared = std::move(tier).value();
  auto s = OpenTieredStore(c, std::move(to));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return nullptr;
  n->store = std::move(s).value();
  n->tiered = static_cast<TieredStore*>(n->store.get());
  return n;
}

uint64_t Counter(const Store& s, std::string_view name) {
  return strata::testing::CounterOf(s, name);
}

TEST_F(ClusterTierTest, APrefixUsedTwiceOnNodeAIsAHitOnNodeB) {
  auto a = OpenNode(Options("nodes"));
  auto b = OpenNode(Options("nodes"));
  ASSERT_TRUE(a && b);
  std::vector<BlockKey> chain;
  for (uint64_t i = 0; i < 5; ++i) chain.push_back(BlockKey{0x5151, i});
  const FamilyMask compressed{Family::kCsa, Family::kHca};
  auto payload = [](size_t block, Family f) {
    return Bytes(f == Family::kCsa ? 300000 : 20000, block * 10 + uint64_t(f));
  };
  for (size_t i = 0; i < chain.size(); ++i)
    for (Family f : {Family::kCsa, Family::kHca})
      ASSERT_TRUE(a->store->Put({kNs, chain[i], f}, kFp, payload(i, f)).ok());
  // One use each (the put): nothing shared yet, node B misses.
  ASSERT_TRUE(a->store->Flush().ok());
  auto miss = b->store->Lookup(kNs, kFp, chain, compressed);
  ASSERT_TRUE(miss.ok());
  EXPECT_EQ(miss->hit_blocks, 0u);
  // The second use on node A (a Get that serves them) shares them; Flush waits for the uploads.
  auto views = a->store->Get(kNs, kFp, std::span(chain).first(3), compressed);
  ASSERT_TRUE(views.ok());
  std::vector<uint64_t> pins;
  for (auto& v : *views) pins.push_back(v.pin);
  a->store->Release(pins);
  ASSERT_TRUE(a->store->Flush().ok());
  EXPECT_EQ(Counter(*a->store, "shared_uploads"), 6u);
  // Node B: the chain's first three blocks come from the cluster, verified, into its host tier.
  auto hit = b->store->Lookup(kNs, kFp, chain, compressed);
  ASSERT_TRUE(hit.ok());
  EXPECT_EQ(hit->hit_blocks, 3u);
  auto got = b->store->Get(kNs, kFp, std::span(chain).first(3), compressed);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    const ObjectView& v = (*got)[i];
    ASSERT_TRUE(v.found()) << i;
    EXPECT_EQ(v.served_from, Tier::kHost);
    EXPECT_TRUE(Same({v.data, v.size}, payload(i / 2, v.key.family))) << i;
  }
  pins.clear();
  for (auto& v : *got) pins.push_back(v.pin);
  b->store->Release(pins);
  EXPECT_EQ(Counter(*b->store, "shared_fetched"), 6u);
  // What node B read from the cluster is not uploaded back.
  ASSERT_TRUE(b->store->Flush().ok());
  EXPECT_EQ(Counter(*b->store, "shared_uploads"), 0u);
  // Node C Gets without a Lookup first: the objects come from the cluster during the Get, and
  // the views say so (they were in no tier of node C when Get was called).
  auto c = OpenNode(Options("nodes"));
  ASSERT_TRUE(c);
  auto direct = c->store->Get(kNs, kFp, std::span(chain).first(2), compressed);
  ASSERT_TRUE(direct.ok());
  ASSERT_EQ(direct->size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    const ObjectView& v = (*direct)[i];
    ASSERT_TRUE(v.found()) << i;
    EXPECT_EQ(v.served_from, Tier::kCluster) << i;
    EXPECT_TRUE(Same({v.data, v.size}, payload(i / 2, v.key.family))) << i;
  }
  pins.clear();
  for (auto& v : *direct) pins.push_back(v.pin);
  c->store->Release(pins);
  auto again = c->store->Get(kNs, kFp, std::span(chain).first(1), compressed);  // now local
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].served_from, Tier::kHost);
  pins.clear();
  for (auto& v : *again) pins.push_back(v.pin);
  c->store->Release(pins);
  // The daemon's metrics show the shared tier's traffic, and promtool accepts them.
  server::MetricsRegistry reg;
  std::vector<server::TenantView> tenants{{&reg.ForTenant("a"), a->store.get(), 0, 0},
                                          {&reg.ForTenant("b"), b->store.get(), 0, 0}};
  const std::string text = reg.RenderPrometheus(tenants);
  EXPECT_NE(text.find("strata_cluster_uploads_total{tenant=\"a\"} 6\n"), std::string::npos);
  EXPECT_NE(text.find("strata_cluster_fetched_total{tenant=\"b\"} 6\n"), std::string::npos);
  EXPECT_NE(text.find("strata_store_corrupt_records_total{tenant=\"b\",tier=\"cluster\"} 0\n"),
            std::string::npos);
  if (system("command -v promtool >/dev/null 2>&1") == 0) {
    const std::string path = a->dir.path() + "/metrics.prom";
    std::ofstream(path) << text;
    EXPECT_EQ(system(("promtool check metrics < '" + path + "' >/dev/null 2>&1").c_str()), 0);
  }
}

}  // namespace
}  // namespace strata::cachestore::cluster

namespace strata::cachestore::cluster {
namespace {

// A master killed under reads (3 masters with a replica each): until its replica takes over,
// its objects are misses at the deadline; afterwards they are served again from the promoted
// replica; at no point is a byte served that differs from what was put.
// Node B holds a chain's compressed state and a checkpoint at block 1; node A computed further
// and uploaded a checkpoint at block 4. B's Lookup picks up A's later checkpoint (one EXISTS over
// the hit blocks after B's own, then one GET of the latest), and only that one.
TEST_F(ClusterTierTest, LocalHitsPickUpALaterCheckpointFromTheCluster) {
  auto b = OpenNode(Options("ckpt"));
  auto uploader = Open(Options("ckpt"));  // node A's uploads, written straight into the tier
  ASSERT_TRUE(b && uploader);
  std::vector<BlockKey> chain;
  for (uint64_t i = 0; i < 6; ++i) chain.push_back(BlockKey{0xc4c4, i});
  const FamilyMask compressed{Family::kCsa, Family::kHca};
  for (size_t i = 0; i < chain.size(); ++i)
    for (Family f : {Family::kCsa, Family::kHca})
      ASSERT_TRUE(b->store->Put({kNs, chain[i], f}, kFp, Bytes(20000, i * 10 + uint64_t(f))).ok());
  const auto own = Bytes(50000, 1);
  ASSERT_TRUE(b->store->Put({kNs, chain[1], Family::kCheckpoint}, kFp, own).ok());
  const auto at2 = Bytes(50000, 2), at4 = Bytes(50000, 4);
  const std::vector<ObjectKey> uploads{{kNs, chain[2], Family::kCheckpoint},
                                       {kNs, chain[4], Family::kCheckpoint}};
  const std::vector<SharedTier::PutItem> items{{uploads[0], kFp, at2}, {uploads[1], kFp, at4}};
  for (const Status& st : uploader->Put(items)) ASSERT_TRUE(st.ok()) << st.ToString();
  const uint64_t fetched_before = Counter(*b->store, "shared_fetched");

  auto r = b->store->Lookup(kNs, kFp, chain, compressed);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->hit_blocks, 6u);
  ASSERT_EQ(r->blocks.size(), 6u);
  EXPECT_TRUE(r->blocks[1].families.Has(Family::kCheckpoint));
  EXPECT_FALSE(r->blocks[2].families.Has(Family::kCheckpoint));  // not the latest: left there
  EXPECT_TRUE(r->blocks[4].families.Has(Family::kCheckpoint));
  EXPECT_EQ(r->blocks[4].tier[size_t(Family::kCheckpoint)], Tier::kHost);
  EXPECT_EQ(Counter(*b->store, "shared_fetched"), fetched_before + 1);
  auto got = b->store->Get(kNs, kFp, std::span(&chain[4], 1), FamilyMask{Family::kCheckpoint});
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE((*got)[0].found());
  EXPECT_TRUE(Same({(*got)[0].data, (*got)[0].size}, at4));
  b->store->Release(std::vector<uint64_t>{(*got)[0].pin});

  // A later Lookup needs nothing more (the checkpoint at block 4 is local now); a chain whose
  // last block has a local checkpoint asks nothing of the cluster.
  auto again = b->store->Lookup(kNs, kFp, std::span(chain).first(5), compressed);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Counter(*b->store, "shared_fetched"), fetched_before + 1);
}

TEST(ClusterFailoverTest, AKilledMasterFailsOverAndNothingWrongIsServed) {
  if (const std::string why = RedisClusterProcess::Missing(); !why.empty()) GTEST_SKIP() << why;
  testing::RedisClusterSpec spec;
  spec.replicas = 1;
  RedisClusterProcess cluster(spec);
  const Status started = cluster.Start();
  if (!started.ok()) GTEST_SKIP() << "no Redis Cluster: " << started.ToString();
  ClusterTierOptions o;
  o.redis.seeds = cluster.Seeds();
  o.prefix = "fo";
  o.deadline = std::chrono::milliseconds(300);
  auto opened = ClusterTier::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& tier = **opened;
  constexpr size_t kObjects = 48;
  std::vector<ObjectKey> keys;
  std::vector<std::vector<std::byte>> payloads;
  std::vector<SharedTier::PutItem> puts;
  for (size_t i = 0; i < kObjects; ++i) {
    keys.push_back({kNs, BlockKey{0xf0, i}, Family::kCsa});
    payloads.push_back(Bytes(65536 + i, 1000 + i));
  }
  for (size_t i = 0; i < kObjects; ++i) puts.push_back({keys[i], kFp, payloads[i]});
  for (const Status& s : tier.Put(puts)) ASSERT_TRUE(s.ok()) << s.ToString();
  // Replicated before the kill: every replica holds as many keys as its master.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (bool synced = false; !synced && std::chrono::steady_clock::now() < until;) {
    uint64_t on_replicas = 0;
    for (size_t i = 0; i < cluster.size(); ++i) {
      if (cluster.IsMaster(i)) continue;
      auto n = cluster.Command(i, {"DBSIZE"});
      if (n.ok()) on_replicas += uint64_t(n->integer);
    }
    synced = on_replicas == kObjects;
    if (!synced) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int victim =
      cluster.MasterOfSlot(RedisCluster::KeySlot(ClusterTier::KeyFor("fo", keys[0], kFp)));
  ASSERT_GE(victim, 0);
  cluster.Kill(size_t(victim));
  size_t rounds = 0, misses_seen = 0;
  bool all_back = false;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!all_back && std::chrono::steady_clock::now() < give_up) {
    auto got = tier.Get(keys, kFp);
    size_t ok = 0;
    for (size_t i = 0; i < kObjects; ++i) {
      if (got[i].ok()) {
        ASSERT_TRUE(Same(got[i]->payload(), payloads[i])) << "object " << i << " round " << rounds;
        ++ok;
      } else {
        ASSERT_TRUE(got[i].status().IsNotFound()) << got[i].status().ToString();
        ++misses_seen;
      }
    }
    all_back = ok == kObjects;
    ++rounds;
    if (!all_back) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(all_back) << "the promoted replica never served the killed master's objects";
  EXPECT_GT(misses_seen, 0u);  // the kill was felt: misses until the failover
  EXPECT_EQ(tier.stats().corrupt, 0u);
  // Writes work again too.
  EXPECT_TRUE(tier.Put(std::span(puts).first(4))[0].ok());
}

}  // namespace
}  // namespace strata::cachestore::cluster
