// The strata binary end to end, as a user runs it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "cachestore/nvme/index.h"
#include "tests/testing/server_process.h"
#include "tests/testing/temp_dir.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int rc;
  std::string out;
};

// Runs a shell command line in `cwd`; stdout and stderr together.
CliRun Shell(const std::string& command, const std::string& cwd) {
  const std::string cmd = "cd '" + cwd + "' && " + command + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int st = pclose(p);
  return {WEXITSTATUS(st), out};
}

CliRun Strata(const std::string& args, const std::string& cwd = STRATA_SOURCE_DIR) {
  return Shell(std::string(STRATA_CLI) + " " + args, cwd);
}

// The number after `"key":` (JSON with or without a space after the colon); -1 if absent.
int64_t JsonNumber(const std::string& text, const std::string& key) {
  size_t at = text.find("\"" + key + "\":");
  if (at == std::string::npos) return -1;
  at += key.size() + 3;
  while (at < text.size() && text[at] == ' ') ++at;
  return std::strtoll(text.c_str() + at, nullptr, 10);
}

std::string LastLine(const std::string& text) {
  const size_t end = text.find_last_not_of('\n');
  if (end == std::string::npos) return "";
  const size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start + 1));
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
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
  EXPECT_GT(JsonNumber(r.out, "hit_nvme"), 0) << r.out;
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
  EXPECT_GT(JsonNumber(first_turn, "read_nvme_bytes"), 0) << r.out;
  EXPECT_EQ(Count(r.out, "\"plan\":\""), 6u) << "a plan for every turn" << r.out;
  EXPECT_EQ(Count(r.out, "\"plan\":\"cold\""), 0u) << r.out;
  CliRun bad = Strata("run --policy sometimes --data-dir " + d);
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.out.find("unknown policy"), std::string::npos) << bad.out;
}

