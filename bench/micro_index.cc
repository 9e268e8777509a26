// Google Benchmark micro benchmarks of the RocksDB index adapter: batched puts and a full scan.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>

#include "cachestore/nvme/index.h"

namespace {

using namespace strata;

std::string ScratchDir() {
  std::string t = (std::filesystem::temp_directory_path() / "strata-index-bench-XXXXXX").string();
  return mkdtemp(t.data());
}

cachestore::IndexEntry EntryOf(uint64_t i) {
  cachestore::IndexEntry e;
  e.key = ObjectKey{1, BlockKey{i * 0x9E3779B97F4A7C15ull, i}, Family(i % kNumFamilies)};
  e.offset = i * 4096;
  e.raw_size = e.stored_size = 4000;
  e.sequence = i + 1;
  return e;
}

void BM_IndexPutBatch(benchmark::State& st) {
  const std::string dir = ScratchDir();
  auto idx = cachestore::Index::Open(dir);
  std::vector<cachestore::IndexEntry> batch(size_t(st.range(0)));
  uint64_t n = 0;
  for (auto _ : st) {
    for (auto& e : batch) e = EntryOf(n++);
    if (!(*idx)->Put(batch).ok()) st.SkipWithError("put");
  }
  st.SetItemsProcessed(int64_t(n));
  idx->reset();
  std::filesystem::remove_all(dir);
}

void BM_IndexScan(benchmark::State& st) {
  const std::string dir = ScratchDir();
  auto idx = cachestore::Index::Open(dir);
  std::vector<cachestore::IndexEntry> batch;
  for (uint64_t i = 0; i < uint64_t(st.range(0)); ++i) batch.push_back(EntryOf(i));
  (void)(*idx)->Put(batch);
  uint64_t seen = 0;
  for (auto _ : st) {
    (void)(*idx)->Scan([&](const cachestore::IndexEntry&) {
      ++seen;
      return true;
    });
  }
  st.SetItemsProcessed(int64_t(seen));
  idx->reset();
  std::filesystem::remove_all(dir);
}

BENCHMARK(BM_IndexPutBatch)->Arg(1)->Arg(64);
BENCHMARK(BM_IndexScan)->Arg(100000);

}  // namespace
