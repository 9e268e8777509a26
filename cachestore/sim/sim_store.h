// Simulation mode (DESIGN.md, "Store"): the placement core with its policies, driven by
// payloads that are sizes only, a virtual clock and tier bandwidths/latencies as parameters. No
// bytes are copied and nothing touches a disk; the host tier's extent allocator and the NVMe
// tier's segment log are the real ones, so admission, eviction, demotion, thinning and reclaim
// decide exactly as in the real store. `strata compare` replays traces through it.
// Thread safety: none; one caller at a time.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "cachestore/placement/decision.h"
#include "strata/layout.h"
#include "strata/store.h"

namespace strata::cachestore {

// A tier's speed in the model: an I/O of n bytes takes latency_s + n / bytes_per_s.
struct TierTiming {
  double read_bytes_per_s = 0;   // 0: free (the tier is not modelled)
  double write_bytes_per_s = 0;  // 0: free
  double latency_s = 0;
};

struct SimConfig {
  // Capacities, segment geometry and placement policies (store.codec is ignored: see below).
  // nvme.data_dir non-empty enables the NVMe tier; nothing is created there.
  StoreConfig store;
  // The NVMe tier's codec as modelled: a record of family f is stored at raw / nvme_ratio[f]
  // bytes (rounded up) under `nvme_codec`; kNone stores every record raw.
  CodecKind nvme_codec = CodecKind::kNone;
  std::array<double, kNumFamilies> nvme_ratio{1, 1, 1, 1, 1};
  std::array<TierTiming, kNumTiers> timing{};  // indexed by Tier
  // Layouts whose full SWA objects may be thinned into checkpoints on demotion
  // (store.thin_swa_on_demotion).
  std::vector<CacheLayout> layouts;
};

// What Get returned for one object.
struct SimObject {
  ObjectKey key;
  uint64_t size = 0;
  Tier served_from = Tier::kNone;  // kNone: a miss
  uint64_t pin = 0;                // pass to Release
  bool found() const { return served_from != Tier::kNone; }
};

class SimStore {
 public:
  // `log` (optional, not owned) receives every placement decision.
  static Result<std::unique_ptr<SimStore>> Open(const SimConfig& config,
                                                DecisionLog* log = nullptr);
  ~SimStore();

  // The virtual clock, in microseconds; callers advance it (a trace's timestamps).
  void SetTime(uint64_t micros);
  uint64_t time() const;

  // The Store API with sizes for payloads.
  Result<LookupResult> Lookup(NamespaceId ns, uint64_t fingerprint, std::span<const BlockKey> keys,
                              FamilyMask required);
  Status Put(const ObjectKey& key, uint64_t fingerprint, uint64_t bytes,
             const PutHints& hints = {});
  Result<std::vector<SimObject>> Get(NamespaceId ns, uint64_t fingerprint,
                                     std::span<const BlockKey> keys, FamilyMask families);
  void Release(std::span<const uint64_t> pins);
  Status Delete(NamespaceId ns);
  Status Flush();
  StoreStats Stats() const;         // O(1)
  StoreStats RecountStats() const;  // the same, counted object by object (tests)
  // The real store's counters (puts, get_hits_host, get_hits_nvme, demotions,
  // nvme_bytes_written, nvme_bytes_read, evictions_dropped, segments_reclaimed, ...).
  void VisitCounters(const CounterVisitor& visit) const;
  // Modelled seconds of tier I/O that the calls since the last TakeIoSeconds() caused, per
  // tier read from / written to (by TierTiming), then reset.
  std::array<double, kNumTiers> TakeIoSeconds();
  // Fault injection (tests): while on, every record write to NVMe fails as an I/O error.
  void InjectNvmeWriteErrors(bool on);

 private:
  struct Impl;
  explicit SimStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::cachestore
