// strata: the command-line tool. `strata help` lists the subcommands.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "tools/malloc_tuning.h"

namespace {

constexpr const char* kUsage = R"(strata: tiered prefix-cache store for DeepSeek-V4 hybrid attention

usage: strata <command> [options]     (strata <command> --help for its options)

commands:
  run            the main job: agent sessions through the engine with an in-process store
                 (host DRAM + NVMe tier under ./strata-data), or a strata-server (--server);
                 restores cached prefixes bit-exactly
  gen-sessions   write an agent-session workload for run
  demo           store-only demo: agent-style prefix state through an in-process store
                 (host DRAM + NVMe tier under ./strata-data), restart, verify bit-exact
  conform        run conformance cases against the official DeepSeek-V4 reference vectors
  generate       greedy generation with the engine (prints tokens and timings)
  compare        replay a request trace through the store's simulator per SWA policy and tier
                 sizes: hit rate, prefill saved, bytes per tier, TTFT; table, JSON or plots
  replay         replay a request trace through the real store (DRAM + NVMe files) under one
                 policy: device throughput, restore read latency, write amplification, drive
                 writes per day, hit rates, and the simulator checked against it
  layout         bytes per block and per token of every state family for a model config
  fsck           check every record of a data directory against its index
  stats          what a data directory stores, per family; --server SOCKET: a tenant's
                 counters on a running strata-server
  top            live view of a running strata-server: hit rate, traffic, occupancy
  bench store    the store's benchmark figures as JSON lines
  bench engine   the engine's benchmark figures as JSON lines
  bench rehydrate  restore time per plan and tier against cold prefill, as JSON lines
  bench compare  the simulator's trace replay speed per policy, as JSON lines
  bench server   strata-server against the in-process store (get, reserve/commit, small-verb
                 latency, many clients), as JSON lines
  bench cluster  the cluster tier on Redis Cluster against redis-benchmark, and cross-node
                 restore against cold prefill and local NVMe, as JSON lines
)";

}  // namespace

int main(int argc, char** argv) {
  strata::tools::TuneMalloc();
  spdlog::set_pattern("[%H:%M:%S.%e] [%l] %v");
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string cmd = args[0];
  args[0] = "strata " + cmd;  // argv[0] of the subcommand
  using namespace strata::tools;
  if (cmd == "run") return CmdRun(args);
  if (cmd == "gen-sessions") return CmdGenSessions(args);
  if (cmd == "demo") return CmdDemo(args);
  if (cmd == "layout") return CmdLayout(args);
  if (cmd == "conform") return CmdConform(args);
  if (cmd == "generate") return CmdGenerate(args);
  if (cmd == "fsck") return CmdFsck(args);
  if (cmd == "stats") return CmdStats(args);
  if (cmd == "top") return CmdTop(args);
  if (cmd == "compare") return CmdCompare(args);
  if (cmd == "replay") return CmdReplay(args);
  if (cmd == "bench") {
    if (args.size() >= 2 && args[1] == "store") {
      args.erase(args.begin());
      args[0] = "strata bench store";
      return CmdBenchStore(args);
    }
    if (args.size() >= 2 && args[1] == "rehydrate") {
      args.erase(args.begin());
      args[0] = "strata bench rehydrate";
      return CmdBenchRehydrate(args);
    }
    if (args.size() >= 2 && args[1] == "engine") {
      args.erase(args.begin());
      args[0] = "strata bench engine";
      return CmdBenchEngine(args);
    }
    if (args.size() >= 2 && args[1] == "compare") {
      args.erase(args.begin());
      args[0] = "strata bench compare";
      return CmdBenchCompare(args);
    }
    if (args.size() >= 2 && args[1] == "server") {
      args.erase(args.begin());
      args[0] = "strata bench server";
      return CmdBenchServer(args);
    }
    if (args.size() >= 2 && args[1] == "cluster") {
      args.erase(args.begin());
      args[0] = "strata bench cluster";
      return CmdBenchCluster(args);
    }
    std::fputs("usage: strata bench store|engine|rehydrate|compare|server|cluster [options]\n",
               stderr);
    return 2;
  }
  if (cmd == "bench-crash-child") return CmdBenchCrashChild(args);
  std::fprintf(stderr, "strata: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
  return 2;
}
