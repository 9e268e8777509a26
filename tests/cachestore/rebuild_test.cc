// Rebuilding the index from the segments' record headers: a lost index folder, a damaged table
// file and a damaged log all leave every record that verifies servable, bit for bit; deleted
// namespaces stay deleted, re-Put objects come back as their newest version, and a newest
// version whose payload is damaged is a miss (never an older version). Real RocksDB, real
// segment files, posix and io_uring.
#include "cachestore/nvme/rebuild.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "cachestore/nvme/fsck.h"
#include "cachestore/nvme/index.h"
#include "cachestore/nvme/markers.h"
#include "tests/testing/store_fixture.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using testing::OpenTestStore;

constexpr uint64_t kFp = 0x5eed;
constexpr NamespaceId kKeep = 11, kDoomed = 12;

using Objects = std::map<std::pair<uint64_t, uint64_t>, std::vector<std::byte>>;  // (ns, i)

ObjectKey KeyOf(NamespaceId ns, uint64_t i) {
  return ObjectKey{ns, BlockKey{0xfeed, i}, Family(i % kNumFamilies)};
}

// Object i of `ns`, version v: 1 byte to ~40 KiB, so records span one page or many.
std::vector<std::byte> BytesOf(NamespaceId ns, uint64_t i, uint64_t v) {
  return testing::SeededBytes(ns * 1000003 + i * 131 + v, 1 + (i * 7919 + v * 104729) % 40000);
}

std::optional<std::vector<std::byte>> Read(Store& s, const ObjectKey& k) {
  auto v = s.Get(k.ns, kFp, std::span(&k.block, 1), FamilyMask{k.family});
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  if (!v.ok() || !(*v)[0].found()) return std::nullopt;
  std::vector<std::byte> out((*v)[0].data, (*v)[0].data + (*v)[0].size);
  s.Release(std::span(&(*v)[0].pin, 1));
  return out;
}

uint64_t Counter(const Store& s, std::string_view name) { return testing::CounterOf(s, name); }

// Every expected object reads back byte for byte; every object of kDoomed is a miss.
void ExpectServed(Store& s, const Objects& want, uint64_t doomed_count) {
  for (const auto& [id, bytes] : want) {
    auto got = Read(s, KeyOf(id.first, id.second));
    ASSERT_TRUE(got.has_value()) << "object " << id.first << "/" << id.second << " lost";
    ASSERT_EQ(got->size(), bytes.size()) << id.second;
    ASSERT_EQ(std::memcmp(got->data(), bytes.data(), bytes.size()), 0)
        << "object " << id.second << " differs";
  }
  for (uint64_t i = 0; i < doomed_count; ++i)
    EXPECT_FALSE(Read(s, KeyOf(kDoomed, i)).has_value()) << "deleted object " << i << " is back";
}

std::vector<fs::path> FilesWithExt(const std::string& dir, const std::string& ext) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ext) out.push_back(e.path());
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    return fs::file_size(a) > fs::file_size(b);
  });
  return out;  // largest first
}

