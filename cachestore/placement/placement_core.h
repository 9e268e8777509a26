// The placement core (DESIGN.md, "Store"): owns what lives where (every object's copies in the
// host tier and the tier below it, pins, dirtiness) and decides admission, eviction, demotion,
// promotion, SWA thinning and NVMe reclaim. It does no I/O and reads no clock itself: bytes move
// through the host tier's memory (absent in simulation) and a LowerTier; time comes from a Clock.
// The in-process store (store/tiered_store.h) and the simulator (sim/sim_store.h) run this same
// class; every decision goes to an optional DecisionLog, so the two can be compared.
//
// Object lifecycle: Put places the object in the host tier (dirty). Flush or eviction writes
// dirty objects to the lower tier as records (write-back) and indexes them. Eviction drops clean
// host copies, demotes dirty ones (or thins a block's full SWA into its checkpoint), and with no
// lower tier, or when its admission policy refuses, drops them. Get pins resident objects and
// promotes lower-tier-only objects into the host tier first. A record that fails verification is
// a miss, counted and removed.
//
// Eviction is per block and family-aware: an SWA or checkpoint object goes alone; when a
// block's compressed state goes, the rest of the block's last copies in DRAM go with it (they
// are useless without it), and blocks that another cached block extends are passed over while a
// leaf can go instead (a chain never gets a hole in its middle that way).
//
// Concurrency: one mutex guards all metadata. Copies and I/O run with it released; an object
// under I/O is flagged (loading / writing) so that it is neither evicted nor freed, and a
// replaced or deleted object that is still pinned or under I/O is kept ("doomed") until the
// last user lets go. Thread safety: every public method is safe for concurrent use.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cachestore/host/extent_allocator.h"
#include "cachestore/nvme/segment_log.h"
#include "cachestore/placement/clock.h"
#include "cachestore/placement/cluster_policy.h"
#include "cachestore/placement/decision.h"
#include "cachestore/placement/eviction_policy.h"
#include "cachestore/placement/record_index.h"
#include "cachestore/placement/tier.h"
#include "strata/layout.h"
#include "strata/store.h"

namespace strata::cachestore {

struct PlacementOptions {
  StoreConfig config;               // capacities, geometry, policies
  ExtentAllocator* host = nullptr;  // the host tier's space (required)
  std::byte* host_base = nullptr;   // the host tier's memory; null: sizes only (simulation)
  LowerTier* lower = nullptr;       // null: host only
  RecordIndex* index = nullptr;     // required with a lower tier
  const Clock* clock = nullptr;     // required
  DecisionLog* log = nullptr;       // optional
  // Layouts known for thinning, by fingerprint (objects of other fingerprints are not thinned).
  std::vector<CacheLayout> layouts;
  // Every host copy carries an XXH3-64 of its payload, verified before Get serves it and before
  // it is written to the lower tier (TieredStoreOptions::host_checksums). Needs host_base.
  bool host_checksums = false;
  // What goes to the tier shared across nodes (TieredStore's uploader takes it with
  // TakeShares). Needs host_base; disabled by default.
  ClusterSharePolicy share;
  // Segments that take no records (on a drive missing at open: SegmentLog::Retire).
  std::vector<uint32_t> retired_segments;
};

// The core's counters (names as VisitCounters reports them).
struct PlacementCounters {
  std::atomic<uint64_t> puts{0}, put_bytes{0}, puts_rejected{0}, gets{0}, get_hits_host{0},
      get_hits_nvme{0}, get_misses{0}, lookups{0}, lookup_blocks_hit{0}, evictions_dropped{0},
      demotions{0}, demote_errors{0}, demotions_refused{0}, swa_thinned{0}, corrupt_records{0},
      nvme_read_errors{0}, nvme_records_written{0}, nvme_bytes_written{0}, nvme_records_read{0},
      nvme_bytes_read{0}, segments_reclaimed{0}, records_relocated{0}, host_copies_corrupt{0},
      reservations{0}, reservations_committed{0}, reservations_aborted{0},
      records_dropped_by_reclaim{0}, recovered_records{0}, recovery_dropped{0},
      records_unpersisted_by_reclaim{0};
};

class PlacementCore {
 public:
  static Result<std::unique_ptr<PlacementCore>> Create(PlacementOptions options);
  ~PlacementCore();

