#include "cachestore/nvme/fsck.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <vector>

#include "cachestore/nvme/device.h"
#include "cachestore/nvme/index.h"
#include "cachestore/nvme/markers.h"
#include "cachestore/nvme/record.h"

namespace strata::cachestore {
namespace {

// `s` with a hint at the way out, when it says the index is damaged.
Status WithRebuildHint(const Status& s, const std::string& data_dir) {
  if (!s.IsCorruption()) return s;
  return Status::Corruption(data_dir + ": the index is damaged (" + s.message() +
                            "); `strata fsck --rebuild-index --data-dir " + data_dir +
                            "` rebuilds it from the segments (opening the store does too)");
}

Result<std::unique_ptr<Index>> OpenExistingIndex(const std::string& data_dir, IndexMeta* meta) {
  const auto path = std::filesystem::path(data_dir) / "index";
  if (!IndexPresent(data_dir)) {
    if (SegmentsPresent(data_dir))
      return Status::NotFound(data_dir + ": the index is missing but segment files exist; " +
                              "`strata fsck --rebuild-index --data-dir " + data_dir +
                              "` rebuilds it from the segments (opening the store does too)");
    return Status::NotFound(data_dir + " is not a strata data directory (no index)");
  }
  auto index = Index::Open(path.string());
  if (!index.ok()) return WithRebuildHint(index.status(), data_dir);
  auto m = (*index)->GetMeta();
  if (!m.ok()) return WithRebuildHint(m.status(), data_dir);
  if (!*m) return Status::Corruption(data_dir + ": index has no geometry record");
  // An index whose log was cut short opens fine; the sequence marker tells (see markers.h).
  auto durable = (*index)->GetDurableSequence();
  if (!durable.ok()) return WithRebuildHint(durable.status(), data_dir);
  auto marker = ReadSequenceMarker(data_dir);
  if (!marker.ok()) return WithRebuildHint(marker.status(), data_dir);
  if (*marker && *durable < (*marker)->durable_sequence)
    return WithRebuildHint(
        Status::Corruption("it holds what was flushed up to sequence " + std::to_string(*durable) +
                           " but sequence " + std::to_string((*marker)->durable_sequence) +
                           " was made durable"),
        data_dir);
  *meta = **m;
  return std::move(index).value();
}

// The segment files of `data_dir` with the geometry `g`, on the device fsck was asked for.
Result<std::unique_ptr<Device>> OpenSegments(const std::string& data_dir, const IndexMeta& g,
                                             const FsckOptions& options) {
  FileDeviceOptions fo;
  fo.dir = (std::filesystem::path(data_dir) / "segments").string();
  fo.segment_bytes = g.segment_bytes;
  fo.segment_count = g.segment_count;
  fo.queue_depth = options.queue_depth;
  return OpenFileDevice(options.device, fo);
}

// Rebuilds the index of `data_dir` from its segments; the sequence marker is rewritten when it
// is unreadable, so that the store's next open does not rebuild again.
Result<RebuildStats> Rebuild(const std::string& data_dir, const FsckOptions& options) {
  if (!SegmentsPresent(data_dir))
    return Status::NotFound(data_dir + " is not a strata data directory (no segment files)");
  STRATA_ASSIGN_OR_RETURN(DataDirLock lock, DataDirLock::Acquire(data_dir));
  STRATA_ASSIGN_OR_RETURN(IndexMeta geometry, GeometryFromSegments(data_dir));
  STRATA_ASSIGN_OR_RETURN(auto device, OpenSegments(data_dir, geometry, options));
  STRATA_ASSIGN_OR_RETURN(DeleteLog deletes, DeleteLog::Load(data_dir));
  auto marker = ReadSequenceMarker(data_dir);
  if (!marker.ok() && !marker.status().IsCorruption()) return marker.status();
  SequenceMarker m;
  if (marker.ok() && *marker) m = **marker;
  RebuildOptions ro;
  ro.data_dir = data_dir;
  ro.geometry = geometry;
  ro.device = device.get();
  ro.deletes = &deletes;
  ro.durable_floor = m.durable_sequence;
  ro.progress = options.rebuild_progress;
  STRATA_ASSIGN_OR_RETURN(RebuildStats st, RebuildIndex(ro));
  if (!marker.ok()) {
    m.durable_sequence = std::max(m.durable_sequence, st.max_sequence);
    m.sequence_limit = std::max({m.sequence_limit, st.max_sequence + 1, deletes.max_sequence()});
    STRATA_RETURN_IF_ERROR(WriteSequenceMarker(data_dir, m));
  }
  return st;
}

void Add(DataDirStats& s, const IndexEntry& e) {
  auto& f = s.families[int(e.key.family)];
  f.records++;
  f.raw_bytes += e.raw_size;
  f.stored_bytes += e.stored_size;
  s.records++;
  s.disk_bytes += RecordSpan(e.stored_size);
}

}  // namespace

Result<DataDirStats> ReadDataDirStats(const std::string& data_dir) {
  IndexMeta meta;
  STRATA_ASSIGN_OR_RETURN(auto index, OpenExistingIndex(data_dir, &meta));
  DataDirStats s;
  s.segment_bytes = meta.segment_bytes;
  s.segment_count = meta.segment_count;
  STRATA_RETURN_IF_ERROR(WithRebuildHint(index->Scan([&](const IndexEntry& e) {
    Add(s, e);
    return true;
  }),
                                         data_dir));
  return s;
}

Result<FsckReport> Fsck(const std::string& data_dir, const FsckOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  FsckReport r;
  if (options.rebuild_index) {
    STRATA_ASSIGN_OR_RETURN(r.rebuild, Rebuild(data_dir, options));
    r.rebuilt = true;
  }
  IndexMeta meta;
  STRATA_ASSIGN_OR_RETURN(auto index, OpenExistingIndex(data_dir, &meta));
  STRATA_ASSIGN_OR_RETURN(auto device, OpenSegments(data_dir, meta, options));

  std::vector<IndexEntry> entries;
  STRATA_RETURN_IF_ERROR(WithRebuildHint(index->Scan([&](const IndexEntry& e) {
    entries.push_back(e);
    return true;
  }),
                                         data_dir));
  r.stats.segment_bytes = meta.segment_bytes;
  r.stats.segment_count = meta.segment_count;
  std::vector<ObjectKey> bad;
  // Read in batches of up to 64 MiB, queue_depth I/Os in flight.
  constexpr uint64_t kBatchBytes = 64ull << 20;
  size_t i = 0;
  while (i < entries.size()) {
    std::vector<AlignedBuffer> bufs;
    std::vector<IoOp> ops;
    std::vector<size_t> owner;
    uint64_t batch_bytes = 0;
    const size_t first = i;
    for (; i < entries.size() && (batch_bytes < kBatchBytes || i == first); ++i) {
      const IndexEntry& e = entries[i];
      const uint64_t span = RecordSpan(e.stored_size);
      bufs.emplace_back();
      if (e.offset % kRecordAlign || e.offset + span > device->size() ||
          e.offset / meta.segment_bytes != (e.offset + span - 1) / meta.segment_bytes)
        continue;  // bad location; buffer stays empty
      bufs.back() = AlignedBuffer(span);
      for (uint64_t done = 0; done < span; done += (1u << 20)) {
        ops.push_back(IoOp{IoKind::kRead, e.offset + done, bufs.back().data() + done,
                           size_t(std::min<uint64_t>(1u << 20, span - done))});
        owner.push_back(i);
      }
      batch_bytes += span;
    }
    std::vector<bool> io_failed(i - first, false);
    if (!ops.empty()) {
      Status s = device->Submit(ops);
      for (size_t j = 0; j < ops.size(); ++j)
        if (ops[j].error) io_failed[owner[j] - first] = true;
      (void)s;  // per-op errors are recorded above
    }
    for (size_t k = first; k < i; ++k) {
      const IndexEntry& e = entries[k];
      const AlignedBuffer& buf = bufs[k - first];
      r.checked++;
      if (!buf.data()) {
        r.bad_location++;
        bad.push_back(e.key);
        continue;
      }
      r.bytes_read += buf.size();
      if (io_failed[k - first]) {
        r.missing++;
        bad.push_back(e.key);
        continue;
      }
      auto h = DecodeRecordHeader(
          std::span<const std::byte, kRecordHeaderSize>(buf.data(), kRecordHeaderSize));
      if (!h.ok() || h->key != e.key || h->sequence != e.sequence) {
        (h.ok() || h.status().IsNotFound() ? r.missing : r.corrupt)++;
        bad.push_back(e.key);
        continue;
      }
      if (h->stored_size != e.stored_size || h->raw_size != e.raw_size ||
          h->payload_checksum != e.checksum || h->fingerprint != e.fingerprint ||
          PayloadChecksum({buf.data() + kRecordHeaderSize, e.stored_size}) != e.checksum) {
        r.corrupt++;
        bad.push_back(e.key);
        continue;
      }
      r.ok++;
      Add(r.stats, e);
    }
    if (options.progress) options.progress(i, entries.size());
  }
  if (options.repair && !bad.empty()) {
    STRATA_RETURN_IF_ERROR(index->Delete(bad));
    STRATA_RETURN_IF_ERROR(index->Sync());
    r.repaired = bad.size();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace strata::cachestore
