// A Device wrapper that injects faults the real disk cannot be made to produce on demand:
// failing writes (EIO or ENOSPC), failing reads, failing syncs. Everything else goes to the
// wrapped device: ops that are not failed are forwarded as one batch (so an io_uring device
// sees the batch whole), and registered memory is forwarded (so it uses its fixed buffers).
#pragma once

#include <atomic>
#include <cerrno>
#include <memory>
#include <vector>

#include "cachestore/nvme/device.h"

namespace strata::testing {

// Submits ops[index[0]], ops[index[1]], ... to `inner` as one batch and copies each op's error
// back; returns `first` if it already holds an error, else the batch's status.
inline Status ForwardBatch(cachestore::Device& inner, std::span<cachestore::IoOp> ops,
                           const std::vector<size_t>& index, Status first) {
  if (index.empty()) return first;
  std::vector<cachestore::IoOp> forward;
  for (size_t i : index) forward.push_back(ops[i]);
  Status s = inner.Submit(forward);
  for (size_t i = 0; i < forward.size(); ++i) ops[index[i]].error = forward[i].error;
  return first.ok() ? s : first;
}

class FaultDevice final : public cachestore::Device {
 public:
  explicit FaultDevice(std::unique_ptr<cachestore::Device> inner)
      : Device(inner->kind(), inner->segment_bytes(), inner->segment_count(), inner->queue_depth()),
        inner_(std::move(inner)) {}

  std::atomic<int> write_errno{0};  // non-zero: every write fails with it
  std::atomic<int> read_errno{0};
  std::atomic<bool> fail_sync{false};

  cachestore::Device& inner() { return *inner_; }

  void RegisterMemory(std::span<std::byte> region) override { inner_->RegisterMemory(region); }

 protected:
  Status SubmitImpl(std::span<cachestore::IoOp> ops) override {
    Status first;
    std::vector<size_t> index;
    for (size_t i = 0; i < ops.size(); ++i) {
      auto& op = ops[i];
      const int err =
          op.kind == cachestore::IoKind::kWrite ? write_errno.load() : read_errno.load();
      if (err) {
        op.error = err;
        if (first.ok())
          first = err == ENOSPC ? Status::NoSpace("injected ENOSPC")
                                : Status::IoError("injected I/O error");
        continue;
      }
      index.push_back(i);
    }
    return ForwardBatch(*inner_, ops, index, first);
  }
  Status SyncImpl() override {
    if (fail_sync) return Status::IoError("injected fdatasync failure");
    return inner_->Sync();
  }

 private:
  std::unique_ptr<cachestore::Device> inner_;
};

}  // namespace strata::testing
