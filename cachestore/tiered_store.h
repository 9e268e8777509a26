// The in-process tiered store: a host DRAM arena over an optional NVMe tier (segment log on a
// Device, RocksDB index). Implements strata::Store.
//
// Object lifecycle: Put copies into the arena (dirty). Flush or eviction writes dirty objects
// to NVMe as records (write-back) and indexes them. Eviction drops clean host copies, demotes
// dirty ones, and with no NVMe tier simply drops. Get pins resident objects and loads NVMe-only
// objects into the arena first (reading the record straight into the arena when it is stored
// raw). A record that fails its checksum is a miss, counted and removed.
//
// Host extents are laid out like records: [128-byte header room][payload][pad to 4 KiB], so a
// raw record is written from and read into the arena with no copy.
//
// Concurrency: one mutex (mu_) guards all metadata. Copies and I/O run with mu_ released; an
// object under I/O is flagged (loading / writing) so that it is neither evicted nor freed, and
// a replaced or deleted object that is still pinned or under I/O is kept ("doomed") until the
// last user lets go.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cachestore/device.h"
#include "cachestore/placement/eviction_policy.h"
#include "cachestore/host_arena.h"
#include "cachestore/index.h"
#include "cachestore/markers.h"
#include "cachestore/segment_log.h"
#include "strata/store.h"

namespace strata::cachestore {

struct TieredStoreOptions {
  // Replaces the device OpenStore would open (tests inject faults through it). The index and
  // segment geometry still come from the config's data_dir.
  std::unique_ptr<Device> device;
  // Verify every record's payload checksum at open (default: headers only; payloads are
  // verified on every read anyway).
  bool verify_payloads_on_open = false;
  // The RocksDB environment of the index (null: the default). Tests inject a file system that
  // models power loss through it.
  rocksdb::Env* index_env = nullptr;
};

Result<std::unique_ptr<Store>> OpenTieredStore(const StoreConfig& config,
                                               TieredStoreOptions options);

class TieredStore final : public Store {
 public:
  ~TieredStore() override;

  Result<LookupResult> Lookup(NamespaceId ns, uint64_t fingerprint, std::span<const BlockKey> keys,
                              FamilyMask required) override;
  using Store::Put;
  Status Put(const ObjectKey& key, uint64_t fingerprint, std::span<const std::byte> bytes,
             const PutHints& hints) override;
  Result<std::vector<ObjectView>> Get(NamespaceId ns, uint64_t fingerprint,
                                      std::span<const BlockKey> keys, FamilyMask families) override;
  void Release(std::span<const uint64_t> pins) override;
  Status Delete(NamespaceId ns) override;
  Status Flush() override;
  StoreStats Stats() const override;
  void VisitCounters(const CounterVisitor& visit) const override;

 private:
  friend Result<std::unique_ptr<Store>> OpenTieredStore(const StoreConfig&, TieredStoreOptions);

  struct NvmeLoc {
    uint64_t offset = 0;
    uint64_t stored_size = 0;
    uint64_t checksum = 0;
    uint64_t sequence = 0;
    CodecKind codec = CodecKind::kNone;
    uint64_t span() const;
  };

  struct Entry {
    uint64_t id = 0;
    ObjectKey key;
    uint64_t fingerprint = 0;
    uint64_t raw_size = 0;
    // host tier
    bool resident = false;  // ext holds the payload
    Extent ext;             // valid while resident or loading
    bool dirty = false;     // host copy not yet on NVMe
    uint32_t pins = 0;
    bool loading = false;  // being read from NVMe into ext
    bool writing = false;  // host copy being written to NVMe
    // NVMe tier
    bool on_nvme = false;
    NvmeLoc nv;
    // statistics
    uint64_t hits = 0;  // since last written to NVMe
    uint64_t last_access = 0;
    bool doomed = false;  // replaced or deleted; freed once unused
  };

  struct BlockSlot {
    std::array<std::unique_ptr<Entry>, kNumFamilies> fam;
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

