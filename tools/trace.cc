#include "tools/trace.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <unordered_set>

#include "tools/sessions.h"

namespace strata::tools {
namespace {

using nlohmann::json;

}  // namespace

Status CheckTraceBlockSize(uint32_t b) {
  if (b == 0 || (kTraceBlockTokens % b != 0 && b % kTraceBlockTokens != 0))
    return Status::InvalidArgument(fmt::format(
        "block size {} cannot be mapped onto the trace's 512-token blocks: it must divide 512 "
        "(128, 256, 512) or be a multiple of it (1024, ...)",
        b));
  return Status::Ok();
}

namespace {

BlockKey Root(const TraceLoadOptions& o) {
  static constexpr char kSecret[] = "strata-compare";
  return RootKey(std::as_bytes(std::span(kSecret, sizeof(kSecret) - 1)), o.layout_fingerprint);
}

// The chained keys of one Mooncake request (see trace.h for the mapping).
std::vector<BlockKey> MooncakeKeys(const BlockKey& root, const std::vector<int64_t>& ids,
                                   int64_t input_tokens, uint32_t b) {
  std::vector<BlockKey> keys;
  BlockKey prev = root;
  const int64_t n = int64_t(ids.size());
  // Tokens the last id covers (1..512).
  const int64_t last_tokens = input_tokens - kTraceBlockTokens * (n - 1);
  if (b <= kTraceBlockTokens) {
    const int64_t per = kTraceBlockTokens / b;
    keys.reserve(size_t(n * per));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t sub = i + 1 < n ? per : last_tokens / b;
      for (int64_t j = 0; j < sub; ++j) {
        const int32_t step[3] = {int32_t(uint64_t(ids[size_t(i)]) >> 32),
                                 int32_t(uint64_t(ids[size_t(i)]) & 0xffffffffu), int32_t(j)};
        prev = ChainKey(prev, step);
        keys.push_back(prev);
      }
    }
  } else {
    const int64_t per = b / kTraceBlockTokens;
    // Ids that are complete 512-token blocks.
    const int64_t full = last_tokens == kTraceBlockTokens ? n : n - 1;
    std::vector<int32_t> step;
    for (int64_t k = 0; (k + 1) * per <= full; ++k) {
      step.clear();
      for (int64_t i = k * per; i < (k + 1) * per; ++i) {
        step.push_back(int32_t(uint64_t(ids[size_t(i)]) >> 32));
        step.push_back(int32_t(uint64_t(ids[size_t(i)]) & 0xffffffffu));
      }
      prev = ChainKey(prev, step);
      keys.push_back(prev);
    }
  }
  return keys;
}

// A non-negative number field of a line's object; integer unless `fractional`.
Result<double> Field(const json& j, const char* field, const std::string& where,
                     bool fractional = false) {
  auto it = j.find(field);
  if (it == j.end())
    return Status::InvalidArgument(where + fmt::format("missing field '{}'", field));
  if (!it->is_number())
    return Status::InvalidArgument(where +
                                   fmt::format("{}: {} is not a number", field, it->dump()));
  const double v = it->get<double>();
  if (v < 0)
    return Status::InvalidArgument(where + fmt::format("{}: {} is negative", field, it->dump()));
  if (!it->is_number_integer() && !fractional)
    return Status::InvalidArgument(where +
                                   fmt::format("{}: {} is not an integer", field, it->dump()));
  return v;
}

}  // namespace

Result<Trace> ParseMooncakeTrace(const std::string& text, const std::string& name,
                                 const TraceLoadOptions& o) {
  STRATA_RETURN_IF_ERROR(CheckTraceBlockSize(o.block_size));
  Trace t;
  t.name = name;
  t.block_size = o.block_size;
  const BlockKey root = Root(o);
  std::istringstream in(text);
  std::string line;
  int64_t line_no = 0;
  double prev_ts = -1;
  int64_t prev_line = 0;
  std::vector<int64_t> ids;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines
    const std::string where = fmt::format("{}:{}: ", name, line_no);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      return Status::InvalidArgument(where + "not JSON: " + e.what());
    }
    if (!j.is_object()) return Status::InvalidArgument(where + "not a JSON object");
    STRATA_ASSIGN_OR_RETURN(const double ts, Field(j, "timestamp", where, true));
    STRATA_ASSIGN_OR_RETURN(const double input_d, Field(j, "input_length", where));
    STRATA_ASSIGN_OR_RETURN(const double output_d, Field(j, "output_length", where));
    const int64_t input = int64_t(input_d), output = int64_t(output_d);
    if (input == 0) return Status::InvalidArgument(where + "input_length: must be positive");
    if (ts < prev_ts)
      return Status::InvalidArgument(
          where + fmt::format("timestamp: {} is before line {}'s {} (timestamps must not go "
                              "backwards)",
                              j["timestamp"].dump(), prev_line, prev_ts));
    prev_ts = ts;
    prev_line = line_no;
    auto h = j.find("hash_ids");
    if (h == j.end()) return Status::InvalidArgument(where + "missing field 'hash_ids'");
    if (!h->is_array()) return Status::InvalidArgument(where + "hash_ids: not an array");
    ids.clear();
    for (const json& id : *h) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0)
        return Status::InvalidArgument(where + "hash_ids: " + id.dump() +
                                       " is not a non-negative integer");
      ids.push_back(id.get<int64_t>());
    }
    const int64_t want = (input + kTraceBlockTokens - 1) / kTraceBlockTokens;
    if (int64_t(ids.size()) != want)
      return Status::InvalidArgument(
          where + fmt::format("hash_ids: {} ids for input_length {}; 512-token blocks need "
                              "ceil({}/512) = {}",
                              ids.size(), input, input, want));
    const uint64_t ms = uint64_t(ts);
    if (o.window_end_ms && (ms < o.window_begin_ms || ms >= o.window_end_ms)) continue;
    TraceRequest r;
    r.arrival_us = uint64_t(std::llround(ts * 1000.0));
    r.input_tokens = input;
    r.output_tokens = output;
    r.keys = MooncakeKeys(root, ids, input, o.block_size);
    t.requests.push_back(std::move(r));
    if (o.max_requests && t.requests.size() >= o.max_requests) break;
  }
  if (t.requests.empty())
    return Status::InvalidArgument(name + ": no requests" +
                                   (o.window_end_ms ? " in the chosen window" : ""));
  return t;
}

