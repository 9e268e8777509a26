// Crash recovery with real processes: a child puts and flushes in a loop and is killed with
// SIGKILL at a random moment; after every restart each object acknowledged by Flush reads back
// bit-identical and no object reads back corrupt.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "tests/testing/store_fixture.h"
#include "tests/testing/store_objects.h"

extern char** environ;

namespace strata {
namespace {

// Highest acknowledged object number written by the child (-1: none).
int64_t LastAcked(const std::string& dir) {
  std::ifstream in(dir + "/acked");
  int64_t last = -1, v;
  while (in >> v) last = v;
  return last;
}

void RunCrashCycles(DeviceKind device, int cycles) {
  if (testing::SkipDevice(device)) GTEST_SKIP() << "io_uring not available";
  testing::TempDir tmp;
  const std::string dir = tmp.Sub("data");
  std::mt19937 rng(uint32_t(device) * 7 + 1);
  constexpr uint64_t kPerCycle = 120;
  std::vector<std::pair<uint64_t, int64_t>> acked_ranges;  // [start, last acked]
  uint64_t next = 0;
  int killed_while_writing = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    std::remove((dir + "/acked").c_str());
    std::vector<std::string> args = {STRATA_CRASH_CHILD, dir, std::to_string(int(device)),
                                     std::to_string(next), std::to_string(kPerCycle)};
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
    if (acked >= 0 && uint64_t(acked) < next + kPerCycle - 1) ++killed_while_writing;
    if (acked >= int64_t(next)) acked_ranges.push_back({next, acked});
    next += kPerCycle;

    auto store = testing::OpenTestStore(testing::CrashStoreConfig(dir, int(device)));
    ASSERT_TRUE(store.ok()) << "cycle " << cycle << ": " << store.status().ToString();
    uint64_t checked = 0;
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
        ++checked;
      }
      (*store)->Release(std::span(&v.pin, 1));
    }
    EXPECT_GE(checked, 0u);
  }
  EXPECT_EQ(acked_ranges.size(), size_t(cycles)) << "every child gets to flush before the kill";
  EXPECT_GT(killed_while_writing, 0) << "some kills should land mid-write";
}

TEST(CrashTest, IoUringKilledTwentyTimes) { RunCrashCycles(DeviceKind::kIoUring, 20); }
TEST(CrashTest, PosixKilledTwentyTimes) { RunCrashCycles(DeviceKind::kPosix, 20); }

}  // namespace
}  // namespace strata
