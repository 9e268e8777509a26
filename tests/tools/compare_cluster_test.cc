// `strata compare` with several nodes and the cluster tier: the simulated cluster's LRU, a
// hand-computed two-node replay (a prefix computed on node 0 is a miss on node 1 without the
// shared tier and a hit with it), the share policy's min_uses, write-behind visibility, node
// assignment, one node without a cluster giving the single-node figures, the hardware file's
// cluster values and the CLI.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cachestore/sim/sim_cluster.h"
#include "engine/model_config.h"
#include "tests/testing/png.h"
#include "tests/testing/temp_dir.h"
#include "tools/compare.h"

namespace strata::tools {
namespace {

namespace fs = std::filesystem;
using cachestore::SimCluster;
using cachestore::SimClusterKey;

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
  s.cost = *hw->For(model);
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

CompareConfig Config(const std::string& policy, int nodes, uint64_t cluster,
                     NodeAssign assign = NodeAssign::kRoundRobin) {
  CompareConfig c;
  c.policy = *ComparePolicy::Parse(policy, 256);
  c.dram_bytes = 1ull << 30;
  c.nodes = nodes;
  c.assign = assign;
  c.cluster_bytes = cluster;
  return c;
}

CompareResult Replayed(const Trace& t, const CompareSetup& s, const CompareConfig& c) {
  auto r = Replay(t, Summarize(t), s, c);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : CompareResult{};
}

SimClusterKey Key(uint64_t block, Family f = Family::kCsa) {
  return SimClusterKey{1, 7, BlockKey{0, block}, f};
}

TEST(SimClusterTest, EvictsLeastRecentlyUsedAtCapacity) {
  SimCluster c(100);
  EXPECT_TRUE(c.Put(Key(1), 40));
  EXPECT_TRUE(c.Put(Key(2), 40));
  EXPECT_EQ(c.used(), 80u);
  // GET touches key 1; EXISTS does not touch key 2, so key 2 is the least recent.
  EXPECT_EQ(c.Get(Key(1)), std::optional<uint64_t>(40));
  EXPECT_TRUE(c.Contains(Key(2)));
  EXPECT_TRUE(c.Put(Key(3), 40));  // 120 > 100: evicts key 2
  EXPECT_TRUE(c.Contains(Key(1)));
  EXPECT_FALSE(c.Contains(Key(2)));
  EXPECT_TRUE(c.Contains(Key(3)));
  EXPECT_EQ(c.used(), 80u);
  // A replaced value frees its old bytes first: 80 - 40 + 60 = 100 fits without evicting.
  EXPECT_TRUE(c.Put(Key(1), 60));
  EXPECT_EQ(c.used(), 100u);
  EXPECT_EQ(c.objects(), 2u);
  // Families are distinct keys.
  EXPECT_FALSE(c.Contains(Key(1, Family::kHca)));
  // One object of the whole capacity evicts everything else; a larger one is refused.
  EXPECT_TRUE(c.Put(Key(4, Family::kHca), 100));
  EXPECT_EQ(c.objects(), 1u);
  EXPECT_EQ(c.objects(Family::kHca), 1u);
  EXPECT_EQ(c.objects(Family::kCsa), 0u);
  EXPECT_FALSE(c.Put(Key(5), 101));
  EXPECT_TRUE(c.Contains(Key(4, Family::kHca)));
  EXPECT_EQ(c.Get(Key(2)), std::nullopt);
  std::map<std::string, uint64_t> counters;
  c.VisitCounters([&](std::string_view n, uint64_t v) { counters[std::string(n)] = v; });
  EXPECT_EQ(counters["evictions"], 3u);  // key 2, then keys 1 and 3
  EXPECT_EQ(counters["evicted_bytes"], 40u + 60 + 40);
  EXPECT_EQ(counters["put_refused"], 1u);
  EXPECT_EQ(counters["gets"], 2u);
  EXPECT_EQ(counters["get_hits"], 1u);
}

// Four requests 10 s apart, two nodes round robin (r0, r2 on node 0; r1, r3 on node 1), B = 256:
//   r0 [1, 2]     1024 tokens: 4 blocks, node 0 puts them (compressed, checkpoints at 512, 1024)
//   r1 [9]         512 tokens: unrelated, on node 1
//   r2 [1, 2, 3]  1300 tokens: node 0 hits its 4 blocks (1024 tokens), restores from the
//                 checkpoint at 1024; that Get is the compressed state's 2nd use
//   r3 [1, 2, 4]  1200 tokens: 4 usable blocks, the prefix of r0; node 1 never saw it
const char kTwoNodes[] =
    "{\"timestamp\": 0, \"input_length\": 1024, \"output_length\": 10, \"hash_ids\": [1, 2]}\n"
    "{\"timestamp\": 10000, \"input_length\": 512, \"output_length\": 10, \"hash_ids\": [9]}\n"
    "{\"timestamp\": 20000, \"input_length\": 1300, \"output_length\": 10, \"hash_ids\": [1, 2, "
    "3]}\n"
    "{\"timestamp\": 30000, \"input_length\": 1200, \"output_length\": 10, \"hash_ids\": [1, 2, "
    "4]}\n";

struct Sizes {
  uint64_t compressed = 0, checkpoint = 0;
};
Sizes BlockSizes(const CacheLayout& l) {
  return {l.FamilyBlockBytes(Family::kCsa) + l.FamilyBlockBytes(Family::kCsaIndex) +
              l.FamilyBlockBytes(Family::kHca),
          l.FamilyBlockBytes(Family::kCheckpoint)};
}

TEST(CompareClusterTest, HandComputedTwoNodesRoundRobin) {
  const CompareSetup s = MakeSetup();
  const Trace t = Load(kTwoNodes, s);
  const Sizes z = BlockSizes(s.layout);
  ASSERT_GT(z.compressed, 0u);
  ASSERT_GT(z.checkpoint, 0u);

  // One node: r2 and r3 both hit the 4 blocks r0 put: 2048 tokens, all restored from the
  // checkpoint at 1024.
  const CompareResult one = Replayed(t, s, Config("checkpoint:512", 1, 0));
  EXPECT_EQ(one.hit_tokens, 2048u);
  EXPECT_EQ(one.saved_tokens, 2048u);

  // Two nodes, no shared tier: r3 lands on node 1, which never saw [1, 2]: only r2 hits.
  const CompareResult alone = Replayed(t, s, Config("checkpoint:512", 2, 0));
  EXPECT_EQ(alone.hit_tokens, 1024u);
  EXPECT_EQ(alone.saved_tokens, 1024u);
  EXPECT_EQ(alone.cluster_hit_tokens, 0u);
  EXPECT_EQ(alone.bytes_written[size_t(Tier::kCluster)], 0u);
  EXPECT_EQ(alone.computed_tokens, 1024u + 512 + (1300 - 1024) + 1200);

  // Two nodes sharing a cluster tier: node 0 uploaded the checkpoints at their put (r0: at 512
  // and 1024; r2: at its end, 1280) and the 4 blocks' compressed state at their 2nd use (r2);
  // node 1 uploaded r1's checkpoint. r3 finds the 4 blocks in the cluster (1024 tokens) and
  // restores them from the checkpoint at 1024, read from the cluster too.
  const CompareResult shared = Replayed(t, s, Config("checkpoint:512", 2, 1ull << 40));
  EXPECT_EQ(shared.hit_tokens, 2048u);
  EXPECT_EQ(shared.cluster_hit_tokens, 1024u);
  EXPECT_EQ(shared.saved_tokens, 2048u);
  EXPECT_EQ(shared.recompute_tokens, 0u);
  EXPECT_EQ(shared.plans[2], 2u);  // two checkpoint restores
  EXPECT_EQ(shared.computed_tokens, 1024u + 512 + (1300 - 1024) + (1200 - 1024));
  EXPECT_EQ(shared.objects_read[size_t(Tier::kCluster)], 4u * 3 + 1);
  EXPECT_EQ(shared.bytes_read[size_t(Tier::kCluster)], 4 * z.compressed + z.checkpoint);
  EXPECT_EQ(shared.cluster_uploads, 4u + 4 * 3);  // 4 checkpoints, 4 blocks x 3 families
  EXPECT_EQ(shared.bytes_written[size_t(Tier::kCluster)], 4 * z.checkpoint + 4 * z.compressed);
  // What node 1 read from the cluster went into its DRAM.
  EXPECT_EQ(shared.cluster_fills, 4u * 3 + 1);
  // Node 1 put r3's 4 blocks alone (compressed, checkpoints at 512 and 1024); shared, it filled
  // the 4 blocks' compressed state and the checkpoint at 1024 and put nothing.
  EXPECT_EQ(shared.bytes_written[size_t(Tier::kHost)], alone.bytes_written[size_t(Tier::kHost)] -
                                                           (4 * z.compressed + 2 * z.checkpoint) +
                                                           (4 * z.compressed + z.checkpoint));
  EXPECT_EQ(shared.cluster_evictions, 0u);
  EXPECT_EQ(shared.peak_resident_tokens[size_t(Tier::kCluster)], 4u * 256);
  // Restoring beats prefilling from scratch on node 1.
  EXPECT_LT(shared.ttft_s.mean, alone.ttft_s.mean);
}

TEST(CompareClusterTest, MinUsesDecidesWhenCompressedStateIsShared) {
  const CompareSetup s = MakeSetup();
  const Trace all = Load(kTwoNodes, s);
  const Sizes z = BlockSizes(s.layout);
  // r0 alone: one put each, so only its checkpoints (at 512 and 1024) go to the cluster.
  Trace first = all;
  first.requests.resize(1);
  const CompareResult r0 = Replayed(first, s, Config("checkpoint:512", 2, 1ull << 40));
  EXPECT_EQ(r0.cluster_uploads, 2u);
  EXPECT_EQ(r0.bytes_written[size_t(Tier::kCluster)], 2 * z.checkpoint);
  // min_uses 1: the compressed state goes at its put.
  CompareSetup eager = s;
  eager.share.min_uses = 1;
  const CompareResult r0_eager = Replayed(first, eager, Config("checkpoint:512", 2, 1ull << 40));
  EXPECT_EQ(r0_eager.bytes_written[size_t(Tier::kCluster)], 2 * z.checkpoint + 4 * z.compressed);
  // min_uses 3: node 0 used the blocks twice only, so node 1 finds nothing at r3.
  CompareSetup lazy = s;
  lazy.share.min_uses = 3;
  const CompareResult r_lazy = Replayed(all, lazy, Config("checkpoint:512", 2, 1ull << 40));
  EXPECT_EQ(r_lazy.cluster_hit_tokens, 0u);
  EXPECT_EQ(r_lazy.hit_tokens, 1024u);
  // Checkpoints: r0's two, r1's, r2's at its end, and r3's two (node 1 computed the prefix).
  EXPECT_EQ(r_lazy.bytes_written[size_t(Tier::kCluster)], 6 * z.checkpoint);
  // Full SWA stays on the node unless configured: under `full` r3 finds the compressed state in
  // the cluster but no SWA there, so it restores by recomputing the pyramid over its 1024 tokens
  // (V4-Pro's pyramid is longer): nothing saved on r3.
  const CompareResult full = Replayed(all, s, Config("full", 2, 1ull << 40));
  EXPECT_EQ(full.cluster_hit_tokens, 1024u);
  EXPECT_EQ(full.saved_tokens, 1024u);  // r2's local full restore only
  CompareSetup swa = s;
  swa.share.full_swa = true;
  const CompareResult full_swa = Replayed(all, swa, Config("full", 2, 1ull << 40));
  EXPECT_EQ(full_swa.saved_tokens, 2048u);
  EXPECT_EQ(full_swa.bytes_read[size_t(Tier::kCluster)],
            4 * z.compressed + uint64_t(engine::SwaBlocksNeeded(s.layout)) *
                                   s.layout.FamilyBlockBytes(Family::kSwa));
}

TEST(CompareClusterTest, UploadsAreVisibleOnlyAfterTheRequestsPrefill) {
  const CompareSetup s = MakeSetup();
  // r3 arrives 1 ms after r2, before r2's prefill (276 tokens) has ended: the compressed state
  // r2 shares is not in the cluster yet.
  std::string text = kTwoNodes;
  text.replace(text.find("\"timestamp\": 30000"), 18, "\"timestamp\": 20001");
  const Trace t = Load(text, s);
  const CompareResult r = Replayed(t, s, Config("checkpoint:512", 2, 1ull << 40));
  EXPECT_EQ(r.cluster_hit_tokens, 0u);
  EXPECT_EQ(r.hit_tokens, 1024u);
  // The uploads still happen (and count) by the trace's end, with r3's own checkpoints (at 512
  // and 1024: node 1 computed the prefix itself).
  EXPECT_EQ(r.cluster_uploads, 4u + 4 * 3 + 2);
}

TEST(CompareClusterTest, ClusterLruEvictsAtCapacity) {
  const CompareSetup s = MakeSetup();
  const Trace t = Load(kTwoNodes, s);
  const Sizes z = BlockSizes(s.layout);
  // Room for about two blocks' compressed state: r2's uploads (blocks 0..3 in order, then the
  // checkpoint at 1280) push out block 0's, so r3's cluster lookup misses at its first block.
  const CompareResult r =
      Replayed(t, s, Config("checkpoint:512", 2, 2 * z.compressed + z.checkpoint));
  EXPECT_GT(r.cluster_evictions, 0u);
  EXPECT_EQ(r.cluster_hit_tokens, 0u);
  EXPECT_EQ(r.hit_tokens, 1024u);
  EXPECT_LE(r.peak_resident_tokens[size_t(Tier::kCluster)], 2u * 256);
}

TEST(CompareClusterTest, NodeAssignment) {
  const CompareSetup s = MakeSetup();
  const Trace t = Load(kTwoNodes, s);
  CompareConfig c = Config("auto", 3, 0);
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(NodeFor(t.requests[i % 4], i, s, c), int(i % 3));
  // Affinity by the first 1024 tokens: r0, r2 and r3 share them ([1, 2]), so one node.
  c.assign = NodeAssign::kAffinity;
  c.nodes = 8;
  const int n0 = NodeFor(t.requests[0], 0, s, c);
  EXPECT_EQ(NodeFor(t.requests[2], 2, s, c), n0);
  EXPECT_EQ(NodeFor(t.requests[3], 3, s, c), n0);
  EXPECT_EQ(NodeFor(t.requests[0], 99, s, c), n0);  // stable: not by position
  // Over many distinct prefixes the hash spreads over every node.
  std::string text;
  for (int i = 0; i < 200; ++i)
    text += "{\"timestamp\": " + std::to_string(i) +
            ", \"input_length\": 1100, \"output_length\": 1, \"hash_ids\": [0, " +
            std::to_string(1000 + i) + ", " + std::to_string(5000 + i) + "]}\n";
  const Trace many = Load(text, s);
  std::map<int, int> per_node;
  for (size_t i = 0; i < many.requests.size(); ++i) per_node[NodeFor(many.requests[i], i, s, c)]++;
  EXPECT_EQ(per_node.size(), 8u);
  for (const auto& [node, count] : per_node) EXPECT_GT(count, 5) << node;
  // With affinity over 512 tokens only, every request there begins with the same block: one node.
  CompareSetup narrow = s;
  narrow.affinity_tokens = 512;
  std::map<int, int> narrow_nodes;
  for (size_t i = 0; i < many.requests.size(); ++i)
    narrow_nodes[NodeFor(many.requests[i], i, narrow, c)]++;
  EXPECT_EQ(narrow_nodes.size(), 1u);
  // Affinity keeps a conversation on its node: no shared tier needed for r3.
  c.nodes = 2;
  const CompareResult aff = Replayed(t, s, c);
  EXPECT_EQ(aff.hit_tokens, 2048u);
  EXPECT_EQ(aff.cluster_hit_tokens, 0u);
}

TEST(CompareClusterTest, QueueReportsEachRequestsOwnFinish) {
  // Two GPUs: r0 takes 5 s on one, r1 1 s on the other, r2 waits for r1's GPU (free at 1 s).
  const Percentiles p = QueueTtft({0, 0, 0}, {5, 1, 1}, 2);
  EXPECT_DOUBLE_EQ(p.mean, (5.0 + 1 + 2) / 3);
  EXPECT_DOUBLE_EQ(p.p50, 2);
  EXPECT_DOUBLE_EQ(p.p99, 5);
  GpuQueue q(2);
  EXPECT_DOUBLE_EQ(q.Admit(0, 5), 5);
  EXPECT_DOUBLE_EQ(q.Admit(0, 1), 1);
  EXPECT_DOUBLE_EQ(q.Admit(0, 1), 2);
  EXPECT_DOUBLE_EQ(q.Admit(10, 1), 1);
}

// The shipped trace sits next to the checkout (shared/traces/); STRATA_TRACES_DIR overrides.
std::string ShippedTrace() {
  const char* env = std::getenv("STRATA_TRACES_DIR");
  return (env ? std::string(env) + "/" : std::string(STRATA_SOURCE_DIR "/../shared/traces/")) +
         "mooncake_conversation_trace.jsonl";
}

TEST(CompareClusterTest, OneNodeWithoutAClusterGivesTheSingleNodeFigures) {
  if (!fs::exists(ShippedTrace())) GTEST_SKIP() << "no " << ShippedTrace();
  const CompareSetup s = MakeSetup();
  TraceLoadOptions o;
  o.block_size = 256;
  o.layout_fingerprint = s.layout.fingerprint();
  o.max_requests = 400;
  auto t = LoadTrace(ShippedTrace(), o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  // Figures of the single-node replay before multi-node replays existed (the same commands on
  // the commit before them), for a DRAM tier that evicts and one with NVMe below it.
  struct Golden {
    const char* policy;
    uint64_t nvme;
    uint64_t hit, saved, recompute, puts, evictions, demotions, host_written, nvme_written,
        host_read, fallbacks;
  };
  const Golden golden[] = {
#include "tests/tools/compare_single_node_golden.inc"
  };
  for (const Golden& g : golden) {
    SCOPED_TRACE(std::string(g.policy) + (g.nvme ? " + nvme" : ""));
    CompareConfig c = Config(g.policy, 1, 0);
    c.dram_bytes = 8ull << 30;
    c.nvme_bytes = g.nvme;
    const CompareResult r = Replayed(*t, s, c);
    EXPECT_EQ(r.hit_tokens, g.hit);
    EXPECT_EQ(r.saved_tokens, g.saved);
    EXPECT_EQ(r.recompute_tokens, g.recompute);
    EXPECT_EQ(r.puts, g.puts);
    EXPECT_EQ(r.evictions, g.evictions);
    EXPECT_EQ(r.demotions, g.demotions);
    EXPECT_EQ(r.bytes_written[size_t(Tier::kHost)], g.host_written);
    EXPECT_EQ(r.bytes_written[size_t(Tier::kNvme)], g.nvme_written);
    EXPECT_EQ(r.bytes_read[size_t(Tier::kHost)], g.host_read);
    EXPECT_EQ(r.fallbacks, g.fallbacks);
    EXPECT_EQ(r.cluster_hit_tokens, 0u);
    EXPECT_EQ(r.bytes_written[size_t(Tier::kCluster)], 0u);
  }
}

TEST(CompareClusterTest, SharedTierOnTheShippedTrace) {
  if (!fs::exists(ShippedTrace())) GTEST_SKIP() << "no " << ShippedTrace();
  const CompareSetup s = MakeSetup();
  TraceLoadOptions o;
  o.block_size = 256;
  o.layout_fingerprint = s.layout.fingerprint();
  o.max_requests = 400;
  auto t = LoadTrace(ShippedTrace(), o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  // DRAM that holds everything, so only the assignment and the shared tier make a difference.
  auto config = [](int nodes, uint64_t cluster) {
    CompareConfig c = Config("auto", nodes, cluster);
    c.dram_bytes = 1ull << 40;
    return c;
  };
  const CompareResult one = Replayed(*t, s, config(1, 0));
  const CompareResult four = Replayed(*t, s, config(4, 0));
  // Sharing at the first use: under round robin a conversation's next turn is on another node,
  // so a node rarely uses a prefix twice; the default policy (2 uses) shares little of it.
  CompareSetup eager = s;
  eager.share.min_uses = 1;
  const CompareResult four_shared = Replayed(*t, eager, config(4, 1ull << 40));
  const CompareResult four_default = Replayed(*t, s, config(4, 1ull << 40));
  EXPECT_LE(four_default.cluster_hit_tokens, four_shared.cluster_hit_tokens);
  EXPECT_GE(four_default.hit_tokens, four.hit_tokens);
  // Round robin scatters conversations: four nodes alone hit less than one; the shared tier wins
  // hits back, never more than the trace's ceiling.
  EXPECT_EQ(one.hit_tokens, Summarize(*t).ceiling_hit_tokens);
  EXPECT_LT(four.hit_tokens, one.hit_tokens);
  EXPECT_GT(four_shared.hit_tokens, four.hit_tokens);
  EXPECT_GT(four_shared.cluster_hit_tokens, 0u);
  EXPECT_LE(four_shared.hit_tokens, Summarize(*t).ceiling_hit_tokens);
  EXPECT_EQ(four_shared.saved_tokens + four_shared.recompute_tokens, four_shared.restored_tokens);
  EXPECT_EQ(four_shared.computed_tokens, four_shared.input_tokens - four_shared.saved_tokens);
  EXPECT_GT(four_shared.bytes_written[size_t(Tier::kCluster)], 0u);
  EXPECT_GT(four_shared.bytes_read[size_t(Tier::kCluster)], 0u);
  EXPECT_EQ(four.requests, 400u);
}

TEST(CompareClusterTest, HardwareClusterValuesAreOptionalButSourced) {
  std::ifstream in(STRATA_SOURCE_DIR "/configs/hardware/h200-node.json");
  std::stringstream ss;
  ss << in.rdbuf();
  auto full = nlohmann::json::parse(ss.str());
  auto hw = ParseHardware(full.dump(), "h200.json");
  ASSERT_TRUE(hw.ok()) << hw.status().ToString();
  EXPECT_TRUE(hw->has_cluster());
  EXPECT_DOUBLE_EQ(hw->cluster_read_bytes_per_s, 100e9);
  auto without = full;
  for (const char* f :
       {"cluster_read_bytes_per_s", "cluster_write_bytes_per_s", "cluster_latency_s"})
    without.erase(f);
  hw = ParseHardware(without.dump(), "old.json");
  ASSERT_TRUE(hw.ok()) << hw.status().ToString();
  EXPECT_FALSE(hw->has_cluster());
  auto partial = without;
  partial["cluster_latency_s"] = full["cluster_latency_s"];
  hw = ParseHardware(partial.dump(), "partial.json");
  ASSERT_FALSE(hw.ok());
  EXPECT_NE(hw.status().message().find("or none"), std::string::npos) << hw.status().ToString();
  auto unsourced = full;
  unsourced["cluster_read_bytes_per_s"] = {{"value", 50e9}};
  hw = ParseHardware(unsourced.dump(), "hw.json");
  ASSERT_FALSE(hw.ok());
  EXPECT_NE(hw.status().message().find("hw.json.cluster_read_bytes_per_s"), std::string::npos);
  EXPECT_NE(hw.status().message().find("source"), std::string::npos);
  // A replay with a cluster tier needs them.
  CompareSetup s = MakeSetup();
  s.hardware = *ParseHardware(without.dump(), "old.json");
  s.cost = *s.hardware.For("v4-pro");
  auto r = Replay(Load(kTwoNodes, s), TraceSummary{}, s, Config("auto", 2, 1ull << 30));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cluster_read_bytes_per_s"), std::string::npos);
}

struct CliRun {
  int rc;
  std::string out, err;
};

CliRun Cli(const std::string& args, const std::string& dir) {
  const std::string err = dir + "/stderr";
  const std::string cmd =
      "cd '" + dir + "' && " + std::string(STRATA_CLI) + " " + args + " 2>" + err;
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

TEST(CompareClusterCliTest, SweepOverNodesAndClusterAsJsonLines) {
  testing::TempDir dir;
  const std::string trace = dir.Sub("t.jsonl");
  std::ofstream(trace) << kTwoNodes;
  const CliRun r = Cli("compare --trace " + trace +
                           " --json --policies checkpoint:512 --dram 1GiB --nvme 0 --nodes 1,2"
                           " --assign round-robin,affinity --cluster 0,1TiB",
                       dir.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  std::vector<nlohmann::json> results;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j["kind"] == "result") results.push_back(j);
  }
  // One node once per cluster size (2), two nodes per assignment and cluster size (4).
  ASSERT_EQ(results.size(), 6u);
  int two_rr_shared = 0;
  for (const auto& j : results) {
    EXPECT_TRUE(j.contains("cluster_hit_tokens"));
    EXPECT_TRUE(j["bytes_written"].contains("cluster"));
    if (j["nodes"] == 1) {
      EXPECT_EQ(j["assign"], "round-robin");
    }
    if (j["nodes"] == 2 && j["assign"] == "round-robin" && j["cluster_bytes"] == 1ull << 40) {
      ++two_rr_shared;
      EXPECT_EQ(j["cluster_hit_tokens"], 1024);
      EXPECT_EQ(j["hit_tokens"], 2048);
    }
  }
  EXPECT_EQ(two_rr_shared, 1);
  // The table names the nodes and the shared tier.
  const CliRun table = Cli("compare --trace " + trace +
                               " --policies checkpoint:512 --dram 1GiB --nvme 0 --nodes 2"
                               " --cluster 1TiB",
                           dir.path());
  ASSERT_EQ(table.rc, 0) << table.err;
  EXPECT_NE(table.out.find("cl hit"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("round-robin"), std::string::npos) << table.out;
}

TEST(CompareClusterCliTest, ClearErrors) {
  testing::TempDir dir;
  const std::string trace = dir.Sub("t.jsonl");
  std::ofstream(trace) << kTwoNodes;
  const std::string base = "compare --trace " + trace + " --policies auto --dram 1GiB --nvme 0 ";
  struct Case {
    std::string args, error;
  };
  // A hardware file from before the cluster tier: no cluster values.
  auto hw =
      nlohmann::json::parse(std::ifstream(STRATA_SOURCE_DIR "/configs/hardware/b200-node.json"));
  for (const char* f :
       {"cluster_read_bytes_per_s", "cluster_write_bytes_per_s", "cluster_latency_s"})
    hw.erase(f);
  std::ofstream(dir.Sub("old-hw.json")) << hw.dump();
  const Case cases[] = {
      {"--nodes 0", "--nodes: '0' is not a positive integer"},
      {"--nodes 2,x", "--nodes: 'x' is not a positive integer"},
      {"--nodes 5000", "--nodes: a node count from 1 to 1024"},
      {"--nodes 2 --assign sticky", "--assign: unknown assignment 'sticky'"},
      {"--cluster 1XB", "--cluster"},
      {"--cluster 1TiB --cluster-min-uses 0", "min_uses must be >= 1"},
      {"--cluster 1TiB --hardware " + dir.Sub("old-hw.json"), "has no cluster_read_bytes_per_s"},
      {"--nodes 2 --affinity-tokens 0", "--affinity-tokens: at least 1"},
  };
  for (const Case& c : cases) {
    const CliRun r = Cli(base + c.args, dir.path());
    EXPECT_EQ(r.rc, 1) << c.args;
    EXPECT_NE(r.err.find(c.error), std::string::npos) << c.args << ": " << r.err;
  }
  const CliRun help = Cli("compare --help", dir.path());
  EXPECT_EQ(help.rc, 0);
  for (const char* flag : {"--nodes", "--assign", "--cluster", "--cluster-min-uses",
                           "--cluster-swa", "--affinity-tokens", "session id"})
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
}

TEST(CompareClusterCliTest, PlotsSavedPrefillAgainstNodes) {
  if (std::system("/usr/bin/python3 -c 'import matplotlib' 2>/dev/null") != 0)
    GTEST_SKIP() << "matplotlib is not installed (tools/install-deps.sh installs it)";
  testing::TempDir dir;
  const std::string trace = dir.Sub("t.jsonl");
  std::ofstream(trace) << kTwoNodes;
  const CliRun r = Cli("compare --trace " + trace +
                           " --policies checkpoint:512 --dram 1GiB --nvme 0 --nodes 1,2,4"
                           " --assign round-robin,affinity --cluster 0,1TiB --plot " +
                           dir.Sub("plots"),
                       dir.path());
  ASSERT_EQ(r.rc, 0) << r.err;
  testing::ExpectPngs(dir.Sub("plots"), {"v4-pro-nodes.png", "v4-pro-capacity.png"});
}

}  // namespace
}  // namespace strata::tools
