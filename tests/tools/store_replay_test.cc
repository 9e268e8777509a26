// `strata replay` (tools/store_replay.h): a slice of the shipped Mooncake trace through the real
// store on real files (io_uring or posix, O_DIRECT) makes exactly the simulator's placement
// decisions, including reclaim; every object Get served carries the bytes Put wrote; read faults
// make the replay's hits diverge from the simulator's as they should; bad options are errors.
#include "tools/store_replay.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/model_config.h"
#include "tests/testing/fault_device.h"
#include "tests/testing/png.h"
#include "tests/testing/temp_dir.h"

namespace strata::tools {
namespace {

namespace fs = std::filesystem;

std::string TraceFile() {
  const char* env = std::getenv("STRATA_TRACES_DIR");
  return (env ? std::string(env) : std::string(STRATA_SOURCE_DIR "/../shared/traces")) +
         "/mooncake_conversation_trace.jsonl";
}

// v4-tiny's layout (small objects) with v4-flash's prefill cost for the TTFT model.
struct Fixture {
  CompareSetup setup;
  Trace trace;
  TraceSummary summary;
};

Fixture Make(size_t requests) {
  Fixture f;
  auto shape = engine::LoadModelShape(STRATA_SOURCE_DIR "/configs/models/v4-tiny.json");
  EXPECT_TRUE(shape.ok()) << shape.status().ToString();
  auto layout = CacheLayout::Make(*shape, LayoutOptions{});
  EXPECT_TRUE(layout.ok());
  f.setup.layout = *layout;
  f.setup.model = "v4-tiny";
  auto hw = LoadHardware(STRATA_SOURCE_DIR "/configs/hardware/b200-node.json");
  EXPECT_TRUE(hw.ok());
  f.setup.hardware = *hw;
  f.setup.cost = *hw->For("v4-flash");
  f.setup.nvme_segment_bytes = 1 << 20;
  TraceLoadOptions o;
  o.block_size = f.setup.layout.block_size();
  o.layout_fingerprint = f.setup.layout.fingerprint();
  o.max_requests = requests;
  auto t = LoadTrace(TraceFile(), o);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  f.trace = *t;
  f.summary = Summarize(f.trace);
  return f;
}

CompareConfig Config(const std::string& policy, uint64_t dram, uint64_t nvme) {
  CompareConfig c;
  auto p = ComparePolicy::Parse(policy, 256);
  EXPECT_TRUE(p.ok());
  c.policy = *p;
  c.dram_bytes = dram;
  c.nvme_bytes = nvme;
  return c;
}

class StoreReplayTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!fs::exists(TraceFile())) GTEST_SKIP() << "shipped trace not found: " << TraceFile();
  }
  testing::TempDir tmp_;
};

// The bytes the tiny layout's objects take for the first 300 requests are a few hundred MiB;
// 2 MiB of DRAM and 12 MiB of NVMe in 1 MiB segments force demotions, SWA thinning (auto) and
// reclaim of live records.
TEST_P(StoreReplayTest, MakesTheSimulatorsDecisionsOnRealFiles) {
  Fixture f = Make(300);
  ASSERT_EQ(f.trace.requests.size(), 300u);
  StoreReplayOptions o;
  o.data_dir = tmp_.Sub("data");
  auto r =
      ReplayThroughStore(f.trace, f.summary, f.setup, Config(GetParam(), 2 << 20, 12 << 20), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->compared);
  EXPECT_EQ(r->first_divergence, -1) << r->divergence;
  EXPECT_EQ(r->store_decisions, r->sim_decisions);
  // The run did what the check is about: it demoted, reclaimed and restored from NVMe.
  EXPECT_GT(r->store_decisions, 1000u);
  EXPECT_GT(r->placed_nvme_bytes, 12u << 20);
  EXPECT_GT(r->segments_reclaimed, 0u);
  EXPECT_GT(r->store.objects_read[size_t(Tier::kNvme)], 0u);
  EXPECT_GT(r->restore_read_us.count, 0u);
  // Same hits and bytes as the simulator: placement is shared, hits come from what Get served.
  EXPECT_EQ(r->store.hit_tokens, r->sim.hit_tokens);
  EXPECT_EQ(r->store.restored_tokens, r->sim.restored_tokens);
  EXPECT_EQ(r->store.plans, r->sim.plans);
  EXPECT_EQ(r->store.bytes_read, r->sim.bytes_read);
  EXPECT_EQ(r->store_nvme_bytes_written, r->sim_nvme_bytes_written);
  EXPECT_GT(r->store.restored_tokens, 0u);
  // Every object served carried exactly the bytes put for its key.
  EXPECT_EQ(r->payload_mismatches, 0u);
  EXPECT_EQ(r->corrupt_misses, 0u);
  // The simulator's device estimate (records plus reclaim's relocations) is the device's count.
  EXPECT_EQ(r->device_write_bytes, r->sim_device_write_bytes);
  EXPECT_EQ(r->device_read_bytes, r->sim_device_read_bytes);
  // The device wrote every placed byte plus record headers, alignment and relocations.
  EXPECT_GE(r->device_write_bytes, r->placed_nvme_bytes + r->relocated_bytes);
  EXPECT_GT(r->write_amplification(), 1.0);
  EXPECT_FALSE(r->samples.empty());
  EXPECT_EQ(r->samples.back().requests, 300u);
}

