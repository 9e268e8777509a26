// Crash recovery with real processes: a child puts and flushes in a loop and is killed with
// SIGKILL at a random moment; after every restart each object acknowledged by Flush reads back
// bit-identical and no object reads back corrupt.
//
// Cycles per device: STRATA_CRASH_CYCLES (default 20). The ctest entry labelled `long`
// (`ctest -L long`, or `STRATA_TEST_LONG=1 tools/test.sh`) runs 100.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include "cachestore/nvme/record.h"
#include "tests/testing/store_fixture.h"
#include "tests/testing/store_objects.h"

extern char** environ;

namespace strata {
namespace {

constexpr uint64_t kPerCycle = 120;  // objects a child writes before it waits to be killed

// Highest acknowledged object number written by the child (-1: none).
int64_t LastAcked(const std::string& dir) {
  std::ifstream in(dir + "/acked");
  int64_t last = -1, v;
  while (in >> v) last = v;
  return last;
}

int CrashCycles() {
  const char* env = std::getenv("STRATA_CRASH_CYCLES");
  if (!env || !*env) return 20;
  char* end = nullptr;
  const long n = std::strtol(env, &end, 10);
  if (*end != '\0' || n < 1 || n > 100000) {
    ADD_FAILURE() << "STRATA_CRASH_CYCLES must be a number of cycles (1..100000), not '" << env
                  << "'";
    return 20;
  }
  return int(n);
}

// NVMe tier big enough that no acknowledged object is ever reclaimed: every record of every
// cycle, and each restart starting in a fresh segment (a recovered segment is sealed), plus the
// segment held in reserve and some slack. Never below the 256 MiB the short run has always used.
uint64_t CrashCapacity(const StoreConfig& c, int cycles) {
  const uint64_t seg = c.nvme.segment_bytes;
  uint64_t segments = 4;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    uint64_t bytes = 0;
    for (uint64_t i = uint64_t(cycle) * kPerCycle; i < uint64_t(cycle + 1) * kPerCycle; ++i)
      bytes += cachestore::RecordSpan(testing::ObjectBytes(i).size());
    segments += (bytes + seg - 1) / seg + 1;
  }
  return std::max<uint64_t>(segments * seg, 256ull << 20);
}

void RunCrashCycles(DeviceKind device) {
  if (testing::SkipDevice(device)) GTEST_SKIP() << "io_uring not available";
  const int cycles = CrashCycles();
  testing::TempDir tmp;
  const std::string dir = tmp.Sub("data");
  StoreConfig config = testing::CrashStoreConfig(dir, int(device));
  config.nvme.capacity_bytes = CrashCapacity(config, cycles);
  std::mt19937 rng(uint32_t(device) * 7 + 1);
  std::vector<std::pair<uint64_t, int64_t>> acked_ranges;  // [start, last acked]
  uint64_t next = 0, reads_verified = 0, acked_objects = 0, unacked_found = 0;
  int killed_while_writing = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int cycle = 0; cycle < cycles; ++cycle) {
    std::remove((dir + "/acked").c_str());
    std::vector<std::string> args = {
        STRATA_CRASH_CHILD,          dir,
        std::to_string(int(device)), std::to_string(next),
        std::to_string(kPerCycle),   std::to_string(config.nvme.capacity_bytes)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid;
    ASSERT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
    // Kill at a random moment after the child's first acknowledged flush (sanitizer builds
    // start slowly, so the clock starts there), or after 30 s if it never gets that far.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (LastAcked(dir) < int64_t(next) && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 150));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "child exited on its own with status " << status;
    const int64_t acked = LastAcked(dir);
    EXPECT_GE(acked, int64_t(next))
        << "cycle " << cycle << ": the child was killed before its first acknowledged flush";
    if (acked >= 0 && uint64_t(acked) < next + kPerCycle - 1) ++killed_while_writing;
    if (acked >= int64_t(next)) {
      acked_ranges.push_back({next, acked});
      acked_objects += uint64_t(acked) - next + 1;
    }
    next += kPerCycle;

    auto store = testing::OpenTestStore(config);
    ASSERT_TRUE(store.ok()) << "cycle " << cycle << ": " << store.status().ToString();
    uint64_t found = 0, must_found = 0;
    for (uint64_t i = 0; i < next; ++i) {
      bool must = false;
      for (auto [s, e] : acked_ranges) must |= (i >= s && int64_t(i) <= e);
      const ObjectKey k = testing::ObjectKeyOf(i);
      auto views = (*store)->Get(k.ns, 7, std::span(&k.block, 1), FamilyMask{k.family});
      ASSERT_TRUE(views.ok());
      const ObjectView& v = (*views)[0];
      if (must) {
        ASSERT_TRUE(v.found()) << "cycle " << cycle << ": acknowledged object " << i << " lost";
      }
      if (v.found()) {
        const auto want = testing::ObjectBytes(i);
        ASSERT_EQ(v.size, want.size()) << i;
        ASSERT_EQ(std::memcmp(v.data, want.data(), want.size()), 0) << "object " << i << " corrupt";
        ++found;
        must_found += must;
      }
      (*store)->Release(std::span(&v.pin, 1));
    }
    EXPECT_EQ(must_found, acked_objects) << "cycle " << cycle;
    reads_verified += found;
    if (cycle + 1 == cycles) unacked_found = found - must_found;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(acked_ranges.size(), size_t(cycles)) << "every child gets to flush before the kill";
  EXPECT_GT(killed_while_writing, 0) << "some kills should land mid-write";
  ::testing::Test::RecordProperty("cycles", cycles);
  ::testing::Test::RecordProperty("acknowledged_objects", std::to_string(acked_objects));
  ::testing::Test::RecordProperty("reads_verified", std::to_string(reads_verified));
  ::testing::Test::RecordProperty("kills_mid_write", killed_while_writing);
  std::cout << "crash " << DeviceKindName(device) << ": " << cycles << " SIGKILL cycles, " << next
            << " objects written, " << acked_objects << " acknowledged (all present at "
            << "every restart), " << unacked_found << " unacknowledged also present at the end, "
            << reads_verified << " reads verified bit-exact, " << killed_while_writing
            << " kills mid-write, " << config.nvme.capacity_bytes / (1 << 20) << " MiB tier, "
            << seconds << " s\n";
}

TEST(CrashTest, IoUringSigkillCycles) { RunCrashCycles(DeviceKind::kIoUring); }
TEST(CrashTest, PosixSigkillCycles) { RunCrashCycles(DeviceKind::kPosix); }

}  // namespace
}  // namespace strata
