#include "engine/model.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "engine/weights_spec.h"
#include "kernels/gemm.h"
#include "kernels/hadamard.h"
#include "kernels/norm_hc.h"
#include "kernels/rope.h"
#include "kernels/sparse_attention.h"
#include "kernels/state_path.h"
#include "kernels/thread_pool.h"
#include "kernels/v4_math.h"

namespace strata::engine {
namespace {

using kernels::Gemm;
using Vec = std::vector<float>;
using ProfileClock = std::chrono::steady_clock;

// Exclusive per-kernel timing: a span pauses the span it interrupts.
thread_local KernelProfile* g_profile = nullptr;

class Span {
 public:
  explicit Span(const char* name) : name_(name) {
    if (!g_profile) return;
    parent_ = current_;
    const auto now = ProfileClock::now();
    if (parent_) parent_->Pause(now);
    current_ = this;
    start_ = now;
  }
  ~Span() {
    if (!g_profile) return;
    const auto now = ProfileClock::now();
    Pause(now);
    current_ = parent_;
    if (parent_) parent_->start_ = now;
  }
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

 private:
  void Pause(ProfileClock::time_point now) {
    (*g_profile)[name_] += std::chrono::duration<double>(now - start_).count();
    start_ = now;
  }
  static thread_local Span* current_;
  const char* name_;
  Span* parent_ = nullptr;
  ProfileClock::time_point start_;
};
thread_local Span* Span::current_ = nullptr;

void ParallelFor(size_t n, const std::function<void(size_t)>& f) {
  if (n == 1) {
    f(0);
    return;
  }
  kernels::ThreadPool::Default().ParallelFor(n, f);
}

// y[m, n] = x[m, k] . w[n, k]^T (w as a torch Linear weight).
Vec Linear(const float* x, size_t m, size_t k, const float* w, size_t n) {
  Span span("gemm");
  Vec y(m * n);
  Gemm(x, m, k, w, n, y.data());
  return y;
}

void RmsNormRows(float* x, size_t rows, int n, const float* w, float eps) {
  ParallelFor(rows, [&](size_t r) { kernels::RmsNormRow(x + r * n, w, x + r * n, n, eps); });
}

// (cos, sin) pairs of position p for each inverse frequency, as the reference's tables.
void RopeRow(const Vec& freqs, int64_t p, float* cs) {
  for (size_t i = 0; i < freqs.size(); ++i) {
    const float angle = float(p) * freqs[i];
    cs[2 * i] = std::cos(angle);
    cs[2 * i + 1] = std::sin(angle);
  }
}

bool IsPowerOfTwo(int v) { return v > 0 && (v & (v - 1)) == 0; }

struct CompressorW {
  int ratio = 0, d = 0, coff = 1;
  bool rotate = false;  // indexer keys: Hadamard + FP4 instead of FP8
  const float *wkv = nullptr, *wgate = nullptr, *ape = nullptr, *norm = nullptr;
};

struct LayerW {
  int ratio = 0;
  bool hash = false;
  const float *hc_attn_fn, *hc_attn_base, *hc_attn_scale, *hc_ffn_fn, *hc_ffn_base, *hc_ffn_scale,
      *attn_norm, *ffn_norm;
  const float *wq_a, *q_norm, *wq_b, *wkv, *kv_norm, *wo_a, *wo_b, *sink;
  CompressorW comp, icomp;
  const float *iwq_b = nullptr, *iweights = nullptr;
  const float *gate, *gate_bias = nullptr;
  const int32_t* tid2eid = nullptr;
  std::vector<const float*> w1, w2, w3;
  const float *sw1 = nullptr, *sw2 = nullptr, *sw3 = nullptr;
  // MTP layers only.
  const float *e_proj = nullptr, *h_proj = nullptr, *enorm = nullptr, *hnorm = nullptr,
              *norm = nullptr, *hc_head_fn = nullptr, *hc_head_base = nullptr,
              *hc_head_scale = nullptr;
};

}  // namespace

struct Model::Impl {
  const ModelConfig& c;
  Numerics num;
  const ModelWeights& w;
  std::vector<LayerW> layers;  // main, then MTP
  Vec swa_freqs, comp_freqs;
  const float *embed, *head, *norm, *hc_head_fn, *hc_head_base, *hc_head_scale;

