#include "engine/session.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>

namespace strata::engine {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int32_t Argmax(const std::vector<float>& v) {
  return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

// A copy of the state without its entry pools (rings, carry, MTP): what a checkpoint or the
// block-end tail is packed from.
RequestState WithoutEntries(const RequestState& st) {
  RequestState c;
  c.pos = st.pos, c.mtp_pos = st.mtp_pos, c.mtp_hidden = st.mtp_hidden;
  for (const LayerState& ls : st.layers) {
    LayerState l;
    l.ratio = ls.ratio, l.swa = ls.swa, l.comp = ls.comp, l.index_comp = ls.index_comp;
    c.layers.push_back(std::move(l));
  }
  return c;
}

// A copy holding only block b's entries and indexer keys, as block 0.
RequestState BlockEntries(const RequestState& st, int64_t b, int64_t B, size_t hd, size_t ihd) {
  RequestState c;
  for (const LayerState& ls : st.layers) {
    LayerState l;
    l.ratio = ls.ratio;
    if (ls.ratio) {
      const size_t per = size_t(B / ls.ratio), first = size_t(b) * per;
      l.entries.assign(ls.entries.begin() + long(first * hd),
                       ls.entries.begin() + long((first + per) * hd));
      if (ls.ratio == 4)
        l.index_keys.assign(ls.index_keys.begin() + long(first * ihd),
                            ls.index_keys.begin() + long((first + per) * ihd));
    }
    c.layers.push_back(std::move(l));
  }
  return c;
}

}  // namespace

CachedEngine::CachedEngine(std::shared_ptr<const Model> model, Store* store, EngineOptions options,
                           CacheLayout layout)
    : model_(std::move(model)),
      store_(store),
      options_(std::move(options)),
      codec_(model_->config(), layout) {
  // The namespace secret and the weights' id: state of other weights is never served.
  std::string secret = options_.namespace_secret;
  const uint64_t wid = model_->weights().id();
  secret.append(reinterpret_cast<const char*>(&wid), sizeof wid);
  root_ = RootKey(std::as_bytes(std::span(secret.data(), secret.size())), layout.fingerprint());
  compressed_ = HitFamilies(layout);
  if (options_.background_offload) worker_ = std::thread([this] { OffloadLoop(); });
}

CachedEngine::~CachedEngine() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

Result<std::unique_ptr<CachedEngine>> CachedEngine::Create(std::shared_ptr<const Model> model,
                                                           Store* store, EngineOptions options) {
  if (!model) return Status::InvalidArgument("engine: no model");
  STRATA_ASSIGN_OR_RETURN(CacheLayout layout, LayoutFor(*model, options.block_size));
  if (uint32_t(model->config().shape.window_size) > options.block_size)
    return Status::InvalidArgument("engine: the block size must be at least the SWA window");
  if (options.cost.prefill_s_per_token <= 0) {
    // The prefill speed of this backend, measured on a short scratch prompt.
    const int n = 256;
    std::vector<int32_t> tokens(n);
    for (int i = 0; i < n; ++i) tokens[size_t(i)] = (i * 7919) % model->config().shape.vocab_size;
    RequestState st = model->NewState();
    ForwardOptions fo;
    fo.run_mtp = true;
    const auto t = Clock::now();
    STRATA_RETURN_IF_ERROR(model->Forward(st, tokens, fo).status());
    options.cost.prefill_s_per_token = Since(t) / n;
  }
  return std::unique_ptr<CachedEngine>(
      new CachedEngine(std::move(model), store, std::move(options), layout));
}

Result<CacheLayout> CachedEngine::LayoutFor(const Model& model, uint32_t block_size) {
  LayoutOptions lo;
  lo.block_size = block_size;
  lo.numerics_version = model.numerics().bf16_rope_cache ? 1 : 2;
  return CacheLayout::Make(model.config().shape, lo);
}

void CachedEngine::OffloadLoop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_ and drained
    Offload job = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    l.unlock();
    Status s = StoreObject(job);
    l.lock();
    busy_ = false;
    if (!s.ok() && offload_status_.ok()) offload_status_ = s;
    cv_.notify_all();
  }
}

Status CachedEngine::StoreObject(const Offload& job) {
  STRATA_ASSIGN_OR_RETURN(std::vector<std::byte> bytes, job.make());
  return store_->Put(job.key, codec_.layout().fingerprint(), bytes, job.hints);
}

