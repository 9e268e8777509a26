// The tier shared across nodes (DESIGN.md, "Store"), on Redis Cluster through the adapter in
// redis_cluster.h. It stores each object as a self-describing record, so a value read back on any
// node is verified before use:
//
//   value = the NVMe record header (nvme/record.h, 128 bytes: key, family, codec (always none
//           here), fingerprint, sequence (0), sizes, XXH3 of the payload, XXH3 of the header)
//           followed by the payload (raw size bytes; no padding)
//
//   key   = <prefix>:{<ns>.<fingerprint>.<block hi>.<block lo>}:<family>
//           ns, fingerprint and block halves as 16 lowercase hex digits each; the braces are a
//           Redis hash tag, so all families of one block live on one shard and come back in one
//           round trip; <prefix> is the tenant's ("tenant name"), so a Redis ACL user restricted
//           to `~<prefix>:*` can touch its own tenant's keys only.
//
// A value whose header, key, fingerprint, size or payload checksum does not match what was asked
// for is a miss, counted as corrupt, never served. A value the cluster evicted (maxmemory LRU)
// or lost with a failed master is a plain miss; a slow or paused node is a miss at the deadline.
// Thread safety: safe for concurrent calls (each adapter serializes its own I/O).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cachestore/cluster/redis_cluster.h"
#include "cachestore/placement/tier.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::cachestore::cluster {

inline constexpr uint32_t kMaxIoThreads = 16;

struct ClusterTierOptions {
  RedisClusterOptions redis;
  std::string prefix = "strata";            // the tenant's key prefix (no ':', '{' or '}')
  std::chrono::milliseconds deadline{100};  // per batch call
  // Adapters, each with its own I/O thread and one connection per node; a batch is split over
  // them. One I/O thread carries every send's and receive's kernel copy, and tops out at
  // about 3 GB/s on loopback here; more spread the copies over cores (and open as many
  // connections per node).
  uint32_t io_threads = 1;
  Status Validate() const;
};

struct ClusterTierStats {
  uint64_t puts = 0, put_bytes = 0, put_failures = 0;
  uint64_t gets = 0, hits = 0, hit_bytes = 0, misses = 0, corrupt = 0, timeouts = 0;
};

class ClusterTier final : public SharedTier {
 public:
  static Result<std::unique_ptr<ClusterTier>> Open(const ClusterTierOptions& options);
  ~ClusterTier() override;

  // The Redis key of an object (documented above).
  static std::string KeyFor(std::string_view prefix, const ObjectKey& key, uint64_t fingerprint);
  // The record value of an object (documented above), and its header alone (Put sends the
  // header and then the payload from the caller's memory, as one value).
  static std::string EncodeValue(const PutItem& item);
  static std::string EncodeHeader(const PutItem& item);
  // Verifies a value against what was asked for: the payload, or Corruption.
  static Result<std::span<const std::byte>> VerifyValue(std::string_view value,
                                                        const ObjectKey& key, uint64_t fingerprint);

  // Uploads every item (SET, pipelined); one status per item.
  std::vector<Status> Put(std::span<const PutItem> items) override;
  // Reads every key (GET, pipelined): a verified value, NotFound (absent, evicted, timed out or
  // unreachable) or Corruption (counted, never served).
  std::vector<Result<Value>> Get(std::span<const ObjectKey> keys, uint64_t fingerprint) override;
  // Which keys are present (EXISTS, pipelined); a timeout or error reads as absent.
  std::vector<bool> Exists(std::span<const ObjectKey> keys, uint64_t fingerprint) override;

  ClusterTierStats stats() const;
  // cluster_puts, cluster_put_bytes, cluster_put_failures, cluster_gets, cluster_hits,
  // cluster_hit_bytes, cluster_misses, cluster_corrupt, cluster_timeouts, and the adapter's
  // cluster_redis_* counters.
  void VisitCounters(const CounterVisitor& visit) const override;
  RedisClusterStats redis_stats() const;

 private:
  ClusterTier(ClusterTierOptions options, std::vector<std::unique_ptr<RedisCluster>> redis);
  std::chrono::steady_clock::time_point Deadline() const;
  // Every command within the deadline, split over the adapters (contiguous parts, the first
  // part on the next adapter in turn).
  std::vector<Result<RedisReply>> Execute(std::span<const RedisCommand> commands);
  // One `verb key` command per object (GET, EXISTS), pipelined, within the deadline.
  std::vector<Result<RedisReply>> PerKey(std::string_view verb, std::span<const ObjectKey> keys,
                                         uint64_t fingerprint);

  const ClusterTierOptions options_;
  std::vector<std::unique_ptr<RedisCluster>> redis_;
  std::atomic<size_t> turn_{0};
  struct Counters;
  std::unique_ptr<Counters> counters_;
};

}  // namespace strata::cachestore::cluster
