// Agent-session workloads for `strata run`: each session is a sequence of turns; a turn's prompt
// is the previous turn's prompt and output plus the turn's new tokens (tool results, user
// messages). The first turn starts with the shared system prompt (or a branch point of another
// session).
//
// File format (JSON):
//   {"vocab": 512,                               // optional: token ids must be below it
//    "system": {"tokens": [...]} | {"random": N, "seed": S},
//    "sessions": [
//      {"name": "s0",
//       "branch_of": "s1", "branch_turn": 2,      // optional: start from s1's context after
//                                                 // its turn 2 (not from the system prompt)
//       "turns": [{"tokens": [...]} | {"random": N, "seed": S}, "max_new": 16}, ...]}]}
// Thread safety: plain data.
#pragma once

#include <string>
#include <vector>

#include "strata/status.h"

namespace strata::tools {

struct SessionTurn {
  std::vector<int32_t> tokens;  // new tokens of this turn
  int max_new = 16;
};

struct SessionSpec {
  std::string name;
  int branch_of = -1;    // index of the session this one branches from, or -1
  int branch_turn = -1;  // after which turn of it
  std::vector<SessionTurn> turns;
};

struct Workload {
  std::vector<int32_t> system;
  std::vector<SessionSpec> sessions;
};

// Parses and checks a workload (token ids below `vocab`; branches refer to earlier sessions).
Result<Workload> ParseWorkload(const std::string& json_text, int vocab, const std::string& name);
Result<Workload> LoadWorkload(const std::string& path, int vocab);

struct GenOptions {
  int sessions = 4, turns = 4;
  int system_tokens = 2048;
  int min_new = 200, max_new_tokens = 400;  // new tokens per turn
  int output_tokens = 16;                   // max_new per turn
  int branch_every = 0;  // every k-th session branches from the previous one (0: none)
  int vocab = 512;
  uint64_t seed = 1;
};

// A workload as JSON (random token specs with seeds, so files stay small).
std::string GenerateWorkloadJson(const GenOptions& o);

}  // namespace strata::tools