  Impl(const ModelConfig& config, const ModelWeights& weights) : c(config), w(weights) {
    const ModelShape& s = c.shape;
    swa_freqs = kernels::RopeInverseFrequencies(s.rope_head_dim, c.rope_theta, {});
    kernels::YarnParams yarn;
    yarn.enabled = c.original_seq_len > 0;
    yarn.factor = c.rope_factor;
    yarn.original_seq_len = c.original_seq_len;
    yarn.beta_fast = c.beta_fast;
    yarn.beta_slow = c.beta_slow;
    comp_freqs = kernels::RopeInverseFrequencies(s.rope_head_dim, c.compress_rope_theta, yarn);
    embed = w.F("embed.weight");
    head = w.F("head.weight");
    norm = w.F("norm.weight");
    hc_head_fn = w.F("hc_head_fn");
    hc_head_base = w.F("hc_head_base");
    hc_head_scale = w.F("hc_head_scale");
    for (int l = 0; l < s.n_layers + s.n_mtp_layers; ++l) {
      const bool mtp = l >= s.n_layers;
      const std::string p =
          mtp ? "mtp." + std::to_string(l - s.n_layers) + "." : "layers." + std::to_string(l) + ".";
      LayerW L;
      L.ratio = s.compress_ratios[size_t(l)];
      L.hash = !mtp && l < c.n_hash_layers;
      auto f = [&](const std::string& n) { return w.F(p + n); };
      L.hc_attn_fn = f("hc_attn_fn"), L.hc_attn_base = f("hc_attn_base");
      L.hc_attn_scale = f("hc_attn_scale"), L.hc_ffn_fn = f("hc_ffn_fn");
      L.hc_ffn_base = f("hc_ffn_base"), L.hc_ffn_scale = f("hc_ffn_scale");
      L.attn_norm = f("attn_norm.weight"), L.ffn_norm = f("ffn_norm.weight");
      L.wq_a = f("attn.wq_a.weight"), L.q_norm = f("attn.q_norm.weight");
      L.wq_b = f("attn.wq_b.weight"), L.wkv = f("attn.wkv.weight");
      L.kv_norm = f("attn.kv_norm.weight"), L.wo_a = f("attn.wo_a.weight");
      L.wo_b = f("attn.wo_b.weight"), L.sink = f("attn.attn_sink");
      auto comp = [&](const std::string& q, int d, int ratio, bool rotate) {
        CompressorW cw;
        cw.ratio = ratio, cw.d = d, cw.coff = ratio == 4 ? 2 : 1, cw.rotate = rotate;
        cw.wkv = f(q + "wkv.weight"), cw.wgate = f(q + "wgate.weight");
        cw.ape = f(q + "ape"), cw.norm = f(q + "norm.weight");
        return cw;
      };
      if (L.ratio) L.comp = comp("attn.compressor.", s.head_dim, L.ratio, false);
      if (L.ratio == 4) {
        L.icomp = comp("attn.indexer.compressor.", s.index_head_dim, 4, true);
        L.iwq_b = f("attn.indexer.wq_b.weight");
        L.iweights = f("attn.indexer.weights_proj.weight");
      }
      L.gate = f("ffn.gate.weight");
      if (L.hash)
        L.tid2eid = w.I(p + "ffn.gate.tid2eid");
      else
        L.gate_bias = f("ffn.gate.bias");
      for (int e = 0; e < c.n_routed_experts; ++e) {
        const std::string x = "ffn.experts." + std::to_string(e) + ".";
        L.w1.push_back(f(x + "w1.weight"));
        L.w2.push_back(f(x + "w2.weight"));
        L.w3.push_back(f(x + "w3.weight"));
      }
      if (c.n_shared_experts > 0) {
        L.sw1 = f("ffn.shared_experts.w1.weight");
        L.sw2 = f("ffn.shared_experts.w2.weight");
        L.sw3 = f("ffn.shared_experts.w3.weight");
      }
      if (mtp) {
        L.e_proj = f("e_proj.weight"), L.h_proj = f("h_proj.weight");
        L.enorm = f("enorm.weight"), L.hnorm = f("hnorm.weight"), L.norm = f("norm.weight");
        L.hc_head_fn = f("hc_head_fn"), L.hc_head_base = f("hc_head_base");
        L.hc_head_scale = f("hc_head_scale");
      }
      layers.push_back(std::move(L));
    }
  }

  float eps() const { return float(c.norm_eps); }
  int hc() const { return c.shape.hc_mult; }
  int dim() const { return c.shape.dim; }

