#include "engine/weights_spec.h"

#include <set>

namespace strata::engine {
namespace {

void Block(std::vector<TensorSpec>& out, const ModelConfig& c, const std::string& p, int layer,
           int ratio, bool mtp) {
  const ModelShape& s = c.shape;
  const int64_t dim = s.dim, hd = s.head_dim, hc = s.hc_mult;
  auto f = [&](const std::string& n, std::vector<int64_t> shape) {
    out.push_back({p + n, std::move(shape), TensorKind::kFloat});
  };
  auto lin = [&](const std::string& n, int64_t o, int64_t i) {
    out.push_back({p + n, {o, i}, TensorKind::kLinear});
  };
  f("attn_norm.weight", {dim});
  f("ffn_norm.weight", {dim});
  for (const char* h : {"hc_attn_", "hc_ffn_"}) {
    f(std::string(h) + "fn", {(2 + hc) * hc, hc * dim});
    f(std::string(h) + "base", {(2 + hc) * hc});
    f(std::string(h) + "scale", {3});
  }
  lin("attn.wq_a.weight", c.q_lora_rank, dim);
  f("attn.q_norm.weight", {c.q_lora_rank});
  lin("attn.wq_b.weight", s.n_heads * hd, c.q_lora_rank);
  lin("attn.wkv.weight", hd, dim);
  f("attn.kv_norm.weight", {hd});
  lin("attn.wo_a.weight", int64_t(c.o_groups) * c.o_lora_rank, s.n_heads * hd / c.o_groups);
  lin("attn.wo_b.weight", dim, int64_t(c.o_groups) * c.o_lora_rank);
  f("attn.attn_sink", {s.n_heads});
  auto compressor = [&](const std::string& q, int64_t head, int r) {
    const int64_t coff = r == 4 ? 2 : 1;  // ratio 4 overlaps the previous block
    lin(q + "wkv.weight", coff * head, dim);
    lin(q + "wgate.weight", coff * head, dim);
    f(q + "ape", {r, coff * head});
    f(q + "norm.weight", {head});
  };
  if (ratio) compressor("attn.compressor.", hd, ratio);
  if (ratio == 4) {
    const int64_t ih = s.index_head_dim;
    lin("attn.indexer.wq_b.weight", int64_t(s.index_n_heads) * ih, c.q_lora_rank);
    lin("attn.indexer.weights_proj.weight", s.index_n_heads, dim);
    compressor("attn.indexer.compressor.", ih, 4);
  }
  lin("ffn.gate.weight", c.n_routed_experts, dim);
  if (!mtp && layer < c.n_hash_layers)
    out.push_back(
        {p + "ffn.gate.tid2eid", {s.vocab_size, c.n_activated_experts}, TensorKind::kInt32});
  else
    f("ffn.gate.bias", {c.n_routed_experts});
  for (int e = 0; e < c.n_routed_experts; ++e) {
    const std::string x = "ffn.experts." + std::to_string(e) + ".";
    lin(x + "w1.weight", c.moe_inter_dim, dim);
    lin(x + "w2.weight", dim, c.moe_inter_dim);
    lin(x + "w3.weight", c.moe_inter_dim, dim);
  }
  if (c.n_shared_experts > 0) {
    const int64_t inter = int64_t(c.n_shared_experts) * c.moe_inter_dim;
    lin("ffn.shared_experts.w1.weight", inter, dim);
    lin("ffn.shared_experts.w2.weight", dim, inter);
    lin("ffn.shared_experts.w3.weight", inter, dim);
  }
}

std::string Shape(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

std::vector<TensorSpec> ExpectedTensors(const ModelConfig& c) {
  const ModelShape& s = c.shape;
  const int64_t dim = s.dim, hc = s.hc_mult;
  std::vector<TensorSpec> out;
  out.push_back({"embed.weight", {s.vocab_size, dim}, TensorKind::kFloat});
  out.push_back({"head.weight", {s.vocab_size, dim}, TensorKind::kLinear});
  out.push_back({"norm.weight", {dim}, TensorKind::kFloat});
  out.push_back({"hc_head_fn", {hc, hc * dim}, TensorKind::kFloat});
  out.push_back({"hc_head_base", {hc}, TensorKind::kFloat});
  out.push_back({"hc_head_scale", {1}, TensorKind::kFloat});
  for (int l = 0; l < s.n_layers; ++l)
    Block(out, c, "layers." + std::to_string(l) + ".", l, s.compress_ratios[size_t(l)], false);
  for (int m = 0; m < s.n_mtp_layers; ++m) {
    const std::string p = "mtp." + std::to_string(m) + ".";
    Block(out, c, p, s.n_layers + m, s.compress_ratios[size_t(s.n_layers + m)], true);
    out.push_back({p + "e_proj.weight", {dim, dim}, TensorKind::kLinear});
    out.push_back({p + "h_proj.weight", {dim, dim}, TensorKind::kLinear});
    out.push_back({p + "enorm.weight", {dim}, TensorKind::kFloat});
    out.push_back({p + "hnorm.weight", {dim}, TensorKind::kFloat});
    out.push_back({p + "norm.weight", {dim}, TensorKind::kFloat});
    out.push_back({p + "hc_head_fn", {hc, hc * dim}, TensorKind::kFloat});
    out.push_back({p + "hc_head_base", {hc}, TensorKind::kFloat});
    out.push_back({p + "hc_head_scale", {1}, TensorKind::kFloat});
  }
  return out;
}

Status CheckWeights(const SafetensorsFile& file, const ModelConfig& c) {
  std::vector<std::string> problems;
  std::set<std::string> expected;
  auto is_float = [](DType t) { return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16; };
  for (const TensorSpec& spec : ExpectedTensors(c)) {
    expected.insert(spec.name);
    auto t = file.Get(spec.name);
    if (!t.ok()) {
      problems.push_back("missing " + spec.name + " " + Shape(spec.shape));
      continue;
    }
    auto wrong = [&](const std::string& what) {
      problems.push_back(spec.name + ": " + what + " is " + DTypeName(t->dtype) + " " +
                         Shape(t->shape) + ", expected " + Shape(spec.shape));
    };
    if (spec.kind == TensorKind::kInt32) {
      if (t->dtype != DType::kI32 || t->shape != spec.shape) wrong("hash table");
      continue;
    }
    if (is_float(t->dtype)) {
      if (t->shape != spec.shape) wrong("tensor");
      continue;
    }
    if (spec.kind != TensorKind::kLinear) {
      wrong("not a float tensor:");
      continue;
    }
    const int64_t o = spec.shape[0], i = spec.shape[1];
    const std::string scale = ScaleName(spec.name);
    expected.insert(scale);
    auto sc = file.Get(scale);
    if (t->dtype == DType::kF8E4M3) {
      if (t->shape != spec.shape) wrong("FP8 weight");
      const std::vector<int64_t> want = {(o + 127) / 128, (i + 127) / 128};
      if (!sc.ok() || sc->shape != want ||
          !(sc->dtype == DType::kF32 || sc->dtype == DType::kF8E8M0))
        problems.push_back(scale + ": FP8 block scales must be F32 or F8_E8M0 " + Shape(want));
    } else if (t->dtype == DType::kI8 || t->dtype == DType::kU8) {
      if (t->shape != std::vector<int64_t>{o, i / 2}) wrong("packed FP4 weight");
      const std::vector<int64_t> want = {o, i / 32};
      if (!sc.ok() || sc->shape != want || sc->dtype != DType::kF8E8M0)
        problems.push_back(scale + ": FP4 scales must be F8_E8M0 " + Shape(want));
    } else {
      wrong("unsupported dtype:");
    }
  }
  for (const std::string& n : file.Names())
    if (!expected.count(n)) problems.push_back("unexpected tensor " + n);
  if (problems.empty()) return Status::Ok();
  std::string msg = file.path() + " does not match model " + c.shape.name + " (" +
                    std::to_string(problems.size()) + " problems):";
  for (size_t k = 0; k < problems.size() && k < 20; ++k) msg += "\n  " + problems[k];
  if (problems.size() > 20) msg += "\n  ...";
  return Status::InvalidArgument(msg);
}

std::string ScaleName(const std::string& weight) {
  const std::string suffix = ".weight";
  if (weight.size() > suffix.size() &&
      weight.compare(weight.size() - suffix.size(), suffix.size(), suffix) == 0)
    return weight.substr(0, weight.size() - suffix.size()) + ".scale";
  return weight + ".scale";
}

}  // namespace strata::engine
