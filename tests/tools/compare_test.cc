// `strata compare`: the replay against hand-computed figures on a tiny trace, invariants on a
// few hundred requests of the shipped Mooncake trace per policy, a generated trace of another
// shape, the TTFT queue, the hardware file's sources and the CLI's JSON lines.
#include "tools/compare.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "engine/model_config.h"
#include "tests/testing/png.h"
#include "tests/testing/temp_dir.h"
#include "tools/compare_sweep.h"

namespace strata::tools {
namespace {

namespace fs = std::filesystem;

// The shipped traces sit next to the checkout (shared/traces/); STRATA_TRACES_DIR overrides.
std::string TracesDir() {
  const char* env = std::getenv("STRATA_TRACES_DIR");
  return env ? std::string(env) + "/" : std::string(STRATA_SOURCE_DIR "/../shared/traces/");
}
const std::string kMooncake = "mooncake_conversation_trace.jsonl";

CompareSetup MakeSetup(const std::string& model = "v4-pro") {
  CompareSetup s;
  auto shape = engine::LoadModelShape(STRATA_SOURCE_DIR "/configs/models/" + model + ".json");
  EXPECT_TRUE(shape.ok()) << shape.status().ToString();
  auto layout = CacheLayout::Make(*shape, LayoutOptions{});
  EXPECT_TRUE(layout.ok());
  s.layout = *layout;
  s.model = model;
  auto hw = LoadHardware(STRATA_SOURCE_DIR "/configs/hardware/b200-node.json");
  EXPECT_TRUE(hw.ok()) << hw.status().ToString();
  s.hardware = *hw;
  auto cost = hw->For(model);
  EXPECT_TRUE(cost.ok());
  s.cost = *cost;
  return s;
}

Trace Load(const std::string& text, const CompareSetup& s) {
  TraceLoadOptions o;
  o.block_size = s.layout.block_size();
  o.layout_fingerprint = s.layout.fingerprint();
  auto t = ParseMooncakeTrace(text, "t.jsonl", o);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return *t;
}

CompareConfig Config(const std::string& policy, uint64_t dram, uint64_t nvme = 0) {
  CompareConfig c;
  auto p = ComparePolicy::Parse(policy, 256);
  EXPECT_TRUE(p.ok()) << policy;
  c.policy = *p;
  c.dram_bytes = dram;
  c.nvme_bytes = nvme;
  return c;
}

CompareResult Replayed(const Trace& t, const CompareSetup& s, const CompareConfig& c) {
  auto r = Replay(t, Summarize(t), s, c);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : CompareResult{};
}

// The hand-made trace of trace_test.cc (B = 256; hits: r2 1024 tokens, r3 512 tokens).
const char kTinyTrace[] =
    "{\"timestamp\": 0, \"input_length\": 1024, \"output_length\": 10, \"hash_ids\": [1, 2]}\n"
    "{\"timestamp\": 10, \"input_length\": 1300, \"output_length\": 10, \"hash_ids\": [1, 2, 3]}\n"
    "{\"timestamp\": 20, \"input_length\": 600, \"output_length\": 10, \"hash_ids\": [1, 4]}\n"
    "{\"timestamp\": 30, \"input_length\": 512, \"output_length\": 10, \"hash_ids\": [5]}\n";

TEST(CompareTest, HandComputedReplayOfTinyTrace) {
  const CompareSetup s = MakeSetup();
  const Trace t = Load(kTinyTrace, s);
  const uint64_t big = 1ull << 30;
  // full: both hits restore in full (r1 stored every block's SWA): saved = hit = 1536.
  const CompareResult full = Replayed(t, s, Config("full", big));
  EXPECT_EQ(full.hit_tokens, 1536u);
  EXPECT_EQ(full.saved_tokens, 1536u);
  EXPECT_EQ(full.recompute_tokens, 0u);
  EXPECT_EQ(full.plans[1], 2u);  // two full restores
  EXPECT_EQ(full.evictions, 0u);
  // checkpoint:512: r1 checkpoints at tokens 512 and 1024 (its end), exactly where r3 and r2
  // hit.
  const CompareResult c512 = Replayed(t, s, Config("checkpoint:512", big));
  EXPECT_EQ(c512.saved_tokens, 1536u);
  EXPECT_EQ(c512.plans[2], 2u);
  // checkpoint:1024: r1 checkpoints only at 1024; r3's hit at 512 has none, and V4-Pro's
  // recompute pyramid (7,876 tokens) is longer than the hit, so r3 recomputes all 512 tokens.
  // computed = r1 1024 + r2 276 + r3 (512 + 88) + r4 512 = 2412 over 3436 - 1536 = 1900 missed.
  const CompareResult c1024 = Replayed(t, s, Config("checkpoint:1024", big));
  EXPECT_EQ(c1024.hit_tokens, 1536u);
  EXPECT_EQ(c1024.saved_tokens, 1024u);
  EXPECT_EQ(c1024.recompute_tokens, 512u);
  EXPECT_EQ(c1024.computed_tokens, 2412u);
  EXPECT_DOUBLE_EQ(c1024.amplification(), 2412.0 / 1900.0);
  // recompute: every hit is shorter than the pyramid: nothing saved.
  const CompareResult rec = Replayed(t, s, Config("recompute", big));
  EXPECT_EQ(rec.hit_tokens, 1536u);
  EXPECT_EQ(rec.saved_tokens, 0u);
  // Bytes written: blocks after each restored prefix: r1 4, r2 1 (block 4), r3 none, r4 2 = 7
  // blocks of compressed state, plus each one's swa under full.
  const CacheLayout& l = s.layout;
  const uint64_t compressed = l.FamilyBlockBytes(Family::kCsa) +
                              l.FamilyBlockBytes(Family::kCsaIndex) +
                              l.FamilyBlockBytes(Family::kHca);
  EXPECT_EQ(rec.bytes_written[size_t(Tier::kHost)], 7 * compressed);
  EXPECT_EQ(full.bytes_written[size_t(Tier::kHost)],
            7 * compressed + 7 * l.FamilyBlockBytes(Family::kSwa));
}

TEST(CompareTest, QueueModelByHand) {
  // One server: three requests at t=0 of 1 s each finish at 1, 2, 3.
  Percentiles one = QueueTtft({0, 0, 0}, {1, 1, 1}, 1);
  EXPECT_DOUBLE_EQ(one.p50, 2);
  EXPECT_DOUBLE_EQ(one.mean, 2);
  EXPECT_DOUBLE_EQ(one.p99, 3);
  // Two servers: 1, 1, 2. A late arrival does not wait.
  Percentiles two = QueueTtft({0, 0, 0, 10'000'000}, {1, 1, 1, 0.5}, 2);
  EXPECT_DOUBLE_EQ(two.mean, (1 + 1 + 2 + 0.5) / 4);
  EXPECT_DOUBLE_EQ(two.p99, 2);
}

class ShippedTraceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!fs::exists(TracesDir() + kMooncake))
      GTEST_SKIP() << "no " << TracesDir() + kMooncake << " (set STRATA_TRACES_DIR)";
  }
  // The shipped trace's first 400 requests in 256-token blocks of `s`'s layout.
  static Result<Trace> First400(const CompareSetup& s) {
    TraceLoadOptions o;
    o.block_size = 256;
    o.layout_fingerprint = s.layout.fingerprint();
    o.max_requests = 400;
    return LoadTrace(TracesDir() + kMooncake, o);
  }
};

