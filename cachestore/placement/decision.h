// The placement core's decision log: every admission, eviction, demotion, thinning, promotion
// and reclaim decision, with its tier and object. The real store and the simulator run the same
// core, so the same operations give the same log (tests compare them entry by entry).
// Thread safety: a DecisionLog is filled under the store's lock; read it when the store is idle.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "strata/store.h"

namespace strata::cachestore {

enum class DecisionKind : uint8_t {
  kAdmit = 0,         // a Put placed the object in `tier`
  kReject = 1,        // `tier`'s admission policy refused the object
  kEvict = 2,         // dropped from `tier` (its last copy: the object is gone)
  kDropCopy = 3,      // dropped from `tier`; a copy stays in `to`
  kDemote = 4,        // written from `tier` down to `to`
  kThin = 5,          // demoted as a checkpoint of its block (full SWA thinned), `bytes` after
  kPromote = 6,       // read from `tier` up into `to`
  kReclaim = 7,       // NVMe segment `segment` reclaimed
  kRelocate = 8,      // reclaim moved the record to another segment
  kReclaimDrop = 9,   // reclaim dropped the record
  kWriteFailed = 10,  // a write to `to` failed; the object stays where it was or is dropped
  kCorrupt = 11,      // a read from `tier` found the record corrupt: dropped
  kWriteBack = 12,    // a dirty copy in `tier` written to `to` by Flush (it stays in `tier`)
};
std::string_view DecisionKindName(DecisionKind k);

struct Decision {
  DecisionKind kind = DecisionKind::kAdmit;
  Tier tier = Tier::kNone;
  Tier to = Tier::kNone;
  ObjectKey key;
  uint64_t bytes = 0;
  uint64_t segment = 0;
  bool operator==(const Decision&) const = default;
  std::string ToString() const;
};

struct DecisionLog {
  std::vector<Decision> entries;
  void Add(const Decision& d) { entries.push_back(d); }
};

}  // namespace strata::cachestore
