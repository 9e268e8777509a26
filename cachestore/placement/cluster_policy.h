// What the placement core shares with the tier shared across nodes (the cluster tier, on Redis
// Cluster): a policy decision, the same in the real store and in simulation (`strata compare`).
//
// The default shares what is cheap to keep and likely to be reused on another node: the
// compressed families (csa, csa_index, hca) of blocks used at least `min_uses` times (the put
// counts as one use, every Get that serves the object as one more), and checkpoints (written
// where the SWA policy makes them, which includes request ends). Full SWA objects are 7x the
// compressed state of their block (V4-Pro) and go to the cluster only by configuration.
// Uploads are written behind, off the request path; Flush waits for those it has scheduled.
// The cluster is a cache (its own maxmemory LRU evicts): a shared object may vanish at any time.
// Thread safety: plain values and a pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "strata/family.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::cachestore {

struct ClusterSharePolicy {
  bool enabled = false;      // no cluster tier configured: nothing is shared
  uint32_t min_uses = 2;     // compressed families: shared once used this many times
  bool checkpoints = true;   // checkpoint family: shared at its first put
  bool full_swa = false;     // swa family: shared (at min_uses) only when set
  Status Validate() const {  // min_uses >= 1
    return min_uses >= 1 ? Status::Ok()
                         : Status::InvalidArgument("cluster share policy: min_uses must be >= 1");
  }
};

// Whether an object of `family`, now used `uses` times (1 at its put), is to be uploaded to the
// cluster tier at this use. True at most once per object for a given policy (at the first use
// that qualifies), so callers schedule an upload exactly when this returns true.
inline bool ShareAtUse(const ClusterSharePolicy& policy, Family family, uint32_t uses) {
  if (!policy.enabled) return false;
  switch (family) {
    case Family::kCheckpoint:
      return policy.checkpoints && uses == 1;
    case Family::kSwa:
      return policy.full_swa && uses == policy.min_uses;
    case Family::kCsa:
    case Family::kCsaIndex:
    case Family::kHca:
      return uses == policy.min_uses;
  }
  return false;
}

// A later checkpoint in the cluster for blocks that hit on the node (TieredStore::Lookup, and
// strata compare's simulation alike): given the presence of the hit blocks, the first block
// to ask the cluster about, among the last kCheckpointSearchBlocks after the node's own latest
// checkpoint; hit.size() when there is nothing to gain (the last hit block has full SWA or a
// checkpoint on the node).
inline constexpr size_t kCheckpointSearchBlocks = 64;
inline size_t LaterCheckpointSearchFrom(std::span<const BlockPresence> hit) {
  const size_t n = hit.size();
  if (n == 0) return 0;
  const FamilyMask last = hit[n - 1].families;
  if (last.Has(Family::kSwa) || last.Has(Family::kCheckpoint)) return n;
  const size_t from = n > kCheckpointSearchBlocks ? n - kCheckpointSearchBlocks : 0;
  for (size_t i = n; i-- > from;)
    if (hit[i].families.Has(Family::kCheckpoint)) return i + 1;
  return from;
}

}  // namespace strata::cachestore