INSTANTIATE_TEST_SUITE_P(Policies, StoreReplayTest,
                         ::testing::Values("full", "checkpoint:512", "recompute", "auto"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == ':') c = '_';
                           return s;
                         });

class StoreReplayFaultTest : public StoreReplayTest {};

// Two directories (drives): segments alternate between them, the decisions stay the
// simulator's, and both directories hold records.
TEST_F(StoreReplayFaultTest, StripesOverSeveralDirectories) {
  Fixture f = Make(200);
  StoreReplayOptions o;
  o.data_dir = tmp_.Sub("data");
  o.drives = {tmp_.Sub("data2")};
  auto r = ReplayThroughStore(f.trace, f.summary, f.setup, Config("full", 2 << 20, 12 << 20), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first_divergence, -1) << r->divergence;
  EXPECT_EQ(r->drives, 2u);
  EXPECT_EQ(r->payload_mismatches, 0u);
  EXPECT_GT(r->store.objects_read[size_t(Tier::kNvme)], 0u);
  for (const std::string& dir : {o.data_dir, o.drives[0]}) {
    size_t files = 0;
    for (const auto& e : fs::directory_iterator(fs::path(dir) / "segments"))
      files += e.is_regular_file() && !e.is_symlink();
    EXPECT_EQ(files, 6u) << dir;  // 12 segments of 1 MiB, every other one
  }
}

// Reads from NVMe fail: the simulator still counts those restores, the replay falls back (its
// hits come from what Get served), so the two diverge, and in the direction they must.
TEST_F(StoreReplayFaultTest, ReadFaultsMakeReplayAndSimulationDiverge) {
  Fixture f = Make(300);
  StoreReplayOptions o;
  o.data_dir = tmp_.Sub("data");
  o.wrap_device = [](std::unique_ptr<cachestore::Device> d) -> std::unique_ptr<cachestore::Device> {
    auto fault = std::make_unique<testing::FaultDevice>(std::move(d));
    fault->read_errno = EIO;
    return fault;
  };
  auto r = ReplayThroughStore(f.trace, f.summary, f.setup, Config("full", 2 << 20, 12 << 20), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->compared);
  EXPECT_GT(r->sim.objects_read[size_t(Tier::kNvme)], 0u);
  EXPECT_EQ(r->store.objects_read[size_t(Tier::kNvme)], 0u);
  EXPECT_GT(r->store.fallbacks, r->sim.fallbacks);
  EXPECT_LT(r->store.restored_tokens, r->sim.restored_tokens);
  EXPECT_GE(r->first_divergence, 0);
  EXPECT_EQ(r->payload_mismatches, 0u);
}

