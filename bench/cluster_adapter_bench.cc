// SET and GET throughput of large values through the Redis Cluster adapter
// (cachestore/cluster/redis_cluster.h) against `redis-benchmark --cluster` on the same cluster,
// with the same value size, pipeline depth and number of connections.
//
// Without --seed it starts a 3-master cluster of its own (the tests' fixture, random ports, a
// temp dir). Rounds interleave the two tools; each measurement is one JSON line, then one
// summary line per (tool, op, size) with the median and the spread (min, max) over rounds.
//
//   strata_cluster_adapter_bench [--rounds 3] [--sizes 65536,1048576] [--pipeline 16]
//                                [--conns 4] [--mib 512] [--seed host:port]
//
// The adapter side: `conns` caller threads, each sending batches of `pipeline` commands (on
// keys spread over the cluster) and waiting for them; the adapter itself has one I/O thread and
// one connection per node. redis-benchmark: `conns` clients each keeping `pipeline` in flight.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "cachestore/cluster/redis_cluster.h"
#include "tests/testing/redis_cluster.h"

namespace {

using strata::cachestore::cluster::ParseEndpoint;
using strata::cachestore::cluster::RedisCluster;
using strata::cachestore::cluster::RedisClusterOptions;
using strata::cachestore::cluster::RedisCommand;
using strata::cachestore::cluster::RedisEndpoint;
using strata::cachestore::cluster::RedisReply;
using Clock = std::chrono::steady_clock;

constexpr int kKeyspace = 64;

struct Config {
  int rounds = 3;
  std::vector<size_t> sizes = {64 << 10, 1 << 20};
  int pipeline = 16;
  int conns = 4;
  size_t mib = 512;  // bytes moved per measurement
  std::string seed;
};

// Operations per second through the adapter; `errors` counts non-ok or unexpected replies.
double RunAdapter(RedisCluster& c, const std::string& op, size_t size, const Config& cfg,
                  size_t total_ops, uint64_t* errors) {
  const std::string value(size, 'x');
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> bad{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < cfg.conns; ++t) {
    threads.emplace_back([&] {
      std::vector<std::string> keys(static_cast<size_t>(cfg.pipeline));
      std::vector<RedisCommand> batch(static_cast<size_t>(cfg.pipeline));
      for (;;) {
        const size_t first = next.fetch_add(static_cast<size_t>(cfg.pipeline));
        if (first >= total_ops) return;
        const size_t n = std::min<size_t>(static_cast<size_t>(cfg.pipeline), total_ops - first);
        batch.resize(n);
        for (size_t i = 0; i < n; ++i) {
          keys[i] = "adapter:" + std::to_string((first + i) % kKeyspace);
          batch[i].args = op == "SET" ? std::vector<std::string_view>{"SET", keys[i], value}
                                      : std::vector<std::string_view>{"GET", keys[i]};
        }
        for (auto& r : c.Execute(batch, Clock::now() + std::chrono::seconds(10))) {
          const bool ok = r.ok() && (op == "SET" ? r->type == RedisReply::Type::kStatus
                                                 : r->type == RedisReply::Type::kString &&
                                                       r->str.size() == size);
          if (!ok) bad.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  *errors = bad.load();
  return static_cast<double>(total_ops) / std::chrono::duration<double>(Clock::now() - t0).count();
}

// Operations per second from redis-benchmark's CSV ("SET","1234.56",...); negative on failure.
double RunRedisBenchmark(const RedisEndpoint& seed, const std::string& op, size_t size,
                         const Config& cfg, size_t total_ops) {
  const std::string cmd = "redis-benchmark --cluster -h " + seed.host + " -p " +
                          std::to_string(seed.port) + " -t " + op + " -d " + std::to_string(size) +
                          " -P " + std::to_string(cfg.pipeline) + " -c " +
                          std::to_string(cfg.conns) + " -n " + std::to_string(total_ops) + " -r " +
                          std::to_string(kKeyspace) + " --csv 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char line[512];
  double rps = -1;
  while (fgets(line, sizeof(line), p) != nullptr) {
    const std::string l(line);
    if (l.rfind("\"" + op + "\"", 0) == 0) {
      const size_t q = l.find('"', op.size() + 3);
      rps = std::atof(l.substr(op.size() + 4, q - op.size() - 4).c_str());
    }
  }
  pclose(p);
  return rps;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--rounds") {
      cfg.rounds = std::stoi(v);
    } else if (a == "--pipeline") {
      cfg.pipeline = std::stoi(v);
    } else if (a == "--conns") {
      cfg.conns = std::stoi(v);
    } else if (a == "--mib") {
      cfg.mib = std::stoul(v);
    } else if (a == "--seed") {
      cfg.seed = v;
    } else if (a == "--sizes") {
      cfg.sizes.clear();
      for (size_t at = 0; at <= v.size();) {
        const size_t comma = std::min(v.find(',', at), v.size());
        cfg.sizes.push_back(std::stoul(v.substr(at, comma - at)));
        at = comma + 1;
      }
    } else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }

  std::unique_ptr<strata::testing::RedisClusterProcess> own;
  RedisEndpoint seed;
  if (cfg.seed.empty()) {
    if (std::string why = strata::testing::RedisClusterProcess::Missing(); !why.empty()) {
      std::cerr << why << "\n";
      return 77;
    }
    own = std::make_unique<strata::testing::RedisClusterProcess>();
    if (strata::Status s = own->Start(); !s.ok()) {
      std::cerr << s.ToString() << "\n";
      return 1;
    }
    seed = own->Seeds()[0];
  } else {
    auto e = ParseEndpoint(cfg.seed);
    if (!e.ok()) {
      std::cerr << e.status().ToString() << "\n";
      return 2;
    }
    seed = *e;
  }
  RedisClusterOptions options;
  options.seeds = {seed};
  auto cluster = RedisCluster::Connect(options);
  if (!cluster.ok()) {
    std::cerr << cluster.status().ToString() << "\n";
    return 1;
  }

  std::map<std::string, std::vector<double>> results;  // "tool op size" -> ops/s per round
  for (int round = 0; round < cfg.rounds; ++round) {
    for (size_t size : cfg.sizes) {
      const size_t ops = std::max<size_t>(cfg.mib * (1 << 20) / size, 64);
      for (const std::string tool : {"adapter", "redis-benchmark"}) {
        for (const std::string op : {"SET", "GET"}) {  // SET first: GET finds the keys
          uint64_t errors = 0;
          const double rps = tool == "adapter" ? RunAdapter(**cluster, op, size, cfg, ops, &errors)
                                               : RunRedisBenchmark(seed, op, size, cfg, ops);
          results[tool + " " + op + " " + std::to_string(size)].push_back(rps);
          std::printf(
              "{\"tool\":\"%s\",\"op\":\"%s\",\"value_bytes\":%zu,\"pipeline\":%d,\"conns\":%d,"
              "\"round\":%d,\"ops\":%zu,\"ops_per_s\":%.1f,\"MiB_per_s\":%.1f,\"errors\":%lu}\n",
              tool.c_str(), op.c_str(), size, cfg.pipeline, cfg.conns, round, ops, rps,
              rps * static_cast<double>(size) / (1 << 20), static_cast<unsigned long>(errors));
          std::fflush(stdout);
        }
      }
    }
  }
  for (auto& [name, v] : results) {
    std::sort(v.begin(), v.end());
    char tool[32], op[8];
    size_t size = 0;
    std::sscanf(name.c_str(), "%31s %7s %zu", tool, op, &size);
    const double median =
        v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    std::printf(
        "{\"summary\":true,\"tool\":\"%s\",\"op\":\"%s\",\"value_bytes\":%zu,\"rounds\":%zu,"
        "\"median_ops_per_s\":%.1f,\"min_ops_per_s\":%.1f,\"max_ops_per_s\":%.1f,"
        "\"median_MiB_per_s\":%.1f}\n",
        tool, op, size, v.size(), median, v.front(), v.back(),
        median * static_cast<double>(size) / (1 << 20));
  }
  const auto s = (*cluster)->stats();
  std::printf("{\"adapter_stats\":true,\"commands\":%lu,\"timeouts\":%lu,\"retries\":%lu}\n",
              static_cast<unsigned long>(s.commands), static_cast<unsigned long>(s.timeouts),
              static_cast<unsigned long>(s.retries));
  return 0;
}