  // hc_pre: collapses the streams h [n, hc, dim] into x [n, dim] with the Sinkhorn split.
  void HcPre(const Vec& h, size_t n, const float* fn, const float* scale, const float* base, Vec& x,
             Vec& post, Vec& comb) const {
    Span span("hyper_connections");
    const int hcm = hc(), d = dim(), mix = (2 + hcm) * hcm;
    const size_t hd = size_t(hcm) * size_t(d);
    Vec mixes = Linear(h.data(), n, hd, fn, size_t(mix));
    x.assign(n * size_t(d), 0.0f);
    post.resize(n * size_t(hcm));
    comb.resize(n * size_t(hcm * hcm));
    ParallelFor(n, [&](size_t t) {
      const float* ht = h.data() + t * hd;
      float ss = 0.0f;
      for (size_t i = 0; i < hd; ++i) ss += ht[i] * ht[i];
      const float r = 1.0f / std::sqrt(ss / float(hd) + eps());
      float m[64], pre[8];
      for (int i = 0; i < mix; ++i) m[i] = mixes[t * size_t(mix) + size_t(i)] * r;
      kernels::HcSplitSinkhorn(m, scale, base, hcm, c.hc_sinkhorn_iters, float(c.hc_eps), pre,
                               post.data() + t * size_t(hcm), comb.data() + t * size_t(hcm * hcm));
      float* xt = x.data() + t * size_t(d);
      for (int i = 0; i < hcm; ++i)
        for (int j = 0; j < d; ++j) xt[j] += pre[i] * ht[size_t(i) * size_t(d) + size_t(j)];
    });
  }

  // hc_post: h[j] = post[j] * y + sum_i comb[i][j] * h[i].
  void HcPost(const Vec& y, Vec& h, size_t n, const Vec& post, const Vec& comb) const {
    Span span("hyper_connections");
    const int hcm = hc(), d = dim();
    const size_t hd = size_t(hcm) * size_t(d);
    ParallelFor(n, [&](size_t t) {
      std::vector<float> res(h.begin() + long(t * hd), h.begin() + long((t + 1) * hd));
      const float* yt = y.data() + t * size_t(d);
      const float* pt = post.data() + t * size_t(hcm);
      const float* ct = comb.data() + t * size_t(hcm * hcm);
      float* ht = h.data() + t * hd;
      for (int j = 0; j < hcm; ++j)
        for (int e = 0; e < d; ++e) {
          float acc = 0.0f;
          for (int i = 0; i < hcm; ++i)
            acc += ct[i * hcm + j] * res[size_t(i) * size_t(d) + size_t(e)];
          ht[size_t(j) * size_t(d) + size_t(e)] = pt[j] * yt[e] + acc;
        }
    });
  }

  // hc_head: sigmoid-weighted sum of the streams, for rows [0, n) of h.
  Vec HcHead(const float* h, size_t n, const float* fn, const float* scale,
             const float* base) const {
    Span span("hyper_connections");
    const int hcm = hc(), d = dim();
    const size_t hd = size_t(hcm) * size_t(d);
    Vec mixes = Linear(h, n, hd, fn, size_t(hcm));
    Vec x(n * size_t(d), 0.0f);
    for (size_t t = 0; t < n; ++t) {
      const float* ht = h + t * hd;
      float ss = 0.0f;
      for (size_t i = 0; i < hd; ++i) ss += ht[i] * ht[i];
      const float r = 1.0f / std::sqrt(ss / float(hd) + eps());
      for (int i = 0; i < hcm; ++i) {
        const float pre =
            kernels::Sigmoid(mixes[t * size_t(hcm) + size_t(i)] * r * scale[0] + base[i]) +
            float(c.hc_eps);
        for (int j = 0; j < d; ++j)
          x[t * size_t(d) + size_t(j)] += pre * ht[size_t(i) * size_t(d) + size_t(j)];
      }
    }
    return x;
  }

  Vec Logits(const float* h, size_t n, const float* fn, const float* scale, const float* base,
             const float* final_norm) const {
    Vec x = HcHead(h, n, fn, scale, base);
    RmsNormRows(x.data(), n, dim(), final_norm, eps());
    return Linear(x.data(), n, size_t(dim()), head, size_t(c.shape.vocab_size));
  }

