// The daemon under load and faults, with real processes and real sockets (issue: strata-server,
// "Reliability"): eight client processes doing mixed work lose no acknowledged object, read no
// wrong byte and leak no lease; a client killed with SIGKILL while holding leases and a
// half-written reservation gives them back; a server killed with SIGKILL under load comes back
// with every flushed object bit-identical while its clients return errors within their deadline
// and reconnect.
//
// Lengths: STRATA_LOAD_SECONDS (default 10) for the load test, STRATA_SERVER_KILL_CYCLES
// (default 5; the `long` ctest entry runs 100) for the kill test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "strata/client.h"
#include "tests/server/load_objects.h"
#include "tests/testing/server_process.h"

namespace strata {
namespace {

using namespace std::chrono_literals;
using testing::LoadContentOf;
using testing::LoadKeyOf;
using testing::ServerProcess;

constexpr uint64_t kFingerprint = testing::kLoadFingerprint;
constexpr uint32_t kBlockTokens = testing::kLoadBlockTokens;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

std::string Config(const std::string& host, const std::string& nvme) {
  return R"({
  "socket": "@SOCKET@",
  "data_dir": "@DIR@/data",
  "io_threads": 2,
  "blocking_threads": 2,
  "metrics_port": 0,
  "host": { "capacity": ")" +
         host + R"(", "prefault": false },
  "nvme": { "capacity": ")" +
         nvme + R"(", "segment_size": "4MiB", "device": "posix" },
  "tenants": [ { "name": "default" } ]
})";
}

std::unique_ptr<Client> Connect(const ServerProcess& server,
                                std::chrono::milliseconds deadline = 5000ms) {
  ClientOptions o;
  o.socket_path = server.socket_path();
  o.fingerprint = kFingerprint;
  o.block_tokens = kBlockTokens;
  o.deadline = deadline;
  auto c = Client::Connect(o);
  EXPECT_TRUE(c.ok()) << c.status().ToString() << "\n" << server.Log();
  return c.ok() ? std::move(c).value() : nullptr;
}

uint64_t Stat(Client& c, const std::string& name) {
  auto s = c.RawStats();
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return ~0ull;
  for (const auto& [n, v] : *s)
    if (n == name) return v;
  ADD_FAILURE() << "no counter " << name;
  return ~0ull;
}

// Child processes in a process group of their own, killed as a group when this goes away.
class Children {
 public:
  ~Children() {
    if (pgid_ > 0) kill(-pgid_, SIGKILL);
    for (pid_t p : pids_) waitpid(p, nullptr, 0);
  }
  // Starts `argv`; with `out_fd`, its stdout goes to a pipe whose read end is returned there.
  pid_t Spawn(const std::vector<std::string>& args, int* out_fd = nullptr) {
    int fds[2] = {-1, -1};
    if (out_fd && pipe(fds) != 0) return -1;
    const pid_t pid = fork();
    if (pid == 0) {
      setpgid(0, pgid_ > 0 ? pgid_ : 0);
      if (out_fd) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
      }
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    if (pid > 0) {
      setpgid(pid, pgid_ > 0 ? pgid_ : pid);  // both sides: no race with exec
      if (pgid_ <= 0) pgid_ = pid;
      pids_.push_back(pid);
    }
    if (out_fd) {
      close(fds[1]);
      *out_fd = fds[0];
    }
    return pid;
  }
  // Waits for one child; its exit status (-1 on a signal or timeout, which kills the group).
  int Wait(pid_t pid, std::chrono::seconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int st = 0;
      const pid_t r = waitpid(pid, &st, WNOHANG);
      if (r == pid) {
        pids_.erase(std::find(pids_.begin(), pids_.end(), pid));
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      }
      if (std::chrono::steady_clock::now() > end) {
        kill(-pgid_, SIGKILL);
        return -1;
      }
      std::this_thread::sleep_for(20ms);
    }
  }

 private:
  pid_t pgid_ = -1;
  std::vector<pid_t> pids_;
};

std::map<std::string, uint64_t> ReadReport(const std::string& path, std::set<int>* acked) {
  std::map<std::string, uint64_t> out;
  std::ifstream in(path);
  std::string name;
  uint64_t v = 0;
  while (in >> name >> v) {
    if (name == "acked")
      acked->insert(int(v));
    else
      out[name] = v;
  }
  return out;
}

// Every acknowledged object of `ns` reads back bit for bit through `c`; returns how many did not.
int MissingOrWrong(Client& c, uint64_t ns, const std::set<int>& acked) {
  int bad = 0;
  for (int i : acked) {
    BlockKey k = LoadKeyOf(ns, i);
    auto v = c.Get(ns, kFingerprint, std::span(&k, 1), FamilyMask{Family::kCsa});
    if (!v.ok() || !(*v)[0].found()) {
      ++bad;
      continue;
    }
    const auto want = LoadContentOf(ns, i);
    if ((*v)[0].size != want.size() || std::memcmp((*v)[0].data, want.data(), want.size()) != 0)
      ++bad;
    c.Release(std::span(&(*v)[0].pin, 1));
  }
  return bad;
}

