#include "engine/state.h"

#include <cstring>

namespace strata::engine {
namespace {

bool Same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

bool Same(const CompressorCarry& a, const CompressorCarry& b) {
  return a.ratio == b.ratio && a.rows == b.rows && a.cols == b.cols && Same(a.kv, b.kv) &&
         Same(a.score, b.score);
}

}  // namespace

bool BitIdentical(const RequestState& a, const RequestState& b) {
  if (a.pos != b.pos || a.mtp_pos != b.mtp_pos || a.layers.size() != b.layers.size() ||
      !Same(a.mtp_hidden, b.mtp_hidden))
    return false;
  for (size_t l = 0; l < a.layers.size(); ++l) {
    const LayerState &x = a.layers[l], &y = b.layers[l];
    if (x.ratio != y.ratio || x.swa_valid_from != y.swa_valid_from || !Same(x.swa, y.swa) ||
        !Same(x.entries, y.entries) || !Same(x.index_keys, y.index_keys) || !Same(x.comp, y.comp) ||
        !Same(x.index_comp, y.index_comp))
      return false;
  }
  return true;
}

}  // namespace strata::engine