  struct Counters {
    std::atomic<uint64_t> puts{0}, put_bytes{0}, gets{0}, get_hits_host{0}, get_hits_nvme{0},
        get_misses{0}, lookups{0}, lookup_blocks_hit{0}, evictions_dropped{0}, demotions{0},
        demote_errors{0}, corrupt_records{0}, nvme_read_errors{0}, nvme_records_written{0},
        nvme_bytes_written{0}, nvme_records_read{0}, nvme_bytes_read{0}, nvme_read_us{0},
        nvme_write_us{0}, segments_reclaimed{0}, records_relocated{0},
        records_dropped_by_reclaim{0}, recovered_records{0}, recovery_dropped{0}, index_rebuilds{0},
        records_rebuilt{0};
  };

  TieredStore(const StoreConfig& config, std::unique_ptr<HostArena> arena);
  Status OpenNvme(TieredStoreOptions& options);
  Status Recover(bool verify_payloads);
  // Replaces the index with one rebuilt from the segments' record headers (`reason`: why, for
  // the log), then recovers from it. Called during open, with the index closed or unusable.
  Status RebuildIndexFromSegments(const std::string& reason, bool verify_payloads);
  // Forgets every NVMe record (before a rebuild).
  void ResetNvmeState();
  // Flush's last step: records `sequence` as durable in the index (synced) and the sequence
  // marker file.
  Status MarkDurable(uint64_t sequence);

  // All below: called with mu_ held (lk), unless named *Unlocked.
  Entry* Find(const ObjectKey& key, uint64_t fingerprint);
  Entry* FindAny(const ObjectKey& key);
  std::byte* Payload(const Entry& e) const;
  // Allocates an arena extent of `bytes`, evicting (and demoting) as needed. May release lk.
  Result<Extent> MakeRoom(std::unique_lock<std::mutex>& lk, uint64_t bytes);
  void Untrack(Entry& e);
  void MaybeTrack(Entry& e);
  // Removes `e` from the map: frees what it holds now, or dooms it until unused.
  void Remove(Entry* e);
  void DropHostCopy(Entry& e);
  void DropNvmeCopy(Entry& e, std::vector<ObjectKey>* index_deletes);
  void FreeIfUnused(Entry* e);
  void EraseEntryIfEmpty(Entry* e);

  // Writes the host copies of `batch` (flagged writing) as NVMe records, then indexes them.
  // Returns the first error; failed entries stay dirty. Called with lk held; releases it for
  // the I/O.
  Status WriteRecords(std::unique_lock<std::mutex>& lk, const std::vector<Entry*>& batch);
  void FinishWrites(const std::vector<Entry*>& batch);
  // Frees one segment, relocating hot records through the host tier (they become dirty).
  Status ReclaimSegment();
  // Reads the records of `batch` (flagged loading, extents allocated) into the arena.
  void LoadRecords(std::unique_lock<std::mutex>& lk, const std::vector<Entry*>& batch,
                   std::vector<Status>& results);

  const StoreConfig config_;
  std::unique_ptr<HostArena> arena_;
  DataDirLock dir_lock_;            // held while the store is open (declared first: released last)
  std::unique_ptr<Device> device_;  // null: host-only
  std::unique_ptr<Index> index_;
  std::unique_ptr<SegmentLog> log_;
  std::unique_ptr<DeleteLog> deletes_;  // GUARDED_BY(mu_); null: host-only
  rocksdb::Env* index_env_ = nullptr;
  std::mutex marker_mu_;   // orders MarkDurable calls
  SequenceMarker marker_;  // GUARDED_BY(marker_mu_)

  mutable std::mutex mu_;
  std::condition_variable io_cv_;  // signalled when a load or write finishes
  std::unordered_map<BlockId, BlockSlot, BlockIdHash> blocks_;   // GUARDED_BY(mu_)
  std::unordered_map<uint64_t, Entry*> by_id_;                   // GUARDED_BY(mu_)
  std::unordered_map<uint64_t, std::unique_ptr<Entry>> doomed_;  // GUARDED_BY(mu_)
  std::vector<std::unordered_set<Entry*>> seg_members_;          // GUARDED_BY(mu_)
  std::unique_ptr<EvictionPolicy> eviction_;                     // GUARDED_BY(mu_)
  uint64_t next_id_ = 1;                                         // GUARDED_BY(mu_)
  uint64_t next_sequence_ = 1;                                   // GUARDED_BY(mu_)
  uint32_t writes_inflight_ = 0;                                 // GUARDED_BY(mu_)
  std::mutex reclaim_mu_;
  Counters counters_;
};

}  // namespace strata::cachestore