TEST(ServerLoadTest, EightClientProcessesLoseNothingAndLeakNothing) {
  // DRAM smaller than the working set (demotions and promotions all the time), NVMe large
  // enough that nothing has to be dropped.
  ServerProcess server(Config("12MiB", "512MiB"));
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  const int seconds = EnvInt("STRATA_LOAD_SECONDS", 10);
  constexpr int kClients = 8;
  Children kids;
  std::vector<pid_t> pids;
  for (int i = 0; i < kClients; ++i)
    pids.push_back(
        kids.Spawn({STRATA_LOAD_CLIENT, server.socket_path(), "default", "",
                    std::to_string(100 + i), std::to_string(7 * i + 1), std::to_string(seconds),
                    server.dir() + "/report" + std::to_string(i)}));
  for (pid_t p : pids)
    ASSERT_EQ(kids.Wait(p, std::chrono::seconds(seconds + 120)), 0) << server.Log();

  uint64_t total_ops = 0;
  std::vector<std::set<int>> acked(kClients);
  for (int i = 0; i < kClients; ++i) {
    auto r = ReadReport(server.dir() + "/report" + std::to_string(i), &acked[i]);
    EXPECT_EQ(r["corrupt_reads"], 0u) << "client " << i;
    EXPECT_EQ(r["errors"], 0u) << "client " << i;
    EXPECT_GT(r["hits"], 0u) << "client " << i;
    EXPECT_FALSE(acked[i].empty()) << "client " << i;
    total_ops += r["puts"] + r["gets"] + r["lookups"] + r["aborts"] + r["flushes"];
  }
  std::printf("load: %d clients x %d s, %llu operations\n", kClients, seconds,
              (unsigned long long)total_ops);

  auto c = Connect(server);
  ASSERT_TRUE(c);
  // The clients exited normally: every lease and reservation they held is back.
  EXPECT_EQ(Stat(*c, "server.leases_held"), 0u);
  EXPECT_EQ(Stat(*c, "server.reservations_held"), 0u);
  EXPECT_EQ(Stat(*c, "server.corrupt"), 0u);
  EXPECT_EQ(Stat(*c, "host_copies_corrupt"), 0u);
  EXPECT_EQ(Stat(*c, "corrupt_records"), 0u);
  EXPECT_GT(Stat(*c, "get_hits_nvme"), 0u);  // the load did reach NVMe
  // Nothing acknowledged was lost (nothing was evicted from NVMe either).
  ASSERT_EQ(Stat(*c, "records_dropped_by_reclaim"), 0u);
  for (int i = 0; i < kClients; ++i)
    EXPECT_EQ(MissingOrWrong(*c, 100 + i, acked[i]), 0) << "client " << i;
  // And after a clean restart, from NVMe.
  c.reset();
  ASSERT_EQ(server.Stop(), 0) << server.Log();
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  c = Connect(server);
  ASSERT_TRUE(c);
  for (int i = 0; i < kClients; ++i)
    EXPECT_EQ(MissingOrWrong(*c, 100 + i, acked[i]), 0) << "client " << i << " after restart";
}

