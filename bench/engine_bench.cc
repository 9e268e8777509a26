#include "bench/engine_bench.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/model.h"
#include "kernels/gemm.h"
#include "kernels/thread_pool.h"

namespace strata::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Median seconds per call of `f` over rounds of at least `min_s` each.
template <typename F>
double TimePerCall(F&& f, double min_s = 0.25) {
  f();  // warm up
  std::vector<double> rounds;
  for (int r = 0; r < 5; ++r) {
    int calls = 0;
    const auto t = Clock::now();
    do {
      f();
      ++calls;
    } while (Since(t) < min_s / 5);
    rounds.push_back(Since(t) / calls);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

void Emit(std::ostream& out, nlohmann::json j) {
  j["bench"] = "engine";
  out << j.dump() << std::endl;
}

// strata's GEMM and OpenBLAS sgemm (same threads) on y[m, n] = x[m, k] w[n, k]^T.
void GemmFigure(std::ostream& out, const std::string& model, const char* what, size_t m, size_t k,
                size_t n) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(m * k), w(n * k), y(m * n);
  for (auto& v : x) v = u(rng);
  for (auto& v : w) v = u(rng);
  const int threads = int(kernels::ThreadPool::Default().size());
  openblas_set_num_threads(threads);
  const double ours = TimePerCall([&] { kernels::Gemm(x.data(), m, k, w.data(), n, y.data()); });
  const double blas = TimePerCall([&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, x.data(),
                int(k), w.data(), int(k), 0.0f, y.data(), int(n));
  });
  const double flop = 2.0 * double(m) * double(k) * double(n);
  Emit(out, {{"model", model},
             {"figure", "gemm"},
             {"shape", what},
             {"m", m},
             {"k", k},
             {"n", n},
             {"threads", threads},
             {"strata_gflops", flop / ours / 1e9},
             {"openblas_gflops", flop / blas / 1e9},
             {"ratio", blas / ours}});
}

}  // namespace

Status RunEngineBench(const EngineBenchOptions& opt, std::ostream& out) {
  for (const EngineBenchModel& bm : opt.models) {
    STRATA_ASSIGN_OR_RETURN(engine::ModelConfig config, engine::LoadModelConfig(bm.config_path));
    const std::string name = config.shape.name;
    if (opt.progress) std::cerr << "engine bench: " << name << ": random weights...\n";
    auto t = Clock::now();
    std::shared_ptr<const engine::ModelWeights> weights =
        engine::ModelWeights::Random(config, opt.seed);
    const double init_s = Since(t);
    STRATA_ASSIGN_OR_RETURN(auto model, engine::Model::Create(config, weights));
    std::mt19937 rng(7);
    std::vector<int32_t> prompt(size_t(bm.prefill_tokens));
    for (auto& v : prompt) v = int32_t(rng() % uint32_t(config.shape.vocab_size));

    if (opt.progress)
      std::cerr << "engine bench: " << name << ": prefill " << bm.prefill_tokens << " tokens...\n";
    engine::RequestState st = model->NewState();
    engine::KernelProfile prefill_profile, decode_profile;
    engine::ForwardOptions fo;
    fo.profile = &prefill_profile;
    t = Clock::now();
    STRATA_ASSIGN_OR_RETURN(engine::ForwardResult r, model->Forward(st, prompt, fo));
    const double prefill_s = Since(t);
    if (opt.progress)
      std::cerr << "engine bench: " << name << ": decode " << bm.decode_tokens << " tokens...\n";
    fo.profile = &decode_profile;
    t = Clock::now();
    for (int i = 0; i < bm.decode_tokens; ++i) {
      const int32_t next =
          int32_t(std::max_element(r.logits.begin(), r.logits.end()) - r.logits.begin());
      STRATA_ASSIGN_OR_RETURN(r, model->Forward(st, std::span(&next, 1), fo));
    }
    const double decode_s = Since(t);
    const int threads = int(kernels::ThreadPool::Default().size());
    Emit(out, {{"model", name},
               {"figure", "prefill"},
               {"tokens", bm.prefill_tokens},
               {"seconds", prefill_s},
               {"tokens_per_s", bm.prefill_tokens / prefill_s},
               {"threads", threads},
               {"weights_bytes", weights->bytes()},
               {"weights_init_s", init_s}});
    Emit(out, {{"model", name},
               {"figure", "decode"},
               {"context", bm.prefill_tokens},
               {"tokens", bm.decode_tokens},
               {"seconds", decode_s},
               {"tokens_per_s", bm.decode_tokens / decode_s},
               {"threads", threads}});
    for (auto [phase, prof, tokens] : {std::tuple{"prefill", &prefill_profile, bm.prefill_tokens},
                                       std::tuple{"decode", &decode_profile, bm.decode_tokens}}) {
      nlohmann::json per;
      for (const auto& [kernel, sec] : *prof) per[kernel] = sec / tokens * 1e6;
      Emit(out, {{"model", name},
                 {"figure", "kernel_us_per_token"},
                 {"phase", phase},
                 {"us_per_token", per}});
    }
    if (opt.progress) std::cerr << "engine bench: " << name << ": GEMM vs OpenBLAS...\n";
    const size_t dim = size_t(config.shape.dim);
    GemmFigure(out, name, "prefill chunk x wq_a", 256, dim, size_t(config.q_lora_rank));
    GemmFigure(out, name, "decode token x wq_a", 1, dim, size_t(config.q_lora_rank));
    GemmFigure(out, name, "prefill chunk x expert w1", 256, dim, size_t(config.moe_inter_dim));
  }
  return Status::Ok();
}

}  // namespace strata::bench
