// `strata bench server`: what going through strata-server costs against the in-process store,
// each figure with its peer measured in the same run, rounds interleaved (daemon, peer, daemon,
// ...), printed as store_bench.h's JSON lines (median and spread of the rounds, ratio):
//   server.get.<family>      Get + copy out + Release of V4 block-family objects, GB/s:
//                            strata::Client against the in-process TieredStore on the same
//                            objects; the consumer copies the bytes out in both cases.
//   server.get.<family>.vs_checksummed  the same against the in-process store with the host
//                            checksums the daemon verifies before serving (the socket's share).
//   server.reserve_commit.<family>  Reserve + copy in + Commit, GB/s, against the in-process
//                            store's Put of each batch written into a buffer (and
//                            .vs_in_place_commit against TieredStore's own Reserve/Commit).
//   server.put.<family>      Client::PutMany (copy into the staging region + one PUT frame per
//                            batch) against the same in-process Put.
//   server.lookup64.p50|p99  Lookup of a 64-block chain, microseconds, against a bare Unix-socket
//                            request/response of the same frame sizes (an echo thread).
//   server.release.p50|p99   Release of one lease, likewise.
//   server.clients.<n>       aggregate Get + copy GB/s of n client threads, each on a connection
//                            of its own, against n threads on the in-process store.
// The daemon runs in this process (cachestore/server's Server on its own threads), which is the
// same socket and shared-memory path a separate process uses.
// Thread safety: run one at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "strata/layout.h"
#include "strata/status.h"

namespace strata::bench {

struct ServerBenchOptions {
  std::string dir = "./strata-bench-server";  // scratch: the socket
  CacheLayout layout;                         // object sizes: V4-Pro at B=256 (tools/)
  uint64_t bytes_per_family = 64ull << 20;    // objects per family: as many as this holds (>= 8)
  uint32_t rounds = 5;
  uint32_t latency_samples = 20000;  // per round and side
  std::vector<int> clients = {1, 2, 4, 8};
  double clients_seconds = 1.0;  // per round and side of the clients figure
  uint32_t io_threads = 4;       // the daemon's
  // The daemon's io_spin_us and the clients' spin_us (ServerConfig, ClientOptions): polling
  // instead of sleeping between requests; 0 and 0: both sleep at once.
  uint32_t io_spin_us = 500, client_spin_us = 100;
  std::string only;  // run only figures whose name starts with this
};

Status RunServerBench(const ServerBenchOptions& options,
                      const std::function<void(const std::string& json_line)>& emit);

}  // namespace strata::bench
