// The forward pass: batch invariance (bitwise), conformance to the official reference vectors,
// the weights loader's FP8 / FP4 dequantisation and clear errors.
#include "engine/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "engine/conformance.h"
#include "engine/weights_spec.h"
#include "kernels/fp4_math.h"
#include "kernels/fp8_math.h"
#include "tests/testing/temp_dir.h"

namespace strata::engine {
namespace {

const std::string kTinyConfig = STRATA_SOURCE_DIR "/configs/models/v4-tiny.json";
// The cases sit next to the checkout (shared/conformance/); STRATA_CONFORMANCE_DIR overrides.
const std::string kConformance = std::getenv("STRATA_CONFORMANCE_DIR")
                                     ? std::string(std::getenv("STRATA_CONFORMANCE_DIR")) + "/"
                                     : STRATA_SOURCE_DIR "/../shared/conformance/";

std::shared_ptr<Model> TinyModel(uint64_t seed = 7, Numerics numerics = {}) {
  auto config = LoadModelConfig(kTinyConfig);
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  auto model = Model::Create(*config, ModelWeights::Random(*config, seed), numerics);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return std::shared_ptr<Model>(std::move(*model));
}

std::vector<int32_t> RandomTokens(size_t n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng() % uint32_t(vocab));
  return t;
}

// Runs `tokens` in calls of the given sizes (cycled); returns every position's logits.
std::vector<float> RunChunked(const Model& m, RequestState& st, const std::vector<int32_t>& tokens,
                              const std::vector<size_t>& sizes) {
  std::vector<float> logits;
  size_t at = 0, i = 0;
  while (at < tokens.size()) {
    const size_t n = std::min(sizes[i++ % sizes.size()], tokens.size() - at);
    ForwardOptions opt;
    opt.all_logits = true;
    auto r = m.Forward(st, std::span(tokens.data() + at, n), opt);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    logits.insert(logits.end(), r->logits.begin(), r->logits.end());
    at += n;
  }
  return logits;
}

bool BitEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

bool StatesBitEqual(const RequestState& a, const RequestState& b) { return BitIdentical(a, b); }

// A token's logits and the whole state are bitwise the same however the tokens are split into
// calls: one-shot prefill, chunks of odd sizes (ring wrap-around, partial compressor blocks at
// every phase), token-by-token decode, and mixes of both. 300 tokens cross the 128-token window
// and two ratio-128 blocks.
TEST(ModelTest, BatchInvarianceAcrossChunkings) {
  auto m = TinyModel();
  const auto tokens = RandomTokens(300, m->config().shape.vocab_size, 11);
  RequestState one = m->NewState();
  const std::vector<float> ref = RunChunked(*m, one, tokens, {tokens.size()});
  for (const std::vector<size_t>& sizes :
       std::vector<std::vector<size_t>>{{1}, {7}, {128}, {129, 3}, {37, 1, 1, 64, 5}, {255, 45}}) {
    RequestState st = m->NewState();
    const std::vector<float> got = RunChunked(*m, st, tokens, sizes);
    EXPECT_TRUE(BitEqual(ref, got)) << "chunk sizes starting with " << sizes[0];
    EXPECT_TRUE(StatesBitEqual(one, st)) << "chunk sizes starting with " << sizes[0];
  }
}

// Same under the reference numerics (float32 RoPE dims), and the two numerics really differ.
TEST(ModelTest, BatchInvarianceReferenceNumerics) {
  Numerics ref_num;
  ref_num.bf16_rope_cache = false;
  auto m = TinyModel(3, ref_num);
  auto served = TinyModel(3);
  const auto tokens = RandomTokens(200, m->config().shape.vocab_size, 5);
  RequestState a = m->NewState(), b = m->NewState(), c = served->NewState();
  const auto la = RunChunked(*m, a, tokens, {200});
  const auto lb = RunChunked(*m, b, tokens, {13, 1, 50});
  EXPECT_TRUE(BitEqual(la, lb));
  EXPECT_TRUE(StatesBitEqual(a, b));
  const auto lc = RunChunked(*served, c, tokens, {200});
  EXPECT_FALSE(BitEqual(la, lc));
}

// MTP state does not depend on whether the next token was given (run through) or the MTP
// layer lagged one position behind.
TEST(ModelTest, MtpLagGivesTheSameState) {
  auto m = TinyModel();
  const auto tokens = RandomTokens(140, m->config().shape.vocab_size, 9);
  RequestState lag = m->NewState(), through = m->NewState();
  ASSERT_TRUE(m->Forward(lag, std::span(tokens.data(), 100)).ok());
  ASSERT_TRUE(m->Forward(lag, std::span(tokens.data() + 100, 40)).ok());
  EXPECT_EQ(lag.mtp_pos, 139);
  for (size_t at = 0; at < 139; at += 1) {
    ForwardOptions opt;
    opt.mtp_next = tokens[at + 1];
    auto r = m->Forward(through, std::span(tokens.data() + at, 1), opt);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->mtp_logits.size(), size_t(m->config().shape.vocab_size));
  }
  ASSERT_TRUE(m->Forward(through, std::span(tokens.data() + 139, 1)).ok());
  EXPECT_TRUE(StatesBitEqual(lag, through));
}

