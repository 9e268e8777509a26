// The NVMe tier on several drives (NvmeTierConfig::drives, cachestore/nvme/drives.h): segments
// striped over the drives' directories, every record read back byte for byte after a reopen and
// after an index rebuild across drives, fsck through the links, and a missing or foreign drive:
// a clear error, or with missing_drive "degrade" a start that serves the other drives' records,
// misses the missing drive's and writes nothing there. Real files through io_uring (or posix
// where io_uring is unavailable) with O_DIRECT.
#include "cachestore/nvme/drives.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "cachestore/nvme/fsck.h"
#include "cachestore/nvme/record.h"
#include "tests/testing/store_fixture.h"
#include "tests/testing/store_objects.h"

namespace strata::cachestore {
namespace {

namespace fs = std::filesystem;
using testing::ObjectBytes;
using testing::ObjectKeyOf;

constexpr uint64_t kFp = 0x51de;
constexpr uint64_t kObjects = 600;  // ~19 MiB: more than DRAM, spread over many segments

class DrivesTest : public ::testing::Test {
 protected:
  StoreConfig Config(size_t extra_drives) {
    StoreConfig c = testing::SmallConfig(tmp_.Sub("d0"), DeviceKind::kAuto);
    c.nvme.capacity_bytes = 30 << 20;  // 30 segments of 1 MiB: 10 per drive with 3
    for (size_t d = 1; d <= extra_drives; ++d)
      c.nvme.drives.push_back(tmp_.Sub("d" + std::to_string(d)));
    return c;
  }
  static void PutAll(Store& s) {
    for (uint64_t i = 0; i < kObjects; ++i)
      ASSERT_TRUE(s.Put(ObjectKeyOf(i), kFp, ObjectBytes(i)).ok()) << i;
    ASSERT_TRUE(s.Flush().ok());
  }
  // Reads every object; returns how many came back with exactly their bytes (a wrong byte
  // fails the test), and per tier served.
  static uint64_t ReadAll(Store& s, std::map<Tier, uint64_t>* tiers = nullptr) {
    uint64_t found = 0;
    for (uint64_t i = 0; i < kObjects; ++i) {
      const ObjectKey k = ObjectKeyOf(i);
      auto r = s.Get(k.ns, kFp, std::span<const BlockKey>(&k.block, 1), FamilyMask{k.family});
      EXPECT_TRUE(r.ok());
      const ObjectView& v = r->front();
      if (!v.found()) continue;
      const std::vector<std::byte> want = ObjectBytes(i);
      EXPECT_EQ(v.size, want.size()) << i;
      EXPECT_EQ(std::memcmp(v.data, want.data(), std::min(v.size, want.size())), 0) << i;
      ++found;
      if (tiers) ++(*tiers)[v.served_from];
      s.Release(std::span<const uint64_t>(&v.pin, 1));
    }
    return found;
  }
  static uint64_t Counter(const Store& s, std::string_view name) {
    uint64_t out = 0;
    s.VisitCounters([&](std::string_view n, uint64_t v) {
      if (n == name) out = v;
    });
    return out;
  }
  testing::TempDir tmp_;
};

TEST_F(DrivesTest, StripesSegmentsOverDrivesAndReadsThemBackAfterReopen) {
  const StoreConfig c = Config(2);
  {
    auto s = OpenTieredStore(c, {});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    PutAll(**s);
    EXPECT_EQ(ReadAll(**s), kObjects);
  }
  // Segment i is a file on drive i mod 3, linked from data_dir/segments; records on all three.
  const fs::path seg0 = fs::path(c.nvme.data_dir) / "segments";
  std::set<size_t> drives_with_records;
  for (uint32_t i = 0; i < 30; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "seg-%06u.dat", i);
    const size_t d = i % 3;
    const fs::path file = d == 0 ? seg0 / name : fs::path(c.nvme.drives[d - 1]) / "segments" / name;
    ASSERT_TRUE(fs::is_regular_file(file)) << file;
    if (d > 0) {
      ASSERT_TRUE(fs::is_symlink(seg0 / name)) << name;
      EXPECT_TRUE(fs::equivalent(seg0 / name, file)) << name;
    }
    std::ifstream f(file, std::ios::binary);
    uint32_t magic = 0;
    f.read(reinterpret_cast<char*>(&magic), sizeof magic);
    if (magic == kRecordMagic) drives_with_records.insert(d);
  }
  EXPECT_EQ(drives_with_records, (std::set<size_t>{0, 1, 2}));
  for (const std::string& dir : {c.nvme.data_dir, c.nvme.drives[0], c.nvme.drives[1]})
    EXPECT_TRUE(fs::exists(fs::path(dir) / kDriveIdentityFile)) << dir;