  // The Store API's metadata halves. Put copies `bytes` into the host tier when it has memory
  // (`size` bytes; `bytes` empty in simulation). Get's views have data == null in simulation
  // (a found object has pin != 0 there).
  Result<LookupResult> Lookup(NamespaceId ns, uint64_t fingerprint, std::span<const BlockKey> keys,
                              FamilyMask required);
  // kFromSharedTier: the object came from the shared tier (never uploaded back).
  enum class Origin : uint8_t { kClient, kFromSharedTier };
  Status Put(const ObjectKey& key, uint64_t fingerprint, uint64_t size,
             std::span<const std::byte> bytes, const PutHints& hints,
             Origin origin = Origin::kClient);
  // Put in place: an extent for an object of `size` payload bytes (at ext.offset +
  // kRecordHeaderSize), evicting as needed within `ns`'s quota; then Commit makes the bytes
  // written there an object (Ok(false): the host tier's admission declined it and the extent
  // is freed), or Abort frees the extent. Between the two the extent is nobody's object.
  Result<Extent> Reserve(NamespaceId ns, uint64_t size);
  // A writer's copy of `size` payload bytes into a reserved extent (as Put copies): streaming
  // stores (host/arena_copy.h) unless host checksums read the payload straight back.
  void CopyPayload(const Extent& ext, const std::byte* src, uint64_t size) const;
  Result<bool> Commit(const ObjectKey& key, uint64_t fingerprint, uint64_t size, const Extent& ext,
                      const PutHints& hints);
  void Abort(const Extent& ext);
  Result<std::vector<ObjectView>> Get(NamespaceId ns, uint64_t fingerprint,
                                      std::span<const BlockKey> keys, FamilyMask families);
  void Release(std::span<const uint64_t> pins);
  // Removes every object of `ns`. `before(next_sequence)` runs first under the lock (the real
  // store makes the delete durable there); its error aborts the delete.
  Status Delete(NamespaceId ns, const std::function<Status(uint64_t)>& before);
  // Writes every dirty object to the lower tier and waits for writes in flight; returns the
  // highest sequence number handed out so far (durable once the caller syncs the tier).
  Result<uint64_t> FlushWrites();
  StoreStats Stats() const;         // O(1): kept up to date with every change
  StoreStats RecountStats() const;  // the same, counted object by object (tests)
  void VisitCounters(const CounterVisitor& visit) const;

  // Per-tenant quota of host-tier bytes (arena extents), overriding host.namespace_quota_bytes
  // for `ns`; 0: none. A put over quota evicts the namespace's own objects first.
  void SetNamespaceQuota(NamespaceId ns, uint64_t bytes);

  // Recovery (before the store serves): registers a record found in the lower tier.
  void AddRecovered(const IndexEntry& e);
  void FinishRecovery(uint64_t recovered, uint64_t dropped);
  // Forgets every lower-tier record (before an index rebuild).
  void ResetLower();
  uint64_t next_sequence() const;
  void RaiseNextSequence(uint64_t at_least);

  // Uploads to the shared tier. When the share policy picks an object (ShareAtUse, at its put
  // and at each Get that serves it), the core pins its host copy and queues it; the uploader
  // takes queued objects (waiting up to `wait` for one), uploads their payloads, then gives the
  // pins back with SharesDone. WaitShares returns true once every object queued before the call
  // is done, false at the deadline. StopShares wakes a waiting TakeShares for good (shutdown).
  struct ShareItem {
    ObjectKey key;
    uint64_t fingerprint = 0;
    const std::byte* data = nullptr;  // the pinned host copy's payload
    uint64_t size = 0;
    uint64_t pin = 0;
    std::optional<uint64_t> sum;  // the host checksum to verify before uploading
  };
  std::vector<ShareItem> TakeShares(size_t max, std::chrono::milliseconds wait);
  void SharesDone(std::span<const uint64_t> pins);
  bool WaitShares(std::chrono::steady_clock::time_point deadline);
  void StopShares();

 private:
  struct LowerLoc {
    uint64_t offset = 0;
    uint64_t stored_size = 0;
    uint64_t checksum = 0;
    uint64_t sequence = 0;
    CodecKind codec = CodecKind::kNone;
    uint64_t span() const;
  };

