// `strata compare`: the CLI over tools/compare.h (options, sweep, output, plots).
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "bench/compare_bench.h"
#include "engine/model_config.h"
#include "tools/commands.h"
#include "tools/compare.h"
#include "tools/compare_report.h"
#include "tools/compare_sweep.h"
#include "tools/store_config.h"

namespace strata::tools {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

Result<std::vector<uint64_t>> Sizes(const std::string& flag, const std::string& list) {
  std::vector<uint64_t> out;
  for (const std::string& item : SplitList(list)) {
    auto b = ParseBytes(item);
    if (!b.ok()) return Status::InvalidArgument("--" + flag + ": " + b.status().message());
    out.push_back(*b);
  }
  if (out.empty()) return Status::InvalidArgument("--" + flag + ": give at least one size");
  return out;
}

// Node counts: positive integers.
Result<std::vector<int>> Counts(const std::string& flag, const std::string& list) {
  std::vector<int> out;
  for (const std::string& item : SplitList(list)) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 1)
      return Status::InvalidArgument("--" + flag + ": '" + item + "' is not a positive integer");
    out.push_back(v);
  }
  if (out.empty()) return Status::InvalidArgument("--" + flag + ": give at least one count");
  return out;
}

// A progress bar on stderr over the whole sweep, only on a terminal.
class Progress {
 public:
  explicit Progress(uint64_t total) : total_(total), on_(isatty(STDERR_FILENO) == 1) {}
  void Set(uint64_t done, const std::string& what) {
    if (!on_ || total_ == 0) return;
    const int width = 30, fill = int(double(done) / double(total_) * width);
    std::fprintf(stderr, "\r[%-*s] %3d%% %-48.48s", width, std::string(size_t(fill), '#').c_str(),
                 int(100.0 * double(done) / double(total_)), what.c_str());
    std::fflush(stderr);
  }
  ~Progress() {
    if (on_) std::fprintf(stderr, "\r%*s\r", 90, "");
  }

 private:
  uint64_t total_;
  bool on_;
};

}  // namespace

Status RunPlotScript(const std::string& name, const std::string& dir) {
  const std::string script = DataPath("tools/" + name);
  if (!fs::exists(script)) return Status::NotFound("plot script not found: " + script);
  // Debian's python3 (python3-matplotlib); STRATA_PYTHON overrides the interpreter.
  const char* python = std::getenv("STRATA_PYTHON");
  const std::string cmd =
      fmt::format("{} '{}' '{}'", python ? python : "/usr/bin/python3", script, dir);
  const int rc = std::system(cmd.c_str());
  if (rc == -1) return Status::Internal("could not run " + cmd);
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 3)
    return Status::FailedPrecondition(
        "--plot needs matplotlib for /usr/bin/python3 (Debian: apt-get install "
        "python3-matplotlib, or tools/install-deps.sh)");
  if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
    return Status::Internal(fmt::format("{} failed (exit status {})", cmd, WEXITSTATUS(rc)));
  return Status::Ok();
}

