// The batch-invariant GEMM against OpenBLAS on the same shapes, the same data and the same
// thread count: OpenBLAS is set to the size of strata's pool (all cores unless STRATA_THREADS
// says otherwise). The peer for one token (m = 1) is cblas_sgemv, what an OpenBLAS user calls
// for one row (y = w x, w row-major [n, k], no transpose); for more rows cblas_sgemm (x times
// w transposed). Each iteration runs strata then the peer, each timed on its own, so the two
// alternate over the same warm x and w; each repetition is one round, and the aggregates give
// the median and the min-max over the rounds.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/thread_pool.h"

namespace {

using Clock = std::chrono::steady_clock;

std::vector<float> Random(size_t n) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Args: tokens m, inputs k, outputs n (V4-Flash shapes: wq_a 4096 -> 1024, wkv 4096 -> 512).
void BM_GemmVsOpenBlas(benchmark::State& st) {
  const size_t m = size_t(st.range(0)), k = size_t(st.range(1)), n = size_t(st.range(2));
  const auto x = Random(m * k), w = Random(n * k);
  std::vector<float> y(m * n), y_peer(m * n);
  const int strata_threads = int(strata::kernels::ThreadPool::Default().size());
  openblas_set_num_threads(strata_threads);
  const int openblas_threads = openblas_get_num_threads();
  const bool gemv = m == 1;
  auto peer = [&] {
    if (gemv)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, int(n), int(k), 1.0f, w.data(), int(k), x.data(), 1,
                  0.0f, y_peer.data(), 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, x.data(),
                  int(k), w.data(), int(k), 0.0f, y_peer.data(), int(n));
  };
  // Same problem on both sides: the outputs agree to rounding.
  strata::kernels::Gemm(x.data(), m, k, w.data(), n, y.data());
  peer();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    diff = std::max(diff, double(std::fabs(y[i] - y_peer[i])));
    scale = std::max(scale, double(std::fabs(y_peer[i])));
  }
  if (diff > 1e-4 * scale) {
    st.SkipWithError("strata and OpenBLAS compute different outputs: not the same problem");
    return;
  }
  double ours_s = 0, peer_s = 0;
  for (auto _ : st) {
    const auto t0 = Clock::now();
    strata::kernels::Gemm(x.data(), m, k, w.data(), n, y.data());
    const auto t1 = Clock::now();
    peer();
    const auto t2 = Clock::now();
    ours_s += Seconds(t0, t1);
    peer_s += Seconds(t1, t2);
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(y_peer.data());
  }
  const double flop = 2.0 * double(m * k * n) * double(st.iterations());
  st.counters["strata_GFLOPS"] = flop / ours_s / 1e9;
  st.counters["openblas_GFLOPS"] = flop / peer_s / 1e9;
  st.counters["ratio"] = peer_s / ours_s;  // > 1: strata is faster
  st.counters["strata_threads"] = strata_threads;
  // Small shapes stay on the caller's thread; OpenBLAS decides its own split.
  st.counters["strata_threads_used"] = double(strata::kernels::GemmThreads(m, k, n));
  st.counters["openblas_threads"] = openblas_threads;
  st.SetLabel(std::string("peer ") + (gemv ? "cblas_sgemv" : "cblas_sgemm"));
}

double Min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double Max(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

BENCHMARK(BM_GemmVsOpenBlas)
    ->Args({64, 4096, 1024})
    ->Args({1, 4096, 1024})
    ->Args({256, 1024, 1024})
    ->UseRealTime()
    ->Repetitions(5)
    ->ComputeStatistics("min", Min)
    ->ComputeStatistics("max", Max)
    ->DisplayAggregatesOnly(true);

}  // namespace
