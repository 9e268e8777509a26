#include "tools/sessions.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

namespace strata::tools {
namespace {

using nlohmann::json;

// {"tokens": [...]} or {"random": N, "seed": S}.
Result<std::vector<int32_t>> Tokens(const json& j, int vocab, const std::string& where) {
  if (!j.is_object()) return Status::InvalidArgument(where + ": expected an object");
  std::vector<int32_t> out;
  if (j.contains("tokens")) {
    if (!j["tokens"].is_array()) return Status::InvalidArgument(where + ".tokens: not an array");
    for (const json& t : j["tokens"]) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= vocab)
        return Status::InvalidArgument(where + ".tokens: " + t.dump() +
                                       " is not a token id below " + std::to_string(vocab));
      out.push_back(t.get<int32_t>());
    }
  } else if (j.contains("random")) {
    if (!j["random"].is_number_integer() || j["random"].get<int64_t>() < 0 ||
        j["random"].get<int64_t>() > (1 << 24))
      return Status::InvalidArgument(where + ".random: a count in [0, 16M]");
    const uint64_t seed = j.value("seed", uint64_t{0});
    std::mt19937_64 rng(seed);
    out.resize(size_t(j["random"].get<int64_t>()));
    for (auto& t : out) t = int32_t(rng() % uint64_t(vocab));
  } else {
    return Status::InvalidArgument(where + ": needs \"tokens\" or \"random\"");
  }
  return out;
}

}  // namespace

Result<Workload> ParseWorkload(const std::string& text, int vocab, const std::string& name) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(name + ": not JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("sessions") || !j["sessions"].is_array())
    return Status::InvalidArgument(name + ": needs a \"sessions\" array");
  if (j.contains("vocab") && j["vocab"].is_number_integer() && j["vocab"].get<int>() > vocab)
    return Status::InvalidArgument(name + ": written for a vocabulary of " + j["vocab"].dump() +
                                   " tokens; the model has " + std::to_string(vocab));
  Workload w;
  if (j.contains("system")) {
    STRATA_ASSIGN_OR_RETURN(w.system, Tokens(j["system"], vocab, name + ".system"));
  }
  std::map<std::string, int> index;
  for (size_t i = 0; i < j["sessions"].size(); ++i) {
    const json& s = j["sessions"][i];
    const std::string where = name + ".sessions[" + std::to_string(i) + "]";
    if (!s.is_object() || !s.contains("turns") || !s["turns"].is_array() || s["turns"].empty())
      return Status::InvalidArgument(where + ": needs a non-empty \"turns\" array");
    SessionSpec spec;
    spec.name = s.value("name", "s" + std::to_string(i));
    if (s.contains("branch_of")) {
      const std::string of = s["branch_of"].is_string() ? s["branch_of"].get<std::string>() : "";
      auto it = index.find(of);
      if (it == index.end())
        return Status::InvalidArgument(where + ".branch_of: no earlier session named '" + of + "'");
      spec.branch_of = it->second;
      spec.branch_turn = s.value("branch_turn", 0);
      if (spec.branch_turn < 0 ||
          spec.branch_turn >= int(w.sessions[size_t(spec.branch_of)].turns.size()))
        return Status::InvalidArgument(where + ".branch_turn: outside the turns of '" + of + "'");
    }
    for (size_t t = 0; t < s["turns"].size(); ++t) {
      const json& tj = s["turns"][t];
      const std::string tw = where + ".turns[" + std::to_string(t) + "]";
      SessionTurn turn;
      STRATA_ASSIGN_OR_RETURN(turn.tokens, Tokens(tj, vocab, tw));
      if (tj.is_object() && tj.contains("max_new")) {
        if (!tj["max_new"].is_number_integer() || tj["max_new"].get<int>() < 1)
          return Status::InvalidArgument(tw + ".max_new: a positive integer");
        turn.max_new = tj["max_new"].get<int>();
      }
      spec.turns.push_back(std::move(turn));
    }
    if (spec.turns.front().tokens.empty() && w.system.empty() && spec.branch_of < 0)
      return Status::InvalidArgument(where + ": the first turn has no tokens");
    index[spec.name] = int(i);
    w.sessions.push_back(std::move(spec));
  }
  return w;
}

Result<Workload> LoadWorkload(const std::string& path, int vocab) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot open sessions file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseWorkload(ss.str(), vocab, path);
}

std::string GenerateWorkloadJson(const GenOptions& o) {
  json j;
  j["vocab"] = o.vocab;
  j["system"] = {{"random", o.system_tokens}, {"seed", o.seed}};
  std::mt19937_64 rng(o.seed);
  for (int s = 0; s < o.sessions; ++s) {
    json sj;
    sj["name"] = "s" + std::to_string(s);
    if (o.branch_every > 0 && s > 0 && s % o.branch_every == 0) {
      sj["branch_of"] = "s" + std::to_string(s - 1);
      sj["branch_turn"] = int(rng() % uint64_t(o.turns));
    }
    for (int t = 0; t < o.turns; ++t) {
      const int span = std::max(0, o.max_new_tokens - o.min_new);
      const int n = o.min_new + (span ? int(rng() % uint64_t(span + 1)) : 0);
      sj["turns"].push_back({{"random", n},
                             {"seed", o.seed * 1000003 + uint64_t(s) * 1009 + uint64_t(t)},
                             {"max_new", o.output_tokens}});
    }
    j["sessions"].push_back(sj);
  }
  return j.dump(1) + "\n";
}

}  // namespace strata::tools
