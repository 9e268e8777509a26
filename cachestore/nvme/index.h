// The NVMe tier's index: RocksDB maps (namespace, block key, family) to the record's location,
// sizes, checksum and access statistics. RocksDB stays inside this adapter.
//
// Key (25 bytes): namespace (8, big-endian), block key hi (8, BE), lo (8, BE), family (1);
// big-endian so that one namespace is one contiguous key range.
// Value (88 bytes, little-endian): version u8, codec u8, 6 reserved, fingerprint u64,
// sequence u64, offset u64, raw size u64, stored size u64, payload checksum u64,
// last access (unix seconds) u64, hits u64, reserved u64 x 2.
// The "meta" column family holds the data directory's geometry ("geometry": format version,
// segment bytes, segment count, u64 each) and the durable sequence ("durable_sequence", u64: the
// highest sequence number a Flush made durable; compared with the sequence marker file at open,
// see markers.h).
// Thread safety: safe for concurrent use (RocksDB's guarantee).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "cachestore/placement/record_index.h"
#include "strata/status.h"
#include "strata/store.h"

namespace rocksdb {
class DB;
class Env;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace strata::cachestore {

struct IndexMeta {
  uint32_t format_version = 1;
  uint64_t segment_bytes = 0;
  uint32_t segment_count = 0;
};

class Index final : public RecordIndex {
 public:
  // `env`: the RocksDB environment the index's files go through (null: the default one). Tests
  // pass one whose file system models power loss.
  static Result<std::unique_ptr<Index>> Open(const std::string& dir, rocksdb::Env* env = nullptr);
  ~Index() override;

  Status Put(std::span<const IndexEntry> entries) override;
  Status Delete(std::span<const ObjectKey> keys) override;
  Status DeleteNamespace(NamespaceId ns) override;
  Status Sync() override;  // every write before it is durable
  // Visits every entry in key order; the visitor returns false to stop.
  Status Scan(const std::function<bool(const IndexEntry&)>& visit) const;

  Result<std::optional<IndexMeta>> GetMeta() const;
  Status PutMeta(const IndexMeta& meta);
  // 0 when never written. The put is not synced: Sync() makes it durable with the entries
  // written before it (one log, so a log cut short loses the number with them).
  Result<uint64_t> GetDurableSequence() const;
  Status PutDurableSequence(uint64_t sequence);
  // Writes the memtables to table files (after a bulk load, and for tests that need an .sst).
  Status FlushMemtables();

  static std::string EncodeKey(const ObjectKey& key);

 private:
  Index() = default;
  // After a failed write RocksDB refuses further writes (and must not be synced) until
  // Resume() succeeds, e.g. once disk space is back. Returns ok when writes may go on.
  Status CheckHealthy();
  Status Write(rocksdb::WriteBatch* batch, const char* what);

  // Serialises every write and sync. RocksDB allows concurrent writers, but its write groups hand
  // the leader role over through atomics inside the library that ThreadSanitizer cannot see (the
  // Debian library is not instrumented), and the index's writes are few and small (one batch per
  // group of records), so one writer at a time costs nothing measurable and keeps TSan exact.
  std::mutex write_mu_;
  std::atomic<bool> failed_{false};
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* entries_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
};

}  // namespace strata::cachestore
