#include "engine/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/testing/temp_dir.h"

namespace strata::engine {
namespace {

// Writes a safetensors file: `header` JSON then `data`.
std::string Write(const testing::TempDir& dir, const std::string& name, const std::string& header,
                  const std::vector<uint8_t>& data) {
  const std::string path = dir.Sub(name);
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  out.write(reinterpret_cast<const char*>(data.data()), long(data.size()));
  return path;
}

std::vector<uint8_t> Bytes(std::initializer_list<float> fs) {
  std::vector<uint8_t> out(fs.size() * 4);
  size_t i = 0;
  for (float f : fs) std::memcpy(out.data() + 4 * i++, &f, 4);
  return out;
}

TEST(SafetensorsTest, ReadsTensorsAndConvertsFloats) {
  testing::TempDir dir;
  auto data = Bytes({1.5f, -2.0f, 0.25f, 8.0f});
  // BF16 1.0 = 0x3f80, -3.5 = 0xc060; F16 1.0 = 0x3c00, 2^-24 (subnormal) = 0x0001.
  for (uint16_t v : {0x3f80, 0xc060, 0x3c00, 0x0001}) {
    data.push_back(uint8_t(v & 0xff));
    data.push_back(uint8_t(v >> 8));
  }
  const std::string path = Write(dir, "a.safetensors",
                                 R"({"__metadata__": {"case": "x"},
      "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
      "b": {"dtype": "BF16", "shape": [2], "data_offsets": [16, 20]},
      "h": {"dtype": "F16", "shape": [2], "data_offsets": [20, 24]}})",
                                 data);
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->size(), 3u);
  EXPECT_EQ((*f)->metadata().at("case"), "x");
  auto w = (*f)->Get("w", DType::kF32, {2, 2});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*ToFloats(*w), (std::vector<float>{1.5f, -2.0f, 0.25f, 8.0f}));
  EXPECT_EQ(*ToFloats(*(*f)->Get("b")), (std::vector<float>{1.0f, -3.5f}));
  EXPECT_EQ(*ToFloats(*(*f)->Get("h")), (std::vector<float>{1.0f, std::ldexp(1.0f, -24)}));
  Status wrong = (*f)->Get("w", DType::kBF16, {2, 2}).status();
  EXPECT_NE(wrong.message().find("'w' is F32 [2, 2], expected BF16 [2, 2]"), std::string::npos)
      << wrong.ToString();
  EXPECT_TRUE((*f)->Get("missing").status().IsNotFound());
}

TEST(SafetensorsTest, MalformedFilesAreClearErrors) {
  testing::TempDir dir;
  const auto data = Bytes({1, 2, 3, 4});
  auto err = [&](const std::string& header, const std::vector<uint8_t>& d = {}) {
    static int n = 0;
    std::string name = "m";
    name += std::to_string(n++);
    auto f = SafetensorsFile::Open(Write(dir, name, header, d));
    EXPECT_FALSE(f.ok());
    return f.status().message();
  };
  EXPECT_NE(err("not json").find("not a JSON object"), std::string::npos);
  EXPECT_NE(err(R"({"t": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}})", data)
                .find("unsupported dtype Q7"),
            std::string::npos);
  EXPECT_NE(err(R"({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})", data)
                .find("needs 12 bytes"),
            std::string::npos);
  EXPECT_NE(err(R"({"t": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}})", data)
                .find("outside"),
            std::string::npos);
  EXPECT_NE(err(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                data)
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(err(R"({"t": {"dtype": "F32", "shape": [1]}})", data).find("'t'"), std::string::npos);
  // Header length beyond the file, and a file too short for any header.
  const std::string path = dir.Sub("short");
  {
    std::ofstream out(path, std::ios::binary);
    const uint64_t n = 1000;
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << "{}";
  }
  EXPECT_NE(SafetensorsFile::Open(path).status().message().find("exceeds the file"),
            std::string::npos);
  std::ofstream(dir.Sub("tiny")) << "abc";
  EXPECT_FALSE(SafetensorsFile::Open(dir.Sub("tiny")).ok());
  EXPECT_TRUE(SafetensorsFile::Open(dir.Sub("nonexistent")).status().IsNotFound());
}

// The conformance weights (official parameter names), where the shared folder is present.
TEST(SafetensorsTest, ReadsTheConformanceWeights) {
  const std::string path =
      std::string(STRATA_SOURCE_DIR) + "/../shared/conformance/v4-tiny-a1/weights.safetensors";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no shared conformance folder";
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->size(), 263u);
  EXPECT_EQ((*f)->metadata().at("case"), "A1");
  ASSERT_TRUE((*f)->Get("layers.0.ffn.gate.tid2eid", DType::kI32, {512, 2}).ok());
  auto embed = (*f)->Get("embed.weight", DType::kF32, {512, 256});
  ASSERT_TRUE(embed.ok());
  // Documented: every floating weight is a bf16-representable float.
  auto values = ToFloats(*embed);
  ASSERT_TRUE(values.ok());
  for (float v : *values) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    ASSERT_EQ(u & 0xffff, 0u) << v;
  }
}

}  // namespace
}  // namespace strata::engine
