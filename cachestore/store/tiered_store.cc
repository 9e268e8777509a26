#include "cachestore/store/tiered_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "cachestore/nvme/drives.h"
#include "cachestore/nvme/rebuild.h"
#include "cachestore/nvme/record.h"
#include "cachestore/nvme/record_batch.h"

namespace strata::cachestore {

TieredStore::TieredStore(const StoreConfig& config, std::unique_ptr<HostArena> arena)
    : config_(config), arena_(std::move(arena)) {}

TieredStore::~TieredStore() { StopUploader(); }

Result<std::unique_ptr<Store>> OpenTieredStore(const StoreConfig& config,
                                               TieredStoreOptions options) {
  STRATA_RETURN_IF_ERROR(config.Validate());
  STRATA_ASSIGN_OR_RETURN(auto arena, HostArena::Create(config.host.capacity_bytes,
                                                        config.host.prefault, options.seal_arena));
  std::unique_ptr<TieredStore> store(new TieredStore(config, std::move(arena)));
  if (!config.nvme.data_dir.empty()) {
    STRATA_RETURN_IF_ERROR(store->OpenNvme(options));
  } else {
    STRATA_RETURN_IF_ERROR(store->OpenCore(options));
  }
  return std::unique_ptr<Store>(std::move(store));
}

Status TieredStore::OpenCore(TieredStoreOptions& options) {
  PlacementOptions po;
  po.config = config_;
  po.host = &arena_->space();
  po.host_base = arena_->base();
  if (device_) {
    nvme_ = std::make_unique<NvmeTier>(*device_, config_, arena_->base());
    po.lower = nvme_.get();
    po.index = &index_ref_;
  }
  po.clock = options.clock ? options.clock : &system_clock_;
  po.log = options.decision_log;
  po.layouts = std::move(options.layouts);
  po.host_checksums = options.host_checksums;
  po.retired_segments = retired_segments_;
  po.share = options.share;
  po.share.enabled = options.shared != nullptr;
  STRATA_RETURN_IF_ERROR(po.share.Validate());
  STRATA_ASSIGN_OR_RETURN(core_, PlacementCore::Create(std::move(po)));
  shared_ = std::move(options.shared);
  shared_flush_timeout_ = options.shared_flush_timeout;
  share_checkpoints_ = options.share.checkpoints;
  if (shared_) StartUploader();
  return Status::Ok();
}

Status TieredStore::OpenNvme(TieredStoreOptions& options) {
  const auto& nv = config_.nvme;
  const std::filesystem::path dir(nv.data_dir);
  const uint32_t segment_count = uint32_t(nv.capacity_bytes / nv.segment_bytes);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("create data directory " + nv.data_dir + ": " + ec.message());
  STRATA_ASSIGN_OR_RETURN(dir_lock_, DataDirLock::Acquire(nv.data_dir));
  if (IndexPresent(nv.data_dir))  // left by a rebuild that stopped right after its swap
    std::filesystem::remove_all(dir / "index.old", ec);
  index_env_ = options.index_env;
  auto geometry_error = [&](const IndexMeta& m, const std::string& what) {
    return Status::FailedPrecondition(
        "data directory " + nv.data_dir + " " + what + " " + std::to_string(m.segment_count) +
        " segments of " + std::to_string(m.segment_bytes) + " bytes; the config asks for " +
        std::to_string(segment_count) + " of " + std::to_string(nv.segment_bytes));
  };

  // Why the index has to be rebuilt from the segments (empty: it need not). Only corruption
  // leads there; any other failure (e.g. another process holding the directory) is reported.
  std::string rebuild;
  auto note_corruption = [&](const Status& s) {
    if (!s.IsCorruption()) return s;
    if (rebuild.empty()) rebuild = s.ToString();
    return Status::Ok();
  };
  std::optional<IndexMeta> meta;
  if (!IndexPresent(nv.data_dir) && SegmentsUsed(nv.data_dir)) {
    STRATA_ASSIGN_OR_RETURN(IndexMeta g, GeometryFromSegments(nv.data_dir));
    if (g.segment_bytes != nv.segment_bytes || g.segment_count != segment_count)
      return geometry_error(g, "has no index and");
    rebuild = "the index is missing";
  } else {
    auto idx = Index::Open((dir / "index").string(), index_env_);
    if (idx.ok()) {
      index_ = std::move(idx).value();
      auto m = index_->GetMeta();
      if (m.ok())
        meta = *m;
      else
        STRATA_RETURN_IF_ERROR(note_corruption(m.status()));
    } else {
      STRATA_RETURN_IF_ERROR(note_corruption(idx.status()));
    }
  }
  if (meta && (meta->segment_bytes != nv.segment_bytes || meta->segment_count != segment_count))
    return geometry_error(*meta, "was created with");
  if (options.device) {
    device_ = std::move(options.device);
  } else {
    FileDeviceOptions fo;
    fo.dir = (dir / "segments").string();
    fo.segment_bytes = nv.segment_bytes;
    fo.segment_count = segment_count;
    fo.queue_depth = nv.queue_depth;
    fo.uring = {nv.registered_files, nv.sqpoll, nv.sqpoll_idle_ms};
    STRATA_ASSIGN_OR_RETURN(DriveSet drives, OpenDrives(nv));
    if (drives.segment_dirs.size() > 1) {
      fo.drive_dirs = drives.segment_dirs;
      fo.drive_alive = drives.alive;
      for (size_t d = 0; d < drives.alive.size(); ++d)
        if (!drives.alive[d])
          for (uint32_t seg : SegmentsOfDrive(d, drives.alive.size(), segment_count))
            retired_segments_.push_back(seg);
      for (const std::string& m : drives.missing)
        spdlog::warn("strata: NVMe tier opened without {}: its records are misses", m);
    }
    STRATA_ASSIGN_OR_RETURN(device_, OpenFileDevice(nv.device, fo));
  }
  if (device_->segment_bytes() != nv.segment_bytes || device_->segment_count() != segment_count)
    return Status::InvalidArgument("device geometry does not match the config");
  if (index_ && rebuild.empty() && !meta) {
    IndexMeta m;
    m.segment_bytes = nv.segment_bytes;
    m.segment_count = segment_count;
    STRATA_RETURN_IF_ERROR(index_->PutMeta(m));
  }
  device_->RegisterMemory(arena_->region());
  index_ref_.index = index_.get();
  STRATA_RETURN_IF_ERROR(OpenCore(options));

  STRATA_ASSIGN_OR_RETURN(DeleteLog deletes, DeleteLog::Load(nv.data_dir));
  if (deletes.damaged_entries())
    spdlog::warn(
        "strata: {} damaged entries in {}/{}: records older than the next entry are "
        "treated as deleted",
        deletes.damaged_entries(), nv.data_dir, kDeleteLogFile);
  deletes_ = std::make_unique<DeleteLog>(std::move(deletes));
  // The cross-check: a log that RocksDB cut short at recovery opens without complaint, but its
  // durable sequence is then below the marker's, which is written only after the index synced.
  auto marker = ReadSequenceMarker(nv.data_dir);
  if (marker.ok()) {
    if (*marker) marker_ = **marker;
  } else {
    STRATA_RETURN_IF_ERROR(note_corruption(marker.status()));
  }
  uint64_t index_durable = 0;
  if (index_ && rebuild.empty()) {
    auto d = index_->GetDurableSequence();
    if (d.ok()) {
      index_durable = *d;
      if (index_durable < marker_.durable_sequence)
        rebuild = "the index holds what was flushed up to sequence " +
                  std::to_string(index_durable) + " but sequence " +
                  std::to_string(marker_.durable_sequence) + " was made durable (log cut short?)";
    } else {
      STRATA_RETURN_IF_ERROR(note_corruption(d.status()));
    }
  }

  const bool verify = options.verify_payloads_on_open || nv.verify_payloads_on_open;
  if (rebuild.empty()) {
    Status s = Recover(verify);
    if (s.IsCorruption()) {
      rebuild = s.ToString();
      core_->ResetLower();
    } else if (!s.ok()) {
      return s;
    }
  }
  if (!rebuild.empty()) {
    STRATA_RETURN_IF_ERROR(RebuildIndexFromSegments(rebuild, verify));
    STRATA_ASSIGN_OR_RETURN(index_durable, index_->GetDurableSequence());
  }
  // Numbers from here on are above every number handed out before, in any earlier process.
  core_->RaiseNextSequence(
      std::max({index_durable + 1, marker_.sequence_limit, deletes_->max_sequence()}));
  marker_.durable_sequence = std::max(marker_.durable_sequence, index_durable);
  marker_.sequence_limit = core_->next_sequence() + kSequencesPerOpen;
  return WriteSequenceMarker(nv.data_dir, marker_).WithContext("sequence marker");
}

Status TieredStore::Recover(bool verify_payloads) {
  std::vector<IndexEntry> entries;
  std::vector<ObjectKey> drop;
  STRATA_RETURN_IF_ERROR(index_->Scan([&](const IndexEntry& e) {
    // The index's namespace deletes are not synced; the delete log is.
    if (deletes_ && e.sequence < deletes_->DeletedBelow(e.key.ns))
      drop.push_back(e.key);
    else
      entries.push_back(e);
    return true;
  }));
  const uint64_t seg = config_.nvme.segment_bytes, dev_size = device_->size();
  uint64_t recovered = 0;
  constexpr size_t kChunk = 256;
  for (size_t base = 0; base < entries.size(); base += kChunk) {
    const size_t n = std::min(kChunk, entries.size() - base);
    std::vector<AlignedBuffer> bufs(n);
    std::vector<Status> st(n);
    RecordBatch io_batch(n, nullptr, nullptr);
    for (size_t i = 0; i < n; ++i) {
      const IndexEntry& ie = entries[base + i];
      const uint64_t span = RecordSpan(ie.stored_size);
      if (ie.offset % kRecordAlign || ie.offset + span > dev_size ||
          ie.offset / seg != (ie.offset + span - 1) / seg ||
          (ie.codec == CodecKind::kNone && ie.stored_size != ie.raw_size)) {
        st[i] = Status::Corruption("index entry points outside a segment");
        continue;
      }
      const uint64_t len = verify_payloads ? span : kRecordAlign;
      bufs[i] = AlignedBuffer(len);
      io_batch.Add(IoKind::kRead, ie.offset, bufs[i].data(), len, config_.nvme.max_io_bytes, i);
    }
    std::atomic<uint64_t> unused_us{0};
    Status io = io_batch.Submit(*device_, unused_us);
    for (size_t i = 0; i < n; ++i)
      if (st[i].ok() && !io_batch.Complete(i))
        st[i] = io.ok() ? Status::IoError("read failed") : io;
    for (size_t i = 0; i < n; ++i) {
      const IndexEntry& ie = entries[base + i];
      if (st[i].ok()) {
        auto h = DecodeRecordHeader(
            std::span<const std::byte, kRecordHeaderSize>(bufs[i].data(), kRecordHeaderSize));
        st[i] = h.ok() ? CheckRecordHeader(*h, ie.key, ie.fingerprint, ie.sequence, ie.raw_size,
                                           ie.stored_size, ie.codec, ie.checksum)
                       : h.status();
        if (st[i].ok() && verify_payloads &&
            PayloadChecksum({bufs[i].data() + kRecordHeaderSize, ie.stored_size}) != ie.checksum)
          st[i] = Status::Corruption("payload checksum mismatch");
      }
      if (!st[i].ok()) {
        drop.push_back(ie.key);
        continue;
      }
      core_->AddRecovered(ie);
      ++recovered;
    }
  }
  core_->FinishRecovery(recovered, drop.size());
  if (!drop.empty()) {
    spdlog::warn(
        "strata: recovery dropped {} index entries whose records are missing, corrupt or deleted",
        drop.size());
    STRATA_RETURN_IF_ERROR(index_->Delete(drop));
    STRATA_RETURN_IF_ERROR(index_->Sync());
  }
  return Status::Ok();
}

// --- the Store API: the core decides ---------------------------------------------------------

Result<LookupResult> TieredStore::Lookup(NamespaceId ns, uint64_t fingerprint,
                                         std::span<const BlockKey> keys, FamilyMask required) {
  auto r = core_->Lookup(ns, fingerprint, keys, required);
  if (!shared_ || !r.ok() || required.empty()) return r;
  bool fetched = false;
  if (r->hit_blocks < keys.size()) {
    // Continue into the shared tier after the local hit. Checkpoints come along (a plan
    // restores from one instead of recomputing the SWA window; most blocks have none, a cheap
    // nil); full SWA objects are fetched by the Get of a plan that reads them.
    const size_t from = r->hit_blocks;
    FamilyMask fetch = required;
    fetch = FamilyMask(uint8_t(fetch.bits() | FamilyMask{Family::kCheckpoint}.bits()));
    fetched = FetchShared(ns, fingerprint, keys.subspan(from), fetch, required, from,
                          from ? &keys[from - 1] : nullptr) > 0;
    if (fetched) {
      r = core_->Lookup(ns, fingerprint, keys, required);
      if (!r.ok()) return r;
    }
  }
  // The blocks that hit here (or just came from the shared tier without a checkpoint at their
  // end) may have a later checkpoint there, uploaded by a node that computed further.
  if (share_checkpoints_ && FetchLaterSharedCheckpoint(ns, fingerprint, keys, *r))
    return core_->Lookup(ns, fingerprint, keys, required);
  return r;
}

Status TieredStore::Put(const ObjectKey& key, uint64_t fingerprint,
                        std::span<const std::byte> bytes, const PutHints& hints) {
  return core_->Put(key, fingerprint, bytes.size(), bytes, hints);
}

Result<TieredStore::Reservation> TieredStore::Reserve(const ObjectKey& key, uint64_t fingerprint,
                                                      uint64_t size, const PutHints& hints) {
  if (int(key.family) >= kNumFamilies) return Status::InvalidArgument("bad family");
  STRATA_ASSIGN_OR_RETURN(Extent ext, core_->Reserve(key.ns, size));
  Reservation r;
  r.key = key;
  r.fingerprint = fingerprint;
  r.size = size;
  r.hints = hints;
  r.ext = ext;
  r.payload_offset = ext.offset + kRecordHeaderSize;
  return r;
}

Result<bool> TieredStore::Commit(const Reservation& r) {
  return core_->Commit(r.key, r.fingerprint, r.size, r.ext, r.hints);
}

void TieredStore::Abort(const Reservation& r) { core_->Abort(r.ext); }

void TieredStore::CopyIntoReservation(const Reservation& r, const std::byte* src) {
  core_->CopyPayload(r.ext, src, r.size);
}

Result<std::vector<ObjectView>> TieredStore::Get(NamespaceId ns, uint64_t fingerprint,
                                                 std::span<const BlockKey> keys,
                                                 FamilyMask families) {
  auto views = core_->Get(ns, fingerprint, keys, families);
  if (!shared_ || !views.ok()) return views;
  // Objects missing here (not corrupt ones: those stay misses) may be in the shared tier.
  std::vector<size_t> missing;
  for (size_t i = 0; i < views->size(); ++i)
    if (!(*views)[i].found() && !(*views)[i].corrupt) missing.push_back(i);
  if (missing.empty()) return views;
  std::vector<ObjectKey> want;
  for (size_t i : missing) want.push_back((*views)[i].key);
  if (FetchSharedObjects(fingerprint, want) == 0) return views;
  std::vector<uint64_t> pins;
  for (const ObjectView& v : *views)
    if (v.pin) pins.push_back(v.pin);
  core_->Release(pins);
  auto again = core_->Get(ns, fingerprint, keys, families);
  // What was missing and is found now came from the shared tier (it was put into the host tier
  // on the way): the view says so, as do the read counters of whoever keeps them by tier.
  if (again.ok())
    for (size_t i : missing)
      if ((*again)[i].found()) (*again)[i].served_from = Tier::kCluster;
  return again;
}

void TieredStore::Release(std::span<const uint64_t> pins) { core_->Release(pins); }

Status TieredStore::Delete(NamespaceId ns) {
  // Durable before anything goes: a rebuild of the index skips the namespace's older records.
  return core_->Delete(ns, [&](uint64_t next_sequence) {
    return deletes_ ? deletes_->Append(ns, next_sequence).WithContext("delete") : Status::Ok();
  });
}

Status TieredStore::Flush() {
  if (shared_ && !core_->WaitShares(std::chrono::steady_clock::now() + shared_flush_timeout_)) {
    shared_flush_timeouts_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("strata: flush: shared-tier uploads still running after {} ms",
                 shared_flush_timeout_.count());
  }
  if (!device_) return Status::FailedPrecondition("Flush: the store has no NVMe tier");
  STRATA_ASSIGN_OR_RETURN(uint64_t durable, core_->FlushWrites());
  STRATA_RETURN_IF_ERROR(device_->Sync().WithContext("flush: segment sync"));
  return MarkDurable(durable).WithContext("flush");
}

StoreStats TieredStore::Stats() const { return core_->Stats(); }

void TieredStore::VisitCounters(const CounterVisitor& visit) const {
  core_->VisitCounters(visit);
  if (nvme_) {
    visit("nvme_read_us", nvme_->read_us.load(std::memory_order_relaxed));
    visit("nvme_write_us", nvme_->write_us.load(std::memory_order_relaxed));
    if (config_.codec_rule.any()) nvme_->codecs().VisitCounters(visit);
  } else {
    visit("nvme_read_us", 0);
    visit("nvme_write_us", 0);
  }
  // this open rebuilt the index from the segments / entries that rebuild wrote
  visit("index_rebuilds", index_rebuilds_.load(std::memory_order_relaxed));
  visit("records_rebuilt", records_rebuilt_.load(std::memory_order_relaxed));
  if (shared_) {
    visit("shared_uploads", shared_uploads_.load(std::memory_order_relaxed));
    visit("shared_upload_errors", shared_upload_errors_.load(std::memory_order_relaxed));
    visit("shared_skipped_corrupt", shared_skipped_corrupt_.load(std::memory_order_relaxed));
    visit("shared_fetched", shared_fetched_.load(std::memory_order_relaxed));
    visit("shared_fetched_bytes", shared_fetched_bytes_.load(std::memory_order_relaxed));
    visit("shared_flush_timeouts", shared_flush_timeouts_.load(std::memory_order_relaxed));
    shared_->VisitCounters(visit);
  }
  if (device_) {
    const auto& d = device_->counters();
    visit("device_reads", d.reads);
    visit("device_writes", d.writes);
    visit("device_read_bytes", d.read_bytes);
    visit("device_write_bytes", d.write_bytes);
    visit("device_errors", d.errors);
    visit("device_syncs", d.syncs);
  }
}

}  // namespace strata::cachestore

namespace strata {

Result<std::unique_ptr<Store>> OpenStore(const StoreConfig& config) {
  return cachestore::OpenTieredStore(config, cachestore::TieredStoreOptions{});
}

}  // namespace strata
