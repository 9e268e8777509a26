// The bit-exact rehydration check, shared by every store the engine can run on (the in-process
// store in tests/engine/session_test.cc, strata-server through strata::Client in
// tests/engine/server_rehydrate_test.cc): an agent turn, then the next turn restores its prefix
// by one plan from one tier, and its tokens, logits and final state equal a cold run's bit for
// bit.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/session.h"
#include "tests/testing/tiny_model.h"

namespace strata::testing {

inline bool SameFloats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

inline void ExpectSameState(const engine::RequestState& a, const engine::RequestState& b) {
  ASSERT_EQ(a.pos, b.pos);
  EXPECT_EQ(a.mtp_pos, b.mtp_pos);
  EXPECT_TRUE(SameFloats(a.mtp_hidden, b.mtp_hidden));
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t l = 0; l < a.layers.size(); ++l) {
    const engine::LayerState &x = a.layers[l], &y = b.layers[l];
    EXPECT_EQ(x.swa_valid_from, y.swa_valid_from) << l;
    EXPECT_TRUE(SameFloats(x.swa, y.swa)) << "layer " << l << " swa";
    EXPECT_TRUE(SameFloats(x.entries, y.entries)) << "layer " << l << " entries";
    EXPECT_TRUE(SameFloats(x.index_keys, y.index_keys)) << "layer " << l << " index keys";
    EXPECT_TRUE(SameFloats(x.comp.kv, y.comp.kv) && SameFloats(x.comp.score, y.comp.score))
        << "layer " << l << " carry";
    EXPECT_TRUE(SameFloats(x.index_comp.kv, y.index_comp.kv) &&
                SameFloats(x.index_comp.score, y.index_comp.score))
        << "layer " << l << " indexer carry";
  }
}

// Runs `prompt` cold and compares tokens, every logit vector and the final state with `r`/`st`.
inline void ExpectSameAsCold(engine::CachedEngine& e, std::span<const int32_t> prompt, int max_new,
                             const engine::TurnResult& r, const engine::RequestState& st) {
  engine::RequestState cold_state;
  auto cold = e.RunCold(prompt, max_new, &cold_state);
  ASSERT_TRUE(cold.ok()) << cold.status().ToString();
  EXPECT_EQ(r.output, cold->output);
  ASSERT_EQ(r.logits.size(), cold->logits.size());
  for (size_t i = 0; i < r.logits.size(); ++i)
    EXPECT_TRUE(SameFloats(r.logits[i], cold->logits[i])) << i;
  ExpectSameState(st, cold_state);
}