// Cached entries hold exactly what the stored formats can represent.
TEST(ModelTest, CachedEntriesAreOnTheStoredGrids) {
  auto m = TinyModel();
  const ModelShape& s = m->config().shape;
  const auto tokens = RandomTokens(260, s.vocab_size, 2);
  RequestState st = m->NewState();
  ASSERT_TRUE(m->Forward(st, tokens).ok());
  const int hd = s.head_dim, rd = s.rope_head_dim;
  for (const LayerState& ls : st.layers) {
    for (const std::vector<float>* rows : {&ls.swa, &ls.entries})
      for (size_t r = 0; r < rows->size() / size_t(hd); ++r) {
        const float* e = rows->data() + r * size_t(hd);
        for (int b = 0; b < hd - rd; b += 64) {  // FP8 e4m3 times one power-of-two scale
          float amax = 0;
          for (int i = 0; i < 64; ++i) amax = std::max(amax, std::fabs(e[b + i]));
          const float sc = kernels::Ue8m0ToFloat(kernels::Ue8m0ScaleFor(amax));
          for (int i = 0; i < 64; ++i)
            ASSERT_EQ(kernels::Fp8E4m3ToFloat(kernels::FloatToFp8E4m3(e[b + i] / sc)) * sc,
                      e[b + i]);
        }
        for (int i = hd - rd; i < hd; ++i) {  // BF16
          uint32_t u;
          std::memcpy(&u, &e[i], 4);
          ASSERT_EQ(u & 0xffffu, 0u);
        }
      }
    for (size_t r = 0; r < ls.index_keys.size() / size_t(s.index_head_dim); ++r)
      for (int b = 0; b < s.index_head_dim; b += 32) {
        const float* e = ls.index_keys.data() + r * size_t(s.index_head_dim) + b;
        float amax = 0;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(e[i]));
        const float sc = kernels::Ue8m0ToFloat(kernels::Ue8m0ScaleForFp4(amax));
        for (int i = 0; i < 32; ++i)
          ASSERT_EQ(kernels::Fp4E2m1ToFloat(kernels::FloatToFp4E2m1(e[i] / sc)) * sc, e[i]);
      }
  }
  EXPECT_EQ(st.layers[1].entries.size(), size_t(260 / 4 * hd));
  EXPECT_EQ(st.layers[2].entries.size(), size_t(2 * hd));
}

TEST(ModelTest, BadInputIsAClearError) {
  auto m = TinyModel();
  RequestState st = m->NewState();
  std::vector<int32_t> bad = {1, 512};
  auto r = m->Forward(st, bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find("512"), std::string::npos);
  EXPECT_EQ(st.pos, 0);
  EXPECT_FALSE(m->Forward(st, std::vector<int32_t>{}).ok());
  RequestState other;
  EXPECT_FALSE(m->Forward(other, std::vector<int32_t>{1}).ok());

  auto config = LoadModelConfig(kTinyConfig);
  ASSERT_TRUE(config.ok());
  ModelConfig c = *config;
  c.shape.index_head_dim = 96;  // not a power of two: no Hadamard rotation
  auto bad_model = Model::Create(c, ModelWeights::Random(c, 1));
  ASSERT_FALSE(bad_model.ok());
  EXPECT_NE(bad_model.status().ToString().find("index_head_dim"), std::string::npos);
}