TEST_P(ShippedTraceTest, InvariantsOnAFewHundredRequests) {
  const CompareSetup s = MakeSetup(GetParam());
  auto t = First400(s);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const TraceSummary sum = Summarize(*t);
  ASSERT_GT(sum.ceiling_hit_tokens, 0u);
  const uint64_t unlimited = 1ull << 40;
  std::map<std::string, CompareResult> res;
  for (const char* p : {"full", "checkpoint:512", "checkpoint:2048", "recompute", "auto"}) {
    const CompareResult r = Replayed(*t, s, Config(p, unlimited));
    SCOPED_TRACE(p);
    EXPECT_EQ(r.requests, 400u);
    EXPECT_EQ(r.evictions, 0u);
    // Nothing evicted: every policy hits exactly the ceiling.
    EXPECT_EQ(r.hit_tokens, sum.ceiling_hit_tokens);
    EXPECT_LE(r.saved_tokens, r.hit_tokens);
    EXPECT_EQ(r.saved_tokens + r.recompute_tokens, r.restored_tokens);
    EXPECT_EQ(r.computed_tokens, r.input_tokens - r.saved_tokens);
    EXPECT_GE(r.amplification(), 1.0);
    EXPECT_GT(r.ttft_s.p99, 0);
    EXPECT_GE(r.ttft_s.p99, r.ttft_s.p50);
    res[p] = r;
  }
  EXPECT_EQ(res["full"].saved_tokens, res["full"].hit_tokens);
  EXPECT_LT(res["recompute"].saved_tokens, res["full"].saved_tokens);
  EXPECT_LE(res["checkpoint:2048"].saved_tokens, res["checkpoint:512"].saved_tokens);
  auto written = [&](const char* p) { return res[p].bytes_written[size_t(Tier::kHost)]; };
  EXPECT_GT(written("full"), written("checkpoint:512"));
  EXPECT_GT(written("checkpoint:512"), written("checkpoint:2048"));
  EXPECT_GT(written("checkpoint:2048"), written("recompute"));
  // Saving prefill shortens time to first token against no cache.
  EXPECT_LT(res["full"].ttft_s.mean, res["full"].ttft_cold_s.mean);

  // A small DRAM tier evicts and loses hits; an NVMe tier below it wins them back.
  const CompareResult small = Replayed(*t, s, Config("full", 8ull << 30));
  EXPECT_GT(small.evictions, 0u);
  EXPECT_LT(small.hit_tokens, sum.ceiling_hit_tokens);
  const CompareResult tiered = Replayed(*t, s, Config("full", 8ull << 30, 1ull << 40));
  EXPECT_GT(tiered.hit_tokens, small.hit_tokens);
  EXPECT_GT(tiered.bytes_written[size_t(Tier::kNvme)], 0u);
  EXPECT_LE(tiered.hit_tokens, sum.ceiling_hit_tokens);
}

