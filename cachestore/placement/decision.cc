#include "cachestore/placement/decision.h"

#include <fmt/format.h>

namespace strata::cachestore {

std::string_view DecisionKindName(DecisionKind k) {
  switch (k) {
    case DecisionKind::kAdmit:
      return "admit";
    case DecisionKind::kReject:
      return "reject";
    case DecisionKind::kEvict:
      return "evict";
    case DecisionKind::kDropCopy:
      return "drop-copy";
    case DecisionKind::kDemote:
      return "demote";
    case DecisionKind::kThin:
      return "thin";
    case DecisionKind::kPromote:
      return "promote";
    case DecisionKind::kReclaim:
      return "reclaim";
    case DecisionKind::kRelocate:
      return "relocate";
    case DecisionKind::kReclaimDrop:
      return "reclaim-drop";
    case DecisionKind::kWriteFailed:
      return "write-failed";
    case DecisionKind::kCorrupt:
      return "corrupt";
    case DecisionKind::kWriteBack:
      return "write-back";
  }
  return "?";
}

std::string Decision::ToString() const {
  if (kind == DecisionKind::kReclaim)
    return fmt::format("{} {} segment {}", DecisionKindName(kind), TierName(tier), segment);
  return fmt::format("{} {}->{} ns{} {}/{} {} B", DecisionKindName(kind), TierName(tier),
                     TierName(to), key.ns, key.block.ToHex(), FamilyName(key.family), bytes);
}

}  // namespace strata::cachestore