TEST(ModelTest, RandomWeightsAreDeterministic) {
  auto config = LoadModelConfig(kTinyConfig);
  ASSERT_TRUE(config.ok());
  auto a = ModelWeights::Random(*config, 5), b = ModelWeights::Random(*config, 5),
       c = ModelWeights::Random(*config, 6);
  const size_t n = size_t(config->shape.vocab_size) * size_t(config->shape.dim);
  EXPECT_EQ(std::memcmp(a->F("embed.weight"), b->F("embed.weight"), n * 4), 0);
  EXPECT_NE(std::memcmp(a->F("embed.weight"), c->F("embed.weight"), n * 4), 0);
  EXPECT_NEAR(a->F("norm.weight")[0], 1.0f, 0.2f);
  const int32_t* t = a->I("layers.0.ffn.gate.tid2eid");
  for (int row = 0; row < config->shape.vocab_size; ++row) EXPECT_NE(t[row * 2], t[row * 2 + 1]);
}

// A checkpoint whose linear weights are FP8 with block scales and FP4 with UE8M0 scales loads
// to the dequantised values.
TEST(ModelTest, LoadsFp8AndFp4LinearWeights) {
  auto config = LoadModelConfig(kTinyConfig);
  ASSERT_TRUE(config.ok());
  auto ref = ModelWeights::Random(*config, 1);
  // Header and data: every tensor F32 except two linear weights.
  const std::string fp8_name = "layers.0.attn.wkv.weight";          // [128, 256]
  const std::string fp4_name = "layers.1.ffn.experts.0.w1.weight";  // [128, 256]
  std::string header = "{";
  std::string data;
  auto add = [&](const std::string& name, const std::string& dtype,
                 const std::vector<int64_t>& shape, const std::string& bytes) {
    std::string sh;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (i) sh += ",";
      sh += std::to_string(shape[i]);
    }
    if (header.size() > 1) header += ",";
    header += "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[" + sh +
              "],\"data_offsets\":[" + std::to_string(data.size()) + "," +
              std::to_string(data.size() + bytes.size()) + "]}";
    data += bytes;
  };
  std::vector<float> fp8_expect(128 * 256), fp4_expect(128 * 256);
  for (const TensorSpec& spec : ExpectedTensors(*config)) {
    int64_t n = 1;
    for (int64_t d : spec.shape) n *= d;
    if (spec.kind == TensorKind::kInt32) {
      add(spec.name, "I32", spec.shape,
          std::string(reinterpret_cast<const char*>(ref->I(spec.name)), size_t(n) * 4));
    } else if (spec.name == fp8_name) {
      std::string codes(size_t(n), '\0'), scales;
      for (int64_t i = 0; i < n; ++i) codes[size_t(i)] = char(uint8_t(i * 7 % 0x7e));
      const float block_scale[2] = {0.5f, 0.125f};  // [1, 2] blocks of 128x128, F32
      scales.assign(reinterpret_cast<const char*>(block_scale), 8);
      for (int64_t r = 0; r < 128; ++r)
        for (int64_t c = 0; c < 256; ++c)
          fp8_expect[size_t(r * 256 + c)] =
              kernels::Fp8E4m3ToFloat(uint8_t(codes[size_t(r * 256 + c)])) * block_scale[c / 128];
      add(spec.name, "F8_E4M3", spec.shape, codes);
      add("layers.0.attn.wkv.scale", "F32", {1, 2}, scales);
    } else if (spec.name == fp4_name) {
      std::string packed(size_t(n / 2), '\0'), scales(size_t(n / 32), '\0');
      for (int64_t i = 0; i < n / 2; ++i) packed[size_t(i)] = char(uint8_t(i * 37 + 11));
      for (int64_t i = 0; i < n / 32; ++i) scales[size_t(i)] = char(uint8_t(120 + i % 9));
      for (int64_t r = 0; r < 128; ++r)
        for (int64_t c = 0; c < 256; ++c) {
          const uint8_t byte = uint8_t(packed[size_t(r * 128 + c / 2)]);
          fp4_expect[size_t(r * 256 + c)] =
              kernels::Fp4E2m1ToFloat((c & 1) ? byte >> 4 : byte & 0xf) *
              kernels::Ue8m0ToFloat(uint8_t(scales[size_t(r * 8 + c / 32)]));
        }
      add(spec.name, "I8", {128, 128}, packed);
      add("layers.1.ffn.experts.0.w1.scale", "F8_E8M0", {128, 8}, scales);
    } else {
      add(spec.name, "F32", spec.shape,
          std::string(reinterpret_cast<const char*>(ref->F(spec.name)), size_t(n) * 4));
    }
  }
  header += "}";
  testing::TempDir dir;
  const std::string path = dir.path() + "/w.safetensors";
  {
    std::ofstream out(path, std::ios::binary);
    const uint64_t len = header.size();
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << header << data;
  }
  auto w = ModelWeights::Load(*config, path);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(std::memcmp((*w)->F(fp8_name), fp8_expect.data(), fp8_expect.size() * 4), 0);
  EXPECT_EQ(std::memcmp((*w)->F(fp4_name), fp4_expect.data(), fp4_expect.size() * 4), 0);
  EXPECT_EQ(std::memcmp((*w)->F("head.weight"), ref->F("head.weight"), 512 * 256 * 4), 0);
}

