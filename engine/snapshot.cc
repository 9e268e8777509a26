#include "engine/snapshot.h"

#include <cmath>
#include <cstring>

#include "engine/restore_planner.h"
#include "kernels/entry_format.h"
#include "kernels/state_path.h"

namespace strata::engine {
namespace {

uint8_t* U8(std::byte* p) { return reinterpret_cast<uint8_t*>(p); }
const uint8_t* U8(const std::byte* p) { return reinterpret_cast<const uint8_t*>(p); }

}  // namespace

StateCodec::StateCodec(const ModelConfig& config, const CacheLayout& layout)
    : config_(config), layout_(layout) {
  const ModelShape& s = config_.shape;
  main_bytes_ = kernels::MainEntrySize(s.head_dim, s.rope_head_dim);
  index_bytes_ = kernels::IndexEntrySize(s.index_head_dim);
}

// Packs block b's entries of every layer with compress ratio `ratio`: main entries, or the
// indexer keys (`index`).
Result<std::vector<std::byte>> StateCodec::EncodeEntries(const RequestState& st, int64_t b,
                                                         int ratio, bool index,
                                                         Family family) const {
  const ModelShape& s = config_.shape;
  const int64_t per = int64_t(block_size()) / ratio;
  const int64_t dim = index ? s.index_head_dim : s.head_dim;
  const int64_t entry_bytes = index ? index_bytes_ : main_bytes_;
  std::vector<std::byte> out(layout_.FamilyBlockBytes(family));
  std::byte* at = out.data();
  for (const LayerState& ls : st.layers) {
    if (ls.ratio != ratio) continue;
    const std::vector<float>& src = index ? ls.index_keys : ls.entries;
    if (int64_t(src.size()) < (b + 1) * per * dim)
      return Status::FailedPrecondition(std::string(FamilyName(family)) + ": block " +
                                        std::to_string(b) + " is not compressed yet");
    const float* from = src.data() + size_t(b * per * dim);
    if (index)
      kernels::PackIndexEntriesCpu(from, int(per), int(dim), U8(at));
    else
      kernels::PackMainEntriesCpu(from, int(per), int(dim), s.rope_head_dim, U8(at));
    at += per * entry_bytes;
  }
  return out;
}

Result<std::vector<std::byte>> StateCodec::EncodeCsa(const RequestState& st, int64_t b) const {
  return EncodeEntries(st, b, 4, false, Family::kCsa);
}

Result<std::vector<std::byte>> StateCodec::EncodeCsaIndex(const RequestState& st, int64_t b) const {
  return EncodeEntries(st, b, 4, true, Family::kCsaIndex);
}

Result<std::vector<std::byte>> StateCodec::EncodeHca(const RequestState& st, int64_t b) const {
  return EncodeEntries(st, b, 128, false, Family::kHca);
}

Status StateCodec::CheckBlockEnd(const RequestState& st, const char* what) const {
  const ModelShape& s = config_.shape;
  if (st.pos % block_size())
    return Status::FailedPrecondition(std::string(what) + ": the state is not at a block end");
  if (s.n_mtp_layers > 0 &&
      (st.mtp_pos != st.pos - 1 || st.mtp_hidden.size() != size_t(s.hc_mult * s.dim)))
    return Status::FailedPrecondition(std::string(what) +
                                      ": the MTP layer is not one position behind");
  return Status::Ok();
}

void StateCodec::EncodeTail(const RequestState& st, std::byte* out) const {
  const ModelShape& s = config_.shape;
  auto put = [&](const CompressorCarry& c, int d) {
    for (const std::vector<float>* v : {&c.kv, &c.score})
      for (int r = 0; r < 4; ++r) {
        std::memcpy(out, v->data() + size_t(r) * size_t(c.cols), size_t(d) * 4);
        out += d * 4;
      }
  };
  for (const LayerState& ls : st.layers) {
    if (ls.ratio != 4) continue;
    put(ls.comp, s.head_dim);
    put(ls.index_comp, s.index_head_dim);
  }
  if (s.n_mtp_layers > 0 && !st.mtp_hidden.empty())
    std::memcpy(out, st.mtp_hidden.data(), st.mtp_hidden.size() * 4);
}

Status StateCodec::DecodeTail(RequestState& st, std::span<const std::byte> tail) const {
  const ModelShape& s = config_.shape;
  if (tail.size() != layout_.checkpoint_carry_bytes())
    return Status::Corruption("block-end tail of " + std::to_string(tail.size()) +
                              " bytes, the layout says " +
                              std::to_string(layout_.checkpoint_carry_bytes()));
  const std::byte* in = tail.data();
  auto reset = [](CompressorCarry& c) {
    std::fill(c.kv.begin(), c.kv.end(), 0.0f);
    std::fill(c.score.begin(), c.score.end(), -INFINITY);
  };
  auto get = [&](CompressorCarry& c, int d) {
    reset(c);
    for (std::vector<float>* v : {&c.kv, &c.score})
      for (int r = 0; r < 4; ++r) {
        std::memcpy(v->data() + size_t(r) * size_t(c.cols), in, size_t(d) * 4);
        in += d * 4;
      }
  };
  for (LayerState& ls : st.layers) {
    if (ls.ratio == 4) {
      get(ls.comp, s.head_dim);
      get(ls.index_comp, s.index_head_dim);
    } else if (ls.ratio) {
      reset(ls.comp);  // empty at a 128-aligned block end
    }
  }
  if (s.n_mtp_layers > 0) {
    st.mtp_hidden.resize(size_t(s.hc_mult) * size_t(s.dim));
    std::memcpy(st.mtp_hidden.data(), in, st.mtp_hidden.size() * 4);
  }
  return Status::Ok();
}

Result<std::vector<std::byte>> StateCodec::EncodeSwa(const BlockSwaRows& rows,
                                                     const RequestState& st) const {
  const ModelShape& s = config_.shape;
  const int64_t B = block_size();
  STRATA_RETURN_IF_ERROR(CheckBlockEnd(st, "swa"));
  if (rows.layers.size() != st.layers.size())
    return Status::InvalidArgument("swa: rows for " + std::to_string(rows.layers.size()) +
                                   " layers, the model has " + std::to_string(st.layers.size()));
  std::vector<std::byte> out(layout_.FamilyBlockBytes(Family::kSwa));
  std::byte* at = out.data();
  for (const std::vector<float>& r : rows.layers) {
    if (r.size() != size_t(B) * size_t(s.head_dim))
      return Status::InvalidArgument("swa: a layer's rows do not cover the block");
    kernels::PackMainEntriesCpu(r.data(), int(B), s.head_dim, s.rope_head_dim, U8(at));
    at += B * main_bytes_;
  }
  EncodeTail(st, at);
  return out;
}

Result<std::vector<std::byte>> StateCodec::EncodeCheckpoint(const RequestState& st) const {
  const ModelShape& s = config_.shape;
  STRATA_RETURN_IF_ERROR(CheckBlockEnd(st, "checkpoint"));
  std::vector<std::byte> out(layout_.FamilyBlockBytes(Family::kCheckpoint));
  std::byte* at = out.data();
  for (const LayerState& ls : st.layers) {
    kernels::PackMainEntriesCpu(ls.swa.data(), s.window_size, s.head_dim, s.rope_head_dim, U8(at));
    at += s.window_size * main_bytes_;
  }
  EncodeTail(st, at);
  return out;
}

Status StateCodec::DecodeCompressed(RequestState& st, int64_t b, std::span<const std::byte> csa,
                                    std::span<const std::byte> csa_index,
                                    std::span<const std::byte> hca) const {
  const ModelShape& s = config_.shape;
  const int64_t B = block_size(), hd = s.head_dim, ihd = s.index_head_dim;
  if (csa.size() != layout_.FamilyBlockBytes(Family::kCsa) ||
      csa_index.size() != layout_.FamilyBlockBytes(Family::kCsaIndex) ||
      hca.size() != layout_.FamilyBlockBytes(Family::kHca))
    return Status::Corruption("compressed families of block " + std::to_string(b) +
                              " have the wrong sizes for this layout");
  const std::byte *c = csa.data(), *ci = csa_index.data(), *h = hca.data();
  for (LayerState& ls : st.layers) {
    if (!ls.ratio) continue;
    const int64_t per = B / ls.ratio;
    if (int64_t(ls.entries.size()) != b * per * hd)
      return Status::FailedPrecondition("restore: block " + std::to_string(b) +
                                        " does not follow the restored entries");
    ls.entries.resize(size_t((b + 1) * per * hd));
    float* dst = ls.entries.data() + size_t(b * per * hd);
    if (ls.ratio == 4) {
      kernels::UnpackMainEntriesCpu(U8(c), int(per), int(hd), s.rope_head_dim, dst);
      c += per * main_bytes_;
      ls.index_keys.resize(size_t((b + 1) * per * ihd));
      kernels::UnpackIndexEntriesCpu(U8(ci), int(per), int(ihd),
                                     ls.index_keys.data() + size_t(b * per * ihd));
      ci += per * index_bytes_;
    } else {
      kernels::UnpackMainEntriesCpu(U8(h), int(per), int(hd), s.rope_head_dim, dst);
      h += per * main_bytes_;
    }
  }
  return Status::Ok();
}

Status StateCodec::DecodeCheckpoint(RequestState& st, int64_t end,
                                    std::span<const std::byte> cp) const {
  const ModelShape& s = config_.shape;
  if (cp.size() != layout_.FamilyBlockBytes(Family::kCheckpoint))
    return Status::Corruption("checkpoint of " + std::to_string(cp.size()) +
                              " bytes, the layout says " +
                              std::to_string(layout_.FamilyBlockBytes(Family::kCheckpoint)));
  const std::byte* at = cp.data();
  for (LayerState& ls : st.layers) {
    kernels::UnpackMainEntriesCpu(U8(at), s.window_size, s.head_dim, s.rope_head_dim,
                                  ls.swa.data());
    at += s.window_size * main_bytes_;
    ls.swa_valid_from = 0;
  }
  STRATA_RETURN_IF_ERROR(
      DecodeTail(st, cp.subspan(size_t(at - cp.data()), layout_.checkpoint_carry_bytes())));
  st.pos = end;
  st.mtp_pos = s.n_mtp_layers > 0 ? end - 1 : 0;
  return Status::Ok();
}

int StateCodec::SwaBlocksNeeded() const { return engine::SwaBlocksNeeded(layout_); }

Status StateCodec::DecodeSwa(RequestState& st, int64_t end,
                             std::span<const std::span<const std::byte>> swa) const {
  const ModelShape& s = config_.shape;
  const int64_t B = block_size(), hd = s.head_dim, win = s.window_size;
  const int64_t nblocks = int64_t(swa.size());
  if (nblocks < SwaBlocksNeeded() || end % B || end < nblocks * B)
    return Status::InvalidArgument("restore: the swa families do not cover the window");
  for (const auto& f : swa)
    if (f.size() != layout_.FamilyBlockBytes(Family::kSwa))
      return Status::Corruption("swa family of the wrong size for this layout");
  const int64_t first_block = end / B - nblocks;
  const size_t layer_bytes = size_t(B) * size_t(main_bytes_);
  for (size_t l = 0; l < st.layers.size(); ++l) {
    LayerState& ls = st.layers[l];
    const bool mtp = int(l) >= s.n_layers;
    // The ring holds positions [end - win, end) (main) or [end - win - 1, end - 1) (MTP).
    const int64_t lo = mtp ? end - win - 1 : end - win;
    for (int64_t q = lo; q < lo + win; ++q) {
      float* dst = ls.swa.data() + size_t(((q % win) + win) % win) * size_t(hd);
      const int64_t idx = mtp ? q + 1 : q;  // index into the blocks' rows
      const int64_t blk = idx / B - first_block;
      if (q < 0 || blk < 0) {
        std::fill(dst, dst + hd, 0.0f);
        continue;
      }
      const std::byte* row =
          swa[size_t(blk)].data() + l * layer_bytes + size_t(idx % B) * size_t(main_bytes_);
      kernels::UnpackMainEntry(U8(row), int(hd), s.rope_head_dim, dst);
    }
    ls.swa_valid_from = 0;
  }
  const auto& last = swa[swa.size() - 1];
  STRATA_RETURN_IF_ERROR(DecodeTail(
      st, last.subspan(st.layers.size() * layer_bytes, layout_.checkpoint_carry_bytes())));
  st.pos = end;
  st.mtp_pos = s.n_mtp_layers > 0 ? end - 1 : 0;
  return Status::Ok();
}

}  // namespace strata::engine
