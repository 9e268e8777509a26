// Request traces for `strata compare`: loaded, validated and mapped onto strata's block keys.
//
// Two input formats:
//
// 1. Mooncake JSONL (one request per line, as in the shared traces/ folder):
//      {"timestamp": 0, "input_length": 6758, "output_length": 500, "hash_ids": [0, 1, ...]}
//    `timestamp` is the arrival in milliseconds (non-decreasing), `hash_ids` name the prompt's
//    512-token blocks, the last one covering the partial rest (so there are exactly
//    ceil(input_length / 512) of them); equal ids mean an equal prefix up to and including that
//    block.
//
//    Mapping to strata blocks of B tokens (B from the layout; B must divide 512 or be a multiple
//    of it, anything else is rejected): block keys are chained from the layout's root key with
//    strata's own hash (ChainKey), each step hashing trace ids instead of tokens:
//      - B <= 512: the 512-token block with id h gives 512/B keys, step j hashing (h, j);
//      - B > 512: one key per B/512 consecutive ids, hashing all of them.
//    The partial last block (r = input_length - 512 * (n - 1) tokens, 0 < r <= 512) yields its
//    floor(r / B) complete B-blocks (B <= 512), keyed by its own id, so they match only requests
//    that carry the same partial id; its remaining r mod B tokens are never cached, they are
//    prefilled fresh like any tokens after the last complete block. With B > 512, a strata block
//    that would include a partial id is not formed. The trace cannot say that a partial block's
//    tokens begin a later request's full block, so such a later request does not reuse them:
//    the trace's own 512-token granularity bounds what it can show.
//
// 2. strata session files (configs/sessions/*.json, tools/sessions.h): each turn's prompt is the
//    session's context so far plus the turn's tokens; the engine's generated tokens are stood in
//    for by `max_new` deterministic pseudo-random tokens per turn (the same for a session and all
//    its branches), so the next turn's prompt extends the previous one exactly as in `strata run`.
//    Keys are ChainBlockKeys over the real tokens. Requests arrive session by session,
//    `session_spacing_ms` apart.
//
// Thread safety: plain data and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "strata/keys.h"
#include "strata/status.h"

namespace strata::tools {

// The trace's own block size: Mooncake hash ids name 512-token blocks.
inline constexpr int64_t kTraceBlockTokens = 512;

struct TraceRequest {
  uint64_t arrival_us = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  // Keys of the prompt's complete, cacheable strata blocks, in order (see the mapping above).
  std::vector<BlockKey> keys;
};

struct Trace {
  std::string name;
  uint32_t block_size = 0;
  std::vector<TraceRequest> requests;
};

struct TraceLoadOptions {
  uint32_t block_size = 256;
  uint64_t layout_fingerprint = 0;  // keys are rooted in the layout, as in the engine
  int vocab = 129280;               // session files: token ids below it
  double session_spacing_ms = 1000;
  size_t max_requests = 0;                          // 0: all; else the first N
  uint64_t window_begin_ms = 0, window_end_ms = 0;  // end 0: no window (Mooncake timestamps)
};

// What the trace holds, independent of any cache size.
struct TraceSummary {
  uint64_t requests = 0;
  uint64_t distinct_blocks = 0;   // distinct strata block keys
  uint64_t footprint_tokens = 0;  // distinct_blocks x B: what an unlimited cache would hold
  uint64_t input_tokens = 0, output_tokens = 0;
  // Tokens of each prompt covered by blocks some earlier request also had (the engine's rule:
  // at most the blocks before the prompt's last token), summed: an unlimited cache's hits.
  uint64_t ceiling_hit_tokens = 0;
  double ceiling_hit_rate = 0;  // ceiling_hit_tokens / input_tokens
  double span_s = 0;            // last arrival - first arrival
  std::string ToString() const;
};

// Blocks a prompt of `input_tokens` may restore: every complete block before its last token
// (the last token must be computed for its logits), as engine/session.cc does.
inline int64_t UsableBlocks(int64_t input_tokens, int64_t keys, uint32_t block_size) {
  const int64_t u = (input_tokens - 1) / int64_t(block_size);
  return u < keys ? u : keys;
}

// Ok when strata blocks of `block_size` tokens map onto the trace's 512-token blocks.
Status CheckTraceBlockSize(uint32_t block_size);

// Mooncake JSONL from text (`name` prefixes errors: "name:LINE: field: problem").
Result<Trace> ParseMooncakeTrace(const std::string& text, const std::string& name,
                                 const TraceLoadOptions& options);
// By file: *.jsonl is Mooncake, *.json a strata session file.
Result<Trace> LoadTrace(const std::string& path, const TraceLoadOptions& options);
Result<Trace> SessionTrace(const std::string& json_text, const std::string& name,
                           const TraceLoadOptions& options);

TraceSummary Summarize(const Trace& trace);

}  // namespace strata::tools