// The selection allowance is read from a case's README (its precision sensitivity: variant
// (a), float64 arithmetic, and variant (b), float64 GEMMs), whatever the case is called; per
// layer and phase the larger of the two.
const char kSensitivity[] =
    "- Precision sensitivity (diagnostic, not part of the reference): (a) the same run with "
    "float64 arithmetic wherever model.py allows, (b) the float32 run with every `F.linear` "
    "computed in float64 and rounded once to float32 (just a different GEMM rounding). Cosine "
    "distance ... (a): {\"layer1\": {\"prefill_rows_with_different_selection\": 22, "
    "\"decode_steps_with_different_selection\": [7, 18, 63]}, \"layer3\": "
    "{\"prefill_rows_with_different_selection\": 200, \"decode_steps_with_different_selection\": "
    "[0, 4, 5]}}; (b): {\"layer1\": "
    "{\"prefill_rows_with_different_selection\": 14, \"decode_steps_with_different_selection\": "
    "[7, 18]}, \"layer3\": {\"prefill_rows_with_different_selection\": 232, "
    "\"decode_steps_with_different_selection\": [0, 2, 3]}}. FP8/FP4 rounding ...\n";

TEST(ConformanceStabilityTest, TakesTheLargerShareOfBothVariants) {
  auto s = ParseSelectionStability(std::string("# case\n\n## Sanity checks\n") + kSensitivity);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->stated);
  ASSERT_EQ(s->variants.size(), 2u);
  EXPECT_EQ(s->variants.at("a").at(3).prefill_changed, 200u);
  EXPECT_EQ(s->variants.at("b").at(3).prefill_changed, 232u);
  ASSERT_EQ(s->layers.size(), 2u);
  const SelectionStability::Layer& l1 = s->layers.at(1);
  const SelectionStability::Layer& l3 = s->layers.at(3);
  EXPECT_EQ(l1.prefill_changed, 22u);  // (a) 22 > (b) 14
  EXPECT_EQ(l1.prefill_variant, "(a)");
  EXPECT_EQ(l1.decode_changed, 3u);  // (a) 3 steps > (b) 2
  EXPECT_EQ(l1.decode_variant, "(a)");
  EXPECT_EQ(l3.prefill_changed, 232u);  // (b) 232 > (a) 200
  EXPECT_EQ(l3.prefill_variant, "(b)");
  EXPECT_EQ(l3.decode_changed, 3u);  // equal
  EXPECT_EQ(l3.decode_variant, "(a) = (b)");
  EXPECT_NE(s->quote.find("(a) the same run with float64 arithmetic"), std::string::npos)
      << s->quote;
  EXPECT_NE(s->quote.find("(just a different GEMM rounding)"), std::string::npos) << s->quote;
  EXPECT_NE(s->quote.find("\"prefill_rows_with_different_selection\": 232"), std::string::npos);
  EXPECT_NE(s->quote.find("\"prefill_rows_with_different_selection\": 200"), std::string::npos);
}

