// SWA thinning on bytes: the checkpoint object built from a swa object equals the ring at the
// block end, rebuilt here from positions (which position each ring slot holds, which swa row
// holds that position), for every block index, with and without an MTP layer, for block sizes
// equal to and larger than the window; malformed input is refused.
#include "cachestore/placement/thin_swa.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace strata::cachestore {
namespace {

// A tiny model: 2 main layers (SWA-only and ratio-4) and optionally one MTP layer.
CacheLayout TinyLayout(uint32_t block, bool mtp, int window = 128) {
  ModelShape s;
  s.name = "thin-tiny";
  s.vocab_size = 64;
  s.dim = 16;
  s.n_layers = 2;
  s.n_mtp_layers = mtp ? 1 : 0;
  s.n_heads = 2;
  s.head_dim = 128;
  s.rope_head_dim = 64;
  s.window_size = window;
  s.index_n_heads = 2;
  s.index_head_dim = 32;
  s.index_topk = 4;
  s.hc_mult = 2;
  s.compress_ratios = mtp ? std::vector<int>{0, 4, 0} : std::vector<int>{0, 4};
  LayoutOptions o;
  o.block_size = block;
  auto l = CacheLayout::Make(s, o);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return *l;
}

std::vector<std::byte> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = std::byte(rng() & 0xff);
  return v;
}

// The checkpoint at the end of block `b` from the positions each format holds.
std::vector<std::byte> ExpectedCheckpoint(const CacheLayout& lay, const std::vector<std::byte>& swa,
                                          int64_t b) {
  const ModelShape& s = lay.shape();
  const int64_t B = lay.block_size(), W = s.window_size, E = lay.main_entry_bytes();
  const int64_t layers = s.n_layers + s.n_mtp_layers, end = (b + 1) * B;
  std::vector<std::byte> cp(lay.FamilyBlockBytes(Family::kCheckpoint));
  for (int64_t l = 0; l < layers; ++l) {
    const bool mtp = l >= s.n_layers;
    const int64_t first = mtp ? b * B - 1 : b * B;   // position of the layer's swa row 0
    const int64_t lo = mtp ? end - W - 1 : end - W;  // the ring holds positions [lo, lo + W)
    for (int64_t p = lo; p < lo + W; ++p) {
      const int64_t slot = ((p % W) + W) % W, row = p - first;
      EXPECT_TRUE(row >= 0 && row < B) << "position " << p << " is not in the swa object";
      if (row < 0 || row >= B) continue;
      std::memcpy(cp.data() + (l * W + slot) * E, swa.data() + (l * B + row) * E, size_t(E));
    }
  }
  const size_t tail = lay.checkpoint_carry_bytes();
  std::memcpy(cp.data() + cp.size() - tail, swa.data() + swa.size() - tail, tail);
  return cp;
}

struct Case {
  uint32_t block;
  bool mtp;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "block " << c.block << (c.mtp ? " with MTP" : " without MTP");
}

class ThinSwaTest : public ::testing::TestWithParam<Case> {};

