// Rebuilding the NVMe tier's RocksDB index from the record headers in the segments, for when the
// index is lost, corrupt or behind what a Flush made durable (see markers.h for the check).
//
// Every 4 KiB boundary of every segment is examined: the whole device is read once, in windows
// of queue_depth / 4 I/Os of max_io bytes, four windows in flight (so at most queue_depth I/Os)
// while the previous one is parsed; each header that verifies has its payload checksummed
// (streaming XXH3) as the windows go by, so memory stays at five windows. Per
// (namespace, block key, family) the record with the highest sequence number wins if its
// payload verifies; if the newest header's payload does not verify, the key is dropped rather
// than an older version served. Records of a namespace deleted after they were written (the
// delete log) are skipped. The new index is written beside the old one ("index.rebuild") and
// swapped in by rename, so a crash during a rebuild leaves a directory that rebuilds again.
// Thread safety: one call at a time per data directory; the device may be shared.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "cachestore/nvme/device.h"
#include "cachestore/nvme/index.h"
#include "cachestore/nvme/markers.h"
#include "strata/status.h"

namespace rocksdb {
class Env;
}

namespace strata::cachestore {

struct RebuildStats {
  uint64_t bytes_read = 0;
  uint64_t headers = 0;           // record headers that verified (current, stale and copies)
  uint64_t bad_headers = 0;       // record magic, but checksum, version or fields fail
  uint64_t corrupt_payloads = 0;  // header verified, payload did not (or does not fit)
  uint64_t deleted = 0;           // of a namespace deleted after they were written
  uint64_t superseded = 0;        // older versions and duplicate copies (relocation)
  uint64_t dropped_keys = 0;      // newest version corrupt: key dropped
  uint64_t records = 0;           // entries in the rebuilt index
  uint64_t max_sequence = 0;      // highest sequence number of any verified header
  double seconds = 0;             // all of it
  double scan_seconds = 0;        // reading and checking the segments
};

struct RebuildOptions {
  std::string data_dir;
  IndexMeta geometry;
  Device* device = nullptr;  // the segments, geometry as above
  uint64_t max_io_bytes = 1 << 20;
  const DeleteLog* deletes = nullptr;  // null: nothing deleted
  // The rebuilt index's durable sequence is max(this, max_sequence).
  uint64_t durable_floor = 0;
  rocksdb::Env* env = nullptr;  // the index's RocksDB environment (null: default)
  std::function<void(uint64_t bytes_done, uint64_t bytes_total)> progress;
  // Segments not read (those of a drive missing at a degraded open): their records are left
  // out of the index, as recovery drops index entries whose records cannot be read.
  std::vector<uint32_t> skip_segments;
};

// Scans the segments and replaces <data_dir>/index with an index of what they hold. Fails
// (leaving the old index in place) if any read fails: an unreadable newer record could
// otherwise let an older version come back.
Result<RebuildStats> RebuildIndex(const RebuildOptions& options);

// Reads every byte of `dev` once, the way a rebuild does (see above), and hands each window to
// `visit` in address order (on the calling thread). The rebuild's I/O without its parsing: the
// limit that `strata bench store --only rebuild` measures it against.
Status ReadDevice(
    Device& dev, uint64_t max_io_bytes,
    const std::function<void(uint64_t begin, std::span<const std::byte> bytes)>& visit,
    std::span<const uint32_t> skip_segments = {});

// <data_dir>/index holds a RocksDB database (its CURRENT file exists).
bool IndexPresent(const std::string& data_dir);
// <data_dir>/segments holds segment files.
bool SegmentsPresent(const std::string& data_dir);
// The segment files have been written to by a store: a sequence marker exists, or the first
// segment starts with a record (a store's first record always goes there). Fresh, preallocated
// files (e.g. made by a test before the store opened) are not worth a rebuild.
bool SegmentsUsed(const std::string& data_dir);
// The geometry of the segment files (count of seg-NNNNNN.dat, size of the first); Corruption
// when they are not numbered 0..n-1 or not all the same size.
Result<IndexMeta> GeometryFromSegments(const std::string& data_dir);

}  // namespace strata::cachestore
