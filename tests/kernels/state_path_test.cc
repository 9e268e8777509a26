// The state path: stored entry formats, compressor blocks, indexer top-k, SWA ring; CPU
// against independent references, and CUDA against CPU (skipped without a device).
#include "kernels/state_path.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/model.h"
#include "engine/model_config.h"
#include "kernels/entry_format.h"
#include "kernels/fp8.h"
#include "kernels/sparse_attention.h"
#include "kernels/v4_math.h"
#include "strata/layout.h"

namespace strata::kernels {
namespace {

std::vector<float> Uniform(size_t n, uint32_t seed, float lo = -1, float hi = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Engine state after a prompt: every cached entry, packed and unpacked, comes back bit-exact;
// the entry sizes agree with the cache layout for v4-tiny, V4-Flash and V4-Pro.
TEST(StatePathTest, EngineEntriesRoundTripThroughTheStoredFormats) {
  auto config = engine::LoadModelConfig(STRATA_SOURCE_DIR "/configs/models/v4-tiny.json");
  ASSERT_TRUE(config.ok());
  auto model = engine::Model::Create(*config, engine::ModelWeights::Random(*config, 4));
  ASSERT_TRUE(model.ok());
  engine::RequestState st = (*model)->NewState();
  std::vector<int32_t> tokens(300);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(i * 7 % 512);
  ASSERT_TRUE((*model)->Forward(st, tokens).ok());
  const ModelShape& s = config->shape;
  const int hd = s.head_dim, rd = s.rope_head_dim, ihd = s.index_head_dim;
  size_t main_entries = 0, index_entries = 0;
  for (const engine::LayerState& ls : st.layers) {
    for (const std::vector<float>* rows : {&ls.swa, &ls.entries}) {
      const int n = int(rows->size() / size_t(hd));
      std::vector<uint8_t> packed(size_t(n) * size_t(MainEntrySize(hd, rd)));
      std::vector<float> back(rows->size());
      PackMainEntriesCpu(rows->data(), n, hd, rd, packed.data());
      UnpackMainEntriesCpu(packed.data(), n, hd, rd, back.data());
      if (n > 0) {
        ASSERT_EQ(std::memcmp(back.data(), rows->data(), back.size() * 4), 0);
      }
      main_entries += size_t(n);
    }
    const int n = int(ls.index_keys.size() / size_t(ihd));
    std::vector<uint8_t> packed(size_t(n) * size_t(IndexEntrySize(ihd)));
    std::vector<float> back(ls.index_keys.size());
    PackIndexEntriesCpu(ls.index_keys.data(), n, ihd, packed.data());
    UnpackIndexEntriesCpu(packed.data(), n, ihd, back.data());
    if (n > 0) {
      ASSERT_EQ(std::memcmp(back.data(), ls.index_keys.data(), back.size() * 4), 0);
    }
    index_entries += size_t(n);
  }
  EXPECT_GT(main_entries, 5u * 128u);
  EXPECT_EQ(index_entries, 2u * 75u);
  for (const char* m : {"v4-tiny", "v4-flash", "v4-pro"}) {
    auto shape =
        engine::LoadModelShape(std::string(STRATA_SOURCE_DIR "/configs/models/") + m + ".json");
    ASSERT_TRUE(shape.ok());
    auto layout = CacheLayout::Make(*shape, {});
    ASSERT_TRUE(layout.ok());
    EXPECT_EQ(uint32_t(MainEntrySize(shape->head_dim, shape->rope_head_dim)),
              layout->main_entry_bytes())
        << m;
    EXPECT_EQ(uint32_t(IndexEntrySize(shape->index_head_dim)), layout->index_entry_bytes()) << m;
  }
  EXPECT_EQ(MainEntrySize(512, 64), 584);
  EXPECT_EQ(IndexEntrySize(128), 68);
}

// The byte layout itself: FP8 codes, BF16 RoPE dims little-endian, scales, zero pad.
TEST(StatePathTest, MainEntryByteLayout) {
  std::vector<float> e(128, 0.0f);
  e[0] = 1.0f;    // amax 1 -> scale 2^ceil(log2(1/448)) = 2^-8, code of 256 = 0x78
  e[64] = -2.0f;  // second block
  e[127] = 1.5f;  // RoPE dim: BF16 0x3fc0
  std::vector<uint8_t> out(size_t(MainEntrySize(128, 64)), 0xaa);
  PackMainEntry(e.data(), 128, 64, out.data());
  EXPECT_EQ(out.size(), 200u);  // 64 + 128 + 1 + 7 pad
  EXPECT_EQ(out[0], FloatToFp8E4m3(256.0f));
  EXPECT_EQ(out[64 + 2 * 63], 0xc0);
  EXPECT_EQ(out[64 + 2 * 63 + 1], 0x3f);
  EXPECT_EQ(out[192], 127 - 8);  // UE8M0 of 2^-8
  for (size_t i = 193; i < out.size(); ++i) EXPECT_EQ(out[i], 0);
}

// Pooling + norm + RoPE + FP8 against a double-precision evaluation of the same formula.
TEST(StatePathTest, CompressBlocksMatchesTheFormula) {
  const int blocks = 3, rows = 8, d = 128, rd = 64;
  auto kv = Uniform(size_t(blocks * rows * d), 1);
  auto score = Uniform(kv.size(), 2, -3, 3);
  for (int c = 0; c < d; c += 3) score[size_t(c)] = -INFINITY;  // absent rows (first block)
  auto norm = Uniform(size_t(d), 3, 0.8f, 1.2f);
  std::vector<float> rope(size_t(blocks * rd));
  for (int b = 0; b < blocks; ++b)
    for (int i = 0; i < rd / 2; ++i) {
      rope[size_t(b * rd + 2 * i)] = std::cos(0.1f * float(b * 4) * float(i + 1));
      rope[size_t(b * rd + 2 * i + 1)] = std::sin(0.1f * float(b * 4) * float(i + 1));
    }
  std::vector<float> out(size_t(blocks * d));
  CompressBlocksArgs a{kv.data(), score.data(), norm.data(), rope.data(), out.data(), blocks, rows,
                       d,         rd,           1e-6f,       false,       false};
  CompressBlocksCpu(a);
  for (int b = 0; b < blocks; ++b) {
    std::vector<double> e(static_cast<size_t>(d));
    for (int c = 0; c < d; ++c) {
      double mx = -INFINITY, den = 0, acc = 0;
      for (int r = 0; r < rows; ++r)
        mx = std::max(mx, double(score[size_t((b * rows + r) * d + c)]));
      for (int r = 0; r < rows; ++r) den += std::exp(score[size_t((b * rows + r) * d + c)] - mx);
      for (int r = 0; r < rows; ++r)
        acc += kv[size_t((b * rows + r) * d + c)] *
               std::exp(score[size_t((b * rows + r) * d + c)] - mx) / den;
      e[size_t(c)] = acc;
    }
    double ss = 0;
    for (double x : e) ss += x * x;
    const double r = 1.0 / std::sqrt(ss / d + 1e-6);
    for (int c = 0; c < d; ++c) e[size_t(c)] *= r * norm[size_t(c)];
    for (int i = 0; i < rd / 2; ++i) {
      const double co = rope[size_t(b * rd + 2 * i)], si = rope[size_t(b * rd + 2 * i + 1)];
      const double x = e[size_t(d - rd + 2 * i)], y = e[size_t(d - rd + 2 * i + 1)];
      e[size_t(d - rd + 2 * i)] = x * co - y * si;
      e[size_t(d - rd + 2 * i + 1)] = x * si + y * co;
    }
    for (int c = 0; c < d; ++c) {
      const double tol = c < d - rd ? std::fabs(e[size_t(c)]) * 0.07 + 1e-3 : 1e-5;
      EXPECT_NEAR(out[size_t(b * d + c)], e[size_t(c)], tol) << "block " << b << " ch " << c;
    }
  }
}

// Indexer scores and top-k against a direct evaluation; the O(n k) device selection equals
// the host's sort-based one, ties included.
TEST(StatePathTest, IndexerTopKAndDeviceSelection) {
  const int queries = 5, heads = 4, dim = 64, keys = 40, k = 16;
  auto q = Uniform(size_t(queries * heads * dim), 5);
  auto w = Uniform(size_t(queries * heads), 6);
  auto kk = Uniform(size_t(keys * dim), 7);
  Fp4SimulateBlocks(q.data(), int(q.size()), 32);
  Fp4SimulateBlocks(kk.data(), int(kk.size()), 32);
  std::vector<int32_t> visible = {0, 3, 16, 17, 40}, out(size_t(queries * k));
  IndexerTopKArgs a{q.data(), w.data(), kk.data(), visible.data(), out.data(), queries,
                    heads,    dim,      k,         nullptr,        keys};
  IndexerTopKCpu(a);
  for (int qi = 0; qi < queries; ++qi) {
    std::vector<float> s(static_cast<size_t>(visible[size_t(qi)]));
    for (int t = 0; t < visible[size_t(qi)]; ++t) {
      float acc = 0;
      for (int h = 0; h < heads; ++h) {
        const float dot = Dot8(&q[size_t((qi * heads + h) * dim)], &kk[size_t(t * dim)], dim);
        acc += std::max(dot, 0.0f) * w[size_t(qi * heads + h)];
      }
      s[size_t(t)] = acc;
    }
    std::vector<int32_t> want(static_cast<size_t>(k));
    TopKLowerIndexWins(s.data(), int(s.size()), std::min(k, int(s.size())), want.data());
    for (int j = std::min(k, int(s.size())); j < k; ++j) want[size_t(j)] = -1;
    for (int j = 0; j < k; ++j) EXPECT_EQ(out[size_t(qi * k + j)], want[size_t(j)]) << qi;
  }
  std::mt19937 rng(3);
  for (int round = 0; round < 50; ++round) {
    std::vector<float> s(40);
    for (auto& x : s) x = float(rng() % 6);  // many ties
    if (round % 7 == 0) s[3] = NAN;
    std::vector<int32_t> host(12), dev(12);
    TopKLowerIndexWins(s.data(), 40, 12, host.data());
    TopKSelect(s.data(), 40, 12, dev.data());
    EXPECT_EQ(host, dev);
  }
}

TEST(StatePathTest, SwaRingWriteKeepsTheLastWindow) {
  const int window = 8, dim = 2;
  std::vector<float> ring(size_t(window * dim), -1.0f), rows(size_t(11 * dim));
  for (int i = 0; i < 11; ++i) rows[size_t(i * dim)] = rows[size_t(i * dim + 1)] = float(100 + i);
  SwaRingWriteCpu({rows.data(), ring.data(), 5, 11, dim, window});  // positions 5..15
  for (int p = 8; p <= 15; ++p) EXPECT_EQ(ring[size_t((p % window) * dim)], float(100 + p - 5));
}

// CUDA against CPU; skipped where no device is usable.
TEST(StatePathTest, CudaMatchesCpu) {
  if (!CudaAvailable()) GTEST_SKIP() << "no CUDA device";
  // Packing and top-k use no transcendental: bitwise equal.
  auto e = Uniform(64 * 512, 11);
  Fp8SimulateBlocks(e.data(), int(e.size()), 64);
  std::vector<uint8_t> cpu(size_t(64 * MainEntrySize(512, 64))), gpu(cpu.size());
  PackMainEntriesCpu(e.data(), 64, 512, 64, cpu.data());
  ASSERT_TRUE(PackMainEntriesCudaFromHost(e.data(), 64, 512, 64, gpu.data()));
  EXPECT_EQ(cpu, gpu);
  std::vector<uint8_t> icpu(size_t(64 * IndexEntrySize(128))), igpu(icpu.size());
  PackIndexEntriesCpu(e.data(), 64, 128, icpu.data());
  ASSERT_TRUE(PackIndexEntriesCudaFromHost(e.data(), 64, 128, igpu.data()));
  EXPECT_EQ(icpu, igpu);

  const int queries = 6, heads = 8, dim = 128, keys = 300, k = 64;
  auto q = Uniform(size_t(queries * heads * dim), 12);
  auto w = Uniform(size_t(queries * heads), 13);
  auto kk = Uniform(size_t(keys * dim), 14);
  Fp4SimulateBlocks(q.data(), int(q.size()), 32);
  Fp4SimulateBlocks(kk.data(), int(kk.size()), 32);
  std::vector<int32_t> visible = {1, 10, 64, 65, 200, 300}, tc(size_t(queries * k)), tg(tc.size());
  IndexerTopKArgs ia{q.data(), w.data(), kk.data(), visible.data(), tc.data(), queries,
                     heads,    dim,      k,         nullptr,        keys};
  IndexerTopKCpu(ia);
  ia.out = tg.data();
  ASSERT_TRUE(IndexerTopKCudaFromHost(ia, keys));
  EXPECT_EQ(tc, tg);

  // Pooling and attention use expf: equal within float tolerance.
  const int blocks = 16, rows = 8, d = 512, rd = 64;
  auto kv = Uniform(size_t(blocks * rows * d), 15);
  auto sc = Uniform(kv.size(), 16, -4, 4);
  auto norm = Uniform(size_t(d), 17, 0.9f, 1.1f);
  auto rope = Uniform(size_t(blocks * rd), 18);
  std::vector<float> oc(size_t(blocks * d)), og(oc.size());
  CompressBlocksArgs ca{kv.data(), sc.data(), norm.data(), rope.data(), oc.data(), blocks,
                        rows,      d,         rd,          1e-6f,       false,     true};
  CompressBlocksCpu(ca);
  ca.out = og.data();
  ASSERT_TRUE(CompressBlocksCudaFromHost(ca));
  for (size_t i = 0; i < oc.size(); ++i)
    EXPECT_NEAR(oc[i], og[i], 0.07f * std::fabs(oc[i]) + 1e-3f);

  const int count = 40, entries = 100;
  auto aq = Uniform(size_t(queries * heads * d), 19);
  auto akv = Uniform(size_t(entries * d), 20);
  auto sink = Uniform(size_t(heads), 21);
  std::vector<int32_t> idx(size_t(queries * count));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i % 9 == 4 ? -1 : int32_t((i * 13) % entries);
  std::vector<float> ac(size_t(queries * heads * d)), ag(ac.size());
  SparseAttentionArgs sa{aq.data(), akv.data(), idx.data(), sink.data(), ac.data(),
                         queries,   heads,      d,          count,       0.05f};
  SparseAttentionBatchCpu(sa);
  sa.out = ag.data();
  ASSERT_TRUE(SparseAttentionCudaFromHost(sa, entries));
  for (size_t i = 0; i < ac.size(); ++i) EXPECT_NEAR(ac[i], ag[i], 1e-5f);

  std::vector<float> rc(size_t(128 * 16), 0.0f), rg(rc.size(), 0.0f);
  auto rr = Uniform(size_t(200 * 16), 22);
  SwaRingWriteCpu({rr.data(), rc.data(), 77, 200, 16, 128});
  ASSERT_TRUE(SwaRingWriteCudaFromHost({rr.data(), rg.data(), 77, 200, 16, 128}));
  EXPECT_EQ(rc, rg);
}

}  // namespace
}  // namespace strata::kernels