INSTANTIATE_TEST_SUITE_P(Models, ShippedTraceTest, ::testing::Values("v4-pro", "v4-flash"));

// --codec: the codec's ratio and speed measured on the layout's V4-shaped objects; the simulated
// NVMe tier stores records that much smaller, so a full tier holds more tokens per TB, and
// restores run at min(link, drive x ratio, decoders).
TEST_F(ShippedTraceTest, ACodecStoresMoreTokensPerTbAndRestoresAtTheSlowestStage) {
  CompareSetup s = MakeSetup("v4-flash");
  auto zstd = MeasureCodec(CodecKind::kZstd, s.layout);
  ASSERT_TRUE(zstd.ok()) << zstd.status().ToString();
  // FP8 e4m3 entries with per-64 scales: zstd's entropy coder finds about 1.15x (issue 12).
  EXPECT_GT(zstd->ratio[size_t(Family::kCsa)], 1.05);
  EXPECT_GT(zstd->ratio[size_t(Family::kSwa)], 1.05);
  EXPECT_GT(zstd->decode_bytes_per_s, 0);
  for (Family f : kAllFamilies) EXPECT_GE(zstd->ratio[size_t(f)], 1.0) << FamilyName(f);
  s.codecs = {*zstd};
  auto t = First400(s);
  ASSERT_TRUE(t.ok()) << t.status().ToString();

  // A drive slower than the decoders: the codec also restores faster (more bytes per byte read).
  s.hardware.nvme_read_bytes_per_s = 0.2 * zstd->decode_bytes_per_s;
  s.decode_threads = 4;
  CompareConfig raw = Config("auto", 2ull << 30, 8ull << 30);  // the NVMe tier fills
  CompareConfig packed = raw;
  packed.codec = CodecKind::kZstd;
  const CompareResult a = Replayed(*t, s, raw), b = Replayed(*t, s, packed);
  ASSERT_GT(a.nvme_stored_bytes, (8ull << 30) * 9 / 10) << "the raw tier is not full";
  EXPECT_GE(a.nvme_stored_bytes, a.nvme_raw_bytes);  // record headers, nothing shrinks
  EXPECT_LT(double(b.nvme_stored_bytes) * 1.05, double(b.nvme_raw_bytes));
  EXPECT_GT(b.nvme_tokens_per_tb, a.nvme_tokens_per_tb * 1.05);
  EXPECT_GT(b.nvme_tokens_per_tb_used, a.nvme_tokens_per_tb_used * 1.05);
  EXPECT_GE(b.hit_tokens, a.hit_tokens);
  ASSERT_GT(a.nvme_restore_bytes_per_s, 0);
  EXPECT_GT(b.nvme_restore_bytes_per_s, a.nvme_restore_bytes_per_s * 1.02);

  // A drive faster than the decoders: the codec makes restores slower (what the store's codec
  // rule refuses), and the result says so.
  s.hardware.nvme_read_bytes_per_s = 10 * zstd->decode_bytes_per_s;
  s.hardware.pcie_bytes_per_s = 100 * zstd->decode_bytes_per_s;
  s.decode_threads = 1;
  const CompareResult c = Replayed(*t, s, raw), d = Replayed(*t, s, packed);
  ASSERT_GT(d.nvme_restore_bytes_per_s, 0);
  EXPECT_LT(d.nvme_restore_bytes_per_s, c.nvme_restore_bytes_per_s / 2);
  EXPECT_LE(d.nvme_restore_bytes_per_s, zstd->decode_bytes_per_s * 1.0001);

  // A configuration naming a codec nobody measured is an error, not a raw run.
  CompareConfig lz4 = raw;
  lz4.codec = CodecKind::kLz4;
  auto e = Replay(*t, Summarize(*t), s, lz4);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("lz4"), std::string::npos) << e.status().ToString();
}

