// Two small files beside the segments that let the store check its RocksDB index and rebuild it
// from the record headers without losing or resurrecting anything. Every integer is
// little-endian; every checksum is XXH3-64.
//
// <data_dir>/sequence: the sequence marker, 128 bytes, two 64-byte slots (at 0 and 64). Each
// write goes to slot generation % 2 and is fdatasync'd, so a torn write leaves the other slot
// intact; the valid slot with the higher generation is the marker.
//   offset  size  field
//   0       4     magic "STRQ" (bytes 53 54 52 51)
//   4       2     format version (1)
//   6       2     reserved, zero
//   8       8     generation (1, 2, ...; which slot is newer)
//   16      8     durable sequence: every record with a sequence number up to this one that a
//                 Flush acknowledged is in the index (written after the index's log is synced;
//                 the index keeps the same number in its meta column family)
//   24      8     sequence limit: every sequence number handed out so far is below this. Each
//                 open starts its numbers at max(limit, highest sequence known) and moves the
//                 limit 2^40 above that before writing anything, so no number is used twice
//                 even when records whose index entries were lost are still on disk.
//   32      24    reserved, zero
//   56      8     XXH3-64 of slot bytes 0..55
//
// <data_dir>/deletes: the delete log, append-only, 32-byte entries, one per Store::Delete(ns),
// fdatasync'd before Delete returns.
//   offset  size  field
//   0       4     magic "STRX" (bytes 53 54 52 58)
//   4       2     format version (1)
//   6       2     reserved, zero
//   8       8     namespace id
//   16      8     sequence: the store's next sequence number when the namespace was deleted;
//                 records of the namespace with a lower sequence number are deleted
//   24      8     XXH3-64 of entry bytes 0..23
// A partial or failing last entry is a torn append (that Delete never returned) and is ignored
// and overwritten by the next append. A failing entry followed by valid ones is damage: it is
// read as "every namespace deleted below the next valid entry's sequence", which may drop live
// records in a rebuild but never brings deleted ones back.
// DataDirLock: an exclusive flock(2) on the data directory itself, held by an open store and by
// an index rebuild, so that `strata fsck --rebuild-index` never swaps the index of a running
// store (RocksDB's own lock covers only the index folder, which a rebuild replaces).
// Thread safety: none; the store serialises calls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "strata/status.h"
#include "strata/store.h"

namespace strata::cachestore {

inline constexpr char kSequenceMarkerFile[] = "sequence";
inline constexpr char kDeleteLogFile[] = "deletes";
inline constexpr uint64_t kSequencesPerOpen = 1ull << 40;

struct SequenceMarker {
  uint64_t generation = 0;
  uint64_t durable_sequence = 0;
  uint64_t sequence_limit = 0;
};

// nullopt when the file does not exist; Corruption when neither slot is valid.
Result<std::optional<SequenceMarker>> ReadSequenceMarker(const std::string& data_dir);
// Writes `m` with generation m.generation + 1 (updated in place) and fdatasyncs it.
Status WriteSequenceMarker(const std::string& data_dir, SequenceMarker& m);

class DeleteLog {
 public:
  // Reads <data_dir>/deletes (absent: empty).
  static Result<DeleteLog> Load(const std::string& data_dir);

  // Appends (ns, sequence) and fdatasyncs it.
  Status Append(NamespaceId ns, uint64_t sequence);

  // Records of `ns` with a sequence number below this are deleted (0: none).
  uint64_t DeletedBelow(NamespaceId ns) const;
  // Highest sequence of any entry (0: none).
  uint64_t max_sequence() const { return max_sequence_; }
  uint64_t entries() const { return entries_; }
  uint64_t damaged_entries() const { return damaged_; }

 private:
  std::string path_;
  uint64_t append_offset_ = 0;  // end of the last valid entry
  std::unordered_map<NamespaceId, uint64_t> below_;
  uint64_t all_below_ = 0;  // from damaged entries
  uint64_t max_sequence_ = 0;
  uint64_t entries_ = 0, damaged_ = 0;
};

class DataDirLock {
 public:
  // FailedPrecondition when another store or rebuild holds it.
  static Result<DataDirLock> Acquire(const std::string& data_dir);
  DataDirLock() = default;
  DataDirLock(DataDirLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  DataDirLock& operator=(DataDirLock&& o) noexcept;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock();

 private:
  int fd_ = -1;
};

}  // namespace strata::cachestore
