// Durability beyond SIGKILL: a deterministic workload (puts, replacements, a namespace delete,
// gets that make records hot, enough puts to demote through the host tier and reclaim NVMe
// segments, flushes) runs against a store whose device and index file system model power loss
// (tests/testing/power_loss.h). A reference run counts the workload's persistent-state events;
// then the power fails at each of them in turn: before, during and after each record write,
// fdatasync, index append and index sync of Flush, of demotions and of reclaim. After each
// simulated power loss the store reopens on the real device and index, and:
//   - every object acknowledged by Flush reads back bit-identical to its acknowledged version
//     (or a later version put before the crash), unless the store itself no longer held it when
//     the power failed (evicted or dropped by reclaim: asked of the store, object by object) or
//     a later Put replaced it after the acknowledgement (durable again at the next Flush);
//   - nothing that is served is corrupt: every object found equals some version put for its key;
//   - a namespace whose Delete was followed by a successful Flush never comes back.
// CI runs every crash point on the memory device and a sample on io_uring (files, O_DIRECT,
// fixed buffers: every sync, create, rename and delete, every 6th write and append);
// STRATA_POWER_LOSS_ALL=1 runs them all on io_uring too.
#include "tests/testing/power_loss.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <set>

#include "tests/testing/store_fixture.h"

namespace strata {
namespace {

using cachestore::Device;

constexpr uint64_t kFingerprint = 0x5eed;

StoreConfig PowerLossConfig(const std::string& dir, DeviceKind device) {
  StoreConfig c;
  c.host.capacity_bytes = 1 << 20;  // small: puts demote dirty objects to NVMe
  c.host.prefault = false;
  c.nvme.data_dir = dir;
  c.nvme.segment_bytes = 1 << 20;
  c.nvme.capacity_bytes = 6 << 20;  // 6 segments: the workload reclaims
  c.nvme.device = device;
  c.nvme.queue_depth = 8;
  c.nvme.max_io_bytes = 64 << 10;  // several I/Os per record, several records per batch
  return c;
}

struct KeyId {
  NamespaceId ns;
  uint64_t n;
  auto operator<=>(const KeyId&) const = default;
};

ObjectKey KeyOf(KeyId k) {
  return ObjectKey{k.ns, BlockKey{0x77, k.n}, Family(k.n % kNumFamilies)};
}

std::vector<std::byte> Version(KeyId k, int v) {
  const size_t size = 6000 + (k.n * 7919 + size_t(v) * 104729) % (180 << 10);
  return testing::SeededBytes(k.ns * 1000003 + k.n * 131 + uint64_t(v) * 7 + 1, size);
}

// What the test knows a store must hold after a crash.
struct Oracle {
  std::map<KeyId, int> versions;                  // newest version put
  std::map<KeyId, int> acked;                     // version acknowledged by the last good Flush
  std::set<KeyId> replaced_after_ack;             // put again since its acknowledgement
  std::set<NamespaceId> deleting, deleted_acked;  // Delete returned ok / and a Flush after it
  std::set<KeyId> dropped;       // acknowledged, but gone from the store's own view at the crash
  uint64_t dropped_counted = 0;  // the store's drop counters at the crash
};

struct Env {
  std::shared_ptr<Device> inner;  // the device under the wrapper; outlives every store
  std::unique_ptr<rocksdb::Env> rocks_env;
  std::shared_ptr<testing::PowerLossFs> fs;
};

class PowerLossTest : public ::testing::TestWithParam<DeviceKind> {
 protected:
  void SetUp() override {
    if (testing::SkipDevice(GetParam())) GTEST_SKIP() << "io_uring not available";
  }

  std::shared_ptr<Device> OpenInner(const StoreConfig& c) {
    if (GetParam() == DeviceKind::kMemory) {
      if (!memory_)
        memory_ = cachestore::NewMemoryDevice(
            c.nvme.segment_bytes, uint32_t(c.nvme.capacity_bytes / c.nvme.segment_bytes));
      return memory_;
    }
    auto d = cachestore::OpenFileDevice(GetParam(), testing::SegmentOptions(c));
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? std::shared_ptr<Device>(std::move(d).value()) : nullptr;
  }

