// Google Benchmark micro benchmark of the eviction policies against LRU (the peer) on the same
// access trace: a byte-capacity cache drives the policy as the placement core does (a hit
// touches; a miss takes victims until the object fits, then tracks it). The trace mixes a Zipf
// (s = 0.9) working set of 50,000 objects of four sizes with a one-pass scan of 5,000 fresh
// objects after every 20,000 accesses; the cache holds 10% of the working set's bytes. Each
// iteration replays the whole trace through a fresh policy, then through a fresh LRU, each timed
// on its own; each repetition is one round, and the aggregates give the median and the min-max.
// Counters: accesses/s and policy calls/s for both, the ratio of times (> 1: faster than LRU),
// and both hit ratios (by object), which are the same every round (the trace is fixed).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <unordered_map>
#include <vector>

#include "cachestore/placement/eviction_policy.h"

namespace {

using namespace strata::cachestore;
using Clock = std::chrono::steady_clock;

struct Access {
  uint64_t id;
  ObjectFacts facts;
};

const std::vector<Access>& Trace() {
  static const std::vector<Access> trace = [] {
    constexpr uint64_t kObjects = 50000, kLength = 400000, kScanEvery = 20000, kScan = 5000;
    constexpr uint64_t kBytes[4] = {2048, 4096, 16384, 65536};
    std::vector<double> cdf(kObjects);
    double sum = 0;
    for (uint64_t i = 0; i < kObjects; ++i) cdf[i] = sum += 1.0 / std::pow(double(i + 1), 0.9);
    std::mt19937_64 rng(42);
    auto facts = [&](uint64_t id) {
      ObjectFacts f;
      f.bytes = kBytes[id % 4];
      f.value_per_byte = 1e-9 * double(1 + (id * 0x9E3779B97F4A7C15ull >> 54));
      f.depth = uint32_t(id % 7);
      return f;
    };
    std::vector<Access> t;
    uint64_t fresh = kObjects;
    for (uint64_t i = 0; i < kLength; ++i) {
      if (i % kScanEvery == kScanEvery - 1)
        for (uint64_t s = 0; s < kScan; ++s, ++fresh) t.push_back({fresh, facts(fresh)});
      const double u = double(rng() >> 11) * 0x1.0p-53 * sum;
      // Rank i is the i-th most popular; spread ranks over ids so sizes do not follow rank.
      const uint64_t rank = uint64_t(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
      const uint64_t id = (rank * 7919) % kObjects;
      t.push_back({id, facts(id)});
    }
    return t;
  }();
  return trace;
}

uint64_t CapacityBytes() {
  uint64_t total = 0;
  std::unordered_map<uint64_t, uint64_t> seen;
  for (const auto& a : Trace())
    if (a.id < 50000 && seen.emplace(a.id, a.facts.bytes).second) total += a.facts.bytes;
  return total / 10;
}

struct Replay {
  uint64_t hits = 0, calls = 0;
  double seconds = 0;
};

Replay Run(EvictionPolicy& p, uint64_t capacity) {
  std::unordered_map<uint64_t, uint64_t> held;
  held.reserve(1 << 16);
  uint64_t used = 0;
  Replay r;
  const auto t0 = Clock::now();
  for (const auto& a : Trace()) {
    if (held.count(a.id)) {
      p.Touch(a.id);
      ++r.hits;
      ++r.calls;
      continue;
    }
    while (used + a.facts.bytes > capacity) {
      const uint64_t v = *p.Victim();
      p.Untrack(v);
      auto it = held.find(v);
      used -= it->second;
      held.erase(it);
      r.calls += 2;
    }
    p.Track(a.id, a.facts);
    held.emplace(a.id, a.facts.bytes);
    used += a.facts.bytes;
    ++r.calls;
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

// Arg: 0 s3fifo, 1 cost, 2 lru (against itself: the ratio should be about 1).
void BM_PolicyVsLru(benchmark::State& st) {
  const char* names[] = {"s3fifo", "cost", "lru"};
  const char* name = names[st.range(0)];
  const uint64_t capacity = CapacityBytes();
  Replay ours, peer;
  for (auto _ : st) {
    auto p = MakeEvictionPolicy(name);
    if (!p.ok()) {
      st.SkipWithError("unknown policy");
      return;
    }
    const Replay a = Run(**p, capacity);
    LruPolicy lru;
    const Replay b = Run(lru, capacity);
    ours.seconds += a.seconds;
    ours.calls += a.calls;
    ours.hits = a.hits;
    peer.seconds += b.seconds;
    peer.calls += b.calls;
    peer.hits = b.hits;
  }
  const double accesses = double(Trace().size()) * double(st.iterations());
  st.counters["accesses_per_s"] = accesses / ours.seconds;
  st.counters["calls_per_s"] = double(ours.calls) / ours.seconds;
  st.counters["lru_accesses_per_s"] = accesses / peer.seconds;
  st.counters["lru_calls_per_s"] = double(peer.calls) / peer.seconds;
  st.counters["ratio"] = peer.seconds / ours.seconds;  // > 1: faster than LRU
  st.counters["hit_ratio"] = double(ours.hits) / double(Trace().size());
  st.counters["lru_hit_ratio"] = double(peer.hits) / double(Trace().size());
  st.SetLabel(name);
}

double Min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double Max(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

BENCHMARK(BM_PolicyVsLru)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->Repetitions(5)
    ->ComputeStatistics("min", Min)
    ->ComputeStatistics("max", Max)
    ->DisplayAggregatesOnly(true);

}  // namespace
