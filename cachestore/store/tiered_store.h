// The in-process tiered store: the placement core (placement/) over a host DRAM arena (host/)
// and an optional NVMe tier (nvme/: segment log on a Device, RocksDB index). Implements
// strata::Store. The core decides and keeps the metadata; this class opens the tiers, recovers
// the NVMe tier's records at open (rebuilding the index from the segments when it is damaged),
// and makes Flush durable.
// Thread safety: every method is safe for concurrent use (the core's lock guards metadata).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cachestore/host/host_arena.h"
#include "cachestore/nvme/device.h"
#include "cachestore/nvme/index.h"
#include "cachestore/nvme/markers.h"
#include "cachestore/nvme/nvme_tier.h"
#include "cachestore/placement/placement_core.h"
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
  // The clock of placement decisions (null: the system clock).
  const Clock* clock = nullptr;
  // Receives every placement decision (tests compare it with the simulator's).
  DecisionLog* decision_log = nullptr;
  // Layouts whose full SWA objects may be thinned into checkpoints on demotion.
  std::vector<CacheLayout> layouts;
  // Every host copy carries an XXH3 checksum of its payload (taken at Put, Commit and load),
  // verified before Get serves it and before it is demoted: bytes a client changed in the
  // shared arena after Commit are a counted corrupt miss, never served or written (the daemon
  // turns this on; the in-process store's memory is its own).
  bool host_checksums = false;
  // The host arena is sealed (host_arena.h): its descriptor maps only read-only, so no client
  // of the daemon can change a host copy (the daemon's staging tenants; see server_config.h).
  bool seal_arena = false;
  // The tier shared across nodes (cluster/cluster_tier.h; null: none) and what goes there. With
  // one, the store uploads what `share` picks behind the request path (one uploader thread),
  // continues a Lookup into it for the blocks after the local hit and a Get for objects missing
  // locally (what it finds is verified and put into the host tier), and Flush waits for the
  // uploads scheduled before it. `share.enabled` is implied by a non-null `shared`.
  std::shared_ptr<SharedTier> shared;
  ClusterSharePolicy share;
  // Flush waits at most this long for the shared tier's uploads.
  std::chrono::milliseconds shared_flush_timeout{10000};
};