void FlipByte(const fs::path& p, uint64_t at) {
  int fd = open(p.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << p;
  unsigned char c;
  ASSERT_EQ(pread(fd, &c, 1, off_t(at)), 1);
  c ^= 0x5a;
  ASSERT_EQ(pwrite(fd, &c, 1, off_t(at)), 1);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
}

class RebuildTest : public ::testing::TestWithParam<DeviceKind> {
 protected:
  void SetUp() override {
    if (testing::SkipDevice(GetParam())) GTEST_SKIP() << "io_uring not available";
    cfg_ = testing::SmallConfig(dir_.Sub("data"), GetParam());
    cfg_.nvme.capacity_bytes = 32 << 20;
    cfg_.codec[int(Family::kHca)] = CodecKind::kLz4;  // a compressed family too
  }
  std::string data() const { return cfg_.nvme.data_dir; }
  std::string index_dir() const { return data() + "/index"; }

  std::unique_ptr<Store> Open() {
    auto s = OpenTestStore(cfg_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // kN objects of kKeep (the first kRePut of them put twice, a Flush in between, so both
  // versions are on disk), kDoomedN objects of kDoomed, then Delete(kDoomed); all flushed.
  void Populate() {
    auto s = Open();
    ASSERT_TRUE(s);
    for (uint64_t i = 0; i < kN; ++i) {
      auto b = BytesOf(kKeep, i, 1);
      ASSERT_TRUE(s->Put(KeyOf(kKeep, i), kFp, b).ok());
      want_[{kKeep, i}] = b;
    }
    for (uint64_t i = 0; i < kDoomedN; ++i)
      ASSERT_TRUE(s->Put(KeyOf(kDoomed, i), kFp, BytesOf(kDoomed, i, 1)).ok());
    ASSERT_TRUE(s->Flush().ok());
    for (uint64_t i = 0; i < kRePut; ++i) {
      auto b = BytesOf(kKeep, i, 2);
      ASSERT_TRUE(s->Put(KeyOf(kKeep, i), kFp, b).ok());
      want_[{kKeep, i}] = b;
    }
    ASSERT_TRUE(s->Flush().ok());
    ASSERT_TRUE(s->Delete(kDoomed).ok());
    ExpectServed(*s, want_, kDoomedN);
  }

  static constexpr uint64_t kN = 150, kRePut = 40, kDoomedN = 30;
  testing::TempDir dir_;
  StoreConfig cfg_;
  Objects want_;
};

TEST_P(RebuildTest, LostIndexFolderIsRebuiltAndServesEveryRecord) {
  Populate();
  fs::remove_all(index_dir());
  {
    auto s = Open();
    ASSERT_TRUE(s);
    EXPECT_EQ(Counter(*s, "index_rebuilds"), 1u);
    EXPECT_EQ(Counter(*s, "records_rebuilt"), kN);
    ExpectServed(*s, want_, kDoomedN);
    // New writes after a rebuild get numbers above every record on disk: a newer version of
    // a re-Put object wins over both older ones in the next rebuild.
    for (uint64_t i = 0; i < 5; ++i) {
      auto b = BytesOf(kKeep, i, 3);
      ASSERT_TRUE(s->Put(KeyOf(kKeep, i), kFp, b).ok());
      want_[{kKeep, i}] = b;
    }
    ASSERT_TRUE(s->Flush().ok());
  }
  {
    auto s = Open();  // the rebuilt index is whole: no second rebuild
    ASSERT_TRUE(s);
    EXPECT_EQ(Counter(*s, "index_rebuilds"), 0u);
    ExpectServed(*s, want_, kDoomedN);
  }
  fs::remove(index_dir() + "/CURRENT");  // an index folder without a database
  auto s = Open();
  ASSERT_TRUE(s);
  EXPECT_EQ(Counter(*s, "index_rebuilds"), 1u);
  ExpectServed(*s, want_, kDoomedN);
}

TEST_P(RebuildTest, DamagedTableFileIsRebuilt) {
  Populate();
  {
    auto idx = cachestore::Index::Open(index_dir());
    ASSERT_TRUE(idx.ok()) << idx.status().ToString();
    ASSERT_TRUE((*idx)->FlushMemtables().ok());
  }
  auto ssts = FilesWithExt(index_dir(), ".sst");
  ASSERT_FALSE(ssts.empty());
  FlipByte(ssts[0], 100);  // inside the first data block of the entries' table
  {
    // What the store faced before: the index opens, its scan fails.
    auto idx = cachestore::Index::Open(index_dir());
    if (idx.ok()) {
      Status scan = (*idx)->Scan([](const cachestore::IndexEntry&) { return true; });
      EXPECT_TRUE(scan.IsCorruption()) << scan.ToString();
    } else {
      EXPECT_TRUE(idx.status().IsCorruption()) << idx.status().ToString();
    }
  }
  auto st = cachestore::ReadDataDirStats(data());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("--rebuild-index"), std::string::npos)
      << st.status().ToString();
  auto s = Open();
  ASSERT_TRUE(s);
  EXPECT_EQ(Counter(*s, "index_rebuilds"), 1u);
  EXPECT_EQ(Counter(*s, "records_rebuilt"), kN);
  ExpectServed(*s, want_, kDoomedN);
}

TEST_P(RebuildTest, DamagedManifestIsRebuilt) {
  Populate();
  fs::path manifest;
  for (const auto& e : fs::directory_iterator(index_dir()))
    if (e.path().filename().string().starts_with("MANIFEST-")) manifest = e.path();
  ASSERT_FALSE(manifest.empty());
  FlipByte(manifest, fs::file_size(manifest) / 2);
  {
    auto idx = cachestore::Index::Open(index_dir());  // what the store faced before
    ASSERT_FALSE(idx.ok());
    EXPECT_TRUE(idx.status().IsCorruption()) << idx.status().ToString();
  }
  auto s = Open();
  ASSERT_TRUE(s);
  EXPECT_EQ(Counter(*s, "index_rebuilds"), 1u);
  ExpectServed(*s, want_, kDoomedN);
}

TEST_P(RebuildTest, DamagedLogIsCaughtByTheDurableMarkAndRebuilt) {
  Populate();
  auto logs = FilesWithExt(index_dir(), ".log");
  ASSERT_FALSE(logs.empty());
  ASSERT_GT(fs::file_size(logs[0]), 4096u);
  FlipByte(logs[0], fs::file_size(logs[0]) / 2);
  {
    // RocksDB recovers up to the damage without a word; the index then lags the marker.
    auto idx = cachestore::Index::Open(index_dir());
    ASSERT_TRUE(idx.ok()) << idx.status().ToString();
    auto durable = (*idx)->GetDurableSequence();
    ASSERT_TRUE(durable.ok());
    auto marker = cachestore::ReadSequenceMarker(data());
    ASSERT_TRUE(marker.ok() && *marker);
    EXPECT_LT(*durable, (*marker)->durable_sequence);
  }
  auto st = cachestore::ReadDataDirStats(data());  // says so instead of counting short
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("--rebuild-index"), std::string::npos)
      << st.status().ToString();
  auto s = Open();
  ASSERT_TRUE(s);
  EXPECT_EQ(Counter(*s, "index_rebuilds"), 1u);
  ExpectServed(*s, want_, kDoomedN);
}

TEST_P(RebuildTest, DamagedNewestVersionIsAMissNotAnOlderVersion) {
  Populate();
  // Object 3 was put twice; damage the payload of its newest record on disk.
  const ObjectKey k = KeyOf(kKeep, 3);
  uint64_t offset = ~0ull;
  {
    auto idx = cachestore::Index::Open(index_dir());
    ASSERT_TRUE(idx.ok());
    ASSERT_TRUE((*idx)
                    ->Scan([&](const cachestore::IndexEntry& e) {
                      if (e.key == k) offset = e.offset;
                      return true;
                    })
                    .ok());
  }
  ASSERT_NE(offset, ~0ull);
  char name[32];
  std::snprintf(name, sizeof name, "seg-%06u.dat", unsigned(offset / cfg_.nvme.segment_bytes));
  FlipByte(fs::path(data()) / "segments" / name, offset % cfg_.nvme.segment_bytes + 128 + 7);
  fs::remove_all(index_dir());
  auto s = Open();
  ASSERT_TRUE(s);
  EXPECT_EQ(Counter(*s, "index_rebuilds"), 1u);
  EXPECT_EQ(Counter(*s, "records_rebuilt"), kN - 1);
  EXPECT_FALSE(Read(*s, k).has_value()) << "an older version came back";
  want_.erase({kKeep, 3});
  ExpectServed(*s, want_, kDoomedN);
}

TEST_P(RebuildTest, DeletedNamespaceStaysDeletedWhenTheIndexLostTheDelete) {
  Populate();
  // The index's delete is in its log; lose the log's tail (the index falls back to before the
  // Delete) by replacing the index with a copy taken before it.
  const std::string saved = dir_.Sub("index-before-delete");
  {
    auto s = Open();
    ASSERT_TRUE(s);
    for (uint64_t i = 0; i < kDoomedN; ++i)
      ASSERT_TRUE(s->Put(KeyOf(kDoomed, i), kFp, BytesOf(kDoomed, i, 5)).ok());
    ASSERT_TRUE(s->Flush().ok());
  }
  fs::copy(index_dir(), saved, fs::copy_options::recursive);
  {
    auto s = Open();
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->Delete(kDoomed).ok());
  }
  fs::remove_all(index_dir());
  fs::copy(saved, index_dir(), fs::copy_options::recursive);
  auto s = Open();  // the index still lists kDoomed's objects; the delete log wins
  ASSERT_TRUE(s);
  ExpectServed(*s, want_, kDoomedN);
}

