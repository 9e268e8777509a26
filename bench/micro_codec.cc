// Google Benchmark micro benchmarks of the record codec on V4-shaped payloads (V4-Pro, B=256).
#include <benchmark/benchmark.h>

#include <cstring>

#include "bench/v4_payload.h"
#include "cachestore/nvme/codec.h"
#include "strata/layout.h"

namespace {

using namespace strata;

const CacheLayout& ProLayout() {
  static const CacheLayout l = [] {
    ModelShape s;
    s.name = "v4-pro";
    s.vocab_size = 129280;
    s.dim = 7168;
    s.n_layers = 61;
    s.n_mtp_layers = 1;
    s.n_heads = 128;
    s.head_dim = 512;
    s.rope_head_dim = 64;
    s.window_size = 128;
    s.index_n_heads = 64;
    s.index_head_dim = 128;
    s.index_topk = 1024;
    s.compress_ratios = {128, 128};
    for (int i = 0; i < 59; ++i) s.compress_ratios.push_back(i % 2 ? 128 : 4);
    s.compress_ratios.push_back(0);
    return *CacheLayout::Make(s, {});
  }();
  return l;
}

void BM_Encode(benchmark::State& st) {
  const auto fam = Family(st.range(0));
  const auto codec = CodecKind(st.range(1));
  const auto raw = bench::MakeFamilyPayload(ProLayout(), fam, 1);
  std::vector<std::byte> out(cachestore::MaxEncodedSize(raw.size()));
  size_t stored = 0;
  for (auto _ : st) {
    auto e = cachestore::EncodeRecord(codec, raw, out);
    stored = e.size;
    benchmark::DoNotOptimize(out.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations() * raw.size()));
  st.counters["size_ratio"] = double(raw.size()) / double(stored);
  st.SetLabel(std::string(FamilyName(fam)) + "/" + std::string(CodecKindName(codec)));
}

void BM_Decode(benchmark::State& st) {
  const auto fam = Family(st.range(0));
  const auto codec = CodecKind(st.range(1));
  const auto raw = bench::MakeFamilyPayload(ProLayout(), fam, 1);
  std::vector<std::byte> enc(cachestore::MaxEncodedSize(raw.size())), dec(raw.size());
  auto e = cachestore::EncodeRecord(codec, raw, enc);
  for (auto _ : st) {
    if (!cachestore::DecodeRecord(e.codec, {enc.data(), e.size}, dec).ok())
      st.SkipWithError("decode");
    benchmark::DoNotOptimize(dec.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations() * raw.size()));
  st.SetLabel(std::string(FamilyName(fam)) + "/" + std::string(CodecKindName(e.codec)));
}

void BM_Memcpy(benchmark::State& st) {
  const auto raw = bench::MakeFamilyPayload(ProLayout(), Family(st.range(0)), 1);
  std::vector<std::byte> dst(raw.size());
  for (auto _ : st) {
    std::memcpy(dst.data(), raw.data(), raw.size());
    benchmark::DoNotOptimize(dst.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations() * raw.size()));
}

void Args(benchmark::internal::Benchmark* b) {
  for (int f : {0, 1, 2, 4})
    for (int c : {1, 2, 3}) b->Args({f, c});
}

BENCHMARK(BM_Encode)->Apply(Args);
BENCHMARK(BM_Decode)->Apply(Args);
BENCHMARK(BM_Memcpy)->Arg(0)->Arg(4);

}  // namespace
