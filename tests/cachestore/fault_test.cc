// Faults: injected device errors (write EIO / ENOSPC, read errors, failed syncs), real on-disk
// corruption and truncation, and a real full filesystem.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "bench/v4_payload.h"
#include "cachestore/nvme/fsck.h"
#include "tests/testing/store_fixture.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using testing::FaultDevice;
using testing::OpenTestStore;
using testing::SmallConfig;

constexpr uint64_t kFp = 0x99;
constexpr NamespaceId kNs = 3;

std::vector<std::byte> Bytes(uint64_t seed, size_t size) {
  return testing::SeededBytes(seed, size);
}
BlockKey K(uint64_t i) { return BlockKey{0x55, i}; }

std::optional<std::vector<std::byte>> Read(Store& s, uint64_t i, Family f = Family::kCsa) {
  BlockKey k = K(i);
  auto v = s.Get(kNs, kFp, std::span(&k, 1), FamilyMask{f});
  EXPECT_TRUE(v.ok());
  if (!v.ok() || !(*v)[0].found()) return std::nullopt;
  std::vector<std::byte> out((*v)[0].data, (*v)[0].data + (*v)[0].size);
  s.Release(std::span(&(*v)[0].pin, 1));
  return out;
}

uint64_t Counter(const Store& s, std::string_view name) { return testing::CounterOf(s, name); }

// Flips one byte of the segment files at the first occurrence of `needle`.
bool CorruptOnDisk(const std::string& data_dir, const std::vector<std::byte>& needle, long delta) {
  for (const auto& e : fs::directory_iterator(fs::path(data_dir) / "segments")) {
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(f)), {});
    auto pos = content.find(std::string(reinterpret_cast<const char*>(needle.data()), 64));
    if (pos == std::string::npos) continue;
    f.seekp(long(pos) + delta);
    char c = char(content[pos + size_t(delta)] ^ 0x5a);
    f.write(&c, 1);
    return true;
  }
  return false;
}

class FaultTest : public ::testing::TestWithParam<DeviceKind> {
 protected:
  void SetUp() override {
    if (testing::SkipDevice(GetParam())) GTEST_SKIP() << "io_uring not available";
    cfg_ = SmallConfig(dir_.Sub("data"), GetParam());
  }
  testing::TempDir dir_;
  StoreConfig cfg_;
};

TEST_P(FaultTest, WriteErrorsFailFlushAndLoseNothingAcknowledged) {
  for (int err : {EIO, ENOSPC}) {
    SCOPED_TRACE(err);
    FaultDevice* fault = nullptr;
    auto s = OpenTestStore(cfg_, &fault);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->Put({kNs, K(err), Family::kCsa}, kFp, Bytes(1, 70000)).ok());
    ASSERT_TRUE((*s)->Flush().ok());
    fault->write_errno = err;
    ASSERT_TRUE((*s)->Put({kNs, K(err + 1), Family::kCsa}, kFp, Bytes(2, 70000)).ok());
    Status fl = (*s)->Flush();
    EXPECT_FALSE(fl.ok());
    EXPECT_EQ(fl.code(), err == ENOSPC ? StatusCode::kNoSpace : StatusCode::kIoError)
        << fl.ToString();
    EXPECT_EQ(*Read(**s, err), Bytes(1, 70000));
    EXPECT_EQ(*Read(**s, err + 1), Bytes(2, 70000)) << "unflushed copy still served from host";
    fault->write_errno = 0;
    ASSERT_TRUE((*s)->Flush().ok());
    s->reset();
    if (GetParam() == DeviceKind::kMemory) continue;
    auto again = OpenTestStore(cfg_);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*Read(**again, err), Bytes(1, 70000));
    EXPECT_EQ(*Read(**again, err + 1), Bytes(2, 70000));
  }
}

TEST_P(FaultTest, DemotionFailureDropsOnlyUnflushedCopies) {
  FaultDevice* fault = nullptr;
  auto s = OpenTestStore(cfg_, &fault);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Put({kNs, K(0), Family::kCsa}, kFp, Bytes(0, 300000)).ok());
  ASSERT_TRUE((*s)->Flush().ok());
  fault->write_errno = EIO;
  for (int i = 1; i < 30; ++i)  // far beyond the 4 MiB host tier: demotions fail
    ASSERT_TRUE((*s)->Put({kNs, K(i), Family::kCsa}, kFp, Bytes(i, 300000)).ok());
  EXPECT_GT(Counter(**s, "demote_errors"), 0u);
  EXPECT_EQ(*Read(**s, 0), Bytes(0, 300000)) << "the flushed object survives";
  EXPECT_EQ(*Read(**s, 29), Bytes(29, 300000));
}

