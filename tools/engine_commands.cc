// strata conform / generate / bench engine: the engine's CLI.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/engine_bench.h"
#include "bench/rehydrate_bench.h"
#include "engine/conformance.h"
#include "engine/model.h"
#include "kernels/thread_pool.h"
#include "tools/commands.h"

namespace strata::tools {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Whitespace- or comma-separated token ids.
Result<std::vector<int32_t>> ReadTokens(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot open token file " + path);
  std::vector<int32_t> out;
  std::string word;
  while (in >> word) {
    std::stringstream parts(word);
    std::string item;
    while (std::getline(parts, item, ',')) {
      if (item.empty()) continue;
      try {
        size_t used = 0;
        const long v = std::stol(item, &used);
        if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
        out.push_back(int32_t(v));
      } catch (const std::exception&) {
        std::string msg = path;
        msg.append(": not a token id: ").append(item);
        return Status::InvalidArgument(msg);
      }
    }
  }
  if (out.empty()) return Status::InvalidArgument(path + ": no token ids");
  return out;
}

}  // namespace

Result<std::unique_ptr<engine::Model>> LoadModel(const std::string& model_path,
                                                 const std::string& weights_path, uint64_t seed) {
  STRATA_ASSIGN_OR_RETURN(engine::ModelConfig config, engine::LoadModelConfig(model_path));
  std::shared_ptr<const engine::ModelWeights> weights;
  if (weights_path.empty()) {
    weights = engine::ModelWeights::Random(config, seed);
  } else {
    STRATA_ASSIGN_OR_RETURN(auto w, engine::ModelWeights::Load(config, weights_path));
    weights = std::move(w);
  }
  return engine::Model::Create(config, std::move(weights));
}

int CmdConform(std::vector<std::string> args) {
  cxxopts::Options opts(args[0],
                        "Run a conformance case (config, weights and reference vectors from the "
                        "official DeepSeek-V4 inference code) and compare every figure.");
  opts.positional_help("CASE_DIR...");
  opts.add_options()("json", "one JSON object per case instead of the table")(
      "serving-numerics", "round cached RoPE dims to BF16 as served (the reference keeps float32)")(
      "cases", "case directories", cxxopts::value<std::vector<std::string>>());
  opts.parse_positional({"cases"});
  int rc = 0;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  if (!r->count("cases")) {
    std::cerr << args[0] << ": give at least one case directory\n";
    return 2;
  }
  bool all = true;
  for (const std::string& dir : (*r)["cases"].as<std::vector<std::string>>()) {
    engine::ConformanceOptions co;
    co.bf16_rope_cache = (*r)["serving-numerics"].as<bool>();
    auto report = engine::RunConformance(dir, co);
    if (!report.ok()) return Fail(args[0], report.status());
    std::cout << ((*r)["json"].as<bool>() ? engine::ReportJson(*report) + "\n"
                                          : engine::FormatReport(*report))
              << std::flush;
    all = all && report->pass;
  }
  return all ? 0 : 1;
}

