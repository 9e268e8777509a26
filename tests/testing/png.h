// Checks that plot scripts wrote PNG files.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

namespace strata::testing {

// Each of `names` exists in `dir` and starts with the PNG signature.
inline void ExpectPngs(const std::string& dir, std::initializer_list<const char*> names) {
  for (const char* png : names) {
    const std::filesystem::path p = std::filesystem::path(dir) / png;
    ASSERT_TRUE(std::filesystem::exists(p)) << p;
    std::ifstream f(p, std::ios::binary);
    char magic[4] = {};
    f.read(magic, 4);
    EXPECT_EQ(std::string(magic + 1, 3), "PNG") << p;
  }
}

}  // namespace strata::testing