TEST_P(FaultTest, ReadErrorIsAMissThatKeepsTheRecord) {
  FaultDevice* fault = nullptr;
  {
    auto s = OpenTestStore(cfg_, &fault);
    ASSERT_TRUE((*s)->Put({kNs, K(0), Family::kCsa}, kFp, Bytes(0, 100000)).ok());
    ASSERT_TRUE((*s)->Flush().ok());
  }
  if (GetParam() == DeviceKind::kMemory) GTEST_SKIP() << "memory device is not persistent";
  auto s = OpenTestStore(cfg_, &fault);
  ASSERT_TRUE(s.ok());
  fault->read_errno = EIO;
  EXPECT_FALSE(Read(**s, 0));
  EXPECT_EQ(Counter(**s, "nvme_read_errors"), 1u);
  fault->read_errno = 0;
  EXPECT_EQ(*Read(**s, 0), Bytes(0, 100000));
}

TEST_P(FaultTest, FailedSyncFailsFlush) {
  FaultDevice* fault = nullptr;
  auto s = OpenTestStore(cfg_, &fault);
  ASSERT_TRUE((*s)->Put({kNs, K(0), Family::kCsa}, kFp, Bytes(0, 1000)).ok());
  fault->fail_sync = true;
  EXPECT_EQ((*s)->Flush().code(), StatusCode::kIoError);
  fault->fail_sync = false;
  EXPECT_TRUE((*s)->Flush().ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, FaultTest,
                         ::testing::Values(DeviceKind::kMemory, DeviceKind::kPosix,
                                           DeviceKind::kIoUring),
                         [](const auto& info) { return std::string(DeviceKindName(info.param)); });

class DiskFaultTest : public ::testing::TestWithParam<DeviceKind> {
 protected:
  void SetUp() override {
    if (testing::SkipDevice(GetParam())) GTEST_SKIP() << "io_uring not available";
    cfg_ = SmallConfig(dir_.Sub("data"), GetParam());
    auto s = OpenStore(cfg_);
    ASSERT_TRUE(s.ok());
    for (int i = 0; i < 4; ++i)
      ASSERT_TRUE((*s)->Put({kNs, K(i), Family::kCsa}, kFp, Bytes(i, 50000)).ok());
    ASSERT_TRUE((*s)->Flush().ok());
  }
  testing::TempDir dir_;
  StoreConfig cfg_;
};

TEST_P(DiskFaultTest, CorruptPayloadIsAMissCountedAndRemoved) {
  ASSERT_TRUE(CorruptOnDisk(cfg_.nvme.data_dir, Bytes(1, 50000), 1000));
  {
    auto s = OpenStore(cfg_);  // headers verify: the entry is still indexed
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE(Read(**s, 1)) << "corrupt bytes must never be served";
    EXPECT_EQ(Counter(**s, "corrupt_records"), 1u);
    for (int i : {0, 2, 3}) EXPECT_EQ(*Read(**s, i), Bytes(i, 50000));
    BlockKey k = K(1);
    EXPECT_EQ((*s)->Lookup(kNs, kFp, std::span(&k, 1), FamilyMask{Family::kCsa})->hit_blocks, 0u);
  }
  auto s = OpenStore(cfg_);
  EXPECT_EQ(Counter(**s, "recovered_records"), 3u) << "the removal was persisted";
}

TEST_P(DiskFaultTest, PayloadVerificationAtOpenDropsCorruptRecords) {
  ASSERT_TRUE(CorruptOnDisk(cfg_.nvme.data_dir, Bytes(1, 50000), 2000));
  cfg_.nvme.verify_payloads_on_open = true;
  auto s = OpenStore(cfg_);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(Counter(**s, "recovered_records"), 3u);
  EXPECT_EQ(Counter(**s, "recovery_dropped"), 1u);
  BlockKey k = K(1);
  EXPECT_EQ((*s)->Lookup(kNs, kFp, std::span(&k, 1), FamilyMask{Family::kCsa})->hit_blocks, 0u)
      << "not even listed";
}

TEST_P(DiskFaultTest, FsckFindsCorruptionAndRepairRemovesIt) {
  ASSERT_TRUE(CorruptOnDisk(cfg_.nvme.data_dir, Bytes(2, 50000), 7));
  cachestore::FsckOptions fo;
  fo.device = GetParam();
  auto rep = cachestore::Fsck(cfg_.nvme.data_dir, fo);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->checked, 4u);
  EXPECT_EQ(rep->ok, 3u);
  EXPECT_EQ(rep->corrupt, 1u);
  EXPECT_FALSE(rep->clean());
  fo.repair = true;
  rep = cachestore::Fsck(cfg_.nvme.data_dir, fo);
  EXPECT_EQ(rep->repaired, 1u);
  fo.repair = false;
  rep = cachestore::Fsck(cfg_.nvme.data_dir, fo);
  EXPECT_TRUE(rep->clean());
  EXPECT_EQ(rep->ok, 3u);
  auto st = cachestore::ReadDataDirStats(cfg_.nvme.data_dir);
  EXPECT_EQ(st->families[int(Family::kCsa)].records, 3u);
  EXPECT_EQ(st->families[int(Family::kCsa)].raw_bytes, 3u * 50000);
}

