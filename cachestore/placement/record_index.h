// The index of the tiers below the host, as the placement core sees it: where each record is,
// so that a restart finds it. The NVMe tier's is RocksDB (index.h); the simulator's keeps
// nothing (NullRecordIndex).
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <cstdint>
#include <span>

#include "strata/status.h"
#include "strata/store.h"

namespace strata::cachestore {

struct IndexEntry {
  ObjectKey key;
  CodecKind codec = CodecKind::kNone;
  uint64_t fingerprint = 0;
  uint64_t sequence = 0;
  uint64_t offset = 0;  // device address of the record
  uint64_t raw_size = 0;
  uint64_t stored_size = 0;
  uint64_t checksum = 0;
  uint64_t last_access = 0;
  uint64_t hits = 0;
};

class RecordIndex {
 public:
  virtual ~RecordIndex() = default;
  virtual Status Put(std::span<const IndexEntry> entries) = 0;
  virtual Status Delete(std::span<const ObjectKey> keys) = 0;
  virtual Status DeleteNamespace(NamespaceId ns) = 0;
  virtual Status Sync() = 0;  // every write before it is durable
};

class NullRecordIndex final : public RecordIndex {
 public:
  Status Put(std::span<const IndexEntry>) override { return Status::Ok(); }
  Status Delete(std::span<const ObjectKey>) override { return Status::Ok(); }
  Status DeleteNamespace(NamespaceId) override { return Status::Ok(); }
  Status Sync() override { return Status::Ok(); }
};

}  // namespace strata::cachestore
