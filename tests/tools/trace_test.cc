// Trace loading for `strata compare`: validation names the line and field, the mapping of
// 512-token trace blocks onto strata blocks (partial blocks included), the unlimited-cache hit
// ceiling on a hand-made trace.
#include "tools/trace.h"

#include <gtest/gtest.h>

#include <set>

namespace strata::tools {
namespace {

TraceLoadOptions Opts(uint32_t block_size = 256) {
  TraceLoadOptions o;
  o.block_size = block_size;
  o.layout_fingerprint = 42;
  return o;
}

// The error for a trace whose third line is `bad` (lines 1-2 are fine).
std::string ErrorOnLine3(const std::string& bad) {
  const std::string text =
      "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 5, \"hash_ids\": [1, 2]}\n"
      "{\"timestamp\": 10, \"input_length\": 512, \"output_length\": 5, \"hash_ids\": [1]}\n" +
      bad + "\n";
  auto t = ParseMooncakeTrace(text, "t.jsonl", Opts());
  EXPECT_FALSE(t.ok());
  return t.ok() ? "" : t.status().message();
}

TEST(TraceTest, ValidationErrorsNameTheLineAndField) {
  auto has = [](const std::string& msg, const std::string& what) {
    EXPECT_NE(msg.find("t.jsonl:3: "), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  };
  has(ErrorOnLine3("{\"timestamp\": 20, \"input_length\": "), "not JSON");
  has(ErrorOnLine3("[1, 2]"), "not a JSON object");
  has(ErrorOnLine3("{\"timestamp\": 20, \"output_length\": 1, \"hash_ids\": [1]}"),
      "missing field 'input_length'");
  has(ErrorOnLine3("{\"timestamp\": 20, \"input_length\": 10, \"output_length\": 1}"),
      "missing field 'hash_ids'");
  has(ErrorOnLine3(
          "{\"timestamp\": 20, \"input_length\": -5, \"output_length\": 1, \"hash_ids\": [1]}"),
      "input_length: -5 is negative");
  has(ErrorOnLine3(
          "{\"timestamp\": 20, \"input_length\": 1.5, \"output_length\": 1, \"hash_ids\": [1]}"),
      "input_length: 1.5 is not an integer");
  has(ErrorOnLine3(
          "{\"timestamp\": 20, \"input_length\": 0, \"output_length\": 1, \"hash_ids\": []}"),
      "input_length: must be positive");
  has(ErrorOnLine3("{\"timestamp\": 20, \"input_length\": 1100, \"output_length\": 1, "
                   "\"hash_ids\": [1, 2]}"),
      "hash_ids: 2 ids for input_length 1100");
  has(ErrorOnLine3(
          "{\"timestamp\": 20, \"input_length\": 100, \"output_length\": 1, \"hash_ids\": [-1]}"),
      "hash_ids: -1 is not a non-negative integer");
  has(ErrorOnLine3(
          "{\"timestamp\": 5, \"input_length\": 100, \"output_length\": 1, \"hash_ids\": [1]}"),
      "timestamp: 5 is before line 2's 10");
  has(ErrorOnLine3(
          "{\"timestamp\": \"x\", \"input_length\": 100, \"output_length\": 1, \"hash_ids\": [1]}"),
      "timestamp: \"x\" is not a number");
}

TEST(TraceTest, EmptyTraceAndBadBlockSizeAreErrors) {
  EXPECT_FALSE(ParseMooncakeTrace("\n\n", "e.jsonl", Opts()).ok());
  const std::string one =
      "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 5, \"hash_ids\": [1, 2]}\n";
  auto bad = ParseMooncakeTrace(one, "t", Opts(384));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("must divide 512"), std::string::npos);
  for (uint32_t b : {128u, 256u, 512u, 1024u})
    EXPECT_TRUE(ParseMooncakeTrace(one, "t", Opts(b)).ok());
}

Trace Parse(const std::string& text, uint32_t block_size) {
  auto t = ParseMooncakeTrace(text, "t", Opts(block_size));
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : Trace{};
}

TEST(TraceTest, BlockMappingAndPartialBlocks) {
  // 1024 tokens = ids 1, 2 complete; 1000 tokens = id 1 complete + id 3 covering 488 tokens;
  // 1300 tokens = ids 1, 2 complete + id 4 covering 276 tokens.
  const std::string text =
      "{\"timestamp\": 0, \"input_length\": 1024, \"output_length\": 1, \"hash_ids\": [1, 2]}\n"
      "{\"timestamp\": 1, \"input_length\": 1000, \"output_length\": 1, \"hash_ids\": [1, 3]}\n"
      "{\"timestamp\": 2, \"input_length\": 1300, \"output_length\": 1, \"hash_ids\": [1, 2, 4]}\n"
      "{\"timestamp\": 3, \"input_length\": 1024, \"output_length\": 1, \"hash_ids\": [5, 2]}\n";
  {
    const Trace t = Parse(text, 256);  // 2 strata blocks per trace block
    ASSERT_EQ(t.requests.size(), 4u);
    const auto& a = t.requests[0].keys;
    const auto& b = t.requests[1].keys;
    const auto& c = t.requests[2].keys;
    const auto& d = t.requests[3].keys;
    ASSERT_EQ(a.size(), 4u);
    ASSERT_EQ(b.size(), 3u);  // 2 + floor(488 / 256)
    ASSERT_EQ(c.size(), 5u);  // 4 + floor(276 / 256)
    ASSERT_EQ(d.size(), 4u);
    EXPECT_EQ(a[0], b[0]);  // equal id: equal prefix
    EXPECT_EQ(a[1], b[1]);
    EXPECT_NE(a[2], b[2]);  // ids 2 and 3 differ
    for (int i = 0; i < 4; ++i) EXPECT_EQ(a[size_t(i)], c[size_t(i)]);
    EXPECT_NE(a[0], a[1]);  // the two halves of one trace block are different blocks
    // The same id after a different prefix is a different block (keys are chained).
    EXPECT_NE(a[2], d[2]);
    EXPECT_NE(a[3], d[3]);
    std::set<BlockKey> all(a.begin(), a.end());
    EXPECT_EQ(all.size(), 4u);
  }
  {
    const Trace t = Parse(text, 128);
    EXPECT_EQ(t.requests[0].keys.size(), 8u);
    EXPECT_EQ(t.requests[1].keys.size(), 7u);   // 4 + floor(488 / 128)
    EXPECT_EQ(t.requests[2].keys.size(), 10u);  // 8 + floor(276 / 128)
  }
  {
    const Trace t = Parse(text, 512);  // one key per complete trace block
    EXPECT_EQ(t.requests[0].keys.size(), 2u);
    EXPECT_EQ(t.requests[1].keys.size(), 1u);
    EXPECT_EQ(t.requests[2].keys.size(), 2u);
  }
  {
    const Trace t = Parse(text, 1024);  // two complete trace blocks per key
    EXPECT_EQ(t.requests[0].keys.size(), 1u);
    EXPECT_EQ(t.requests[1].keys.size(), 0u);  // id 3 is partial: no complete 1024-block
    EXPECT_EQ(t.requests[2].keys.size(), 1u);
    EXPECT_EQ(t.requests[0].keys[0], t.requests[2].keys[0]);
  }
  // Keys depend on the layout fingerprint (as the engine's do).
  TraceLoadOptions other = Opts();
  other.layout_fingerprint = 43;
  auto t2 = ParseMooncakeTrace(text, "t", other);
  ASSERT_TRUE(t2.ok());
  EXPECT_NE(t2->requests[0].keys[0], Parse(text, 256).requests[0].keys[0]);
}

// The hand-made trace of the ceiling test (B = 256):
//   r1 1024 tokens [1,2]    4 keys, 3 usable (the last token's block stays), no hit
//   r2 1300 tokens [1,2,3]  5 keys (id 3 covers 276: one block), 5 usable, hits r1's 4 = 1024
//   r3  600 tokens [1,4]    2 keys (id 4 covers 88: none), 2 usable, hits 2 = 512
//   r4  512 tokens [5]      2 keys, 1 usable, no hit
// input 3436, hits 1536, distinct blocks 4 + 1 + 0 + 2 = 7, span 30 ms.
const char kTinyTrace[] =
    "{\"timestamp\": 0, \"input_length\": 1024, \"output_length\": 10, \"hash_ids\": [1, 2]}\n"
    "{\"timestamp\": 10, \"input_length\": 1300, \"output_length\": 10, \"hash_ids\": [1, 2, 3]}\n"
    "\n"
    "{\"timestamp\": 20, \"input_length\": 600, \"output_length\": 10, \"hash_ids\": [1, 4]}\n"
    "{\"timestamp\": 30, \"input_length\": 512, \"output_length\": 10, \"hash_ids\": [5]}\n";

TEST(TraceTest, UnlimitedCacheCeilingOnHandMadeTrace) {
  const Trace t = Parse(kTinyTrace, 256);
  const TraceSummary s = Summarize(t);
  EXPECT_EQ(s.requests, 4u);
  EXPECT_EQ(s.input_tokens, 3436u);
  EXPECT_EQ(s.output_tokens, 40u);
  EXPECT_EQ(s.ceiling_hit_tokens, 1536u);
  EXPECT_DOUBLE_EQ(s.ceiling_hit_rate, 1536.0 / 3436.0);
  EXPECT_EQ(s.distinct_blocks, 7u);
  EXPECT_EQ(s.footprint_tokens, 7u * 256);
  EXPECT_DOUBLE_EQ(s.span_s, 0.03);
  EXPECT_EQ(t.requests[1].arrival_us, 10000u);
}

TEST(TraceTest, RequestLimitAndWindow) {
  TraceLoadOptions o = Opts();
  o.max_requests = 2;
  auto a = ParseMooncakeTrace(kTinyTrace, "t", o);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->requests.size(), 2u);
  o.max_requests = 0;
  o.window_begin_ms = 10, o.window_end_ms = 30;
  auto b = ParseMooncakeTrace(kTinyTrace, "t", o);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->requests.size(), 2u);
  EXPECT_EQ(b->requests[0].input_tokens, 1300);
  o.window_begin_ms = 100, o.window_end_ms = 200;
  EXPECT_FALSE(ParseMooncakeTrace(kTinyTrace, "t", o).ok());
}