TEST_P(RebuildTest, IndexHeldByAnotherStoreIsAnErrorNotARebuild) {
  Populate();
  auto a = Open();
  ASSERT_TRUE(a);
  auto b = OpenTestStore(cfg_);
  ASSERT_FALSE(b.ok());
  EXPECT_FALSE(b.status().IsCorruption()) << b.status().ToString();
  EXPECT_EQ(Counter(*a, "index_rebuilds"), 0u);
  // Nor may fsck swap the index of a running store.
  cachestore::FsckOptions fo;
  fo.device = GetParam();
  fo.rebuild_index = true;
  auto rep = cachestore::Fsck(data(), fo);
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.status().code(), StatusCode::kFailedPrecondition) << rep.status().ToString();
  ExpectServed(*a, want_, kDoomedN);
}

TEST_P(RebuildTest, FsckRebuildIndexOnDemand) {
  Populate();
  auto logs = FilesWithExt(index_dir(), ".log");
  ASSERT_FALSE(logs.empty());
  FlipByte(logs[0], fs::file_size(logs[0]) / 2);
  cachestore::FsckOptions fo;
  fo.device = GetParam();
  fo.rebuild_index = true;
  auto rep = cachestore::Fsck(data(), fo);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_TRUE(rep->rebuilt);
  EXPECT_EQ(rep->rebuild.records, kN);
  EXPECT_EQ(rep->rebuild.deleted, kDoomedN);
  EXPECT_EQ(rep->rebuild.superseded, kRePut);
  EXPECT_EQ(rep->rebuild.dropped_keys, 0u);
  EXPECT_TRUE(rep->clean());
  EXPECT_EQ(rep->ok, kN);
  auto s = Open();  // the rebuilt index passes the durable check
  ASSERT_TRUE(s);
  EXPECT_EQ(Counter(*s, "index_rebuilds"), 0u);
  ExpectServed(*s, want_, kDoomedN);
}