  struct Entry {
    uint64_t id = 0;  // (generation << 32) | pool slot
    uint32_t generation = 0;
    bool live = false;          // the pool slot holds an object
    Entry* seg_prev = nullptr;  // the other entries with a record in the same segment
    Entry* seg_next = nullptr;
    ObjectKey key;
    uint64_t fingerprint = 0;
    uint64_t raw_size = 0;
    // host tier
    bool resident = false;  // ext holds the payload
    Extent ext;             // valid while resident or loading
    bool dirty = false;     // host copy not yet in the lower tier
    uint32_t pins = 0;
    bool loading = false;  // being read from the lower tier into ext
    bool writing = false;  // host copy being written to the lower tier
    bool tracked = false;  // in the host tier's eviction policy
    // With host_checksums: the payload's XXH3-64 when it entered the host tier; host_bad once a
    // verification failed (the copy is never served or written again).
    bool host_summed = false;
    bool host_bad = false;
    uint64_t host_sum = 0;
    // lower tier
    bool on_nvme = false;
    LowerLoc nv;
    // facts and statistics
    uint64_t hits = 0;        // since last written to the lower tier (reclaim keeps hot ones)
    uint32_t total_hits = 0;  // since the put
    uint64_t last_access = 0;
    uint32_t depth = 0;
    double value_per_byte = 0;
    bool doomed = false;  // replaced or deleted; freed once unused
    bool shared = false;  // queued for the shared tier once, or read from it
  };

  struct BlockId {
    NamespaceId ns;
    BlockKey key;
    bool operator==(const BlockId&) const = default;
  };
  struct BlockIdHash {
    size_t operator()(const BlockId& b) const noexcept {
      return BlockKeyHash{}(b.key) ^ (b.ns * 0xff51afd7ed558ccdull);
    }
  };
  struct BlockSlot {
    std::array<Entry*, kNumFamilies> fam{};  // owned by the pool
    uint64_t slot_id = 0;
    BlockId parent{};
    uint64_t parent_slot = 0;  // 0: no parent counted
    uint32_t children = 0;     // cached blocks that extend this one
  };

  explicit PlacementCore(PlacementOptions options);

  // All below: called with mu_ held (lk), unless said otherwise.
  Entry* NewEntry();
  void FreeEntry(Entry* e);
  Entry* ById(uint64_t id);  // null for an unknown or stale id
  void SegInsert(Entry* e);  // e's record (e->nv) is in its segment
  void SegErase(Entry* e);
  std::vector<Entry*> SegMembers(uint32_t seg) const;  // ordered by sequence
  Entry* Find(const ObjectKey& key, uint64_t fingerprint);
  Entry* FindAny(const ObjectKey& key);
  void Log(DecisionKind kind, Tier tier, Tier to, const Entry& e, uint64_t bytes);
  ObjectFacts Facts(const Entry& e) const;
  void Track(Entry& e);
  void Untrack(Entry& e);
  // Adds (sign +1) or removes (-1) what `e` contributes to stats_; doomed objects count nothing.
  void Account(const Entry& e, int sign);
  const CacheLayout* ThinLayout(const Entry& e) const;
  bool WouldDrop(const Entry& e);  // evicting e from DRAM loses its last copy
  // Allocates a host extent of `bytes` for an object of `ns`, evicting (and demoting) as
  // needed, within the namespace's quota. May release lk.
  Result<Extent> MakeRoom(std::unique_lock<std::mutex>& lk, uint64_t bytes, NamespaceId ns);
  uint64_t EvictRound(std::unique_lock<std::mutex>& lk, uint64_t need,
                      const std::function<bool()>& done,
                      const std::function<bool(const Entry&)>& accept);
  Status WaitOrGiveUp(std::unique_lock<std::mutex>& lk,
                      std::chrono::steady_clock::time_point deadline, const std::string& what);
  // Evicts `ns`'s own objects until `need` more bytes fit its host-tier quota.
  Status EnforceQuota(std::unique_lock<std::mutex>& lk, NamespaceId ns, uint64_t need);
  uint64_t QuotaOf(NamespaceId ns) const;
  uint64_t HostBytesOf(NamespaceId ns) const;
  void CountNamespaceBytes();
  void DropForRoom(Entry* e, uint64_t& freed);
  BlockSlot& SlotFor(const ObjectKey& key, const PutHints& hints);
  void EraseSlot(std::unordered_map<BlockId, BlockSlot, BlockIdHash>::iterator it);
  void Remove(Entry* e);
  void DropHostCopy(Entry& e);
  void DropNvmeCopy(Entry& e, std::vector<ObjectKey>* index_deletes);
  void FreeIfUnused(Entry* e);
  void EraseEntryIfEmpty(Entry* e);

