// The planner's NVMe probe reads the way the tier reads: at the store config's queue depth, in
// reads of its max_io_bytes. A device wrapper watches the probe's reads independently of the
// probe's own count (its own hooks on every op, chained to the probe's).
#include "engine/cost_probe.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/testing/temp_dir.h"

namespace strata::engine {
namespace {

namespace fs = std::filesystem;

// Forwards every batch to a real device, watching how many reads are in flight at once
// (handed to the device, not completed) and how many reads each Submit carries.
class WatchedDevice final : public cachestore::Device, cachestore::IoObserver {
 public:
  explicit WatchedDevice(std::unique_ptr<cachestore::Device> inner)
      : Device(inner->kind(), inner->segment_bytes(), inner->segment_count(), inner->queue_depth()),
        inner_(std::move(inner)) {}

  uint32_t max_reads_in_flight = 0;
  size_t max_reads_per_submit = 0;
  uint64_t reads = 0;

  void RegisterMemory(std::span<std::byte> region) override { inner_->RegisterMemory(region); }

 protected:
  Status SubmitImpl(std::span<cachestore::IoOp> ops) override {
    size_t n = 0;
    theirs_.clear();
    for (cachestore::IoOp& op : ops) {
      n += op.kind == cachestore::IoKind::kRead;
      theirs_.push_back(op.observer);
      op.tag = uint32_t(theirs_.size() - 1);  // the probe does not use tags
      op.observer = this;
    }
    max_reads_per_submit = std::max(max_reads_per_submit, n);
    Status s = inner_->Submit(ops);
    for (cachestore::IoOp& op : ops) op.observer = theirs_[op.tag];
    return s;
  }
  Status SyncImpl() override { return inner_->Sync(); }

 private:
  void BeforeSubmit(cachestore::IoOp& op) override {
    if (op.kind == cachestore::IoKind::kRead) {
      ++reads;
      max_reads_in_flight = std::max(max_reads_in_flight, ++in_flight_);
    }
    if (theirs_[op.tag]) theirs_[op.tag]->BeforeSubmit(op);
  }
  void OnComplete(cachestore::IoOp& op) override {
    if (op.kind == cachestore::IoKind::kRead) --in_flight_;
    if (theirs_[op.tag]) theirs_[op.tag]->OnComplete(op);
  }

  std::unique_ptr<cachestore::Device> inner_;
  std::vector<cachestore::IoObserver*> theirs_;
  uint32_t in_flight_ = 0;
};

class CostProbeTest : public ::testing::TestWithParam<uint32_t> {};  // the queue depth

TEST_P(CostProbeTest, DeviceProbeKeepsTheQueueDepthInFlight) {
  if (!cachestore::IoUringAvailable()) GTEST_SKIP() << "io_uring not available";
  const uint32_t qd = GetParam();
  testing::TempDir dir;
  cachestore::FileDeviceOptions fo;
  fo.dir = dir.Sub("dev");
  fo.segment_bytes = 8 << 20;
  fo.queue_depth = qd;
  auto inner = cachestore::OpenFileDevice(DeviceKind::kIoUring, fo);
  ASSERT_TRUE(inner.ok()) << inner.status().ToString();
  WatchedDevice dev(std::move(*inner));
  const uint32_t io = 256 << 10;  // 32 reads per pass, more than any depth tested
  auto p = MeasureDeviceRead(dev, 8 << 20, io, 2);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(dev.reads, 2u * 32);
  EXPECT_EQ(dev.max_reads_per_submit, 32u);  // one batch per pass, not one read at a time
  EXPECT_EQ(dev.max_reads_in_flight, qd);
  EXPECT_EQ(p->max_inflight, qd);
  EXPECT_EQ(p->bytes, 8u << 20);
  EXPECT_GT(p->bytes_per_s, 0);
}

TEST_P(CostProbeTest, NvmeProbeUsesTheStoreConfigsDepthAndIoSize) {
  if (!cachestore::IoUringAvailable()) GTEST_SKIP() << "io_uring not available";
  testing::TempDir dir;
  NvmeTierConfig c;
  c.data_dir = dir.Sub("data");
  c.device = DeviceKind::kIoUring;
  c.queue_depth = GetParam();
  c.max_io_bytes = 128 << 10;
  auto p = MeasureNvmeRead(c);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->queue_depth, GetParam());
  EXPECT_EQ(p->max_inflight, GetParam());  // observed: submitted and not yet completed
  EXPECT_EQ(p->io_bytes, 128u << 10);
  EXPECT_EQ(p->bytes, 32u << 20);  // 4 x depth x io is below the 32 MiB floor
  EXPECT_EQ(p->device, DeviceKind::kIoUring);
  EXPECT_FALSE(fs::exists(c.data_dir + "/.cost-probe"));  // the probe cleans up
}

INSTANTIATE_TEST_SUITE_P(Depths, CostProbeTest, ::testing::Values(3u, 8u));

TEST(CostProbeTest, PosixProbeReadsOneAtATimeAndSaysSo) {
  testing::TempDir dir;
  NvmeTierConfig c;
  c.data_dir = dir.Sub("data");
  c.device = DeviceKind::kPosix;  // pread: the backend has no queue, whatever the config says
  c.queue_depth = 8;
  auto p = MeasureNvmeRead(c);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->queue_depth, 8u);
  EXPECT_EQ(p->max_inflight, 1u);
  EXPECT_EQ(p->device, DeviceKind::kPosix);
}

TEST(CostProbeTest, NoDataDirectoryIsAClearError) {
  NvmeTierConfig c;
  auto p = MeasureNvmeRead(c);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("no data directory"), std::string::npos);
}

}  // namespace
}  // namespace strata::engine
