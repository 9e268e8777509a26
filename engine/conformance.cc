#include "engine/conformance.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "engine/model.h"
#include "engine/safetensors.h"

namespace strata::engine {
namespace {

constexpr double kRowCos = 1e-2, kMedianCos = 1e-3, kMargin = 0.02, kSelectionAgree = 0.95,
                 kCacheCos = 1e-2;

double CosDistance(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  if (aa == 0 && bb == 0) return 0.0;
  if (aa == 0 || bb == 0) return 1.0;
  return 1.0 - ab / std::sqrt(aa * bb);
}

// Accumulates rows of (ours, reference) pairs into one figure.
class Compare {
 public:
  explicit Compare(std::string name) { f_.name = std::move(name); }
  // `label` names the row (e.g. the live cache entry) for the worst-row report; a cache entry
  // also names the positions it is derived from, [first, end).
  void Row(const float* ours, const float* ref, size_t n, const std::string& label = "",
           int64_t first = 0, int64_t end = 0) {
    cos_.push_back(CosDistance(ours, ref, n));
    spans_.emplace_back(first, end);
    labels_.push_back(label.empty() ? "row " + std::to_string(cos_.size() - 1) : label);
    if (cos_.size() == 1 || cos_.back() > worst_cos_) {
      worst_cos_ = cos_.back();
      f_.worst = labels_.back();
    }
    for (size_t i = 0; i < n; ++i) {
      f_.max_abs = std::max(f_.max_abs, double(std::fabs(ours[i] - ref[i])));
      ref_max_ = std::max(ref_max_, double(std::fabs(ref[i])));
      ab_ += double(ours[i]) * ref[i];
      aa_ += double(ours[i]) * ours[i];
      bb_ += double(ref[i]) * ref[i];
    }
  }
  // Argmax agreement where the reference's top-2 margin is at least kMargin.
  void Argmax(const float* ours, const float* ref, size_t n) {
    size_t a = 0, b = 0;
    for (size_t i = 0; i < n; ++i) {
      if (ours[i] > ours[a]) a = i;
      if (ref[i] > ref[b]) b = i;
    }
    float top2 = -INFINITY;
    for (size_t i = 0; i < n; ++i)
      if (i != b) top2 = std::max(top2, ref[i]);
    if (ref[b] - top2 >= kMargin) {
      ++f_.checked;
      if (a == b) ++f_.agree;
    }
  }
  // Every row's cosine distance <= row_limit, their median <= median_limit.
  ConformanceFigure Finish(double row_limit, double median_limit, bool argmax) {
    f_.rows = cos_.size();
    if (!cos_.empty()) {
      std::vector<double> s = cos_;
      std::sort(s.begin(), s.end());
      f_.cos_max = s.back();
      f_.cos_median = s[s.size() / 2];
      f_.over = size_t(s.end() - std::upper_bound(s.begin(), s.end(), row_limit));
    }
    for (size_t i = 0; i < cos_.size(); ++i)  // every row over the limit, in row order
      if (cos_[i] > row_limit) f_.over_rows.push_back(labels_[i]);
    f_.cos_all =
        (aa_ == 0 || bb_ == 0) ? (aa_ == bb_ ? 0.0 : 1.0) : 1.0 - ab_ / std::sqrt(aa_ * bb_);
    f_.max_rel = ref_max_ > 0 ? f_.max_abs / ref_max_ : 0.0;
    f_.pass = f_.cos_max <= row_limit && f_.cos_median <= median_limit &&
              (!argmax || f_.agree == f_.checked);
    return f_;
  }
  // Cache figures: each entry over `limit` is excused when `flips` (the flipped selections
  // that feed its positions) names any; the limit holds for the worst entry that is not.
  template <typename Flips>
  ConformanceFigure FinishCache(double limit, const Flips& flips) {
    ConformanceFigure f = Finish(limit, limit, false);
    for (size_t i = 0; i < cos_.size(); ++i) {
      std::vector<SelectionFlip> why;
      if (cos_[i] > limit) {
        why = flips(spans_[i].first, spans_[i].second);
        f.over_entries.push_back({labels_[i], cos_[i], spans_[i].first, spans_[i].second, why});
        f.excused += !why.empty();
      }
      if (why.empty() && (f.worst_unexcused.empty() || cos_[i] > f.cos_max_unexcused)) {
        f.cos_max_unexcused = cos_[i];
        f.worst_unexcused = labels_[i];
      }
    }
    f.pass = f.cos_max_unexcused <= limit;
    return f;
  }

