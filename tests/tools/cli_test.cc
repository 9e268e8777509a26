// The strata binary end to end, as a user runs it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "cachestore/index.h"
#include "tests/testing/temp_dir.h"

namespace strata {
namespace {

struct CliRun {
  int rc;
  std::string out;
};

CliRun Strata(const std::string& args) {
  const std::string cmd =
      std::string("cd ") + STRATA_SOURCE_DIR + " && " + STRATA_CLI + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int st = pclose(p);
  return {WEXITSTATUS(st), out};
}

TEST(CliTest, DemoRunsRestartsAndVerifiesThenFsckAndStatsReadIt) {
  testing::TempDir dir;
  const std::string d = dir.Sub("data");
  CliRun r = Strata("demo --data-dir " + d +
                    " --sessions 3 --turns 3 --system-tokens 1024 "
                    "--turn-tokens 512 --segment-size 4MiB --nvme-cache 64MiB --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("\"mismatched\": 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"missing\": 0"), std::string::npos) << r.out;
  // Second run over the same directory: every first-turn prefix now hits from NVMe.
  r = Strata("demo --data-dir " + d +
             " --sessions 3 --turns 3 --system-tokens 1024 "
             "--turn-tokens 512 --segment-size 4MiB --nvme-cache 64MiB --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out.find("\"hit_nvme\": 0,"), std::string::npos) << r.out;
  r = Strata("fsck --data-dir " + d);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("clean"), std::string::npos) << r.out;
  r = Strata("stats --data-dir " + d + " --json");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("\"csa\": {\"records\": "), std::string::npos) << r.out;
  // Another geometry on the same directory is refused with a clear message.
  r = Strata("demo --data-dir " + d + " --segment-size 8MiB --nvme-cache 64MiB");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("was created with"), std::string::npos) << r.out;
}

// A damaged index table file: stats and fsck say what is wrong and how to get out;
// `fsck --rebuild-index` rebuilds the index from the segments, after which stats reads exactly
// what it read before the damage. A lost index folder: the next run rebuilds it and hits.
TEST(CliTest, DamagedOrLostIndexIsRebuiltFromTheSegments) {
  namespace fs = std::filesystem;
  testing::TempDir dir;
  const std::string d = dir.Sub("data");
  const std::string demo = "demo --data-dir " + d +
                           " --sessions 3 --turns 2 --system-tokens 1024 --turn-tokens 512 "
                           "--segment-size 4MiB --nvme-cache 64MiB --json";
  CliRun r = Strata(demo);
  ASSERT_EQ(r.rc, 0) << r.out;
  const CliRun before = Strata("stats --data-dir " + d + " --json");
  ASSERT_EQ(before.rc, 0) << before.out;
  ASSERT_NE(before.out.find("\"segments\": 16, \"records\": "), std::string::npos) << before.out;
  ASSERT_EQ(before.out.find("\"segments\": 16, \"records\": 0,"), std::string::npos) << before.out;
  {
    auto idx = cachestore::Index::Open(d + "/index");
    ASSERT_TRUE(idx.ok()) << idx.status().ToString();
    ASSERT_TRUE((*idx)->FlushMemtables().ok());
  }
  fs::path sst;
  for (const auto& e : fs::directory_iterator(d + "/index"))
    if (e.path().extension() == ".sst" && (sst.empty() || e.file_size() > fs::file_size(sst)))
      sst = e.path();
  ASSERT_FALSE(sst.empty());
  {
    int fd = open(sst.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    unsigned char c;
    ASSERT_EQ(pread(fd, &c, 1, 100), 1);
    c ^= 0x5a;
    ASSERT_EQ(pwrite(fd, &c, 1, 100), 1);
    close(fd);
  }
  r = Strata("stats --data-dir " + d);
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("the index is damaged"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fsck --rebuild-index"), std::string::npos) << r.out;
  r = Strata("fsck --data-dir " + d);
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("fsck --rebuild-index"), std::string::npos) << r.out;
  r = Strata("fsck --rebuild-index --data-dir " + d + " --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("\"rebuilt\": {\"records\": "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"corrupt\": 0,"), std::string::npos) << r.out;
  const CliRun after = Strata("stats --data-dir " + d + " --json");
  ASSERT_EQ(after.rc, 0) << after.out;
  EXPECT_EQ(after.out, before.out);

  fs::remove_all(d + "/index");
  r = Strata("stats --data-dir " + d);
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("the index is missing but segment files exist"), std::string::npos) << r.out;
  r = Strata(demo);  // opening the store rebuilds: the first turns hit from NVMe
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("\"mismatched\": 0"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"hit_nvme\": 0,"), std::string::npos) << r.out;
  r = Strata("fsck --data-dir " + d);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("clean"), std::string::npos) << r.out;
}

TEST(CliTest, LayoutPrintsV4ProNumbers) {
  CliRun r = Strata("layout --model configs/models/v4-pro.json --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("\"csa\": {\"block_bytes\": 1121280"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"swa\": {\"block_bytes\": 9998336"), std::string::npos) << r.out;
}

TEST(CliTest, BadUsageIsAClearError) {
  EXPECT_EQ(Strata("").rc, 2);
  EXPECT_EQ(Strata("frobnicate").rc, 2);
  CliRun r = Strata("fsck");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("--data-dir is required"), std::string::npos) << r.out;
  r = Strata("fsck --data-dir /nonexistent-strata-dir");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("not a strata data directory"), std::string::npos) << r.out;
  r = Strata("layout --model /nonexistent.json");
  EXPECT_EQ(r.rc, 1);
  r = Strata("demo --host-cache lots");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("host-cache"), std::string::npos) << r.out;
  EXPECT_EQ(Strata("demo --help").rc, 0);
}

// The main job: sessions through the engine, every turn checked bit-exact against a cold run;
// a second run over the same directory restores from NVMe.
TEST(CliTest, RunVerifiesEveryTurnAndRestoresFromNvmeAfterRestart) {
  testing::TempDir dir;
  const std::string d = dir.Sub("data"), s = dir.Sub("sessions.json");
  CliRun g = Strata(
      "gen-sessions --sessions 3 --turns 2 --system-tokens 600 --min-new 40 "
      "--max-new-tokens 80 --output-tokens 4 --branch-every 2 --out " +
      s);
  ASSERT_EQ(g.rc, 0) << g.out;
  CliRun r = Strata("run --sessions " + s + " --data-dir " + d +
                    " --nvme-cache 64MiB --host-cache 16MiB --verify --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("\"verified\":6"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"mismatched\":0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"plan\":\"checkpoint@512\""), std::string::npos) << r.out;
  r = Strata("run --sessions " + s + " --data-dir " + d +
             " --nvme-cache 64MiB --host-cache 16MiB --policy recompute --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  const std::string first_turn = r.out.substr(0, r.out.find('\n'));  // restored after restart
  EXPECT_EQ(first_turn.find("\"read_nvme_bytes\":0,"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"plan\":\"cold\""), std::string::npos) << r.out;
  CliRun bad = Strata("run --policy sometimes --data-dir " + d);
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.out.find("unknown policy"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace strata