TEST(TraceTest, SessionFilesBecomeRequestsThatExtendEachOther) {
  // A 256-token system prompt, one session of two turns (100 then 50 new tokens, 16 output
  // tokens each), and a branch after turn 0.
  const std::string text = R"({"vocab": 512, "system": {"random": 256, "seed": 3},
    "sessions": [
      {"name": "a", "turns": [{"random": 100, "seed": 1}, {"random": 50, "seed": 2}]},
      {"name": "b", "branch_of": "a", "branch_turn": 0, "turns": [{"random": 300, "seed": 9}]}]})";
  TraceLoadOptions o = Opts(128);
  o.vocab = 512;
  o.session_spacing_ms = 500;
  auto t = SessionTrace(text, "s.json", o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->requests.size(), 3u);
  const auto& r = t->requests;
  EXPECT_EQ(r[0].input_tokens, 356);
  EXPECT_EQ(r[1].input_tokens, 356 + 16 + 50);
  EXPECT_EQ(r[2].input_tokens, 356 + 16 + 300);
  EXPECT_EQ(r[1].arrival_us, 500000u);
  ASSERT_EQ(r[0].keys.size(), 2u);  // 356 / 128
  ASSERT_EQ(r[1].keys.size(), 3u);  // 422 / 128
  ASSERT_EQ(r[2].keys.size(), 5u);  // 672 / 128
  EXPECT_EQ(r[1].keys[0], r[0].keys[0]);
  EXPECT_EQ(r[1].keys[1], r[0].keys[1]);
  // The branch resumes after turn 0 including its stand-in output: it shares turn 1's third
  // block only if that block ends before the turns diverge (it does not: 384 > 372).
  EXPECT_EQ(r[2].keys[1], r[0].keys[1]);
  EXPECT_NE(r[2].keys[2], r[1].keys[2]);
  // Session files are validated by the session parser, with the file's name.
  auto bad = SessionTrace(R"({"sessions": 3})", "bad.json", o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.json"), std::string::npos);
}

}  // namespace
}  // namespace strata::tools