 private:
  ConformanceFigure f_;
  std::vector<double> cos_;
  std::vector<std::pair<int64_t, int64_t>> spans_;
  std::vector<std::string> labels_;
  double worst_cos_ = 0;
  double ref_max_ = 0, ab_ = 0, aa_ = 0, bb_ = 0;
};

struct Vectors {
  std::unique_ptr<SafetensorsFile> file;
  Result<std::vector<float>> F(const std::string& name) const {
    STRATA_ASSIGN_OR_RETURN(TensorView t, file->Get(name));
    return ToFloats(t);
  }
  Result<std::vector<int32_t>> I(const std::string& name) const {
    STRATA_ASSIGN_OR_RETURN(TensorView t, file->Get(name));
    if (t.dtype != DType::kI32) return Status::InvalidArgument(name + " is not I32");
    std::vector<int32_t> v(size_t(t.numel()));
    std::memcpy(v.data(), t.bytes.data(), v.size() * 4);
    return v;
  }
  Result<std::vector<int64_t>> Shape(const std::string& name) const {
    STRATA_ASSIGN_OR_RETURN(TensorView t, file->Get(name));
    return t.shape;
  }
};

// (phase, layer) -> the rows whose selection sets differ, ascending; phase 0 = prefill (rows
// are prompt positions), 1 = decode (rows are decode steps).
using Differ = std::map<std::pair<int, int>, std::vector<size_t>>;

std::string SelectionName(int phase, int layer) {
  return std::string("indexer_topk.") + (phase == 0 ? "prefill" : "decode") + ".layers." +
         std::to_string(layer);
}

// Compares the live entries of every cache buffer of `st` (after T positions) with the
// snapshot `prefix` ("after_prefill" / "after_decode"), each entry on its own: the cache rule
// holds for every live entry that no flipped selection explains. An entry of layer L (the MTP
// layers count as after every main layer) is computed from layer L's input at its positions,
// which depends on the attention outputs of the layers below L at those rows: a selection that
// differs there (prompt position p < prompt_len: prefill row p, else decode step
// p - prompt_len) in an indexer layer below L excuses it. `differ` must hold every row of the
// calls that produced the snapshot.
Status CompareCaches(const Vectors& v, const ModelConfig& c, const RequestState& st, int64_t T,
                     int64_t prompt_len, const Differ& differ, const std::string& prefix,
                     std::vector<ConformanceFigure>& out) {
  const ModelShape& s = c.shape;
  const int win = s.window_size, hd = s.head_dim;
  for (int l = 0; l < s.n_layers + s.n_mtp_layers; ++l) {
    const bool mtp = l >= s.n_layers;
    auto flips = [&](int64_t first, int64_t end) {
      std::vector<SelectionFlip> why;
      for (const auto& [key, rows] : differ) {
        const auto [phase, layer] = key;
        if (layer >= l) continue;
        for (int64_t p = first; p < end; ++p) {
          if ((p < prompt_len) != (phase == 0)) continue;
          const size_t row = size_t(phase == 0 ? p : p - prompt_len);
          if (std::binary_search(rows.begin(), rows.end(), row))
            why.push_back({SelectionName(phase, layer), layer, row});
        }
      }
      return why;
    };
    const std::string base =
        prefix + (mtp ? ".mtp." + std::to_string(l - s.n_layers) : ".layers." + std::to_string(l)) +
        ".attn.";
    const LayerState& ls = st.layers[size_t(l)];
    const int ratio = ls.ratio;
    {  // kv_cache: the SWA ring, then compressed entries
      const std::string name = base + "kv_cache";
      STRATA_ASSIGN_OR_RETURN(std::vector<float> ref, v.F(name));
      Compare cmp(name);
      for (int64_t p = std::max<int64_t>(0, T - win); p < T; ++p) {
        const size_t slot = size_t(p % win) * size_t(hd);
        cmp.Row(ls.swa.data() + slot, ref.data() + slot, size_t(hd),
                "SWA slot " + std::to_string(p % win) + " (position " + std::to_string(p) + ")", p,
                p + 1);
      }
      if (ratio) {
        const int64_t entries = T / ratio;
        if (int64_t(ls.entries.size()) != entries * hd)
          return Status::Internal(name + ": the engine holds " +
                                  std::to_string(ls.entries.size() / size_t(hd)) +
                                  " compressed entries, expected " + std::to_string(entries));
        // Entry j pools the block [ratio j, ratio (j + 1)); ratio 4 also the previous block.
        const int64_t back = ratio == 4 ? ratio : 0;
        for (int64_t j = 0; j < entries; ++j)
          cmp.Row(
              ls.entries.data() + size_t(j) * size_t(hd), ref.data() + size_t(win + j) * size_t(hd),
              size_t(hd),
              "compressed entry " + std::to_string(j) + " (row " + std::to_string(win + j) + ")",
              std::max<int64_t>(0, ratio * j - back), ratio * (j + 1));
      }
      out.push_back(cmp.FinishCache(kCacheCos, flips));
    }
    if (!ratio) continue;
    auto carry = [&](const CompressorCarry& cc, const std::string& name) -> Status {
      const int d = cc.cols / (ratio == 4 ? 2 : 1);
      for (const char* which : {"kv_state", "score_state"}) {
        const std::string full = name + which;
        STRATA_ASSIGN_OR_RETURN(std::vector<float> ref, v.F(full));
        const std::vector<float>& ours = std::string(which) == "kv_state" ? cc.kv : cc.score;
        Compare cmp(full);
        bool any = false;
        if (ratio == 4 && T >= 4) {  // the overlap half of the last complete block
          for (int r = 0; r < 4; ++r) {
            const int64_t p = T / 4 * 4 - 4 + r;
            cmp.Row(ours.data() + size_t(r * cc.cols), ref.data() + size_t(r * cc.cols), size_t(d),
                    "overlap row " + std::to_string(r) + " (position " + std::to_string(p) + ")", p,
                    p + 1);
          }
          any = true;
        }
        for (int64_t p = T - T % ratio; p < T; ++p) {  // pending tokens
          const int64_t r = (ratio == 4 ? 4 : 0) + p % ratio;
          const size_t row = size_t(r) * size_t(cc.cols);
          cmp.Row(ours.data() + row, ref.data() + row, size_t(cc.cols),
                  "pending row " + std::to_string(r) + " (position " + std::to_string(p) + ")", p,
                  p + 1);
          any = true;
        }
        if (any) out.push_back(cmp.FinishCache(kCacheCos, flips));
      }
      return Status::Ok();
    };
    STRATA_RETURN_IF_ERROR(carry(ls.comp, base + "compressor."));
    if (ratio == 4) {
      STRATA_RETURN_IF_ERROR(carry(ls.index_comp, base + "indexer.compressor."));
      const std::string name = base + "indexer.kv_cache";
      STRATA_ASSIGN_OR_RETURN(std::vector<float> ref, v.F(name));
      const int ihd = s.index_head_dim;
      Compare cmp(name);
      for (int64_t j = 0; j < T / 4; ++j)  // key j: block j and the previous block (overlap)
        cmp.Row(ls.index_keys.data() + size_t(j) * size_t(ihd),
                ref.data() + size_t(j) * size_t(ihd), size_t(ihd),
                "indexer key " + std::to_string(j), std::max<int64_t>(0, 4 * j - 4), 4 * j + 4);
      out.push_back(cmp.FinishCache(kCacheCos, flips));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<SelectionStability> ParseSelectionStability(const std::string& readme) {
  SelectionStability out;
  // The README's bullet (one line): "Precision sensitivity (diagnostic, not part of the
  // reference): (a) the same run with float64 arithmetic wherever model.py allows, (b) the
  // float32 run with every `F.linear` computed in float64 and rounded once to float32 (just a
  // different GEMM rounding). ... (a): {json}; (b): {json}. ..."
  const size_t para = readme.find("Precision sensitivity");
  if (para == std::string::npos) return out;
  const size_t para_end = std::min(readme.find('\n', para), readme.size());
  const std::string text = readme.substr(para, para_end - para);
  std::string figures;
  for (const std::string variant : {"a", "b"}) {
    const std::string tag = "(" + variant + "):";
    const size_t fig = text.find(tag);
    if (fig == std::string::npos) continue;
    const size_t open = text.find_first_not_of(' ', fig + tag.size());
    if (open == std::string::npos || text[open] != '{')
      return Status::InvalidArgument("README.md: Precision sensitivity: " + tag +
                                     " is not followed by a JSON object");
    size_t close = open;
    for (int depth = 0; close < text.size(); ++close) {
      depth += text[close] == '{' ? 1 : text[close] == '}' ? -1 : 0;
      if (depth == 0) break;
    }
    if (close >= text.size())
      return Status::InvalidArgument("README.md: unterminated (" + variant + ") selection figures");
    const std::string json_text = text.substr(open, close + 1 - open);
    const nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object())
      return Status::InvalidArgument("README.md: (" + variant +
                                     ") selection figures are not a JSON object: " + json_text);
    std::map<int, SelectionStability::Layer>& layers = out.variants[variant];
    for (const auto& [key, v] : j.items()) {
      bool ok = key.rfind("layer", 0) == 0 && key.size() > 5 && key.size() <= 8 &&
                key.find_first_not_of("0123456789", 5) == std::string::npos && v.is_object() &&
                v.contains("prefill_rows_with_different_selection") &&
                v["prefill_rows_with_different_selection"].is_number_unsigned() &&
                v.contains("decode_steps_with_different_selection") &&
                v["decode_steps_with_different_selection"].is_array();
      if (ok)
        for (const nlohmann::json& step : v["decode_steps_with_different_selection"])
          ok = ok && step.is_number_unsigned();
      if (!ok)
        return Status::InvalidArgument("README.md: unexpected (" + variant + ") selection figure " +
                                       key + ": " + v.dump());
      SelectionStability::Layer& l = layers[std::stoi(key.substr(5))];
      l.prefill_changed = v["prefill_rows_with_different_selection"].get<size_t>();
      l.decode_changed = v["decode_steps_with_different_selection"].size();
      l.prefill_variant = l.decode_variant = "(" + variant + ")";
    }
    figures += (figures.empty() ? "\"" : " ... \"") + tag + " " + json_text + "\"";
  }
  if (out.variants.empty())
    return Status::InvalidArgument(
        "README.md: 'Precision sensitivity' without the (a) / (b) selection figures");
  // Per layer and phase the largest share over the variants, and which variant gave it.
  auto take = [](size_t changed, const std::string& variant, size_t& best, std::string& from) {
    if (from.empty() || changed > best) {
      best = changed;
      from = variant;
    } else if (changed == best) {
      from += " = " + variant;
    }
  };
  for (const auto& [variant, layers] : out.variants)
    for (const auto& [layer, l] : layers) {
      SelectionStability::Layer& m = out.layers[layer];
      take(l.prefill_changed, l.prefill_variant, m.prefill_changed, m.prefill_variant);
      take(l.decode_changed, l.decode_variant, m.decode_changed, m.decode_variant);
    }
  // The variants' definitions, quoted: from the first "(a) " / "(b) " to the end of the
  // sentence that defines the last of them.
  size_t def = std::string::npos, last = 0;
  for (const auto& [variant, layers] : out.variants) {
    const size_t at = text.find("(" + variant + ") ");
    if (at == std::string::npos) continue;
    def = std::min(def, at);
    last = std::max(last, at);
  }
  std::string defs;
  if (def != std::string::npos) {
    const size_t end = text.find(").", last);
    defs = "\"" + text.substr(def, (end == std::string::npos ? last + 4 : end + 2) - def) + "\" ";
  }
  out.stated = true;
  out.quote = "README, Sanity checks, Precision sensitivity: " + defs + "... " + figures;
  return out;
}

Result<ConformanceReport> RunConformance(const std::string& dir,
                                         const ConformanceOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  STRATA_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir + "/config.json"));
  STRATA_ASSIGN_OR_RETURN(auto weights, ModelWeights::Load(config, dir + "/weights.safetensors"));
  Numerics numerics;
  numerics.bf16_rope_cache = options.bf16_rope_cache;
  STRATA_ASSIGN_OR_RETURN(auto model, Model::Create(config, std::move(weights), numerics));
  Vectors v;
  STRATA_ASSIGN_OR_RETURN(v.file, SafetensorsFile::Open(dir + "/vectors.safetensors"));
  STRATA_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, v.I("tokens.prompt"));
  STRATA_ASSIGN_OR_RETURN(std::vector<int32_t> decode, v.I("tokens.decode"));
  STRATA_ASSIGN_OR_RETURN(std::vector<int32_t> mtp_ids, v.I("mtp.input_ids"));
  STRATA_ASSIGN_OR_RETURN(std::vector<float> ref_logits, v.F("logits"));
  STRATA_ASSIGN_OR_RETURN(std::vector<float> ref_mtp, v.F("mtp.logits"));
  STRATA_ASSIGN_OR_RETURN(std::vector<float> ref_hidden, v.F("hidden_last"));
  const ModelShape& s = config.shape;
  const size_t vocab = size_t(s.vocab_size), calls = 1 + decode.size();
  const size_t HD = size_t(s.hc_mult) * size_t(s.dim);
  if (ref_logits.size() != calls * vocab || ref_mtp.size() != calls * vocab ||
      ref_hidden.size() != calls * size_t(s.n_layers) * HD ||
      mtp_ids.size() != prompt.size() + decode.size())
    return Status::InvalidArgument(dir + ": vectors do not match the config and token counts");

