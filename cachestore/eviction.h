// Eviction policy: a tiny interface (Navy's track / touch / evict). The store tracks objects
// that may be evicted (resident, unpinned, not under I/O), touches them on access and asks for
// victims in order. LRU to start; a cost-aware policy plugs in here.
// Thread safety: none; the store serialises calls.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <unordered_map>

namespace strata::cachestore {

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;
  virtual void Track(uint64_t id) = 0;                 // becomes evictable (most recently used)
  virtual void Touch(uint64_t id) = 0;                 // accessed again
  virtual void Untrack(uint64_t id) = 0;               // no longer evictable
  virtual std::optional<uint64_t> Victim() const = 0;  // next to evict, still tracked
  virtual size_t size() const = 0;
};

class LruPolicy final : public EvictionPolicy {
 public:
  void Track(uint64_t id) override {
    if (pos_.count(id)) return Touch(id);
    order_.push_front(id);
    pos_[id] = order_.begin();
  }
  void Touch(uint64_t id) override {
    auto it = pos_.find(id);
    if (it != pos_.end()) order_.splice(order_.begin(), order_, it->second);
  }
  void Untrack(uint64_t id) override {
    auto it = pos_.find(id);
    if (it == pos_.end()) return;
    order_.erase(it->second);
    pos_.erase(it);
  }
  std::optional<uint64_t> Victim() const override {
    if (order_.empty()) return std::nullopt;
    return order_.back();
  }
  size_t size() const override { return pos_.size(); }

 private:
  std::list<uint64_t> order_;  // front: most recent
  std::unordered_map<uint64_t, std::list<uint64_t>::iterator> pos_;
};

inline std::unique_ptr<EvictionPolicy> NewLruPolicy() { return std::make_unique<LruPolicy>(); }

}  // namespace strata::cachestore
