#include "bench/v4_payload.h"

#include <cmath>
#include <cstring>
#include <random>

#include "kernels/fp8.h"
#include "kernels/fp8_math.h"

namespace strata::bench {
namespace {

uint64_t SplitMix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);  // round to nearest even
  return uint16_t(u >> 16);
}

// One main / SWA entry: FP8 nope dims + 64-wide UE8M0 scales, BF16 rope dims, pad.
void MainEntry(std::mt19937_64& rng, const ModelShape& s, uint32_t entry_bytes, std::byte* out) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const size_t nope = size_t(s.head_dim - s.rope_head_dim);
  std::vector<float> v(nope);
  for (float& x : v) x = nd(rng);
  std::vector<uint8_t> q(nope), sc(nope / 64);
  kernels::QuantizeFp8BlocksCpu({v.data(), q.data(), sc.data(), nope, 64});
  std::byte* p = out;
  std::memcpy(p, q.data(), q.size());
  p += q.size();
  for (int i = 0; i < s.rope_head_dim; ++i) {
    uint16_t b = ToBf16(nd(rng));
    std::memcpy(p, &b, 2);
    p += 2;
  }
  std::memcpy(p, sc.data(), sc.size());
  p += sc.size();
  std::memset(p, 0, size_t(out + entry_bytes - p));
}

// One FP4 e2m1 indexer entry: values packed two per byte, UE8M0 scale per 32.
void IndexEntry(std::mt19937_64& rng, int dim, std::byte* out) {
  static constexpr float kGrid[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<uint8_t> nib(static_cast<size_t>(dim));
  for (int b = 0; b < dim / 32; ++b) {
    float vals[32], amax = 0;
    for (float& x : vals) amax = std::fmax(amax, std::fabs(x = nd(rng)));
    const float scale = std::exp2(std::ceil(std::log2(amax / 6.0f)));
    for (int i = 0; i < 32; ++i) {
      const float a = std::fabs(vals[i]) / scale;
      int best = 0;
      for (int g = 1; g < 8; ++g)
        if (std::fabs(kGrid[g] - a) < std::fabs(kGrid[best] - a)) best = g;
      nib[size_t(b * 32 + i)] = uint8_t(best | (vals[i] < 0 ? 8 : 0));
    }
    out[dim / 2 + b] = std::byte(uint8_t(int(std::log2(scale)) + 127));
  }
  for (int i = 0; i < dim / 2; ++i) out[i] = std::byte(uint8_t(nib[2 * i] | (nib[2 * i + 1] << 4)));
}

}  // namespace

void FillPseudoRandom(std::byte* out, size_t n, uint64_t seed) {
  uint64_t s = seed;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t r = SplitMix(s);
    std::memcpy(out + i, &r, 8);
  }
  if (i < n) {
    const uint64_t r = SplitMix(s);
    std::memcpy(out + i, &r, n - i);
  }
}

std::vector<std::byte> MakeFamilyPayload(const CacheLayout& layout, Family family, uint64_t seed) {
  std::vector<std::byte> out(layout.FamilyBlockBytes(family));
  std::mt19937_64 rng(seed);
  const ModelShape& s = layout.shape();
  const uint32_t me = layout.main_entry_bytes();
  auto main_entries = [&](size_t start, size_t count) {
    for (size_t i = 0; i < count; ++i) MainEntry(rng, s, me, out.data() + start + i * me);
  };
  switch (family) {
    case Family::kCsa:
    case Family::kHca:
      main_entries(0, out.size() / me);
      break;
    case Family::kSwa: {
      const size_t entries_bytes = out.size() - layout.checkpoint_carry_bytes();
      main_entries(0, entries_bytes / me);
      std::normal_distribution<float> nd(0.0f, 1.0f);
      float* tail = reinterpret_cast<float*>(out.data() + entries_bytes);
      for (size_t i = 0; i < layout.checkpoint_carry_bytes() / 4; ++i) tail[i] = nd(rng);
      break;
    }
    case Family::kCsaIndex: {
      const uint32_t ie = layout.index_entry_bytes();
      for (size_t i = 0; ie && i < out.size() / ie; ++i)
        IndexEntry(rng, s.index_head_dim, out.data() + i * ie);
      break;
    }
    case Family::kCheckpoint: {
      main_entries(0, layout.checkpoint_window_bytes() / me);
      std::normal_distribution<float> nd(0.0f, 1.0f);
      float* carry = reinterpret_cast<float*>(out.data() + layout.checkpoint_window_bytes());
      for (size_t i = 0; i < layout.checkpoint_carry_bytes() / 4; ++i) carry[i] = nd(rng);
      break;
    }
  }
  return out;
}

}  // namespace strata::bench
