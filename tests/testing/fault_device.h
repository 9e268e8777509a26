// A Device wrapper that injects faults the real disk cannot be made to produce on demand:
// failing writes (EIO or ENOSPC), failing reads, failing syncs. Everything else goes to the
// wrapped device.
#pragma once

#include <atomic>
#include <cerrno>
#include <memory>

#include "cachestore/device.h"

namespace strata::testing {

class FaultDevice final : public cachestore::Device {
 public:
  explicit FaultDevice(std::unique_ptr<cachestore::Device> inner)
      : Device(inner->kind(), inner->segment_bytes(), inner->segment_count(), inner->queue_depth()),
        inner_(std::move(inner)) {}

  std::atomic<int> write_errno{0};  // non-zero: every write fails with it
  std::atomic<int> read_errno{0};
  std::atomic<bool> fail_sync{false};

  cachestore::Device& inner() { return *inner_; }

 protected:
  Status SubmitImpl(std::span<cachestore::IoOp> ops) override {
    Status first;
    for (auto& op : ops) {
      const int err =
          op.kind == cachestore::IoKind::kWrite ? write_errno.load() : read_errno.load();
      if (err) {
        op.error = err;
        if (first.ok())
          first = err == ENOSPC ? Status::NoSpace("injected ENOSPC")
                                : Status::IoError("injected I/O error");
        continue;
      }
      Status s = inner_->Submit(std::span(&op, 1));
      if (!s.ok() && first.ok()) first = s;
    }
    return first;
  }
  Status SyncImpl() override {
    if (fail_sync) return Status::IoError("injected fdatasync failure");
    return inner_->Sync();
  }

 private:
  std::unique_ptr<cachestore::Device> inner_;
};

}  // namespace strata::testing
