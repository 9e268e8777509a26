// strata::Client against a real strata-server process (tests/testing/server_process.h): bytes
// put are the bytes got, in place through Reserve/Commit too; Abort leaves nothing; Prefetch
// brings NVMe objects back; a server killed with SIGKILL fails the call in flight within its
// deadline, and after a restart the next call reconnects and reads every flushed object back
// bit-identical; a stopped server (SIGSTOP) fails calls within the deadline, and after SIGCONT
// the client carries on.
#include "strata/client.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/testing/server_process.h"
#include "tests/testing/store_fixture.h"

namespace strata {
namespace {

using Clock = std::chrono::steady_clock;
using testing::SeededBytes;

constexpr uint64_t kFp = 0x5eed0f1a7e5ull;
constexpr NamespaceId kNs = 3;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Stops `pid` and returns once every thread of it is stopped: kill() returns before that, and
// an io thread still running could answer one more request.
void StopProcess(pid_t pid) {
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  const auto until = Clock::now() + std::chrono::seconds(5);
  for (;;) {
    bool all = true;
    for (const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
      std::ifstream f(e.path() / "stat");
      std::string line;
      std::getline(f, line);
      const size_t paren = line.rfind(')');
      all &= paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'T';
    }
    if (all) return;
    ASSERT_LT(Clock::now(), until) << "the server did not stop";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

bool SameBytes(const ObjectView& v, const std::vector<std::byte>& b) {
  return v.found() && v.size == b.size() && std::memcmp(v.data, b.data(), b.size()) == 0;
}

// Objects of several families and sizes (a byte, an entry run, a few hundred KiB, 2 MiB).
struct Obj {
  ObjectKey key;
  std::vector<std::byte> bytes;
};
std::vector<Obj> MakeObjects(uint64_t seed, size_t n) {
  const size_t sizes[] = {1, 584 * 64, 300 << 10, 2 << 20};
  std::vector<Obj> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back({ObjectKey{kNs, BlockKey{seed, i}, kAllFamilies[i % kNumFamilies]},
                   SeededBytes(seed * 1000 + i, sizes[i % 4])});
  return out;
}

// Every object of `objs` read back: bit-identical, each from `tier` unless it is kNone.
void ExpectReadBack(Client& c, const std::vector<Obj>& objs, Tier tier = Tier::kNone) {
  for (const Obj& o : objs) {
    auto v = c.Get(o.key.ns, kFp, std::span(&o.key.block, 1), FamilyMask{o.key.family});
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_EQ(v->size(), 1u);
    EXPECT_TRUE(SameBytes((*v)[0], o.bytes)) << o.key.block.ToHex();
    if (tier != Tier::kNone) {
      EXPECT_EQ((*v)[0].served_from, tier);
    }
    PinGuard release(c, std::move(*v));
  }
}

class ClientTest : public ::testing::Test {
 protected:
  // A 16 MiB host tier over a 64 MiB NVMe tier (4 MiB segments: an object fits one) small
  // enough for tests to push objects out.
  ClientTest() : ClientTest("{}") {}
  // The same server, its tenant's settings from `tenant` (JSON: "staging_bytes", ...).
  explicit ClientTest(const std::string& tenant) : server_(ServerConfig(tenant)) {}
  static std::string ServerConfig(const std::string& tenant) {
    auto t = nlohmann::json::parse(tenant);
    t["name"] = "default";
    return R"({
  "socket": "@SOCKET@", "data_dir": "@DIR@/data", "io_threads": 4, "blocking_threads": 2,
  "metrics_port": 0,
  "host": { "capacity": "16MiB", "prefault": false },
  "nvme": { "capacity": "64MiB", "segment_size": "4MiB", "device": "posix" },
  "tenants": [ )" +
           t.dump() + " ]\n}";
  }
  void SetUp() override {
    Status s = server_.Start();
    ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << server_.Log();
  }
  ClientOptions Options() const {
    ClientOptions o;
    o.socket_path = server_.socket_path();
    o.fingerprint = kFp;
    o.block_tokens = 256;
    return o;
  }
  std::unique_ptr<Client> Connect(int deadline_ms = 5000) {
    ClientOptions o = Options();
    o.deadline = std::chrono::milliseconds(deadline_ms);
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString() << "\n" << server_.Log();
    return c.ok() ? std::move(*c) : nullptr;
  }
  void PutAll(Client& c, const std::vector<Obj>& objs) {
    for (const Obj& o : objs) {
      Status s = c.Put(o.key, kFp, o.bytes);
      ASSERT_TRUE(s.ok()) << s.ToString() << " (" << o.bytes.size() << " B)";
    }
  }
  // Fills DRAM with other objects, so earlier ones are served from NVMe.
  void PushOut(Client& c) {
    for (uint64_t i = 0; i < 24; ++i)
      ASSERT_TRUE(
          c.Put({kNs + 1, BlockKey{99, i}, Family::kCsa}, kFp, SeededBytes(i, 1 << 20)).ok());
  }

  // 40 Get + Release cycles over `objs`, byte-exact; then the client is still on its first
  // connection and holds no lease.
  static void GetReleaseCycles(Client& c, const std::vector<Obj>& objs) {
    for (int round = 0; round < 40; ++round) {
      const Obj& ob = objs[size_t(round) % objs.size()];
      auto v = c.Get(kNs, kFp, std::span(&ob.key.block, 1), FamilyMask{ob.key.family});
      ASSERT_TRUE(v.ok());
      ASSERT_TRUE(SameBytes((*v)[0], ob.bytes)) << round;
      c.Release(std::span(&(*v)[0].pin, 1));
    }
    uint64_t connects = 0, held = 99;
    c.VisitCounters([&](std::string_view n, uint64_t x) {
      if (n == "client.connects") connects = x;
      if (n == "connection.leases_held") held = x;
    });
    EXPECT_EQ(connects, 1u);
    EXPECT_EQ(held, 0u);
  }

  testing::ServerProcess server_;
};

TEST_F(ClientTest, PutThenGetReturnsTheSameBytes) {
  auto c = Connect();
  ASSERT_TRUE(c);
  const auto objs = MakeObjects(1, 10);
  ASSERT_NO_FATAL_FAILURE(PutAll(*c, objs));
  ASSERT_NO_FATAL_FAILURE(ExpectReadBack(*c, objs, Tier::kHost));
  // A batch over several keys and families, key-major.
  std::vector<BlockKey> keys;
  for (const Obj& o : objs) keys.push_back(o.key.block);
  auto v = c->Get(kNs, kFp, keys, FamilyMask::All());
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->size(), keys.size() * kNumFamilies);
  for (size_t i = 0; i < objs.size(); ++i)
    for (int f = 0; f < kNumFamilies; ++f) {
      const ObjectView& x = (*v)[i * kNumFamilies + size_t(f)];
      EXPECT_EQ(x.key.family, kAllFamilies[size_t(f)]);
      if (objs[i].key.family == x.key.family)
        EXPECT_TRUE(SameBytes(x, objs[i].bytes)) << i;
      else
        EXPECT_FALSE(x.found());
    }
  PinGuard release(*c, std::move(*v));
  // Lookup: the first block holds csa.
  auto l = c->Lookup(kNs, kFp, std::span(keys).first(1), FamilyMask{Family::kCsa});
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->hit_blocks, 1u);
  // Another fingerprint sees nothing, and neither does another namespace.
  auto other = c->Get(kNs + 7, kFp, keys, FamilyMask::All());
  ASSERT_TRUE(other.ok());
  for (const auto& x : *other) EXPECT_FALSE(x.found());
  const StoreStats st = c->Stats();
  EXPECT_GT(st[Tier::kHost].capacity, 0u);
  EXPECT_GT(st[Tier::kHost].used, 0u);
  EXPECT_EQ(st[Tier::kHost].families[size_t(Family::kCsa)].objects, 2u);
}

TEST_F(ClientTest, ReserveWritesInPlaceAndCommitPublishes) {
  auto c = Connect();
  ASSERT_TRUE(c);
  const ObjectKey key{kNs, BlockKey{5, 5}, Family::kSwa};
  const auto bytes = SeededBytes(55, 700 << 10);
  auto r = c->Reserve(key, kFp, bytes.size());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_NE(r->data, nullptr);
  EXPECT_EQ(r->size, bytes.size());
  std::memcpy(r->data, bytes.data(), bytes.size());
  // Not visible before Commit.
  auto before = c->Get(kNs, kFp, std::span(&key.block, 1), FamilyMask{key.family});
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE((*before)[0].found());
  ASSERT_TRUE(c->Commit(*r).ok());
  ASSERT_NO_FATAL_FAILURE(ExpectReadBack(*c, {{key, bytes}}, Tier::kHost));
  EXPECT_FALSE(c->Commit(*r).ok());  // used up
  // The default tenant stages writes: what the client writes after Commit never reaches the
  // bytes Get serves (Commit copied them into the arena, which maps only read-only).
  std::memset(r->data, 0x5a, bytes.size());
  ASSERT_NO_FATAL_FAILURE(ExpectReadBack(*c, {{key, bytes}}, Tier::kHost));
}

// A batch with a refused item among them (larger than the arena) and a reservation already used
// up: one result per item, in order.
TEST_F(ClientTest, ReserveManyAndCommitManyGiveOneResultPerItem) {
  auto c = Connect();
  ASSERT_TRUE(c);
  const size_t n = 40;
  std::vector<Client::ReserveSpec> specs;
  for (size_t i = 0; i < n; ++i)
    specs.push_back({{kNs, BlockKey{8, i}, Family::kHca}, 1000 + i, {}});
  specs[3].size = 1ull << 40;  // no arena holds it
  auto rs = c->ReserveMany(kFp, specs);
  ASSERT_EQ(rs.size(), n);
  EXPECT_FALSE(rs[3].ok());
  std::vector<Client::Reservation> ok;
  for (size_t i = 0; i < n; ++i) {
    if (i == 3) continue;
    ASSERT_TRUE(rs[i].ok()) << i << ": " << rs[i].status().ToString();
    ASSERT_EQ(rs[i]->size, 1000 + i);
    const auto bytes = SeededBytes(i, 1000 + i);
    std::memcpy(rs[i]->data, bytes.data(), bytes.size());
    ok.push_back(*rs[i]);
  }
  ASSERT_TRUE(c->Commit(ok[0]).ok());  // committed alone: the batch finds it used up
  auto st = c->CommitMany(ok);
  ASSERT_EQ(st.size(), ok.size());
  EXPECT_FALSE(st[0].ok());
  for (size_t k = 1; k < st.size(); ++k) EXPECT_TRUE(st[k].ok()) << k << ": " << st[k].ToString();
  std::vector<Obj> objs;
  for (size_t i = 0; i < n; ++i)
    if (i != 3) objs.push_back({specs[i].key, SeededBytes(i, 1000 + i)});
  ASSERT_NO_FATAL_FAILURE(ExpectReadBack(*c, objs, Tier::kHost));
}

// Deferred RELEASE responses are read with later calls: no reconnect (the socket is readable
// while they wait), no lease left behind, over the bound of 16 outstanding.
TEST_F(ClientTest, DeferredReleaseAcksAreReadLaterWithoutLosingTheConnection) {
  ClientOptions o = Options();
  o.defer_release_acks = true;
  auto c = Client::Connect(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const auto objs = MakeObjects(7, 4);
  ASSERT_NO_FATAL_FAILURE(PutAll(**c, objs));
  ASSERT_NO_FATAL_FAILURE(GetReleaseCycles(**c, objs));
}

// Coalesced RELEASEs wait in the client and go out with its next request: the server holds the
// lease until then (another connection sees it), and not after; many cycles stay on one
// connection and leave no lease behind.
TEST_F(ClientTest, CoalescedReleasesGoOutWithTheNextRequest) {
  ClientOptions o = Options();
  o.defer_release_acks = true;
  o.coalesce_releases = true;
  auto c = Client::Connect(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto watcher = Connect();
  ASSERT_TRUE(watcher);
  auto held = [&] {
    uint64_t n = 99;
    watcher->VisitCounters([&](std::string_view name, uint64_t x) {
      if (name == "server.leases_held") n = x;
    });
    return n;
  };
  const auto objs = MakeObjects(9, 4);
  ASSERT_NO_FATAL_FAILURE(PutAll(**c, objs));
  const Obj& first = objs[0];
  auto v = (*c)->Get(kNs, kFp, std::span(&first.key.block, 1), FamilyMask{first.key.family});
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(SameBytes((*v)[0], first.bytes));
  (*c)->Release(std::span(&(*v)[0].pin, 1));
  EXPECT_EQ(held(), 1u) << "the RELEASE went out before a request";
  ASSERT_TRUE((*c)->Ping().ok());
  EXPECT_EQ(held(), 0u) << "the RELEASE did not go out with the PING";
  ASSERT_NO_FATAL_FAILURE(GetReleaseCycles(**c, objs));
  // Closing the client sends what still waits (the server would free it with the connection
  // anyway; this checks the close does not hang or fail on a queued frame).
  auto w = (*c)->Get(kNs, kFp, std::span(&first.key.block, 1), FamilyMask{first.key.family});
  ASSERT_TRUE(w.ok());
  (*c)->Release(std::span(&(*w)[0].pin, 1));
  c->reset();
  uint64_t after = held();
  for (int i = 0; i < 200 && after != 0; ++i) {  // the server sees the close asynchronously
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    after = held();
  }
  EXPECT_EQ(after, 0u);
}

// Polling on both sides (io_spin_us on a server of its own, spin_us in the client) serves
// every byte as sleeping does, and the polling server still stops cleanly on SIGTERM.
TEST(ClientSpinTest, PollingServerAndClientServeTheSameBytesAndStop) {
  testing::ServerProcess server(R"({
  "socket": "@SOCKET@", "data_dir": "@DIR@/data", "io_threads": 2, "io_spin_us": 2000,
  "blocking_threads": 1, "metrics_port": 0,
  "host": { "capacity": "16MiB", "prefault": false }, "nvme": null,
  "tenants": [ { "name": "default" } ]
})");
  Status started = server.Start();
  ASSERT_TRUE(started.ok()) << started.ToString() << "\n" << server.Log();
  EXPECT_NE(server.Log().find("io_spin_us 2000"), std::string::npos) << server.Log();
  ClientOptions o;
  o.socket_path = server.socket_path();
  o.fingerprint = kFp;
  o.block_tokens = 256;
  o.spin_us = 500;
  o.defer_release_acks = o.coalesce_releases = true;
  auto c = Client::Connect(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const auto objs = MakeObjects(11, 6);
  for (const Obj& ob : objs) ASSERT_TRUE((*c)->Put(ob.key, kFp, ob.bytes).ok());
  for (int round = 0; round < 20; ++round) ASSERT_NO_FATAL_FAILURE(ExpectReadBack(**c, objs));
  c->reset();
  const int st = server.Stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(st)) << server.Log();
  EXPECT_EQ(WEXITSTATUS(st), 0) << server.Log();
}

// A connection with 4 MiB of staging, so PutMany's batches wrap around it.
class SmallStagingClientTest : public ClientTest {
 protected:
  SmallStagingClientTest() : ClientTest(R"({"staging_bytes": "4MiB"})") {}
};

// PutMany copies into the staging region at places of its own and sends PUT frames: 40 objects
// of 12 MiB in all go through 4 MiB of staging, wrapping around it, with no RESERVE; a
// reservation being written meanwhile keeps its bytes (PUT writes around it); an object larger
// than the region gets NoSpace and the others are stored; every object reads back bit-identical.
TEST_F(SmallStagingClientTest, PutManyWrapsAroundTheStagingRegionAndAroundReservations) {
  auto c = Connect();
  ASSERT_TRUE(c);
  auto stat = [&](const std::string& name) -> uint64_t {
    auto st = c->RawStats();
    EXPECT_TRUE(st.ok());
    if (st.ok())
      for (const auto& [k, v] : *st)
        if (k == name) return v;
    ADD_FAILURE() << "no counter " << name;
    return 0;
  };
  const ObjectKey held_key{kNs, BlockKey{7, 7}, Family::kCsa};
  const auto held_bytes = SeededBytes(77, 300 << 10);
  auto held = c->Reserve(held_key, kFp, held_bytes.size());
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  std::memcpy(held->data, held_bytes.data(), held_bytes.size());
  const uint64_t reservations = stat("server.reservations");
  const uint64_t frames = stat("server.put_frames");

  std::vector<Obj> objs;
  for (size_t i = 0; i < 40; ++i)
    objs.push_back({ObjectKey{kNs, BlockKey{70, i}, i % 2 ? Family::kHca : Family::kCsaIndex},
                    SeededBytes(700 + i, (300 << 10) + 17 * i)});
  const auto huge = SeededBytes(1, 5 << 20);
  std::vector<Client::PutSpec> specs;
  for (size_t i = 0; i < objs.size(); ++i) {
    specs.push_back({objs[i].key, objs[i].bytes, {}});
    if (i == 20) specs.push_back({{kNs, BlockKey{71, 0}, Family::kCsa}, huge, {}});
  }
  auto st = c->PutMany(kFp, specs);
  ASSERT_EQ(st.size(), specs.size());
  for (size_t i = 0; i < st.size(); ++i) {
    if (i == 21) {
      EXPECT_TRUE(st[i].IsNoSpace()) << st[i].ToString();
    } else {
      EXPECT_TRUE(st[i].ok()) << i << ": " << st[i].ToString();
    }
  }
  EXPECT_EQ(stat("server.reservations"), reservations);  // no RESERVE
  EXPECT_GE(stat("server.put_frames"), frames + 3);      // 12 MiB through 4 MiB
  ASSERT_TRUE(c->Commit(*held).ok());
  ASSERT_NO_FATAL_FAILURE(ExpectReadBack(*c, {{held_key, held_bytes}}));
  ASSERT_NO_FATAL_FAILURE(ExpectReadBack(*c, objs));
  // The Store interface's Put goes the same way.
  const Obj one{{kNs, BlockKey{72, 0}, Family::kSwa}, SeededBytes(3, 100 << 10)};
  ASSERT_TRUE(c->Put(one.key, kFp, one.bytes).ok());
  EXPECT_EQ(stat("server.reservations"), reservations);
  ASSERT_NO_FATAL_FAILURE(ExpectReadBack(*c, {one}));
}

TEST_F(ClientTest, AbortLeavesNothing) {
  auto c = Connect();
  ASSERT_TRUE(c);
  const ObjectKey key{kNs, BlockKey{6, 6}, Family::kCsa};
  const auto bytes = SeededBytes(66, 100 << 10);
  auto r = c->Reserve(key, kFp, bytes.size());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::memcpy(r->data, bytes.data(), bytes.size());
  ASSERT_TRUE(c->Abort(*r).ok());
  auto v = c->Get(kNs, kFp, std::span(&key.block, 1), FamilyMask{key.family});
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE((*v)[0].found());
  EXPECT_FALSE(c->Commit(*r).ok());
  // The space came back: many more reservations than the arena holds at once.
  for (int i = 0; i < 64; ++i) {
    auto x = c->Reserve(key, kFp, 1 << 20);
    ASSERT_TRUE(x.ok()) << i << ": " << x.status().ToString();
    ASSERT_TRUE(c->Abort(*x).ok());
  }
}

TEST_F(ClientTest, PrefetchBringsNvmeObjectsBack) {
  auto c = Connect();
  ASSERT_TRUE(c);
  const auto objs = MakeObjects(2, 8);
  ASSERT_NO_FATAL_FAILURE(PutAll(*c, objs));
  ASSERT_TRUE(c->Flush().ok());
  ASSERT_NO_FATAL_FAILURE(PushOut(*c));
  std::vector<BlockKey> keys;
  for (const Obj& o : objs) keys.push_back(o.key.block);
  auto l = c->Lookup(kNs, kFp, keys, FamilyMask{});
  ASSERT_TRUE(l.ok());
  EXPECT_GT(l->hit_bytes[size_t(Tier::kNvme)], 0u);
  ASSERT_TRUE(c->Prefetch(kNs, kFp, keys, FamilyMask::All()).ok());
  ASSERT_NO_FATAL_FAILURE(ExpectReadBack(*c, objs));
}

// SIGKILL while a call waits on the (stopped) server: the call fails at once (the connection
// breaks), views of the old arena still read the same bytes, the next call after the restart
// reconnects, and every flushed object reads back bit-identical from NVMe.
TEST_F(ClientTest, ReconnectsAfterTheServerIsKilledAndRestarted) {
  auto c = Connect(3000);
  ASSERT_TRUE(c);
  const auto flushed = MakeObjects(3, 10);
  ASSERT_NO_FATAL_FAILURE(PutAll(*c, flushed));
  ASSERT_TRUE(c->Flush().ok());
  const uint64_t epoch = c->server_epoch();
  auto held =
      c->Get(kNs, kFp, std::span(&flushed[2].key.block, 1), FamilyMask{flushed[2].key.family});
  ASSERT_TRUE(held.ok() && SameBytes((*held)[0], flushed[2].bytes));

  ASSERT_NO_FATAL_FAILURE(StopProcess(server_.pid()));
  auto in_flight = std::async(std::launch::async, [&] {
    const auto t = Clock::now();
    const Status s = c->Ping();
    return std::pair(s, Since(t));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server_.Kill();
  const auto [s, secs] = in_flight.get();
  EXPECT_FALSE(s.ok());
  EXPECT_LT(secs, 3.0 + 0.5);  // within its deadline (in fact at once: the socket broke)
  // While the server is down: calls fail fast, Get misses, Put errs.
  auto t = Clock::now();
  auto miss = c->Get(kNs, kFp, std::span(&flushed[0].key.block, 1), FamilyMask::All());
  ASSERT_TRUE(miss.ok());
  for (const auto& v : *miss) EXPECT_FALSE(v.found());
  EXPECT_FALSE(c->Put(flushed[0].key, kFp, flushed[0].bytes).ok());
  EXPECT_LT(Since(t), 3.0);
  // The old view: still mapped, unchanged.
  EXPECT_TRUE(SameBytes((*held)[0], flushed[2].bytes));

  Status started = server_.Start();
  ASSERT_TRUE(started.ok()) << started.ToString() << "\n" << server_.Log();
  EXPECT_TRUE(c->Ping().ok());
  EXPECT_NE(c->server_epoch(), epoch);
  ASSERT_NO_FATAL_FAILURE(ExpectReadBack(*c, flushed, Tier::kNvme));
  c->Release(std::vector<uint64_t>{(*held)[0].pin});  // of the dead connection: dropped locally
  ASSERT_NO_FATAL_FAILURE(ExpectReadBack(*c, flushed));
}

TEST_F(ClientTest, AStoppedServerFailsCallsWithinTheDeadline) {
  auto c = Connect(500);
  ASSERT_TRUE(c);
  const auto objs = MakeObjects(4, 5);
  ASSERT_NO_FATAL_FAILURE(PutAll(*c, objs));
  ASSERT_NO_FATAL_FAILURE(StopProcess(server_.pid()));
  auto t = Clock::now();
  EXPECT_FALSE(c->Ping().ok());
  EXPECT_GE(Since(t), 0.45);
  EXPECT_LT(Since(t), 2.0);
  t = Clock::now();
  auto v = c->Get(kNs, kFp, std::span(&objs[0].key.block, 1), FamilyMask{objs[0].key.family});
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE((*v)[0].found());
  EXPECT_LT(Since(t), 2.0);
  t = Clock::now();
  EXPECT_FALSE(c->Put(objs[0].key, kFp, objs[0].bytes).ok());
  EXPECT_LT(Since(t), 2.0);
  ASSERT_EQ(::kill(server_.pid(), SIGCONT), 0);
  EXPECT_TRUE(c->Ping().ok());
  ASSERT_NO_FATAL_FAILURE(ExpectReadBack(*c, objs, Tier::kHost));
}

}  // namespace
}  // namespace strata