  // Feeds tokens [n] at positions s.. into a compressor; every completed block becomes an entry.
  void Compress(const CompressorW& cw, CompressorCarry& carry, Vec& pool, const float* x, size_t n,
                int64_t s) const {
    Span span("compressor");
    const int d = cw.d, ratio = cw.ratio, width = cw.coff * d, rd = c.shape.rope_head_dim;
    const bool overlap = cw.coff == 2;
    Vec kv = Linear(x, n, size_t(dim()), cw.wkv, size_t(width));
    Vec sc = Linear(x, n, size_t(dim()), cw.wgate, size_t(width));
    std::vector<float> tk, ts, entry(static_cast<size_t>(d)), cs(static_cast<size_t>(rd));
    for (size_t i = 0; i < n; ++i) {
      const int64_t p = s + int64_t(i);
      const int slot = int(p % ratio);
      const size_t row = size_t(overlap ? ratio + slot : slot);
      float* ck = carry.kv.data() + row * size_t(width);
      float* cs_row = carry.score.data() + row * size_t(width);
      for (int j = 0; j < width; ++j) {
        ck[j] = kv[i * size_t(width) + size_t(j)];
        cs_row[j] = sc[i * size_t(width) + size_t(j)] + cw.ape[size_t(slot * width + j)];
      }
      if (slot != ratio - 1) continue;
      const size_t entry_index = size_t((p + 1) / ratio - 1);
      const bool present = pool.size() / size_t(d) > entry_index;
      if (overlap) {
        // Rows 0..ratio-1: the previous block's first half; ratio..2ratio-1: this block's second.
        tk.resize(size_t(2 * ratio * d));
        ts.resize(tk.size());
        for (int r = 0; r < 2 * ratio; ++r) {
          const size_t src = size_t(r) * size_t(width) + size_t(r < ratio ? 0 : d);
          std::memcpy(&tk[size_t(r * d)], &carry.kv[src], size_t(d) * 4);
          std::memcpy(&ts[size_t(r * d)], &carry.score[src], size_t(d) * 4);
        }
        if (!present)
          for (int ch = 0; ch < d; ++ch)
            kernels::GatedPoolChannel(tk.data(), ts.data(), 2 * ratio, d, entry.data(), ch);
        std::memcpy(carry.kv.data(), carry.kv.data() + size_t(ratio * width),
                    size_t(ratio * width) * 4);
        std::memcpy(carry.score.data(), carry.score.data() + size_t(ratio * width),
                    size_t(ratio * width) * 4);
        // Only the overlap half of rows [0, ratio) is read again; everything else is reset.
        for (int r = 0; r < ratio; ++r) {
          std::fill_n(carry.kv.begin() + r * width + d, d, 0.0f);
          std::fill_n(carry.score.begin() + r * width + d, d, -INFINITY);
        }
        std::fill(carry.kv.begin() + ratio * width, carry.kv.end(), 0.0f);
        std::fill(carry.score.begin() + ratio * width, carry.score.end(), -INFINITY);
      } else {
        if (!present)
          for (int ch = 0; ch < d; ++ch)
            kernels::GatedPoolChannel(carry.kv.data(), carry.score.data(), ratio, d, entry.data(),
                                      ch);
        std::fill(carry.kv.begin(), carry.kv.end(), 0.0f);
        std::fill(carry.score.begin(), carry.score.end(), -INFINITY);
      }
      if (present) continue;
      RopeRow(comp_freqs, p + 1 - ratio, cs.data());
      kernels::FinishCompressedEntry(entry.data(), d, rd, cw.norm, eps(), cs.data(), cw.rotate,
                                     num.bf16_rope_cache);
      pool.insert(pool.end(), entry.begin(), entry.end());
    }
  }