// zstd on the NVMe tier: V4-shaped payloads shrink, the tier holds more tokens per TB, every
// object still comes back byte for byte, and placement parts from the raw-sized simulator.
TEST_F(StoreReplayFaultTest, ACodecShrinksRecordsAndKeepsEveryByte) {
  Fixture f = Make(200);
  StoreReplayOptions raw;
  raw.data_dir = tmp_.Sub("raw");
  auto a = ReplayThroughStore(f.trace, f.summary, f.setup, Config("full", 2 << 20, 12 << 20), raw);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  StoreReplayOptions z = raw;
  z.data_dir = tmp_.Sub("zstd");
  z.codec = CodecKind::kZstd;
  auto b = ReplayThroughStore(f.trace, f.summary, f.setup, Config("full", 2 << 20, 12 << 20), z);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->first_divergence, -1);
  EXPECT_GE(b->first_divergence, 0);
  EXPECT_EQ(b->payload_mismatches, 0u);
  EXPECT_EQ(b->corrupt_misses, 0u);
  EXPECT_GT(b->store.objects_read[size_t(Tier::kNvme)], 0u);
  ASSERT_GT(a->nvme_stored_bytes, 0u);
  ASSERT_GT(b->nvme_stored_bytes, 0u);
  EXPECT_LT(double(a->nvme_raw_bytes) / double(a->nvme_stored_bytes), 1.0);  // headers, padding
  EXPECT_GT(double(b->nvme_raw_bytes) / double(b->nvme_stored_bytes), 1.05);
  EXPECT_GE(b->nvme_tokens_per_tb, a->nvme_tokens_per_tb);
  EXPECT_GT(a->nvme_tokens_per_tb, 0);
}

TEST_F(StoreReplayFaultTest, RefusesANonEmptyDirectoryAndAMissingOne) {
  Fixture f = Make(10);
  StoreReplayOptions o;
  o.data_dir = tmp_.Sub("data");
  fs::create_directories(o.data_dir);
  std::ofstream(o.data_dir + "/something") << "x";
  auto r = ReplayThroughStore(f.trace, f.summary, f.setup, Config("full", 2 << 20, 12 << 20), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not empty"), std::string::npos) << r.status().ToString();
  o.data_dir.clear();
  r = ReplayThroughStore(f.trace, f.summary, f.setup, Config("full", 2 << 20, 12 << 20), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("data directory"), std::string::npos);
  // Host only needs no directory.
  r = ReplayThroughStore(f.trace, f.summary, f.setup, Config("full", 2 << 20, 0), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first_divergence, -1) << r->divergence;
  EXPECT_EQ(r->device_write_bytes, 0u);
}

// The CLI as a user runs it: a slice of the shipped trace, V4-Flash sizes scaled down, JSON out,
// plots; and its errors.
struct CliRun {
  int rc;
  std::string out;
};
CliRun Cli(const std::string& args) {
  FILE* p = popen((std::string(STRATA_CLI) + " " + args + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = pclose(p);
  return {WEXITSTATUS(st), out};
}

TEST_F(StoreReplayFaultTest, CliReportsTheReplayAndTheSimulatorCheck) {
  const std::string base = "replay --trace " + TraceFile() +
                           " --model " STRATA_SOURCE_DIR "/configs/models/v4-flash.json";
  CliRun r = Cli("replay --help");
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("--scale-down"), std::string::npos);
  r = Cli("replay --nvme 1GiB");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("--trace is required"), std::string::npos) << r.out;
  r = Cli(base + " --nvme 1GiB");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("--data-dir is required"), std::string::npos) << r.out;
  r = Cli(base + " --nvme 1GiB --data-dir " + tmp_.Sub("a") + ",," + tmp_.Sub("a"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("given twice"), std::string::npos) << r.out;

  const std::string run = base + " --requests 120 --scale-down 64 --dram 32MiB --nvme 96MiB " +
                          "--segment-bytes 4MiB --data-dir " + tmp_.Sub("data");
  r = Cli(run + " --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  EXPECT_EQ(j["requests"], 120);
  EXPECT_EQ(j["scale_down"], 64);
  EXPECT_EQ(j["simulator"]["first_divergence"], -1) << j["simulator"]["divergence"];
  EXPECT_GT(j["device_write_bytes"].template get<uint64_t>(), 0u);
  EXPECT_EQ(j["payload_mismatches"], 0);
  EXPECT_NE(j["ran_on"].template get<std::string>(), "");

  // Again into the same directory: refused, nothing replayed over an existing store.
  r = Cli(run + " --json");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("not empty"), std::string::npos) << r.out;

  if (std::system("/usr/bin/python3 -c 'import matplotlib' 2>/dev/null") != 0)
    GTEST_SKIP() << "matplotlib is not installed (tools/install-deps.sh installs it)";
  fs::remove_all(tmp_.Sub("data"));
  r = Cli(run + " --plot " + tmp_.Sub("plots"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("identical, entry by entry"), std::string::npos) << r.out;
  testing::ExpectPngs(tmp_.Sub("plots"), {"replay-throughput.png", "replay-resident.png",
                                          "replay-hits.png", "replay-latency.png"});
}

}  // namespace
}  // namespace strata::tools
