// Eviction and admission policies: tiny interfaces (Navy's track / touch / evict; accept) that
// see what they are evicting. The placement core tracks every object a tier holds, touches it on
// every access, and asks for victims in order; it alone decides whether a victim can go now
// (pinned or under I/O: Skip) and what goes with it (the rest of the block, SWA first).
// Thread safety: none; the placement core serialises calls.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "strata/family.h"
#include "strata/status.h"

namespace strata::cachestore {

// What a policy may know of an object.
struct ObjectFacts {
  uint64_t bytes = 0;  // bytes the object takes in the tier
  Family family = Family::kCsa;
  uint32_t depth = 0;         // its block's index in its chain (0: the first block)
  uint32_t hits = 0;          // Get hits since the object was put
  double value_per_byte = 0;  // prefill seconds a hit saves, per stored byte (0: unknown)
};

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;
  virtual std::string_view name() const = 0;
  // The tier now holds `id` (or its facts changed): it is a candidate from now on.
  virtual void Track(uint64_t id, const ObjectFacts& facts) = 0;
  // `id` was accessed (Lookup hit, Get). Unknown ids are ignored.
  virtual void Touch(uint64_t id) = 0;
  // The tier no longer holds `id` (evicted by the core, replaced, deleted, moved). Unknown ids
  // are ignored. The Untrack of the id Victim() last returned (not Skipped since) is taken as
  // its eviction: S3-FIFO remembers it in its ghost queue, the cost policy ages to its priority;
  // any other Untrack just forgets the object. An Untrack + Track forgets an object's history
  // (frequency, queue), so keep a pinned object tracked and Skip it rather than untrack it.
  virtual void Untrack(uint64_t id) = 0;
  // The next object to evict, still tracked; nullopt when none is tracked. May reorder the
  // policy's own queues (S3-FIFO moves objects between its queues here).
  virtual std::optional<uint64_t> Victim() = 0;
  // The core declined the last victim for now (pinned, under I/O, or an inner block of a
  // chain): it stays tracked and is offered again only after the others.
  virtual void Skip(uint64_t id) = 0;
  virtual size_t size() const = 0;
};

// Least recently used; Skip counts as a use.
class LruPolicy final : public EvictionPolicy {
 public:
  std::string_view name() const override { return "lru"; }
  void Track(uint64_t id, const ObjectFacts&) override {
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
  std::optional<uint64_t> Victim() override {
    if (order_.empty()) return std::nullopt;
    return order_.back();
  }
  void Skip(uint64_t id) override { Touch(id); }
  size_t size() const override { return pos_.size(); }

 private:
  std::list<uint64_t> order_;  // front: most recent
  std::unordered_map<uint64_t, std::list<uint64_t>::iterator> pos_;
};

// Whether a tier takes an object at all (Navy's `accept`). Asked when the core would place the
// object in the tier: at Put for the host tier (facts.hits: how often it was put and refused
// before, so "second-use" admits an object the second time it is computed), at demotion for
// NVMe (facts.hits: Get hits since the put; Flush bypasses admission: it is an explicit request
// for durability).
class AdmissionPolicy {
 public:
  virtual ~AdmissionPolicy() = default;
  virtual std::string_view name() const = 0;
  virtual bool Admit(const ObjectFacts& facts) = 0;
};

// Policies by name, as configs spell them. Eviction: "lru", "s3fifo", "cost". Admission: "all",
// "second-use" (only objects hit at least once since their put). Unknown names: InvalidArgument
// naming the choices.
Result<std::unique_ptr<EvictionPolicy>> MakeEvictionPolicy(std::string_view name);
Result<std::unique_ptr<AdmissionPolicy>> MakeAdmissionPolicy(std::string_view name);

}  // namespace strata::cachestore