  Vec Attention(const LayerW& L, LayerState& st, const Vec& x, size_t n, int64_t s,
                std::vector<int32_t>* topk_out, Vec* swa_out) const {
    const ModelShape& sh = c.shape;
    const int H = sh.n_heads, hd = sh.head_dim, rd = sh.rope_head_dim, win = sh.window_size;
    const size_t D = size_t(dim());
    const Vec& freqs = L.ratio ? comp_freqs : swa_freqs;

    Vec qr = Linear(x.data(), n, D, L.wq_a, size_t(c.q_lora_rank));
    RmsNormRows(qr.data(), n, c.q_lora_rank, L.q_norm, eps());
    Vec q = Linear(qr.data(), n, size_t(c.q_lora_rank), L.wq_b, size_t(H * hd));
    Vec kv = Linear(x.data(), n, D, L.wkv, size_t(hd));
    Span qkv_span("norm_rope_quant");
    // (cos, sin) of each position, shared by q, kv, the indexer and the inverse RoPE.
    Vec rope(n * size_t(rd));
    for (size_t i = 0; i < n; ++i) RopeRow(freqs, s + int64_t(i), rope.data() + i * size_t(rd));
    ParallelFor(n, [&](size_t i) {
      const float* cs = rope.data() + i * size_t(rd);
      for (int h = 0; h < H; ++h) {
        float* qh = q.data() + (i * size_t(H) + size_t(h)) * size_t(hd);
        float ss = 0.0f;
        for (int j = 0; j < hd; ++j) ss += qh[j] * qh[j];
        const float r = 1.0f / std::sqrt(ss / float(hd) + eps());
        for (int j = 0; j < hd; ++j) qh[j] *= r;
        kernels::RopeInterleaved(qh + (hd - rd), rd, cs, false);
      }
      float* k = kv.data() + i * size_t(hd);
      kernels::RmsNormRow(k, L.kv_norm, k, hd, eps());
      kernels::RopeInterleaved(k + (hd - rd), rd, cs, false);
      kernels::Fp8SimulateBlocks(k, hd - rd, 64);
      if (num.bf16_rope_cache)
        for (int j = hd - rd; j < hd; ++j) k[j] = kernels::RoundToBf16(k[j]);
    });

    // Compressed entries (and indexer keys) of the blocks this call completes.
    std::vector<int32_t> sel;  // [n, index_topk]
    const int topk = sh.index_topk;
    if (L.ratio) Compress(L.comp, st.comp, st.entries, x.data(), n, s);
    if (L.ratio == 4) {
      const int IH = sh.index_n_heads, ihd = sh.index_head_dim;
      Compress(L.icomp, st.index_comp, st.index_keys, x.data(), n, s);
      Vec iq = Linear(qr.data(), n, size_t(c.q_lora_rank), L.iwq_b, size_t(IH * ihd));
      Vec iw = Linear(x.data(), n, D, L.iweights, size_t(IH));
      Span idx_span("indexer_scores_topk");
      const float wscale = float(std::pow(double(ihd), -0.5) * std::pow(double(IH), -0.5));
      sel.assign(n * size_t(topk), -1);
      ParallelFor(n, [&](size_t i) {
        const int64_t p = s + int64_t(i);
        const float* cs = rope.data() + i * size_t(rd);
        float* qi = iq.data() + i * size_t(IH * ihd);
        for (int h = 0; h < IH; ++h) {
          float* qh = qi + size_t(h * ihd);
          kernels::RopeInterleaved(qh + (ihd - rd), rd, cs, false);
          kernels::HadamardTransform(qh, size_t(ihd));
          kernels::Fp4SimulateBlocks(qh, ihd, 32);
        }
        float* wi = iw.data() + i * size_t(IH);
        for (int h = 0; h < IH; ++h) wi[h] *= wscale;
        const int visible = int((p + 1) / 4);
        if (visible == 0) return;
        std::vector<float> score(static_cast<size_t>(visible));
        float dots[256];
        for (int t = 0; t < visible; ++t) {
          const float* kt = st.index_keys.data() + size_t(t) * size_t(ihd);
          for (int h = 0; h < IH; ++h)
            dots[h] = kernels::Dot(qi + size_t(h) * size_t(ihd), kt, size_t(ihd));
          score[size_t(t)] = kernels::IndexScoreFromDots(dots, wi, IH);
        }
        kernels::TopKLowerIndexWins(score.data(), visible, std::min(topk, visible),
                                    sel.data() + i * size_t(topk));
      });
      if (topk_out) *topk_out = sel;
    }

    // Sparse attention: the window (ascending positions), then the compressed entries.
    const int G = c.o_groups, per_group = H * hd / G;
    Vec og(size_t(G) * n * size_t(per_group));
    Span attn_span("sparse_attention");
    ParallelFor(n, [&](size_t i) {
      const int64_t p = s + int64_t(i);
      std::vector<const float*> rows;
      rows.reserve(size_t(win + std::max(topk, 0)) + 16);
      for (int64_t wpos = std::max<int64_t>(st.swa_valid_from, p - win + 1); wpos <= p; ++wpos)
        rows.push_back(wpos >= s ? kv.data() + size_t(wpos - s) * size_t(hd)
                                 : st.swa.data() + size_t(wpos % win) * size_t(hd));
      if (L.ratio == 4) {
        for (int j = 0; j < topk; ++j) {
          const int32_t e = sel[i * size_t(topk) + size_t(j)];
          if (e >= 0) rows.push_back(st.entries.data() + size_t(e) * size_t(hd));
        }
      } else if (L.ratio) {
        const int64_t visible = (p + 1) / L.ratio;
        for (int64_t e = 0; e < visible; ++e)
          rows.push_back(st.entries.data() + size_t(e) * size_t(hd));
      }
      std::vector<float> o(size_t(H * hd));
      kernels::SparseAttentionRows(q.data() + i * size_t(H * hd), rows.data(), int(rows.size()),
                                   L.sink, H, hd, float(std::pow(double(hd), -0.5)), o.data());
      const float* cs = rope.data() + i * size_t(rd);
      for (int h = 0; h < H; ++h)
        kernels::RopeInterleaved(o.data() + size_t(h * hd + hd - rd), rd, cs, true);
      for (int g = 0; g < G; ++g)
        std::memcpy(og.data() + (size_t(g) * n + i) * size_t(per_group),
                    o.data() + size_t(g * per_group), size_t(per_group) * 4);
    });

    // The window ring keeps the last `win` positions.
    kernels::SwaRingWriteCpu({kv.data(), st.swa.data(), s, int(n), hd, win});
    if (swa_out) *swa_out = kv;

    // Grouped low-rank output projection.
    const int olr = c.o_lora_rank;
    Vec oa(n * size_t(G * olr));
    for (int g = 0; g < G; ++g) {
      Vec part = Linear(og.data() + size_t(g) * n * size_t(per_group), n, size_t(per_group),
                        L.wo_a + size_t(g) * size_t(olr) * size_t(per_group), size_t(olr));
      for (size_t i = 0; i < n; ++i)
        std::memcpy(oa.data() + i * size_t(G * olr) + size_t(g * olr),
                    part.data() + i * size_t(olr), size_t(olr) * 4);
    }
    return Linear(oa.data(), n, size_t(G * olr), L.wo_b, D);
  }

