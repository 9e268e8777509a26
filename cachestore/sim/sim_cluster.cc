#include "cachestore/sim/sim_cluster.h"

namespace strata::cachestore {

std::optional<uint64_t> SimCluster::Get(const SimClusterKey& key) {
  ++gets_;
  auto it = map_.find(key);
  if (it == map_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second);
  ++get_hits_;
  get_bytes_ += it->second->bytes;
  return it->second->bytes;
}

void SimCluster::Erase(std::list<Entry>::iterator it) {
  used_ -= it->bytes;
  --family_objects_[static_cast<size_t>(it->key.family)];
  map_.erase(it->key);
  lru_.erase(it);
}

bool SimCluster::Put(const SimClusterKey& key, uint64_t bytes) {
  if (bytes > capacity_) {
    ++put_refused_;
    return false;
  }
  ++puts_;
  put_bytes_ += bytes;
  // A replaced value's bytes are freed before the new one is counted, as SET does.
  if (auto it = map_.find(key); it != map_.end()) Erase(it->second);
  while (used_ + bytes > capacity_) {
    ++evictions_;
    evicted_bytes_ += lru_.back().bytes;
    Erase(std::prev(lru_.end()));
  }
  lru_.push_front(Entry{key, bytes});
  map_.emplace(key, lru_.begin());
  used_ += bytes;
  ++family_objects_[static_cast<size_t>(key.family)];
  return true;
}

void SimCluster::VisitCounters(const CounterVisitor& visit) const {
  visit("gets", gets_);
  visit("get_hits", get_hits_);
  visit("get_bytes", get_bytes_);
  visit("puts", puts_);
  visit("put_bytes", put_bytes_);
  visit("put_refused", put_refused_);
  visit("evictions", evictions_);
  visit("evicted_bytes", evicted_bytes_);
}

}  // namespace strata::cachestore
