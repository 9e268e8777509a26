// `strata bench cluster` (bench/cluster_bench.h): options, the model and layout, JSON lines out.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "bench/cluster_bench.h"
#include "engine/model_config.h"
#include "strata/layout.h"
#include "tools/commands.h"
#include "tools/store_config.h"

namespace strata::tools {

int CmdBenchCluster(std::vector<std::string> args) {
  cxxopts::Options opts(
      args[0],
      "The cluster tier on Redis Cluster, each figure with its peer measured in the same run, as "
      "JSON lines on stdout (bench/cluster_bench.h): put/get of V4-Pro block families through "
      "the tier against redis-benchmark with the same value bytes, pipeline depth, connections "
      "and keys; time to first token on node B for a prefix node A computed, against a cold "
      "prefill and against node B's own NVMe. Without --seeds it starts a local cluster (3 "
      "masters, redis-server and redis-cli needed) under --dir and stops it at the end; with "
      "--seeds, redis-benchmark leaves its key:{tag}:N keys in that cluster.");
  opts.add_options()("dir", "scratch directory (the nodes' NVMe, an own cluster)",
                     cxxopts::value<std::string>()->default_value("./strata-bench-cluster"))(
      "seeds", "host:port,... of an existing Redis Cluster (default: start one)",
      cxxopts::value<std::string>()->default_value(""))(
      "layout-model", "model config for the object sizes of the tier figures",
      cxxopts::value<std::string>()->default_value(DataPath("configs/models/v4-pro.json")))(
      "bytes", "value bytes per side and round of a tier figure",
      cxxopts::value<std::string>()->default_value("4GiB"))(
      "pipeline", "commands in flight per connection (redis-benchmark -P; our batch per thread)",
      cxxopts::value<uint32_t>()->default_value("16"))(
      "io-threads", "the tier's adapters, each an I/O thread with a connection per master",
      cxxopts::value<uint32_t>()->default_value("1"))(
      "spin-us",
      "the adapters' I/O threads and the caller threads poll this long before they sleep "
      "(RedisClusterOptions::spin; 0: they sleep at once)",
      cxxopts::value<uint32_t>()->default_value("0"))(
      "conns", "connections in total (redis-benchmark -c; our caller threads)",
      cxxopts::value<uint32_t>()->default_value("3"))(
      "rounds", "rounds of the tier figures", cxxopts::value<uint32_t>()->default_value("5"))(
      "model", "engine model of the restore figures",
      cxxopts::value<std::string>()->default_value(DataPath("configs/models/v4-tiny.json")))(
      "policy", "SWA policy of the restore figures",
      cxxopts::value<std::string>()->default_value("checkpoint"))(
      "tokens", "turn 1's prompt tokens", cxxopts::value<int>()->default_value("4096"))(
      "restore-rounds", "rounds of the restore figures",
      cxxopts::value<uint32_t>()->default_value("5"))(
      "only", "run only figures whose name starts with this (cluster.put, cluster.restore, ...)",
      cxxopts::value<std::string>()->default_value(""))("quick",
                                                        "small sizes and 1-2 rounds (a smoke run)");
  int rc = 0;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  bench::ClusterBenchOptions o;
  o.dir = (*r)["dir"].as<std::string>();
  const std::string seeds = (*r)["seeds"].as<std::string>();
  for (size_t pos = 0; pos < seeds.size();) {
    const size_t comma = std::min(seeds.find(',', pos), seeds.size());
    if (comma > pos) o.seeds.push_back(seeds.substr(pos, comma - pos));
    pos = comma + 1;
  }
  auto shape = engine::LoadModelShape((*r)["layout-model"].as<std::string>());
  if (!shape.ok()) return Fail(args[0], shape.status());
  auto layout = CacheLayout::Make(*shape, LayoutOptions{});
  if (!layout.ok()) return Fail(args[0], layout.status());
  o.layout = *layout;
  auto bytes = ParseBytes((*r)["bytes"].as<std::string>());
  if (!bytes.ok()) return Fail(args[0], bytes.status().WithContext("--bytes"));
  o.bytes_per_measurement = *bytes;
  o.pipeline = (*r)["pipeline"].as<uint32_t>();
  o.conns = (*r)["conns"].as<uint32_t>();
  o.io_threads = (*r)["io-threads"].as<uint32_t>();
  o.spin_us = (*r)["spin-us"].as<uint32_t>();
  o.rounds = (*r)["rounds"].as<uint32_t>();
  o.model_path = (*r)["model"].as<std::string>();
  o.policy = (*r)["policy"].as<std::string>();
  o.tokens = (*r)["tokens"].as<int>();
  o.restore_rounds = (*r)["restore-rounds"].as<uint32_t>();
  o.only = (*r)["only"].as<std::string>();
  if ((*r)["quick"].as<bool>()) {
    o.bytes_per_measurement = 48ull << 20;
    o.min_ops = 1000;
    o.rounds = 2;
    o.tokens = 1024;
    o.restore_rounds = 1;
  }
  if (o.tokens < 256) return Fail(args[0], Status::InvalidArgument("--tokens: at least 256"));
  if (o.seeds.empty()) {
    if (const std::string why = bench::ClusterBenchMissing(); !why.empty()) {
      std::fprintf(stderr, "%s: no --seeds and cannot start a cluster: %s\n", args[0].c_str(),
                   why.c_str());
      return 77;  // skipped, as the tests skip
    }
  }
  // stdout carries the JSON lines only.
  spdlog::set_level(spdlog::level::warn);
  Status s = bench::RunClusterBench(o, [](const std::string& line) {
    std::fputs((line + "\n").c_str(), stdout);
    std::fflush(stdout);
  });
  if (!s.ok()) return Fail(args[0], s);
  return 0;
}

}  // namespace strata::tools