PutHints CachedEngine::Hints(Family f, int64_t b, std::span<const BlockKey> keys) const {
  const CacheLayout& lay = codec_.layout();
  const int64_t B = lay.block_size();
  PutHints h;
  h.depth = uint32_t(b);
  h.has_parent = b > 0;
  if (b > 0) h.parent = keys[size_t(b - 1)];
  // A hit on the compressed families saves the block's prefill (shared by their bytes); the
  // SWA or a checkpoint saves the recompute of the window that would rebuild it.
  const double s_per_token = options_.cost.prefill_s_per_token;
  if (f == Family::kSwa || f == Family::kCheckpoint) {
    const int64_t saved = std::min<int64_t>(RecomputeReach(lay.shape()), (b + 1) * B);
    h.value_per_byte = double(saved) * s_per_token / double(lay.FamilyBlockBytes(f));
  } else {
    uint64_t bytes = 0;
    for (Family c : {Family::kCsa, Family::kCsaIndex, Family::kHca})
      bytes += lay.FamilyBlockBytes(c);
    h.value_per_byte = double(B) * s_per_token / double(bytes);
  }
  return h;
}

void CachedEngine::Enqueue(ObjectKey key, const PutHints& hints,
                           std::function<Result<std::vector<std::byte>>()> make, TurnResult& r) {
  r.offload_bytes += codec_.layout().FamilyBlockBytes(key.family);
  Offload job{key, hints, std::move(make)};
  if (!options_.background_offload) {
    Status s = StoreObject(job);
    std::lock_guard<std::mutex> l(mu_);
    if (!s.ok() && offload_status_.ok()) offload_status_ = s;
    return;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
}

Status CachedEngine::WaitOffload() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return queue_.empty() && !busy_; });
  Status s = offload_status_;
  offload_status_ = Status::Ok();
  return s;
}

Status CachedEngine::Execute(const RestorePlan& plan, std::span<const BlockKey> keys,
                             std::span<const int32_t> prompt, RequestState& st, TurnResult& r) {
  st = model_->NewState();
  if (plan.kind == RestorePlan::kCold) return Status::Ok();
  const uint64_t fp = codec_.layout().fingerprint();
  // The planner's reads (a simulator issues the same ones): compressed first, then the swa
  // blocks or the checkpoint.
  const std::vector<PlanRead> reads = PlanReads(plan, codec_.layout());
  const int64_t blocks = reads[0].blocks;
  auto keys_of = [&](const PlanRead& rd) {
    return keys.subspan(size_t(rd.first_block), size_t(rd.blocks));
  };
  auto account = [&](const std::vector<ObjectView>& views) {
    for (const ObjectView& v : views) r.read_bytes[size_t(v.served_from)] += v.size;
  };
  {
    STRATA_ASSIGN_OR_RETURN(std::vector<ObjectView> views,
                            store_->Get(options_.ns, fp, keys_of(reads[0]), compressed_));
    PinGuard pins(*store_, views);
    account(views);
    const size_t per = size_t(std::popcount(compressed_.bits()));
    for (int64_t b = 0; b < blocks; ++b) {
      std::span<const std::byte> fam[3];
      size_t i = size_t(b) * per;
      for (Family f : {Family::kCsa, Family::kCsaIndex, Family::kHca}) {
        if (!compressed_.Has(f)) continue;
        const ObjectView& v = views[i++];
        if (!v.found())
          return Status::NotFound("restore: block " + std::to_string(b) + " " +
                                  std::string(FamilyName(f)) + " is gone");
        fam[int(f)] = std::span(v.data, v.size);
      }
      STRATA_RETURN_IF_ERROR(codec_.DecodeCompressed(st, b, fam[0], fam[1], fam[2]));
    }
  }
  if (plan.kind == RestorePlan::kFull) {
    STRATA_ASSIGN_OR_RETURN(std::vector<ObjectView> views,
                            store_->Get(options_.ns, fp, keys_of(reads[1]), reads[1].families));
    PinGuard pins(*store_, views);
    account(views);
    std::vector<std::span<const std::byte>> spans;
    for (const ObjectView& v : views) {
      if (!v.found()) return Status::NotFound("restore: a swa family is gone");
      spans.emplace_back(v.data, v.size);
    }
    return codec_.DecodeSwa(st, plan.hit_tokens, spans);
  }
  if (plan.kind == RestorePlan::kCheckpoint) {
    STRATA_ASSIGN_OR_RETURN(std::vector<ObjectView> views,
                            store_->Get(options_.ns, fp, keys_of(reads[1]), reads[1].families));
    PinGuard pins(*store_, views);
    account(views);
    if (views.empty() || !views[0].found())
      return Status::NotFound("restore: the checkpoint is gone");
    return codec_.DecodeCheckpoint(st, plan.state_from, std::span(views[0].data, views[0].size));
  }
  // Recompute: the window pyramid over the restored entries, from state_from.
  for (LayerState& ls : st.layers) ls.swa_valid_from = plan.state_from;
  st.pos = st.mtp_pos = plan.state_from;
  STRATA_RETURN_IF_ERROR(
      model_->Forward(st, prompt.subspan(size_t(plan.state_from), size_t(plan.recompute_tokens)))
          .status());
  for (LayerState& ls : st.layers) ls.swa_valid_from = 0;
  return Status::Ok();
}

