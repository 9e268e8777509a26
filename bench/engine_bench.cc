#include "bench/engine_bench.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
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

// Seconds per call of one side in one round: calls repeat for at least `min_s`.
template <typename F>
double OneRound(F& f, double min_s) {
  int calls = 0;
  const auto t = Clock::now();
  do {
    f();
    ++calls;
  } while (Since(t) < min_s);
  return Since(t) / calls;
}

struct Spread {
  double median = 0, min = 0, max = 0;
};

Spread SpreadOf(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

void Emit(std::ostream& out, nlohmann::json j) {
  j["bench"] = "engine";
  out << j.dump() << std::endl;
}

// strata's GEMM against its OpenBLAS peer on y[m, n] = x[m, k] w[n, k]^T, both reading the
// same x and w (w row-major [n, k], as checkpoints store it), with the same thread count:
// OpenBLAS is set to the size of strata's pool. The peer for one token (m = 1) is
// cblas_sgemv (what an OpenBLAS user calls for one row: y = w x, row-major, no transpose),
// for more rows cblas_sgemm (x times w transposed). The two sides alternate (strata, peer,
// strata, peer, ...) for `kRounds` rounds, so both see the same cache and clock state; the
// figures are the median and the min-max over the rounds. ratio = peer time / strata time.
// Both sides must compute the same y (same layout, same data): an error otherwise.
Status GemmFigure(std::ostream& out, const std::string& model, const char* what, size_t m, size_t k,
                  size_t n) {
  constexpr int kRounds = 7;
  constexpr double kRoundSeconds = 0.05;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(m * k), w(n * k), y(m * n), y_peer(m * n);
  for (auto& v : x) v = u(rng);
  for (auto& v : w) v = u(rng);
  const int strata_threads = int(kernels::ThreadPool::Default().size());
  const int strata_used = int(kernels::GemmThreads(m, k, n));
  const bool gemv = m == 1;
  // The peer with `threads` OpenBLAS threads.
  auto peer_with = [&](int threads) {
    return [&, threads] {
      openblas_set_num_threads(threads);
      if (gemv)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, int(n), int(k), 1.0f, w.data(), int(k), x.data(),
                    1, 0.0f, y_peer.data(), 1);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, x.data(),
                    int(k), w.data(), int(k), 0.0f, y_peer.data(), int(n));
    };
  };
  auto ours = [&] { kernels::Gemm(x.data(), m, k, w.data(), n, y.data()); };
  auto peer = peer_with(strata_threads);
  openblas_set_num_threads(strata_threads);
  const int openblas_threads = openblas_get_num_threads();
  // Where strata keeps a shape on fewer threads than its pool (small work), the peer also runs
  // with that many, in the same rounds, so a ratio can be told apart from threading overhead.
  const bool also_used = strata_used != strata_threads;
  auto peer_used = peer_with(strata_used);
  ours();  // warm up (pages, caches, OpenBLAS's threads)
  peer();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    diff = std::max(diff, double(std::fabs(y[i] - y_peer[i])));
    scale = std::max(scale, double(std::fabs(y_peer[i])));
  }
  const double rel_diff = scale > 0 ? diff / scale : diff;
  if (rel_diff > 1e-4)
    return Status::Internal(std::string("GEMM bench ") + what + ": strata and OpenBLAS differ (" +
                            std::to_string(rel_diff) + " of max |y|): not the same problem");
  if (also_used) peer_used();
  const double flop = 2.0 * double(m) * double(k) * double(n);
  std::vector<double> ours_gf, peer_gf, ratio, used_gf, used_ratio;
  for (int r = 0; r < kRounds; ++r) {
    const double a = OneRound(ours, kRoundSeconds);
    const double b = OneRound(peer, kRoundSeconds);
    ours_gf.push_back(flop / a / 1e9);
    peer_gf.push_back(flop / b / 1e9);
    ratio.push_back(b / a);
    if (also_used) {
      const double c = OneRound(peer_used, kRoundSeconds);
      used_gf.push_back(flop / c / 1e9);
      used_ratio.push_back(c / a);
    }
  }
  openblas_set_num_threads(strata_threads);
  const Spread o = SpreadOf(ours_gf), p = SpreadOf(peer_gf), q = SpreadOf(ratio);
  nlohmann::json j = {{"model", model},
                      {"figure", "gemm"},
                      {"shape", what},
                      {"m", m},
                      {"k", k},
                      {"n", n},
                      {"peer", gemv ? "openblas cblas_sgemv" : "openblas cblas_sgemm"},
                      {"strata_threads", strata_threads},
                      {"strata_threads_used", strata_used},
                      {"openblas_threads", openblas_threads},
                      {"rounds", kRounds},
                      {"max_rel_diff", rel_diff},
                      {"strata_gflops", o.median},
                      {"strata_gflops_min", o.min},
                      {"strata_gflops_max", o.max},
                      {"openblas_gflops", p.median},
                      {"openblas_gflops_min", p.min},
                      {"openblas_gflops_max", p.max},
                      {"ratio", q.median},
                      {"ratio_min", q.min},
                      {"ratio_max", q.max}};
  if (also_used) {
    const Spread u = SpreadOf(used_gf), v = SpreadOf(used_ratio);
    j["openblas_at_used_threads"] = {{"openblas_threads", strata_used},
                                     {"openblas_gflops", u.median},
                                     {"openblas_gflops_min", u.min},
                                     {"openblas_gflops_max", u.max},
                                     {"ratio", v.median},
                                     {"ratio_min", v.min},
                                     {"ratio_max", v.max}};
  }
  Emit(out, std::move(j));
  return Status::Ok();
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
    STRATA_RETURN_IF_ERROR(
        GemmFigure(out, name, "prefill chunk x wq_a", 256, dim, size_t(config.q_lora_rank)));
    STRATA_RETURN_IF_ERROR(
        GemmFigure(out, name, "decode token x wq_a", 1, dim, size_t(config.q_lora_rank)));
    STRATA_RETURN_IF_ERROR(
        GemmFigure(out, name, "prefill chunk x expert w1", 256, dim, size_t(config.moe_inter_dim)));
  }
  return Status::Ok();
}

}  // namespace strata::bench