TEST_P(DiskFaultTest, CorruptHeaderOrTruncatedSegmentIsDroppedAtRecovery) {
  ASSERT_TRUE(CorruptOnDisk(cfg_.nvme.data_dir, Bytes(3, 50000), -100));  // inside the header
  auto s = OpenStore(cfg_);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(Counter(**s, "recovery_dropped"), 1u);
  EXPECT_FALSE(Read(**s, 3));
  EXPECT_EQ(*Read(**s, 0), Bytes(0, 50000));
  s->reset();
  // Truncate the segment files: every record is gone, and reopening says so without crashing.
  for (const auto& e : fs::directory_iterator(fs::path(cfg_.nvme.data_dir) / "segments"))
    fs::resize_file(e.path(), 0);
  s = OpenStore(cfg_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(Counter(**s, "recovered_records"), 0u);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(Read(**s, i));
}

// On-disk faults need a device that writes files.
INSTANTIATE_TEST_SUITE_P(Backends, DiskFaultTest,
                         ::testing::Values(DeviceKind::kPosix, DeviceKind::kIoUring),
                         [](const auto& info) { return std::string(DeviceKindName(info.param)); });

// A real full filesystem: a small tmpfs (O_DIRECT works on tmpfs since Linux 6.6). Skipped
// where mounting is not permitted or the tmpfs has no O_DIRECT (checked before any assertion).
TEST(FullDiskTest, NoSpaceIsAClearErrorAndLosesNothingFlushed) {
  testing::TempDir dir;
  const std::string mnt = dir.Sub("small");
  fs::create_directories(mnt);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=24m") != 0)
    GTEST_SKIP() << "cannot mount a small tmpfs here: " << std::strerror(errno);
  struct Unmount {
    std::string p;
    ~Unmount() { umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  {
    const std::string probe = mnt + "/o_direct_probe";
    const int fd = open(probe.c_str(), O_RDWR | O_CREAT | O_DIRECT, 0644);
    if (fd < 0 && errno == EINVAL) GTEST_SKIP() << "no O_DIRECT on tmpfs (Linux < 6.6)";
    ASSERT_GE(fd, 0) << probe << ": " << std::strerror(errno);
    close(fd);
    fs::remove(probe);
  }
  StoreConfig c = SmallConfig(mnt + "/data", DeviceKind::kAuto);
  c.nvme.capacity_bytes = 64 << 20;  // more than the filesystem holds
  auto too_big = OpenStore(c);
  ASSERT_FALSE(too_big.ok());
  EXPECT_TRUE(too_big.status().IsNoSpace()) << too_big.status().ToString();
  fs::remove_all(mnt + "/data");

  c.nvme.capacity_bytes = 8 << 20;
  auto s = OpenStore(c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE((*s)->Put({kNs, K(0), Family::kCsa}, kFp, Bytes(0, 100000)).ok());
  ASSERT_TRUE((*s)->Flush().ok());
  {  // fill the filesystem so the index cannot grow
    std::ofstream junk(mnt + "/junk", std::ios::binary);
    std::vector<char> mb(1 << 20, 'x');
    while (junk.write(mb.data(), long(mb.size()))) {
    }
  }
  Status last;
  for (int i = 1; i < 200 && last.ok(); ++i) {
    ASSERT_TRUE((*s)->Put({kNs, K(i), Family::kCsa}, kFp, Bytes(i, 20000)).ok());
    last = (*s)->Flush();
  }
  EXPECT_FALSE(last.ok()) << "the index's log cannot grow on a full filesystem";
  EXPECT_EQ(*Read(**s, 0), Bytes(0, 100000));
  s->reset();
  fs::remove(mnt + "/junk");
  auto again = OpenStore(c);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*Read(**again, 0), Bytes(0, 100000)) << "acknowledged data survives the full disk";
}

}  // namespace
}  // namespace strata