Status CachedEngine::Generate(std::span<const int32_t> prompt, RequestState& st, int max_new,
                              const SwaPolicy& policy, bool offload, int64_t stored_blocks,
                              TurnResult& r) {
  const ModelShape& s = model_->config().shape;
  const int64_t B = codec_.block_size(), n = int64_t(prompt.size());
  const size_t hd = size_t(s.head_dim);
  const bool full = offload && policy.kind == SwaPolicy::kFull;
  const bool checkpoints = offload && policy.kind == SwaPolicy::kCheckpoint;
  std::vector<int32_t> tokens(prompt.begin(), prompt.end());
  std::vector<BlockKey> keys;
  BlockKey prev = root_;
  BlockSwaRows rows;
  auto reset_rows = [&] {
    rows.layers.assign(st.layers.size(), std::vector<float>(size_t(B) * hd, 0.0f));
  };
  if (full) reset_rows();
  std::shared_ptr<RequestState> last_checkpoint;  // the state at the last block end, no entries
  int64_t last_checkpoint_block = -1;
  bool last_checkpoint_queued = false;

  auto run = [&](std::span<const int32_t> chunk) -> Result<ForwardResult> {
    ForwardOptions fo;
    fo.capture_swa = full;
    STRATA_ASSIGN_OR_RETURN(ForwardResult out, model_->Forward(st, chunk, fo));
    if (full) {
      const int64_t cur = (st.pos - 1) / B;  // the block this chunk's positions are in
      for (size_t l = 0; l < out.swa.size(); ++l) {
        const bool mtp = int(l) >= s.n_layers;
        const SwaRows& sr = out.swa[l];
        for (size_t i = 0; i < sr.rows.size() / hd; ++i) {
          const int64_t q = sr.first + int64_t(i), idx = mtp ? q + 1 : q;
          if (idx / B != cur) continue;
          std::memcpy(rows.layers[l].data() + size_t(idx % B) * hd, sr.rows.data() + i * hd,
                      hd * 4);
        }
      }
    }
    if (st.pos % B == 0 && offload) {  // a block just ended
      const int64_t b = st.pos / B - 1;
      while (int64_t(keys.size()) <= b) {
        prev = ChainKey(prev, std::span(tokens).subspan(keys.size() * size_t(B), size_t(B)));
        keys.push_back(prev);
      }
      const BlockKey key = keys[size_t(b)];
      if (b >= stored_blocks) {
        // Block b's entries alone, as block 0 of a copy.
        auto block =
            std::make_shared<RequestState>(BlockEntries(st, b, B, hd, size_t(s.index_head_dim)));
        for (Family f : {Family::kCsa, Family::kCsaIndex, Family::kHca}) {
          if (!compressed_.Has(f)) continue;
          Enqueue(
              {options_.ns, key, f}, Hints(f, b, keys),
              [this, block, f]() {
                return f == Family::kCsa        ? codec_.EncodeCsa(*block, 0)
                       : f == Family::kCsaIndex ? codec_.EncodeCsaIndex(*block, 0)
                                                : codec_.EncodeHca(*block, 0);
              },
              r);
        }
        if (full) {
          auto tail = std::make_shared<RequestState>(WithoutEntries(st));
          auto block_rows = std::make_shared<BlockSwaRows>(std::move(rows));
          Enqueue(
              {options_.ns, key, Family::kSwa}, Hints(Family::kSwa, b, keys),
              [this, tail, block_rows]() { return codec_.EncodeSwa(*block_rows, *tail); }, r);
        }
      }
      if (full) reset_rows();
      if (checkpoints) {
        last_checkpoint = std::make_shared<RequestState>(WithoutEntries(st));
        last_checkpoint_block = b;
        last_checkpoint_queued = false;
        if (StoresCheckpoint(policy, st.pos, /*request_end=*/false)) {
          Enqueue(
              {options_.ns, key, Family::kCheckpoint}, Hints(Family::kCheckpoint, b, keys),
              [this, cp = last_checkpoint]() { return codec_.EncodeCheckpoint(*cp); }, r);
          last_checkpoint_queued = true;
        }
      }
    }
    return out;
  };

  // The rest of the prompt, in chunks that end at block ends.
  ForwardResult out;
  const auto t0 = Clock::now();
  while (st.pos < n) {
    const int64_t end = std::min(n, (st.pos / B + 1) * B);
    r.prefilled_tokens += end - st.pos;
    STRATA_ASSIGN_OR_RETURN(out,
                            run(std::span(prompt).subspan(size_t(st.pos), size_t(end - st.pos))));
  }
  r.prefill_s += Since(t0);
  // Greedy decode.
  const auto t1 = Clock::now();
  for (int i = 0; i < max_new; ++i) {
    r.logits.push_back(out.logits);
    const int32_t next = Argmax(out.logits);
    r.output.push_back(next);
    if (i + 1 == max_new) break;
    tokens.push_back(next);
    STRATA_ASSIGN_OR_RETURN(out, run(std::span(&tokens.back(), 1)));
  }
  if (max_new == 0 && !out.logits.empty()) r.logits.push_back(out.logits);
  r.decode_s = Since(t1);
  if (checkpoints && last_checkpoint_block >= 0 && !last_checkpoint_queued)
    Enqueue(
        {options_.ns, keys[size_t(last_checkpoint_block)], Family::kCheckpoint},
        Hints(Family::kCheckpoint, last_checkpoint_block, keys),
        [this, cp = last_checkpoint]() { return codec_.EncodeCheckpoint(*cp); }, r);
  return Status::Ok();
}