int CmdCompare(std::vector<std::string> args) {
  cxxopts::Options opts(
      args[0],
      "Replays a request trace through the store's simulator once per configuration (SWA policy "
      "x HBM x DRAM x NVMe x eviction policy x nodes x cluster tier) and compares hit rate, "
      "prefill saved, bytes moved per tier and a TTFT model. Lists take commas.");
  opts.add_options()("trace", "trace: Mooncake JSONL (*.jsonl) or a strata session file (*.json)",
                     cxxopts::value<std::string>())(
      "model", "model config(s), comma-separated",
      cxxopts::value<std::string>()->default_value(DataPath("configs/models/v4-pro.json")))(
      "policies", "SWA policies: full, checkpoint:K, checkpoint (request ends), recompute, auto",
      cxxopts::value<std::string>()->default_value("full,checkpoint:512,checkpoint:2048,recompute,"
                                                   "auto"))(
      "hbm", "HBM given to the cache (added to the DRAM tier: the simulator has no device tier)",
      cxxopts::value<std::string>()->default_value("0"))(
      "dram", "DRAM tier sizes", cxxopts::value<std::string>()->default_value("256GB,1TB"))(
      "nvme", "NVMe tier sizes (0: none)", cxxopts::value<std::string>()->default_value("0,8TB"))(
      "eviction", "eviction policies (lru, s3fifo, cost)",
      cxxopts::value<std::string>()->default_value("lru"))(
      "hardware", "node cost parameters (JSON, each value with its source)",
      cxxopts::value<std::string>()->default_value(DataPath("configs/hardware/b200-node.json")))(
      "block-size", "tokens per block (divides 512 or a multiple of it)",
      cxxopts::value<uint32_t>()->default_value("256"))(
      "requests", "replay only the first N requests (0: all)",
      cxxopts::value<size_t>()->default_value("0"))(
      "window", "replay only requests arriving in [START,END) seconds, as START:END",
      cxxopts::value<std::string>()->default_value(""))(
      "overlap", "restore vs compute in the TTFT model: per-layer or serial",
      cxxopts::value<std::string>()->default_value("per-layer"))(
      "session-spacing-ms", "session files: time between requests",
      cxxopts::value<double>()->default_value("1000"))("json", "JSON lines on stdout")(
      "plot", "write PNG plots (and compare.jsonl) into this directory",
      cxxopts::value<std::string>())("node-capacity",
                                     "print only the node-capacity view (no replay)")(
      "kv-replicas",
      "node capacity: copies of the cached state the node holds (e.g. 8 for tensor-parallel "
      "attention on 8 GPUs)",
      cxxopts::value<int>()->default_value("1"))(
      "codec",
      "NVMe record codecs, e.g. none,zstd: each a configuration of its own, its ratio and speed "
      "measured here on the model's V4-shaped objects; the simulator stores records that much "
      "smaller and restores them at min(link, drive x ratio, decoders)",
      cxxopts::value<std::string>()->default_value("none"))(
      "decode-threads", "--codec: restores decoding at once on the node",
      cxxopts::value<uint32_t>()->default_value("8"));
  opts.add_options("Several nodes and the cluster tier")(
      "nodes",
      "node counts, e.g. 1,2,4,8: each node has its own DRAM and NVMe tiers of the sizes above "
      "and its own GPUs (TTFT percentiles are over all nodes' requests)",
      cxxopts::value<std::string>()->default_value("1"))(
      "assign",
      "how requests go to nodes: round-robin (request i to node i mod N) and/or affinity (a "
      "stable hash of the prompt's first --affinity-tokens tokens: Mooncake traces carry no "
      "session id, so a conversation is known by its prefix)",
      cxxopts::value<std::string>()->default_value("round-robin"))(
      "affinity-tokens",
      "affinity: prompts equal in their first this many tokens go to the same node (the shipped "
      "Mooncake trace's requests all begin with the same 512-token block; a shorter prompt hashes "
      "its last complete block)",
      cxxopts::value<int64_t>()->default_value("1024"))(
      "cluster",
      "cluster tier sizes, e.g. 0,1TiB: one tier shared by all nodes (Redis Cluster, maxmemory "
      "with LRU eviction), timed by the hardware file's cluster_* values; 0: none",
      cxxopts::value<std::string>()->default_value("0"))(
      "cluster-min-uses",
      "share policy: a node uploads a block's compressed families when it has used them this "
      "many times (its put is the first use); checkpoints at their put",
      cxxopts::value<uint32_t>()->default_value("2"))(
      "cluster-swa", "share policy: upload full SWA objects too (at --cluster-min-uses)");
  int rc;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  const bool json = r->count("json") > 0;
  const bool capacity_only = r->count("node-capacity") > 0;
  if (!r->count("trace") && !capacity_only)
    return Fail(args[0], Status::InvalidArgument("--trace is required (" + args[0] + " --help)"));

  SweepOptions so;
  so.block_size = (*r)["block-size"].as<uint32_t>();
  so.models = SplitList((*r)["model"].as<std::string>());
  so.policies = SplitList((*r)["policies"].as<std::string>());
  so.evictions = SplitList((*r)["eviction"].as<std::string>());
  auto hbm = Sizes("hbm", (*r)["hbm"].as<std::string>());
  auto dram = Sizes("dram", (*r)["dram"].as<std::string>());
  auto nvme = Sizes("nvme", (*r)["nvme"].as<std::string>());
  for (const auto* s : {&hbm, &dram, &nvme})
    if (!s->ok()) return Fail(args[0], s->status());
  so.hbm = *hbm, so.dram = *dram, so.nvme = *nvme;
  auto nodes = Counts("nodes", (*r)["nodes"].as<std::string>());
  if (!nodes.ok()) return Fail(args[0], nodes.status());
  so.nodes = *nodes;
  so.assigns.clear();
  for (const std::string& a : SplitList((*r)["assign"].as<std::string>())) {
    auto parsed = ParseNodeAssign(a);
    if (!parsed.ok()) return Fail(args[0], parsed.status().WithContext("--assign"));
    so.assigns.push_back(*parsed);
  }
  auto cluster = Sizes("cluster", (*r)["cluster"].as<std::string>());
  if (!cluster.ok()) return Fail(args[0], cluster.status());
  so.clusters = *cluster;
  so.share.min_uses = (*r)["cluster-min-uses"].as<uint32_t>();
  so.share.full_swa = r->count("cluster-swa") > 0;
  so.affinity_tokens = (*r)["affinity-tokens"].as<int64_t>();
  so.hardware_path = (*r)["hardware"].as<std::string>();
  so.kv_replicas = (*r)["kv-replicas"].as<int>();
  const std::string overlap = (*r)["overlap"].as<std::string>();
  if (overlap == "serial")
    so.overlap = RestoreOverlap::kSerial;
  else if (overlap != "per-layer")
    return Fail(args[0], Status::InvalidArgument("--overlap: per-layer or serial"));
  so.load.max_requests = (*r)["requests"].as<size_t>();
  so.load.session_spacing_ms = (*r)["session-spacing-ms"].as<double>();
  if (Status w = ParseWindow((*r)["window"].as<std::string>(), so.load); !w.ok())
    return Fail(args[0], w);
  if (r->count("trace")) so.trace_path = (*r)["trace"].as<std::string>();
  so.codecs.clear();
  for (const std::string& c : SplitList((*r)["codec"].as<std::string>())) {
    auto k = ParseCodec(c);
    if (!k.ok()) return Fail(args[0], k.status().WithContext("--codec"));
    so.codecs.push_back(*k);
  }
  so.decode_threads = (*r)["decode-threads"].as<uint32_t>();

  auto sweep = Sweep::Make(so);
  if (!sweep.ok()) return Fail(args[0], sweep.status());
  Sweep& sw = **sweep;

  std::string plot_dir;
  std::ofstream plot_out;
  if (r->count("plot")) {
    plot_dir = (*r)["plot"].as<std::string>();
    std::error_code ec;
    fs::create_directories(plot_dir, ec);
    plot_out.open(fs::path(plot_dir) / "compare.jsonl");
    if (!plot_out)
      return Fail(args[0], Status::IoError("cannot write " + plot_dir + "/compare.jsonl"));
  }
  auto emit = [&](const std::string& line) {
    if (plot_out) plot_out << line << "\n";
  };

  for (size_t m = 0; m < sw.models(); ++m) {
    const CompareSetup& setup = sw.setup(m);
    const auto caps = NodeCapacities(setup, sw.policies(m));
    emit(NodeCapacityJson(setup, caps));
    if (capacity_only) {
      std::cout << (json ? NodeCapacityJson(setup, caps) + "\n" : NodeCapacityTable(setup, caps));
      continue;
    }
    const Trace& trace = sw.trace(m);
    const TraceSummary& sum = sw.summary(m);
    emit(SummaryJson(trace, sum, setup.model));
    if (json)
      std::cout << SummaryJson(trace, sum, setup.model) << "\n";
    else
      std::cout << fmt::format("trace {} ({}, {}-token blocks): {}\n", trace.name, setup.model,
                               trace.block_size, sum.ToString());
    for (const CodecEstimate& e : setup.codecs) {
      emit(CodecJson(setup, e));
      std::cout << (json ? CodecJson(setup, e) + "\n" : CodecTable(setup, e));
    }
    const auto configs = sw.configs(m);
    std::vector<CompareResult> with_nvme;  // for the NVMe table after the main one
    TableColumns columns = TableColumns::kNode;
    for (const CompareConfig& c : configs)
      if (c.multi_node()) columns = TableColumns::kCluster;
    if (!json) std::cout << TableHeader(columns) << std::flush;
    Progress bar(uint64_t(configs.size()) * trace.requests.size());
    for (size_t c = 0; c < configs.size(); ++c) {
      const uint64_t base = uint64_t(c) * trace.requests.size();
      const std::string label = setup.model + " " + configs[c].Label();
      auto res = Replay(trace, sum, setup, configs[c],
                        [&](uint64_t done) { bar.Set(base + done, label); });
      if (!res.ok()) return Fail(args[0], res.status().WithContext(label));
      const std::string line = ResultJson(*res);
      emit(line);
      bar.Set(base + trace.requests.size(), label);
      if (json)
        std::cout << line << "\n" << std::flush;
      else {
        if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\r%*s\r", 90, "");
        std::cout << TableRow(*res, columns) << std::flush;
      }
      if (configs[c].nvme_bytes) with_nvme.push_back(*res);
    }
    if (!json && !setup.codecs.empty() && !with_nvme.empty()) {
      std::cout << "\nNVMe tier at the trace's end: prompt tokens per TB of its capacity "
                   "(Mtok/TBc) and of the bytes it used (Mtok/TBu), unscaled; restore rate "
                   "modelled from the hardware file and the codec estimate:\n"
                << NvmeTableHeader();
      for (const CompareResult& res : with_nvme) std::cout << NvmeTableRow(res);
      std::cout << "\n";
    }
    if (!json) std::cout << NodeCapacityTable(setup, caps) << "\n";
    if (json) std::cout << NodeCapacityJson(setup, caps) << "\n";
  }
  if (plot_out) {
    plot_out.close();
    Status s = RunPlotScript("plot_compare.py", plot_dir);
    if (!s.ok()) return Fail(args[0], s);
    if (!json) std::cout << "plots written to " << plot_dir << "\n";
  }
  return 0;
}

}  // namespace strata::tools