  Vec Moe(const LayerW& L, const Vec& x, size_t n, const int32_t* ids) const {
    const int E = c.n_routed_experts, K = c.n_activated_experts, inter = c.moe_inter_dim;
    const size_t D = size_t(dim());
    Vec scores = Linear(x.data(), n, D, L.gate, size_t(E));
    Span route_span("moe_route_swiglu");
    std::vector<int32_t> idx(n * size_t(K));
    Vec wts(n * size_t(K));
    ParallelFor(n, [&](size_t t) {
      float* sc = scores.data() + t * size_t(E);
      if (c.score_func == ScoreFunc::kSoftmax) {
        float mx = -INFINITY, sum = 0.0f;
        for (int e = 0; e < E; ++e) mx = std::max(mx, sc[e]);
        for (int e = 0; e < E; ++e) sum += (sc[e] = std::exp(sc[e] - mx));
        for (int e = 0; e < E; ++e) sc[e] /= sum;
      } else {
        for (int e = 0; e < E; ++e)
          sc[e] = c.score_func == ScoreFunc::kSigmoid ? kernels::Sigmoid(sc[e])
                                                      : kernels::SqrtSoftplus(sc[e]);
      }
      int32_t* it = idx.data() + t * size_t(K);
      if (L.hash) {
        std::memcpy(it, L.tid2eid + size_t(ids[t]) * size_t(K), size_t(K) * 4);
      } else {
        std::vector<float> biased(sc, sc + E);
        for (int e = 0; e < E; ++e) biased[size_t(e)] += L.gate_bias[e];
        kernels::TopKLowerIndexWins(biased.data(), E, K, it);
      }
      float* wt = wts.data() + t * size_t(K);
      float sum = 0.0f;
      for (int k = 0; k < K; ++k) sum += (wt[k] = sc[it[k]]);
      for (int k = 0; k < K; ++k) {
        if (c.score_func != ScoreFunc::kSoftmax) wt[k] /= sum;
        wt[k] *= float(c.route_scale);
      }
    });
    Vec y(n * D, 0.0f);
    const float limit = float(c.swiglu_limit);
    auto expert = [&](const float* w1, const float* w2, const float* w3, size_t width,
                      const std::vector<size_t>& rows, const std::vector<float>* weight) {
      Vec xe(rows.size() * D);
      for (size_t r = 0; r < rows.size(); ++r)
        std::memcpy(xe.data() + r * D, x.data() + rows[r] * D, D * 4);
      Vec g = Linear(xe.data(), rows.size(), D, w1, width);
      Vec u = Linear(xe.data(), rows.size(), D, w3, width);
      for (size_t r = 0; r < rows.size(); ++r)
        for (size_t j = 0; j < width; ++j) {
          float a = kernels::ClampedSwiglu(g[r * width + j], u[r * width + j], limit);
          if (weight) a = (*weight)[r] * a;
          g[r * width + j] = a;
        }
      Vec out = Linear(g.data(), rows.size(), width, w2, D);
      for (size_t r = 0; r < rows.size(); ++r)
        for (size_t j = 0; j < D; ++j) y[rows[r] * D + j] += out[r * D + j];
    };
    for (int e = 0; e < E; ++e) {
      std::vector<size_t> rows;
      std::vector<float> weight;
      for (size_t t = 0; t < n; ++t)
        for (int k = 0; k < K; ++k)
          if (idx[t * size_t(K) + size_t(k)] == e) {
            rows.push_back(t);
            weight.push_back(wts[t * size_t(K) + size_t(k)]);
          }
      if (!rows.empty())
        expert(L.w1[size_t(e)], L.w2[size_t(e)], L.w3[size_t(e)], size_t(inter), rows, &weight);
    }
    if (L.sw1) {
      std::vector<size_t> all(n);
      for (size_t t = 0; t < n; ++t) all[t] = t;
      expert(L.sw1, L.sw2, L.sw3, size_t(c.n_shared_experts) * size_t(inter), all, nullptr);
    }
    return y;
  }