Result<TurnResult> CachedEngine::RunTurn(std::span<const int32_t> prompt, const TurnOptions& opt) {
  if (prompt.empty()) return Status::InvalidArgument("turn: empty prompt");
  const SwaPolicy& policy = opt.policy ? *opt.policy : options_.policy;
  TurnResult r;
  r.prompt_tokens = int64_t(prompt.size());
  const int64_t B = codec_.block_size();
  const int64_t usable = (int64_t(prompt.size()) - 1) / B;  // keep the last token to compute
  const std::vector<BlockKey> keys =
      ChainBlockKeys(root_, prompt.first(size_t(usable * B)), uint32_t(B));
  auto t = Clock::now();
  LookupResult found;
  if (store_ && usable > 0) {
    STRATA_ASSIGN_OR_RETURN(
        found, store_->Lookup(options_.ns, codec_.layout().fingerprint(), keys, compressed_));
  }
  r.lookup_s = Since(t);
  r.prefix_hit_tokens = int64_t(found.hit_blocks) * B;
  PlanOptions po;
  if (opt.force) po.only = *opt.force;
  std::vector<RestorePlan> plans =
      store_ ? PlanRestores(codec_.layout(), found, int64_t(prompt.size()), options_.cost, po)
             : std::vector<RestorePlan>{RestorePlan{}};
  r.candidates = plans;
  RequestState st;
  t = Clock::now();
  for (const RestorePlan& p : plans) {
    Status s = Execute(p, keys, prompt, st, r);
    if (s.ok()) {
      r.plan = p;
      r.restore_s = Since(t);
      break;
    }
    if (s.code() != StatusCode::kNotFound && s.code() != StatusCode::kCorruption) return s;
    ++r.fallbacks;  // bytes gone or corrupt: the next plan
  }
  if (opt.checkpoint_restored && store_ && r.plan.kind != RestorePlan::kCold) {
    auto cp = std::make_shared<RequestState>(WithoutEntries(st));
    Enqueue(
        {options_.ns, keys[size_t(r.plan.hit_tokens / B - 1)], Family::kCheckpoint},
        Hints(Family::kCheckpoint, r.plan.hit_tokens / B - 1, keys),
        [this, cp]() { return codec_.EncodeCheckpoint(*cp); }, r);
  }
  // Blocks stored before this turn: the compressed hit (their families need no rewrite).
  const int64_t stored_blocks = int64_t(found.hit_blocks);
  STRATA_RETURN_IF_ERROR(Generate(prompt, st, opt.max_new, policy, opt.offload && store_ != nullptr,
                                  stored_blocks, r));
  if (opt.final_state) *opt.final_state = std::move(st);
  return r;
}

Result<TurnResult> CachedEngine::RunCold(std::span<const int32_t> prompt, int max_new,
                                         RequestState* final_state) {
  TurnResult r;
  r.prompt_tokens = int64_t(prompt.size());
  RequestState st = model_->NewState();
  STRATA_RETURN_IF_ERROR(Generate(prompt, st, max_new, options_.policy, false, 0, r));
  if (final_state) *final_state = std::move(st);
  return r;
}

}  // namespace strata::engine