  auto s = OpenTieredStore(c, {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::map<Tier, uint64_t> tiers;
  EXPECT_EQ(ReadAll(**s, &tiers), kObjects);
  EXPECT_GT(tiers[Tier::kNvme], kObjects / 2);
}

TEST_F(DrivesTest, RebuildsTheIndexFromSegmentsOnAllDrivesAndFsckChecksThem) {
  const StoreConfig c = Config(2);
  {
    auto s = OpenTieredStore(c, {});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    PutAll(**s);
  }
  FsckOptions fo;
  auto report = Fsck(c.nvme.data_dir, fo);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->clean());
  EXPECT_GT(report->ok, kObjects / 2);
  const uint64_t on_nvme = report->ok;

  fs::remove_all(fs::path(c.nvme.data_dir) / "index");
  auto s = OpenTieredStore(c, {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(Counter(**s, "index_rebuilds"), 1u);
  EXPECT_EQ(Counter(**s, "records_rebuilt"), on_nvme);
  std::map<Tier, uint64_t> tiers;
  EXPECT_EQ(ReadAll(**s, &tiers), on_nvme);
  EXPECT_EQ(tiers[Tier::kNvme], on_nvme);
}

TEST_F(DrivesTest, AMissingDriveIsAnErrorOrByConfigurationADegradedStart) {
  StoreConfig c = Config(2);
  uint64_t on_nvme = 0;
  {
    auto s = OpenTieredStore(c, {});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    PutAll(**s);
  }
  {
    auto report = Fsck(c.nvme.data_dir, FsckOptions{});
    ASSERT_TRUE(report.ok());
    on_nvme = report->ok;
  }
  fs::rename(c.nvme.drives[1], tmp_.Sub("away"));
  auto s = OpenTieredStore(c, {});
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().code() == StatusCode::kFailedPrecondition) << s.status().ToString();
  EXPECT_NE(s.status().message().find("drive 2"), std::string::npos) << s.status().ToString();
  EXPECT_NE(s.status().message().find("missing_drive"), std::string::npos);

  c.nvme.missing_drive = "degrade";
  s = OpenTieredStore(c, {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  // Drives 0 and 1 serve their records byte for byte; drive 2's are misses.
  std::map<Tier, uint64_t> tiers;
  const uint64_t served = ReadAll(**s, &tiers);
  EXPECT_GT(served, 0u);
  EXPECT_LT(served, on_nvme);
  EXPECT_GT(served, on_nvme / 2);
  // New objects are demoted to the drives that are there: no write to the missing one (its
  // only I/O was recovery's reads of its records' headers, which failed and dropped them).
  const uint64_t errors_at_open = Counter(**s, "device_errors");
  for (uint64_t i = kObjects; i < 2 * kObjects; ++i)
    ASSERT_TRUE((*s)->Put(ObjectKeyOf(i), kFp, ObjectBytes(i)).ok()) << i;
  ASSERT_TRUE((*s)->Flush().ok());
  EXPECT_EQ(Counter(**s, "demote_errors"), 0u);
  EXPECT_EQ(Counter(**s, "device_errors"), errors_at_open);
  EXPECT_GT(Counter(**s, "demotions"), 0u);
  s->reset();
  EXPECT_FALSE(fs::exists(c.nvme.drives[1]));  // nothing recreated where the drive was

  // The drive comes back: the store opens whole again, and what was written meanwhile reads.
  fs::rename(tmp_.Sub("away"), c.nvme.drives[1]);
  c.nvme.missing_drive = "error";
  s = OpenTieredStore(c, {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  uint64_t later = 0;
  for (uint64_t i = kObjects; i < 2 * kObjects; ++i) {
    const ObjectKey k = ObjectKeyOf(i);
    auto r = (*s)->Get(k.ns, kFp, std::span<const BlockKey>(&k.block, 1), FamilyMask{k.family});
    ASSERT_TRUE(r.ok());
    if (!r->front().found()) continue;
    const std::vector<std::byte> want = ObjectBytes(i);
    ASSERT_EQ(r->front().size, want.size());
    EXPECT_EQ(std::memcmp(r->front().data, want.data(), want.size()), 0) << i;
    ++later;
    (*s)->Release(std::span<const uint64_t>(&r->front().pin, 1));
  }
  EXPECT_GT(later, 0u);
}

TEST_F(DrivesTest, ADegradedStartRebuildsALostIndexFromTheDrivesThatAreThere) {
  StoreConfig c = Config(2);
  {
    auto s = OpenTieredStore(c, {});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    PutAll(**s);
  }
  uint64_t on_nvme = 0;
  {
    auto report = Fsck(c.nvme.data_dir, FsckOptions{});
    ASSERT_TRUE(report.ok());
    on_nvme = report->ok;
  }
  fs::remove_all(fs::path(c.nvme.data_dir) / "index");
  fs::rename(c.nvme.drives[1], tmp_.Sub("away"));

  // Without "degrade" the missing drive is the error, named as such (not a damaged directory).
  auto s = OpenTieredStore(c, {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition) << s.status().ToString();
  EXPECT_NE(s.status().message().find("drive 2"), std::string::npos) << s.status().ToString();

  // With it, the index is rebuilt from drives 0 and 1, whose records are then all served.
  c.nvme.missing_drive = "degrade";
  s = OpenTieredStore(c, {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(Counter(**s, "index_rebuilds"), 1u);
  const uint64_t rebuilt = Counter(**s, "records_rebuilt");
  EXPECT_GT(rebuilt, on_nvme / 2);
  EXPECT_LT(rebuilt, on_nvme);
  EXPECT_EQ(Counter(**s, "device_errors"), 0u) << "the missing drive is not read";
  std::map<Tier, uint64_t> tiers;
  EXPECT_EQ(ReadAll(**s, &tiers), rebuilt);
  EXPECT_EQ(tiers[Tier::kNvme], rebuilt);
  s->reset();

  // The drive comes back: the store opens whole; the rebuilt index knows what it knew.
  fs::rename(tmp_.Sub("away"), c.nvme.drives[1]);
  c.nvme.missing_drive = "error";
  s = OpenTieredStore(c, {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(Counter(**s, "index_rebuilds"), 0u);
  EXPECT_EQ(ReadAll(**s), rebuilt);
}

TEST_F(DrivesTest, TheDriveSetIsFixedAndForeignDrivesAreRefused) {
  StoreConfig two = Config(1);
  {
    auto s = OpenTieredStore(two, {});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
  }
  StoreConfig three = Config(2);
  auto s = OpenTieredStore(three, {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("created as drive 0 of 2"), std::string::npos)
      << s.status().ToString();

  // A one-drive store cannot gain drives.
  StoreConfig one = testing::SmallConfig(tmp_.Sub("solo"), DeviceKind::kAuto);
  {
    auto o = OpenTieredStore(one, {});
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    ASSERT_TRUE((*o)->Put(ObjectKeyOf(1), kFp, ObjectBytes(1)).ok());
    ASSERT_TRUE((*o)->Flush().ok());
  }
  one.nvme.drives = {tmp_.Sub("solo-more")};
  s = OpenTieredStore(one, {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("one-drive store"), std::string::npos)
      << s.status().ToString();

  // Another store's drive given to a new store.
  StoreConfig other = testing::SmallConfig(tmp_.Sub("other"), DeviceKind::kAuto);
  other.nvme.drives = {two.nvme.drives[0]};
  s = OpenTieredStore(other, {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("already belongs to a store"), std::string::npos)
      << s.status().ToString();

  // Config validation.
  StoreConfig bad = Config(1);
  bad.nvme.missing_drive = "ignore";
  EXPECT_TRUE(bad.Validate().code() == StatusCode::kInvalidArgument);
  bad = Config(1);
  bad.nvme.drives.push_back(bad.nvme.drives[0]);
  EXPECT_TRUE(bad.Validate().code() == StatusCode::kInvalidArgument);
  bad = Config(1);
  bad.nvme.drives = {bad.nvme.data_dir};
  EXPECT_TRUE(bad.Validate().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::cachestore
