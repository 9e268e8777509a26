#include "engine/cost_probe.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <vector>

namespace strata::engine {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Counts reads handed to the device and not yet completed. The hooks run on the submitting
// thread (cachestore/device.h), so plain counters suffice.
class InflightCounter final : public cachestore::IoObserver {
 public:
  void BeforeSubmit(cachestore::IoOp&) override { max_ = std::max(max_, ++now_); }
  void OnComplete(cachestore::IoOp&) override { --now_; }
  uint32_t max() const { return max_; }

 private:
  uint32_t now_ = 0, max_ = 0;
};

}  // namespace

double MeasureHostCopy(size_t bytes) {
  std::vector<char> a(bytes, 1), b(bytes, 2);
  std::memcpy(b.data(), a.data(), bytes);  // warm-up: faults both buffers in
  std::vector<double> rates;
  for (int i = 0; i < 3; ++i) {
    a[size_t(i)] = char(i);  // the copies are not identical, so none can be elided
    const auto t = Clock::now();
    std::memcpy(b.data(), a.data(), bytes);
    rates.push_back(double(bytes) / std::max(Since(t), 1e-9));
  }
  return Median(rates);
}

Result<DiskReadProbe> MeasureDeviceRead(cachestore::Device& dev, uint64_t bytes, uint32_t io_bytes,
                                        int passes) {
  if (bytes == 0 || io_bytes == 0 || bytes % cachestore::kIoAlign ||
      io_bytes % cachestore::kIoAlign || dev.segment_bytes() % io_bytes || bytes > dev.size() ||
      passes < 1)
    return Status::InvalidArgument("disk probe: bad sizes");
  cachestore::AlignedBuffer buf(bytes);
  if (!buf.data()) return Status::ResourceExhausted("disk probe: buffer");
  std::memset(buf.data(), 0x5a, bytes);  // real data: reads of never-written extents skip the disk
  dev.RegisterMemory(buf.span());
  InflightCounter inflight;
  auto ops = [&](cachestore::IoKind kind) {
    std::vector<cachestore::IoOp> v;
    for (uint64_t off = 0; off < bytes; off += io_bytes) {
      const size_t len = size_t(std::min<uint64_t>(io_bytes, bytes - off));
      v.push_back({kind, off, buf.data() + off, len, 0, &inflight, 0});
    }
    return v;
  };
  std::vector<cachestore::IoOp> writes = ops(cachestore::IoKind::kWrite);
  STRATA_RETURN_IF_ERROR(dev.Submit(writes));
  STRATA_RETURN_IF_ERROR(dev.Sync());
  DiskReadProbe p;
  inflight = InflightCounter();  // count the reads only
  std::vector<double> rates;
  for (int i = 0; i < passes; ++i) {
    std::vector<cachestore::IoOp> reads = ops(cachestore::IoKind::kRead);
    const auto t = Clock::now();
    STRATA_RETURN_IF_ERROR(dev.Submit(reads));  // one batch: the device keeps its depth busy
    rates.push_back(double(bytes) / std::max(Since(t), 1e-9));
  }
  p.bytes_per_s = Median(rates);
  p.bytes = bytes;
  p.io_bytes = io_bytes;
  p.queue_depth = dev.queue_depth();
  p.max_inflight = inflight.max();
  p.passes = passes;
  p.device = dev.kind();
  return p;
}

Result<DiskReadProbe> MeasureNvmeRead(const NvmeTierConfig& config) {
  if (config.data_dir.empty()) return Status::InvalidArgument("disk probe: no data directory");
  const uint32_t io = std::max<uint32_t>(config.max_io_bytes / 4096 * 4096, 4096);
  const uint32_t qd = std::max<uint32_t>(config.queue_depth, 1);
  uint64_t bytes = std::clamp<uint64_t>(4ull * qd * io, 32ull << 20, 256ull << 20);
  bytes = std::max<uint64_t>(bytes / io * io, io);
  const std::string dir = config.data_dir + "/.cost-probe";
  cachestore::FileDeviceOptions fo;
  fo.dir = dir;
  fo.segment_bytes = bytes;
  fo.segment_count = 1;
  fo.queue_depth = qd;
  Result<DiskReadProbe> r = Status::Internal("disk probe: not run");
  {
    auto dev = cachestore::OpenFileDevice(config.device, fo);
    if (!dev.ok()) {
      r = dev.status();
    } else {
      r = MeasureDeviceRead(**dev, bytes, io);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!r.ok()) return r.status().WithContext("NVMe bandwidth probe in " + config.data_dir);
  return r;
}

Result<MeasuredCosts> MeasureStoreCosts(const StoreConfig& config) {
  MeasuredCosts m;
  m.cost[Tier::kHost] = MeasureHostCopy();
  if (!config.nvme.data_dir.empty()) {
    STRATA_ASSIGN_OR_RETURN(m.nvme, MeasureNvmeRead(config.nvme));
    m.cost[Tier::kNvme] = m.nvme.bytes_per_s;
  }
  return m;
}

}  // namespace strata::engine