// A trace of another shape than the shipped one: long prompts (20K-120K tokens), 5 s apart,
// sessions that extend their previous prompt, fractional timestamps.
std::string GeneratedTrace(int requests) {
  std::mt19937_64 rng(7);
  std::ostringstream out;
  out << std::fixed << std::setprecision(1);
  int64_t next_id = 0;
  std::vector<std::vector<int64_t>> sessions(5);
  for (int i = 0; i < requests; ++i) {
    auto& ids = sessions[size_t(i) % sessions.size()];
    const int64_t add = 10 + int64_t(rng() % 60);  // new 512-token blocks
    if (ids.size() > 230) ids.clear();
    for (int64_t k = 0; k < add; ++k) ids.push_back(next_id++);
    const int64_t input = int64_t(ids.size() - 1) * 512 + 1 + int64_t(rng() % 512);
    out << "{\"timestamp\": " << 5000.5 * i << ", \"input_length\": " << input
        << ", \"output_length\": 100, \"hash_ids\": [";
    for (size_t k = 0; k < ids.size(); ++k) out << (k ? ", " : "") << ids[k];
    out << "]}\n";
  }
  return out.str();
}

TEST(CompareTest, GeneratedTraceWithLongPromptsAndOtherSpacing) {
  const CompareSetup s = MakeSetup("v4-flash");
  const Trace t = Load(GeneratedTrace(60), s);
  const TraceSummary sum = Summarize(t);
  EXPECT_EQ(sum.requests, 60u);
  EXPECT_NEAR(sum.span_s, 59 * 5.0005, 1e-6);
  EXPECT_GT(sum.ceiling_hit_rate, 0.3);  // sessions extend their prompts
  const CompareResult full = Replayed(t, s, Config("full", 1ull << 40));
  const CompareResult rec = Replayed(t, s, Config("recompute", 1ull << 40));
  EXPECT_EQ(full.hit_tokens, sum.ceiling_hit_tokens);
  EXPECT_EQ(rec.hit_tokens, sum.ceiling_hit_tokens);
  // Long hits: the recompute pyramid (5,590 tokens for Flash) is a small part.
  EXPECT_GT(rec.saved_tokens, rec.hit_tokens / 2);
  EXPECT_LT(rec.saved_tokens, full.saved_tokens);
}

TEST(CompareTest, HardwareValuesNeedSources) {
  auto ok = LoadHardware(STRATA_SOURCE_DIR "/configs/hardware/h200-node.json");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->gpus, 8);
  EXPECT_TRUE(ok->For("v4-flash").ok());
  EXPECT_FALSE(ok->For("v3").ok());
  auto bad = ParseHardware(R"({"gpus": {"value": 8}})", "hw.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("hw.json.gpus"), std::string::npos);
  EXPECT_NE(bad.status().message().find("source"), std::string::npos);
}