int CmdGenerate(std::vector<std::string> args) {
  cxxopts::Options opts(args[0],
                        "Greedy generation: prefill the prompt, then decode up to --max-new "
                        "tokens; prints the tokens and timings.");
  opts.add_options()("model", "model config (JSON)",
                     cxxopts::value<std::string>()->default_value("configs/models/v4-tiny.json"))(
      "weights", "safetensors checkpoint (default: random weights from --seed)",
      cxxopts::value<std::string>()->default_value(""))(
      "seed", "seed of the random weights", cxxopts::value<uint64_t>()->default_value("1"))(
      "prompt-tokens", "file of token ids (whitespace or comma separated)",
      cxxopts::value<std::string>())("max-new", "tokens to generate",
                                     cxxopts::value<int>()->default_value("16"))(
      "chunk", "prefill chunk size in tokens (0: the whole prompt at once)",
      cxxopts::value<int>()->default_value("0"))(
      "threads", "kernel threads (default: all cores; STRATA_THREADS also works)",
      cxxopts::value<int>()->default_value("0"))(
      "backend", "cpu or cuda", cxxopts::value<std::string>()->default_value("cpu"));
  int rc = 0;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  if (!r->count("prompt-tokens")) {
    std::cerr << args[0] << ": --prompt-tokens FILE is required\n";
    return 2;
  }
  const std::string backend = (*r)["backend"].as<std::string>();
  if (backend == "cuda") {
    std::cerr << args[0]
              << ": the CUDA backend runs the state path kernels only (compressor, indexer, "
                 "sparse attention, entry packing); the full forward pass runs on --backend cpu\n";
    return 2;
  }
  if (backend != "cpu") {
    std::cerr << args[0] << ": unknown backend '" << backend << "' (cpu or cuda)\n";
    return 2;
  }
  if (int t = (*r)["threads"].as<int>(); t > 0)
    setenv("STRATA_THREADS", std::to_string(t).c_str(), 1);
  const int max_new = (*r)["max-new"].as<int>();
  if (max_new < 0) {
    std::cerr << args[0] << ": --max-new must be >= 0\n";
    return 2;
  }
  auto prompt = ReadTokens((*r)["prompt-tokens"].as<std::string>());
  if (!prompt.ok()) return Fail(args[0], prompt.status());
  const auto t0 = Clock::now();
  auto model = LoadModel((*r)["model"].as<std::string>(), (*r)["weights"].as<std::string>(),
                         (*r)["seed"].as<uint64_t>());
  if (!model.ok()) return Fail(args[0], model.status());
  const auto t1 = Clock::now();
  engine::RequestState st = (*model)->NewState();
  const int chunk = (*r)["chunk"].as<int>();
  const size_t step = chunk > 0 ? size_t(chunk) : prompt->size();
  engine::ForwardResult out;
  for (size_t at = 0; at < prompt->size(); at += step) {
    const size_t n = std::min(step, prompt->size() - at);
    auto res = (*model)->Forward(st, std::span(prompt->data() + at, n));
    if (!res.ok()) return Fail(args[0], res.status());
    out = std::move(*res);
  }
  const auto t2 = Clock::now();
  const int vocab = (*model)->config().shape.vocab_size;
  std::vector<int32_t> generated;
  for (int i = 0; i < max_new; ++i) {
    const int32_t next = int32_t(std::max_element(out.logits.end() - vocab, out.logits.end()) -
                                 (out.logits.end() - vocab));
    generated.push_back(next);
    if (i + 1 == max_new) break;
    auto res = (*model)->Forward(st, std::span(&generated.back(), 1));
    if (!res.ok()) return Fail(args[0], res.status());
    out = std::move(*res);
  }
  const auto t3 = Clock::now();
  for (size_t i = 0; i < generated.size(); ++i) std::cout << (i ? " " : "") << generated[i];
  std::cout << "\n";
  const double prefill = Seconds(t1, t2), decode = Seconds(t2, t3);
  std::fprintf(stderr,
               "load %.2f s; prefill %zu tokens %.3f s (%.1f tok/s); decode %d tokens %.3f s "
               "(%.1f tok/s); threads %zu\n",
               Seconds(t0, t1), prompt->size(), prefill, double(prompt->size()) / prefill,
               max_new > 0 ? max_new - 1 : 0, decode,
               max_new > 1 ? double(max_new - 1) / decode : 0.0,
               kernels::ThreadPool::Default().size());
  return 0;
}

}  // namespace strata::tools

