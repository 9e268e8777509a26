// The I/Os of a batch of records. Each record is split into I/Os of at most max_io bytes;
// `before(r)` runs just before the first I/O of record r is submitted and `done(r)` once all of
// its I/Os have completed, both on the submitting thread, so per-record CPU work (checksums,
// headers, decoding) overlaps the transfer of the records around it.
// Thread safety: one batch, one thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <vector>

#include "cachestore/nvme/device.h"
#include "cachestore/nvme/record.h"

namespace strata::cachestore {

class RecordBatch final : public IoObserver {
 public:
  using Hook = std::function<void(size_t record)>;
  RecordBatch(size_t records, Hook before, Hook done)
      : started_(records, false),
        remaining_(records, 0),
        before_(std::move(before)),
        done_(std::move(done)) {}

  void Add(IoKind kind, uint64_t offset, std::byte* buf, uint64_t len, uint64_t max_io,
           size_t record) {
    for (uint64_t d = 0; d < len; d += max_io) {
      IoOp op{kind, offset + d, buf + d, size_t(std::min(max_io, len - d))};
      op.observer = this;
      op.tag = uint32_t(record);
      ops_.push_back(op);
      ++remaining_[record];
    }
  }

  // Submits every I/O (timing it into `micros`); afterwards Complete(r) tells whether all of
  // record r's I/Os succeeded.
  Status Submit(Device& dev, std::atomic<uint64_t>& micros) {
    if (ops_.empty()) return Status::Ok();
    const auto t0 = std::chrono::steady_clock::now();
    Status s = dev.Submit(ops_);
    micros.fetch_add(uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now() - t0)
                                  .count()),
                     std::memory_order_relaxed);
    return s;
  }
  bool Complete(size_t record) const { return started_[record] && remaining_[record] == 0; }

  void BeforeSubmit(IoOp& op) override {
    if (started_[op.tag]) return;
    started_[op.tag] = true;
    if (before_) before_(op.tag);
  }
  void OnComplete(IoOp& op) override {
    if (--remaining_[op.tag] == 0 && done_) done_(op.tag);
  }

 private:
  std::vector<IoOp> ops_;
  std::vector<bool> started_;
  std::vector<uint32_t> remaining_;
  Hook before_, done_;
};

// Checks a record's header against what the index says of it.
Status CheckRecordHeader(const RecordHeader& h, const ObjectKey& key, uint64_t fingerprint,
                         uint64_t sequence, uint64_t raw_size, uint64_t stored_size,
                         CodecKind codec, uint64_t checksum);

}  // namespace strata::cachestore