TEST(CompareTest, NodeCapacityFromTheLayout) {
  const CompareSetup s = MakeSetup();
  std::vector<ComparePolicy> ps;
  for (const char* p : {"full", "checkpoint:512", "recompute"})
    ps.push_back(*ComparePolicy::Parse(p, 256));
  const auto caps = NodeCapacities(s, ps);
  ASSERT_EQ(caps.size(), 3u);
  const CacheLayout& l = s.layout;
  const double compressed = l.BytesPerToken(Family::kCsa) + l.BytesPerToken(Family::kCsaIndex) +
                            l.BytesPerToken(Family::kHca);
  EXPECT_DOUBLE_EQ(caps[2].bytes_per_token, compressed);
  EXPECT_DOUBLE_EQ(caps[0].bytes_per_token, compressed + l.BytesPerToken(Family::kSwa));
  const double left = 8 * 180e9 * 0.9 - 862.6e9;
  EXPECT_DOUBLE_EQ(caps[2].tokens, left / compressed);
  EXPECT_GT(caps[1].tokens, caps[0].tokens);
  EXPECT_LT(caps[1].tokens, caps[2].tokens);
}

struct CliRun {
  int rc;
  std::string out, err;
};

// Runs `strata ARGS` (or, without prefix_cli, the command line ARGS) in `dir`.
CliRun Cli(const std::string& args, const std::string& dir, bool prefix_cli = true) {
  const std::string err = dir + "/stderr";
  const std::string cmd = "cd '" + dir + "' && " +
                          (prefix_cli ? std::string(STRATA_CLI) + " " : std::string()) + args +
                          " 2>" + err;
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int st = pclose(p);
  std::ifstream e(err);
  std::stringstream ss;
  ss << e.rdbuf();
  return {WEXITSTATUS(st), out, ss.str()};
}

TEST(CompareCliTest, JsonLinesParse) {
  testing::TempDir dir;
  const std::string trace = dir.Sub("gen.jsonl");
  std::ofstream(trace) << GeneratedTrace(30);
  const CliRun r = Cli("compare --trace " + trace + " --json --policies full,checkpoint:1024,auto" +
                           " --dram 16GB --nvme 0,64GB --model " STRATA_SOURCE_DIR
                           "/configs/models/v4-flash.json",
                       dir.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  std::map<std::string, int> kinds;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);  // throws (fails the test) on a bad line
    kinds[j.at("kind").get<std::string>()]++;
    if (j["kind"] == "result") {
      EXPECT_EQ(j["model"], "v4-flash");
      EXPECT_LE(j["saved_rate"].get<double>(), j["hit_rate"].get<double>());
      EXPECT_LE(j["hit_rate"].get<double>(), j["ceiling_hit_rate"].get<double>() + 1e-12);
    }
  }
  EXPECT_EQ(kinds["trace"], 1);
  EXPECT_EQ(kinds["result"], 6);  // 3 policies x 2 NVMe sizes
  EXPECT_EQ(kinds["node_capacity"], 1);
}

TEST(CompareCliTest, CodecsAreConfigurationsOfTheirOwn) {
  testing::TempDir dir;
  const std::string trace = dir.Sub("gen.jsonl");
  std::ofstream(trace) << GeneratedTrace(20);
  const std::string base = "compare --trace " + trace +
                           " --policies auto --dram 2GB --nvme 0,64GB --model " STRATA_SOURCE_DIR
                           "/configs/models/v4-flash.json";
  const CliRun r = Cli(base + " --json --codec none,zstd", dir.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  std::map<std::string, int> kinds, codecs;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    kinds[j.at("kind").get<std::string>()]++;
    if (j["kind"] == "codec") {
      EXPECT_EQ(j["codec"], "zstd");
      EXPECT_GT(j["families"]["csa"]["ratio"].get<double>(), 1.05);
    }
    if (j["kind"] == "result") {
      codecs[j["codec"].get<std::string>()]++;
      if (j["nvme_bytes"].get<uint64_t>() > 0) {
        EXPECT_GT(j["nvme_tokens_per_tb_used"].get<double>(), 0.0);
      }
    }
  }
  EXPECT_EQ(kinds["codec"], 1);
  EXPECT_EQ(kinds["result"], 3);  // no NVMe: raw only; 64 GB (filled by demotion): raw and zstd
  EXPECT_EQ(codecs["none"], 2);
  EXPECT_EQ(codecs["zstd"], 1);
  const CliRun table = Cli(base + " --codec none,zstd", dir.path());
  ASSERT_EQ(table.rc, 0) << table.err;
  EXPECT_NE(table.out.find("Mtok/TBu"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("codec zstd on v4-flash"), std::string::npos) << table.out;
  const CliRun bad = Cli(base + " --codec gzip", dir.path());
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("--codec"), std::string::npos) << bad.err;
  // A codec without an NVMe tier would replay nothing: an error, not an empty table.
  const CliRun no_nvme = Cli("compare --trace " + trace +
                                 " --policies auto --dram 2GB --nvme 0 --codec zstd --model " +
                                 STRATA_SOURCE_DIR "/configs/models/v4-flash.json",
                             dir.path());
  EXPECT_EQ(no_nvme.rc, 1);
  EXPECT_NE(no_nvme.err.find("--nvme"), std::string::npos) << no_nvme.err;
}