// An engine on `store` with the SWA `policy` and a fixed prefill cost (plan choices do not
// depend on the machine).
inline std::unique_ptr<engine::CachedEngine> MakeTestEngine(
    Store* store, const std::string& policy, const std::string& model = "v4-tiny.json") {
  engine::EngineOptions o;
  auto p = engine::SwaPolicy::Parse(policy, 256);
  EXPECT_TRUE(p.ok());
  o.policy = *p;
  o.cost.prefill_s_per_token = 5e-4;
  auto e = engine::CachedEngine::Create(TinyModel(model), store, o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return std::move(*e);
}

// Where the restored bytes come from: DRAM, NVMe after DRAM was filled with other objects, or
// NVMe after the store was flushed, closed and opened again (a restart).
enum class TierCase { kHost, kNvme, kReopen };

// A store for the check, and what the check does to it between the turns.
class RehydrateHarness {
 public:
  virtual ~RehydrateHarness() = default;
  virtual Store* active() = 0;
  // Flushes, then fills DRAM with other objects so the engine's are served from NVMe.
  virtual void PushToNvme() = 0;
  // Flushes and restarts the store; active() may change.
  virtual void Reopen() = 0;
};

struct RehydrateParam {
  const char* policy;
  engine::RestorePlan::Kind expect;
  TierCase tier;
  const char* model;
};

// Every policy from every tier, on a model whose first layer is CSA and on one whose first is HCA.
inline std::vector<RehydrateParam> RehydrateCases() {
  using K = engine::RestorePlan;
  return {
      {"full", K::kFull, TierCase::kHost, "v4-tiny.json"},
      {"full", K::kFull, TierCase::kNvme, "v4-tiny.json"},
      {"full", K::kFull, TierCase::kReopen, "v4-tiny.json"},
      {"checkpoint:512", K::kCheckpoint, TierCase::kHost, "v4-tiny.json"},
      {"checkpoint:512", K::kCheckpoint, TierCase::kNvme, "v4-tiny.json"},
      {"checkpoint", K::kCheckpoint, TierCase::kReopen, "v4-tiny.json"},
      {"recompute", K::kRecompute, TierCase::kHost, "v4-tiny.json"},
      {"recompute", K::kRecompute, TierCase::kNvme, "v4-tiny.json"},
      {"recompute", K::kRecompute, TierCase::kReopen, "v4-tiny.json"},
      {"full", K::kFull, TierCase::kHost, "v4-tiny-hca.json"},
      {"checkpoint", K::kCheckpoint, TierCase::kNvme, "v4-tiny-hca.json"},
      {"recompute", K::kRecompute, TierCase::kReopen, "v4-tiny-hca.json"},
  };
}

inline std::string RehydrateCaseName(const ::testing::TestParamInfo<RehydrateParam>& info) {
  std::string name = info.param.policy;
  for (char& c : name)
    if (c == ':') c = '_';
  name += info.param.tier == TierCase::kHost   ? "_host"
          : info.param.tier == TierCase::kNvme ? "_nvme"
                                               : "_reopen";
  if (std::string(info.param.model) != "v4-tiny.json") name += "_hca_first";
  return name;
}

// An agent turn, then the next turn (previous context + output + new tokens) restores the
// prefix by `p.expect` from `p.tier`: bit-exact against a cold run of the second turn.
inline void CheckNextTurnBitExact(RehydrateHarness& h, const RehydrateParam& p) {
  using engine::RestorePlan;
  auto e = MakeTestEngine(h.active(), p.policy, p.model);
  const std::vector<int32_t> turn1 = RandomTokens(1100, 1);
  auto r1 = e->RunTurn(turn1, {.max_new = 3});
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(r1->plan.kind, RestorePlan::kCold);
  ASSERT_TRUE(e->WaitOffload().ok());
  if (p.tier == TierCase::kNvme) {
    ASSERT_NO_FATAL_FAILURE(h.PushToNvme());
  }
  if (p.tier == TierCase::kReopen) {
    e.reset();
    ASSERT_NO_FATAL_FAILURE(h.Reopen());
    e = MakeTestEngine(h.active(), p.policy, p.model);
  }
  std::vector<int32_t> turn2 = turn1;
  turn2.insert(turn2.end(), r1->output.begin(), r1->output.end());
  const auto extra = RandomTokens(20, 2);  // short: the final rings still hold restored positions
  turn2.insert(turn2.end(), extra.begin(), extra.end());
  engine::RequestState st;
  engine::TurnOptions o;
  o.max_new = 4;
  o.force = &p.expect;
  o.final_state = &st;
  auto r2 = e->RunTurn(turn2, o);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->prefix_hit_tokens, 1024);
  EXPECT_EQ(r2->plan.kind, p.expect) << r2->plan.ToString();
  EXPECT_EQ(r2->fallbacks, 0);
  if (p.tier == TierCase::kHost) {
    EXPECT_GT(r2->read_bytes[size_t(Tier::kHost)], 0u);
    EXPECT_EQ(r2->read_bytes[size_t(Tier::kNvme)], 0u);
  } else {
    EXPECT_GT(r2->read_bytes[size_t(Tier::kNvme)], 0u);
  }
  // Tokens computed after the restore: the recompute window or from the checkpoint, then the
  // prompt's tail.
  EXPECT_EQ(r2->prefilled_tokens, int64_t(turn2.size()) - 1024);
  if (p.expect == RestorePlan::kRecompute) {
    EXPECT_GT(r2->plan.recompute_tokens, 500);
  }
  ExpectSameAsCold(*e, turn2, 4, *r2, st);
}

}  // namespace strata::testing