TEST(ConformanceStabilityTest, OneVariantAlone) {
  std::string only_b = kSensitivity;
  const size_t a = only_b.find("(a): {");
  only_b.erase(a, only_b.find("(b): {") - a);
  // Figures on another line are not the bullet's.
  only_b +=
      "- Other (a): {\"layer1\": {\"prefill_rows_with_different_selection\": 99, "
      "\"decode_steps_with_different_selection\": []}}\n";
  auto s = ParseSelectionStability(only_b);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->stated);
  EXPECT_EQ(s->variants.count("a"), 0u);
  EXPECT_EQ(s->layers.at(1).prefill_changed, 14u);
  EXPECT_EQ(s->layers.at(1).prefill_variant, "(b)");
  EXPECT_EQ(s->layers.at(1).decode_changed, 2u);
  EXPECT_EQ(s->layers.at(3).prefill_changed, 232u);
}

TEST(ConformanceStabilityTest, NoFigureMeansNoAllowance) {
  auto s = ParseSelectionStability("# case\n\nNo sensitivity figures here.\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(s->stated);
  EXPECT_TRUE(s->layers.empty());
}

TEST(ConformanceStabilityTest, MalformedFigureIsAnError) {
  auto bad = [](std::string what, const std::string& from, const std::string& to) {
    what.replace(what.find(from), from.size(), to);
    return what;
  };
  // Not a count, a step that is not a step number, not JSON, a key that is not a layer.
  EXPECT_FALSE(ParseSelectionStability(bad(kSensitivity, "232", "\"x\"")).ok());
  EXPECT_FALSE(ParseSelectionStability(bad(kSensitivity, "[7, 18, 63]", "[7, -1]")).ok());
  EXPECT_FALSE(ParseSelectionStability(bad(kSensitivity, "(a): {\"layer1\"", "(a): {layer1")).ok());
  EXPECT_FALSE(ParseSelectionStability(bad(kSensitivity, "(b): {\"layer1\"", "(b): {\"l1\"")).ok());
  EXPECT_FALSE(ParseSelectionStability(bad(kSensitivity, "(b): {", "(b): [")).ok());
  // Unterminated (the braces must close on the bullet's line).
  std::string open = kSensitivity;
  open.erase(open.rfind('}'));
  open.erase(open.rfind('}'));
  EXPECT_FALSE(ParseSelectionStability(open).ok());
  // The paragraph without either variant's figures.
  EXPECT_FALSE(
      ParseSelectionStability("- Precision sensitivity (diagnostic): nothing measured.\n").ok());
}

// The official reference vectors. Every figure of every case meets the rule, restated
// here: logits and MTP logits cosine distance <= 1e-2 per row, median <= 1e-3, argmax equal
// where the reference's margin is >= 0.02; indexer selections per layer and phase equal as
// sets on >= 95% of rows, less the allowance the case's README states (the larger of its
// precision variants; no case is treated by name); every live cache entry <= 1e-2 unless a
// selection that differs at one of its rows, in an indexer layer below the entry's layer,
// explains it (checked here against the selection figures' differing rows).
class ConformanceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ConformanceTest, MatchesTheOfficialReference) {
  const std::string dir = kConformance + GetParam();
  if (!std::filesystem::exists(dir + "/vectors.safetensors"))
    GTEST_SKIP() << "conformance case not present: " << dir;
  auto report = RunConformance(dir);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::cout << FormatReport(*report);
  ASSERT_FALSE(report->figures.empty());
  std::map<std::string, std::vector<size_t>> differ;  // selection figure -> differing rows
  for (const ConformanceFigure& f : report->figures)
    if (f.name.rfind("indexer_topk.", 0) == 0) differ[f.name] = f.differ;
  int prefill_selections = 0, decode_selections = 0, caches = 0;
  size_t over = 0, excused = 0;
  for (const ConformanceFigure& f : report->figures) {
    const std::string what = GetParam() + " " + f.name;
    EXPECT_TRUE(f.pass) << what << " cos max " << f.cos_max << " (" << f.worst << ") agree "
                        << f.agree << "/" << f.checked << " need " << f.need
                        << " worst not excused " << f.worst_unexcused;
    if (f.name.rfind("indexer_topk.", 0) == 0) {
      const bool prefill = f.name.rfind("indexer_topk.prefill.", 0) == 0;
      (prefill ? prefill_selections : decode_selections)++;
      EXPECT_EQ(f.rows, prefill ? report->prefill_rows : report->decode_rows) << what;
      // The allowance: the largest changed share over the README's variants.
      const int layer = std::stoi(f.name.substr(f.name.rfind('.') + 1));
      size_t changed = 0;
      for (const auto& [variant, layers] : report->stability.variants)
        if (layers.count(layer))
          changed = std::max(changed, prefill ? layers.at(layer).prefill_changed
                                              : layers.at(layer).decode_changed);
      EXPECT_DOUBLE_EQ(f.allowance, double(changed) / double(f.checked)) << what;
      EXPECT_DOUBLE_EQ(f.need, std::max(0.0, 0.95 - f.allowance)) << what;
      EXPECT_GE(double(f.agree), (0.95 - f.allowance) * double(f.checked)) << what;
      EXPECT_EQ(f.differ.size(), f.checked - f.agree) << what;
    } else if (f.name.rfind("after_", 0) == 0) {
      ++caches;
      EXPECT_LE(f.cos_max_unexcused, 1e-2)
          << what << " worst entry not excused " << f.worst_unexcused;
      ASSERT_EQ(f.over_entries.size(), f.over) << what;
      // The entry's layer: main layers by index, the MTP layers after all of them.
      const size_t at = f.name.find(".layers.");
      const int entry_layer = at == std::string::npos ? INT_MAX : std::stoi(f.name.substr(at + 8));
      for (const CacheEntryOver& e : f.over_entries) {
        ++over;
        const std::string entry = what + " " + e.entry;
        EXPECT_GT(e.cos, 1e-2) << entry;
        EXPECT_FALSE(e.flips.empty())
            << entry << " cos " << e.cos << " is over 1e-2 and no flipped selection explains it";
        excused += !e.flips.empty();
        // A one-position entry names its position; the span must be exactly it.
        const size_t named = e.entry.find("(position ");
        if (named != std::string::npos) {
          const int64_t p = std::stoll(e.entry.substr(named + 10));
          EXPECT_EQ(e.first, p) << entry;
          EXPECT_EQ(e.end, p + 1) << entry;
        }
        for (const SelectionFlip& x : e.flips) {
          const std::string why = entry + " excused by " + x.selection;
          EXPECT_LT(x.layer, entry_layer) << why;
          ASSERT_TRUE(differ.count(x.selection)) << why;
          const std::vector<size_t>& rows = differ[x.selection];
          EXPECT_TRUE(std::find(rows.begin(), rows.end(), x.row) != rows.end())
              << why << " row " << x.row << " whose selection does not differ";
          const bool prefill = x.selection.rfind("indexer_topk.prefill.", 0) == 0;
          const int64_t p = int64_t(x.row) + (prefill ? 0 : int64_t(report->prefill_rows));
          EXPECT_TRUE(p >= e.first && p < e.end) << why << " row " << x.row;
          if (prefill) {
            EXPECT_LT(x.row, report->prefill_rows) << why;
          }
        }
      }
    } else if (f.name != "hidden_last") {
      EXPECT_LE(f.cos_max, 1e-2) << what;
      EXPECT_LE(f.cos_median, 1e-3) << what;
      EXPECT_EQ(f.agree, f.checked) << what;
    }
  }
  EXPECT_EQ(prefill_selections, 2);  // the two CSA layers of v4-tiny, each phase on its own
  EXPECT_EQ(decode_selections, 2);
  EXPECT_GT(caches, 0);
  EXPECT_EQ(over, report->cache_over);
  EXPECT_EQ(excused, report->cache_excused);
  EXPECT_LE(report->cache_worst_unexcused, 1e-2) << report->cache_worst_unexcused_entry;
  EXPECT_TRUE(report->pass);
}

INSTANTIATE_TEST_SUITE_P(Cases, ConformanceTest,
                         ::testing::Values("v4-tiny-a1", "v4-tiny-a2", "v4-tiny-a3"));

}  // namespace
}  // namespace strata::engine
