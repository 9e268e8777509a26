#include "kernels/fp8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <sstream>
#include <string>

#include "kernels/cpu_features.h"
#include "kernels/fp8_math.h"

namespace strata::kernels {
namespace {

TEST(Fp8Test, KnownEncodings) {
  EXPECT_EQ(FloatToFp8E4m3(1.0f), 0x38);
  EXPECT_EQ(FloatToFp8E4m3(-2.0f), 0xc0);
  EXPECT_EQ(FloatToFp8E4m3(448.0f), 0x7e);
  EXPECT_EQ(FloatToFp8E4m3(1000.0f), 0x7e) << "saturates";
  EXPECT_EQ(FloatToFp8E4m3(std::ldexp(1.0f, -9)), 0x01) << "smallest subnormal";
  EXPECT_EQ(FloatToFp8E4m3(std::ldexp(1.0f, -6)), 0x08) << "smallest normal";
  EXPECT_EQ(FloatToFp8E4m3(0.0f), 0x00);
  EXPECT_EQ(FloatToFp8E4m3(1.0625f), 0x38) << "tie rounds to even mantissa";
  EXPECT_EQ(FloatToFp8E4m3(1.1875f), 0x3a) << "tie rounds to even mantissa";
  EXPECT_TRUE(std::isnan(Fp8E4m3ToFloat(0x7f)));
}

TEST(Fp8Test, EveryFiniteCodeRoundTrips) {
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7f) == 0x7f) continue;  // NaN
    const float f = Fp8E4m3ToFloat(uint8_t(b));
    if (b == 0x80) continue;  // -0 encodes as 0x80 too, checked below
    EXPECT_EQ(FloatToFp8E4m3(f), b) << b << " = " << f;
  }
  EXPECT_EQ(FloatToFp8E4m3(-0.0f), 0x80);
}

TEST(Fp8Test, EncodingIsNearest) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-440.0f, 440.0f);
  for (int i = 0; i < 20000; ++i) {
    const float x = u(rng);
    const float q = Fp8E4m3ToFloat(FloatToFp8E4m3(x));
    for (int b = 0; b < 127; ++b)  // no code is strictly closer
      EXPECT_LE(std::fabs(q - x),
                std::fabs(std::copysign(Fp8E4m3ToFloat(uint8_t(b)), x) - x) + 1e-6f);
  }
}

TEST(Fp8Test, BlockScalesArePowersOfTwoThatFit) {
  std::vector<float> in(256);
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.0f, 30.0f);
  for (float& x : in) x = nd(rng);
  in[70] = 5000.0f;  // one outlier in block 1
  std::vector<uint8_t> q(256), sc(4);
  QuantizeFp8BlocksCpu({in.data(), q.data(), sc.data(), 256, 64});
  std::vector<float> back(256);
  DequantizeFp8BlocksCpu(q.data(), sc.data(), back.data(), 256, 64);
  for (int b = 0; b < 4; ++b) {
    float amax = 0;
    for (int i = 0; i < 64; ++i) amax = std::max(amax, std::fabs(in[size_t(b * 64 + i)]));
    const float s = Ue8m0ToFloat(sc[size_t(b)]);
    EXPECT_LE(amax / s, 448.0f * (1.0f + 1e-6f));
    EXPECT_GT(amax / s, 224.0f) << "the smallest power of two that fits";
  }
  for (size_t i = 0; i < 256; ++i)
    EXPECT_NEAR(back[i], in[i], std::fabs(in[i]) * 0.0625f + Ue8m0ToFloat(sc[i / 64]) * 0.002f);
}

TEST(Fp8Test, ScaleFollowsTheReferenceArithmetic) {
  // amax * fp32(1/448), rounded up to a power of two on the exponent bits; amax floored at 1e-4.
  EXPECT_EQ(Ue8m0ScaleFor(448.0f), 127);  // exactly 1.0 (1/448 rounds so that 448 * it == 1)
  EXPECT_EQ(Ue8m0ScaleFor(449.0f), 128);  // just above: 2
  EXPECT_EQ(Ue8m0ScaleFor(0.0f), Ue8m0ScaleFor(1e-4f));
  EXPECT_EQ(Ue8m0ToFloat(Ue8m0ScaleFor(896.0f)), 2.0f);
  EXPECT_EQ(Ue8m0ToFloat(Ue8m0CeilPow2(3.0f)), 4.0f);
  EXPECT_EQ(Ue8m0ToFloat(Ue8m0CeilPow2(0.25f)), 0.25f);
}

TEST(Fp8Test, CudaMatchesCpuBitExact) {
  if (!CudaAvailable()) GTEST_SKIP() << "no CUDA device";
  std::vector<float> in(64 * 1000);
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (float& x : in) x = nd(rng);
  std::vector<uint8_t> cq(in.size()), cs(in.size() / 64), gq(in.size()), gs(in.size() / 64);
  QuantizeFp8BlocksCpu({in.data(), cq.data(), cs.data(), in.size(), 64});
  ASSERT_TRUE(QuantizeFp8BlocksCudaFromHost({in.data(), gq.data(), gs.data(), in.size(), 64}));
  EXPECT_EQ(cq, gq);
  EXPECT_EQ(cs, gs);
}

// The detected features are the kernel's: the flags line of /proc/cpuinfo.
TEST(CpuFeaturesTest, MatchesProcCpuinfo) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "x86-64 features only";
#else
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line) && line.rfind("flags", 0) != 0) {
  }
  if (line.empty()) GTEST_SKIP() << "no flags line in /proc/cpuinfo";
  std::istringstream words(line);
  std::set<std::string> flags{std::istream_iterator<std::string>(words), {}};
  const auto& f = DetectCpuFeatures();
  EXPECT_EQ(f.avx2, flags.count("avx2") == 1);
  EXPECT_EQ(f.fma, flags.count("fma") == 1);
  EXPECT_EQ(f.avx512f, flags.count("avx512f") == 1);
  EXPECT_EQ(f.ToString().find("avx2") != std::string::npos, f.avx2) << f.ToString();
#endif
}

}  // namespace
}  // namespace strata::kernels