TEST(ServerFaultTest, KilledClientGivesBackLeasesAndReservations) {
  ServerProcess server(Config("64MiB", "64MiB"));
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  auto c = Connect(server);
  ASSERT_TRUE(c);
  const uint64_t used_before = Stat(*c, "host.used");
  Children kids;
  int out = -1;
  const pid_t holder = kids.Spawn({STRATA_LOAD_CLIENT, server.socket_path(), "default", "", "7",
                                   "1", "0", server.dir() + "/holder", "--hold"},
                                  &out);
  ASSERT_GT(holder, 0);
  // Wait for "holding" (with a deadline: the pipe is non-blocking and polled).
  fcntl(out, F_SETFL, O_NONBLOCK);
  std::string said;
  const auto end = std::chrono::steady_clock::now() + 30s;
  while (said.find("holding") == std::string::npos && std::chrono::steady_clock::now() < end) {
    char buf[64];
    const ssize_t n = read(out, buf, sizeof buf);
    if (n > 0) said.append(buf, size_t(n));
    std::this_thread::sleep_for(10ms);
  }
  close(out);
  ASSERT_NE(said.find("holding"), std::string::npos) << server.Log();
  EXPECT_EQ(Stat(*c, "server.leases_held"), 8u);
  EXPECT_EQ(Stat(*c, "server.reservations_held"), 1u);
  const uint64_t used_holding = Stat(*c, "host.used");
  EXPECT_GT(used_holding, used_before + (1u << 20));  // eight objects and a 1 MiB reservation

  kill(holder, SIGKILL);
  EXPECT_EQ(kids.Wait(holder, 10s), -1);
  // The server notices the closed socket and frees what the connection held.
  uint64_t leases = ~0ull, reservations = ~0ull;
  for (int i = 0; i < 500 && (leases != 0 || reservations != 0); ++i) {
    leases = Stat(*c, "server.leases_held");
    reservations = Stat(*c, "server.reservations_held");
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(leases, 0u);
  EXPECT_EQ(reservations, 0u);
  EXPECT_EQ(Stat(*c, "server.leases_reclaimed"), 8u);
  EXPECT_EQ(Stat(*c, "server.reservations_reclaimed"), 1u);
  // The reservation's megabyte is free again; the eight committed objects stay.
  EXPECT_LT(Stat(*c, "host.used"), used_holding - (1u << 20) + 1);
  std::set<int> committed;
  for (int i = 0; i < 8; ++i) committed.insert(i);
  EXPECT_EQ(MissingOrWrong(*c, 7, committed), 0);
  // The half-written reservation never became an object.
  BlockKey half = LoadKeyOf(7, 100);
  auto v = c->Get(7, kFingerprint, std::span(&half, 1), FamilyMask{Family::kHca});
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE((*v)[0].found());
}

TEST(ServerFaultTest, ServerKilledUnderLoadKeepsFlushedObjects) {
  const int cycles = EnvInt("STRATA_SERVER_KILL_CYCLES", 5);
  // NVMe large enough that nothing flushed is dropped for room (the test checks that premise
  // before every kill): 100 cycles of the load write more than 256 MiB.
  ServerProcess server(Config("32MiB", "2GiB"));
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  constexpr auto kDeadline = 2000ms;
  auto c = Connect(server, kDeadline);
  ASSERT_TRUE(c);
  constexpr uint64_t kNs = 42;
  std::set<int> acked;
  std::mt19937_64 rng(1);
  int next = 0;
  double worst_failed_call_s = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    // Objects of this cycle, acknowledged by Flush.
    std::set<int> batch;
    for (int j = 0; j < 6; ++j, ++next) {
      const auto bytes = LoadContentOf(kNs, next);
      Status s = c->Put(ObjectKey{kNs, LoadKeyOf(kNs, next), Family::kCsa}, kFingerprint, bytes);
      ASSERT_TRUE(s.ok()) << "cycle " << cycle << ": " << s.ToString() << "\n" << server.Log();
      batch.insert(next);
    }
    Status f = c->Flush();
    ASSERT_TRUE(f.ok()) << "cycle " << cycle << ": " << f.ToString() << "\n" << server.Log();
    acked.insert(batch.begin(), batch.end());

    // Load in flight (puts, gets, flushes of further objects) while the server is killed.
    std::atomic<bool> stop{false};
    std::atomic<int> failed{0};
    double worst = 0;
    std::thread load([&] {
      int k = 100000 + cycle * 1000;
      while (!stop.load()) {
        const auto t0 = std::chrono::steady_clock::now();
        Status s;
        if (k % 3 == 0) {
          s = c->Flush();
        } else {
          const auto bytes = LoadContentOf(kNs, k);
          s = c->Put(ObjectKey{kNs, LoadKeyOf(kNs, k), Family::kCsa}, kFingerprint, bytes);
        }
        ++k;
        const double took =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!s.ok()) {
          ++failed;
          worst = std::max(worst, took);
          return;  // the server is gone: this call failed, as it must
        }
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 150));
    {
      // The premise: this server process dropped no record for room (an eviction, which the
      // check below would read as a loss).
      auto probe = Connect(server, kDeadline);
      ASSERT_TRUE(probe);
      auto raw = probe->RawStats();
      ASSERT_TRUE(raw.ok()) << raw.status().ToString();
      for (const auto& [name, value] : *raw) {
        if (name == "records_dropped_by_reclaim" || name == "records_unpersisted_by_reclaim" ||
            name == "evictions_dropped") {
          ASSERT_EQ(value, 0u) << "cycle " << cycle << ": " << name;
        }
      }
    }
    server.Kill();
    stop = true;
    load.join();
    worst_failed_call_s = std::max(worst_failed_call_s, worst);
    // No call hangs: a call against a dead server fails within its deadline (plus slack for a
    // loaded machine).
    EXPECT_LT(worst, std::chrono::duration<double>(kDeadline).count() + 3.0) << "cycle " << cycle;

    ASSERT_TRUE(server.Start().ok()) << "cycle " << cycle << "\n" << server.Log();
    // The same client reconnects on its next call; everything flushed reads back.
    int bad = -1;
    for (int attempt = 0; attempt < 3 && bad != 0; ++attempt) bad = MissingOrWrong(*c, kNs, acked);
    ASSERT_EQ(bad, 0) << "cycle " << cycle << ": flushed objects lost\n" << server.Log();
  }
  std::printf("kill: %d cycles, %zu flushed objects intact, slowest failing call %.3f s\n", cycles,
              acked.size(), worst_failed_call_s);
}

}  // namespace
}  // namespace strata