  std::vector<int> csa_layers;
  std::map<int, std::vector<int32_t>> ref_topk_prefill, ref_topk_decode;
  for (int l = 0; l < s.n_layers; ++l)
    if (s.compress_ratios[size_t(l)] == 4) {
      csa_layers.push_back(l);
      STRATA_ASSIGN_OR_RETURN(ref_topk_prefill[l],
                              v.I("indexer_topk.prefill.layers." + std::to_string(l)));
      STRATA_ASSIGN_OR_RETURN(ref_topk_decode[l],
                              v.I("indexer_topk.decode.layers." + std::to_string(l)));
    }

  ConformanceReport report;
  {
    // Without a README no allowance: every selection figure is held to the plain rule.
    std::ifstream in(dir + "/README.md");
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      auto stability = ParseSelectionStability(text.str());
      if (!stability.ok()) return Status::InvalidArgument(dir + "/" + stability.status().message());
      report.stability = std::move(*stability);
    }
  }
  {
    const size_t slash = dir.find_last_not_of('/');
    const std::string trimmed = dir.substr(0, slash + 1);
    report.case_name = trimmed.substr(trimmed.find_last_of('/') + 1);
  }
  Compare logits("logits"), mtp("mtp.logits"), hidden("hidden_last");
  // (phase, layer) -> (rows equal as sets, rows); phase 0 = prefill, 1 = decode.
  std::map<std::pair<int, int>, std::pair<size_t, size_t>> sel;
  Differ differ;  // rows whose sets differ
  const int topk = s.index_topk;
  // Rows are prompt positions (prefill) or decode steps (decode), from `first`.
  auto selections = [&](int phase, int layer, const std::vector<int32_t>& ours, const int32_t* ref,
                        size_t rows, size_t first) {
    auto& [eq, total] = sel[{phase, layer}];
    for (size_t r = 0; r < rows; ++r) {
      std::set<int32_t> a, b;
      for (int j = 0; j < topk; ++j) {
        if (ours[r * size_t(topk) + size_t(j)] >= 0) a.insert(ours[r * size_t(topk) + size_t(j)]);
        if (ref[r * size_t(topk) + size_t(j)] >= 0) b.insert(ref[r * size_t(topk) + size_t(j)]);
      }
      eq += a == b;
      if (a != b) differ[{phase, layer}].push_back(first + r);
      ++total;
    }
  };

