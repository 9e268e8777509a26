// `strata bench cluster`: the cluster tier (cachestore/cluster/cluster_tier.h) on a Redis
// Cluster, each figure with its peer measured in the same run, rounds interleaved, printed as
// store_bench.h's JSON lines (median and spread of the rounds, ratio):
//   cluster.put.<family>   ClusterTier::Put of V4 block-family objects (records: 128-byte header
//                          + payload, XXH3 of both), GB/s of value bytes, against
//                          `redis-benchmark --cluster -t set` with the same value bytes,
//                          pipeline depth, connections and key count on the same cluster.
//   cluster.get.<family>   ClusterTier::Get (every record verified), against `-t get`.
//   cluster.restore.vs_cold  time to first token on node B of a prompt whose prefix node A
//                          computed (restored from the cluster, then the tail prefilled),
//                          against a cold prefill of the same prompt on node B.
//   cluster.restore.vs_nvme  the same against node B restoring a prompt of its own from its
//                          own NVMe (DRAM emptied by a restart).
// The cluster is `seeds` or, without them, one the bench starts (3 masters, no replicas: the
// tests' fixture, tests/testing/redis_cluster.h) under `dir` and always stops.
// Thread safety: run one at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "strata/layout.h"
#include "strata/status.h"

namespace strata::bench {

struct ClusterBenchOptions {
  std::string dir = "./strata-bench-cluster";  // scratch: the nodes' NVMe dirs, an own cluster
  std::vector<std::string> seeds;              // host:port of an existing cluster; empty: start one
  CacheLayout layout;                          // object sizes of the tier figures: V4-Pro, B=256
  uint64_t bytes_per_measurement = 4ull << 30;  // value bytes moved per side and round
  size_t min_ops = 8000;   // operations per side and round at least (small values)
  uint32_t pipeline = 16;  // redis-benchmark -P; our batch per caller thread
  uint32_t conns = 3;      // redis-benchmark -c (total); our caller threads
  // The tier's adapters (ClusterTierOptions::io_threads). redis-benchmark --cluster runs one
  // thread per master; with io_threads = masters and conns = io_threads x masters both sides
  // have as many threads and connections.
  uint32_t io_threads = 1;
  // The adapters' polling (RedisClusterOptions::spin): their I/O threads and our caller threads
  // poll this long before they sleep.
  uint32_t spin_us = 0;
  uint32_t rounds = 5;
  // The restore figures.
  std::string model_path;  // engine model config (v4-tiny by default, tools/)
  std::string policy = "checkpoint";
  int tokens = 4096;    // turn 1's prompt
  int new_tokens = 20;  // turn 2: turn 1 + its 4 output tokens + these
  uint32_t restore_rounds = 5;
  std::string only;  // run only figures whose name starts with this
};

// Why the bench cannot start its own cluster (redis-server or redis-cli missing); empty if it can.
std::string ClusterBenchMissing();

Status RunClusterBench(const ClusterBenchOptions& options,
                       const std::function<void(const std::string& json_line)>& emit);

}  // namespace strata::bench
