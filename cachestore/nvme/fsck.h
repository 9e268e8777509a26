// Offline checks of a data directory: `strata fsck` (every record's header and payload
// checksum against its index entry; with rebuild_index it first rebuilds the index from the
// segments' record headers, see rebuild.h) and `strata stats` (what is stored per family).
// A missing or corrupt index is a clear error that names the way out (--rebuild-index).
// Both open the directory exclusively (RocksDB's lock): not while a store has it open.
// Thread safety: free functions; one call at a time per directory.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "cachestore/nvme/rebuild.h"
#include "strata/family.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::cachestore {

struct FamilyTotals {
  uint64_t records = 0;
  uint64_t raw_bytes = 0;
  uint64_t stored_bytes = 0;  // payload bytes on disk (after codec)
};

struct DataDirStats {
  uint64_t segment_bytes = 0;
  uint32_t segment_count = 0;
  std::array<FamilyTotals, kNumFamilies> families{};
  uint64_t records = 0;
  uint64_t disk_bytes = 0;  // record spans, padding included
};

struct FsckReport {
  DataDirStats stats;    // over the records that verified
  uint64_t checked = 0;  // index entries examined
  uint64_t ok = 0;
  uint64_t bad_location = 0;  // entry points outside a segment
  uint64_t missing = 0;       // no record (or another record) at the entry's location
  uint64_t corrupt = 0;       // header or payload checksum mismatch
  uint64_t repaired = 0;      // bad entries removed (with repair)
  uint64_t bytes_read = 0;
  double seconds = 0;
  bool rebuilt = false;  // with rebuild_index
  RebuildStats rebuild;
  bool clean() const { return bad_location == 0 && missing == 0 && corrupt == 0; }
};

struct FsckOptions {
  bool repair = false;         // remove index entries that fail
  bool rebuild_index = false;  // rebuild the index from the segments first
  DeviceKind device = DeviceKind::kAuto;
  uint32_t queue_depth = 32;
  std::function<void(uint64_t done, uint64_t total)> progress;  // records; now and then
  std::function<void(uint64_t bytes_done, uint64_t bytes_total)> rebuild_progress;
};

Result<DataDirStats> ReadDataDirStats(const std::string& data_dir);
Result<FsckReport> Fsck(const std::string& data_dir, const FsckOptions& options);

}  // namespace strata::cachestore