  RequestState st = model->NewState();
  for (size_t call = 0; call < calls; ++call) {
    std::vector<int32_t> toks = call == 0 ? prompt : std::vector<int32_t>{decode[call - 1]};
    ForwardTrace trace;
    trace.want_hidden = trace.want_topk = true;
    ForwardOptions opt;
    opt.trace = &trace;
    opt.mtp_next = mtp_ids[size_t(st.pos) + toks.size() - 1];
    STRATA_ASSIGN_OR_RETURN(ForwardResult r, model->Forward(st, toks, opt));
    logits.Row(r.logits.data(), ref_logits.data() + call * vocab, vocab);
    logits.Argmax(r.logits.data(), ref_logits.data() + call * vocab, vocab);
    mtp.Row(r.mtp_logits.data(), ref_mtp.data() + call * vocab, vocab);
    mtp.Argmax(r.mtp_logits.data(), ref_mtp.data() + call * vocab, vocab);
    for (int l = 0; l < s.n_layers; ++l)
      hidden.Row(trace.hidden_last[size_t(l)].data(),
                 ref_hidden.data() + (call * size_t(s.n_layers) + size_t(l)) * HD, HD);
    for (int l : csa_layers) {
      if (call == 0)
        selections(0, l, trace.topk[l], ref_topk_prefill[l].data(), toks.size(), 0);
      else
        selections(1, l, trace.topk[l], ref_topk_decode[l].data() + (call - 1) * size_t(topk), 1,
                   call - 1);
    }
    if (call == 0)
      STRATA_RETURN_IF_ERROR(CompareCaches(v, config, st, st.pos, int64_t(prompt.size()), differ,
                                           "after_prefill", report.figures));
  }
  STRATA_RETURN_IF_ERROR(CompareCaches(v, config, st, st.pos, int64_t(prompt.size()), differ,
                                       "after_decode", report.figures));
  report.figures.insert(report.figures.begin(),
                        {logits.Finish(kRowCos, kMedianCos, true),
                         mtp.Finish(kRowCos, kMedianCos, true), hidden.Finish(1.0, 1.0, false)});
  report.prefill_rows = prompt.size();
  report.decode_rows = decode.size();
  size_t at = 3;
  for (auto& [key, counts] : sel) {
    const auto [phase, layer] = key;
    ConformanceFigure f;
    f.name = SelectionName(phase, layer);
    f.rows = f.checked = counts.second;
    f.agree = counts.first;
    f.differ = differ[key];
    const std::vector<size_t>& rows = f.differ;
    if (!rows.empty()) {  // the first differing rows, to tell a cascade from a bug
      f.worst = phase == 0 ? "positions" : "decode steps";
      for (size_t i = 0; i < std::min<size_t>(rows.size(), 12); ++i)
        f.worst += " " + std::to_string(rows[i]);
      if (rows.size() > 12) f.worst += " ...";
    }
    auto it = report.stability.layers.find(layer);
    if (it != report.stability.layers.end() && f.checked > 0) {
      const size_t changed = phase == 0 ? it->second.prefill_changed : it->second.decode_changed;
      f.allowance = double(changed) / double(f.checked);
      f.allowance_source = "variant " +
                           (phase == 0 ? it->second.prefill_variant : it->second.decode_variant) +
                           ": " + std::to_string(changed) + " of " + std::to_string(f.checked) +
                           (phase == 0 ? " prefill rows" : " decode steps");
    } else {
      f.allowance_source = "none stated";
    }
    f.need = std::max(0.0, kSelectionAgree - f.allowance);
    f.pass = double(f.agree) >= f.need * double(f.checked);
    report.figures.insert(report.figures.begin() + long(at++), f);
  }
  for (const ConformanceFigure& f : report.figures) {
    report.pass = report.pass && f.pass;
    if (f.name.rfind("after_", 0) != 0) continue;
    report.cache_over += f.over_entries.size();
    report.cache_excused += f.excused;
    if (report.cache_worst_unexcused_entry.empty() ||
        f.cos_max_unexcused > report.cache_worst_unexcused) {
      report.cache_worst_unexcused = f.cos_max_unexcused;
      report.cache_worst_unexcused_entry = f.name + " " + f.worst_unexcused;
    }
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

namespace {

std::string Flips(const std::vector<SelectionFlip>& flips) {
  std::string out;
  for (size_t k = 0; k < flips.size(); ++k)
    out += (k ? ", " : "") + flips[k].selection + " row " + std::to_string(flips[k].row);
  return out;
}

}  // namespace

std::string FormatReport(const ConformanceReport& r) {
  std::string out = "conformance case " + r.case_name + "\n";
  char line[512];
  out += r.stability.stated
             ? "  selection allowance per layer and phase: the largest share of rows where the "
               "reference's own selection changes under a different rounding, over the "
               "variants of " +
                   r.stability.quote + "\n"
             : "  selection allowance: none (the case's README states no precision-sensitivity "
               "figure)\n";
  for (const ConformanceFigure& f : r.figures) {
    if (f.name.rfind("indexer_topk", 0) == 0) {
      std::snprintf(line, sizeof line,
                    "  %-4s %-58s rows %5zu  selections equal as sets %zu (%.2f%%), need %.2f%% "
                    "(95%% less allowance %.2f%%: %s)%s%s\n",
                    f.pass ? "ok" : "FAIL", f.name.c_str(), f.rows, f.agree,
                    f.checked ? 100.0 * double(f.agree) / double(f.checked) : 100.0, 100.0 * f.need,
                    100.0 * f.allowance, f.allowance_source.c_str(),
                    f.worst.empty() ? "" : "  differ: ", f.worst.c_str());
      out += line;
      continue;
    }
    const bool cache = f.name.rfind("after_", 0) == 0;
    std::snprintf(
        line, sizeof line,
        "  %-4s %-58s rows %5zu  cos max %.2e median %.2e all %.2e  max abs %.2e "
        "rel %.2e%s  over the limit %zu%s  worst: %s\n",
        f.pass ? "ok" : "FAIL", f.name.c_str(), f.rows, f.cos_max, f.cos_median, f.cos_all,
        f.max_abs, f.max_rel,
        f.checked
            ? ("  argmax " + std::to_string(f.agree) + "/" + std::to_string(f.checked)).c_str()
            : "",
        f.over, cache ? (" (excused " + std::to_string(f.excused) + ")").c_str() : "",
        f.worst.c_str());
    out += line;
    if (cache && !f.over_entries.empty()) {  // as strings: the lists can outgrow `line`
      for (const CacheEntryOver& e : f.over_entries) {
        std::snprintf(line, sizeof line, "%.2e", e.cos);
        out += "       over the limit: " + e.entry + " cos " + line + ", positions [" +
               std::to_string(e.first) + ", " + std::to_string(e.end) + "): " +
               (e.flips.empty() ? "NOT excused (no selection below this layer differs there)"
                                : "excused, flipped selection " + Flips(e.flips)) +
               "\n";
      }
      std::snprintf(line, sizeof line, "%.2e", f.cos_max_unexcused);
      out += "       worst entry not excused: " + f.worst_unexcused + " cos " + line + "\n";
    } else if (!f.over_rows.empty()) {
      out += "       over the limit:";
      for (size_t k = 0; k < f.over_rows.size(); ++k) out += (k ? ", " : " ") + f.over_rows[k];
      out += "\n";
    }
  }
  std::snprintf(line, sizeof line,
                "  cache entries over 1e-2: %zu, excused by a flipped selection: %zu, not "
                "excused: %zu; worst entry not excused: %s cos %.2e\n",
                r.cache_over, r.cache_excused, r.cache_over - r.cache_excused,
                r.cache_worst_unexcused_entry.c_str(), r.cache_worst_unexcused);
  out += line;
  std::snprintf(line, sizeof line, "%s: %s (%.1f s)\n", r.case_name.c_str(),
                r.pass ? "PASS" : "FAIL", r.seconds);
  return out + line;
}

std::string ReportJson(const ConformanceReport& r) {
  nlohmann::json j;
  j["case"] = r.case_name;
  j["pass"] = r.pass;
  j["seconds"] = r.seconds;
  j["prefill_rows"] = r.prefill_rows;
  j["decode_rows"] = r.decode_rows;
  j["selection_allowance_source"] = r.stability.stated ? r.stability.quote : "none";
  j["cache_over"] = r.cache_over;
  j["cache_excused"] = r.cache_excused;
  j["cache_worst_unexcused"] = r.cache_worst_unexcused;
  j["cache_worst_unexcused_entry"] = r.cache_worst_unexcused_entry;
  for (const ConformanceFigure& f : r.figures) {
    nlohmann::json over = nlohmann::json::array();
    for (const CacheEntryOver& e : f.over_entries) {
      nlohmann::json flips = nlohmann::json::array();
      for (const SelectionFlip& x : e.flips)
        flips.push_back({{"selection", x.selection}, {"layer", x.layer}, {"row", x.row}});
      over.push_back({{"entry", e.entry},
                      {"cos", e.cos},
                      {"first", e.first},
                      {"end", e.end},
                      {"excused", !e.flips.empty()},
                      {"flips", flips}});
    }
    j["figures"].push_back({{"name", f.name},
                            {"pass", f.pass},
                            {"rows", f.rows},
                            {"cos_max", f.cos_max},
                            {"cos_median", f.cos_median},
                            {"cos_all", f.cos_all},
                            {"max_abs", f.max_abs},
                            {"max_rel", f.max_rel},
                            {"agree", f.agree},
                            {"checked", f.checked},
                            {"over", f.over},
                            {"over_rows", f.over_rows},
                            {"worst", f.worst},
                            {"need", f.need},
                            {"allowance", f.allowance},
                            {"allowance_source", f.allowance_source},
                            {"over_entries", over},
                            {"excused", f.excused},
                            {"cos_max_unexcused", f.cos_max_unexcused},
                            {"worst_unexcused", f.worst_unexcused},
                            {"differ", f.differ}});
  }
  return j.dump();
}

}  // namespace strata::engine
