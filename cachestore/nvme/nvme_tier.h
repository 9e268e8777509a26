// The NVMe tier's data mover: records written from and read into the host arena on a Device
// (io_uring or posix, O_DIRECT), with per-family codecs and SWA thinning on the way down. The
// placement core decides where records go; this class only moves and verifies bytes.
// Thread safety: calls on disjoint records may run concurrently (the Device is thread-safe).
#pragma once

#include <atomic>
#include <memory>

#include "cachestore/nvme/codec_rule.h"
#include "cachestore/nvme/device.h"
#include "cachestore/placement/tier.h"

namespace strata::cachestore {

class NvmeTier final : public LowerTier {
 public:
  // `host_base`: the host arena's memory, which records are written from and read into.
  NvmeTier(Device& device, const StoreConfig& config, std::byte* host_base);

  Tier tier() const override { return Tier::kNvme; }
  void Encode(std::span<RecordIo> ios) override;
  Status Write(std::span<RecordIo> ios) override;
  Status Read(std::span<RecordIo> ios) override;
  void Copy(std::span<RecordMove> moves) override;
  Status Sync() override { return device_.Sync(); }
  const CodecChooser& codecs() const { return codecs_; }

  // Wall time spent inside device reads / writes.
  std::atomic<uint64_t> read_us{0}, write_us{0};

 private:
  Device& device_;
  const StoreConfig config_;
  std::byte* host_base_;
  CodecChooser codecs_;
};

}  // namespace strata::cachestore