// The Store it returns is a TieredStore (the daemon uses its arena and Reserve/Commit).
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

  // The daemon's data plane (cachestore/server/): the host arena, which clients map.
  int arena_fd() const { return arena_->fd(); }
  bool arena_sealed() const { return arena_->sealed(); }
  std::byte* arena_base() const { return arena_->base(); }
  uint64_t arena_bytes() const { return arena_->capacity(); }

  // Put without a copy: Reserve arena space for an object's payload (`payload_offset` into the
  // arena, `size` bytes), let the writer fill it, then Commit (the object becomes visible,
  // replacing any of the same key) or Abort. A reservation holds its space until then; it is not
  // an object (Lookup and Get do not see it, eviction does not touch it).
  struct Reservation {
    ObjectKey key;
    uint64_t fingerprint = 0;
    uint64_t size = 0;
    PutHints hints;
    Extent ext;
    uint64_t payload_offset = 0;
  };
  Result<Reservation> Reserve(const ObjectKey& key, uint64_t fingerprint, uint64_t size,
                              const PutHints& hints);
  // Ok(true): stored. Ok(false): the host tier's admission declined it. The reservation is used
  // up either way (its space freed when not stored).
  Result<bool> Commit(const Reservation& r);
  void Abort(const Reservation& r);
  // The writer's copy into a reservation's payload (the daemon's staged writes, its one copy):
  // `r.size` bytes from `src`, copied as Put copies (PlacementCore::CopyPayload).
  void CopyIntoReservation(const Reservation& r, const std::byte* src);

 private:
  friend Result<std::unique_ptr<Store>> OpenTieredStore(const StoreConfig&, TieredStoreOptions);

  TieredStore(const StoreConfig& config, std::unique_ptr<HostArena> arena);
  Status OpenCore(TieredStoreOptions& options);
  Status OpenNvme(TieredStoreOptions& options);
  Status Recover(bool verify_payloads);
  // Replaces the index with one rebuilt from the segments' record headers (`reason`: why, for
  // the log), then recovers from it. Called during open, with the index closed or unusable.
  Status RebuildIndexFromSegments(const std::string& reason, bool verify_payloads);
  // Flush's last step: records `sequence` as durable in the index (synced) and the sequence
  // marker file.
  Status MarkDurable(uint64_t sequence);

  // The shared tier (tiered_store_shared.cc).
  void StartUploader();
  void StopUploader();
  void UploadLoop();
  // Reads the `families` of `keys` (a chain from index `first_depth` on) that the shared tier
  // holds into the host tier, block by block, up to the first block missing one of
  // `required`; returns how many objects it put.
  size_t FetchShared(NamespaceId ns, uint64_t fingerprint, std::span<const BlockKey> keys,
                     FamilyMask families, FamilyMask required, size_t first_depth,
                     const BlockKey* parent);
  // Reads `keys` (any blocks and families) that the shared tier holds into the host tier, in
  // one pipelined batch; returns how many objects it put.
  size_t FetchSharedObjects(uint64_t fingerprint, std::span<const ObjectKey> keys);
  // Blocks that hit here may have a later checkpoint in the shared tier than any held here
  // (another node computed further): when the last hit block has neither full SWA nor a
  // checkpoint here, reads the latest such checkpoint (LaterCheckpointSearchFrom in
  // cluster_policy.h picks the blocks to ask about)
  // (one pipelined EXISTS, then one GET). True when it put one.
  bool FetchLaterSharedCheckpoint(NamespaceId ns, uint64_t fingerprint,
                                  std::span<const BlockKey> keys, const LookupResult& r);

  // The core's view of the index, which a rebuild replaces while the core lives.
  class IndexRef final : public RecordIndex {
   public:
    Index* index = nullptr;
    Status Put(std::span<const IndexEntry> e) override { return index->Put(e); }
    Status Delete(std::span<const ObjectKey> k) override { return index->Delete(k); }
    Status DeleteNamespace(NamespaceId ns) override { return index->DeleteNamespace(ns); }
    Status Sync() override { return index->Sync(); }
  };

  const StoreConfig config_;
  std::unique_ptr<HostArena> arena_;
  DataDirLock dir_lock_;            // held while the store is open (declared first: released last)
  std::unique_ptr<Device> device_;  // null: host-only
  std::vector<uint32_t> retired_segments_;  // on drives missing at open
  std::unique_ptr<Index> index_;
  IndexRef index_ref_;
  std::unique_ptr<NvmeTier> nvme_;
  std::unique_ptr<DeleteLog> deletes_;  // appended under the core's lock; null: host-only
  rocksdb::Env* index_env_ = nullptr;
  SystemClock system_clock_;
  std::mutex marker_mu_;   // orders MarkDurable calls
  SequenceMarker marker_;  // GUARDED_BY(marker_mu_)
  std::unique_ptr<PlacementCore> core_;
  std::atomic<uint64_t> index_rebuilds_{0}, records_rebuilt_{0};
  std::shared_ptr<SharedTier> shared_;
  std::chrono::milliseconds shared_flush_timeout_{10000};
  // Nodes share checkpoints (ClusterSharePolicy::checkpoints, the same on every node): a Lookup
  // looks for a later one in the shared tier than it holds (FetchLaterSharedCheckpoint).
  bool share_checkpoints_ = true;
  std::thread uploader_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> shared_uploads_{0}, shared_upload_errors_{0}, shared_skipped_corrupt_{0},
      shared_fetched_{0}, shared_fetched_bytes_{0}, shared_flush_timeouts_{0};
};

}  // namespace strata::cachestore
