// The cluster tier in simulation (DESIGN.md, "Store": the tier shared across nodes): what every
// node of a `strata compare` multi-node replay sees of Redis Cluster. A byte-capacity cache of
// sizes only, keyed by (namespace, fingerprint, block key, family), evicting as Redis does with
// `maxmemory-policy allkeys-lru`: a SET that would pass the capacity first evicts the least
// recently used keys until it fits.
//
// Two simplifications against a real cluster, both toward a larger effective capacity: recency
// is exact (Redis samples `maxmemory-samples` keys and evicts the oldest of those), and only
// payload bytes count against the capacity (Redis's per-key overhead and strata's record header,
// about 100 bytes against objects of tens of kilobytes to megabytes, do not). Shards, replicas
// and failover are not modelled: the tier is one pool of `capacity` bytes.
//
// Recency follows Redis's commands: Contains is EXISTS (does not touch the key), Get is GET
// (touches it), Put is SET (inserts or replaces; either makes the key the most recent).
//
// Thread safety: none; one caller at a time.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>

#include "strata/family.h"
#include "strata/keys.h"
#include "strata/store.h"

namespace strata::cachestore {

struct SimClusterKey {
  NamespaceId ns = 0;
  uint64_t fingerprint = 0;
  BlockKey block;
  Family family = Family::kCsa;
  auto operator<=>(const SimClusterKey&) const = default;
};

struct SimClusterKeyHash {
  size_t operator()(const SimClusterKey& k) const noexcept {
    return BlockKeyHash{}(k.block) ^ (k.ns * 0xff51afd7ed558ccdull) ^
           (k.fingerprint * 0xc4ceb9fe1a85ec53ull) ^ static_cast<size_t>(k.family);
  }
};

class SimCluster {
 public:
  explicit SimCluster(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}

  // EXISTS: whether the key is held; recency unchanged.
  bool Contains(const SimClusterKey& key) const { return map_.contains(key); }
  // GET: the object's size, made the most recent; nullopt on a miss.
  std::optional<uint64_t> Get(const SimClusterKey& key);
  // SET: inserts or replaces the object, evicting the least recently used keys to make room.
  // False (nothing stored, nothing evicted) for an object larger than the whole capacity, which
  // Redis would answer with an OOM error.
  bool Put(const SimClusterKey& key, uint64_t bytes);

  uint64_t capacity() const { return capacity_; }
  uint64_t used() const { return used_; }
  uint64_t objects() const { return map_.size(); }
  uint64_t objects(Family f) const { return family_objects_[static_cast<size_t>(f)]; }
  // gets, get_hits, get_bytes, puts, put_bytes, put_refused, evictions, evicted_bytes.
  void VisitCounters(const CounterVisitor& visit) const;

 private:
  struct Entry {
    SimClusterKey key;
    uint64_t bytes = 0;
  };
  void Erase(std::list<Entry>::iterator it);

  uint64_t capacity_;
  uint64_t used_ = 0;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<SimClusterKey, std::list<Entry>::iterator, SimClusterKeyHash> map_;
  std::array<uint64_t, kNumFamilies> family_objects_{};
  uint64_t gets_ = 0, get_hits_ = 0, get_bytes_ = 0, puts_ = 0, put_bytes_ = 0, put_refused_ = 0,
           evictions_ = 0, evicted_bytes_ = 0;
};

}  // namespace strata::cachestore
