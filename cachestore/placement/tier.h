// The tiers below the host tier, as the placement core sees them (DESIGN.md, "Store"): a tier
// stores objects as self-describing records, written from and read into host-tier extents. Where
// a record goes (space, segments, reclaim) is the core's decision, made on the tier's SegmentLog;
// a tier moves bytes only. The NVMe tier (nvme/nvme_tier.h) does real I/O on a Device; the
// simulator's tier (sim/) only counts and times. A cluster tier plugs in here too.
//
// Every call is synchronous from the caller's view: it returns when each item of the batch has
// completed, with a status per item (a batch's items complete in any order; the tier overlaps
// their I/O). The core calls these without holding its lock.
// Thread safety: calls may come from several threads at once, on disjoint items.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "strata/layout.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::cachestore {

// One record to write or read.
struct RecordIo {
  ObjectKey key;
  uint64_t fingerprint = 0;
  uint64_t sequence = 0;
  uint64_t raw_size = 0;     // the object's payload bytes
  uint64_t host_offset = 0;  // its host-tier extent: [header room][payload]
  // Write only: the host extent holds this block's full `swa` object; the tier writes the
  // block-end checkpoint derived from it (SWA thinning) under `key` (family checkpoint).
  const CacheLayout* thin_from_swa = nullptr;
  // Set by Encode (writes), or by the index (reads):
  uint64_t stored_size = 0;  // payload bytes in the record
  CodecKind codec = CodecKind::kNone;
  uint64_t checksum = 0;  // of the stored payload; set by Write
  uint64_t offset = 0;    // record address in the tier (set by the core before Write / Read)
  Status status;
  std::shared_ptr<void> scratch;  // the tier's staging memory between Encode and Write
};

// A record copied byte for byte from one address to another (reclaim).
struct RecordMove {
  uint64_t from = 0, to = 0, span = 0;
  bool ok = false;
};

class LowerTier {
 public:
  virtual ~LowerTier() = default;
  virtual Tier tier() const = 0;
  // Writes: sets stored_size and codec (compressing or thinning into scratch as configured).
  virtual void Encode(std::span<RecordIo> ios) = 0;
  // Writes each record (header + stored payload) at its offset; sets checksum and status.
  virtual Status Write(std::span<RecordIo> ios) = 0;
  // Reads each record into its host extent, verifying header and checksum (Corruption when
  // they do not match) and decoding; sets status.
  virtual Status Read(std::span<RecordIo> ios) = 0;
  // Copies records (reclaim), then makes the copies durable; sets each move's `ok`.
  virtual void Copy(std::span<RecordMove> moves) = 0;
  virtual Status Sync() = 0;
};

}  // namespace strata::cachestore

namespace strata::cachestore {

// A tier shared across nodes (the cluster tier, cluster/cluster_tier.h): addressed by key, not by
// offset, and a cache: an object stored there may vanish at any time (its own eviction, a failed
// shard), and a slow tier answers "absent" at its deadline rather than stall the caller. Which
// objects go there is the core's share policy (placement/cluster_policy.h); TieredStore uploads
// them behind the request path and reads them back on a local miss.
// Thread safety: calls may come from several threads at once.
class SharedTier {
 public:
  struct PutItem {
    ObjectKey key;
    uint64_t fingerprint = 0;
    std::span<const std::byte> payload;  // valid until Put returns
  };
  // A verified payload: payload() views `storage`.
  struct Value {
    std::string storage;
    size_t offset = 0, size = 0;
    std::span<const std::byte> payload() const {
      return {reinterpret_cast<const std::byte*>(storage.data()) + offset, size};
    }
  };
  virtual ~SharedTier() = default;
  // One status per item.
  virtual std::vector<Status> Put(std::span<const PutItem> items) = 0;
  // Per key: the verified payload, NotFound (absent, evicted, timed out, unreachable) or
  // Corruption (the stored value failed verification: counted by the tier, never served).
  virtual std::vector<Result<Value>> Get(std::span<const ObjectKey> keys, uint64_t fingerprint) = 0;
  // Per key: whether the tier holds it (no payload moves; unverified until a Get). A timeout
  // or an error reads as absent.
  virtual std::vector<bool> Exists(std::span<const ObjectKey> keys, uint64_t fingerprint) = 0;
  // The tier's counters, named as VisitCounters reports them (cluster_puts, ...).
  virtual void VisitCounters(const CounterVisitor& visit) const = 0;
};

}  // namespace strata::cachestore