INSTANTIATE_TEST_SUITE_P(Devices, RebuildTest,
                         ::testing::Values(DeviceKind::kPosix, DeviceKind::kIoUring),
                         [](const auto& info) {
                           return info.param == DeviceKind::kPosix ? "Posix" : "IoUring";
                         });

// --- the marker files ------------------------------------------------------------------------

TEST(MarkerFilesTest, SequenceMarkerSurvivesATornSlot) {
  testing::TempDir dir;
  cachestore::SequenceMarker m;
  m.durable_sequence = 10;
  m.sequence_limit = 100;
  ASSERT_TRUE(cachestore::WriteSequenceMarker(dir.path(), m).ok());  // generation 1, slot 1
  m.durable_sequence = 20;
  ASSERT_TRUE(cachestore::WriteSequenceMarker(dir.path(), m).ok());  // generation 2, slot 0
  auto r = cachestore::ReadSequenceMarker(dir.path());
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ((*r)->durable_sequence, 20u);
  EXPECT_EQ((*r)->generation, 2u);
  FlipByte(dir.path() + "/sequence", 17);  // the newer slot's durable sequence
  r = cachestore::ReadSequenceMarker(dir.path());
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ((*r)->durable_sequence, 10u);
  EXPECT_EQ((*r)->sequence_limit, 100u);
  FlipByte(dir.path() + "/sequence", 64 + 17);
  EXPECT_TRUE(cachestore::ReadSequenceMarker(dir.path()).status().IsCorruption());
  EXPECT_FALSE(*cachestore::ReadSequenceMarker(dir.Sub("none")));  // absent: nullopt
}

TEST(MarkerFilesTest, DeleteLogTornTailIsIgnoredDamageInTheMiddleDeletesMore) {
  testing::TempDir dir;
  {
    auto log = cachestore::DeleteLog::Load(dir.path());
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE(log->Append(7, 100).ok());
    ASSERT_TRUE(log->Append(8, 200).ok());
    ASSERT_TRUE(log->Append(9, 300).ok());
  }
  auto log = cachestore::DeleteLog::Load(dir.path());
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->DeletedBelow(7), 100u);
  EXPECT_EQ(log->DeletedBelow(8), 200u);
  EXPECT_EQ(log->DeletedBelow(1), 0u);
  EXPECT_EQ(log->max_sequence(), 300u);
  FlipByte(dir.path() + "/deletes", 64 + 9);  // the last entry: a torn append
  log = cachestore::DeleteLog::Load(dir.path());
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->DeletedBelow(9), 0u);
  EXPECT_EQ(log->entries(), 2u);
  ASSERT_TRUE(log->Append(10, 400).ok());     // overwrites the torn entry
  FlipByte(dir.path() + "/deletes", 32 + 9);  // now damage in the middle (namespace 8's)
  log = cachestore::DeleteLog::Load(dir.path());
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->damaged_entries(), 1u);
  EXPECT_EQ(log->DeletedBelow(7), 400u);  // every namespace, below the next valid entry
  EXPECT_EQ(log->DeletedBelow(123), 400u);
  EXPECT_EQ(log->DeletedBelow(10), 400u);
  EXPECT_EQ(fs::file_size(dir.path() + "/deletes"), 96u);
}

}  // namespace
}  // namespace strata