  // Opens a store whose device and index go through the power-loss wrappers on `clock`.
  Result<std::unique_ptr<Store>> Open(const StoreConfig& c,
                                      std::shared_ptr<testing::CrashClock> clock,
                                      std::shared_ptr<testing::DeviceLossLog> log, Env& env) {
    env.inner = OpenInner(c);
    if (!env.inner) return Status::IoError("device");
    env.fs = std::make_shared<testing::PowerLossFs>(rocksdb::FileSystem::Default(), clock);
    env.rocks_env = rocksdb::NewCompositeEnv(env.fs);
    cachestore::TieredStoreOptions o;
    o.device = std::make_unique<testing::PowerLossDevice>(env.inner, clock, log);
    o.index_env = env.rocks_env.get();
    return cachestore::OpenTieredStore(c, std::move(o));
  }

  // The workload. Every call's outcome updates the oracle; after the power fails calls fail
  // and nothing more is acknowledged.
  void Workload(Store& s, Oracle& o) {
    std::map<KeyId, int> since_flush;  // versions put since the last good Flush
    std::set<NamespaceId> deleted_since_flush;
    auto put = [&](KeyId k) {
      const int v = o.versions.count(k) ? o.versions[k] + 1 : 0;
      o.versions[k] = v;
      if (o.acked.count(k)) o.replaced_after_ack.insert(k);
      (void)s.Put(KeyOf(k), kFingerprint, Version(k, v));
      since_flush[k] = v;
    };
    auto flush = [&] {
      if (!s.Flush().ok()) return;
      for (auto [k, v] : since_flush) {
        if (o.deleting.count(k.ns) && deleted_since_flush.count(k.ns)) continue;
        o.acked[k] = v;
        o.replaced_after_ack.erase(k);
      }
      for (NamespaceId ns : deleted_since_flush) o.deleted_acked.insert(ns);
      since_flush.clear();
      deleted_since_flush.clear();
    };
    auto get = [&](KeyId k) {
      const ObjectKey key = KeyOf(k);
      auto v = s.Get(key.ns, kFingerprint, std::span(&key.block, 1), FamilyMask{key.family});
      if (v.ok()) s.Release(std::span(&(*v)[0].pin, 1));
    };
    for (uint64_t n = 0; n < 12; ++n) put({1, n});
    flush();
    for (uint64_t n = 0; n < 4; ++n) put({1, n});  // replacements
    for (uint64_t n = 0; n < 6; ++n) put({2, n});
    flush();
    for (uint64_t n = 4; n < 8; ++n) get({1, n});  // hot: reclaim relocates them
    // A Delete that fails may still have taken effect (the store removes the namespace from
    // memory and marks it deleted durably before its index write): either way the namespace's
    // objects are no longer owed; only a Delete followed by a good Flush must stick.
    const bool deleted = s.Delete(2).ok();
    if (deleted) {
      o.deleting.insert(2);
      deleted_since_flush.insert(2);
    }
    for (auto it = since_flush.begin(); it != since_flush.end();)
      it = it->first.ns == 2 ? since_flush.erase(it) : std::next(it);
    for (auto it = o.acked.begin(); it != o.acked.end();)
      it = it->first.ns == 2 ? o.acked.erase(it) : std::next(it);
    flush();
    for (uint64_t n = 12; n < 40; ++n) {  // fills the host tier and the NVMe tier
      put({1, n});
      if (n % 13 == 0) flush();
      if (n % 5 == 0) get({1, 4 + n % 4});
    }
    flush();
    for (uint64_t n = 40; n < 56; ++n) put({1, n});
    flush();
    for (uint64_t n = 8; n < 11; ++n) put({1, n});  // left unflushed
  }

  // Checks a reopened store against the oracle; returns how many acknowledged objects are gone.
  uint64_t Verify(Store& s, const Oracle& o, const std::string& where) {
    uint64_t missing = 0;
    for (auto [k, newest] : o.versions) {
      const ObjectKey key = KeyOf(k);
      auto views = s.Get(key.ns, kFingerprint, std::span(&key.block, 1), FamilyMask{key.family});
      EXPECT_TRUE(views.ok()) << where;
      if (!views.ok()) continue;
      const ObjectView& v = (*views)[0];
      auto acked = o.acked.find(k);
      if (v.found()) {
        EXPECT_FALSE(o.deleted_acked.count(k.ns))
            << where << ": object " << k.n << " of a deleted namespace came back";
        const int lowest = acked != o.acked.end() ? acked->second : 0;
        bool matches = false;
        for (int ver = lowest; ver <= newest && !matches; ++ver) {
          const auto want = Version(k, ver);
          matches = v.size == want.size() && std::memcmp(v.data, want.data(), want.size()) == 0;
        }
        EXPECT_TRUE(matches) << where << ": object " << k.ns << "/" << k.n
                             << " served bytes of no version at or after its acknowledged one";
      } else if (acked != o.acked.end() && !o.replaced_after_ack.count(k)) {
        EXPECT_TRUE(o.dropped.count(k))
            << where << ": acknowledged object " << k.ns << "/" << k.n
            << " lost although the store still held it when the power failed";
        ++missing;
      }
      s.Release(std::span(&v.pin, 1));
    }
    return missing;
  }

