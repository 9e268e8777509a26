// Cost-aware eviction: greedy-dual-size-frequency (GDSF, Cherkasova 1998) on the prefill time
// an object saves per byte it occupies. Each object has a priority
//   H = L + freq * value_per_byte
// and the victim is the object with the lowest H. `value_per_byte` is ObjectFacts'
// value_per_byte (prefill seconds a hit saves, per stored byte); when that is 0 or not a finite
// positive number the policy falls back to 1 / bytes, i.e. plain size-aware GDSF (cost 1 per
// object). L is the priority of the last evicted object: it only grows, so objects that stop
// being used age out however valuable they once were.
//
// The same idea drives two KV-cache designs: RAGCache (Jin et al., 2024) evicts by PGDSF,
// priority = clock + frequency * cost / size with the cost being the prefill time a cached
// prefix saves; Marconi (Pan et al., MLSys 2025) ranks hybrid-model (attention + SSM) prefix
// states by FLOPs saved per byte of memory combined with recency. Here the store computes the
// value per byte from the model's layout and its restore cost model; this policy only orders.
//
// Frequency: an object starts at 1 + facts.hits (its Get hits since its put, so an object that
// comes back to a tier brings its popularity with it); Touch adds one and recomputes H with the
// current L. Ties of H go to the deeper block first (a leaf of a prefix chain before the blocks
// it extends), then to the lower id, so two runs of the same operations decide the same.
//
// Interface mapping:
// - Victim() returns the lowest-H object without removing it.
// - Untrack(id) of the id Victim() last returned is the eviction: L becomes its H. Any other
//   Untrack (delete, replacement, move) just forgets the object and leaves L alone.
// - Skip(id): the object is set aside and offered again only when no other object is left
//   (a core that skips pinned objects sees every other object first). At the next eviction the
//   set-aside objects come back with H recomputed at the new L, frequency unchanged: a
//   reinsertion that does not count as a use, so a skipped object is neither lost nor promoted.
// - Track of an already tracked id is a facts update: new bytes, value and depth, frequency
//   raised to 1 + facts.hits if that is higher, H recomputed with the L it was last computed at
//   (an update is not a use).
// Cost: O(log n) per call (a std::set ordered by (H, depth, id)); the release of set-aside
// objects costs O(log n) each, once per Skip.
// Thread safety: none (the placement core serialises calls).
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>

#include "cachestore/placement/eviction_policy.h"

namespace strata::cachestore {

class CostPolicy final : public EvictionPolicy {
 public:
  std::string_view name() const override { return "cost"; }
  void Track(uint64_t id, const ObjectFacts& facts) override;
  void Touch(uint64_t id) override;
  void Untrack(uint64_t id) override;
  std::optional<uint64_t> Victim() override;
  void Skip(uint64_t id) override;
  size_t size() const override { return nodes_.size(); }

  // L: the priority of the last evicted object (0 before the first eviction).
  double age() const { return age_; }

  // What one use of an object of these facts is worth: value_per_byte, or 1 / bytes when it is
  // unknown (0, negative or not finite).
  static double UseValue(const ObjectFacts& facts);

 private:
  struct Key {  // the order: lowest H, then the deeper block, then the lower id
    double h;
    uint32_t depth;
    uint64_t id;
    bool operator<(const Key& o) const {
      if (h != o.h) return h < o.h;
      if (depth != o.depth) return depth > o.depth;  // deeper first
      return id < o.id;
    }
  };
  struct Node {
    double use_value = 0;  // per use, see UseValue
    double base = 0;       // the L that h was computed with
    double h = 0;
    uint64_t freq = 1;
    uint32_t depth = 0;
    bool deferred = false;
    std::set<Key>::iterator pos;                 // in order_, valid while not deferred
    std::list<uint64_t>::iterator deferred_pos;  // in deferred_, valid while deferred
  };

  // Recomputes h from `base` and queues the node; `node` is its old set node, reused when the
  // node was queued already (no allocation), empty when it comes back from the deferred list.
  void Queue(uint64_t id, Node& n, double base, std::set<Key>::node_type node = {});
  // Takes a queued node out of order_, keeping the set node for reuse.
  std::set<Key>::node_type Dequeue(Node& n) { return order_.extract(n.pos); }
  void ReleaseDeferred();

  std::unordered_map<uint64_t, Node> nodes_;
  std::set<Key> order_;           // queued objects, lowest H first
  std::list<uint64_t> deferred_;  // skipped since the last eviction; front: newest
  double age_ = 0;                // L
  std::optional<uint64_t> last_victim_;
};

}  // namespace strata::cachestore