  static IndexEntry IndexEntryOf(const ObjectKey& key, uint64_t fingerprint, uint64_t raw_size,
                                 const LowerLoc& at, uint64_t last_access);
  enum class WriteKind : uint8_t { kDemote, kWriteBack };
  // Writes the host copies of `batch` (flagged writing) as lower-tier records, then indexes
  // them. Returns the first error; failed entries stay dirty. Releases lk for the I/O.
  Status WriteRecords(std::unique_lock<std::mutex>& lk, const std::vector<Entry*>& batch,
                      WriteKind kind);
  // Frees one segment, relocating hot records (they become dirty if they cannot move).
  Status ReclaimSegment();
  // Reads the records of `batch` (flagged loading, extents allocated) into the host tier.
  void LoadRecords(std::unique_lock<std::mutex>& lk, const std::vector<Entry*>& batch,
                   std::vector<Status>& results);

  // The host admission policy's verdict on a new object (records refusals); under mu_.
  bool AdmitToHost(const ObjectKey& key, uint64_t size, const PutHints& hints);
  // Makes a host extent holding `size` payload bytes the object `key` (replacing any), dirty.
  void InsertResident(const ObjectKey& key, uint64_t fingerprint, uint64_t size, const Extent& ext,
                      const PutHints& hints, std::optional<uint64_t> sum,
                      Origin origin = Origin::kClient);
  // XXH3-64 of a host copy's payload (no lock needed: the caller keeps the extent in place).
  uint64_t HostSum(const Extent& ext, uint64_t size) const;
  // A host copy found changed after its checksum was taken: counted, dropped, never served.
  void DropCorruptHostCopy(Entry* e);
  // Queues `e` (resident) for the shared tier if the share policy picks it at this use.
  void MaybeShare(Entry& e);

  PlacementOptions opt_;
  ExtentAllocator& host_;
  std::unique_ptr<EvictionPolicy> eviction_;     // GUARDED_BY(mu_)
  std::unique_ptr<AdmissionPolicy> host_admit_;  // GUARDED_BY(mu_)
  std::unique_ptr<AdmissionPolicy> nvme_admit_;  // GUARDED_BY(mu_)
  std::unique_ptr<SegmentLog> log_;              // GUARDED_BY(mu_); null: host only

  mutable std::mutex mu_;
  std::condition_variable io_cv_;  // signalled when a load or write finishes
  std::unordered_map<BlockId, BlockSlot, BlockIdHash> blocks_;  // GUARDED_BY(mu_)
  std::deque<Entry> pool_;               // GUARDED_BY(mu_); every entry, at a stable address
  std::vector<uint32_t> free_slots_;     // GUARDED_BY(mu_); pool slots free for reuse
  std::unordered_set<uint64_t> doomed_;  // GUARDED_BY(mu_); ids of doomed entries still in use
  // Per segment, the entries with a record in it: an intrusive list through Entry::seg_prev /
  // seg_next (no allocation per record).
  std::vector<Entry*> seg_members_;  // GUARDED_BY(mu_); list heads
  uint64_t next_slot_ = 1;           // GUARDED_BY(mu_)
  uint64_t next_sequence_ = 1;       // GUARDED_BY(mu_)
  uint32_t writes_inflight_ = 0;     // GUARDED_BY(mu_)
  // Entries whose NVMe record a reclaim dropped while their DRAM copy stays (dirty, so no longer
  // durable until written again); FlushWrites writes them before it returns.
  uint64_t unpersisted_by_reclaim_ = 0;  // GUARDED_BY(mu_)
  // Objects the host tier's admission refused (by key hash): how often, oldest first.
  std::unordered_map<uint64_t, uint32_t> refused_;  // GUARDED_BY(mu_)
  std::deque<uint64_t> refused_order_;              // GUARDED_BY(mu_)
  PlacementCounters counters_;
  StoreStats stats_;  // GUARDED_BY(mu_); objects and bytes per tier and family
  std::unordered_map<NamespaceId, uint64_t> ns_host_bytes_;  // GUARDED_BY(mu_); arena bytes
  std::unordered_map<NamespaceId, uint64_t> quotas_;         // GUARDED_BY(mu_)
  bool quotas_active_ = false;  // GUARDED_BY(mu_); ns_host_bytes_ is kept from then on
  bool admit_all_ = true;       // the host tier admits everything: no history needed
  // The shared tier's upload queue: ids of pinned entries, and how many are queued or being
  // uploaded (share_done_ counts finished ones, so WaitShares knows what came before it).
  std::deque<uint64_t> share_queue_;  // GUARDED_BY(mu_)
  uint64_t shares_queued_ = 0;        // GUARDED_BY(mu_): ever queued
  uint64_t shares_done_ = 0;          // GUARDED_BY(mu_): ever done
  bool shares_stopped_ = false;       // GUARDED_BY(mu_)
  std::condition_variable share_cv_;
};

}  // namespace strata::cachestore