Result<Trace> SessionTrace(const std::string& text, const std::string& name,
                           const TraceLoadOptions& o) {
  if (o.block_size == 0 || o.block_size % 128)
    return Status::InvalidArgument(fmt::format("block size {}: a multiple of 128", o.block_size));
  STRATA_ASSIGN_OR_RETURN(Workload w, ParseWorkload(text, o.vocab, name));
  Trace t;
  t.name = name;
  t.block_size = o.block_size;
  const BlockKey root = Root(o);
  // contexts[s][k]: session s's tokens after its turn k (prompt + stand-in output).
  std::vector<std::vector<std::vector<int32_t>>> contexts(w.sessions.size());
  for (size_t s = 0; s < w.sessions.size(); ++s) {
    const SessionSpec& spec = w.sessions[s];
    std::vector<int32_t> ctx =
        spec.branch_of >= 0 ? contexts[size_t(spec.branch_of)][size_t(spec.branch_turn)] : w.system;
    for (size_t k = 0; k < spec.turns.size(); ++k) {
      const SessionTurn& turn = spec.turns[k];
      ctx.insert(ctx.end(), turn.tokens.begin(), turn.tokens.end());
      TraceRequest r;
      r.arrival_us = uint64_t(std::llround(double(t.requests.size()) * o.session_spacing_ms * 1e3));
      r.input_tokens = int64_t(ctx.size());
      r.output_tokens = turn.max_new;
      r.keys = ChainBlockKeys(root, ctx, o.block_size);
      if (r.input_tokens > 0) t.requests.push_back(std::move(r));
      // The engine's output, stood in for by tokens seeded by (session, turn).
      std::mt19937_64 rng(s * 1000003 + k);
      for (int i = 0; i < turn.max_new; ++i) ctx.push_back(int32_t(rng() % uint64_t(o.vocab)));
      contexts[s].push_back(ctx);
      if (o.max_requests && t.requests.size() >= o.max_requests) return t;
    }
  }
  if (t.requests.empty()) return Status::InvalidArgument(name + ": no requests");
  return t;
}

Result<Trace> LoadTrace(const std::string& path, const TraceLoadOptions& o) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open trace " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const bool jsonl = path.size() >= 6 && path.substr(path.size() - 6) == ".jsonl";
  return jsonl ? ParseMooncakeTrace(ss.str(), path, o) : SessionTrace(ss.str(), path, o);
}

TraceSummary Summarize(const Trace& t) {
  TraceSummary s;
  s.requests = t.requests.size();
  std::unordered_set<BlockKey, BlockKeyHash> seen;
  for (const TraceRequest& r : t.requests) {
    s.input_tokens += uint64_t(r.input_tokens);
    s.output_tokens += uint64_t(r.output_tokens);
    const int64_t usable = UsableBlocks(r.input_tokens, int64_t(r.keys.size()), t.block_size);
    int64_t hit = 0;
    while (hit < usable && seen.count(r.keys[size_t(hit)])) ++hit;
    s.ceiling_hit_tokens += uint64_t(hit) * t.block_size;
    for (const BlockKey& k : r.keys) seen.insert(k);
  }
  s.distinct_blocks = seen.size();
  s.footprint_tokens = s.distinct_blocks * t.block_size;
  s.ceiling_hit_rate = s.input_tokens ? double(s.ceiling_hit_tokens) / double(s.input_tokens) : 0;
  if (!t.requests.empty())
    s.span_s = double(t.requests.back().arrival_us - t.requests.front().arrival_us) / 1e6;
  return s;
}

std::string TraceSummary::ToString() const {
  return fmt::format(
      "{} requests over {:.1f} s; {} input tokens, {} output tokens; {} distinct blocks "
      "({:.2f}M tokens of footprint); unlimited-cache hit ceiling {:.2f}% ({} tokens)",
      requests, span_s, input_tokens, output_tokens, distinct_blocks, footprint_tokens / 1e6,
      100 * ceiling_hit_rate, ceiling_hit_tokens);
}

}  // namespace strata::tools
