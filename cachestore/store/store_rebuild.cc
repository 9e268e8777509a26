// The tiered store's side of index rebuilds and of the durability marks they are checked
// against (see rebuild.h and markers.h).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "cachestore/nvme/rebuild.h"
#include "cachestore/store/tiered_store.h"

namespace strata::cachestore {

Status TieredStore::RebuildIndexFromSegments(const std::string& reason, bool verify_payloads) {
  const auto& nv = config_.nvme;
  spdlog::warn("strata: rebuilding the index of {} from the segments' record headers: {}",
               nv.data_dir, reason);
  index_ref_.index = nullptr;
  index_.reset();  // closes it (and releases RocksDB's lock on the directory)
  RebuildOptions ro;
  ro.data_dir = nv.data_dir;
  ro.geometry.segment_bytes = nv.segment_bytes;
  ro.geometry.segment_count = uint32_t(nv.capacity_bytes / nv.segment_bytes);
  ro.device = device_.get();
  ro.max_io_bytes = nv.max_io_bytes;
  ro.deletes = deletes_.get();
  ro.durable_floor = marker_.durable_sequence;
  ro.env = index_env_;
  ro.skip_segments = retired_segments_;
  if (!retired_segments_.empty())
    spdlog::warn(
        "strata: {} segments are on a missing drive: the rebuilt index leaves their records out "
        "(misses, as at any degraded open)",
        retired_segments_.size());
  auto st = RebuildIndex(ro);
  if (!st.ok())
    return st.status().WithContext("rebuilding the index of " + nv.data_dir + " (" + reason + ")");
  spdlog::warn(
      "strata: rebuilt the index of {}: {} records in {:.2f} s ({:.0f} MiB read; {} headers: "
      "{} superseded or copies, {} of deleted namespaces, {} with corrupt payloads, {} keys "
      "dropped because their newest version is corrupt)",
      nv.data_dir, st->records, st->seconds, double(st->bytes_read) / 1048576.0, st->headers,
      st->superseded, st->deleted, st->corrupt_payloads, st->dropped_keys);
  index_rebuilds_.fetch_add(1, std::memory_order_relaxed);
  records_rebuilt_.fetch_add(st->records, std::memory_order_relaxed);
  STRATA_ASSIGN_OR_RETURN(
      index_, Index::Open((std::filesystem::path(nv.data_dir) / "index").string(), index_env_));
  index_ref_.index = index_.get();
  STRATA_RETURN_IF_ERROR(Recover(verify_payloads).WithContext("after rebuilding the index"));
  core_->RaiseNextSequence(st->max_sequence + 1);
  return Status::Ok();
}

Status TieredStore::MarkDurable(uint64_t sequence) {
  std::lock_guard lk(marker_mu_);
  const uint64_t durable = std::max(sequence, marker_.durable_sequence);
  STRATA_RETURN_IF_ERROR(index_->PutDurableSequence(durable).WithContext("index sync"));
  STRATA_RETURN_IF_ERROR(index_->Sync().WithContext("index sync"));
  if (durable == marker_.durable_sequence) return Status::Ok();
  SequenceMarker m = marker_;
  m.durable_sequence = durable;
  STRATA_RETURN_IF_ERROR(
      WriteSequenceMarker(config_.nvme.data_dir, m).WithContext("sequence marker"));
  marker_ = m;
  return Status::Ok();
}

}  // namespace strata::cachestore
