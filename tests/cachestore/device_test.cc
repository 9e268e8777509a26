#include "cachestore/nvme/device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "bench/v4_payload.h"
#include "tests/testing/temp_dir.h"

namespace strata::cachestore {
namespace {

class DeviceTest : public ::testing::TestWithParam<DeviceKind> {
 protected:
  std::unique_ptr<Device> Open(uint32_t qd = 8) {
    if (GetParam() == DeviceKind::kIoUring && !IoUringAvailable()) return nullptr;
    FileDeviceOptions o;
    o.dir = dir_.Sub("seg");
    o.segment_bytes = 1 << 20;
    o.segment_count = 4;
    o.queue_depth = qd;
    auto d = OpenFileDevice(GetParam(), o);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? std::move(d).value() : nullptr;
  }
  testing::TempDir dir_;
};

TEST_P(DeviceTest, ManyOpsInFlightRoundTrip) {
  auto dev = Open(4);
  if (!dev) GTEST_SKIP() << "io_uring not available";
  AlignedBuffer w(64 * 4096), r(64 * 4096);
  bench::FillPseudoRandom(w.data(), w.size(), 11);
  std::vector<IoOp> ops;
  for (int i = 0; i < 64; ++i)  // 64 ops at queue depth 4, scattered over segments
    ops.push_back({IoKind::kWrite, uint64_t((i * 37) % 256) * 4096 * 4 % (4 << 20),
                   w.data() + i * 4096, 4096});
  ASSERT_TRUE(dev->Submit(ops).ok());
  for (auto& op : ops) {
    op.kind = IoKind::kRead;
    op.buf = r.data() + (op.buf - w.data());
  }
  ASSERT_TRUE(dev->Submit(ops).ok());
  EXPECT_EQ(std::memcmp(w.data(), r.data(), w.size()), 0);
  EXPECT_EQ(dev->counters().writes.load(), 64u);
  EXPECT_EQ(dev->counters().read_bytes.load(), 64u * 4096);
}

TEST_P(DeviceTest, RegisteredMemoryIsUsedForIo) {
  auto dev = Open();
  if (!dev) GTEST_SKIP() << "io_uring not available";
  AlignedBuffer region(1 << 20);
  dev->RegisterMemory(region.span());
  bench::FillPseudoRandom(region.data(), 256 << 10, 3);
  ASSERT_TRUE(dev->Write(1 << 20, region.data(), 256 << 10).ok());
  ASSERT_TRUE(dev->Read(1 << 20, region.data() + (512 << 10), 256 << 10).ok());
  EXPECT_EQ(std::memcmp(region.data(), region.data() + (512 << 10), 256 << 10), 0);
  // io_uring must really have used the registered region (READ_FIXED / WRITE_FIXED): a failed
  // registration silently falls back to plain I/O, which this catches. A buffer outside the
  // region is plain I/O on every backend.
  const uint64_t fixed = dev->counters().fixed_ios.load();
  if (GetParam() == DeviceKind::kIoUring)
    EXPECT_GE(fixed, 2u) << "registration failed: no I/O went through fixed buffers";
  else
    EXPECT_EQ(fixed, 0u);
  AlignedBuffer outside(4096);
  ASSERT_TRUE(dev->Read(1 << 20, outside.data(), 4096).ok());
  EXPECT_EQ(std::memcmp(outside.data(), region.data(), 4096), 0);
  EXPECT_EQ(dev->counters().fixed_ios.load(), fixed);
}

TEST_P(DeviceTest, RejectsUnalignedOutOfBoundsAndCrossSegmentIo) {
  auto dev = Open();
  if (!dev) GTEST_SKIP() << "io_uring not available";
  AlignedBuffer b(8192);
  EXPECT_EQ(dev->Write(100, b.data(), 4096).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dev->Write(0, b.data() + 1, 4096).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dev->Write(0, b.data(), 100).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dev->Read(4 << 20, b.data(), 4096).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dev->Read((1 << 20) - 4096, b.data(), 8192).code(), StatusCode::kInvalidArgument);
}

TEST_P(DeviceTest, DataSurvivesReopen) {
  if (GetParam() == DeviceKind::kMemory) GTEST_SKIP() << "memory device is not persistent";
  AlignedBuffer w(4096), r(4096);
  bench::FillPseudoRandom(w.data(), 4096, 1);
  {
    auto dev = Open();
    if (!dev) GTEST_SKIP() << "io_uring not available";
    ASSERT_TRUE(dev->Write(3 << 20, w.data(), 4096).ok());
    ASSERT_TRUE(dev->Sync().ok());
  }
  auto dev = Open();
  ASSERT_TRUE(dev->Read(3 << 20, r.data(), 4096).ok());
  EXPECT_EQ(std::memcmp(w.data(), r.data(), 4096), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, DeviceTest,
                         ::testing::Values(DeviceKind::kMemory, DeviceKind::kPosix,
                                           DeviceKind::kIoUring),
                         [](const auto& info) { return std::string(DeviceKindName(info.param)); });

TEST(DeviceOpenTest, PreallocationBeyondTheDiskIsNoSpace) {
  testing::TempDir dir;
  FileDeviceOptions o;
  o.dir = dir.path();
  o.segment_bytes = 1ull << 50;  // 1 PiB: no filesystem here has that
  o.segment_count = 1;
  auto d = OpenFileDevice(DeviceKind::kPosix, o);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.status().IsNoSpace()) << d.status().ToString();
}

}  // namespace
}  // namespace strata::cachestore