  void Block(const LayerW& L, LayerState& st, Vec& h, size_t n, int64_t s, const int32_t* ids,
             std::vector<int32_t>* topk_out, Vec* swa_out) const {
    Vec x, post, comb;
    HcPre(h, n, L.hc_attn_fn, L.hc_attn_scale, L.hc_attn_base, x, post, comb);
    RmsNormRows(x.data(), n, dim(), L.attn_norm, eps());
    Vec a = Attention(L, st, x, n, s, topk_out, swa_out);
    HcPost(a, h, n, post, comb);
    HcPre(h, n, L.hc_ffn_fn, L.hc_ffn_scale, L.hc_ffn_base, x, post, comb);
    RmsNormRows(x.data(), n, dim(), L.ffn_norm, eps());
    Vec f = Moe(L, x, n, ids);
    HcPost(f, h, n, post, comb);
  }
};

Model::Model(const ModelConfig& config, std::shared_ptr<const ModelWeights> weights)
    : config_(config), weights_(std::move(weights)) {}
Model::~Model() = default;

Result<std::unique_ptr<Model>> Model::Create(const ModelConfig& config,
                                             std::shared_ptr<const ModelWeights> weights,
                                             Numerics numerics) {
  STRATA_RETURN_IF_ERROR(config.Validate());
  if (!weights) return Status::InvalidArgument("model " + config.shape.name + ": no weights");
  const ModelShape& s = config.shape;
  if (s.hc_mult < 1 || s.hc_mult > 8 || (2 + s.hc_mult) * s.hc_mult > 64)
    return Status::InvalidArgument("model " + s.name + ": hc_mult must be in [1, 7]");
  if (s.rope_head_dim > 512 || s.rope_head_dim % 2)
    return Status::InvalidArgument("model " + s.name + ": rope_head_dim must be even and <= 512");
  if ((s.head_dim - s.rope_head_dim) % 64)
    return Status::InvalidArgument("model " + s.name +
                                   ": head_dim - rope_head_dim must be a multiple of 64");
  if (s.n_mtp_layers > 1)
    return Status::InvalidArgument("model " + s.name + ": at most one MTP layer is supported");
  bool csa = false;
  for (int r : s.compress_ratios) csa = csa || r == 4;
  if (csa && (!IsPowerOfTwo(s.index_head_dim) || s.index_head_dim % 32 ||
              s.index_head_dim < s.rope_head_dim))
    return Status::InvalidArgument(
        "model " + s.name +
        ": index_head_dim must be a power of two, a multiple of 32 and >= rope_head_dim");
  if (csa && s.index_n_heads > 256)
    return Status::InvalidArgument("model " + s.name + ": index_n_heads must be <= 256");
  if ((s.n_heads * s.head_dim) % config.o_groups)
    return Status::InvalidArgument("model " + s.name + ": o_groups must divide n_heads*head_dim");
  for (const TensorSpec& spec : ExpectedTensors(config))
    if (!weights->Has(spec.name))
      return Status::InvalidArgument("model " + s.name + ": weights lack " + spec.name);
  std::unique_ptr<Model> m(new Model(config, std::move(weights)));
  // Large per-call buffers (activations of long chunks) are reused from the heap rather than
  // mapped afresh each call: first touches of new pages are the dominant cost otherwise.
  static const bool heap_tuned = [] {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return true;
  }();
  (void)heap_tuned;
  m->numerics_ = numerics;
  m->impl_ = std::make_unique<Impl>(m->config_, *m->weights_);
  m->impl_->num = numerics;
  return m;
}

RequestState Model::NewState() const {
  const ModelShape& s = config_.shape;
  RequestState st;
  auto carry = [&](int ratio, int d) {
    CompressorCarry cc;
    const int coff = ratio == 4 ? 2 : 1;
    cc.ratio = ratio, cc.rows = coff * ratio, cc.cols = coff * d;
    cc.kv.assign(size_t(cc.rows) * size_t(cc.cols), 0.0f);
    cc.score.assign(cc.kv.size(), -INFINITY);
    return cc;
  };
  for (int l = 0; l < s.n_layers + s.n_mtp_layers; ++l) {
    LayerState ls;
    ls.ratio = s.compress_ratios[size_t(l)];
    ls.swa.assign(size_t(s.window_size) * size_t(s.head_dim), 0.0f);
    if (ls.ratio) ls.comp = carry(ls.ratio, s.head_dim);
    if (ls.ratio == 4) ls.index_comp = carry(4, s.index_head_dim);
    st.layers.push_back(std::move(ls));
  }
  return st;
}

Result<ForwardResult> Model::Forward(RequestState& st, std::span<const int32_t> tokens,
                                     const ForwardOptions& opt) const {
  const ModelShape& s = config_.shape;
  const Impl& I = *impl_;
  if (tokens.empty()) return Status::InvalidArgument("forward: no tokens");
  if (st.layers.size() != size_t(s.n_layers + s.n_mtp_layers))
    return Status::InvalidArgument("forward: the request state belongs to another model");
  for (int32_t t : tokens)
    if (t < 0 || t >= s.vocab_size)
      return Status::InvalidArgument("forward: token " + std::to_string(t) + " outside [0, " +
                                     std::to_string(s.vocab_size) + ")");
  if (opt.mtp_next && (*opt.mtp_next < 0 || *opt.mtp_next >= s.vocab_size))
    return Status::InvalidArgument("forward: mtp_next token outside the vocabulary");
  const size_t n = tokens.size();
  const int64_t start = st.pos;
  const int hcm = s.hc_mult;
  const size_t D = size_t(s.dim), HD = size_t(hcm) * D;
  KernelProfile* const saved_profile = g_profile;
  g_profile = opt.profile;
  struct Restore {
    KernelProfile* p;
    ~Restore() { g_profile = p; }
  } restore{saved_profile};

  Vec h(n * HD);
  for (size_t t = 0; t < n; ++t)
    for (int i = 0; i < hcm; ++i)
      std::memcpy(h.data() + t * HD + size_t(i) * D, I.embed + size_t(tokens[t]) * D, D * 4);
  if (opt.trace) opt.trace->hidden_last.clear(), opt.trace->topk.clear();
  ForwardResult out;
  for (int l = 0; l < s.n_layers; ++l) {
    std::vector<int32_t>* topk = nullptr;
    if (opt.trace && opt.trace->want_topk && I.layers[size_t(l)].ratio == 4)
      topk = &opt.trace->topk[l];
    Vec* swa_out = nullptr;
    if (opt.capture_swa) {
      out.swa.resize(st.layers.size());
      out.swa[size_t(l)].first = start;
      swa_out = &out.swa[size_t(l)].rows;
    }
    I.Block(I.layers[size_t(l)], st.layers[size_t(l)], h, n, start, tokens.data(), topk, swa_out);
    if (opt.trace && opt.trace->want_hidden)
      opt.trace->hidden_last.emplace_back(h.end() - long(HD), h.end());
  }
  const size_t rows = opt.all_logits ? n : 1;
  out.logits = I.Logits(h.data() + (n - rows) * HD, rows, I.hc_head_fn, I.hc_head_scale,
                        I.hc_head_base, I.norm);

  // MTP: position q pairs its hidden state with token q + 1.
  const bool mtp_ready =
      st.mtp_pos == start || (st.mtp_pos == start - 1 && st.mtp_hidden.size() == HD);
  if (s.n_mtp_layers > 0 && opt.run_mtp && mtp_ready) {
    const int64_t end = start + int64_t(n) - (opt.mtp_next ? 0 : 1);  // exclusive
    const int64_t first = st.mtp_pos;
    if (end > first) {
      const size_t m = size_t(end - first);
      Vec x(m * HD);
      std::vector<int32_t> next(m);
      for (size_t r = 0; r < m; ++r) {
        const int64_t q = first + int64_t(r);
        const float* src = q < start ? st.mtp_hidden.data() : h.data() + size_t(q - start) * HD;
        std::memcpy(x.data() + r * HD, src, HD * 4);
        next[r] = q + 1 < start + int64_t(n) ? tokens[size_t(q + 1 - start)] : *opt.mtp_next;
      }
      const LayerW& L = I.layers[size_t(s.n_layers)];
      Vec e(m * D);
      for (size_t r = 0; r < m; ++r)
        std::memcpy(e.data() + r * D, I.embed + size_t(next[r]) * D, D * 4);
      RmsNormRows(e.data(), m, s.dim, L.enorm, I.eps());
      Vec ep = Linear(e.data(), m, D, L.e_proj, D);
      RmsNormRows(x.data(), m * size_t(hcm), s.dim, L.hnorm, I.eps());
      Vec hp = Linear(x.data(), m * size_t(hcm), D, L.h_proj, D);
      for (size_t r = 0; r < m; ++r)
        for (int i = 0; i < hcm; ++i)
          for (size_t j = 0; j < D; ++j)
            x[r * HD + size_t(i) * D + j] =
                ep[r * D + j] + hp[(r * size_t(hcm) + size_t(i)) * D + j];
      Vec* swa_out = nullptr;
      if (opt.capture_swa) {
        out.swa.resize(st.layers.size());
        out.swa[size_t(s.n_layers)].first = first;
        swa_out = &out.swa[size_t(s.n_layers)].rows;
      }
      I.Block(L, st.layers[size_t(s.n_layers)], x, m, first, next.data(), nullptr, swa_out);
      if (opt.mtp_next)
        out.mtp_logits = I.Logits(x.data() + (m - 1) * HD, 1, L.hc_head_fn, L.hc_head_scale,
                                  L.hc_head_base, L.norm);
      st.mtp_pos = end;
    }
    if (st.mtp_pos < start + int64_t(n))
      st.mtp_hidden.assign(h.end() - long(HD), h.end());
    else
      st.mtp_hidden.clear();
  }
  st.pos = start + int64_t(n);
  return out;
}

}  // namespace strata::engine