namespace strata::tools {

int CmdBenchRehydrate(std::vector<std::string> args) {
  cxxopts::Options opts(args[0],
                        "Restore figures as JSON lines: per plan (full, checkpoint, recompute) "
                        "and tier (DRAM, NVMe after a restart) the time to first token of a "
                        "cached prefix + an uncached tail against a cold prefill of the same "
                        "prompt in the same run; the planner's choice; bytes "
                        "per token per policy (V4-Pro, V4-Flash); LZ4 ratio per family. Default: "
                        "v4-tiny at 2K, 8K, 32K and v4-flash-slice at 8K tokens.");
  opts.add_options()("model", "model config (repeatable; default: the two above)",
                     cxxopts::value<std::vector<std::string>>())(
      "prefix", "prefix lengths for --model (repeatable)",
      cxxopts::value<std::vector<int>>()->default_value("2048,8192"))("quick",
                                                                      "v4-tiny at 2K and 8K only")(
      "configs", "folder of the shipped model configs",
      cxxopts::value<std::string>()->default_value("configs/models"))(
      "scratch", "scratch directory for the stores",
      cxxopts::value<std::string>()->default_value("strata-bench-rehydrate"))(
      "seed", "seed of the random weights", cxxopts::value<uint64_t>()->default_value("1"))(
      "tail", "uncached prompt tokens after each prefix (1..255)",
      cxxopts::value<int>()->default_value("100"));
  int rc = 0;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  bench::RehydrateBenchOptions bo;
  bo.tail_tokens = (*r)["tail"].as<int>();
  bo.seed = (*r)["seed"].as<uint64_t>();
  bo.progress = isatty(2);
  bo.configs_dir = (*r)["configs"].as<std::string>();
  bo.scratch_dir = (*r)["scratch"].as<std::string>();
  const std::vector<int> prefixes = (*r)["prefix"].as<std::vector<int>>();
  for (int p : prefixes)
    if (p < 256 || p % 256) {
      std::cerr << args[0] << ": prefixes must be positive multiples of 256 tokens\n";
      return 2;
    }
  if (r->count("model")) {
    for (const std::string& m : (*r)["model"].as<std::vector<std::string>>())
      bo.cases.push_back({m, prefixes});
  } else if ((*r)["quick"].as<bool>()) {
    bo.cases = {{bo.configs_dir + "/v4-tiny.json", {2048, 8192}}};
  } else {
    bo.cases = {{bo.configs_dir + "/v4-tiny.json", {2048, 8192, 32768}},
                {bo.configs_dir + "/v4-flash-slice.json", {8192}}};
  }
  Status s = bench::RunRehydrateBench(bo, std::cout);
  if (!s.ok()) return Fail(args[0], s);
  return 0;
}

int CmdBenchEngine(std::vector<std::string> args) {
  cxxopts::Options opts(args[0],
                        "Engine figures as JSON lines: prefill and decode tokens/s, time per "
                        "token of each kernel family, GEMM against OpenBLAS sgemm (same run, same "
                        "threads). Default: v4-tiny (2048-token prefill, 32 decode steps) and "
                        "v4-flash-slice (512, 4).");
  opts.add_options()("model", "model config (repeatable; default: the two above)",
                     cxxopts::value<std::vector<std::string>>())(
      "prefill", "prefill tokens for --model", cxxopts::value<int>()->default_value("1024"))(
      "decode", "decode steps for --model", cxxopts::value<int>()->default_value("16"))(
      "configs", "folder of the shipped model configs",
      cxxopts::value<std::string>()->default_value("configs/models"))(
      "seed", "seed of the random weights", cxxopts::value<uint64_t>()->default_value("1"));
  int rc = 0;
  auto r = Parse(opts, args, &rc);
  if (!r) return rc;
  bench::EngineBenchOptions bo;
  bo.seed = (*r)["seed"].as<uint64_t>();
  bo.progress = isatty(2);
  if (r->count("model")) {
    for (const std::string& m : (*r)["model"].as<std::vector<std::string>>())
      bo.models.push_back({m, (*r)["prefill"].as<int>(), (*r)["decode"].as<int>()});
  } else {
    const std::string dir = (*r)["configs"].as<std::string>();
    bo.models = {{dir + "/v4-tiny.json", 2048, 32}, {dir + "/v4-flash-slice.json", 512, 4}};
  }
  for (const auto& m : bo.models)
    if (m.prefill_tokens < 1 || m.decode_tokens < 1) {
      std::cerr << args[0] << ": --prefill and --decode must be >= 1\n";
      return 2;
    }
  Status s = bench::RunEngineBench(bo, std::cout);
  if (!s.ok()) return Fail(args[0], s);
  return 0;
}

}  // namespace strata::tools
