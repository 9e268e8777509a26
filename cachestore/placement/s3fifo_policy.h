// S3-FIFO eviction (Yang et al., "FIFO queues are all you need for cache eviction", SOSP'23),
// byte-aware: a small FIFO (S) that holds about 10% of the tracked bytes, a main FIFO (M) with
// the rest, and a ghost FIFO (G) of ids recently evicted from S, holding about as many bytes as
// M. New objects enter S; most objects are used once and leave from S quickly (quick demotion),
// which makes the policy resistant to one-pass scans. An object used again while in S moves to M
// when it reaches S's tail; an object whose id is still in G when it comes back enters M
// directly. M is FIFO with reinsertion: an object used since it last passed M's tail goes round
// once more with its frequency (a 2-bit counter, capped at 3) lowered by one.
//
// Mapping onto the Track / Touch / Untrack / Victim / Skip interface:
// - Victim() is lazy: it performs the paper's moves (S tail to M, M reinsertions) until the
//   object at a tail would be evicted, and returns it without removing it; calling it again
//   before an Untrack or Skip returns the same id.
// - Untrack(id) of the id Victim() last returned is the eviction: if it came from S its id (and
//   bytes) enter G, as in the paper (objects evicted from M had their chance and do not). Any
//   other Untrack (delete, replacement, move, pin in a core that untracks pinned objects) just
//   forgets the object and leaves G alone, so only real evictions earn a ghost.
// - Skip(id): the object leaves S and M for a deferred list and is offered again only when S and
//   M hold nothing else (so a core that skips pinned objects sees every other object before a
//   skipped one comes back). At the next eviction every deferred object is reinserted at the
//   head of the queue it came from, frequency unchanged: a reinsertion, not a use.
// - Track of an already tracked id updates its bytes; it is not a use (Touch is).
// S's share follows the tracked bytes; G's budget follows the peak tracked bytes and count (the
// policy is not told the tier's capacity; it is full when victims are asked for).
// Thread safety: none (the placement core serialises calls).
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "cachestore/placement/eviction_policy.h"

namespace strata::cachestore {

class S3FifoPolicy final : public EvictionPolicy {
 public:
  // `small_share`: S's share of the tracked bytes; `ghost_share`: G's byte budget as a share of
  // the peak tracked bytes. The paper's values are the defaults.
  explicit S3FifoPolicy(double small_share = 0.1, double ghost_share = 0.9);

  std::string_view name() const override { return "s3fifo"; }
  void Track(uint64_t id, const ObjectFacts& facts) override;
  void Touch(uint64_t id) override;
  void Untrack(uint64_t id) override;
  std::optional<uint64_t> Victim() override;
  void Skip(uint64_t id) override;
  size_t size() const override { return nodes_.size(); }

  static constexpr uint8_t kMaxFreq = 3;

 private:
  enum class Queue : uint8_t { kSmall, kMain };
  struct Node {
    uint64_t bytes = 0;
    uint8_t freq = 0;
    Queue queue = Queue::kSmall;  // where it is, or where it returns to when deferred
    bool deferred = false;
    std::list<uint64_t>::iterator pos;  // in small_, main_ or deferred_
  };
  struct Ghost {
    uint64_t id;
    uint64_t bytes;
  };

  std::list<uint64_t>& ListOf(const Node& n);
  uint64_t& BytesOf(Queue q) { return q == Queue::kSmall ? small_bytes_ : main_bytes_; }
  // Takes the node out of whichever list holds it, keeping the byte sums right.
  void Unlink(Node& n);
  // Puts a new node at the head of its queue (not deferred).
  void LinkHead(uint64_t id, Node& n);
  // Moves a linked node to the head of `queue`, or of the deferred list (remembering `queue`).
  void MoveHead(Node& n, Queue queue, bool deferred);
  void AddGhost(uint64_t id, uint64_t bytes);
  void ReleaseDeferred();

  const double small_share_;
  const double ghost_share_;
  std::unordered_map<uint64_t, Node> nodes_;
  std::list<uint64_t> small_, main_, deferred_;  // front: newest; back: next to look at
  uint64_t small_bytes_ = 0, main_bytes_ = 0, tracked_bytes_ = 0;
  uint64_t peak_bytes_ = 0, peak_count_ = 0;
  std::list<Ghost> ghost_;  // front: newest
  std::unordered_map<uint64_t, std::list<Ghost>::iterator> ghost_pos_;
  uint64_t ghost_bytes_ = 0;
  std::optional<uint64_t> last_victim_;
};

}  // namespace strata::cachestore