namespace strata::cachestore {
namespace {

// A segment file shorter than the device says: reads past its end come back short, which must
// be an I/O error, not zeros or a hang.
TEST(DeviceShortReadTest, ReadPastEndOfFileIsAnError) {
  testing::TempDir dir;
  const std::string path = dir.Sub("short.dat");
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_DIRECT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 8192), 0);
  auto dev = NewPosixDevice({fd}, 1 << 20, 4);
  AlignedBuffer b(16384);
  EXPECT_TRUE(dev->Read(0, b.data(), 8192).ok());
  Status s = dev->Read(4096, b.data(), 16384);
  EXPECT_EQ(s.code(), StatusCode::kIoError) << s.ToString();
  EXPECT_NE(s.message().find("short read"), std::string::npos) << s.ToString();
  EXPECT_EQ(dev->counters().errors.load(), 1u);
}

}  // namespace
}  // namespace strata::cachestore

namespace strata::cachestore {
namespace {

// Each io_uring set-up (registered files, SQPOLL, both): the same scattered writes and reads,
// over segments, with registered and unregistered buffers, come back byte for byte.
TEST(UringOptionsTest, EverySetupRoundTripsAcrossSegments) {
  if (!IoUringAvailable()) GTEST_SKIP() << "io_uring not available";
  for (const UringOptions u : {UringOptions{true, false, 50}, UringOptions{false, true, 10},
                               UringOptions{true, true, 10}}) {
    testing::TempDir dir;
    FileDeviceOptions o;
    o.dir = dir.Sub("seg");
    o.segment_bytes = 1 << 20;
    o.segment_count = 4;
    o.queue_depth = 4;
    o.uring = u;
    auto d = OpenFileDevice(DeviceKind::kIoUring, o);
    if (!d.ok() && u.sqpoll && d.status().message().find("SQPOLL") != std::string::npos) {
      GTEST_SKIP() << "SQPOLL refused here: " << d.status().ToString();
    }
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    AlignedBuffer reg(1 << 20), w(64 * 4096), r(64 * 4096);
    (*d)->RegisterMemory(reg.span());
    bench::FillPseudoRandom(w.data(), w.size(), 5);
    bench::FillPseudoRandom(reg.data(), 64 * 4096, 6);
    std::vector<IoOp> ops;
    for (int i = 0; i < 64; ++i)  // every segment, queue depth 4
      ops.push_back({IoKind::kWrite, uint64_t(i % 4) * (1 << 20) + uint64_t(i / 4) * 4096,
                     w.data() + i * 4096, 4096});
    ASSERT_TRUE((*d)->Submit(ops).ok()) << u.registered_files << u.sqpoll;
    for (auto& op : ops) op.kind = IoKind::kRead, op.buf = r.data() + (op.buf - w.data());
    ASSERT_TRUE((*d)->Submit(ops).ok());
    EXPECT_EQ(std::memcmp(w.data(), r.data(), w.size()), 0) << u.registered_files << u.sqpoll;
    // Through the registered buffer too (READ_FIXED / WRITE_FIXED with a fixed file).
    ASSERT_TRUE((*d)->Write(3 << 20, reg.data(), 64 * 4096).ok());
    ASSERT_TRUE((*d)->Read(3 << 20, reg.data() + (512 << 10), 64 * 4096).ok());
    EXPECT_EQ(std::memcmp(reg.data(), reg.data() + (512 << 10), 64 * 4096), 0);
    EXPECT_GT((*d)->counters().fixed_ios.load(), 0u);
  }
}

TEST(UringOptionsTest, OptionsOnAPosixDeviceAreAConfigError) {
  StoreConfig c;
  c.nvme.data_dir = "/nonexistent";
  c.nvme.device = DeviceKind::kPosix;
  c.nvme.sqpoll = true;
  EXPECT_NE(c.Validate().message().find("io_uring"), std::string::npos);
  c.nvme.device = DeviceKind::kIoUring;
  EXPECT_TRUE(c.Validate().ok());
}

}  // namespace
}  // namespace strata::cachestore