  std::shared_ptr<Device> memory_;
};

// Acknowledged objects the store itself no longer holds (evicted or dropped by reclaim): asked
// of the store in memory when the power fails, so a loss can be told from an eviction exactly.
std::set<KeyId> DroppedByStore(Store& s, const Oracle& o) {
  std::set<KeyId> out;
  for (auto [k, v] : o.acked) {
    const ObjectKey key = KeyOf(k);
    auto r = s.Lookup(key.ns, kFingerprint, std::span(&key.block, 1), FamilyMask{key.family});
    if (r.ok() && r->hit_blocks == 0) out.insert(k);
  }
  return out;
}

TEST_P(PowerLossTest, EveryCrashPointKeepsAcknowledgedObjects) {
  testing::TempDir tmp;
  // The reference run: no crash; counts events and proves the workload reaches every path.
  int64_t events = 0;
  std::vector<std::string> labels;
  {
    const StoreConfig c = PowerLossConfig(tmp.Sub("reference"), GetParam());
    auto clock = std::make_shared<testing::CrashClock>(0);
    auto log = std::make_shared<testing::DeviceLossLog>();
    Env env;
    auto s = Open(c, clock, log, env);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    Oracle o;
    Workload(**s, o);
    EXPECT_GT(testing::CounterOf(**s, "segments_reclaimed"), 0u) << "the workload must reclaim";
    EXPECT_GT(testing::CounterOf(**s, "records_relocated"), 0u) << "and relocate hot records";
    EXPECT_GT(testing::CounterOf(**s, "demotions"), 0u) << "and demote from the host tier";
    EXPECT_EQ(o.acked.size(), 56u) << "every flush of the reference run succeeds";
    if (GetParam() == DeviceKind::kIoUring) {
      EXPECT_GT(env.inner->counters().fixed_ios.load(), 0u)
          << "records go through the arena's registered (fixed) buffers under the wrapper";
    }
    events = clock->events();
    labels = clock->labels();
    memory_.reset();
  }
  ASSERT_GT(events, 100);

  // Every point on the memory device; on io_uring (slower) every point of the rarer kinds and
  // an even sample of the device writes and index appends, unless STRATA_POWER_LOSS_ALL=1.
  std::vector<int64_t> points;
  const bool all = GetParam() == DeviceKind::kMemory || std::getenv("STRATA_POWER_LOSS_ALL");
  std::map<std::string, int> seen;
  for (int64_t at = 1; at <= events; ++at) {
    const std::string& kind = labels[size_t(at - 1)];
    const bool common = kind == "device write" || kind == "index append";
    if (all || !common || seen[kind]++ % 6 == 0) points.push_back(at);
  }
  points.push_back(events + 1);  // no crash: a clean close
  std::map<std::string, int> by_kind;
  uint64_t runs = 0, lost_counted = 0, checked_acked = 0, torn = 0, dropped = 0, files_cut = 0;
  for (int64_t at : points) {
    const std::string where = "crash point " + std::to_string(at) + "/" + std::to_string(events);
    const StoreConfig c = PowerLossConfig(tmp.Sub("run-" + std::to_string(at)), GetParam());
    auto clock = std::make_shared<testing::CrashClock>(at);
    auto log = std::make_shared<testing::DeviceLossLog>();
    Oracle o;
    std::mt19937_64 rng(uint64_t(at) * 0x9E3779B97F4A7C15ull);
    std::string fs_cuts;
    {
      Env env;
      auto s = Open(c, clock, log, env);
      // The power may fail while the store opens (RocksDB creating its files): then the
      // workload never ran and nothing was acknowledged.
      ASSERT_TRUE(s.ok() || clock->crashed()) << where << ": " << s.status().ToString();
      if (s.ok()) {
        Workload(**s, o);
        o.dropped = DroppedByStore(**s, o);
        s->reset();  // the process dies: nothing it does from here reaches the medium
      }
      ASSERT_TRUE(testing::ResolveDeviceLoss(*env.inner, *log, rng).ok()) << where;
      fs_cuts = env.fs->Resolve(rng);
    }
    if (clock->crashed()) by_kind[clock->crashed_at()]++;
    torn += log->writes_torn;
    dropped += log->writes_dropped;
    files_cut += !fs_cuts.empty();
    // Reopen on the real device and the default file system.
    {
      auto clean = std::make_shared<testing::CrashClock>(0);
      Env env;
      auto s = Open(c, clean, std::make_shared<testing::DeviceLossLog>(), env);
      ASSERT_TRUE(s.ok()) << where << " (" << clock->crashed_at() << "; index:" << fs_cuts
                          << "): reopen failed: " << s.status().ToString();
      const uint64_t missing = Verify(**s, o, where + " (" + clock->crashed_at() + ")");
      lost_counted += missing;
      checked_acked += o.acked.size();
    }
    std::filesystem::remove_all(c.nvme.data_dir);
    memory_.reset();
    ++runs;
    if (HasFatalFailure()) return;
  }
  std::string kinds;
  for (auto& [k, n] : by_kind) kinds += " " + k + "=" + std::to_string(n);
  std::printf(
      "power loss (%s): %llu crash points of %lld events; crashed at:%s; unsynced device writes "
      "torn %llu, dropped %llu; index cut in %llu runs; %llu acknowledged objects checked, %llu "
      "missing, each one dropped by the store before the crash\n",
      std::string(DeviceKindName(GetParam())).c_str(), (unsigned long long)runs, (long long)events,
      kinds.c_str(), (unsigned long long)torn, (unsigned long long)dropped,
      (unsigned long long)files_cut, (unsigned long long)checked_acked,
      (unsigned long long)lost_counted);
  EXPECT_GT(torn, 0u);
  EXPECT_GT(dropped, 0u);
  EXPECT_GT(by_kind["device fdatasync"], 0);
  EXPECT_GT(by_kind["index sync"], 0);
}

// One op inside an io_uring batch fails: the flush reports it, the rest of the batch lands,
// and the next flush rewrites what failed; after a power loss everything reads back.
TEST_P(PowerLossTest, OneFailingOpInABatchIsRetried) {
  testing::TempDir tmp;
  const StoreConfig c = PowerLossConfig(tmp.Sub("data"), GetParam());
  auto clock = std::make_shared<testing::CrashClock>(0);
  auto log = std::make_shared<testing::DeviceLossLog>();
  Oracle o;
  {
    Env env;
    cachestore::TieredStoreOptions opt;
    env.inner = OpenInner(c);
    ASSERT_TRUE(env.inner);
    auto dev = std::make_unique<testing::PowerLossDevice>(env.inner, clock, log);
    dev->fail_write_number = 5;  // inside the first flush's batch
    testing::PowerLossDevice* raw = dev.get();
    opt.device = std::move(dev);
    auto s = cachestore::OpenTieredStore(c, std::move(opt));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    for (uint64_t n = 0; n < 10; ++n) {
      o.versions[{1, n}] = 0;
      ASSERT_TRUE((*s)->Put(KeyOf({1, n}), kFingerprint, Version({1, n}, 0)).ok());
    }
    const uint64_t before = raw->counters().writes.load();
    Status first = (*s)->Flush();
    EXPECT_FALSE(first.ok()) << "the injected failure must surface";
    EXPECT_GT(raw->counters().writes.load() - before, 5u) << "the batch went on past the failure";
    ASSERT_TRUE((*s)->Flush().ok()) << "the retry rewrites the failed record";
    for (uint64_t n = 0; n < 10; ++n) o.acked[{1, n}] = 0;
    s->reset();
    std::mt19937_64 rng(3);
    ASSERT_TRUE(testing::ResolveDeviceLoss(*env.inner, *log, rng).ok());
  }
  Env env;
  auto s = Open(c, std::make_shared<testing::CrashClock>(0),
                std::make_shared<testing::DeviceLossLog>(), env);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(Verify(**s, o, "after a failed op and a retry"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Devices, PowerLossTest,
                         ::testing::Values(DeviceKind::kMemory, DeviceKind::kIoUring),
                         [](const auto& info) { return std::string(DeviceKindName(info.param)); });

}  // namespace
}  // namespace strata
