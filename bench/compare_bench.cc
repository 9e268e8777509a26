#include "bench/compare_bench.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

namespace strata::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Spread {
  double median = 0, min = 0, max = 0;
};

Spread Of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Spread s;
  if (v.empty()) return s;
  s.min = v.front(), s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  return s;
}

nlohmann::json J(const Spread& s) { return {{"median", s.median}, {"min", s.min}, {"max", s.max}}; }

}  // namespace

Status RunCompareBench(const CompareBenchOptions& o,
                       const std::function<void(const std::string&)>& emit) {
  if (o.rounds < 1) return Status::InvalidArgument("--rounds: at least 1");
  STRATA_ASSIGN_OR_RETURN(auto sweep, tools::Sweep::Make(o.sweep));
  for (size_t m = 0; m < sweep->models(); ++m) {
    const auto& trace = sweep->trace(m);
    const auto& summary = sweep->summary(m);
    const auto configs = sweep->configs(m);
    uint64_t blocks = 0;
    for (const auto& q : trace.requests) blocks += q.keys.size();
    // seconds[c][round]; the peer in slot configs.size().
    std::vector<std::vector<double>> seconds(configs.size() + 1);
    std::vector<uint64_t> ops(configs.size());
    uint64_t sink = 0;
    for (int round = 0; round < o.rounds; ++round) {
      for (size_t c = 0; c <= configs.size(); ++c) {
        const auto t0 = Clock::now();
        if (c == configs.size()) {
          sink += tools::Summarize(trace).ceiling_hit_tokens;
        } else {
          STRATA_ASSIGN_OR_RETURN(auto r,
                                  tools::Replay(trace, summary, sweep->setup(m), configs[c]));
          ops[c] = r.block_ops;
          sink += r.saved_tokens;
        }
        seconds[c].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      }
    }
    const Spread peer = Of(seconds.back());
    for (size_t c = 0; c < configs.size(); ++c) {
      const Spread s = Of(seconds[c]);
      const double n = double(trace.requests.size());
      nlohmann::json j = {{"bench", "compare"},
                          {"model", sweep->setup(m).model},
                          {"config", configs[c].Label()},
                          {"policy", configs[c].policy.ToString()},
                          {"requests", trace.requests.size()},
                          {"block_ops", ops[c]},
                          {"rounds", o.rounds},
                          {"seconds", J(s)},
                          {"requests_per_s", J({n / s.median, n / s.max, n / s.min})},
                          {"block_ops_per_s", J({double(ops[c]) / s.median, double(ops[c]) / s.max,
                                                 double(ops[c]) / s.min})},
                          {"peer", "unlimited hash-set replay (the hit ceiling)"},
                          {"peer_seconds", J(peer)},
                          {"peer_blocks_per_s", blocks / peer.median},
                          {"time_vs_peer", s.median / peer.median}};
      emit(j.dump());
    }
    (void)sink;
  }
  return Status::Ok();
}

}  // namespace strata::bench