TEST_P(ThinSwaTest, CheckpointIsTheRingAtTheBlockEnd) {
  const CacheLayout lay = TinyLayout(GetParam().block, GetParam().mtp);
  // The sizes the formats give: 200-byte entries (64 FP8 + 64 BF16 + 1 scale, padded to 8), a
  // tail of one ratio-4 layer's carries (main 128 + indexer 32 dims) and the MTP hidden state.
  ASSERT_EQ(lay.main_entry_bytes(), 200u);
  const uint64_t tail = (4 * 128 + 4 * 32) * 2 * 4 + (GetParam().mtp ? 2 * 16 * 4 : 0);
  const uint64_t layers = GetParam().mtp ? 3 : 2;
  ASSERT_EQ(lay.FamilyBlockBytes(Family::kSwa), layers * GetParam().block * 200 + tail);
  ASSERT_EQ(lay.FamilyBlockBytes(Family::kCheckpoint), layers * 128 * 200 + tail);

  for (uint32_t seed : {1u, 2u}) {
    const auto swa = RandomBytes(lay.FamilyBlockBytes(Family::kSwa), seed);
    std::vector<std::byte> cp(lay.FamilyBlockBytes(Family::kCheckpoint), std::byte{0xee});
    ASSERT_TRUE(ThinSwaToCheckpoint(lay, swa, cp).ok());
    // The same bytes whatever block the object belongs to: block ends are multiples of the
    // window, so the permutation does not depend on the block index.
    for (int64_t b : {0, 1, 2, 7}) {
      const auto want = ExpectedCheckpoint(lay, swa, b);
      ASSERT_EQ(cp.size(), want.size());
      EXPECT_EQ(std::memcmp(cp.data(), want.data(), cp.size()), 0)
          << "block " << b << " seed " << seed;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, ThinSwaTest,
                         ::testing::Values(Case{128, true}, Case{256, true}, Case{512, true},
                                           Case{128, false}, Case{256, false}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return "block" + std::to_string(i.param.block) +
                                  (i.param.mtp ? "_mtp" : "_no_mtp");
                         });

TEST(ThinSwaErrorsTest, WrongSizesAreRefused) {
  const CacheLayout lay = TinyLayout(256, true);
  const size_t swa_n = lay.FamilyBlockBytes(Family::kSwa);
  const size_t cp_n = lay.FamilyBlockBytes(Family::kCheckpoint);
  const auto swa = RandomBytes(swa_n + 1, 3);
  std::vector<std::byte> cp(cp_n + 1, std::byte{0x5a});
  const std::vector<std::byte> untouched = cp;
  auto swa_span = std::span<const std::byte>(swa);
  auto cp_span = std::span<std::byte>(cp);
  for (auto [s, c] : {std::pair{swa_span.first(swa_n - 1), cp_span.first(cp_n)},
                      std::pair{swa_span.first(swa_n + 1), cp_span.first(cp_n)},
                      std::pair{swa_span.first(0), cp_span.first(cp_n)},
                      std::pair{swa_span.first(swa_n), cp_span.first(cp_n - 1)},
                      std::pair{swa_span.first(swa_n), cp_span.first(cp_n + 1)},
                      std::pair{swa_span.first(swa_n), cp_span.first(0)}}) {
    const Status st = ThinSwaToCheckpoint(lay, s, c);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << s.size() << " " << c.size();
    EXPECT_NE(st.ToString().find("the layout says"), std::string::npos) << st.ToString();
  }
  EXPECT_EQ(cp, untouched);  // nothing written on error
  // A swa object of another layout (other block size) is refused too.
  const CacheLayout other = TinyLayout(128, true);
  const auto small = RandomBytes(other.FamilyBlockBytes(Family::kSwa), 4);
  EXPECT_FALSE(ThinSwaToCheckpoint(lay, small, cp_span.first(cp_n)).ok());
}

TEST(ThinSwaErrorsTest, OverlappingBuffersAreRefused) {
  const CacheLayout lay = TinyLayout(256, true);
  std::vector<std::byte> buf = RandomBytes(lay.FamilyBlockBytes(Family::kSwa), 5);
  const std::vector<std::byte> before = buf;
  const Status st = ThinSwaToCheckpoint(
      lay, buf, std::span(buf).subspan(100, lay.FamilyBlockBytes(Family::kCheckpoint)));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(buf, before);
}

TEST(ThinSwaErrorsTest, WindowThatDoesNotDivideTheBlockIsRefused) {
  // Window 96, block 128: block ends fall on different ring slots, so the swa bytes alone do not
  // say the ring.
  const CacheLayout lay = TinyLayout(128, true, 96);
  const auto swa = RandomBytes(lay.FamilyBlockBytes(Family::kSwa), 6);
  std::vector<std::byte> cp(lay.FamilyBlockBytes(Family::kCheckpoint));
  const Status st = ThinSwaToCheckpoint(lay, swa, cp);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.ToString().find("does not divide"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace strata::cachestore