// The main job through a running strata-server: every turn bit-exact against a cold run; after a
// server restart the next run restores from the daemon's NVMe tier; stats and top read the
// tenant's counters.
TEST(CliTest, RunThroughTheServerThenStatsAndTop) {
  testing::ServerProcess server;
  Status started = server.Start();
  ASSERT_TRUE(started.ok()) << started.ToString() << "\n" << server.Log();
  testing::TempDir dir;
  const std::string s = dir.Sub("sessions.json"), sock = " --server " + server.socket_path();
  CliRun g = Strata(
      "gen-sessions --sessions 3 --turns 2 --system-tokens 600 --min-new 40 "
      "--max-new-tokens 80 --output-tokens 4 --branch-every 2 --out " +
      s);
  ASSERT_EQ(g.rc, 0) << g.out;
  CliRun r = Strata("run --sessions " + s + sock + " --verify --json");
  ASSERT_EQ(r.rc, 0) << r.out << server.Log();
  EXPECT_NE(r.out.find("\"verified\":6"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"mismatched\":0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"plan\":\"checkpoint@512\""), std::string::npos) << r.out;

  CliRun st = Strata("stats" + sock);
  ASSERT_EQ(st.rc, 0) << st.out;
  for (const char* want : {"hits", "[server]", "commits", "host", "checkpoint"})
    EXPECT_NE(st.out.find(want), std::string::npos) << want << "\n" << st.out;
  st = Strata("stats --json" + sock);
  ASSERT_EQ(st.rc, 0) << st.out;
  EXPECT_GT(JsonNumber(st.out, "host.used"), 0) << st.out;
  EXPECT_GT(JsonNumber(st.out, "server.commits"), 0) << st.out;
  CliRun top = Strata("top --iterations 3 --interval 0.1 --no-clear" + sock);
  ASSERT_EQ(top.rc, 0) << top.out;
  EXPECT_EQ(Count(top.out, "hit rate"), 3u) << top.out;
  EXPECT_NE(top.out.find("host "), std::string::npos) << top.out;

  ASSERT_TRUE(server.Restart().ok()) << server.Log();
  r = Strata("run --sessions " + s + sock + " --policy recompute --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  const std::string first_turn = r.out.substr(0, r.out.find('\n'));
  EXPECT_GT(JsonNumber(first_turn, "read_nvme_bytes"), 0) << r.out;
  EXPECT_EQ(Count(r.out, "\"plan\":\"cold\""), 0u) << r.out;
  CliRun none = Strata("run --server " + dir.Sub("nothing.sock"));
  EXPECT_EQ(none.rc, 1);
  EXPECT_NE(none.out.find("nothing.sock"), std::string::npos) << none.out;
}

// From any directory: the default model config is found next to the binary, and the data
// directory (a relative default) lands under the current directory, as does a relative --out.
TEST(CliTest, RunFromAnotherDirectoryFindsItsConfigsAndWritesUnderCwd) {
  testing::TempDir dir;
  const std::string cwd = dir.Sub("work");
  fs::create_directories(cwd);
  CliRun g = Strata(
      "gen-sessions --sessions 1 --turns 2 --system-tokens 300 --min-new 20 --max-new-tokens 40 "
      "--output-tokens 2 --out sessions.json",
      cwd);
  ASSERT_EQ(g.rc, 0) << g.out;
  ASSERT_TRUE(fs::exists(fs::path(cwd) / "sessions.json"));
  CliRun r =
      Strata("run --sessions sessions.json --nvme-cache 64MiB --host-cache 16MiB --json", cwd);
  ASSERT_EQ(r.rc, 0) << r.out;
  const std::string summary = LastLine(r.out);
  ASSERT_NE(summary.find("\"summary\":true"), std::string::npos) << r.out;
  EXPECT_EQ(JsonNumber(summary, "turns"), 2) << r.out;
  EXPECT_GT(JsonNumber(summary, "restored_tokens"), 0) << "the second turn restores" << r.out;
  EXPECT_TRUE(fs::is_directory(fs::path(cwd) / "strata-data" / "segments"));
  EXPECT_TRUE(fs::is_directory(fs::path(cwd) / "strata-data" / "index"));
  CliRun fsck = Strata("fsck --data-dir strata-data", cwd);
  EXPECT_EQ(fsck.rc, 0) << fsck.out;
  EXPECT_NE(fsck.out.find("clean"), std::string::npos) << fsck.out;
  // A relative path the user gives is relative to the current directory, not the data dir.
  CliRun missing = Strata("run --model configs/models/v4-tiny.json", cwd);
  EXPECT_EQ(missing.rc, 1) << missing.out;
  EXPECT_NE(missing.out.find("configs/models/v4-tiny.json"), std::string::npos) << missing.out;
}

// cmake --install into a fresh prefix; the installed binary, run from an unrelated directory,
// finds the installed configs and prints the same layout as the build tree.
TEST(CliInstallTest, InstalledStrataRunsFromAnyDirectory) {
  testing::TempDir dir;
  const fs::path prefix = dir.Sub("prefix"), elsewhere = dir.Sub("elsewhere");
  fs::create_directories(elsewhere);
  CliRun inst = Shell(std::string(STRATA_CMAKE) + " --install '" + STRATA_BINARY_DIR +
                          "' --prefix '" + prefix.string() + "'",
                      elsewhere.string());
  ASSERT_EQ(inst.rc, 0) << inst.out;
  const fs::path bin = prefix / "bin" / "strata", share = prefix / "share" / "strata" / "configs";
  ASSERT_TRUE(fs::exists(bin)) << inst.out;
  // Every shipped config is installed, byte for byte.
  size_t files = 0;
  const fs::path src = fs::path(STRATA_SOURCE_DIR) / "configs";
  for (const auto& e : fs::recursive_directory_iterator(src)) {
    if (!e.is_regular_file()) continue;
    const fs::path installed = share / fs::relative(e.path(), src);
    ASSERT_TRUE(fs::exists(installed)) << installed;
    EXPECT_EQ(ReadFile(installed), ReadFile(e.path())) << installed;
    ++files;
  }
  EXPECT_GE(files, 8u);
  for (const char* f : {"models/v4-pro.json", "sessions/agents-small.json", "store/default.json"})
    EXPECT_TRUE(fs::exists(share / f)) << f;

  CliRun help = Shell(bin.string() + " layout --help", elsewhere.string());
  ASSERT_EQ(help.rc, 0) << help.out;
  std::string unwrapped;  // --help wraps long defaults over lines
  for (char c : help.out)
    if (!std::isspace(static_cast<unsigned char>(c))) unwrapped += c;
  EXPECT_NE(unwrapped.find((share / "models" / "v4-pro.json").string()), std::string::npos)
      << "the default model is the installed one" << help.out;
  CliRun got = Shell(bin.string() + " layout --json", elsewhere.string());
  ASSERT_EQ(got.rc, 0) << got.out;
  EXPECT_NE(got.out.find("\"csa\": {\"block_bytes\": 1121280"), std::string::npos) << got.out;
  EXPECT_NE(got.out.find("\"hca\": {\"block_bytes\": 36208"), std::string::npos) << got.out;
  EXPECT_NE(got.out.find("\"swa\": {\"block_bytes\": 9998336"), std::string::npos) << got.out;
  EXPECT_NE(got.out.find("\"checkpoint\": {\"block_bytes\": 5363712"), std::string::npos)
      << got.out;
  CliRun want = Strata("layout --model configs/models/v4-pro.json --json");
  ASSERT_EQ(want.rc, 0) << want.out;
  EXPECT_EQ(got.out, want.out) << "installed and build-tree binaries print the same layout";
  CliRun text = Shell(bin.string() + " layout", elsewhere.string());
  EXPECT_EQ(text.rc, 0) << text.out;
  EXPECT_NE(text.out.find("fingerprint"), std::string::npos) << text.out;
}

}  // namespace
}  // namespace strata
