// S3-FIFO: see s3fifo_policy.h for the algorithm and the interface mapping.
#include "cachestore/placement/s3fifo_policy.h"

#include <algorithm>

namespace strata::cachestore {

S3FifoPolicy::S3FifoPolicy(double small_share, double ghost_share)
    : small_share_(std::clamp(small_share, 0.0, 1.0)), ghost_share_(std::max(ghost_share, 0.0)) {}

std::list<uint64_t>& S3FifoPolicy::ListOf(const Node& n) {
  if (n.deferred) return deferred_;
  return n.queue == Queue::kSmall ? small_ : main_;
}

void S3FifoPolicy::Unlink(Node& n) {
  ListOf(n).erase(n.pos);
  if (!n.deferred) BytesOf(n.queue) -= n.bytes;
  n.deferred = false;
}

void S3FifoPolicy::LinkHead(uint64_t id, Node& n) {
  n.deferred = false;
  auto& list = n.queue == Queue::kSmall ? small_ : main_;
  list.push_front(id);
  n.pos = list.begin();
  BytesOf(n.queue) += n.bytes;
}

void S3FifoPolicy::MoveHead(Node& n, Queue queue, bool deferred) {
  auto& from = ListOf(n);
  if (!n.deferred) BytesOf(n.queue) -= n.bytes;
  n.queue = queue;
  n.deferred = deferred;
  auto& to = ListOf(n);
  to.splice(to.begin(), from, n.pos);  // no allocation; n.pos stays valid
  if (!n.deferred) BytesOf(n.queue) += n.bytes;
}

void S3FifoPolicy::Track(uint64_t id, const ObjectFacts& facts) {
  auto it = nodes_.find(id);
  if (it != nodes_.end()) {  // facts update: new size, same place, same frequency
    Node& n = it->second;
    if (!n.deferred) {
      auto& sum = BytesOf(n.queue);
      sum = sum - n.bytes + facts.bytes;
    }
    tracked_bytes_ = tracked_bytes_ - n.bytes + facts.bytes;
    n.bytes = facts.bytes;
    peak_bytes_ = std::max(peak_bytes_, tracked_bytes_);
    return;
  }
  Node n;
  n.bytes = facts.bytes;
  auto g = ghost_pos_.find(id);
  if (g != ghost_pos_.end()) {  // evicted from S recently and back already: it belongs in M
    ghost_bytes_ -= g->second->bytes;
    ghost_.erase(g->second);
    ghost_pos_.erase(g);
    n.queue = Queue::kMain;
  }
  LinkHead(id, nodes_.emplace(id, n).first->second);
  tracked_bytes_ += facts.bytes;
  peak_bytes_ = std::max(peak_bytes_, tracked_bytes_);
  peak_count_ = std::max<uint64_t>(peak_count_, nodes_.size());
}

void S3FifoPolicy::Touch(uint64_t id) {
  auto it = nodes_.find(id);
  if (it != nodes_.end() && it->second.freq < kMaxFreq) ++it->second.freq;
}

void S3FifoPolicy::Untrack(uint64_t id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;
  Node& n = it->second;
  Unlink(n);
  tracked_bytes_ -= n.bytes;
  const bool evicted = last_victim_ == id;
  const bool from_small = n.queue == Queue::kSmall;
  const uint64_t bytes = n.bytes;
  nodes_.erase(it);
  if (!evicted) return;
  last_victim_.reset();
  if (from_small) AddGhost(id, bytes);
  ReleaseDeferred();
}

std::optional<uint64_t> S3FifoPolicy::Victim() {
  const auto small_target = uint64_t(double(tracked_bytes_) * small_share_);
  for (;;) {
    if (!small_.empty() && (main_.empty() || small_bytes_ >= small_target)) {
      const uint64_t id = small_.back();
      Node& n = nodes_.at(id);
      if (n.freq == 0) return last_victim_ = id;
      // Used while in S: on to M, its access bits cleared (libCacheSim's S3FIFO does the same).
      n.freq = 0;
      MoveHead(n, Queue::kMain, false);
      continue;
    }
    if (!main_.empty()) {
      const uint64_t id = main_.back();
      Node& n = nodes_.at(id);
      if (n.freq == 0) return last_victim_ = id;
      --n.freq;  // once more round M
      main_.splice(main_.begin(), main_, n.pos);
      continue;
    }
    // Everything left was skipped since the last eviction: offer those, oldest skip first.
    if (!deferred_.empty()) return last_victim_ = deferred_.back();
    return std::nullopt;
  }
}

void S3FifoPolicy::Skip(uint64_t id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;
  Node& n = it->second;
  if (last_victim_ == id) last_victim_.reset();
  MoveHead(n, n.queue, true);
}

void S3FifoPolicy::AddGhost(uint64_t id, uint64_t bytes) {
  ghost_.push_front(Ghost{id, bytes});
  ghost_pos_[id] = ghost_.begin();
  ghost_bytes_ += bytes;
  const auto budget = uint64_t(double(peak_bytes_) * ghost_share_);
  const auto max_count = uint64_t(double(peak_count_) * ghost_share_);
  // The newest ghost always stays, so even a tiny tier remembers its last eviction.
  while (ghost_.size() > 1 && (ghost_bytes_ > budget || ghost_.size() > max_count)) {
    ghost_bytes_ -= ghost_.back().bytes;
    ghost_pos_.erase(ghost_.back().id);
    ghost_.pop_back();
  }
}

void S3FifoPolicy::ReleaseDeferred() {
  // Oldest skip first, so the newest skip ends up nearest the head.
  while (!deferred_.empty()) {
    Node& n = nodes_.at(deferred_.back());
    MoveHead(n, n.queue, false);
  }
}

}  // namespace strata::cachestore