TEST(CompareCliTest, ClearErrors) {
  testing::TempDir dir;
  const std::string trace = dir.Sub("bad.jsonl");
  std::ofstream(trace) << "{\"timestamp\": 0, \"input_length\": 100, \"output_length\": 1, "
                          "\"hash_ids\": [1]}\n{\"timestamp\": 1, \"input_length\": 100}\n";
  CliRun r = Cli("compare --trace " + trace, dir.path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("bad.jsonl:2: missing field 'output_length'"), std::string::npos) << r.err;
  r = Cli("compare --trace " + trace + " --policies sometimes", dir.path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("--policies"), std::string::npos) << r.err;
  r = Cli("compare", dir.path());
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("--trace is required"), std::string::npos) << r.err;
  r = Cli("compare --help", dir.path());
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("--policies"), std::string::npos);
}

TEST(CompareCliTest, PlotsOrAClearErrorWithoutMatplotlib) {
  testing::TempDir dir;
  const std::string trace = dir.Sub("gen.jsonl");
  std::ofstream(trace) << GeneratedTrace(20);
  const std::string args = "compare --trace " + trace +
                           " --policies full,checkpoint:1024,recompute --dram 8GB,32GB --nvme 0 "
                           "--model " STRATA_SOURCE_DIR "/configs/models/v4-flash.json --plot ";
  // Without matplotlib (python3 -S does not see the system's packages): a clear error.
  CliRun r = Cli("env STRATA_PYTHON='/usr/bin/python3 -S' " + std::string(STRATA_CLI) + " " + args +
                     dir.Sub("noplot"),
                 dir.path(), /*prefix_cli=*/false);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("needs matplotlib"), std::string::npos) << r.err;
  if (std::system("/usr/bin/python3 -c 'import matplotlib' 2>/dev/null") != 0)
    GTEST_SKIP() << "matplotlib is not installed (tools/install-deps.sh installs it)";
  r = Cli(args + dir.Sub("plots"), dir.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  testing::ExpectPngs(dir.Sub("plots"),
                      {"v4-flash-capacity.png", "v4-flash-bytes.png", "v4-flash-ttft.png"});
}

TEST(CompareCliTest, InstalledStrataFindsItsHardwareConfigsAndPlotScript) {
  testing::TempDir dir;
  const fs::path prefix = dir.Sub("prefix");
  CliRun inst = Cli(std::string(STRATA_CMAKE) + " --install '" + STRATA_BINARY_DIR +
                        "' --prefix '" + prefix.string() + "'",
                    dir.path(), /*prefix_cli=*/false);
  ASSERT_EQ(inst.rc, 0) << inst.out << inst.err;
  EXPECT_TRUE(fs::exists(prefix / "share/strata/tools/plot_compare.py"));
  EXPECT_TRUE(fs::exists(prefix / "share/strata/tools/plot_replay.py"));
  EXPECT_TRUE(fs::exists(prefix / "share/strata/configs/hardware/b200-node.json"));
  // The defaults (model, hardware) resolve to the installed files from any directory.
  CliRun r = Cli((prefix / "bin/strata").string() + " compare --node-capacity --json", dir.path(),
                 /*prefix_cli=*/false);
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["kind"], "node_capacity");
  EXPECT_EQ(j["model"], "v4-pro");
  EXPECT_GT(j["policies"][0]["tokens"].get<double>(), 1e6);
}

}  // namespace
}  // namespace strata::tools
