// Eviction and admission policies: tiny interfaces (Navy's track / touch / evict; accept) that
// see what they are evicting. The placement core tracks every object a tier holds, touches it on
// every access, and asks for victims in order; it alone decides whether a victim can go now
// (pinned or under I/O: Skip) and what goes with it (the rest of the block, SWA first).
// Thread safety: none; the placement core serialises calls.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

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

// Least recently used; Skip counts as a use. An intrusive list over a vector indexed by the
// id's low 32 bits (the placement core's ids are pool slots there, with a generation above), so
// no operation allocates or hashes. Ids must be small in their low 32 bits.
class LruPolicy final : public EvictionPolicy {
 public:
  std::string_view name() const override { return "lru"; }
  void Track(uint64_t id, const ObjectFacts&) override {
    const uint32_t i = uint32_t(id);
    if (i >= nodes_.size()) nodes_.resize(std::max<size_t>(size_t(i) + 1, nodes_.size() * 2));
    Node& n = nodes_[i];
    if (n.in) {
      if (n.id == id) return Touch(id);
      Unlink(i);  // a stale id in the same slot: replaced
    }
    n.id = id;
    n.in = true;
    ++size_;
    PushFront(i);
  }
  void Touch(uint64_t id) override {
    const uint32_t i = uint32_t(id);
    if (!Has(i, id) || head_ == i) return;
    Unlink(i);
    nodes_[i].in = true;
    ++size_;
    PushFront(i);
  }
  void Untrack(uint64_t id) override {
    if (Has(uint32_t(id), id)) Unlink(uint32_t(id));
  }
  std::optional<uint64_t> Victim() override {
    if (tail_ == kNil) return std::nullopt;
    return nodes_[tail_].id;
  }
  void Skip(uint64_t id) override { Touch(id); }
  size_t size() const override { return size_; }

 private:
  static constexpr uint32_t kNil = 0xffffffffu;
  struct Node {
    uint64_t id = 0;
    uint32_t prev = kNil, next = kNil;  // towards the most / least recent
    bool in = false;
  };
  bool Has(uint32_t i, uint64_t id) const {
    return i < nodes_.size() && nodes_[i].in && nodes_[i].id == id;
  }
  void PushFront(uint32_t i) {
    Node& n = nodes_[i];
    n.prev = kNil;
    n.next = head_;
    if (head_ != kNil) nodes_[head_].prev = i;
    head_ = i;
    if (tail_ == kNil) tail_ = i;
  }
  void Unlink(uint32_t i) {
    Node& n = nodes_[i];
    if (n.prev != kNil)
      nodes_[n.prev].next = n.next;
    else
      head_ = n.next;
    if (n.next != kNil)
      nodes_[n.next].prev = n.prev;
    else
      tail_ = n.prev;
    n.in = false;
    --size_;
  }
  std::vector<Node> nodes_;
  uint32_t head_ = kNil, tail_ = kNil;  // most / least recently used
  size_t size_ = 0;
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
