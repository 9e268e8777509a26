// The batch-invariant GEMM against OpenBLAS sgemm on the same shapes, same thread count (1).
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <random>
#include <vector>

#include "kernels/gemm.h"

namespace {

std::vector<float> Random(size_t n) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

// Args: tokens m, inputs k, outputs n (V4-Flash shapes: wq_a 4096 -> 1024, wkv 4096 -> 512).
// `gemm(x, m, k, w, n, y)` computes y = x w^T.
template <typename Gemm>
void RunGemm(benchmark::State& st, Gemm gemm) {
  const size_t m = size_t(st.range(0)), k = size_t(st.range(1)), n = size_t(st.range(2));
  const auto x = Random(m * k), w = Random(n * k);
  std::vector<float> y(m * n);
  for (auto _ : st) {
    gemm(x.data(), m, k, w.data(), n, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GFLOPS"] =
      benchmark::Counter(2.0 * double(m * k * n) * double(st.iterations()),
                         benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void OpenBlas(const float* x, size_t m, size_t k, const float* w, size_t n, float* y) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, x, int(k), w,
              int(k), 0.0f, y, int(n));
}

void BM_StrataGemm(benchmark::State& st) {
  RunGemm(st, [](const float* x, size_t m, size_t k, const float* w, size_t n, float* y) {
    strata::kernels::Gemm(x, m, k, w, n, y);
  });
}

void BM_OpenBlasSgemm(benchmark::State& st) {
  openblas_set_num_threads(1);
  RunGemm(st, OpenBlas);
}

// Both cores: strata's pool against OpenBLAS with two threads.
void BM_OpenBlasSgemm2Threads(benchmark::State& st) {
  openblas_set_num_threads(2);
  RunGemm(st, OpenBlas);
  openblas_set_num_threads(1);
}

BENCHMARK(BM_StrataGemm)
    ->Args({64, 4096, 1024})
    ->Args({1, 4096, 1024})
    ->Args({256, 1024, 1024})
    ->UseRealTime();
BENCHMARK(BM_OpenBlasSgemm)
    ->Args({64, 4096, 1024})
    ->Args({1, 4096, 1024})
    ->Args({256, 1024, 1024})
    ->UseRealTime();
BENCHMARK(BM_OpenBlasSgemm2Threads)->Args({64, 4096, 1024})->Args({256, 1024, 1024})->UseRealTime();

}  // namespace
