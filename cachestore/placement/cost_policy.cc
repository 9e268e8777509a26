// Cost-aware GDSF: see cost_policy.h.
#include "cachestore/placement/cost_policy.h"

#include <algorithm>
#include <cmath>

namespace strata::cachestore {

double CostPolicy::UseValue(const ObjectFacts& facts) {
  if (std::isfinite(facts.value_per_byte) && facts.value_per_byte > 0) return facts.value_per_byte;
  return 1.0 / double(std::max<uint64_t>(facts.bytes, 1));
}

void CostPolicy::Queue(uint64_t id, Node& n, double base, std::set<Key>::node_type node) {
  n.deferred = false;
  n.base = base;
  n.h = base + double(n.freq) * n.use_value;
  const Key key{n.h, n.depth, id};
  if (node.empty()) {
    n.pos = order_.insert(key).first;
  } else {
    node.value() = key;
    n.pos = order_.insert(std::move(node)).position;
  }
}

void CostPolicy::Track(uint64_t id, const ObjectFacts& facts) {
  const uint64_t freq_from_hits = uint64_t(facts.hits) + 1;
  auto it = nodes_.find(id);
  if (it == nodes_.end()) {
    Node& n = nodes_[id];
    n.use_value = UseValue(facts);
    n.freq = freq_from_hits;
    n.depth = facts.depth;
    Queue(id, n, age_);
    return;
  }
  Node& n = it->second;
  n.use_value = UseValue(facts);
  n.freq = std::max(n.freq, freq_from_hits);
  n.depth = facts.depth;
  if (!n.deferred) Queue(id, n, n.base, Dequeue(n));  // a deferred one: when released
}

void CostPolicy::Touch(uint64_t id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;
  Node& n = it->second;
  ++n.freq;
  if (n.deferred) return;  // recomputed with the L of its release
  Queue(id, n, age_, Dequeue(n));
}

void CostPolicy::Untrack(uint64_t id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;
  Node& n = it->second;
  if (n.deferred)
    deferred_.erase(n.deferred_pos);
  else
    order_.erase(n.pos);
  const double h = n.h;
  nodes_.erase(it);
  if (last_victim_ != id) return;
  last_victim_.reset();
  age_ = std::max(age_, h);  // L never goes back
  ReleaseDeferred();
}

std::optional<uint64_t> CostPolicy::Victim() {
  if (!order_.empty()) return last_victim_ = order_.begin()->id;
  // Everything left was skipped since the last eviction: offer those, oldest skip first.
  if (!deferred_.empty()) return last_victim_ = deferred_.back();
  return std::nullopt;
}

void CostPolicy::Skip(uint64_t id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;
  Node& n = it->second;
  if (last_victim_ == id) last_victim_.reset();
  if (n.deferred) {
    deferred_.splice(deferred_.begin(), deferred_, n.deferred_pos);
    return;
  }
  order_.erase(n.pos);
  n.deferred = true;
  deferred_.push_front(id);
  n.deferred_pos = deferred_.begin();
}

void CostPolicy::ReleaseDeferred() {
  while (!deferred_.empty()) {
    const uint64_t id = deferred_.back();
    deferred_.pop_back();
    Queue(id, nodes_.at(id), age_);
  }
}

}  // namespace strata::cachestore