namespace strata::tools {

int CmdBenchCompare(std::vector<std::string> args) {
  cxxopts::Options opts(args[0],
                        "Replay speed of the simulator: the whole trace per policy, interleaved "
                        "with a bare hash-set replay, over several rounds; JSON lines on stdout.");
  opts.add_options()("trace", "trace (Mooncake JSONL or session file)",
                     cxxopts::value<std::string>())(
      "model", "model config",
      cxxopts::value<std::string>()->default_value(DataPath("configs/models/v4-pro.json")))(
      "policies", "SWA policies",
      cxxopts::value<std::string>()->default_value("full,checkpoint:512,recompute,auto"))(
      "dram", "DRAM tier size", cxxopts::value<std::string>()->default_value("256GB"))(
      "nvme", "NVMe tier size (0: none)", cxxopts::value<std::string>()->default_value("8TB"))(
      "eviction", "eviction policy", cxxopts::value<std::string>()->default_value("lru"))(
      "hardware", "node cost parameters",
      cxxopts::value<std::string>()->default_value(DataPath("configs/hardware/b200-node.json")))(
      "rounds", "rounds (>= 5 for reported figures)", cxxopts::value<int>()->default_value("5"))(
      "requests", "first N requests only (0: all)", cxxopts::value<size_t>()->default_value("0"));
  int rc;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  if (!r->count("trace")) return Fail(args[0], Status::InvalidArgument("--trace is required"));
  bench::CompareBenchOptions o;
  o.rounds = (*r)["rounds"].as<int>();
  SweepOptions& so = o.sweep;
  so.trace_path = (*r)["trace"].as<std::string>();
  so.models = {(*r)["model"].as<std::string>()};
  so.policies = SplitList((*r)["policies"].as<std::string>());
  so.evictions = {(*r)["eviction"].as<std::string>()};
  so.hardware_path = (*r)["hardware"].as<std::string>();
  so.hbm = {0};
  auto dram = Sizes("dram", (*r)["dram"].as<std::string>());
  auto nvme = Sizes("nvme", (*r)["nvme"].as<std::string>());
  if (!dram.ok()) return Fail(args[0], dram.status());
  if (!nvme.ok()) return Fail(args[0], nvme.status());
  so.dram = {dram->front()}, so.nvme = {nvme->front()};
  so.load.max_requests = (*r)["requests"].as<size_t>();
  Status s = bench::RunCompareBench(o, [](const std::string& line) {
    std::fputs((line + "\n").c_str(), stdout);
    std::fflush(stdout);
  });
  return s.ok() ? 0 : Fail(args[0], s);
}

}  // namespace strata::tools
